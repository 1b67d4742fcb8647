//! `kubectl jobrun`: a kubectl plugin for people who start, watch, debug,
//! cancel and rerun JobRuns of job-template-run.
//!
//! Pure parts (no client, no clock), unit-tested:
//! - [`args`]: the command line, kubectl's flags and duration form.
//! - [`spec`]: the JobRun that `create` sends, and the client-side check
//!   with the template's policy (the core's own `admit`, so the message is
//!   the operator's).
//! - [`view`]: tables (`get`, `templates`), `describe`, reasons, ages.
//! - [`complete`]: what `<TAB>` offers, in cobra's format for kubectl's hook.
//!
//! [`commands`] does the API calls and prints.

pub mod args;
pub mod commands;
pub mod complete;
pub mod error;
pub mod spec;
pub mod view;

pub use error::PluginError;
