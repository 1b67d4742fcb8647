//! One reconciliation of a JobRun: fetch inputs, render, create, write status.

use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use super::context::Context;
use super::error::ReconcileError;
use crate::crd::{JobRun, JobRunStatus, JobTemplate, Phase};
use crate::merge::{self, Failure, FailureReason};

/// The field manager of the operator's status writes.
const FIELD_MANAGER: &str = "job-template-run";

/// Brings the run's status in line with its Job, creating the Job once.
pub async fn reconcile(run: Arc<JobRun>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let _timer = ctx.metrics.reconcile_started();
    let action = reconcile_run(&run, &ctx).await?;
    ctx.backoff.reset(&ObjectRef::from_obj(run.as_ref()));
    Ok(action)
}

async fn reconcile_run(run: &JobRun, ctx: &Context) -> Result<Action, ReconcileError> {
    if run.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let Some(namespace) = run.namespace() else {
        warn!(jobrun = %run.name_any(), "JobRun without a namespace; ignoring it");
        return Ok(Action::await_change());
    };
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    let runs: Api<JobRun> = Api::namespaced(ctx.client.clone(), &namespace);

    if let Some(job) = find_job(run, &namespace, &jobs, ctx).await? {
        return write_status(run, &runs, merge::status(Some(&job), run), ctx).await;
    }
    // One-shot: a finished run keeps its status after its Job is gone (TTL).
    // A cached run that is finished is truly finished: the phase is final.
    if merge::is_finished(run) {
        return Ok(Action::await_change());
    }
    // No Job: the next step (create one, or declare it lost) cannot be undone,
    // so decide on the live run, not on a cache that may lag our own writes.
    let name = run.name_any();
    let Some(run) = runs.get_opt(&name).await.map_err(|source| ReconcileError::GetRun { name, source })? else {
        return Ok(Action::await_change());
    };
    let next = match find_job(&run, &namespace, &jobs, ctx).await? {
        Some(job) => merge::status(Some(&job), &run),
        None if merge::is_finished(&run) => return Ok(Action::await_change()),
        None if recorded_job(&run).is_some() => merge::failed(&run, &job_lost(&run), now()),
        None => match create_job(&run, &namespace, &jobs, ctx).await? {
            Ok(job) => merge::status(Some(&job), &run),
            Err(failure) => merge::failed(&run, &failure, now()),
        },
    };
    write_status(&run, &runs, next, ctx).await
}

/// Retries a transient error with per-run exponential backoff.
pub fn error_policy(run: Arc<JobRun>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    warn!(jobrun = %run.name_any(), namespace = ?run.namespace(), %error, "reconcile failed, will retry");
    ctx.metrics.reconcile_failed(error.metric_label());
    Action::requeue(ctx.backoff.next_delay(ObjectRef::from_obj(run.as_ref())))
}

fn recorded_job(run: &JobRun) -> Option<&str> {
    run.status.as_ref()?.job_name.as_deref()
}

/// The run's Job, if one exists that this run controls. The cache may lag
/// behind a create, so a run that already recorded its Job asks the API
/// server before concluding the Job is gone.
async fn find_job(
    run: &JobRun,
    namespace: &str,
    jobs: &Api<Job>,
    ctx: &Context,
) -> Result<Option<Job>, ReconcileError> {
    let name = merge::job_name_for(run);
    let cached = ctx.jobs.get(&ObjectRef::new(&name).within(namespace));
    let job = match cached {
        Some(job) => Some(Job::clone(&job)),
        None if recorded_job(run).is_some() => {
            jobs.get_opt(&name).await.map_err(|source| ReconcileError::GetJob { name: name.clone(), source })?
        }
        None => None,
    };
    Ok(job.filter(|job| merge::is_controlled_by(job, run)))
}

/// The template from the cache; on a miss, one live GET before declaring
/// it missing (the cache may not have seen a template created just now).
async fn find_template(run: &JobRun, namespace: &str, ctx: &Context) -> Result<Option<JobTemplate>, ReconcileError> {
    let name = &run.spec.template_ref;
    if let Some(template) = ctx.templates.get(&ObjectRef::new(name).within(namespace)) {
        return Ok(Some(JobTemplate::clone(&template)));
    }
    let templates: Api<JobTemplate> = Api::namespaced(ctx.client.clone(), namespace);
    templates.get_opt(name).await.map_err(|source| ReconcileError::GetTemplate { name: name.clone(), source })
}

/// Renders and creates the run's Job. `Ok(Err(_))` is a permanent failure
/// of the run; `Err(_)` a transient error to retry.
async fn create_job(
    run: &JobRun,
    namespace: &str,
    jobs: &Api<Job>,
    ctx: &Context,
) -> Result<Result<Job, Failure>, ReconcileError> {
    let Some(template) = find_template(run, namespace, ctx).await? else {
        return Ok(Err(Failure::template_not_found(&run.spec.template_ref)));
    };
    let job = match merge::render(&template, run) {
        Ok(job) => job,
        Err(error) => return Ok(Err(Failure::invalid_template(&error))),
    };
    let name = job.name_any();
    match jobs.create(&PostParams { field_manager: Some(FIELD_MANAGER.into()), ..PostParams::default() }, &job).await {
        Ok(created) => {
            ctx.metrics.job_created();
            info!(jobrun = %run.name_any(), job = %name, "created Job");
            publish(ctx, run, EventType::Normal, "JobCreated", format!("Created Job {name}")).await;
            Ok(Ok(created))
        }
        Err(kube::Error::Api(answer)) if answer.is_already_exists() => {
            let existing =
                jobs.get_opt(&name).await.map_err(|source| ReconcileError::GetJob { name: name.clone(), source })?;
            let existing = existing.ok_or_else(|| ReconcileError::ConflictVanished(name.clone()))?;
            Ok(merge::adopt(existing, run))
        }
        Err(kube::Error::Api(answer)) => match Failure::from_create_refusal(&answer) {
            Some(failure) => Ok(Err(failure)),
            None => Err(ReconcileError::CreateJob { name, source: kube::Error::Api(answer) }),
        },
        Err(source) => Err(ReconcileError::CreateJob { name, source }),
    }
}

fn job_lost(run: &JobRun) -> Failure {
    let name = recorded_job(run).unwrap_or_default();
    Failure::new(FailureReason::JobLost, format!("Job {name:?} was deleted before it finished"))
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// Writes `next` through the status subresource, only when it changed, and
/// records the events of what changed. The write is conditional on the
/// run's resourceVersion: a run read from a stale cache gets a 409, is left
/// alone, and is reconciled again when its newer version arrives.
async fn write_status(
    run: &JobRun,
    runs: &Api<JobRun>,
    next: JobRunStatus,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let previous = run.status.clone().unwrap_or_default();
    if previous == next {
        return Ok(Action::await_change());
    }
    let patch = json!({
        "apiVersion": JobRun::api_version(&()),
        "kind": JobRun::kind(&()),
        "metadata": { "resourceVersion": run.resource_version() },
        "status": next,
    });
    match runs.patch_status(&run.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch)).await {
        Ok(_) => {
            announce(run, &previous, &next, ctx).await;
            Ok(Action::await_change())
        }
        Err(kube::Error::Api(answer)) if answer.is_conflict() => Ok(Action::await_change()),
        Err(source) => Err(ReconcileError::PatchStatus { name: run.name_any(), source }),
    }
}

/// Events and metrics for a run that reached a final phase.
async fn announce(run: &JobRun, previous: &JobRunStatus, next: &JobRunStatus, ctx: &Context) {
    let Some(phase) = next.phase.filter(|p| p.is_final() && previous.phase != Some(*p)) else {
        return;
    };
    ctx.metrics.run_finished(phase.as_str());
    // `error` is set exactly when the operator itself failed the run: its
    // reason (TemplateNotFound, JobRejected, JobLost, …) is the news.
    let failed_by_operator = next
        .error
        .as_ref()
        .and_then(|_| next.conditions.iter().flatten().find(|c| c.type_ == "Failed" && c.status == "True"));
    let (type_, reason, note) = match failed_by_operator {
        Some(failed) => (
            EventType::Warning,
            failed.reason.clone().unwrap_or_else(|| "Failed".into()),
            failed.message.clone().unwrap_or_default(),
        ),
        None if phase == Phase::Succeeded => (EventType::Normal, "Finished".into(), "JobRun succeeded".into()),
        None => (EventType::Warning, "Finished".into(), "JobRun failed".into()),
    };
    publish(ctx, run, type_, &reason, note).await;
}

/// Records an Event on the run; a failure to do so is logged, not retried.
async fn publish(ctx: &Context, run: &JobRun, type_: EventType, reason: &str, note: String) {
    let event = Event { type_, reason: reason.into(), note: Some(note), action: "Reconcile".into(), secondary: None };
    if let Err(error) = ctx.recorder.publish(&event, &run.object_ref(&())).await {
        warn!(jobrun = %run.name_any(), %error, "cannot record event");
    }
}
