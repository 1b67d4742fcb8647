//! Each JobTemplate's status: `observedGeneration` and the `Valid`
//! condition that [`merge::template_status`] decides. Written only when it
//! differs from what the template has, through the status subresource,
//! while this replica leads. Runs never wait for it: each checks its
//! template itself ([`merge::admit`]).

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use serde_json::json;
use tracing::{debug, info, warn};

use super::context::{Backoff, Context};
use super::error::ReconcileError;
use super::reconcile::FIELD_MANAGER;
use crate::crd::{JobTemplate, JobTemplateStatus};
use crate::merge;

/// What the template status controller shares: the run controller's
/// context (client, gate, metrics) and a backoff of its own.
pub struct Templates {
    pub ctx: Arc<Context>,
    backoff: Backoff<JobTemplate>,
}

impl Templates {
    pub fn new(ctx: Arc<Context>) -> Self {
        Self { ctx, backoff: Backoff::default() }
    }

    /// Forgets a template that is gone, as the controller names it (a retry
    /// of a deleted template finds no object).
    pub fn forget_gone(&self, gone: &ObjectRef<DynamicObject>) {
        self.backoff.forget_gone(gone);
    }
}

/// The status to write, or `None` when the template already has it (then
/// no API call is made).
fn wanted(template: &JobTemplate, now: Timestamp) -> Option<JobTemplateStatus> {
    let status = merge::template_status(template, Time(now));
    (template.status.as_ref() != Some(&status)).then_some(status)
}

/// Writes `template`'s status when it is not what the core decides.
pub async fn write_status(template: Arc<JobTemplate>, templates: Arc<Templates>) -> Result<Action, ReconcileError> {
    let ctx = &templates.ctx;
    ctx.gate.wait().await;
    if !ctx.gate.leading() {
        return Ok(Action::await_change());
    }
    let key = ObjectRef::from_obj(template.as_ref());
    let Some(status) = wanted(&template, Timestamp::now()) else {
        templates.backoff.reset(&key);
        return Ok(Action::await_change());
    };
    let name = template.name_any();
    let namespace = template.namespace().unwrap_or_default();
    let api: Api<JobTemplate> = Api::namespaced(ctx.client.clone(), &namespace);
    let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..PatchParams::default() };
    // Conditional on the resourceVersion read: the status of a generation
    // the cache has not seen yet is written on that generation's own event.
    let patch = json!({ "metadata": { "resourceVersion": template.resource_version() }, "status": status });
    match api.patch_status(&name, &params, &Patch::Merge(&patch)).await {
        Ok(_) => {}
        Err(kube::Error::Api(answer)) if answer.is_conflict() || answer.is_not_found() => {
            debug!(template = %name, %namespace, code = answer.code, "template changed or gone meanwhile; its event follows");
            templates.backoff.reset(&key);
            return Ok(Action::await_change());
        }
        Err(source) => return Err(ReconcileError::WriteTemplateStatus { name, source }),
    }
    templates.backoff.reset(&key);
    let valid = status.conditions.iter().flatten().next();
    info!(
        template = %name,
        %namespace,
        generation = ?status.observed_generation,
        valid = valid.map(|c| c.status.as_str()),
        reason = valid.map(|c| c.reason.as_str()),
        "template status written"
    );
    Ok(Action::await_change())
}

/// Retries a failed write with per-template exponential backoff.
pub fn error_policy(template: Arc<JobTemplate>, error: &ReconcileError, templates: Arc<Templates>) -> Action {
    let delay = templates.backoff.next_delay(ObjectRef::from_obj(template.as_ref()));
    warn!(
        template = %template.name_any(),
        namespace = ?template.namespace(),
        %error,
        retry_in = ?delay,
        "cannot write the template's status, will retry"
    );
    templates.ctx.metrics.reconcile_failed(error.metric_label());
    Action::requeue(delay)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::crd::{JobTemplateFields, RunPolicy};
    use k8s_openapi::api::batch::v1::JobSpec;

    fn template() -> JobTemplate {
        let spec: JobSpec = serde_json::from_value(json!({
            "template": { "spec": { "containers": [{ "name": "main", "image": "busybox" }], "restartPolicy": "Never" } }
        }))
        .expect("a JobSpec");
        let mut template = JobTemplate::new("t", JobTemplateFields::of(spec));
        template.metadata.namespace = Some("ns".into());
        template.metadata.generation = Some(1);
        template
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).expect("a time")
    }

    #[test]
    fn a_template_whose_status_is_right_needs_no_write_and_a_new_generation_does() {
        let mut template = template();
        let first = wanted(&template, at(0)).expect("no status yet: a write");
        template.status = Some(first.clone());
        assert_eq!(wanted(&template, at(60)), None, "the same status later: no write");

        template.metadata.generation = Some(2);
        template.spec.run_policy = Some(RunPolicy { overrides: Some(vec!["image".into()]), ..RunPolicy::default() });
        let second = wanted(&template, at(120)).expect("a new generation: a write");
        assert_eq!(second.observed_generation, Some(2));
        let valid = second.conditions.iter().flatten().next().expect("Valid");
        assert_eq!((valid.status.as_str(), valid.reason.as_str()), ("False", "UnknownOverride"));
        assert_eq!(valid.last_transition_time, Time(at(120)), "a new status: a new transition time");
    }

    #[test]
    fn a_changed_message_with_the_same_reason_keeps_the_transition_time() {
        let mut template = template();
        template.spec.run_policy = Some(RunPolicy { overrides: Some(vec!["image".into()]), ..RunPolicy::default() });
        template.status = wanted(&template, at(0));
        template.metadata.generation = Some(2);
        template.spec.run_policy = Some(RunPolicy { overrides: Some(vec!["volumes".into()]), ..RunPolicy::default() });
        let status = wanted(&template, at(30)).expect("a new message and generation: a write");
        let valid = status.conditions.iter().flatten().next().expect("Valid");
        assert!(valid.message.contains("volumes"), "{}", valid.message);
        assert_eq!(valid.last_transition_time, Time(at(0)));
    }

    #[test]
    fn failures_back_off_per_template_and_a_success_or_a_deletion_forgets_them() {
        let (backoff, start) = (Backoff::default(), Instant::now());
        let one = ObjectRef::<JobTemplate>::new("one").within("ns");
        let mut now = start;
        let delays: Vec<u64> = (0..6)
            .map(|_| {
                let delay = backoff.next_delay_at(one.clone(), now);
                now += delay;
                delay.as_secs()
            })
            .collect();
        assert_eq!(delays, [1, 1, 2, 4, 8, 16]);
        assert_eq!(backoff.next_delay_at(one.clone(), start + Duration::from_secs(3600)), Backoff::<JobTemplate>::MAX);
        backoff.reset(&one);
        assert_eq!(backoff.failing(), 0);

        backoff.next_delay(ObjectRef::<JobTemplate>::new("gone").within("ns"));
        backoff.forget_gone(&ObjectRef::<JobTemplate>::new("gone").within("elsewhere").erase());
        assert_eq!(backoff.failing(), 1, "a template of another namespace is another template");
        backoff.forget_gone(&ObjectRef::<JobTemplate>::new("gone").within("ns").erase());
        assert_eq!(backoff.failing(), 0);
    }
}
