//! job-template-run: a Kubernetes operator that turns each `JobRun` into
//! exactly one batch/v1 Job built from a `JobTemplate`, and mirrors that
//! Job's status back onto the run.
//!
//! The decisions live in the pure core crate (`core/`, re-exported here as
//! [`crd`], [`merge`] and [`yaml`]); this crate carries them out:
//! - [`reconciler`]: watches, the executor of the driver's effects against
//!   the API server, the callback delivery worker, leader election.
//! - [`cli`] and [`telemetry`]: the binary's surface.

pub use jtr_core::{crd, merge, yaml};

pub mod cli;
pub mod reconciler;
pub mod telemetry;
