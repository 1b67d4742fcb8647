//! What the operator's watch caches keep of each object: what the
//! decisions read, and nothing else. The operator prunes every watched
//! object with these before it is stored; the fixture world prunes what it
//! hands to a reconcile as its cache the same way, so a decision that reads
//! a field the cache drops fails a fixture, not production.

use k8s_openapi::api::batch::v1::{Job, JobSpec};
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
/// from the cache (they can be 2 MiB each); an unfinished one keeps them.
pub fn prune_run(run: &mut JobRun) {
    prune_metadata(&mut run.metadata);
    if is_finished(run) {
        run.spec.command = None;
        run.spec.args = None;
    }
}

pub fn prune_template(template: &mut JobTemplate) {
    prune_metadata(&mut template.metadata);
}
