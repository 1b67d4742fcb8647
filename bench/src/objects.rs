//! The objects the benchmark writes, as plain JSON: it knows the two CRDs
//! only by group, version, kind and the fields the README documents, so
//! any implementation of them is measured the same way.

use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};

/// The label that ties a Job to its run (the operator's contract).
pub const RUN_LABEL: &str = "cellbytes.io/job-run";
pub const TEMPLATE_LABEL: &str = "cellbytes.io/job-template";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "job-template-run";
/// The name of the one template each namespace gets.
pub const TEMPLATE: &str = "bench";

pub fn job_run_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("cellbytes.io", "v1", "JobRun"), "jobruns")
}

pub fn job_template_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("cellbytes.io", "v1", "JobTemplate"), "jobtemplates")
}

/// Whether the Jobs a template makes start at once (kwok completes their
/// pod in about a second) or stay suspended, so the cluster stays idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Running,
    Suspended,
}

/// The JobSpec every template, and every Job the floor writes, starts from.
fn job_spec(kind: JobKind) -> Value {
    json!({
        "suspend": kind == JobKind::Suspended,
        "backoffLimit": 0,
        "template": { "spec": {
            "containers": [{ "name": "main", "image": "busybox:1.36", "command": ["sh", "-c"], "args": ["exit 0"] }],
            "restartPolicy": "Never"
        }}
    })
}

pub fn template(namespace: &str, kind: JobKind) -> DynamicObject {
    dynamic(json!({
        "apiVersion": "cellbytes.io/v1",
        "kind": "JobTemplate",
        "metadata": { "name": TEMPLATE, "namespace": namespace },
        "spec": job_spec(kind)
    }))
}

/// The args a run overrides: what a run usually carries.
fn run_args(name: &str) -> Value {
    json!(["echo", format!("run {name}")])
}

pub fn run(namespace: &str, name: &str) -> DynamicObject {
    dynamic(json!({
        "apiVersion": "cellbytes.io/v1",
        "kind": "JobRun",
        "metadata": { "name": name, "namespace": namespace },
        "spec": { "templateRef": TEMPLATE, "args": run_args(name) }
    }))
}

/// The Job an operator makes for run `name` (template spec, the run's args,
/// the three labels, a controller reference when the run's uid is known),
/// written directly by the floor.
pub fn job(namespace: &str, name: &str, run_uid: Option<&str>, kind: JobKind) -> Value {
    let labels = json!({ RUN_LABEL: name, TEMPLATE_LABEL: TEMPLATE, MANAGED_BY_LABEL: MANAGED_BY });
    let mut spec = job_spec(kind);
    spec["template"]["metadata"] = json!({ "labels": labels });
    spec["template"]["spec"]["containers"][0]["args"] = run_args(name);
    let mut metadata = json!({
        "name": name,
        "namespace": namespace,
        "labels": labels,
        "annotations": { "cellbytes.io/job-run-name": name }
    });
    if let Some(uid) = run_uid {
        metadata["ownerReferences"] = json!([{ "apiVersion": "cellbytes.io/v1", "kind": "JobRun", "name": name, "uid": uid, "controller": true }]);
    }
    json!({ "apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec })
}

/// The status of a run that succeeded, as the README documents it: what
/// the operator mirrors from a complete Job, plus `Finished=True`.
pub fn finished_status(name: &str, at: &str) -> Value {
    let condition = |type_: &str, reason: &str| {
        json!({
            "type": type_, "status": "True", "reason": reason,
            "message": "Reached expected number of succeeded pods",
            "lastProbeTime": at, "lastTransitionTime": at
        })
    };
    json!({ "status": {
        "jobName": name,
        "observedGeneration": 1,
        "phase": "Succeeded",
        "startTime": at,
        "completionTime": at,
        "ready": 0,
        "terminating": 0,
        "succeeded": 1,
        "conditions": [
            condition("SuccessCriteriaMet", "CompletionsReached"),
            condition("Complete", "CompletionsReached"),
            condition("Finished", "Succeeded"),
        ]
    }})
}

/// The status of a Job that completed (valid for the API server's checks
/// of Jobs that an external controller manages).
pub fn complete_job_status(at: &str) -> Value {
    let condition = |type_: &str| {
        json!({
            "type": type_, "status": "True", "reason": "CompletionsReached",
            "message": "Reached expected number of succeeded pods",
            "lastProbeTime": at, "lastTransitionTime": at
        })
    };
    json!({ "status": {
        "startTime": at,
        "completionTime": at,
        "succeeded": 1,
        "ready": 0,
        "terminating": 0,
        "uncountedTerminatedPods": {},
        "conditions": [condition("SuccessCriteriaMet"), condition("Complete")]
    }})
}

/// Who manages the finished Jobs the benchmark writes, so that the Job
/// controller leaves them alone (no pods, no status writes).
pub const BENCH_MANAGED_BY: &str = "cellbytes.io/bench";

/// The one status write a minimal operator makes when a run ends.
pub fn minimal_finished_status(at: &str) -> Value {
    json!({ "status": {
        "phase": "Succeeded",
        "conditions": [{ "type": "Finished", "status": "True", "reason": "Succeeded", "lastTransitionTime": at }]
    }})
}

fn dynamic(value: Value) -> DynamicObject {
    // Every value above has apiVersion, kind and metadata: it always parses.
    serde_json::from_value(value).expect("a literal DynamicObject")
}

/// True when `conditions` (a status' list) holds `type_` with status True.
pub fn has_true_condition(status: Option<&Value>, type_: &str) -> bool {
    status
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .is_some_and(|list| list.iter().any(|c| c["type"] == type_ && c["status"] == "True"))
}

/// RFC 3339 in seconds, as Kubernetes writes times.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| jiff::Timestamp::now().to_string())
}
