//! An operator identity of a test's own: a ServiceAccount `operator` bound
//! to the Role `operator` in one namespace (the caller writes the Role's
//! rules), and a kubeconfig that authenticates as it, so a test can run
//! the operator with exactly the permissions it grants.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

/// Creates the ServiceAccount and its RoleBinding in `namespace`, and
/// writes to `out` a copy of the cluster's kubeconfig (`cluster`) whose
/// users carry a one-hour token of that ServiceAccount.
pub async fn operator_kubeconfig(
    client: &Client,
    cluster: &Path,
    namespace: &str,
    out: PathBuf,
) -> Result<PathBuf, String> {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let account: ServiceAccount = serde_json::from_value(json!({ "metadata": { "name": "operator" } }))
        .map_err(|e: serde_json::Error| e.to_string())?;
    accounts.create(&PostParams::default(), &account).await.map_err(|e| format!("ServiceAccount: {e}"))?;
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": { "name": "operator" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "operator" },
        "subjects": [{ "kind": "ServiceAccount", "name": "operator", "namespace": namespace }]
    }))
    .map_err(|e: serde_json::Error| e.to_string())?;
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), namespace);
    bindings.create(&PostParams::default(), &binding).await.map_err(|e| format!("RoleBinding: {e}"))?;
    let request = serde_json::from_value(json!({ "spec": { "audiences": [], "expirationSeconds": 3600 } }))
        .map_err(|e: serde_json::Error| e.to_string())?;
    let token = accounts
        .create_token_request("operator", &PostParams::default(), &request)
        .await
        .map_err(|e| format!("TokenRequest: {e}"))?
        .status
        .map(|s| s.token)
        .ok_or("TokenRequest returned no token")?;
    let text = std::fs::read_to_string(cluster).map_err(|e| e.to_string())?;
    let mut kubeconfig: Value = serde_norway::from_str(&text).map_err(|e| e.to_string())?;
    for user in kubeconfig["users"].as_array_mut().into_iter().flatten() {
        user["user"] = json!({ "token": token });
    }
    std::fs::write(&out, serde_norway::to_string(&kubeconfig).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    Ok(out)
}
