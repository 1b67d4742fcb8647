//! `JobTemplate`: a whole batch/v1 `JobSpec`, kept in Git and shared by runs.

use std::borrow::Cow;

use k8s_openapi::api::batch::v1::JobSpec;
use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A reusable Job definition: `.spec` is exactly a batch/v1 `JobSpec`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "cellbytes.io",
    version = "v1",
    kind = "JobTemplate",
    namespaced,
    shortname = "jt",
    category = "job-template-run",
    schema = "manual",
    doc = "A reusable batch/v1 Job definition; JobRuns create Jobs from it.",
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(transparent)]
pub struct JobTemplateSpec(pub JobSpec);

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
            "properties": { "spec": generator.subschema_for::<JobTemplateSpec>() }
        })
    }
}

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
