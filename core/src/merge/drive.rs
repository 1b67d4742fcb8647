//! The one interpreter of [`Step`]s, generic over its effects, in the
//! manner of sans-IO protocol crates: [`decide`] says what to do, [`drive`]
//! executes one reconcile of a run through an [`Effects`] and says when to
//! come back. The operator implements `Effects` with the API server
//! (`reconciler/reconcile.rs`); the fixture harness implements it with an
//! in-memory world (`fixtures/world.rs`). So the loop the fixtures replay is
//! the operator's own: the order of its effects, when a reconcile ends, and
//! what it skips.
//!
//! | step         | effect                               | then                              |
//! |--------------|--------------------------------------|-----------------------------------|
//! | `Done`       | none                                 | end: on change                    |
//! | `Wait(n)`    | none                                 | end: `n`                          |
//! | `Write(s,n)` | write `s` (skipped when unchanged)   | end: `n`; a 409 ends with backoff |
//! | `Protect`    | add the finalizer to the run's Job   | end: on change (the Job's event)  |
//! | `Release`    | remove it                            | end: on change (the Job's event)  |
//! | `Suspend`    | set `suspend: true` on the run's Job | end: on change (the Job's event)  |
//! | `ReadLive`   | read run, Job, template (other run)  | decide again; a gone run ends     |
//! | `Create(j)`  | create `j`                           | created: end, after the resync (the Job's event comes first); exists or refused: decide again |
//! | `Deliver(d)` | hand `d` over to the delivery worker | end: after the resync (the outcome comes back as a reconcile of its own) |
//! | `ReadHistory`| read the template's runs (cache)     | decide again                      |
//! | `Delete(d)`  | delete the run (uid precondition)    | end: on change (it is gone)       |
//! | `Wake(r, n)` | queue reconciles of runs `r`         | end: `n`                          |
//!
//! A callback attempt is never made inside a reconcile: the worker makes
//! it, beside the reconciles, and records its outcome by driving a
//! reconcile that starts from the live run and the attempt ([`Cached::attempt`]).

use std::future::Future;
use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::jiff::Timestamp;

use super::callback::{Attempt, Delivery};
use super::decide::{Next, Observed, Settings, Step, decide, resync_delay};
use super::failure::Refusal;
use super::retention::Deletion;
use super::status::job_name_for;
use crate::crd::{JobRun, JobRunStatus, JobTemplate};

/// More steps than one reconcile takes (read live, create or deliver, then
/// one write; a create that meets another's Job may read live again).
const MAX_STEPS: usize = 5;

/// What one reconcile starts from: the run and what the caches hold.
#[derive(Clone, Debug)]
pub struct Cached {
    pub run: Arc<JobRun>,
    /// The Job that has the run's Job name, whoever owns it.
    pub job: Option<Arc<Job>>,
    pub template: Option<Arc<JobTemplate>>,
    /// For a `job` controlled by another JobRun: whether that run exists
    /// (and is not being deleted), as the cache shows it.
    pub other_run_exists: bool,
    /// A callback attempt just made for this run, whose outcome this
    /// reconcile records (the delivery worker's reconcile).
    pub attempt: Option<Attempt>,
    /// The pods of the run's Job (its `batch.kubernetes.io/job-name`).
    pub pods: Vec<Arc<Pod>>,
    /// The Job controller's `FailedCreate` Events of the run's Job.
    pub failed_creates: Vec<Arc<Event>>,
}

/// What the API server holds now, read for a decision that cannot be undone.
#[derive(Clone, Debug)]
pub struct Live {
    pub run: JobRun,
    pub job: Option<Job>,
    pub template: Option<JobTemplate>,
    /// For a `job` controlled by another JobRun: whether that run exists
    /// (and is not being deleted), read live too.
    pub other_run_exists: bool,
}

/// The API server's answer to a Job create.
#[derive(Clone, Debug)]
pub enum Created {
    /// The Job, as created.
    Job(Job),
    /// The name was taken: the Job there now, read live.
    Exists(Job),
    /// Refused: the answer, for the table to judge.
    Refused(Refusal),
}

/// What a status write came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    Done,
    /// Refused with 409: the run changed since it was read.
    Conflict,
}

/// The effects of steps, as the operator (the API server) or the fixture
/// harness (an in-memory world) carries them out. Every method is one
/// effect; none decides anything.
pub trait Effects {
    type Error;

    /// The clock of this reconcile's decisions.
    fn now(&self) -> Timestamp;

    /// Called with each step before it is executed (the fixtures record it;
    /// the operator logs it).
    fn decided(&mut self, _step: &Step) {}

    /// Reads the run, its Job and its template live; `None` when the run is gone.
    fn read_live(&mut self, run: &JobRun) -> impl Future<Output = Result<Option<Live>, Self::Error>> + Send;

    fn create(&mut self, run: &JobRun, job: &Job) -> impl Future<Output = Result<Created, Self::Error>> + Send;

    /// Adds (`protect`) or removes the operator's finalizer on `job`.
    fn set_finalizer(&mut self, job: &Job, protect: bool) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The runs of the run's namespace that name its template, as the cache
    /// holds them (for its history limit).
    fn history(&mut self, run: &JobRun) -> Vec<Arc<JobRun>>;

    /// Deletes the run, on the condition that it is still the one of this
    /// uid; a run already gone is no error.
    fn delete(&mut self, run: &JobRun, deletion: &Deletion) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Queues reconciles of these runs of the run's namespace.
    fn wake(&mut self, run: &JobRun, names: &[String]);

    /// Sets `suspend: true` on `job` (a cancelled run's).
    fn suspend(&mut self, job: &Job) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Replaces the run's status (conditional on its resourceVersion);
    /// only called when `next` differs from `previous`.
    fn write_status(
        &mut self,
        run: &JobRun,
        previous: &JobRunStatus,
        next: JobRunStatus,
    ) -> impl Future<Output = Result<Written, Self::Error>> + Send;

    /// Hands one callback attempt over to the delivery worker, which makes
    /// it beside the reconciles and records its outcome through [`drive`]
    /// with [`Cached::attempt`].
    fn hand_over(&mut self, run: &JobRun, delivery: Delivery) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Why a reconcile stopped without a decision.
#[derive(Debug, thiserror::Error)]
pub enum DriveError<E> {
    #[error(transparent)]
    Effect(E),
    #[error("JobRun {0} needed more steps than one reconcile takes")]
    TooManySteps(String),
    #[error("Job {0} should be patched (finalizer or suspend), but no Job was seen")]
    NoJobToPatch(String),
}

/// One reconcile of a run: decides and executes steps until one ends the
/// reconcile, and says when to come back.
pub async fn drive<E: Effects>(
    effects: &mut E,
    cached: Cached,
    settings: &Settings,
) -> Result<Next, DriveError<E::Error>> {
    let mut seen = Seen {
        run: cached.run,
        job: cached.job,
        template: cached.template,
        other_run_exists: cached.other_run_exists,
        live: false,
        refusal: None,
        attempt: cached.attempt,
        history: None,
        pods: cached.pods,
        failed_creates: cached.failed_creates,
    };
    for _ in 0..MAX_STEPS {
        let observed = Observed {
            run: &seen.run,
            job: seen.job.as_deref(),
            template: seen.template.as_deref(),
            live: seen.live,
            refusal: seen.refusal.as_ref(),
            other_run_exists: seen.other_run_exists,
            attempt: seen.attempt.as_ref(),
            history: seen.history.as_deref(),
            pods: &seen.pods,
            failed_creates: &seen.failed_creates,
            now: effects.now(),
        };
        let step = decide(&observed, settings);
        effects.decided(&step);
        match step {
            Step::Done => return Ok(Next::Change),
            Step::Wait(next) => return Ok(next),
            Step::Write(status, next) => {
                let previous = seen.run.status.clone().unwrap_or_default();
                if previous == *status {
                    return Ok(next);
                }
                return Ok(
                    match effects.write_status(&seen.run, &previous, *status).await.map_err(DriveError::Effect)? {
                        Written::Done => next,
                        // The newer run's event comes back; the backoff is a safety net.
                        Written::Conflict => Next::Backoff,
                    },
                );
            }
            step @ (Step::Protect | Step::Release) => {
                let job = seen.job.as_deref().ok_or_else(|| DriveError::NoJobToPatch(job_name_for(&seen.run)))?;
                effects.set_finalizer(job, step == Step::Protect).await.map_err(DriveError::Effect)?;
                return Ok(Next::Change);
            }
            Step::ReadHistory => seen.history = Some(effects.history(&seen.run)),
            Step::Delete(deletion) => {
                effects.delete(&seen.run, &deletion).await.map_err(DriveError::Effect)?;
                return Ok(Next::Change);
            }
            Step::Wake(names, next) => {
                effects.wake(&seen.run, &names);
                return Ok(next);
            }
            Step::Suspend => {
                let job = seen.job.as_deref().ok_or_else(|| DriveError::NoJobToPatch(job_name_for(&seen.run)))?;
                effects.suspend(job).await.map_err(DriveError::Effect)?;
                return Ok(Next::Change);
            }
            Step::ReadLive => {
                let Some(live) = effects.read_live(&seen.run).await.map_err(DriveError::Effect)? else {
                    return Ok(Next::Change);
                };
                // The pods and Events stay the cache's: no decision that
                // cannot be undone rests on them alone.
                seen = Seen {
                    run: Arc::new(live.run),
                    job: live.job.map(Arc::new),
                    template: live.template.map(Arc::new),
                    other_run_exists: live.other_run_exists,
                    live: true,
                    refusal: None,
                    attempt: None,
                    history: None,
                    pods: std::mem::take(&mut seen.pods),
                    failed_creates: std::mem::take(&mut seen.failed_creates),
                };
            }
            Step::Deliver(delivery) => {
                effects.hand_over(&seen.run, *delivery).await.map_err(DriveError::Effect)?;
                return Ok(Next::After(resync_delay(&seen.run, settings)));
            }
            Step::Create(job) => match effects.create(&seen.run, &job).await.map_err(DriveError::Effect)? {
                // The created Job's watch event wakes the run to mirror it;
                // the resync is a safety net should that event be missed.
                Created::Job(_) => return Ok(Next::After(resync_delay(&seen.run, settings))),
                // Only the Job was read live: a final decision about it
                // (`JobNameConflict`) reads the rest live first.
                Created::Exists(existing) => seen.job = Some(Arc::new(existing)),
                Created::Refused(refusal) => seen.refusal = Some(refusal),
            },
        }
    }
    Err(DriveError::TooManySteps(seen.run.metadata.name.clone().unwrap_or_default()))
}

/// What this reconcile has seen so far; live reads replace it.
struct Seen {
    run: Arc<JobRun>,
    job: Option<Arc<Job>>,
    template: Option<Arc<JobTemplate>>,
    other_run_exists: bool,
    live: bool,
    refusal: Option<Refusal>,
    attempt: Option<Attempt>,
    history: Option<Vec<Arc<JobRun>>>,
    pods: Vec<Arc<Pod>>,
    failed_creates: Vec<Arc<Event>>,
}
