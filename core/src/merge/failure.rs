//! Why a run ended without (or without the rest of) its Job.

use std::fmt;

use super::render::RenderError;

/// The reason recorded on the run's `Failed` condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// `spec.templateRef` names no JobTemplate in the run's namespace.
    TemplateNotFound,
    /// The template cannot make a Job (for example, it has no container,
    /// or a rule of its policy does not compile).
    InvalidTemplate,
    /// The run sets an override its template's `runPolicy` does not allow.
    OverrideNotAllowed,
    /// An override cannot apply to the template (an unknown container, a
    /// reserved label key).
    InvalidOverride,
    /// The run fails a CEL rule of its template's `runPolicy.validations`.
    ValidationFailed,
    /// The API server or an admission policy refused the rendered Job
    /// (400, 422, or a 403 from an admission webhook or policy).
    JobRejected,
    /// A Job with the run's Job name exists and belongs to someone else.
    JobNameConflict,
    /// The run's Job disappeared before it finished.
    JobLost,
    /// `spec.cancel` was set before the run finished: its Job is stopped.
    Cancelled,
    /// Its pods were stalled for the template's `stalledDeadlineSeconds`:
    /// its Job is stopped.
    Stalled,
}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TemplateNotFound => "TemplateNotFound",
            Self::InvalidTemplate => "InvalidTemplate",
            Self::OverrideNotAllowed => "OverrideNotAllowed",
            Self::InvalidOverride => "InvalidOverride",
            Self::ValidationFailed => "ValidationFailed",
            Self::JobRejected => "JobRejected",
            Self::JobNameConflict => "JobNameConflict",
            Self::JobLost => "JobLost",
            Self::Cancelled => "Cancelled",
            Self::Stalled => "Stalled",
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
        let reason = match error {
            RenderError::UnknownContainer { .. } => FailureReason::InvalidOverride,
            _ => FailureReason::InvalidTemplate,
        };
        Self::new(reason, error.to_string())
    }
}

/// What the API server answered to a Job create that did not succeed (a
/// 409 is handled before: it means the Job exists). `code` 0 stands for no
/// answer at all (a timeout, a connection refused).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct Refusal {
    #[serde(default)]
    pub code: u16,
    /// The API's machine-readable reason (`Forbidden`, `Invalid`, …); may be empty.
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
}

impl Refusal {
    /// The permanent failure this refusal means for the run, if it is one:
    /// 422 Invalid (the Job itself is wrong), 400, and a 403 whose message says
    /// an admission webhook or a ValidatingAdmissionPolicy denied the request.
    /// Everything else (RBAC, quota, throttling, 5xx, no answer) may pass:
    /// `None`, and the create is retried.
    pub fn permanent(&self) -> Option<Failure> {
        let denied_by_admission = self.code == 403
            && ((self.message.contains("admission webhook") && self.message.contains("denied the request"))
                || (self.message.contains("ValidatingAdmissionPolicy") && self.message.contains("denied request")));
        (matches!(self.code, 400 | 422) || denied_by_admission)
            .then(|| Failure::new(FailureReason::JobRejected, self.message.clone()))
    }

    /// A short CamelCase reason for a refusal that is retried, for the
    /// run's `JobCreated=False` condition.
    pub fn retry_reason(&self) -> &'static str {
        match self.code {
            0 => "ApiUnreachable",
            403 if self.message.contains("exceeded quota") => "QuotaExceeded",
            401 | 403 => "Forbidden",
            429 => "TooManyRequests",
            500..=599 => "ApiServerError",
            _ => "CreateFailed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(code: u16, message: &str) -> Refusal {
        Refusal { code, reason: String::new(), message: message.into() }
    }

    #[test]
    fn invalid_and_bad_request_refusals_are_permanent() {
        for code in [400, 422] {
            let failure = refusal(code, "spec.template: Invalid").permanent().expect("permanent");
            assert_eq!(failure.reason, FailureReason::JobRejected);
            assert_eq!(failure.message, "spec.template: Invalid");
        }
    }

    #[test]
    fn admission_denials_with_403_are_permanent() {
        let webhook = r#"admission webhook "jobs.example.com" denied the request: no jobs on Sundays"#;
        let policy =
            r#"jobs.batch "r" is forbidden: ValidatingAdmissionPolicy 'no-jobs' with binding 'b' denied request: no"#;
        for message in [webhook, policy] {
            assert_eq!(refusal(403, message).permanent().map(|f| f.reason), Some(FailureReason::JobRejected));
        }
    }

    #[test]
    fn a_403_is_permanent_only_when_the_webhook_or_the_policy_is_named_and_said_to_deny() {
        let cases = [
            r#"jobs.batch "r" is forbidden: failed calling admission webhook "jobs.example.com": no endpoints"#,
            r#"jobs.batch "r" is forbidden: a proxy denied the request"#,
            r#"jobs.batch "r" is forbidden: ValidatingAdmissionPolicy 'no-jobs' could not be evaluated"#,
            r#"jobs.batch "r" is forbidden: an authorizer denied request"#,
        ];
        for message in cases {
            assert_eq!(refusal(403, message).permanent(), None, "{message}");
        }
    }

    #[test]
    fn rbac_quota_throttling_server_errors_and_no_answer_are_retried() {
        let cases = [
            (403, r#"jobs.batch is forbidden: User "x" cannot create resource "jobs""#, "Forbidden"),
            (403, r#"jobs.batch "r" is forbidden: exceeded quota: q, requested: count/jobs.batch=1"#, "QuotaExceeded"),
            (429, "too many requests", "TooManyRequests"),
            (500, "etcdserver: request timed out", "ApiServerError"),
            (503, "unavailable", "ApiServerError"),
            (0, "connection refused", "ApiUnreachable"),
            (404, "namespace gone", "CreateFailed"),
        ];
        for (code, message, reason) in cases {
            let answer = refusal(code, message);
            assert_eq!(answer.permanent(), None, "{code} {message}");
            assert_eq!(answer.retry_reason(), reason, "{code} {message}");
        }
    }
}
