//! Structured logs through `tracing`, as text or one JSON object per line.

use tracing_subscriber::EnvFilter;

/// Logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("invalid log filter: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    #[error("a logger is already installed: {0}")]
    AlreadyInstalled(String),
}

/// Installs the global subscriber. `filter` uses EnvFilter syntax; an invalid
/// one is an error, not a silent default.
pub fn init_logging(filter: &str, json: bool) -> Result<(), LoggingError> {
    let filter = EnvFilter::try_new(filter)?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let installed = if json { builder.json().flatten_event(true).try_init() } else { builder.try_init() };
    installed.map_err(|e| LoggingError::AlreadyInstalled(e.to_string()))
}
