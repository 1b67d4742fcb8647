//! Pod logs in the kwok cluster image: `GET /api/v1/namespaces/NS/pods/P/log`
//! (kubectl logs, `Api::<Pod>::logs` and `log_stream`) answered from a file
//! that a test writes inside the cluster container.
//!
//! The API server asks the Node's kubelet for a pod's log; in the image that
//! is kwok's server, which finds the file through kwok's own objects
//! (`kwok.x-k8s.io/v1alpha1`, watched at run time: the image runs kwok with
//! `--enable-crds=Logs,ClusterLogs`). kwok picks them by namespace and pod
//! name, not by label:
//!
//! - [`Pods::Namespace`]: a ClusterLogs `e2e-<namespace>` selecting the
//!   namespace, so every pod in it, including pods made later (a Job's).
//!   It is owned by the Namespace and goes with it.
//! - [`Pods::Pod`]: a Logs named after the pod, in its namespace. It wins
//!   over the namespace's: a pod with a Logs gets nothing from a ClusterLogs.
//!
//! Each file serves one container (`Some(name)`) or every container that has
//! no file of its own (`None`). Files live under [`LOGS_DIR`] in the
//! container and are written through `docker exec`. Content is taken as
//! lines (a missing final newline is added) and stored in the CRI log format
//! kwok reads (`<RFC 3339 time> stdout F <line>`), stamped with the time of
//! writing, which `timestamps=true` and `sinceSeconds` use.
//!
//! A follow (`follow=true`) streams lines appended with [`LogFile::append`]
//! and never ends from the server's side, not even when the pod is deleted:
//! the reader ends it by dropping the stream. `previous=true` is not served.

use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ApiResource, DynamicObject, LogParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::cluster::Cluster;
use crate::wait;

/// Where the log files live inside the cluster container:
/// `<LOGS_DIR>/<namespace>/<pod, or _namespace>/<container, or _default>.log`.
pub const LOGS_DIR: &str = "/var/log/e2e";

/// kwok's API group and version of Logs and ClusterLogs.
pub const KWOK_API_VERSION: &str = "kwok.x-k8s.io/v1alpha1";

/// How long one `docker exec` may take.
const EXEC_LIMIT: Duration = Duration::from_secs(30);

/// Which pods a log file is served for.
#[derive(Debug, Clone, Copy)]
pub enum Pods<'a> {
    /// Every pod in the namespace (a ClusterLogs), now and later.
    Namespace(&'a str),
    /// One pod (a Logs named after it), whether it exists yet or not.
    Pod { namespace: &'a str, name: &'a str },
}

/// A log file being served; [`LogFile::append`] adds lines to it.
#[derive(Debug, Clone)]
pub struct LogFile {
    container_id: String,
    path: String,
}

impl LogFile {
    /// The file's path inside the cluster container.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Appends `content`'s lines, which a follow then streams.
    pub async fn append(&self, content: &str) -> Result<(), String> {
        exec(&self.container_id, &["sh", "-c", r#"cat >> "$1""#, "sh", &self.path], cri_lines(content)).await
    }
}

/// Serves `content` as the log of `container` (`None`: of every container
/// without a file of its own) of `pods`, replacing what it served before.
/// The first read may still find nothing for a moment (kwok learns of the
/// object by a watch, and a pod must be scheduled and started): wait with
/// [`wait_served`] before it.
pub async fn serve_logs(
    cluster: &Cluster,
    client: &Client,
    pods: Pods<'_>,
    container: Option<&str>,
    content: &str,
) -> Result<LogFile, String> {
    let container_id = cluster
        .container_id()
        .ok_or("pod logs are served only in the cluster image's container, not on an existing cluster")?
        .to_string();
    let (namespace, pod) = match pods {
        Pods::Namespace(namespace) => (namespace, "_namespace"),
        Pods::Pod { namespace, name } => (namespace, name),
    };
    let path = format!("{LOGS_DIR}/{namespace}/{pod}/{}.log", container.unwrap_or("_default"));
    // Written aside and renamed: a reader never sees half of it.
    let script = r#"mkdir -p "${1%/*}" && cat > "$1.tmp" && mv -f "$1.tmp" "$1""#;
    exec(&container_id, &["sh", "-c", script, "sh", &path], cri_lines(content)).await?;
    let entry = match container {
        Some(container) => json!({ "containers": [container], "logsFile": path }),
        None => json!({ "logsFile": path }),
    };
    match pods {
        Pods::Namespace(namespace) => {
            let uid = Api::<Namespace>::all(client.clone())
                .get(namespace)
                .await
                .map_err(|e| format!("namespace {namespace}: {e}"))?
                .uid()
                .ok_or("the namespace has no uid")?;
            let owner = json!({ "apiVersion": "v1", "kind": "Namespace", "name": namespace, "uid": uid });
            let selector = json!({ "matchNamespaces": [namespace] });
            let api = Api::<DynamicObject>::all_with(client.clone(), &kwok_resource("ClusterLogs", "clusterlogs"));
            put_entry(&api, "ClusterLogs", &format!("e2e-{namespace}"), Some(owner), Some(selector), entry).await?;
        }
        Pods::Pod { namespace, name } => {
            let api = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &kwok_resource("Logs", "logs"));
            put_entry(&api, "Logs", name, None, None, entry).await?;
        }
    }
    Ok(LogFile { container_id, path })
}

/// Waits (up to 30 s) until the API server answers a read of the pod's log,
/// `container` being needed for a pod of several containers.
pub async fn wait_served(client: &Client, namespace: &str, pod: &str, container: Option<&str>) -> Result<(), String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = LogParams { container: container.map(str::to_string), limit_bytes: Some(1), ..LogParams::default() };
    wait::until(Duration::from_secs(30), &format!("the log of pod {namespace}/{pod} to be served"), || async {
        pods.logs(pod, &params).await.map(|_| ()).map_err(|e| e.to_string())
    })
    .await
}

/// `content`'s lines as CRI log lines on stdout, stamped now.
fn cri_lines(content: &str) -> String {
    let now = Timestamp::now();
    content.split_terminator('\n').map(|line| format!("{now} stdout F {line}\n")).collect()
}

fn kwok_resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "kwok.x-k8s.io".into(),
        version: "v1alpha1".into(),
        api_version: KWOK_API_VERSION.into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// Creates the object, or replaces its entry for the same containers.
async fn put_entry(
    api: &Api<DynamicObject>,
    kind: &str,
    name: &str,
    owner: Option<Value>,
    selector: Option<Value>,
    entry: Value,
) -> Result<(), String> {
    let unserved = |e: kube::Error| match &e {
        kube::Error::Api(status) if status.code == 404 => format!(
            "kwok's {kind} are not served (an image built before pod logs? run `bash scripts/build-cluster-image.sh`): {e}"
        ),
        _ => format!("{kind} {name}: {e}"),
    };
    let existing = api.get_opt(name).await.map_err(unserved)?;
    let mut logs: Vec<Value> =
        existing.as_ref().and_then(|o| o.data["spec"]["logs"].as_array().cloned()).unwrap_or_default();
    logs.retain(|l| l.get("containers") != entry.get("containers"));
    logs.push(entry);
    let mut spec = json!({ "logs": logs });
    if let Some(selector) = selector {
        spec["selector"] = selector;
    }
    let mut metadata = json!({ "name": name });
    if let Some(owner) = owner {
        metadata["ownerReferences"] = json!([owner]);
    }
    let mut object: DynamicObject = serde_json::from_value(
        json!({ "apiVersion": KWOK_API_VERSION, "kind": kind, "metadata": metadata, "spec": spec }),
    )
    .map_err(|e| e.to_string())?;
    match existing {
        Some(existing) => {
            object.metadata.resource_version = existing.metadata.resource_version;
            api.replace(name, &PostParams::default(), &object).await.map(|_| ()).map_err(unserved)
        }
        None => api.create(&PostParams::default(), &object).await.map(|_| ()).map_err(unserved),
    }
}

/// Runs `args` in the container with `input` on its standard input.
async fn exec(container_id: &str, args: &[&str], input: String) -> Result<(), String> {
    let mut child = tokio::process::Command::new("docker")
        .args(["exec", "-i", container_id])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("docker exec: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("docker exec: no stdin")?;
    let run = async {
        stdin.write_all(input.as_bytes()).await.map_err(|e| format!("docker exec: writing its input: {e}"))?;
        drop(stdin);
        child.wait_with_output().await.map_err(|e| format!("docker exec: {e}"))
    };
    let output = tokio::time::timeout(EXEC_LIMIT, run)
        .await
        .map_err(|_| format!("docker exec {args:?} did not finish within {EXEC_LIMIT:?}"))??;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("docker exec {args:?}: {}: {}", output.status, String::from_utf8_lossy(&output.stderr).trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_becomes_one_cri_line_per_line_with_the_final_newline_optional() {
        for content in ["one\ntwo\n", "one\ntwo"] {
            let lines = cri_lines(content);
            let parsed: Vec<(&str, &str)> = lines
                .lines()
                .map(|l| {
                    let mut parts = l.splitn(4, ' ');
                    let time = parts.next().expect("a time");
                    assert!(time.parse::<Timestamp>().is_ok(), "{time} is not RFC 3339");
                    assert_eq!((parts.next(), parts.next()), (Some("stdout"), Some("F")));
                    (time, parts.next().expect("a line"))
                })
                .collect();
            assert_eq!(parsed.iter().map(|(_, l)| *l).collect::<Vec<_>>(), ["one", "two"]);
            assert!(lines.ends_with('\n'));
        }
        assert_eq!(cri_lines(""), "");
        assert!(cri_lines("\n").ends_with(" stdout F \n"), "an empty line stays a line");
    }
}
