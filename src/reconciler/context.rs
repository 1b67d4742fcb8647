//! What every reconciliation shares: the client, the caches, the metrics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::Client;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::{ObjectRef, Store};

use tokio::sync::watch;

use crate::crd::{JobRun, JobTemplate};
use crate::merge::Settings;
use crate::telemetry::Metrics;

/// Shared state of one controller (one per watched namespace, or one for all).
pub struct Context {
    pub client: Client,
    pub runs: Store<JobRun>,
    pub templates: Store<JobTemplate>,
    pub jobs: Store<Job>,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub backoff: Backoff,
    pub settings: Settings,
    pub gate: Gate,
    pub sender: Arc<super::callback::Sender>,
}

/// Whether reconciles may act: all caches have synced, and this replica
/// leads (always true without leader election).
#[derive(Clone)]
pub struct Gate {
    pub synced: watch::Receiver<bool>,
    pub leading: watch::Receiver<bool>,
    /// Set when the operator shuts down.
    pub stopping: watch::Receiver<bool>,
}

impl Gate {
    /// Completes once every cache has its first full list (before that, a
    /// missing Job or template may only be missing from the cache), or once
    /// the operator is shutting down, since the caches then never sync and a
    /// reconcile waiting for them would keep the drain from ending.
    pub async fn wait(&self) {
        let (mut synced, mut stopping) = (self.synced.clone(), self.stopping.clone());
        tokio::select! {
            _ = synced.wait_for(|synced| *synced) => {}
            _ = stopping.wait_for(|stopping| *stopping) => {}
        }
    }

    /// Whether reconciles may act: the caches have synced, this replica
    /// leads, and the operator is not shutting down.
    pub fn open(&self) -> bool {
        *self.synced.borrow() && *self.leading.borrow() && !*self.stopping.borrow()
    }
}

/// Per-run exponential backoff for transient errors: 1 s, 2 s, 4 s … 5 min.
#[derive(Default)]
pub struct Backoff {
    failures: Mutex<HashMap<ObjectRef<JobRun>, u32>>,
}

impl Backoff {
    const BASE: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(300);

    /// The delay before the next retry of `run`, growing with each failure.
    pub fn next_delay(&self, run: ObjectRef<JobRun>) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = failures.entry(run).or_insert(0);
        let delay = Self::BASE.saturating_mul(2u32.saturating_pow(*count)).min(Self::MAX);
        *count = count.saturating_add(1);
        delay
    }

    /// Forgets the failures of `run` after a successful reconciliation.
    pub fn reset(&self, run: &ObjectRef<JobRun>) {
        self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(run);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_failure_and_resets_after_success() {
        let backoff = Backoff::default();
        let run = ObjectRef::<JobRun>::new("r").within("ns");
        let delays: Vec<_> = (0..3).map(|_| backoff.next_delay(run.clone()).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4]);
        backoff.reset(&run);
        assert_eq!(backoff.next_delay(run).as_secs(), 1);
    }

    #[test]
    fn backoff_is_capped_at_five_minutes() {
        let backoff = Backoff::default();
        let run = ObjectRef::<JobRun>::new("r").within("ns");
        let last = (0..40).map(|_| backoff.next_delay(run.clone())).last();
        assert_eq!(last, Some(Duration::from_secs(300)));
    }
}
