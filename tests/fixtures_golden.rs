//! Tier 1 (pure): every case in `fixtures/` is a golden test, run without a
//! cluster. A failing case prints a unified diff of the expected YAML.
//! `JTR_UPDATE_FIXTURES=1 cargo test --test fixtures_golden` rewrites the
//! expected files; review the diff before committing it.

use std::path::PathBuf;
use std::process::Command;

use jtr_test_kit::{Case, FILES, UPDATE_ENV, check};
use rstest::rstest;

/// The pure replay gives exactly the expected files; and where the case's
/// Job comes from `render` alone (a template, no existing Job, no API
/// refusal), the `render` command prints that Job byte for byte.
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
    if std::env::var(UPDATE_ENV).as_deref() == Ok("1") {
        return; // the expected files were just rewritten; compare on the next run
    }
    let rendered_alone = case.template.is_some() && case.existing_job.is_none() && case.create_refusal.is_none();
    if let (Some(expected), true) = (&case.expected_job, rendered_alone) {
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
}
