//! Small builders for the objects the lifecycle tests create.

use job_template_run::crd::{JobRun, JobTemplate};
use serde_json::{Value, json};

/// Label that makes kwok fail a pod's container (the chaos stage that the
/// cluster image loads); real k3s ignores it, so its pod must fail by itself.
pub const FAIL_POD_LABEL: &str = "pod-container-running-failed.stage.kwok.x-k8s.io";

/// Label that keeps a Running pod Running in kwok until it is deleted (the
/// cluster image's `pod-keep-running` stage): a pod a test stops while it runs.
pub const KEEP_RUNNING_LABEL: &str = "e2e.cellbytes.io/keep-running";

/// A busybox template in `namespace`; `spec` is merged into the JobSpec.
pub fn template(namespace: &str, name: &str, spec: Value) -> Result<JobTemplate, String> {
    let mut base = json!({
        "apiVersion": "cellbytes.io/v1",
        "kind": "JobTemplate",
        "metadata": { "name": name, "namespace": namespace },
        "spec": {
            "template": { "spec": {
                "containers": [{ "name": "main", "image": "busybox:1.36", "command": ["sh", "-c"], "args": ["exit 0"] }],
                "restartPolicy": "Never"
            }}
        }
    });
    merge(&mut base["spec"], spec);
    serde_json::from_value(base).map_err(|e| e.to_string())
}

/// A template whose only pod fails (kwok's chaos label, and `exit 1` for a
/// real kubelet), with no retries.
pub fn failing_template(namespace: &str, name: &str) -> Result<JobTemplate, String> {
    template(
        namespace,
        name,
        json!({
            "backoffLimit": 0,
            "template": { "metadata": { "labels": { FAIL_POD_LABEL: "true" } } }
        }),
    )
}

/// A run of `template` with the given args.
pub fn run(namespace: &str, name: &str, template: &str, args: &[&str]) -> Result<JobRun, String> {
    serde_json::from_value(json!({
        "apiVersion": "cellbytes.io/v1",
        "kind": "JobRun",
        "metadata": { "name": name, "namespace": namespace },
        "spec": { "templateRef": template, "args": args }
    }))
    .map_err(|e| e.to_string())
}

/// Deep-merges `patch` into `base` (maps merge; anything else replaces).
fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, patch) => *base = patch,
    }
}
