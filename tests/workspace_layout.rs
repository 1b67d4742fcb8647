//! Tier 1 (pure): what each crate of the workspace may depend on. The
//! release binary carries no test support (the fixture runner and `similar`
//! live in the dev-only test kit), and the core crate has no client, no
//! runtime and no network.

use std::process::Command;

/// The crates `package` depends on in normal builds (no dev or build
/// dependencies), one name each.
fn normal_dependencies(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["tree", "--locked", "--offline", "-e", "normal", "--prefix", "none", "-p", package])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(output.status.success(), "cargo tree -p {package} failed: {}", String::from_utf8_lossy(&output.stderr));
    let mut names: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn the_operator_binary_carries_no_fixture_runner() {
    let dependencies = normal_dependencies("job-template-run");
    assert!(dependencies.iter().any(|d| d == "jtr-core"), "the operator is built on the core: {dependencies:?}");
    for test_support in ["jtr-test-kit", "similar", "proptest", "rstest"] {
        assert!(!dependencies.iter().any(|d| d == test_support), "the release binary depends on {test_support}");
    }
}

#[test]
fn the_core_crate_has_no_client_runtime_or_network() {
    let dependencies = normal_dependencies("jtr-core");
    for io in ["kube-client", "kube-runtime", "tokio", "hyper", "reqwest", "tower"] {
        assert!(!dependencies.iter().any(|d| d == io), "the core depends on {io}: {dependencies:?}");
    }
}
