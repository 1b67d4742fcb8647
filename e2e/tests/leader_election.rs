//! Tier 2 (e2e): leader election on a real Lease. Two `LeaderElection`s
//! campaign for one Lease in the test's namespace; no operator runs.

use std::process::ExitCode;
use std::sync::Arc;
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

async fn handover(env: Arc<Env>, namespace: String) -> Result<(), String> {
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &namespace);
    let a = Replica::start(&env.client, &namespace, "replica-a");
    wait::until(Duration::from_secs(10), "replica-a to lead", || async {
        if a.leads() { Ok(()) } else { Err("not leading".into()) }
    })
    .await?;
    let b = Replica::start(&env.client, &namespace, "replica-b");
    // More than a whole lease duration: a renewing leader keeps the lease.
    tokio::time::sleep(LEASE_DURATION + Duration::from_secs(2)).await;
    if b.leads() || !a.leads() {
        return Err(format!("expected only replica-a to lead; a: {}, b: {}", a.leads(), b.leads()));
    }
    if holder(&leases).await?.as_deref() != Some("replica-a") {
        return Err(format!("the lease names {:?}, not replica-a", holder(&leases).await?));
    }

    let stopped = Instant::now();
    a.stop().await?;
    wait::until(Duration::from_secs(10), "replica-b to lead", || async {
        if b.leads() { Ok(()) } else { Err("not leading".into()) }
    })
    .await?;
    let handover = stopped.elapsed();
    eprintln!("leader election: handover after a release took {:.1}s", handover.as_secs_f64());
    // Without the release, replica-b would wait out the whole lease.
    if handover >= LEASE_DURATION {
        return Err(format!("the handover took {handover:?}, as long as an expiry"));
    }
    match holder(&leases).await?.as_deref() {
        Some("replica-b") => b.stop().await,
        other => Err(format!("the lease names {other:?}, not replica-b")),
    }
}

async fn takeover(env: Arc<Env>, namespace: String) -> Result<(), String> {
    // A holder that died without releasing: its lease is never renewed.
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
    let started = Instant::now();
    let a = Replica::start(&env.client, &namespace, "replica-a");
    wait::until(Duration::from_secs(15), "replica-a to take over", || async {
        if a.leads() { Ok(()) } else { Err("not leading".into()) }
    })
    .await?;
    let waited = started.elapsed();
    eprintln!("leader election: took over an abandoned lease after {:.1}s", waited.as_secs_f64());
    if waited < Duration::from_secs(3) {
        return Err(format!("took over after {waited:?}, before the holder's 3 s lease could expire"));
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
