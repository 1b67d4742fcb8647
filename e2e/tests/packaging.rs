//! Tier 2 (e2e): what users install. The Helm chart installs on the real API
//! server and its RBAC grants exactly what the operator needs; the operator
//! image, run with the chart's ServiceAccount token, takes a run from
//! creation to Succeeded. (On the kwok image the chart's own Deployment pod
//! is simulated, so the image is exercised here, through Docker.)

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::objects::{run, template};
use e2e::operator::http_get;
use e2e::suite::{self, Env, Test};
use e2e::{ClusterKind, tools, wait};
use futures::FutureExt;
use job_template_run::crd::{JobRun, JobTemplate, Phase};
use job_template_run::reconciler::{
    CALLBACK_SECRET_PERMISSION, LEADER_ELECTION_PERMISSION, LeaderElection, PERMISSIONS, Permission,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;
use tokio::sync::{oneshot, watch};

/// The image `make image` builds.
const OPERATOR_IMAGE: &str = "job-template-run:dev";

fn main() -> ExitCode {
    suite::main(ClusterKind::Full, |_| {
        vec![
            Test::new("helm_install_succeeds_and_grants_exactly_the_operators_permissions", |e, ns| {
                helm_install(e, ns).boxed()
            }),
            Test::new("the_operator_image_runs_a_whole_lifecycle_with_the_charts_service_account", |e, ns| {
                image_lifecycle(e, ns).boxed()
            }),
            Test::new("the_charts_lease_role_is_enough_to_elect_a_leader_and_no_more", |e, ns| {
                lease_role(e, ns).boxed()
            }),
        ]
    })
}

fn chart() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/job-template-run")
}

/// A Helm release, uninstalled when dropped, so its cluster-scoped
/// ClusterRole and binding do not outlive the test's namespace.
struct Release {
    name: String,
    namespace: String,
    kubeconfig: PathBuf,
}

impl Drop for Release {
    fn drop(&mut self) {
        let _ = Command::new(tools::helm())
            .args(["uninstall", &self.name, "--namespace", &self.namespace, "--wait"])
            .env("KUBECONFIG", &self.kubeconfig)
            .output();
    }
}

/// `helm install <release> chart -n <namespace>`, plus `extra` flags, waiting
/// until its objects exist. Cluster-scoped names carry the release name, so
/// the release is named after the namespace.
fn install(env: &Env, release: &str, namespace: &str, extra: &[&str]) -> Result<Release, String> {
    let helm = tools::helm();
    if !helm.exists() {
        return Err(format!("{} is missing: run `bash scripts/install-helm.sh`", helm.display()));
    }
    let output = Command::new(&helm)
        .args(["install", release])
        .arg(chart())
        .args(["--namespace", namespace, "--timeout", "90s"])
        .args(extra)
        .env("KUBECONFIG", &env.cluster.kubeconfig_path)
        .output()
        .map_err(|e| format!("cannot run helm: {e}"))?;
    if !output.status.success() {
        return Err(format!("helm install failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    Ok(Release { name: release.into(), namespace: namespace.into(), kubeconfig: env.cluster.kubeconfig_path.clone() })
}

async fn allowed(env: &Env, user: &str, namespace: &str, permission: &Permission, verb: &str) -> Result<bool, String> {
    let (resource, subresource) = match permission.resource.split_once('/') {
        Some((resource, sub)) => (resource, Some(sub.to_owned())),
        None => (permission.resource, None),
    };
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.to_owned()),
            groups: Some(vec!["system:serviceaccounts".into(), format!("system:serviceaccounts:{namespace}")]),
            resource_attributes: Some(ResourceAttributes {
                group: Some(permission.api_group.to_owned()),
                resource: Some(resource.to_owned()),
                subresource,
                verb: Some(verb.to_owned()),
                namespace: Some("any-namespace".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SubjectAccessReview> = Api::all(env.client.clone());
    let answer = api.create(&PostParams::default(), &review).await.map_err(|e| format!("SubjectAccessReview: {e}"))?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

async fn helm_install(env: Arc<Env>, namespace: String) -> Result<(), String> {
    let release = "job-template-run";
    let _release = tokio::task::block_in_place(|| install(&env, release, &namespace, &[]))?;
    let client = env.client.clone();
    Api::<ServiceAccount>::namespaced(client.clone(), &namespace).get(release).await.map_err(|e| e.to_string())?;
    Api::<Deployment>::namespaced(client.clone(), &namespace).get(release).await.map_err(|e| e.to_string())?;
    Api::<Service>::namespaced(client.clone(), &namespace).get(release).await.map_err(|e| e.to_string())?;
    let user = format!("system:serviceaccount:{namespace}:{release}");
    for permission in PERMISSIONS {
        for verb in permission.verbs {
            if !allowed(&env, &user, &namespace, permission, verb).await? {
                return Err(format!(
                    "the chart does not grant {verb} on {}.{}",
                    permission.resource, permission.api_group
                ));
            }
        }
    }
    if allowed(&env, &user, &namespace, &CALLBACK_SECRET_PERMISSION, "get").await? {
        return Err("the chart grants get on Secrets by default".into());
    }
    let excess = Permission { api_group: "batch", resource: "jobs", verbs: &["delete"] };
    if allowed(&env, &user, &namespace, &excess, "delete").await? {
        return Err("the chart grants delete on Jobs, which the operator never does".into());
    }
    Ok(())
}

/// Whether `user` may `verb` the Lease `name` (any name: `None`) in `namespace`.
async fn allowed_on_lease(
    env: &Env,
    user: &str,
    namespace: &str,
    verb: &str,
    name: Option<&str>,
) -> Result<bool, String> {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.to_owned()),
            resource_attributes: Some(ResourceAttributes {
                group: Some(LEADER_ELECTION_PERMISSION.api_group.to_owned()),
                resource: Some(LEADER_ELECTION_PERMISSION.resource.to_owned()),
                verb: Some(verb.to_owned()),
                namespace: Some(namespace.to_owned()),
                name: name.map(str::to_owned),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SubjectAccessReview> = Api::all(env.client.clone());
    let answer = api.create(&PostParams::default(), &review).await.map_err(|e| format!("SubjectAccessReview: {e}"))?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

/// With the chart's ServiceAccount token, a `LeaderElection` on the Lease the
/// chart names acquires and releases it; other Leases, other namespaces and
/// other verbs stay denied.
async fn lease_role(env: Arc<Env>, namespace: String) -> Result<(), String> {
    let release = "jtr-lease";
    let account = "jtr-lease-job-template-run";
    let lease = account; // the chart names the Lease like the release's resources
    let watch = format!("watchNamespaces={{{namespace}}}");
    let _release = tokio::task::block_in_place(|| {
        install(&env, release, &namespace, &["--set", &watch, "--set", "replicaCount=0"])
    })?;
    let kubeconfig = service_account_kubeconfig(&env, &namespace, account).await?;
    let config = Kubeconfig::read_from(&kubeconfig).map_err(|e| e.to_string())?;
    let config =
        kube::Config::from_custom_kubeconfig(config, &KubeConfigOptions::default()).await.map_err(|e| e.to_string())?;
    let client = kube::Client::try_from(config).map_err(|e| e.to_string())?;

    let election = LeaderElection::new(client, &namespace, lease, "operator-pod", Duration::from_secs(6));
    let (leading_tx, mut leading) = watch::channel(false);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(election.run(leading_tx, stopped.map(|_| ())));
    let led =
        tokio::time::timeout(Duration::from_secs(20), async { leading.wait_for(|leads| *leads).await.map(|_| ()) })
            .await;
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .map_err(|_| "the election did not stop".to_owned())?
        .map_err(|e| e.to_string())?;
    if !matches!(led, Ok(Ok(_))) {
        return Err("the chart's ServiceAccount could not become leader (see the warnings logged)".into());
    }
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &namespace);
    let holder = leases.get(lease).await.map_err(|e| e.to_string())?.spec.and_then(|s| s.holder_identity);
    if holder.is_some() {
        return Err(format!("the Lease still names {holder:?} after the release"));
    }

    let user = format!("system:serviceaccount:{namespace}:{account}");
    for (verb, name, namespace, expected) in [
        ("get", Some(lease), namespace.as_str(), true),
        ("update", Some(lease), namespace.as_str(), true),
        ("create", None, namespace.as_str(), true),
        ("get", Some("another-lease"), namespace.as_str(), false),
        ("update", Some("another-lease"), namespace.as_str(), false),
        ("delete", Some(lease), namespace.as_str(), false),
        ("patch", Some(lease), namespace.as_str(), false),
        ("list", None, namespace.as_str(), false),
        ("get", Some(lease), "default", false),
        ("create", None, "default", false),
    ] {
        let allowed = allowed_on_lease(&env, &user, namespace, verb, name).await?;
        if allowed != expected {
            return Err(format!("{verb} on Lease {name:?} in {namespace}: allowed is {allowed}, expected {expected}"));
        }
    }
    Ok(())
}

/// Removes the container when the test ends, whatever its outcome.
struct DockerContainer(String);

impl Drop for DockerContainer {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

async fn image_lifecycle(env: Arc<Env>, namespace: String) -> Result<(), String> {
    let release = "jtr-image";
    let account = "jtr-image-job-template-run";
    let watch = format!("watchNamespaces={{{namespace}}}");
    // The operator runs from the image below; the chart's own Deployment
    // (simulated on kwok, real elsewhere) is scaled to zero so it cannot compete.
    let _release = tokio::task::block_in_place(|| {
        install(&env, release, &namespace, &["--set", &watch, "--set", "replicaCount=0"])
    })?;
    let kubeconfig = service_account_kubeconfig(&env, &namespace, account).await?;
    let image_present = Command::new("docker").args(["image", "inspect", OPERATOR_IMAGE]).output();
    if !image_present.is_ok_and(|o| o.status.success()) {
        return Err(format!("image {OPERATOR_IMAGE} is not built: run `make image`"));
    }

    let port =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
    let name = format!("jtr-operator-{namespace}");
    let started = Instant::now();
    let output = Command::new("docker")
        .args(["run", "-d", "--name", &name, "--network", "host", "-e", "KUBECONFIG=/kubeconfig"])
        .arg("-v")
        .arg(format!("{}:/kubeconfig:ro", kubeconfig.display()))
        .args([OPERATOR_IMAGE, "controller", "--listen", &format!("127.0.0.1:{port}"), "--namespace", &namespace])
        .output()
        .map_err(|e| format!("cannot run docker: {e}"))?;
    if !output.status.success() {
        return Err(format!("docker run failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    let _container = DockerContainer(name.clone());
    let endpoint = format!("http://127.0.0.1:{port}");
    wait::until(Duration::from_secs(60), "the operator container's /readyz", || async {
        match http_get(&endpoint, "/readyz") {
            Ok((200, _)) => Ok(()),
            other => Err(format!("{other:?}; logs: {}", logs(&name))),
        }
    })
    .await?;
    eprintln!("operator image: /readyz answered 200 {:.2}s after `docker run`", started.elapsed().as_secs_f64());

    let templates: Api<JobTemplate> = Api::namespaced(env.client.clone(), &namespace);
    templates
        .create(&PostParams::default(), &template(&namespace, "echo", json!({}))?)
        .await
        .map_err(|e| e.to_string())?;
    let runs: Api<JobRun> = Api::namespaced(env.client.clone(), &namespace);
    runs.create(&PostParams::default(), &run(&namespace, "from-image", "echo", &["hi"])?)
        .await
        .map_err(|e| e.to_string())?;
    wait::until(Duration::from_secs(90), "the run to succeed", || async {
        let status = runs.get("from-image").await.map_err(|e| e.to_string())?.status.unwrap_or_default();
        if status.phase == Some(Phase::Succeeded) { Ok(()) } else { Err(format!("{status:?}; logs: {}", logs(&name))) }
    })
    .await
}

fn logs(container: &str) -> String {
    Command::new("docker")
        .args(["logs", "--tail", "20", container])
        .output()
        .map(|o| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
        .unwrap_or_default()
}

/// The cluster's kubeconfig with the ServiceAccount's token as the only
/// credential, written where the container can read it.
async fn service_account_kubeconfig(env: &Env, namespace: &str, account: &str) -> Result<PathBuf, String> {
    let accounts: Api<ServiceAccount> = Api::namespaced(env.client.clone(), namespace);
    let request = serde_json::from_value(json!({ "spec": { "audiences": [], "expirationSeconds": 3600 } }))
        .map_err(|e: serde_json::Error| e.to_string())?;
    let token = accounts
        .create_token_request(account, &PostParams::default(), &request)
        .await
        .map_err(|e| format!("TokenRequest for {account}: {e}"))?
        .status
        .map(|s| s.token)
        .ok_or("TokenRequest returned no token")?;
    let text = std::fs::read_to_string(&env.cluster.kubeconfig_path).map_err(|e| e.to_string())?;
    let mut kubeconfig: serde_json::Value = serde_norway::from_str(&text).map_err(|e| e.to_string())?;
    for user in kubeconfig["users"].as_array_mut().into_iter().flatten() {
        user["user"] = json!({ "token": token });
    }
    let path = env.cluster.scratch_dir().join(format!("kubeconfig-{namespace}.yaml"));
    std::fs::write(&path, serde_norway::to_string(&kubeconfig).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).map_err(|e| e.to_string())?;
    Ok(path)
}
