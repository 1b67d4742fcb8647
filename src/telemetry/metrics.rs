//! Prometheus metrics of the operator.

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: String,
}

/// The operator's metrics, all prefixed `job_template_run_`.
pub struct Metrics {
    registry: Registry,
    reconciles: Counter,
    reconcile_errors: Family<ReasonLabel, Counter>,
    reconcile_duration: Histogram,
    jobs_created: Counter,
    runs_finished: Family<PhaseLabel, Counter>,
    callback_attempts: Family<ResultLabel, Counter>,
    callback_outcomes: Family<OutcomeLabel, Counter>,
    callback_latency: Histogram,
    status_conflicts: Counter,
    runs_deleted: Family<ReasonLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("job_template_run");
        let reconciles = Counter::default();
        let reconcile_errors = Family::<ReasonLabel, Counter>::default();
        let reconcile_duration = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        let jobs_created = Counter::default();
        let runs_finished = Family::<PhaseLabel, Counter>::default();
        registry.register("reconciles", "Reconciliations of JobRuns", reconciles.clone());
        registry.register("reconcile_errors", "Reconciliations that failed, by reason", reconcile_errors.clone());
        registry.register_with_unit(
            "reconcile_duration",
            "Time spent in one reconciliation",
            prometheus_client::registry::Unit::Seconds,
            reconcile_duration.clone(),
        );
        registry.register("jobs_created", "Jobs created for JobRuns", jobs_created.clone());
        registry.register("runs_finished", "JobRuns that reached a final phase, by phase", runs_finished.clone());
        let callback_attempts = Family::<ResultLabel, Counter>::default();
        let callback_outcomes = Family::<OutcomeLabel, Counter>::default();
        let callback_latency = Histogram::new(exponential_buckets(0.05, 2.0, 16));
        registry.register(
            "callback_attempts",
            "Callback attempts, by result class (2xx, 3xx, 4xx, 5xx, timeout, network, refused, token)",
            callback_attempts.clone(),
        );
        registry.register(
            "callback_outcomes",
            "Callbacks that ended, by outcome (Delivered, Rejected, Refused, TokenForbidden, TokenNotAllowed, GaveUp)",
            callback_outcomes.clone(),
        );
        registry.register_with_unit(
            "callback_delivery_latency",
            "Time from a run's finish to its callback's 2xx",
            prometheus_client::registry::Unit::Seconds,
            callback_latency.clone(),
        );
        let status_conflicts = Counter::default();
        registry.register(
            "status_conflicts",
            "Status writes refused with 409 (the run changed since it was read); redone on the newer run",
            status_conflicts.clone(),
        );
        let runs_deleted = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "runs_deleted",
            "Finished JobRuns the operator deleted, by reason (Ttl, History)",
            runs_deleted.clone(),
        );
        Self {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            jobs_created,
            runs_finished,
            callback_attempts,
            callback_outcomes,
            callback_latency,
            status_conflicts,
            runs_deleted,
        }
    }
}

/// Observes one reconciliation's duration when dropped.
pub struct ReconcileTimer<'a> {
    histogram: &'a Histogram,
    start: Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}

impl Metrics {
    /// Counts a reconciliation and times it until the timer is dropped.
    pub fn reconcile_started(&self) -> ReconcileTimer<'_> {
        self.reconciles.inc();
        ReconcileTimer { histogram: &self.reconcile_duration, start: Instant::now() }
    }

    pub fn reconcile_failed(&self, reason: &str) {
        self.reconcile_errors.get_or_create(&ReasonLabel { reason: reason.to_owned() }).inc();
    }

    /// Counts a status write that met a newer run (409).
    pub fn status_conflict(&self) {
        self.status_conflicts.inc();
    }

    /// Counts a finished run deleted by its TTL or its template's history.
    pub fn run_deleted(&self, reason: &str) {
        self.runs_deleted.get_or_create(&ReasonLabel { reason: reason.to_owned() }).inc();
    }

    pub fn job_created(&self) {
        self.jobs_created.inc();
    }

    pub fn run_finished(&self, phase: &str) {
        self.runs_finished.get_or_create(&PhaseLabel { phase: phase.to_owned() }).inc();
    }

    pub fn callback_attempt(&self, result: &str) {
        self.callback_attempts.get_or_create(&ResultLabel { result: result.to_owned() }).inc();
    }

    pub fn callback_outcome(&self, outcome: &str) {
        self.callback_outcomes.get_or_create(&OutcomeLabel { outcome: outcome.to_owned() }).inc();
    }

    pub fn callback_delivered(&self, latency_seconds: f64) {
        self.callback_latency.observe(latency_seconds);
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
