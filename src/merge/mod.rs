//! The pure heart of the operator: no client, no clock, no randomness.
//!
//! [`render`] builds the Job for a run; [`status`] and [`failed`] say what
//! the run's status is. The reconciler and the offline `render` command call
//! the same functions, and the fixtures in `fixtures/` pin their behaviour.

mod callback;
mod decide;
mod failure;
mod guard;
mod names;
mod notes;
mod ownership;
mod render;
mod status;

pub use callback::{
    Attempt, CONDITION_CALLBACK_DELIVERED, CallbackSettings, CallbackState, Delivery, Token, body as callback_body,
    callback_pending, callback_state, callback_state_of, shown_url,
};
pub use decide::{
    CONDITION_JOB_CREATED, CONDITION_TEMPLATE_READY, Next, Observed, Settings, Step, controlling_run, decide,
    holds_finalizer, release_orphan,
};
pub use failure::{Failure, FailureReason, Refusal};
pub use guard::{AllowList, Cidr, CidrError, Guard, Refused, Target, canonical, forbidden};
pub use names::label_safe;
pub use notes::{MAX_NOTE_BYTES, Note, cut_note, notes};
pub use ownership::is_controlled_by;
pub use render::{
    ANNOTATION_RUN_NAME, ANNOTATION_TEMPLATE_GENERATION, FINALIZER, LABEL_MANAGED_BY, LABEL_RUN, LABEL_TEMPLATE,
    MANAGER, RenderError, render,
};
pub use status::{CONDITION_FINISHED, failed, is_finished, job_name_for, status};
