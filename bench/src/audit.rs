//! API calls counted from outside: the cluster image's API server audits
//! ServiceAccounts' requests; the operators run with a ServiceAccount
//! token of their own, so their calls are the audit events of that user.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::config::{AuthInfo, Kubeconfig};
use serde::Deserialize;

use crate::error::{BenchError, Result};

pub const NAMESPACE: &str = "jtr-bench";
pub const ACCOUNT: &str = "operator";

pub fn username() -> String {
    format!("system:serviceaccount:{NAMESPACE}:{ACCOUNT}")
}

/// Creates the operators' ServiceAccount (bound to cluster-admin, so that
/// any implementation has what it needs) and writes a kubeconfig that
/// authenticates as it, next to the admin one.
pub async fn operator_kubeconfig(client: &Client, admin: &std::path::Path) -> Result<std::path::PathBuf> {
    let namespace = Namespace { metadata: named(NAMESPACE), ..Default::default() };
    create_if_missing(Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &namespace).await)?;
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), NAMESPACE);
    create_if_missing(
        accounts
            .create(&PostParams::default(), &ServiceAccount { metadata: named(ACCOUNT), ..Default::default() })
            .await,
    )?;
    let binding = ClusterRoleBinding {
        metadata: named("jtr-bench-operator"),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: "cluster-admin".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: ACCOUNT.into(),
            namespace: Some(NAMESPACE.into()),
            ..Default::default()
        }]),
    };
    create_if_missing(Api::<ClusterRoleBinding>::all(client.clone()).create(&PostParams::default(), &binding).await)?;
    let request = TokenRequest {
        spec: TokenRequestSpec { expiration_seconds: Some(24 * 3600), audiences: vec![], ..Default::default() },
        ..Default::default()
    };
    let answer: TokenRequest = accounts.create_subresource("token", ACCOUNT, &PostParams::default(), &request).await?;
    let token = answer.status.map(|s| s.token).ok_or_else(|| BenchError::Setup("TokenRequest gave no token".into()))?;

    let mut kubeconfig = Kubeconfig::read_from(admin).map_err(|e| BenchError::Setup(e.to_string()))?;
    for user in &mut kubeconfig.auth_infos {
        user.auth_info = Some(AuthInfo { token: Some(token.clone().into()), ..Default::default() });
    }
    let path = admin.with_file_name("operator-kubeconfig.yaml");
    let yaml = serde_norway::to_string(&kubeconfig).map_err(|e| BenchError::Setup(e.to_string()))?;
    std::fs::write(&path, yaml).map_err(|source| BenchError::Write { path: path.clone(), source })?;
    Ok(path)
}

fn named(name: &str) -> ObjectMeta {
    ObjectMeta { name: Some(name.into()), ..Default::default() }
}

fn create_if_missing<T>(result: std::result::Result<T, kube::Error>) -> Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    stage: String,
    verb: String,
    user: User,
    #[serde(default)]
    user_agent: String,
    object_ref: Option<ObjectRef>,
    request_received_timestamp: Timestamp,
    stage_timestamp: Option<Timestamp>,
}

#[derive(Debug, Deserialize)]
struct User {
    username: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectRef {
    resource: Option<String>,
    subresource: Option<String>,
    name: Option<String>,
}

/// When the API server received each Job create of `username`, and when it
/// answered, by Job name.
pub fn job_creates(log: &str, username: &str) -> BTreeMap<String, (Timestamp, Timestamp)> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Event>(line).ok())
        .filter(|e| e.user.username == username && e.verb == "create" && e.stage == "ResponseComplete")
        .filter_map(|e| {
            let object = e.object_ref?;
            (object.resource.as_deref() == Some("jobs") && object.subresource.is_none())
                .then_some((object.name?, (e.request_received_timestamp, e.stage_timestamp?)))
        })
        .collect()
}

/// API calls of one user in a time window, by verb and resource.
#[derive(Debug, Clone, Default)]
pub struct Calls {
    /// `(verb, resource[/subresource])` → count.
    pub by_verb: BTreeMap<(String, String), u64>,
    pub user_agents: BTreeMap<String, u64>,
}

impl Calls {
    /// Counts the events of `username` received in `[from, to]`: one per
    /// request (a watch counts when it starts).
    pub fn count(log: &str, username: &str, from: Timestamp, to: Timestamp) -> Self {
        let mut calls = Self::default();
        for event in log.lines().filter_map(|line| serde_json::from_str::<Event>(line).ok()) {
            let counted_stage = if event.verb == "watch" { "ResponseStarted" } else { "ResponseComplete" };
            if event.user.username != username
                || !(event.stage == counted_stage || event.stage == "Panic")
                || event.request_received_timestamp < from
                || event.request_received_timestamp > to
            {
                continue;
            }
            let resource = event
                .object_ref
                .map(|o| match (o.resource, o.subresource) {
                    (Some(r), Some(s)) => format!("{r}/{s}"),
                    (Some(r), None) => r,
                    (None, _) => "-".into(),
                })
                .unwrap_or_else(|| "-".into());
            *calls.by_verb.entry((event.verb, resource)).or_default() += 1;
            *calls.user_agents.entry(event.user_agent).or_default() += 1;
        }
        calls
    }

    fn sum(&self, verbs: &[&str]) -> u64 {
        self.by_verb.iter().filter(|((verb, _), _)| verbs.contains(&verb.as_str())).map(|(_, n)| n).sum()
    }

    pub fn writes(&self) -> u64 {
        self.sum(&["create", "update", "patch", "delete", "deletecollection"])
    }

    pub fn reads(&self) -> u64 {
        self.sum(&["get", "list"])
    }

    /// `verb resource: n` per entry, each count divided by `per`.
    pub fn describe(&self, per: f64) -> String {
        self.by_verb
            .iter()
            .map(|((verb, resource), n)| format!("{verb} {resource} {:.2}", *n as f64 / per))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = r#"{"kind":"Event","stage":"ResponseComplete","verb":"create","user":{"username":"system:serviceaccount:jtr-bench:operator"},"userAgent":"ua","objectRef":{"resource":"jobs","namespace":"a","apiGroup":"batch"},"requestReceivedTimestamp":"2026-01-01T00:00:01.000000Z"}
{"kind":"Event","stage":"ResponseComplete","verb":"patch","user":{"username":"system:serviceaccount:jtr-bench:operator"},"userAgent":"ua","objectRef":{"resource":"jobruns","subresource":"status"},"requestReceivedTimestamp":"2026-01-01T00:00:02.000000Z"}
{"kind":"Event","stage":"ResponseStarted","verb":"watch","user":{"username":"system:serviceaccount:jtr-bench:operator"},"userAgent":"ua","objectRef":{"resource":"jobs"},"requestReceivedTimestamp":"2026-01-01T00:00:02.000000Z"}
{"kind":"Event","stage":"ResponseComplete","verb":"watch","user":{"username":"system:serviceaccount:jtr-bench:operator"},"userAgent":"ua","objectRef":{"resource":"jobs"},"requestReceivedTimestamp":"2026-01-01T00:00:02.000000Z"}
{"kind":"Event","stage":"ResponseComplete","verb":"get","user":{"username":"someone-else"},"objectRef":{"resource":"jobs"},"requestReceivedTimestamp":"2026-01-01T00:00:02.000000Z"}
{"kind":"Event","stage":"ResponseComplete","verb":"get","user":{"username":"system:serviceaccount:jtr-bench:operator"},"objectRef":{"resource":"jobs"},"requestReceivedTimestamp":"2026-01-01T00:00:09.000000Z"}"#;

    #[test]
    fn finds_job_creates_by_name() {
        let log = r#"{"stage":"ResponseComplete","verb":"create","user":{"username":"u"},"objectRef":{"resource":"jobs","name":"p1-00001"},"requestReceivedTimestamp":"2026-01-01T00:00:01.000100Z","stageTimestamp":"2026-01-01T00:00:01.002100Z"}"#;
        let creates = job_creates(log, "u");
        let (received, completed) = creates["p1-00001"];
        assert_eq!(completed.duration_since(received).as_micros(), 2000);
    }

    #[test]
    fn counts_one_user_in_a_window_by_verb() {
        let from: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        let to: Timestamp = "2026-01-01T00:00:05Z".parse().expect("time");
        let calls = Calls::count(LOG, &username(), from, to);
        assert_eq!(calls.writes(), 2);
        assert_eq!(calls.reads(), 0);
        assert_eq!(calls.sum(&["watch"]), 1);
        assert_eq!(calls.describe(2.0), "create jobs 0.50, patch jobruns/status 0.50, watch jobs 0.50");
    }
}
