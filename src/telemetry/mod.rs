//! Logs, metrics and the health/metrics HTTP endpoint.

mod logging;
mod metrics;
mod server;

pub use logging::{LoggingError, init_logging};
pub use metrics::Metrics;
pub use server::{Readiness, ServeError, serve};
