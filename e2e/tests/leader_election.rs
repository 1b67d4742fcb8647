//! Tier 2 (e2e): leader election on a real Lease. Two `LeaderElection`s
//! campaign for one Lease in the test's namespace; no operator runs. An
//! [`Observer`] records every replica's `leading` at each change and, every
//! 100 ms, with the Lease's holder, for the whole test.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e::ClusterKind;
use e2e::suite::{self, Env, Test};
use e2e::wait;
use futures::FutureExt;
use job_template_run::reconciler::LeaderElection;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

const LEASE: &str = "job-template-run";
/// Short, so the takeover test is quick: renew deadline 4 s, retry 0.8 s.
const LEASE_DURATION: Duration = Duration::from_secs(6);

fn main() -> ExitCode {
    suite::main(ClusterKind::WithoutJobController, |_| {
        vec![
            Test::new("one_replica_leads_and_a_stopped_leader_hands_over_at_once", |e, ns| handover(e, ns).boxed()),
            Test::new("a_lease_left_by_a_vanished_holder_is_taken_after_its_duration", |e, ns| takeover(e, ns).boxed()),
        ]
    })
}

/// One campaigning replica.
struct Replica {
    leading: watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Replica {
    fn start(client: &Client, namespace: &str, identity: &str) -> Self {
        let election = LeaderElection::new(client.clone(), namespace, LEASE, identity, LEASE_DURATION);
        let (leading_tx, leading) = watch::channel(false);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(election.run(leading_tx, stopped.map(|_| ())));
        Self { leading, stop: Some(stop), task }
    }

    fn leads(&self) -> bool {
        *self.leading.borrow()
    }

    /// Stops campaigning and waits until the lease is released.
    async fn stop(mut self) -> Result<(), String> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .map_err(|_| "the election did not stop".to_owned())?
            .map_err(|e| format!("the election panicked: {e}"))
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn holder(leases: &Api<Lease>) -> Result<Option<String>, String> {
    let lease = leases.get(LEASE).await.map_err(|e| e.to_string())?;
    Ok(lease.spec.and_then(|s| s.holder_identity))
}

/// What the observer saw at one moment.
#[derive(Clone, Debug)]
struct Sample {
    /// Since the observer started.
    at: Duration,
    /// Each observed replica's `leading`, read at one instant.
    leading: Vec<bool>,
    /// The Lease's holder, read just after `leading`; only on the 100 ms
    /// ticks (`None`: not read at this sample, or the read failed).
    holder: Option<Option<String>>,
}

impl Sample {
    fn leaders(&self) -> usize {
        self.leading.iter().filter(|l| **l).count()
    }
}

/// Watches the replicas' `leading` (a sample at every change, so no moment
/// of two leaders can fall between samples) and polls the Lease every 100 ms.
struct Observer {
    started: Instant,
    samples: Arc<Mutex<Vec<Sample>>>,
    task: JoinHandle<()>,
}

impl Observer {
    fn start(leases: Api<Lease>, replicas: &[&Replica]) -> Self {
        let started = Instant::now();
        let samples = Arc::new(Mutex::new(Vec::new()));
        let watched: Vec<watch::Receiver<bool>> = replicas.iter().map(|r| r.leading.clone()).collect();
        let task = tokio::spawn(observe(leases, watched, started, samples.clone()));
        Self { started, samples, task }
    }

    /// Everything seen so far.
    fn samples(&self) -> Vec<Sample> {
        self.samples.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Time since the observer started.
    fn now(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn observe(
    leases: Api<Lease>,
    mut watched: Vec<watch::Receiver<bool>>,
    started: Instant,
    samples: Arc<Mutex<Vec<Sample>>>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut open = vec![true; watched.len()];
    loop {
        let changes: Vec<_> = watched
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| open[*i])
            .map(|(i, leading)| async move { (i, leading.changed().await.is_ok()) }.boxed())
            .collect();
        let change = async move {
            if changes.is_empty() {
                futures::future::pending().await
            } else {
                futures::future::select_all(changes).await.0
            }
        };
        let on_tick = tokio::select! {
            _ = tick.tick() => true,
            (i, sender_alive) = change => {
                // A stopped replica's last value stays readable.
                open[i] = sender_alive;
                false
            }
        };
        let leading = watched.iter().map(|leading| *leading.borrow()).collect();
        let holder = if on_tick { holder(&leases).await.ok() } else { None };
        let sample = Sample { at: started.elapsed(), leading, holder };
        samples.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(sample);
    }
}

/// Fails with the samples in which more than one replica led.
fn assert_never_two_leaders(samples: &[Sample]) -> Result<(), String> {
    let both: Vec<&Sample> = samples.iter().filter(|s| s.leaders() > 1).collect();
    match both.first() {
        None => Ok(()),
        Some(first) => Err(format!(
            "two replicas led at once in {} of {} samples, first at {:?}: {first:?}",
            both.len(),
            samples.len(),
            first.at
        )),
    }
}

/// The Lease holders read, in order, with repeats collapsed.
fn holders(samples: &[Sample]) -> Vec<Option<String>> {
    let mut seen: Vec<Option<String>> = Vec::new();
    for holder in samples.iter().filter_map(|s| s.holder.clone()) {
        if seen.last() != Some(&holder) {
            seen.push(holder);
        }
    }
    seen
}

async fn handover(env: Arc<Env>, namespace: String) -> Result<(), String> {
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &namespace);
    let a = Replica::start(&env.client, &namespace, "replica-a");
    wait::until(Duration::from_secs(10), "replica-a to lead", || async {
        if a.leads() { Ok(()) } else { Err("not leading".into()) }
    })
    .await?;
    let b = Replica::start(&env.client, &namespace, "replica-b");
    let observer = Observer::start(leases.clone(), &[&a, &b]);
    // More than a whole lease duration, watched throughout: a renewing
    // leader keeps the lease, and the standby never leads meanwhile.
    tokio::time::sleep(LEASE_DURATION + Duration::from_secs(2)).await;
    let before = observer.samples();
    let ticks = before.iter().filter(|s| s.holder.is_some()).count();
    if ticks < 50 {
        return Err(format!("only {ticks} Lease reads in {:?}: the observer fell behind", observer.now()));
    }
    if let Some(wrong) = before.iter().find(|s| s.leading != [true, false]) {
        return Err(format!("expected only replica-a to lead while it renews; at {:?}: {wrong:?}", wrong.at));
    }
    if holders(&before) != [Some("replica-a".to_owned())] {
        return Err(format!("while replica-a renewed, the Lease named {:?}", holders(&before)));
    }

    let stopped = observer.now();
    a.stop().await?;
    wait::until(Duration::from_secs(10), "replica-b to lead", || async {
        if b.leads() { Ok(()) } else { Err("not leading".into()) }
    })
    .await?;
    match holder(&leases).await?.as_deref() {
        Some("replica-b") => {}
        other => return Err(format!("replica-b leads but the lease names {other:?}")),
    }
    b.stop().await?;
    let samples = observer.samples();
    drop(observer);
    assert_never_two_leaders(&samples)?;
    // From replica-a stepping down to replica-b leading, both seen at the change.
    let first_b = samples.iter().find(|s| s.leading[1]).map(|s| s.at).ok_or("replica-b never led")?;
    let a_down = samples.iter().find(|s| !s.leading[0]).map(|s| s.at).ok_or("replica-a never stepped down")?;
    if first_b < stopped || a_down < stopped {
        return Err(format!(
            "replica-a stepped down at {a_down:?} and replica-b led at {first_b:?}, but replica-a was stopped at {stopped:?}"
        ));
    }
    eprintln!(
        "leader election: handover after a release took {:.3}s from replica-a stepping down ({:.3}s from the stop request), never two leaders in {} samples",
        first_b.saturating_sub(a_down).as_secs_f64(),
        (first_b - stopped).as_secs_f64(),
        samples.len()
    );
    // Without the release, replica-b would wait out the whole lease.
    if first_b - stopped >= LEASE_DURATION {
        return Err(format!("the handover took {:?} after the stop, as long as an expiry", first_b - stopped));
    }
    // The unheld Lease between the two holders may last less than a tick.
    let named: Vec<Option<String>> = holders(&samples).into_iter().filter(Option::is_some).collect();
    if named != [Some("replica-a".to_owned()), Some("replica-b".to_owned())] {
        return Err(format!("the Lease went through holders {:?}, not replica-a then replica-b", holders(&samples)));
    }
    match holder(&leases).await? {
        None => Ok(()),
        Some(other) => Err(format!("the lease still names {other} after replica-b's release")),
    }
}

async fn takeover(env: Arc<Env>, namespace: String) -> Result<(), String> {
    // A holder that died without releasing: its lease is never renewed.
    const GHOST_LEASE: Duration = Duration::from_secs(3);
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &namespace);
    let ghost = Lease {
        metadata: ObjectMeta { name: Some(LEASE.into()), ..ObjectMeta::default() },
        spec: Some(LeaseSpec {
            holder_identity: Some("vanished".into()),
            lease_duration_seconds: Some(3),
            renew_time: Some(MicroTime(Timestamp::now())),
            lease_transitions: Some(0),
            ..LeaseSpec::default()
        }),
    };
    leases.create(&PostParams::default(), &ghost).await.map_err(|e| e.to_string())?;
    let a = Replica::start(&env.client, &namespace, "replica-a");
    let observer = Observer::start(leases.clone(), &[&a]);
    wait::until(Duration::from_secs(15), "replica-a to take over", || async {
        if a.leads() { Ok(()) } else { Err("not leading".into()) }
    })
    .await?;
    let samples = observer.samples();
    let took = samples.iter().find(|s| s.leading[0]).map(|s| s.at).ok_or("replica-a never led")?;
    eprintln!("leader election: took over an abandoned lease after {:.2}s", took.as_secs_f64());
    // It first reads the Lease at its start, so it may take it no sooner
    // than the holder's duration after, and at its first look once expired.
    if took < GHOST_LEASE {
        return Err(format!("took over after {took:?}, before the holder's 3 s lease could expire"));
    }
    let retry = job_template_run::reconciler::Timing::from_lease_duration(LEASE_DURATION).retry_period;
    if took > GHOST_LEASE + retry + Duration::from_secs(1) {
        return Err(format!("took over only after {took:?}: the lease expired at 3 s and it looks every {retry:?}"));
    }
    let before: Vec<Sample> = samples.iter().filter(|s| s.at < took).cloned().collect();
    if holders(&before).iter().any(|h| h.as_deref() != Some("vanished")) {
        return Err(format!("before the takeover the Lease named {:?}", holders(&before)));
    }
    let lease = leases.get(LEASE).await.map_err(|e| e.to_string())?.spec.unwrap_or_default();
    if lease.holder_identity.as_deref() != Some("replica-a") || lease.lease_transitions != Some(1) {
        return Err(format!("unexpected lease after the takeover: {lease:?}"));
    }
    a.stop().await?;
    match holder(&leases).await? {
        None => Ok(()),
        Some(other) => Err(format!("the lease still names {other} after the release")),
    }
}
