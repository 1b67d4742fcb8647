//! The measured phases. Each runs on a fresh namespace, either for the
//! floor (the benchmark writes every object itself, no operator running)
//! or for an operator (the benchmark writes JobTemplates and JobRuns only).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e::TestNamespace;
use futures::future::try_join_all;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::DynamicObject;
use kube::{Client, ResourceExt};

use crate::error::{BenchError, Result};
use crate::objects::{self, JobKind};
use crate::observe::{MinimalMirror, Observer};

/// Who writes the Jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// The benchmark itself, with no operator running.
    Floor,
    /// The operator that is running, from the JobRuns.
    Operator,
}

/// What a burst creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BurstKind {
    /// JobRuns only; the operator makes the Jobs.
    Runs,
    /// Floor (a): the Jobs only.
    Jobs,
    /// Floor (b): all the JobRuns, then all the Jobs.
    RunsThenJobs,
}

/// Sizes of the phases.
#[derive(Debug, Clone)]
pub struct Plan {
    pub p1_runs: usize,
    pub p1_pause: Duration,
    pub burst: usize,
    pub p3_runs: usize,
    pub p3_concurrency: usize,
    pub clients: usize,
    pub big: usize,
}

/// The clients: one for sequential work, several for bursts.
pub struct Bench {
    pub client: Client,
    pub clients: Vec<Client>,
    pub plan: Plan,
    /// The cluster container's first process, to see when it is idle.
    pub cluster_pid: Option<u32>,
}

impl Bench {
    /// Waits (at most `max`) until the cluster's processes use less than a
    /// tenth of a core over a second: the Job controller, the garbage
    /// collector and the namespace controller have caught up with the last
    /// phase. Idle, the cluster uses about 3 % of a core.
    pub async fn settle(&self, max: Duration) -> Duration {
        let Some(pid) = self.cluster_pid else { return Duration::ZERO };
        let start = Instant::now();
        while start.elapsed() < max {
            let before = crate::operator::cpu_ticks(pid);
            tokio::time::sleep(Duration::from_secs(1)).await;
            if crate::operator::cpu_ticks(pid).saturating_sub(before) <= 10 {
                break;
            }
        }
        start.elapsed()
    }
}

/// How long a phase waits for the cluster to be idle before it starts.
const SETTLE: Duration = Duration::from_secs(30);

const WAIT: Duration = Duration::from_secs(120);

/// A namespace with the one template, and the watches on it.
pub struct Stage {
    pub namespace: TestNamespace,
    pub observer: Observer,
    client: Client,
}

impl Stage {
    pub async fn new(client: &Client, prefix: &str, kind: JobKind) -> Result<Self> {
        let namespace = TestNamespace::create(client, prefix).await.map_err(BenchError::Setup)?;
        let templates: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &namespace.name, &objects::job_template_resource());
        templates.create(&PostParams::default(), &objects::template(&namespace.name, kind)).await?;
        let observer = Observer::start(client, &namespace.name).await?;
        Ok(Self { namespace, observer, client: client.clone() })
    }

    pub fn name(&self) -> &str {
        &self.namespace.name
    }

    /// Deletes the namespace and waits until it is gone, so that its
    /// clean-up does not load the next phase.
    pub async fn finish(self) -> Result<()> {
        let name = self.namespace.name.clone();
        drop(self.observer);
        delete_namespace(&self.client, &name).await
    }
}

/// Problems the benchmark worked around, for the report's notes.
pub static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub fn warn(message: String) {
    eprintln!("bench: warning: {message}");
    WARNINGS.lock().unwrap_or_else(|p| p.into_inner()).push(message);
}

/// Deletes a namespace and waits until it is gone. Objects still held by a
/// finalizer after a minute (an operator that does not let its Jobs go)
/// have their finalizers removed, with a warning in the report.
pub async fn delete_namespace(client: &Client, name: &str) -> Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    match namespaces.delete(name, &DeleteParams::background()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let started = Instant::now();
    let mut forced = false;
    while namespaces.get_opt(name).await?.is_some() {
        let waited = started.elapsed();
        if waited > Duration::from_secs(60) && !forced {
            forced = true;
            let released = release_finalizers(client, name).await?;
            warn(format!(
                "namespace {name} was still terminating after 60 s; the benchmark removed the finalizers of {released} objects"
            ));
        }
        if waited > Duration::from_secs(300) {
            return Err(BenchError::Timeout { what: format!("namespace {name} to be deleted"), seconds: 300 });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

async fn release_finalizers(client: &Client, namespace: &str) -> Result<usize> {
    let patch = Patch::Merge(serde_json::json!({ "metadata": { "finalizers": null } }));
    let mut released = 0;
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    for job in jobs.list(&ListParams::default()).await?.items.iter().filter(|j| !j.finalizers().is_empty()) {
        jobs.patch(&job.name_any(), &PatchParams::default(), &patch).await?;
        released += 1;
    }
    let runs = runs_api(client, namespace);
    for run in runs.list(&ListParams::default()).await?.items.iter().filter(|r| !r.finalizers().is_empty()) {
        runs.patch(&run.name_any(), &PatchParams::default(), &patch).await?;
        released += 1;
    }
    Ok(released)
}

fn runs_api(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &objects::job_run_resource())
}

async fn create_run(client: &Client, namespace: &str, name: &str) -> Result<String> {
    let run = runs_api(client, namespace).create(&PostParams::default(), &objects::run(namespace, name)).await?;
    Ok(run.uid().unwrap_or_default())
}

async fn create_job(client: &Client, namespace: &str, name: &str, uid: Option<&str>, kind: JobKind) -> Result<()> {
    let job: Job = serde_json::from_value(objects::job(namespace, name, uid, kind))
        .map_err(|e| BenchError::Setup(format!("the floor's Job does not parse: {e}")))?;
    Api::<Job>::namespaced(client.clone(), namespace).create(&PostParams::default(), &job).await?;
    Ok(())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// What P1 saw.
#[derive(Debug, Clone, Default)]
pub struct Sequential {
    /// Create → the Job visible, in ms.
    pub samples: Vec<f64>,
    /// Per run, on the wall clock (to line up with the audit log).
    pub marks: Vec<Mark>,
}

#[derive(Debug, Clone)]
pub struct Mark {
    pub name: String,
    /// The create call was sent.
    pub sent: Timestamp,
    /// Its answer arrived.
    pub acked: Timestamp,
    /// The Job's watch event arrived.
    pub seen: Timestamp,
}

/// P1: runs one after the other at idle (suspended Jobs, a pause between
/// runs); each sample is create → the Job visible to a watch, in ms. The
/// floor creates the Job itself.
pub async fn p1(bench: &Bench, who: Who, prefix: &str) -> Result<Sequential> {
    bench.settle(SETTLE).await;
    let stage = Stage::new(&bench.client, prefix, JobKind::Suspended).await?;
    let mut seq = Sequential::default();
    // One unmeasured run first: the first write in a fresh namespace pays
    // for the connection and the API server's caches, whoever writes.
    for i in 0..=bench.plan.p1_runs {
        let name = format!("p1-{i:05}");
        let sent = Timestamp::now();
        let start = Instant::now();
        match who {
            Who::Floor => create_job(&bench.client, stage.name(), &name, None, JobKind::Suspended).await?,
            Who::Operator => {
                create_run(&bench.client, stage.name(), &name).await?;
            }
        }
        let acked = start.elapsed();
        let seen = stage.observer.wait_for(&format!("the Job of {name}"), WAIT, |s| s.job.get(&name).copied()).await?;
        if i > 0 {
            let took = seen.saturating_duration_since(start);
            seq.samples.push(ms(took));
            let wall = |d: Duration| jiff::SignedDuration::try_from(d).ok().and_then(|d| sent.checked_add(d).ok());
            let (acked, seen) = (wall(acked).unwrap_or(sent), wall(took).unwrap_or(sent));
            seq.marks.push(Mark { name, sent, acked, seen });
        }
        tokio::time::sleep(bench.plan.p1_pause).await;
    }
    stage.finish().await?;
    Ok(seq)
}

/// What a burst took.
#[derive(Debug, Clone)]
pub struct Burst {
    /// From the first create to the last Job visible, in s.
    pub total: f64,
    /// From the last JobRun acknowledged to the last Job visible, in s
    /// (for the floors: from the last Job acknowledged).
    pub lag: f64,
    /// When each Job became visible, in s from the start, sorted.
    pub timeline: Vec<f64>,
    /// JSON bytes of the namespace's JobRuns and Jobs, as listed afterwards.
    pub json_bytes: u64,
    /// Wall-clock window from the first create to the last Job visible.
    pub from: Timestamp,
    pub to: Timestamp,
}

/// P2: `plan.burst` objects created by `clients.len()` concurrent clients.
pub async fn p2(bench: &Bench, kind: BurstKind, prefix: &str, after: impl FnOnce()) -> Result<Burst> {
    bench.settle(SETTLE).await;
    let stage = Stage::new(&bench.client, prefix, JobKind::Suspended).await?;
    let namespace = stage.name().to_owned();
    let names: Vec<String> = (0..bench.plan.burst).map(|i| format!("b-{i:05}")).collect();
    let workers = bench.clients.len().max(1);
    let from = Timestamp::now();
    let start = Instant::now();
    let uids: HashMap<String, String> = if kind == BurstKind::Jobs {
        HashMap::new()
    } else {
        let acks = try_join_all(bench.clients.iter().enumerate().map(|(w, client)| {
            let (names, namespace) = (&names, &namespace);
            async move {
                let mut created = Vec::new();
                for name in names.iter().skip(w).step_by(workers) {
                    created.push((name.clone(), create_run(client, namespace, name).await?));
                }
                Ok::<_, BenchError>(created)
            }
        }))
        .await?;
        acks.into_iter().flatten().collect()
    };
    let runs_acked = Instant::now();
    if kind != BurstKind::Runs {
        let uids = Arc::new(uids);
        try_join_all(bench.clients.iter().enumerate().map(|(w, client)| {
            let (names, namespace, uids) = (&names, &namespace, uids.clone());
            async move {
                for name in names.iter().skip(w).step_by(workers) {
                    create_job(client, namespace, name, uids.get(name).map(String::as_str), JobKind::Suspended).await?;
                }
                Ok::<_, BenchError>(())
            }
        }))
        .await?;
    }
    let acked = Instant::now();
    let last_create = if kind == BurstKind::Runs { runs_acked } else { acked };
    let all = stage
        .observer
        .wait_for("every Job of the burst", WAIT * 2, |s| {
            names.iter().map(|n| s.job.get(n).copied()).collect::<Option<Vec<Instant>>>()
        })
        .await?;
    let to = Timestamp::now();
    let last = all.iter().max().copied().unwrap_or(start);
    let mut timeline: Vec<f64> = all.iter().map(|t| t.saturating_duration_since(start).as_secs_f64()).collect();
    timeline.sort_by(f64::total_cmp);
    after();
    let json_bytes = json_size(&bench.client, &namespace).await?;
    stage.finish().await?;
    Ok(Burst {
        total: last.saturating_duration_since(start).as_secs_f64(),
        lag: last.saturating_duration_since(last_create).as_secs_f64(),
        timeline,
        json_bytes,
        from,
        to,
    })
}

/// Bytes of the JSON of a namespace's JobRuns and Jobs.
async fn json_size(client: &Client, namespace: &str) -> Result<u64> {
    let runs = runs_api(client, namespace).list(&ListParams::default()).await?;
    let jobs = Api::<Job>::namespaced(client.clone(), namespace).list(&ListParams::default()).await?;
    let size = |v: serde_json::Result<Vec<u8>>| v.map(|b| b.len() as u64).unwrap_or(0);
    Ok(runs.items.iter().map(|r| size(serde_json::to_vec(r))).sum::<u64>()
        + jobs.items.iter().map(|j| size(serde_json::to_vec(j))).sum::<u64>())
}

/// What P3 saw.
#[derive(Debug, Clone)]
pub struct StatusLag {
    /// Job done (seen) → run `Finished=True` (seen), in ms.
    pub lags: Vec<f64>,
    pub runs: usize,
    /// Wall-clock window of the runs' whole lives, for the audit log.
    pub from: Timestamp,
    pub to: Timestamp,
}

/// P3: runs whose Jobs run (kwok completes the pod in about a second),
/// `plan.p3_concurrency` at a time; each sample is the Job's `Complete`
/// seen → the run's `Finished=True` seen. The floor creates the run and
/// the Job, and a minimal mirror writes the one status.
pub async fn p3(bench: &Bench, who: Who, prefix: &str) -> Result<StatusLag> {
    bench.settle(SETTLE).await;
    let stage = Stage::new(&bench.client, prefix, JobKind::Running).await?;
    let _mirror = match who {
        Who::Floor => Some(MinimalMirror::start(&bench.client, stage.name()).await?),
        Who::Operator => None,
    };
    let from = Timestamp::now();
    let names: Vec<String> = (0..bench.plan.p3_runs).map(|i| format!("p3-{i:05}")).collect();
    let workers = bench.plan.p3_concurrency.max(1);
    let lags = try_join_all((0..workers).map(|w| {
        let (names, stage, client) = (&names, &stage, &bench.client);
        async move {
            let mut lags = Vec::new();
            for name in names.iter().skip(w).step_by(workers) {
                let uid = create_run(client, stage.name(), name).await?;
                if who == Who::Floor {
                    create_job(client, stage.name(), name, Some(&uid), JobKind::Running).await?;
                }
                let (done, finished) = stage
                    .observer
                    .wait_for(&format!("run {name} to finish"), WAIT, |s| {
                        Some((s.job_done.get(name).copied()?, s.run_finished.get(name).copied()?))
                    })
                    .await?;
                let lag = if finished >= done {
                    ms(finished.duration_since(done))
                } else {
                    -ms(done.duration_since(finished))
                };
                lags.push(lag);
            }
            Ok::<_, BenchError>(lags)
        }
    }))
    .await?;
    // Late writes (Events, a last status) still belong to the runs' lives.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let to = Timestamp::now();
    stage.finish().await?;
    Ok(StatusLag { lags: lags.into_iter().flatten().collect(), runs: bench.plan.p3_runs, from, to })
}
