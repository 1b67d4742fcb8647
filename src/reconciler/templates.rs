//! Each JobTemplate's status: `observedGeneration` and the `Valid`
//! condition that [`merge::template_status`] decides. Written only when it
//! differs from what the template has, through the status subresource,
//! while this replica leads. Runs never wait for it: each checks its
//! template itself ([`merge::admit`]).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use serde_json::json;
use tracing::{info, warn};

use super::context::Context;
use super::error::ReconcileError;
use super::reconcile::FIELD_MANAGER;
use crate::crd::JobTemplate;
use crate::merge;

/// Writes `template`'s status when it is not what the core decides.
pub async fn write_status(template: Arc<JobTemplate>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    ctx.gate.wait().await;
    if !ctx.gate.leading() {
        return Ok(Action::await_change());
    }
    let status = merge::template_status(&template, Time(Timestamp::now()));
    if template.status.as_ref() == Some(&status) {
        return Ok(Action::await_change());
    }
    let name = template.name_any();
    let api: Api<JobTemplate> = Api::namespaced(ctx.client.clone(), &template.namespace().unwrap_or_default());
    let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..PatchParams::default() };
    // Conditional on the resourceVersion read: a newer template is written by its own event.
    let patch = json!({ "metadata": { "resourceVersion": template.resource_version() }, "status": status });
    api.patch_status(&name, &params, &Patch::Merge(&patch))
        .await
        .map_err(|source| ReconcileError::WriteTemplateStatus { name: name.clone(), source })?;
    let valid = status.conditions.iter().flatten().next();
    info!(
        template = %name,
        namespace = ?template.namespace(),
        valid = valid.map(|c| c.status.as_str()),
        reason = valid.map(|c| c.reason.as_str()),
        "template status written"
    );
    Ok(Action::await_change())
}

pub fn error_policy(template: Arc<JobTemplate>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    warn!(template = %template.name_any(), namespace = ?template.namespace(), %error, "cannot write the template's status, will retry");
    ctx.metrics.reconcile_failed(error.metric_label());
    Action::requeue(Duration::from_secs(5))
}
