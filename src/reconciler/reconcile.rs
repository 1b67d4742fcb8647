//! One reconciliation of a JobRun: the caches' view of it goes to
//! [`merge::drive`], the interpreter that the fixtures replay too, which
//! decides every step; this file only carries out its effects against the
//! API server (reads, writes, Events, metrics).

use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{debug, info, warn};

use super::context::Context;
use super::deliveries::Deliveries;
use super::error::ReconcileError;
use crate::crd::{JobRun, JobRunStatus, JobTemplate};
use crate::merge::{
    self, Attempt, Cached, CallbackState, Created, Deletion, DeletionReason, Delivery, DriveError, Effects, FINALIZER,
    Live, Next, Refusal, Step, Written,
};

/// The label the Job controller puts on a Job's pods, with the Job's name.
pub(super) const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";

/// The field manager of the operator's writes.
pub const FIELD_MANAGER: &str = "job-template-run";

/// Brings the run's status in line with its Job, creating the Job once.
pub async fn reconcile(run: Arc<JobRun>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    ctx.gate.wait().await;
    if !ctx.gate.leading() {
        return Ok(Action::await_change());
    }
    let _timer = ctx.metrics.reconcile_started();
    let key = ObjectRef::from_obj(run.as_ref());
    let next = reconcile_run(run, &ctx).await?;
    let action = match next {
        Next::Change => Action::await_change(),
        Next::After(delay) => Action::requeue(delay),
        Next::Backoff => return Ok(Action::requeue(ctx.backoff.next_delay(key))),
    };
    ctx.backoff.reset(&key);
    Ok(action)
}

/// Retries a transient error with per-run exponential backoff.
pub fn error_policy(run: Arc<JobRun>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    warn!(jobrun = %run.name_any(), namespace = ?run.namespace(), %error, "reconcile failed, will retry");
    ctx.metrics.reconcile_failed(error.metric_label());
    Action::requeue(ctx.backoff.next_delay(ObjectRef::from_obj(run.as_ref())))
}

async fn reconcile_run(run: Arc<JobRun>, ctx: &Arc<Context>) -> Result<Next, ReconcileError> {
    let Some(namespace) = run.namespace() else {
        warn!(jobrun = %run.name_any(), "JobRun without a namespace; ignoring it");
        return Ok(Next::Change);
    };
    let job = ctx.jobs.get(&ObjectRef::new(&merge::job_name_for(&run)).within(&namespace));
    let other_run_exists = job.as_deref().and_then(merge::controlling_run).is_some_and(|owner| {
        ctx.runs.get(&ObjectRef::new(&owner.name).within(&namespace)).is_some_and(|other| alive(&other, owner))
    });
    let job_name = merge::job_name_for(&run);
    let of_namespace = |ns: Option<String>| ns.as_deref() == Some(namespace.as_str());
    let pods = ctx
        .pods
        .state()
        .into_iter()
        .filter(|pod| of_namespace(pod.namespace()) && pod.labels().get(JOB_NAME_LABEL) == Some(&job_name))
        .collect();
    let failed_creates = ctx
        .events
        .state()
        .into_iter()
        .filter(|e| of_namespace(e.namespace()) && e.involved_object.name.as_deref() == Some(job_name.as_str()))
        .collect();
    let cached = Cached {
        template: ctx.templates.get(&ObjectRef::new(&run.spec.template_ref).within(&namespace)),
        job,
        run,
        other_run_exists,
        attempt: None,
        pods,
        failed_creates,
    };
    drive(ctx, &namespace, cached).await
}

/// Records a callback attempt on `run` (read live by the delivery worker)
/// through the same driver and status path as every reconcile. False: the
/// run changed meanwhile (409), read it again.
pub async fn record(
    ctx: &Arc<Context>,
    run: JobRun,
    job: Option<Arc<Job>>,
    attempt: Attempt,
) -> Result<bool, ReconcileError> {
    let namespace = run.namespace().unwrap_or_default();
    let cached = Cached {
        run: Arc::new(run),
        job,
        template: None,
        other_run_exists: false,
        attempt: Some(attempt),
        pods: Vec::new(),
        failed_creates: Vec::new(),
    };
    // A finished run's outcome write is the only step that backs off: on a 409.
    Ok(drive(ctx, &namespace, cached).await? != Next::Backoff)
}

async fn drive(ctx: &Arc<Context>, namespace: &str, cached: Cached) -> Result<Next, ReconcileError> {
    let mut effects = Kube {
        ctx: ctx.clone(),
        runs: Api::namespaced(ctx.client.clone(), namespace),
        jobs: Api::namespaced(ctx.client.clone(), namespace),
        templates: Api::namespaced(ctx.client.clone(), namespace),
    };
    merge::drive(&mut effects, cached, &ctx.settings).await.map_err(|error| match error {
        DriveError::Effect(error) => error,
        DriveError::TooManySteps(name) => ReconcileError::TooManySteps(name),
        DriveError::NoJobToPatch(name) => ReconcileError::NoJobToPatch(name),
    })
}

/// The run `owner` names is this very object, and is not being deleted.
fn alive(run: &JobRun, owner: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference) -> bool {
    run.uid().as_ref() == Some(&owner.uid) && run.meta().deletion_timestamp.is_none()
}

/// The effects of steps, against the API server: the namespaced APIs one
/// reconcile uses.
struct Kube {
    ctx: Arc<Context>,
    runs: Api<JobRun>,
    jobs: Api<Job>,
    templates: Api<JobTemplate>,
}

impl Effects for Kube {
    type Error = ReconcileError;

    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn decided(&mut self, step: &Step) {
        tracing::trace!(?step, "step");
    }

    async fn read_live(&mut self, run: &JobRun) -> Result<Option<Live>, ReconcileError> {
        let name = run.name_any();
        let Some(run) = self.runs.get_opt(&name).await.map_err(|source| ReconcileError::GetRun { name, source })?
        else {
            return Ok(None);
        };
        let job_name = merge::job_name_for(&run);
        let job = self
            .jobs
            .get_opt(&job_name)
            .await
            .map_err(|source| ReconcileError::GetJob { name: job_name.clone(), source })?;
        let template_name = &run.spec.template_ref;
        let template = self
            .templates
            .get_opt(template_name)
            .await
            .map_err(|source| ReconcileError::GetTemplate { name: template_name.clone(), source })?;
        // A Job of another run: whether that run still exists is read live
        // too, since `JobNameConflict` is final.
        let other =
            job.as_ref().and_then(merge::controlling_run).filter(|owner| Some(&owner.uid) != run.uid().as_ref());
        let other_run_exists = match other {
            Some(owner) => {
                let name = owner.name.clone();
                let other = self.runs.get_opt(&name).await.map_err(|source| ReconcileError::GetRun { name, source })?;
                other.is_some_and(|other| alive(&other, owner))
            }
            None => false,
        };
        Ok(Some(Live { run, job, template, other_run_exists }))
    }

    async fn create(&mut self, run: &JobRun, job: &Job) -> Result<Created, ReconcileError> {
        create_job(run, job, &self.jobs, &self.ctx).await
    }

    async fn set_finalizer(&mut self, job: &Job, protect: bool) -> Result<(), ReconcileError> {
        set_finalizer(job, &self.jobs, protect).await
    }

    fn history(&mut self, run: &JobRun) -> Vec<Arc<JobRun>> {
        let finished = self.ctx.by_template.finished_of(run.namespace(), run.spec.template_ref.clone());
        finished.iter().filter_map(|reference| self.ctx.runs.get(reference)).collect()
    }

    async fn delete(&mut self, run: &JobRun, deletion: &Deletion) -> Result<(), ReconcileError> {
        delete_run(run, deletion, &self.runs, &self.ctx).await
    }

    fn wake(&mut self, run: &JobRun, names: &[String]) {
        let namespace = run.namespace().unwrap_or_default();
        for name in names {
            let _ = self.ctx.wakes.unbounded_send(ObjectRef::new(name).within(&namespace));
        }
    }

    async fn suspend(&mut self, job: &Job) -> Result<(), ReconcileError> {
        suspend(job, &self.jobs).await
    }

    async fn write_status(
        &mut self,
        run: &JobRun,
        previous: &JobRunStatus,
        next: JobRunStatus,
    ) -> Result<Written, ReconcileError> {
        write_status(run, previous, next, &self.runs, &self.ctx).await
    }

    async fn hand_over(&mut self, run: &JobRun, delivery: Delivery) -> Result<(), ReconcileError> {
        Deliveries::hand_over(&self.ctx, run, delivery);
        Ok(())
    }
}

/// The refusal in a `kube::Error`, for the table to judge.
fn refusal(error: &kube::Error) -> Refusal {
    match error {
        kube::Error::Api(status) => {
            Refusal { code: status.code, reason: status.reason.clone(), message: status.message.clone() }
        }
        other => Refusal { code: 0, reason: String::new(), message: other.to_string() },
    }
}

async fn create_job(run: &JobRun, job: &Job, jobs: &Api<Job>, ctx: &Context) -> Result<Created, ReconcileError> {
    let name = job.name_any();
    match jobs.create(&PostParams { field_manager: Some(FIELD_MANAGER.into()), ..PostParams::default() }, job).await {
        Ok(created) => {
            ctx.metrics.job_created();
            info!(jobrun = %run.name_any(), job = %name, "created Job");
            publish(ctx, run, EventType::Normal, "JobCreated", &format!("Created Job {name}")).await;
            Ok(Created::Job(created))
        }
        Err(kube::Error::Api(answer)) if answer.is_already_exists() => {
            let existing =
                jobs.get_opt(&name).await.map_err(|source| ReconcileError::GetJob { name: name.clone(), source })?;
            existing.map(Created::Exists).ok_or(ReconcileError::ConflictVanished(name))
        }
        Err(error) => {
            let refusal = refusal(&error);
            warn!(jobrun = %run.name_any(), job = %name, code = refusal.code, %error, "Job create refused");
            Ok(Created::Refused(refusal))
        }
    }
}

/// Adds (`protect`) or removes the operator's finalizer. The patch carries
/// the Job's resourceVersion, so it never overwrites a finalizer someone
/// else added meanwhile; a 409 is retried with the newer Job.
pub async fn set_finalizer(job: &Job, jobs: &Api<Job>, protect: bool) -> Result<(), ReconcileError> {
    let mut finalizers: Vec<String> = job.finalizers().iter().filter(|f| *f != FINALIZER).cloned().collect();
    if protect {
        finalizers.push(FINALIZER.to_owned());
    }
    let patch = json!({ "metadata": { "resourceVersion": job.resource_version(), "finalizers": finalizers } });
    let name = job.name_any();
    match jobs.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => {
            info!(job = %name, protect, "set the Job's finalizer");
            Ok(())
        }
        // The Job is already gone: nothing to hold or let go.
        Err(kube::Error::Api(answer)) if answer.code == 404 => Ok(()),
        Err(source) => Err(ReconcileError::PatchJob { name, source }),
    }
}

/// Deletes a finished run (its Job goes with it, through its
/// ownerReference), on the condition that it is still the run of this uid;
/// a history deletion leaves an Event on the template.
async fn delete_run(
    run: &JobRun,
    deletion: &Deletion,
    runs: &Api<JobRun>,
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let name = run.name_any();
    let params = DeleteParams {
        preconditions: Some(Preconditions { uid: run.uid(), resource_version: None }),
        ..DeleteParams::background()
    };
    match runs.delete(&name, &params).await {
        Ok(_) => {
            ctx.metrics.run_deleted(deletion.reason.as_str());
            info!(jobrun = %name, reason = deletion.reason.as_str(), message = %deletion.message, "deleted a finished JobRun");
            if deletion.reason == DeletionReason::History {
                let template = ObjectReference {
                    api_version: Some(JobTemplate::api_version(&()).into_owned()),
                    kind: Some(JobTemplate::kind(&()).into_owned()),
                    name: Some(run.spec.template_ref.clone()),
                    namespace: run.namespace(),
                    ..ObjectReference::default()
                };
                let event = Event {
                    type_: EventType::Normal,
                    reason: "RunDeleted".into(),
                    note: Some(merge::cut_note(&format!("deleted JobRun {name}: {}", deletion.message))),
                    action: "Retention".into(),
                    secondary: Some(run.object_ref(&())),
                };
                if let Err(error) = ctx.recorder.publish(&event, &template).await {
                    warn!(jobtemplate = %run.spec.template_ref, %error, "cannot record event");
                }
            }
            Ok(())
        }
        // Gone already, or another run of that name now: nothing to delete.
        Err(kube::Error::Api(answer)) if answer.code == 404 || answer.code == 409 => Ok(()),
        Err(source) => Err(ReconcileError::DeleteRun { name, source }),
    }
}

/// Suspends a cancelled run's Job: the Job controller terminates its pods.
async fn suspend(job: &Job, jobs: &Api<Job>) -> Result<(), ReconcileError> {
    let patch = json!({ "spec": { "suspend": true } });
    let name = job.name_any();
    let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..PatchParams::default() };
    match jobs.patch(&name, &params, &Patch::Merge(&patch)).await {
        Ok(_) => {
            info!(job = %name, "suspended the Job of a cancelled run");
            Ok(())
        }
        // Gone meanwhile: its pods are gone too; the next reconcile sees it.
        Err(kube::Error::Api(answer)) if answer.code == 404 => Ok(()),
        Err(source) => Err(ReconcileError::PatchJob { name, source }),
    }
}

/// Writes `next` through the status subresource (the driver calls this only
/// when it changed), and records the events of what changed. The write
/// replaces the whole status (nothing another writer left behind survives)
/// and is conditional on the run's resourceVersion: a run read from a stale
/// cache gets a 409, is left alone, and is reconciled again when its newer
/// version arrives.
async fn write_status(
    run: &JobRun,
    previous: &JobRunStatus,
    next: JobRunStatus,
    runs: &Api<JobRun>,
    ctx: &Context,
) -> Result<Written, ReconcileError> {
    let name = run.name_any();
    let body = JobRun {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: run.namespace(),
            resource_version: run.resource_version(),
            ..ObjectMeta::default()
        },
        spec: run.spec.clone(),
        status: Some(next.clone()),
    };
    let put = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..PostParams::default() };
    match runs.replace_status(&name, &put, &body).await {
        Ok(_) => {
            if let Some(phase) = next.phase.filter(|p| p.is_final() && previous.phase != Some(*p)) {
                ctx.metrics.run_finished(phase.as_str());
            }
            callback_metrics(previous, &next, ctx);
            for note in merge::notes(previous, &next) {
                let type_ = if note.warning { EventType::Warning } else { EventType::Normal };
                publish(ctx, run, type_, &note.reason, &note.note).await;
            }
            Ok(Written::Done)
        }
        // The run changed since it was read: its newer version's event
        // reconciles it again; the backoff is a safety net.
        Err(kube::Error::Api(answer)) if answer.is_conflict() => {
            ctx.metrics.status_conflict();
            debug!(jobrun = %name, "status write met a newer run (409); coming back");
            Ok(Written::Conflict)
        }
        Err(source) => Err(ReconcileError::WriteStatus { name, source }),
    }
}

/// Counts a callback's outcome once it ends, and for a delivered one its
/// latency from the run's finish.
fn callback_metrics(previous: &JobRunStatus, next: &JobRunStatus, ctx: &Context) {
    let (Some(state), before) = (merge::callback_state_of(next), merge::callback_state_of(previous)) else {
        return;
    };
    if !state.is_final() || before == Some(state) {
        return;
    }
    ctx.metrics.callback_outcome(state.as_str());
    if state == CallbackState::Delivered {
        let finished = next.conditions.iter().flatten().find(|c| c.type_ == merge::CONDITION_FINISHED);
        if let Some(at) = finished.and_then(|c| c.last_transition_time.as_ref()) {
            let latency = at.0.duration_until(Timestamp::now()).as_secs_f64().max(0.0);
            ctx.metrics.callback_delivered(latency);
        }
    }
}

/// Records an Event on the run; a failure to do so is logged, not retried.
async fn publish(ctx: &Context, run: &JobRun, type_: EventType, reason: &str, note: &str) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(merge::cut_note(note)),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, &run.object_ref(&())).await {
        warn!(jobrun = %run.name_any(), %error, "cannot record event");
    }
}
