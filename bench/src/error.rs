//! Why a benchmark run failed.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Cluster(#[from] e2e::cluster::ClusterError),
    #[error("API call failed: {0}")]
    Kube(#[from] kube::Error),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("bad argument: {0}")]
    Args(String),
    #[error("the operator {label}: {message}")]
    Operator { label: String, message: String },
    #[error("timed out after {seconds} s waiting for {what}")]
    Timeout { what: String, seconds: u64 },
    #[error("cannot build the chart: {0}")]
    Chart(String),
    #[error("{0}")]
    Setup(String),
    #[error("regression past a gate (see bench/README.md): {0}")]
    Regression(String),
}

impl BenchError {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}

pub type Result<T, E = BenchError> = std::result::Result<T, E>;
