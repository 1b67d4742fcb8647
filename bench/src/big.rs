//! A cluster with many finished runs: the JobRuns, their status, and their
//! complete Jobs, written directly, for memory and start-up with a full
//! cache. The Jobs name an external manager (`spec.managedBy`), so the Job
//! controller never runs them nor writes to them: the cluster stays idle.

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::core::DynamicObject;
use kube::{Client, ResourceExt};

use crate::error::{BenchError, Result};
use crate::objects::{self, JobKind};

/// Creates `count` finished runs and their suspended Jobs in `namespace`
/// with `concurrency` requests in flight.
pub async fn fill(client: &Client, namespace: &str, count: usize, concurrency: usize) -> Result<Duration> {
    let start = Instant::now();
    let templates: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &objects::job_template_resource());
    templates.create(&PostParams::default(), &objects::template(namespace, JobKind::Suspended)).await?;
    let runs: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &objects::job_run_resource());
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    let at = objects::now_rfc3339();
    let results: Vec<Result<()>> = futures::stream::iter(0..count)
        .map(|i| {
            let (runs, jobs, at) = (&runs, &jobs, &at);
            async move {
                let name = format!("done-{i:05}");
                let run = runs.create(&PostParams::default(), &objects::run(namespace, &name)).await?;
                let uid = run.uid().unwrap_or_default();
                runs.patch_status(&name, &PatchParams::default(), &Patch::Merge(objects::finished_status(&name, at)))
                    .await?;
                let mut job = objects::job(namespace, &name, Some(&uid), JobKind::Running);
                job["spec"]["managedBy"] = objects::BENCH_MANAGED_BY.into();
                let job: Job = serde_json::from_value(job).map_err(|e| BenchError::Setup(e.to_string()))?;
                jobs.create(&PostParams::default(), &job).await?;
                jobs.patch_status(&name, &PatchParams::default(), &Patch::Merge(objects::complete_job_status(at)))
                    .await?;
                if i > 0 && i % 2000 == 0 {
                    eprintln!("bench: {i} finished runs written");
                }
                Ok(())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(start.elapsed())
}

/// What listing everything took.
#[derive(Debug, Clone, Copy, Default)]
pub struct Listed {
    pub took: Duration,
    /// JSON bytes of the objects.
    pub bytes: u64,
    /// List requests (pages).
    pub requests: u64,
}

/// The floor of a cache sync: one client listing every JobTemplate, JobRun
/// and Job in the cluster (pages of 500, as informers do).
pub async fn list_all(client: &Client) -> Result<Listed> {
    let start = Instant::now();
    let runs = Api::<DynamicObject>::all_with(client.clone(), &objects::job_run_resource());
    let templates = Api::<DynamicObject>::all_with(client.clone(), &objects::job_template_resource());
    let jobs = Api::<Job>::all(client.clone());
    let (a, b, c) = tokio::try_join!(pages(&runs), pages(&templates), pages(&jobs))?;
    Ok(Listed { took: start.elapsed(), bytes: a.0 + b.0 + c.0, requests: a.1 + b.1 + c.1 })
}

async fn pages<K>(api: &Api<K>) -> Result<(u64, u64)>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let (mut bytes, mut requests) = (0, 0);
    let mut params = ListParams::default().limit(500);
    loop {
        let page = api.list(&params).await?;
        requests += 1;
        bytes += page.items.iter().map(|i| serde_json::to_vec(i).map(|v| v.len() as u64).unwrap_or(0)).sum::<u64>();
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok((bytes, requests)),
        }
    }
}
