//! The JobRun that `create` and `rerun` send, and the client-side check
//! with the template's policy: the core's own [`admit`], so the plugin
//! refuses with the reason and message the operator would write.

use std::collections::BTreeMap;

use jtr_core::crd::{JobRun, JobRunSpec, JobTemplate, RunResources};
use jtr_core::merge::admit;
use k8s_openapi::api::core::v1::EnvVar;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::ObjectMeta;

use crate::args::CreateArgs;
use crate::error::PluginError;

/// The annotation a rerun carries: the name of the run it repeats.
pub const ANNOTATION_RERUN_OF: &str = "cellbytes.io/rerun-of";

/// Longest generateName prefix: the API server appends 5 characters, and a
/// Job name (the run's) above 63 characters is shortened by the operator.
const MAX_PREFIX: usize = 58;

/// The run `create` sends for `args` in `namespace`.
pub fn run_from_args(args: &CreateArgs, namespace: &str) -> JobRun {
    let o = &args.overrides;
    let (command, run_args) = match (args.command, args.words.is_empty()) {
        (_, true) => (None, None),
        (true, false) => (Some(args.words.clone()), None),
        (false, false) => (None, Some(args.words.clone())),
    };
    let map = |pairs: &[(String, String)]| -> Option<BTreeMap<String, String>> {
        (!pairs.is_empty()).then(|| pairs.iter().cloned().collect())
    };
    let quantities = |lists: &[Vec<(String, String)>]| -> Option<BTreeMap<String, Quantity>> {
        (!lists.is_empty()).then(|| lists.iter().flatten().map(|(k, v)| (k.clone(), Quantity(v.clone()))).collect())
    };
    let requests = quantities(&o.request);
    let limits = quantities(&o.limit);
    let spec = JobRunSpec {
        template_ref: args.template.clone(),
        container: o.container.clone(),
        command,
        args: run_args,
        env: (!o.env.is_empty()).then(|| {
            o.env
                .iter()
                .map(|(name, value)| EnvVar { name: name.clone(), value: Some(value.clone()), value_from: None })
                .collect()
        }),
        resources: (requests.is_some() || limits.is_some()).then_some(RunResources { requests, limits }),
        labels: map(&o.labels),
        annotations: map(&o.annotations),
        active_deadline_seconds: o.active_deadline_seconds,
        backoff_limit: o.backoff_limit,
        parallelism: o.parallelism,
        completions: o.completions,
        ttl_seconds_after_finished: o.ttl_seconds_after_finished,
        ..JobRunSpec::default()
    };
    let generate_name = match (&args.name, &args.generate_name) {
        (Some(_), _) => None,
        (None, Some(prefix)) => Some(prefix.clone()),
        (None, None) => Some(prefix_of(&args.template)),
    };
    JobRun {
        metadata: ObjectMeta {
            name: args.name.clone(),
            generate_name,
            namespace: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        },
        spec,
        status: None,
    }
}

/// A new run with `original`'s spec (without its cancel) and the
/// annotation naming the run it repeats. Not its metadata: other tools'
/// labels and annotations (Argo CD's tracking, Helm's ownership) would
/// make them claim the rerun.
pub fn rerun_of(original: &JobRun, name: Option<&str>) -> JobRun {
    let original_name = original.metadata.name.clone().unwrap_or_default();
    JobRun {
        metadata: ObjectMeta {
            name: name.map(str::to_owned),
            generate_name: name.is_none().then(|| prefix_of(&original_name)),
            namespace: original.metadata.namespace.clone(),
            annotations: Some([(ANNOTATION_RERUN_OF.to_owned(), original_name.clone())].into()),
            ..ObjectMeta::default()
        },
        spec: JobRunSpec { cancel: None, ..original.spec.clone() },
        status: None,
    }
}

/// `name-`, cut so that the generated name stays a valid Job name.
fn prefix_of(name: &str) -> String {
    let cut: String = name.chars().take(MAX_PREFIX - 1).collect();
    format!("{}-", cut.trim_end_matches(['-', '.']))
}

/// The template's policy on `run`, as the operator will apply it.
pub fn check(template: &JobTemplate, run: &JobRun) -> Result<(), PluginError> {
    admit(template, run).map_err(|f| PluginError::Refused { reason: f.reason.to_string(), message: f.message })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::args::{Cli, Command};

    fn create(words: &[&str]) -> CreateArgs {
        let cli = Cli::try_parse_from(std::iter::once("kubectl-jobrun").chain(words.iter().copied())).expect("parses");
        match cli.command {
            Command::Create(args) => *args,
            other => panic!("not create: {other:?}"),
        }
    }

    fn template(policy: &str) -> JobTemplate {
        let yaml = format!(
            "apiVersion: cellbytes.io/v1\nkind: JobTemplate\nmetadata: {{name: echo, namespace: team}}\n\
             spec:\n  template:\n    spec:\n      containers: [{{name: main, image: busybox}}]\n      restartPolicy: Never\n{policy}"
        );
        serde_norway::from_str(&yaml).expect("a template")
    }

    #[test]
    fn words_after_the_double_dash_are_args_or_with_command_the_command() {
        let run = run_from_args(&create(&["create", "echo", "r", "--", "a", "b"]), "team");
        assert_eq!(run.spec.args, Some(vec!["a".into(), "b".into()]));
        assert_eq!(run.spec.command, None);
        let run = run_from_args(&create(&["create", "echo", "r", "--command", "--", "sh", "-c", "x"]), "team");
        assert_eq!(run.spec.command, Some(vec!["sh".into(), "-c".into(), "x".into()]));
        assert_eq!(run.spec.args, None);
        let run = run_from_args(&create(&["create", "echo", "r"]), "team");
        assert_eq!((run.spec.command, run.spec.args), (None, None), "no words keep the template's");
    }

    #[test]
    fn flags_become_the_runs_overrides_and_unset_flags_stay_unset() {
        let run = run_from_args(
            &create(&[
                "create",
                "echo",
                "r",
                "--env",
                "A=1",
                "--request",
                "cpu=1",
                "--request",
                "memory=1Gi",
                "--limit",
                "memory=2Gi",
                "--label",
                "k=v",
                "--annotation",
                "a=b",
                "--backoff-limit",
                "0",
                "--container",
                "main",
                "--active-deadline-seconds",
                "60",
                "--parallelism",
                "2",
                "--completions",
                "3",
                "--ttl-seconds-after-finished",
                "30",
            ]),
            "team",
        );
        let spec = &run.spec;
        assert_eq!(spec.template_ref, "echo");
        assert_eq!(spec.container.as_deref(), Some("main"));
        assert_eq!(spec.env.as_ref().map(|e| (e[0].name.as_str(), e[0].value.as_deref())), Some(("A", Some("1"))));
        let resources = spec.resources.as_ref().expect("resources");
        let requests = resources.requests.as_ref().expect("requests");
        assert_eq!(requests.get("cpu"), Some(&Quantity("1".into())));
        assert_eq!(requests.get("memory"), Some(&Quantity("1Gi".into())));
        assert_eq!(resources.limits.as_ref().and_then(|l| l.get("memory")), Some(&Quantity("2Gi".into())));
        assert_eq!(spec.labels.as_ref().and_then(|l| l.get("k")).map(String::as_str), Some("v"));
        assert_eq!(spec.annotations.as_ref().and_then(|l| l.get("a")).map(String::as_str), Some("b"));
        assert_eq!(spec.backoff_limit, Some(0));
        assert_eq!(
            (spec.active_deadline_seconds, spec.parallelism, spec.completions, spec.ttl_seconds_after_finished),
            (Some(60), Some(2), Some(3), Some(30))
        );
        assert_eq!(run.metadata.namespace.as_deref(), Some("team"));
        let limits_only = run_from_args(&create(&["create", "echo", "r", "--limit", "cpu=1"]), "team");
        let resources = limits_only.spec.resources.expect("a limit alone makes resources");
        assert_eq!((resources.requests, resources.limits.map(|l| l.len())), (None, Some(1)));
        let bare = run_from_args(&create(&["create", "echo", "r"]), "team");
        assert_eq!(bare.spec, JobRunSpec { template_ref: "echo".into(), ..JobRunSpec::default() });
    }

    #[test]
    fn without_a_name_the_run_gets_a_generated_name_from_the_template_or_the_prefix() {
        let run = run_from_args(&create(&["create", "echo"]), "team");
        assert_eq!((run.metadata.name, run.metadata.generate_name.as_deref()), (None, Some("echo-")));
        let run = run_from_args(&create(&["create", "echo", "--generate-name", "nightly-"]), "team");
        assert_eq!(run.metadata.generate_name.as_deref(), Some("nightly-"));
        let run = run_from_args(&create(&["create", "echo", "mine"]), "team");
        assert_eq!((run.metadata.name.as_deref(), run.metadata.generate_name), (Some("mine"), None));
        let long = "t".repeat(80);
        let run = run_from_args(&create(&["create", &long]), "team");
        assert_eq!(run.metadata.generate_name.map(|p| p.len()), Some(MAX_PREFIX));
    }

    #[test]
    fn the_check_refuses_with_the_operators_reason_and_message() {
        let run = run_from_args(&create(&["create", "echo", "r", "--env", "A=1"]), "team");
        let refused = check(&template(""), &run).expect_err("env is not allowed by default");
        assert_eq!(
            refused.to_string(),
            "OverrideNotAllowed: JobTemplate echo does not allow spec.env; its runPolicy.overrides allows: command, args"
        );
        let allowed = template("runPolicy:\n  overrides: [env]\n  envNames: [A]\n");
        assert!(check(&allowed, &run).is_ok());
        let rule = template("runPolicy:\n  validations: [{rule: 'has(self.args)', message: give an argument}]\n");
        let refused = check(&rule, &run_from_args(&create(&["create", "echo", "r"]), "team")).expect_err("no args");
        assert_eq!(refused.to_string(), "ValidationFailed: give an argument");
    }

    #[test]
    fn a_rerun_copies_the_spec_without_cancel_nor_metadata_and_names_the_run_it_repeats() {
        let mut original = run_from_args(&create(&["create", "echo", "first", "--", "x"]), "team");
        original.spec.cancel = Some(true);
        original.metadata.labels = Some([("team".to_owned(), "a".to_owned())].into());
        original.metadata.annotations =
            Some([("kubectl.kubernetes.io/last-applied-configuration".to_owned(), "{}".to_owned())].into());
        let again = rerun_of(&original, None);
        assert_eq!(again.spec.cancel, None);
        assert_eq!(again.spec.args, original.spec.args);
        assert_eq!(again.metadata.generate_name.as_deref(), Some("first-"));
        assert_eq!(again.metadata.labels, None, "other tools' labels stay on the original");
        let annotations = again.metadata.annotations.clone().expect("annotations");
        assert_eq!(annotations, [(ANNOTATION_RERUN_OF.to_owned(), "first".to_owned())].into());
        assert_eq!(rerun_of(&original, Some("second")).metadata.name.as_deref(), Some("second"));
        assert_eq!(again.metadata.namespace.as_deref(), Some("team"), "the rerun goes to the original's namespace");
    }
}
