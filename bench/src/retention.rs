//! P9, retention: finished runs that the operator must delete, against a
//! plain client deleting the same runs. The runs are written directly
//! (finished, without Jobs: a deletion is the run's own request, its Job
//! goes through the garbage collector), so the figures are the deletions
//! alone.

use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::DynamicObject;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::error::{BenchError, Result};
use crate::objects::{self, JobKind};

/// The deletions' concurrency of the floor: the operator's default
/// `--concurrency`.
pub const FLOOR_CONCURRENCY: usize = 32;

/// Writes `templates` templates (with `policy` as their `runPolicy`) and
/// `count` finished runs spread over them (with `extra` in their spec), at
/// `concurrency` requests in flight.
pub async fn fill(
    client: &Client,
    namespace: &str,
    count: usize,
    templates: usize,
    policy: Value,
    extra: Value,
) -> Result<Duration> {
    let start = Instant::now();
    let template_api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &objects::job_template_resource());
    for t in 0..templates {
        let mut template = serde_json::to_value(objects::template(namespace, JobKind::Suspended))
            .map_err(|e| BenchError::Setup(e.to_string()))?;
        template["metadata"]["name"] = json!(template_name(t));
        template["runPolicy"] = policy.clone();
        let template: DynamicObject = serde_json::from_value(template).map_err(|e| BenchError::Setup(e.to_string()))?;
        template_api.create(&PostParams::default(), &template).await?;
    }
    let runs: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &objects::job_run_resource());
    let at = objects::now_rfc3339();
    let results: Vec<Result<()>> = futures::stream::iter(0..count)
        .map(|i| {
            let (runs, at, extra) = (&runs, &at, &extra);
            async move {
                let name = format!("kept-{i:05}");
                let mut run = serde_json::to_value(objects::run(namespace, &name))
                    .map_err(|e| BenchError::Setup(e.to_string()))?;
                run["spec"]["templateRef"] = json!(template_name(i % templates.max(1)));
                if let (Some(spec), Some(extra)) = (run["spec"].as_object_mut(), extra.as_object()) {
                    spec.extend(extra.clone());
                }
                let run: DynamicObject = serde_json::from_value(run).map_err(|e| BenchError::Setup(e.to_string()))?;
                runs.create(&PostParams::default(), &run).await?;
                runs.patch_status(&name, &PatchParams::default(), &Patch::Merge(objects::finished_status(&name, at)))
                    .await?;
                Ok(())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(start.elapsed())
}

fn template_name(t: usize) -> String {
    format!("retained-{t:02}")
}

/// The floor: one client deleting every run of `namespace`,
/// [`FLOOR_CONCURRENCY`] at once, each with a precondition on its uid (as
/// the operator's are); the time until the last answer.
pub async fn delete_all(client: &Client, namespace: &str) -> Result<Duration> {
    let runs: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &objects::job_run_resource());
    let listed = runs.list(&ListParams::default()).await?;
    let start = Instant::now();
    let results: Vec<Result<()>> = futures::stream::iter(listed.items)
        .map(|run| {
            let runs = &runs;
            async move {
                let params = DeleteParams {
                    preconditions: Some(kube::api::Preconditions { uid: run.uid(), resource_version: None }),
                    ..DeleteParams::background()
                };
                runs.delete(&run.name_any(), &params).await?;
                Ok(())
            }
        })
        .buffer_unordered(FLOOR_CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(start.elapsed())
}

/// The number of runs in `namespace` (one list, its remaining count).
pub async fn count(client: &Client, namespace: &str) -> Result<usize> {
    let runs: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &objects::job_run_resource());
    let page = runs.list_metadata(&ListParams::default().limit(1)).await?;
    let remaining = page.metadata.remaining_item_count.unwrap_or(0);
    Ok(page.items.len() + usize::try_from(remaining).unwrap_or(0))
}

/// Waits until `namespace` holds `left` runs or fewer, looking every 100 ms;
/// the time from `since`.
pub async fn until_left(
    client: &Client,
    namespace: &str,
    left: usize,
    since: Instant,
    limit: Duration,
) -> Result<Duration> {
    loop {
        if count(client, namespace).await? <= left {
            return Ok(since.elapsed());
        }
        if since.elapsed() > limit {
            return Err(BenchError::Timeout {
                what: format!("the runs of {namespace} to be at most {left}"),
                seconds: limit.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
