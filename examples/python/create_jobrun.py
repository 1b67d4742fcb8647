"""Create a JobRun from code and wait until it finishes.

    python create_jobrun.py --namespace default --template echo-template \
        --name echo-hello --arg "Hello, world!"

Uses the official Kubernetes Python client (pip install kubernetes) and your
kubeconfig (or the in-cluster service account). Exits 0 when the run
succeeded, 1 when it failed, 2 on a timeout.
"""

import argparse
import sys

from kubernetes import client, config, watch

GROUP, VERSION, PLURAL = "cellbytes.io", "v1", "jobruns"


def create_run(api, namespace, name, template, args):
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "JobRun",
        "metadata": {"name": name},
        "spec": {"templateRef": template, "args": args},
    }
    return api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)


def wait_finished(api, namespace, name, timeout_seconds):
    """Watch the run until its Finished condition is True; return its status."""
    stream = watch.Watch().stream(
        api.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL,
        field_selector=f"metadata.name={name}", timeout_seconds=timeout_seconds,
    )
    for event in stream:
        status = event["object"].get("status") or {}
        conditions = status.get("conditions") or []
        if any(c["type"] == "Finished" and c["status"] == "True" for c in conditions):
            return status
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--template", required=True, help="name of the JobTemplate")
    parser.add_argument("--name", required=True, help="name of the new JobRun")
    parser.add_argument("--arg", action="append", default=[], help="an argument (repeat)")
    parser.add_argument("--timeout", type=int, default=120)
    options = parser.parse_args()

    try:
        config.load_kube_config()
    except config.ConfigException:
        config.load_incluster_config()
    api = client.CustomObjectsApi()

    create_run(api, options.namespace, options.name, options.template, options.arg)
    status = wait_finished(api, options.namespace, options.name, options.timeout)
    if status is None:
        print(f"JobRun {options.name} did not finish within {options.timeout}s", file=sys.stderr)
        return 2
    print(f"JobRun {options.name}: {status['phase']} (Job {status.get('jobName', '-')})")
    return 0 if status["phase"] == "Succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
