//! Logs, metrics and the health/metrics HTTP endpoint.

mod health;
mod logging;
mod metrics;
mod server;

pub use health::Health;
pub use logging::{LoggingError, init_logging};
pub use metrics::Metrics;
pub use server::{ServeError, serve};
