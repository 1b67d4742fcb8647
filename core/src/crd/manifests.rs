//! The CRD manifests, generated from the Rust types.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use super::{JobRun, JobTemplate};

/// Generating the YAML failed; only a bug in the types can cause this.
#[derive(Debug, thiserror::Error)]
#[error("cannot serialize the {crd} CRD: {source}")]
pub struct ManifestError {
    crd: String,
    source: serde_norway::Error,
}

/// The CRDs of both resources, in the order they should be applied.
pub fn manifests() -> Vec<CustomResourceDefinition> {
    vec![JobTemplate::crd(), JobRun::crd()]
}

/// `<plural>.<group>.yaml`, the file name of a CRD in the chart's `crds/`.
pub fn crd_file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or_default())
}

/// One CRD as YAML, the exact bytes checked in to the chart.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, ManifestError> {
    crate::yaml::to_string(crd)
        .map_err(|source| ManifestError { crd: crd.metadata.name.clone().unwrap_or_default(), source })
}
