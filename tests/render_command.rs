//! Tier 1 (pure): the `render` command's contract. The first test holds it
//! to every fixture whose Job comes from `render` alone (the fixtures
//! themselves are replayed in `test-kit/tests/fixtures_golden.rs`); the
//! rest check its errors and options.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use job_template_run::crd::JobRunStatus;
use jtr_test_kit::{Case, FILES};
use rstest::rstest;

/// Where a case's Job comes from `render` alone (a template, no existing
/// Job, no API refusal), the `render` command prints that Job byte for byte.
#[rstest]
fn render_prints_byte_for_byte_the_job_of_every_fixture_rendered_from_its_inputs_alone(
    #[files("fixtures/*")]
    #[dirs]
    dir: PathBuf,
) {
    let case = Case::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    let rendered_alone = case.template.is_some() && case.existing_job.is_none() && case.create_refusal.is_none();
    let Some(expected) = case.expected_job.as_ref().filter(|_| rendered_alone) else {
        return;
    };
    let output = render(&[&dir.join(FILES.template), &dir.join(FILES.run)]);
    assert!(output.status.success(), "render failed: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(&String::from_utf8_lossy(&output.stdout), expected, "render output differs for {}", case.name);
}

/// Where a case's run fails before any Job exists for what its template
/// says of it (its policy, its rules, its validity), the `render` command
/// refuses it too: a non-zero exit and one line with the same reason and
/// message as the run's `Failed` condition.
#[rstest]
fn render_refuses_every_fixture_run_that_the_operator_fails_for_its_template_with_the_same_message(
    #[files("fixtures/*")]
    #[dirs]
    dir: PathBuf,
) {
    const TEMPLATE_REASONS: [&str; 4] =
        ["InvalidTemplate", "OverrideNotAllowed", "InvalidOverride", "ValidationFailed"];
    let case = Case::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    let rendered_alone = case.template.is_some() && case.existing_job.is_none() && case.create_refusal.is_none();
    let status: JobRunStatus = serde_norway::from_str(&case.expected_status).expect("a run status");
    let failed = status.conditions.iter().flatten().find(|c| c.type_ == "Failed" && c.status == "True");
    let Some(failed) =
        failed.filter(|c| rendered_alone && TEMPLATE_REASONS.contains(&c.reason.as_deref().unwrap_or_default()))
    else {
        return;
    };
    let output = render(&[&dir.join(FILES.template), &dir.join(FILES.run)]);
    let line = one_line_error(&output);
    let expected =
        format!("{}: {}", failed.reason.as_deref().unwrap_or_default(), failed.message.as_deref().unwrap_or_default());
    assert!(line.contains(&expected), "{}: render said {line:?}, the operator {expected:?}", case.name);
}

fn fixture(case: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(case).join(file)
}

fn render(args: &[&Path]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_job-template-run"));
    command.arg("render");
    for (flag, path) in ["--template", "--run", "--job-status"].iter().zip(args) {
        command.arg(flag).arg(path);
    }
    command.output().expect("the binary runs")
}

fn one_line_error(output: &Output) -> String {
    assert!(!output.status.success(), "expected a failure");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "expected one line, got: {stderr}");
    assert!(output.stdout.is_empty(), "nothing on stdout on failure");
    stderr
}

#[test]
fn with_a_job_status_render_prints_the_job_then_the_run_status() {
    let case = "a-complete-job-makes-the-run-succeeded-and-finished";
    let output =
        render(&[&fixture(case, "template.yaml"), &fixture(case, "run.yaml"), &fixture(case, "job-status.yaml")]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let expected_job = std::fs::read_to_string(fixture(case, "expected-job.yaml")).expect("readable");
    let expected_status = std::fs::read_to_string(fixture(case, "expected-status.yaml")).expect("readable");
    assert_eq!(String::from_utf8_lossy(&output.stdout), format!("{expected_job}---\n{expected_status}"));
}

const COMPLETE: &str = "a-complete-job-makes-the-run-succeeded-and-finished";

/// A file in this process's scratch folder.
fn scratch_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("jtr-render-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("writable");
    path
}

/// The complete fixture's Job with its status, as `kubectl get job -o yaml` prints it.
fn whole_job_yaml() -> String {
    let job = std::fs::read_to_string(fixture(COMPLETE, "expected-job.yaml")).expect("readable");
    let status = std::fs::read_to_string(fixture(COMPLETE, "job-status.yaml")).expect("readable");
    let indented: String = status.lines().map(|line| format!("  {line}\n")).collect();
    format!("{job}status:\n{indented}")
}

fn render_complete_with_job_status(job_status: &Path) -> Output {
    render(&[&fixture(COMPLETE, "template.yaml"), &fixture(COMPLETE, "run.yaml"), job_status])
}

#[test]
fn a_whole_job_as_job_status_gives_the_same_run_status_as_its_status() {
    let output = render_complete_with_job_status(&scratch_file("whole-job.yaml", &whole_job_yaml()));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let expected_job = std::fs::read_to_string(fixture(COMPLETE, "expected-job.yaml")).expect("readable");
    let expected_status = std::fs::read_to_string(fixture(COMPLETE, "expected-status.yaml")).expect("readable");
    assert_eq!(String::from_utf8_lossy(&output.stdout), format!("{expected_job}---\n{expected_status}"));
    assert!(expected_status.contains("phase: Succeeded"), "{expected_status}");
}

#[test]
fn a_whole_job_without_a_status_gives_a_pending_run() {
    let job = std::fs::read_to_string(fixture(COMPLETE, "expected-job.yaml")).expect("readable");
    let output = render_complete_with_job_status(&scratch_file("new-job.yaml", &job));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let (_, status) = stdout.split_once("---\n").expect("two documents");
    assert!(status.contains("phase: Pending"), "{status}");
}

#[test]
fn an_object_of_another_kind_as_job_status_is_a_one_line_error() {
    let stderr = one_line_error(&render_complete_with_job_status(&fixture(COMPLETE, "run.yaml")));
    assert!(stderr.contains("--job-status must be a Job or a Job status: found kind \"JobRun\""), "{stderr}");
}

#[test]
fn a_job_without_its_kind_as_job_status_is_a_one_line_error() {
    let without_kind = whole_job_yaml().replace("kind: Job\n", "");
    let stderr = one_line_error(&render_complete_with_job_status(&scratch_file("no-kind.yaml", &without_kind)));
    assert!(stderr.contains("unknown top-level keys apiVersion, metadata, spec, status"), "{stderr}");
}

#[test]
fn a_misspelt_job_status_field_is_a_one_line_error() {
    let stderr = one_line_error(&render_complete_with_job_status(&scratch_file("typo.yaml", "succeded: 1\n")));
    assert!(stderr.contains("unknown top-level keys succeded"), "{stderr}");
}

#[test]
fn a_list_as_job_status_is_a_one_line_error() {
    let stderr = one_line_error(&render_complete_with_job_status(&scratch_file("list.yaml", "- succeeded: 1\n")));
    assert!(stderr.contains("--job-status must be a Job or a Job status: found a list"), "{stderr}");
}

#[test]
fn a_missing_file_is_a_one_line_error() {
    let case = "args-on-the-run-replace-the-template-args";
    let stderr = one_line_error(&render(&[&fixture(case, "template.yaml"), Path::new("/nonexistent/run.yaml")]));
    assert!(stderr.starts_with("error: cannot read /nonexistent/run.yaml"), "{stderr}");
}

#[test]
fn a_file_of_the_wrong_kind_is_a_one_line_error() {
    let case = "args-on-the-run-replace-the-template-args";
    let stderr = one_line_error(&render(&[&fixture(case, "run.yaml"), &fixture(case, "run.yaml")]));
    assert!(stderr.contains("expected kind JobTemplate, found \"JobRun\""), "{stderr}");
}

#[test]
fn a_template_without_containers_is_a_one_line_error() {
    let case = "a-template-without-containers-fails-the-run-with-invalid-template";
    let stderr = one_line_error(&render(&[&fixture(case, "template.yaml"), &fixture(case, "run.yaml")]));
    assert!(stderr.contains("has no containers"), "{stderr}");
}

/// Strings that a YAML 1.1 reader takes for another type when they are not
/// quoted: booleans, nulls, integers (octal, base 60, hex, binary), floats,
/// timestamps, and the merge and value keys.
const YAML_1_1_LOOKALIKES: &[&str] = &[
    "yes",
    "no",
    "on",
    "off",
    "y",
    "n",
    "Y",
    "NO",
    "On",
    "True",
    "false",
    "~",
    "null",
    "",
    "0755",
    "089",
    "1:20",
    "190:20:30.15",
    "1e3",
    "6.8523015e+5",
    ".5",
    ".inf",
    "-.Inf",
    ".nan",
    "0x1F",
    "0b101",
    "1_000",
    "2026-01-01",
    "2026-01-01T00:00:05Z",
    "2001-12-14 21:59:43.10 -5",
    "<<",
    "=",
];

/// A Python with PyYAML, the most used YAML 1.1 reader: `$PYTHON`, else the
/// virtualenv of the Kubernetes Python client (which depends on PyYAML)
/// that `scripts/install-python-client.sh` makes. `None` (the test says it
/// skips) only outside CI: with CI=true, no such Python fails the test.
fn python_with_pyyaml() -> Option<PathBuf> {
    // Once per test process: tests run in parallel, and two runs of the
    // script at once would make the same virtualenv twice.
    static PYTHON: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    let python = PYTHON.get_or_init(|| match std::env::var_os("PYTHON") {
        Some(python) => Ok(PathBuf::from(python)),
        None => install_python_client(),
    });
    let checked = python.clone().and_then(|python| match Command::new(&python).args(["-c", "import yaml"]).output() {
        Ok(output) if output.status.success() => Ok(python),
        Ok(output) => {
            Err(format!("{} cannot import yaml: {}", python.display(), String::from_utf8_lossy(&output.stderr)))
        }
        Err(error) => Err(format!("cannot run {}: {error}", python.display())),
    });
    match checked {
        Ok(python) => Some(python),
        Err(why) if std::env::var("CI").is_ok_and(|ci| ci == "true") => panic!("CI needs a Python with PyYAML: {why}"),
        Err(why) => {
            eprintln!("skipped: no Python with PyYAML ({why})");
            None
        }
    }
}

/// The python that `scripts/install-python-client.sh` prints last.
fn install_python_client() -> Result<PathBuf, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-python-client.sh");
    let output =
        Command::new("bash").arg(&script).output().map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    match stdout.lines().last() {
        Some(python) if output.status.success() => Ok(PathBuf::from(python.trim())),
        _ => Err(format!("{} failed: {}", script.display(), String::from_utf8_lossy(&output.stderr))),
    }
}

/// Every document of `yaml` as PyYAML's `safe_load_all` reads it, in JSON;
/// a value that JSON has no type for (a datetime, a date) becomes
/// `{"<its Python type>": "<its repr>"}`.
fn read_with_pyyaml(python: &Path, yaml: &str) -> serde_json::Value {
    const READER: &str = "import json, sys, yaml\n\
        docs = list(yaml.safe_load_all(sys.stdin))\n\
        json.dump(docs, sys.stdout, default=lambda o: {type(o).__name__: repr(o)})\n";
    let mut child = Command::new(python)
        .args(["-c", READER])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), yaml.as_bytes()).expect("python reads");
    let output = child.wait_with_output().expect("python ends");
    assert!(
        output.status.success(),
        "PyYAML cannot read the output: {}\n{yaml}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON")
}

/// Where `read` differs from `written`, one line each.
fn differences(path: &str, written: &serde_json::Value, read: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    match (written, read) {
        (Value::Object(w), Value::Object(r)) if w.len() == r.len() => {
            for (key, value) in w {
                match r.get(key) {
                    Some(other) => differences(&format!("{path}.{key}"), value, other, out),
                    None => out.push(format!("{path}: key {key:?} was read as another type: {r:?}")),
                }
            }
        }
        (Value::Array(w), Value::Array(r)) if w.len() == r.len() => {
            for (i, (value, other)) in w.iter().zip(r).enumerate() {
                differences(&format!("{path}[{i}]"), value, other, out);
            }
        }
        _ if written != read => out.push(format!("{path}: written {written}, read by PyYAML as {read}")),
        _ => {}
    }
}

/// Renders with `--job-status`, reads the Job and the run status back into
/// their Rust types, and checks that PyYAML reads every value of both as
/// the same JSON: every string stays a string.
fn assert_pyyaml_reads_what_render_wrote(template: &Path, run: &Path, job_status: &Path) -> String {
    let output = render(&[template, run, job_status]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let (job, status) = stdout.split_once("---\n").expect("two documents");
    let job: k8s_openapi::api::batch::v1::Job = serde_norway::from_str(job).expect("a Job");
    let status: job_template_run::crd::JobRunStatus = serde_norway::from_str(status).expect("a run status");
    let written = serde_json::json!([job, status]);
    let Some(python) = python_with_pyyaml() else {
        return stdout;
    };
    let mut found = Vec::new();
    differences("", &written, &read_with_pyyaml(&python, &stdout), &mut found);
    assert!(found.is_empty(), "PyYAML reads what render wrote otherwise:\n{}\n\n{stdout}", found.join("\n"));
    stdout
}

#[test]
fn pyyaml_reads_the_rendered_job_and_run_status_with_every_timestamp_and_string_a_string() {
    let stdout = assert_pyyaml_reads_what_render_wrote(
        &fixture(COMPLETE, "template.yaml"),
        &fixture(COMPLETE, "run.yaml"),
        &fixture(COMPLETE, "job-status.yaml"),
    );
    assert!(stdout.contains("completionTime: '2026-01-01T00:00:07Z'"), "{stdout}");
}

#[test]
fn pyyaml_reads_booleans_nulls_numbers_and_dates_of_yaml_1_1_in_a_template_run_and_job_status_as_strings() {
    let list = |indent: &str| -> String {
        YAML_1_1_LOOKALIKES.iter().map(|s| format!("{indent}- {}\n", serde_json::Value::from(*s))).collect()
    };
    let env: String = YAML_1_1_LOOKALIKES
        .iter()
        .enumerate()
        .map(|(i, s)| format!("        - name: V{i}\n          value: {}\n", serde_json::Value::from(*s)))
        .collect();
    let labels: String = ["yes", "off", "0755", "1e3"]
        .iter()
        .map(|s| format!("        l-{s}: {}\n", serde_json::Value::from(*s)))
        .collect();
    let template = format!(
        "apiVersion: cellbytes.io/v1\nkind: JobTemplate\nmetadata:\n  name: echo-template\n  namespace: demo\nspec:\n  \
         template:\n    metadata:\n      labels:\n{labels}    spec:\n      containers:\n      - name: echo\n        \
         image: busybox:1.36\n        env:\n{env}      restartPolicy: Never\n"
    );
    let run = std::fs::read_to_string(fixture(COMPLETE, "run.yaml"))
        .expect("readable")
        .replace("  args:\n  - hi\n", &format!("  command:\n{}  args:\n{}", list("  "), list("  ")));
    let conditions: String = YAML_1_1_LOOKALIKES
        .iter()
        .map(|s| {
            let s = serde_json::Value::from(*s);
            format!("- type: Complete\n  status: 'False'\n  reason: {s}\n  message: {s}\n")
        })
        .collect();
    let job_status = format!("startTime: '2026-01-01T00:00:01Z'\nactive: 1\nconditions:\n{conditions}");
    let stdout = assert_pyyaml_reads_what_render_wrote(
        &scratch_file("lookalike-template.yaml", &template),
        &scratch_file("lookalike-run.yaml", &run),
        &scratch_file("lookalike-job-status.yaml", &job_status),
    );
    for lookalike in YAML_1_1_LOOKALIKES {
        assert!(stdout.contains(&format!("- '{lookalike}'\n")), "{lookalike:?} is not single-quoted:\n{stdout}");
    }
}

/// Renders the echo fixture's template with a run whose `metadata` is given.
fn render_run_with_metadata(file: &str, metadata: &str) -> Output {
    let yaml = format!(
        "apiVersion: cellbytes.io/v1\nkind: JobRun\nmetadata:\n{metadata}spec:\n  templateRef: echo-template\n"
    );
    let run = scratch_file(file, &yaml);
    render(&[&fixture("args-on-the-run-replace-the-template-args", "template.yaml"), &run])
}

#[test]
fn a_run_name_that_is_not_a_kubernetes_name_is_a_one_line_error() {
    let metadata = "  name: My_Run\n  namespace: demo\n  uid: 0b6f6ea9-1b8e-4c54-9d5e-2f1c4f0d2a11\n";
    let stderr = one_line_error(&render_run_with_metadata("bad-name.yaml", metadata));
    assert!(stderr.contains("JobRun name \"My_Run\" is not a valid Kubernetes name"), "{stderr}");
}

#[test]
fn a_run_without_a_uid_is_a_one_line_error() {
    let stderr = one_line_error(&render_run_with_metadata("no-uid.yaml", "  name: r\n  namespace: demo\n"));
    assert!(stderr.contains("metadata.uid"), "{stderr}");
}

#[test]
fn the_crd_command_prints_both_crds_as_they_are_in_the_chart() {
    let output = Command::new(env!("CARGO_BIN_EXE_job-template-run")).arg("crd").output().expect("runs");
    assert!(output.status.success());
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/job-template-run/crds");
    let expected: Vec<String> = ["jobtemplates.cellbytes.io.yaml", "jobruns.cellbytes.io.yaml"]
        .iter()
        .map(|f| std::fs::read_to_string(chart.join(f)).expect("readable"))
        .collect();
    assert_eq!(String::from_utf8_lossy(&output.stdout), format!("---\n{}", expected.join("---\n")));
}
