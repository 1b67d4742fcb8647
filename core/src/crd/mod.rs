//! The two custom resources of the `cellbytes.io/v1` API group.
//!
//! Types only: the logic that acts on them lives in [`crate::merge`] and in
//! the operator's reconciler. [`manifests`] turns the types into the CRD YAML that
//! ships in the Helm chart, so the schema can never drift from the code.

mod job_run;
mod job_template;
mod manifests;

pub use job_run::{
    CallbackStatus, CallbackTokenSecretRef, JobRun, JobRunSpec, JobRunStatus, MAX_ENV, MAX_METADATA_ENTRIES,
    MAX_OVERRIDE_CHARACTERS, MAX_VALUE_CHARACTERS, Phase, RESERVED_KEY_PREFIXES, RESERVED_KEYS, RunResources,
    reserved_key,
};
pub use job_template::{
    CONDITION_VALID, DEFAULT_OVERRIDES, JobMetadata, JobTemplate, JobTemplateFields, JobTemplateSpec,
    JobTemplateStatus, MAX_VALIDATIONS, OVERRIDES, RunPolicy, Validation,
};
pub use manifests::{ManifestError, crd_file_name, manifests, to_yaml};
