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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn run(uid: &str) -> JobRun {
        let mut run = JobRun::new("r", Default::default());
        run.metadata.uid = Some(uid.into());
        run
    }

    fn job_controlled_by(uid: &str) -> Job {
        let mut job = Job::default();
        job.metadata.name = Some("r".into());
        job.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "cellbytes.io/v1".into(),
            kind: "JobRun".into(),
            name: "r".into(),
            uid: uid.into(),
            controller: Some(true),
            ..OwnerReference::default()
        }]);
        job
    }

    #[test]
    fn a_job_controlled_by_the_run_is_the_runs() {
        assert!(is_controlled_by(&job_controlled_by("uid-1"), &run("uid-1")));
    }

    #[test]
    fn a_job_owned_by_another_uid_is_not_the_runs() {
        assert!(!is_controlled_by(&job_controlled_by("uid-2"), &run("uid-1")));
    }
}
