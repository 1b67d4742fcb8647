//! The command line: kubectl's global flags, one subcommand per verb.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `kubectl jobrun`: start, watch, debug, cancel and rerun JobRuns.
#[derive(Parser, Debug)]
#[command(name = "kubectl-jobrun", bin_name = "kubectl jobrun", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// kubectl's flags for which cluster and namespace (`KUBECONFIG` is read
/// when `--kubeconfig` is not given, as kubectl does).
#[derive(Args, Debug, Clone, Default, PartialEq)]
pub struct Global {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The namespace (default: the context's, else `default`).
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
}

#[derive(Subcommand, Debug, PartialEq)]
pub enum Command {
    /// Create a JobRun from a template, checked against the template's policy first.
    Create(Box<CreateArgs>),
    /// List runs, or show one: NAME, TEMPLATE, STATUS, REASON, DURATION, AGE.
    Get(GetArgs),
    /// A run's phase and conditions, its Job and pods, the callback, and the Events.
    Describe(RunArg),
    /// The logs of a run's pods.
    Logs(LogsArgs),
    /// Wait for a run to finish: exit 0 when it succeeded, 1 when it failed, 2 on timeout.
    Wait(WaitArgs),
    /// Cancel a run: its Job is suspended and the run ends Failed/Cancelled.
    Cancel(RunArg),
    /// Create a new run with the same spec as RUN.
    Rerun(RerunArgs),
    /// The templates of the namespace and the overrides their policy allows.
    Templates(TemplatesArgs),
    /// Print a shell completion script.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Completion candidates for kubectl's plugin hook (cobra's format).
    #[command(name = "__complete", hide = true)]
    Complete {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        words: Vec<String>,
    },
}

/// How `create` and `rerun` print the object they made.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectOutput {
    Yaml,
    Json,
    Name,
}

/// How `get` and `templates` print.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListOutput {
    Wide,
    Yaml,
    Json,
    Name,
}

/// kubectl's `--dry-run` values.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DryRun {
    None,
    Client,
    Server,
}

#[derive(Args, Debug, PartialEq)]
pub struct CreateArgs {
    /// The JobTemplate of the namespace to run.
    pub template: String,
    /// The run's name (default: generated from the template's name).
    #[arg(conflicts_with = "generate_name")]
    pub name: Option<String>,
    /// A prefix for a generated name.
    #[arg(long, value_name = "PREFIX")]
    pub generate_name: Option<String>,
    #[command(flatten)]
    pub overrides: Overrides,
    /// With `--`, the words after it are the container's command, not its args.
    #[arg(long)]
    pub command: bool,
    #[command(flatten)]
    pub after: AfterCreate,
    /// `client`: print what would be sent; `server`: the API server's dry run.
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "client")]
    pub dry_run: Option<DryRun>,
    /// The args (or with `--command`, the command) of the target container.
    #[arg(last = true, value_name = "ARGS")]
    pub words: Vec<String>,
}

/// What a run may change, as flags (the template's policy says which it allows).
#[derive(Args, Debug, PartialEq, Default)]
pub struct Overrides {
    /// An env variable of the target container (repeatable).
    #[arg(short = 'e', long = "env", value_name = "NAME=VALUE", value_parser = key_value)]
    pub env: Vec<(String, String)>,
    /// The container to override (default: the template's first).
    #[arg(long, value_name = "NAME")]
    pub container: Option<String>,
    /// Resource requests, e.g. `cpu=500m,memory=1Gi` (repeatable).
    #[arg(long, value_name = "NAME=QUANTITY,…", value_parser = key_values)]
    pub request: Vec<Vec<(String, String)>>,
    /// Resource limits, e.g. `memory=2Gi` (repeatable).
    #[arg(long, value_name = "NAME=QUANTITY,…", value_parser = key_values)]
    pub limit: Vec<Vec<(String, String)>>,
    /// A label on the Job and its pods (repeatable).
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE", value_parser = key_value)]
    pub labels: Vec<(String, String)>,
    /// An annotation on the Job and its pods (repeatable).
    #[arg(long = "annotation", value_name = "KEY=VALUE", value_parser = key_value)]
    pub annotations: Vec<(String, String)>,
    /// The Job's activeDeadlineSeconds.
    #[arg(long, value_name = "SECONDS")]
    pub active_deadline_seconds: Option<i64>,
    /// The Job's backoffLimit.
    #[arg(long, value_name = "N")]
    pub backoff_limit: Option<i32>,
    /// The Job's parallelism.
    #[arg(long, value_name = "N")]
    pub parallelism: Option<i32>,
    /// The Job's completions.
    #[arg(long, value_name = "N")]
    pub completions: Option<i32>,
    /// Delete the run this long after it finished.
    #[arg(long, value_name = "SECONDS")]
    pub ttl_seconds_after_finished: Option<i32>,
}

/// What `create` and `rerun` do once the run exists.
#[derive(Args, Debug, PartialEq, Default)]
pub struct AfterCreate {
    /// Wait for the run to finish; the exit code is `wait`'s.
    #[arg(long)]
    pub wait: bool,
    /// Print the run's logs as it runs (implies --wait).
    #[arg(long, conflicts_with = "output")]
    pub logs: bool,
    /// How long to wait, in kubectl's form (`90s`, `5m`, `1h30m`; default: no limit).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub timeout: Option<Duration>,
    /// Print the created run as yaml, json, or `jobrun.cellbytes.io/NAME`.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<ObjectOutput>,
}

#[derive(Args, Debug, PartialEq)]
pub struct GetArgs {
    /// One run (default: all runs of the namespace).
    #[arg(conflicts_with_all = ["all_namespaces", "selector"])]
    pub name: Option<String>,
    /// Runs of every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// After listing, print each change.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Only runs with these labels (a label selector).
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<ListOutput>,
}

#[derive(Args, Debug, PartialEq)]
pub struct RunArg {
    /// The JobRun.
    pub name: String,
}

#[derive(Args, Debug, PartialEq)]
pub struct LogsArgs {
    /// The JobRun.
    pub name: String,
    /// Follow the logs until the run finishes, across pod retries.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// The container (default: the run's target container).
    #[arg(short = 'c', long, value_name = "NAME")]
    pub container: Option<String>,
    /// Every pod of the run's Job, oldest first, each line prefixed with its pod (default: the newest pod).
    #[arg(long)]
    pub all_pods: bool,
}

#[derive(Args, Debug, PartialEq)]
pub struct WaitArgs {
    /// The JobRun.
    pub name: String,
    /// How long to wait, in kubectl's form (`90s`, `5m`, `1h30m`; default: no limit).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub timeout: Option<Duration>,
}

#[derive(Args, Debug, PartialEq)]
pub struct RerunArgs {
    /// The JobRun to repeat.
    pub run: String,
    /// The new run's name (default: generated from RUN's).
    pub name: Option<String>,
    #[command(flatten)]
    pub after: AfterCreate,
}

#[derive(Args, Debug, PartialEq)]
pub struct TemplatesArgs {
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<ListOutput>,
}

/// `KEY=VALUE`; the value may be empty and may hold `=`.
pub fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

/// `K=V,K=V`: resource names and quantities.
pub fn key_values(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split(',')
        .map(|pair| {
            let (key, value) = key_value(pair)?;
            if value.is_empty() {
                return Err(format!("{pair:?} has no quantity"));
            }
            Ok((key, value))
        })
        .collect()
}

/// A duration in kubectl's (Go's) form: decimal numbers, each with a unit
/// of `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`: `90s`, `1.5h`, `1h30m`;
/// `0` alone.
pub fn duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?}: use a number and a unit, e.g. 90s, 5m, 1h30m");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let (number, tail) = rest.split_at(number_len);
        let value: f64 = number.parse().map_err(|_| bad())?;
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let seconds = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += value * seconds;
        rest = tail;
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("kubectl-jobrun").chain(words.iter().copied()))
    }

    #[test]
    fn durations_are_read_in_kubectls_form() {
        assert_eq!(duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("1500us"), Ok(Duration::from_micros(1500)));
        assert_eq!(duration("2µs"), Ok(Duration::from_micros(2)));
        assert_eq!(duration("300ns"), Ok(Duration::from_nanos(300)));
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        for bad in ["", "90", "5 m", "m", "1d", "-5s", ".s", "1h30"] {
            assert!(duration(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn create_takes_overrides_and_the_words_after_the_double_dash_as_args() {
        let cli = parse(&[
            "-n",
            "team",
            "create",
            "echo",
            "my-run",
            "--env",
            "A=1",
            "-e",
            "B=x=y",
            "--request",
            "cpu=500m,memory=1Gi",
            "--label",
            "team=a",
            "--wait",
            "--timeout",
            "2m",
            "-o",
            "name",
            "--",
            "hello",
            "--flag",
        ])
        .expect("parses");
        assert_eq!(cli.global.namespace.as_deref(), Some("team"));
        let Command::Create(create) = cli.command else { panic!("not create: {:?}", cli.command) };
        assert_eq!(create.template, "echo");
        assert_eq!(create.name.as_deref(), Some("my-run"));
        assert_eq!(create.overrides.env, vec![("A".into(), "1".into()), ("B".into(), "x=y".into())]);
        assert_eq!(
            create.overrides.request,
            vec![vec![("cpu".into(), "500m".into()), ("memory".into(), "1Gi".into())]]
        );
        assert_eq!(create.overrides.labels, vec![("team".into(), "a".into())]);
        assert!(create.after.wait);
        assert_eq!(create.after.timeout, Some(Duration::from_secs(120)));
        assert_eq!(create.after.output, Some(ObjectOutput::Name));
        assert_eq!(create.words, vec!["hello", "--flag"]);
        assert!(!create.command);
        assert_eq!(create.dry_run, None);
    }

    #[test]
    fn dry_run_alone_means_client_as_in_kubectl() {
        let Command::Create(create) = parse(&["create", "t", "--dry-run"]).expect("parses").command else { panic!() };
        assert_eq!(create.dry_run, Some(DryRun::Client));
        let Command::Create(create) = parse(&["create", "t", "--dry-run=server"]).expect("parses").command else {
            panic!()
        };
        assert_eq!(create.dry_run, Some(DryRun::Server));
    }

    #[test]
    fn a_name_and_a_generated_name_exclude_each_other() {
        assert!(parse(&["create", "t", "n", "--generate-name", "p-"]).is_err());
    }

    #[test]
    fn malformed_flags_are_refused_by_the_parser() {
        assert!(parse(&["create", "t", "--env", "NOEQUALS"]).is_err());
        assert!(parse(&["create", "t", "--env", "=v"]).is_err());
        assert!(parse(&["create", "t", "--request", "cpu="]).is_err());
        assert!(parse(&["wait", "r", "--timeout", "10"]).is_err());
        assert!(parse(&["get", "-o", "table"]).is_err());
        assert!(parse(&["get", "r", "-A"]).is_err(), "a name across all namespaces, as kubectl refuses");
        assert!(parse(&["create", "t", "--logs", "-o", "yaml"]).is_err(), "logs and an object on one stdout");
    }

    #[test]
    fn the_global_flags_go_anywhere_as_in_kubectl() {
        let cli = parse(&["get", "--context", "kind", "-A", "-w", "--kubeconfig", "/k"]).expect("parses");
        assert_eq!(cli.global.context.as_deref(), Some("kind"));
        assert_eq!(cli.global.kubeconfig, Some(PathBuf::from("/k")));
        let Command::Get(get) = cli.command else { panic!() };
        assert!(get.all_namespaces && get.watch);
    }

    #[test]
    fn the_command_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
