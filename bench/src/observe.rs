//! Seeing from outside: watches on the Jobs and JobRuns of one namespace
//! that record when each change first reached the benchmark.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, Patch, PatchParams};
use kube::core::DynamicObject;
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch};
use kube::{Client, ResourceExt};
use tokio::sync::{Notify, watch as signal};
use tokio::task::JoinHandle;

use crate::error::{BenchError, Result};
use crate::objects::{self, RUN_LABEL};

/// When the benchmark first saw each thing, by run name.
#[derive(Debug, Default)]
pub struct Seen {
    /// The run's Job exists.
    pub job: HashMap<String, Instant>,
    /// The run's Job has `Complete=True` or `Failed=True`.
    pub job_done: HashMap<String, Instant>,
    /// The run has `Finished=True`.
    pub run_finished: HashMap<String, Instant>,
}

/// Two watches (Jobs by the run label, JobRuns) on one namespace.
pub struct Observer {
    seen: Arc<Mutex<Seen>>,
    changed: Arc<Notify>,
    tasks: Vec<JoinHandle<()>>,
}

impl Observer {
    /// Starts both watches and returns once both have listed the namespace.
    pub async fn start(client: &Client, namespace: &str) -> Result<Self> {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let changed = Arc::new(Notify::new());
        let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
        let runs: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &objects::job_run_resource());
        let (jobs_ready, mut jobs_synced) = signal::channel(false);
        let (runs_ready, mut runs_synced) = signal::channel(false);
        let job_task = {
            let (seen, changed) = (seen.clone(), changed.clone());
            tokio::spawn(watch_each(jobs, jobs_ready, move |job: Job, now| {
                let Some(run) = job.labels().get(RUN_LABEL).cloned() else { return };
                let done = job.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|list| {
                    list.iter().any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
                });
                let mut seen = lock(&seen);
                if done {
                    seen.job_done.entry(run.clone()).or_insert(now);
                }
                seen.job.entry(run).or_insert(now);
                drop(seen);
                changed.notify_waiters();
            }))
        };
        let run_task = {
            let (seen, changed) = (seen.clone(), changed.clone());
            tokio::spawn(watch_each(runs, runs_ready, move |run: DynamicObject, now| {
                if objects::has_true_condition(run.data.get("status"), "Finished") {
                    lock(&seen).run_finished.entry(run.name_any()).or_insert(now);
                    changed.notify_waiters();
                }
            }))
        };
        let observer = Self { seen, changed, tasks: vec![job_task, run_task] };
        let synced = async {
            let _ = jobs_synced.wait_for(|ready| *ready).await;
            let _ = runs_synced.wait_for(|ready| *ready).await;
        };
        tokio::time::timeout(Duration::from_secs(30), synced)
            .await
            .map_err(|_| BenchError::Timeout { what: format!("the watches on namespace {namespace}"), seconds: 30 })?;
        Ok(observer)
    }

    pub fn seen(&self) -> MutexGuard<'_, Seen> {
        lock(&self.seen)
    }

    /// Waits until `check` finds what it needs in [`Seen`].
    pub async fn wait_for<T>(&self, what: &str, timeout: Duration, check: impl Fn(&Seen) -> Option<T>) -> Result<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(value) = check(&self.seen()) {
                return Ok(value);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(BenchError::Timeout { what: what.to_owned(), seconds: timeout.as_secs() });
            }
        }
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn lock(seen: &Mutex<Seen>) -> MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs a watcher on `api`, calling `record` with each object and the
/// instant its event arrived; flags `ready` after the first full list.
async fn watch_each<K>(api: Api<K>, ready: signal::Sender<bool>, mut record: impl FnMut(K, Instant))
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let stream = watch(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        let now = Instant::now();
        match event {
            Ok(Event::Apply(object) | Event::InitApply(object)) => record(object, now),
            Ok(Event::InitDone) => {
                let _ = ready.send(true);
            }
            Ok(_) => {}
            Err(e) => eprintln!("bench: watch error (retried): {e}"),
        }
    }
}

/// The floor's stand-in for an operator's status path: its own watch on
/// the namespace's Jobs, and on each Job's end one status write on its run.
pub struct MinimalMirror {
    task: JoinHandle<()>,
}

impl MinimalMirror {
    pub async fn start(client: &Client, namespace: &str) -> Result<Self> {
        let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
        let runs: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &objects::job_run_resource());
        let (ready, mut synced) = signal::channel(false);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let mut written = std::collections::HashSet::new();
        let watch_task = tokio::spawn(watch_each(jobs, ready, move |job: Job, _| {
            let done = job.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|list| {
                list.iter().any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
            });
            if let (true, Some(run)) = (done, job.labels().get(RUN_LABEL)) {
                let _ = tx.send(run.clone());
            }
        }));
        let task = tokio::spawn(async move {
            let _watch = AbortOnDrop(watch_task);
            while let Some(run) = rx.recv().await {
                if written.insert(run.clone()) {
                    let patch = Patch::Merge(objects::minimal_finished_status(&objects::now_rfc3339()));
                    if let Err(e) = runs.patch_status(&run, &PatchParams::default(), &patch).await {
                        eprintln!("bench: floor status write on {run} failed: {e}");
                    }
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(30), synced.wait_for(|ready| *ready))
            .await
            .map_err(|_| BenchError::Timeout { what: format!("the floor's watch on {namespace}"), seconds: 30 })?
            .map_err(|_| BenchError::Setup("the floor's watch ended".into()))?;
        Ok(Self { task })
    }
}

impl Drop for MinimalMirror {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
