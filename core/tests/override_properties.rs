//! Properties of overrides and the template's policy over generated
//! templates, policies and runs: an admitted run's overrides touch only
//! its target container and the Job fields they name, env names stay
//! unique, and a run the policy refuses never yields a Job.

use std::collections::BTreeMap;

use jtr_core::crd::{JobRun, JobRunSpec, JobTemplate, JobTemplateFields, OVERRIDES, RunPolicy, RunResources};
use jtr_core::merge::{self, Observed, Settings, Step};
use k8s_openapi::api::batch::v1::JobSpec;
use k8s_openapi::api::core::v1::{Container, EnvVar, EnvVarSource, PodSpec, PodTemplateSpec, SecretKeySelector};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use proptest::prelude::*;

/// Env names from a small alphabet, so the run's and the template's meet.
fn env_name() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["A", "B", "APP_X", "APP_Y", "LOG", "PATH"]).prop_map(str::to_owned)
}

fn env_var() -> impl Strategy<Value = EnvVar> {
    (env_name(), "[a-z]{0,4}", any::<bool>()).prop_map(|(name, value, from)| EnvVar {
        name,
        value: (!from).then_some(value),
        value_from: from.then(|| EnvVarSource {
            secret_key_ref: Some(SecretKeySelector { name: "s".into(), key: "k".into(), optional: None }),
            ..EnvVarSource::default()
        }),
    })
}

/// A list of env vars with unique names (as the CRD's list-map keeps them).
fn unique_env() -> impl Strategy<Value = Vec<EnvVar>> {
    proptest::collection::vec(env_var(), 0..5).prop_map(|vars| {
        let mut seen = Vec::new();
        vars.into_iter()
            .filter(|v| {
                if seen.contains(&v.name) {
                    false
                } else {
                    seen.push(v.name.clone());
                    true
                }
            })
            .collect()
    })
}

fn quantities() -> impl Strategy<Value = Option<BTreeMap<String, Quantity>>> {
    proptest::option::of(proptest::collection::btree_map(
        prop::sample::select(vec!["cpu", "memory", "nvidia.com/gpu"]).prop_map(str::to_owned),
        prop::sample::select(vec!["1", "250m", "64Mi"]).prop_map(|q| Quantity(q.to_owned())),
        0..3,
    ))
}

fn labels() -> impl Strategy<Value = Option<BTreeMap<String, String>>> {
    proptest::option::of(proptest::collection::btree_map(
        prop::sample::select(vec!["team", "example.com/cost", "cellbytes.io/job-run", "tier"]).prop_map(str::to_owned),
        "[a-z]{1,4}",
        0..3,
    ))
}

prop_compose! {
    fn template()(
        containers in proptest::collection::vec(unique_env(), 1..4),
        init in any::<bool>(),
        overrides in proptest::option::of(proptest::sample::subsequence(OVERRIDES.to_vec(), 0..=OVERRIDES.len())),
        env_names in proptest::option::of(proptest::collection::vec(
            prop::sample::select(vec!["A", "APP_*", "LOG", "B*"]).prop_map(str::to_owned), 0..3)),
    ) -> JobTemplate {
        let containers = containers.into_iter().enumerate().map(|(i, env)| Container {
            name: format!("c{i}"),
            image: Some("busybox".into()),
            env: Some(env),
            ..Container::default()
        }).collect();
        let init_containers = init.then(|| vec![Container { name: "init".into(), image: Some("busybox".into()), ..Container::default() }]);
        let spec = JobSpec {
            backoff_limit: Some(6),
            template: PodTemplateSpec {
                metadata: None,
                spec: Some(PodSpec { containers, init_containers, restart_policy: Some("Never".into()), ..PodSpec::default() }),
            },
            ..JobSpec::default()
        };
        let mut template = JobTemplate::new("t", JobTemplateFields::of(spec));
        template.spec.run_policy = Some(RunPolicy {
            overrides: overrides.map(|o| o.into_iter().map(str::to_owned).collect()),
            env_names,
            ..RunPolicy::default()
        });
        template.metadata.namespace = Some("ns".into());
        template.metadata.generation = Some(1);
        template
    }
}

prop_compose! {
    fn run()(
        container in proptest::option::of(prop::sample::select(vec!["c0", "c1", "c2", "init", "nope"])),
        args in proptest::option::of(proptest::collection::vec("[a-z]{0,3}", 0..3)),
        env in proptest::option::of(unique_env()),
        requests in quantities(), limits in quantities(), resources in any::<bool>(),
        labels in labels(), annotations in labels(),
        numbers in (proptest::option::of(1..100i64), proptest::option::of(0..5i32), proptest::option::of(0..5i32), proptest::option::of(0..5i32)),
    ) -> JobRun {
        let spec = JobRunSpec {
            template_ref: "t".into(),
            container: container.map(str::to_owned),
            args,
            env,
            resources: resources.then_some(RunResources { requests, limits }),
            labels,
            annotations,
            active_deadline_seconds: numbers.0,
            backoff_limit: numbers.1,
            parallelism: numbers.2,
            completions: numbers.3,
            ..JobRunSpec::default()
        };
        let mut run = JobRun::new("r", spec);
        run.metadata.namespace = Some("ns".into());
        run.metadata.uid = Some("2f4c5a1e-0000-4000-8000-000000000002".into());
        run.metadata.generation = Some(1);
        run.metadata.creation_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        run
    }
}

/// `template` and `run` made admissible: the policy allows what the run
/// sets, the run names a container the template has (or none), and no
/// reserved key.
fn admissible(mut template: JobTemplate, mut run: JobRun) -> (JobTemplate, JobRun) {
    let policy = template.spec.run_policy.get_or_insert_with(RunPolicy::default);
    let mut overrides = policy.overrides.clone().unwrap_or_default();
    overrides.extend(merge::overrides_set(&run.spec).into_iter().map(str::to_owned));
    policy.overrides = Some(overrides);
    policy.env_names = None;
    let containers: Vec<String> =
        template.spec.spec.0.template.spec.iter().flat_map(|p| &p.containers).map(|c| c.name.clone()).collect();
    run.spec.container = run.spec.container.filter(|name| containers.contains(name));
    for map in [&mut run.spec.labels, &mut run.spec.annotations].into_iter().flatten() {
        map.retain(|key, _| !key.starts_with("cellbytes.io/"));
    }
    (template, run)
}

fn target_index(template: &JobTemplate, run: &JobRun) -> usize {
    let containers = &template.spec.spec.0.template.spec.as_ref().expect("a pod").containers;
    run.spec.container.as_ref().and_then(|name| containers.iter().position(|c| &c.name == name)).unwrap_or(0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn an_admitted_runs_overrides_touch_only_its_target_container_and_the_job_fields_they_name(
        template in template(), run in run(),
    ) {
        let (template, run) = admissible(template, run);
        prop_assert_eq!(merge::admit(&template, &run), Ok(()));
        let job = merge::render(&template, &run).expect("an admitted run renders");
        let before = &template.spec.spec.0;
        let after = job.spec.as_ref().expect("a spec");
        let target = target_index(&template, &run);
        let (was, now) = (before.template.spec.as_ref().expect("a pod"), after.template.spec.as_ref().expect("a pod"));
        prop_assert_eq!(was.containers.len(), now.containers.len());
        for (i, (a, b)) in was.containers.iter().zip(&now.containers).enumerate() {
            if i != target {
                prop_assert_eq!(a, b, "container {} is not the target but changed", i);
            }
        }
        prop_assert_eq!(&was.init_containers, &now.init_containers, "init containers are never targets");
        let (a, b) = (&was.containers[target], &now.containers[target]);
        prop_assert_eq!(&a.image, &b.image);
        prop_assert_eq!(&a.name, &b.name);
        // Every env var of the run is in the target, as the run has it.
        for var in run.spec.env.iter().flatten() {
            prop_assert!(b.env.iter().flatten().any(|e| e == var), "{} missing", var.name);
        }
        // Every template var the run does not name stays, in its place relative to the others.
        let kept: Vec<&EnvVar> = a.env.iter().flatten().filter(|e| !run.spec.env.iter().flatten().any(|r| r.name == e.name)).collect();
        let kept_after: Vec<&EnvVar> = b.env.iter().flatten().filter(|e| kept.iter().any(|k| k.name == e.name)).collect();
        prop_assert_eq!(kept, kept_after);
        // The Job's numbers: the run's where set, else the template's; nothing else of the Job spec moves.
        prop_assert_eq!(after.backoff_limit, run.spec.backoff_limit.or(before.backoff_limit));
        prop_assert_eq!(after.parallelism, run.spec.parallelism.or(before.parallelism));
        prop_assert_eq!(after.completions, run.spec.completions.or(before.completions));
        prop_assert_eq!(after.active_deadline_seconds, run.spec.active_deadline_seconds.or(before.active_deadline_seconds));
        let rest = |s: &JobSpec| JobSpec { backoff_limit: None, parallelism: None, completions: None, active_deadline_seconds: None, template: PodTemplateSpec::default(), ..s.clone() };
        prop_assert_eq!(rest(before), rest(after));
        // The operator's labels win over the run's.
        let pod_labels = after.template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
        prop_assert_eq!(pod_labels.get(merge::LABEL_RUN).map(String::as_str), Some("r"));
    }

    #[test]
    fn env_names_stay_unique_in_every_rendered_container(template in template(), run in run()) {
        let (template, run) = admissible(template, run);
        prop_assert_eq!(merge::admit(&template, &run), Ok(()));
        let job = merge::render(&template, &run).expect("an admitted run renders");
        for container in &job.spec.and_then(|s| s.template.spec).expect("a pod").containers {
            let names: Vec<&str> = container.env.iter().flatten().map(|e| e.name.as_str()).collect();
            let mut unique = names.clone();
            unique.sort_unstable();
            unique.dedup();
            prop_assert_eq!(names.len(), unique.len(), "{:?} in {}", names, container.name);
        }
    }

    #[test]
    fn a_run_its_template_refuses_never_yields_a_job(template in template(), run in run()) {
        let refused = merge::admit(&template, &run);
        let allowed = merge::allowed_overrides(&template);
        let outside = merge::overrides_set(&run.spec).into_iter().any(|o| !allowed.contains(&o));
        prop_assert!(!outside || refused.is_err(), "a run with an override outside {:?} was admitted", allowed);
        let seen = Observed {
            run: &run, job: None, template: Some(&template), live: true, refusal: None, other_run_exists: false,
            attempt: None, history: None, pods: &[], failed_creates: &[], now: Timestamp::UNIX_EPOCH,
        };
        match (refused, merge::decide(&seen, &Settings::default())) {
            (Err(failure), step) => {
                let Step::Write(status, _) = step else { return Err(TestCaseError::fail(format!("refused ({failure:?}), yet {step:?}"))) };
                prop_assert_eq!(status.error, Some(format!("{}: {}", failure.reason, failure.message)));
            }
            (Ok(()), step) => prop_assert!(matches!(step, Step::Create(_)), "admitted, yet {:?}", step),
        }
    }
}
