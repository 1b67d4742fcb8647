//! The cluster under test: a container started through testcontainers' K3s
//! module (the project's kwok image or real k3s), or an existing cluster.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use job_template_run::crd;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};
use testcontainers::runners::SyncRunner;
use testcontainers::{Container, ImageExt};
use testcontainers_modules::k3s::{K3s, KUBE_SECURE_PORT};

use crate::settings::Settings;
use crate::wait;

/// Where the kwok image's API server writes its audit log.
pub const AUDIT_LOG: &str = "/root/.kwok/clusters/kwok/logs/audit.log";

/// Which parts of the control plane run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterKind {
    /// Everything: Job controller, garbage collector, scheduler, TTL, kwok.
    Full,
    /// No controller manager (`server --disable-controller-manager`), so
    /// only the tests write Job status, as envtest does.
    WithoutJobController,
}

/// Why the cluster could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Docker or the image is missing: skipped locally, fatal in CI.
    #[error("{0}")]
    Unavailable(String),
    #[error("cannot start the cluster container: {0}")]
    Start(String),
    #[error("cannot read the cluster's kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("the cluster did not become ready: {0}")]
    NotReady(String),
}

/// A running cluster and a kubeconfig for it that works from the host.
pub struct Cluster {
    container: Option<Container<K3s>>,
    dir: Option<tempfile::TempDir>,
    /// A self-contained kubeconfig file for kubectl, helm and the operator.
    pub kubeconfig_path: PathBuf,
    kubeconfig: Kubeconfig,
}

impl Cluster {
    /// Starts (or connects to) the cluster. Blocking: call it outside the
    /// async runtime, since testcontainers' sync runner has its own.
    pub fn start(settings: &Settings, kind: ClusterKind) -> Result<Self, ClusterError> {
        let dir = tempfile::tempdir().map_err(|e| ClusterError::Start(e.to_string()))?;
        if let Some(path) = &settings.kubeconfig {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|e| ClusterError::Kubeconfig(e.to_string()))?;
            return Ok(Self { container: None, kubeconfig_path: path.clone(), kubeconfig, dir: Some(dir) });
        }
        docker_available(settings)?;
        let (name, tag) = settings.image_name_and_tag();
        let mut args = vec!["server", "--snapshotter=native"];
        if kind == ClusterKind::WithoutJobController {
            args.push("--disable-controller-manager");
        }
        let image = K3s::default()
            .with_conf_mount(dir.path())
            .with_name(name)
            .with_tag(tag)
            .with_cmd(args)
            .with_env_var("K3S_KUBECONFIG_MODE", "644")
            .with_startup_timeout(Duration::from_secs(180));
        // Real k3s runs containerd and needs the privileges the K3s module's
        // docs give it; the kwok image runs no containers and needs none.
        let image = if settings.is_kwok_image() { image } else { image.with_privileged(true).with_userns_mode("host") };
        let container = image.start().map_err(|e| ClusterError::Start(e.to_string()))?;
        let port = container.get_host_port_ipv4(KUBE_SECURE_PORT).map_err(|e| ClusterError::Start(e.to_string()))?;
        let text = container.image().read_kube_config().map_err(|e| ClusterError::Kubeconfig(e.to_string()))?;
        let mut kubeconfig = Kubeconfig::from_yaml(&text).map_err(|e| ClusterError::Kubeconfig(e.to_string()))?;
        for cluster in &mut kubeconfig.clusters {
            if let Some(cluster) = cluster.cluster.as_mut() {
                cluster.server = Some(format!("https://127.0.0.1:{port}"));
            }
        }
        let kubeconfig_path = dir.path().join("kubeconfig.yaml");
        let yaml = serde_norway::to_string(&kubeconfig).map_err(|e| ClusterError::Kubeconfig(e.to_string()))?;
        std::fs::write(&kubeconfig_path, yaml).map_err(|e| ClusterError::Kubeconfig(e.to_string()))?;
        Ok(Self { container: Some(container), kubeconfig_path, kubeconfig, dir: Some(dir) })
    }

    /// A client for the cluster; create it inside the runtime that uses it.
    pub async fn client(&self) -> Result<Client, ClusterError> {
        let config = Config::from_custom_kubeconfig(self.kubeconfig.clone(), &KubeConfigOptions::default())
            .await
            .map_err(|e| ClusterError::Kubeconfig(e.to_string()))?;
        Client::try_from(config).map_err(|e| ClusterError::Kubeconfig(e.to_string()))
    }

    /// Waits for the API server (and, on a full cluster, for the default
    /// ServiceAccount that pods need), then installs the CRDs and waits
    /// until they are Established.
    pub async fn prepare(&self, client: &Client, kind: ClusterKind) -> Result<(), ClusterError> {
        let namespaces: Api<Namespace> = Api::all(client.clone());
        wait::until(Duration::from_secs(60), "the API server", || async {
            namespaces.list(&ListParams::default().limit(1)).await.map(|_| ()).map_err(|e| e.to_string())
        })
        .await
        .map_err(ClusterError::NotReady)?;
        if kind == ClusterKind::Full {
            let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
            wait::until(Duration::from_secs(60), "the default ServiceAccount", || async {
                accounts.get("default").await.map(|_| ()).map_err(|e| e.to_string())
            })
            .await
            .map_err(ClusterError::NotReady)?;
        }
        install_crds(client).await.map_err(ClusterError::NotReady)
    }

    /// Keeps the container and its kubeconfig after the suite, for
    /// debugging a failure, and says where they are.
    pub fn keep(mut self) {
        if let Some(container) = self.container.take() {
            eprintln!("keeping cluster container {}; remove it with `docker rm -f` when done", container.id());
            std::mem::forget(container);
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.keep();
        }
        eprintln!("kubeconfig of the kept cluster: {}", self.kubeconfig_path.display());
    }

    /// The id of the cluster container; `None` on an existing cluster.
    pub fn container_id(&self) -> Option<&str> {
        self.container.as_ref().map(|c| c.id())
    }

    /// The API server's audit log (JSON lines) of the project's kwok image,
    /// which audits ServiceAccounts' requests only, at level Metadata (see
    /// `e2e/cluster-image/entrypoint.sh`). Read through `docker exec`.
    pub fn audit_log(&self) -> Result<String, ClusterError> {
        let Some(id) = self.container_id() else {
            return Err(ClusterError::Unavailable("an existing cluster has no audit log the harness can read".into()));
        };
        let output = Command::new("docker")
            .args(["exec", id, "cat", AUDIT_LOG])
            .output()
            .map_err(|e| ClusterError::Unavailable(format!("docker exec: {e}")))?;
        if !output.status.success() {
            return Err(ClusterError::Unavailable(format!(
                "cannot read {AUDIT_LOG} in the cluster container (an image built before the audit policy? run `make cluster-image`): {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// A folder for this cluster's scratch files.
    pub fn scratch_dir(&self) -> &Path {
        self.kubeconfig_path.parent().unwrap_or(Path::new("."))
    }
}

/// Applies the project's CRDs (generated from the Rust types, identical to
/// the chart's `crds/`) and waits until the API server serves them.
pub async fn install_crds(client: &Client) -> Result<(), String> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for definition in crd::manifests() {
        let name = definition.name_any();
        crds.patch(&name, &PatchParams::apply("job-template-run-e2e").force(), &Patch::Apply(&definition))
            .await
            .map_err(|e| format!("cannot apply CRD {name}: {e}"))?;
        wait::until(Duration::from_secs(60), &format!("CRD {name} to be Established"), || async {
            let current = crds.get(&name).await.map_err(|e| e.to_string())?;
            let established = current
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established { Ok(()) } else { Err("not Established yet".into()) }
        })
        .await?;
    }
    Ok(())
}

/// Docker and the image must be there before testcontainers is asked.
fn docker_available(settings: &Settings) -> Result<(), ClusterError> {
    let ok = |args: &[&str]| Command::new("docker").args(args).output().map(|o| o.status.success()).unwrap_or(false);
    if !ok(&["info"]) {
        return Err(ClusterError::Unavailable(
            "no Docker engine answers `docker info`: run `bash scripts/ensure-docker.sh` (installs and starts Debian's docker.io), or set JTR_E2E_KUBECONFIG to an existing cluster".into(),
        ));
    }
    if settings.is_kwok_image() && !ok(&["image", "inspect", &settings.image]) {
        return Err(ClusterError::Unavailable(format!(
            "image {} is not built: run `bash scripts/build-cluster-image.sh` (or `make cluster-image`)",
            settings.image
        )));
    }
    Ok(())
}
