//! `JobRun`: one execution of a `JobTemplate`, with the few fields that differ.

use k8s_openapi::api::batch::v1::JobCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The most characters `command`, `args`, env values and (twice) annotation
/// values may hold together (CEL `size`,
/// so code points). Measured on Kubernetes 1.35 with etcd's default 1.5 MiB
/// object limit (see e2e/README.md): a run fails to store from about 250 Ki
/// characters that JSON escapes to 6 bytes (`<`, control characters), a Job
/// from about 385 Ki 4-byte characters. 128 Ki keeps both at half of that or
/// less, with room for the template in the Job.
pub const MAX_OVERRIDE_CHARACTERS: usize = 128 * 1024;

/// The CEL rule that enforces [`MAX_OVERRIDE_CHARACTERS`] (the per-item
/// limits alone would allow 4 Mi characters).
///
/// Annotation values count twice: they go on the Job and on its pod template.
const OVERRIDES_SIZE_RULE: &str = "(has(self.command) ? self.command.map(c, size(c)).sum() : 0) \
     + (has(self.args) ? self.args.map(a, size(a)).sum() : 0) \
     + (has(self.env) ? self.env.map(e, has(e.value) ? size(e.value) : 0).sum() : 0) \
     + (has(self.annotations) ? 2 * self.annotations.map(k, size(self.annotations[k])).sum() : 0) <= 131072";

const OVERRIDES_SIZE_MESSAGE: &str = "command, args, env values and annotation values (counted twice: on the Job and its pods) together must be at most 131072 characters (128 Ki), so that the run and its Job fit in etcd";

/// Every field of the spec but `cancel`, which the immutability rule holds
/// equal to the old object's (a test holds this list to the schema).
const IMMUTABLE_FIELDS: [&str; 16] = [
    "templateRef",
    "container",
    "command",
    "args",
    "env",
    "resources",
    "labels",
    "annotations",
    "activeDeadlineSeconds",
    "backoffLimit",
    "parallelism",
    "completions",
    "callbackUrl",
    "callbackToken",
    "callbackTokenSecretRef",
    "ttlSecondsAfterFinished",
];

/// For each of [`IMMUTABLE_FIELDS`]: set in both and equal, or unset in
/// both. (The optional form `self.?f == oldSelf.?f` says the same, but the
/// API server estimates its cost beyond the CRD budget.)
fn immutable_rule() -> String {
    IMMUTABLE_FIELDS
        .map(|f| format!("(has(self.{f}) ? has(oldSelf.{f}) && self.{f} == oldSelf.{f} : !has(oldSelf.{f}))"))
        .join(" && ")
}

const IMMUTABLE_MESSAGE: &str = "spec is immutable except spec.cancel: a JobRun runs once; create a new JobRun instead";

/// Once true, `cancel` stays true.
const CANCEL_RULE: &str = "!oldSelf.?cancel.orValue(false) || self.?cancel.orValue(false)";

const CANCEL_MESSAGE: &str = "spec.cancel cannot be unset once true: a cancelled JobRun stays cancelled";

/// Label and annotation keys a run may not set: the operator's own, and the
/// prefixes Kubernetes reserves for itself and the Job controller (the
/// keys a Job controller writes on pods, too). Checked by CEL at admission
/// and again when a run is rendered (see [`reserved_key`]).
pub const RESERVED_KEY_PREFIXES: [&str; 4] = ["cellbytes.io/", "batch.kubernetes.io/", "kubernetes.io/", "k8s.io/"];
/// Whole keys a run may not set (besides [`RESERVED_KEY_PREFIXES`]).
pub const RESERVED_KEYS: [&str; 3] = ["app.kubernetes.io/managed-by", "controller-uid", "job-name"];

/// The first reserved key among `keys`, if any.
pub fn reserved_key<'a>(mut keys: impl Iterator<Item = &'a String>) -> Option<&'a String> {
    keys.find(|key| {
        RESERVED_KEYS.contains(&key.as_str()) || RESERVED_KEY_PREFIXES.iter().any(|prefix| key.starts_with(prefix))
    })
}

/// The CEL rule of `labels` and `annotations` that refuses reserved keys.
fn reserved_keys_rule() -> String {
    let prefixes = RESERVED_KEY_PREFIXES.map(|p| format!("k.startsWith('{p}')"));
    let keys = RESERVED_KEYS.map(|k| format!("k == '{k}'"));
    format!("self.all(k, !({}))", prefixes.into_iter().chain(keys).collect::<Vec<_>>().join(" || "))
}

fn reserved_keys_message() -> String {
    format!(
        "keys with the prefixes {} and the keys {} are reserved for the operator and Kubernetes",
        RESERVED_KEY_PREFIXES.join(", "),
        RESERVED_KEYS.join(", ")
    )
}

/// Most entries of `env`, and of `labels` and `annotations` each.
pub const MAX_ENV: usize = 64;
pub const MAX_METADATA_ENTRIES: usize = 32;
/// Most characters of one env value, one annotation value.
pub const MAX_VALUE_CHARACTERS: usize = 4096;

/// `env`: a list of core/v1 `EnvVar`, with every string bounded (the API
/// server estimates the immutability rule's cost from these bounds).
fn env_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    use schemars::JsonSchema;
    let mut item = k8s_openapi::api::core::v1::EnvVar::json_schema(generator).to_value();
    bound_strings(&mut item, 1024);
    if let Some(value) = item.pointer_mut("/properties/value").and_then(|v| v.as_object_mut()) {
        value.insert("maxLength".into(), MAX_VALUE_CHARACTERS.into());
    }
    if let Some(name) = item.pointer_mut("/properties/name").and_then(|v| v.as_object_mut()) {
        name.insert("minLength".into(), 1.into());
        name.insert("maxLength".into(), 256.into());
    }
    let schema = serde_json::json!({
        "type": "array",
        "items": item,
        "maxItems": MAX_ENV,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
    });
    schemars::Schema::try_from(schema).unwrap_or_default()
}

/// Gives every string of `schema` without a `maxLength` this one.
fn bound_strings(schema: &mut serde_json::Value, max: usize) {
    match schema {
        serde_json::Value::Object(map) => {
            let is_string = map.get("type").and_then(|t| t.as_str()) == Some("string");
            if is_string && !map.contains_key("maxLength") && !map.contains_key("enum") {
                map.insert("maxLength".into(), max.into());
            }
            map.values_mut().for_each(|v| bound_strings(v, max));
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| bound_strings(v, max)),
        _ => {}
    }
}

/// `labels` and `annotations`: string maps with bounded keys and values,
/// and no reserved key.
fn metadata_schema(value_max: usize) -> schemars::Schema {
    let schema = serde_json::json!({
        "type": "object",
        "maxProperties": MAX_METADATA_ENTRIES,
        "additionalProperties": { "type": "string", "maxLength": value_max },
        "x-kubernetes-validations": [
            { "rule": "self.all(k, size(k) <= 317)", "message": "a key is at most 317 characters (a 253-character prefix, '/', a 63-character name)" },
            { "rule": reserved_keys_rule(), "message": reserved_keys_message() }
        ],
    });
    schemars::Schema::try_from(schema).unwrap_or_default()
}

fn labels_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    metadata_schema(63)
}

fn annotations_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    metadata_schema(MAX_VALUE_CHARACTERS)
}

/// What to run: a template and what to change in it. Immutable once created
/// (but for `cancel`), because a run is one-shot: it maps to exactly one Job.
// The derive's repeated `printcolumn(type_ = …)` arguments trip this lint.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "cellbytes.io",
    version = "v1",
    kind = "JobRun",
    namespaced,
    shortname = "jr",
    category = "job-template-run",
    status = "JobRunStatus",
    doc = "One run of a JobTemplate: the operator creates exactly one Job for it and mirrors that Job's status.",
    printcolumn(name = "Template", type_ = "string", json_path = ".spec.templateRef"),
    printcolumn(name = "Job", type_ = "string", json_path = ".status.jobName"),
    printcolumn(name = "Status", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Start", type_ = "date", json_path = ".status.startTime"),
    printcolumn(name = "Completion", type_ = "date", json_path = ".status.completionTime"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new(immutable_rule()).message(IMMUTABLE_MESSAGE))]
#[x_kube(validation = Rule::new(CANCEL_RULE).message(CANCEL_MESSAGE))]
#[x_kube(validation = Rule::new(OVERRIDES_SIZE_RULE).message(OVERRIDES_SIZE_MESSAGE))]
#[serde(rename_all = "camelCase")]
pub struct JobRunSpec {
    /// Name of the JobTemplate, in the run's namespace.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub template_ref: String,

    /// The name of the container of the template's pod that `command`,
    /// `args`, `env` and `resources` apply to. Absent: the first container.
    /// Init containers are never targets. A name the template's pod does
    /// not have fails the run with reason `InvalidOverride`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub container: Option<String>,

    /// Replaces `command` of the target container. Absent keeps the
    /// template's; an empty list clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256), inner(length(max = 8192)))]
    pub command: Option<Vec<String>>,

    /// Replaces `args` of the target container. Absent keeps the
    /// template's; an empty list clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256), inner(length(max = 8192)))]
    pub args: Option<Vec<String>>,

    /// Environment variables merged by name into the target container's: a
    /// name the container has is replaced in place, a new one is appended,
    /// in this list's order. `valueFrom` only where the template's
    /// `runPolicy.overrides` has `envValueFrom`; names only as its
    /// `runPolicy.envNames` allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "env_schema")]
    pub env: Option<Vec<k8s_openapi::api::core::v1::EnvVar>>,

    /// Requests and limits merged per resource name into the target
    /// container's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<RunResources>,

    /// Labels added to the Job and its pod template (the operator's own
    /// labels win). Reserved keys are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "labels_schema")]
    pub labels: Option<std::collections::BTreeMap<String, String>>,

    /// Annotations added to the Job and its pod template (the operator's
    /// own win). Reserved keys are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "annotations_schema")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,

    /// Replaces the Job's `activeDeadlineSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub active_deadline_seconds: Option<i64>,

    /// Replaces the Job's `backoffLimit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub backoff_limit: Option<i32>,

    /// Replaces the Job's `parallelism`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub parallelism: Option<i32>,

    /// Replaces the Job's `completions`. Where the result is invalid for the
    /// template's Job, the API server's refusal fails the run
    /// (`JobRejected`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub completions: Option<i32>,

    /// Where to POST a JSON notification once the run has finished
    /// (`Succeeded` or `Failed`): delivered at least once, with retries, and
    /// recorded in `status.callback` and the `CallbackDelivered` condition.
    /// Only http and https; addresses inside the cluster, loopback,
    /// link-local (cloud metadata) and private ranges are refused unless the
    /// operator's allow-list admits them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048), regex(pattern = r"^https?://[^\s]+$"))]
    pub callback_url: Option<String>,

    /// Accepted for compatibility with the Python original: a bearer token
    /// sent as `Authorization: Bearer` with the callback. It is plain text in
    /// the run, so it earns a Warning; prefer `callbackTokenSecretRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    pub callback_token: Option<String>,

    /// The callback's bearer token, read from this key of a Secret in the
    /// run's namespace at send time and sent as `Authorization: Bearer`;
    /// never copied into any object. The Secret must carry the label
    /// `cellbytes.io/callback-token: "true"`: the operator reads it with its
    /// own rights and the run picks the URL, so only a Secret whose owner
    /// opted in is ever sent (any other ends the callback as
    /// `TokenNotAllowed`, unsent). Needs the chart value
    /// `callbacks.secretTokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_token_secret_ref: Option<CallbackTokenSecretRef>,

    /// Seconds after the run finished (and its callback, if any, was
    /// delivered or gave up) when the operator deletes it, and with it its
    /// Job. Overrides the template's `runPolicy.ttlSecondsAfterFinished`;
    /// unset, the template's applies. (The Job's own
    /// `ttlSecondsAfterFinished` deletes only the Job: the run keeps its
    /// record.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub ttl_seconds_after_finished: Option<i32>,

    /// Set to `true` to stop the run and keep its record: the operator
    /// suspends its Job (the Job controller terminates the pods with their
    /// grace period; the Job stays for inspection until the run is
    /// deleted), and the run ends `Failed` with reason `Cancelled` and the
    /// Job's last counts, and sends its callback. The one field that may
    /// change after creation, and only from unset or false to true. On a
    /// finished run it changes nothing (an Event says so).
    /// `kubectl patch jobrun NAME --type merge -p '{"spec":{"cancel":true}}'`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel: Option<bool>,
}

/// Requests and limits for the target container, per resource name.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct RunResources {
    /// Merged per resource name into the container's `resources.requests`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 16))]
    pub requests: Option<std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
    /// Merged per resource name into the container's `resources.limits`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 16))]
    pub limits: Option<std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
}

/// A key of a Secret in the run's namespace.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CallbackTokenSecretRef {
    /// Name of the Secret.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: String,
    /// Key within the Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

/// Where a run is in its life. Derived from the Job's conditions.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// No Job yet, or the Job has not started (or is suspended).
    Pending,
    /// The Job has started and has not finished.
    Running,
    /// The Job has the condition `Complete=True`.
    Succeeded,
    /// The Job has `Failed=True`, or no Job could be created for the run.
    Failed,
}

impl Phase {
    /// Succeeded and Failed never change again.
    pub fn is_final(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
        }
    }
}

/// The Job's status as seen by the run, plus the run's own fields.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JobRunStatus {
    /// Name of the Job created for this run. Set once, never changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// The run's `metadata.generation` that this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Pending, Running, Succeeded or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// For humans: why the run failed before, or instead of, its Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Copied from the Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// Copied from the Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// Copied from the Job: pods running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<i32>,
    /// Copied from the Job: pods ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<i32>,
    /// Copied from the Job: pods terminating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminating: Option<i32>,
    /// Copied from the Job: pods succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succeeded: Option<i32>,
    /// Copied from the Job: pods failed; 1 when no Job could be created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<i32>,
    /// The Job's conditions, plus `Finished` once the run has ended either
    /// way, and `Failed` when no Job could be created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<JobCondition>>,
    /// The delivery of `spec.callbackUrl`, once the run has finished; the
    /// `CallbackDelivered` condition says where it stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<CallbackStatus>,
}

/// What the operator has done to deliver the run's callback.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CallbackStatus {
    /// Attempts made so far (an attempt that could not read its token counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i32>,
    /// The HTTP status code of the last answer, if there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status_code: Option<i32>,
    /// When the last attempt was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_time: Option<Time>,
    /// When the next attempt is due, while retrying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_time: Option<Time>,
    /// When the receiver answered 2xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_time: Option<Time>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_rule_and_its_message_state_the_same_limit() {
        let limit = MAX_OVERRIDE_CHARACTERS.to_string();
        assert!(OVERRIDES_SIZE_RULE.ends_with(&format!("<= {limit}")), "{OVERRIDES_SIZE_RULE}");
        assert!(OVERRIDES_SIZE_MESSAGE.contains(&limit), "{OVERRIDES_SIZE_MESSAGE}");
    }

    #[test]
    fn the_immutability_rule_holds_every_spec_field_but_cancel() {
        let crd = serde_json::to_value(<JobRun as kube::CustomResourceExt>::crd()).expect("serializes");
        let properties = crd
            .pointer("/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties")
            .and_then(|p| p.as_object())
            .cloned()
            .expect("the spec has properties");
        let mut fields: Vec<&str> = properties.keys().map(String::as_str).filter(|f| *f != "cancel").collect();
        fields.sort_unstable();
        let mut listed = IMMUTABLE_FIELDS.to_vec();
        listed.sort_unstable();
        assert_eq!(fields, listed, "a new spec field must be held by the immutability rule (or be mutable on purpose)");
    }

    #[test]
    fn the_size_rule_is_in_the_crd() {
        let crd = serde_json::to_value(<JobRun as kube::CustomResourceExt>::crd()).expect("serializes");
        let rules = crd
            .pointer("/spec/versions/0/schema/openAPIV3Schema/properties/spec/x-kubernetes-validations")
            .and_then(|r| r.as_array())
            .cloned()
            .expect("the spec has CEL rules");
        assert!(rules.iter().any(|r| r["rule"] == OVERRIDES_SIZE_RULE && r["message"] == OVERRIDES_SIZE_MESSAGE));
    }
}
