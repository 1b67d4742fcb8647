//! The callback delivery worker: makes the attempts the decision table hands
//! over, beside the reconciles and with a concurrency bound of its own, so
//! that a slow or hanging receiver never delays a Job create or a status
//! mirror. Before each attempt it checks that this replica still leads;
//! each attempt (name resolution, Secret read and request together) is
//! bounded by the callback timeout; its outcome is recorded through the
//! same status path as every other write: [`merge::drive`] from the live
//! run and the attempt.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use super::context::Context;
use super::reconcile::record;
use crate::crd::JobRun;
use crate::merge::{self, Delivery};

/// Attempts in flight at once, and the runs that have one queued or in flight.
pub struct Deliveries {
    permits: Arc<Semaphore>,
    size: u32,
    /// Uids of the runs with an attempt queued or in flight: a run is
    /// handed over again by every reconcile until its outcome is written,
    /// and gets one attempt.
    busy: Mutex<HashSet<String>>,
    closed: AtomicBool,
}

impl Deliveries {
    /// A worker that makes at most `concurrency` attempts at once (at least one).
    pub fn new(concurrency: u16) -> Self {
        let size = u32::from(concurrency.max(1));
        Self {
            permits: Arc::new(Semaphore::new(size as usize)),
            size,
            busy: Mutex::new(HashSet::new()),
            closed: AtomicBool::new(false),
        }
    }

    /// Queues one attempt of `run`'s callback, unless it has one already.
    pub fn hand_over(ctx: &Arc<Context>, run: &JobRun, delivery: Delivery) {
        let deliveries = &ctx.deliveries;
        let Some(uid) = run.uid() else { return };
        if deliveries.closed.load(Ordering::SeqCst) || !deliveries.lock().insert(uid.clone()) {
            debug!(jobrun = %run.name_any(), "callback attempt already queued or in flight");
            return;
        }
        let (ctx, run) = (ctx.clone(), run.clone());
        let permits = deliveries.permits.clone();
        tokio::spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else { return };
            if !ctx.deliveries.closed.load(Ordering::SeqCst) && ctx.gate.leading() {
                // The reconcile that handed this over read the run live, but
                // an attempt recorded since (its busy mark just lifted) makes
                // this one a duplicate: only a run still owing this very
                // attempt is sent.
                if still_owed(&ctx, &run).await {
                    attempt(&ctx, &run, &delivery).await;
                }
            } else {
                debug!(jobrun = %run.name_any(), "not leading or stopping: callback attempt dropped");
            }
            ctx.deliveries.lock().remove(&uid);
        });
    }

    /// Stops taking attempts and waits for those in flight to end and be
    /// recorded (each within the callback timeout plus its status write).
    pub async fn drain(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let _all = self.permits.acquire_many(self.size).await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.busy.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether the run, read live, still owes the attempt that `run` (as the
/// handing reconcile saw it) was to make: the same run, its callback still
/// pending, no attempt recorded since.
async fn still_owed(ctx: &Arc<Context>, run: &JobRun) -> bool {
    let runs: Api<JobRun> = Api::namespaced(ctx.client.clone(), &run.namespace().unwrap_or_default());
    let attempts = |r: &JobRun| r.status.as_ref().and_then(|s| s.callback.as_ref()).and_then(|c| c.attempts);
    match runs.get_opt(&run.name_any()).await {
        Ok(Some(live)) => live.uid() == run.uid() && merge::callback_pending(&live) && attempts(&live) == attempts(run),
        Ok(None) => false,
        Err(error) => {
            warn!(jobrun = %run.name_any(), %error, "cannot read the run before its callback attempt; the next reconcile hands it over again");
            false
        }
    }
}

/// Makes the attempt and records its outcome on the run as the API server
/// has it now (read again after a conflict, at most three times).
async fn attempt(ctx: &Arc<Context>, run: &JobRun, delivery: &Delivery) {
    let (name, namespace) = (run.name_any(), run.namespace().unwrap_or_default());
    let secrets = Api::namespaced(ctx.client.clone(), &namespace);
    let attempt = ctx.sender.send(delivery, &secrets).await;
    ctx.metrics.callback_attempt(attempt.class());
    info!(jobrun = %name, url = %merge::shown_url(&delivery.url), result = attempt.class(), "callback attempt");
    let runs: Api<JobRun> = Api::namespaced(ctx.client.clone(), &namespace);
    for _ in 0..3 {
        let live = match runs.get_opt(&name).await {
            Ok(Some(live)) if live.uid() == run.uid() => live,
            Ok(_) => return, // the run is gone: nothing to record
            Err(error) => {
                warn!(jobrun = %name, %error, "cannot read the run to record its callback attempt");
                return;
            }
        };
        let job = ctx.jobs.get(&ObjectRef::new(&merge::job_name_for(&live)).within(&namespace));
        match record(ctx, live, job, attempt.clone()).await {
            Ok(true) => return,
            Ok(false) => debug!(jobrun = %name, "the run changed while its callback outcome was written; again"),
            Err(error) => {
                warn!(jobrun = %name, %error, "cannot record the callback attempt; it is made again");
                return;
            }
        }
    }
}
