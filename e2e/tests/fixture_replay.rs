//! Tier 2 (e2e): every case in `fixtures/`, unchanged, against a real API
//! server without a Job controller. The operator runs in-process, scoped to
//! the case's namespace; the test writes Job status, as envtest tests do.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use e2e::subset::mismatches;
use e2e::suite::{self, Env, Test};
use e2e::{ClusterKind, wait};
use futures::FutureExt;
use job_template_run::crd::{JobRun, JobTemplate};
use job_template_run::fixtures::Case;
use job_template_run::merge;
use job_template_run::reconciler::{self, Scope};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    suite::main(ClusterKind::WithoutJobController, |settings| {
        let cases = cases();
        if cases.is_empty() {
            // Replaying nothing must not look like a pass.
            return vec![Test::new("the_fixtures_folder_has_cases", |_, _| {
                async { Err(format!("no case folders in {}", fixtures_dir().display())) }.boxed()
            })];
        }
        cases
            .into_iter()
            .map(|dir| {
                let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let mut test = Test::new(name, move |env, namespace| replay(env, namespace, dir).boxed());
                // An existing cluster runs a Job controller, which runs the Job and
                // writes its status: only cases that end without a Job replay there.
                if settings.kubeconfig.is_some() && dir_has_expected_job(&test.name) {
                    test.ignore = Some("its Job's status would come from the cluster's Job controller".into());
                }
                test
            })
            .collect()
    })
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn cases() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .map(|entries| entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs
}

fn dir_has_expected_job(name: &str) -> bool {
    fixtures_dir().join(name).join("expected-job.yaml").exists()
}

/// Replays one case: apply its inputs, run the operator, compare.
async fn replay(env: Arc<Env>, namespace: String, dir: PathBuf) -> Result<(), String> {
    let case = Case::load(&dir).map_err(|e| e.to_string())?;
    let client = env.client.clone();
    let run = apply_inputs(&client, &namespace, &case).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let operator = tokio::spawn(reconciler::run_with_client(
        client.clone(),
        Scope::Namespaces(vec![namespace.clone()]),
        ([127, 0, 0, 1], 0).into(),
        async move {
            let _ = stopped.await;
        },
    ));
    let result = check(&client, &namespace, &case, &run).await;
    let _ = stop.send(());
    match operator.await {
        Ok(Err(error)) => Err(format!("the operator failed to start: {error}")),
        _ => result,
    }
}

/// Creates the template, any existing Job and the run, as the case gives
/// them, in `namespace`. A Job that the case says this run controls can
/// only be created once the run has its (new) uid.
async fn apply_inputs(client: &Client, namespace: &str, case: &Case) -> Result<JobRun, String> {
    let post = PostParams::default();
    if let Some(template) = &case.template {
        let template = JobTemplate { metadata: fresh_meta(&template.metadata, namespace), ..template.clone() };
        Api::<JobTemplate>::namespaced(client.clone(), namespace)
            .create(&post, &template)
            .await
            .map_err(|e| format!("create template: {e}"))?;
    }
    let jobs = Api::<Job>::namespaced(client.clone(), namespace);
    let adopted = case.existing_job.as_ref().filter(|job| merge::is_controlled_by(job, &case.run));
    if let Some(other) = case.existing_job.as_ref().filter(|_| adopted.is_none()) {
        let job = Job { metadata: fresh_meta(&other.metadata, namespace), ..other.clone() };
        jobs.create(&post, &job).await.map_err(|e| format!("create existing Job: {e}"))?;
    }
    let run = JobRun { metadata: fresh_meta(&case.run.metadata, namespace), status: None, ..case.run.clone() };
    let run = Api::<JobRun>::namespaced(client.clone(), namespace)
        .create(&post, &run)
        .await
        .map_err(|e| format!("create run: {e}"))?;
    if let Some(job) = adopted {
        let mut job = Job { metadata: fresh_meta(&job.metadata, namespace), ..job.clone() };
        for owner in job.metadata.owner_references.iter_mut().flatten() {
            owner.uid = run.uid().unwrap_or_default();
        }
        jobs.create(&post, &job).await.map_err(|e| format!("create adopted Job: {e}"))?;
    }
    Ok(run)
}

/// The object's metadata as a create request takes it, in `namespace`.
fn fresh_meta(meta: &kube::api::ObjectMeta, namespace: &str) -> kube::api::ObjectMeta {
    kube::api::ObjectMeta {
        namespace: Some(namespace.to_owned()),
        uid: None,
        resource_version: None,
        generation: None,
        creation_timestamp: None,
        ..meta.clone()
    }
}

async fn check(client: &Client, namespace: &str, case: &Case, run: &JobRun) -> Result<(), String> {
    let fixture_uid = case.run.uid().unwrap_or_default();
    let live_uid = run.uid().unwrap_or_default();
    let localize = |text: &str| -> Result<Value, String> {
        let mut value: Value =
            serde_norway::from_str(&text.replace(&fixture_uid, &live_uid)).map_err(|e| e.to_string())?;
        if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("namespace".into(), json!(namespace));
        }
        Ok(value)
    };
    // The fixture clock (the run's creationTimestamp) stands for "now".
    let clock = serde_json::to_value(&case.run.metadata.creation_timestamp).map_err(|e| e.to_string())?;
    let is_clock = |value: &Value| !clock.is_null() && *value == clock;

    let jobs = Api::<Job>::namespaced(client.clone(), namespace);
    let job_name = merge::job_name_for(&case.run);
    if let Some(expected) = &case.expected_job {
        let expected = localize(expected)?;
        let job = wait::until(TIMEOUT, "the run's Job", || async {
            jobs.get_opt(&job_name).await.map_err(|e| e.to_string())?.ok_or_else(|| "no Job yet".to_owned())
        })
        .await?;
        let actual = serde_json::to_value(&job).map_err(|e| e.to_string())?;
        let problems = mismatches(&expected, &actual, &|_| false);
        if !problems.is_empty() {
            return Err(format!("the Job differs from expected-job.yaml:\n  {}", problems.join("\n  ")));
        }
        if let Some(status) = &case.job_status {
            jobs.patch_status(&job_name, &PatchParams::default(), &Patch::Merge(json!({ "status": status })))
                .await
                .map_err(|e| format!("cannot write the Job's status from job-status.yaml: {e}"))?;
        }
    }

    let expected_status: Value = serde_norway::from_str(&case.expected_status).map_err(|e| e.to_string())?;
    let runs = Api::<JobRun>::namespaced(client.clone(), namespace);
    wait::until(TIMEOUT, "the run's status to match expected-status.yaml", || async {
        let live = runs.get(&run.name_any()).await.map_err(|e| e.to_string())?;
        let actual = serde_json::to_value(&live.status).map_err(|e| e.to_string())?;
        let problems = mismatches(&expected_status, &actual, &is_clock);
        if problems.is_empty() { Ok(()) } else { Err(format!("\n  {}", problems.join("\n  "))) }
    })
    .await?;

    if case.expected_job.is_none() {
        let owned =
            jobs.get_opt(&job_name).await.map_err(|e| e.to_string())?.filter(|job| merge::is_controlled_by(job, run));
        if let Some(job) = owned {
            return Err(format!("expected no Job for the run, found {}", job.name_any()));
        }
    }
    Ok(())
}
