//! Tier 2 (e2e): the API server itself rejects bad input, through the CRD
//! schemas and CEL rules generated from the Rust types. No operator runs.

use std::process::ExitCode;
use std::sync::Arc;

use e2e::objects::{run, template};
use e2e::suite::{self, Env, Test};
use e2e::{ClusterKind, tools};
use futures::FutureExt;
use job_template_run::crd::{JobRun, JobTemplate, MAX_OVERRIDE_CHARACTERS};
use job_template_run::merge;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::EnvVar;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn main() -> ExitCode {
    suite::main(ClusterKind::WithoutJobController, |_| {
        let rejected = |name: &str, kind: Kind, body: fn(&str) -> Value, message: &'static str| {
            Test::new(name, move |env, ns| expect_rejected(env, ns, kind, body, message).boxed())
        };
        vec![
            rejected(
                "a_template_copied_from_a_job_with_a_selector_is_rejected",
                Kind::Template,
                |ns| with_spec(template_json(ns), json!({ "selector": { "matchLabels": { "a": "b" } } })),
                "a template must not set spec.selector",
            ),
            rejected(
                "a_template_with_manual_selector_is_rejected",
                Kind::Template,
                |ns| with_spec(template_json(ns), json!({ "manualSelector": true })),
                "a template must not set spec.manualSelector",
            ),
            rejected(
                "a_template_with_managed_by_is_rejected",
                Kind::Template,
                |ns| with_spec(template_json(ns), json!({ "managedBy": "example.com/other" })),
                "remove spec.managedBy",
            ),
            rejected(
                "a_template_of_the_wrong_type_is_rejected_by_the_jobspec_schema",
                Kind::Template,
                |ns| with_spec(template_json(ns), json!({ "backoffLimit": "three" })),
                "spec.backoffLimit",
            ),
            rejected(
                "a_template_without_containers_is_rejected",
                Kind::Template,
                |ns| with_pod_spec(template_json(ns), "containers", json!([])),
                "spec.template.spec.containers in body should have at least 1 items",
            ),
            rejected(
                "a_template_whose_pods_restart_always_is_rejected",
                Kind::Template,
                |ns| with_pod_spec(template_json(ns), "restartPolicy", json!("Always")),
                "a Job's pods cannot restart Always; use restartPolicy Never or OnFailure",
            ),
            rejected(
                "a_run_without_a_template_ref_is_rejected",
                Kind::Run,
                |ns| json!({ "apiVersion": "cellbytes.io/v1", "kind": "JobRun", "metadata": { "name": "r", "namespace": ns }, "spec": { "args": ["x"] } }),
                "spec.templateRef: Required value",
            ),
            rejected(
                "a_template_ref_that_is_not_a_dns_name_is_rejected",
                Kind::Run,
                |ns| run_json(ns, json!({ "templateRef": "Not_A_Name" })),
                "spec.templateRef",
            ),
            rejected(
                "a_run_with_more_than_256_args_is_rejected",
                Kind::Run,
                |ns| run_json(ns, json!({ "templateRef": "t", "args": vec!["x"; 257] })),
                "spec.args: Too many",
            ),
            rejected(
                "a_run_whose_command_and_args_together_exceed_128_ki_characters_is_rejected",
                Kind::Run,
                |ns| {
                    let half = MAX_OVERRIDE_CHARACTERS / 2;
                    run_json(
                        ns,
                        json!({ "templateRef": "t", "command": filled('x', half), "args": filled('x', half + 1) }),
                    )
                },
                "command, args, env values and annotation values (counted twice: on the Job and its pods) together must be at most 131072 characters",
            ),
            rejected(
                "a_run_whose_env_values_exceed_the_128_ki_total_is_rejected",
                Kind::Run,
                |ns| {
                    let env: Vec<Value> =
                        (0..33).map(|i| json!({ "name": format!("V{i}"), "value": "x".repeat(4096) })).collect();
                    run_json(ns, json!({ "templateRef": "t", "env": env }))
                },
                "together must be at most 131072 characters",
            ),
            rejected(
                "a_callback_url_that_is_not_http_is_rejected",
                Kind::Run,
                |ns| run_json(ns, json!({ "templateRef": "t", "callbackUrl": "ftp://example.com" })),
                "spec.callbackUrl",
            ),
            rejected(
                "a_run_label_with_a_reserved_prefix_is_rejected",
                Kind::Run,
                |ns| run_json(ns, json!({ "templateRef": "t", "labels": { "cellbytes.io/job-run": "other" } })),
                "are reserved for the operator and Kubernetes",
            ),
            rejected(
                "a_run_annotation_with_a_kubernetes_prefix_is_rejected",
                Kind::Run,
                |ns| run_json(ns, json!({ "templateRef": "t", "annotations": { "kubernetes.io/change-cause": "x" } })),
                "are reserved for the operator and Kubernetes",
            ),
            rejected(
                "a_run_label_naming_the_manager_is_rejected",
                Kind::Run,
                |ns| run_json(ns, json!({ "templateRef": "t", "labels": { "app.kubernetes.io/managed-by": "me" } })),
                "are reserved for the operator and Kubernetes",
            ),
            rejected(
                "a_run_label_value_longer_than_63_characters_is_rejected",
                Kind::Run,
                |ns| run_json(ns, json!({ "templateRef": "t", "labels": { "team": "x".repeat(64) } })),
                "spec.labels.team: Too long",
            ),
            rejected(
                "a_run_with_more_than_64_env_entries_is_rejected",
                Kind::Run,
                |ns| {
                    let env: Vec<Value> = (0..65).map(|i| json!({ "name": format!("V{i}"), "value": "x" })).collect();
                    run_json(ns, json!({ "templateRef": "t", "env": env }))
                },
                "spec.env: Too many",
            ),
            rejected(
                "a_run_with_an_env_name_twice_is_rejected",
                Kind::Run,
                |ns| {
                    run_json(
                        ns,
                        json!({ "templateRef": "t", "env": [{ "name": "A", "value": "1" }, { "name": "A", "value": "2" }] }),
                    )
                },
                "spec.env[1]: Duplicate value",
            ),
            rejected(
                "a_run_with_a_negative_backoff_limit_is_rejected",
                Kind::Run,
                |ns| run_json(ns, json!({ "templateRef": "t", "backoffLimit": -1 })),
                "spec.backoffLimit",
            ),
            rejected(
                "a_template_policy_naming_an_unknown_override_is_rejected",
                Kind::Template,
                |ns| with_top(template_json(ns), json!({ "runPolicy": { "overrides": ["command", "image"] } })),
                "runPolicy.overrides[1]: Unsupported value: \"image\"",
            ),
            rejected(
                "a_template_policy_with_more_than_16_rules_is_rejected",
                Kind::Template,
                |ns| {
                    let rules: Vec<Value> = (0..17).map(|_| json!({ "rule": "true", "message": "m" })).collect();
                    with_top(template_json(ns), json!({ "runPolicy": { "validations": rules } }))
                },
                "runPolicy.validations: Too many",
            ),
            Test::new("a_run_at_the_size_limit_and_its_job_are_stored", |e, ns| at_the_size_limit(e, ns).boxed()),
            Test::new("control_characters_in_args_reach_the_job_unchanged", |e, ns| control_characters(e, ns).boxed()),
            Test::new("a_runs_spec_cannot_change_after_creation_but_cancel_may_become_true_once", |e, ns| {
                immutable(e, ns).boxed()
            }),
            Test::new("kubectl_rejects_a_typo_in_a_template", |e, ns| typo(e, ns).boxed()),
            Test::new("runs_written_for_the_python_original_are_accepted", |e, ns| original(e, ns).boxed()),
        ]
    })
}

#[derive(Clone, Copy)]
enum Kind {
    Template,
    Run,
}

fn template_json(namespace: &str) -> Value {
    serde_json::to_value(template(namespace, "t", json!({})).expect("a valid template")).expect("serializes")
}

fn run_json(namespace: &str, spec: Value) -> Value {
    json!({ "apiVersion": "cellbytes.io/v1", "kind": "JobRun", "metadata": { "name": "r", "namespace": namespace }, "spec": spec })
}

fn with_spec(mut object: Value, extra: Value) -> Value {
    if let (Some(spec), Value::Object(extra)) = (object["spec"].as_object_mut(), extra) {
        spec.extend(extra);
    }
    object
}

/// Sets top-level fields of an object (a template's `runPolicy`).
fn with_top(mut object: Value, extra: Value) -> Value {
    if let (Some(top), Value::Object(extra)) = (object.as_object_mut(), extra) {
        top.extend(extra);
    }
    object
}

/// Sets one field of the template's pod spec.
fn with_pod_spec(mut object: Value, field: &str, value: Value) -> Value {
    object["spec"]["template"]["spec"][field] = value;
    object
}

/// Creating `body` must fail with 422 and a message containing `message`.
async fn expect_rejected(
    env: Arc<Env>,
    namespace: String,
    kind: Kind,
    body: fn(&str) -> Value,
    message: &str,
) -> Result<(), String> {
    // Sent as raw JSON: typed objects cannot even express most of these mistakes.
    let resource = match kind {
        Kind::Template => kube::api::ApiResource::erase::<JobTemplate>(&()),
        Kind::Run => kube::api::ApiResource::erase::<JobRun>(&()),
    };
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(env.client.clone(), &namespace, &resource);
    let object: kube::api::DynamicObject = serde_json::from_value(body(&namespace)).map_err(|e| e.to_string())?;
    let answer = api.create(&PostParams::default(), &object).await.map(|_| ());
    match answer {
        Err(kube::Error::Api(status)) if status.code == 422 && status.message.contains(message) => Ok(()),
        Err(error) => Err(format!("rejected, but not as expected (want 422 with {message:?}): {error}")),
        Ok(()) => Err(format!("accepted; expected a 422 with {message:?}")),
    }
}

/// `total` copies of `c`, as list items of at most 8192 characters.
fn filled(c: char, total: usize) -> Vec<String> {
    (0..total).step_by(8192).map(|start| std::iter::repeat_n(c, (total - start).min(8192)).collect()).collect()
}

/// The largest runs the CEL rule allows, made of the characters that cost the
/// most bytes where they are stored: `<` (escaped to 6 bytes in the run's
/// JSON in etcd) and a 4-byte emoji (in the Job's protobuf). Both runs and
/// the Jobs rendered from them must be accepted.
async fn at_the_size_limit(env: Arc<Env>, namespace: String) -> Result<(), String> {
    let templates: Api<JobTemplate> = Api::namespaced(env.client.clone(), &namespace);
    let runs: Api<JobRun> = Api::namespaced(env.client.clone(), &namespace);
    let jobs: Api<Job> = Api::namespaced(env.client.clone(), &namespace);
    let post = PostParams::default();
    let template =
        templates.create(&post, &template(&namespace, "t", json!({}))?).await.map_err(|e| format!("template: {e}"))?;
    let half = MAX_OVERRIDE_CHARACTERS / 2;
    for (name, command, args) in [
        ("escaped", filled('<', half), filled('<', half)),
        ("four-byte", filled('\u{1F600}', half), filled('\u{1F600}', half)),
        ("all-in-args", vec![], filled('<', MAX_OVERRIDE_CHARACTERS)),
        ("spread", vec![], vec![]),
    ] {
        let mut body = run(&namespace, name, "t", &[])?;
        body.spec.command = Some(command);
        body.spec.args = Some(args);
        if name == "spread" {
            // A quarter each in command and args, env values, and (counted twice) annotation values.
            let quarter = MAX_OVERRIDE_CHARACTERS / 4;
            body.spec.command = Some(filled('<', quarter / 2));
            body.spec.args = Some(filled('<', quarter / 2));
            let values =
                |total: usize| (0..total).step_by(4096).map(move |start| "<".repeat((total - start).min(4096)));
            body.spec.env = Some(
                values(quarter * 2)
                    .enumerate()
                    .map(|(i, value)| EnvVar { name: format!("V{i}"), value: Some(value), ..EnvVar::default() })
                    .collect(),
            );
            body.spec.annotations =
                Some(values(quarter / 2).enumerate().map(|(i, v)| (format!("example.com/a{i}"), v)).collect());
            body.spec.labels = Some((0..32).map(|i| (format!("example.com/l{i}"), "x".repeat(63))).collect());
        }
        runs.create(&post, &body).await.map_err(|e| format!("run {name} at the limit was rejected: {e}"))?;
        let stored = runs.get(name).await.map_err(|e| format!("read run {name} back: {e}"))?;
        if stored.spec != body.spec {
            return Err(format!("run {name} changed when stored"));
        }
        let job = merge::render(&template, &stored).map_err(|e| format!("render {name}: {e}"))?;
        jobs.create(&post, &job).await.map_err(|e| format!("the Job of run {name} at the limit was rejected: {e}"))?;
    }
    Ok(())
}

/// The API server stores newlines, tabs, other control characters and even
/// NUL in a run and in a Job, so the operator passes them through as they are.
async fn control_characters(env: Arc<Env>, namespace: String) -> Result<(), String> {
    let templates: Api<JobTemplate> = Api::namespaced(env.client.clone(), &namespace);
    let runs: Api<JobRun> = Api::namespaced(env.client.clone(), &namespace);
    let jobs: Api<Job> = Api::namespaced(env.client.clone(), &namespace);
    let post = PostParams::default();
    let template =
        templates.create(&post, &template(&namespace, "t", json!({}))?).await.map_err(|e| format!("template: {e}"))?;
    let args = ["line one\nline two", "a\tb", "bell\u{1}", "nul\u{0}byte", "\u{7f}\u{85}\u{2028}"];
    runs.create(&post, &run(&namespace, "ctl", "t", &args)?).await.map_err(|e| format!("run rejected: {e}"))?;
    let stored = runs.get("ctl").await.map_err(|e| format!("read the run back: {e}"))?;
    let expected: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    if stored.spec.args.as_ref() != Some(&expected) {
        return Err(format!("the run's args changed when stored: {:?}", stored.spec.args));
    }
    let job = merge::render(&template, &stored).map_err(|e| format!("render: {e}"))?;
    let name = job.metadata.name.clone().unwrap_or_default();
    jobs.create(&post, &job).await.map_err(|e| format!("Job rejected: {e}"))?;
    let stored_job = jobs.get(&name).await.map_err(|e| format!("read the Job back: {e}"))?;
    let container_args = stored_job.spec.and_then(|s| s.template.spec).and_then(|p| p.containers.into_iter().next());
    match container_args.and_then(|c| c.args) {
        Some(stored_args) if stored_args == expected => Ok(()),
        other => Err(format!("the Job's args differ from the run's: {other:?}")),
    }
}

async fn immutable(env: Arc<Env>, namespace: String) -> Result<(), String> {
    let runs: Api<JobRun> = Api::namespaced(env.client.clone(), &namespace);
    runs.create(&PostParams::default(), &run(&namespace, "fixed", "t", &["a"])?).await.map_err(|e| e.to_string())?;
    let patch = |spec: Value| {
        let runs = runs.clone();
        async move { runs.patch("fixed", &PatchParams::default(), &Patch::Merge(json!({ "spec": spec }))).await }
    };
    let refused = |answer: Result<JobRun, kube::Error>, message: &str| match answer {
        Err(kube::Error::Api(status)) if status.code == 422 && status.message.contains(message) => Ok(()),
        other => Err(format!("expected 422 {message:?}, got {:?}", other.map(|_| ()))),
    };
    // Every other field, set, changed or removed, is refused.
    for change in [
        json!({ "args": ["b"] }),
        json!({ "args": null }),
        json!({ "command": ["sh"] }),
        json!({ "templateRef": "other" }),
        json!({ "callbackUrl": "https://example.com/" }),
        json!({ "cancel": true, "args": ["b"] }),
        json!({ "env": [{ "name": "A", "value": "1" }] }),
        json!({ "labels": { "team": "a" } }),
        json!({ "resources": { "limits": { "cpu": "1" } } }),
        json!({ "parallelism": 2 }),
        json!({ "container": "main" }),
    ] {
        refused(patch(change.clone()).await, "spec is immutable except spec.cancel")
            .map_err(|e| format!("{change}: {e}"))?;
    }
    // cancel: unset → false → true is taken, true → false or unset is refused.
    patch(json!({ "cancel": false })).await.map_err(|e| format!("cancel false: {e}"))?;
    let cancelled = patch(json!({ "cancel": true })).await.map_err(|e| format!("cancel true: {e}"))?;
    if cancelled.metadata.generation != Some(3) {
        return Err(format!("each accepted change is a generation: {:?}", cancelled.metadata.generation));
    }
    for undo in [json!({ "cancel": false }), json!({ "cancel": null })] {
        refused(patch(undo.clone()).await, "spec.cancel cannot be unset once true")
            .map_err(|e| format!("{undo}: {e}"))?;
    }
    Ok(())
}

async fn typo(env: Arc<Env>, namespace: String) -> Result<(), String> {
    let manifest = format!(
        "apiVersion: cellbytes.io/v1\nkind: JobTemplate\nmetadata:\n  name: typo\n  namespace: {namespace}\nspec:\n  template:\n    spec:\n      containers:\n      - name: c\n        image: busybox\n        comand: [echo]\n      restartPolicy: Never\n"
    );
    let path = env.cluster.scratch_dir().join(format!("typo-{namespace}.yaml"));
    std::fs::write(&path, manifest).map_err(|e| e.to_string())?;
    let kubectl = tools::kubectl();
    let output = tokio::process::Command::new(kubectl)
        .args(["apply", "-f"])
        .arg(&path)
        .env("KUBECONFIG", &env.cluster.kubeconfig_path)
        .output()
        .await
        .map_err(|e| format!("cannot run kubectl: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() && stderr.contains("unknown field \"spec.template.spec.containers[0].comand\"") {
        Ok(())
    } else {
        Err(format!("expected kubectl to reject the unknown field; status {}, stderr: {stderr}", output.status))
    }
}

async fn original(env: Arc<Env>, namespace: String) -> Result<(), String> {
    let api: Api<kube::api::DynamicObject> =
        Api::namespaced_with(env.client.clone(), &namespace, &kube::api::ApiResource::erase::<JobRun>(&()));
    let body = run_json(
        &namespace,
        json!({
            "templateRef": "t",
            "command": ["python", "main.py"],
            "args": ["--date", "2026-01-01"],
            "callbackUrl": "https://hooks.example.com/jobs",
            "callbackToken": "s3cret",
            "callbackTokenSecretRef": { "name": "hook-token", "key": "token" }
        }),
    );
    let object: kube::api::DynamicObject = serde_json::from_value(body).map_err(|e| e.to_string())?;
    api.create(&PostParams::default(), &object).await.map(|_| ()).map_err(|e| format!("rejected: {e}"))
}
