//! Tools the suites run (kubectl, helm, python): the project's scripts
//! install them into one cache folder.

use std::path::PathBuf;

/// `JTR_CACHE_DIR`, or `~/.cache/job-template-run`, as the scripts use.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("JTR_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/job-template-run"))
}

/// A file inside the cache folder.
pub fn cached(relative: &str) -> PathBuf {
    cache_dir().join(relative)
}
