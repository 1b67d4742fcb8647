//! Properties of the pure core over generated templates, runs and Job
//! states: `render` fails only where it must and with the error it must,
//! Job names the API server and the Job controller accept, overrides that
//! touch only the first container, a decision table that never writes a
//! finished run's outcome again, and callbacks delivered only while pending.

use std::time::Duration;

use jtr_core::crd::{CallbackStatus, JobRun, JobRunSpec, JobRunStatus, JobTemplate, JobTemplateFields, Phase};
use jtr_core::merge::{
    self, Attempt, CONDITION_CALLBACK_DELIVERED, CallbackState, Next, Observed, Refusal, RenderError, Settings, Step,
};
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobSpec, JobStatus};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use proptest::prelude::*;
use proptest::strategy::ValueTree;

/// DNS-1123 subdomains of 1 to 120 characters: object names as the API
/// server admits them.
fn object_name() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?){0,2}")
        .expect("a valid regex")
}

/// A run's name: an object name, or a DNS label of 52 to 63 characters,
/// so that an Indexed Job's last pod hostname `<name>-<index>` is often
/// within a character of the 63 it may have.
fn run_name() -> impl Strategy<Value = String> {
    prop_oneof![
        object_name(),
        proptest::string::string_regex("[a-z0-9][-a-z0-9]{50,61}[a-z0-9]").expect("a valid regex")
    ]
}

fn strings() -> impl Strategy<Value = Option<Vec<String>>> {
    proptest::option::of(proptest::collection::vec(".{0,12}", 0..4))
}

fn container(name: String, command: Option<Vec<String>>, args: Option<Vec<String>>) -> Container {
    Container { name, image: Some("busybox".into()), command, args, ..Container::default() }
}

prop_compose! {
    fn template()(
        name in object_name(),
        containers in proptest::collection::vec((strings(), strings()), 0..4),
        init in proptest::collection::vec(strings(), 0..2),
        indexed in any::<bool>(),
        completions in proptest::option::of(1..2000i32),
        generation in proptest::option::of(1..100i64),
    ) -> JobTemplate {
        let containers = containers.into_iter().enumerate()
            .map(|(i, (command, args))| container(format!("c{i}"), command, args)).collect();
        let init_containers = Some(init.into_iter().enumerate()
            .map(|(i, args)| container(format!("i{i}"), None, args)).collect());
        let spec = JobSpec {
            completion_mode: indexed.then(|| "Indexed".to_owned()),
            completions,
            template: PodTemplateSpec {
                metadata: None,
                spec: Some(PodSpec { containers, init_containers, restart_policy: Some("Never".into()), ..PodSpec::default() }),
            },
            ..JobSpec::default()
        };
        let mut template = JobTemplate::new(&name, JobTemplateFields::of(spec));
        template.metadata.namespace = Some("ns".into());
        template.metadata.generation = generation;
        template
    }
}

prop_compose! {
    fn run()(
        name in run_name(), command in strings(), args in strings(), template in object_name(),
        cancel in proptest::option::of(any::<bool>()),
    ) -> JobRun {
        let mut run = JobRun::new(&name, JobRunSpec { template_ref: template, command, args, cancel, ..JobRunSpec::default() });
        run.metadata.namespace = Some("ns".into());
        run.metadata.uid = Some("2f4c5a1e-0000-4000-8000-000000000001".into());
        run.metadata.generation = Some(1);
        run.metadata.creation_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        run
    }
}

fn condition() -> impl Strategy<Value = JobCondition> {
    (
        prop::sample::select(vec!["Complete", "Failed", "Suspended", "SuccessCriteriaMet", "FailureTarget"]),
        any::<bool>(),
    )
        .prop_map(|(type_, on)| JobCondition {
            type_: type_.into(),
            status: if on { "True" } else { "False" }.into(),
            ..JobCondition::default()
        })
}

prop_compose! {
    fn job_status()(
        conditions in proptest::collection::vec(condition(), 0..4),
        started in any::<bool>(),
        active in proptest::option::of(0..5i32),
    ) -> JobStatus {
        JobStatus {
            conditions: Some(conditions),
            start_time: started.then_some(Time(Timestamp::UNIX_EPOCH)),
            active,
            ..JobStatus::default()
        }
    }
}

/// A Job at the run's name: the run's own (`owner` 0), another run's (1),
/// or anyone's (2); maybe being deleted, maybe holding the finalizer.
fn job_at(run: &JobRun, owner: u8, deleting: bool, held: bool, status: JobStatus) -> Job {
    let uid = run.metadata.uid.clone().unwrap_or_default();
    Job {
        metadata: ObjectMeta {
            name: Some(merge::job_name_for(run)),
            namespace: Some("ns".into()),
            owner_references: match owner {
                0 => Some(vec![owner_ref(&uid)]),
                1 => Some(vec![owner_ref("another-uid")]),
                _ => None,
            },
            deletion_timestamp: deleting.then_some(Time(Timestamp::UNIX_EPOCH)),
            finalizers: held.then(|| vec![merge::FINALIZER.to_owned()]),
            ..ObjectMeta::default()
        },
        spec: None,
        status: Some(status),
    }
}

fn owner_ref(uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "cellbytes.io/v1".into(),
        kind: "JobRun".into(),
        name: "r".into(),
        uid: uid.into(),
        controller: Some(true),
        ..OwnerReference::default()
    }
}

/// A DNS-1123 label: what a pod's hostname must be.
fn is_dns_label(name: &str) -> bool {
    is_dns_subdomain(name) && !name.contains('.') && name.len() <= 63
}

/// The error `render` must give, or `None` when it must make a Job. The
/// generated names are valid object names and the run has its namespace
/// and uid, so two inputs, and only they, cannot make a Job: an Indexed Job
/// whose last pod's hostname `<job name>-<completions - 1>` is not a DNS
/// label (checked first), and a template without containers.
fn expected_render_error(template: &JobTemplate, run: &JobRun) -> Option<RenderError> {
    let spec = &template.spec.spec.0;
    let template_name = template.metadata.name.clone().unwrap_or_default();
    let last_pod = format!("{}-{}", merge::job_name_for(run), spec.completions.unwrap_or(1) - 1);
    if spec.completion_mode.as_deref() == Some("Indexed") && !is_dns_label(&last_pod) {
        let run = run.metadata.name.clone().unwrap_or_default();
        return Some(RenderError::NameUnfitForIndexedJob { template: template_name, run });
    }
    if spec.template.spec.as_ref().is_none_or(|pod| pod.containers.is_empty()) {
        return Some(RenderError::NoContainers { template: template_name });
    }
    None
}

fn is_dns_subdomain(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.chars().all(|c| alnum(c) || c == '-' || c == '.')
        && name.starts_with(alnum)
        && name.ends_with(alnum)
}

proptest! {
    #[test]
    fn render_fails_only_where_it_must_and_names_every_job_so_the_api_and_the_job_controller_accept_it(
        template in template(), run in run(),
    ) {
        let expected = expected_render_error(&template, &run);
        match merge::render(&template, &run) {
            Err(error) => prop_assert_eq!(Some(error), expected, "render failed (left), not as it must (right)"),
            Ok(job) => {
                prop_assert_eq!(None, expected, "render made a Job where it must fail");
                let name = job.metadata.name.clone().unwrap_or_default();
                prop_assert!(name.len() <= 63, "{name} is longer than a label value");
                prop_assert!(is_dns_subdomain(&name), "{name} is not a DNS-1123 subdomain");
                prop_assert_eq!(job.metadata.finalizers.clone(), Some(vec![merge::FINALIZER.to_owned()]));
                if template.spec.spec.0.completion_mode.as_deref() == Some("Indexed") {
                    let largest = template.spec.spec.0.completions.unwrap_or(1) - 1;
                    prop_assert!(is_dns_label(&format!("{name}-{largest}")), "pod {name}-{largest} is not a DNS label");
                }
            }
        }
    }

    #[test]
    fn overrides_touch_only_the_first_container(template in template(), run in run()) {
        let expected = expected_render_error(&template, &run);
        match merge::render(&template, &run) {
            Err(error) => prop_assert_eq!(Some(error), expected, "render failed (left), not as it must (right)"),
            Ok(job) => {
                prop_assert_eq!(None, expected, "render made a Job where it must fail");
                let before = template.spec.spec.0.template.spec.clone().unwrap_or_default();
                let after = job.spec.and_then(|s| s.template.spec).unwrap_or_default();
                prop_assert_eq!(&before.containers[1..], &after.containers[1..]);
                prop_assert_eq!(before.init_containers, after.init_containers);
                let (first, was) = (&after.containers[0], &before.containers[0]);
                prop_assert_eq!(&first.image, &was.image);
                let expect = |over: &Option<Vec<String>>, had: &Option<Vec<String>>| match over {
                    Some(list) if list.is_empty() => None,
                    Some(list) => Some(list.clone()),
                    None => had.clone(),
                };
                prop_assert_eq!(&first.command, &expect(&run.spec.command, &was.command));
                prop_assert_eq!(&first.args, &expect(&run.spec.args, &was.args));
            }
        }
    }

    /// Whatever its Job, template, create refusal or callback attempt: a
    /// finished run with no callback to deliver lets its own Job's finalizer
    /// go, or does nothing.
    #[test]
    fn a_finished_run_without_a_callback_to_deliver_is_never_written_never_delivers_and_only_lets_its_job_go(
        case in finished_run(false),
    ) {
        let step = merge::decide(&case.seen(), &Settings::default());
        let expected = if case.job_held { Step::Release } else { Step::Done };
        prop_assert_eq!(step, expected);
    }

    /// Whatever its Job, template or create refusal: a finished run whose
    /// callback is pending records the attempt just made, touching only the
    /// callback's condition and record; else waits until the next attempt
    /// is due; else reads live; else delivers. It never lets its Job go.
    #[test]
    fn a_finished_run_with_a_pending_callback_writes_only_its_callback_and_delivers_only_when_due_and_read_live(
        case in finished_run(true),
    ) {
        let settings = Settings::default();
        let step = merge::decide(&case.seen(), &settings);
        let due = case.callback().next_attempt_time.map(|t| t.0).filter(|due| case.now < *due);
        match (&case.attempt, due) {
            (Some(attempt), _) => {
                let Step::Write(status, next) = step else {
                    return Err(TestCaseError::fail(format!("after {attempt:?} the table gave {step:?}, not a write")));
                };
                let before = case.run.status.clone().unwrap_or_default();
                prop_assert_eq!(without_callback(&status), without_callback(&before), "an attempt wrote more than its callback");
                let counted =
                    !matches!(attempt, Attempt::Refused(_) | Attempt::TokenForbidden(_) | Attempt::TokenNotAllowed(_));
                let attempts = case.callback().attempts.unwrap_or(0) + i32::from(counted);
                let callback = status.callback.clone().unwrap_or_default();
                prop_assert_eq!(callback.attempts, Some(attempts));
                prop_assert_eq!(callback.last_attempt_time, Some(Time(case.now)));
                let state = state_after(attempt, attempts, &settings);
                prop_assert_eq!(merge::callback_state_of(&status), Some(state), "after {:?}", attempt);
                match next {
                    Next::Change => {
                        prop_assert!(state.is_final(), "{state:?} is not retried");
                        prop_assert_eq!(callback.next_attempt_time, None);
                    }
                    Next::After(delay) => {
                        prop_assert!(!state.is_final(), "{state:?} ended delivery, yet it is retried");
                        prop_assert!(delay <= settings.callback.max_delay + Duration::from_secs(1), "{delay:?}");
                        let retry = case.now.checked_add(delay).expect("a time");
                        prop_assert_eq!(callback.next_attempt_time, Some(Time(retry)));
                    }
                    Next::Backoff => return Err(TestCaseError::fail("a callback retry is not the create backoff")),
                }
            }
            (None, Some(due)) => {
                prop_assert_eq!(step, Step::Wait(Next::After(case.now.duration_until(due).unsigned_abs())));
            }
            (None, None) if !case.live => prop_assert_eq!(step, Step::ReadLive),
            (None, None) => {
                let Step::Deliver(delivery) = step else {
                    return Err(TestCaseError::fail(format!("a due callback, read live, got {step:?}")));
                };
                prop_assert_eq!(&delivery.url, CALLBACK_URL);
                prop_assert_eq!(Some(&delivery.idempotency_key), case.run.metadata.uid.as_ref());
                prop_assert_eq!(delivery.body, merge::callback_body(&case.run).to_string());
            }
        }
    }

    #[test]
    fn every_decision_is_a_step_the_reconciler_can_take_and_never_panics(
        run in run(), template in proptest::option::of(template()), status in proptest::option::of(job_status()),
        live in any::<bool>(), other in any::<bool>(), late in 0..30u64, owner in 0..3u8, deleting in any::<bool>(), held in any::<bool>(),
    ) {
        let job = status.map(|status| job_at(&run, owner, deleting, held, status));
        let now = Timestamp::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(late)).expect("a time");
        let seen = Observed { run: &run, job: job.as_ref(), template: template.as_ref(), live, refusal: None, other_run_exists: other, attempt: None, history: None,
            pods: &[],
            failed_creates: &[], now };
        match merge::decide(&seen, &Settings::default()) {
            Step::Create(new) => {
                prop_assert!(job.is_none(), "a Job exists, yet the table creates one");
                prop_assert!(merge::is_controlled_by(&new, &run));
            }
            Step::Write(status, next) => {
                let final_ = status.phase.is_some_and(Phase::is_final);
                prop_assert_eq!(final_, next == Next::Change, "{:?} then {:?}", status.phase, next);
                if status.phase == Some(Phase::Failed) && status.error.is_some() && job.as_ref().is_none_or(|j| !merge::is_controlled_by(j, &run)) {
                    prop_assert!(live, "a failure declared on cached data: {:?}", status.error);
                }
            }
            Step::Protect | Step::Release => prop_assert!(job.as_ref().is_some_and(|j| merge::is_controlled_by(j, &run))),
            Step::Suspend => {
                prop_assert!(job.as_ref().is_some_and(|j| merge::is_controlled_by(j, &run)), "suspends a Job not its own");
                prop_assert!(run.spec.cancel == Some(true) && !merge::is_finished(&run), "suspends a Job it was not asked to stop");
            }
            Step::Deliver(_) => prop_assert!(merge::is_finished(&run), "an unfinished run delivers its callback"),
            Step::Delete(_) | Step::ReadHistory | Step::Wake(..) => {
                prop_assert!(merge::is_finished(&run), "retention acts on an unfinished run");
            }
            Step::Done | Step::ReadLive | Step::Wait(_) => {}
        }
    }
}

/// Where a finished run's callback stands (the `CallbackDelivered`
/// condition's reason) when it is still to be delivered.
const PENDING_STATES: [CallbackState; 3] =
    [CallbackState::Pending, CallbackState::Retrying, CallbackState::TokenUnavailable];
/// … and when its delivery has ended.
const FINAL_STATES: [CallbackState; 6] = [
    CallbackState::Delivered,
    CallbackState::Rejected,
    CallbackState::Refused,
    CallbackState::TokenForbidden,
    CallbackState::TokenNotAllowed,
    CallbackState::GaveUp,
];
const CALLBACK_URL: &str = "https://hooks.example.com/done";

fn attempt() -> impl Strategy<Value = Attempt> {
    prop_oneof![
        (
            prop::sample::select(vec![200u16, 204, 299, 302, 400, 401, 404, 408, 429, 499, 500, 503]),
            proptest::option::of(0..900u64),
        )
            .prop_map(|(code, after)| Attempt::Answered { code, retry_after: after.map(Duration::from_secs) }),
        Just(Attempt::TimedOut),
        Just(Attempt::NetworkError("connection refused".into())),
        Just(Attempt::Refused("127.0.0.1 is a loopback address".into())),
        Just(Attempt::TokenUnavailable("Secret ns/s not found".into())),
        Just(Attempt::TokenForbidden("may not read Secret ns/s".into())),
        Just(Attempt::TokenNotAllowed("Secret \"s\" is not labelled cellbytes.io/callback-token=true".into())),
    ]
}

/// A create refusal as the API server words them: permanent (400, 422, an
/// admission denial) or one that may pass (RBAC, quota, throttling, 5xx,
/// no answer).
fn refusal() -> impl Strategy<Value = Refusal> {
    prop::sample::select(vec![
        (0, "", "connection refused"),
        (400, "BadRequest", "bad request"),
        (403, "Forbidden", "jobs.batch is forbidden: User cannot create resource"),
        (403, "Forbidden", "admission webhook \"deny.example.com\" denied the request: no"),
        (403, "Forbidden", "exceeded quota: jobs, requested: count/jobs.batch=1"),
        (422, "Invalid", "Job.batch \"r\" is invalid"),
        (429, "TooManyRequests", "slow down"),
        (500, "InternalError", "etcdserver: request timed out"),
    ])
    .prop_map(|(code, reason, message)| Refusal { code, reason: reason.into(), message: message.into() })
}

/// A finished run and everything else the reconciler may see with it.
#[derive(Clone, Debug)]
struct FinishedRun {
    run: JobRun,
    job: Option<Job>,
    /// The Job is the run's own and holds the operator's finalizer.
    job_held: bool,
    template: Option<JobTemplate>,
    refusal: Option<Refusal>,
    attempt: Option<Attempt>,
    live: bool,
    other_run_exists: bool,
    now: Timestamp,
}

impl FinishedRun {
    fn seen(&self) -> Observed<'_> {
        Observed {
            run: &self.run,
            job: self.job.as_ref(),
            template: self.template.as_ref(),
            live: self.live,
            refusal: self.refusal.as_ref(),
            other_run_exists: self.other_run_exists,
            attempt: self.attempt.as_ref(),
            history: None,
            pods: &[],
            failed_creates: &[],
            now: self.now,
        }
    }

    fn callback(&self) -> CallbackStatus {
        self.run.status.as_ref().and_then(|s| s.callback.clone()).unwrap_or_default()
    }
}

fn at(seconds: u64) -> Timestamp {
    Timestamp::UNIX_EPOCH.checked_add(Duration::from_secs(seconds)).expect("a time")
}

/// A finished run's status: its outcome, the Job's counts and times, and
/// the callback's condition and record when it has a `callback` state.
fn finished_status(
    run: &JobRun,
    succeeded: bool,
    callback: Option<CallbackState>,
    attempts: i32,
    due: Option<u64>,
) -> JobRunStatus {
    let (phase, type_, reason) = if succeeded {
        (Phase::Succeeded, "Complete", "CompletionsReached")
    } else {
        (Phase::Failed, "Failed", "BackoffLimitExceeded")
    };
    let condition = |type_: &str, status: &str, reason: &str| JobCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(format!("{type_} because {reason}")),
        last_transition_time: Some(Time(at(7))),
        last_probe_time: None,
    };
    let mut conditions = vec![condition(type_, "True", reason), condition(merge::CONDITION_FINISHED, "True", reason)];
    let mut record = None;
    if let Some(state) = callback {
        let shown = if state == CallbackState::Delivered { "True" } else { "False" };
        conditions.push(condition(CONDITION_CALLBACK_DELIVERED, shown, state.as_str()));
        record = Some(CallbackStatus {
            attempts: Some(attempts),
            next_attempt_time: due.map(|s| Time(at(s))),
            ..CallbackStatus::default()
        });
    }
    JobRunStatus {
        job_name: Some(merge::job_name_for(run)),
        observed_generation: Some(1),
        phase: Some(phase),
        start_time: Some(Time(at(1))),
        completion_time: Some(Time(at(7))),
        active: Some(0),
        succeeded: Some(i32::from(succeeded)),
        failed: Some(i32::from(!succeeded)),
        conditions: Some(conditions),
        callback: record,
        ..JobRunStatus::default()
    }
}

prop_compose! {
    /// A finished run whose callback is still to be delivered (`pending`:
    /// it has a `callbackUrl`, a pending, retrying or token-unavailable
    /// callback, and is not being deleted), or one without any to deliver:
    /// no `callbackUrl`, no `CallbackDelivered` condition (it finished
    /// under another operator), a delivery that has ended, or being deleted.
    fn finished_run(pending: bool)(
        run in run(), succeeded in any::<bool>(), with_url in any::<bool>(), deleting_run in any::<bool>(),
        pending_state in prop::sample::select(PENDING_STATES.to_vec()),
        other_state in proptest::option::of(prop::sample::select([PENDING_STATES.as_slice(), FINAL_STATES.as_slice()].concat())),
        attempts in 0..10i32, due in proptest::option::of(0..120u64),
        job in proptest::option::of((job_status(), 0..3u8, any::<bool>(), any::<bool>())),
        template in proptest::option::of(template()), refusal in proptest::option::of(refusal()),
        attempt in proptest::option::of(attempt()), flags in (any::<bool>(), any::<bool>()), now in 0..120u64,
    ) -> FinishedRun {
        let mut run = run;
        let (state, url, deleting) = if pending {
            (Some(pending_state), true, false)
        } else {
            let would_be_pending = with_url && other_state.is_some_and(|s| !s.is_final()) && !deleting_run;
            (other_state, with_url, deleting_run || would_be_pending)
        };
        run.spec.callback_url = url.then(|| CALLBACK_URL.to_owned());
        run.metadata.deletion_timestamp = deleting.then_some(Time(at(100)));
        run.status = Some(finished_status(&run, succeeded, state, attempts, due));
        let job_held = job.as_ref().is_some_and(|(_, owner, _, held)| *owner == 0 && *held);
        let job = job.map(|(status, owner, deleting, held)| job_at(&run, owner, deleting, held, status));
        let (live, other_run_exists) = flags;
        FinishedRun { run, job, job_held, template, refusal, attempt, live, other_run_exists, now: at(now) }
    }
}

/// The status with the callback's condition and record taken out: what a
/// callback attempt must leave as it was.
fn without_callback(status: &JobRunStatus) -> JobRunStatus {
    let mut status = status.clone();
    if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| c.type_ != CONDITION_CALLBACK_DELIVERED);
    }
    status.callback = None;
    status
}

/// Where the callback stands after `attempt`, the `attempts`-th counted.
fn state_after(attempt: &Attempt, attempts: i32, settings: &Settings) -> CallbackState {
    let max_attempts = i32::try_from(settings.callback.max_attempts).expect("a small limit");
    match attempt {
        Attempt::Answered { code: 200..=299, .. } => CallbackState::Delivered,
        Attempt::Answered { code: 400..=499, .. } if !matches!(attempt, Attempt::Answered { code: 408 | 429, .. }) => {
            CallbackState::Rejected
        }
        Attempt::Refused(_) => CallbackState::Refused,
        Attempt::TokenForbidden(_) => CallbackState::TokenForbidden,
        Attempt::TokenNotAllowed(_) => CallbackState::TokenNotAllowed,
        _ if attempts >= max_attempts => CallbackState::GaveUp,
        Attempt::TokenUnavailable(_) => CallbackState::TokenUnavailable,
        _ => CallbackState::Retrying,
    }
}

/// Which arm of the finished-run rules a step is.
fn kind(step: &Step) -> &'static str {
    match step {
        Step::Done => "Done",
        Step::ReadLive => "ReadLive",
        Step::Create(_) => "Create",
        Step::Protect => "Protect",
        Step::Release => "Release",
        Step::Suspend => "Suspend",
        Step::Write(..) => "Write",
        Step::Wait(_) => "Wait",
        Step::Deliver(_) => "Deliver",
        Step::ReadHistory => "ReadHistory",
        Step::Delete(_) => "Delete",
        Step::Wake(..) => "Wake",
    }
}

/// The kinds of step that `cases` draws of `strategy` reach.
fn kinds_reached<S: Strategy>(
    strategy: S,
    cases: usize,
    kind_of: impl Fn(S::Value) -> &'static str,
) -> Vec<&'static str> {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut kinds: Vec<&'static str> =
        (0..cases).map(|_| kind_of(strategy.new_tree(&mut runner).expect("a value").current())).collect();
    kinds.sort_unstable();
    kinds.dedup();
    kinds
}

#[test]
fn the_generated_templates_and_runs_reach_every_render_outcome() {
    let reached = kinds_reached((template(), run()), 256, |(template, run)| match merge::render(&template, &run) {
        Ok(_) => "Ok",
        Err(RenderError::NoContainers { .. }) => "NoContainers",
        Err(RenderError::NameUnfitForIndexedJob { .. }) => "NameUnfitForIndexedJob",
        Err(_) => "another error",
    });
    assert_eq!(reached, ["NameUnfitForIndexedJob", "NoContainers", "Ok"]);
}

#[test]
fn the_generated_finished_runs_reach_every_step_of_the_finished_run_rules() {
    let decide = |case: FinishedRun| kind(&merge::decide(&case.seen(), &Settings::default()));
    assert_eq!(kinds_reached(finished_run(false), 256, decide), ["Done", "Release"]);
    assert_eq!(kinds_reached(finished_run(true), 256, decide), ["Deliver", "ReadLive", "Wait", "Write"]);
}
