//! What can go wrong while reconciling; every variant is retried with backoff.
//!
//! Permanent problems of the run itself (a missing template, a rejected Job)
//! are not errors here: they end the run with a `Failed` condition.

/// A transient failure of one reconciliation.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("cannot read JobRun {name}: {source}")]
    GetRun { name: String, source: kube::Error },
    #[error("cannot read JobTemplate {name}: {source}")]
    GetTemplate { name: String, source: kube::Error },
    #[error("cannot read Job {name}: {source}")]
    GetJob { name: String, source: kube::Error },
    #[error("Job {0} was reported to exist, but is gone; retrying the create")]
    ConflictVanished(String),
    #[error("cannot write the status of JobRun {name}: {source}")]
    WriteStatus { name: String, source: kube::Error },
    #[error("cannot patch Job {name} (its finalizer, or suspend): {source}")]
    PatchJob { name: String, source: kube::Error },
    #[error("cannot delete the finished JobRun {name}: {source}")]
    DeleteRun { name: String, source: kube::Error },
    #[error("Job {0} should be patched (finalizer or suspend), but no Job was seen")]
    NoJobToPatch(String),
    #[error("JobRun {0} needed more steps than one reconcile takes; trying again")]
    TooManySteps(String),
    #[error("cannot write the status of JobTemplate {name}: {source}")]
    WriteTemplateStatus { name: String, source: kube::Error },
}

impl ReconcileError {
    /// A short, bounded label for the `reconcile_errors` metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::GetRun { .. } => "get_run",
            Self::GetTemplate { .. } => "get_template",
            Self::GetJob { .. } => "get_job",
            Self::ConflictVanished(_) => "conflict_vanished",
            Self::WriteStatus { .. } => "write_status",
            Self::PatchJob { .. } => "patch_job",
            Self::DeleteRun { .. } => "delete_run",
            Self::NoJobToPatch(_) => "no_job_to_patch",
            Self::TooManySteps(_) => "too_many_steps",
            Self::WriteTemplateStatus { .. } => "write_template_status",
        }
    }
}
