//! Create, don't overwrite: which existing Job a run may take as its own
//! (the decision table adopts exactly the Jobs this says the run controls).

use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;

use crate::crd::JobRun;

/// True when `job`'s controller ownerReference points at this very run
/// (same uid), not just at a run of the same name.
pub fn is_controlled_by(job: &Job, run: &JobRun) -> bool {
    let uid = run.metadata.uid.as_deref();
    job.owner_references().iter().any(|o| o.controller == Some(true) && Some(o.uid.as_str()) == uid)
}
