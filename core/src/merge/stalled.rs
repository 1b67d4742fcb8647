//! Stalled: why an unfinished run's pods do not start, from what the
//! caches hold of them (their phase, their containers' waiting reasons,
//! their `PodScheduled` condition) and of the Job controller's
//! `FailedCreate` Events. The run shows it as the kstatus condition
//! `Stalled` (Flux and kpt read it); with the template's
//! `runPolicy.stalledDeadlineSeconds`, a run stalled that long without a
//! break fails with reason `Stalled` and its Job is stopped.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::JobCondition;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use crate::crd::{JobRunStatus, JobTemplate};

/// The kstatus condition of a run whose pods cannot start.
pub const CONDITION_STALLED: &str = "Stalled";

/// A container's waiting reasons that do not pass by themselves.
pub const WAITING_REASONS: [&str; 5] =
    ["ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError"];

/// The reason of the Job controller's Event when it cannot create a pod
/// (a full ResourceQuota, a Pod Security refusal), and of the run's
/// condition then.
pub const FAILED_CREATE: &str = "FailedCreate";

/// The reason of `Stalled=False` once no pod is stalled any more.
const NOT_STALLED: &str = "Progressing";

/// The longest message the condition carries, in bytes.
const MAX_MESSAGE_BYTES: usize = 512;

/// Why the run's pods do not start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stall {
    pub reason: String,
    pub message: String,
}

/// What stalls the run, if anything: a pod of its Job (the first by name)
/// whose container waits for a reason that does not pass by itself, or
/// that the scheduler cannot place; else, while the Job has no pod left
/// that may run, the newest `FailedCreate` Event of the Job.
pub fn stall(pods: &[Arc<Pod>], failed_creates: &[Arc<Event>]) -> Option<Stall> {
    let mut live: Vec<&Pod> = pods
        .iter()
        .map(AsRef::as_ref)
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .filter(|pod| {
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            !matches!(phase, Some("Succeeded" | "Failed"))
        })
        .collect();
    live.sort_by_key(|pod| pod.name_any());
    if let Some(stall) = live.iter().find_map(|pod| pod_stall(pod)) {
        return Some(stall);
    }
    if !live.is_empty() {
        return None;
    }
    let newest = failed_creates.iter().filter(|e| e.reason.as_deref() == Some(FAILED_CREATE)).max_by_key(|e| {
        (e.last_timestamp.as_ref().map(|t| t.0), e.event_time.as_ref().map(|t| t.0), e.metadata.name.clone())
    })?;
    let message = newest.message.clone().unwrap_or_default();
    Some(Stall {
        reason: FAILED_CREATE.to_owned(),
        message: cut(&format!("Job {:?}: {message}", newest.involved_object.name.clone().unwrap_or_default())),
    })
}

fn pod_stall(pod: &Pod) -> Option<Stall> {
    let status = pod.status.as_ref()?;
    let containers = status.init_container_statuses.iter().flatten().chain(status.container_statuses.iter().flatten());
    for container in containers {
        let Some(waiting) = container.state.as_ref().and_then(|s| s.waiting.as_ref()) else { continue };
        let reason = waiting.reason.as_deref().unwrap_or_default();
        if WAITING_REASONS.contains(&reason) {
            let detail = waiting.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
            let message = format!("pod {}: container {:?} waits with {reason}{detail}", pod.name_any(), container.name);
            return Some(Stall { reason: reason.to_owned(), message: cut(&message) });
        }
    }
    let unschedulable =
        status.conditions.iter().flatten().find(|c| {
            c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable")
        })?;
    let detail = unschedulable.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
    Some(Stall {
        reason: "Unschedulable".to_owned(),
        message: cut(&format!("pod {} cannot be scheduled{detail}", pod.name_any())),
    })
}

/// `message` cut to [`MAX_MESSAGE_BYTES`] on a character boundary.
fn cut(message: &str) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message.to_owned();
    }
    let mut end = MAX_MESSAGE_BYTES - 4;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} …", &message[..end])
}

/// `status` with the `Stalled` condition for `stall`: `True` with its
/// reason and message, `False` once a run that was stalled is not, none for
/// a run that never was. Its transition time moves only when its status
/// does: a stall that changes reason (ErrImagePull, ImagePullBackOff) is one
/// stall, counted from its start.
pub fn with_stall(
    mut status: JobRunStatus,
    previous: Option<&JobRunStatus>,
    stall: Option<&Stall>,
    now: &Time,
) -> JobRunStatus {
    let before = previous.and_then(stalled_condition);
    let (state, reason, message) = match (stall, before) {
        (Some(stall), _) => ("True", stall.reason.clone(), stall.message.clone()),
        (None, Some(_)) => ("False", NOT_STALLED.to_owned(), "no pod of the Job is stalled".to_owned()),
        (None, None) => return status,
    };
    let since = before.filter(|c| c.status == state).and_then(|c| c.last_transition_time.clone());
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    conditions.retain(|c| c.type_ != CONDITION_STALLED);
    conditions.push(JobCondition {
        type_: CONDITION_STALLED.to_owned(),
        status: state.to_owned(),
        reason: Some(reason),
        message: Some(message),
        last_transition_time: Some(since.unwrap_or_else(|| now.clone())),
        last_probe_time: None,
    });
    status
}

/// The run's `Stalled` condition, if it has one.
pub fn stalled_condition(status: &JobRunStatus) -> Option<&JobCondition> {
    status.conditions.iter().flatten().find(|c| c.type_ == CONDITION_STALLED)
}

/// The template's `runPolicy.stalledDeadlineSeconds`.
pub fn stalled_deadline(template: Option<&JobTemplate>) -> Option<Duration> {
    let seconds = template.and_then(|t| t.spec.run_policy.as_ref()).and_then(|p| p.stalled_deadline_seconds)?;
    Some(Duration::from_secs(u64::try_from(seconds).unwrap_or(0)))
}
