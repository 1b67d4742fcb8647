//! Tier 2 (e2e): fault drills. Each injects a fault on the full cluster
//! (real Job, TTL and garbage-collector controllers; kwok pods) while the
//! operator binary runs as a child process scoped to the drill's namespace,
//! and checks the outcome from outside: every Job uid ever seen per run,
//! every phase every run ever showed, and the final phases.

use std::collections::BTreeMap;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::drill::Ledger;
use e2e::objects::{run, template};
use e2e::operator::{OperatorProcess, http_get};
use e2e::suite::{self, Env, Test};
use e2e::{ClusterKind, policy, wait};
use futures::FutureExt;
use futures::future::join_all;
use job_template_run::crd::{JobRun, JobRunStatus, JobTemplate, Phase};
use job_template_run::merge;
use job_template_run::reconciler::PERMISSIONS;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ResourceQuota;
use k8s_openapi::api::rbac::v1::Role;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(180);

/// The API server restart disturbs every drill on the cluster: it runs
/// alone (write), the others side by side (read).
static CLUSTER: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());
/// Never written: the read guard that the drill holding [`CLUSTER`] alone carries.
static CLUSTER_IDLE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

fn main() -> ExitCode {
    suite::main(ClusterKind::Full, |_| {
        vec![
            Test::new("a_hundred_ttl_zero_runs_survive_four_sigkills_with_one_job_each_and_all_succeed", |e, ns| {
                sigkills(e, ns).boxed()
            }),
            Test::new(
                "jobs_that_finish_and_expire_while_the_operator_is_down_still_make_their_runs_succeed",
                |e, ns| down_while_finishing(e, ns).boxed(),
            ),
            Test::new("a_run_whose_status_writes_are_denied_gets_one_job_and_converges_once_allowed", |e, ns| {
                status_denied(e, ns).boxed()
            }),
            Test::new("a_run_applied_before_its_template_succeeds_and_a_missing_one_fails_after_the_grace", |e, ns| {
                template_late(e, ns).boxed()
            }),
            Test::new("a_finished_run_deleted_and_created_again_at_once_gets_its_own_job", |e, ns| {
                rerun(e, ns).boxed()
            }),
            Test::new("a_policy_denial_is_final_and_a_full_quota_waits_until_raised", |e, ns| refusals(e, ns).boxed()),
            Test::new("two_replicas_with_leader_election_survive_two_leader_kills_without_a_duplicate", |e, ns| {
                leaders(e, ns).boxed()
            }),
            Test::new(
                "after_a_leader_is_killed_the_jobs_of_runs_deleted_during_the_lease_gap_are_released",
                |e, ns| leader_gap(e, ns).boxed(),
            ),
            Test::new("an_api_server_restart_during_a_burst_loses_and_duplicates_nothing", |e, ns| {
                apiserver_restart(e, ns).boxed()
            }),
            Test::new("kubectl_jobrun_wait_outlasts_an_api_server_restart_and_reports_the_runs_outcome", |e, ns| {
                wait_across_restart(e, ns).boxed()
            }),
            Test::new("a_job_that_vanished_unseen_ends_its_run_job_lost_within_the_resync_period", |e, ns| {
                vanished(e, ns).boxed()
            }),
            Test::new("uninstalling_leaves_no_job_with_the_operators_finalizer", |e, ns| uninstall(e, ns).boxed()),
        ]
    })
}

/// One drill's namespace, client and operator command line.
struct Drill {
    env: Arc<Env>,
    client: Client,
    ns: String,
    _turn: tokio::sync::RwLockReadGuard<'static, ()>,
}

impl Drill {
    async fn new(env: Arc<Env>, ns: String) -> Self {
        Self { client: env.client.clone(), env, ns, _turn: CLUSTER.read().await }
    }

    /// The operator binary, scoped to this namespace, ready.
    fn operator(&self, extra: &[&str]) -> OperatorProcess {
        let mut args = vec!["--namespace", &self.ns];
        args.extend_from_slice(extra);
        tokio::task::block_in_place(|| OperatorProcess::start(&self.env.cluster.kubeconfig_path, &args))
            .expect("the operator starts and becomes ready")
    }

    fn runs(&self) -> Api<JobRun> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    fn jobs(&self) -> Api<Job> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    async fn template(&self, name: &str, spec: Value) {
        let api: Api<JobTemplate> = Api::namespaced(self.client.clone(), &self.ns);
        let template = template(&self.ns, name, spec).expect("a valid template");
        api.create(&PostParams::default(), &template).await.expect("the template is created");
    }

    async fn run(&self, name: &str, template: &str) {
        let run = run(&self.ns, name, template, &[]).expect("a valid run");
        self.runs().create(&PostParams::default(), &run).await.expect("the run is created");
    }

    /// Creates `count` runs `<prefix>-<i>` of `template`, 16 at a time.
    async fn burst(&self, prefix: &str, count: usize, template: &str) -> Vec<String> {
        let names: Vec<String> = (0..count).map(|i| format!("{prefix}-{i}")).collect();
        for chunk in names.chunks(16) {
            join_all(chunk.iter().map(|name| self.run(name, template))).await;
        }
        names
    }

    /// Waits until every run in `names` has a final phase; returns them.
    async fn finals(&self, names: &[String]) -> BTreeMap<String, JobRunStatus> {
        wait::until(TIMEOUT, &format!("{} runs to finish", names.len()), || async {
            let list = self.runs().list(&ListParams::default()).await.map_err(|e| e.to_string())?;
            let done: BTreeMap<String, JobRunStatus> = list
                .items
                .into_iter()
                .filter(|r| names.contains(&r.name_any()))
                .filter_map(|r| Some((r.name_any(), r.status.filter(|s| s.phase.is_some_and(Phase::is_final))?)))
                .collect();
            if done.len() == names.len() { Ok(done) } else { Err(format!("{} of {} final", done.len(), names.len())) }
        })
        .await
        .expect("every run finishes")
    }

    async fn wait_status(&self, name: &str, what: &str, check: impl Fn(&JobRunStatus) -> bool) -> JobRunStatus {
        wait::until(TIMEOUT, &format!("run {name}: {what}"), || async {
            let status = self.runs().get(name).await.map_err(|e| e.to_string())?.status.unwrap_or_default();
            if check(&status) { Ok(status) } else { Err(format!("{status:?}")) }
        })
        .await
        .expect("the run reaches the state")
    }

    /// Waits until the namespace has no Job left (all released and deleted).
    async fn no_jobs_left(&self) {
        wait::until(TIMEOUT, "every Job to be released and deleted", || async {
            let left = self.jobs().list(&ListParams::default()).await.map_err(|e| e.to_string())?;
            if left.items.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{:?}",
                    left.items.iter().map(|j| (j.name_any(), j.finalizers().to_vec())).collect::<Vec<_>>()
                ))
            }
        })
        .await
        .expect("no Job is left");
    }
}

fn reason(status: &JobRunStatus) -> Option<String> {
    status.conditions.iter().flatten().find(|c| c.type_ == merge::CONDITION_FINISHED).and_then(|c| c.reason.clone())
}

/// Every run had exactly one Job and succeeded; no final phase went back.
fn assert_one_job_each_and_all_succeeded(ledger: &Ledger, finals: &BTreeMap<String, JobRunStatus>) {
    assert!(ledger.duplicates().is_empty(), "runs with more than one Job: {:?}", ledger.duplicates());
    assert!(ledger.regressions().is_empty(), "runs whose final phase changed: {:?}", ledger.regressions());
    let uids = ledger.job_uids();
    let not_succeeded: Vec<_> =
        finals.iter().filter(|(_, s)| s.phase != Some(Phase::Succeeded)).map(|(n, s)| (n, reason(s))).collect();
    assert!(not_succeeded.is_empty(), "runs that did not succeed: {not_succeeded:?}");
    let without_job: Vec<_> = finals.keys().filter(|name| uids.get(*name).is_none_or(|u| u.len() != 1)).collect();
    assert!(without_job.is_empty(), "runs without exactly one Job: {without_job:?}");
}

async fn sigkills(env: Arc<Env>, ns: String) -> Result<(), String> {
    let drill = Drill::new(env, ns).await;
    let ledger = Ledger::start(&drill.client, &drill.ns);
    drill.template("ttl0", json!({ "ttlSecondsAfterFinished": 0 })).await;
    let mut operator = drill.operator(&[]);
    let names = drill.burst("r", 100, "ttl0").await;
    for (kill, at) in [10, 30, 55, 80].into_iter().enumerate() {
        wait::until(TIMEOUT, &format!("{at} Jobs before kill {}", kill + 1), || async {
            let seen = ledger.jobs_seen();
            if seen >= at { Ok(()) } else { Err(format!("{seen} Jobs")) }
        })
        .await?;
        drop(operator); // SIGKILL
        operator = drill.operator(&[]);
    }
    let finals = drill.finals(&names).await;
    assert_one_job_each_and_all_succeeded(&ledger, &finals);
    drill.no_jobs_left().await;
    eprintln!("drill sigkills: 100 runs, 4 SIGKILLs, {} Jobs, all Succeeded", ledger.jobs_seen());
    drop(operator);
    Ok(())
}

async fn down_while_finishing(env: Arc<Env>, ns: String) -> Result<(), String> {
    let drill = Drill::new(env, ns).await;
    let ledger = Ledger::start(&drill.client, &drill.ns);
    drill.template("ttl0", json!({ "ttlSecondsAfterFinished": 0 })).await;
    let operator = drill.operator(&[]);
    let names = drill.burst("d", 10, "ttl0").await;
    wait::until(TIMEOUT, "10 Jobs", || async {
        if ledger.jobs_seen() >= 10 { Ok(()) } else { Err(format!("{} Jobs", ledger.jobs_seen())) }
    })
    .await?;
    drop(operator);
    // The Jobs finish and their TTL expires while the operator is down: the
    // TTL controller deletes them, and only the finalizer keeps them.
    wait::until(TIMEOUT, "every Job complete and deleted by its TTL", || async {
        let jobs = drill.jobs().list(&ListParams::default()).await.map_err(|e| e.to_string())?;
        let expired = jobs
            .items
            .iter()
            .filter(|j| j.metadata.deletion_timestamp.is_some() && merge::holds_finalizer(j))
            .filter(|j| j.status.iter().flat_map(|s| s.conditions.iter().flatten()).any(|c| c.type_ == "Complete"))
            .count();
        if expired == 10 { Ok(()) } else { Err(format!("{expired} of 10 complete and expired")) }
    })
    .await?;
    let started = Instant::now();
    let operator = drill.operator(&[]);
    let finals = drill.finals(&names).await;
    eprintln!("drill down-while-finishing: all 10 final {:.2}s after restart", started.elapsed().as_secs_f64());
    assert_one_job_each_and_all_succeeded(&ledger, &finals);
    drill.no_jobs_left().await;
    drop(operator);
    Ok(())
}

async fn status_denied(env: Arc<Env>, ns: String) -> Result<(), String> {
    let drill = Drill::new(env, ns).await;
    let ledger = Ledger::start(&drill.client, &drill.ns);
    let policy_name = format!("deny-status-{}", drill.ns);
    policy::deny(
        &drill.client,
        &drill.ns,
        &policy_name,
        ("cellbytes.io", "jobruns/status"),
        &["UPDATE"],
        "status writes are frozen here",
    )
    .await?;
    drill.template("ttl0", json!({ "ttlSecondsAfterFinished": 0 })).await;
    let operator = drill.operator(&[]);
    drill.run("frozen", "ttl0").await;
    let created = Instant::now();
    // The Job finishes and expires, and the operator keeps failing to record it.
    wait::until(TIMEOUT, "the Job expired and three failed status writes", || async {
        let job = drill.jobs().get_opt("frozen").await.map_err(|e| e.to_string())?;
        let held = job.is_some_and(|j| j.metadata.deletion_timestamp.is_some() && merge::holds_finalizer(&j));
        let failures = operator.metric("job_template_run_reconcile_errors_total{reason=\"write_status\"}")?;
        if held && failures >= 3.0 { Ok(()) } else { Err(format!("held {held}, {failures} failed writes")) }
    })
    .await?;
    assert_eq!(ledger.jobs_seen(), 1, "Jobs created while status writes failed: {:?}", ledger.job_uids());
    policy::remove(&drill.client, &policy_name).await;
    let (removed, failing) = (Instant::now(), created.elapsed());
    let status = drill.wait_status("frozen", "Succeeded", |s| s.phase == Some(Phase::Succeeded)).await;
    assert_eq!(status.succeeded, Some(1));
    // The retry after the last refusal waits at most as long as the run had
    // been failing, however many Job events failed meanwhile (twice that if
    // one more retry comes while the policy's removal propagates).
    let converged = removed.elapsed();
    assert!(
        converged <= failing * 2 + Duration::from_secs(10),
        "converged {converged:?} after the policy went, though the run had been failing only {failing:?}"
    );
    eprintln!(
        "drill status-denied: {} failed writes over {:.1}s, converged {:.1}s after the policy went",
        operator.metric("job_template_run_reconcile_errors_total{reason=\"write_status\"}")?,
        failing.as_secs_f64(),
        converged.as_secs_f64()
    );
    drill.no_jobs_left().await;
    assert_eq!(ledger.jobs_seen(), 1, "Jobs: {:?}", ledger.job_uids());
    drop(operator);
    Ok(())
}

async fn template_late(env: Arc<Env>, ns: String) -> Result<(), String> {
    let drill = Drill::new(env, ns).await;
    let operator = drill.operator(&[]);
    drill.run("early", "late").await;
    tokio::time::sleep(Duration::from_millis(300)).await; // the order `kubectl apply -f dir/` uses
    drill.template("late", json!({})).await;
    let created = Instant::now();
    drill.run("typo", "no-such-template").await;
    let status = drill.wait_status("early", "Succeeded", |s| s.phase == Some(Phase::Succeeded)).await;
    assert_eq!(status.job_name.as_deref(), Some("early"));
    let failed = drill.wait_status("typo", "Failed", |s| s.phase == Some(Phase::Failed)).await;
    let took = created.elapsed();
    assert_eq!(reason(&failed).as_deref(), Some("TemplateNotFound"));
    assert!(took <= Duration::from_secs(11), "TemplateNotFound after {took:?}, more than the 10 s grace plus 1 s");
    eprintln!("drill template-late: TemplateNotFound {:.2}s after the run was created", took.as_secs_f64());
    drop(operator);
    Ok(())
}

async fn rerun(env: Arc<Env>, ns: String) -> Result<(), String> {
    let drill = Drill::new(env, ns).await;
    let ledger = Ledger::start(&drill.client, &drill.ns);
    drill.template("echo", json!({})).await;
    let operator = drill.operator(&[]);
    drill.run("again", "echo").await;
    drill.wait_status("again", "Succeeded", |s| s.phase == Some(Phase::Succeeded)).await;
    let first = drill.jobs().get("again").await.map_err(|e| e.to_string())?.uid();
    drill.runs().delete("again", &DeleteParams::background()).await.map_err(|e| e.to_string())?;
    let started = Instant::now();
    drill.run("again", "echo").await;
    let status = drill.wait_status("again", "Succeeded", |s| s.phase == Some(Phase::Succeeded)).await;
    let run_uid = drill.runs().get("again").await.map_err(|e| e.to_string())?.uid();
    let job = drill.jobs().get("again").await.map_err(|e| e.to_string())?;
    assert_ne!(job.uid(), first, "the new run reused the old Job");
    assert!(
        job.owner_references().iter().any(|o| Some(&o.uid) == run_uid.as_ref()),
        "the new Job is not the new run's"
    );
    assert_eq!(status.succeeded, Some(1));
    assert_eq!(ledger.job_uids().get("again").map(|u| u.len()), Some(2), "one Job per run: {:?}", ledger.job_uids());
    eprintln!("drill rerun: the new run succeeded {:.2}s after it was created", started.elapsed().as_secs_f64());
    drop(operator);
    Ok(())
}

async fn refusals(env: Arc<Env>, ns: String) -> Result<(), String> {
    let drill = Drill::new(env, ns.clone()).await;
    drill.template("echo", json!({})).await;
    let operator = drill.operator(&[]);
    // A policy: final.
    let policy_name = format!("deny-jobs-{ns}");
    policy::deny_jobs(&drill.client, &ns, &policy_name, "no Jobs on Sundays").await?;
    policy::wait_until_job_creates_are_refused(&drill.client, &ns).await?;
    drill.run("denied", "echo").await;
    let status = drill.wait_status("denied", "Failed", |s| s.phase == Some(Phase::Failed)).await;
    assert_eq!(reason(&status).as_deref(), Some("JobRejected"));
    assert!(status.error.as_deref().is_some_and(|e| e.contains("no Jobs on Sundays")), "error: {:?}", status.error);
    policy::remove(&drill.client, &policy_name).await;
    policy::wait_until_job_creates_pass(&drill.client, &ns).await?;
    // A full quota: shown at once, and retried until it is raised.
    let quotas: Api<ResourceQuota> = Api::namespaced(drill.client.clone(), &ns);
    let quota = |jobs: &str| -> ResourceQuota {
        serde_json::from_value(
            json!({ "metadata": { "name": "jobs" }, "spec": { "hard": { "count/jobs.batch": jobs } } }),
        )
        .expect("a valid quota")
    };
    quotas.create(&PostParams::default(), &quota("0")).await.map_err(|e| e.to_string())?;
    wait::until(TIMEOUT, "the quota to be counted", || async {
        let q = quotas.get("jobs").await.map_err(|e| e.to_string())?;
        if q.status.and_then(|s| s.used).is_some() { Ok(()) } else { Err("no usage yet".into()) }
    })
    .await?;
    let created = Instant::now();
    drill.run("queued", "echo").await;
    let waiting = drill
        .wait_status("queued", "JobCreated=False", |s| {
            s.conditions.iter().flatten().any(|c| c.type_ == merge::CONDITION_JOB_CREATED && c.status == "False")
        })
        .await;
    let shown = created.elapsed();
    assert!(shown < Duration::from_secs(10), "JobCreated=False took {shown:?}");
    assert_eq!(waiting.phase, Some(Phase::Pending));
    let patch = json!({ "spec": { "hard": { "count/jobs.batch": "5" } } });
    quotas.patch("jobs", &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(|e| e.to_string())?;
    drill.wait_status("queued", "Succeeded", |s| s.phase == Some(Phase::Succeeded)).await;
    eprintln!("drill refusals: JobCreated=False {:.2}s after the run was created", shown.as_secs_f64());
    drop(operator);
    Ok(())
}

/// The replica whose /readyz says it leads.
fn leader_of(replicas: &[OperatorProcess]) -> Option<usize> {
    replicas.iter().position(|r| http_get(&r.endpoint, "/readyz").is_ok_and(|(_, body)| body.contains("leader")))
}

async fn leaders(env: Arc<Env>, ns: String) -> Result<(), String> {
    let drill = Drill::new(env, ns.clone()).await;
    let ledger = Ledger::start(&drill.client, &drill.ns);
    drill.template("echo", json!({})).await;
    let args = ["--leader-election", "--leader-election-namespace", ns.as_str(), "--lease-duration-seconds", "5"];
    let mut replicas = vec![drill.operator(&args), drill.operator(&args)];
    let names = drill.burst("l", 200, "echo").await;
    let mut takeovers = Vec::new();
    for at in [40, 120] {
        wait::until(TIMEOUT, &format!("{at} Jobs"), || async {
            if ledger.jobs_seen() >= at { Ok(()) } else { Err(format!("{} Jobs", ledger.jobs_seen())) }
        })
        .await?;
        let leader = wait::until(TIMEOUT, "a leader", || async {
            leader_of(&replicas).ok_or_else(|| "no leader yet".to_owned())
        })
        .await
        .map_err(|e| e.to_string())?;
        drop(replicas.remove(leader)); // SIGKILL: the Lease is not released
        let killed = Instant::now();
        wait::until(TIMEOUT, "the standby to take over", || async {
            leader_of(&replicas).ok_or_else(|| "no leader yet".to_owned())
        })
        .await
        .map_err(|e| e.to_string())?;
        takeovers.push(killed.elapsed());
        replicas.push(drill.operator(&args));
    }
    let finals = drill.finals(&names).await;
    assert_one_job_each_and_all_succeeded(&ledger, &finals);
    eprintln!("drill leaders: 200 runs, 2 leader kills, takeover after {takeovers:?} (lease 5 s)");
    drop(replicas);
    Ok(())
}

/// The Jobs of `names` in the namespace, and how many of them hold the operator's finalizer.
async fn jobs_of(drill: &Drill, names: &[String]) -> Result<(usize, usize), String> {
    let jobs = drill.jobs().list(&ListParams::default()).await.map_err(|e| e.to_string())?;
    let theirs: Vec<&Job> = jobs.items.iter().filter(|j| names.contains(&j.name_any())).collect();
    Ok((theirs.len(), theirs.iter().filter(|j| merge::holds_finalizer(j)).count()))
}

async fn leader_gap(env: Arc<Env>, ns: String) -> Result<(), String> {
    const LEASE: Duration = Duration::from_secs(5);
    // Alone: the garbage collector must delete the Jobs well within the
    // lease gap, which a busy cluster does not promise.
    let _alone = CLUSTER.write().await;
    let drill = Drill { client: env.client.clone(), env, ns: ns.clone(), _turn: CLUSTER_IDLE.read().await };
    // Suspended: no pod, so nothing but the operator ever touches the Jobs again.
    drill.template("forever", json!({ "suspend": true })).await;
    let args = ["--leader-election", "--leader-election-namespace", ns.as_str(), "--lease-duration-seconds", "5"];
    let mut replicas = vec![drill.operator(&args), drill.operator(&args)];
    let names = drill.burst("g", 20, "forever").await;
    wait::until(TIMEOUT, "20 Jobs holding the finalizer", || async {
        match jobs_of(&drill, &names).await? {
            (20, 20) => Ok(()),
            (jobs, held) => Err(format!("{jobs} Jobs, {held} with the finalizer")),
        }
    })
    .await?;
    // The garbage collector must already handle JobRun deletions (it finds
    // the CRD by discovery, up to 30 s after it is installed): a probe run's
    // Job must go, released by the leader.
    drill.run("probe", "forever").await;
    wait::until(TIMEOUT, "the probe run's Job", || async {
        drill.jobs().get_opt("probe").await.map_err(|e| e.to_string())?.map(|_| ()).ok_or("no Job yet".into())
    })
    .await?;
    drill.runs().delete("probe", &DeleteParams::background()).await.map_err(|e| e.to_string())?;
    wait::until(TIMEOUT, "the garbage collector to delete the probe run's Job", || async {
        match drill.jobs().get_opt("probe").await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(_) => Err("still there".into()),
        }
    })
    .await?;
    let leader =
        wait::until(TIMEOUT, "a leader", || async { leader_of(&replicas).ok_or_else(|| "no leader".to_owned()) })
            .await?;
    drop(replicas.remove(leader)); // SIGKILL: the Lease is not released
    let killed = Instant::now();
    // The lease gap: the standby may not lead before the Lease expires.
    let (runs, background) = (drill.runs(), DeleteParams::background());
    for deleted in join_all(names.iter().map(|name| runs.delete(name, &background))).await {
        deleted.map_err(|e| e.to_string())?;
    }
    // The garbage collector deletes the Jobs, which then wait on the finalizer.
    wait::until(LEASE, "the garbage collector to delete the 20 Jobs", || async {
        let jobs = drill.jobs().list(&ListParams::default()).await.map_err(|e| e.to_string())?;
        let deleting = jobs.items.iter().filter(|j| j.metadata.deletion_timestamp.is_some()).count();
        if deleting == 20 { Ok(()) } else { Err(format!("{deleting} of 20 being deleted")) }
    })
    .await?;
    let gap = killed.elapsed();
    assert!(
        leader_of(&replicas).is_none(),
        "the standby led {gap:?} after the kill, before the Jobs were deleted: this drill needs them deleted in the lease gap"
    );
    let bound = LEASE + Duration::from_secs(10);
    let released = wait::until(bound.saturating_sub(killed.elapsed()), "no Job of the deleted runs left", || async {
        match jobs_of(&drill, &names).await? {
            (0, _) => Ok(killed.elapsed()),
            (jobs, held) => Err(format!("{jobs} Jobs left, {held} with the finalizer")),
        }
    })
    .await
    .map_err(|e| format!("{bound:?} after the leader was killed: {e}"))?;
    assert!(leader_of(&replicas).is_some(), "no replica leads after the Jobs were released");
    eprintln!(
        "drill leader-gap: 20 Jobs of runs deleted {:.2}s into the lease gap all released {:.2}s after the leader was killed (lease 5 s)",
        gap.as_secs_f64(),
        released.as_secs_f64()
    );
    drop(replicas);
    Ok(())
}

/// Kills kube-apiserver inside the cluster container (SIGKILL, a crash)
/// and starts it again with the same command line: every watch and
/// connection of the operator breaks. kwok's scheduler and controller
/// manager exit when their leases lapse during the outage; the script
/// restarts them, as a kubelet would, for 30 s. Blocks until then.
const RESTART_APISERVER: &str = r#"
L=/root/.kwok/clusters/kwok/logs
start() { (trap "" HUP; exec $2 >>$L/$1.log 2>&1) & }
api=$(tr '\0' ' ' < /proc/$(pidof kube-apiserver)/cmdline)
sched=$(tr '\0' ' ' < /proc/$(pidof kube-scheduler)/cmdline)
kcm=$(tr '\0' ' ' < /proc/$(pidof kube-controller-manager)/cmdline)
pid=$(pidof kube-apiserver); kill -9 $pid; while kill -0 $pid 2>/dev/null; do sleep 0.05; done
start kube-apiserver "$api"
end=$(( $(date +%s) + 30 ))
while [ "$(date +%s)" -lt "$end" ]; do
  pidof kube-scheduler >/dev/null || start kube-scheduler "$sched"
  pidof kube-controller-manager >/dev/null || start kube-controller-manager "$kcm"
  sleep 0.5
done
"#;

fn restart_apiserver(container: &str) {
    let status = Command::new("docker").args(["exec", container, "sh", "-c", RESTART_APISERVER]).status();
    assert!(status.is_ok_and(|s| s.success()), "cannot restart kube-apiserver in {container}");
}

async fn apiserver_restart(env: Arc<Env>, ns: String) -> Result<(), String> {
    let Some(container) = env.cluster.container_id().map(str::to_owned) else {
        return Err("needs the cluster container (not an existing cluster)".into());
    };
    let _alone = CLUSTER.write().await;
    let drill = Drill { client: env.client.clone(), env, ns, _turn: CLUSTER_IDLE.read().await };
    drill.template("echo", json!({})).await;
    let mut operator = drill.operator(&[]);
    let ledger = Ledger::start(&drill.client, &drill.ns);
    let names = drill.burst("a", 300, "echo").await;
    wait::until(TIMEOUT, "100 Jobs", || async {
        if ledger.jobs_seen() >= 100 { Ok(()) } else { Err(format!("{} Jobs", ledger.jobs_seen())) }
    })
    .await?;
    let restarted = Instant::now();
    let supervisor = tokio::task::spawn_blocking(move || restart_apiserver(&container));
    let finals = drill.finals(&names).await;
    supervisor.await.map_err(|e| e.to_string())?;
    assert!(operator.exited().is_none(), "the operator exited after the API server restart");
    assert_one_job_each_and_all_succeeded(&ledger, &finals);
    eprintln!("drill apiserver-restart: all 300 final {:.2}s after the restart", restarted.elapsed().as_secs_f64());
    drop(operator);
    Ok(())
}

/// The API server's count of open watches of JobRuns (its
/// `apiserver_longrunning_requests` gauge): how a drill knows that a
/// client's watch is established before it breaks it.
async fn jobrun_watches(client: &Client) -> Result<u64, String> {
    let request = http::Request::get("/metrics").body(Vec::new()).map_err(|e| e.to_string())?;
    let metrics = client.request_text(request).await.map_err(|e| format!("GET /metrics: {e}"))?;
    Ok(metrics
        .lines()
        .filter(|l| {
            l.starts_with("apiserver_longrunning_requests{")
                && l.contains("resource=\"jobruns\"")
                && l.contains("verb=\"WATCH\"")
        })
        .filter_map(|l| l.rsplit(' ').next().and_then(|n| n.parse::<f64>().ok()))
        .sum::<f64>() as u64)
}

/// `kubectl jobrun wait` on an unfinished run while kube-apiserver crashes
/// and comes back: the wait resumes its watch and reports the run's real
/// outcome (exit 0), not an error (exit 1, as a watch that gives up on its
/// first error would). No operator runs: the drill writes the run's status
/// itself after the restart, so the outcome does not wait on the Job
/// controller's own recovery.
async fn wait_across_restart(env: Arc<Env>, ns: String) -> Result<(), String> {
    let Some(container) = env.cluster.container_id().map(str::to_owned) else {
        return Err("needs the cluster container (not an existing cluster)".into());
    };
    let plugin = e2e::tools::workspace_binary("kubectl-jobrun");
    if !plugin.exists() {
        return Err(format!("{} is missing: run `make build`", plugin.display()));
    }
    let _alone = CLUSTER.write().await;
    let drill = Drill { client: env.client.clone(), env, ns, _turn: CLUSTER_IDLE.read().await };
    drill.template("held", json!({})).await;
    drill.run("waited", "held").await;
    let before = jobrun_watches(&drill.client).await?;
    let waiting = tokio::process::Command::new(&plugin)
        .args(["-n", &drill.ns, "wait", "waited", "--timeout", "170s"])
        .env("KUBECONFIG", &drill.env.cluster.kubeconfig_path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("spawn kubectl-jobrun wait: {e}"))?;
    wait::until(TIMEOUT, "the wait's watch to be open", || async {
        let now = jobrun_watches(&drill.client).await?;
        if now > before { Ok(()) } else { Err(format!("{now} watches of jobruns, {before} before the wait")) }
    })
    .await?;
    let restarted = Instant::now();
    tokio::task::spawn_blocking(move || restart_apiserver(&container)).await.map_err(|e| e.to_string())?;
    let succeeded = json!({ "status": {
        "phase": "Succeeded",
        "conditions": [{ "type": "Finished", "status": "True", "reason": "Succeeded", "message": "written by the drill",
                         "lastTransitionTime": "2026-01-01T00:00:00Z" }]
    } });
    wait::until(TIMEOUT, "the run's status to be written after the restart", || async {
        let patch = Patch::Merge(&succeeded);
        drill
            .runs()
            .patch_status("waited", &PatchParams::default(), &patch)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await?;
    let output = tokio::time::timeout(TIMEOUT, waiting.wait_with_output())
        .await
        .map_err(|_| "the wait did not return after the run finished")?
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!(
        "drill wait-restart: the wait returned {:.2}s after the restart began: {stdout}{stderr}",
        restarted.elapsed().as_secs_f64()
    );
    assert_eq!(output.status.code(), Some(0), "the wait's exit code (0: the run succeeded): {stderr}");
    assert_eq!(stdout.trim_end(), "jobrun.cellbytes.io/waited Succeeded", "the wait reported the outcome: {stderr}");
    Ok(())
}

/// The operator's watches that `/healthz` names as failing (with
/// `--watch-failure-seconds 0`, every watch whose last answer was an error).
fn failing_watches(operator: &OperatorProcess) -> Result<Vec<String>, String> {
    let (code, body) = http_get(&operator.endpoint, "/healthz")?;
    if code == 200 {
        return Ok(Vec::new());
    }
    Ok(body.split(", ").filter_map(|w| w.split(" failing for").next()).map(str::to_owned).collect())
}

/// The Role of the drill's operator identity: the chart's permissions
/// (`PERMISSIONS`), with or without `list` and `watch` on Jobs.
async fn operator_role(drill: &Drill, jobs_watchable: bool) -> Result<(), String> {
    let rules: Vec<Value> = PERMISSIONS
        .iter()
        .map(|p| {
            let verbs: Vec<&str> = p
                .verbs
                .iter()
                .copied()
                .filter(|v| jobs_watchable || p.resource != "jobs" || !matches!(*v, "list" | "watch"))
                .collect();
            json!({ "apiGroups": [p.api_group], "resources": [p.resource], "verbs": verbs })
        })
        .collect();
    let role: Role = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": { "name": "operator", "namespace": drill.ns }, "rules": rules
    }))
    .map_err(|e| e.to_string())?;
    let roles: Api<Role> = Api::namespaced(drill.client.clone(), &drill.ns);
    roles
        .patch("operator", &PatchParams::apply("job-template-run-e2e").force(), &Patch::Apply(&role))
        .await
        .map_err(|e| format!("cannot apply the operator's Role: {e}"))?;
    Ok(())
}

/// A ServiceAccount bound to [`operator_role`], and a kubeconfig with its token.
async fn operator_identity(drill: &Drill) -> Result<std::path::PathBuf, String> {
    operator_role(drill, true).await?;
    let out = drill.env.cluster.scratch_dir().join(format!("kubeconfig-{}.yaml", drill.ns));
    e2e::identity::operator_kubeconfig(&drill.client, &drill.env.cluster.kubeconfig_path, &drill.ns, out).await
}

async fn vanished(env: Arc<Env>, ns: String) -> Result<(), String> {
    const RESYNC: Duration = Duration::from_secs(5);
    const RELIST_TIMEOUT: Duration = Duration::from_secs(360);
    let Some(container) = env.cluster.container_id().map(str::to_owned) else {
        return Err("needs the cluster container (not an existing cluster)".into());
    };
    let _alone = CLUSTER.write().await;
    let drill = Drill { client: env.client.clone(), env, ns, _turn: CLUSTER_IDLE.read().await };
    // The operator runs as a ServiceAccount with the chart's permissions, so
    // that its Job watch alone can be refused for a while.
    let kubeconfig = operator_identity(&drill).await?;
    let resync = RESYNC.as_secs().to_string();
    let args = ["--namespace", &drill.ns, "--resync-seconds", &resync, "--watch-failure-seconds", "0"];
    let operator = tokio::task::block_in_place(|| OperatorProcess::start(&kubeconfig, &args))
        .expect("the operator starts and becomes ready");
    drill.template("forever", json!({ "suspend": true })).await;
    drill.template("witness", json!({ "suspend": true })).await;
    drill.run("ghost", "forever").await;
    drill.wait_status("ghost", "its Job recorded", |s| s.job_name.is_some()).await;
    wait::until(TIMEOUT, "the Job held by the finalizer and suspended", || async {
        let job = drill.jobs().get("ghost").await.map_err(|e| e.to_string())?;
        let suspended = job.status.iter().flat_map(|s| s.conditions.iter().flatten()).any(|c| c.type_ == "Suspended");
        if merge::holds_finalizer(&job) && suspended { Ok(()) } else { Err("not yet".into()) }
    })
    .await?;
    // The run needs its template no more; gone, it wakes no run when the
    // templates are listed again.
    let templates: Api<JobTemplate> = Api::namespaced(drill.client.clone(), &drill.ns);
    templates.delete("forever", &DeleteParams::background()).await.map_err(|e| e.to_string())?;

    // A watch gap on Jobs only: the operator may no longer list or watch
    // Jobs, and the API server restart breaks every watch. Its runs and
    // templates watches list again (410 Gone); its Job watch cannot, and
    // meanwhile the Job is stripped of its finalizer and deleted.
    operator_role(&drill, false).await?;
    let supervisor = tokio::task::spawn_blocking(move || restart_apiserver(&container));
    let job_watch = format!("jobs in {}", drill.ns);
    wait::until(TIMEOUT, "the Job watch to break and be refused", || async {
        let failing = failing_watches(&operator)?;
        if failing.contains(&job_watch) { Ok(()) } else { Err(format!("failing: {failing:?}")) }
    })
    .await?;
    let unhold = json!({ "metadata": { "finalizers": null } });
    wait::until(TIMEOUT, "the Job stripped and deleted", || async {
        let jobs = drill.jobs();
        jobs.patch("ghost", &PatchParams::default(), &Patch::Merge(&unhold)).await.map_err(|e| e.to_string())?;
        jobs.delete("ghost", &DeleteParams::background()).await.map_err(|e| e.to_string())?;
        Ok(())
    })
    .await?;
    // A witness run, made after the restart, comes after the ghost run in
    // the runs watch (in the list, by name, or as a later event): once the
    // operator has made its Job, the ghost run's re-list reconcile is done,
    // and it saw the Job still in the cache.
    let witness = run(&drill.ns, "witness", "witness", &[]).expect("a valid run");
    wait::until(TIMEOUT, "the witness run created", || async {
        drill.runs().create(&PostParams::default(), &witness).await.map(|_| ()).map_err(|e| e.to_string())
    })
    .await?;
    let restarted = Instant::now();
    // After the API server's restart every watch of the operator lists again
    // only once kube's watcher backoff lets it (exponential, up to 30 s a
    // try; seen from 16 s to past 180 s with five watches on a loaded
    // machine): a precondition of the drill, bounded apart from what it
    // measures (JobLost within the resync once the Job watch lists).
    wait::until(RELIST_TIMEOUT, "the operator to reconcile the witness run (its Job made)", || async {
        let made = drill.jobs().get_opt("witness").await.map_err(|e| e.to_string())?.is_some();
        if made { Ok(()) } else { Err(format!("failing watches: {:?}", failing_watches(&operator)?)) }
    })
    .await?;
    let relisted = restarted.elapsed();
    let failing = failing_watches(&operator)?;
    // (The templates watch may still wait to list again: the only template
    // left wakes only the witness.)
    let run_watch = format!("jobruns in {}", drill.ns);
    assert!(
        failing.contains(&job_watch) && !failing.contains(&run_watch),
        "the Job watch should still be refused and the runs watch live: failing {failing:?}"
    );
    let status = drill.runs().get("ghost").await.map_err(|e| e.to_string())?.status.unwrap_or_default();
    assert_ne!(status.phase, Some(Phase::Failed), "the run failed while the operator's cache still had its Job");

    // Jobs may be watched again: the Job watch lists them, without the Job.
    // A list yields no event for what is missing: only the resync is left.
    operator_role(&drill, true).await?;
    // (The FailedCreate Events watch may still be backing off: this drill
    // needs the Job watch only.)
    wait::until(TIMEOUT, "the Job watch to list again", || async {
        let failing = failing_watches(&operator)?;
        if !failing.contains(&job_watch) { Ok(()) } else { Err(format!("failing: {failing:?}")) }
    })
    .await?;
    let listed = Instant::now();
    let bound = RESYNC.mul_f64(1.1) + Duration::from_secs(1);
    let status = wait::until(bound, "JobLost from the resync", || async {
        let status = drill.runs().get("ghost").await.map_err(|e| e.to_string())?.status.unwrap_or_default();
        if status.phase == Some(Phase::Failed) { Ok(status) } else { Err(format!("{:?}", status.phase)) }
    })
    .await
    .map_err(|e| format!("{e}, though the Job watch listed again {:.1}s ago", listed.elapsed().as_secs_f64()))?;
    let lost = listed.elapsed();
    assert_eq!(reason(&status).as_deref(), Some("JobLost"));
    assert!(drill.jobs().get_opt("ghost").await.map_err(|e| e.to_string())?.is_none(), "a second Job was made");
    eprintln!(
        "drill vanished: JobLost {:.2}s after the Job watch listed again without the Job (resync {} s; the witness run reconciled {:.1}s after it was made)",
        lost.as_secs_f64(),
        RESYNC.as_secs(),
        relisted.as_secs_f64()
    );
    supervisor.await.map_err(|e| e.to_string())?;
    drop(operator);
    Ok(())
}

async fn uninstall(env: Arc<Env>, ns: String) -> Result<(), String> {
    let drill = Drill::new(env, ns.clone()).await;
    drill.template("forever", json!({ "suspend": true })).await;
    let operator = drill.operator(&[]);
    let names = drill.burst("u", 5, "forever").await;
    wait::until(TIMEOUT, "5 Jobs holding the finalizer", || async {
        let jobs = drill.jobs().list(&ListParams::default()).await.map_err(|e| e.to_string())?;
        let held = jobs.items.iter().filter(|j| merge::holds_finalizer(j)).count();
        if held == 5 { Ok(()) } else { Err(format!("{held} held")) }
    })
    .await?;
    // The documented steps: stop the operator, release, uninstall.
    let status = tokio::task::block_in_place(|| operator.terminate(Duration::from_secs(20)))?;
    assert!(status.success(), "the operator exited with {status}");
    let output = Command::new(e2e::operator::binary())
        .args(["release-finalizers", "--namespace", &ns])
        .env("KUBECONFIG", &drill.env.cluster.kubeconfig_path)
        .output()
        .map_err(|e| e.to_string())?;
    assert!(output.status.success(), "release-finalizers failed: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "released 5 Job(s)");
    let jobs = drill.jobs().list(&ListParams::default()).await.map_err(|e| e.to_string())?;
    assert!(jobs.items.iter().all(|j| !merge::holds_finalizer(j)), "a Job still holds the finalizer");
    for name in &names {
        drill.runs().delete(name, &DeleteParams::background()).await.map_err(|e| e.to_string())?;
    }
    // Nothing holds the Jobs any more: deleted, they go at once. (They are
    // deleted here, as the garbage collector would: after the API server
    // restart drill, its monitors resync with backoff, and a fresh-clone CI
    // run saw it delete nothing for 180 s.)
    for name in &names {
        drill.jobs().delete(name, &DeleteParams::background()).await.map(|_| ()).or_else(|e| match e {
            kube::Error::Api(status) if status.code == 404 => Ok(()),
            other => Err(other.to_string()),
        })?;
    }
    drill.no_jobs_left().await;
    Ok(())
}
