//! What the fault drills count, from outside the operator: every Job uid
//! ever seen per run, and every phase each run ever showed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use job_template_run::crd::{JobRun, Phase};
use job_template_run::merge::{LABEL_MANAGED_BY, LABEL_RUN, MANAGER};
use k8s_openapi::api::batch::v1::Job;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::task::JoinHandle;

/// Watches one namespace until dropped and keeps what it saw.
pub struct Ledger {
    jobs: Arc<Mutex<BTreeMap<String, BTreeSet<String>>>>,
    phases: Arc<Mutex<BTreeMap<String, Vec<Phase>>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Ledger {
    /// Starts watching the operator's Jobs and all JobRuns in `namespace`.
    pub fn start(client: &Client, namespace: &str) -> Self {
        let jobs = Arc::new(Mutex::new(BTreeMap::<String, BTreeSet<String>>::new()));
        let phases = Arc::new(Mutex::new(BTreeMap::<String, Vec<Phase>>::new()));
        let job_api: Api<Job> = Api::namespaced(client.clone(), namespace);
        let config = watcher::Config::default().labels(&format!("{LABEL_MANAGED_BY}={MANAGER}"));
        let seen_jobs = jobs.clone();
        let job_task =
            tokio::spawn(watcher(job_api, config).default_backoff().touched_objects().for_each(move |job| {
                if let Ok(job) = job {
                    let run = job.labels().get(LABEL_RUN).cloned().unwrap_or_default();
                    let uid = job.uid().unwrap_or_default();
                    lock(&seen_jobs).entry(run).or_default().insert(uid);
                }
                futures::future::ready(())
            }));
        let run_api: Api<JobRun> = Api::namespaced(client.clone(), namespace);
        let seen_phases = phases.clone();
        let run_task = tokio::spawn(
            watcher(run_api, watcher::Config::default()).default_backoff().applied_objects().for_each(move |run| {
                if let Ok(run) = run
                    && let Some(phase) = run.status.as_ref().and_then(|s| s.phase)
                {
                    let mut phases = lock(&seen_phases);
                    let history = phases.entry(run.name_any()).or_default();
                    if history.last() != Some(&phase) {
                        history.push(phase);
                    }
                }
                futures::future::ready(())
            }),
        );
        Self { jobs, phases, tasks: vec![job_task, run_task] }
    }

    /// Every Job uid ever seen, per run name (the Job's run label).
    pub fn job_uids(&self) -> BTreeMap<String, BTreeSet<String>> {
        lock(&self.jobs).clone()
    }

    /// How many Jobs were ever seen, in all.
    pub fn jobs_seen(&self) -> usize {
        lock(&self.jobs).values().map(BTreeSet::len).sum()
    }

    /// Runs that ever had more than one Job, with their uids.
    pub fn duplicates(&self) -> BTreeMap<String, BTreeSet<String>> {
        lock(&self.jobs).iter().filter(|(_, uids)| uids.len() > 1).map(|(r, u)| (r.clone(), u.clone())).collect()
    }

    /// Runs whose phase went from final back to anything else, with their history.
    pub fn regressions(&self) -> BTreeMap<String, Vec<Phase>> {
        lock(&self.phases)
            .iter()
            .filter(|(_, history)| {
                history.iter().position(|p| p.is_final()).is_some_and(|first| history.len() > first + 1)
            })
            .map(|(run, history)| (run.clone(), history.clone()))
            .collect()
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
