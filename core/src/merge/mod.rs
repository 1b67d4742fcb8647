//! The pure heart of the operator: no client, no clock, no randomness.
//!
//! [`render`] builds the Job for a run; [`status`] and [`failed`] say what
//! the run's status is. The reconciler and the offline `render` command call
//! the same functions, and the fixtures in `fixtures/` pin their behaviour.

mod cache;
mod callback;
mod decide;
mod drive;
mod failure;
mod guard;
mod names;
mod notes;
mod ownership;
mod policy;
mod render;
mod retention;
mod rules;
mod stalled;
mod status;

pub use cache::{prune_event, prune_job, prune_metadata, prune_pod, prune_run, prune_template};
pub use callback::{
    Attempt, CONDITION_CALLBACK_DELIVERED, CallbackSettings, CallbackState, Delivery, LABEL_CALLBACK_TOKEN, Token,
    body as callback_body, callback_pending, callback_state, callback_state_of, shown_url, token_from_secret,
};
pub use decide::{
    CONDITION_JOB_CREATED, CONDITION_TEMPLATE_READY, Next, Observed, Settings, Step, controlling_run, decide,
    holds_finalizer, release_orphan,
};
pub use drive::{Cached, Created, DriveError, Effects, Live, Written, drive};
pub use failure::{Failure, FailureReason, Refusal};
pub use guard::{AllowList, Cidr, CidrError, Guard, Refused, Target, canonical, forbidden};
pub use names::label_safe;
pub use notes::{MAX_NOTE_BYTES, Note, cut_note, notes};
pub use ownership::is_controlled_by;
pub use policy::{TemplateError, admit, allowed_overrides, overrides_set, template_status, validate_template};
pub use render::{
    ANNOTATION_RUN_NAME, ANNOTATION_TEMPLATE_GENERATION, FINALIZER, LABEL_MANAGED_BY, LABEL_RUN, LABEL_TEMPLATE,
    MANAGER, RenderError, render,
};
pub use retention::{Deletion, DeletionReason, finished_at};
pub use rules::{RuleError, RuleFailure, check_rules, evaluate_rules};
pub use stalled::{CONDITION_STALLED, FAILED_CREATE, Stall, WAITING_REASONS, stall, stalled_condition};
pub use status::{CONDITION_FINISHED, failed, is_finished, job_name_for, status};

/// A stable spread of `seed` over `0..1000`, the same on every replica and
/// after every restart, for jitter. FNV-1a: a spread, not a secret.
fn per_mille(seed: &str) -> u64 {
    seed.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)) % 1000
}
