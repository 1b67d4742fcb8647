//! What `/healthz` and `/readyz` answer: the caches' sync, the watches'
//! failures, and leadership.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The operator's health, shared by the watches and the HTTP endpoint.
#[derive(Clone)]
pub struct Health(Arc<State>);

struct State {
    synced: AtomicBool,
    leading: AtomicBool,
    /// Each failing watch, and since when it has failed without a success.
    failing: Mutex<HashMap<String, Instant>>,
    /// How long a watch may fail before the operator counts as unhealthy.
    bound: Duration,
}

impl Health {
    pub fn new(bound: Duration) -> Self {
        Self(Arc::new(State {
            synced: AtomicBool::new(false),
            leading: AtomicBool::new(false),
            failing: Mutex::new(HashMap::new()),
            bound,
        }))
    }

    pub fn set_synced(&self) {
        self.0.synced.store(true, Ordering::SeqCst);
    }

    pub fn set_leading(&self, leading: bool) {
        self.0.leading.store(leading, Ordering::SeqCst);
    }

    /// A watch answered with an error; it counts as failing from the first
    /// error on, until it next delivers an event.
    pub fn watch_failed(&self, watch: &str, at: Instant) {
        self.failing().entry(watch.to_owned()).or_insert(at);
    }

    pub fn watch_ok(&self, watch: &str) {
        if self.failing().contains_key(watch) {
            self.failing().remove(watch);
        }
    }

    /// `/healthz`: Err names the watches that have failed for longer than
    /// the bound (a restart may help: new connections, new credentials).
    pub fn live(&self, now: Instant) -> Result<(), String> {
        let stuck: Vec<String> = self
            .failing()
            .iter()
            .filter(|(_, since)| now.saturating_duration_since(**since) > self.0.bound)
            .map(|(watch, since)| format!("{watch} failing for {}s", now.saturating_duration_since(*since).as_secs()))
            .collect();
        if stuck.is_empty() { Ok(()) } else { Err(stuck.join(", ")) }
    }

    /// `/readyz`: ready once every cache has synced and while the watches
    /// are live; the body says whether this replica leads or stands by.
    pub fn ready(&self, now: Instant) -> Result<&'static str, String> {
        if !self.0.synced.load(Ordering::SeqCst) {
            return Err("caches not synced".into());
        }
        self.live(now)?;
        Ok(if self.0.leading.load(Ordering::SeqCst) { "ok: leader" } else { "ok: standby" })
    }

    fn failing(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.0.failing.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_failing_longer_than_the_bound_makes_the_operator_unhealthy_and_unready() {
        let health = Health::new(Duration::from_secs(60));
        let start = Instant::now();
        health.set_synced();
        health.set_leading(true);
        assert_eq!(health.ready(start), Ok("ok: leader"));
        health.watch_failed("jobs", start);
        health.watch_failed("jobs", start + Duration::from_secs(30));
        assert_eq!(health.live(start + Duration::from_secs(59)), Ok(()));
        let later = start + Duration::from_secs(61);
        assert_eq!(health.live(later), Err("jobs failing for 61s".into()));
        assert!(health.ready(later).is_err());
        health.watch_ok("jobs");
        assert_eq!(health.live(later), Ok(()));
    }

    #[test]
    fn the_operator_is_unready_until_its_caches_sync_and_then_says_whether_it_leads() {
        let health = Health::new(Duration::from_secs(60));
        let now = Instant::now();
        assert_eq!(health.ready(now), Err("caches not synced".into()));
        health.set_synced();
        assert_eq!(health.ready(now), Ok("ok: standby"));
    }
}
