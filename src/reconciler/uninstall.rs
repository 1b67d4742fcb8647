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
            set_finalizer(job, &namespaced, false).await?;
            info!(job = %job.name_any(), namespace = ?job.namespace(), "released");
            released += 1;
        }
    }
    Ok(released)
}
