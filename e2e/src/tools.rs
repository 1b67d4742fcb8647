//! Tools the suites run (kubectl, helm, python): an environment variable
//! names one, or the project's scripts install it into one cache folder.

use std::path::PathBuf;

/// `JTR_CACHE_DIR`, or `~/.cache/job-template-run`, as the scripts use.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("JTR_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/job-template-run"))
}

/// `$variable` if set, else `relative` inside the cache folder.
fn from_env_or_cache(variable: &str, relative: &str) -> PathBuf {
    std::env::var_os(variable).map(PathBuf::from).unwrap_or_else(|| cache_dir().join(relative))
}

/// A debug binary of the workspace (`make build` builds them), in
/// `CARGO_TARGET_DIR` or `target/`.
pub fn workspace_binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("debug").join(name)
}

/// `KUBECTL`, or the kubectl built with the cluster binaries.
pub fn kubectl() -> PathBuf {
    from_env_or_cache("KUBECTL", "k8s-v1.35.4/bin/kubectl")
}

/// `HELM`, or the one `scripts/install-helm.sh` builds.
pub fn helm() -> PathBuf {
    from_env_or_cache("HELM", "bin/helm")
}

/// `PYTHON`, or the virtualenv `scripts/install-python-client.sh` makes.
pub fn python() -> PathBuf {
    from_env_or_cache("PYTHON", "python-kubernetes-37.0.2/bin/python")
}
