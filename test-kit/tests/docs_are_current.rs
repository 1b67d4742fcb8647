//! Tier 1 (pure): the generated reference pages are committed as generated.
//! Regenerate them with `make docs`
//! (`cargo run -q -p jtr-test-kit --bin docs -- --write`).

use jtr_test_kit::docs::{CARGO_COMMAND, COMMAND, Page, api_page, merge_semantics_page, workspace_root};
use jtr_test_kit::unified_diff;

/// The first lines of a diff are enough to see what drifted.
const DIFF_LINES: usize = 60;

fn assert_committed(page: &Page, from: &str) {
    let path = workspace_root().join(page.path);
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run `{COMMAND}` ({CARGO_COMMAND})", path.display()));
    if committed != page.text {
        let diff = unified_diff(&committed, &page.text, page.path);
        let shown: Vec<&str> = diff.lines().take(DIFF_LINES).collect();
        panic!(
            "{} differs from what {from} generate; run `{COMMAND}` ({CARGO_COMMAND}) and commit it.\n\
             The first lines of the diff (expected: committed, actual: generated):\n{}",
            page.path,
            shown.join("\n")
        );
    }
}

#[test]
fn the_merge_semantics_page_is_generated_from_the_fixtures_and_current() {
    let page = merge_semantics_page(&workspace_root()).unwrap_or_else(|e| panic!("{e}"));
    assert_committed(&page, "the fixtures");
}

#[test]
fn the_api_page_is_generated_from_the_crds_and_current() {
    let page = api_page(&workspace_root()).unwrap_or_else(|e| panic!("{e}"));
    assert_committed(&page, "the chart's CRDs");
}
