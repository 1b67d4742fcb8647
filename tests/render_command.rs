//! Tier 1 (pure): the `render` command's contract. Every fixture's Job is
//! checked byte for byte in `fixtures_golden.rs`; these check the rest.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
