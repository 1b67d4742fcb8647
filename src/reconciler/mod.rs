//! The event-driven controller: watches JobRuns and the Jobs they own, and
//! reconciles each run with [`reconcile::reconcile`]. No polling: a run is
//! reconciled when it or its Job changes, or when a retry is due.

mod by_template;
mod callback;
mod context;
mod deliveries;
mod error;
mod informer;
mod janitor;
mod leader;
mod permissions;
mod reconcile;
mod templates;
mod uninstall;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, future};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Pod};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, WatchStreamExt, controller, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;
use tracing::{debug, error, info};

use by_template::RunsByTemplate;
pub use callback::{CallbackOptions, CallbackSetupError, IDEMPOTENCY_HEADER, SIGNATURE_HEADER, Sender, signature};
use context::{Backoff, Context, Gate};
pub use error::ReconcileError;
use informer::Informer;
pub use leader::{LeaderElection, LeaderError, Timing};
use merge::{FAILED_CREATE, prune_event, prune_job, prune_pod, prune_run, prune_template};
pub use permissions::{CALLBACK_SECRET_PERMISSION, LEADER_ELECTION_PERMISSION, PERMISSIONS, Permission};
pub use reconcile::FIELD_MANAGER;
use reconcile::{JOB_NAME_LABEL, error_policy, reconcile};
pub use uninstall::{ReleaseError, release_finalizers};

use crate::crd::{JobRun, JobTemplate};
use crate::merge::{self, LABEL_MANAGED_BY, MANAGER, Settings};
use crate::telemetry::{self, Health, Metrics};

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
    #[error(transparent)]
    Callback(#[from] CallbackSetupError),
}

/// How the operator runs.
#[derive(Clone, Debug)]
pub struct Options {
    pub scope: Scope,
    /// Address of /healthz, /readyz and /metrics.
    pub listen: SocketAddr,
    pub settings: Settings,
    /// Reconciles at once, per watched namespace (or for all).
    pub concurrency: u16,
    /// Callback attempts at once, per watched namespace (or for all),
    /// beside the reconciles.
    pub callback_concurrency: u16,
    /// How long a watch may fail before /healthz answers 503.
    pub watch_failure_bound: Duration,
    /// Reconcile only while holding this Lease; `None`: always.
    pub leader: Option<LeaderOptions>,
    /// The callback sender's guard and signing key.
    pub callback: CallbackOptions,
}

/// Where and as whom to take part in leader election.
#[derive(Clone, Debug)]
pub struct LeaderOptions {
    pub namespace: String,
    pub lease_name: String,
    pub identity: String,
    pub lease_duration: Duration,
}

impl Options {
    /// The defaults of the `controller` command for `scope` and `listen`.
    pub fn new(scope: Scope, listen: SocketAddr) -> Self {
        Self {
            scope,
            listen,
            settings: Settings::default(),
            concurrency: 32,
            callback_concurrency: 16,
            watch_failure_bound: Duration::from_secs(120),
            leader: None,
            callback: CallbackOptions::default(),
        }
    }
}

/// Runs the operator until SIGTERM or Ctrl-C, then drains in-flight
/// reconciliations and stops.
pub async fn run(mut options: Options) -> Result<(), StartError> {
    let config = kube::Config::infer().await.map_err(|e| StartError::Client(kube::Error::InferConfig(e)))?;
    options.callback.guard.api_server.extend(api_server_addresses(&config.cluster_url).await);
    let client = Client::try_from(config).map_err(StartError::Client)?;
    run_with_client(client, options, shutdown_signal()).await
}

/// The API server's addresses, which no callback may reach.
async fn api_server_addresses(url: &http::Uri) -> Vec<SocketAddr> {
    let Some(host) = url.host() else { return Vec::new() };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_u16().unwrap_or(if url.scheme_str() == Some("http") { 80 } else { 443 });
    match tokio::net::lookup_host((host, port)).await {
        Ok(found) => found.collect(),
        Err(error) => {
            tracing::warn!(%host, %error, "cannot resolve the API server's address for the callback guard");
            Vec::new()
        }
    }
}

/// Runs the operator with `client` until `shutdown` completes. The e2e
/// suites call this to run the operator in-process.
pub async fn run_with_client(
    client: Client,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let sender = Arc::new(Sender::new(&options.callback, options.settings.callback.timeout)?);
    let metrics = Arc::new(Metrics::default());
    let health = Health::new(options.watch_failure_bound);
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopping = stop_rx.clone();
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

    let server = telemetry::serve(options.listen, metrics.clone(), health.clone(), stopped()).await?;
    info!(listen = %options.listen, scope = ?options.scope, "starting job-template-run controller");
    let (leading_tx, leading) = watch::channel(options.leader.is_none());
    // The Lease is released only once the controllers have drained, so a
    // new leader never overlaps this one's last reconciles.
    let (drained_tx, drained_rx) = tokio::sync::oneshot::channel::<()>();
    let mut election_task = None;
    match &options.leader {
        None => health.set_leading(true),
        Some(leader) => {
            let election = LeaderElection::new(
                client.clone(),
                &leader.namespace,
                &leader.lease_name,
                &leader.identity,
                leader.lease_duration,
            );
            election_task = Some(tokio::spawn(election.run(leading_tx, async move {
                let _ = drained_rx.await;
            })));
            let (health, mut leading) = (health.clone(), leading.clone());
            tokio::spawn(async move {
                while leading.changed().await.is_ok() {
                    let now = *leading.borrow_and_update();
                    health.set_leading(now);
                    info!(leading = now, "leadership changed");
                }
            });
        }
    }

    let namespaces: Vec<Option<String>> = match &options.scope {
        Scope::All => vec![None],
        Scope::Namespaces(list) => list.iter().cloned().map(Some).collect(),
    };
    let shared =
        Shared { client, metrics, health: health.clone(), options: options.clone(), leading, stopping, sender };
    let (controllers, ready_signals): (Vec<_>, Vec<_>) =
        namespaces.iter().map(|namespace| controller(&shared, namespace.as_deref(), stopped())).unzip();
    tokio::spawn(async move {
        future::join_all(ready_signals).await;
        health.set_synced();
        info!("caches synced, ready");
    });
    let (served, _) = tokio::join!(server, future::join_all(controllers));
    let _ = drained_tx.send(());
    if let Some(task) = election_task {
        let _ = task.await;
    }
    served.map_err(StartError::ServeIo)?;
    info!("stopped");
    Ok(())
}

/// What every namespace's controller shares.
struct Shared {
    client: Client,
    metrics: Arc<Metrics>,
    health: Health,
    options: Options,
    leading: watch::Receiver<bool>,
    stopping: watch::Receiver<bool>,
    sender: Arc<Sender>,
}

/// One controller for one namespace (or all): its run loop, and a future
/// that completes when its three caches have synced.
fn controller<S>(
    shared: &Shared,
    namespace: Option<&str>,
    stopped: S,
) -> (impl Future<Output = ()> + use<S>, impl Future<Output = ()> + use<S>)
where
    S: Future<Output = ()> + Send + Sync + 'static,
{
    let client = &shared.client;
    let scope = namespace.unwrap_or("all namespaces").to_owned();
    let informer = |kind: &str| format!("{kind} in {scope}");
    let (templates, template_events) = Informer::new(
        api::<JobTemplate>(client, namespace),
        watcher::Config::default(),
        prune_template,
        informer("jobtemplates"),
        shared.health.clone(),
    );
    let managed = watcher::Config::default().labels(&format!("{LABEL_MANAGED_BY}={MANAGER}"));
    let (jobs, job_events) =
        Informer::new(api::<Job>(client, namespace), managed, prune_job, informer("jobs"), shared.health.clone());
    // The pods of the operator's Jobs (they carry the run's label) and the
    // Job controller's FailedCreate Events: what says why a run is stalled.
    let of_runs = watcher::Config::default().labels(merge::LABEL_RUN);
    let (pods, pod_events) =
        Informer::new(api::<Pod>(client, namespace), of_runs, prune_pod, informer("pods"), shared.health.clone());
    let failed_creates = watcher::Config::default().fields(&format!("involvedObject.kind=Job,reason={FAILED_CREATE}"));
    let (events, event_events) = Informer::new(
        api::<CoreEvent>(client, namespace),
        failed_creates,
        prune_event,
        informer("events"),
        shared.health.clone(),
    );
    let (runs, run_events) = Informer::new(
        api::<JobRun>(client, namespace),
        watcher::Config::default(),
        prune_run,
        informer("jobruns"),
        shared.health.clone(),
    );

    let (synced_tx, synced) = watch::channel(false);
    let by_template = RunsByTemplate::default();
    let (wakes_tx, wakes) = futures::channel::mpsc::unbounded::<ObjectRef<JobRun>>();
    let reporter = Reporter { controller: MANAGER.into(), instance: std::env::var("POD_NAME").ok() };
    let context = Arc::new(Context {
        client: client.clone(),
        runs: runs.store.clone(),
        templates: templates.store.clone(),
        jobs: jobs.store.clone(),
        pods: pods.store.clone(),
        events: events.store.clone(),
        recorder: Recorder::new(client.clone(), reporter),
        metrics: shared.metrics.clone(),
        backoff: Backoff::default(),
        settings: shared.options.settings.clone(),
        gate: Gate { synced: synced.clone(), leading: shared.leading.clone() },
        sender: shared.sender.clone(),
        deliveries: deliveries::Deliveries::new(shared.options.callback_concurrency),
        wakes: wakes_tx,
        by_template: by_template.clone(),
    });

    // Jobs being deleted while they hold the operator's finalizer also go
    // to the janitor: their run may be gone, and nothing else would let go.
    let (doomed_tx, doomed_rx) = futures::channel::mpsc::unbounded::<Job>();
    let job_events = job_events.inspect(move |event| {
        if let Ok(watcher::Event::Apply(job) | watcher::Event::InitApply(job)) = event
            && job.metadata.deletion_timestamp.is_some()
            && merge::holds_finalizer(job)
        {
            let _ = doomed_tx.unbounded_send(job.clone());
        }
    });
    // A replica that was not leading dropped those Jobs' events: when it
    // gains the lead it looks at every Job of its cache that is being
    // deleted and holds the finalizer (a run deleted during the lease gap).
    let cached_jobs = jobs.store.clone();
    let doomed_on_leadership = leadership_gained(shared.leading.clone()).flat_map(move |()| {
        let doomed: Vec<Job> = cached_jobs
            .state()
            .into_iter()
            .filter(|job| job.metadata.deletion_timestamp.is_some() && merge::holds_finalizer(job))
            .map(|job| (*job).clone())
            .collect();
        info!(jobs = doomed.len(), "leading: looking at the Jobs being deleted that hold the finalizer");
        futures::stream::iter(doomed)
    });
    let janitor =
        Controller::for_stream(futures::stream::select(doomed_rx, doomed_on_leadership).map(Ok), jobs.store.clone())
            .with_config(controller::Config::default().concurrency(shared.options.concurrency))
            .run(janitor::release, janitor::error_policy, context.clone())
            .for_each(|_| future::ready(()));

    // Each template's status (`Valid`): every template event, and all of
    // them when this replica gains the lead.
    let (template_tx, template_rx) = futures::channel::mpsc::unbounded::<JobTemplate>();
    let template_events = template_events.inspect(move |event| {
        if let Ok(watcher::Event::Apply(template) | watcher::Event::InitApply(template)) = event {
            let _ = template_tx.unbounded_send(template.clone());
        }
    });
    let status_writer = Arc::new(templates::Templates::new(context.clone()));
    let template_status = Controller::for_stream(template_rx.map(Ok), templates.store.clone())
        .with_config(controller::Config::default().concurrency(shared.options.concurrency))
        .reconcile_all_on(leadership_gained(shared.leading.clone()))
        .run(templates::write_status, templates::error_policy, status_writer.clone())
        .for_each(move |result| {
            // A template deleted while its retry was queued: its backoff is forgotten.
            if let Err(kube::runtime::controller::Error::ObjectNotFound(object)) = result {
                status_writer.forget_gone(&object);
            }
            future::ready(())
        });

    // A template that appears (or changes) wakes the unfinished runs that
    // name it, from an index kept beside the runs cache.
    let waiting = by_template.clone();
    let indexed = by_template.clone();
    let run_events = run_events.inspect(move |event| {
        if let Ok(event) = event {
            indexed.observe(event);
        }
    });
    let template_wakes = move |template: JobTemplate| waiting.of(template.namespace(), template.name_any());
    // A pod or a FailedCreate Event wakes the run whose Job it belongs to.
    let job_store = jobs.store.clone();
    let run_of_job = move |namespace: Option<String>, job: Option<String>| {
        let job = job_store.get(&ObjectRef::new(&job?).within(namespace.as_deref()?))?;
        let owner = merge::controlling_run(&job)?;
        Some(ObjectRef::<JobRun>::new(&owner.name).within(namespace.as_deref()?))
    };
    let run_of_job_too = run_of_job.clone();
    let pod_wakes = move |pod: Pod| run_of_job(pod.namespace(), pod.labels().get(JOB_NAME_LABEL).cloned());
    let event_wakes = move |event: CoreEvent| run_of_job_too(event.namespace(), event.involved_object.name.clone());
    let leadership_gained = leadership_gained(shared.leading.clone());
    let config = controller::Config::default().concurrency(shared.options.concurrency);
    // A deleted Job must wake its run (JobLost), so Job deletions count too.
    let controller = Controller::for_stream(run_events.applied_objects(), runs.store.clone())
        .with_config(config)
        .owns_stream(job_events.touched_objects())
        .watches_stream(template_events.touched_objects(), template_wakes)
        .watches_stream(pod_events.touched_objects(), pod_wakes)
        .watches_stream(event_events.touched_objects(), event_wakes)
        .reconcile_all_on(leadership_gained)
        .reconcile_on(wakes)
        .graceful_shutdown_on(stopped);
    // Until all three caches have synced, every reconcile and janitor step
    // waits at the gate, having done nothing, and kube's runner (which holds
    // reconciles until the runs cache is ready) does not end even once shut
    // down. A shutdown then has nothing to drain: the loop ends at once.
    let mut stopping = shared.stopping.clone();
    let stopped_before_sync = async move {
        let _ = stopping.wait_for(|stop| *stop).await;
        if *synced.borrow() {
            future::pending::<()>().await;
        }
    };
    let ready = async move {
        future::join5(
            runs.synced("jobruns", scope.clone()),
            jobs.synced("jobs", scope.clone()),
            templates.synced("jobtemplates", scope.clone()),
            pods.synced("pods", scope.clone()),
            events.synced("events", scope),
        )
        .await;
        synced_tx.send_replace(true);
    };
    let run_loop = async move {
        let reconciled = controller.run(reconcile, error_policy, context.clone()).for_each(|result| {
            match result {
                // A run deleted while a reconcile was queued (every failing
                // run has its retry queued): nothing to do, and its backoff
                // is forgotten.
                Err(kube::runtime::controller::Error::ObjectNotFound(object)) => {
                    debug!(%object, "run is gone");
                    context.backoff.forget_gone(&object);
                }
                // Reconcile errors were logged and retried by `error_policy`.
                Err(kube::runtime::controller::Error::ReconcilerFailed(..)) => {}
                Err(error) => error!(%error, "controller error"),
                Ok(_) => {}
            }
            future::ready(())
        });
        // The janitor's steps are idempotent: it stops with the controller.
        tokio::select! {
            _ = reconciled => {}
            _ = janitor => {}
            _ = template_status => {}
            _ = stopped_before_sync => {}
        }
        // Callback attempts in flight end (within the callback timeout) and
        // are recorded; queued ones are dropped, for the next leader.
        context.deliveries.drain().await;
    };
    (run_loop, ready)
}

/// Fires each time this replica becomes the leader: every run is looked at
/// again, since the previous leader may have left work half-done.
fn leadership_gained(leading: watch::Receiver<bool>) -> impl futures::Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(leading, |mut leading| async move {
        loop {
            leading.changed().await.ok()?;
            if *leading.borrow_and_update() {
                return Some(((), leading));
            }
        }
    })
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
