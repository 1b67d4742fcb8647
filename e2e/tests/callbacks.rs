//! Tier 2 (e2e): run callbacks on a full cluster, with the real operator
//! binary (one per test, for the test's namespace) and a small HTTP
//! receiver that the test starts on 127.0.0.1 and that records every
//! request. The operator runs on the host, so it reaches the receiver.
//!
//! Network rule: these tests only ever connect, or let the operator
//! connect, to 127.0.0.0/8 and ::1. Every other range the SSRF guard
//! refuses is covered by the pure tests of `merge::guard`.

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e::drill::Ledger;
use e2e::objects::{KEEP_RUNNING_LABEL, failing_template, run, template};
use e2e::operator::{self, OperatorProcess};
use e2e::suite::{self, Env, Test};
use e2e::{ClusterKind, wait};
use futures::FutureExt;
use job_template_run::crd::{JobRun, JobRunStatus, Phase};
use job_template_run::merge::{self, LABEL_CALLBACK_TOKEN};
use job_template_run::reconciler::signature;
use k8s_openapi::api::batch::v1::{Job, JobCondition};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TIMEOUT: Duration = Duration::from_secs(90);
const TOKEN: &str = "e2e-callback-token-7f3a9c1d";
const SIGNING_KEY: &str = "e2e-signing-key";

/// The suite's retry schedule, unless a test sets its own: short, so that a
/// test can outwait every retry that could still come.
const INITIAL_DELAY_MS: &str = "500";
const MAX_DELAY_SECONDS: &str = "1";
/// Beyond a retry's delay: a reconcile and a request over loopback, on a
/// busy machine.
const SLACK: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    suite::main(ClusterKind::Full, |_| {
        vec![
            Test::new(
                "a_secret_token_callback_is_delivered_once_signed_and_the_token_is_in_no_object_or_log",
                |e, ns| delivered(e, ns).boxed(),
            ),
            Test::new("a_failed_run_delivers_status_failed_with_the_jobs_reason", |e, ns| failed(e, ns).boxed()),
            Test::new("three_503s_then_a_200_take_four_attempts_spaced_by_the_backoff", |e, ns| retried(e, ns).boxed()),
            Test::new("a_400_is_rejected_and_not_retried", |e, ns| rejected(e, ns).boxed()),
            Test::new("a_receiver_that_hangs_times_out_and_the_callback_is_retried", |e, ns| hangs(e, ns).boxed()),
            Test::new("loopback_urls_are_refused_without_a_connection_and_delivered_once_allowed", |e, ns| {
                refused(e, ns).boxed()
            }),
            Test::new("an_operator_killed_during_delivery_delivers_once_after_its_restart", |e, ns| {
                killed(e, ns).boxed()
            }),
            Test::new("a_job_removed_by_ttl_0_still_gets_its_callback_recorded_on_the_run", |e, ns| ttl(e, ns).boxed()),
            Test::new("a_missing_secret_or_key_gives_a_clear_condition_and_a_bounded_number_of_tries", |e, ns| {
                missing_secret(e, ns).boxed()
            }),
            Test::new("sigterm_during_an_attempt_lets_it_finish_and_records_it_before_the_exit", |e, ns| {
                sigterm(e, ns).boxed()
            }),
            Test::new("without_secret_rbac_a_secret_token_run_ends_token_forbidden_and_sends_nothing", |e, ns| {
                forbidden(e, ns).boxed()
            }),
            Test::new(
                "a_secret_without_the_opt_in_label_is_never_sent_and_the_run_ends_token_not_allowed_naming_the_label",
                |e, ns| not_allowed(e, ns).boxed(),
            ),
            Test::new("the_same_secret_once_labelled_is_delivered_exactly_once_with_its_bearer_token", |e, ns| {
                labelled(e, ns).boxed()
            }),
            Test::new(
                "a_run_with_a_two_second_ttl_is_deleted_with_its_job_after_its_callback_within_ten_seconds_of_its_finish",
                |e, ns| run_ttl(e, ns).boxed(),
            ),
            Test::new("a_run_cancelled_while_its_pod_runs_sends_one_callback_failed_cancelled", |e, ns| {
                cancelled(e, ns).boxed()
            }),
            Test::new(
                "forty_hanging_receivers_never_delay_the_jobs_of_runs_without_callbacks_and_each_times_out_and_retries",
                |e, ns| crowd(e, ns).boxed(),
            ),
        ]
    })
}

// ---------------------------------------------------------------- receiver

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Request {
    at: Instant,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Result<Value, String> {
        serde_json::from_str(&self.body).map_err(|e| format!("body {:?} is not JSON: {e}", self.body))
    }
}

/// How the receiver answers the n-th request; the last one repeats.
#[derive(Clone, Debug)]
enum Reply {
    Status(u16),
    /// Read the request, then answer nothing for this long.
    Hang(Duration),
    /// Answer with this code after this long.
    Slow(Duration, u16),
}

/// A small HTTP/1.1 server on 127.0.0.1 that records each request.
struct Receiver {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(replies: Vec<Reply>) -> Result<Self, String> {
        Self::start_on("127.0.0.1:0", replies).await
    }

    async fn start_on(address: &str, replies: Vec<Reply>) -> Result<Self, String> {
        let listener = TcpListener::bind(address).await.map_err(|e| format!("cannot listen on {address}: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (recorded, replies) = (recorded.clone(), replies.clone());
                tokio::spawn(serve(stream, recorded, replies));
            }
        });
        Ok(Self { port, requests, task })
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: tokio::net::TcpStream, recorded: Arc<Mutex<Vec<Request>>>, replies: Vec<Reply>) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next().and_then(|l| l.split(' ').nth(1)).unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())).collect();
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let request = Request { at: Instant::now(), path, headers, body: String::from_utf8_lossy(&body).into_owned() };
    let index = {
        let Ok(mut all) = recorded.lock() else { return };
        all.push(request);
        all.len() - 1
    };
    let reply = replies.get(index).or(replies.last()).cloned().unwrap_or(Reply::Status(200));
    let reply = match reply {
        Reply::Slow(delay, code) => {
            tokio::time::sleep(delay).await;
            Reply::Status(code)
        }
        other => other,
    };
    match reply {
        Reply::Slow(..) => {}
        Reply::Status(code) => {
            let answer = format!("HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
        Reply::Hang(duration) => tokio::time::sleep(duration).await,
    }
}

// ---------------------------------------------------------------- operator

/// This test's operator for its namespace, its log captured in a file.
struct Operator {
    process: OperatorProcess,
    log: PathBuf,
    /// Its `--callback-max-delay-seconds`: no retry is ever further away.
    max_delay: Duration,
    _dir: tempfile::TempDir,
}

impl Operator {
    fn start(env: &Env, namespace: &str, extra: &[&str]) -> Result<Self, String> {
        Self::start_as(&env.cluster.kubeconfig_path, namespace, extra)
    }

    /// The operator with the credentials of `kubeconfig`.
    fn start_as(kubeconfig: &std::path::Path, namespace: &str, extra: &[&str]) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let log = dir.path().join("operator.log");
        let key = dir.path().join("signing-key");
        std::fs::write(&key, SIGNING_KEY).map_err(|e| e.to_string())?;
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        // The suite's retry schedule, where the test does not set its own.
        let flag = |name: &str| extra.iter().position(|a| *a == name).and_then(|i| extra.get(i + 1)).copied();
        let mut schedule = Vec::new();
        for (name, default) in
            [("--callback-initial-delay-ms", INITIAL_DELAY_MS), ("--callback-max-delay-seconds", MAX_DELAY_SECONDS)]
        {
            if flag(name).is_none() {
                schedule.extend([name, default]);
            }
        }
        let max_delay = flag("--callback-max-delay-seconds").unwrap_or(MAX_DELAY_SECONDS);
        let max_delay = Duration::from_secs(max_delay.parse().map_err(|e| format!("max delay {max_delay:?}: {e}"))?);
        let mut command = Command::new(operator::binary());
        command
            .arg("controller")
            .args(["--listen", &format!("127.0.0.1:{port}"), "--namespace", namespace])
            .args(["--log-level", "debug,kube=info,tower=info,hyper=info,hyper_util=info,rustls=info,h2=info"])
            .arg(format!("--callback-signing-key-file={}", key.display()))
            .args(schedule)
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .stdout(Stdio::null())
            .stderr(file);
        let mut process = OperatorProcess::spawn(command, format!("http://127.0.0.1:{port}"))?;
        tokio::task::block_in_place(|| process.wait_ready(Duration::from_secs(60)))
            .map_err(|e| format!("{e}\n{}", std::fs::read_to_string(&log).unwrap_or_default()))?;
        Ok(Self { process, log, max_delay, _dir: dir })
    }

    /// Longer than any retry of this operator can be away: its longest
    /// delay, plus the second a due time is rounded up to, plus [`SLACK`].
    /// A request that has not come after this never comes from a retry.
    fn outwait(&self) -> Duration {
        self.max_delay + Duration::from_secs(1) + SLACK
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn metric(&self, series: &str) -> Result<f64, String> {
        self.process.metric(series)
    }
}

// ---------------------------------------------------------------- helpers

struct Ns {
    client: Client,
    name: String,
}

impl Ns {
    fn runs(&self) -> Api<JobRun> {
        Api::namespaced(self.client.clone(), &self.name)
    }

    async fn create<K>(&self, object: &K) -> Result<(), String>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::Serialize
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), &self.name);
        api.create(&PostParams::default(), object).await.map(|_| ()).map_err(|e| format!("create: {e}"))
    }

    async fn echo_template(&self, spec: Value) -> Result<(), String> {
        self.create(&template(&self.name, "echo", spec)?).await
    }

    async fn callback_run(&self, name: &str, template: &str, callback: Value) -> Result<(), String> {
        let mut value = serde_json::to_value(run(&self.name, name, template, &[])?).map_err(|e| e.to_string())?;
        if let (Some(spec), Value::Object(fields)) = (value["spec"].as_object_mut(), callback) {
            spec.extend(fields);
        }
        let run: JobRun = serde_json::from_value(value).map_err(|e| e.to_string())?;
        self.create(&run).await
    }

    /// A Secret whose owner lets it be sent as a callback token (labelled
    /// [`LABEL_CALLBACK_TOKEN`]`=true`).
    async fn secret(&self, name: &str, key: &str, value: &str) -> Result<(), String> {
        self.secret_labelled(name, key, value, json!({ LABEL_CALLBACK_TOKEN: "true" })).await
    }

    /// A Secret with exactly `labels`.
    async fn secret_labelled(&self, name: &str, key: &str, value: &str, labels: Value) -> Result<(), String> {
        let secret: Secret = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": name, "namespace": self.name, "labels": labels },
            "stringData": { key: value }
        }))
        .map_err(|e| e.to_string())?;
        self.create(&secret).await
    }

    async fn status(&self, name: &str) -> Result<JobRunStatus, String> {
        Ok(self.runs().get(name).await.map_err(|e| e.to_string())?.status.unwrap_or_default())
    }

    /// Waits until the run's `CallbackDelivered` condition has `reason`;
    /// fails at once when it has ended with another.
    async fn wait_callback(&self, name: &str, reason: &str) -> Result<JobRunStatus, String> {
        wait::until(TIMEOUT, &format!("run {name}'s callback to be {reason}"), || async {
            let status = self.status(name).await?;
            match callback_condition(&status) {
                Some(c) if c.reason.as_deref() == Some(reason) => Ok(Ok(status)),
                Some(c) if c.reason.as_deref().is_some_and(|r| ENDED.contains(&r)) => {
                    Ok(Err(format!("run {name}'s callback ended {:?}, not {reason}: {c:?}", c.reason)))
                }
                other => Err(format!("CallbackDelivered is {other:?}")),
            }
        })
        .await?
    }
}

/// The reasons of `CallbackDelivered` that end delivery: it never changes again.
const ENDED: [&str; 6] = ["Delivered", "Rejected", "Refused", "TokenForbidden", "TokenNotAllowed", "GaveUp"];

fn callback_condition(status: &JobRunStatus) -> Option<JobCondition> {
    status.conditions.iter().flatten().find(|c| c.type_ == "CallbackDelivered").cloned()
}

fn attempts(status: &JobRunStatus) -> Option<i32> {
    status.callback.as_ref().and_then(|c| c.attempts)
}

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

/// Checks that the receiver got exactly `count` requests, and still has
/// after `quiet` (an operator's [`Operator::outwait`]: longer than any of
/// its retries can be away), so a duplicate sent late is seen.
async fn stays_at(receiver: &Receiver, count: usize, quiet: Duration) -> Result<(), String> {
    let got = receiver.requests().len();
    ensure(got == count, || format!("the receiver got {got} requests, expected {count}"))?;
    tokio::time::sleep(quiet).await;
    let got = receiver.requests().len();
    ensure(got == count, || format!("the receiver got {got} requests within {quiet:?}, expected {count}"))
}

fn report(case: &str, status: &JobRunStatus) {
    let callback = status.callback.clone().unwrap_or_default();
    let latency = match (&callback.delivered_time, finished_at(status)) {
        (Some(delivered), Some(finished)) => format!("{}s", finished.duration_until(delivered.0).as_secs_f64()),
        _ => "-".into(),
    };
    eprintln!("callbacks: {case}: attempts {:?}, finish to 2xx {latency}", callback.attempts);
}

fn finished_at(status: &JobRunStatus) -> Option<k8s_openapi::jiff::Timestamp> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Finished")
        .and_then(|c| c.last_transition_time.clone())
        .map(|t| t.0)
}

// ---------------------------------------------------------------- cases

/// Case 1.
async fn delivered(env: Arc<Env>, name: String) -> Result<(), String> {
    let operator = Operator::start(&env, &name, &["--callback-allow", "127.0.0.1"])?;
    let ns = Ns { client: env.client.clone(), name };
    let receiver = Receiver::start(vec![Reply::Status(200)]).await?;
    ns.secret("hook-token", "token", TOKEN).await?;
    ns.echo_template(json!({})).await?;
    let callback = json!({
        "callbackUrl": receiver.url("/hooks/done"),
        "callbackTokenSecretRef": { "name": "hook-token", "key": "token" },
    });
    ns.callback_run("hello", "echo", callback).await?;
    let status = ns.wait_callback("hello", "Delivered").await?;
    report("1 success with a Secret token", &status);
    ensure(status.phase == Some(Phase::Succeeded), || format!("phase {:?}", status.phase))?;
    let recorded = status.callback.clone().unwrap_or_default();
    ensure(recorded.attempts == Some(1) && recorded.last_status_code == Some(200), || format!("{recorded:?}"))?;
    ensure(recorded.delivered_time.is_some() && recorded.last_attempt_time.is_some(), || format!("{recorded:?}"))?;
    stays_at(&receiver, 1, operator.outwait()).await?;
    let request = receiver.requests().remove(0);
    ensure(request.path == "/hooks/done", || format!("path {}", request.path))?;
    ensure(request.header("authorization") == Some(&format!("Bearer {TOKEN}")), || "no bearer token".into())?;
    ensure(request.header("content-type") == Some("application/json"), || format!("{:?}", request.headers))?;
    let uid = ns.runs().get("hello").await.map_err(|e| e.to_string())?.metadata.uid.unwrap_or_default();
    ensure(request.header("idempotency-key") == Some(uid.as_str()), || format!("{:?}", request.headers))?;
    let expected = signature(SIGNING_KEY.as_bytes(), request.body.as_bytes());
    ensure(request.header("x-signature-256") == Some(expected.as_str()), || format!("{:?}", request.headers))?;
    let body = request.json()?;
    for (field, value) in [
        ("name", json!("hello")),
        ("namespace", json!(ns.name)),
        ("uid", json!(uid)),
        ("status", json!("Succeeded")),
        ("jobName", json!("hello")),
    ] {
        ensure(body[field] == value, || format!("body {field} is {}, expected {value}", body[field]))?;
    }
    ensure(body["completionTime"].is_string() && body["startTime"].is_string(), || format!("body {body}"))?;
    // The Job's finalizer is let go once delivered.
    wait::until(TIMEOUT, "the Job's finalizer to be released", || async {
        let job: Job = Api::namespaced(ns.client.clone(), &ns.name).get("hello").await.map_err(|e| e.to_string())?;
        let held = job.metadata.finalizers.unwrap_or_default();
        if held.is_empty() { Ok(()) } else { Err(format!("finalizers {held:?}")) }
    })
    .await?;
    // The token is in no Job, run or Event, and not in the operator's log.
    let mut everything = String::new();
    let jobs: Api<Job> = Api::namespaced(ns.client.clone(), &ns.name);
    let events: Api<Event> = Api::namespaced(ns.client.clone(), &ns.name);
    let lp = ListParams::default();
    everything += &serde_json::to_string(&jobs.list(&lp).await.map_err(|e| e.to_string())?.items).unwrap_or_default();
    everything +=
        &serde_json::to_string(&ns.runs().list(&lp).await.map_err(|e| e.to_string())?.items).unwrap_or_default();
    let events = events.list(&lp).await.map_err(|e| e.to_string())?.items;
    everything += &serde_json::to_string(&events).unwrap_or_default();
    everything += &operator.log();
    ensure(!everything.contains(TOKEN), || "the token appears in an object or the operator's log".into())?;
    ensure(events.iter().any(|e| e.reason.as_deref() == Some("CallbackDelivered")), || {
        "no CallbackDelivered event".into()
    })?;
    let two = operator.metric("job_template_run_callback_attempts_total{result=\"2xx\"}")?;
    let outcome = operator.metric("job_template_run_callback_outcomes_total{outcome=\"Delivered\"}")?;
    let latency = operator.metric("job_template_run_callback_delivery_latency_seconds_count")?;
    let seconds = operator.metric("job_template_run_callback_delivery_latency_seconds_sum")?;
    eprintln!("callbacks: 1: delivery latency from the run's Finished time (whole seconds) to the 2xx: {seconds:.3}s");
    ensure(two == 1.0 && outcome == 1.0 && latency == 1.0, || {
        format!("metrics: 2xx {two}, Delivered {outcome}, latency {latency}")
    })
}

/// Case 2.
async fn failed(env: Arc<Env>, name: String) -> Result<(), String> {
    let operator = Operator::start(&env, &name, &["--callback-allow", "127.0.0.0/8"])?;
    let ns = Ns { client: env.client.clone(), name };
    let receiver = Receiver::start(vec![Reply::Status(204)]).await?;
    ns.create(&failing_template(&ns.name, "broken")?).await?;
    ns.callback_run("doomed", "broken", json!({ "callbackUrl": receiver.url("/") })).await?;
    let status = ns.wait_callback("doomed", "Delivered").await?;
    report("2 failure path", &status);
    let body = receiver.requests().first().ok_or("no request")?.json()?;
    let job_failed =
        status.conditions.iter().flatten().find(|c| c.type_ == "Failed" && c.status == "True").ok_or("no Failed")?;
    ensure(body["status"] == "Failed", || format!("body {body}"))?;
    ensure(body["reason"] == json!(job_failed.reason) && body["reason"].is_string(), || {
        format!("body {body}, condition {job_failed:?}")
    })?;
    ensure(body["message"] == json!(job_failed.message), || format!("body {body}"))?;
    stays_at(&receiver, 1, operator.outwait()).await
}

/// Case 3.
async fn retried(env: Arc<Env>, name: String) -> Result<(), String> {
    // 1 s doubling; a cap above the third delay (4 s and its jitter).
    let args =
        ["--callback-allow", "127.0.0.1", "--callback-initial-delay-ms", "1000", "--callback-max-delay-seconds", "5"];
    let operator = Operator::start(&env, &name, &args)?;
    let ns = Ns { client: env.client.clone(), name };
    let receiver =
        Receiver::start(vec![Reply::Status(503), Reply::Status(503), Reply::Status(503), Reply::Status(200)]).await?;
    ns.echo_template(json!({})).await?;
    ns.callback_run("flaky", "echo", json!({ "callbackUrl": receiver.url("/") })).await?;
    let status = ns.wait_callback("flaky", "Delivered").await?;
    report("3 three 503s then 200", &status);
    ensure(attempts(&status) == Some(4), || format!("attempts {:?}", attempts(&status)))?;
    stays_at(&receiver, 4, operator.outwait()).await?;
    let times: Vec<Instant> = receiver.requests().iter().map(|r| r.at).collect();
    let gaps: Vec<f64> = times.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
    eprintln!("callbacks: 3: gaps between attempts {gaps:.2?}");
    // 1 s doubling, plus up to a quarter of jitter, rounded up to the second.
    for (gap, base) in gaps.iter().zip([1.0, 2.0, 4.0]) {
        ensure(*gap >= base * 0.9 && *gap <= base * 1.25 + 1.5, || format!("gaps {gaps:?} do not follow 1, 2, 4 s"))?;
    }
    let keys: Vec<Option<String>> =
        receiver.requests().iter().map(|r| r.header("idempotency-key").map(str::to_owned)).collect();
    ensure(keys.windows(2).all(|w| w[0] == w[1] && w[0].is_some()), || format!("idempotency keys {keys:?}"))?;
    let fives = operator.metric("job_template_run_callback_attempts_total{result=\"5xx\"}")?;
    ensure(fives == 3.0, || format!("5xx attempts {fives}"))
}

/// Case 4.
async fn rejected(env: Arc<Env>, name: String) -> Result<(), String> {
    let operator = Operator::start(&env, &name, &["--callback-allow", "127.0.0.1"])?;
    let ns = Ns { client: env.client.clone(), name };
    let receiver = Receiver::start(vec![Reply::Status(400)]).await?;
    ns.echo_template(json!({})).await?;
    ns.callback_run("refusing", "echo", json!({ "callbackUrl": receiver.url("/") })).await?;
    let status = ns.wait_callback("refusing", "Rejected").await?;
    report("4 a 400", &status);
    ensure(status.callback.as_ref().and_then(|c| c.last_status_code) == Some(400), || {
        format!("{:?}", status.callback)
    })?;
    stays_at(&receiver, 1, operator.outwait()).await
}

/// Case 5.
async fn hangs(env: Arc<Env>, name: String) -> Result<(), String> {
    let args =
        ["--callback-allow", "127.0.0.1", "--callback-timeout-seconds", "2", "--callback-initial-delay-ms", "500"];
    let _operator = Operator::start(&env, &name, &args)?;
    let ns = Ns { client: env.client.clone(), name };
    let receiver = Receiver::start(vec![Reply::Hang(Duration::from_secs(30)), Reply::Status(200)]).await?;
    ns.echo_template(json!({})).await?;
    ns.callback_run("patient", "echo", json!({ "callbackUrl": receiver.url("/") })).await?;
    let status = ns.wait_callback("patient", "Delivered").await?;
    report("5 a receiver that hangs", &status);
    ensure(attempts(&status) == Some(2), || format!("attempts {:?}", attempts(&status)))?;
    let requests = receiver.requests();
    let gap = (requests[1].at - requests[0].at).as_secs_f64();
    ensure((2.0..8.0).contains(&gap), || format!("the retry came {gap:.2}s after the hanging attempt (timeout 2 s)"))
}

/// Case 6.
async fn refused(env: Arc<Env>, name: String) -> Result<(), String> {
    let ns = Ns { client: env.client.clone(), name: name.clone() };
    let receiver = Receiver::start(vec![Reply::Status(200)]).await?;
    // A receiver on ::1 too, where the machine has IPv6 loopback.
    let v6 = Receiver::start_on("[::1]:0", vec![Reply::Status(200)]).await.ok();
    let v6_port = v6.as_ref().map_or(receiver.port, |r| r.port);
    ns.echo_template(json!({})).await?;
    let urls = [
        ("loopback-v4", format!("http://127.0.0.1:{}/", receiver.port)),
        ("loopback-v6", format!("http://[::1]:{v6_port}/")),
        ("loopback-mapped", format!("http://[::ffff:127.0.0.1]:{}/", receiver.port)),
        ("loopback-name", format!("http://localhost:{}/", receiver.port)),
    ];
    {
        let operator = Operator::start(&env, &name, &[])?;
        for (run, url) in &urls {
            ns.callback_run(run, "echo", json!({ "callbackUrl": url })).await?;
        }
        for (run, _) in &urls {
            let status = ns.wait_callback(run, "Refused").await?;
            let message = callback_condition(&status).and_then(|c| c.message).unwrap_or_default();
            ensure(message.contains("loopback"), || format!("{run}: message {message:?}"))?;
            ensure(attempts(&status) == Some(0), || format!("{run}: attempts {:?}", attempts(&status)))?;
        }
        let refused = operator.metric("job_template_run_callback_attempts_total{result=\"refused\"}")?;
        ensure(refused == 4.0, || format!("refused attempts {refused}"))?;
    }
    let seen = receiver.requests().len() + v6.as_ref().map_or(0, |r| r.requests().len());
    ensure(seen == 0, || format!("the receivers saw {seen} requests"))?;
    // The same URL, on the allow-list, is delivered.
    let operator = Operator::start(&env, &name, &["--callback-allow", "127.0.0.1,localhost"])?;
    ns.callback_run("allowed", "echo", json!({ "callbackUrl": urls[0].1 })).await?;
    ns.callback_run("allowed-name", "echo", json!({ "callbackUrl": format!("http://localhost:{}/", receiver.port) }))
        .await?;
    let status = ns.wait_callback("allowed", "Delivered").await?;
    report("6 the allow-listed loopback URL", &status);
    ns.wait_callback("allowed-name", "Delivered").await?;
    // This operator may reach the receiver: a retry of a refused run would
    // arrive now, and count.
    stays_at(&receiver, 2, operator.outwait()).await?;
    // The refused runs stay refused.
    for (run, _) in &urls {
        ns.wait_callback(run, "Refused").await?;
    }
    Ok(())
}

/// Case 7.
async fn killed(env: Arc<Env>, name: String) -> Result<(), String> {
    let args = ["--callback-allow", "127.0.0.1"];
    let ns = Ns { client: env.client.clone(), name: name.clone() };
    let receiver = Receiver::start(vec![Reply::Hang(Duration::from_secs(60)), Reply::Status(200)]).await?;
    ns.echo_template(json!({})).await?;
    {
        let _operator = Operator::start(&env, &name, &args)?;
        ns.callback_run("interrupted", "echo", json!({ "callbackUrl": receiver.url("/") })).await?;
        wait::until(TIMEOUT, "the first attempt to reach the receiver", || async {
            if receiver.requests().is_empty() { Err("no request yet".to_owned()) } else { Ok(()) }
        })
        .await?;
        // Dropping the operator SIGKILLs it, mid-request.
    }
    let status = ns.status("interrupted").await?;
    ensure(status.phase == Some(Phase::Succeeded), || format!("phase {:?}", status.phase))?;
    ensure(callback_condition(&status).is_some_and(|c| c.reason.as_deref() == Some("Pending")), || {
        format!("before the restart: {:?}", callback_condition(&status))
    })?;
    let killed_at = Instant::now();
    let operator = Operator::start(&env, &name, &args)?;
    let status = ns.wait_callback("interrupted", "Delivered").await?;
    report("7 SIGKILL during delivery", &status);
    eprintln!("callbacks: 7: delivered {:.2}s after the restart began", killed_at.elapsed().as_secs_f64());
    stays_at(&receiver, 2, operator.outwait()).await?;
    let keys: Vec<Option<String>> =
        receiver.requests().iter().map(|r| r.header("idempotency-key").map(str::to_owned)).collect();
    ensure(keys[0] == keys[1], || format!("idempotency keys {keys:?}"))
}

/// Case 8.
async fn ttl(env: Arc<Env>, name: String) -> Result<(), String> {
    let operator = Operator::start(&env, &name, &["--callback-allow", "127.0.0.1"])?;
    let ns = Ns { client: env.client.clone(), name };
    let receiver = Receiver::start(vec![Reply::Status(200)]).await?;
    ns.echo_template(json!({ "ttlSecondsAfterFinished": 0 })).await?;
    ns.callback_run("ephemeral", "echo", json!({ "callbackUrl": receiver.url("/") })).await?;
    ns.wait_callback("ephemeral", "Delivered").await?;
    let jobs: Api<Job> = Api::namespaced(ns.client.clone(), &ns.name);
    wait::until(TIMEOUT, "the TTL controller to remove the Job", || async {
        match jobs.get_opt("ephemeral").await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(_) => Err("still there".into()),
        }
    })
    .await?;
    let status = ns.status("ephemeral").await?;
    report("8 TTL 0", &status);
    ensure(callback_condition(&status).is_some_and(|c| c.status == "True"), || {
        format!("{:?}", callback_condition(&status))
    })?;
    ensure(status.callback.as_ref().is_some_and(|c| c.delivered_time.is_some()), || format!("{:?}", status.callback))?;
    stays_at(&receiver, 1, operator.outwait()).await
}

/// Case 9.
async fn missing_secret(env: Arc<Env>, name: String) -> Result<(), String> {
    let args = ["--callback-allow", "127.0.0.1", "--callback-max-attempts", "3"];
    let operator = Operator::start(&env, &name, &args)?;
    let ns = Ns { client: env.client.clone(), name };
    let receiver = Receiver::start(vec![Reply::Status(200)]).await?;
    ns.echo_template(json!({})).await?;
    ns.secret("has-other-key", "other", "x").await?;
    let no_secret =
        json!({ "callbackUrl": receiver.url("/"), "callbackTokenSecretRef": { "name": "absent", "key": "token" } });
    let no_key = json!({ "callbackUrl": receiver.url("/"), "callbackTokenSecretRef": { "name": "has-other-key", "key": "token" } });
    ns.callback_run("no-secret", "echo", no_secret).await?;
    ns.callback_run("no-key", "echo", no_key).await?;
    for (run, expect) in [("no-secret", "not found in the JobRun's namespace"), ("no-key", "has no key \"token\"")] {
        let status = ns.wait_callback(run, "GaveUp").await?;
        report(&format!("9 {run}"), &status);
        let message = callback_condition(&status).and_then(|c| c.message).unwrap_or_default();
        ensure(message.contains(expect), || format!("{run}: message {message:?}"))?;
        ensure(attempts(&status) == Some(3), || format!("{run}: attempts {:?}", attempts(&status)))?;
    }
    // While it lasted, a Warning said why, and another that it gave up
    // (recorded just after the status that says so: waited for).
    let events: Api<Event> = Api::namespaced(ns.client.clone(), &ns.name);
    for run in ["no-secret", "no-key"] {
        wait::until(
            Duration::from_secs(15),
            &format!("{run}'s CallbackTokenUnavailable and CallbackGaveUp Events"),
            || async {
                let listed = events.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
                let reasons: Vec<&str> = listed
                    .iter()
                    .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(run))
                    .filter_map(|e| e.reason.as_deref())
                    .collect();
                if reasons.contains(&"CallbackTokenUnavailable") && reasons.contains(&"CallbackGaveUp") {
                    Ok(())
                } else {
                    Err(format!("{run}: events {reasons:?}"))
                }
            },
        )
        .await?;
    }
    stays_at(&receiver, 0, operator.outwait()).await?;
    // No try after giving up, either.
    let tries = operator.metric("job_template_run_callback_attempts_total{result=\"token\"}")?;
    ensure(tries == 6.0, || format!("token attempts {tries}"))
}

/// Shutdown: an attempt in flight at SIGTERM completes and is recorded.
async fn sigterm(env: Arc<Env>, name: String) -> Result<(), String> {
    let operator = Operator::start(&env, &name, &["--callback-allow", "127.0.0.1"])?;
    let ns = Ns { client: env.client.clone(), name };
    let receiver = Receiver::start(vec![Reply::Slow(Duration::from_secs(3), 200)]).await?;
    ns.echo_template(json!({})).await?;
    ns.callback_run("draining", "echo", json!({ "callbackUrl": receiver.url("/") })).await?;
    wait::until(TIMEOUT, "the attempt to reach the receiver", || async {
        if receiver.requests().is_empty() { Err("no request yet".to_owned()) } else { Ok(()) }
    })
    .await?;
    let Operator { process, _dir, .. } = operator;
    let exit = tokio::task::block_in_place(|| process.terminate(Duration::from_secs(20)))?;
    ensure(exit.success(), || format!("exit status after SIGTERM: {exit}"))?;
    let status = ns.status("draining").await?;
    report("shutdown mid-attempt", &status);
    ensure(callback_condition(&status).is_some_and(|c| c.reason.as_deref() == Some("Delivered")), || {
        format!("after the exit: {:?}", callback_condition(&status))
    })?;
    // The operator has exited: nothing more can come, so no wait.
    let got = receiver.requests().len();
    ensure(got == 1, || format!("the receiver got {got} requests, expected the one in flight at SIGTERM"))
}

/// RBAC: an operator whose identity has exactly the chart's rules without
/// `callbacks.secretTokens` (a Role in the namespace, no Secret `get`).
async fn forbidden(env: Arc<Env>, name: String) -> Result<(), String> {
    let ns = Ns { client: env.client.clone(), name: name.clone() };
    let rules: Vec<Value> = job_template_run::reconciler::PERMISSIONS
        .iter()
        .map(|p| json!({ "apiGroups": [p.api_group], "resources": [p.resource], "verbs": p.verbs }))
        .collect();
    let role: k8s_openapi::api::rbac::v1::Role =
        serde_json::from_value(json!({ "metadata": { "name": "operator", "namespace": name }, "rules": rules }))
            .map_err(|e| e.to_string())?;
    ns.create(&role).await?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = e2e::identity::operator_kubeconfig(
        &env.client,
        &env.cluster.kubeconfig_path,
        &name,
        dir.path().join("kubeconfig"),
    )
    .await?;
    let operator = Operator::start_as(&path, &name, &["--callback-allow", "127.0.0.1"])?;
    let receiver = Receiver::start(vec![Reply::Status(200)]).await?;
    ns.secret("hook-token", "token", TOKEN).await?;
    ns.echo_template(json!({})).await?;
    let callback = json!({
        "callbackUrl": receiver.url("/"),
        "callbackTokenSecretRef": { "name": "hook-token", "key": "token" },
    });
    ns.callback_run("no-rbac", "echo", callback).await?;
    let status = ns.wait_callback("no-rbac", "TokenForbidden").await?;
    report("no Secret RBAC", &status);
    let message = callback_condition(&status).and_then(|c| c.message).unwrap_or_default();
    ensure(message.contains("callbacks.secretTokens"), || format!("message {message:?}"))?;
    ensure(attempts(&status) == Some(0), || format!("attempts {:?}", attempts(&status)))?;
    stays_at(&receiver, 0, operator.outwait()).await?;
    let tries = operator.metric("job_template_run_callback_attempts_total{result=\"token\"}")?;
    ensure(tries == 1.0, || format!("token attempts {tries}: a retry loop"))
}

/// Opt-in: a Secret without `cellbytes.io/callback-token: "true"` (none, or
/// another value) is never sent; its runs end `TokenNotAllowed`, unretried.
async fn not_allowed(env: Arc<Env>, name: String) -> Result<(), String> {
    let operator = Operator::start(&env, &name, &["--callback-allow", "127.0.0.1"])?;
    let ns = Ns { client: env.client.clone(), name };
    let receiver = Receiver::start(vec![Reply::Status(200)]).await?;
    ns.secret_labelled("unlabelled", "token", TOKEN, json!({})).await?;
    ns.secret_labelled("labelled-false", "token", TOKEN, json!({ LABEL_CALLBACK_TOKEN: "false" })).await?;
    ns.echo_template(json!({})).await?;
    let runs = ["unlabelled", "labelled-false"];
    for run in runs {
        let callback =
            json!({ "callbackUrl": receiver.url("/"), "callbackTokenSecretRef": { "name": run, "key": "token" } });
        ns.callback_run(run, "echo", callback).await?;
    }
    for run in runs {
        let status = ns.wait_callback(run, "TokenNotAllowed").await?;
        report(&format!("opt-in: {run}"), &status);
        let condition = callback_condition(&status).ok_or("no CallbackDelivered")?;
        let message = condition.message.clone().unwrap_or_default();
        ensure(condition.status == "False", || format!("{run}: {condition:?}"))?;
        ensure(message.contains(LABEL_CALLBACK_TOKEN) && message.contains(run), || {
            format!("{run}: the message does not name the label {LABEL_CALLBACK_TOKEN} and the Secret: {message:?}")
        })?;
        ensure(attempts(&status) == Some(0), || format!("{run}: attempts {:?}", attempts(&status)))?;
        let next = status.callback.as_ref().and_then(|c| c.next_attempt_time.clone());
        ensure(next.is_none(), || format!("{run}: a next attempt is planned at {next:?}"))?;
    }
    // Longer than any retry could be away: still nothing, and no other try.
    stays_at(&receiver, 0, operator.outwait()).await?;
    let tries = operator.metric("job_template_run_callback_attempts_total{result=\"token\"}")?;
    ensure(tries == 2.0, || format!("token attempts {tries}, expected one per run: a retry loop"))?;
    for run in runs {
        ns.wait_callback(run, "TokenNotAllowed").await?;
    }
    // The Secret's value went nowhere: no run, Event or log line has it.
    let events: Api<Event> = Api::namespaced(ns.client.clone(), &ns.name);
    let lp = ListParams::default();
    let mut everything =
        serde_json::to_string(&ns.runs().list(&lp).await.map_err(|e| e.to_string())?.items).unwrap_or_default();
    everything += &serde_json::to_string(&events.list(&lp).await.map_err(|e| e.to_string())?.items).unwrap_or_default();
    everything += &operator.log();
    ensure(!everything.contains(TOKEN), || "the unlabelled Secret's token appears in a run, an Event or the log".into())
}

/// Opt-in: the same Secret, once its owner labels it, is sent; the run that
/// met it unlabelled stays `TokenNotAllowed` and is not sent again.
async fn labelled(env: Arc<Env>, name: String) -> Result<(), String> {
    let operator = Operator::start(&env, &name, &["--callback-allow", "127.0.0.1"])?;
    let ns = Ns { client: env.client.clone(), name };
    let receiver = Receiver::start(vec![Reply::Status(200)]).await?;
    ns.secret_labelled("hook-token", "token", TOKEN, json!({})).await?;
    ns.echo_template(json!({})).await?;
    let callback = json!({
        "callbackUrl": receiver.url("/hooks/done"),
        "callbackTokenSecretRef": { "name": "hook-token", "key": "token" },
    });
    ns.callback_run("before-the-label", "echo", callback.clone()).await?;
    ns.wait_callback("before-the-label", "TokenNotAllowed").await?;
    stays_at(&receiver, 0, Duration::ZERO).await?;
    let secrets: Api<Secret> = Api::namespaced(ns.client.clone(), &ns.name);
    let label = json!({ "metadata": { "labels": { LABEL_CALLBACK_TOKEN: "true" } } });
    secrets
        .patch("hook-token", &PatchParams::default(), &Patch::Merge(&label))
        .await
        .map_err(|e| format!("label the Secret: {e}"))?;
    ns.callback_run("after-the-label", "echo", callback).await?;
    let status = ns.wait_callback("after-the-label", "Delivered").await?;
    report("opt-in: the labelled Secret", &status);
    ensure(attempts(&status) == Some(1), || format!("attempts {:?}", attempts(&status)))?;
    // Exactly one delivery: the labelled run's, not a late one of the other.
    stays_at(&receiver, 1, operator.outwait()).await?;
    let request = receiver.requests().remove(0);
    let uid = ns.runs().get("after-the-label").await.map_err(|e| e.to_string())?.metadata.uid.unwrap_or_default();
    ensure(request.header("idempotency-key") == Some(uid.as_str()), || {
        format!("the delivery is not the labelled run's (its uid {uid}): {:?}", request.headers)
    })?;
    ensure(request.header("authorization") == Some(&format!("Bearer {TOKEN}")), || {
        let present = request.header("authorization").is_some();
        format!("no bearer token of the Secret (an Authorization header is present: {present})")
    })?;
    ensure(request.json()?["name"] == "after-the-label", || format!("body {}", request.body))?;
    let before = ns.wait_callback("before-the-label", "TokenNotAllowed").await?;
    ensure(attempts(&before) == Some(0), || format!("before-the-label: attempts {:?}", attempts(&before)))
}

/// Creates `count` runs `<prefix>-<i>` without a callback at once and
/// returns, for each, the time from its create until its Job was seen.
async fn job_latencies(ns: &Ns, ledger: &Ledger, prefix: &str, count: usize) -> Result<Vec<Duration>, String> {
    let names: Vec<String> = (0..count).map(|i| format!("{prefix}-{i}")).collect();
    let mut created = Vec::new();
    for name in &names {
        ns.create(&run(&ns.name, name, "echo", &[])?).await?;
        created.push(Instant::now());
    }
    let mut seen: Vec<Option<Duration>> = vec![None; count];
    wait::until(TIMEOUT, &format!("the Jobs of the {count} {prefix} runs"), || {
        let uids = ledger.job_uids();
        for (i, name) in names.iter().enumerate() {
            if seen[i].is_none() && uids.contains_key(name) {
                seen[i] = Some(created[i].elapsed());
            }
        }
        let left = seen.iter().filter(|s| s.is_none()).count();
        async move { if left == 0 { Ok(()) } else { Err(format!("{left} without a Job")) } }
    })
    .await?;
    Ok(seen.into_iter().flatten().collect())
}

/// Case 14: callbacks are made beside the reconciles. With 8 reconciles at
/// once and 40 finished runs whose receiver hangs past the timeout (each
/// attempt holds a slot of the delivery worker until then), 10 runs
/// without callbacks get their Jobs as fast as with no receiver at all.
async fn crowd(env: Arc<Env>, name: String) -> Result<(), String> {
    let timeout = 3;
    let args = ["--concurrency", "8", "--callback-allow", "127.0.0.1", "--callback-timeout-seconds", "3"];
    let operator = Operator::start(&env, &name, &args)?;
    let ns = Ns { client: env.client.clone(), name: name.clone() };
    let ledger = Ledger::start(&env.client, &name);
    let receiver = Receiver::start(vec![Reply::Hang(Duration::from_secs(120))]).await?;
    ns.echo_template(json!({})).await?;
    let quiet = job_latencies(&ns, &ledger, "quiet", 10).await?;

    let hanging: Vec<String> = (0..40).map(|i| format!("hang-{i}")).collect();
    for run in &hanging {
        ns.callback_run(run, "echo", json!({ "callbackUrl": receiver.url("/") })).await?;
    }
    // The worker's slots (16) all hold a hanging attempt: more than the 8
    // reconciles that, made inline, the attempts would hold.
    wait::until(TIMEOUT, "16 hanging callback attempts at once", || async {
        let held = receiver.requests().len();
        if held >= 16 { Ok(()) } else { Err(format!("{held} attempts reached the receiver")) }
    })
    .await?;
    let busy = job_latencies(&ns, &ledger, "busy", 10).await?;
    let in_flight = receiver.requests().len();

    let slowest = |latencies: &[Duration]| latencies.iter().max().copied().unwrap_or_default();
    let (quiet_max, busy_max) = (slowest(&quiet), slowest(&busy));
    // The same bound for both: what a run without a callback waits for its
    // Job on a quiet operator, plus a second of a busy 2-core machine.
    let bound = quiet_max + Duration::from_secs(1);
    eprintln!(
        "callbacks: 14 hanging receivers: create to Job, slowest of 10: {:.3}s quiet, {:.3}s with {in_flight} hanging \
         attempts made (bound {:.3}s; concurrency 8)",
        quiet_max.as_secs_f64(),
        busy_max.as_secs_f64(),
        bound.as_secs_f64()
    );
    ensure(busy_max <= bound, || {
        format!(
            "a run without a callback waited {busy_max:?} for its Job beside hanging receivers, {quiet_max:?} without"
        )
    })?;

    // Every hanging callback still ends its attempt by timing out, and is retried.
    wait::until(TIMEOUT, "each hanging callback to time out and be retried", || async {
        let mut waiting = Vec::new();
        for run in &hanging {
            let status = ns.status(run).await?;
            let timed_out = callback_condition(&status)
                .and_then(|c| c.message)
                .is_some_and(|m| m.contains(&format!("did not answer within {timeout}s")));
            if !(timed_out && attempts(&status).is_some_and(|a| a >= 2)) {
                waiting.push(run.clone());
            }
        }
        if waiting.is_empty() { Ok(()) } else { Err(format!("{} not yet retried after a timeout", waiting.len())) }
    })
    .await?;
    let finished_before_attempts = receiver.requests().len();
    ensure(finished_before_attempts >= 80, || format!("{finished_before_attempts} attempts for 40 runs retried"))?;
    ensure(operator.metric("job_template_run_callback_attempts_total{result=\"timeout\"}")? >= 80.0, || {
        "fewer than 80 attempts counted as timeouts".into()
    })
}

/// `spec.ttlSecondsAfterFinished: 2` with a callback: the receiver gets the
/// callback first, then the run and (through its ownerReference) its Job
/// are deleted, within 10 s of the finish.
async fn run_ttl(env: Arc<Env>, name: String) -> Result<(), String> {
    let operator = Operator::start(&env, &name, &["--callback-allow", "127.0.0.1"])?;
    let ns = Ns { client: env.client.clone(), name };
    let receiver = Receiver::start(vec![Reply::Status(200)]).await?;
    ns.echo_template(json!({})).await?;
    ns.callback_run("brief", "echo", json!({ "callbackUrl": receiver.url("/done"), "ttlSecondsAfterFinished": 2 }))
        .await?;
    let status = ns.wait_callback("brief", "Delivered").await?;
    let finished = merge::finished_at(&JobRun { status: Some(status), ..JobRun::new("brief", Default::default()) })
        .ok_or("the delivered run has no finish time")?;
    wait::until(TIMEOUT, "the run to be deleted", || async {
        match ns.runs().get_opt("brief").await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(_) => Err("still there".to_owned()),
        }
    })
    .await?;
    let gone = k8s_openapi::jiff::Timestamp::now();
    let lag = finished.duration_until(gone);
    eprintln!("ttl: the run was gone {lag:?} after its finish (TTL 2 s)");
    ensure(lag <= k8s_openapi::jiff::SignedDuration::from_secs(10), || format!("gone {lag:?} after the finish"))?;
    let requests = receiver.requests();
    ensure(requests.len() == 1, || format!("{} callback requests", requests.len()))?;
    let jobs: Api<Job> = Api::namespaced(ns.client.clone(), &ns.name);
    wait::until(TIMEOUT, "the Job to follow its run", || async {
        match jobs.get_opt("brief").await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(_) => Err("still there".to_owned()),
        }
    })
    .await?;
    let deleted = operator.metric("job_template_run_runs_deleted_total{reason=\"Ttl\"}")?;
    ensure(deleted == 1.0, || format!("runs_deleted_total{{Ttl}} is {deleted}"))
}

/// Cancel with a callback: one request, `status: Failed`, `reason: Cancelled`.
async fn cancelled(env: Arc<Env>, name: String) -> Result<(), String> {
    let _operator = Operator::start(&env, &name, &["--callback-allow", "127.0.0.1"])?;
    let ns = Ns { client: env.client.clone(), name };
    let receiver = Receiver::start(vec![Reply::Status(200)]).await?;
    ns.echo_template(json!({ "template": { "metadata": { "labels": { KEEP_RUNNING_LABEL: "true" } } } })).await?;
    ns.callback_run("stopped", "echo", json!({ "callbackUrl": receiver.url("/done") })).await?;
    wait::until(TIMEOUT, "the run to be Running", || async {
        let status = ns.status("stopped").await?;
        if status.phase == Some(Phase::Running) { Ok(()) } else { Err(format!("phase {:?}", status.phase)) }
    })
    .await?;
    let cancel = Patch::Merge(json!({ "spec": { "cancel": true } }));
    ns.runs().patch("stopped", &PatchParams::default(), &cancel).await.map_err(|e| e.to_string())?;
    ns.wait_callback("stopped", "Delivered").await?;
    let requests = receiver.requests();
    ensure(requests.len() == 1, || format!("{} callback requests", requests.len()))?;
    let body = requests[0].json()?;
    ensure(body["status"] == "Failed" && body["reason"] == "Cancelled", || format!("the callback said {body}"))
}
