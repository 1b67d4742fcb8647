//! Create, don't overwrite: which existing Job a run may take as its own.

use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;

use super::failure::{Failure, FailureReason};
use crate::crd::JobRun;

/// True when `job`'s controller ownerReference points at this very run
/// (same uid), not just at a run of the same name.
pub fn is_controlled_by(job: &Job, run: &JobRun) -> bool {
    let uid = run.metadata.uid.as_deref();
    job.owner_references().iter().any(|o| o.controller == Some(true) && Some(o.uid.as_str()) == uid)
}

/// The Job that already has the run's Job name: adopted when the run
/// controls it (an earlier create whose answer was lost), a conflict otherwise.
pub fn adopt(existing: Job, run: &JobRun) -> Result<Job, Failure> {
    if is_controlled_by(&existing, run) {
        Ok(existing)
    } else {
        Err(Failure::new(
            FailureReason::JobNameConflict,
            format!("Job {:?} already exists and is not controlled by this JobRun", existing.name_any()),
        ))
    }
}
