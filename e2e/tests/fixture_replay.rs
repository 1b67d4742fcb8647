//! Tier 2 (e2e): every case in `fixtures/`, unchanged, against a real API
//! server without a Job controller. The operator runs in-process, scoped to
//! the case's namespace; the test writes Job status, as envtest tests do.
//!
//! A case whose input the API server refuses at admission (a rule that
//! guards objects stored before the CRD refused them) says so in its
//! `admission-refusal.yaml`: it passes only on exactly that refusal, runs no
//! operator, and is counted apart from the cases replayed on the cluster.
//!
//! A case with a `callback-answers.yaml` gets its own receiver on
//! 127.0.0.1 (an ephemeral port), which answers each request with the next
//! answer of the file and counts them; the run is created with its
//! `callbackUrl` pointed at the receiver (same path), and the operator's
//! guard allows 127.0.0.1 for that case only. The case fails if the
//! receiver gets more requests than the file has answers, or a number other
//! than the expected `callback.attempts`. No case connects anywhere else.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use e2e::subset::{differences, mismatches};
use e2e::suite::{self, Env, Test};
use e2e::{ClusterKind, wait};
use futures::FutureExt;
use job_template_run::crd::{JobRun, JobRunSpec, JobRunStatus, JobTemplate};
use job_template_run::merge::{self, CallbackSettings, Refusal, Settings};
use job_template_run::reconciler::{self, Options, Scope};
use jtr_test_kit::{AnswerWord, CallbackAnswer, Case, FILES};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Pod, ResourceQuota, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TIMEOUT: Duration = Duration::from_secs(30);

/// How the cases that ran ended, for the suite's last line.
static REPLAYED: AtomicUsize = AtomicUsize::new(0);
static REFUSED: AtomicUsize = AtomicUsize::new(0);
static FAILED: AtomicUsize = AtomicUsize::new(0);

fn main() -> ExitCode {
    let code = suite::main(ClusterKind::WithoutJobController, |settings| {
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
    });
    // A case refused at admission ran no operator: it is not counted as replayed.
    let [replayed, refused, failed] = [&REPLAYED, &REFUSED, &FAILED].map(|count| count.load(Ordering::SeqCst));
    if replayed + refused + failed > 0 {
        eprintln!(
            "fixture_replay: {replayed} replayed on the cluster, {refused} refused at admission as their fixtures \
             expect, {failed} failed"
        );
    }
    code
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

/// A finalizer the replay puts on objects it deletes, so they stay
/// Terminating for the operator to see; removed when the case ends.
const HOLD: &str = "e2e.cellbytes.io/hold";

/// Replays one case and counts how it ended.
async fn replay(env: Arc<Env>, namespace: String, dir: PathBuf) -> Result<(), String> {
    let result = replay_case(env, namespace, dir).await;
    let count = match &result {
        Ok(Replayed::OnTheCluster) => &REPLAYED,
        Ok(Replayed::RefusedAtAdmission) => &REFUSED,
        Err(_) => &FAILED,
    };
    count.fetch_add(1, Ordering::SeqCst);
    result.map(|_| ())
}

/// How a case that passed ended.
enum Replayed {
    /// The operator ran and the cluster ended as the expected files say.
    OnTheCluster,
    /// The API server refused an input exactly as `admission-refusal.yaml` says.
    RefusedAtAdmission,
}

/// Replays one case: apply its inputs, run the operator, compare.
async fn replay_case(env: Arc<Env>, namespace: String, dir: PathBuf) -> Result<Replayed, String> {
    let case = Case::load(&dir).map_err(|e| e.to_string())?;
    let client = env.client.clone();
    // A case that says how the callback's receiver answers gets one of its own.
    let receiver = if dir.join(FILES.callback_answers).exists() { Some(Receiver::start(&case).await?) } else { None };
    let callback_url = receiver.as_ref().map(|receiver| receiver.url.clone());
    let shift = clock_shift(&case);
    let Some(run) = apply_inputs(&client, &namespace, &case, callback_url.as_deref(), shift).await? else {
        release_refused(&client, &namespace, &case).await;
        return Ok(Replayed::RefusedAtAdmission);
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let port = e2e::operator::free_port()?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut options = Options::new(Scope::Namespaces(vec![namespace.clone()]), ([127, 0, 0, 1], port).into());
    // The case's clock: time already spent waiting counts against the grace period.
    let created = case.run.metadata.creation_timestamp.as_ref().map(|t| t.0);
    if let (Some(now), Some(created)) = (case.situation.now, created) {
        let spent = created.duration_until(now).unsigned_abs();
        options.settings.template_grace = options.settings.template_grace.saturating_sub(spent);
    }
    if receiver.is_some() {
        // Only this case's receiver is allowed past the guard; a case
        // without one keeps the default guard (a loopback URL is refused).
        options.callback.guard.allow = merge::AllowList::parse(&["127.0.0.1"]);
        options.settings.callback = fixture_callback_settings();
    }
    let operator = tokio::spawn(reconciler::run_with_client(client.clone(), options, async move {
        let _ = stopped.await;
    }));
    let mut result = check(&client, &namespace, &case, &run, receiver.as_ref(), shift).await;
    if result.is_ok() {
        result = settled(&client, &namespace, &case, &run, &endpoint).await;
    }
    let _ = stop.send(());
    let drained = match tokio::time::timeout(TIMEOUT, operator).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(error))) => Err(format!("the operator failed: {error}")),
        Ok(Err(panic)) => Err(format!("the operator panicked: {panic}")),
        Err(_) => Err(format!("the operator did not drain within {TIMEOUT:?} of its shutdown")),
    };
    let cleaned = release_holds(&client, &namespace, &case, &run).await;
    // Counted once the operator has drained: no attempt can come after.
    let received = match &receiver {
        Some(receiver) => receiver.verdict(&case),
        None => Ok(()),
    };
    let result = match (result, received) {
        (Err(error), Err(count)) => Err(format!("{error}\nand {count}")),
        (result, received) => result.and(received),
    };
    result.and(drained).and(cleaned).map(|()| Replayed::OnTheCluster)
}

/// The callback settings of an answered case: the fixture world's
/// (`Settings::default()`, as `fixtures_golden` replays; its attempt limit
/// is the default `max_attempts`, which no case changes), with shorter
/// delays and timeout. The world's clock jumps to each next attempt; a real
/// one would wait out the backoff (297 s before the gave-up case's last
/// attempt) and 10 s per `timeout` answer, far past [`TIMEOUT`]. None of the
/// compared fields depend on these three: the final status's reason,
/// attempts, lastStatusCode and message come from the answers in order and
/// the attempt limit (a message says "did not answer within" the timeout
/// only while Retrying, and the final status replaces it), `nextAttemptTime`
/// is cleared by every final outcome, and the times an attempt sets are
/// compared as "any timestamp" ([`any_callback_times`]).
fn fixture_callback_settings() -> CallbackSettings {
    CallbackSettings {
        // A retry still waits for the next whole second (status times keep
        // whole seconds): under 1.2 s, about 0.6 s on average.
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        // Long enough for an answer over loopback on a busy machine, short
        // enough that 3 unanswered attempts take 6 s.
        timeout: Duration::from_secs(2),
        ..Settings::default().callback
    }
}

// ---------------------------------------------------------------- receiver

/// A case's callback receiver: HTTP/1.1 on 127.0.0.1 at an ephemeral port,
/// answering the n-th request with the n-th answer of `callback-answers.yaml`
/// (a status code, or `timeout`: nothing until the operator gives up on the
/// attempt), and counting requests. Stops when dropped.
struct Receiver {
    /// The run's `callbackUrl`, pointed here with the fixture's path.
    url: String,
    path: String,
    answers: usize,
    /// The request line of every request, in order.
    requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(case: &Case) -> Result<Self, String> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| format!("cannot start the callback receiver on 127.0.0.1: {e}"))?;
        let address: SocketAddr = listener.local_addr().map_err(|e| e.to_string())?;
        let fixture_url = case.run.spec.callback_url.as_deref().unwrap_or_default();
        let path = path_of(fixture_url).to_owned();
        let answers: Arc<[CallbackAnswer]> = case.callback_answers.clone().into();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let count = answers.len();
        let task = tokio::spawn(async move {
            // Dropped with the task: connections held open end with it.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                connections.spawn(answer(stream, recorded.clone(), answers.clone()));
            }
        });
        Ok(Self { url: format!("http://{address}{path}"), path, answers: count, requests, task })
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The requests held against the case: no more than it has answers,
    /// each a POST to the fixture's path, and as many as its expected
    /// `callback.attempts`.
    fn verdict(&self, case: &Case) -> Result<(), String> {
        let requests = self.requests();
        let expected: Value = serde_norway::from_str(&case.expected_status).map_err(|e| e.to_string())?;
        let attempts = expected.pointer("/callback/attempts").and_then(Value::as_u64).unwrap_or(0);
        let got = requests.len();
        if got > self.answers {
            return Err(format!(
                "the receiver got {got} request(s), but {} has only {} answer(s): {requests:?}",
                FILES.callback_answers, self.answers
            ));
        }
        if u64::try_from(got).ok() != Some(attempts) {
            return Err(format!(
                "the receiver got {got} request(s), but expected-status.yaml says callback.attempts: {attempts}: \
                 {requests:?}"
            ));
        }
        let wanted = format!("POST {} HTTP/1.1", self.path);
        match requests.iter().find(|line| **line != wanted) {
            Some(other) => Err(format!("the receiver got {other:?}, expected {wanted:?}")),
            None => Ok(()),
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The path (and query) of `url`, as the receiver's URL keeps it.
fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    match rest.find(['/', '?', '#']) {
        Some(at) if rest[at..].starts_with('/') => &rest[at..],
        _ => "/",
    }
}

/// Reads one request (head and body), records its request line, and answers
/// it with the answer of its position; one past the answers gets a 500 (the
/// case then fails on the count).
async fn answer(mut stream: TcpStream, recorded: Arc<Mutex<Vec<String>>>, answers: Arc<[CallbackAnswer]>) {
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
    let length = head
        .split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    // The whole body is read before answering: closing on unread bytes
    // would reset the connection under the answer.
    let mut body = buffer.len() - (head_end + 4);
    while body < length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => body += n,
        }
    }
    let index = {
        let Ok(mut all) = recorded.lock() else { return };
        all.push(head.lines().next().unwrap_or_default().to_owned());
        all.len() - 1
    };
    let code = match answers.get(index) {
        Some(CallbackAnswer::Code(code)) => *code,
        Some(CallbackAnswer::Word(AnswerWord::Timeout)) => {
            // No answer: hold the connection until the operator's attempt
            // times out and closes it (bounded, should it never).
            let _ = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut chunk)).await;
            return;
        }
        None => 500,
    };
    let reply = format!("HTTP/1.1 {code} Fixture\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = stream.write_all(reply.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Creates the template, any existing Job and the run, as the case gives
/// them, in `namespace`, and makes the API server answer a Job create as
/// `api-error.yaml` says. A Job that the case says this run (or another
/// run that exists) controls is created once that run has its new uid.
/// `None`: the API server refused an input exactly as the case's
/// `admission-refusal.yaml` says, and nothing after it was created.
/// `callback_url`: the case's receiver, which the run's callback goes to.
async fn apply_inputs(
    client: &Client,
    namespace: &str,
    case: &Case,
    callback_url: Option<&str>,
    shift: SignedDuration,
) -> Result<Option<JobRun>, String> {
    let post = PostParams::default();
    if let Some(template) = &case.template {
        let template = JobTemplate { metadata: fresh_meta(&template.metadata, namespace), ..template.clone() };
        let created = Api::<JobTemplate>::namespaced(client.clone(), namespace).create(&post, &template).await;
        if admitted(case, FILES.template, created)?.is_none() {
            return Ok(None);
        }
    }
    if let Some(refusal) = &case.create_refusal {
        refuse_jobs(client, namespace, refusal).await?;
    }
    if let Some(secret) = &case.secret {
        let secret = Secret { metadata: fresh_meta(&secret.metadata, namespace), ..secret.clone() };
        let created = Api::<Secret>::namespaced(client.clone(), namespace).create(&post, &secret).await;
        if admitted(case, FILES.secret, created)?.is_none() {
            return Ok(None);
        }
    }
    let runs = Api::<JobRun>::namespaced(client.clone(), namespace);
    let deleting_run = case.run.metadata.deletion_timestamp.is_some();
    let mut run_meta = fresh_meta(&case.run.metadata, namespace);
    run_meta.deletion_timestamp = None;
    run_meta.finalizers = deleting_run.then(|| vec![HOLD.to_owned()]);
    let mut run = JobRun { metadata: run_meta, status: None, ..case.run.clone() };
    if let Some(url) = callback_url {
        run.spec.callback_url = Some(url.to_owned());
    }
    // A run cancelled after it finished (its generation says the spec
    // changed once): created uncancelled, finished, then cancelled.
    let cancelled_later = case.run.metadata.generation > Some(1) && case.run.spec.cancel == Some(true);
    if cancelled_later {
        run.spec.cancel = None;
    }
    for other in &case.other_runs {
        let other_run = JobRun { metadata: fresh_meta(&other.metadata, namespace), status: None, ..other.clone() };
        let created = runs.create(&post, &other_run).await.map_err(|e| format!("create other run: {e}"))?;
        write_status(&runs, &created.name_any(), other.status.as_ref(), shift).await?;
    }
    let Some(run) = admitted(case, FILES.run, runs.create(&post, &run).await)? else {
        return Ok(None);
    };
    let run = match write_status(&runs, &run.name_any(), case.run.status.as_ref(), shift).await? {
        Some(written) => written,
        None => run,
    };
    let run = if cancelled_later {
        let cancel = Patch::Merge(json!({ "spec": { "cancel": true } }));
        runs.patch(&run.name_any(), &PatchParams::default(), &cancel).await.map_err(|e| format!("cancel: {e}"))?
    } else {
        run
    };
    if let Some(existing) = &case.existing_job
        && !create_existing_job(client, namespace, case, existing, &run, shift).await?
    {
        return Ok(None);
    }
    stage_pods_and_events(client, namespace, case, shift).await?;
    if deleting_run {
        runs.delete(&run.name_any(), &DeleteParams::background()).await.map_err(|e| format!("delete run: {e}"))?;
    }
    Ok(Some(run))
}

/// Once the operator has finished a reconcile of each of the case's runs,
/// a run that its steps do not delete still exists (a TTL still to come
/// is not a deletion now): the status check alone passes before the first
/// reconcile.
async fn settled(client: &Client, namespace: &str, case: &Case, run: &JobRun, endpoint: &str) -> Result<(), String> {
    let runs = (1 + case.other_runs.len()) as f64;
    wait::until(TIMEOUT, "the operator to finish a reconcile of each run", || async {
        let endpoint = endpoint.to_owned();
        let done = tokio::task::spawn_blocking(move || {
            e2e::operator::metric(&endpoint, "job_template_run_reconcile_duration_seconds_count")
        })
        .await
        .map_err(|e| e.to_string())??;
        if done >= runs { Ok(()) } else { Err(format!("{done} reconciles done")) }
    })
    .await?;
    let deleted = case.expected_steps.as_deref().is_some_and(|steps| steps.contains("delete the run"));
    let exists = Api::<JobRun>::namespaced(client.clone(), namespace)
        .get_opt(&run.name_any())
        .await
        .map_err(|e| e.to_string())?
        .is_some_and(|live| live.uid() == run.uid());
    match (deleted, exists) {
        (false, false) => Err("the operator deleted the run, which its steps do not".into()),
        _ => Ok(()),
    }
}

/// The case's pods and Events, as the kubelet and the Job controller would
/// have left them: each pod bound to a node that does not exist (so that
/// neither the scheduler nor kwok acts on it) with its status written; each
/// Event created as it is.
async fn stage_pods_and_events(
    client: &Client,
    namespace: &str,
    case: &Case,
    shift: SignedDuration,
) -> Result<(), String> {
    let post = PostParams::default();
    if !case.pods.is_empty() {
        // Without a controller manager no namespace but `default` gets its
        // ServiceAccount, and pods need one.
        let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
        let account: ServiceAccount =
            serde_json::from_value(json!({ "metadata": { "name": "default" } })).map_err(|e| e.to_string())?;
        match accounts.create(&post, &account).await {
            Ok(_) => {}
            Err(kube::Error::Api(answer)) if answer.is_already_exists() => {}
            Err(error) => return Err(format!("create the default ServiceAccount: {error}")),
        }
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    for pod in &case.pods {
        let mut staged = Pod { metadata: fresh_meta(&pod.metadata, namespace), status: None, ..pod.clone() };
        if let Some(spec) = staged.spec.as_mut() {
            spec.node_name = Some("e2e-no-such-node".into());
        }
        let created = pods.create(&post, &staged).await.map_err(|e| format!("create pod: {e}"))?;
        if let Some(status) = &pod.status {
            let mut status = serde_json::to_value(status).map_err(|e| e.to_string())?;
            shift_times(&mut status, shift);
            pods.patch_status(&created.name_any(), &PatchParams::default(), &Patch::Merge(json!({ "status": status })))
                .await
                .map_err(|e| format!("write the pod's status: {e}"))?;
        }
    }
    let events: Api<CoreEvent> = Api::namespaced(client.clone(), namespace);
    for event in &case.events {
        let mut staged = CoreEvent { metadata: fresh_meta(&event.metadata, namespace), ..event.clone() };
        staged.involved_object.namespace = Some(namespace.to_owned());
        let mut moved = serde_json::to_value(&staged).map_err(|e| e.to_string())?;
        shift_times(&mut moved, shift);
        let staged: CoreEvent = serde_json::from_value(moved).map_err(|e| e.to_string())?;
        events.create(&post, &staged).await.map_err(|e| format!("create event: {e}"))?;
    }
    Ok(())
}

/// Writes a run's status as the case gives it, its times moved by `shift`.
async fn write_status(
    runs: &Api<JobRun>,
    name: &str,
    status: Option<&JobRunStatus>,
    shift: SignedDuration,
) -> Result<Option<JobRun>, String> {
    let Some(status) = status else { return Ok(None) };
    let mut status = serde_json::to_value(status).map_err(|e| e.to_string())?;
    shift_times(&mut status, shift);
    runs.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({ "status": status })))
        .await
        .map(Some)
        .map_err(|e| format!("write the status of run {name}: {e}"))
}

/// How far the case's clock is from the cluster's, for a case whose run's
/// status holds a time that `situation.now` is measured from (a finish that
/// a TTL counts from, a stall that a deadline counts from): the case's
/// times (of the run, the other runs, the Job, the pods, the Events) are
/// moved by this much on the way in and back on the way out. Zero for
/// every other case.
fn clock_shift(case: &Case) -> SignedDuration {
    let status = case.run.status.as_ref();
    let finished = status.and_then(|s| s.phase).is_some_and(|p| p.is_final());
    let stalled = status.is_some_and(|s| merge::stalled_condition(s).is_some());
    match case.situation.now.filter(|_| finished || stalled) {
        Some(now) => {
            let real = Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(now);
            now.duration_until(real)
        }
        None => SignedDuration::ZERO,
    }
}

/// Moves every timestamp in `value` by `shift`.
fn shift_times(value: &mut Value, shift: SignedDuration) {
    if shift.is_zero() {
        return;
    }
    match value {
        Value::String(text) => {
            if let Ok(at) = text.parse::<Timestamp>()
                && let Ok(moved) = at.checked_add(shift)
                && let Ok(Value::String(moved)) = serde_json::to_value(Time(moved))
            {
                *text = moved;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| shift_times(item, shift)),
        Value::Object(map) => map.values_mut().for_each(|item| shift_times(item, shift)),
        _ => {}
    }
}

/// The case's existing Job: owned by this run (its uid), by another run
/// that exists (created for it), or as written; with its status; and,
/// when the case has it being deleted, deleted (held by [`HOLD`]). False:
/// the API server refused it as the case's `admission-refusal.yaml` says.
async fn create_existing_job(
    client: &Client,
    namespace: &str,
    case: &Case,
    existing: &Job,
    run: &JobRun,
    shift: SignedDuration,
) -> Result<bool, String> {
    let jobs = Api::<Job>::namespaced(client.clone(), namespace);
    let mut job = Job { metadata: fresh_meta(&existing.metadata, namespace), status: None, ..existing.clone() };
    let deleting = existing.metadata.deletion_timestamp.is_some();
    job.metadata.deletion_timestamp = None;
    if deleting {
        job.metadata.finalizers.get_or_insert_with(Vec::new).push(HOLD.to_owned());
    }
    for owner in job.metadata.owner_references.iter_mut().flatten() {
        if merge::is_controlled_by(existing, &case.run) {
            owner.uid = run.uid().unwrap_or_default();
        } else if case.situation.other_run_exists && owner.kind == "JobRun" {
            let other = JobRun {
                metadata: kube::api::ObjectMeta {
                    name: Some(owner.name.clone()),
                    namespace: Some(namespace.to_owned()),
                    ..Default::default()
                },
                spec: JobRunSpec { template_ref: "no-such-template".into(), ..Default::default() },
                status: None,
            };
            let other = Api::<JobRun>::namespaced(client.clone(), namespace)
                .create(&PostParams::default(), &other)
                .await
                .map_err(|e| format!("create the other run: {e}"))?;
            owner.uid = other.uid().unwrap_or_default();
        }
    }
    let name = job.name_any();
    if admitted(case, FILES.existing_job, jobs.create(&PostParams::default(), &job).await)?.is_none() {
        return Ok(false);
    }
    if let Some(status) = &existing.status {
        let mut status = serde_json::to_value(status).map_err(|e| e.to_string())?;
        shift_times(&mut status, shift);
        jobs.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({ "status": status })))
            .await
            .map_err(|e| format!("write the existing Job's status: {e}"))?;
    }
    if deleting {
        jobs.delete(&name, &DeleteParams::background()).await.map_err(|e| format!("delete existing Job: {e}"))?;
    }
    Ok(true)
}

/// The API server's answer to creating the case's input `file`, held
/// against the case's `admission-refusal.yaml`: the object when it was
/// admitted and the case expects that; `None` when it was refused exactly
/// as the case says (code, and a message containing the case's); an error
/// for an admission the case does not expect, a refusal it does not
/// expect, and a refusal other than the one it expects.
fn admitted<K>(case: &Case, file: &str, created: Result<K, kube::Error>) -> Result<Option<K>, String> {
    let expected = case.admission_refusal.as_ref().filter(|refusal| refusal.file == file);
    match (created, expected) {
        (Ok(object), None) => Ok(Some(object)),
        (Ok(_), Some(refusal)) => Err(format!(
            "the API server admitted {file}, but {} says it refuses it with {} and a message containing {:?}",
            FILES.admission_refusal, refusal.code, refusal.message_contains
        )),
        (Err(kube::Error::Api(answer)), Some(refusal))
            if answer.code == refusal.code && answer.message.contains(&refusal.message_contains) =>
        {
            eprintln!("{}: refused at admission as its fixture expects: {file}: {}", case.name, answer.message);
            Ok(None)
        }
        (Err(error), Some(refusal)) => Err(format!(
            "the API server refused {file} with {}, but {} expects {} and a message containing {:?}",
            describe_refusal(&error),
            FILES.admission_refusal,
            refusal.code,
            refusal.message_contains
        )),
        (Err(error), None) => Err(format!(
            "the API server refused {file} with {}; a case whose input the API server refuses says so in {} \
             (file, code, messageContains)",
            describe_refusal(&error),
            FILES.admission_refusal
        )),
    }
}

fn describe_refusal(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(answer) => format!("{} {:?}", answer.code, answer.message),
        other => format!("no answer ({other})"),
    }
}

/// Makes the API server refuse Job creates in `namespace` as `refusal`
/// says: a 403 from a ValidatingAdmissionPolicy, or from a full
/// ResourceQuota. A 422 needs nothing: the rendered Job is invalid itself.
async fn refuse_jobs(client: &Client, namespace: &str, refusal: &Refusal) -> Result<(), String> {
    if refusal.code != 403 {
        return Ok(());
    }
    if refusal.message.contains("exceeded quota") {
        let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), namespace);
        let quota: ResourceQuota = serde_json::from_value(json!({
            "metadata": { "name": "no-jobs" },
            "spec": { "hard": { "count/jobs.batch": "0" } }
        }))
        .map_err(|e| e.to_string())?;
        quotas.create(&PostParams::default(), &quota).await.map_err(|e| format!("create quota: {e}"))?;
        // No controller manager runs here to fill in the quota's usage.
        let usage = json!({ "status": { "hard": { "count/jobs.batch": "0" }, "used": { "count/jobs.batch": "0" } } });
        quotas
            .patch_status("no-jobs", &PatchParams::default(), &Patch::Merge(usage))
            .await
            .map_err(|e| format!("write quota usage: {e}"))?;
    } else {
        e2e::policy::deny_jobs(client, namespace, "deny-jobs", "Jobs are not allowed in this namespace").await?;
    }
    e2e::policy::wait_until_job_creates_are_refused(client, namespace).await
}

/// Lets go of what [`HOLD`] kept, so the namespace can be deleted, and
/// removes the case's cluster-wide policy, if it made one.
async fn release_holds(client: &Client, namespace: &str, case: &Case, run: &JobRun) -> Result<(), String> {
    let unhold = json!({ "metadata": { "finalizers": null } });
    let jobs = Api::<Job>::namespaced(client.clone(), namespace);
    for job in jobs.list(&Default::default()).await.map_err(|e| e.to_string())? {
        if job.finalizers().iter().any(|f| f == HOLD) {
            let _ = jobs.patch(&job.name_any(), &PatchParams::default(), &Patch::Merge(&unhold)).await;
        }
    }
    let runs = Api::<JobRun>::namespaced(client.clone(), namespace);
    let _ = runs.patch(&run.name_any(), &PatchParams::default(), &Patch::Merge(&unhold)).await;
    if case.create_refusal.as_ref().is_some_and(|r| r.code == 403 && !r.message.contains("exceeded quota")) {
        e2e::policy::remove(client, "deny-jobs").await;
    }
    Ok(())
}

/// Lets go of what a case refused at admission had made before the
/// refusal: the run's [`HOLD`], the case's cluster-wide policy.
async fn release_refused(client: &Client, namespace: &str, case: &Case) {
    let unhold = json!({ "metadata": { "finalizers": null } });
    let runs = Api::<JobRun>::namespaced(client.clone(), namespace);
    for run in runs.list(&Default::default()).await.map(|list| list.items).unwrap_or_default() {
        if run.finalizers().iter().any(|f| f == HOLD) {
            let _ = runs.patch(&run.name_any(), &PatchParams::default(), &Patch::Merge(&unhold)).await;
        }
    }
    if case.create_refusal.as_ref().is_some_and(|r| r.code == 403 && !r.message.contains("exceeded quota")) {
        e2e::policy::remove(client, "deny-jobs").await;
    }
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

async fn check(
    client: &Client,
    namespace: &str,
    case: &Case,
    run: &JobRun,
    receiver: Option<&Receiver>,
    shift: SignedDuration,
) -> Result<(), String> {
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
    // The fixture clock (the situation's `now`, or the run's
    // creationTimestamp) and the times the case's objects carry stand for
    // times the server or the operator sets now.
    let clock = serde_json::to_value(&case.run.metadata.creation_timestamp).map_err(|e| e.to_string())?;
    let now = serde_json::to_value(case.situation.now).map_err(|e| e.to_string())?;
    let is_clock = |value: &Value| (!clock.is_null() && *value == clock) || (!now.is_null() && *value == now);

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

    // Messages name the callback's URL: the fixture's is the receiver's here.
    let expected_status = match (receiver, case.run.spec.callback_url.as_deref()) {
        (Some(receiver), Some(fixture_url)) => {
            case.expected_status.replace(&merge::shown_url(fixture_url), &merge::shown_url(&receiver.url))
        }
        _ => case.expected_status.clone(),
    };
    let expected_status: Value = serde_norway::from_str(&expected_status).map_err(|e| e.to_string())?;
    let runs = Api::<JobRun>::namespaced(client.clone(), namespace);
    let steps = case.expected_steps.clone().unwrap_or_default();
    // A run the operator deletes is gone: that is its outcome.
    if steps.contains("delete the run") {
        return wait::until(TIMEOUT, "the operator to delete the run", || async {
            match runs.get_opt(&run.name_any()).await.map_err(|e| e.to_string())? {
                None => Ok(()),
                Some(left) => Err(format!("still there, status {:?}", left.status)),
            }
        })
        .await;
    }
    wait::until(TIMEOUT, "the run's status to be exactly expected-status.yaml", || async {
        let live = runs.get(&run.name_any()).await.map_err(|e| e.to_string())?;
        let mut actual = serde_json::to_value(live.status.unwrap_or_default()).map_err(|e| e.to_string())?;
        shift_times(&mut actual, -shift);
        let mut expected = expected_status.clone();
        if receiver.is_some() {
            any_callback_times(&mut expected, &mut actual);
        }
        let problems = differences(&expected, &actual, &is_clock);
        if problems.is_empty() { Ok(()) } else { Err(format!("\n  {}", problems.join("\n  "))) }
    })
    .await?;

    // The steps that act on the Job show on it: its finalizer set or gone, suspended.
    if steps.contains("suspend the Job") {
        wait::until(TIMEOUT, "the Job to be suspended", || async {
            let job = jobs.get_opt(&job_name).await.map_err(|e| e.to_string())?;
            let suspend = job.as_ref().and_then(|j| j.spec.as_ref()).and_then(|spec| spec.suspend);
            if suspend == Some(true) { Ok(()) } else { Err(format!("suspend is {suspend:?}")) }
        })
        .await?;
    }
    for (step, held) in [("protect the Job", true), ("release the Job", false)] {
        if steps.contains(step) {
            wait::until(TIMEOUT, &format!("the Job's finalizer after \"{step}\""), || async {
                let job = jobs.get_opt(&job_name).await.map_err(|e| e.to_string())?;
                let holds = job.as_ref().is_some_and(merge::holds_finalizer);
                if holds == held {
                    Ok(())
                } else {
                    Err(format!("finalizers: {:?}", job.map(|j| j.finalizers().to_vec())))
                }
            })
            .await?;
        }
    }

    let existed = case.existing_job.as_ref().is_some_and(|job| merge::is_controlled_by(job, &case.run));
    if case.expected_job.is_none() && !existed {
        let owned =
            jobs.get_opt(&job_name).await.map_err(|e| e.to_string())?.filter(|job| merge::is_controlled_by(job, run));
        if let Some(job) = owned {
            return Err(format!("expected no Job for the run, found {}", job.name_any()));
        }
    }
    Ok(())
}

/// Stands for "any timestamp" in an answered case's comparison.
const ANY_TIME: &str = "<any timestamp>";

/// Marks the times that a real attempt sets (the callback's
/// `lastAttemptTime`, `deliveredTime` and `nextAttemptTime`, and the
/// `CallbackDelivered` condition's `lastTransitionTime`) as [`ANY_TIME`]
/// on both sides, where `expected` has the field and `actual` has a
/// timestamp there; one that is missing, unexpected or not a timestamp is
/// left to the exact comparison, which reports it. The world's clock jumps
/// to each attempt and the cluster's does not, so these are the only times
/// the replay cannot know; every other field stays exact.
fn any_callback_times(expected: &mut Value, actual: &mut Value) {
    let callback_delivered = |status: &Value| -> Option<String> {
        let conditions = status.get("conditions")?.as_array()?;
        let at = conditions.iter().position(|c| c.get("type") == Some(&json!(merge::CONDITION_CALLBACK_DELIVERED)))?;
        Some(format!("/conditions/{at}/lastTransitionTime"))
    };
    let mut pairs: Vec<(String, String)> = ["lastAttemptTime", "deliveredTime", "nextAttemptTime"]
        .iter()
        .map(|field| (format!("/callback/{field}"), format!("/callback/{field}")))
        .collect();
    if let (Some(want), Some(have)) = (callback_delivered(expected), callback_delivered(actual)) {
        pairs.push((want, have));
    }
    for (want, have) in pairs {
        let is_time = actual
            .pointer(&have)
            .and_then(Value::as_str)
            .is_some_and(|text| text.parse::<k8s_openapi::jiff::Timestamp>().is_ok());
        if let (true, Some(slot)) = (is_time, expected.pointer_mut(&want))
            && let Some(found) = actual.pointer_mut(&have)
        {
            *slot = json!(ANY_TIME);
            *found = json!(ANY_TIME);
        }
    }
}
