//! Tier 2 (e2e): what users install. The Helm chart installs on the real API
//! server and its RBAC grants exactly what the operator needs; the operator
//! image, run with the chart's ServiceAccount token, takes a run from
//! creation to Succeeded. (On the kwok image the chart's own Deployment pod
//! is simulated, so the image is exercised here, through Docker.) The chart
//! packaged by `make chart-package` installs from its repo index, and its
//! `helm test` passes while the operator image runs and fails when the test
//! run fails: on kwok the suite plays the kubelet for the test Pod alone
//! (its container runs through Docker, as that Pod's ServiceAccount).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use e2e::objects::{FAIL_POD_LABEL, run, template};
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
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service, ServiceAccount};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;
use tokio::sync::{oneshot, watch};

fn main() -> ExitCode {
    suite::main(ClusterKind::Full, |settings| {
        let mut fails =
            Test::new("helm_test_fails_when_its_run_fails", |e, ns| helm_test_of_a_failing_run(e, ns).boxed());
        if !settings.is_kwok_image() {
            fails.ignore =
                Some("the test Job fails through kwok's failure stage, which only the kwok image has".into());
        }
        vec![
            Test::new(
                "the_packaged_chart_installs_from_its_repo_index_and_helm_test_passes_with_the_operator_image",
                |e, ns| helm_test_from_the_chart_repo(e, ns).boxed(),
            ),
            fails,
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

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn chart() -> PathBuf {
    root().join("charts/job-template-run")
}

/// The chart's values.yaml, parsed.
fn values() -> Result<serde_json::Value, String> {
    let path = chart().join("values.yaml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_norway::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The image `make image` builds for the e2e suites: the chart's default
/// repository (`image.repository`, which scripts/build-image.sh reads) at
/// the tag `dev`.
fn operator_image() -> Result<String, String> {
    let values = values()?;
    let repository = values["image"]["repository"].as_str().ok_or("values.yaml has no image.repository")?;
    Ok(format!("{repository}:dev"))
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
    let chart = chart();
    install_chart(env, release, namespace, &[chart.to_string_lossy().as_ref()], extra)
}

/// `helm install <release> <chart...>`: `chart` is a folder or a chart name
/// with `--repo <url>`.
fn install_chart(env: &Env, release: &str, namespace: &str, chart: &[&str], extra: &[&str]) -> Result<Release, String> {
    let helm = tools::helm();
    if !helm.exists() {
        return Err(format!("{} is missing: run `bash scripts/install-helm.sh`", helm.display()));
    }
    let output = Command::new(&helm)
        .args(["install", release])
        .args(chart)
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

/// The operator image, run through Docker with the chart's ServiceAccount
/// token, watching `namespace`, until `/readyz` answers 200; removed when
/// the returned container is dropped.
async fn run_operator_image(env: &Env, namespace: &str, account: &str) -> Result<DockerContainer, String> {
    let kubeconfig = service_account_kubeconfig(env, namespace, account).await?;
    let image = operator_image()?;
    let image_present = Command::new("docker").args(["image", "inspect", &image]).output();
    if !image_present.is_ok_and(|o| o.status.success()) {
        return Err(format!("image {image} is not built: run `make image`"));
    }

    let port =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
    let name = format!("jtr-operator-{namespace}");
    let started = Instant::now();
    let output = Command::new("docker")
        .args(["run", "-d", "--name", &name, "--network", "host", "-e", "KUBECONFIG=/kubeconfig"])
        .arg("-v")
        .arg(format!("{}:/kubeconfig:ro", kubeconfig.display()))
        .args([&image, "controller", "--listen", &format!("127.0.0.1:{port}"), "--namespace", namespace])
        .output()
        .map_err(|e| format!("cannot run docker: {e}"))?;
    if !output.status.success() {
        return Err(format!("docker run failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    let container = DockerContainer(name.clone());
    let endpoint = format!("http://127.0.0.1:{port}");
    wait::until(Duration::from_secs(60), "the operator container's /readyz", || async {
        match http_get(&endpoint, "/readyz") {
            Ok((200, _)) => Ok(()),
            other => Err(format!("{other:?}; logs: {}", logs(&name))),
        }
    })
    .await?;
    eprintln!("operator image: /readyz answered 200 {:.2}s after `docker run`", started.elapsed().as_secs_f64());
    Ok(container)
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
    let operator = run_operator_image(&env, &namespace, account).await?;

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
        if status.phase == Some(Phase::Succeeded) {
            Ok(())
        } else {
            Err(format!("{status:?}; logs: {}", logs(&operator.0)))
        }
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

/// A static HTTP server of one folder on 127.0.0.1: the chart repository
/// (index.yaml and the packaged charts) as GitHub Pages serves it. Stops
/// when dropped.
struct ChartRepo {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ChartRepo {
    fn serve(dir: PathBuf) -> Result<Self, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let _ = serve_file(&dir, stream);
                }
            }
        });
        Ok(Self { port, stop, thread: Some(thread) })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for ChartRepo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers one GET with the file of that name in `dir` (no subfolders), or 404.
fn serve_file(dir: &Path, mut stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let name = path.split('?').next().unwrap_or_default().trim_start_matches('/');
    let body = (!name.is_empty() && !name.contains('/') && !name.contains(".."))
        .then(|| std::fs::read(dir.join(name)).ok())
        .flatten();
    match body {
        Some(body) => {
            write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())?;
            stream.write_all(&body)
        }
        None => stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    }
}

/// The name of the chart's `helm test` resources (Pod, ServiceAccount,
/// JobTemplate) for a release whose name does not contain the chart's.
fn test_name(release: &str) -> String {
    format!("{release}-job-template-run-test")
}

/// What `helm test` and the test Pod's container did.
struct HelmTest {
    helm: Output,
    /// The container's exit code and output; `None` where a real kubelet ran it.
    container: Option<(i32, String)>,
}

impl HelmTest {
    fn passed(&self) -> bool {
        self.helm.status.success()
    }

    fn describe(&self) -> String {
        let helm = format!(
            "helm test: {}\n{}{}",
            self.helm.status,
            String::from_utf8_lossy(&self.helm.stdout),
            String::from_utf8_lossy(&self.helm.stderr)
        );
        match &self.container {
            Some((code, output)) => format!("{helm}\ntest container exited {code}:\n{output}"),
            None => helm,
        }
    }
}

/// `helm test <release>`, with the suite as the test Pod's kubelet on the
/// kwok image: `before_run` is called once the Pod runs, before its container.
async fn helm_test<F, Fut>(env: &Env, release: &str, namespace: &str, before_run: F) -> Result<HelmTest, String>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut helm = Command::new(tools::helm())
        .args(["test", release, "--namespace", namespace, "--timeout", "150s"])
        .env("KUBECONFIG", &env.cluster.kubeconfig_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run helm test: {e}"))?;
    let kubelet = async {
        if !env.settings.is_kwok_image() {
            return Ok(None);
        }
        let pod = running_pod(env, namespace, &test_name(release)).await?;
        before_run().await?;
        play_kubelet(env, namespace, &pod).await.map(Some)
    };
    let container = match kubelet.await {
        Ok(container) => container,
        Err(error) => {
            // Not left waiting for a Pod nobody will finish.
            let _ = helm.kill();
            let _ = helm.wait();
            return Err(error);
        }
    };
    let helm = tokio::task::block_in_place(|| helm.wait_with_output()).map_err(|e| format!("helm test: {e}"))?;
    Ok(HelmTest { helm, container })
}

/// The Pod `name` once kwok has scheduled it and marked it Running, as a
/// kubelet that has started its containers would. From then on no stage of
/// the cluster image touches it (e2e/cluster-image/README.md): pod-ready
/// matches Pending pods only, pod-complete only pods a Job owns, and the
/// failure and keep-running stages only pods with their labels, which the
/// chart's test Pod has not. So the phase written below stays.
async fn running_pod(env: &Env, namespace: &str, name: &str) -> Result<Pod, String> {
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), namespace);
    wait::until(Duration::from_secs(60), &format!("the helm test Pod {name} to run"), || async {
        let pod = pods.get(name).await.map_err(|e| e.to_string())?;
        let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
        if phase.as_deref() == Some("Running") { Ok(pod) } else { Err(format!("phase {phase:?}")) }
    })
    .await
}

/// Runs the Pod's one container with Docker as its kubelet would (its
/// image, command, args, env and security context; a TokenRequest token of
/// its ServiceAccount bound to the Pod, the cluster CA and the namespace at
/// /var/run/secrets/kubernetes.io/serviceaccount; KUBERNETES_SERVICE_HOST
/// and _PORT pointing at the API server's port on the loopback), then
/// writes the Pod's phase from the exit code: Succeeded for 0, else Failed.
async fn play_kubelet(env: &Env, namespace: &str, pod: &Pod) -> Result<(i32, String), String> {
    let name = pod.metadata.name.clone().ok_or("the Pod has no name")?;
    let uid = pod.metadata.uid.clone().ok_or("the Pod has no uid")?;
    let spec = pod.spec.as_ref().ok_or("the Pod has no spec")?;
    let [container] = spec.containers.as_slice() else {
        return Err(format!("the test Pod has {} containers, the suite runs one", spec.containers.len()));
    };
    let account = spec.service_account_name.clone().ok_or("the Pod names no ServiceAccount")?;

    let accounts: Api<ServiceAccount> = Api::namespaced(env.client.clone(), namespace);
    let request = serde_json::from_value(json!({ "spec": {
        "audiences": [],
        "expirationSeconds": 600,
        "boundObjectRef": { "apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid }
    }}))
    .map_err(|e: serde_json::Error| e.to_string())?;
    let token = accounts
        .create_token_request(&account, &PostParams::default(), &request)
        .await
        .map_err(|e| format!("TokenRequest for {account}: {e}"))?
        .status
        .map(|s| s.token)
        .ok_or("TokenRequest returned no token")?;
    // What the kubelet mounts: kube-controller-manager publishes the CA in
    // every namespace.
    let config_maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), namespace);
    let ca = wait::until(Duration::from_secs(30), "ConfigMap kube-root-ca.crt", || async {
        let map = config_maps.get("kube-root-ca.crt").await.map_err(|e| e.to_string())?;
        map.data.and_then(|d| d.get("ca.crt").cloned()).ok_or_else(|| "no ca.crt".to_owned())
    })
    .await?;
    let secrets = env.cluster.scratch_dir().join(format!("serviceaccount-{namespace}-{name}"));
    std::fs::create_dir_all(&secrets).map_err(|e| e.to_string())?;
    for (file, content) in [("token", token.as_str()), ("ca.crt", ca.as_str()), ("namespace", namespace)] {
        std::fs::write(secrets.join(file), content).map_err(|e| e.to_string())?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(secrets.join(file), std::fs::Permissions::from_mode(0o644))
            .map_err(|e| e.to_string())?;
    }
    let server = Kubeconfig::read_from(&env.cluster.kubeconfig_path)
        .ok()
        .and_then(|k| k.clusters.into_iter().next())
        .and_then(|c| c.cluster)
        .and_then(|c| c.server)
        .ok_or("the cluster's kubeconfig names no server")?;
    let port = server.rsplit(':').next().unwrap_or_default().trim_end_matches('/').to_owned();

    let image = container.image.clone().ok_or("the test container has no image")?;
    let command = container.command.clone().unwrap_or_default();
    let (entrypoint, command_args) = command.split_first().ok_or("the test container has no command")?;
    let mut docker = Command::new("docker");
    docker.args(["run", "--rm", "--name", &format!("jtr-helm-test-{namespace}"), "--network", "host"]);
    docker.args(["-e", "KUBERNETES_SERVICE_HOST=127.0.0.1", "-e", &format!("KUBERNETES_SERVICE_PORT={port}")]);
    for variable in container.env.iter().flatten() {
        docker.args(["-e", &format!("{}={}", variable.name, variable.value.clone().unwrap_or_default())]);
    }
    let volumes = spec.volumes.clone().unwrap_or_default();
    for mount in container.volume_mounts.iter().flatten() {
        let volume = volumes.iter().find(|v| v.name == mount.name);
        let token_source = |v: &k8s_openapi::api::core::v1::Volume| {
            v.projected
                .as_ref()
                .is_some_and(|p| p.sources.iter().flatten().any(|source| source.service_account_token.is_some()))
        };
        match volume {
            Some(volume) if volume.empty_dir.is_some() => {
                docker.args(["--mount", &format!("type=tmpfs,destination={}", mount.mount_path)]);
            }
            // kube-api-access-*: what the ServiceAccount admission plugin
            // adds (token, ca.crt, namespace), at
            // /var/run/secrets/kubernetes.io/serviceaccount.
            Some(volume) if token_source(volume) => {
                docker.arg("-v").arg(format!("{}:{}:ro", secrets.display(), mount.mount_path));
            }
            _ => return Err(format!("the suite mounts only emptyDir and token volumes, not {}", mount.name)),
        }
    }
    if let Some(security) = &container.security_context {
        if let Some(user) = security.run_as_user {
            docker.args(["--user", &format!("{user}:{}", security.run_as_group.unwrap_or(user))]);
        }
        if security.read_only_root_filesystem == Some(true) {
            docker.arg("--read-only");
        }
        if security.allow_privilege_escalation == Some(false) {
            docker.args(["--security-opt", "no-new-privileges"]);
        }
        if security.capabilities.as_ref().and_then(|c| c.drop.as_ref()).is_some_and(|d| d.iter().any(|c| c == "ALL")) {
            docker.args(["--cap-drop", "ALL"]);
        }
    }
    docker.args(["--entrypoint", entrypoint, &image]).args(command_args).args(container.args.iter().flatten());
    let started = Instant::now();
    let output = tokio::task::block_in_place(|| docker.output()).map_err(|e| format!("cannot run docker: {e}"))?;
    let code = output.status.code().unwrap_or(-1);
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    eprintln!("helm test Pod {name}: its container exited {code} after {:.2}s", started.elapsed().as_secs_f64());

    let (phase, reason) = if code == 0 { ("Succeeded", "Completed") } else { ("Failed", "Error") };
    let status = json!({ "status": {
        "phase": phase,
        "containerStatuses": [{
            "name": container.name, "image": image, "imageID": "", "ready": false, "restartCount": 0, "started": false,
            "state": { "terminated": { "exitCode": code, "reason": reason } }
        }]
    }});
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), namespace);
    pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .map_err(|e| format!("writing the Pod's phase {phase}: {e}"))?;
    Ok((code, text))
}

/// `make chart-package` into a folder served on the loopback (as the
/// project's GitHub Pages would serve dist/), `helm install --repo` from its
/// index, the operator image running, then `helm test`: it must pass.
async fn helm_test_from_the_chart_repo(env: Arc<Env>, namespace: String) -> Result<(), String> {
    let release = "jtr-helm-test";
    let account = "jtr-helm-test-job-template-run";
    let started = Instant::now();
    let dist = env.cluster.scratch_dir().join(format!("chart-repo-{namespace}"));
    std::fs::create_dir_all(&dist).map_err(|e| e.to_string())?;
    let repo = ChartRepo::serve(dist.clone())?;
    let output = Command::new("make")
        .args(["-s", "--no-print-directory", "-C"])
        .arg(root())
        .arg("chart-package")
        .arg(format!("DIST={}", dist.display()))
        .arg(format!("CHART_REPO_URL={}", repo.url()))
        .env("HELM", tools::helm())
        .output()
        .map_err(|e| format!("cannot run make: {e}"))?;
    if !output.status.success() {
        return Err(format!("make chart-package failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    let index = std::fs::read_to_string(dist.join("index.yaml")).map_err(|e| format!("dist/index.yaml: {e}"))?;
    let version = chart_version()?;
    let url = format!("{}/job-template-run-{version}.tgz", repo.url());
    if !index.contains(&url) {
        return Err(format!("index.yaml does not list {url}:\n{index}"));
    }

    let watch = format!("watchNamespaces={{{namespace}}}");
    let mut sets = vec!["--set".to_owned(), watch, "--set".to_owned(), "replicaCount=0".to_owned()];
    if env.settings.is_kwok_image() {
        // registry.k8s.io cannot be pulled here; the cluster image has
        // kubectl and a shell too.
        sets.extend(["--set".to_owned(), format!("tests.image={}", env.settings.image)]);
    }
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    let url = repo.url();
    let _release = tokio::task::block_in_place(|| {
        install_chart(&env, release, &namespace, &["job-template-run", "--repo", &url, "--version", &version], &sets)
    })?;
    eprintln!(
        "helm test case: packaged, served and installed from the repo in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    let operator = run_operator_image(&env, &namespace, account).await?;

    let tested = Instant::now();
    let test = helm_test(&env, release, &namespace, || async { Ok(()) }).await?;
    eprintln!("helm test case: `helm test` returned after {:.2}s", tested.elapsed().as_secs_f64());
    if !test.passed() {
        return Err(format!("{}\noperator logs: {}", test.describe(), logs(&operator.0)));
    }
    if let Some((_, output)) = &test.container
        && !output.contains(": Succeeded")
    {
        return Err(format!("the test Pod passed without seeing its run succeed:\n{}", test.describe()));
    }
    // hook-succeeded: Helm deleted the Pod once the test passed.
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &namespace);
    wait::until(Duration::from_secs(30), "the passed test Pod to be deleted", || async {
        match pods.get_opt(&test_name(release)).await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(_) => Err("still there".into()),
        }
    })
    .await?;
    eprintln!("helm test case: {:.2}s in all", started.elapsed().as_secs_f64());
    Ok(())
}

/// The chart's version in Chart.yaml.
fn chart_version() -> Result<String, String> {
    let path = chart().join("Chart.yaml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let chart: serde_json::Value = serde_norway::from_str(&text).map_err(|e| e.to_string())?;
    chart["version"].as_str().map(str::to_owned).ok_or_else(|| "Chart.yaml has no version".to_owned())
}

/// `helm test` with the operator image running, but the test JobTemplate's
/// pods made to fail (kwok's failure label, written once Helm has created
/// it): the run fails, so the test Pod and `helm test` must fail.
async fn helm_test_of_a_failing_run(env: Arc<Env>, namespace: String) -> Result<(), String> {
    let release = "jtr-failing-test";
    let account = "jtr-failing-test-job-template-run";
    let started = Instant::now();
    let watch = format!("watchNamespaces={{{namespace}}}");
    let image = format!("tests.image={}", env.settings.image);
    let _release = tokio::task::block_in_place(|| {
        install(&env, release, &namespace, &["--set", &watch, "--set", "replicaCount=0", "--set", &image])
    })?;
    let operator = run_operator_image(&env, &namespace, account).await?;
    let templates: Api<JobTemplate> = Api::namespaced(env.client.clone(), &namespace);
    let test = helm_test(&env, release, &namespace, || async {
        let patch = json!({ "spec": { "template": { "metadata": { "labels": { FAIL_POD_LABEL: "true" } } } } });
        templates
            .patch(&test_name(release), &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|e| format!("making the test JobTemplate fail: {e}"))
    })
    .await?;
    eprintln!("failing helm test case: {:.2}s in all", started.elapsed().as_secs_f64());
    if test.passed() {
        return Err(format!("helm test passed although its run failed:\n{}", test.describe()));
    }
    match &test.container {
        Some((1, output)) if output.contains(": Failed") => Ok(()),
        _ => Err(format!(
            "the test Pod should have failed on the run's phase Failed:\n{}\noperator logs: {}",
            test.describe(),
            logs(&operator.0)
        )),
    }
}
