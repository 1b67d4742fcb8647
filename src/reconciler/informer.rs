//! Watch-fed caches, pruned to what the decisions read, and a signal for
//! when each has its first full list.
//!
//! `Store::wait_until_ready` keeps one waker: when the Controller's own task
//! and the readiness check both wait on the same store, one of them can miss
//! the wake-up (seen here as `/readyz` stuck at 503). So readiness watches
//! the event stream for `InitDone` instead.

use std::fmt::Debug;
use std::time::Instant;

use futures::{Stream, StreamExt};
use kube::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::telemetry::Health;

/// A cache of `K` and whether it has synced.
pub struct Informer<K: kube::Resource<DynamicType = ()> + Clone + 'static> {
    pub store: Store<K>,
    synced: watch::Receiver<bool>,
}

impl<K> Informer<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    /// The cache of what `api` and `config` select, each object cut down by
    /// `prune` before it is stored, and the watch events that keep it
    /// current (they must be polled for the cache to fill). Failures and
    /// recoveries of the watch are reported to `health` under `name`.
    pub fn new(
        api: Api<K>,
        config: watcher::Config,
        prune: fn(&mut K),
        name: String,
        health: Health,
    ) -> (Self, impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static) {
        let (store, writer) = reflector::store();
        let (synced_tx, synced) = watch::channel(false);
        let events =
            watcher(api, config).default_backoff().modify(prune).reflect(writer).inspect(move |event| match event {
                Ok(event) => {
                    health.watch_ok(&name);
                    if matches!(event, watcher::Event::InitDone) {
                        synced_tx.send_replace(true);
                    }
                }
                Err(error) => {
                    health.watch_failed(&name, Instant::now());
                    warn!(watch = %name, %error, "watch failed, retrying with backoff");
                }
            });
        (Self { store, synced }, events)
    }

    /// Completes once the cache has its first full list, and logs it.
    pub async fn synced(mut self, cache: &'static str, scope: String) {
        if self.synced.wait_for(|synced| *synced).await.is_ok() {
            info!(cache, %scope, "cache synced");
        }
    }
}
