//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several
//! operator replicas only one reconciles.
//!
//! The algorithm is client-go's: the holder renews the Lease's `renewTime`;
//! another replica takes the Lease over when it has not changed for
//! `leaseDurationSeconds` *of its own clock* (so clock skew between nodes does
//! not matter); a holder that could not renew within the renew deadline (two
//! thirds of the lease) stops leading before anyone else may take over. Every
//! write is a create (atomic) or a replace conditional on the resourceVersion
//! that was read, so two replicas can never both win the same race. On
//! shutdown the holder clears `holderIdentity`, so a planned restart hands
//! over at once instead of after a whole lease duration.
//!
//! API calls (see `LEADER_ELECTION_PERMISSION`): `get`, `create` and `update`
//! on one Lease.

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::merge::MANAGER;

/// A failed Lease call; the election loop logs it and tries again.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("cannot read Lease {name}: {source}")]
    Get { name: String, source: kube::Error },
    #[error("cannot create Lease {name}: {source}")]
    Create { name: String, source: kube::Error },
    #[error("cannot update Lease {name}: {source}")]
    Update { name: String, source: kube::Error },
}

/// How often the election acts, all derived from the lease duration as in
/// client-go (15 s lease: 10 s renew deadline, 2 s retry period).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How long the Lease holds without renewal; written to the Lease.
    pub lease_duration: Duration,
    /// A holder that has not renewed for this long stops leading.
    pub renew_deadline: Duration,
    /// How often a holder renews, a follower looks again, and a failed call is retried.
    pub retry_period: Duration,
}

impl Timing {
    pub fn from_lease_duration(lease_duration: Duration) -> Self {
        // Whole seconds: that is what the Lease can say.
        let lease_duration = Duration::from_secs(lease_duration.as_secs().max(1));
        Self { lease_duration, renew_deadline: lease_duration * 2 / 3, retry_period: lease_duration * 2 / 15 }
    }
}

/// Campaigns for one Lease and reports whether this replica leads.
pub struct LeaderElection {
    leases: Api<Lease>,
    lease_name: String,
    identity: String,
    timing: Timing,
}

impl LeaderElection {
    pub fn new(client: Client, namespace: &str, lease_name: &str, identity: &str, lease_duration: Duration) -> Self {
        Self {
            leases: Api::namespaced(client, namespace),
            lease_name: lease_name.to_owned(),
            identity: identity.to_owned(),
            timing: Timing::from_lease_duration(lease_duration),
        }
    }

    /// Runs until `stopped` completes: acquires, renews, and on shutdown
    /// releases the lease (so a planned restart hands over at once).
    ///
    /// `leading` says whether this replica holds the Lease; it turns false
    /// when the Lease is lost or cannot be renewed in time, and before the
    /// release. Complete `stopped` only once the work guarded by the Lease
    /// has stopped, or another replica may start while it still runs.
    pub async fn run(self, leading: watch::Sender<bool>, stopped: impl Future<Output = ()>) {
        let mut state = State::default();
        tokio::pin!(stopped);
        info!(lease = %self.lease_name, identity = %self.identity, "leader election: campaigning");
        loop {
            let wait = tokio::select! {
                () = &mut stopped => break,
                wait = self.step(&mut state, &leading) => wait,
            };
            tokio::select! {
                () = &mut stopped => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        set_leading(&leading, false, &self.lease_name);
        match self.release().await {
            Ok(true) => info!(lease = %self.lease_name, "leader election: released the lease"),
            Ok(false) => debug!(lease = %self.lease_name, "leader election: not the holder, nothing to release"),
            Err(error) => warn!(%error, "leader election: cannot release the lease; it expires by itself"),
        }
    }

    /// One round: steps down if renewal is overdue, then reads the Lease and
    /// acts on it. Returns how long to wait before the next round.
    async fn step(&self, state: &mut State, leading: &watch::Sender<bool>) -> Duration {
        let started = Instant::now();
        if state.renewed.is_some_and(|renewed| renewal_overdue(renewed, started, self.timing.renew_deadline)) {
            warn!(lease = %self.lease_name, "leader election: could not renew in time, stepping down");
            state.renewed = None;
            set_leading(leading, false, &self.lease_name);
        }
        // A call must not outlive the renew deadline: a hung request would
        // otherwise keep this replica leading past it.
        let budget = match state.renewed {
            Some(renewed) => (renewed + self.timing.renew_deadline).saturating_duration_since(started),
            None => self.timing.renew_deadline,
        };
        let Ok(outcome) = tokio::time::timeout(budget, self.try_acquire_or_renew(state, started)).await else {
            warn!(lease = %self.lease_name, "leader election: the API server did not answer in time");
            return Duration::ZERO;
        };
        match outcome {
            Ok(Outcome::Leading) => {
                state.renewed = Some(started);
                set_leading(leading, true, &self.lease_name);
                self.timing.retry_period
            }
            Ok(Outcome::Following { holder }) => {
                if state.renewed.take().is_some() {
                    warn!(lease = %self.lease_name, ?holder, "leader election: the lease was taken over");
                }
                set_leading(leading, false, &self.lease_name);
                self.timing.retry_period
            }
            Err(error) => {
                warn!(%error, "leader election: will retry");
                self.timing.retry_period
            }
        }
    }

    async fn try_acquire_or_renew(&self, state: &mut State, now: Instant) -> Result<Outcome, LeaderError> {
        let name = &self.lease_name;
        let Some(lease) =
            self.leases.get_opt(name).await.map_err(|source| LeaderError::Get { name: name.clone(), source })?
        else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(name.clone()), ..ObjectMeta::default() },
                spec: Some(taken(None, &self.identity, self.timing.lease_duration, Timestamp::now())),
            };
            return match self.leases.create(&self.post_params(), &lease).await {
                Ok(_) => Ok(Outcome::Leading),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(Outcome::Following { holder: None }),
                Err(source) => Err(LeaderError::Create { name: name.clone(), source }),
            };
        };
        let version = lease.resource_version().unwrap_or_default();
        let since = state.observe(&version, now);
        let spec = lease.spec.clone().unwrap_or_default();
        let new_spec = match decide(&spec, &self.identity, since, now, self.timing.lease_duration) {
            Action::Renew => renewed(&spec, self.timing.lease_duration, Timestamp::now()),
            Action::Take => taken(Some(&spec), &self.identity, self.timing.lease_duration, Timestamp::now()),
            Action::Follow => return Ok(Outcome::Following { holder: spec.holder_identity }),
        };
        // The replace carries the resourceVersion read above: if anyone wrote
        // the Lease in between, it fails with 409 and nothing changes.
        let update = Lease { spec: Some(new_spec), ..lease };
        match self.leases.replace(name, &self.post_params(), &update).await {
            Ok(_) => Ok(Outcome::Leading),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Outcome::Following { holder: None }),
            Err(source) => Err(LeaderError::Update { name: name.clone(), source }),
        }
    }

    /// Clears the holder if it is this replica; returns whether it was.
    async fn release(&self) -> Result<bool, LeaderError> {
        let name = &self.lease_name;
        let lease =
            self.leases.get_opt(name).await.map_err(|source| LeaderError::Get { name: name.clone(), source })?;
        let Some(mut lease) = lease else { return Ok(false) };
        let Some(spec) = lease.spec.as_mut().filter(|s| s.holder_identity.as_deref() == Some(&self.identity)) else {
            return Ok(false);
        };
        *spec = released(spec, Timestamp::now());
        self.leases
            .replace(name, &self.post_params(), &lease)
            .await
            .map_err(|source| LeaderError::Update { name: name.clone(), source })?;
        Ok(true)
    }

    fn post_params(&self) -> PostParams {
        PostParams { field_manager: Some(MANAGER.to_owned()), ..PostParams::default() }
    }
}

fn set_leading(leading: &watch::Sender<bool>, value: bool, lease: &str) {
    let changed = leading.send_if_modified(|current| std::mem::replace(current, value) != value);
    if changed {
        info!(%lease, leading = value, "leader election: leadership changed");
    }
}

/// What the election remembers between rounds.
#[derive(Debug, Default)]
struct State {
    /// The Lease's resourceVersion last read, and when it was first read.
    observed: Option<(String, Instant)>,
    /// When this replica last acquired or renewed the Lease (the time the
    /// call was started), while it leads.
    renewed: Option<Instant>,
}

impl State {
    /// Records the version read at `now`; returns since when it is unchanged.
    fn observe(&mut self, version: &str, now: Instant) -> Instant {
        match &self.observed {
            Some((seen, since)) if seen == version => *since,
            _ => {
                self.observed = Some((version.to_owned(), now));
                now
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Leading,
    Following { holder: Option<String> },
}

/// What to do with a Lease as read.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    /// This replica holds it: renew.
    Renew,
    /// Nobody holds it, or the holder let it expire: take it over.
    Take,
    /// Someone else holds it and it has not expired.
    Follow,
}

/// The election's decision. `unchanged_since` is when this replica first
/// read the Lease in its current version: another holder's lease expires
/// `leaseDurationSeconds` (the holder's own figure, else ours) after that,
/// measured on this replica's clock, never against the Lease's timestamps.
fn decide(spec: &LeaseSpec, identity: &str, unchanged_since: Instant, now: Instant, ours: Duration) -> Action {
    match spec.holder_identity.as_deref() {
        None | Some("") => Action::Take,
        Some(holder) if holder == identity => Action::Renew,
        Some(_) => {
            let duration = spec
                .lease_duration_seconds
                .and_then(|seconds| u64::try_from(seconds).ok())
                .map_or(ours, Duration::from_secs);
            if now.saturating_duration_since(unchanged_since) >= duration { Action::Take } else { Action::Follow }
        }
    }
}

/// A leader whose last successful renewal started `renew_deadline` ago or
/// more must stop: the others may take over `lease_duration` after it.
fn renewal_overdue(renewed: Instant, now: Instant, renew_deadline: Duration) -> bool {
    now.saturating_duration_since(renewed) >= renew_deadline
}

/// The Lease as this replica takes it over from `previous` (absent: a new Lease).
fn taken(previous: Option<&LeaseSpec>, identity: &str, duration: Duration, now: Timestamp) -> LeaseSpec {
    let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
    let had_holder = previous.and_then(|p| p.holder_identity.as_deref()).is_some_and(|h| !h.is_empty());
    LeaseSpec {
        holder_identity: Some(identity.to_owned()),
        lease_duration_seconds: Some(seconds(duration)),
        acquire_time: Some(MicroTime(now)),
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(if had_holder { transitions.saturating_add(1) } else { transitions }),
        ..previous.cloned().unwrap_or_default()
    }
}

/// The Lease as its holder renews it.
fn renewed(spec: &LeaseSpec, duration: Duration, now: Timestamp) -> LeaseSpec {
    LeaseSpec { renew_time: Some(MicroTime(now)), lease_duration_seconds: Some(seconds(duration)), ..spec.clone() }
}

/// The Lease as its holder gives it up: no holder, so the next replica
/// takes it at its next look.
fn released(spec: &LeaseSpec, now: Timestamp) -> LeaseSpec {
    LeaseSpec { holder_identity: None, acquire_time: None, renew_time: Some(MicroTime(now)), ..spec.clone() }
}

fn seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs()).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(15);

    fn held_by(holder: Option<&str>, seconds: Option<i32>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            lease_duration_seconds: seconds,
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_lease_without_a_holder_is_taken() {
        let now = Instant::now();
        assert_eq!(decide(&held_by(None, Some(15)), "a", now, now, LEASE), Action::Take);
        assert_eq!(decide(&held_by(Some(""), Some(15)), "a", now, now, LEASE), Action::Take);
    }

    #[test]
    fn the_holder_renews_its_own_lease() {
        let now = Instant::now();
        assert_eq!(decide(&held_by(Some("a"), Some(15)), "a", now, now + LEASE * 2, LEASE), Action::Renew);
    }

    #[test]
    fn another_holders_lease_is_followed_until_it_has_been_unchanged_for_its_duration() {
        let since = Instant::now();
        let lease = held_by(Some("b"), Some(15));
        assert_eq!(decide(&lease, "a", since, since, LEASE), Action::Follow);
        assert_eq!(decide(&lease, "a", since, since + Duration::from_millis(14_999), LEASE), Action::Follow);
        assert_eq!(decide(&lease, "a", since, since + Duration::from_secs(15), LEASE), Action::Take);
    }

    #[test]
    fn expiry_uses_the_holders_lease_duration_and_ours_when_it_has_none() {
        let since = Instant::now();
        let at = since + Duration::from_secs(20);
        assert_eq!(decide(&held_by(Some("b"), Some(30)), "a", since, at, LEASE), Action::Follow);
        assert_eq!(decide(&held_by(Some("b"), None), "a", since, at, LEASE), Action::Take);
        assert_eq!(decide(&held_by(Some("b"), Some(-1)), "a", since, at, LEASE), Action::Take);
    }

    #[test]
    fn a_lease_is_unchanged_since_its_version_was_first_read() {
        let start = Instant::now();
        let mut state = State::default();
        assert_eq!(state.observe("1", start), start);
        assert_eq!(state.observe("1", start + Duration::from_secs(5)), start);
        let later = start + Duration::from_secs(6);
        assert_eq!(state.observe("2", later), later);
    }

    #[test]
    fn a_leader_steps_down_at_the_renew_deadline_before_the_lease_expires() {
        let timing = Timing::from_lease_duration(LEASE);
        assert_eq!(timing.renew_deadline, Duration::from_secs(10));
        assert_eq!(timing.retry_period, Duration::from_secs(2));
        let renewed = Instant::now();
        assert!(!renewal_overdue(renewed, renewed + Duration::from_millis(9_999), timing.renew_deadline));
        assert!(renewal_overdue(renewed, renewed + timing.renew_deadline, timing.renew_deadline));
        assert!(timing.renew_deadline + timing.retry_period < timing.lease_duration);
    }

    #[test]
    fn taking_over_from_another_holder_counts_a_transition() {
        let now = Timestamp::UNIX_EPOCH;
        let previous = LeaseSpec { lease_transitions: Some(3), ..held_by(Some("b"), Some(15)) };
        let spec = taken(Some(&previous), "a", LEASE, now);
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.lease_transitions, Some(4));
        assert_eq!(spec.lease_duration_seconds, Some(15));
        assert_eq!(spec.acquire_time, Some(MicroTime(now)));
        assert_eq!(spec.renew_time, Some(MicroTime(now)));
        let released_lease = LeaseSpec { lease_transitions: Some(4), ..held_by(None, Some(15)) };
        assert_eq!(taken(Some(&released_lease), "a", LEASE, now).lease_transitions, Some(4));
        assert_eq!(taken(None, "a", LEASE, now).lease_transitions, Some(0));
    }

    #[test]
    fn renewing_keeps_the_holder_and_acquire_time() {
        let acquired = Timestamp::UNIX_EPOCH;
        let spec = taken(None, "a", LEASE, acquired);
        let later = Timestamp::from_second(60).expect("a valid time");
        let renewed_spec = renewed(&spec, LEASE, later);
        assert_eq!(renewed_spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(renewed_spec.acquire_time, Some(MicroTime(acquired)));
        assert_eq!(renewed_spec.renew_time, Some(MicroTime(later)));
    }

    #[test]
    fn a_released_lease_has_no_holder_and_is_taken_at_once() {
        let spec = released(&taken(None, "a", LEASE, Timestamp::UNIX_EPOCH), Timestamp::UNIX_EPOCH);
        assert_eq!(spec.holder_identity, None);
        let now = Instant::now();
        assert_eq!(decide(&spec, "b", now, now, LEASE), Action::Take);
    }
}
