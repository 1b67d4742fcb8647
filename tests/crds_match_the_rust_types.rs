//! Tier 1 (pure): the CRDs shipped in the Helm chart are exactly what the
//! Rust types generate. Regenerate with `make crd`.

use std::path::Path;

use job_template_run::crd::{crd_file_name, manifests, to_yaml};

#[test]
fn the_charts_crd_files_are_generated_from_the_rust_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/job-template-run/crds");
    for crd in manifests() {
        let path = dir.join(crd_file_name(&crd));
        let checked_in =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}; run `make crd`", path.display()));
        let generated = to_yaml(&crd).expect("serializes");
        assert!(checked_in == generated, "{} differs from the Rust types; run `make crd`", path.display());
    }
}

#[test]
fn the_job_template_crd_fits_the_limit_of_kubectl_apply() {
    // kubectl's client-side apply stores the object in an annotation, and
    // annotations are capped at 256 KiB in total.
    let crd = &manifests()[0];
    let json = serde_json::to_string(crd).expect("serializes");
    assert!(json.len() < 256 * 1024, "JobTemplate CRD is {} bytes of JSON", json.len());
}
