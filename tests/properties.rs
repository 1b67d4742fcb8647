//! Properties of the pure core over generated templates, runs and Job
//! states: no panic, Job names the API server and the Job controller
//! accept, overrides that touch only the first container, and a decision
//! table that never acts on a finished run.

use job_template_run::crd::{JobRun, JobRunSpec, JobRunStatus, JobTemplate, JobTemplateSpec, Phase};
use job_template_run::merge::{self, Next, Observed, Settings, Step};
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobSpec, JobStatus};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use proptest::prelude::*;

/// DNS-1123 subdomains of 1 to 120 characters: object names as the API
/// server admits them.
fn object_name() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?){0,2}")
        .expect("a valid regex")
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
        let mut template = JobTemplate::new(&name, JobTemplateSpec(spec));
        template.metadata.namespace = Some("ns".into());
        template.metadata.generation = generation;
        template
    }
}

prop_compose! {
    fn run()(name in object_name(), command in strings(), args in strings(), template in object_name()) -> JobRun {
        let mut run = JobRun::new(&name, JobRunSpec { template_ref: template, command, args, ..JobRunSpec::default() });
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

fn is_dns_subdomain(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.chars().all(|c| alnum(c) || c == '-' || c == '.')
        && name.starts_with(alnum)
        && name.ends_with(alnum)
}

proptest! {
    #[test]
    fn render_never_panics_and_names_the_job_so_the_api_and_the_job_controller_accept_it(
        template in template(), run in run(),
    ) {
        if let Ok(job) = merge::render(&template, &run) {
            let name = job.metadata.name.clone().unwrap_or_default();
            prop_assert!(name.len() <= 63, "{name} is longer than a label value");
            prop_assert!(is_dns_subdomain(&name), "{name} is not a DNS-1123 subdomain");
            prop_assert_eq!(job.metadata.finalizers.clone(), Some(vec![merge::FINALIZER.to_owned()]));
            if template.spec.0.completion_mode.as_deref() == Some("Indexed") {
                let largest = template.spec.0.completions.unwrap_or(1) - 1;
                prop_assert!(!name.contains('.') && name.len() + 1 + largest.to_string().len() <= 63);
            }
        }
    }

    #[test]
    fn overrides_touch_only_the_first_container(template in template(), run in run()) {
        if let Ok(job) = merge::render(&template, &run) {
            let before = template.spec.0.template.spec.clone().unwrap_or_default();
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

    #[test]
    fn a_finished_run_is_never_written_nor_given_a_job(
        run in run(), template in template(), succeeded in any::<bool>(), seed in any::<u64>(),
        status in proptest::option::of(job_status()), owner in 0..3u8, deleting in any::<bool>(), held in any::<bool>(),
    ) {
        let mut run = run;
        let phase = if succeeded { Phase::Succeeded } else { Phase::Failed };
        run.status = Some(JobRunStatus { phase: Some(phase), job_name: Some(merge::job_name_for(&run)), ..JobRunStatus::default() });
        let job = status.map(|status| job_at(&run, owner, deleting, held, status));
        let seen = Observed {
            run: &run, job: job.as_ref(), template: Some(&template), live: seed % 3 == 0,
            refusal: None, other_run_exists: seed % 5 == 0, attempt: None, now: Timestamp::UNIX_EPOCH,
        };
        let step = merge::decide(&seen, &Settings::default());
        prop_assert!(matches!(step, Step::Done | Step::Release), "a finished run got {step:?}");
    }

    #[test]
    fn every_decision_is_a_step_the_reconciler_can_take_and_never_panics(
        run in run(), template in proptest::option::of(template()), status in proptest::option::of(job_status()),
        live in any::<bool>(), other in any::<bool>(), late in 0..30u64, owner in 0..3u8, deleting in any::<bool>(), held in any::<bool>(),
    ) {
        let job = status.map(|status| job_at(&run, owner, deleting, held, status));
        let now = Timestamp::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(late)).expect("a time");
        let seen = Observed { run: &run, job: job.as_ref(), template: template.as_ref(), live, refusal: None, other_run_exists: other, attempt: None, now };
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
            Step::Deliver(_) => prop_assert!(merge::is_finished(&run), "an unfinished run delivers its callback"),
            Step::Done | Step::ReadLive | Step::Wait(_) => {}
        }
    }
}
