//! Logs, metrics and the health/metrics HTTP endpoint.

mod logging;
mod metrics;
mod server;

pub use logging::init_logging;
pub use metrics::{Metrics, ReconcileTimer};
pub use server::{Readiness, ServeError, serve};
