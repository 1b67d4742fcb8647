//! The command line: `controller`, `crd` and `render`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use k8s_openapi::api::batch::v1::{Job, JobStatus};
use serde::de::DeserializeOwned;

use crate::crd::{self, JobRun, JobTemplate};
use crate::merge;
use crate::reconciler::{self, Scope};
use crate::telemetry;
use crate::yaml;

#[derive(Parser, Debug)]
#[command(name = "job-template-run", version, about = "JobTemplates and JobRuns for Kubernetes Jobs")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the operator against the cluster of the kubeconfig (or in-cluster).
    Controller(Box<ControllerArgs>),
    /// Remove the operator's finalizer from every Job it manages (the
    /// uninstall step: run it after scaling the operator to zero).
    ReleaseFinalizers {
        /// Only these namespaces (repeat or comma-separate); all when empty.
        #[arg(long = "namespace", value_delimiter = ',')]
        namespaces: Vec<String>,
    },
    /// Print the CustomResourceDefinitions, generated from the Rust types.
    Crd {
        /// Write one `<name>.yaml` per CRD into this folder instead of printing.
        #[arg(long)]
        output_dir: Option<PathBuf>,
    },
    /// Print, offline, the Job the operator would create for a run, and with
    /// --job-status the run status it would write for a Job in that state.
    Render {
        /// A JobTemplate YAML file.
        #[arg(long)]
        template: PathBuf,
        /// A JobRun YAML file; it must carry metadata.namespace and metadata.uid.
        #[arg(long)]
        run: PathBuf,
        /// A Job (`kubectl get job NAME -o yaml`) or a bare Job status YAML file.
        #[arg(long)]
        job_status: Option<PathBuf>,
    },
}

#[derive(clap::Args, Debug)]
pub struct ControllerArgs {
    /// Watch only these namespaces (repeat or comma-separate); all when empty.
    #[arg(long = "namespace", env = "JTR_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Address of the /healthz, /readyz and /metrics endpoints.
    #[arg(long, env = "JTR_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Log format.
    #[arg(long, env = "JTR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter, in `tracing` EnvFilter syntax (e.g. `info,kube=warn`).
    #[arg(long, env = "JTR_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// How long a run waits for a missing JobTemplate before it fails with
    /// `TemplateNotFound` (so a run applied just before its template works).
    #[arg(long, env = "JTR_TEMPLATE_GRACE_SECONDS", default_value_t = 10)]
    pub template_grace_seconds: u64,
    /// How often an unfinished run is looked at again with no event (plus
    /// up to a tenth of it, spread by run), so a missed change is noticed.
    #[arg(long, env = "JTR_RESYNC_SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub resync_seconds: u64,
    /// Finished runs kept per template, namespace and outcome when the
    /// template's runPolicy sets no history limit (the oldest are deleted).
    /// Unset: all are kept.
    #[arg(long, env = "JTR_DEFAULT_HISTORY_LIMIT")]
    pub default_history_limit: Option<u32>,
    /// Reconciles at once, per watched namespace (or for all).
    #[arg(long, env = "JTR_CONCURRENCY", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// How long the watches may fail before /healthz answers 503.
    #[arg(long, env = "JTR_WATCH_FAILURE_SECONDS", default_value_t = 120)]
    pub watch_failure_seconds: u64,
    /// Reconcile only while holding a coordination.k8s.io Lease, so that of
    /// several replicas one works and the others stand by.
    #[arg(long, env = "JTR_LEADER_ELECTION")]
    pub leader_election: bool,
    /// Namespace of the Lease: the operator's own (the chart passes the pod's).
    #[arg(long, env = "JTR_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// Name of the Lease; operators sharing it elect one leader.
    #[arg(long, env = "JTR_LEADER_ELECTION_LEASE_NAME", default_value = "job-template-run")]
    pub leader_election_lease_name: String,
    /// This replica's name in the Lease: the pod name.
    #[arg(long, env = "POD_NAME")]
    pub leader_election_identity: Option<String>,
    /// How long the Lease holds without renewal: another replica takes over
    /// this long after a leader vanishes without releasing it.
    #[arg(long, env = "JTR_LEASE_DURATION_SECONDS", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(3..=3600))]
    pub lease_duration_seconds: u64,
    /// Callback attempts made at once (per watched namespace), beside the
    /// reconciles: a hanging receiver holds one of these, never a reconcile.
    #[arg(long, env = "JTR_CALLBACK_CONCURRENCY", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub callback_concurrency: u16,
    /// Callback attempts per run before giving up.
    #[arg(long, env = "JTR_CALLBACK_MAX_ATTEMPTS", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub callback_max_attempts: u32,
    /// The delay after a callback's first failed attempt, in milliseconds;
    /// it doubles per attempt (plus up to a quarter of jitter).
    #[arg(long, env = "JTR_CALLBACK_INITIAL_DELAY_MS", default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub callback_initial_delay_ms: u64,
    /// The longest delay between callback attempts (also caps Retry-After).
    #[arg(long, env = "JTR_CALLBACK_MAX_DELAY_SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub callback_max_delay_seconds: u64,
    /// How long one callback attempt may take, connect to last byte.
    #[arg(long, env = "JTR_CALLBACK_TIMEOUT_SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub callback_timeout_seconds: u64,
    /// Callback hosts and networks (CIDRs) allowed although the SSRF guard
    /// refuses them (private, loopback, link-local): receivers inside the
    /// cluster, e.g. `hooks.tools.svc.cluster.local,10.96.0.0/12`.
    #[arg(long = "callback-allow", env = "JTR_CALLBACK_ALLOW", value_delimiter = ',')]
    pub callback_allow: Vec<String>,
    /// A file with the key that signs callback bodies (HMAC-SHA256 in
    /// `X-Signature-256`); the chart mounts a Secret there. No signature without.
    #[arg(long, env = "JTR_CALLBACK_SIGNING_KEY_FILE")]
    pub callback_signing_key_file: Option<PathBuf>,
}

impl ControllerArgs {
    /// The operator's options from the flags.
    pub fn options(&self) -> Result<reconciler::Options, CliError> {
        let mut options = reconciler::Options::new(Scope::from_namespaces(self.namespaces.clone()), self.listen);
        if self.leader_election {
            let namespace = self.leader_election_namespace.clone().ok_or(CliError::LeaseNamespace)?;
            let identity = self
                .leader_election_identity
                .clone()
                .unwrap_or_else(|| format!("{}-{}", MANAGER_IDENTITY_PREFIX, std::process::id()));
            options.leader = Some(reconciler::LeaderOptions {
                namespace,
                lease_name: self.leader_election_lease_name.clone(),
                identity,
                lease_duration: Duration::from_secs(self.lease_duration_seconds),
            });
        }
        options.settings.template_grace = Duration::from_secs(self.template_grace_seconds);
        options.settings.resync = Duration::from_secs(self.resync_seconds);
        options.settings.history_limit = self.default_history_limit;
        options.concurrency = self.concurrency;
        options.callback_concurrency = self.callback_concurrency;
        options.settings.callback = merge::CallbackSettings {
            max_attempts: self.callback_max_attempts,
            initial_delay: Duration::from_millis(self.callback_initial_delay_ms),
            max_delay: Duration::from_secs(self.callback_max_delay_seconds),
            timeout: Duration::from_secs(self.callback_timeout_seconds),
        };
        options.callback.guard.allow = merge::AllowList::parse(&self.callback_allow);
        options.callback.signing_key_file = self.callback_signing_key_file.clone();
        options.watch_failure_bound = Duration::from_secs(self.watch_failure_seconds);
        Ok(options)
    }
}

/// The Lease identity of a replica that has no POD_NAME: this prefix and its pid.
const MANAGER_IDENTITY_PREFIX: &str = "job-template-run";

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Everything that ends the process with a non-zero exit and a one-line cause.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Parse { path: PathBuf, source: serde_norway::Error },
    #[error("{path}: expected kind {expected}, found {found:?}")]
    WrongKind { path: PathBuf, expected: String, found: String },
    #[error("{path}: --job-status must be a Job or a Job status: {cause}")]
    NotAJobStatus { path: PathBuf, cause: String },
    #[error("{path}: {source}")]
    JobStatus { path: PathBuf, source: serde_json::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot serialize the output: {0}")]
    Serialize(serde_norway::Error),
    #[error("{}: {}", .0.reason, .0.message)]
    Refused(merge::Failure),
    #[error(transparent)]
    Manifest(#[from] crd::ManifestError),
    #[error("--log-level: {0}")]
    Logging(#[from] telemetry::LoggingError),
    #[error(transparent)]
    Controller(#[from] reconciler::StartError),
    #[error(transparent)]
    Release(#[from] reconciler::ReleaseError),
    #[error(
        "--leader-election needs --leader-election-namespace (or JTR_LEADER_ELECTION_NAMESPACE): the namespace of the Lease"
    )]
    LeaseNamespace,
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Controller(args) => {
            telemetry::init_logging(&args.log_level, args.log_format == LogFormat::Json)?;
            reconciler::run(args.options()?).await?;
            Ok(())
        }
        Command::ReleaseFinalizers { namespaces } => {
            let client = kube::Client::try_default().await.map_err(reconciler::StartError::Client)?;
            let released = reconciler::release_finalizers(&client, &Scope::from_namespaces(namespaces)).await?;
            println!("released {released} Job(s)");
            Ok(())
        }
        Command::Crd { output_dir } => print_crds(output_dir.as_deref()),
        Command::Render { template, run, job_status } => {
            print!("{}", render(&template, &run, job_status.as_deref())?);
            Ok(())
        }
    }
}

fn print_crds(output_dir: Option<&Path>) -> Result<(), CliError> {
    let mut documents = Vec::new();
    for definition in crd::manifests() {
        let yaml = crd::to_yaml(&definition)?;
        match output_dir {
            Some(dir) => {
                let path = dir.join(crd::crd_file_name(&definition));
                std::fs::write(&path, &yaml).map_err(|source| CliError::Write { path, source })?;
            }
            None => documents.push(yaml),
        }
    }
    if !documents.is_empty() {
        print!("---\n{}", documents.join("---\n"));
    }
    Ok(())
}

/// The `render` command's output: the Job, then optionally the run status.
pub fn render(template: &Path, run: &Path, job_status: Option<&Path>) -> Result<String, CliError> {
    let template: JobTemplate = read_yaml(template)?;
    let run: JobRun = read_yaml(run)?;
    // The operator's check before it creates a Job: the template's policy.
    merge::admit(&template, &run).map_err(CliError::Refused)?;
    let job: Job =
        merge::render(&template, &run).map_err(|e| CliError::Refused(merge::Failure::invalid_template(&e)))?;
    let mut out = yaml::to_string(&job).map_err(CliError::Serialize)?;
    if let Some(path) = job_status {
        let observed = Job { status: Some(read_job_status(path)?), ..job };
        out.push_str("---\n");
        out.push_str(&yaml::to_string(&merge::status(Some(&observed), &run)).map_err(CliError::Serialize)?);
    }
    Ok(out)
}

/// Reads `--job-status`: a whole Job (its `.status` is used) or a bare Job
/// status. Every field of a JobStatus is optional, so anything else (another
/// object, a Job without its `kind`) would parse as an empty status and show
/// a finished Job as `Pending`; it is refused instead.
fn read_job_status(path: &Path) -> Result<JobStatus, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::Read { path: path.to_path_buf(), source })?;
    let value: serde_json::Value =
        serde_norway::from_str(&text).map_err(|source| CliError::Parse { path: path.to_path_buf(), source })?;
    let refuse = |cause: String| CliError::NotAJobStatus { path: path.to_path_buf(), cause };
    let serde_json::Value::Object(mut fields) = value else {
        return Err(refuse(format!("found {}", json_type(&value))));
    };
    let status = match fields.get("kind") {
        Some(kind) if kind == "Job" => fields.remove("status").unwrap_or_default(),
        Some(kind) => return Err(refuse(format!("found kind {kind}"))),
        None => {
            let known = job_status_fields();
            let unknown: Vec<&str> =
                fields.keys().map(String::as_str).filter(|key| !known.iter().any(|k| k == key)).collect();
            if !unknown.is_empty() {
                return Err(refuse(format!("unknown top-level keys {}", unknown.join(", "))));
            }
            serde_json::Value::Object(fields)
        }
    };
    let status = if status.is_null() { serde_json::Value::Object(Default::default()) } else { status };
    serde_json::from_value(status).map_err(|source| CliError::JobStatus { path: path.to_path_buf(), source })
}

/// The field names of a batch/v1 JobStatus, from its OpenAPI schema.
fn job_status_fields() -> Vec<String> {
    let schema = schemars::SchemaGenerator::default().into_root_schema_for::<JobStatus>();
    schema
        .get("properties")
        .and_then(|p| p.as_object())
        .map(|properties| properties.keys().cloned().collect())
        .unwrap_or_default()
}

fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "an empty document",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a mapping",
    }
}

/// Reads one object, checking its `kind` when the type has one (a JobRun
/// passed as --template would otherwise parse as an empty JobSpec).
fn read_yaml<T: DeserializeOwned + kube::Resource<DynamicType = ()>>(path: &Path) -> Result<T, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::Read { path: path.to_path_buf(), source })?;
    let parse_error = |source| CliError::Parse { path: path.to_path_buf(), source };
    let expected = T::kind(&());
    let meta: kube::core::TypeMeta = serde_norway::from_str(&text).map_err(parse_error)?;
    if meta.kind != expected {
        return Err(CliError::WrongKind {
            path: path.to_path_buf(),
            expected: expected.into_owned(),
            found: meta.kind,
        });
    }
    serde_norway::from_str(&text).map_err(parse_error)
}
