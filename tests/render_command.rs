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
    let dir = std::env::temp_dir().join(format!("jtr-render-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let run = dir.join(file);
    let yaml = format!(
        "apiVersion: cellbytes.io/v1\nkind: JobRun\nmetadata:\n{metadata}spec:\n  templateRef: echo-template\n"
    );
    std::fs::write(&run, yaml).expect("writable");
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
