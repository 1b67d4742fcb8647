//! Tier 1 (no cluster): the Helm chart in `charts/job-template-run` lints,
//! rejects values of the wrong type, grants exactly the operator's RBAC
//! permissions, runs a hardened Deployment and ships the generated CRDs.
//!
//! Needs helm: `$HELM`, or `${JTR_CACHE_DIR:-$HOME/.cache/job-template-run}/bin/helm`
//! as installed by `bash scripts/install-helm.sh`. Without it the tests fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use job_template_run::crd::{crd_file_name, manifests};
use job_template_run::reconciler::{CALLBACK_SECRET_PERMISSION, LEADER_ELECTION_PERMISSION, PERMISSIONS, Permission};
use rstest::rstest;
use serde::Deserialize;
use serde_json::Value;

const RELEASE: &str = "jtr";
const RELEASE_NAMESPACE: &str = "ops";

/// Values that turn on everything that is off by default.
const NON_DEFAULT_VALUES: &[&str] = &[
    "watchNamespaces={a,b}",
    "networkPolicy.enabled=true",
    "serviceMonitor.enabled=true",
    "callbacks.secretTokens=true",
    "logFormat=text",
    "reconcile.templateGraceSeconds=30",
    "reconcile.resyncSeconds=60",
    "reconcile.concurrency=8",
];

fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/job-template-run")
}

fn helm() -> PathBuf {
    let path = match std::env::var_os("HELM") {
        Some(helm) => PathBuf::from(helm),
        None => {
            let cache = match std::env::var_os("JTR_CACHE_DIR") {
                Some(dir) => PathBuf::from(dir),
                None => PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/job-template-run"),
            };
            cache.join("bin/helm")
        }
    };
    assert!(
        path.is_file(),
        "helm not found: run `bash scripts/install-helm.sh` (looked for {}; set HELM to override)",
        path.display()
    );
    path
}

fn run_helm(args: &[&str], sets: &[&str]) -> Output {
    let mut command = Command::new(helm());
    command.args(args);
    for set in sets {
        command.args(["--set", set]);
    }
    command.output().unwrap_or_else(|e| panic!("cannot run helm {args:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn lint(sets: &[&str]) {
    let chart = chart_dir();
    let output = run_helm(&["lint", "--strict", chart.to_str().unwrap()], sets);
    assert!(
        output.status.success(),
        "helm lint --strict {sets:?} failed:\n{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

/// `helm template`, as parsed documents: what `helm install` creates, without
/// the `helm test` hooks.
fn template(sets: &[&str]) -> Vec<Value> {
    render(&["--skip-tests"], sets)
}

fn render(flags: &[&str], sets: &[&str]) -> Vec<Value> {
    let chart = chart_dir();
    let mut args = vec!["template", RELEASE, chart.to_str().unwrap(), "--namespace", RELEASE_NAMESPACE];
    args.extend_from_slice(flags);
    let output = run_helm(&args, sets);
    assert!(output.status.success(), "helm template {sets:?} failed:\n{}", text(&output.stderr));
    serde_norway::Deserializer::from_str(&text(&output.stdout))
        .map(|document| Value::deserialize(document).expect("helm renders valid YAML"))
        .filter(|document| !document.is_null())
        .collect()
}

/// The `helm test` hooks that `helm template` renders, and nothing else.
fn test_hooks(sets: &[&str]) -> Vec<Value> {
    render(&[], sets).into_iter().filter(|d| d["metadata"]["annotations"]["helm.sh/hook"] == "test").collect()
}

fn of_kind<'a>(documents: &'a [Value], kind: &str) -> Vec<&'a Value> {
    documents.iter().filter(|d| d["kind"] == kind).collect()
}

/// Name suffix of the Role and RoleBinding for the leader election Lease.
const LEASE_ROLE_SUFFIX: &str = "-leader-election";

fn is_lease_rbac(document: &Value) -> bool {
    document["metadata"]["name"].as_str().is_some_and(|name| name.ends_with(LEASE_ROLE_SUFFIX))
}

/// Roles or RoleBindings of the watched namespaces, without those of the Lease.
fn operator_rbac<'a>(documents: &'a [Value], kind: &str) -> Vec<&'a Value> {
    of_kind(documents, kind).into_iter().filter(|d| !is_lease_rbac(d)).collect()
}

/// The leader election Role or RoleBinding, if rendered.
fn lease_rbac<'a>(documents: &'a [Value], kind: &str) -> Option<&'a Value> {
    let found: Vec<&Value> = of_kind(documents, kind).into_iter().filter(|d| is_lease_rbac(d)).collect();
    assert!(found.len() <= 1, "more than one leader election {kind}");
    found.first().copied()
}

fn the_one<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    let found = of_kind(documents, kind);
    assert_eq!(found.len(), 1, "expected exactly one {kind}, found {}", found.len());
    found[0]
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("expected a list of strings, found {value}"))
        .iter()
        .map(|s| s.as_str().expect("a string").to_owned())
        .collect()
}

type Grants = BTreeMap<(String, String), BTreeSet<String>>;

/// (API group, resource) -> verbs, merged over rules.
fn grants_of(permissions: &[Permission]) -> Grants {
    let mut grants = Grants::new();
    for p in permissions {
        grants
            .entry((p.api_group.to_owned(), p.resource.to_owned()))
            .or_default()
            .extend(p.verbs.iter().map(|v| v.to_string()));
    }
    grants
}

/// The same for the rules of a rendered ClusterRole or Role.
fn grants_of_role(role: &Value) -> Grants {
    let mut grants = Grants::new();
    for rule in role["rules"].as_array().expect("the role has rules") {
        let rule = rule.as_object().expect("a rule is a map");
        for key in rule.keys() {
            assert!(["apiGroups", "resources", "verbs"].contains(&key.as_str()), "unexpected `{key}` in rule {rule:?}");
        }
        let verbs = strings(&rule["verbs"]);
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                grants.entry((group.clone(), resource)).or_default().extend(verbs.iter().cloned());
            }
        }
    }
    grants
}

fn expected_grants(secret_tokens: bool) -> Grants {
    let mut permissions = PERMISSIONS.to_vec();
    if secret_tokens {
        permissions.push(CALLBACK_SECRET_PERMISSION);
    }
    grants_of(&permissions)
}

fn service_account_of(documents: &[Value]) -> String {
    let deployment = the_one(documents, "Deployment");
    deployment["spec"]["template"]["spec"]["serviceAccountName"]
        .as_str()
        .expect("the Deployment names its ServiceAccount")
        .to_owned()
}

fn assert_binds(binding: &Value, role_kind: &str, role_name: &Value, service_account: &str) {
    assert_eq!(binding["roleRef"]["kind"], role_kind, "{binding}");
    assert_eq!(&binding["roleRef"]["name"], role_name, "{binding}");
    let subjects = binding["subjects"].as_array().expect("subjects");
    assert_eq!(subjects.len(), 1, "{binding}");
    assert_eq!(subjects[0]["kind"], "ServiceAccount");
    assert_eq!(subjects[0]["name"], service_account);
    assert_eq!(subjects[0]["namespace"], RELEASE_NAMESPACE);
}

fn chart_yaml() -> Value {
    let path = chart_dir().join("Chart.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).expect("Chart.yaml parses")
}

#[test]
fn helm_lint_passes_with_default_values() {
    lint(&[]);
}

#[test]
fn helm_lint_passes_with_non_default_values() {
    lint(NON_DEFAULT_VALUES);
}

#[rstest]
#[case::replica_count_as_a_word("replicaCount=two", "/replicaCount")]
#[case::an_unknown_log_format("logFormat=xml", "/logFormat")]
#[case::watch_namespaces_as_a_string("watchNamespaces=ns", "/watchNamespaces")]
#[case::secret_tokens_as_a_string("callbacks.secretTokens=yes", "/callbacks/secretTokens")]
#[case::a_port_out_of_range("service.port=70000", "/service/port")]
#[case::a_misspelt_key("replicas=1", "replicas")]
#[case::leader_election_as_a_string("leaderElection.enabled=yes", "/leaderElection/enabled")]
#[case::a_lease_too_short_to_renew("leaderElection.leaseDuration=2", "/leaderElection/leaseDuration")]
#[case::tests_enabled_as_a_string("tests.enabled=yes", "/tests/enabled")]
#[case::a_test_timeout_of_zero("tests.timeoutSeconds=0", "/tests/timeoutSeconds")]
fn helm_template_rejects_values_of_the_wrong_type(#[case] set: &str, #[case] path: &str) {
    assert_rejected_by_the_schema(&[set], path);
}

fn assert_rejected_by_the_schema(sets: &[&str], path: &str) {
    let set = sets.join(" ");
    let chart = chart_dir();
    let output = run_helm(&["template", RELEASE, chart.to_str().unwrap()], sets);
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "helm template --set {set} succeeded");
    assert!(
        stderr.contains("schema") && stderr.contains(path),
        "helm template --set {set} failed, but not on the schema at {path}:\n{stderr}"
    );
}

#[test]
fn the_cluster_role_grants_exactly_the_operators_permissions() {
    let documents = template(&[]);
    let role = the_one(&documents, "ClusterRole");
    assert_eq!(grants_of_role(role), expected_grants(false));
    assert!(operator_rbac(&documents, "Role").is_empty());
    assert!(operator_rbac(&documents, "RoleBinding").is_empty());
    let binding = the_one(&documents, "ClusterRoleBinding");
    assert_binds(binding, "ClusterRole", &role["metadata"]["name"], &service_account_of(&documents));
}

#[test]
fn watched_namespaces_get_roles_with_the_same_rules_and_no_cluster_role() {
    let documents = template(&["watchNamespaces={a,b}"]);
    assert!(of_kind(&documents, "ClusterRole").is_empty());
    assert!(of_kind(&documents, "ClusterRoleBinding").is_empty());
    let service_account = service_account_of(&documents);
    let namespaces_of = |kind: &str| -> BTreeSet<String> {
        operator_rbac(&documents, kind)
            .iter()
            .map(|d| d["metadata"]["namespace"].as_str().expect("namespaced").to_owned())
            .collect()
    };
    let expected: BTreeSet<String> = ["a".to_owned(), "b".to_owned()].into();
    assert_eq!(namespaces_of("Role"), expected);
    assert_eq!(namespaces_of("RoleBinding"), expected);
    assert_eq!(operator_rbac(&documents, "Role").len(), 2);
    assert_eq!(operator_rbac(&documents, "RoleBinding").len(), 2);
    for role in operator_rbac(&documents, "Role") {
        assert_eq!(grants_of_role(role), expected_grants(false), "{role}");
        let binding = operator_rbac(&documents, "RoleBinding")
            .into_iter()
            .find(|b| b["metadata"]["namespace"] == role["metadata"]["namespace"])
            .expect("a RoleBinding next to each Role");
        assert_binds(binding, "Role", &role["metadata"]["name"], &service_account);
    }
}

#[rstest]
#[case::all_namespaces(&[], "ClusterRole")]
#[case::watched_namespaces(&["watchNamespaces={a,b}"], "Role")]
fn secrets_are_granted_only_with_callback_secret_tokens(#[case] scope: &[&str], #[case] role_kind: &str) {
    let secrets = (CALLBACK_SECRET_PERMISSION.api_group.to_owned(), CALLBACK_SECRET_PERMISSION.resource.to_owned());
    for secret_tokens in [false, true] {
        let mut sets = scope.to_vec();
        let flag = format!("callbacks.secretTokens={secret_tokens}");
        sets.push(&flag);
        let documents = template(&sets);
        let roles = operator_rbac(&documents, role_kind);
        assert!(!roles.is_empty());
        for role in roles {
            let grants = grants_of_role(role);
            assert_eq!(grants, expected_grants(secret_tokens), "{sets:?}");
            assert_eq!(grants.contains_key(&secrets), secret_tokens, "{sets:?}");
        }
    }
}

/// (API group, resource) -> verbs of the lease Role, and the names each
/// verb is restricted to (empty: any name).
fn lease_grants(role: &Value) -> (Grants, BTreeMap<String, Vec<String>>) {
    let mut grants = Grants::new();
    let mut names = BTreeMap::new();
    for rule in role["rules"].as_array().expect("the role has rules") {
        let resource_names = match &rule["resourceNames"] {
            Value::Null => Vec::new(),
            listed => strings(listed),
        };
        for verb in strings(&rule["verbs"]) {
            assert!(names.insert(verb.clone(), resource_names.clone()).is_none(), "{verb} granted twice: {role}");
            for group in strings(&rule["apiGroups"]) {
                for resource in strings(&rule["resources"]) {
                    grants.entry((group.clone(), resource)).or_default().insert(verb.clone());
                }
            }
        }
    }
    (grants, names)
}

/// The `--leader-election-lease-name` the Deployment passes.
fn lease_name_of(documents: &[Value]) -> String {
    let container = &the_one(documents, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    strings(&container["args"])
        .iter()
        .find_map(|arg| arg.strip_prefix("--leader-election-lease-name=").map(str::to_owned))
        .expect("the Deployment names its Lease")
}

#[rstest]
#[case::all_namespaces(&[])]
#[case::watched_namespaces(&["watchNamespaces={a,b}"])]
fn the_lease_role_grants_exactly_the_leader_election_permission_on_the_operators_lease(#[case] sets: &[&str]) {
    let documents = template(sets);
    let role = lease_rbac(&documents, "Role").expect("a leader election Role by default");
    assert_eq!(role["metadata"]["namespace"], RELEASE_NAMESPACE);
    let (grants, names) = lease_grants(role);
    assert_eq!(grants, grants_of(&[LEADER_ELECTION_PERMISSION]));
    let lease = lease_name_of(&documents);
    for verb in LEADER_ELECTION_PERMISSION.verbs {
        // RBAC cannot restrict create by name; every other verb is restricted.
        let expected = if *verb == "create" { Vec::new() } else { vec![lease.clone()] };
        assert_eq!(names[*verb], expected, "{verb}");
    }
    let binding = lease_rbac(&documents, "RoleBinding").expect("a leader election RoleBinding");
    assert_eq!(binding["metadata"]["namespace"], RELEASE_NAMESPACE);
    assert_binds(binding, "Role", &role["metadata"]["name"], &service_account_of(&documents));
}

#[test]
fn with_leader_election_the_deployment_rolls_and_may_have_two_replicas() {
    let documents = template(&["replicaCount=2"]);
    let deployment = the_one(&documents, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let strategy = &deployment["spec"]["strategy"];
    assert_eq!(strategy["type"], "RollingUpdate");
    assert_eq!(strategy["rollingUpdate"]["maxUnavailable"], 0);
}

#[test]
fn without_leader_election_there_is_no_lease_role_and_the_deployment_recreates_one_replica() {
    let documents = template(&["leaderElection.enabled=false"]);
    assert!(lease_rbac(&documents, "Role").is_none());
    assert!(lease_rbac(&documents, "RoleBinding").is_none());
    let deployment = the_one(&documents, "Deployment");
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    let args = strings(&deployment["spec"]["template"]["spec"]["containers"][0]["args"]);
    assert!(!args.iter().any(|arg| arg.starts_with("--leader-election")), "{args:?}");
    assert_rejected_by_the_schema(&["leaderElection.enabled=false", "replicaCount=2"], "/replicaCount");
}

#[test]
fn the_chart_app_version_is_the_crate_version() {
    let chart = chart_yaml();
    assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"));
    assert_eq!(chart["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn the_deployment_is_hardened() {
    let documents = template(&[]);
    let pod = &the_one(&documents, "Deployment")["spec"]["template"]["spec"];
    let pod_security = &pod["securityContext"];
    assert_eq!(pod_security["runAsNonRoot"], true);
    assert_eq!(pod_security["runAsUser"], 65532);
    assert_eq!(pod_security["runAsGroup"], 65532);
    assert_eq!(pod_security["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(pod["automountServiceAccountToken"], true);
    assert_eq!(pod["terminationGracePeriodSeconds"], 30);

    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["privileged"], false);
    assert_eq!(strings(&security["capabilities"]["drop"]), ["ALL"]);

    let resources = &container["resources"];
    for (kind, resource) in [("requests", "cpu"), ("requests", "memory"), ("limits", "cpu"), ("limits", "memory")] {
        assert!(resources[kind][resource].is_string(), "resources.{kind}.{resource} is not set: {resources}");
    }

    // The probes hit the port the operator listens on.
    let args = strings(&container["args"]);
    assert_eq!(args[0], "controller");
    assert!(args.contains(&"--listen=0.0.0.0:8080".to_owned()), "{args:?}");
    let port_number = |port: &Value| -> u64 {
        match port {
            Value::Number(n) => n.as_u64().expect("a port number"),
            Value::String(name) => container["ports"]
                .as_array()
                .expect("named ports")
                .iter()
                .find(|p| p["name"] == *name)
                .unwrap_or_else(|| panic!("no container port named {name}"))["containerPort"]
                .as_u64()
                .expect("a port number"),
            other => panic!("unexpected probe port {other}"),
        }
    };
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe}");
        assert_eq!(port_number(&get["port"]), 8080, "{probe}");
    }
}

#[test]
fn the_deployment_passes_the_values_as_controller_flags() {
    let documents = template(NON_DEFAULT_VALUES);
    let container = &the_one(&documents, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        strings(&container["args"]),
        [
            "controller",
            "--listen=0.0.0.0:8080",
            "--log-format=text",
            "--log-level=info",
            "--template-grace-seconds=30",
            "--resync-seconds=60",
            "--concurrency=8",
            "--callback-concurrency=16",
            "--callback-max-attempts=8",
            "--callback-initial-delay-ms=2000",
            "--callback-max-delay-seconds=300",
            "--callback-timeout-seconds=10",
            "--namespace=a",
            "--namespace=b",
            "--leader-election",
            "--leader-election-namespace=$(POD_NAMESPACE)",
            "--leader-election-lease-name=jtr-job-template-run",
            "--lease-duration-seconds=15",
        ]
    );
    for (index, (name, field)) in
        [("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace")].iter().enumerate()
    {
        let env = &container["env"][index];
        assert_eq!(env["name"], *name);
        assert_eq!(env["valueFrom"]["fieldRef"]["fieldPath"], *field);
    }
    the_one(&documents, "NetworkPolicy");
    the_one(&documents, "ServiceMonitor");
}

#[test]
fn the_crds_folder_holds_exactly_the_generated_crds() {
    let dir = chart_dir().join("crds");
    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").file_name().to_string_lossy().into_owned())
        .collect();
    let expected: BTreeSet<String> = manifests().iter().map(crd_file_name).collect();
    assert_eq!(present, expected, "run `make crd`");
}

#[test]
fn the_crds_are_not_templated() {
    let documents = template(NON_DEFAULT_VALUES);
    assert!(of_kind(&documents, "CustomResourceDefinition").is_empty());
}

/// Dotted keys of values.yaml: a map's own key when README documents it as a
/// whole (e.g. `resources`), its leaves otherwise.
fn value_keys(prefix: &str, value: &Value, documented: &BTreeSet<String>, out: &mut Vec<String>) {
    match value {
        Value::Object(map) if !map.is_empty() && !documented.contains(prefix) => {
            for (key, child) in map {
                let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                value_keys(&path, child, documented, out);
            }
        }
        _ => out.push(prefix.to_owned()),
    }
}

#[test]
fn every_value_is_documented_in_the_chart_readme() {
    let readme = std::fs::read_to_string(chart_dir().join("README.md")).expect("README.md");
    let (_, table) = readme.split_once("## Values").expect("README.md has a Values section");
    let documented: BTreeSet<String> = table
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(key, _)| key.to_owned())
        .collect();
    let values: Value =
        serde_norway::from_str(&std::fs::read_to_string(chart_dir().join("values.yaml")).expect("values.yaml"))
            .expect("values.yaml parses");
    let mut keys = Vec::new();
    value_keys("", &values, &documented, &mut keys);
    let keys: BTreeSet<String> = keys.into_iter().collect();
    let undocumented: Vec<&String> = keys.difference(&documented).collect();
    assert!(undocumented.is_empty(), "values missing from README.md: {undocumented:?}");
    let stale: Vec<&String> = documented.difference(&keys).collect();
    assert!(stale.is_empty(), "README.md documents values that do not exist: {stale:?}");
}

/// The NetworkPolicy's egress rules (DNS and the API server come first).
fn egress(sets: &[&str]) -> Vec<Value> {
    let mut all = vec!["networkPolicy.enabled=true"];
    all.extend_from_slice(sets);
    let documents = template(&all);
    the_one(&documents, "NetworkPolicy")["spec"]["egress"].as_array().cloned().unwrap_or_default()
}

#[test]
fn by_default_the_network_policy_opens_no_callback_egress() {
    let rules = egress(&[]);
    assert_eq!(rules.len(), 2, "only DNS and the API server: {rules:?}");
}

#[test]
fn the_network_policys_callback_egress_follows_the_allow_list() {
    let rules = egress(&["callbacks.allow={10.96.0.0/12,hooks.tools.svc,127.0.0.1,fd00::1}"]);
    assert_eq!(rules.len(), 3, "{rules:?}");
    let callback = &rules[2];
    assert_eq!(callback["ports"], serde_json::json!([{ "port": 443, "protocol": "TCP" }]));
    let cidrs: Vec<&str> =
        callback["to"].as_array().expect("peers").iter().filter_map(|p| p["ipBlock"]["cidr"].as_str()).collect();
    assert_eq!(cidrs, ["10.96.0.0/12", "127.0.0.1/32", "fd00::1/128"], "host names are not CIDRs");
}

#[test]
fn callback_peers_open_callback_egress_on_the_callback_ports_only() {
    let rules = egress(&["networkPolicy.callbackTo[0].ipBlock.cidr=0.0.0.0/0", "networkPolicy.callbackPorts={8443}"]);
    assert_eq!(rules.len(), 3, "{rules:?}");
    assert_eq!(rules[2]["ports"], serde_json::json!([{ "port": 8443, "protocol": "TCP" }]));
    assert_eq!(rules[2]["to"], serde_json::json!([{ "ipBlock": { "cidr": "0.0.0.0/0" } }]));
}

#[test]
fn callback_values_become_flags_and_the_signing_secret_is_mounted() {
    let sets = [
        "callbacks.allow={hooks.tools.svc,10.0.0.0/8}",
        "callbacks.maxAttempts=3",
        "callbacks.timeoutSeconds=5",
        "callbacks.concurrency=4",
        "callbacks.signingSecret.name=callback-signing",
        "callbacks.signingSecret.key=hmac",
    ];
    let documents = template(&sets);
    let pod = &the_one(&documents, "Deployment")["spec"]["template"]["spec"];
    let args = strings(&pod["containers"][0]["args"]);
    for flag in [
        "--callback-concurrency=4",
        "--callback-max-attempts=3",
        "--callback-timeout-seconds=5",
        "--callback-allow=hooks.tools.svc,10.0.0.0/8",
        "--callback-signing-key-file=/etc/job-template-run/callback-signing/key",
    ] {
        assert!(args.iter().any(|a| a == flag), "{flag} missing from {args:?}");
    }
    assert_eq!(pod["volumes"][0]["secret"]["secretName"], "callback-signing");
    assert_eq!(pod["volumes"][0]["secret"]["items"][0], serde_json::json!({ "key": "hmac", "path": "key" }));
    assert_eq!(pod["containers"][0]["volumeMounts"][0]["mountPath"], "/etc/job-template-run/callback-signing");
    assert_eq!(pod["containers"][0]["volumeMounts"][0]["readOnly"], true);
}

#[test]
fn a_callback_timeout_longer_than_the_grace_period_allows_is_rejected() {
    assert_rejected_by_the_schema(&["callbacks.timeoutSeconds=60"], "/callbacks/timeoutSeconds");
}

#[test]
fn the_pods_grace_period_covers_a_callback_attempt_in_flight_and_its_record() {
    let documents = template(&["callbacks.timeoutSeconds=25"]);
    let pod = &the_one(&documents, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["terminationGracePeriodSeconds"], 40, "the timeout plus 15 s to drain and record");
}

/// The name of the `helm test` hook's resources for RELEASE.
const TEST_NAME: &str = "jtr-job-template-run-test";

fn values_yaml() -> Value {
    let path = chart_dir().join("values.yaml");
    serde_norway::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .expect("values.yaml parses")
}

fn assert_hardened_container(security: &Value) {
    assert_eq!(security["readOnlyRootFilesystem"], true, "{security}");
    assert_eq!(security["allowPrivilegeEscalation"], false, "{security}");
    assert_eq!(security["privileged"], false, "{security}");
    assert_eq!(security["runAsNonRoot"], true, "{security}");
    assert_eq!(security["runAsUser"], 65532, "{security}");
    assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault", "{security}");
    assert_eq!(strings(&security["capabilities"]["drop"]), ["ALL"], "{security}");
}

fn env_value(container: &Value, name: &str) -> Value {
    container["env"]
        .as_array()
        .expect("env")
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no env {name} in {container}"))["value"]
        .clone()
}

#[test]
fn helm_test_runs_a_pod_that_makes_a_run_of_a_tiny_template_with_its_own_least_privilege_account() {
    let hooks = test_hooks(&[]);
    let kinds: Vec<&str> = hooks.iter().map(|d| d["kind"].as_str().expect("a kind")).collect();
    let expected = BTreeSet::from(["ServiceAccount", "Role", "RoleBinding", "JobTemplate", "Pod"]);
    assert_eq!(kinds.len(), expected.len(), "{kinds:?}");
    assert_eq!(kinds.iter().copied().collect::<BTreeSet<_>>(), expected);
    for hook in &hooks {
        let annotations = &hook["metadata"]["annotations"];
        assert_eq!(annotations["helm.sh/hook-delete-policy"], "before-hook-creation,hook-succeeded", "{hook}");
        assert_eq!(hook["metadata"]["name"], TEST_NAME, "{hook}");
        assert_eq!(hook["metadata"]["namespace"], RELEASE_NAMESPACE, "{hook}");
    }
    let weight = |kind: &str| -> i64 {
        let weight = &the_one(&hooks, kind)["metadata"]["annotations"]["helm.sh/hook-weight"];
        weight.as_str().and_then(|w| w.parse().ok()).unwrap_or_else(|| panic!("{kind}: hook weight {weight}"))
    };
    assert!(weight("ServiceAccount") < weight("JobTemplate"), "the account exists before the template");
    assert!(weight("RoleBinding") < weight("Pod") && weight("JobTemplate") < weight("Pod"), "the Pod comes last");

    let role = the_one(&hooks, "Role");
    assert_eq!(
        role["rules"],
        serde_json::json!([
            { "apiGroups": ["cellbytes.io"], "resources": ["jobruns"], "verbs": ["create", "get", "list", "watch"] },
            { "apiGroups": ["cellbytes.io"], "resources": ["jobtemplates"], "resourceNames": [TEST_NAME], "verbs": ["get"] },
        ]),
        "the test account may make and follow runs, and read its one template, nothing else"
    );
    assert_binds(the_one(&hooks, "RoleBinding"), "Role", &role["metadata"]["name"], TEST_NAME);

    let image = values_yaml()["tests"]["image"].clone();
    let pod = &the_one(&hooks, "Pod")["spec"];
    assert_eq!(pod["serviceAccountName"], TEST_NAME);
    assert_eq!(pod["automountServiceAccountToken"], true);
    assert_eq!(pod["restartPolicy"], "Never");
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    assert_eq!(container["image"], image);
    assert_hardened_container(&container["securityContext"]);
    assert!(container["resources"]["limits"]["memory"].is_string(), "{container}");
    assert_eq!(env_value(container, "NAMESPACE"), RELEASE_NAMESPACE);
    assert_eq!(env_value(container, "TEMPLATE"), TEST_NAME);
    assert_eq!(env_value(container, "TIMEOUT_SECONDS"), "120");
    let script = strings(&container["args"]).concat();
    for step in ["kubectl create", "wait --for=condition=Finished", "jsonpath='{.status.phase}'", "!= Succeeded"] {
        assert!(script.contains(step), "the test script lacks `{step}`:\n{script}");
    }

    let job = &the_one(&hooks, "JobTemplate")["spec"];
    assert_eq!(job["backoffLimit"], 0);
    assert_eq!(job["activeDeadlineSeconds"], 120);
    let job_pod = &job["template"]["spec"];
    assert_eq!(job_pod["automountServiceAccountToken"], false, "the test Job needs no API access");
    let job_container = &job_pod["containers"][0];
    assert_eq!(job_container["image"], image, "the test Job needs no image besides tests.image");
    assert_eq!(strings(&job_container["command"]), ["kubectl", "version", "--client"]);
    assert_hardened_container(&job_container["securityContext"]);
}

#[rstest]
#[case::all_namespaces_watched(&[], RELEASE_NAMESPACE)]
#[case::the_release_namespace_watched(&["watchNamespaces={a,ops}"], RELEASE_NAMESPACE)]
#[case::other_namespaces_watched(&["watchNamespaces={a,b}"], "a")]
fn the_helm_test_run_goes_where_the_operator_watches(#[case] sets: &[&str], #[case] run_namespace: &str) {
    let hooks = test_hooks(sets);
    for kind in ["Role", "RoleBinding", "JobTemplate"] {
        assert_eq!(the_one(&hooks, kind)["metadata"]["namespace"], run_namespace, "{kind}");
    }
    for kind in ["ServiceAccount", "Pod"] {
        assert_eq!(the_one(&hooks, kind)["metadata"]["namespace"], RELEASE_NAMESPACE, "{kind}");
    }
    assert_eq!(env_value(&the_one(&hooks, "Pod")["spec"]["containers"][0], "NAMESPACE"), run_namespace);
}

#[test]
fn tests_enabled_false_renders_no_helm_test_hook() {
    assert!(test_hooks(&["tests.enabled=false"]).is_empty());
    assert!(template(&[]).iter().all(|d| d["metadata"]["annotations"]["helm.sh/hook"].is_null()));
}

#[test]
fn the_helm_test_image_is_the_kubectl_of_the_kubernetes_version_the_e2e_cluster_runs() {
    let script = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-cluster-image.sh"))
        .expect("scripts/build-cluster-image.sh");
    let version = script
        .lines()
        .find_map(|line| line.strip_prefix("K8S_VERSION="))
        .expect("scripts/build-cluster-image.sh sets K8S_VERSION");
    assert_eq!(values_yaml()["tests"]["image"], format!("registry.k8s.io/kubectl:v{version}"));
}

/// `make push` run with DRY_RUN=1: what it prints and its exit status.
fn make_push(registry: Option<&str>) -> Output {
    let mut command = Command::new("make");
    command.args(["-s", "--no-print-directory", "-C", env!("CARGO_MANIFEST_DIR"), "push", "DRY_RUN=1"]);
    if let Some(registry) = registry {
        command.arg(format!("REGISTRY={registry}"));
    }
    command.output().expect("cannot run make")
}

#[test]
fn make_push_tags_the_image_helm_installs_by_default_as_registry_job_template_run_version() {
    let repository = values_yaml()["image"]["repository"].as_str().expect("image.repository").to_owned();
    let version = env!("CARGO_PKG_VERSION");
    let output = make_push(Some("registry.example.com/team/"));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let target = format!("registry.example.com/team/job-template-run:{version}");
    assert_eq!(
        text(&output.stdout).lines().collect::<Vec<_>>(),
        [format!("docker tag {repository}:{version} {target}"), format!("docker push {target}")]
    );
}

#[test]
fn make_push_without_a_registry_refuses_in_one_line() {
    let output = make_push(None);
    assert!(!output.status.success());
    assert!(text(&output.stdout).is_empty(), "nothing tagged or pushed: {}", text(&output.stdout));
    let stderr = text(&output.stderr);
    let first = stderr.lines().next().unwrap_or_default();
    assert!(first.starts_with("make push: REGISTRY is empty"), "{stderr}");
}
