//! The reconciler's decisions, written once: what it saw in, the next step
//! out. No client, no clock (`now` comes in), no randomness. [`super::drive`]
//! executes the steps, for the reconciler and for the fixtures alike.
//!
//! | the run and what exists                          | step                                            |
//! |--------------------------------------------------|-------------------------------------------------|
//! | failed `Stalled`, its Job unfinished, running    | suspend the Job (its pods go)                   |
//! | finished, with a callback to deliver             | deliver it (see `callback.rs`), Job kept        |
//! | finished, cancelled after it finished            | record the generation once (an Event says so)   |
//! | finished, or being deleted, its Job held         | release its Job's finalizer                     |
//! | finished, past its TTL                           | delete the run (its Job goes with it)           |
//! | finished, beyond its template's history limit    | delete the run                                  |
//! | finished, the newest of a history over the limit | wake the runs beyond it (they delete themselves)|
//! | finished, with a TTL to come                     | wait for it                                     |
//! | finished, or being deleted                       | nothing, ever                                   |
//! | cancelled, its Job unfinished and not suspended  | suspend the Job (its pods are terminated)       |
//! | cancelled, its suspended Job's pods still there  | mirror it, `Finished=False/Cancelling`          |
//! | cancelled, its Job's pods gone (or no Job, live) | `Failed/Cancelled` with the Job's last counts   |
//! | its Job (controlled by this run's uid)           | protect it (finalizer), then mirror its status  |
//! | its Job's pods stalled (see `stalled.rs`)        | mirror it with `Stalled=True`, reason, message  |
//! | … stalled for `stalledDeadlineSeconds`           | `Failed/Stalled`, then suspend the Job          |
//! | its Job, being deleted before it finished        | `Failed/JobLost` with the Job's last counts     |
//! | a Job of a gone or previous run of the same name | wait for the garbage collector                  |
//! | a Job of anyone else                             | `Failed/JobNameConflict` (confirmed live)       |
//! | no Job; the create was refused for good          | `Failed/JobRejected`                            |
//! | no Job; the create failed and may pass           | `JobCreated=False`, retry with backoff          |
//! | no Job, though one was recorded                  | `Failed/JobLost` (confirmed live)               |
//! | no Job, no template, within the grace period     | `TemplateReady=False`, wait for it              |
//! | no Job, no template, after the grace period      | `Failed/TemplateNotFound` (confirmed live)      |
//! | no Job, a template that makes no Job             | `Failed/InvalidTemplate` (confirmed live)       |
//! | no Job, an override the template does not allow  | `Failed/OverrideNotAllowed` (confirmed live)    |
//! | no Job, an override that cannot apply            | `Failed/InvalidOverride` (confirmed live)       |
//! | no Job, a rule of the template's policy not met  | `Failed/ValidationFailed` (confirmed live)      |
//! | no Job, a template                               | create the Job                                  |
//!
//! An unfinished run is looked at again every resync period (with a jitter
//! from its uid), so a change that no watch event reported is noticed.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobCondition};
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::{Resource, ResourceExt};

use super::callback::{
    Attempt, CallbackSettings, Delivery, after_attempt, callback_pending, delivery, next_attempt, with_callback_pending,
};
use super::failure::{Failure, FailureReason, Refusal};
use super::ownership::is_controlled_by;
use super::policy::admit;
use super::render::{FINALIZER, render};
use super::retention::{Deletion, DeletionReason, finished_at, history_limit, place, ttl};
use super::stalled::{stall, stalled_condition, stalled_deadline, with_stall};
use super::status::{
    CONDITION_FINISHED, failed, failed_from, is_finished, job_finished, job_name_for, status, waiting,
};
use crate::crd::{JobRun, JobRunStatus, JobTemplate};

/// Condition of a run that waits for its template.
pub const CONDITION_TEMPLATE_READY: &str = "TemplateReady";
/// Condition of a run whose Job could not be created yet.
pub const CONDITION_JOB_CREATED: &str = "JobCreated";

/// The operator's tunables that decisions depend on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// How long a run waits for a missing template before it fails.
    pub template_grace: Duration,
    /// How often an unfinished run is looked at with no event.
    pub resync: Duration,
    /// How soon to look again while a previous run's Job is being removed.
    pub previous_job_retry: Duration,
    /// Callback delivery limits.
    pub callback: CallbackSettings,
    /// Finished runs kept per template and outcome when the template sets
    /// no history limit; `None` keeps them all.
    pub history_limit: Option<u32>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            template_grace: Duration::from_secs(10),
            resync: Duration::from_secs(300),
            previous_job_retry: Duration::from_secs(2),
            callback: CallbackSettings::default(),
            history_limit: None,
        }
    }
}

/// What the reconciler saw of one run.
#[derive(Clone, Debug)]
pub struct Observed<'a> {
    pub run: &'a JobRun,
    /// The Job that has the run's Job name, whoever owns it.
    pub job: Option<&'a Job>,
    /// The run's template, if it exists.
    pub template: Option<&'a JobTemplate>,
    /// True when `run`, `job` and `template` were just read from the API
    /// server; false when they come from the watch caches, which may lag.
    pub live: bool,
    /// The API server's answer to this reconcile's Job create, when it was
    /// neither a success nor "already exists".
    pub refusal: Option<&'a Refusal>,
    /// For a `job` controlled by a JobRun other than `run`: whether that
    /// run still exists (and is not being deleted).
    pub other_run_exists: bool,
    /// What this reconcile's callback attempt came to, once it was made.
    pub attempt: Option<&'a Attempt>,
    /// The runs of the run's namespace that name its template, from the
    /// cache, once read ([`Step::ReadHistory`]).
    pub history: Option<&'a [Arc<JobRun>]>,
    /// The pods of the run's Job, from the cache.
    pub pods: &'a [Arc<Pod>],
    /// The Job controller's `FailedCreate` Events of the run's Job, from the cache.
    pub failed_creates: &'a [Arc<Event>],
    pub now: Timestamp,
}

/// What to do next.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Nothing to do, ever: the run is finished (or being deleted) and its
    /// Job holds no finalizer of ours.
    Done,
    /// The caches may lag and the next step cannot be undone: read the run,
    /// its Job and its template from the API server, and decide again.
    ReadLive,
    /// Create this Job; decide again with the created Job or the refusal.
    Create(Box<Job>),
    /// Add the operator's finalizer to the run's Job (a Job made before the
    /// operator had one), so it cannot vanish unseen.
    Protect,
    /// Remove the operator's finalizer from the run's Job: the run's status
    /// records everything it needs from it.
    Release,
    /// Set `suspend: true` on the run's Job: the run was cancelled, and the
    /// Job controller terminates the Job's pods (with their grace period)
    /// while the Job stays for inspection.
    Suspend,
    /// Write this status (the driver skips a write that changes nothing),
    /// then come back as `Next` says.
    Write(Box<JobRunStatus>, Next),
    /// Nothing to change now; come back as `Next` says.
    Wait(Next),
    /// POST the run's callback once; decide again with what it came to.
    Deliver(Box<Delivery>),
    /// Read the runs of the run's template from the cache (for its history
    /// limit), and decide again.
    ReadHistory,
    /// Delete the run (with a precondition on its uid); its Job goes with
    /// it through its ownerReference.
    Delete(Box<Deletion>),
    /// Reconcile these runs of the namespace soon (they fell beyond the
    /// history limit and delete themselves); then come back as `Next` says.
    Wake(Vec<String>, Next),
}

/// When to reconcile the run again, besides on any change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Only on a change (a final status; the write itself wakes the run).
    Change,
    /// After this long.
    After(Duration),
    /// After the run's next backoff delay: something failed that may pass.
    Backoff,
}

/// The decision table (see the module's documentation).
pub fn decide(seen: &Observed<'_>, settings: &Settings) -> Step {
    match decide_step(seen, settings) {
        // A run that ends with a callback to send says so at once.
        Step::Write(status, next) if status.phase.is_some_and(|p| p.is_final()) => {
            Step::Write(Box::new(with_callback_pending(*status, seen.run, &Time(seen.now))), next)
        }
        step => step,
    }
}

fn decide_step(seen: &Observed<'_>, settings: &Settings) -> Step {
    let run = seen.run;
    let ours = seen.job.filter(|job| is_controlled_by(job, run));
    let deleting = run.metadata.deletion_timestamp.is_some();
    // A run failed for its stall stops its Job, whose pods would wait on.
    let running = |job: &&Job| !job_finished(job) && job.metadata.deletion_timestamp.is_none() && !suspended(job);
    if is_finished(run) && !deleting && failed_with(run, FailureReason::Stalled) && ours.filter(running).is_some() {
        return Step::Suspend;
    }
    if is_finished(run) && !deleting && callback_pending(run) {
        return deliver(seen, settings);
    }
    if is_finished(run) && !deleting && cancelled(run) && observed_before(run) {
        // Nothing to cancel: the generation the cancel made is recorded
        // once, which is what tells of it in an Event.
        let status =
            JobRunStatus { observed_generation: run.metadata.generation, ..run.status.clone().unwrap_or_default() };
        return Step::Write(Box::new(status), Next::Change);
    }
    if is_finished(run) || deleting {
        if ours.is_some_and(holds_finalizer) {
            return Step::Release;
        }
        return if deleting { Step::Done } else { retention(seen, settings) };
    }
    let resync = Next::After(resync_delay(run, settings));
    if let Some(job) = ours {
        let deleted = job.metadata.deletion_timestamp.is_some();
        if !deleted && !holds_finalizer(job) {
            return Step::Protect;
        }
        let mirrored = status(Some(job), run);
        if cancelled(run) && !job_finished(job) {
            return cancel(job, mirrored, seen, resync);
        }
        let stall = (!job_finished(job) && !deleted && !suspended(job))
            .then(|| stall(seen.pods, seen.failed_creates))
            .flatten();
        let mirrored = with_stall(mirrored, run.status.as_ref(), stall.as_ref(), &Time(seen.now));
        let mut resync = resync;
        if let (Some(stall), Some(deadline)) = (&stall, stalled_deadline(seen.template)) {
            let since =
                stalled_condition(&mirrored).and_then(|c| c.last_transition_time.as_ref()).map_or(seen.now, |t| t.0);
            let due = since.checked_add(deadline).unwrap_or(since);
            if seen.now >= due {
                let message = format!(
                    "stalled for stalledDeadlineSeconds ({}) without a break: {}",
                    deadline.as_secs(),
                    stall.message
                );
                let failure = Failure::new(FailureReason::Stalled, message);
                return Step::Write(Box::new(failed_from(mirrored, run, &failure, Time(seen.now))), Next::Change);
            }
            let left = seen.now.duration_until(due).unsigned_abs();
            if let Next::After(period) = resync {
                resync = Next::After(period.min(left));
            }
        }
        let next = if deleted && !job_finished(job) {
            let lost = Failure::new(
                FailureReason::JobLost,
                format!("Job {:?} was deleted before it finished", job.name_any()),
            );
            failed_from(mirrored, run, &lost, Time(seen.now))
        } else {
            mirrored
        };
        let then = if next.phase.is_some_and(|p| p.is_final()) { Next::Change } else { resync };
        return Step::Write(Box::new(next), then);
    }
    if cancelled(run) {
        // No Job of this run, whoever else's is there (read live: one the cache does not show yet
        // would run on): nothing to stop.
        let cancelled = failed(run, &cancelled_failure(None), Time(seen.now));
        return if seen.live {
            Step::Write(Box::new(JobRunStatus { failed: None, ..cancelled }), Next::Change)
        } else {
            Step::ReadLive
        };
    }
    if let Some(job) = seen.job {
        if job.metadata.deletion_timestamp.is_some() || is_previous_runs(job, run, seen.other_run_exists) {
            let message = format!(
                "Job {:?} of a previous JobRun of this name is being deleted; waiting for it to go",
                job.name_any()
            );
            let status = waiting(run, CONDITION_JOB_CREATED, "PreviousJobExists", message, Time(seen.now));
            return Step::Write(Box::new(status), Next::After(settings.previous_job_retry));
        }
        return fail_live(
            seen,
            Failure::new(
                FailureReason::JobNameConflict,
                format!("Job {:?} already exists and is not controlled by this JobRun", job.name_any()),
            ),
        );
    }
    if let Some(refusal) = seen.refusal {
        return match refusal.permanent() {
            Some(failure) => Step::Write(Box::new(failed(run, &failure, Time(seen.now))), Next::Change),
            None => {
                let message = format!("cannot create Job {:?} yet: {}", job_name_for(run), refusal.message);
                let status = waiting(run, CONDITION_JOB_CREATED, refusal.retry_reason(), message, Time(seen.now));
                Step::Write(Box::new(status), Next::Backoff)
            }
        };
    }
    if let Some(name) = run.status.as_ref().and_then(|s| s.job_name.as_deref()) {
        let lost = Failure::new(FailureReason::JobLost, format!("Job {name:?} was deleted before it finished"));
        return fail_live(seen, lost);
    }
    let Some(template) = seen.template else {
        let created = run.metadata.creation_timestamp.as_ref().map_or(seen.now, |t| t.0);
        let deadline = created.checked_add(settings.template_grace).unwrap_or(created);
        if seen.now < deadline {
            let message = format!(
                "JobTemplate {:?} not found in the JobRun's namespace; waiting for it to appear",
                run.spec.template_ref
            );
            let status = waiting(run, CONDITION_TEMPLATE_READY, "TemplateNotFound", message, Time(seen.now));
            let left = seen.now.duration_until(deadline).unsigned_abs();
            return Step::Write(Box::new(status), Next::After(left));
        }
        return fail_live(seen, Failure::template_not_found(&run.spec.template_ref));
    };
    // The policy of the template as it is now: once the Job exists, the
    // run is never checked again.
    if let Err(refused) = admit(template, run) {
        return fail_live(seen, refused);
    }
    match render(template, run) {
        Ok(job) => Step::Create(Box::new(job)),
        Err(error) => fail_live(seen, Failure::invalid_template(&error)),
    }
}

/// A finished run's pending callback: record the attempt just made, wait
/// until the next is due, or make it (on what the API server says now, so a
/// lagging cache never sends a delivered callback again). The run's Job
/// keeps its finalizer meanwhile.
fn deliver(seen: &Observed<'_>, settings: &Settings) -> Step {
    let run = seen.run;
    if let Some(attempt) = seen.attempt {
        let (status, retry) = after_attempt(run, attempt, seen.now, &settings.callback);
        return Step::Write(Box::new(status), retry.map_or(Next::Change, Next::After));
    }
    if let Some(due) = next_attempt(run).filter(|due| seen.now < *due) {
        return Step::Wait(Next::After(seen.now.duration_until(due).unsigned_abs()));
    }
    if !seen.live {
        return Step::ReadLive;
    }
    delivery(run).map_or(Step::Done, |delivery| Step::Deliver(Box::new(delivery)))
}

/// A finished run whose Job is let go: delete it once its TTL has passed
/// or newer runs fill its template's history, wake the runs that fell
/// beyond the history when it is the newest, wait for a TTL to come.
fn retention(seen: &Observed<'_>, settings: &Settings) -> Step {
    let run = seen.run;
    let Some(finished) = finished_at(run) else { return Step::Done };
    let mut then = Next::Change;
    if let Some(ttl) = ttl(run, seen.template) {
        let due = finished.checked_add(ttl).unwrap_or(finished);
        if seen.now >= due {
            let message = format!(
                "finished {}s ago; ttlSecondsAfterFinished is {}s",
                seen.now.duration_since(finished).as_secs(),
                ttl.as_secs()
            );
            return Step::Delete(Box::new(Deletion { reason: DeletionReason::Ttl, message }));
        }
        then = Next::After(seen.now.duration_until(due).unsigned_abs());
    }
    // Nothing to come: the run is done for good.
    let idle = |then: Next| if then == Next::Change { Step::Done } else { Step::Wait(then) };
    let Some((limit, field)) = history_limit(run, seen.template, settings.history_limit) else {
        return idle(then);
    };
    let Some(history) = seen.history else { return Step::ReadHistory };
    let (newer, older) = place(run, history);
    let kept = usize::try_from(limit).unwrap_or(usize::MAX);
    if newer >= kept {
        let phase = run.status.as_ref().and_then(|s| s.phase).map_or("finished", |p| p.as_str());
        let message = format!(
            "{newer} newer {phase} runs of JobTemplate {:?} are kept ({field}: {limit})",
            run.spec.template_ref
        );
        return Step::Delete(Box::new(Deletion { reason: DeletionReason::History, message }));
    }
    let beyond: Vec<String> =
        if newer == 0 { older.iter().skip(kept.saturating_sub(1)).map(|r| r.name_any()).collect() } else { Vec::new() };
    if beyond.is_empty() { idle(then) } else { Step::Wake(beyond, then) }
}

/// True when the run ended `Failed` with `reason`.
fn failed_with(run: &JobRun, reason: FailureReason) -> bool {
    run.status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .any(|c| c.type_ == "Failed" && c.status == "True" && c.reason.as_deref() == Some(reason.as_str()))
}

/// True when the Job has `suspend: true` (its template's, Kueue's, a cancel's).
fn suspended(job: &Job) -> bool {
    job.spec.as_ref().and_then(|spec| spec.suspend) == Some(true)
}

/// True when the run's `spec.cancel` is set.
fn cancelled(run: &JobRun) -> bool {
    run.spec.cancel == Some(true)
}

/// True when the run's status describes an older generation than its spec.
fn observed_before(run: &JobRun) -> bool {
    run.status.as_ref().and_then(|s| s.observed_generation) < run.metadata.generation
}

/// A cancelled run's unfinished Job: suspend it (unless it already is, by
/// Kueue or anyone: the operator never resumes a Job), then wait until its
/// pods are gone, and end `Failed/Cancelled` with the Job's last counts.
fn cancel(job: &Job, mirrored: JobRunStatus, seen: &Observed<'_>, resync: Next) -> Step {
    let deleted = job.metadata.deletion_timestamp.is_some();
    if !deleted && !suspended(job) {
        return Step::Suspend;
    }
    let left = mirrored.active.unwrap_or(0) + mirrored.terminating.unwrap_or(0);
    if deleted || left == 0 {
        let failure = cancelled_failure(Some(&job.name_any()));
        return Step::Write(Box::new(failed_from(mirrored, seen.run, &failure, Time(seen.now))), Next::Change);
    }
    let message =
        format!("cancelled: Job {:?} is suspended; waiting for its {left} pod(s) to terminate", job.name_any());
    let mut status = mirrored;
    let previous = seen.run.status.as_ref().and_then(|s| s.conditions.as_ref()).and_then(|conditions| {
        conditions.iter().find(|c| c.type_ == CONDITION_FINISHED && c.reason.as_deref() == Some(CANCELLING))
    });
    status.conditions.get_or_insert_with(Vec::new).push(JobCondition {
        type_: CONDITION_FINISHED.to_owned(),
        status: "False".to_owned(),
        reason: Some(CANCELLING.to_owned()),
        message: Some(message),
        last_transition_time: Some(previous.and_then(|c| c.last_transition_time.clone()).unwrap_or(Time(seen.now))),
        last_probe_time: None,
    });
    Step::Write(Box::new(status), resync)
}

/// The reason of `Finished=False` while a cancelled run's pods terminate.
pub(super) const CANCELLING: &str = "Cancelling";

fn cancelled_failure(job: Option<&str>) -> Failure {
    let message = match job {
        Some(job) => {
            format!("cancelled by spec.cancel; Job {job:?} was stopped and is kept until the JobRun is deleted")
        }
        None => "cancelled by spec.cancel before any Job was created".to_owned(),
    };
    Failure::new(FailureReason::Cancelled, message)
}

/// Whether the operator may let go of a Job that is being deleted, seen
/// from the Job's side: its run (`owner`, read live by the name in the
/// Job's controller reference) is gone, is another run of the same name, or
/// is being deleted itself. Jobs the operator never protected stay alone.
pub fn release_orphan(job: &Job, owner: Option<&JobRun>) -> bool {
    holds_finalizer(job)
        && job.metadata.deletion_timestamp.is_some()
        && owner.is_none_or(|run| !is_controlled_by(job, run) || run.metadata.deletion_timestamp.is_some())
}

/// The JobRun named in the Job's controller reference, if a JobRun controls it.
pub fn controlling_run(job: &Job) -> Option<&OwnerReference> {
    job.owner_references().iter().find(|o| {
        o.controller == Some(true)
            && o.kind == JobRun::kind(&())
            && o.api_version.split('/').next() == Some(JobRun::group(&()).as_ref())
    })
}

/// True when the Job carries the operator's finalizer.
pub fn holds_finalizer(job: &Job) -> bool {
    job.finalizers().iter().any(|f| f == FINALIZER)
}

/// A failure that cannot be undone is declared only on what the API
/// server says now, never on a cache.
fn fail_live(seen: &Observed<'_>, failure: Failure) -> Step {
    if seen.live {
        Step::Write(Box::new(failed(seen.run, &failure, Time(seen.now))), Next::Change)
    } else {
        Step::ReadLive
    }
}

/// A Job controlled by a JobRun that is not this run: one of the same name
/// (so the earlier run, deleted and created again), or one that is gone.
fn is_previous_runs(job: &Job, run: &JobRun, other_run_exists: bool) -> bool {
    controlling_run(job).is_some_and(|owner| Some(&owner.name) == run.metadata.name.as_ref() || !other_run_exists)
}

/// The resync period plus up to a tenth of it, spread by the run's uid so
/// that many runs made at once are not all looked at again at once.
pub(super) fn resync_delay(run: &JobRun, settings: &Settings) -> Duration {
    let spread = super::per_mille(run.metadata.uid.as_deref().unwrap_or_default());
    settings.resync + settings.resync.mul_f64(spread as f64 / 10_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{JobRunSpec, Phase};
    use crate::merge::callback::Attempt;

    fn finished(callback_url: Option<&str>) -> (JobRun, Job) {
        let spec =
            JobRunSpec { template_ref: "t".into(), callback_url: callback_url.map(Into::into), ..Default::default() };
        let mut run = JobRun::new("r", spec);
        run.metadata.uid = Some("uid-1".into());
        run.metadata.namespace = Some("ns".into());
        let status = JobRunStatus { phase: Some(Phase::Succeeded), job_name: Some("r".into()), ..Default::default() };
        run.status = Some(with_callback_pending(status, &run, &Time(Timestamp::UNIX_EPOCH)));
        let mut job = Job::default();
        job.metadata.name = Some("r".into());
        job.metadata.finalizers = Some(vec![FINALIZER.into()]);
        job.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "cellbytes.io/v1".into(),
            kind: "JobRun".into(),
            name: "r".into(),
            uid: "uid-1".into(),
            controller: Some(true),
            ..Default::default()
        }]);
        (run, job)
    }

    fn seen<'a>(run: &'a JobRun, job: &'a Job, live: bool, attempt: Option<&'a Attempt>, now: i64) -> Observed<'a> {
        Observed {
            run,
            job: Some(job),
            template: None,
            live,
            refusal: None,
            other_run_exists: false,
            attempt,
            history: None,
            pods: &[],
            failed_creates: &[],
            now: Timestamp::from_second(now).expect("a time"),
        }
    }

    #[test]
    fn a_finished_run_without_a_callback_releases_its_job_and_costs_nothing_more() {
        let (mut run, job) = finished(None);
        assert_eq!(decide(&seen(&run, &job, false, None, 10), &Settings::default()), Step::Release);
        run.spec.callback_url = Some("https://h/".into());
        run.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        assert_eq!(decide(&seen(&run, &job, false, None, 10), &Settings::default()), Step::Release);
    }

    #[test]
    fn a_finished_run_with_a_pending_callback_keeps_its_job_reads_live_then_delivers() {
        let (run, job) = finished(Some("https://hooks.example.com/done"));
        let settings = Settings::default();
        assert_eq!(decide(&seen(&run, &job, false, None, 10), &settings), Step::ReadLive);
        match decide(&seen(&run, &job, true, None, 10), &settings) {
            Step::Deliver(delivery) => {
                assert_eq!(delivery.url, "https://hooks.example.com/done");
                assert_eq!(delivery.idempotency_key, "uid-1");
            }
            step => panic!("expected a delivery, got {step:?}"),
        }
    }

    #[test]
    fn a_failed_attempt_is_written_then_waited_for_then_retried() {
        let (mut run, job) = finished(Some("https://h/"));
        let settings = Settings::default();
        let failed = Attempt::Answered { code: 503, retry_after: None };
        let Step::Write(status, Next::After(delay)) = decide(&seen(&run, &job, true, Some(&failed), 10), &settings)
        else {
            panic!("a retry is written with its delay");
        };
        run.status = Some(*status);
        let Step::Wait(Next::After(left)) = decide(&seen(&run, &job, true, None, 11), &settings) else {
            panic!("the retry is not due yet");
        };
        assert_eq!(left + Duration::from_secs(1), delay);
        let due = 10 + delay.as_secs() as i64;
        assert!(matches!(decide(&seen(&run, &job, true, None, due), &settings), Step::Deliver(_)));
    }

    #[test]
    fn a_delivered_or_refused_callback_ends_and_the_job_is_released() {
        for attempt in [Attempt::Answered { code: 200, retry_after: None }, Attempt::Refused("loopback".into())] {
            let (mut run, job) = finished(Some("https://h/"));
            let Step::Write(status, Next::Change) =
                decide(&seen(&run, &job, true, Some(&attempt), 10), &Settings::default())
            else {
                panic!("{attempt:?} ends delivery");
            };
            run.status = Some(*status);
            assert_eq!(decide(&seen(&run, &job, false, None, 11), &Settings::default()), Step::Release);
        }
    }

    #[test]
    fn a_run_that_finishes_with_a_callback_url_records_it_as_pending() {
        let (mut run, mut job) = finished(Some("https://h/"));
        run.status =
            Some(JobRunStatus { phase: Some(Phase::Running), job_name: Some("r".into()), ..Default::default() });
        job.status = Some(k8s_openapi::api::batch::v1::JobStatus {
            conditions: Some(vec![k8s_openapi::api::batch::v1::JobCondition {
                type_: "Complete".into(),
                status: "True".into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        let Step::Write(status, Next::Change) = decide(&seen(&run, &job, false, None, 10), &Settings::default()) else {
            panic!("the final status is written");
        };
        let pending = status.conditions.iter().flatten().find(|c| c.type_ == "CallbackDelivered");
        assert_eq!(pending.and_then(|c| c.reason.as_deref()), Some("Pending"));
    }

    #[test]
    fn the_resync_delay_is_spread_by_uid_within_a_tenth_of_the_period() {
        let settings = Settings::default();
        let delay = |uid: &str| {
            let mut run = JobRun::new("r", Default::default());
            run.metadata.uid = Some(uid.into());
            resync_delay(&run, &settings)
        };
        let delays: Vec<Duration> = (0..50).map(|i| delay(&format!("uid-{i}"))).collect();
        assert!(delays.iter().all(|d| *d >= settings.resync && *d < settings.resync.mul_f64(1.1)));
        assert_eq!(delay("same"), delay("same"));
        assert!(delays.iter().any(|d| *d != delays[0]), "all runs got the same delay");
    }

    #[test]
    fn a_cancelled_runs_suspended_job_is_waited_for_while_pods_run_or_terminate_and_the_wait_keeps_its_start() {
        let (mut run, mut job) = finished(None);
        run.spec.cancel = Some(true);
        run.status =
            Some(JobRunStatus { phase: Some(Phase::Running), job_name: Some("r".into()), ..Default::default() });
        job.spec = Some(k8s_openapi::api::batch::v1::JobSpec { suspend: Some(true), ..Default::default() });
        job.status = Some(k8s_openapi::api::batch::v1::JobStatus {
            active: Some(1),
            terminating: Some(1),
            start_time: Some(Time(Timestamp::UNIX_EPOCH)),
            ..Default::default()
        });
        let cancelling = |step: Step| match step {
            Step::Write(status, Next::After(_)) => {
                let condition = status.conditions.iter().flatten().find(|c| c.type_ == CONDITION_FINISHED).cloned();
                let condition = condition.expect("Finished=False/Cancelling");
                assert_eq!((condition.status.as_str(), condition.reason.as_deref()), ("False", Some(CANCELLING)));
                (*status, condition)
            }
            step => panic!("expected the run to wait for its pods, got {step:?}"),
        };
        let (status, first) = cancelling(decide(&seen(&run, &job, false, None, 10), &Settings::default()));
        assert!(first.message.as_deref().is_some_and(|m| m.contains("its 2 pod(s)")), "{:?}", first.message);
        run.status = Some(status);
        let (_, later) = cancelling(decide(&seen(&run, &job, false, None, 20), &Settings::default()));
        assert_eq!(later.last_transition_time, first.last_transition_time, "the wait keeps its start");
    }
}
