//! What every reconciliation shares: the client, the caches, the metrics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::DynamicObject;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource};

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
    /// The pods of the operator's Jobs (pruned to what `merge::stall` reads).
    pub pods: Store<Pod>,
    /// The Job controller's FailedCreate Events.
    pub events: Store<Event>,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub backoff: Backoff,
    pub settings: Settings,
    pub gate: Gate,
    pub sender: Arc<super::callback::Sender>,
    /// Callback attempts, made beside the reconciles.
    pub deliveries: super::deliveries::Deliveries,
    /// The runs of each template, unfinished and finished apart.
    pub by_template: super::by_template::RunsByTemplate,
    /// Runs to reconcile soon (beyond a history limit), fed to the controller.
    pub wakes: futures::channel::mpsc::UnboundedSender<ObjectRef<JobRun>>,
}

/// Whether reconciles may act: all caches have synced, and this replica
/// leads (always true without leader election).
#[derive(Clone)]
pub struct Gate {
    pub synced: watch::Receiver<bool>,
    pub leading: watch::Receiver<bool>,
}

impl Gate {
    /// Completes once every cache has its first full list: before that, a
    /// missing Job or template may only be missing from the cache. (A
    /// shutdown before then ends the controller with its reconciles still
    /// waiting here.)
    pub async fn wait(&self) {
        let mut synced = self.synced.clone();
        let _ = synced.wait_for(|synced| *synced).await;
    }

    pub fn leading(&self) -> bool {
        *self.leading.borrow()
    }
}

/// Per-object backoff for what failed and may pass (runs, and templates'
/// status writes). The delay is the time since the object's first failure
/// in a row, from 1 s up to 5 min: retries come about 1, 2, 4, 8 s … after
/// that first failure, and the failures that events cause in between (a
/// Job that keeps changing while status writes are refused) do not push
/// the next retry further out.
pub struct Backoff<K: Resource<DynamicType = ()> = JobRun> {
    first_failure: Mutex<HashMap<ObjectRef<K>, Instant>>,
}

impl<K: Resource<DynamicType = ()>> Default for Backoff<K> {
    fn default() -> Self {
        Self { first_failure: Mutex::default() }
    }
}

impl<K: Resource<DynamicType = ()>> Backoff<K> {
    pub const BASE: Duration = Duration::from_secs(1);
    pub const MAX: Duration = Duration::from_secs(300);

    /// The delay before the next retry of `object`, which has just failed.
    pub fn next_delay(&self, object: ObjectRef<K>) -> Duration {
        self.next_delay_at(object, Instant::now())
    }

    pub(super) fn next_delay_at(&self, object: ObjectRef<K>, now: Instant) -> Duration {
        let mut first_failure = self.first_failure.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let first = *first_failure.entry(object).or_insert(now);
        now.saturating_duration_since(first).clamp(Self::BASE, Self::MAX)
    }

    /// Forgets the failures of `object` after a success (a finished run's
    /// reconcile always succeeds).
    pub fn reset(&self, object: &ObjectRef<K>) {
        self.first_failure.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(object);
    }

    /// Forgets an object that is gone, as the controller names it (a retry
    /// of a deleted object finds none): over weeks of uptime, deleted runs
    /// and templates must not pile up here.
    pub fn forget_gone(&self, gone: &ObjectRef<DynamicObject>) {
        let object = ObjectRef::<K>::new(&gone.name);
        self.reset(&match &gone.namespace {
            Some(namespace) => object.within(namespace),
            None => object,
        });
    }

    #[cfg(test)]
    pub(super) fn failing(&self) -> usize {
        self.first_failure.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, seconds: u64) -> Instant {
        start + Duration::from_secs(seconds)
    }

    #[test]
    fn retries_after_each_delay_come_at_about_twice_the_time_since_the_first_failure() {
        let (backoff, run, start) = (Backoff::default(), ObjectRef::<JobRun>::new("r").within("ns"), Instant::now());
        let mut now = start;
        let mut delays = Vec::new();
        for _ in 0..6 {
            let delay = backoff.next_delay_at(run.clone(), now);
            delays.push(delay.as_secs());
            now += delay;
        }
        assert_eq!(delays, [1, 1, 2, 4, 8, 16]);
        backoff.reset(&run);
        assert_eq!(backoff.next_delay_at(run, at(start, 100)).as_secs(), 1, "a success starts over");
    }

    #[test]
    fn failures_that_events_cause_in_between_do_not_push_the_retry_out() {
        let (backoff, run, start) = (Backoff::default(), ObjectRef::<JobRun>::new("r").within("ns"), Instant::now());
        backoff.next_delay_at(run.clone(), start);
        let burst: Vec<_> = (0..20).map(|_| backoff.next_delay_at(run.clone(), at(start, 10)).as_secs()).collect();
        assert_eq!(burst, [10; 20]);
    }

    #[test]
    fn a_failing_run_that_is_deleted_is_forgotten() {
        let backoff = Backoff::default();
        let mut run = JobRun::new("r", Default::default());
        run.metadata.namespace = Some("ns".into());
        run.metadata.uid = Some("uid-1".into());
        backoff.next_delay(ObjectRef::from_obj(&run));
        backoff.next_delay(ObjectRef::<JobRun>::new("other").within("ns"));
        assert_eq!(backoff.failing(), 2);
        backoff.forget_gone(&ObjectRef::from_obj(&run).erase());
        assert_eq!(backoff.failing(), 1, "the deleted run is forgotten, the other kept");
        backoff.forget_gone(&ObjectRef::<JobRun>::new("other").within("elsewhere").erase());
        assert_eq!(backoff.failing(), 1, "a run of another namespace is another run");
    }

    #[test]
    fn the_delay_is_capped_at_five_minutes_and_kept_per_run() {
        let (backoff, start) = (Backoff::default(), Instant::now());
        let (one, other) =
            (ObjectRef::<JobRun>::new("one").within("ns"), ObjectRef::<JobRun>::new("other").within("ns"));
        backoff.next_delay_at(one.clone(), start);
        assert_eq!(backoff.next_delay_at(one, at(start, 3600)), Duration::from_secs(300));
        assert_eq!(backoff.next_delay_at(other, at(start, 3600)), Duration::from_secs(1));
    }
}
