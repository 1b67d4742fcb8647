//! `release-finalizers`: the uninstall step that lets every Job go, so no
//! Job stays Terminating once the operator is gone.

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use tracing::info;

use super::error::ReconcileError;
use super::reconcile::set_finalizer;
use super::{Scope, api};
use crate::merge::{self, LABEL_MANAGED_BY, MANAGER};

/// Why the finalizers could not all be removed.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("cannot list the operator's Jobs: {0}")]
    List(#[source] kube::Error),
    #[error("cannot read Job {name} again after a conflict: {source}")]
    Get { name: String, source: kube::Error },
    #[error(transparent)]
    Patch(#[from] ReconcileError),
}

/// Removes the operator's finalizer from every Job it manages in `scope`
/// and returns how many Jobs held it. Run it with the operator stopped
/// (scaled to zero), else it adds the finalizer to new Jobs again.
pub async fn release_finalizers(client: &Client, scope: &Scope) -> Result<usize, ReleaseError> {
    let namespaces: Vec<Option<&str>> = match scope {
        Scope::All => vec![None],
        Scope::Namespaces(list) => list.iter().map(|n| Some(n.as_str())).collect(),
    };
    let selector = ListParams::default().labels(&format!("{LABEL_MANAGED_BY}={MANAGER}"));
    let mut released = 0;
    for namespace in namespaces {
        let jobs = api::<Job>(client, namespace).list(&selector).await.map_err(ReleaseError::List)?;
        for job in jobs.items.iter().filter(|job| merge::holds_finalizer(job)) {
            let namespaced: Api<Job> = Api::namespaced(client.clone(), &job.namespace().unwrap_or_default());
            release(job.clone(), &namespaced).await?;
            info!(job = %job.name_any(), namespace = ?job.namespace(), "released");
            released += 1;
        }
    }
    Ok(released)
}

/// How often a release is tried again after the Job changed under it (the
/// Job controller updates a Job's status at any time).
const CONFLICT_RETRIES: usize = 5;

/// Removes the finalizer from `job`; on a 409, reads the Job again and
/// retries, until it is gone or no longer holds the finalizer.
async fn release(mut job: Job, jobs: &Api<Job>) -> Result<(), ReleaseError> {
    for _ in 0..CONFLICT_RETRIES {
        match set_finalizer(&job, jobs, false).await {
            Err(ReconcileError::PatchJob { source: kube::Error::Api(answer), .. }) if answer.is_conflict() => {
                let name = job.name_any();
                match jobs.get_opt(&name).await.map_err(|source| ReleaseError::Get { name, source })? {
                    Some(newer) if merge::holds_finalizer(&newer) => job = newer,
                    _ => return Ok(()),
                }
            }
            other => return other.map_err(ReleaseError::from),
        }
    }
    set_finalizer(&job, jobs, false).await.map_err(ReleaseError::from)
}
