//! Tier 2 (e2e): whole run lifecycles on a full cluster (real Job
//! controller, garbage collector, TTL controller and scheduler; pods
//! simulated by kwok on the default image), with the real operator binary.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use e2e::drill::Ledger;
use e2e::objects::{KEEP_RUNNING_LABEL, failing_template, run, template};
use e2e::operator::{OperatorProcess, http_get};
use e2e::suite::{self, Env, Test};
use e2e::{ClusterKind, tools, wait};
use futures::FutureExt;
use job_template_run::crd::{JobRun, JobRunStatus, JobTemplate, Phase, RunPolicy, Validation};
use job_template_run::merge::LABEL_RUN;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(90);

fn main() -> ExitCode {
    suite::main(ClusterKind::Full, |_| {
        vec![
            Test::new("a_run_whose_pod_succeeds_ends_complete_and_finished_with_one_success", |e, ns| {
                succeeds(e, ns).boxed()
            }),
            Test::new("a_run_whose_pod_fails_passes_through_failure_target_and_ends_failed", |e, ns| {
                fails(e, ns).boxed()
            }),
            Test::new("deleting_a_jobrun_deletes_its_job", |e, ns| garbage_collected(e, ns).boxed()),
            Test::new("a_job_removed_by_its_ttl_is_not_recreated_and_the_run_keeps_its_status", |e, ns| {
                ttl(e, ns).boxed()
            }),
            Test::new("kubectl_wait_for_finished_returns_on_success_and_on_failure", |e, ns| {
                kubectl_wait(e, ns).boxed()
            }),
            Test::new("a_missing_template_fails_the_run_with_one_failure_and_no_job", |e, ns| missing(e, ns).boxed()),
            Test::new("deleting_the_job_of_an_unfinished_run_records_job_lost", |e, ns| lost(e, ns).boxed()),
            Test::new(
                "sigterm_mid_burst_exits_zero_and_a_new_operator_finishes_every_run_with_exactly_one_job",
                |e, ns| sigterm(e, ns).boxed(),
            ),
            Test::new("an_operator_that_cannot_reach_the_api_server_is_unready_and_then_unhealthy", |e, ns| {
                unreachable(e, ns).boxed()
            }),
            Test::new(
                "the_python_client_example_creates_runs_with_args_and_with_env_and_resources_and_reads_a_refusals_reason",
                |e, ns| python(e, ns).boxed(),
            ),
            Test::new(
                "a_templates_valid_condition_follows_its_rules_and_a_run_of_an_invalid_template_fails_with_its_cause",
                |e, ns| template_valid(e, ns).boxed(),
            ),
            Test::new("the_run_records_events_and_the_operator_counts_them_in_metrics", |e, ns| {
                observed(e, ns).boxed()
            }),
            Test::new(
                "a_cancelled_run_stops_its_running_pod_within_its_grace_period_keeps_the_job_and_ends_cancelled_and_a_second_cancel_is_ignored",
                |e, ns| cancelled(e, ns).boxed(),
            ),
            Test::new(
                "a_pod_that_cannot_be_scheduled_stalls_the_run_within_five_seconds_with_the_schedulers_message",
                |e, ns| unschedulable(e, ns).boxed(),
            ),
            Test::new(
                "a_quota_of_no_pods_stalls_the_run_with_failed_create_and_once_removed_the_run_runs_and_succeeds",
                |e, ns| quota(e, ns).boxed(),
            ),
            Test::new(
                "an_image_that_cannot_be_pulled_stalls_the_run_with_err_image_pull_then_image_pull_back_off_until_its_deadline_fails_it",
                |e, ns| image_pull(e, ns).boxed(),
            ),
            Test::new("a_history_limit_of_three_keeps_exactly_the_three_newest_runs_per_outcome", |e, ns| {
                history(e, ns).boxed()
            }),
            Test::new(
                "a_queued_job_carries_its_templates_queue_label_and_the_run_follows_its_suspend_and_resume",
                |e, ns| queued(e, ns).boxed(),
            ),
            Test::new("a_pods_log_is_served_through_the_api_server_from_kwoks_cluster_logs", |e, ns| {
                pod_logs(e, ns).boxed()
            }),
        ]
    })
}

/// A test's namespace and its own operator, scoped to it: metrics and
/// restarts concern this test alone.
struct Ns {
    client: Client,
    name: String,
    operator: OperatorProcess,
}

impl Ns {
    fn new(env: &Env, name: String) -> Result<Self, String> {
        let operator = tokio::task::block_in_place(|| {
            OperatorProcess::start(&env.cluster.kubeconfig_path, &["--namespace", &name])
        })?;
        Ok(Self { client: env.client.clone(), name, operator })
    }

    /// A metric of this test's operator; 0 when not exposed yet.
    fn metric(&self, series: &str) -> Result<f64, String> {
        self.operator.metric(series)
    }

    /// Touches the run and waits until the operator has reconciled it since:
    /// a positive sign that it processed every earlier event of the run.
    async fn settled(&self, run: &str) -> Result<(), String> {
        let before = self.metric("job_template_run_reconciles_total")?;
        let touch = json!({ "metadata": { "annotations": { "e2e.cellbytes.io/touched": before.to_string() } } });
        self.runs().patch(run, &PatchParams::default(), &Patch::Merge(&touch)).await.map_err(|e| e.to_string())?;
        wait::until(TIMEOUT, "the operator to reconcile the touched run", || async {
            let now = self.metric("job_template_run_reconciles_total")?;
            if now > before { Ok(()) } else { Err(format!("reconciles {now}")) }
        })
        .await
    }

    fn runs(&self) -> Api<JobRun> {
        Api::namespaced(self.client.clone(), &self.name)
    }

    fn jobs(&self) -> Api<Job> {
        Api::namespaced(self.client.clone(), &self.name)
    }

    async fn create_template(&self, template: JobTemplate) -> Result<(), String> {
        let api: Api<JobTemplate> = Api::namespaced(self.client.clone(), &self.name);
        api.create(&PostParams::default(), &template).await.map(|_| ()).map_err(|e| format!("create template: {e}"))
    }

    async fn create_run(&self, run: JobRun) -> Result<(), String> {
        self.runs().create(&PostParams::default(), &run).await.map(|_| ()).map_err(|e| format!("create run: {e}"))
    }

    /// Waits until the run's phase is `phase`, and returns its status.
    async fn wait_phase(&self, name: &str, phase: Phase) -> Result<JobRunStatus, String> {
        wait::until(TIMEOUT, &format!("run {name} to be {phase:?}"), || async {
            let status = self.runs().get(name).await.map_err(|e| e.to_string())?.status.unwrap_or_default();
            if status.phase == Some(phase) { Ok(status) } else { Err(format!("status is {status:?}")) }
        })
        .await
    }

    async fn wait_job_gone(&self, name: &str) -> Result<(), String> {
        wait::until(TIMEOUT, &format!("Job {name} to be deleted"), || async {
            match self.jobs().get_opt(name).await.map_err(|e| e.to_string())? {
                None => Ok(()),
                Some(_) => Err("still there".into()),
            }
        })
        .await
    }
}

fn condition<'a>(status: &'a JobRunStatus, type_: &str) -> Option<&'a k8s_openapi::api::batch::v1::JobCondition> {
    status.conditions.iter().flatten().find(|c| c.type_ == type_ && c.status == "True")
}

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

async fn succeeds(env: Arc<Env>, name: String) -> Result<(), String> {
    let ns = Ns::new(&env, name)?;
    ns.create_template(template(&ns.name, "echo", json!({}))?).await?;
    ns.create_run(run(&ns.name, "hello", "echo", &["hello"])?).await?;
    let status = ns.wait_phase("hello", Phase::Succeeded).await?;
    ensure(status.succeeded == Some(1), || format!("succeeded is {:?}", status.succeeded))?;
    ensure(condition(&status, "Complete").is_some(), || "no Complete=True".into())?;
    ensure(condition(&status, "Finished").is_some(), || "no Finished=True".into())?;
    ensure(status.job_name.as_deref() == Some("hello"), || format!("jobName is {:?}", status.job_name))
}

async fn fails(env: Arc<Env>, name: String) -> Result<(), String> {
    let ns = Ns::new(&env, name)?;
    ns.create_template(failing_template(&ns.name, "broken")?).await?;
    ns.create_run(run(&ns.name, "doomed", "broken", &["exit 1"])?).await?;
    let status = ns.wait_phase("doomed", Phase::Failed).await?;
    let types: Vec<&str> = status.conditions.iter().flatten().map(|c| c.type_.as_str()).collect();
    let position = |t: &str| types.iter().position(|x| *x == t);
    ensure(matches!((position("FailureTarget"), position("Failed")), (Some(a), Some(b)) if a < b), || {
        format!("expected FailureTarget before Failed, conditions are {types:?}")
    })?;
    let finished = condition(&status, "Finished").ok_or("no Finished=True")?;
    ensure(finished.reason.as_deref() == Some("Failed"), || format!("Finished reason is {:?}", finished.reason))?;
    ensure(status.failed == Some(1), || format!("failed is {:?}", status.failed))
}

async fn garbage_collected(env: Arc<Env>, name: String) -> Result<(), String> {
    let ns = Ns::new(&env, name)?;
    ns.create_template(template(&ns.name, "echo", json!({ "suspend": true }))?).await?;
    ns.create_run(run(&ns.name, "short-lived", "echo", &[])?).await?;
    wait::until(TIMEOUT, "the Job", || async {
        ns.jobs().get_opt("short-lived").await.map_err(|e| e.to_string())?.ok_or_else(|| "no Job yet".to_owned())
    })
    .await?;
    ns.runs().delete("short-lived", &DeleteParams::background()).await.map_err(|e| e.to_string())?;
    ns.wait_job_gone("short-lived").await
}

async fn ttl(env: Arc<Env>, name: String) -> Result<(), String> {
    let ns = Ns::new(&env, name)?;
    ns.create_template(template(&ns.name, "echo", json!({ "ttlSecondsAfterFinished": 0 }))?).await?;
    ns.create_run(run(&ns.name, "ephemeral", "echo", &[])?).await?;
    let finished = ns.wait_phase("ephemeral", Phase::Succeeded).await?;
    ns.wait_job_gone("ephemeral").await?;
    ns.settled("ephemeral").await?;
    ensure(ns.jobs().get_opt("ephemeral").await.map_err(|e| e.to_string())?.is_none(), || {
        "the Job was re-created".into()
    })?;
    let status = ns.runs().get("ephemeral").await.map_err(|e| e.to_string())?.status.unwrap_or_default();
    ensure(status == finished, || format!("status changed after the Job was removed: {status:?}"))
}

async fn kubectl_wait(env: Arc<Env>, name: String) -> Result<(), String> {
    let ns = Ns::new(&env, name)?;
    ns.create_template(template(&ns.name, "echo", json!({}))?).await?;
    ns.create_template(failing_template(&ns.name, "broken")?).await?;
    ns.create_run(run(&ns.name, "good", "echo", &[])?).await?;
    ns.create_run(run(&ns.name, "bad", "broken", &[])?).await?;
    for run in ["good", "bad"] {
        let output = tokio::process::Command::new(tools::kubectl())
            .args(["wait", "--for=condition=Finished", &format!("jobrun/{run}"), "-n", &ns.name, "--timeout=90s"])
            .env("KUBECONFIG", &env.cluster.kubeconfig_path)
            .output()
            .await
            .map_err(|e| format!("cannot run kubectl: {e}"))?;
        ensure(output.status.success(), || {
            format!("kubectl wait for {run} failed: {}", String::from_utf8_lossy(&output.stderr))
        })?;
    }
    Ok(())
}

async fn python(env: Arc<Env>, name: String) -> Result<(), String> {
    let ns = Ns::new(&env, name)?;
    let python = tools::python();
    ensure(python.exists(), || {
        format!("{} is missing: run `bash scripts/install-python-client.sh`", python.display())
    })?;
    let mut open = template(&ns.name, "echo", json!({}))?;
    open.spec.run_policy = Some(RunPolicy {
        overrides: Some(["args", "env", "resources"].map(str::to_owned).to_vec()),
        ..RunPolicy::default()
    });
    ns.create_template(open).await?;
    ns.create_template(template(&ns.name, "strict", json!({}))?).await?;
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/python/create_jobrun.py");
    let example_run = |args: &'static [&'static str]| {
        let (python, example, ns, kubeconfig) =
            (python.clone(), example.clone(), ns.name.clone(), env.cluster.kubeconfig_path.clone());
        async move {
            let output = tokio::process::Command::new(&python)
                .arg(&example)
                .args(["--namespace", &ns])
                .args(args)
                .env("KUBECONFIG", &kubeconfig)
                .output()
                .await
                .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
            let text =
                format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
            Ok::<_, String>((output.status.code(), text))
        }
    };
    let (code, text) = example_run(&["--template", "echo", "--name", "from-python", "--arg", "hello"]).await?;
    ensure(code == Some(0) && text.contains("from-python: Succeeded"), || format!("args ({code:?}): {text}"))?;
    let (code, text) =
        example_run(&["--template", "echo", "--name", "with-env", "--env", "GREETING=hi", "--request", "cpu=250m"])
            .await?;
    ensure(code == Some(0) && text.contains("with-env: Succeeded"), || format!("env ({code:?}): {text}"))?;
    let job = ns.jobs().get("with-env").await.map_err(|e| e.to_string())?;
    let container = job.spec.and_then(|s| s.template.spec).map(|p| p.containers[0].clone()).ok_or("no pod spec")?;
    let env_ok = container.env.iter().flatten().any(|e| e.name == "GREETING" && e.value.as_deref() == Some("hi"));
    let cpu = container.resources.and_then(|r| r.requests).and_then(|r| r.get("cpu").cloned());
    ensure(env_ok && cpu.as_ref().map(|q| q.0.as_str()) == Some("250m"), || {
        format!("the Job's container: env {env_ok}, cpu {cpu:?}")
    })?;
    // The default policy (command and args) refuses env: exit 1, and the reason printed.
    let (code, text) = example_run(&["--template", "strict", "--name", "refused", "--env", "GREETING=hi"]).await?;
    ensure(
        code == Some(1)
            && text.contains("refused: Failed")
            && text.contains("OverrideNotAllowed: JobTemplate strict does not allow spec.env"),
        || format!("refused ({code:?}): {text}"),
    )?;
    ensure(ns.jobs().get_opt("refused").await.map_err(|e| e.to_string())?.is_none(), || {
        "a refused run got a Job".to_owned()
    })
}

/// Waits (a watch, no polling) until `name`'s `Valid` condition has
/// `status` and `reason` and the status is of the template's current
/// generation; returns its message and the time since `since`.
async fn valid_condition(
    templates: &Api<JobTemplate>,
    name: &str,
    (status, reason): (&str, &str),
    since: std::time::Instant,
) -> Result<(String, Duration), String> {
    use kube::runtime::wait::await_condition;
    let valid = |template: &JobTemplate| {
        let seen = template.status.as_ref()?;
        let valid = seen.conditions.iter().flatten().find(|c| c.type_ == "Valid")?;
        (valid.status == status && valid.reason == reason && seen.observed_generation == template.metadata.generation)
            .then(|| valid.message.clone())
    };
    let done = |template: Option<&JobTemplate>| template.and_then(valid).is_some();
    let found = tokio::time::timeout(TIMEOUT, await_condition(templates.clone(), name, done)).await;
    let template = match found {
        Ok(found) => found.map_err(|e| e.to_string())?,
        Err(_) => {
            let last = templates.get(name).await.map_err(|e| e.to_string())?;
            return Err(format!(
                "template {name} never had Valid={status}/{reason} for generation {:?}: status {:?}",
                last.metadata.generation, last.status
            ));
        }
    };
    let message = template.as_ref().and_then(valid).ok_or("the condition was seen, then not")?;
    Ok((message, since.elapsed()))
}

async fn template_valid(env: Arc<Env>, name: String) -> Result<(), String> {
    let ns = Ns::new(&env, name)?;
    let templates: Api<JobTemplate> = Api::namespaced(ns.client.clone(), &ns.name);
    let created = std::time::Instant::now();
    ns.create_template(template(&ns.name, "good", json!({}))?).await?;
    let (_, good_after) = valid_condition(&templates, "good", ("True", "Valid"), created).await?;
    let mut bad = template(&ns.name, "bad", json!({}))?;
    bad.spec.run_policy = Some(RunPolicy {
        validations: Some(vec![Validation { rule: "self.args.size( ==".into(), message: "x".into() }]),
        ..RunPolicy::default()
    });
    let created = std::time::Instant::now();
    ns.create_template(bad).await?;
    let (message, bad_after) = valid_condition(&templates, "bad", ("False", "RuleDoesNotCompile"), created).await?;
    ensure(message.contains("runPolicy.validations[0].rule does not compile"), || message.clone())?;
    // A run of it fails with the same cause, and gets no Job.
    ns.create_run(run(&ns.name, "of-bad", "bad", &["x"])?).await?;
    let status = ns.wait_phase("of-bad", Phase::Failed).await?;
    let failed = condition(&status, "Failed").ok_or("no Failed=True")?;
    ensure(
        failed.reason.as_deref() == Some("InvalidTemplate")
            && failed.message.as_deref().is_some_and(|m| m.contains(&message)),
        || format!("{:?}: {:?}", failed.reason, failed.message),
    )?;
    // Mended, it is valid again, for its new generation.
    let generation = templates.get("bad").await.map_err(|e| e.to_string())?.metadata.generation;
    let mended = json!({ "runPolicy": { "validations": [{ "rule": "true", "message": "m" }] } });
    let patched_at = std::time::Instant::now();
    let patched =
        templates.patch("bad", &PatchParams::default(), &Patch::Merge(&mended)).await.map_err(|e| e.to_string())?;
    ensure(patched.metadata.generation > generation, || format!("generation {generation:?} did not move"))?;
    let (_, mended_after) = valid_condition(&templates, "bad", ("True", "Valid"), patched_at).await?;
    println!(
        "template_valid: Valid=True {:.0} ms after the create, Valid=False {:.0} ms after the create, \
         Valid=True {:.0} ms after the mend (generation {:?})",
        good_after.as_secs_f64() * 1e3,
        bad_after.as_secs_f64() * 1e3,
        mended_after.as_secs_f64() * 1e3,
        patched.metadata.generation,
    );
    Ok(())
}

async fn missing(env: Arc<Env>, name: String) -> Result<(), String> {
    let ns = Ns::new(&env, name)?;
    ns.create_run(run(&ns.name, "orphan", "does-not-exist", &[])?).await?;
    let status = ns.wait_phase("orphan", Phase::Failed).await?;
    let failed = condition(&status, "Failed").ok_or("no Failed=True")?;
    ensure(failed.reason.as_deref() == Some("TemplateNotFound"), || format!("reason is {:?}", failed.reason))?;
    ensure(status.failed == Some(1), || format!("failed is {:?}", status.failed))?;
    let jobs = ns.jobs().list(&ListParams::default()).await.map_err(|e| e.to_string())?;
    ensure(jobs.items.is_empty(), || format!("{} Jobs exist", jobs.items.len()))
}

async fn lost(env: Arc<Env>, name: String) -> Result<(), String> {
    let ns = Ns::new(&env, name)?;
    ns.create_template(template(&ns.name, "echo", json!({ "suspend": true }))?).await?;
    ns.create_run(run(&ns.name, "unlucky", "echo", &[])?).await?;
    wait::until(TIMEOUT, "the run to record its Job", || async {
        let status = ns.runs().get("unlucky").await.map_err(|e| e.to_string())?.status.unwrap_or_default();
        status.job_name.ok_or_else(|| "no jobName yet".to_owned())
    })
    .await?;
    ns.jobs().delete("unlucky", &DeleteParams::background()).await.map_err(|e| e.to_string())?;
    let status = ns.wait_phase("unlucky", Phase::Failed).await?;
    let failed = condition(&status, "Failed").ok_or("no Failed=True")?;
    ensure(failed.reason.as_deref() == Some("JobLost"), || format!("reason is {:?}", failed.reason))?;
    ns.wait_job_gone("unlucky").await?;
    ns.settled("unlucky").await?;
    ensure(ns.jobs().get_opt("unlucky").await.map_err(|e| e.to_string())?.is_none(), || "the Job was re-created".into())
}

async fn observed(env: Arc<Env>, name: String) -> Result<(), String> {
    let ns = Ns::new(&env, name)?;
    ns.create_template(template(&ns.name, "echo", json!({}))?).await?;
    ns.create_run(run(&ns.name, "noted", "echo", &[])?).await?;
    ns.wait_phase("noted", Phase::Succeeded).await?;
    let events: Api<Event> = Api::namespaced(ns.client.clone(), &ns.name);
    wait::until(TIMEOUT, "JobCreated and Finished events", || async {
        let list = events.list(&ListParams::default()).await.map_err(|e| e.to_string())?;
        let reasons: Vec<String> = list
            .items
            .iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("noted"))
            .filter_map(|e| e.reason.clone())
            .collect();
        let has = |r: &str| reasons.iter().any(|x| x == r);
        if has("JobCreated") && has("Finished") { Ok(()) } else { Err(format!("events: {reasons:?}")) }
    })
    .await?;
    // This test's own operator saw exactly this run.
    let created = ns.metric("job_template_run_jobs_created_total")?;
    ensure(created == 1.0, || format!("jobs_created_total is {created}"))?;
    let finished = ns.metric("job_template_run_runs_finished_total{phase=\"Succeeded\"}")?;
    ensure(finished == 1.0, || format!("runs_finished_total{{Succeeded}} is {finished}"))?;
    let timed = ns.metric("job_template_run_reconcile_duration_seconds_count")?;
    let reconciles = ns.metric("job_template_run_reconciles_total")?;
    ensure(reconciles >= 2.0 && timed == reconciles, || format!("reconciles {reconciles}, timed {timed}"))
}

async fn sigterm(env: Arc<Env>, name: String) -> Result<(), String> {
    let ns = Ns::new(&env, name)?;
    // Every Job uid ever seen, per run: a Job deleted and made again under
    // the run's name (the same name, a new uid) counts twice.
    let ledger = Ledger::start(&ns.client, &ns.name);
    ns.create_template(template(&ns.name, "echo", json!({}))?).await?;
    let names: Vec<String> = (0..40).map(|i| format!("burst-{i}")).collect();
    for name in &names {
        ns.create_run(run(&ns.name, name, "echo", &[])?).await?;
    }
    // SIGTERM while the burst is being reconciled.
    wait::until(TIMEOUT, "the first Jobs", || async {
        let jobs = ns.jobs().list(&ListParams::default()).await.map_err(|e| e.to_string())?;
        if jobs.items.len() >= 5 { Ok(()) } else { Err(format!("{} Jobs", jobs.items.len())) }
    })
    .await?;
    let Ns { client, name, operator } = ns;
    let started = std::time::Instant::now();
    let status = tokio::task::block_in_place(|| operator.terminate(Duration::from_secs(20)))?;
    ensure(status.success(), || format!("exit status after SIGTERM: {status}"))?;
    eprintln!("operator exited {:.2}s after SIGTERM, mid-burst", started.elapsed().as_secs_f64());
    // A new operator finishes the work: one Job per run, every run Succeeded.
    let ns =
        Ns { operator: OperatorProcess::start(&env.cluster.kubeconfig_path, &["--namespace", &name])?, client, name };
    for run in &names {
        let status = ns.wait_phase(run, Phase::Succeeded).await?;
        ensure(status.succeeded == Some(1), || format!("{run}: succeeded {:?}", status.succeeded))?;
    }
    // The watch is behind the API server: wait until it has seen the Job
    // each run has now, then no run may have had any other.
    let jobs = ns.jobs().list(&ListParams::default()).await.map_err(|e| e.to_string())?;
    let live: BTreeMap<String, String> = jobs
        .items
        .iter()
        .map(|job| (job.labels().get(LABEL_RUN).cloned().unwrap_or_default(), job.uid().unwrap_or_default()))
        .collect();
    let expected: BTreeSet<&String> = names.iter().collect();
    ensure(jobs.items.len() == names.len() && live.keys().collect::<BTreeSet<_>>() == expected, || {
        format!("{} Jobs for {} runs, for the runs {:?}", jobs.items.len(), names.len(), live.keys())
    })?;
    let seen = wait::until(TIMEOUT, "the watch to see every run's Job", || async {
        let seen = ledger.job_uids();
        let missing: Vec<&String> = live
            .iter()
            .filter(|(run, uid)| !seen.get(*run).is_some_and(|u| u.contains(*uid)))
            .map(|(r, _)| r)
            .collect();
        if missing.is_empty() { Ok(seen) } else { Err(format!("not seen yet: the Jobs of {missing:?}")) }
    })
    .await?;
    let duplicates = ledger.duplicates();
    ensure(duplicates.is_empty(), || format!("runs with more than one Job uid: {duplicates:?}"))?;
    ensure(seen.len() == names.len(), || {
        format!("Jobs were seen for {} runs, not {}: {:?}", seen.len(), names.len(), seen.keys())
    })?;
    let regressions = ledger.regressions();
    ensure(regressions.is_empty(), || format!("runs whose final phase was undone: {regressions:?}"))?;
    eprintln!("lifecycle: sigterm: {} Job uids seen for {} runs", ledger.jobs_seen(), names.len());
    Ok(())
}

async fn unreachable(env: Arc<Env>, namespace: String) -> Result<(), String> {
    // The same kubeconfig, pointed at a loopback port where nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(&env.cluster.kubeconfig_path).map_err(|e| e.to_string())?;
    let mut config: serde_json::Value = serde_norway::from_str(&text).map_err(|e| e.to_string())?;
    for cluster in config["clusters"].as_array_mut().into_iter().flatten() {
        cluster["cluster"]["server"] = json!(format!("https://{closed}"));
    }
    let path = env.cluster.scratch_dir().join(format!("{namespace}-unreachable.yaml"));
    std::fs::write(&path, serde_norway::to_string(&config).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
    let mut command = std::process::Command::new(e2e::operator::binary());
    command
        .args(["controller", "--listen", &format!("127.0.0.1:{port}"), "--namespace", &namespace])
        .args(["--watch-failure-seconds", "2", "--log-level", "error"])
        .env("KUBECONFIG", &path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let operator = OperatorProcess::spawn(command, format!("http://127.0.0.1:{port}"))?;
    let started = std::time::Instant::now();
    let (code, body) = wait::until(TIMEOUT, "/healthz to fail", || async {
        let ready = http_get(&operator.endpoint, "/readyz")?;
        ensure(ready.0 == 503, || format!("/readyz answered {} {}", ready.0, ready.1))?;
        let health = http_get(&operator.endpoint, "/healthz")?;
        if health.0 == 503 { Ok(health) } else { Err(format!("/healthz answered {}", health.0)) }
    })
    .await?;
    eprintln!("/healthz answered {code} ({body}) {:.1}s after start", started.elapsed().as_secs_f64());
    ensure(body.contains("failing for"), || format!("/healthz body: {body}"))?;
    ensure(started.elapsed() >= Duration::from_secs(2), || "unhealthy before the bound".into())
}

/// As Kueue would: a template's `runPolicy.jobMetadata` puts the queue
/// label on the Job itself, the Job is created suspended, the run says so,
/// and once the test resumes the Job (Kueue's admission) the run follows
/// within a second of the Job controller's start. Watches, not polls, time it.
async fn queued(env: Arc<Env>, name: String) -> Result<(), String> {
    use kube::runtime::wait::await_condition;
    const QUEUE: &str = "kueue.x-k8s.io/queue-name";
    let ns = Ns::new(&env, name)?;
    let mut queued = template(&ns.name, "queued", json!({ "suspend": true }))?;
    queued.spec.run_policy = serde_json::from_value(json!({ "jobMetadata": { "labels": { QUEUE: "team-a" } } }))
        .map_err(|e| e.to_string())?;
    ns.create_template(queued).await?;
    ns.create_run(run(&ns.name, "waits", "queued", &[])?).await?;

    let suspended = |run: Option<&JobRun>| {
        run.and_then(|r| r.status.as_ref())
            .is_some_and(|s| s.phase == Some(Phase::Pending) && condition(s, "Suspended").is_some())
    };
    let status = tokio::time::timeout(TIMEOUT, await_condition(ns.runs(), "waits", suspended))
        .await
        .map_err(|_| "the run never said Suspended=True".to_owned())?
        .map_err(|e| e.to_string())?
        .and_then(|r| r.status)
        .unwrap_or_default();
    eprintln!("queued: the run says {:?}", condition(&status, "Suspended").and_then(|c| c.message.clone()));
    let job = ns.jobs().get("waits").await.map_err(|e| e.to_string())?;
    ensure(job.labels().get(QUEUE).map(String::as_str) == Some("team-a"), || {
        format!("the Job's labels are {:?}", job.labels())
    })?;
    ensure(
        job.spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .is_none_or(|m| m.labels.as_ref().is_none_or(|l| !l.contains_key(QUEUE))),
        || "the queue label is on the pods too".into(),
    )?;

    // Kueue admits the Job: it resumes it. The operator never does.
    let resume = json!({ "spec": { "suspend": false } });
    ns.jobs().patch("waits", &PatchParams::default(), &Patch::Merge(&resume)).await.map_err(|e| e.to_string())?;
    let started = |job: Option<&Job>| job.and_then(|j| j.status.as_ref()).is_some_and(|s| s.start_time.is_some());
    tokio::time::timeout(TIMEOUT, await_condition(ns.jobs(), "waits", started))
        .await
        .map_err(|_| "the Job controller never started the resumed Job".to_owned())?
        .map_err(|e| e.to_string())?;
    let job_started = std::time::Instant::now();
    let followed = |run: Option<&JobRun>| {
        run.and_then(|r| r.status.as_ref()).is_some_and(|s| s.phase.is_some_and(|p| p != Phase::Pending))
    };
    tokio::time::timeout(Duration::from_secs(1), await_condition(ns.runs(), "waits", followed))
        .await
        .map_err(|_| "the run did not leave Pending within 1 s of its Job starting".to_owned())?
        .map_err(|e| e.to_string())?;
    eprintln!("queued: the run left Pending {:?} after its resumed Job started", job_started.elapsed());
    let status = ns.wait_phase("waits", Phase::Succeeded).await?;
    let resumed = status.conditions.iter().flatten().find(|c| c.type_ == "Suspended");
    ensure(resumed.is_some_and(|c| c.status == "False"), || format!("Suspended is {resumed:?} after the resume"))
}

/// The reasons of the Events regarding `object` in `namespace`.
async fn event_reasons(client: &Client, namespace: &str, object: &str) -> Result<Vec<String>, String> {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let list = events.list(&ListParams::default()).await.map_err(|e| e.to_string())?;
    Ok(list
        .items
        .iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(object))
        .filter_map(|e| e.reason.clone())
        .collect())
}

/// Cancel on the real Job controller: the run's pod runs (kwok keeps it
/// Running, `KEEP_RUNNING_LABEL`) until the cancel suspends the Job, which
/// deletes it within its grace period; the Job stays suspended, the run
/// ends `Failed/Cancelled` with the Job's last counts; then cancel again on
/// a finished run changes nothing and says so.
async fn cancelled(env: Arc<Env>, name: String) -> Result<(), String> {
    let ns = Ns::new(&env, name)?;
    let running = json!({ "template": {
        "metadata": { "labels": { KEEP_RUNNING_LABEL: "true" } },
        "spec": { "terminationGracePeriodSeconds": 5 }
    } });
    ns.create_template(template(&ns.name, "stuck", running)?).await?;
    ns.create_run(run(&ns.name, "stopped", "stuck", &[])?).await?;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(ns.client.clone(), &ns.name);
    let of_run = ListParams::default().labels(&format!("{LABEL_RUN}=stopped"));
    wait::until(TIMEOUT, "the run's pod to run", || async {
        let list = pods.list(&of_run).await.map_err(|e| e.to_string())?;
        let running =
            list.items.iter().filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"));
        if running.count() == 1 { Ok(()) } else { Err(format!("{} pod(s), none running", list.items.len())) }
    })
    .await?;
    ns.wait_phase("stopped", Phase::Running).await?;
    let cancelled_at = std::time::Instant::now();
    let cancel = json!({ "spec": { "cancel": true } });
    ns.runs().patch("stopped", &PatchParams::default(), &Patch::Merge(&cancel)).await.map_err(|e| e.to_string())?;
    let status = ns.wait_phase("stopped", Phase::Failed).await?;
    eprintln!("cancel: the run was Cancelled {:?} after the cancel (its pod gone)", cancelled_at.elapsed());
    ensure(cancelled_at.elapsed() < Duration::from_secs(5), || "the pod outlived its 5 s grace period".into())?;
    let finished = condition(&status, "Finished").ok_or("no Finished=True")?;
    ensure(finished.reason.as_deref() == Some("Cancelled"), || format!("Finished is {finished:?}"))?;
    ensure(status.active.unwrap_or(0) == 0, || format!("the run recorded {:?} active pods", status.active))?;
    let left = pods.list(&of_run).await.map_err(|e| e.to_string())?.items.len();
    ensure(left == 0, || format!("{left} pod(s) of the run are left"))?;
    let job = ns.jobs().get("stopped").await.map_err(|e| format!("the Job must stay: {e}"))?;
    ensure(job.spec.as_ref().and_then(|s| s.suspend) == Some(true), || "the Job is not suspended".into())?;
    ensure(!job_template_run::merge::holds_finalizer(&job), || {
        "the finished run still holds its Job's finalizer".into()
    })?;
    wait::until(TIMEOUT, "the Cancelled event", || async {
        let reasons = event_reasons(&ns.client, &ns.name, "stopped").await?;
        if reasons.iter().any(|r| r == "Cancelled") { Ok(()) } else { Err(format!("events: {reasons:?}")) }
    })
    .await?;

    // A finished run: the cancel is recorded (observedGeneration) and nothing else changes.
    ns.create_template(template(&ns.name, "echo", json!({}))?).await?;
    ns.create_run(run(&ns.name, "done", "echo", &[])?).await?;
    let done = ns.wait_phase("done", Phase::Succeeded).await?;
    let after =
        ns.runs().patch("done", &PatchParams::default(), &Patch::Merge(&cancel)).await.map_err(|e| e.to_string())?;
    let generation = after.metadata.generation;
    let observed = wait::until(TIMEOUT, "the finished run to observe the cancel's generation", || async {
        let status = ns.runs().get("done").await.map_err(|e| e.to_string())?.status.unwrap_or_default();
        if status.observed_generation == generation {
            Ok(status)
        } else {
            Err(format!("{:?}", status.observed_generation))
        }
    })
    .await?;
    ensure(JobRunStatus { observed_generation: done.observed_generation, ..observed } == done, || {
        "the finished run changed beyond its observedGeneration".into()
    })?;
    wait::until(TIMEOUT, "the CancelIgnored event", || async {
        let reasons = event_reasons(&ns.client, &ns.name, "done").await?;
        if reasons.iter().any(|r| r == "CancelIgnored") { Ok(()) } else { Err(format!("events: {reasons:?}")) }
    })
    .await
}

/// `successfulRunsHistoryLimit: 3` and `failedRunsHistoryLimit: 3`: of 10
/// runs of each outcome, made one after the other, exactly the 3 newest
/// remain, each deletion counted and told on the template.
async fn history(env: Arc<Env>, name: String) -> Result<(), String> {
    let ns = Ns::new(&env, name)?;
    let policy = json!({ "successfulRunsHistoryLimit": 3, "failedRunsHistoryLimit": 3 });
    let mut passing = template(&ns.name, "passes", json!({}))?;
    passing.spec.run_policy = serde_json::from_value(policy.clone()).map_err(|e| e.to_string())?;
    let mut failing = failing_template(&ns.name, "fails")?;
    failing.spec.run_policy = serde_json::from_value(policy).map_err(|e| e.to_string())?;
    ns.create_template(passing).await?;
    ns.create_template(failing).await?;
    for i in 0..10 {
        for (prefix, template, phase) in [("ok", "passes", Phase::Succeeded), ("ko", "fails", Phase::Failed)] {
            let run_name = format!("{prefix}-{i:02}");
            ns.create_run(run(&ns.name, &run_name, template, &[])?).await?;
            ns.wait_phase(&run_name, phase).await?;
        }
    }
    let expected: BTreeSet<String> =
        ["ko-07", "ko-08", "ko-09", "ok-07", "ok-08", "ok-09"].into_iter().map(String::from).collect();
    let names = || async {
        let list = ns.runs().list(&ListParams::default()).await.map_err(|e| e.to_string())?;
        Ok::<BTreeSet<String>, String>(list.items.iter().map(|r| r.name_any()).collect())
    };
    wait::until(TIMEOUT, "exactly the 3 newest runs of each outcome", || async {
        let left = names().await?;
        if left == expected { Ok(()) } else { Err(format!("runs left: {left:?}")) }
    })
    .await?;
    // Settled: a reconcile of a kept run deletes nothing more.
    ns.settled("ok-07").await?;
    let left = names().await?;
    ensure(left == expected, || format!("after settling, runs left: {left:?}"))?;
    let deleted = ns.metric("job_template_run_runs_deleted_total{reason=\"History\"}")?;
    ensure(deleted == 14.0, || format!("runs_deleted_total{{History}} is {deleted}"))?;
    wait::until(TIMEOUT, "RunDeleted events on the template", || async {
        let reasons = event_reasons(&ns.client, &ns.name, "passes").await?;
        let count = reasons.iter().filter(|r| *r == "RunDeleted").count();
        if count >= 1 { Ok(()) } else { Err(format!("events: {reasons:?}")) }
    })
    .await
}

/// Waits (watching) until the run has `Stalled=True` with `reason`.
async fn stalled(ns: &Ns, name: &str, reason: &str, within: Duration) -> Result<JobRunStatus, String> {
    use kube::runtime::wait::await_condition;
    let with_reason = |run: Option<&JobRun>| {
        run.and_then(|r| r.status.as_ref())
            .and_then(|s| condition(s, "Stalled"))
            .is_some_and(|c| c.reason.as_deref() == Some(reason))
    };
    let found = tokio::time::timeout(within, await_condition(ns.runs(), name, with_reason)).await;
    match found {
        Ok(Ok(run)) => Ok(run.and_then(|r| r.status).unwrap_or_default()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => {
            let status = ns.runs().get(name).await.map_err(|e| e.to_string())?.status;
            Err(format!("no Stalled=True/{reason} within {within:?}: {status:?}"))
        }
    }
}

/// The real scheduler cannot place the pod (a nodeSelector no node has):
/// the run says so, with the scheduler's message, within 5 s of its creation.
async fn unschedulable(env: Arc<Env>, name: String) -> Result<(), String> {
    let ns = Ns::new(&env, name)?;
    let nowhere = json!({ "template": { "spec": { "nodeSelector": { "e2e.cellbytes.io/no-such-node": "true" } } } });
    ns.create_template(template(&ns.name, "nowhere", nowhere)?).await?;
    let created = std::time::Instant::now();
    ns.create_run(run(&ns.name, "unplaced", "nowhere", &[])?).await?;
    let status = stalled(&ns, "unplaced", "Unschedulable", Duration::from_secs(5)).await?;
    eprintln!("stalled: Unschedulable {:?} after the run was created", created.elapsed());
    let message = condition(&status, "Stalled").and_then(|c| c.message.clone()).unwrap_or_default();
    ensure(message.contains("didn't match Pod's node affinity/selector") && message.contains("pod unplaced-"), || {
        format!("the message is {message:?}")
    })?;
    wait::until(TIMEOUT, "a Warning event Unschedulable", || async {
        let reasons = event_reasons(&ns.client, &ns.name, "unplaced").await?;
        if reasons.iter().any(|r| r == "Unschedulable") { Ok(()) } else { Err(format!("events: {reasons:?}")) }
    })
    .await
}

/// A ResourceQuota of `pods: 0`: the Job controller cannot create the pod,
/// the run is `Stalled=True/FailedCreate` with the quota's message; once the
/// quota is gone, the run runs and succeeds, and is no longer stalled.
async fn quota(env: Arc<Env>, name: String) -> Result<(), String> {
    use k8s_openapi::api::core::v1::ResourceQuota;
    let ns = Ns::new(&env, name)?;
    let quotas: Api<ResourceQuota> = Api::namespaced(ns.client.clone(), &ns.name);
    let quota: ResourceQuota =
        serde_json::from_value(json!({ "metadata": { "name": "no-pods" }, "spec": { "hard": { "pods": "0" } } }))
            .map_err(|e| e.to_string())?;
    quotas.create(&PostParams::default(), &quota).await.map_err(|e| format!("create quota: {e}"))?;
    wait::until(TIMEOUT, "the quota's usage", || async {
        let quota = quotas.get("no-pods").await.map_err(|e| e.to_string())?;
        if quota.status.and_then(|s| s.hard).is_some() { Ok(()) } else { Err("no usage yet".to_owned()) }
    })
    .await?;
    ns.create_template(template(&ns.name, "echo", json!({}))?).await?;
    let created = std::time::Instant::now();
    ns.create_run(run(&ns.name, "squeezed", "echo", &[])?).await?;
    let status = stalled(&ns, "squeezed", "FailedCreate", TIMEOUT).await?;
    eprintln!("stalled: FailedCreate {:?} after the run was created", created.elapsed());
    let message = condition(&status, "Stalled").and_then(|c| c.message.clone()).unwrap_or_default();
    ensure(message.contains("exceeded quota: no-pods"), || format!("the message is {message:?}"))?;
    quotas.delete("no-pods", &DeleteParams::default()).await.map_err(|e| e.to_string())?;
    let done = ns.wait_phase("squeezed", Phase::Succeeded).await?;
    let stall = done.conditions.iter().flatten().find(|c| c.type_ == "Stalled");
    ensure(stall.is_some_and(|c| c.status == "False"), || format!("Stalled is {stall:?} after the quota went"))
}

/// kwok's stage for `.invalid` registries (e2e/cluster-image/stages.yaml):
/// the run is `Stalled=True/ErrImagePull`, then `ImagePullBackOff`, and with
/// `stalledDeadlineSeconds: 6` it fails `Stalled` (counted from the first,
/// without a break) and its Job is suspended, its pod gone.
async fn image_pull(env: Arc<Env>, name: String) -> Result<(), String> {
    let ns = Ns::new(&env, name)?;
    let unpullable = json!({ "template": { "spec": { "containers": [
        { "name": "main", "image": "registry.invalid/busybox:1.36", "command": ["true"] }
    ] } } });
    let mut broken = template(&ns.name, "unpullable", unpullable)?;
    broken.spec.run_policy =
        serde_json::from_value(json!({ "stalledDeadlineSeconds": 6 })).map_err(|e| e.to_string())?;
    ns.create_template(broken).await?;
    let created = std::time::Instant::now();
    ns.create_run(run(&ns.name, "pull", "unpullable", &[])?).await?;
    let first = stalled(&ns, "pull", "ErrImagePull", TIMEOUT).await?;
    eprintln!("stalled: ErrImagePull {:?} after the run was created", created.elapsed());
    stalled(&ns, "pull", "ImagePullBackOff", TIMEOUT).await?;
    eprintln!("stalled: ImagePullBackOff {:?} after the run was created", created.elapsed());
    let message = condition(&first, "Stalled").and_then(|c| c.message.clone()).unwrap_or_default();
    ensure(message.contains("registry.invalid/busybox:1.36") && message.contains("pod pull-"), || {
        format!("the message is {message:?}")
    })?;
    let failed = ns.wait_phase("pull", Phase::Failed).await?;
    eprintln!("stalled: Failed/Stalled {:?} after the run was created (deadline 6 s)", created.elapsed());
    let finished = condition(&failed, "Finished").ok_or("no Finished=True")?;
    ensure(finished.reason.as_deref() == Some("Stalled"), || format!("Finished is {finished:?}"))?;
    ensure(finished.message.as_deref().is_some_and(|m| m.contains("ImagePullBackOff")), || {
        format!("the failure's message is {:?}", finished.message)
    })?;
    wait::until(TIMEOUT, "the stalled run's Job to be suspended and its pod gone", || async {
        let job = ns.jobs().get("pull").await.map_err(|e| e.to_string())?;
        let suspended = job.spec.as_ref().and_then(|s| s.suspend) == Some(true);
        let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(ns.client.clone(), &ns.name);
        let left =
            pods.list(&ListParams::default().labels(&format!("{LABEL_RUN}=pull"))).await.map_err(|e| e.to_string())?;
        if suspended && left.items.is_empty() {
            Ok(())
        } else {
            Err(format!("suspended {suspended}, {} pod(s)", left.items.len()))
        }
    })
    .await
}

/// Pod logs through the API server, as `kubectl logs` and the jobrun plugin
/// read them: a namespace's log (kwok's ClusterLogs) for a run's pod made
/// after it, followed while a line is appended; and one pod's own log per
/// container (kwok's Logs), which wins over the namespace's.
async fn pod_logs(env: Arc<Env>, name: String) -> Result<(), String> {
    use e2e::logs::{self, Pods};
    use futures::{AsyncBufReadExt, TryStreamExt};
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::LogParams;

    let ns = Ns::new(&env, name)?;
    let served =
        logs::serve_logs(&env.cluster, &ns.client, Pods::Namespace(&ns.name), None, "first line\nsecond line\n")
            .await?;
    let talking = json!({ "template": { "metadata": { "labels": { KEEP_RUNNING_LABEL: "true" } } } });
    ns.create_template(template(&ns.name, "talker", talking)?).await?;
    ns.create_run(run(&ns.name, "talks", "talker", &[])?).await?;
    let pods: Api<Pod> = Api::namespaced(ns.client.clone(), &ns.name);
    let of_run = ListParams::default().labels(&format!("{LABEL_RUN}=talks"));
    let pod = wait::until(TIMEOUT, "the run's pod to run", || async {
        let list = pods.list(&of_run).await.map_err(|e| e.to_string())?;
        list.items
            .into_iter()
            .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .map(|p| p.name_any())
            .ok_or_else(|| "no running pod yet".to_string())
    })
    .await?;
    logs::wait_served(&ns.client, &ns.name, &pod, None).await?;
    let read_at = std::time::Instant::now();
    let text = pods.logs(&pod, &LogParams::default()).await.map_err(|e| format!("logs of {pod}: {e}"))?;
    eprintln!("pod logs: one read of {pod}'s log took {:?}", read_at.elapsed());
    ensure(text == "first line\nsecond line\n", || format!("the run's pod logged {text:?}"))?;

    let follow = LogParams { follow: true, ..LogParams::default() };
    let mut lines = pods.log_stream(&pod, &follow).await.map_err(|e| format!("follow {pod}: {e}"))?.lines();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(10), lines.try_next())
            .await
            .map_err(|_| "no line within 10 s".to_string())?
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "the follow ended".to_string())
    };
    for expected in ["first line", "second line"] {
        let line = next().await?;
        ensure(line == expected, || format!("the follow read {line:?} instead of {expected:?}"))?;
    }
    let appended_at = std::time::Instant::now();
    served.append("third line").await?;
    let line = next().await?;
    eprintln!("pod logs: the appended line arrived through the follow {:?} after the append", appended_at.elapsed());
    ensure(line == "third line", || format!("the follow read {line:?} after the append"))?;
    // A follow never ends from kwok's side: the reader ends it by dropping it.
    drop(lines);

    // One pod's own log, per container, instead of the namespace's.
    let own: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "own", "namespace": ns.name },
        "spec": { "containers": [
            { "name": "main", "image": "busybox:1.36" },
            { "name": "side", "image": "busybox:1.36" }
        ] }
    }))
    .map_err(|e| e.to_string())?;
    pods.create(&PostParams::default(), &own).await.map_err(|e| format!("create pod own: {e}"))?;
    let this_pod = Pods::Pod { namespace: &ns.name, name: "own" };
    logs::serve_logs(&env.cluster, &ns.client, this_pod, None, "main's line").await?;
    logs::serve_logs(&env.cluster, &ns.client, this_pod, Some("side"), "side's line").await?;
    for (container, expected) in [("main", "main's line\n"), ("side", "side's line\n")] {
        logs::wait_served(&ns.client, &ns.name, "own", Some(container)).await?;
        let params = LogParams { container: Some(container.into()), ..LogParams::default() };
        let text = pods.logs("own", &params).await.map_err(|e| format!("logs of own/{container}: {e}"))?;
        ensure(text == expected, || format!("container {container} logged {text:?}"))?;
    }
    Ok(())
}
