//! Tier 1 (pure): every case in `fixtures/` is a golden test, run without a
//! cluster. A failing case prints a unified diff of the expected YAML.
//! `JTR_UPDATE_FIXTURES=1 cargo test -p jtr-test-kit --test fixtures_golden`
//! rewrites the expected files; review the diff before committing it.
//!
//! It lives beside the world it drives, so that it builds against the core
//! alone (no operator, no client): `cargo mutants` over the core runs it in
//! seconds per mutant. The `render` command's byte-for-byte agreement with
//! these cases is checked in the operator's `tests/render_command.rs`.

use std::path::PathBuf;

use jtr_test_kit::{Case, check};
use rstest::rstest;

/// The pure replay gives exactly the expected files.
#[rstest]
fn every_fixture_case_produces_exactly_its_expected_job_status_and_steps(
    #[files("../fixtures/*")]
    #[dirs]
    dir: PathBuf,
) {
    let case = Case::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    if let Err(diff) = check(&case) {
        panic!("fixture {} differs from its expected files:\n{diff}", case.name);
    }
}
