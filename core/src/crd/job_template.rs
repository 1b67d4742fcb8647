//! `JobTemplate`: a whole batch/v1 `JobSpec`, kept in Git and shared by
//! runs, and beside it what applies to the runs of the template.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::JobSpec;
use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The top-level fields of a `JobTemplate` (beside `metadata`): `.spec` is
/// exactly a batch/v1 `JobSpec`, so a Job's spec pasted in stays valid, and
/// `.runPolicy` says what applies to the template's runs.
// The derive's repeated `printcolumn(type_ = …)` arguments trip this lint.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "cellbytes.io",
    version = "v1",
    kind = "JobTemplate",
    namespaced,
    no_spec,
    shortname = "jt",
    category = "job-template-run",
    schema = "manual",
    status = "JobTemplateStatus",
    doc = "A reusable batch/v1 Job definition; JobRuns create Jobs from it.",
    printcolumn(name = "Valid", type_ = "string", json_path = ".status.conditions[?(@.type==\"Valid\")].status"),
    printcolumn(
        name = "Reason",
        type_ = "string",
        priority = 1,
        json_path = ".status.conditions[?(@.type==\"Valid\")].reason"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct JobTemplateFields {
    /// The Job's spec, as `kubectl explain job.spec` documents it.
    pub spec: JobTemplateSpec,
    /// What applies to the runs of this template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_policy: Option<RunPolicy>,
}

impl JobTemplateFields {
    /// A template of `spec` with no run policy.
    pub fn of(spec: JobSpec) -> Self {
        Self { spec: JobTemplateSpec(spec), run_policy: None }
    }
}

/// A batch/v1 `JobSpec`, with the rules a template's Job spec must keep.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
pub struct JobTemplateSpec(pub JobSpec);

/// What applies to every run of a template.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RunPolicy {
    /// Seconds after a run of this template finished (and its callback, if
    /// any, was delivered or gave up) when the run is deleted, and with it
    /// its Job. A run's own `spec.ttlSecondsAfterFinished` overrides it.
    /// Unset: runs are kept (unless a history limit deletes them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub ttl_seconds_after_finished: Option<i32>,
    /// Keep at most this many `Succeeded` runs of this template in its
    /// namespace, deleting the oldest first (CronJob's
    /// `successfulJobsHistoryLimit`). Unset: the operator's
    /// `--default-history-limit`, if any; else all are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub successful_runs_history_limit: Option<i32>,
    /// Keep at most this many `Failed` runs of this template in its
    /// namespace, deleting the oldest first (CronJob's
    /// `failedJobsHistoryLimit`). Unset: as for successful runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub failed_runs_history_limit: Option<i32>,
    /// A run whose pods have been stalled (the run's `Stalled=True`: an
    /// image that cannot be pulled, a pod that cannot be scheduled, pods the
    /// Job controller cannot create) for this many seconds without a break
    /// fails with reason `Stalled` and the last message, and its Job is
    /// suspended so its pods go. Unset: a stalled run waits for ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub stalled_deadline_seconds: Option<i32>,
    /// Labels and annotations put on the metadata of each run's Job (not
    /// only on its pods), for tools that read the Job itself: Kueue's
    /// `kueue.x-k8s.io/queue-name`, cost allocation. The operator's own
    /// labels and annotations win over keys of the same name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_metadata: Option<JobMetadata>,
    /// The fields of a JobRun's spec that a run of this template may set,
    /// from `command`, `args`, `container`, `env`, `envValueFrom` (env
    /// entries with `valueFrom`), `resources`, `labels`, `annotations`,
    /// `activeDeadlineSeconds`, `backoffLimit`, `parallelism` and
    /// `completions`. Unset: `[command, args]`. A run that sets another
    /// fails with reason `OverrideNotAllowed` before any Job exists.
    /// (`envValueFrom` lets a run read any ConfigMap or Secret key of the
    /// namespace into its pod: allow it only where run authors may read
    /// them.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "overrides_schema")]
    pub overrides: Option<Vec<String>>,
    /// The names a run's `env` may use; an entry ending in `*` admits every
    /// name with that prefix. Unset: any name (once `env` is allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128), inner(length(min = 1, max = 256)))]
    pub env_names: Option<Vec<String>>,
    /// CEL rules over the run's `spec` (as `self`), as
    /// `x-kubernetes-validations` are: a run for which a rule is not true
    /// fails with reason `ValidationFailed` and the rule's message, before
    /// any Job exists. A rule that does not compile, or whose estimated
    /// cost is beyond the limit, makes the template invalid (`Valid=False`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub validations: Option<Vec<Validation>>,
}

/// The overrides a run may set when its template's policy names none.
pub const DEFAULT_OVERRIDES: [&str; 2] = ["command", "args"];
/// Every value `runPolicy.overrides` may hold.
pub const OVERRIDES: [&str; 12] = [
    "command",
    "args",
    "container",
    "env",
    "envValueFrom",
    "resources",
    "labels",
    "annotations",
    "activeDeadlineSeconds",
    "backoffLimit",
    "parallelism",
    "completions",
];
/// `runPolicy.overrides`: a set of [`OVERRIDES`].
fn overrides_schema(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({
        "type": "array",
        "maxItems": OVERRIDES.len(),
        "items": { "type": "string", "enum": OVERRIDES },
        "x-kubernetes-list-type": "set"
    })
}

/// Most rules in `runPolicy.validations`.
pub const MAX_VALIDATIONS: usize = 16;

/// One CEL rule of a template's policy, over the run's spec as `self`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Validation {
    /// A CEL expression that is true for an acceptable run, e.g.
    /// `self.args.size() == 1 && self.args[0].matches('^[a-z0-9-]+$')`.
    #[schemars(length(min = 1, max = 4096))]
    pub rule: String,
    /// What a run that fails the rule is told (its condition's message).
    #[schemars(length(min = 1, max = 1024))]
    pub message: String,
}

/// The condition of a template that says whether runs can use it.
pub const CONDITION_VALID: &str = "Valid";

/// What the operator found of a template.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JobTemplateStatus {
    /// The template's `metadata.generation` that this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Valid`: `True` when runs can use the template; `False` with the
    /// cause (a rule that does not compile, an unknown override, no
    /// containers) otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>,
}

/// Labels and annotations for a Job's own metadata.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct JobMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 64))]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 64))]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// Fields that belong to one concrete Job, never to a template. Copies of
/// `kubectl get job -o yaml` carry them, and a Job created with them would be
/// rejected (or silently handed to another controller) much later.
const FORBIDDEN_FIELDS: [(&str, &str); 3] = [
    ("selector", "the operator labels each Job; a template must not set spec.selector"),
    ("manualSelector", "a template must not set spec.manualSelector"),
    ("managedBy", "Jobs of a template are managed by the Kubernetes Job controller; remove spec.managedBy"),
];

impl JsonSchema for JobTemplateSpec {
    fn schema_name() -> Cow<'static, str> {
        "JobTemplateSpec".into()
    }

    /// The real `JobSpec` schema plus CEL rules for the forbidden fields, so
    /// the API server rejects a typo or a copied Job at `kubectl apply` time.
    ///
    /// The pod template's descriptions are dropped: they are 330 KB of the
    /// CRD, which would then be too large for `kubectl apply` (its
    /// last-applied annotation is capped at 256 KiB). `kubectl explain
    /// job.spec.template` still documents every field.
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = JobSpec::json_schema(generator);
        if let Some(template) = schema.get_mut("properties").and_then(|p| p.get_mut("template")) {
            strip_descriptions(template);
            if let Some(pod) = template.pointer_mut("/properties/spec/properties") {
                restrict_pod_spec(pod);
            }
        }
        let rules: Vec<_> = FORBIDDEN_FIELDS
            .iter()
            .map(|(field, message)| json!({ "rule": format!("!has(self.{field})"), "message": message }))
            .collect();
        schema.insert("x-kubernetes-validations".into(), rules.into());
        schema
    }
}

impl JsonSchema for JobTemplate {
    fn schema_name() -> Cow<'static, str> {
        "JobTemplate".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "type": "object",
            "description": "A reusable batch/v1 Job definition; JobRuns create Jobs from it.",
            "required": ["spec"],
            "properties": {
                "spec": generator.subschema_for::<JobTemplateSpec>(),
                "runPolicy": generator.subschema_for::<RunPolicy>(),
                "status": generator.subschema_for::<JobTemplateStatus>()
            }
        })
    }
}

/// The pod spec rules of a Job that the PodSpec schema alone does not carry:
/// the API server checks them only when the Job is created, which for a
/// template is long after `kubectl apply` said yes.
fn restrict_pod_spec(pod: &mut serde_json::Value) {
    if let Some(containers) = pod.get_mut("containers").and_then(|c| c.as_object_mut()) {
        containers.insert("minItems".into(), 1.into());
    }
    if let Some(restart_policy) = pod.get_mut("restartPolicy").and_then(|r| r.as_object_mut()) {
        restart_policy.insert(
            "x-kubernetes-validations".into(),
            json!([{ "rule": "self != 'Always'", "message": RESTART_POLICY_MESSAGE }]),
        );
    }
}

/// The message of the CEL rule on `spec.template.spec.restartPolicy`.
const RESTART_POLICY_MESSAGE: &str = "a Job's pods cannot restart Always; use restartPolicy Never or OnFailure";

fn strip_descriptions(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.remove("description");
            map.values_mut().for_each(strip_descriptions);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_descriptions),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_spec_schema() -> serde_json::Value {
        // The CRD's own schema: kube inlines the subschemas, which the rules need.
        let crd = serde_json::to_value(<JobTemplate as kube::CustomResourceExt>::crd()).expect("serializes");
        let pointer =
            "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/template/properties/spec/properties";
        crd.pointer(pointer).cloned().expect("the pod spec's properties")
    }

    #[test]
    fn a_template_needs_at_least_one_container() {
        assert_eq!(pod_spec_schema()["containers"]["minItems"], 1);
    }

    #[test]
    fn restart_policy_always_is_refused_by_a_cel_rule() {
        let rules = &pod_spec_schema()["restartPolicy"]["x-kubernetes-validations"];
        assert_eq!(rules[0]["rule"], "self != 'Always'");
        assert_eq!(rules[0]["message"], RESTART_POLICY_MESSAGE);
    }
}
