//! The run's callback, pure: whether one is pending, what to send, and what
//! an attempt's answer makes of the run's status. The sender
//! (`reconciler/callback.rs`) makes the HTTP request; `decide` says when.
//!
//! | the finished run's callback                      | step                                   |
//! |--------------------------------------------------|----------------------------------------|
//! | no `callbackUrl`, or delivered / given up        | release the Job's finalizer, or done   |
//! | an attempt was just made                         | write its outcome, then retry after D  |
//! | the next attempt is not due yet                  | wait until it is                       |
//! | due, seen in the caches                          | read live                              |
//! | due, read live                                   | deliver                                |

use std::time::Duration;

use k8s_openapi::api::batch::v1::JobCondition;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde_json::json;

use super::status::CONDITION_FINISHED;
use crate::crd::{JobRun, JobRunStatus};

/// The run's condition that says where its callback stands.
pub const CONDITION_CALLBACK_DELIVERED: &str = "CallbackDelivered";

/// The label by which a Secret's owner lets its key be sent as a callback
/// token (value `"true"`). The operator reads Secrets with its own rights,
/// and a run's author picks both the Secret and the URL: without the
/// owner's opt-in, creating a JobRun would send any Secret of the namespace
/// to any host, a confused deputy.
pub const LABEL_CALLBACK_TOKEN: &str = "cellbytes.io/callback-token";

/// Whether a Secret with these labels may be sent as a callback token.
fn token_allowed(labels: Option<&std::collections::BTreeMap<String, String>>) -> bool {
    labels.and_then(|labels| labels.get(LABEL_CALLBACK_TOKEN)).is_some_and(|value| value == "true")
}

/// The token in key `key` of Secret `name` (as read, or `None` when there
/// is none): only a Secret whose owner opted in with [`LABEL_CALLBACK_TOKEN`]
/// is looked into; any other is dropped here, before its data is read.
pub fn token_from_secret(secret: Option<Secret>, name: &str, key: &str) -> Result<String, Attempt> {
    let Some(secret) = secret else {
        return Err(Attempt::TokenUnavailable(format!("Secret {name:?} not found in the JobRun's namespace")));
    };
    if !token_allowed(secret.metadata.labels.as_ref()) {
        drop(secret);
        return Err(Attempt::TokenNotAllowed(token_not_allowed_message(name)));
    }
    let value = secret.data.as_ref().and_then(|data| data.get(key)).map(|bytes| bytes.0.clone());
    let value =
        value.or_else(|| secret.string_data.as_ref().and_then(|data| data.get(key)).map(|s| s.clone().into_bytes()));
    match value.map(String::from_utf8) {
        Some(Ok(token)) if !token.is_empty() => Ok(token),
        Some(_) => Err(Attempt::TokenUnavailable(format!("key {key:?} of Secret {name:?} is empty or not UTF-8"))),
        None => Err(Attempt::TokenUnavailable(format!("Secret {name:?} has no key {key:?}"))),
    }
}

/// Why a Secret without the opt-in label is not sent.
fn token_not_allowed_message(secret: &str) -> String {
    format!(
        "Secret {secret:?} is not labelled {LABEL_CALLBACK_TOKEN}=true; its owner must add the label before it can be \
         sent as a callback token (kubectl label secret {secret} {LABEL_CALLBACK_TOKEN}=true)"
    )
}

/// Where a callback stands: the `CallbackDelivered` condition's reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallbackState {
    /// Not attempted yet.
    Pending,
    /// An attempt failed in a way that may pass; another is due later.
    Retrying,
    /// The token's Secret or key is missing; retried like a failed attempt.
    TokenUnavailable,
    /// The receiver answered 2xx.
    Delivered,
    /// The receiver answered 4xx (other than 408 and 429): not retried.
    Rejected,
    /// The SSRF guard refused the URL: not retried.
    Refused,
    /// The operator may not read Secrets (`callbacks.secretTokens` is off).
    TokenForbidden,
    /// The Secret does not opt in with [`LABEL_CALLBACK_TOKEN`]: not sent,
    /// not retried.
    TokenNotAllowed,
    /// Every attempt allowed failed.
    GaveUp,
}

impl CallbackState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Retrying => "Retrying",
            Self::TokenUnavailable => "TokenUnavailable",
            Self::Delivered => "Delivered",
            Self::Rejected => "Rejected",
            Self::Refused => "Refused",
            Self::TokenForbidden => "TokenForbidden",
            Self::TokenNotAllowed => "TokenNotAllowed",
            Self::GaveUp => "GaveUp",
        }
    }

    fn from_reason(reason: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Retrying,
            Self::TokenUnavailable,
            Self::Delivered,
            Self::Rejected,
            Self::Refused,
            Self::TokenForbidden,
            Self::TokenNotAllowed,
            Self::GaveUp,
        ]
        .into_iter()
        .find(|s| s.as_str() == reason)
    }

    /// Delivery has ended: nothing more is ever sent.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending | Self::Retrying | Self::TokenUnavailable)
    }
}

/// Delivery limits (flags `--callback-*`, chart values `callbacks.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackSettings {
    /// Attempts before giving up.
    pub max_attempts: u32,
    /// The delay after the first failed attempt; it doubles per attempt.
    pub initial_delay: Duration,
    /// The longest delay between attempts (also caps `Retry-After`).
    pub max_delay: Duration,
    /// How long one attempt may take, connect to last byte.
    pub timeout: Duration,
}

impl Default for CallbackSettings {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            initial_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Where the bearer token comes from. Its `Debug` never shows a token.
#[derive(Clone, PartialEq, Eq)]
pub enum Token {
    None,
    /// `spec.callbackToken` (plain text in the run).
    Plain(String),
    /// `spec.callbackTokenSecretRef`, read at send time.
    Secret {
        name: String,
        key: String,
    },
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Plain(_) => f.write_str("Plain(<redacted>)"),
            Self::Secret { name, key } => write!(f, "Secret {{ name: {name:?}, key: {key:?} }}"),
        }
    }
}

/// One POST to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub url: String,
    /// The JSON body, exactly as sent (and signed).
    pub body: String,
    /// The same on every attempt: the run's uid.
    pub idempotency_key: String,
    pub token: Token,
}

/// What one attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver answered.
    Answered { code: u16, retry_after: Option<Duration> },
    /// No answer within the timeout.
    TimedOut,
    /// Connection refused, reset, TLS failure, DNS failure …
    NetworkError(String),
    /// The SSRF guard refused the URL or an address: nothing was sent.
    Refused(String),
    /// The token's Secret or key does not exist: nothing was sent.
    TokenUnavailable(String),
    /// The operator may not read the Secret: nothing was sent.
    TokenForbidden(String),
    /// The Secret does not carry [`LABEL_CALLBACK_TOKEN`]`=true`: its
    /// value was dropped unread and nothing was sent.
    TokenNotAllowed(String),
}

impl Attempt {
    /// A bounded label for metrics: `2xx`, `3xx`, `4xx`, `5xx`, `timeout`,
    /// `network`, `refused`, `token`.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Answered { code, .. } => match code {
                200..=299 => "2xx",
                300..=399 => "3xx",
                400..=499 => "4xx",
                _ => "5xx",
            },
            Self::TimedOut => "timeout",
            Self::NetworkError(_) => "network",
            Self::Refused(_) => "refused",
            Self::TokenUnavailable(_) | Self::TokenForbidden(_) | Self::TokenNotAllowed(_) => "token",
        }
    }
}

/// The run's callback state; `None` when it has no `callbackUrl`, or when
/// it finished without this operator's `CallbackDelivered` condition (a run
/// that another operator, such as the Python original, saw finish and
/// notified: it is not notified again).
pub fn callback_state(run: &JobRun) -> Option<CallbackState> {
    run.spec.callback_url.as_ref()?;
    callback_state_of(run.status.as_ref()?)
}

/// The callback's state recorded in a status, if it has the condition.
pub fn callback_state_of(status: &JobRunStatus) -> Option<CallbackState> {
    callback_condition(status).and_then(|c| c.reason.as_deref()).and_then(CallbackState::from_reason)
}

/// True when the finished run still has a callback to deliver.
pub fn callback_pending(run: &JobRun) -> bool {
    callback_state(run).is_some_and(|state| !state.is_final())
}

fn callback_condition(status: &JobRunStatus) -> Option<&JobCondition> {
    status.conditions.iter().flatten().find(|c| c.type_ == CONDITION_CALLBACK_DELIVERED)
}

/// When the next attempt is due (`None`: now).
pub fn next_attempt(run: &JobRun) -> Option<Timestamp> {
    run.status.as_ref()?.callback.as_ref()?.next_attempt_time.as_ref().map(|t| t.0)
}

/// What to send for a finished run.
pub fn delivery(run: &JobRun) -> Option<Delivery> {
    let url = run.spec.callback_url.clone()?;
    let token = match (&run.spec.callback_token_secret_ref, &run.spec.callback_token) {
        (Some(secret), _) => Token::Secret { name: secret.name.clone(), key: secret.key.clone() },
        (None, Some(token)) => Token::Plain(token.clone()),
        (None, None) => Token::None,
    };
    Some(Delivery {
        url,
        body: body(run).to_string(),
        idempotency_key: run.metadata.uid.clone().unwrap_or_else(|| run.name_any()),
        token,
    })
}

/// The callback's JSON body: the Python original's field names.
pub fn body(run: &JobRun) -> serde_json::Value {
    let status = run.status.clone().unwrap_or_default();
    let terminal = terminal_condition(&status);
    let time = |t: &Option<Time>| t.as_ref().map(|t| t.0.to_string());
    json!({
        "name": run.name_any(),
        "namespace": run.namespace(),
        "uid": run.metadata.uid,
        "status": status.phase.map(|p| p.as_str()),
        "reason": terminal.and_then(|c| c.reason.clone()),
        "message": terminal.and_then(|c| c.message.clone()),
        "jobName": status.job_name,
        "startTime": time(&status.start_time),
        "completionTime": time(&status.completion_time),
    })
}

/// The condition that ended the run: the Job's `Complete` or `Failed`, or
/// the operator's own `Failed` (`TemplateNotFound`, `JobLost`, …).
fn terminal_condition(status: &JobRunStatus) -> Option<&JobCondition> {
    let conditions = status.conditions.as_deref().unwrap_or_default();
    let type_ = if status.phase.is_some_and(|p| p.as_str() == "Succeeded") { "Complete" } else { "Failed" };
    conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
        .or_else(|| conditions.iter().find(|c| c.type_ == CONDITION_FINISHED))
}

/// A final status for a run with a callback: it gets `CallbackDelivered=False/Pending`.
pub fn with_callback_pending(mut status: JobRunStatus, run: &JobRun, at: &Time) -> JobRunStatus {
    if run.spec.callback_url.is_none() || callback_condition(&status).is_some() {
        return status;
    }
    let message = plain_token_note(run, "the callback will be sent now".to_owned());
    set_condition(&mut status, CallbackState::Pending, message, at);
    status
}

fn plain_token_note(run: &JobRun, message: String) -> String {
    if run.spec.callback_token.is_some() && run.spec.callback_token_secret_ref.is_none() {
        format!("{message}; spec.callbackToken is plain text in the JobRun: use callbackTokenSecretRef instead")
    } else {
        message
    }
}

fn set_condition(status: &mut JobRunStatus, state: CallbackState, message: String, at: &Time) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let previous = conditions.iter().position(|c| c.type_ == CONDITION_CALLBACK_DELIVERED);
    let condition = JobCondition {
        type_: CONDITION_CALLBACK_DELIVERED.to_owned(),
        status: if state == CallbackState::Delivered { "True" } else { "False" }.to_owned(),
        reason: Some(state.as_str().to_owned()),
        message: Some(message),
        last_transition_time: Some(at.clone()),
        last_probe_time: None,
    };
    match previous {
        Some(index) => conditions[index] = condition,
        None => conditions.push(condition),
    }
}

/// The run's status after `attempt`, made at `now`, and when to look again
/// (`None`: delivery has ended).
pub fn after_attempt(
    run: &JobRun,
    attempt: &Attempt,
    now: Timestamp,
    settings: &CallbackSettings,
) -> (JobRunStatus, Option<Duration>) {
    let mut status = run.status.clone().unwrap_or_default();
    let mut callback = status.callback.clone().unwrap_or_default();
    let counts = !matches!(attempt, Attempt::Refused(_) | Attempt::TokenForbidden(_) | Attempt::TokenNotAllowed(_));
    let attempts = callback.attempts.unwrap_or(0).saturating_add(i32::from(counts));
    callback.attempts = Some(attempts);
    callback.last_attempt_time = Some(Time(now));
    callback.next_attempt_time = None;
    if let Attempt::Answered { code, .. } = attempt {
        callback.last_status_code = Some(i32::from(*code));
    }
    let url = shown_url(run.spec.callback_url.as_deref().unwrap_or_default());
    let (state, message, retry) = match attempt {
        Attempt::Answered { code: 200..=299, .. } => {
            callback.delivered_time = Some(Time(now));
            (CallbackState::Delivered, format!("{url} answered 2xx after {attempts} attempt(s)"), None)
        }
        Attempt::Answered { code, .. } if (400..500).contains(code) && *code != 408 && *code != 429 => {
            (CallbackState::Rejected, format!("{url} answered {code}: rejected, not retried"), None)
        }
        Attempt::Refused(why) => (CallbackState::Refused, format!("{why}; not sent, not retried"), None),
        Attempt::TokenForbidden(why) => (CallbackState::TokenForbidden, format!("{why}; not sent, not retried"), None),
        Attempt::TokenNotAllowed(why) => {
            (CallbackState::TokenNotAllowed, format!("{why}; not sent, not retried"), None)
        }
        failed => {
            let what = match failed {
                Attempt::Answered { code, .. } => format!("{url} answered {code}"),
                Attempt::TimedOut => format!("{url} did not answer within {}s", settings.timeout.as_secs_f64()),
                Attempt::NetworkError(error) => format!("{url}: {error}"),
                Attempt::TokenUnavailable(why) => why.clone(),
                _ => String::new(),
            };
            let state = if matches!(failed, Attempt::TokenUnavailable(_)) {
                CallbackState::TokenUnavailable
            } else {
                CallbackState::Retrying
            };
            if attempts >= i32::try_from(settings.max_attempts).unwrap_or(i32::MAX) {
                (CallbackState::GaveUp, format!("{what}; gave up after {attempts} attempt(s)"), None)
            } else {
                let retry_after = match failed {
                    Attempt::Answered { retry_after, .. } => *retry_after,
                    _ => None,
                };
                let delay = retry_after.map_or_else(|| backoff(run, attempts, settings), |d| d.min(settings.max_delay));
                let due = round_up(now, delay);
                callback.next_attempt_time = Some(Time(due));
                let wait = now.duration_until(due).unsigned_abs();
                let message =
                    format!("{what}; attempt {attempts} of {}, next in {}s", settings.max_attempts, wait.as_secs());
                (state, message, Some(wait))
            }
        }
    };
    status.callback = Some(callback);
    set_condition(&mut status, state, plain_token_note(run, message), &Time(now));
    (status, retry)
}

/// The callback URL as messages and logs show it: without user info and
/// query, which may carry credentials.
pub fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.set_query(None);
            parsed.set_fragment(None);
            parsed.to_string()
        }
        Err(_) => "the callback URL".to_owned(),
    }
}

/// `initial_delay · 2^(attempts-1)`, plus up to a quarter of it spread by
/// the run's uid and the attempt, capped at `max_delay`.
pub fn backoff(run: &JobRun, attempts: i32, settings: &CallbackSettings) -> Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(30);
    let base = settings.initial_delay.saturating_mul(1u32 << exponent);
    let spread = super::per_mille(&format!("{}/{attempts}", run.metadata.uid.as_deref().unwrap_or_default()));
    let jitter = base.mul_f64(spread as f64 / 4000.0);
    base.saturating_add(jitter).min(settings.max_delay)
}

/// `now + delay`, rounded up to the whole second that a status time keeps,
/// so that an attempt is never made before its recorded time.
fn round_up(now: Timestamp, delay: Duration) -> Timestamp {
    let due = now.checked_add(delay).unwrap_or(now);
    let second = due.as_second() + i64::from(due.subsec_nanosecond() > 0);
    Timestamp::from_second(second).unwrap_or(due)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{CallbackTokenSecretRef, JobRunSpec, Phase};

    fn finished_run(url: Option<&str>) -> JobRun {
        let spec = JobRunSpec {
            template_ref: "t".into(),
            callback_url: url.map(Into::into),
            callback_token_secret_ref: Some(CallbackTokenSecretRef { name: "s".into(), key: "k".into() }),
            ..JobRunSpec::default()
        };
        let mut run = JobRun::new("r", spec);
        run.metadata.namespace = Some("ns".into());
        run.metadata.uid = Some("uid-1".into());
        run.status = Some(JobRunStatus {
            phase: Some(Phase::Failed),
            job_name: Some("r".into()),
            conditions: Some(vec![JobCondition {
                type_: "Failed".into(),
                status: "True".into(),
                reason: Some("BackoffLimitExceeded".into()),
                message: Some("Job has reached the specified backoff limit".into()),
                ..JobCondition::default()
            }]),
            ..JobRunStatus::default()
        });
        run
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).expect("a time")
    }

    fn settings() -> CallbackSettings {
        CallbackSettings { max_attempts: 4, ..CallbackSettings::default() }
    }

    fn apply(run: &mut JobRun, attempt: Attempt, now: Timestamp) -> Option<Duration> {
        let (status, retry) = after_attempt(run, &attempt, now, &settings());
        run.status = Some(status);
        retry
    }

    fn reason(run: &JobRun) -> Option<String> {
        run.status.as_ref().and_then(callback_condition).and_then(|c| c.reason.clone())
    }

    #[test]
    fn only_a_run_that_finished_with_a_pending_callback_has_one_to_deliver() {
        assert!(!callback_pending(&finished_run(None)));
        let mut run = finished_run(Some("https://hooks.example.com/"));
        assert!(!callback_pending(&run), "a run finished under another operator is not notified again");
        run.status = Some(with_callback_pending(run.status.clone().unwrap_or_default(), &run, &Time(at(1))));
        assert!(callback_pending(&run));
    }

    #[test]
    fn the_body_carries_the_originals_field_names_and_the_terminal_reason() {
        let body = body(&finished_run(Some("https://h/")));
        assert_eq!(body["status"], "Failed");
        assert_eq!(body["reason"], "BackoffLimitExceeded");
        assert_eq!(body["jobName"], "r");
        assert_eq!(body["uid"], "uid-1");
        assert_eq!(body["namespace"], "ns");
        let keys: Vec<_> = body.as_object().expect("an object").keys().cloned().collect();
        assert_eq!(keys.len(), 9, "{keys:?}");
    }

    #[test]
    fn a_2xx_ends_delivery_as_delivered_and_records_the_time() {
        let mut run = finished_run(Some("https://h/"));
        assert_eq!(apply(&mut run, Attempt::Answered { code: 204, retry_after: None }, at(100)), None);
        assert_eq!(reason(&run).as_deref(), Some("Delivered"));
        let callback = run.status.as_ref().and_then(|s| s.callback.clone()).expect("recorded");
        assert_eq!(callback.attempts, Some(1));
        assert_eq!(callback.last_status_code, Some(204));
        assert_eq!(callback.delivered_time, Some(Time(at(100))));
        assert!(!callback_pending(&run));
    }

    #[test]
    fn a_4xx_is_rejected_without_retry_but_408_and_429_are_retried() {
        let mut run = finished_run(Some("https://h/"));
        assert_eq!(apply(&mut run, Attempt::Answered { code: 400, retry_after: None }, at(100)), None);
        assert_eq!(reason(&run).as_deref(), Some("Rejected"));
        for code in [408, 429, 302, 500, 503] {
            let mut run = finished_run(Some("https://h/"));
            assert!(apply(&mut run, Attempt::Answered { code, retry_after: None }, at(100)).is_some(), "{code}");
            assert_eq!(reason(&run).as_deref(), Some("Retrying"), "{code}");
        }
    }

    #[test]
    fn retries_back_off_exponentially_with_jitter_then_give_up() {
        let mut run = finished_run(Some("https://h/"));
        let mut delays = Vec::new();
        let mut now = 100;
        while let Some(delay) = apply(&mut run, Attempt::Answered { code: 503, retry_after: None }, at(now)) {
            assert_eq!(next_attempt(&run), Some(at(now + delay.as_secs() as i64)));
            delays.push(delay.as_secs());
            now += delay.as_secs() as i64;
        }
        assert_eq!(delays.len(), 3, "{delays:?}");
        for (delay, base) in delays.iter().zip([2, 4, 8]) {
            assert!((base..=base + base / 4 + 1).contains(delay), "{delays:?}");
        }
        assert_eq!(reason(&run).as_deref(), Some("GaveUp"));
        assert_eq!(run.status.as_ref().and_then(|s| s.callback.as_ref()).and_then(|c| c.attempts), Some(4));
        assert!(!callback_pending(&run));
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_maximum_delay() {
        let mut run = finished_run(Some("https://h/"));
        let retry_after = Some(Duration::from_secs(30));
        assert_eq!(
            apply(&mut run, Attempt::Answered { code: 429, retry_after }, at(100)),
            Some(Duration::from_secs(30))
        );
        let mut run = finished_run(Some("https://h/"));
        let retry_after = Some(Duration::from_secs(9999));
        assert_eq!(
            apply(&mut run, Attempt::Answered { code: 429, retry_after }, at(100)),
            Some(Duration::from_secs(300))
        );
    }

    #[test]
    fn a_refused_url_or_a_forbidden_secret_ends_delivery_without_an_attempt() {
        let mut run = finished_run(Some("http://127.0.0.1/"));
        assert_eq!(apply(&mut run, Attempt::Refused("loopback".into()), at(100)), None);
        assert_eq!(reason(&run).as_deref(), Some("Refused"));
        assert_eq!(run.status.as_ref().and_then(|s| s.callback.as_ref()).and_then(|c| c.attempts), Some(0));
        let mut run = finished_run(Some("https://h/"));
        assert_eq!(apply(&mut run, Attempt::TokenForbidden("no RBAC".into()), at(100)), None);
        assert_eq!(reason(&run).as_deref(), Some("TokenForbidden"));
    }

    #[test]
    fn a_secret_without_the_opt_in_label_ends_delivery_unsent_and_names_the_label() {
        let mut run = finished_run(Some("https://h/"));
        let why = token_not_allowed_message("s");
        assert_eq!(apply(&mut run, Attempt::TokenNotAllowed(why), at(100)), None);
        assert_eq!(reason(&run).as_deref(), Some("TokenNotAllowed"));
        assert!(!callback_pending(&run), "not retried");
        let status = run.status.as_ref().expect("a status");
        assert_eq!(status.callback.as_ref().and_then(|c| c.attempts), Some(0), "nothing was sent");
        let condition = callback_condition(status).expect("the condition");
        assert_eq!(condition.status, "False");
        assert!(condition.message.as_deref().is_some_and(|m| m.contains("cellbytes.io/callback-token=true")));
    }

    #[test]
    fn a_token_is_read_only_from_a_labelled_secret_and_only_when_its_key_holds_text() {
        let secret = |labelled: bool, value: &str| {
            let mut secret = Secret::default();
            secret.metadata.name = Some("s".into());
            if labelled {
                secret.metadata.labels =
                    Some(std::collections::BTreeMap::from([(LABEL_CALLBACK_TOKEN.to_owned(), "true".to_owned())]));
            }
            secret.string_data = Some(std::collections::BTreeMap::from([("k".to_owned(), value.to_owned())]));
            secret
        };
        assert_eq!(token_from_secret(Some(secret(true, "t0k3n")), "s", "k"), Ok("t0k3n".to_owned()));
        assert!(matches!(token_from_secret(Some(secret(false, "t0k3n")), "s", "k"), Err(Attempt::TokenNotAllowed(_))));
        let unavailable = |result: Result<String, Attempt>| matches!(result, Err(Attempt::TokenUnavailable(_)));
        assert!(unavailable(token_from_secret(Some(secret(true, "")), "s", "k")), "an empty key is no token");
        assert!(unavailable(token_from_secret(Some(secret(true, "t0k3n")), "s", "other")), "a missing key");
        assert!(unavailable(token_from_secret(None, "s", "k")), "a missing Secret");
    }

    #[test]
    fn only_the_label_value_true_lets_a_secret_be_sent() {
        let labels = |value: &str| std::collections::BTreeMap::from([(LABEL_CALLBACK_TOKEN.to_owned(), value.into())]);
        assert!(token_allowed(Some(&labels("true"))));
        for refused in ["false", "True", "yes", "", "1"] {
            assert!(!token_allowed(Some(&labels(refused))), "{refused:?}");
        }
        assert!(!token_allowed(None));
        assert!(!token_allowed(Some(&std::collections::BTreeMap::new())));
    }

    #[test]
    fn a_missing_secret_is_retried_with_backoff_and_a_clear_reason() {
        let mut run = finished_run(Some("https://h/"));
        let retry = apply(&mut run, Attempt::TokenUnavailable("Secret ns/s not found".into()), at(100));
        assert!(retry.is_some_and(|d| d >= Duration::from_secs(2)));
        assert_eq!(reason(&run).as_deref(), Some("TokenUnavailable"));
        assert!(callback_pending(&run));
    }

    #[test]
    fn messages_show_the_url_without_credentials_or_query() {
        assert_eq!(shown_url("https://user:pw@h.example.com:8443/p?token=x#f"), "https://h.example.com:8443/p");
        let mut run = finished_run(Some("https://user:pw@h/p?token=x"));
        apply(&mut run, Attempt::Answered { code: 500, retry_after: None }, at(1));
        let message = run.status.as_ref().and_then(callback_condition).and_then(|c| c.message.clone());
        assert!(message.as_deref().is_some_and(|m| m.starts_with("https://h/p answered 500")), "{message:?}");
    }

    #[test]
    fn a_plain_token_is_sent_but_never_shown() {
        let mut run = finished_run(Some("https://h/"));
        run.spec.callback_token_secret_ref = None;
        run.spec.callback_token = Some("s3cret".into());
        let delivery = delivery(&run).expect("a delivery");
        assert_eq!(delivery.token, Token::Plain("s3cret".into()));
        assert!(!format!("{delivery:?}").contains("s3cret"));
        let status = with_callback_pending(run.status.clone().unwrap_or_default(), &run, &Time(at(1)));
        let message = callback_condition(&status).and_then(|c| c.message.clone()).unwrap_or_default();
        assert!(message.contains("callbackTokenSecretRef") && !message.contains("s3cret"), "{message}");
    }
}
