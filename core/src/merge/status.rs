//! `status`: what a run's status is, given its Job (or why it has none).

use k8s_openapi::api::batch::v1::{Job, JobCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::failure::Failure;
use super::names::label_safe;
use crate::crd::{JobRun, JobRunStatus, Phase};

/// The condition added once a run has ended, whichever way it ended, so that
/// `kubectl wait --for=condition=Finished` returns on success and failure.
pub const CONDITION_FINISHED: &str = "Finished";
/// The Job controller's condition of a suspended Job, mirrored on the run.
pub const CONDITION_SUSPENDED: &str = "Suspended";

/// The name of the Job for `run`: the one already recorded, or the one
/// `render` gives it.
pub fn job_name_for(run: &JobRun) -> String {
    run.status.as_ref().and_then(|s| s.job_name.clone()).unwrap_or_else(|| label_safe(&run.name_any()))
}

/// True once the run's status is final: it never changes again.
pub fn is_finished(run: &JobRun) -> bool {
    run.status.as_ref().and_then(|s| s.phase).is_some_and(Phase::is_final)
}

/// The run's status mirrored from its Job; `None` means no Job yet.
pub fn status(job: Option<&Job>, run: &JobRun) -> JobRunStatus {
    let observed_generation = run.metadata.generation;
    let Some(job) = job else {
        return JobRunStatus { observed_generation, phase: Some(Phase::Pending), ..JobRunStatus::default() };
    };
    let job_status = job.status.clone().unwrap_or_default();
    let mut conditions = job_status.conditions.unwrap_or_default();
    // A cancelled run's Job was suspended by the cancel, not created so.
    let cancelled = run.spec.cancel == Some(true);
    if let Some(created_suspended) =
        created_suspended(job, job_status.start_time.is_some(), &conditions).filter(|_| !cancelled)
    {
        conditions.push(created_suspended);
    }
    let phase = phase_of(&conditions, job_status.start_time.is_some());
    if let Some(terminal) = phase.is_final().then(|| terminal_condition(&conditions)).flatten() {
        let finished = JobCondition {
            type_: CONDITION_FINISHED.to_owned(),
            status: "True".to_owned(),
            reason: Some(phase.as_str().to_owned()),
            message: terminal.message.clone(),
            last_transition_time: terminal.last_transition_time.clone(),
            last_probe_time: None,
        };
        conditions.push(finished);
    }
    JobRunStatus {
        job_name: job.metadata.name.clone(),
        observed_generation,
        phase: Some(phase),
        error: None,
        start_time: job_status.start_time,
        completion_time: job_status.completion_time,
        active: job_status.active,
        ready: job_status.ready,
        terminating: job_status.terminating,
        succeeded: job_status.succeeded,
        failed: job_status.failed,
        conditions: (!conditions.is_empty()).then_some(conditions),
        callback: None,
    }
}

/// The condition of a run whose Job is suspended (by its template, by
/// Kueue's webhook, by anyone) before the Job controller has written its
/// own `Suspended` condition: the run says at once why it does not start.
/// (A Job suspended after it started gets the Job controller's condition.)
fn created_suspended(job: &Job, started: bool, conditions: &[JobCondition]) -> Option<JobCondition> {
    let suspended = !started && job.spec.as_ref().and_then(|spec| spec.suspend) == Some(true);
    (suspended && !conditions.iter().any(|c| c.type_ == CONDITION_SUSPENDED)).then(|| JobCondition {
        type_: CONDITION_SUSPENDED.to_owned(),
        status: "True".to_owned(),
        reason: Some("CreatedSuspended".to_owned()),
        message: Some(format!(
            "Job {:?} was created suspended; it starts when it is resumed (for example admitted by Kueue)",
            job.name_any()
        )),
        last_transition_time: job.metadata.creation_timestamp.clone(),
        last_probe_time: None,
    })
}

/// The run's status after a permanent failure at time `at`. What the run
/// already mirrored from a Job is kept; a run that never had a Job counts
/// `failed: 1`, as the Python original did.
pub fn failed(run: &JobRun, failure: &Failure, at: Time) -> JobRunStatus {
    failed_from(run.status.clone().unwrap_or_default(), run, failure, at)
}

/// [`failed`], on top of `previous` instead of the run's recorded status
/// (for a Job deleted before it finished: its last counts).
pub fn failed_from(previous: JobRunStatus, run: &JobRun, failure: &Failure, at: Time) -> JobRunStatus {
    let had_job = previous.job_name.is_some();
    let mut conditions = previous.conditions.unwrap_or_default();
    for type_ in ["Failed", CONDITION_FINISHED] {
        conditions.retain(|c| c.type_ != type_);
        conditions.push(JobCondition {
            type_: type_.to_owned(),
            status: "True".to_owned(),
            reason: Some(failure.reason.as_str().to_owned()),
            message: Some(failure.message.clone()),
            last_transition_time: Some(at.clone()),
            last_probe_time: None,
        });
    }
    JobRunStatus {
        observed_generation: run.metadata.generation,
        phase: Some(Phase::Failed),
        error: Some(format!("{}: {}", failure.reason, failure.message)),
        failed: if had_job { previous.failed } else { Some(1) },
        conditions: Some(conditions),
        ..previous
    }
}

/// A run that has no Job yet and waits for something: phase `Pending` and
/// one `False` condition saying what. The condition keeps its previous
/// transition time while its reason and message stay the same, so waiting
/// again writes nothing.
pub fn waiting(run: &JobRun, type_: &str, reason: &str, message: String, at: Time) -> JobRunStatus {
    let previous = run.status.as_ref().and_then(|s| s.conditions.as_ref()).and_then(|conditions| {
        conditions.iter().find(|c| {
            c.type_ == type_
                && c.status == "False"
                && c.reason.as_deref() == Some(reason)
                && c.message == Some(message.clone())
        })
    });
    let condition = JobCondition {
        type_: type_.to_owned(),
        status: "False".to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message),
        last_transition_time: Some(previous.and_then(|c| c.last_transition_time.clone()).unwrap_or(at)),
        last_probe_time: None,
    };
    JobRunStatus { conditions: Some(vec![condition]), ..status(None, run) }
}

/// True when the Job has ended (`Complete=True` or `Failed=True`).
pub fn job_finished(job: &Job) -> bool {
    let conditions = job.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    phase_of(conditions, true).is_final()
}

/// Only `Complete=True` and `Failed=True` end a Job. The interim conditions
/// of Kubernetes ≥ 1.31 (`SuccessCriteriaMet`, `FailureTarget`) do not: the
/// Job is still terminating its pods.
fn phase_of(conditions: &[JobCondition], started: bool) -> Phase {
    let is_true = |type_: &str| conditions.iter().any(|c| c.type_ == type_ && c.status == "True");
    if is_true("Complete") {
        Phase::Succeeded
    } else if is_true("Failed") {
        Phase::Failed
    } else if is_true(CONDITION_SUSPENDED) || !started {
        Phase::Pending
    } else {
        Phase::Running
    }
}

fn terminal_condition(conditions: &[JobCondition]) -> Option<&JobCondition> {
    conditions.iter().find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::{Failure, FailureReason};
    use k8s_openapi::api::batch::v1::JobStatus;

    fn run_with(status: Option<JobRunStatus>) -> JobRun {
        let mut run = JobRun::new("r", Default::default());
        run.metadata.generation = Some(3);
        run.status = status;
        run
    }

    fn condition(type_: &str, status: &str) -> JobCondition {
        JobCondition { type_: type_.into(), status: status.into(), ..Default::default() }
    }

    fn at() -> Time {
        Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn a_lost_job_keeps_what_the_run_mirrored_and_adds_failed_and_finished() {
        let mirrored = JobRunStatus {
            job_name: Some("r".into()),
            phase: Some(Phase::Running),
            active: Some(1),
            conditions: Some(vec![condition("Suspended", "False")]),
            ..Default::default()
        };
        let status = failed(&run_with(Some(mirrored)), &Failure::new(FailureReason::JobLost, "gone"), at());
        assert_eq!(status.phase, Some(Phase::Failed));
        assert_eq!(status.job_name.as_deref(), Some("r"));
        assert_eq!(status.active, Some(1));
        assert_eq!(status.failed, None, "a run that had a Job keeps the Job's failure count");
        let types: Vec<_> = status.conditions.iter().flatten().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Suspended", "Failed", "Finished"]);
        assert_eq!(status.error.as_deref(), Some("JobLost: gone"));
    }

    #[test]
    fn a_failure_before_any_job_counts_one_failure() {
        let status = failed(&run_with(None), &Failure::template_not_found("t"), at());
        assert_eq!(status.failed, Some(1));
        assert_eq!(status.observed_generation, Some(3));
    }

    #[test]
    fn only_true_complete_or_failed_conditions_end_a_run() {
        let started = true;
        assert_eq!(phase_of(&[condition("Complete", "True")], started), Phase::Succeeded);
        assert_eq!(phase_of(&[condition("Failed", "True")], started), Phase::Failed);
        assert_eq!(phase_of(&[condition("FailureTarget", "True")], started), Phase::Running);
        assert_eq!(phase_of(&[condition("SuccessCriteriaMet", "True")], started), Phase::Running);
        assert_eq!(phase_of(&[condition("Complete", "False")], started), Phase::Running);
        assert_eq!(phase_of(&[condition("Suspended", "True")], started), Phase::Pending);
        assert_eq!(phase_of(&[], false), Phase::Pending);
    }

    #[test]
    fn a_finished_run_is_final_and_a_running_one_is_not() {
        let job = Job {
            metadata: Default::default(),
            spec: None,
            status: Some(JobStatus { conditions: Some(vec![condition("Complete", "True")]), ..Default::default() }),
        };
        let done = run_with(Some(status(Some(&job), &run_with(None))));
        assert!(is_finished(&done));
        assert!(!is_finished(&run_with(Some(JobRunStatus { phase: Some(Phase::Running), ..Default::default() }))));
    }
}
