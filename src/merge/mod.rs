//! The pure heart of the operator: no client, no clock, no randomness.
//!
//! [`render`] builds the Job for a run; [`status`] and [`failed`] say what
//! the run's status is. The reconciler and the offline `render` command call
//! the same functions, and the fixtures in `fixtures/` pin their behaviour.

mod failure;
mod names;
mod ownership;
mod render;
mod status;

pub use failure::{Failure, FailureReason};
pub use names::label_safe;
pub use ownership::{adopt, is_controlled_by};
pub use render::{ANNOTATION_RUN_NAME, LABEL_MANAGED_BY, LABEL_RUN, LABEL_TEMPLATE, MANAGER, RenderError, render};
pub use status::{failed, is_finished, job_name_for, status};
