//! The event-driven controller: watches JobRuns and the Jobs they own, and
//! reconciles each run with [`reconcile::reconcile`]. No polling: a run is
//! reconciled when it or its Job changes, or when a retry is due.

mod context;
mod error;
mod informer;
mod permissions;
mod reconcile;

use std::net::SocketAddr;
use std::sync::Arc;

use futures::{StreamExt, future};
use k8s_openapi::api::batch::v1::Job;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use context::{Backoff, Context};
pub use error::ReconcileError;
use informer::Informer;
pub use permissions::{CALLBACK_SECRET_PERMISSION, PERMISSIONS, Permission};
use reconcile::{error_policy, reconcile};

use crate::crd::{JobRun, JobTemplate};
use crate::merge::{LABEL_MANAGED_BY, MANAGER};
use crate::telemetry::{self, Metrics, Readiness};

/// Which namespaces the operator watches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    All,
    Namespaces(Vec<String>),
}

impl Scope {
    /// No namespace given means all of them.
    pub fn from_namespaces(namespaces: Vec<String>) -> Self {
        let namespaces: Vec<String> = namespaces.into_iter().filter(|n| !n.is_empty()).collect();
        if namespaces.is_empty() { Self::All } else { Self::Namespaces(namespaces) }
    }
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// The operator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot connect to Kubernetes (kubeconfig or in-cluster): {0}")]
    Client(#[source] kube::Error),
    #[error(transparent)]
    Serve(#[from] telemetry::ServeError),
    #[error("health and metrics endpoint failed: {0}")]
    ServeIo(#[source] std::io::Error),
}

/// Runs the operator until SIGTERM or Ctrl-C, then drains in-flight
/// reconciliations and stops.
pub async fn run(scope: Scope, listen: SocketAddr) -> Result<(), StartError> {
    let client = Client::try_default().await.map_err(StartError::Client)?;
    run_with_client(client, scope, listen, shutdown_signal()).await
}

/// Runs the operator with `client` until `shutdown` completes. The e2e
/// suites call this to run the operator in-process.
pub async fn run_with_client(
    client: Client,
    scope: Scope,
    listen: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let metrics = Arc::new(Metrics::default());
    let readiness = Readiness::default();
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut stop_rx = stop_rx.clone();
        async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        }
    };
    tokio::spawn(async move {
        shutdown.await;
        info!("shutdown requested, draining");
        let _ = stop_tx.send(true);
    });

    let server = telemetry::serve(listen, metrics.clone(), readiness.clone(), stopped()).await?;
    info!(%listen, ?scope, "starting job-template-run controller");

    let namespaces: Vec<Option<String>> = match &scope {
        Scope::All => vec![None],
        Scope::Namespaces(list) => list.iter().cloned().map(Some).collect(),
    };
    let (controllers, ready_signals): (Vec<_>, Vec<_>) = namespaces
        .iter()
        .map(|namespace| controller(&client, namespace.as_deref(), metrics.clone(), stopped()))
        .unzip();
    tokio::spawn(async move {
        future::join_all(ready_signals).await;
        readiness.set_ready();
        info!("caches synced, ready");
    });
    let (served, _) = tokio::join!(server, future::join_all(controllers));
    served.map_err(StartError::ServeIo)?;
    info!("stopped");
    Ok(())
}

/// One controller for one namespace (or all): its run loop, and a future
/// that completes when its three caches have synced.
fn controller<S>(
    client: &Client,
    namespace: Option<&str>,
    metrics: Arc<Metrics>,
    stopped: S,
) -> (impl Future<Output = ()> + use<S>, impl Future<Output = ()> + use<S>)
where
    S: Future<Output = ()> + Send + Sync + 'static,
{
    let (templates, template_events) = Informer::new(api::<JobTemplate>(client, namespace), watcher::Config::default());
    let template_informer = template_events.for_each(|event| {
        if let Err(error) = event {
            warn!(%error, "JobTemplate watch failed, retrying with backoff");
        }
        future::ready(())
    });
    let managed = watcher::Config::default().labels(&format!("{LABEL_MANAGED_BY}={MANAGER}"));
    let (jobs, job_events) = Informer::new(api::<Job>(client, namespace), managed);
    let (runs, run_events) = Informer::new(api::<JobRun>(client, namespace), watcher::Config::default());

    let reporter = Reporter { controller: MANAGER.into(), instance: std::env::var("POD_NAME").ok() };
    let context = Arc::new(Context {
        client: client.clone(),
        templates: templates.store.clone(),
        jobs: jobs.store.clone(),
        recorder: Recorder::new(client.clone(), reporter),
        metrics,
        backoff: Backoff::default(),
    });
    // A deleted Job must wake its run (JobLost), so Job deletions count too.
    let controller = Controller::for_stream(run_events.applied_objects(), runs.store.clone())
        .owns_stream(job_events.touched_objects())
        .graceful_shutdown_on(stopped);
    let scope = namespace.unwrap_or("all namespaces").to_owned();
    let ready = async move {
        future::join3(
            runs.synced("jobruns", scope.clone()),
            jobs.synced("jobs", scope.clone()),
            templates.synced("jobtemplates", scope),
        )
        .await;
    };
    let run_loop = async move {
        let reconciled = controller.run(reconcile, error_policy, context).for_each(|result| {
            match result {
                // A run deleted while a reconcile was queued: nothing to do.
                Err(kube::runtime::controller::Error::ObjectNotFound(object)) => debug!(%object, "run is gone"),
                // Reconcile errors were logged and retried by `error_policy`.
                Err(kube::runtime::controller::Error::ReconcilerFailed(..)) => {}
                Err(error) => error!(%error, "controller error"),
                Ok(_) => {}
            }
            future::ready(())
        });
        // The template informer has no end of its own; it stops with the controller.
        future::select(Box::pin(reconciled), Box::pin(template_informer)).await;
    };
    (run_loop, ready)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                tokio::select! { _ = ctrl_c => {}, _ = sigterm.recv() => {} }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
