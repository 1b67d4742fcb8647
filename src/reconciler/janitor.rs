//! The Job side of the finalizer: a Job being deleted whose run is gone
//! (deleted with it, or before it) is let go, so nothing stays Terminating.
//! A Job whose run is alive is the run's reconcile's to let go.

use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use tracing::warn;

use super::context::Context;
use super::error::ReconcileError;
use super::reconcile::set_finalizer;
use crate::crd::JobRun;
use crate::merge;

/// Releases `job` when [`merge::release_orphan`] says its run no longer
/// needs it; the run is read live unless the cache shows it alive.
pub async fn release(job: Arc<Job>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    ctx.gate.wait().await;
    if !ctx.gate.leading() || !merge::release_orphan(&job, None) {
        return Ok(Action::await_change());
    }
    let (Some(namespace), Some(owner)) = (job.namespace(), merge::controlling_run(&job)) else {
        set_finalizer(&job, &Api::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default()), false).await?;
        return Ok(Action::await_change());
    };
    let cached = ctx.runs.get(&ObjectRef::new(&owner.name).within(&namespace));
    if cached.is_some_and(|run| !merge::release_orphan(&job, Some(&run))) {
        return Ok(Action::await_change());
    }
    let runs: Api<JobRun> = Api::namespaced(ctx.client.clone(), &namespace);
    let name = owner.name.clone();
    let live = runs.get_opt(&name).await.map_err(|source| ReconcileError::GetRun { name, source })?;
    if merge::release_orphan(&job, live.as_ref()) {
        set_finalizer(&job, &Api::namespaced(ctx.client.clone(), &namespace), false).await?;
    }
    Ok(Action::await_change())
}

pub fn error_policy(job: Arc<Job>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    warn!(job = %job.name_any(), namespace = ?job.namespace(), %error, "cannot release the Job, will retry");
    ctx.metrics.reconcile_failed(error.metric_label());
    Action::requeue(std::time::Duration::from_secs(5))
}
