//! Settings of the e2e suites, all from environment variables.

use std::path::PathBuf;

/// The image the suites start by default: built locally by
/// `scripts/build-cluster-image.sh` (real kube-apiserver, etcd, Job
/// controller and scheduler; pods simulated by kwok).
pub const DEFAULT_IMAGE: &str = "job-template-run/kwok-cluster:v1.35.4";

/// Where the cluster comes from, and what to keep when a test fails.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `JTR_E2E_IMAGE`: the cluster image, `name:tag`. Set it to a
    /// `rancher/k3s:<tag>` image to run the same suites on real k3s.
    pub image: String,
    /// `JTR_E2E_KUBECONFIG`: use this existing cluster instead of a container.
    pub kubeconfig: Option<PathBuf>,
    /// `JTR_E2E_KEEP_FAILED=1`: keep the namespace of a failed test (and
    /// the cluster container, whose kubeconfig path is printed).
    pub keep_failed: bool,
    /// `CI=true`: a missing prerequisite fails the run instead of skipping.
    pub ci: bool,
}

impl Settings {
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            image: var("JTR_E2E_IMAGE").unwrap_or_else(|| DEFAULT_IMAGE.to_owned()),
            kubeconfig: var("JTR_E2E_KUBECONFIG").map(PathBuf::from),
            keep_failed: var("JTR_E2E_KEEP_FAILED").is_some_and(|v| v == "1" || v == "true"),
            ci: var("CI").is_some_and(|v| v == "true" || v == "1"),
        }
    }

    /// The image name and tag, split at the last colon.
    pub fn image_name_and_tag(&self) -> (&str, &str) {
        match self.image.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, tag),
            _ => (&self.image, "latest"),
        }
    }

    /// True when the cluster is the project's kwok image (pods simulated).
    pub fn is_kwok_image(&self) -> bool {
        self.kubeconfig.is_none() && self.image.contains("kwok-cluster")
    }
}
