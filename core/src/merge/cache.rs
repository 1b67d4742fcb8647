//! What the operator's watch caches keep of each object: what the
//! decisions read, and nothing else. The operator prunes every watched
//! object with these before it is stored; the fixture world prunes what it
//! hands to a reconcile as its cache the same way, so a decision that reads
//! a field the cache drops fails a fixture, not production.

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{ContainerState, ContainerStatus, Event, ObjectReference, Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::status::is_finished;
use crate::crd::{JobRun, JobTemplate};

/// Drops what no decision reads: the managed fields and the last-applied
/// annotation of every object.
pub fn prune_metadata(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// A cached Job keeps its metadata, its status and `spec.suspend` (queued
/// and cancelled runs read it): the decisions read its name, owner,
/// finalizers, deletion and status, never its pod template.
pub fn prune_job(job: &mut Job) {
    prune_metadata(&mut job.metadata);
    job.spec = job.spec.take().map(|spec| JobSpec { suspend: spec.suspend, ..JobSpec::default() });
}

/// A finished run never renders a Job again: its overrides are dropped
/// from the cache (`command` and `args` can be 2 MiB each, `env` and
/// `annotations` 256 KiB); an unfinished one keeps them.
pub fn prune_run(run: &mut JobRun) {
    prune_metadata(&mut run.metadata);
    if is_finished(run) {
        run.spec.command = None;
        run.spec.args = None;
        run.spec.env = None;
        run.spec.annotations = None;
    }
}

pub fn prune_template(template: &mut JobTemplate) {
    prune_metadata(&mut template.metadata);
}

/// A cached pod keeps what [`super::stall`] reads: its name, labels and
/// deletion, its phase, its `PodScheduled` condition and its containers'
/// waiting states; never its spec.
pub fn prune_pod(pod: &mut Pod) {
    prune_metadata(&mut pod.metadata);
    pod.metadata.annotations = None;
    pod.metadata.owner_references = None;
    pod.spec = None;
    if let Some(status) = pod.status.as_mut() {
        let waiting = |statuses: &mut Option<Vec<ContainerStatus>>| {
            for container in statuses.iter_mut().flatten() {
                let waiting = container.state.as_ref().and_then(|s| s.waiting.clone());
                *container = ContainerStatus {
                    name: std::mem::take(&mut container.name),
                    state: waiting
                        .map(|waiting| ContainerState { waiting: Some(waiting), ..ContainerState::default() }),
                    ..ContainerStatus::default()
                };
            }
        };
        waiting(&mut status.container_statuses);
        waiting(&mut status.init_container_statuses);
        if let Some(conditions) = status.conditions.as_mut() {
            conditions.retain(|c| c.type_ == "PodScheduled");
        }
        *status = PodStatus {
            phase: status.phase.take(),
            conditions: status.conditions.take(),
            container_statuses: status.container_statuses.take(),
            init_container_statuses: status.init_container_statuses.take(),
            ..PodStatus::default()
        };
    }
}

/// A cached Event keeps which Job it is about, its reason, message and time.
pub fn prune_event(event: &mut Event) {
    prune_metadata(&mut event.metadata);
    event.metadata.annotations = None;
    event.metadata.labels = None;
    *event = Event {
        metadata: std::mem::take(&mut event.metadata),
        involved_object: ObjectReference {
            kind: event.involved_object.kind.take(),
            name: event.involved_object.name.take(),
            namespace: event.involved_object.namespace.take(),
            ..ObjectReference::default()
        },
        reason: event.reason.take(),
        message: event.message.take(),
        last_timestamp: event.last_timestamp.take(),
        event_time: event.event_time.take(),
        ..Event::default()
    };
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::batch::v1::JobStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

    use super::*;
    use crate::crd::{JobRunSpec, JobRunStatus, Phase};

    fn heavy_meta() -> ObjectMeta {
        ObjectMeta {
            name: Some("x".into()),
            managed_fields: Some(vec![ManagedFieldsEntry::default()]),
            annotations: Some(BTreeMap::from([
                ("kubectl.kubernetes.io/last-applied-configuration".to_owned(), "{…}".to_owned()),
                ("kept".to_owned(), "yes".to_owned()),
            ])),
            ..ObjectMeta::default()
        }
    }

    fn assert_light(meta: &ObjectMeta) {
        assert_eq!(meta.managed_fields, None);
        let annotations = meta.annotations.clone().unwrap_or_default();
        assert_eq!(annotations, BTreeMap::from([("kept".to_owned(), "yes".to_owned())]));
    }

    #[test]
    fn a_cached_job_keeps_its_name_status_and_suspend_and_drops_its_pod_template_and_managed_fields() {
        let mut job = Job {
            metadata: heavy_meta(),
            spec: Some(JobSpec { suspend: Some(true), parallelism: Some(3), ..JobSpec::default() }),
            status: Some(JobStatus { active: Some(1), ..JobStatus::default() }),
        };
        prune_job(&mut job);
        assert_light(&job.metadata);
        assert_eq!(job.spec, Some(JobSpec { suspend: Some(true), ..JobSpec::default() }));
        assert_eq!(job.status.and_then(|s| s.active), Some(1));
    }

    #[test]
    fn a_finished_run_drops_its_overrides_and_an_unfinished_one_keeps_them() {
        let spec =
            JobRunSpec { command: Some(vec!["sh".into()]), args: Some(vec!["-c".into()]), ..JobRunSpec::default() };
        let mut running = JobRun { metadata: heavy_meta(), spec: spec.clone(), status: None };
        prune_run(&mut running);
        assert_light(&running.metadata);
        assert_eq!(running.spec, spec);
        let done = JobRunStatus { phase: Some(Phase::Succeeded), ..JobRunStatus::default() };
        let mut finished = JobRun { metadata: heavy_meta(), spec, status: Some(done) };
        prune_run(&mut finished);
        assert_eq!((finished.spec.command, finished.spec.args), (None, None));
        let mut template = JobTemplate { metadata: heavy_meta(), spec: Default::default(), status: None };
        prune_template(&mut template);
        assert_light(&template.metadata);
    }

    #[test]
    fn a_cached_pod_keeps_its_phase_scheduling_and_waiting_states_and_an_event_its_job_reason_and_message() {
        use k8s_openapi::api::core::v1::{ContainerStateRunning, ContainerStateWaiting, PodCondition, PodSpec};
        let waiting = ContainerState {
            waiting: Some(ContainerStateWaiting { reason: Some("ErrImagePull".into()), message: Some("no".into()) }),
            running: Some(ContainerStateRunning::default()),
            ..ContainerState::default()
        };
        let mut pod = Pod {
            metadata: heavy_meta(),
            spec: Some(PodSpec::default()),
            status: Some(PodStatus {
                phase: Some("Pending".into()),
                host_ip: Some("10.0.0.1".into()),
                conditions: Some(vec![
                    PodCondition { type_: "PodScheduled".into(), status: "False".into(), ..PodCondition::default() },
                    PodCondition { type_: "Ready".into(), status: "False".into(), ..PodCondition::default() },
                ]),
                container_statuses: Some(vec![ContainerStatus {
                    name: "main".into(),
                    image: "registry.invalid/x".into(),
                    state: Some(waiting.clone()),
                    ..ContainerStatus::default()
                }]),
                init_container_statuses: Some(vec![ContainerStatus {
                    name: "init".into(),
                    state: Some(waiting),
                    ..ContainerStatus::default()
                }]),
                ..PodStatus::default()
            }),
        };
        prune_pod(&mut pod);
        assert_eq!(pod.metadata.managed_fields, None);
        assert_eq!(pod.metadata.annotations, None, "a pod's annotations are no rule's");
        assert_eq!(pod.spec, None);
        let status = pod.status.expect("kept");
        assert_eq!((status.phase.as_deref(), status.host_ip), (Some("Pending"), None));
        let conditions: Vec<&str> = status.conditions.iter().flatten().map(|c| c.type_.as_str()).collect();
        assert_eq!(conditions, ["PodScheduled"]);
        let container = &status.container_statuses.expect("kept")[0];
        assert_eq!((container.name.as_str(), container.image.as_str()), ("main", ""));
        let state = container.state.clone().expect("kept");
        assert_eq!(state.waiting.and_then(|w| w.reason).as_deref(), Some("ErrImagePull"));
        assert_eq!(state.running, None);
        let init = &status.init_container_statuses.expect("kept")[0];
        assert_eq!(init.state.clone().and_then(|s| s.waiting).and_then(|w| w.reason).as_deref(), Some("ErrImagePull"));

        let mut event = Event {
            metadata: heavy_meta(),
            involved_object: ObjectReference {
                kind: Some("Job".into()),
                name: Some("j".into()),
                namespace: Some("ns".into()),
                uid: Some("u".into()),
                ..ObjectReference::default()
            },
            reason: Some("FailedCreate".into()),
            message: Some("exceeded quota".into()),
            count: Some(3),
            last_timestamp: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            )),
            event_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            )),
            ..Event::default()
        };
        prune_event(&mut event);
        assert_eq!(event.metadata.managed_fields, None);
        assert_eq!(event.metadata.annotations, None);
        assert_eq!(event.metadata.name.as_deref(), Some("x"));
        assert_eq!(
            (event.involved_object.kind.as_deref(), event.involved_object.name.as_deref(), event.involved_object.uid),
            (Some("Job"), Some("j"), None)
        );
        assert_eq!(event.involved_object.namespace.as_deref(), Some("ns"));
        assert!(event.last_timestamp.is_some() && event.event_time.is_some(), "the newest Event is told by its times");
        assert_eq!(
            (event.reason.as_deref(), event.message.as_deref(), event.count),
            (Some("FailedCreate"), Some("exceeded quota"), None)
        );
    }
}
