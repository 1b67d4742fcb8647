//! Structured logs through `tracing`, as text or one JSON object per line.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `filter` uses EnvFilter syntax; an invalid
/// one is an error, not a silent default.
pub fn init_logging(filter: &str, json: bool) -> Result<(), String> {
    let filter = EnvFilter::try_new(filter).map_err(|e| e.to_string())?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let installed = if json { builder.json().flatten_event(true).try_init() } else { builder.try_init() };
    installed.map_err(|e| e.to_string())
}
