//! The pure core of job-template-run: no client, no clock, no I/O.
//!
//! - [`crd`]: the resource types and their CRD manifests.
//! - [`merge`]: `render` (template + run → Job), `status` (Job → run
//!   status), the decision table `decide`, its one interpreter `drive`
//!   (generic over the effects), callbacks, the address guard, names, notes.
//! - [`yaml`]: the canonical YAML writer (YAML 1.1-safe).
//!
//! The operator (the root package) carries out the effects against the API
//! server; the test kit (`test-kit/`) against an in-memory world.

pub mod crd;
pub mod merge;
pub mod yaml;
