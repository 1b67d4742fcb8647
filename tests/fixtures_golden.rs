//! Tier 1 (pure): every case in `fixtures/` is a golden test, run without a
//! cluster. A failing case prints a unified diff of the expected YAML.
//! `JTR_UPDATE_FIXTURES=1 cargo test --test fixtures_golden` rewrites the
//! expected files; review the diff before committing it.

use std::path::PathBuf;
use std::process::Command;

use job_template_run::fixtures::{Case, FILES, check};
use rstest::rstest;

#[rstest]
fn every_fixture_case_produces_exactly_its_expected_job_and_status(
    #[files("fixtures/*")]
    #[dirs]
    dir: PathBuf,
) {
    let case = Case::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    if let Err(diff) = check(&case) {
        panic!("fixture {} differs from its expected files:\n{diff}", case.name);
    }
}

#[rstest]
fn the_render_command_prints_each_fixtures_expected_job_byte_for_byte(
    #[files("fixtures/*")]
    #[dirs]
    dir: PathBuf,
) {
    let case = Case::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    // Cases without a template, or whose Job the API server refuses or
    // already has, are about the reconciler, not about `render`.
    let (Some(expected), true, None) = (&case.expected_job, case.existing_job.is_none(), &case.create_refusal) else {
        return;
    };
    let output = Command::new(env!("CARGO_BIN_EXE_job-template-run"))
        .args(["render", "--template"])
        .arg(dir.join(FILES.template))
        .arg("--run")
        .arg(dir.join(FILES.run))
        .output()
        .expect("the binary runs");
    assert!(output.status.success(), "render failed: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(&String::from_utf8_lossy(&output.stdout), expected, "render output differs for {}", case.name);
}
