//! A test binary's main: one shared cluster, one libtest-mimic trial per
//! test, each in its own namespace; the cluster is removed at the end.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use futures::future::BoxFuture;
use kube::Client;
use libtest_mimic::{Arguments, Failed, Trial};
use tokio::runtime::Runtime;

use crate::cluster::{Cluster, ClusterError, ClusterKind};
use crate::namespace::TestNamespace;
use crate::operator::OperatorProcess;
use crate::settings::Settings;

/// What every test gets: the cluster, a client, and the settings. Fields
/// drop in order: the operator stops before the cluster goes.
pub struct Env {
    operator: OnceLock<Result<OperatorProcess, String>>,
    pub cluster: Cluster,
    pub client: Client,
    pub settings: Settings,
    runtime: Runtime,
    any_failed: AtomicBool,
}

impl Env {
    /// The operator binary running against this cluster for all namespaces,
    /// started by the first test that asks for it.
    pub fn operator(&self) -> Result<&OperatorProcess, String> {
        let started = self
            .operator
            .get_or_init(|| tokio::task::block_in_place(|| OperatorProcess::start(&self.cluster.kubeconfig_path, &[])));
        started.as_ref().map_err(Clone::clone)
    }
}

/// A test body: runs in its own namespace and returns why it failed.
pub type TestFn = Box<dyn FnOnce(Arc<Env>, String) -> BoxFuture<'static, Result<(), String>> + Send>;

/// One named test of a suite.
pub struct Test {
    pub name: String,
    pub body: TestFn,
    /// Set to skip the test (with the reason printed); never counted as passed.
    pub ignore: Option<String>,
}

impl Test {
    pub fn new<F>(name: impl Into<String>, body: F) -> Self
    where
        F: FnOnce(Arc<Env>, String) -> BoxFuture<'static, Result<(), String>> + Send + 'static,
    {
        Self { name: name.into(), body: Box::new(body), ignore: None }
    }
}

/// Starts the cluster, runs `tests` (built once the cluster is known), and
/// removes the cluster. Without Docker, the suite is skipped with one line
/// locally and fails in CI.
pub fn main(kind: ClusterKind, tests: impl FnOnce(&Settings) -> Vec<Test>) -> ExitCode {
    let args = Arguments::from_args();
    let settings = Settings::from_env();
    let tests = tests(&settings);
    if args.list {
        return conclude(&args, tests.into_iter().map(|t| Trial::test(t.name, || Ok(()))).collect());
    }
    let env = match start(&settings, kind) {
        Ok(env) => Arc::new(env),
        Err(ClusterError::Unavailable(reason)) if !settings.ci => {
            eprintln!("e2e SKIPPED (nothing counted as passed): {reason}");
            let trials = tests.into_iter().map(|t| Trial::test(t.name, || Ok(())).with_ignored_flag(true)).collect();
            return conclude(&args, trials);
        }
        Err(error) => {
            eprintln!("e2e cannot run: {error}");
            return ExitCode::FAILURE;
        }
    };
    let trials = tests
        .into_iter()
        .map(|test| {
            let env = env.clone();
            let ignored = test.ignore.is_some();
            if let Some(reason) = &test.ignore {
                eprintln!("{}: ignored: {reason}", test.name);
            }
            let name = test.name.clone();
            Trial::test(test.name, move || run_in_namespace(&env, name, test.body)).with_ignored_flag(ignored)
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    if let Ok(env) = Arc::try_unwrap(env)
        && env.settings.keep_failed
        && env.any_failed.load(Ordering::SeqCst)
    {
        env.cluster.keep();
    }
    conclusion.exit_code()
}

fn conclude(args: &Arguments, trials: Vec<Trial>) -> ExitCode {
    libtest_mimic::run(args, trials).exit_code()
}

fn start(settings: &Settings, kind: ClusterKind) -> Result<Env, ClusterError> {
    let started = std::time::Instant::now();
    let cluster = Cluster::start(settings, kind)?;
    let runtime = Runtime::new().map_err(|e| ClusterError::Start(e.to_string()))?;
    let client = runtime.block_on(async {
        let client = cluster.client().await?;
        cluster.prepare(&client, kind).await?;
        Ok::<_, ClusterError>(client)
    })?;
    eprintln!("e2e cluster ready in {:.1}s ({})", started.elapsed().as_secs_f64(), describe(settings, kind));
    Ok(Env {
        operator: OnceLock::new(),
        cluster,
        client,
        settings: settings.clone(),
        runtime,
        any_failed: AtomicBool::new(false),
    })
}

fn describe(settings: &Settings, kind: ClusterKind) -> String {
    let source = match &settings.kubeconfig {
        Some(path) => format!("existing cluster {}", path.display()),
        None => format!("image {}", settings.image),
    };
    format!("{source}, {kind:?}")
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// The longest any one test may take: the slowest drill needs about two minutes.
const TEST_LIMIT: std::time::Duration = std::time::Duration::from_secs(600);

fn run_in_namespace(env: &Arc<Env>, name: String, body: TestFn) -> Result<(), Failed> {
    let result = env.runtime.block_on(async {
        let namespace = TestNamespace::create(&env.client, &name).await?;
        // A panicking test still has its namespace cleaned up.
        let body = AssertUnwindSafe(body(env.clone(), namespace.name.clone())).catch_unwind();
        // A hung test fails on its own instead of holding the suite, and CI, for ever.
        let result = match tokio::time::timeout(TEST_LIMIT, body).await {
            Ok(finished) => finished.unwrap_or_else(|panic| Err(format!("panicked: {}", panic_message(&*panic)))),
            Err(_) => Err(format!("did not finish within {TEST_LIMIT:?}")),
        };
        namespace.finish(result.is_err() && env.settings.keep_failed).await;
        result
    });
    if result.is_err() {
        env.any_failed.store(true, Ordering::SeqCst);
    }
    result.map_err(Failed::from)
}
