//! Which Events a status change deserves: decided from the statuses alone,
//! so a repeated write of the same situation never repeats an Event.

use super::callback::{CONDITION_CALLBACK_DELIVERED, CallbackState, callback_state_of};
use super::decide::CANCELLING;
use super::failure::FailureReason;
use super::stalled::{CONDITION_STALLED, stalled_condition};
use crate::crd::{JobRunStatus, Phase};

/// The API's limit on an Event's note, in bytes.
pub const MAX_NOTE_BYTES: usize = 1024;

/// One Event to record on the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: String,
    pub note: String,
}

/// The Events for a run whose status goes from `previous` to `next`:
/// - reaching a final phase: `Finished` (Normal on success, Warning on
///   failure), or the operator's own failure reason (`TemplateNotFound`,
///   `JobRejected`, `JobLost`, …) with its message;
/// - a new reason to wait (`TemplateReady=False`, `JobCreated=False`): a
///   Warning with its reason and message, once per distinct message.
pub fn notes(previous: &JobRunStatus, next: &JobRunStatus) -> Vec<Note> {
    let mut notes = run_notes(previous, next);
    notes.extend(stall_note(previous, next));
    notes.extend(callback_note(previous, next));
    notes
}

/// A Warning when the run becomes stalled, or stalled for another reason:
/// its reason (`ImagePullBackOff`, `Unschedulable`, `FailedCreate`, …) and
/// message.
fn stall_note(previous: &JobRunStatus, next: &JobRunStatus) -> Option<Note> {
    let now = stalled_condition(next).filter(|c| c.status == "True")?;
    let before = stalled_condition(previous).filter(|c| c.status == "True");
    if before.is_some_and(|b| b.reason == now.reason) {
        return None;
    }
    Some(Note {
        warning: true,
        reason: now.reason.clone().unwrap_or_else(|| CONDITION_STALLED.to_owned()),
        note: now.message.clone().unwrap_or_default(),
    })
}

/// The callback's Event when its condition changes: each outcome
/// (delivered, retrying with what went wrong, rejected, refused, gave up),
/// and a Warning for a plain-text token when it is first pending.
fn callback_note(previous: &JobRunStatus, next: &JobRunStatus) -> Option<Note> {
    let condition = |status: &JobRunStatus| {
        status.conditions.iter().flatten().find(|c| c.type_ == CONDITION_CALLBACK_DELIVERED).cloned()
    };
    let now = condition(next)?;
    let before = condition(previous);
    if before.as_ref().is_some_and(|b| b.reason == now.reason && b.message == now.message) {
        return None;
    }
    let message = now.message.clone().unwrap_or_default();
    let state = callback_state_of(next)?;
    let reason = match state {
        CallbackState::Pending if message.contains("callbackTokenSecretRef") => "CallbackTokenInSpec",
        CallbackState::Pending => return None,
        CallbackState::Retrying => "CallbackRetrying",
        CallbackState::TokenUnavailable => "CallbackTokenUnavailable",
        CallbackState::Delivered => "CallbackDelivered",
        CallbackState::Rejected => "CallbackRejected",
        CallbackState::Refused => "CallbackRefused",
        CallbackState::TokenForbidden => "CallbackTokenForbidden",
        CallbackState::TokenNotAllowed => "CallbackTokenNotAllowed",
        CallbackState::GaveUp => "CallbackGaveUp",
    };
    Some(Note { warning: state != CallbackState::Delivered, reason: reason.to_owned(), note: message })
}

fn run_notes(previous: &JobRunStatus, next: &JobRunStatus) -> Vec<Note> {
    let mut notes = Vec::new();
    // A finished run's generation moves only with `spec.cancel` (the rest
    // of the spec is immutable), and is recorded once.
    let finished_before = previous.phase.filter(|p| p.is_final());
    if let Some(phase) = finished_before.filter(|_| next.observed_generation > previous.observed_generation) {
        notes.push(Note {
            warning: false,
            reason: "CancelIgnored".into(),
            note: format!(
                "spec.cancel was set after the JobRun had finished ({}); nothing was cancelled",
                phase.as_str()
            ),
        });
        return notes;
    }
    let final_now = next.phase.filter(|p| p.is_final() && previous.phase != Some(*p));
    if let Some(phase) = final_now {
        let failed_by_operator = next
            .error
            .as_ref()
            .and_then(|_| next.conditions.iter().flatten().find(|c| c.type_ == "Failed" && c.status == "True"));
        notes.push(match failed_by_operator {
            Some(failed) => Note {
                // A cancel is what its author asked for.
                warning: failed.reason.as_deref() != Some(FailureReason::Cancelled.as_str()),
                reason: failed.reason.clone().unwrap_or_else(|| "Failed".into()),
                note: failed.message.clone().unwrap_or_default(),
            },
            None if phase == Phase::Succeeded => {
                Note { warning: false, reason: "Finished".into(), note: "JobRun succeeded".into() }
            }
            None => Note { warning: true, reason: "Finished".into(), note: "JobRun failed".into() },
        });
        return notes;
    }
    let seen_before = |reason: &Option<String>, message: &Option<String>| {
        previous
            .conditions
            .iter()
            .flatten()
            .any(|c| c.status == "False" && &c.reason == reason && &c.message == message)
    };
    let waiting = next
        .conditions
        .iter()
        .flatten()
        .filter(|c| c.status == "False" && c.type_ != CONDITION_CALLBACK_DELIVERED && c.type_ != CONDITION_STALLED);
    for waiting in waiting {
        // A cancelled run's pods terminating: once, whatever their count.
        let cancelling = waiting.reason.as_deref() == Some(CANCELLING);
        let cancelling_before = previous.conditions.iter().flatten().any(|c| c.reason.as_deref() == Some(CANCELLING));
        if cancelling && cancelling_before {
            continue;
        }
        if !seen_before(&waiting.reason, &waiting.message) {
            notes.push(Note {
                warning: !cancelling,
                reason: waiting.reason.clone().unwrap_or_else(|| waiting.type_.clone()),
                note: waiting.message.clone().unwrap_or_default(),
            });
        }
    }
    notes
}

/// `note` cut to the API's limit, on a character boundary, with a mark
/// that it was cut.
pub fn cut_note(note: &str) -> String {
    if note.len() <= MAX_NOTE_BYTES {
        return note.to_owned();
    }
    const MARK: &str = " …";
    let mut end = MAX_NOTE_BYTES - MARK.len();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &note[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::JobCondition;

    fn waiting(reason: &str, message: &str) -> JobRunStatus {
        JobRunStatus {
            phase: Some(Phase::Pending),
            conditions: Some(vec![JobCondition {
                type_: "JobCreated".into(),
                status: "False".into(),
                reason: Some(reason.into()),
                message: Some(message.into()),
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn a_new_reason_to_wait_is_one_warning_and_the_same_one_again_is_none() {
        let first = waiting("QuotaExceeded", "exceeded quota: q");
        assert_eq!(
            notes(&JobRunStatus::default(), &first),
            [Note { warning: true, reason: "QuotaExceeded".into(), note: "exceeded quota: q".into() }]
        );
        assert!(notes(&first, &first.clone()).is_empty());
        assert_eq!(notes(&first, &waiting("QuotaExceeded", "exceeded quota: other")).len(), 1);
    }

    #[test]
    fn a_success_is_one_normal_finished_event_and_only_once() {
        let done = JobRunStatus { phase: Some(Phase::Succeeded), ..Default::default() };
        let running = JobRunStatus { phase: Some(Phase::Running), ..Default::default() };
        assert_eq!(
            notes(&running, &done),
            [Note { warning: false, reason: "Finished".into(), note: "JobRun succeeded".into() }]
        );
        assert!(notes(&done, &done).is_empty());
    }

    #[test]
    fn a_job_failure_is_a_warning_finished_event() {
        let failed = JobRunStatus { phase: Some(Phase::Failed), ..Default::default() };
        assert_eq!(notes(&JobRunStatus::default(), &failed)[0].reason, "Finished");
        assert!(notes(&JobRunStatus::default(), &failed)[0].warning);
    }

    #[test]
    fn a_cancel_is_normal_events_cancelling_once_then_cancelled_and_a_late_cancel_is_ignored_once() {
        let condition = |type_: &str, status: &str, reason: &str, message: &str| JobCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            ..Default::default()
        };
        let running = JobRunStatus { phase: Some(Phase::Running), observed_generation: Some(1), ..Default::default() };
        let cancelling = |left: u8| JobRunStatus {
            conditions: Some(vec![condition("Finished", "False", CANCELLING, &format!("{left} pod(s) left"))]),
            ..running.clone()
        };
        let first = notes(&running, &cancelling(2));
        assert_eq!(first, [Note { warning: false, reason: CANCELLING.into(), note: "2 pod(s) left".into() }]);
        assert!(notes(&cancelling(2), &cancelling(1)).is_empty(), "a new count is no new Event");
        let cancelled = JobRunStatus {
            phase: Some(Phase::Failed),
            error: Some("Cancelled: stopped".into()),
            conditions: Some(vec![condition("Failed", "True", "Cancelled", "stopped")]),
            ..running.clone()
        };
        assert_eq!(
            notes(&cancelling(1), &cancelled),
            [Note { warning: false, reason: "Cancelled".into(), note: "stopped".into() }]
        );
        let done = JobRunStatus { phase: Some(Phase::Succeeded), ..running.clone() };
        let observed = JobRunStatus { observed_generation: Some(2), ..done.clone() };
        let ignored = notes(&done, &observed);
        assert_eq!(ignored.len(), 1);
        assert_eq!((ignored[0].reason.as_str(), ignored[0].warning), ("CancelIgnored", false));
        assert!(ignored[0].note.contains("Succeeded"), "{}", ignored[0].note);
        assert!(notes(&observed, &observed.clone()).is_empty(), "only once");
    }

    #[test]
    fn a_note_is_cut_to_1024_bytes_on_a_character_boundary() {
        let long = "é".repeat(700);
        let cut = cut_note(&long);
        assert!(cut.len() <= MAX_NOTE_BYTES, "{}", cut.len());
        assert!(cut.ends_with(" …"));
        assert_eq!(cut_note("short"), "short");
        let exact = "a".repeat(MAX_NOTE_BYTES);
        assert_eq!(cut_note(&exact), exact);
    }
}
