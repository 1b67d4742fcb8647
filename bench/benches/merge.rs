//! P6 of `make bench`: the pure functions `render` (template + run → Job),
//! `status` (Job → run status), `decide` (the reconciler's decision
//! table: what it saw → the next step) and `admit` (the template's policy
//! and CEL rules) on every fixture case, and their
//! floors: a clone of the same inputs (the least work that builds the
//! output). Short measurement times, so that all cases take about a minute.

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use job_template_run::merge::{self, Observed, Settings};
use jtr_test_kit::Case;
use k8s_openapi::api::batch::v1::Job;
use std::hint::black_box;

fn cases() -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("the fixtures folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.iter()
        .filter_map(|dir| match Case::load(dir) {
            Ok(case) => Some(case),
            Err(e) => {
                eprintln!("skipping {}: {e}", dir.display());
                None
            }
        })
        .collect()
}

fn merge_functions(c: &mut Criterion) {
    let settings = Settings::default();
    for case in cases() {
        let mut group = c.benchmark_group(&case.name);
        let run = &case.run;
        // The case as the reconciler first meets it, from its caches (not
        // live): the table's first step.
        let now =
            case.situation.now.or_else(|| run.metadata.creation_timestamp.as_ref().map(|t| t.0)).unwrap_or_default();
        let observed = Observed {
            run,
            job: case.existing_job.as_ref(),
            template: case.template.as_ref(),
            live: false,
            refusal: None,
            other_run_exists: case.situation.other_run_exists,
            attempt: None,
            history: None,
            pods: &[],
            failed_creates: &[],
            now,
        };
        group.bench_function("decide", |b| b.iter(|| merge::decide(black_box(&observed), black_box(&settings))));
        // Its floor: a clone of what it reads (the run, its Job, its template).
        group.bench_function("decide-floor", |b| {
            b.iter(|| {
                let seen = black_box(&observed);
                (seen.run.clone(), seen.job.cloned(), seen.template.cloned())
            })
        });
        let Some(template) = &case.template else {
            group.finish();
            continue;
        };
        group.bench_function("admit", |b| b.iter(|| merge::admit(black_box(template), black_box(run))));
        group.bench_function("admit-floor", |b| b.iter(|| (black_box(template).clone(), black_box(run).clone())));
        group.bench_function("render", |b| b.iter(|| merge::render(black_box(template), black_box(run))));
        group.bench_function("render-floor", |b| b.iter(|| black_box(template).clone()));
        let Ok(job) = merge::render(template, run) else {
            group.finish();
            continue;
        };
        let observed = Job { status: case.job_status.clone(), ..job };
        group.bench_function("status", |b| b.iter(|| merge::status(black_box(Some(&observed)), black_box(run))));
        group.bench_function("status-floor", |b| b.iter(|| black_box(&observed.status).clone()));
        group.finish();
    }
}

/// The template's policy with three CEL rules, on a run that passes them:
/// what [`merge::admit`] adds before a Job is made (the target: ≤ 20 µs).
fn policy_with_three_rules(c: &mut Criterion) {
    let case = |name: &str| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(name);
        Case::load(&dir).expect("the fixture loads")
    };
    let passes = case("a-run-that-passes-its-templates-rules-gets-its-job");
    let mut template = passes.template.clone().expect("a template");
    let policy = template.spec.run_policy.get_or_insert_with(Default::default);
    policy.validations.get_or_insert_with(Vec::new).push(job_template_run::crd::Validation {
        rule: "!has(self.parallelism) || self.parallelism <= 10".into(),
        message: "at most 10 pods at once".into(),
    });
    assert_eq!(policy.validations.as_ref().map(Vec::len), Some(3), "three rules");
    let run = &passes.run;
    assert_eq!(merge::admit(&template, run), Ok(()), "the run passes");
    let mut group = c.benchmark_group("policy-with-three-rules");
    group.bench_function("admit", |b| b.iter(|| merge::admit(black_box(&template), black_box(run))));
    group.bench_function("admit-floor", |b| b.iter(|| (black_box(&template).clone(), black_box(run).clone())));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_millis(300))
        .sample_size(20)
        .nresamples(2_000)
        .without_plots();
    targets = merge_functions, policy_with_three_rules
}
criterion_main!(benches);
