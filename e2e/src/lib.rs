//! The e2e harness of job-template-run: one real cluster per test binary,
//! one namespace per test, and no mock of the API server anywhere.
//!
//! - [`settings`]: which cluster (the local kwok image, real k3s, or an
//!   existing cluster) and what to keep for debugging.
//! - [`cluster`]: starts the cluster container through testcontainers'
//!   K3s module (or connects to the existing one) and installs the CRDs.
//! - [`namespace`]: a fresh namespace per test, deleted afterwards.
//! - [`operator`]: the operator binary as a process under test.
//! - [`subset`]: chainsaw/kuttl-style matching of expected YAML.
//! - [`suite`]: runs trials with libtest-mimic around one shared cluster.

pub mod cluster;
pub mod drill;
pub mod identity;
pub mod logs;
pub mod namespace;
pub mod objects;
pub mod operator;
pub mod policy;
pub mod settings;
pub mod subset;
pub mod suite;
pub mod tools;
pub mod wait;

pub use cluster::{Cluster, ClusterKind};
pub use namespace::TestNamespace;
pub use settings::Settings;
