//! The template's say over its runs: which overrides a run may set
//! (`runPolicy.overrides`, `envNames`), the CEL rules it must pass
//! (`runPolicy.validations`), and whether the template can be used at all.
//!
//! A run is checked once, when its Job is to be made, against the template
//! as it is then (the generation its Job records in
//! `cellbytes.io/job-template-generation`): a run whose Job exists is never
//! checked again, whatever the policy becomes.

use k8s_openapi::api::core::v1::EnvVar;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::failure::{Failure, FailureReason};
use super::rules::{RuleFailure, check_rules, evaluate_rules};
use crate::crd::{
    CONDITION_VALID, DEFAULT_OVERRIDES, JobRun, JobRunSpec, JobTemplate, JobTemplateStatus, OVERRIDES, reserved_key,
};

/// Why a template cannot be used by any run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("JobTemplate {template} has no containers in spec.template.spec.containers")]
    NoContainers { template: String },
    #[error("JobTemplate {template}: runPolicy.overrides has {name:?}, which is not an override (known: {known})")]
    UnknownOverride { template: String, name: String, known: String },
    #[error("JobTemplate {template}: {source}")]
    Rule { template: String, source: super::rules::RuleError },
}

impl TemplateError {
    /// The CamelCase reason of the template's `Valid=False` condition.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NoContainers { .. } => "NoContainers",
            Self::UnknownOverride { .. } => "UnknownOverride",
            Self::Rule { source: super::rules::RuleError::Compile { .. }, .. } => "RuleDoesNotCompile",
            Self::Rule { source: super::rules::RuleError::TooCostly { .. }, .. } => "RuleTooCostly",
        }
    }
}

/// Whether runs can use `template`: it has a container, its policy names
/// only known overrides, and each of its rules compiles within the cost limit.
pub fn validate_template(template: &JobTemplate) -> Result<(), TemplateError> {
    let name = || template.metadata.name.clone().unwrap_or_default();
    let has_containers = template.spec.spec.0.template.spec.as_ref().is_some_and(|pod| !pod.containers.is_empty());
    if !has_containers {
        return Err(TemplateError::NoContainers { template: name() });
    }
    let policy = template.spec.run_policy.as_ref();
    if let Some(unknown) =
        policy.and_then(|p| p.overrides.as_ref()).into_iter().flatten().find(|o| !OVERRIDES.contains(&o.as_str()))
    {
        return Err(TemplateError::UnknownOverride {
            template: name(),
            name: unknown.clone(),
            known: OVERRIDES.join(", "),
        });
    }
    let rules = policy.and_then(|p| p.validations.as_deref()).unwrap_or_default();
    check_rules(rules).map_err(|source| TemplateError::Rule { template: name(), source })
}

/// The template's status: its generation and the `Valid` condition, whose
/// transition time stays while its status and reason do.
pub fn template_status(template: &JobTemplate, now: Time) -> JobTemplateStatus {
    let generation = template.metadata.generation;
    let (status, reason, message) = match validate_template(template) {
        Ok(()) => ("True", "Valid", "runs can use this template".to_owned()),
        Err(error) => ("False", error.reason(), error.to_string()),
    };
    let previous = template
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|conditions| conditions.iter().find(|c| c.type_ == CONDITION_VALID));
    let since =
        previous.filter(|c| c.status == status && c.reason == reason).map_or(now, |c| c.last_transition_time.clone());
    JobTemplateStatus {
        observed_generation: generation,
        conditions: Some(vec![Condition {
            type_: CONDITION_VALID.to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message,
            last_transition_time: since,
            observed_generation: generation,
        }]),
    }
}

/// The overrides a run of `template` may set.
pub fn allowed_overrides(template: &JobTemplate) -> Vec<&str> {
    match template.spec.run_policy.as_ref().and_then(|p| p.overrides.as_ref()) {
        Some(overrides) => overrides.iter().map(String::as_str).collect(),
        None => DEFAULT_OVERRIDES.to_vec(),
    }
}

/// The overrides `spec` sets, by their `runPolicy.overrides` names
/// (`envValueFrom` for env entries with `valueFrom`).
pub fn overrides_set(spec: &JobRunSpec) -> Vec<&'static str> {
    let set = [
        ("container", spec.container.is_some()),
        ("command", spec.command.is_some()),
        ("args", spec.args.is_some()),
        ("env", spec.env.is_some()),
        ("envValueFrom", spec.env.iter().flatten().any(|e| e.value_from.is_some())),
        ("resources", spec.resources.is_some()),
        ("labels", spec.labels.is_some()),
        ("annotations", spec.annotations.is_some()),
        ("activeDeadlineSeconds", spec.active_deadline_seconds.is_some()),
        ("backoffLimit", spec.backoff_limit.is_some()),
        ("parallelism", spec.parallelism.is_some()),
        ("completions", spec.completions.is_some()),
    ];
    set.into_iter().filter(|(_, set)| *set).map(|(name, _)| name).collect()
}

/// Whether `run` may be made into a Job of `template`: the template is
/// valid, the run sets only overrides the policy allows (and env names it
/// admits), no reserved label or annotation key, a container the template
/// has, and it passes every rule. Pure: the operator and `render` agree.
pub fn admit(template: &JobTemplate, run: &JobRun) -> Result<(), Failure> {
    validate_template(template).map_err(|e| Failure::new(FailureReason::InvalidTemplate, e.to_string()))?;
    let spec = &run.spec;
    let allowed = allowed_overrides(template);
    let shown = if allowed.is_empty() { "none".to_owned() } else { allowed.join(", ") };
    let template_name = template.metadata.name.as_deref().unwrap_or_default();
    if let Some(field) = overrides_set(spec).into_iter().find(|o| !allowed.contains(o)) {
        let what = if field == "envValueFrom" {
            let name = spec.env.iter().flatten().find(|e| e.value_from.is_some()).map_or("", |e| e.name.as_str());
            format!("spec.env[{name:?}].valueFrom (envValueFrom)")
        } else {
            format!("spec.{field}")
        };
        return Err(Failure::new(
            FailureReason::OverrideNotAllowed,
            format!("JobTemplate {template_name} does not allow {what}; its runPolicy.overrides allows: {shown}"),
        ));
    }
    if let Some(names) = template.spec.run_policy.as_ref().and_then(|p| p.env_names.as_ref())
        && let Some(env) = spec.env.iter().flatten().find(|e| !name_admitted(&e.name, names))
    {
        return Err(Failure::new(
            FailureReason::OverrideNotAllowed,
            format!(
                "JobTemplate {template_name} does not allow the env variable {:?}; its runPolicy.envNames allows: {}",
                env.name,
                names.join(", ")
            ),
        ));
    }
    for (field, map) in [("labels", &spec.labels), ("annotations", &spec.annotations)] {
        if let Some(key) = map.as_ref().and_then(|m| reserved_key(m.keys())) {
            return Err(Failure::new(
                FailureReason::InvalidOverride,
                format!("spec.{field} has the reserved key {key:?}; the operator and Kubernetes own it"),
            ));
        }
    }
    if let Some(name) = &spec.container {
        let containers = container_names(template);
        if !containers.contains(&name.as_str()) {
            return Err(Failure::new(
                FailureReason::InvalidOverride,
                format!(
                    "spec.container {name:?} is not a container of JobTemplate {template_name} (its containers: {})",
                    containers.join(", ")
                ),
            ));
        }
    }
    if let Some(duplicate) = duplicate_env_name(spec.env.as_deref().unwrap_or_default()) {
        return Err(Failure::new(
            FailureReason::InvalidOverride,
            format!("spec.env has the name {duplicate:?} more than once"),
        ));
    }
    let rules = template.spec.run_policy.as_ref().and_then(|p| p.validations.as_deref()).unwrap_or_default();
    evaluate_rules(rules, spec).map_err(|failure| match failure {
        RuleFailure::Invalid(error) => Failure::new(FailureReason::InvalidTemplate, error.to_string()),
        RuleFailure::Failed { message, .. } => Failure::new(FailureReason::ValidationFailed, message),
        RuleFailure::Errored { index, message, error } => Failure::new(
            FailureReason::ValidationFailed,
            format!("{message} (runPolicy.validations[{index}] could not be evaluated: {error})"),
        ),
    })
}

/// `name` is one of `names`, or starts with one ending in `*`.
fn name_admitted(name: &str, names: &[String]) -> bool {
    names.iter().any(|allowed| match allowed.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == allowed,
    })
}

fn container_names(template: &JobTemplate) -> Vec<&str> {
    template.spec.spec.0.template.spec.iter().flat_map(|pod| &pod.containers).map(|c| c.name.as_str()).collect()
}

fn duplicate_env_name(env: &[EnvVar]) -> Option<&str> {
    env.iter().enumerate().find(|(i, e)| env[..*i].iter().any(|o| o.name == e.name)).map(|(_, e)| e.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_env_name_is_admitted_by_its_exact_name_or_a_prefix_ending_in_a_star() {
        let names = ["LOG_LEVEL".to_owned(), "APP_*".to_owned()];
        assert!(name_admitted("LOG_LEVEL", &names));
        assert!(name_admitted("APP_", &names));
        assert!(name_admitted("APP_MODE", &names));
        assert!(!name_admitted("LOG_LEVELS", &names), "an exact name is not a prefix");
        assert!(!name_admitted("XAPP_MODE", &names));
        assert!(!name_admitted("app_mode", &names), "names are case-sensitive");
    }

    #[test]
    fn a_duplicate_env_name_is_found_at_its_second_use() {
        let env = |names: &[&str]| -> Vec<EnvVar> {
            names.iter().map(|n| EnvVar { name: (*n).to_owned(), ..EnvVar::default() }).collect()
        };
        assert_eq!(duplicate_env_name(&env(&["A", "B", "A"])), Some("A"));
        assert_eq!(duplicate_env_name(&env(&["A", "B"])), None);
        assert_eq!(duplicate_env_name(&env(&[])), None);
    }
}
