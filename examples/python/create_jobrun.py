"""Create a JobRun from code and wait until it finishes.

    python create_jobrun.py --namespace default --template echo-template \
        --name echo-hello --arg "Hello, world!"
    python create_jobrun.py --template echo-template --name echo-env \
        --env GREETING=hi --request cpu=250m --request memory=64Mi

(`--env` and `--request` need a template whose runPolicy.overrides allows
`env` and `resources`; otherwise the run fails with OverrideNotAllowed,
which is printed with its message.)

Uses the official Kubernetes Python client (pip install kubernetes) and your
kubeconfig (or the in-cluster service account). Exits 0 when the run
succeeded, 1 when it failed, 2 on a timeout.
"""

import argparse
import sys

from kubernetes import client, config, watch

GROUP, VERSION, PLURAL = "cellbytes.io", "v1", "jobruns"


def create_run(api, namespace, name, template, args, env=(), requests=()):
    spec = {"templateRef": template}
    if args:
        spec["args"] = args
    if env:
        spec["env"] = [{"name": k, "value": v} for k, v in (pair.split("=", 1) for pair in env)]
    if requests:
        spec["resources"] = {"requests": dict(pair.split("=", 1) for pair in requests)}
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "JobRun",
        "metadata": {"name": name},
        "spec": spec,
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
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the container (repeat)")
    parser.add_argument("--request", action="append", default=[], help="RESOURCE=QUANTITY, e.g. cpu=250m (repeat)")
    parser.add_argument("--timeout", type=int, default=120)
    options = parser.parse_args()

    try:
        config.load_kube_config()
    except config.ConfigException:
        config.load_incluster_config()
    api = client.CustomObjectsApi()

    create_run(api, options.namespace, options.name, options.template, options.arg, options.env, options.request)
    status = wait_finished(api, options.namespace, options.name, options.timeout)
    if status is None:
        print(f"JobRun {options.name} did not finish within {options.timeout}s", file=sys.stderr)
        return 2
    print(f"JobRun {options.name}: {status['phase']} (Job {status.get('jobName', '-')})")
    if status["phase"] == "Succeeded":
        return 0
    # Why it failed: the reason and message of its Failed condition (for a
    # refused override, OverrideNotAllowed naming the field, before any Job).
    failed = next((c for c in status.get("conditions") or [] if c["type"] == "Failed" and c["status"] == "True"), {})
    print(f"  {failed.get('reason', 'Failed')}: {failed.get('message', status.get('error', ''))}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
