//! One namespace per test, so tests can share a cluster and run in parallel.

use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};

/// A namespace created for one test.
pub struct TestNamespace {
    pub name: String,
    client: Client,
}

impl TestNamespace {
    /// Creates `<prefix>-<random>`, a valid namespace name of at most 63 characters.
    pub async fn create(client: &Client, prefix: &str) -> Result<Self, String> {
        let clean: String = prefix
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(52)
            .collect();
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let name = format!("{}-{:08x}", clean.trim_matches('-'), nanos ^ std::process::id());
        let namespace =
            Namespace { metadata: ObjectMeta { name: Some(name.clone()), ..Default::default() }, ..Default::default() };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .map_err(|e| format!("cannot create namespace {name}: {e}"))?;
        Ok(Self { name, client: client.clone() })
    }

    /// Deletes the namespace, or keeps it (and says so) when asked to.
    pub async fn finish(self, keep: bool) {
        if keep {
            eprintln!("keeping namespace {} of the failed test", self.name);
            return;
        }
        let _ = Api::<Namespace>::all(self.client.clone()).delete(&self.name, &DeleteParams::background()).await;
    }
}
