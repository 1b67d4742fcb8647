//! Retention: when a finished run is deleted. Two rules, both per run and
//! decided from what the caches hold:
//! - **TTL**: `spec.ttlSecondsAfterFinished`, else the template's
//!   `runPolicy.ttlSecondsAfterFinished`, counted from the run's finish;
//! - **history**: at most `successfulRunsHistoryLimit` / `failedRunsHistoryLimit`
//!   (else the operator's default) finished runs of a template in its
//!   namespace, per outcome, the newest kept (CronJob's semantics).
//!
//! A run deletes itself: each run beyond the limit decides so in its own
//! reconcile, so start-up with 10,000 finished runs deletes the excess at
//! the controller's concurrency, each once. When a run finishes, the newest
//! of its outcome wakes the runs that fell beyond the limit. No run is
//! deleted before its callback ends (the table delivers first).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::status::{CONDITION_FINISHED, is_finished};
use crate::crd::{JobRun, JobTemplate, Phase};

/// Why a run is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeletionReason {
    /// Its time-to-live after finishing has passed.
    Ttl,
    /// Newer finished runs of its template fill the history limit.
    History,
}

impl DeletionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ttl => "Ttl",
            Self::History => "History",
        }
    }
}

/// A run to delete (with a precondition on its uid), and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deletion {
    pub reason: DeletionReason,
    pub message: String,
}

/// When the run finished: its `Finished` condition's transition (or, for a
/// run the Python original finished, its completion time).
pub fn finished_at(run: &JobRun) -> Option<Timestamp> {
    let status = run.status.as_ref()?;
    let finished = status.conditions.iter().flatten().find(|c| c.type_ == CONDITION_FINISHED && c.status == "True");
    finished.and_then(|c| c.last_transition_time.as_ref()).or(status.completion_time.as_ref()).map(|t| t.0)
}

/// The run's time-to-live after finishing: its own, else its template's.
pub fn ttl(run: &JobRun, template: Option<&JobTemplate>) -> Option<Duration> {
    let policy = template.and_then(|t| t.spec.run_policy.as_ref());
    let seconds = run.spec.ttl_seconds_after_finished.or(policy.and_then(|p| p.ttl_seconds_after_finished))?;
    Some(Duration::from_secs(u64::try_from(seconds).unwrap_or(0)))
}

/// How many finished runs of the run's outcome its template keeps, and
/// which field says so (for the message).
pub fn history_limit(
    run: &JobRun,
    template: Option<&JobTemplate>,
    default: Option<u32>,
) -> Option<(u32, &'static str)> {
    let phase = run.status.as_ref().and_then(|s| s.phase)?;
    let policy = template.and_then(|t| t.spec.run_policy.as_ref());
    let (own, field) = match phase {
        Phase::Succeeded => (policy.and_then(|p| p.successful_runs_history_limit), "successfulRunsHistoryLimit"),
        Phase::Failed => (policy.and_then(|p| p.failed_runs_history_limit), "failedRunsHistoryLimit"),
        Phase::Pending | Phase::Running => return None,
    };
    match own {
        Some(limit) => Some((u32::try_from(limit).unwrap_or(0), field)),
        None => default.map(|limit| (limit, "--default-history-limit")),
    }
}

/// Where `run` stands among the finished runs of its template and outcome
/// in `history` (any runs of the namespace; the rest are ignored): how many
/// are newer, and, only for the newest (none newer), those that are older,
/// newest first. Newer means a later finish, then a greater name (a total
/// order, the same on every replica). One pass and no allocation but for
/// the newest's list.
pub fn place<'a>(run: &JobRun, history: &'a [Arc<JobRun>]) -> (usize, Vec<&'a JobRun>) {
    let phase = run.status.as_ref().and_then(|s| s.phase);
    let key = |r: &JobRun| (finished_at(r), r.metadata.name.clone().unwrap_or_default());
    let mine = (finished_at(run), run.metadata.name.as_deref().unwrap_or_default());
    let siblings = history.iter().map(AsRef::as_ref).filter(|other| {
        other.spec.template_ref == run.spec.template_ref
            && other.namespace() == run.namespace()
            && other.uid() != run.uid()
            && other.metadata.deletion_timestamp.is_none()
            && is_finished(other)
            && other.status.as_ref().and_then(|s| s.phase) == phase
    });
    let newer = siblings
        .clone()
        .filter(|other| (finished_at(other), other.metadata.name.as_deref().unwrap_or_default()) > mine)
        .count();
    if newer > 0 {
        return (newer, Vec::new());
    }
    let mut older: Vec<&JobRun> = siblings.collect();
    older.sort_by_cached_key(|other| std::cmp::Reverse(key(other)));
    (0, older)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::batch::v1::JobCondition;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::crd::JobRunStatus;

    fn at(second: i64) -> Time {
        Time(Timestamp::from_second(second).expect("a time"))
    }

    #[test]
    fn a_run_finished_when_its_finished_condition_became_true_else_at_its_completion_time() {
        let finished = |status: &str| JobCondition {
            type_: CONDITION_FINISHED.into(),
            status: status.into(),
            last_transition_time: Some(at(20)),
            ..JobCondition::default()
        };
        let mut run = JobRun::new("r", Default::default());
        run.status = Some(JobRunStatus {
            completion_time: Some(at(10)),
            conditions: Some(vec![finished("True")]),
            ..JobRunStatus::default()
        });
        assert_eq!(finished_at(&run), Some(at(20).0));
        run.status = Some(JobRunStatus {
            completion_time: Some(at(10)),
            conditions: Some(vec![finished("False")]),
            ..JobRunStatus::default()
        });
        assert_eq!(finished_at(&run), Some(at(10).0), "Finished=False (Cancelling) is no finish");
    }
}
