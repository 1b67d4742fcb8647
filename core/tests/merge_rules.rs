//! Rules of the pure core pinned one at a time, through its public functions,
//! each one a mutant of `cargo mutants` that the other tests let live: edges
//! of the decision table that no fixture stages (an exact deadline, a waiting
//! condition seen again), the janitor's `release_orphan`, the Events that
//! `notes` derives from two statuses, a finished run's callback and the SSRF
//! guard.

use std::net::IpAddr;
use std::time::Duration;

use jtr_core::crd::{CallbackStatus, CallbackTokenSecretRef, JobRun, JobRunSpec, JobRunStatus, Phase};
use jtr_core::merge::{
    self, AllowList, Attempt, Cidr, FailureReason, Guard, Next, Note, Observed, Settings, Step, Target, Token,
};
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;

const UID: &str = "2f4c5a1e-0000-4000-8000-000000000001";

fn run() -> JobRun {
    let spec = JobRunSpec { template_ref: "echo-template".into(), ..JobRunSpec::default() };
    let mut run = JobRun::new("echo-run", spec);
    run.metadata.namespace = Some("demo".into());
    run.metadata.uid = Some(UID.into());
    run.metadata.generation = Some(1);
    run.metadata.creation_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
    run
}

fn at(seconds: u64) -> Timestamp {
    Timestamp::UNIX_EPOCH.checked_add(Duration::from_secs(seconds)).expect("a time")
}

/// What `decide` does for `run` on live data with no template: given its
/// Job, if any, and the callback attempt just made, if any.
fn decide_live(run: &JobRun, job: Option<&Job>, attempt: Option<&Attempt>, now: Timestamp) -> Step {
    let seen = Observed {
        run,
        job,
        template: None,
        live: true,
        refusal: None,
        other_run_exists: false,
        attempt,
        history: None,
        pods: &[],
        failed_creates: &[],
        now,
    };
    merge::decide(&seen, &Settings::default())
}

/// What `decide` does for `run` with no Job and no template, on live data.
fn decide_without_template(run: &JobRun, now: Timestamp) -> Step {
    decide_live(run, None, None, now)
}

fn owner(api_version: &str, kind: &str, uid: &str, controller: Option<bool>) -> OwnerReference {
    OwnerReference {
        api_version: api_version.into(),
        kind: kind.into(),
        name: "echo-run".into(),
        uid: uid.into(),
        controller,
        ..OwnerReference::default()
    }
}

fn job_with(owners: Vec<OwnerReference>, held: bool, deleting: bool) -> Job {
    let mut job = Job::default();
    job.metadata.name = Some("echo-run".into());
    job.metadata.owner_references = Some(owners);
    job.metadata.finalizers = held.then(|| vec![merge::FINALIZER.to_owned()]);
    job.metadata.deletion_timestamp = deleting.then_some(Time(Timestamp::UNIX_EPOCH));
    job
}

fn condition(type_: &str, status: &str, reason: &str) -> JobCondition {
    JobCondition { type_: type_.into(), status: status.into(), reason: Some(reason.into()), ..JobCondition::default() }
}

#[test]
fn a_template_still_missing_exactly_when_the_grace_period_ends_fails_the_run() {
    let grace = Settings::default().template_grace.as_secs();
    let Step::Write(waiting, Next::After(left)) = decide_without_template(&run(), at(grace - 1)) else {
        panic!("one second before the end of the grace period the run waits");
    };
    assert_eq!((waiting.phase, left), (Some(Phase::Pending), Duration::from_secs(1)));
    let Step::Write(failed, Next::Change) = decide_without_template(&run(), at(grace)) else {
        panic!("at the end of the grace period the run fails");
    };
    assert_eq!(failed.phase, Some(Phase::Failed));
    assert_eq!(failed.error.as_deref().and_then(|e| e.split(':').next()), Some("TemplateNotFound"));
}

#[test]
fn waiting_again_for_the_same_reason_keeps_the_time_the_wait_began() {
    let Step::Write(first, _) = decide_without_template(&run(), at(0)) else { panic!("the run waits") };
    let mut again = run();
    again.status = Some(*first);
    let Step::Write(second, _) = decide_without_template(&again, at(3)) else { panic!("the run still waits") };
    let times: Vec<_> = second.conditions.iter().flatten().map(|c| c.last_transition_time.clone()).collect();
    assert_eq!(times, [Some(Time(at(0)))]);
}

#[test]
fn a_waiting_condition_of_another_type_does_not_lend_its_time() {
    let Step::Write(first, _) = decide_without_template(&run(), at(0)) else { panic!("the run waits") };
    let mut first = *first;
    for condition in first.conditions.iter_mut().flatten() {
        condition.type_ = merge::CONDITION_JOB_CREATED.into(); // same status, reason and message
    }
    let mut again = run();
    again.status = Some(first);
    let Step::Write(second, _) = decide_without_template(&again, at(3)) else { panic!("the run still waits") };
    let conditions: Vec<_> =
        second.conditions.iter().flatten().map(|c| (c.type_.as_str(), c.last_transition_time.clone())).collect();
    assert_eq!(conditions, [(merge::CONDITION_TEMPLATE_READY, Some(Time(at(3))))]);
}

#[test]
fn a_job_controlled_by_the_run_is_the_runs() {
    let job = job_with(vec![owner("cellbytes.io/v1", "JobRun", UID, Some(true))], false, false);
    assert!(merge::is_controlled_by(&job, &run()));
}

#[test]
fn a_job_owned_by_another_uid_is_not_the_runs() {
    let job = job_with(vec![owner("cellbytes.io/v1", "JobRun", "another-uid", Some(true))], false, false);
    assert!(!merge::is_controlled_by(&job, &run()));
}

#[test]
fn only_a_controller_reference_to_a_cellbytes_jobrun_names_the_controlling_run() {
    let controlling = |o: OwnerReference| merge::controlling_run(&job_with(vec![o], true, false)).is_some();
    assert!(controlling(owner("cellbytes.io/v1", "JobRun", UID, Some(true))));
    assert!(!controlling(owner("cellbytes.io/v1", "JobRun", UID, None)), "an owner that is not the controller");
    assert!(!controlling(owner("cellbytes.io/v1", "JobTemplate", UID, Some(true))), "another kind of the group");
    assert!(!controlling(owner("example.com/v1", "JobRun", UID, Some(true))), "a JobRun of another group");
}

#[test]
fn a_job_being_deleted_is_released_when_its_run_is_gone_replaced_or_being_deleted() {
    let ours = || owner("cellbytes.io/v1", "JobRun", UID, Some(true));
    let job = job_with(vec![ours()], true, true);
    assert!(merge::release_orphan(&job, None), "its run is gone");
    let mut replaced = run();
    replaced.metadata.uid = Some("another-uid".into());
    assert!(merge::release_orphan(&job, Some(&replaced)), "a new run of the same name");
    let mut leaving = run();
    leaving.metadata.deletion_timestamp = Some(Time(at(1)));
    assert!(merge::release_orphan(&job, Some(&leaving)), "its run is being deleted");
}

#[test]
fn a_job_is_kept_while_its_run_lives_and_a_job_not_held_or_not_deleted_is_left_alone() {
    let ours = || owner("cellbytes.io/v1", "JobRun", UID, Some(true));
    assert!(!merge::release_orphan(&job_with(vec![ours()], true, true), Some(&run())), "its run still needs it");
    assert!(!merge::release_orphan(&job_with(vec![ours()], false, true), None), "no finalizer of ours to remove");
    assert!(!merge::release_orphan(&job_with(vec![ours()], true, false), None), "not being deleted");
}

#[test]
fn a_job_lost_after_its_failure_target_is_noted_with_the_operators_reason_not_the_jobs() {
    let mut before = run();
    before.status = Some(JobRunStatus {
        job_name: Some("echo-run".into()),
        phase: Some(Phase::Running),
        conditions: Some(vec![condition("FailureTarget", "True", "BackoffLimitExceeded")]),
        ..JobRunStatus::default()
    });
    let lost = merge::Failure::new(FailureReason::JobLost, r#"Job "echo-run" was deleted before it finished"#);
    let after = merge::failed(&before, &lost, Time(at(5)));
    let previous = before.status.clone().unwrap_or_default();
    assert_eq!(
        merge::notes(&previous, &after),
        [Note { warning: true, reason: "JobLost".into(), note: lost.message.clone() }]
    );
}

#[test]
fn a_long_note_is_cut_to_exactly_the_limit_or_to_the_character_boundary_before_it() {
    let ascii = merge::cut_note(&"a".repeat(2000));
    assert_eq!(ascii.len(), merge::MAX_NOTE_BYTES);
    assert_eq!(ascii, format!("{} …", "a".repeat(merge::MAX_NOTE_BYTES - " …".len())));
    // One ASCII byte, then two-byte characters: the limit falls inside one.
    let cut = merge::cut_note(&format!("a{}", "é".repeat(700)));
    assert_eq!(cut.len(), merge::MAX_NOTE_BYTES - 1);
    assert!(cut.ends_with("é …"));
}

// The callback of a finished run (`merge/callback.rs`), through the table.

fn finished_with_callback(token: Option<&str>, secret: bool) -> JobRun {
    let mut run = run();
    run.spec.callback_url = Some("https://h/".into());
    run.spec.callback_token = token.map(Into::into);
    run.spec.callback_token_secret_ref = secret.then(|| CallbackTokenSecretRef { name: "s".into(), key: "k".into() });
    run.status = Some(JobRunStatus {
        job_name: Some("echo-run".into()),
        phase: Some(Phase::Failed),
        conditions: Some(vec![
            condition("Failed", "True", "BackoffLimitExceeded"),
            condition(merge::CONDITION_CALLBACK_DELIVERED, "False", "Pending"),
        ]),
        ..JobRunStatus::default()
    });
    run
}

/// The status written after `attempt`, made at `now`, and when to look again.
fn after(run: &JobRun, attempt: &Attempt, now: Timestamp) -> (JobRunStatus, Next) {
    match decide_live(run, None, Some(attempt), now) {
        Step::Write(status, next) => (*status, next),
        step => panic!("an attempt's outcome is written, got {step:?}"),
    }
}

fn callback_condition(status: &JobRunStatus) -> JobCondition {
    status.conditions.iter().flatten().find(|c| c.type_ == merge::CONDITION_CALLBACK_DELIVERED).cloned().expect("set")
}

#[test]
fn each_failed_attempt_says_what_went_wrong() {
    let run = finished_with_callback(None, false);
    let cases = [
        (Attempt::Answered { code: 503, retry_after: None }, "https://h/ answered 503"),
        (Attempt::TimedOut, "https://h/ did not answer within 10s"),
        (Attempt::NetworkError("connection refused".into()), "https://h/: connection refused"),
        (Attempt::TokenUnavailable("Secret demo/s not found".into()), "Secret demo/s not found"),
    ];
    for (attempt, what) in cases {
        let message = callback_condition(&after(&run, &attempt, at(100)).0).message.unwrap_or_default();
        assert!(message.starts_with(&format!("{what}; attempt 1 of 8, next in ")), "{message}");
    }
}

#[test]
fn only_a_delivered_callback_has_a_true_condition() {
    let run = finished_with_callback(None, false);
    let delivered = after(&run, &Attempt::Answered { code: 200, retry_after: None }, at(100)).0;
    assert_eq!(callback_condition(&delivered).status, "True");
    let retrying = after(&run, &Attempt::Answered { code: 500, retry_after: None }, at(100)).0;
    assert_eq!(callback_condition(&retrying).status, "False");
}

#[test]
fn a_retry_is_due_on_the_first_whole_second_not_before_the_delay() {
    let run = finished_with_callback(None, false);
    let now = at(100).checked_add(Duration::from_millis(500)).expect("a time");
    let attempt = Attempt::Answered { code: 429, retry_after: Some(Duration::from_secs(2)) };
    let (status, next) = after(&run, &attempt, now);
    assert_eq!(next, Next::After(Duration::from_millis(2500)));
    let due = status.callback.and_then(|c| c.next_attempt_time);
    assert_eq!(due, Some(Time(at(103))));
}

#[test]
fn only_a_plain_token_without_a_secret_ref_is_warned_about() {
    let delivered = Attempt::Answered { code: 204, retry_after: None };
    let warned = |token: Option<&str>, secret: bool| {
        let (status, _) = after(&finished_with_callback(token, secret), &delivered, at(100));
        callback_condition(&status).message.unwrap_or_default().contains("callbackTokenSecretRef")
    };
    assert!(warned(Some("s3cret"), false));
    assert!(!warned(None, false), "no token at all");
    assert!(!warned(Some("s3cret"), true), "the Secret's token is the one sent");
    assert!(!warned(None, true));
}

#[test]
fn the_callback_body_gives_the_operators_failure_over_the_jobs_interim_condition() {
    let mut run = finished_with_callback(None, false);
    let mut status = run.status.clone().unwrap_or_default();
    status.conditions = Some(vec![condition("FailureTarget", "True", "BackoffLimitExceeded")]);
    run.status = Some(status);
    let lost = merge::Failure::new(FailureReason::JobLost, "gone");
    run.status = Some(merge::failed(&run, &lost, Time(at(5))));
    assert_eq!(merge::callback_body(&run)["reason"], "JobLost");
}

#[test]
fn the_callback_body_falls_back_to_the_finished_condition() {
    let mut run = finished_with_callback(None, false);
    let mut status = run.status.clone().unwrap_or_default();
    status.conditions = Some(vec![condition("Finished", "True", "Failed")]);
    run.status = Some(status);
    assert_eq!(merge::callback_body(&run)["reason"], "Failed");
}

#[test]
fn attempts_are_counted_in_bounded_classes() {
    let answered = |code| Attempt::Answered { code, retry_after: None }.class();
    let codes = [(200, "2xx"), (299, "2xx"), (302, "3xx"), (399, "3xx"), (404, "4xx"), (499, "4xx"), (503, "5xx")];
    for (code, class) in codes {
        assert_eq!(answered(code), class, "{code}");
    }
    assert_eq!(Attempt::TimedOut.class(), "timeout");
    assert_eq!(Attempt::NetworkError("reset".into()).class(), "network");
    assert_eq!(Attempt::Refused("loopback".into()).class(), "refused");
    assert_eq!(Attempt::TokenUnavailable("gone".into()).class(), "token");
    assert_eq!(Attempt::TokenForbidden("no RBAC".into()).class(), "token");
}

#[test]
fn a_tokens_debug_says_where_it_comes_from_and_never_shows_it() {
    assert_eq!(format!("{:?}", Token::Plain("s3cret".into())), "Plain(<redacted>)");
    assert_eq!(
        format!("{:?}", Token::Secret { name: "s".into(), key: "k".into() }),
        r#"Secret { name: "s", key: "k" }"#
    );
    assert_eq!(format!("{:?}", Token::None), "None");
}

#[test]
fn each_callback_outcome_is_one_event_once_and_only_delivered_is_normal() {
    let run = finished_with_callback(None, false);
    let mut last_chance = run.clone();
    if let Some(status) = last_chance.status.as_mut() {
        status.callback = Some(CallbackStatus { attempts: Some(7), ..CallbackStatus::default() });
    }
    let answered = |code| Attempt::Answered { code, retry_after: None };
    let cases = [
        (&run, answered(204), "CallbackDelivered", false),
        (&run, answered(503), "CallbackRetrying", true),
        (&run, Attempt::TokenUnavailable("gone".into()), "CallbackTokenUnavailable", true),
        (&run, answered(404), "CallbackRejected", true),
        (&run, Attempt::Refused("loopback".into()), "CallbackRefused", true),
        (&run, Attempt::TokenForbidden("no RBAC".into()), "CallbackTokenForbidden", true),
        (&last_chance, answered(503), "CallbackGaveUp", true),
    ];
    for (run, attempt, reason, warning) in cases {
        let previous = run.status.clone().unwrap_or_default();
        let (next, _) = after(run, &attempt, at(100));
        let notes: Vec<_> = merge::notes(&previous, &next).into_iter().map(|n| (n.reason, n.warning)).collect();
        assert_eq!(notes, [(reason.to_owned(), warning)], "{attempt:?}");
        assert!(merge::notes(&next, &next).is_empty(), "{attempt:?} again");
    }
}

#[test]
fn a_pending_callback_is_an_event_only_to_warn_of_a_plain_token() {
    let callback_notes = |token: Option<&str>| {
        let mut run = finished_with_callback(token, false);
        let running =
            JobRunStatus { job_name: Some("echo-run".into()), phase: Some(Phase::Running), ..Default::default() };
        run.status = Some(running.clone());
        let mut job = job_with(vec![owner("cellbytes.io/v1", "JobRun", UID, Some(true))], true, false);
        job.status =
            Some(JobStatus { conditions: Some(vec![condition("Complete", "True", "Done")]), ..Default::default() });
        let Step::Write(next, Next::Change) = decide_live(&run, Some(&job), None, at(100)) else {
            panic!("the run ends")
        };
        let notes = merge::notes(&running, &next);
        notes.into_iter().filter(|n| n.reason.starts_with("Callback")).map(|n| n.reason).collect::<Vec<_>>()
    };
    assert_eq!(callback_notes(Some("s3cret")), ["CallbackTokenInSpec"]);
    assert!(callback_notes(None).is_empty());
}

#[test]
fn a_run_with_a_callback_url_has_no_callback_condition_until_it_ends() {
    let mut run = finished_with_callback(None, false);
    run.status = None;
    let mut job = job_with(vec![owner("cellbytes.io/v1", "JobRun", UID, Some(true))], true, false);
    job.status = Some(JobStatus { start_time: Some(Time(at(1))), active: Some(1), ..Default::default() });
    let Step::Write(status, _) = decide_live(&run, Some(&job), None, at(2)) else { panic!("the run is mirrored") };
    assert_eq!(status.phase, Some(Phase::Running));
    assert_eq!(merge::callback_state_of(&status), None);
}

#[test]
fn each_retry_of_a_callback_is_an_event_of_its_own() {
    let failing = Attempt::Answered { code: 503, retry_after: None };
    let mut run = finished_with_callback(None, false);
    let (first, _) = after(&run, &failing, at(100));
    run.status = Some(first.clone());
    let (second, _) = after(&run, &failing, at(200));
    let notes: Vec<_> = merge::notes(&first, &second).into_iter().map(|n| n.reason).collect();
    assert_eq!(notes, ["CallbackRetrying"], "the same reason with a new message");
}

// The callback SSRF guard (`merge/guard.rs`).

fn ip(address: &str) -> IpAddr {
    address.parse().expect("an address")
}

#[test]
fn an_ipv6_network_holds_its_ipv6_addresses_and_the_allow_list_admits_them() {
    let network: Cidr = "fd00:ec2::/32".parse().expect("a CIDR");
    assert!(network.contains(ip("fd00:ec2::254")));
    assert!(!network.contains(ip("fd00:ec3::254")));
    let guard = Guard { allow: AllowList::parse(&["fd00:ec2::/32"]), ..Guard::default() };
    let target = Target { host: "metadata.internal".into(), port: 80 };
    assert!(guard.check(&target, ip("fd00:ec2::254")).is_ok());
    assert!(guard.check(&target, ip("fd00:ec3::254")).is_err());
}

#[test]
fn ipv6_loopback_is_its_own_not_an_embedded_ipv4_address() {
    assert_eq!(merge::canonical(ip("::1")), ip("::1"));
    assert_eq!(merge::forbidden(ip("::1")), Some("loopback"));
    assert_eq!(merge::canonical(ip("::2")), ip("0.0.0.2"));
}

#[test]
fn reserved_ipv4_addresses_above_240_are_refused() {
    for address in ["240.0.0.1", "250.1.2.3", "255.255.255.254"] {
        assert_eq!(merge::forbidden(ip(address)), Some("multicast or reserved"), "{address}");
    }
}

#[test]
fn deprecated_ipv6_site_local_addresses_are_refused_as_private() {
    for address in ["fec0::1", "feff:ffff::1"] {
        assert_eq!(merge::forbidden(ip(address)), Some("site-local (private)"), "{address}");
    }
}
