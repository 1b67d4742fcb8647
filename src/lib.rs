//! job-template-run: a Kubernetes operator that turns each `JobRun` into
//! exactly one batch/v1 Job built from a `JobTemplate`, and mirrors that
//! Job's status back onto the run.
//!
//! - [`crd`]: the resource types (no logic).
//! - [`merge`]: the pure functions `render` (template + run → Job) and
//!   `status` (Job → run status).
//! - [`reconciler`]: fetches inputs, applies outputs, writes status.
//! - [`fixtures`]: loads and runs the YAML cases in `fixtures/`.
//! - [`cli`] and [`telemetry`]: the binary's surface.

pub mod cli;
pub mod crd;
pub mod fixtures;
pub mod merge;
pub mod reconciler;
pub mod telemetry;
pub mod yaml;
