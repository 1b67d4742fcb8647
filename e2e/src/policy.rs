//! ValidatingAdmissionPolicies that make the real API server refuse
//! requests in one namespace, as a cluster's own policies would.

use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::{ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding};
use k8s_openapi::api::batch::v1::Job;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

use crate::wait;

/// Denies, with `reason: Forbidden` (HTTP 403) and `message`, the
/// `operations` on `resource` of `group` in `namespace`. The policy and
/// its binding are both called `name`.
pub async fn deny(
    client: &Client,
    namespace: &str,
    name: &str,
    (group, resource): (&str, &str),
    operations: &[&str],
    message: &str,
) -> Result<(), String> {
    let policy: ValidatingAdmissionPolicy = serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": { "resourceRules": [{
                "apiGroups": [group], "apiVersions": ["*"], "operations": operations, "resources": [resource]
            }]},
            "validations": [{ "expression": "false", "message": message, "reason": "Forbidden" }]
        }
    }))
    .map_err(|e| e.to_string())?;
    let binding: ValidatingAdmissionPolicyBinding = serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": { "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": namespace } } }
        }
    }))
    .map_err(|e| e.to_string())?;
    Api::<ValidatingAdmissionPolicy>::all(client.clone())
        .create(&PostParams::default(), &policy)
        .await
        .map_err(|e| format!("create policy {name}: {e}"))?;
    Api::<ValidatingAdmissionPolicyBinding>::all(client.clone())
        .create(&PostParams::default(), &binding)
        .await
        .map_err(|e| format!("create binding {name}: {e}"))?;
    Ok(())
}

/// Denies Job creates in `namespace` (see [`deny`]).
pub async fn deny_jobs(client: &Client, namespace: &str, name: &str, message: &str) -> Result<(), String> {
    deny(client, namespace, name, ("batch", "jobs"), &["CREATE"], message).await
}

/// Removes the policy and binding called `name`, if they exist.
pub async fn remove(client: &Client, name: &str) {
    let _ = Api::<ValidatingAdmissionPolicyBinding>::all(client.clone()).delete(name, &DeleteParams::default()).await;
    let _ = Api::<ValidatingAdmissionPolicy>::all(client.clone()).delete(name, &DeleteParams::default()).await;
}

/// Policies and quotas take effect a moment after they are created: a
/// dry-run Job create is refused once they do.
pub async fn wait_until_job_creates_are_refused(client: &Client, namespace: &str) -> Result<(), String> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    let (probe, dry_run) = probe()?;
    wait::until(Duration::from_secs(30), "Job creates to be refused", || async {
        match jobs.create(&dry_run, &probe).await {
            Err(kube::Error::Api(answer)) if answer.code == 403 => Ok(()),
            other => Err(format!("a dry-run create answered {other:?}")),
        }
    })
    .await
}

/// A removed policy stops refusing a moment after its deletion: waits until
/// a dry-run Job create passes again.
pub async fn wait_until_job_creates_pass(client: &Client, namespace: &str) -> Result<(), String> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    let (probe, dry_run) = probe()?;
    wait::until(Duration::from_secs(30), "Job creates to pass again", || async {
        jobs.create(&dry_run, &probe).await.map(|_| ()).map_err(|e| e.to_string())
    })
    .await
}

/// A minimal Job, and the parameters to create it as a dry run: how the
/// harness asks whether Job creates are refused, without making a Job.
fn probe() -> Result<(Job, PostParams), String> {
    let job = serde_json::from_value(json!({
        "metadata": { "name": "e2e-probe" },
        "spec": { "template": { "spec": {
            "containers": [{ "name": "c", "image": "busybox" }], "restartPolicy": "Never"
        }}}
    }))
    .map_err(|e| e.to_string())?;
    Ok((job, PostParams { dry_run: true, ..PostParams::default() }))
}
