//! `render`: the Job that a run makes from its template.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::EnvVar;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};

use super::names::{is_dns_subdomain, label_safe};
use crate::crd::{JobRun, JobTemplate};

/// Label with the (label-safe) name of the template a Job was made from.
pub const LABEL_TEMPLATE: &str = "cellbytes.io/job-template";
/// Label with the (label-safe) name of the run a Job belongs to.
pub const LABEL_RUN: &str = "cellbytes.io/job-run";
/// The standard label naming the tool that manages an object.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The value of [`LABEL_MANAGED_BY`]; the operator watches Jobs with it.
pub const MANAGER: &str = "job-template-run";
/// Annotation with the run's full name, which labels may have had to cut.
pub const ANNOTATION_RUN_NAME: &str = "cellbytes.io/job-run-name";
/// Annotation with the `metadata.generation` of the template the Job was
/// rendered from: the run keeps what it was made of, even when the template
/// changes or goes later.
pub const ANNOTATION_TEMPLATE_GENERATION: &str = "cellbytes.io/job-template-generation";
/// The operator's finalizer on every Job it creates: the Job stays until
/// the run's status records its outcome, even with `ttlSecondsAfterFinished`.
pub const FINALIZER: &str = "cellbytes.io/run-status";

/// Pod labels the Job controller sets to one Job's uid and name. Templates
/// copied from `kubectl get job -o yaml` carry them, and the API server
/// rejects a new Job whose pod template has another Job's values.
const JOB_CONTROLLER_LABELS: [&str; 4] =
    ["controller-uid", "batch.kubernetes.io/controller-uid", "job-name", "batch.kubernetes.io/job-name"];

/// Why a template and a run cannot make a Job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("JobTemplate {template} has no containers in spec.template.spec.containers")]
    NoContainers { template: String },
    #[error("spec.container {name:?} is not a container of JobTemplate {template} (its containers: {containers})")]
    UnknownContainer { template: String, name: String, containers: String },
    #[error("JobRun has no {field}; a run read from the API server always has one")]
    RunWithoutIdentity { field: &'static str },
    #[error("{kind} name {name:?} is not a valid Kubernetes name (a DNS-1123 subdomain)")]
    InvalidName { kind: &'static str, name: String },
    #[error(
        "JobTemplate {template} makes an Indexed Job, whose pods are named <job name>-<index>, and that must be a DNS label (at most 63 characters, no dots): the JobRun name {run:?} is too long or has dots; use a shorter name without dots"
    )]
    NameUnfitForIndexedJob { template: String, run: String },
}

/// Builds the Job for `run` from `template`: the template's JobSpec, with
/// the run's overrides applied (`command`, `args`, `env`, `resources` on the
/// target container, the first unless `container` names another; `labels`
/// and `annotations` on the Job and its pods; the Job's numbers), the
/// operator's labels (over the run's and the template's
/// `runPolicy.jobMetadata`), and a controller ownerReference to the run.
/// Whether the template's policy allows the overrides is [`super::admit`]'s
/// to say, before.
pub fn render(template: &JobTemplate, run: &JobRun) -> Result<Job, RenderError> {
    let run_name = run.metadata.name.as_deref().ok_or(RenderError::RunWithoutIdentity { field: "metadata.name" })?;
    let namespace =
        run.metadata.namespace.clone().ok_or(RenderError::RunWithoutIdentity { field: "metadata.namespace" })?;
    let owner = run
        .controller_owner_ref(&())
        .filter(|o| !o.uid.is_empty())
        .ok_or(RenderError::RunWithoutIdentity { field: "metadata.uid" })?;

    for (kind, name) in [("JobRun", run_name), ("JobTemplate", template.metadata.name.as_deref().unwrap_or_default())] {
        if !is_dns_subdomain(name) {
            return Err(RenderError::InvalidName { kind, name: name.to_owned() });
        }
    }
    let mut spec = template.spec.spec.0.clone();
    let job_name = label_safe(run_name);
    if spec.completion_mode.as_deref() == Some("Indexed") && !fits_indexed_hostnames(&job_name, spec.completions) {
        return Err(RenderError::NameUnfitForIndexedJob { template: template.name_any(), run: run_name.to_owned() });
    }
    let labels = operator_labels(&template.name_any(), run_name);
    let run_labels = run.spec.labels.clone().unwrap_or_default();
    let run_annotations = run.spec.annotations.clone().unwrap_or_default();
    let pod = &mut spec.template;
    let pod_meta = pod.metadata.get_or_insert_with(ObjectMeta::default);
    let pod_labels = pod_meta.labels.get_or_insert_with(BTreeMap::new);
    pod_labels.retain(|key, _| !JOB_CONTROLLER_LABELS.contains(&key.as_str()));
    pod_labels.extend(run_labels.clone());
    pod_labels.extend(labels.clone());
    if !run_annotations.is_empty() {
        pod_meta.annotations.get_or_insert_with(BTreeMap::new).extend(run_annotations.clone());
    }

    let containers = pod.spec.as_mut().map(|pod_spec| &mut pod_spec.containers);
    let container = match (containers, &run.spec.container) {
        (Some(containers), Some(name)) if !containers.is_empty() => {
            let known = containers.iter().map(|c| c.name.clone()).collect::<Vec<_>>().join(", ");
            containers.iter_mut().find(|c| &c.name == name).ok_or_else(|| RenderError::UnknownContainer {
                template: template.name_any(),
                name: name.clone(),
                containers: known,
            })?
        }
        (Some(containers), _) => {
            containers.first_mut().ok_or_else(|| RenderError::NoContainers { template: template.name_any() })?
        }
        (None, _) => return Err(RenderError::NoContainers { template: template.name_any() }),
    };
    if let Some(command) = &run.spec.command {
        container.command = non_empty(command);
    }
    if let Some(args) = &run.spec.args {
        container.args = non_empty(args);
    }
    if let Some(env) = &run.spec.env {
        merge_env(container.env.get_or_insert_with(Vec::new), env);
    }
    if let Some(resources) = &run.spec.resources {
        let target = container.resources.get_or_insert_with(Default::default);
        for (from, into) in [(&resources.requests, &mut target.requests), (&resources.limits, &mut target.limits)] {
            if let Some(from) = from {
                into.get_or_insert_with(BTreeMap::new).extend(from.clone());
            }
        }
    }
    let numbers = &run.spec;
    spec.active_deadline_seconds = numbers.active_deadline_seconds.or(spec.active_deadline_seconds);
    spec.backoff_limit = numbers.backoff_limit.or(spec.backoff_limit);
    spec.parallelism = numbers.parallelism.or(spec.parallelism);
    spec.completions = numbers.completions.or(spec.completions);

    // The template's Job metadata first, then the run's, so that the operator's keys win.
    let job_metadata = template.spec.run_policy.as_ref().and_then(|policy| policy.job_metadata.clone());
    let (mut job_labels, mut annotations) = job_metadata
        .map(|meta| (meta.labels.unwrap_or_default(), meta.annotations.unwrap_or_default()))
        .unwrap_or_default();
    job_labels.extend(run_labels);
    job_labels.extend(labels);
    annotations.extend(run_annotations);
    annotations.insert(ANNOTATION_RUN_NAME.to_owned(), run_name.to_owned());
    if let Some(generation) = template.metadata.generation {
        annotations.insert(ANNOTATION_TEMPLATE_GENERATION.to_owned(), generation.to_string());
    }
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(job_name),
            namespace: Some(namespace),
            labels: Some(job_labels),
            annotations: Some(annotations),
            owner_references: Some(vec![owner]),
            finalizers: Some(vec![FINALIZER.to_owned()]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    })
}

/// The pods of an Indexed Job get the hostname `<job name>-<index>`, which
/// must be a DNS label: no dots, at most 63 characters with the largest index.
fn fits_indexed_hostnames(job_name: &str, completions: Option<i32>) -> bool {
    let largest_index = completions.unwrap_or(1).saturating_sub(1).max(0);
    !job_name.contains('.') && job_name.len() + 1 + largest_index.to_string().len() <= 63
}

/// Merges `overrides` into `env` by name: a name `env` has is replaced in
/// place, a new one is appended, in the order of `overrides`.
fn merge_env(env: &mut Vec<EnvVar>, overrides: &[EnvVar]) {
    for var in overrides {
        match env.iter_mut().find(|e| e.name == var.name) {
            Some(existing) => *existing = var.clone(),
            None => env.push(var.clone()),
        }
    }
}

/// An empty override clears the field; the API server would drop `[]` anyway.
fn non_empty(list: &[String]) -> Option<Vec<String>> {
    (!list.is_empty()).then(|| list.to_vec())
}

fn operator_labels(template: &str, run: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_TEMPLATE.to_owned(), label_safe(template)),
        (LABEL_RUN.to_owned(), label_safe(run)),
        (LABEL_MANAGED_BY.to_owned(), MANAGER.to_owned()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_indexed_job_name_fits_while_name_dash_and_largest_index_make_at_most_63_characters() {
        let name = |len: usize| "a".repeat(len);
        assert!(fits_indexed_hostnames(&name(61), Some(10)), "61 + '-' + '9' = 63");
        assert!(!fits_indexed_hostnames(&name(61), Some(11)), "61 + '-' + '10' = 64");
        assert!(fits_indexed_hostnames(&name(60), Some(100)), "60 + '-' + '99' = 63");
        assert!(!fits_indexed_hostnames(&name(60), Some(101)), "60 + '-' + '100' = 64");
        assert!(fits_indexed_hostnames(&name(61), None), "one completion: index 0");
        assert!(!fits_indexed_hostnames(&name(62), None), "62 + '-' + '0' = 64");
        assert!(!fits_indexed_hostnames("a.b", None), "a hostname has no dots");
    }
}
