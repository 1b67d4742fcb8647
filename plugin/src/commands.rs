//! The commands: API calls and printing. What to send and what to print
//! is decided by [`crate::spec`] and [`crate::view`].

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use futures::{AsyncBufReadExt, StreamExt};
use jtr_core::crd::{JobRun, JobTemplate};
use jtr_core::merge::{LABEL_RUN, is_finished, label_safe};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::await_condition;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config, ResourceExt};
use serde::Serialize;

use crate::args::{AfterCreate, Cli, Command, CreateArgs, DryRun, GetArgs, Global, ListOutput, LogsArgs, ObjectOutput};
use crate::complete::{Wanted, cobra_output, wanted};
use crate::error::PluginError;
use crate::view::{self, Cell};
use crate::{spec, view::table};

/// `wait`'s exit codes: succeeded, failed, timed out.
pub const EXIT_SUCCEEDED: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_TIMED_OUT: u8 = 2;

/// The longest a completion waits for the cluster.
const COMPLETION_LIMIT: Duration = Duration::from_secs(2);

/// The kind as kubectl names it in `-o name` and messages.
const RUN_KIND: &str = "jobrun.cellbytes.io";
const TEMPLATE_KIND: &str = "jobtemplate.cellbytes.io";

/// The client, the namespace, and whether stdout takes colours.
struct Ctx {
    client: Client,
    namespace: String,
    colour: bool,
}

impl Ctx {
    async fn new(global: &Global) -> Result<Self, PluginError> {
        let options = KubeConfigOptions { context: global.context.clone(), ..KubeConfigOptions::default() };
        let config = match &global.kubeconfig {
            Some(path) => {
                let kubeconfig = Kubeconfig::read_from(path).map_err(PluginError::Kubeconfig)?;
                Config::from_custom_kubeconfig(kubeconfig, &options).await
            }
            None => Config::from_kubeconfig(&options).await,
        }
        .map_err(PluginError::Kubeconfig)?;
        let namespace = global.namespace.clone().unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config).map_err(PluginError::Client)?;
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Ok(Self { client, namespace, colour })
    }

    fn runs(&self) -> Api<JobRun> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn templates(&self) -> Api<JobTemplate> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    async fn run(&self, name: &str) -> Result<JobRun, PluginError> {
        self.runs()
            .get_opt(name)
            .await
            .map_err(PluginError::api("get", format!("jobrun {name}")))?
            .ok_or_else(|| PluginError::RunNotFound { name: name.to_owned(), namespace: self.namespace.clone() })
    }

    /// The run's Job, if it has one and it exists.
    async fn job(&self, run: &JobRun) -> Result<Option<Job>, PluginError> {
        let Some(name) = run.status.as_ref().and_then(|s| s.job_name.as_deref()) else { return Ok(None) };
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &self.namespace);
        let job = jobs.get_opt(name).await.map_err(PluginError::api("get", format!("job {name}")))?;
        // A Job of that name that another run (or anyone) controls is not this run's.
        Ok(job.filter(|job| jtr_core::merge::is_controlled_by(job, run)))
    }

    /// The pods of the run's Job (by the Job's uid, so never a previous
    /// run's of the same name), oldest first; none before the Job exists.
    async fn pods_of(&self, job: Option<&Job>) -> Result<Vec<Pod>, PluginError> {
        let Some(uid) = job.and_then(|j| j.metadata.uid.as_deref()) else { return Ok(Vec::new()) };
        let selector = format!("batch.kubernetes.io/controller-uid={uid}");
        let list = self
            .pods()
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(PluginError::api("list", format!("pods {selector}")))?;
        let mut pods = list.items;
        view::oldest_first(&mut pods);
        Ok(pods)
    }
}

fn now() -> Timestamp {
    Timestamp::now()
}

fn out(text: &str) -> Result<(), PluginError> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

fn yaml<T: Serialize>(value: &T) -> Result<String, PluginError> {
    serde_norway::to_string(value).map_err(|e| PluginError::Encode(e.to_string()))
}

fn json<T: Serialize>(value: &T) -> Result<String, PluginError> {
    serde_json::to_string_pretty(value).map(|s| s + "\n").map_err(|e| PluginError::Encode(e.to_string()))
}

/// How objects are printed: one object, a `List`, or (`get -w`) one
/// document per change.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    One,
    List,
    Stream,
}

/// Objects as kubectl prints them, without `managedFields` (as kubectl hides them).
fn print_objects<T: Serialize + ResourceExt + Clone>(
    items: &[T],
    kind: &str,
    output: ObjectOutput,
    shape: Shape,
) -> Result<(), PluginError> {
    let encode = |e: serde_json::Error| PluginError::Encode(e.to_string());
    let bare = |item: &T| {
        let mut item = item.clone();
        item.meta_mut().managed_fields = None;
        serde_json::to_value(item).map_err(encode)
    };
    let text = |value: &serde_json::Value| if output == ObjectOutput::Yaml { yaml(value) } else { json(value) };
    match (output, shape) {
        (ObjectOutput::Name, _) => out(&items.iter().map(|i| format!("{kind}/{}\n", i.name_any())).collect::<String>()),
        (_, Shape::One) if items.len() == 1 => out(&text(&bare(&items[0])?)?),
        (_, Shape::Stream) => {
            for item in items {
                let separator = if output == ObjectOutput::Yaml { "---\n" } else { "" };
                out(&format!("{separator}{}", text(&bare(item)?)?))?;
            }
            Ok(())
        }
        _ => {
            let items = items.iter().map(bare).collect::<Result<Vec<_>, _>>()?;
            out(&text(&serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}))?)
        }
    }
}

impl ListOutput {
    /// The object form of `-o`, or `None` for a table.
    fn object(self) -> Option<ObjectOutput> {
        match self {
            ListOutput::Yaml => Some(ObjectOutput::Yaml),
            ListOutput::Json => Some(ObjectOutput::Json),
            ListOutput::Name => Some(ObjectOutput::Name),
            ListOutput::Wide => None,
        }
    }
}

/// Runs the command; `Ok` carries the exit code.
pub async fn run(cli: Cli) -> Result<ExitCode, PluginError> {
    match cli.command {
        Command::Completion { shell } => {
            use clap::CommandFactory;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "kubectl-jobrun", &mut script);
            out(&String::from_utf8_lossy(&script))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Complete { words } => {
            complete(&cli.global, &words).await;
            Ok(ExitCode::SUCCESS)
        }
        command => {
            let ctx = Ctx::new(&cli.global).await?;
            match command {
                Command::Create(args) => create(&ctx, *args).await,
                Command::Get(args) => get(&ctx, args).await,
                Command::Describe(args) => describe(&ctx, &args.name).await,
                Command::Logs(args) => logs(&ctx, &args).await.map(|()| ExitCode::SUCCESS),
                Command::Wait(args) => {
                    let run = ctx.run(&args.name).await?;
                    wait(&ctx, &run, args.timeout, false).await
                }
                Command::Cancel(args) => cancel(&ctx, &args.name).await,
                Command::Rerun(args) => {
                    let original = ctx.run(&args.run).await?;
                    let run = spec::rerun_of(&original, args.name.as_deref());
                    precheck(&ctx, &run).await?;
                    create_and_follow(&ctx, run, &args.after, false).await
                }
                Command::Templates(args) => templates(&ctx, args.output).await,
                Command::Completion { .. } | Command::Complete { .. } => Ok(ExitCode::SUCCESS),
            }
        }
    }
}

/// The template's policy on `run`, before anything is sent. A template
/// the user may not read is not checked here (the operator still checks).
async fn precheck(ctx: &Ctx, run: &JobRun) -> Result<(), PluginError> {
    let name = &run.spec.template_ref;
    match ctx.templates().get_opt(name).await {
        Ok(Some(template)) => spec::check(&template, run),
        Ok(None) => Err(PluginError::TemplateNotFound { name: name.clone(), namespace: ctx.namespace.clone() }),
        Err(kube::Error::Api(status)) if status.code == 403 => {
            eprintln!(
                "warning: cannot read jobtemplate {name} ({}): its policy is checked by the operator only",
                status.message
            );
            Ok(())
        }
        Err(source) => Err(PluginError::Api { verb: "get", what: format!("jobtemplate {name}"), source }),
    }
}

async fn create(ctx: &Ctx, args: CreateArgs) -> Result<ExitCode, PluginError> {
    let run = spec::run_from_args(&args, &ctx.namespace);
    precheck(ctx, &run).await?;
    match args.dry_run {
        Some(DryRun::Client) => {
            match args.after.output {
                Some(output) => print_objects(&[run], RUN_KIND, output, Shape::One)?,
                None => {
                    let name = run.metadata.name.clone().or(run.metadata.generate_name.clone()).unwrap_or_default();
                    out(&format!("{RUN_KIND}/{name} created (dry run)\n"))?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(DryRun::Server) => create_and_follow(ctx, run, &args.after, true).await,
        Some(DryRun::None) | None => create_and_follow(ctx, run, &args.after, false).await,
    }
}

/// Creates `run`, prints it, and with `--wait` or `--logs` follows it to its end.
async fn create_and_follow(
    ctx: &Ctx,
    run: JobRun,
    after: &AfterCreate,
    dry_run: bool,
) -> Result<ExitCode, PluginError> {
    if after.timeout.is_some() && !(after.wait || after.logs) {
        return Err(PluginError::Invalid("--timeout needs --wait or --logs".to_owned()));
    }
    let params = PostParams { dry_run, ..PostParams::default() };
    let created = ctx.runs().create(&params, &run).await.map_err(PluginError::api("create", "jobrun"))?;
    match after.output {
        Some(output) => print_objects(std::slice::from_ref(&created), RUN_KIND, output, Shape::One)?,
        None => {
            let note = if dry_run { " (server dry run)" } else { "" };
            out(&format!("{RUN_KIND}/{} created{note}\n", created.name_any()))?;
        }
    }
    if dry_run || !(after.wait || after.logs) {
        return Ok(ExitCode::SUCCESS);
    }
    let quiet = after.output.is_some();
    // One deadline for the logs and the wait together.
    let deadline = after.timeout.and_then(|limit| tokio::time::Instant::now().checked_add(limit));
    if after.logs {
        let follow = LogsArgs { name: created.name_any(), follow: true, container: None, all_pods: false };
        let logs = follow_logs(ctx, &follow, created.clone());
        let done = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, logs).await.ok(),
            None => Some(logs.await),
        };
        match done {
            // The run as the logs ended with it: its outcome, even if it is deleted since (a TTL of 0).
            Some(result) => return report(&result?, quiet),
            None => return timed_out(ctx, &created).await,
        }
    }
    let left = deadline.map(|d| d.saturating_duration_since(tokio::time::Instant::now()));
    wait(ctx, &created, left, quiet).await
}

/// Exit 2 with the run's state at the deadline, or its outcome if it finished meanwhile.
async fn timed_out(ctx: &Ctx, run: &JobRun) -> Result<ExitCode, PluginError> {
    let latest = ctx.runs().get_opt(&run.name_any()).await.ok().flatten().unwrap_or_else(|| run.clone());
    if is_finished(&latest) {
        return report(&latest, false);
    }
    let phase = view::phase(&latest);
    let phase = if phase.is_empty() { "no status yet" } else { phase };
    eprintln!("error: timed out waiting for {RUN_KIND}/{} to finish (it is {phase})", latest.name_any());
    Ok(ExitCode::from(EXIT_TIMED_OUT))
}

/// A finished run's outcome: 0 and a line when it succeeded (on stderr if
/// `quiet`, stdout holding `-o` output), else 1 with its reason and message.
fn report(run: &JobRun, quiet: bool) -> Result<ExitCode, PluginError> {
    let name = run.name_any();
    if view::phase(run) == "Succeeded" {
        let line = format!("{RUN_KIND}/{name} Succeeded\n");
        if quiet {
            eprint!("{line}")
        } else {
            out(&line)?
        }
        Ok(ExitCode::from(EXIT_SUCCEEDED))
    } else {
        let reason = view::reason(run);
        let message = view::message(run);
        let message = message.strip_prefix(&format!("{reason}: ")).unwrap_or(&message);
        eprintln!("{RUN_KIND}/{name} Failed: {reason}: {message}");
        Ok(ExitCode::from(EXIT_FAILED))
    }
}

/// The run once it is finished, watched (the watch retries with backoff:
/// an API server restart or an expired resourceVersion is not an outcome);
/// `None` if it is deleted first.
async fn finished(ctx: &Ctx, name: &str) -> Option<JobRun> {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = watcher(ctx.runs(), config).default_backoff().boxed();
    let mut listed = None;
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Init) => listed = Some(false),
            Ok(watcher::Event::InitApply(run) | watcher::Event::Apply(run)) => {
                listed = listed.map(|_| true);
                if is_finished(&run) {
                    return Some(run);
                }
            }
            Ok(watcher::Event::InitDone) if listed == Some(false) => return None,
            Ok(watcher::Event::InitDone) => listed = None,
            Ok(watcher::Event::Delete(_)) => return None,
            Err(_) => {} // retried by the backoff
        }
    }
    None
}

/// Waits for `run` to finish: 0 succeeded, 1 failed (with its reason and
/// message), 2 timed out.
async fn wait(ctx: &Ctx, run: &JobRun, timeout: Option<Duration>, quiet: bool) -> Result<ExitCode, PluginError> {
    let name = run.name_any();
    let outcome = match timeout {
        Some(limit) => match tokio::time::timeout(limit, finished(ctx, &name)).await {
            Ok(outcome) => outcome,
            Err(_) => return timed_out(ctx, run).await,
        },
        None => finished(ctx, &name).await,
    };
    match outcome {
        Some(latest) => report(&latest, quiet),
        None => Err(PluginError::Invalid(format!("{RUN_KIND}/{name} was deleted before it finished"))),
    }
}

async fn get(ctx: &Ctx, args: GetArgs) -> Result<ExitCode, PluginError> {
    let api: Api<JobRun> = if args.all_namespaces { Api::all(ctx.client.clone()) } else { ctx.runs() };
    let wide = args.output == Some(ListOutput::Wide);
    let headers = view::run_headers(args.all_namespaces, wide);
    let row = |run: &JobRun| view::run_row(run, now(), args.all_namespaces, wide);
    let object_output = args.output.and_then(ListOutput::object);
    let print = |runs: &[JobRun], header: bool| -> Result<(), PluginError> {
        let shape = match (header, args.name.is_some()) {
            (false, _) => Shape::Stream,
            (true, true) => Shape::One,
            (true, false) => Shape::List,
        };
        match object_output {
            Some(output) if args.watch => print_objects(runs, RUN_KIND, output, Shape::Stream),
            Some(output) => print_objects(runs, RUN_KIND, output, shape),
            None if runs.is_empty() && header => {
                eprintln!(
                    "No resources found{}.",
                    if args.all_namespaces { String::new() } else { format!(" in {} namespace", ctx.namespace) }
                );
                Ok(())
            }
            None => {
                let rows: Vec<Vec<Cell>> = runs.iter().map(row).collect();
                let text = table(&headers, &rows, ctx.colour);
                out(&if header { text } else { text.lines().skip(1).map(|l| format!("{l}\n")).collect() })
            }
        }
    };
    let mut config = watcher::Config::default();
    if let Some(selector) = &args.selector {
        config = config.labels(selector);
    }
    if let Some(name) = &args.name {
        config = config.fields(&format!("metadata.name={name}"));
    }
    if !args.watch {
        let runs = match &args.name {
            Some(name) => vec![ctx.run(name).await?],
            None => {
                let mut params = ListParams::default();
                if let Some(selector) = &args.selector {
                    params = params.labels(selector);
                }
                let mut items = api.list(&params).await.map_err(PluginError::api("list", "jobruns"))?.items;
                items.sort_by_key(|r| (r.namespace(), r.name_any()));
                items
            }
        };
        print(&runs, true)?;
        return Ok(ExitCode::SUCCESS);
    }
    // -w: the list once complete, then each change (a re-list after the
    // watch broke prints what it lists), as `kubectl get -w`, until interrupted.
    let mut initial = Vec::new();
    let mut listed = false;
    let mut events = watcher(api, config).default_backoff().boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Init) => initial.clear(),
            Ok(watcher::Event::InitApply(run)) if !listed => initial.push(run),
            Ok(watcher::Event::InitDone) if !listed => {
                listed = true;
                initial.sort_by_key(|r| (r.namespace(), r.name_any()));
                print(&initial, true)?;
            }
            Ok(watcher::Event::InitDone) => {}
            Ok(watcher::Event::InitApply(run) | watcher::Event::Apply(run) | watcher::Event::Delete(run)) => {
                print(std::slice::from_ref(&run), false)?
            }
            Err(_) => {} // retried by the backoff
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn describe(ctx: &Ctx, name: &str) -> Result<ExitCode, PluginError> {
    let run = ctx.run(name).await?;
    let job = ctx.job(&run).await?;
    let pods = ctx.pods_of(job.as_ref()).await?;
    // The Events of each object, by its uid (not every Event of the namespace).
    let uids: Vec<String> = std::iter::once(run.uid())
        .chain(std::iter::once(job.as_ref().and_then(ResourceExt::uid)))
        .chain(pods.iter().map(ResourceExt::uid))
        .flatten()
        .collect();
    let api: Api<Event> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let mut events = Vec::new();
    for uid in &uids {
        let params = ListParams::default().fields(&format!("involvedObject.uid={uid}"));
        events.extend(api.list(&params).await.map_err(PluginError::api("list", "events"))?.items);
    }
    out(&view::describe(&run, job.as_ref(), &pods, &events, now()))?;
    Ok(ExitCode::SUCCESS)
}

/// Whether a pod has a log to read: a container of it runs or ran.
fn has_started(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    matches!(status.and_then(|s| s.phase.as_deref()), Some("Running" | "Succeeded"))
        || status.and_then(|s| s.container_statuses.as_ref()).is_some_and(|c| {
            c.iter().any(|c| c.state.as_ref().is_some_and(|s| s.running.is_some() || s.terminated.is_some()))
        })
}

fn is_over(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

/// The container to read: `--container`, else the run's target (its
/// `spec.container`, else the pod's first, which is the template's first).
fn container_of(args: &LogsArgs, run: &JobRun, pod: &Pod) -> Option<String> {
    args.container
        .clone()
        .or_else(|| run.spec.container.clone())
        .or_else(|| pod.spec.as_ref().and_then(|s| s.containers.first()).map(|c| c.name.clone()))
}

/// `--all-pods` prefixes each line with its pod and container, as `kubectl logs --prefix`.
fn line_prefix(args: &LogsArgs, pod: &Pod, container: Option<&str>) -> String {
    if args.all_pods { format!("[pod/{}/{}] ", pod.name_any(), container.unwrap_or_default()) } else { String::new() }
}

async fn logs(ctx: &Ctx, args: &LogsArgs) -> Result<(), PluginError> {
    let run = ctx.run(&args.name).await?;
    if args.follow {
        return follow_logs(ctx, args, run).await.map(|_| ());
    }
    let job = ctx.job(&run).await?;
    let pods = ctx.pods_of(job.as_ref()).await?;
    let chosen: Vec<&Pod> = if args.all_pods { pods.iter().collect() } else { pods.last().into_iter().collect() };
    if chosen.is_empty() {
        return Err(no_pods(&run, job.is_some()));
    }
    for pod in chosen {
        let container = container_of(args, &run, pod);
        let params = LogParams { container: container.clone(), ..LogParams::default() };
        let text = ctx
            .pods()
            .logs(&pod.name_any(), &params)
            .await
            .map_err(PluginError::api("read logs of", format!("pod {}", pod.name_any())))?;
        let prefix = line_prefix(args, pod, container.as_deref());
        out(&text.lines().map(|l| format!("{prefix}{l}\n")).collect::<String>())?;
    }
    Ok(())
}

fn no_pods(run: &JobRun, has_job: bool) -> PluginError {
    if has_job {
        return PluginError::Invalid(format!("{RUN_KIND}/{} has no pod with a log (yet)", run.name_any()));
    }
    let why = match view::reason(run) {
        r if r.is_empty() => String::new(),
        r => {
            let message = view::message(run);
            format!(" ({r}: {})", message.strip_prefix(&format!("{r}: ")).unwrap_or(&message))
        }
    };
    let state = if is_finished(run) { "ended without a Job" } else { "has no Job yet" };
    PluginError::NoJob { name: run.name_any(), state, why }
}

/// `logs -f`: each pod of the run's Job in turn, oldest not yet read
/// first (all of them with `--all-pods`, else from the newest on), until
/// the run is finished and every pod has been read. Returns the run as it
/// finished (it may be deleted right after, by a TTL of 0).
async fn follow_logs(ctx: &Ctx, args: &LogsArgs, run: JobRun) -> Result<JobRun, PluginError> {
    let name = run.name_any();
    // Woken by any change of the run or of the pods labelled for it.
    let runs = watcher(ctx.runs(), watcher::Config::default().fields(&format!("metadata.name={name}")))
        .default_backoff()
        .map(|_| ());
    let pods = watcher(ctx.pods(), watcher::Config::default().labels(&format!("{LABEL_RUN}={}", label_safe(&name))))
        .default_backoff()
        .map(|_| ());
    let mut changes = futures::stream::select(runs, pods).boxed();
    let mut read: HashSet<String> = HashSet::new();
    let mut first = true;
    let mut streamed = false;
    let mut last = run;
    loop {
        let Some(run) = ctx.runs().get_opt(&name).await.map_err(PluginError::api("get", format!("jobrun {name}")))?
        else {
            return if is_finished(&last) {
                Ok(last)
            } else {
                Err(PluginError::Invalid(format!("{RUN_KIND}/{name} was deleted before it finished")))
            };
        };
        last = run.clone();
        let job = ctx.job(&run).await?;
        let pods = ctx.pods_of(job.as_ref()).await?;
        if first && !args.all_pods {
            // Older pods are history: start at the newest.
            pods.iter().rev().skip(1).filter_map(ResourceExt::uid).for_each(|uid| {
                read.insert(uid);
            });
        }
        first = false;
        let next = pods.iter().find(|p| p.uid().is_some_and(|uid| !read.contains(&uid)) && has_started(p));
        match next {
            Some(pod) => {
                if let Some(uid) = pod.uid() {
                    read.insert(uid);
                }
                stream_pod(ctx, args, &run, pod).await?;
                streamed = true;
            }
            // Every pod that ran has been read: done once the run is.
            None if is_finished(&run) => {
                // A run that ended with no pod to read (no Job, no pod that ran) says why.
                return if streamed { Ok(run) } else { Err(no_pods(&run, job.is_some())) };
            }
            None => {
                if changes.next().await.is_none() {
                    return Ok(run);
                }
            }
        }
    }
}

/// Streams one pod's log until it ends, or the pod is over and the stream
/// has been quiet for a second (a kubelet ends the stream itself; this bounds one that does not).
/// A container with no log (it never started) is noted on stderr.
async fn stream_pod(ctx: &Ctx, args: &LogsArgs, run: &JobRun, pod: &Pod) -> Result<(), PluginError> {
    let pod_name = pod.name_any();
    let container = container_of(args, run, pod);
    let params = LogParams { follow: true, container: container.clone(), ..LogParams::default() };
    let prefix = line_prefix(args, pod, container.as_deref());
    if !args.all_pods {
        eprintln!("==> pod/{pod_name}");
    }
    let reader = match ctx.pods().log_stream(&pod_name, &params).await {
        Ok(reader) => reader,
        Err(kube::Error::Api(status)) if status.code == 400 => {
            eprintln!("(no log of pod/{pod_name}: {})", status.message);
            return Ok(());
        }
        Err(source) => return Err(PluginError::Api { verb: "read logs of", what: format!("pod {pod_name}"), source }),
    };
    let mut lines = reader.lines();
    let over = await_condition(ctx.pods(), &pod_name, |p: Option<&Pod>| p.is_none_or(is_over));
    tokio::pin!(over);
    let mut pod_over = false;
    // A watch of the pod that fails (no `watch` right on pods) stops being
    // asked; the stream then ends when the server ends it.
    let mut watching = true;
    loop {
        let line = if pod_over {
            match tokio::time::timeout(Duration::from_secs(1), lines.next()).await {
                Ok(line) => line,
                Err(_) => return Ok(()),
            }
        } else {
            tokio::select! {
                line = lines.next() => line,
                result = &mut over, if watching => {
                    match result {
                        Ok(_) => pod_over = true,
                        Err(_) => watching = false,
                    }
                    continue;
                }
            }
        };
        match line {
            Some(Ok(line)) => out(&format!("{prefix}{line}\n"))?,
            Some(Err(source)) => return Err(PluginError::ReadLog { pod: pod_name.clone(), source }),
            None => return Ok(()),
        }
    }
}

async fn cancel(ctx: &Ctx, name: &str) -> Result<ExitCode, PluginError> {
    let run = ctx.run(name).await?;
    if is_finished(&run) {
        out(&format!("{RUN_KIND}/{name} already finished ({}): nothing to cancel\n", view::phase(&run)))?;
        return Ok(ExitCode::SUCCESS);
    }
    if run.spec.cancel == Some(true) {
        out(&format!("{RUN_KIND}/{name} is already being cancelled\n"))?;
        return Ok(ExitCode::SUCCESS);
    }
    let patch = Patch::Merge(serde_json::json!({"spec": {"cancel": true}}));
    ctx.runs()
        .patch(name, &PatchParams::default(), &patch)
        .await
        .map_err(PluginError::api("cancel", format!("jobrun {name}")))?;
    out(&format!("{RUN_KIND}/{name} cancel requested\n"))?;
    Ok(ExitCode::SUCCESS)
}

async fn templates(ctx: &Ctx, output: Option<ListOutput>) -> Result<ExitCode, PluginError> {
    let mut items =
        ctx.templates().list(&ListParams::default()).await.map_err(PluginError::api("list", "jobtemplates"))?.items;
    items.sort_by_key(ResourceExt::name_any);
    let object = output.and_then(ListOutput::object);
    if let Some(output) = object {
        print_objects(&items, TEMPLATE_KIND, output, Shape::List)?;
    } else if items.is_empty() {
        eprintln!("No resources found in {} namespace.", ctx.namespace);
    } else {
        let rows: Vec<Vec<Cell>> = items.iter().map(|t| view::template_row(t, now())).collect();
        out(&table(&view::TEMPLATE_HEADERS, &rows, ctx.colour))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the candidates for kubectl's completion hook; a cluster that
/// cannot be reached offers nothing (completion never prints errors).
pub async fn complete(global: &Global, words: &[String]) {
    let partial = words.last().map(String::as_str).unwrap_or_default();
    let names: Vec<String> = match wanted(words) {
        Wanted::Subcommands => crate::complete::subcommands(),
        Wanted::Shells => ["bash", "zsh", "fish"].map(str::to_owned).to_vec(),
        Wanted::Contexts => {
            Kubeconfig::read().map(|k| k.contexts.into_iter().map(|c| c.name).collect()).unwrap_or_default()
        }
        Wanted::Nothing => Vec::new(),
        wanted @ (Wanted::Runs | Wanted::Templates | Wanted::Namespaces) => {
            let global =
                Global { namespace: global.namespace.clone().or_else(|| namespace_in(words)), ..global.clone() };
            // A <TAB> never hangs on a cluster that does not answer.
            let lookup = async {
                match Ctx::new(&global).await {
                    Ok(ctx) => names_of(&ctx, wanted).await,
                    Err(_) => Vec::new(),
                }
            };
            tokio::time::timeout(COMPLETION_LIMIT, lookup).await.unwrap_or_default()
        }
    };
    let _ = out(&cobra_output(names.iter().map(String::as_str), partial));
}

/// `-n NS` among the words being completed.
fn namespace_in(words: &[String]) -> Option<String> {
    words.windows(2).find(|w| w[0] == "-n" || w[0] == "--namespace").map(|w| w[1].clone())
}

async fn names_of(ctx: &Ctx, wanted: Wanted) -> Vec<String> {
    let params = ListParams::default();
    let names = match wanted {
        Wanted::Runs => {
            ctx.runs().list_metadata(&params).await.map(|l| l.items.iter().map(ResourceExt::name_any).collect())
        }
        Wanted::Templates => {
            ctx.templates().list_metadata(&params).await.map(|l| l.items.iter().map(ResourceExt::name_any).collect())
        }
        Wanted::Namespaces => Api::<Namespace>::all(ctx.client.clone())
            .list_metadata(&params)
            .await
            .map(|l| l.items.iter().map(ResourceExt::name_any).collect()),
        _ => Ok(Vec::new()),
    };
    names.unwrap_or_default()
}
