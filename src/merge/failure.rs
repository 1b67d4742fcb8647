//! Why a run ended without (or without the rest of) its Job.

use std::fmt;

use super::render::RenderError;

/// The reason recorded on the run's `Failed` condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// `spec.templateRef` names no JobTemplate in the run's namespace.
    TemplateNotFound,
    /// The template cannot make a Job (for example, it has no container).
    InvalidTemplate,
    /// The API server refused the rendered Job (HTTP 422).
    JobRejected,
    /// A Job with the run's Job name exists and belongs to someone else.
    JobNameConflict,
    /// The run's Job disappeared before it finished.
    JobLost,
}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TemplateNotFound => "TemplateNotFound",
            Self::InvalidTemplate => "InvalidTemplate",
            Self::JobRejected => "JobRejected",
            Self::JobNameConflict => "JobNameConflict",
            Self::JobLost => "JobLost",
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A permanent failure of a run: a reason for machines, a message for humans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub reason: FailureReason,
    pub message: String,
}

impl Failure {
    pub fn new(reason: FailureReason, message: impl Into<String>) -> Self {
        Self { reason, message: message.into() }
    }

    /// `spec.templateRef` names no template in the run's namespace.
    pub fn template_not_found(template: &str) -> Self {
        Self::new(
            FailureReason::TemplateNotFound,
            format!("JobTemplate {template:?} not found in the JobRun's namespace"),
        )
    }

    /// The template cannot make a Job.
    pub fn invalid_template(error: &RenderError) -> Self {
        Self::new(FailureReason::InvalidTemplate, error.to_string())
    }

    /// The API server's refusal to create the Job, when it is permanent:
    /// 422 Invalid says the rendered Job itself is wrong, and 400 is how an
    /// admission webhook denies it. Any other answer (throttling, a timeout,
    /// a webhook down, missing RBAC) is worth retrying: `None`.
    pub fn from_create_refusal(answer: &kube::core::Status) -> Option<Self> {
        matches!(answer.code, 400 | 422).then(|| Self::new(FailureReason::JobRejected, answer.message.clone()))
    }
}
