//! Tier 2 (e2e): `kubectl jobrun`, the binary a person types, against the
//! full cluster with the operator running: every command, its output and
//! its exit codes, and kubectl's own plugin dispatch and completion hook.
//! Pod logs come from kwok's Logs and ClusterLogs ([`e2e::logs`]).

use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::logs::{Pods, serve_logs, wait_served};
use e2e::objects::{FAIL_POD_LABEL, KEEP_RUNNING_LABEL, template};
use e2e::suite::{self, Env, Test};
use e2e::{ClusterKind, tools, wait};
use futures::FutureExt;
use job_template_run::crd::{JobRun, JobTemplate, Phase};
use job_template_run::merge::LABEL_RUN;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

const TIMEOUT: Duration = Duration::from_secs(90);

fn main() -> ExitCode {
    suite::main(ClusterKind::Full, |_| {
        vec![
            Test::new("create_with_wait_and_logs_prints_the_pods_log_and_exits_zero_when_the_run_succeeds", |e, ns| {
                create_wait_logs(e, ns).boxed()
            }),
            Test::new(
                "create_refuses_what_the_templates_policy_refuses_with_the_operators_message_and_sends_nothing",
                |e, ns| refused(e, ns).boxed(),
            ),
            Test::new("create_dry_runs_print_the_run_and_store_nothing", |e, ns| dry_runs(e, ns).boxed()),
            Test::new("wait_exits_zero_on_success_one_on_failure_and_two_on_timeout", |e, ns| {
                wait_codes(e, ns).boxed()
            }),
            Test::new("get_prints_kubectls_columns_and_formats_and_watches_changes", |e, ns| get(e, ns).boxed()),
            Test::new("describe_shows_the_runs_job_pods_with_their_stall_and_events", |e, ns| describe(e, ns).boxed()),
            Test::new("cancel_stops_a_running_run_and_rerun_repeats_it_with_the_same_spec", |e, ns| {
                cancel_rerun(e, ns).boxed()
            }),
            Test::new("logs_follow_a_run_across_a_pod_retry_and_read_one_or_all_pods", |e, ns| logs(e, ns).boxed()),
            Test::new("templates_lists_what_each_templates_policy_allows", |e, ns| templates(e, ns).boxed()),
            Test::new("kubectl_runs_the_plugin_and_its_completion_hook_completes_names_from_the_cluster", |e, ns| {
                kubectl_integration(e, ns).boxed()
            }),
        ]
    })
}

/// What a command printed, and how it ended.
#[derive(Debug)]
struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Output {
    fn expect_code(&self, code: i32, what: &str) -> Result<&Self, String> {
        if self.code == code {
            Ok(self)
        } else {
            Err(format!(
                "{what}: exit {} (expected {code})\nstdout: {}\nstderr: {}",
                self.code, self.stdout, self.stderr
            ))
        }
    }
}

/// The plugin, run like a user does, with the cluster's kubeconfig in
/// `KUBECONFIG` and `-n namespace`.
struct Plugin {
    kubeconfig: PathBuf,
    namespace: String,
    client: Client,
}

impl Plugin {
    fn new(env: &Env, namespace: &str) -> Result<Self, String> {
        env.operator()?;
        let path = tools::workspace_binary("kubectl-jobrun");
        if !path.exists() {
            return Err(format!("{} is missing: run `make build` (or cargo build -p kubectl-jobrun)", path.display()));
        }
        Ok(Self {
            kubeconfig: env.cluster.kubeconfig_path.clone(),
            namespace: namespace.to_owned(),
            client: env.client.clone(),
        })
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(tools::workspace_binary("kubectl-jobrun"));
        command.args(["-n", &self.namespace]).args(args).env("KUBECONFIG", &self.kubeconfig).env_remove("NO_COLOR");
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        command
    }

    async fn run(&self, args: &[&str]) -> Result<Output, String> {
        let child = self.command(args).spawn().map_err(|e| format!("spawn kubectl-jobrun {args:?}: {e}"))?;
        let output = tokio::time::timeout(TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| format!("kubectl-jobrun {args:?} did not end within {TIMEOUT:?}"))?
            .map_err(|e| format!("kubectl-jobrun {args:?}: {e}"))?;
        Ok(Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    async fn create_template(&self, template: JobTemplate) -> Result<(), String> {
        let api: Api<JobTemplate> = Api::namespaced(self.client.clone(), &self.namespace);
        api.create(&PostParams::default(), &template).await.map(|_| ()).map_err(|e| format!("create template: {e}"))
    }

    fn runs(&self) -> Api<JobRun> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    async fn wait_phase(&self, name: &str, phase: Phase) -> Result<JobRun, String> {
        wait::until(TIMEOUT, &format!("run {name} to be {phase:?}"), || async {
            let run = self.runs().get(name).await.map_err(|e| e.to_string())?;
            if run.status.as_ref().and_then(|s| s.phase) == Some(phase) {
                Ok(run)
            } else {
                Err(format!("{:?}", run.status))
            }
        })
        .await
    }

    /// The run's pods, oldest first, once the newest runs and is not `except`.
    async fn newest_running(&self, run: &str, except: Option<&str>) -> Result<Vec<Pod>, String> {
        let params = ListParams::default().labels(&format!("{LABEL_RUN}={run}"));
        wait::until(TIMEOUT, &format!("a new pod of {run} to run"), || async {
            let mut pods = self.pods().list(&params).await.map_err(|e| e.to_string())?.items;
            pods.sort_by_key(|p| (p.metadata.creation_timestamp.as_ref().map(|t| t.0), p.name_any()));
            let newest = pods.last().ok_or("no pod")?;
            let running = newest.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
            if running && Some(newest.name_any().as_str()) != except {
                Ok(pods)
            } else {
                Err(format!("{} pod(s)", pods.len()))
            }
        })
        .await
    }
}

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

fn keep_running() -> serde_json::Value {
    json!({ "template": {
        "metadata": { "labels": { KEEP_RUNNING_LABEL: "true" } },
        "spec": { "terminationGracePeriodSeconds": 1 }
    } })
}

/// A template that lets runs set args and env.
fn open_template(namespace: &str, name: &str, spec: serde_json::Value) -> Result<JobTemplate, String> {
    let mut template = template(namespace, name, spec)?;
    template.spec.run_policy =
        Some(serde_json::from_value(json!({ "overrides": ["args", "env"] })).map_err(|e| e.to_string())?);
    Ok(template)
}

async fn create_wait_logs(env: Arc<Env>, ns: String) -> Result<(), String> {
    let plugin = Plugin::new(&env, &ns)?;
    plugin.create_template(open_template(&ns, "echo", json!({}))?).await?;
    serve_logs(&env.cluster, &env.client, Pods::Namespace(&ns), None, "hello from the run\nsecond line\n").await?;
    served_in_namespace(&plugin).await?;
    let started = Instant::now();
    let out =
        plugin.run(&["create", "echo", "first", "--env", "GREETING=hi", "--wait", "--logs", "--", "hello"]).await?;
    out.expect_code(0, "create --wait --logs")?;
    eprintln!("create --wait --logs: exit 0 after {:?}", started.elapsed());
    ensure(out.stdout.starts_with("jobrun.cellbytes.io/first created\n"), || format!("stdout: {}", out.stdout))?;
    ensure(out.stdout.contains("hello from the run\nsecond line\n"), || format!("no log in stdout: {}", out.stdout))?;
    ensure(out.stdout.trim_end().ends_with("jobrun.cellbytes.io/first Succeeded"), || {
        format!("stdout: {}", out.stdout)
    })?;
    let run = plugin.runs().get("first").await.map_err(|e| e.to_string())?;
    ensure(run.spec.args == Some(vec!["hello".into()]), || format!("args: {:?}", run.spec.args))?;
    let env_var = run.spec.env.as_ref().and_then(|e| e.first()).map(|e| (e.name.clone(), e.value.clone()));
    ensure(env_var == Some(("GREETING".into(), Some("hi".into()))), || format!("env: {env_var:?}"))?;

    // Without a name, one is generated from the template's; -o name prints it.
    let out = plugin.run(&["create", "echo", "-o", "name"]).await?;
    out.expect_code(0, "create -o name")?;
    let name = out.stdout.trim().strip_prefix("jobrun.cellbytes.io/").ok_or(format!("stdout: {}", out.stdout))?;
    ensure(name.starts_with("echo-") && name.len() == "echo-".len() + 5, || format!("generated name {name}"))?;
    plugin.runs().get(name).await.map_err(|e| format!("the generated run {name}: {e}"))?;
    Ok(())
}

async fn refused(env: Arc<Env>, ns: String) -> Result<(), String> {
    let plugin = Plugin::new(&env, &ns)?;
    plugin.create_template(template(&ns, "strict", json!({}))?).await?;
    let out = plugin.run(&["create", "strict", "refused", "--env", "A=1"]).await?;
    out.expect_code(1, "create with an override the policy refuses")?;
    let line = out.stderr.trim_end();
    ensure(!line.contains('\n'), || format!("more than one line: {line}"))?;
    let expected = "error: OverrideNotAllowed: JobTemplate strict does not allow spec.env; its runPolicy.overrides allows: command, args";
    ensure(line == expected, || format!("stderr: {line}"))?;
    ensure(plugin.runs().get_opt("refused").await.map_err(|e| e.to_string())?.is_none(), || "the run was sent".into())?;

    // The operator says the same of the same run sent past the plugin.
    let run: JobRun = serde_json::from_value(json!({
        "apiVersion": "cellbytes.io/v1", "kind": "JobRun",
        "metadata": { "name": "refused", "namespace": ns },
        "spec": { "templateRef": "strict", "env": [{ "name": "A", "value": "1" }] }
    }))
    .map_err(|e| e.to_string())?;
    plugin.runs().create(&PostParams::default(), &run).await.map_err(|e| e.to_string())?;
    let failed = plugin.wait_phase("refused", Phase::Failed).await?;
    let error = failed.status.and_then(|s| s.error).unwrap_or_default();
    ensure(Some(error.as_str()) == expected.strip_prefix("error: "), || format!("the operator's error: {error}"))?;

    // A run without a Job has no log, and says why.
    for args in [&["logs", "refused"][..], &["logs", "refused", "-f"][..]] {
        let out = plugin.run(args).await?;
        out.expect_code(1, "logs of a run that never had a Job")?;
        let expected =
            "error: jobrun refused ended without a Job (OverrideNotAllowed: JobTemplate strict does not allow";
        ensure(out.stderr.starts_with(expected), || out.stderr.clone())?;
    }

    // Bad input and missing objects: one line, exit 1.
    let out = plugin.run(&["create", "absent", "x"]).await?;
    out.expect_code(1, "create from a missing template")?;
    ensure(
        out.stderr.trim_end() == format!("error: jobtemplates.cellbytes.io \"absent\" not found in namespace {ns}"),
        || out.stderr.clone(),
    )?;
    let out = plugin.run(&["describe", "nothing"]).await?;
    out.expect_code(1, "describe a missing run")?;
    ensure(
        out.stderr.trim_end() == format!("error: jobruns.cellbytes.io \"nothing\" not found in namespace {ns}"),
        || out.stderr.clone(),
    )?;
    let out = plugin.run(&["wait", "x", "--timeout", "5"]).await?;
    out.expect_code(1, "a duration without a unit (a usage error, exit 1 as kubectl's)")?;
    ensure(out.stderr.starts_with("error: ") && out.stderr.contains("invalid duration"), || out.stderr.clone())?;
    ensure(out.stderr.trim_end().lines().count() == 1, || {
        format!("a usage error in more than one line: {}", out.stderr)
    })?;
    let out = plugin.run(&["create", "strict", "--timeout", "5s"]).await?;
    out.expect_code(1, "--timeout without --wait")?;
    ensure(out.stderr.trim_end() == "error: --timeout needs --wait or --logs", || out.stderr.clone())?;
    let out = plugin.run(&["create", "strict", "--command", "--", "sh", "-c", "echo"]).await?;
    out.expect_code(0, "a command override the default policy allows")?;
    Ok(())
}

async fn dry_runs(env: Arc<Env>, ns: String) -> Result<(), String> {
    let plugin = Plugin::new(&env, &ns)?;
    plugin.create_template(template(&ns, "echo", json!({}))?).await?;
    let out = plugin.run(&["create", "echo", "dry", "--dry-run=client", "-o", "yaml", "--", "a"]).await?;
    out.expect_code(0, "--dry-run=client")?;
    let printed: JobRun = serde_norway::from_str(&out.stdout).map_err(|e| format!("{e}: {}", out.stdout))?;
    ensure(printed.spec.args == Some(vec!["a".into()]) && printed.metadata.name.as_deref() == Some("dry"), || {
        out.stdout.clone()
    })?;
    let out = plugin.run(&["create", "echo", "dry", "--dry-run=server", "-o", "json"]).await?;
    out.expect_code(0, "--dry-run=server")?;
    let printed: JobRun = serde_json::from_str(&out.stdout).map_err(|e| format!("{e}: {}", out.stdout))?;
    ensure(printed.metadata.uid.is_some(), || "the server's dry run answer has a uid".into())?;
    ensure(plugin.runs().get_opt("dry").await.map_err(|e| e.to_string())?.is_none(), || {
        "a dry run stored the run".into()
    })
}

async fn wait_codes(env: Arc<Env>, ns: String) -> Result<(), String> {
    let plugin = Plugin::new(&env, &ns)?;
    plugin.create_template(template(&ns, "ok", json!({}))?).await?;
    let failing = json!({ "backoffLimit": 0, "template": { "metadata": { "labels": { FAIL_POD_LABEL: "true" } } } });
    plugin.create_template(template(&ns, "bad", failing)?).await?;
    plugin.create_template(template(&ns, "stuck", keep_running())?).await?;
    for (template, name) in [("ok", "good"), ("bad", "broken"), ("stuck", "forever")] {
        plugin.run(&["create", template, name]).await?.expect_code(0, "create")?;
    }
    let out = plugin.run(&["wait", "good", "--timeout", "60s"]).await?;
    out.expect_code(0, "wait on a run that succeeds")?;
    ensure(out.stdout.trim_end() == "jobrun.cellbytes.io/good Succeeded", || out.stdout.clone())?;
    let out = plugin.run(&["wait", "broken", "--timeout", "1m"]).await?;
    out.expect_code(1, "wait on a run that fails")?;
    ensure(out.stderr.trim_end().starts_with("jobrun.cellbytes.io/broken Failed: BackoffLimitExceeded: "), || {
        out.stderr.clone()
    })?;
    let started = Instant::now();
    let out = plugin.run(&["wait", "forever", "--timeout", "2s"]).await?;
    out.expect_code(2, "wait past its timeout")?;
    ensure(started.elapsed() < Duration::from_secs(20), || format!("the 2 s timeout took {:?}", started.elapsed()))?;
    ensure(out.stderr.contains("timed out waiting for jobrun.cellbytes.io/forever"), || out.stderr.clone())?;
    // A wait begun before the run ends returns when it does.
    let waiting = plugin.command(&["wait", "forever", "--timeout", "60s"]).spawn().map_err(|e| e.to_string())?;
    plugin.run(&["cancel", "forever"]).await?.expect_code(0, "cancel")?;
    let output = tokio::time::timeout(TIMEOUT, waiting.wait_with_output())
        .await
        .map_err(|_| "wait did not return")?
        .map_err(|e| e.to_string())?;
    ensure(output.status.code() == Some(1), || format!("wait on a cancelled run: {output:?}"))?;
    ensure(String::from_utf8_lossy(&output.stderr).contains("Failed: Cancelled: "), || format!("{output:?}"))
}

async fn get(env: Arc<Env>, ns: String) -> Result<(), String> {
    let plugin = Plugin::new(&env, &ns)?;
    plugin.create_template(template(&ns, "echo", json!({}))?).await?;
    let failing = json!({ "backoffLimit": 0, "template": { "metadata": { "labels": { FAIL_POD_LABEL: "true" } } } });
    plugin.create_template(template(&ns, "bad", failing)?).await?;
    plugin.run(&["create", "echo", "alpha", "--wait"]).await?.expect_code(0, "alpha")?;
    plugin.run(&["create", "bad", "beta", "--wait"]).await?.expect_code(1, "beta")?;

    let out = plugin.run(&["get"]).await?;
    out.expect_code(0, "get")?;
    let lines: Vec<Vec<&str>> = out.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    ensure(
        lines.first().map(Vec::as_slice) == Some(&["NAME", "TEMPLATE", "STATUS", "REASON", "DURATION", "AGE"][..]),
        || out.stdout.clone(),
    )?;
    ensure(lines.get(1).is_some_and(|l| l[..3] == ["alpha", "echo", "Succeeded"] && l.len() == 5), || {
        out.stdout.clone()
    })?;
    ensure(lines.get(2).is_some_and(|l| l[..4] == ["beta", "bad", "Failed", "BackoffLimitExceeded"]), || {
        out.stdout.clone()
    })?;
    ensure(!out.stdout.contains('\x1b'), || "colours on a pipe".into())?;

    let out = plugin.run(&["get", "beta", "-o", "wide"]).await?;
    ensure(out.stdout.lines().next().is_some_and(|h| h.ends_with("JOB       MESSAGE")), || out.stdout.clone())?;
    ensure(out.stdout.contains("Job has reached the specified backoff limit"), || out.stdout.clone())?;
    let out = plugin.run(&["get", "alpha", "-o", "json"]).await?;
    let one: JobRun = serde_json::from_str(&out.stdout).map_err(|e| format!("{e}: {}", out.stdout))?;
    ensure(one.status.and_then(|s| s.phase) == Some(Phase::Succeeded), || out.stdout.clone())?;
    let out = plugin.run(&["get", "-o", "yaml"]).await?;
    let list: serde_json::Value = serde_norway::from_str(&out.stdout).map_err(|e| e.to_string())?;
    ensure(list["kind"] == "List" && list["items"].as_array().map(Vec::len) == Some(2), || out.stdout.clone())?;
    let out = plugin.run(&["get", "-o", "name"]).await?;
    ensure(out.stdout == "jobrun.cellbytes.io/alpha\njobrun.cellbytes.io/beta\n", || out.stdout.clone())?;
    let out = plugin.run(&["get", "-A"]).await?;
    ensure(out.stdout.starts_with("NAMESPACE "), || out.stdout.clone())?;
    ensure(out.stdout.lines().any(|l| l.starts_with(&format!("{ns} ")) && l.contains("alpha")), || out.stdout.clone())?;
    let out = plugin.run(&["get", "missing"]).await?;
    out.expect_code(1, "get a missing run")?;

    // -w: the list, then a row per change of a run created meanwhile.
    let mut watch = plugin.command(&["get", "-w"]).spawn().map_err(|e| e.to_string())?;
    let stdout = watch.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    let read_until = async {
        while let Some(line) = lines.next_line().await.map_err(|e| e.to_string())? {
            seen.push(line.clone());
            if seen.len() == 3 {
                plugin.run(&["create", "echo", "gamma"]).await?.expect_code(0, "gamma")?;
            }
            if line.starts_with("gamma ") && line.contains("Succeeded") {
                return Ok::<_, String>(());
            }
        }
        Err("get -w ended".to_owned())
    };
    tokio::time::timeout(TIMEOUT, read_until).await.map_err(|_| "get -w never showed gamma Succeeded".to_owned())??;
    let _ = watch.kill().await;
    ensure(seen[0].starts_with("NAME ") && seen[1].starts_with("alpha ") && seen[2].starts_with("beta "), || {
        format!("{seen:#?}")
    })?;
    ensure(seen.iter().filter(|l| l.starts_with("NAME ")).count() == 1, || format!("the header twice: {seen:#?}"))
}

async fn describe(env: Arc<Env>, ns: String) -> Result<(), String> {
    let plugin = Plugin::new(&env, &ns)?;
    let failing = json!({ "backoffLimit": 0, "template": { "metadata": { "labels": { FAIL_POD_LABEL: "true" } } } });
    plugin.create_template(template(&ns, "bad", failing)?).await?;
    plugin.run(&["create", "bad", "broken", "--wait"]).await?.expect_code(1, "broken")?;
    let out = wait::until(TIMEOUT, "describe to show the Finished event", || async {
        let out = plugin.run(&["describe", "broken"]).await?;
        out.expect_code(0, "describe")?;
        if out.stdout.contains("Finished") && out.stdout.contains("JobCreated") { Ok(out) } else { Err(out.stdout) }
    })
    .await?;
    let text = &out.stdout;
    for expected in [
        "Name:         broken",
        "Phase:        Failed",
        "Reason:       BackoffLimitExceeded",
        "broken: completions 0/1",
        "jobrun/broken",
        "job/broken",
    ] {
        ensure(text.contains(expected), || format!("no {expected:?} in:\n{text}"))?;
    }
    let pod = plugin
        .pods()
        .list(&ListParams::default().labels(&format!("{LABEL_RUN}=broken")))
        .await
        .map_err(|e| e.to_string())?;
    let pod_name = pod.items.first().map(ResourceExt::name_any).ok_or("no pod")?;
    ensure(text.contains(&format!("  {pod_name} ")), || format!("no pod {pod_name} in:\n{text}"))?;
    let events = &text[text.find("Events:\n").ok_or("no Events section")?..];
    let created = events.find(" JobCreated ").ok_or(format!("no JobCreated event:\n{text}"))?;
    let finished = events.find(" Finished ").ok_or(format!("no Finished event:\n{text}"))?;
    ensure(created < finished, || format!("events not newest last:\n{text}"))?;

    // A pod that cannot pull its image: the pod's stall is shown.
    let unpullable =
        json!({ "template": { "spec": { "containers": [{ "name": "main", "image": "registry.invalid/app:1" }] } } });
    plugin.create_template(template(&ns, "unpullable", unpullable)?).await?;
    plugin.run(&["create", "unpullable", "stuck"]).await?.expect_code(0, "stuck")?;
    wait::until(TIMEOUT, "describe to show the pod's ImagePullBackOff", || async {
        let out = plugin.run(&["describe", "stuck"]).await?;
        let pod_line = out.stdout.lines().find(|l| l.trim_start().starts_with("stuck-")).map(str::to_owned);
        match pod_line {
            Some(line) if line.contains("ImagePullBackOff") && line.contains("registry.invalid/app:1") => Ok(()),
            _ => Err(out.stdout),
        }
    })
    .await
}

async fn cancel_rerun(env: Arc<Env>, ns: String) -> Result<(), String> {
    let plugin = Plugin::new(&env, &ns)?;
    let mut stuck = template(&ns, "stuck", keep_running())?;
    stuck.spec.run_policy =
        Some(serde_json::from_value(json!({ "overrides": ["args", "labels"] })).map_err(|e| e.to_string())?);
    plugin.create_template(stuck).await?;
    plugin.run(&["create", "stuck", "first", "--label", "team=a", "--", "x"]).await?.expect_code(0, "create")?;
    plugin.newest_running("first", None).await?;
    plugin.wait_phase("first", Phase::Running).await?;
    let out = plugin.run(&["cancel", "first"]).await?;
    out.expect_code(0, "cancel")?;
    ensure(out.stdout == "jobrun.cellbytes.io/first cancel requested\n", || out.stdout.clone())?;
    let out = plugin.run(&["wait", "first", "--timeout", "60s"]).await?;
    out.expect_code(1, "wait on the cancelled run")?;
    ensure(out.stderr.contains("Failed: Cancelled: "), || out.stderr.clone())?;
    let out = plugin.run(&["cancel", "first"]).await?;
    out.expect_code(0, "cancel a finished run")?;
    ensure(out.stdout.contains("already finished (Failed): nothing to cancel"), || out.stdout.clone())?;

    let out = plugin.run(&["rerun", "first", "second", "-o", "name"]).await?;
    out.expect_code(0, "rerun")?;
    ensure(out.stdout == "jobrun.cellbytes.io/second\n", || out.stdout.clone())?;
    let (first, second) = (
        plugin.runs().get("first").await.map_err(|e| e.to_string())?,
        plugin.runs().get("second").await.map_err(|e| e.to_string())?,
    );
    ensure(second.spec.args == first.spec.args && second.spec.labels == first.spec.labels, || {
        format!("{:?}", second.spec)
    })?;
    ensure(second.spec.cancel.is_none(), || "the rerun inherited the cancel".into())?;
    ensure(second.annotations().get("cellbytes.io/rerun-of").map(String::as_str) == Some("first"), || {
        format!("{:?}", second.annotations())
    })?;
    plugin.newest_running("second", None).await?;
    let out = plugin.run(&["rerun", "second"]).await?;
    out.expect_code(0, "rerun without a name")?;
    ensure(out.stdout.starts_with("jobrun.cellbytes.io/second-"), || out.stdout.clone())?;
    Ok(())
}

async fn logs(env: Arc<Env>, ns: String) -> Result<(), String> {
    let plugin = Plugin::new(&env, &ns)?;
    let mut spec = keep_running();
    spec["backoffLimit"] = json!(3);
    plugin.create_template(template(&ns, "retry", spec)?).await?;
    let out = plugin.run(&["logs", "nope"]).await?;
    out.expect_code(1, "logs of a missing run")?;
    // Every pod of the namespace but the first: the retry.
    serve_logs(&env.cluster, &env.client, Pods::Namespace(&ns), None, "attempt two\n").await?;
    served_in_namespace(&plugin).await?;
    plugin.run(&["create", "retry", "flaky"]).await?.expect_code(0, "create")?;
    let first = plugin.newest_running("flaky", None).await?.remove(0).name_any();
    let first_log =
        serve_logs(&env.cluster, &env.client, Pods::Pod { namespace: &ns, name: &first }, None, "attempt one\n")
            .await?;
    wait_served(&env.client, &ns, &first, None).await?;

    let mut follow = plugin.command(&["logs", "flaky", "-f"]).spawn().map_err(|e| e.to_string())?;
    let stdout = follow.stdout.take().ok_or("no stdout")?;
    let stderr = follow.stderr.take().ok_or("no stderr")?;
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut BufReader::new(stderr), &mut text).await;
        text
    });
    let result = follow_retries(&plugin, &first, &first_log, &mut follow, stdout).await;
    if result.is_err() {
        let _ = follow.kill().await;
    }
    let stderr = stderr.await.unwrap_or_default();
    result.map_err(|e| format!("{e}\nlogs -f stderr: {stderr}"))?;
    ensure(stderr.lines().filter(|l| l.starts_with("==> pod/")).count() == 2, || format!("logs -f stderr: {stderr}"))?;
    twins(&env, &plugin, &ns).await
}

/// `logs -f` of `flaky`, whose first pod is deleted: its retry's log follows.
async fn follow_retries(
    plugin: &Plugin,
    first: &str,
    first_log: &e2e::logs::LogFile,
    follow: &mut tokio::process::Child,
    stdout: tokio::process::ChildStdout,
) -> Result<(), String> {
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    seen.push(next_line(&mut lines).await?);
    first_log.append("attempt one, later\n").await?;
    seen.push(next_line(&mut lines).await?);
    // The first pod goes; the Job controller makes a second, which -f follows.
    plugin.pods().delete(first, &DeleteParams::default()).await.map_err(|e| e.to_string())?;
    let second = plugin.newest_running("flaky", Some(first)).await?.pop().map(|p| p.name_any()).ok_or("no pod")?;
    seen.push(next_line(&mut lines).await?);
    ensure(seen == ["attempt one", "attempt one, later", "attempt two"], || format!("logs -f printed {seen:?}"))?;
    let out = plugin.run(&["logs", "flaky"]).await?;
    out.expect_code(0, "logs")?;
    ensure(out.stdout == "attempt two\n", || format!("the newest pod's log: {:?}", out.stdout))?;
    // The run ends (cancelled): -f ends with it.
    plugin.run(&["cancel", "flaky"]).await?.expect_code(0, "cancel")?;
    let rest = async {
        while let Some(line) = lines.next_line().await.map_err(|e| e.to_string())? {
            seen.push(line);
        }
        follow.wait().await.map_err(|e| e.to_string())
    };
    let status = tokio::time::timeout(TIMEOUT, rest).await.map_err(|_| "logs -f did not end with the run")??;
    ensure(status.success(), || format!("logs -f: {status}"))?;
    ensure(seen.len() == 3, || format!("logs -f printed more: {seen:?}"))?;
    eprintln!("logs -f followed {first} then {second}");
    Ok(())
}

/// Two pods at once: the newest alone, or both, oldest first, each line prefixed.
async fn twins(env: &Env, plugin: &Plugin, ns: &str) -> Result<(), String> {
    let mut pair = keep_running();
    pair["parallelism"] = json!(2);
    pair["completions"] = json!(2);
    plugin.create_template(template(ns, "pair", pair)?).await?;
    plugin.run(&["create", "pair", "twins"]).await?.expect_code(0, "create twins")?;
    let pods = wait::until(TIMEOUT, "two running pods of twins", || async {
        let pods = plugin.newest_running("twins", None).await?;
        let running =
            pods.iter().filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")).count();
        if running == 2 { Ok(pods) } else { Err(format!("{running} running")) }
    })
    .await?;
    let names: Vec<String> = pods.iter().map(ResourceExt::name_any).collect();
    for name in &names {
        serve_logs(
            &env.cluster,
            &env.client,
            Pods::Pod { namespace: ns, name },
            Some("main"),
            &format!("I am {name}\n"),
        )
        .await?;
        wait_served(&env.client, ns, name, Some("main")).await?;
    }
    let out = plugin.run(&["logs", "twins"]).await?;
    ensure(out.stdout == format!("I am {}\n", names[1]), || format!("the newest pod's log: {:?}", out.stdout))?;
    let out = plugin.run(&["logs", "twins", "--all-pods", "-c", "main"]).await?;
    out.expect_code(0, "logs --all-pods")?;
    let expected: String = names.iter().map(|n| format!("[pod/{n}/main] I am {n}\n")).collect();
    ensure(out.stdout == expected, || format!("--all-pods: {:?}", out.stdout))?;
    Ok(())
}

/// Waits until kwok serves the namespace's ClusterLogs (it learns of it by
/// a watch): a pod made for that is read, then deleted.
async fn served_in_namespace(plugin: &Plugin) -> Result<(), String> {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "logs-probe", "namespace": plugin.namespace },
        "spec": { "containers": [{ "name": "main", "image": "busybox:1.36" }] }
    }))
    .map_err(|e| e.to_string())?;
    plugin.pods().create(&PostParams::default(), &pod).await.map_err(|e| format!("create the probe pod: {e}"))?;
    wait_served(&plugin.client, &plugin.namespace, "logs-probe", None).await?;
    let now = DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() };
    plugin.pods().delete("logs-probe", &now).await.map(|_| ()).map_err(|e| format!("delete the probe pod: {e}"))
}

/// The next line a child prints, within [`TIMEOUT`].
async fn next_line(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) -> Result<String, String> {
    let line =
        tokio::time::timeout(TIMEOUT, lines.next_line()).await.map_err(|_| "logs -f printed no line".to_owned())?;
    line.map_err(|e| e.to_string())?.ok_or_else(|| "logs -f ended early".to_owned())
}

async fn templates(env: Arc<Env>, ns: String) -> Result<(), String> {
    let plugin = Plugin::new(&env, &ns)?;
    plugin.create_template(template(&ns, "plain", json!({}))?).await?;
    let mut open = open_template(&ns, "open", json!({}))?;
    open.spec.run_policy = Some(
        serde_json::from_value(json!({ "overrides": ["args", "env"], "envNames": ["APP_*"], "validations": [{ "rule": "true", "message": "m" }] }))
            .map_err(|e| e.to_string())?,
    );
    plugin.create_template(open).await?;
    let out = wait::until(TIMEOUT, "both templates to be Valid", || async {
        let out = plugin.run(&["templates"]).await?;
        if out.stdout.lines().skip(1).filter(|l| l.split_whitespace().nth(1) == Some("True")).count() == 2 {
            Ok(out)
        } else {
            Err(out.stdout)
        }
    })
    .await?;
    let rows: Vec<Vec<&str>> = out.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    ensure(rows[0] == ["NAME", "VALID", "OVERRIDES", "ENV", "NAMES", "RULES", "AGE"], || out.stdout.clone())?;
    ensure(rows[1][..5] == ["open", "True", "args,env", "APP_*", "1"], || out.stdout.clone())?;
    ensure(rows[2][..4] == ["plain", "True", "command,args", "0"], || out.stdout.clone())?;
    let out = plugin.run(&["templates", "-o", "name"]).await?;
    ensure(out.stdout == "jobtemplate.cellbytes.io/open\njobtemplate.cellbytes.io/plain\n", || out.stdout.clone())
}

async fn kubectl_integration(env: Arc<Env>, ns: String) -> Result<(), String> {
    let plugin = Plugin::new(&env, &ns)?;
    plugin.create_template(template(&ns, "echo", json!({}))?).await?;
    plugin.run(&["create", "echo", "one"]).await?.expect_code(0, "create")?;
    plugin.run(&["create", "echo", "other"]).await?.expect_code(0, "create")?;
    let bin_dir = tools::workspace_binary("kubectl-jobrun").parent().map(PathBuf::from).ok_or("no bin dir")?;
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let kubectl = |args: Vec<String>| {
        let mut command = tokio::process::Command::new(tools::kubectl());
        command.args(&args).env("KUBECONFIG", &plugin.kubeconfig).env("PATH", &path).kill_on_drop(true);
        async move {
            let output = tokio::time::timeout(TIMEOUT, command.output())
                .await
                .map_err(|_| "kubectl hung")?
                .map_err(|e| format!("kubectl: {e}"))?;
            Ok::<_, String>((output.status.code(), String::from_utf8_lossy(&output.stdout).into_owned()))
        }
    };
    let words = |w: &[&str]| w.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    // kubectl finds the plugin on PATH.
    let (code, stdout) = kubectl(words(&["jobrun", "-n", &ns, "get", "-o", "name"])).await?;
    ensure(code == Some(0) && stdout.contains("jobrun.cellbytes.io/one"), || {
        format!("kubectl jobrun get: {code:?} {stdout}")
    })?;
    // kubectl's completion runs kubectl_complete-jobrun.
    let (code, stdout) = kubectl(words(&["__complete", "jobrun", "-n", &ns, "describe", "o"])).await?;
    ensure(code == Some(0), || format!("kubectl __complete: {code:?}"))?;
    let candidates: Vec<&str> = stdout.lines().filter(|l| !l.starts_with(':') && !l.is_empty()).collect();
    ensure(candidates == ["one", "other"], || format!("completed {stdout:?}"))?;
    let (_, stdout) = kubectl(words(&["__complete", "jobrun", "-n", &ns, "create", ""])).await?;
    ensure(stdout.lines().next() == Some("echo"), || format!("templates completed {stdout:?}"))?;
    let (_, stdout) = kubectl(words(&["__complete", "jobrun", "wa"])).await?;
    ensure(stdout.lines().next() == Some("wait"), || format!("subcommands completed {stdout:?}"))?;
    for shell in ["bash", "zsh", "fish"] {
        let out = plugin.run(&["completion", shell]).await?;
        out.expect_code(0, "completion")?;
        ensure(out.stdout.contains("kubectl-jobrun") && out.stdout.contains("describe"), || {
            format!("{shell}: {}", &out.stdout[..out.stdout.len().min(200)])
        })?;
    }
    Ok(())
}
