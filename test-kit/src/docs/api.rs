//! `docs/api.md`: every field of the CRDs the Helm chart installs, from the
//! CRDs' own schema (the committed YAML, itself drift-tested against the
//! Rust types): path, type, default, validation and description; and each
//! kind's names and printer columns. An embedded Kubernetes type (the
//! JobTemplate's `spec`, a whole batch/v1 JobSpec) is named, not expanded,
//! beside the checks the CRD adds inside it.

use std::path::Path;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionVersion, JSONSchemaProps, JSONSchemaPropsOrArray,
    JSONSchemaPropsOrBool, ValidationRule,
};
use k8s_openapi::serde_json;

use super::markdown::{Md, cell, code, fenced, prose, slug};
use super::{CARGO_COMMAND, COMMAND, CRDS_DIR, DocsError, generated_comment, read, sorted_entries};

/// A field whose schema is a whole Kubernetes type, documented elsewhere.
struct Embedded {
    kind: &'static str,
    path: &'static str,
    what: &'static str,
    reference: &'static str,
}

const EMBEDDED: [Embedded; 1] = [Embedded {
    kind: "JobTemplate",
    path: "spec",
    what: "the batch/v1 JobSpec",
    reference: "https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/job-v1/#JobSpec",
}];

/// A rule longer than this is folded under its message.
const LONG_RULE: usize = 160;

/// The page for the CRDs in `dir`.
pub(super) fn page(dir: &Path) -> Result<String, DocsError> {
    let is_yaml = |path: &Path| path.is_file() && path.extension().is_some_and(|ext| ext == "yaml");
    let mut crds = Vec::new();
    for path in sorted_entries(dir, is_yaml)? {
        let crd: CustomResourceDefinition =
            serde_norway::from_str(&read(&path)?).map_err(|source| DocsError::Parse { path: path.clone(), source })?;
        crds.push((path, crd));
    }
    if crds.is_empty() {
        return Err(DocsError::Invalid { path: dir.to_path_buf(), why: "holds no CRD (no *.yaml file)".into() });
    }
    let mut md = Md::default();
    md.para(generated_comment(&format!("{CRDS_DIR}/")));
    md.para("# API reference");
    md.para(format!(
        "Every field of the custom resources, generated from the CRDs that the Helm chart installs \
         ([`{CRDS_DIR}/`](../{CRDS_DIR}/), themselves generated from the Rust types and drift-tested by \
         `tests/crds_match_the_rust_types.rs`): path, type, default, what the API server checks at admission \
         (the schema and its CEL rules), and description. What the fields do together: \
         [JobTemplate and JobRun](resources.md), [What a run may change](overrides.md)."
    ));
    md.para(format!(
        "Regenerate it with `{COMMAND}` (`{CARGO_COMMAND}`) after changing the CRDs (`make crd`); \
         `test-kit/tests/docs_are_current.rs` fails while it differs from them."
    ));
    md.para("## Contents");
    for (_, crd) in &crds {
        let kind = &crd.spec.names.kind;
        md.line(format!("- [{kind}](#{})", slug(kind)));
        md.line(format!("  - [{kind} printer columns](#{})", slug(&format!("{kind} printer columns"))));
        md.line(format!("  - [{kind} fields](#{})", slug(&format!("{kind} fields"))));
    }
    md.line("");
    for (path, crd) in &crds {
        resource(&mut md, path, crd)?;
    }
    Ok(md.finish())
}

fn resource(md: &mut Md, path: &Path, crd: &CustomResourceDefinition) -> Result<(), DocsError> {
    let names = &crd.spec.names;
    let kind = names.kind.as_str();
    md.para(format!("## {kind}"));
    let several = crd.spec.versions.len() > 1;
    for version in &crd.spec.versions {
        let schema = version.schema.as_ref().and_then(|schema| schema.open_api_v3_schema.as_ref());
        let Some(schema) = schema else {
            let why = format!("version {} has no openAPIV3Schema", version.name);
            return Err(DocsError::Invalid { path: path.to_path_buf(), why });
        };
        if let Some(description) = &schema.description {
            md.para(prose(description));
        }
        let stored = match (version.served, version.storage) {
            (true, true) => " (served, stored)",
            (true, false) => " (served)",
            (false, true) => " (stored, not served)",
            (false, false) => " (neither served nor stored)",
        };
        md.line(format!("- API version: `{}/{}`{stored}", crd.spec.group, version.name));
        md.line(format!(
            "- Kind `{kind}`, {}; plural `{}`{}",
            crd.spec.scope.to_lowercase(),
            names.plural,
            names.singular.as_ref().map(|singular| format!(", singular `{singular}`")).unwrap_or_default()
        ));
        if let Some(short) = names.short_names.as_ref().filter(|short| !short.is_empty()) {
            let short: Vec<String> = short.iter().map(|name| code(name)).collect();
            md.line(format!("- Short names: {}", short.join(", ")));
        }
        if let Some(categories) = names.categories.as_ref().filter(|categories| !categories.is_empty()) {
            let listed: Vec<String> = categories.iter().map(|name| code(name)).collect();
            md.line(format!("- Categories: {} (`kubectl get {}` lists it)", listed.join(", "), categories[0]));
        }
        md.line(format!("- Subresources: {}", subresources(version)));
        md.line("");
        let suffix = if several { format!(" ({})", version.name) } else { String::new() };
        printer_columns(md, kind, &suffix, version);
        md.para(format!("### {kind} fields{suffix}"));
        let required = schema.required.clone().unwrap_or_default();
        for (name, child) in schema.properties.iter().flatten() {
            field(md, kind, name, name, child, required.contains(name), None);
        }
    }
    Ok(())
}

fn subresources(version: &CustomResourceDefinitionVersion) -> String {
    let Some(subresources) = &version.subresources else { return "none".into() };
    let mut names = Vec::new();
    if subresources.status.is_some() {
        names.push("`status`");
    }
    if subresources.scale.is_some() {
        names.push("`scale`");
    }
    if names.is_empty() { "none".into() } else { names.join(", ") }
}

fn printer_columns(md: &mut Md, kind: &str, suffix: &str, version: &CustomResourceDefinitionVersion) {
    md.para(format!("### {kind} printer columns{suffix}"));
    let columns = version.additional_printer_columns.as_deref().unwrap_or_default();
    if columns.is_empty() {
        md.para("None: `kubectl get` shows the name and age.");
        return;
    }
    md.para(format!("What `kubectl get {}` shows:", kind.to_lowercase()));
    let described = columns.iter().any(|column| column.description.is_some());
    md.line(if described {
        "| Column | JSON path | Type | Shown | Description |"
    } else {
        "| Column | JSON path | Type | Shown |"
    });
    md.line(if described { "|---|---|---|---|---|" } else { "|---|---|---|---|" });
    for column in columns {
        let shown = match column.priority.unwrap_or(0) {
            0 => "always".to_string(),
            priority => format!("with `-o wide` (priority {priority})"),
        };
        let kind = match &column.format {
            Some(format) => format!("{} ({format})", column.type_),
            None => column.type_.clone(),
        };
        let description = match (described, &column.description) {
            (false, _) => String::new(),
            (true, description) => format!(" {} |", description.as_deref().map(cell).unwrap_or_default()),
        };
        md.line(format!(
            "| {} | {} | {} | {shown} |{description}",
            cell(&column.name),
            code(&column.json_path.replace('|', "\\|")),
            cell(&kind),
        ));
    }
    md.line("");
}

/// One field, then the fields inside it. `parent` is the object it is in,
/// with that object's rules (`None` at the top).
fn field(
    md: &mut Md,
    kind: &str,
    name: &str,
    path: &str,
    schema: &JSONSchemaProps,
    required: bool,
    parent: Option<(&str, &[ValidationRule])>,
) {
    md.para(format!("#### `{path}`"));
    let default = match &schema.default {
        Some(value) => code(&json(&value.0)),
        None => "none".into(),
    };
    md.para(format!(
        "**Type:** {} · **Required:** {} · **Default:** {default}",
        type_of(schema),
        if required { "yes" } else { "no" }
    ));
    let embedded = EMBEDDED.iter().find(|embedded| embedded.kind == kind && embedded.path == path);
    match embedded {
        Some(embedded) => embedded_type(md, embedded, schema),
        None => {
            if let Some(description) = &schema.description {
                md.para(prose(description));
            }
            for (label, nested) in [("Each item", items(schema)), ("Each value", values(schema))] {
                let nested = nested.filter(|nested| nested.properties.is_some());
                if let Some(description) = nested.and_then(|nested| nested.description.as_ref()) {
                    md.para(format!("{label}: {}", prose(description)));
                }
            }
        }
    }
    let mut validation = checks(schema);
    if let Some((parent_path, parent_rules)) = parent {
        validation.extend(transition_rules(name, parent_path, parent_rules));
    }
    if let Some(item) = items(schema) {
        validation.extend(checks(item).into_iter().map(|check| format!("each item: {check}")));
    }
    if let Some(value) = values(schema) {
        validation.extend(checks(value).into_iter().map(|check| format!("each value: {check}")));
    }
    if !validation.is_empty() {
        md.line("Validation:");
        md.line("");
        for check in &validation {
            md.line(format!("- {check}"));
        }
        md.line("");
    }
    rules(md, schema.x_kubernetes_validations.as_deref().unwrap_or_default());
    match embedded {
        Some(embedded) => inside_embedded(md, embedded, path, schema),
        None => children(md, kind, path, schema),
    }
}

/// The fields of an object, of an array's object items (`path[]`) and of a
/// map's object values (`path.*`).
fn children(md: &mut Md, kind: &str, path: &str, schema: &JSONSchemaProps) {
    let required = schema.required.clone().unwrap_or_default();
    let rules = schema.x_kubernetes_validations.as_deref().unwrap_or_default();
    for (name, child) in schema.properties.iter().flatten() {
        field(md, kind, name, &format!("{path}.{name}"), child, required.contains(name), Some((path, rules)));
    }
    if let Some(item) = items(schema) {
        children(md, kind, &format!("{path}[]"), item);
    }
    if let Some(value) = values(schema) {
        children(md, kind, &format!("{path}.*"), value);
    }
}

/// An embedded Kubernetes type: named with its fields, not expanded.
fn embedded_type(md: &mut Md, embedded: &Embedded, schema: &JSONSchemaProps) {
    let fields: Vec<String> = schema.properties.iter().flatten().map(|(name, _)| code(name)).collect();
    let required: Vec<String> = schema.required.iter().flatten().map(|name| code(name)).collect();
    md.para(format!(
        "{}, see the [Kubernetes API reference]({}); not expanded here. Its fields: {}{}.",
        capitalized(embedded.what),
        embedded.reference,
        fields.join(", "),
        if required.is_empty() { String::new() } else { format!(" (required: {})", required.join(", ")) }
    ));
}

/// The checks the CRD adds anywhere inside an embedded Kubernetes type.
fn inside_embedded(md: &mut Md, embedded: &Embedded, path: &str, schema: &JSONSchemaProps) {
    let mut inside = Vec::new();
    inner_checks(path, schema, true, &mut inside);
    if inside.is_empty() {
        return;
    }
    md.para(format!("Checks the CRD adds inside {}:", embedded.what));
    for (inner_path, checks, rules) in inside {
        let mut parts = checks;
        parts.extend(rules.iter().map(rule_text));
        md.line(format!("- `{inner_path}`: {}", parts.join("; ")));
    }
    md.line("");
}

fn inner_checks<'a>(
    path: &str,
    schema: &'a JSONSchemaProps,
    root: bool,
    out: &mut Vec<(String, Vec<String>, &'a [ValidationRule])>,
) {
    let rules = schema.x_kubernetes_validations.as_deref().unwrap_or_default();
    let checks = checks(schema);
    if !root && (!checks.is_empty() || !rules.is_empty()) {
        out.push((path.to_string(), checks, rules));
    }
    for (name, child) in schema.properties.iter().flatten() {
        inner_checks(&format!("{path}.{name}"), child, false, out);
    }
    if let Some(item) = items(schema) {
        inner_checks(&format!("{path}[]"), item, false, out);
    }
    if let Some(value) = values(schema) {
        inner_checks(&format!("{path}.*"), value, false, out);
    }
}

/// A field's own `x-kubernetes-validations`: each message, then its rule.
fn rules(md: &mut Md, rules: &[ValidationRule]) {
    if rules.is_empty() {
        return;
    }
    md.line("Rules (`x-kubernetes-validations`):");
    md.line("");
    let mut ends_folded = false;
    for rule in rules {
        let message = rule_message(rule);
        ends_folded = rule.rule.len() > LONG_RULE;
        if ends_folded {
            md.line(format!("- {message}"));
            md.line("");
            md.line(format!("  <details><summary>The rule ({} characters)</summary>", rule.rule.len()));
            md.line("");
            for line in fenced("cel", &rule.rule).lines() {
                md.line(format!("  {line}"));
            }
            md.line("");
            md.line("  </details>");
            md.line("");
        } else {
            md.line(format!("- {message}: {}", code(&rule.rule)));
        }
    }
    if !ends_folded {
        md.line("");
    }
}

fn rule_message(rule: &ValidationRule) -> String {
    let mut message = match (&rule.message, &rule.message_expression) {
        (Some(message), _) => format!("“{}”", prose(message)),
        (None, Some(expression)) => format!("a message computed by {}", code(expression)),
        (None, None) => "“failed rule”".into(),
    };
    if let Some(reason) = &rule.reason {
        message.push_str(&format!(" (reason `{reason}`)"));
    }
    if let Some(field_path) = &rule.field_path {
        message.push_str(&format!(" (at `{field_path}`)"));
    }
    message
}

fn rule_text(rule: &ValidationRule) -> String {
    format!("rule {}: {}", rule_message(rule), code(&rule.rule))
}

/// What the parent's transition rules (those reading `oldSelf`) say of the
/// field `name`: immutable where a rule requires `self.name == oldSelf.name`,
/// else the rule's message where one reads `oldSelf.name`.
fn transition_rules(name: &str, parent: &str, parent_rules: &[ValidationRule]) -> Vec<String> {
    let mut out = Vec::new();
    for rule in parent_rules.iter().filter(|rule| rule.rule.contains("oldSelf")) {
        if rule.rule.contains(&format!("self.{name} == oldSelf.{name}")) {
            out.push(format!("immutable once created (a rule of `{parent}`)"));
        } else if reads(&rule.rule, &format!("oldSelf.{name}")) || reads(&rule.rule, &format!("oldSelf.?{name}")) {
            out.push(format!("on update, a rule of `{parent}`: {}", rule_message(rule)));
        }
    }
    out
}

/// True when `rule` reads `access` as a whole field name.
fn reads(rule: &str, access: &str) -> bool {
    rule.match_indices(access).any(|(at, _)| {
        let next = rule[at + access.len()..].chars().next();
        !next.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// The schema's own checks, in words (not those of its items or values).
fn checks(schema: &JSONSchemaProps) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(values) = &schema.enum_ {
        let values: Vec<String> = values.iter().map(|value| code(&scalar(&value.0))).collect();
        out.push(format!("one of {}", values.join(", ")));
    }
    let exclusive = |flag: Option<bool>| flag == Some(true);
    match (schema.minimum, schema.maximum) {
        (Some(min), Some(max)) => out.push(format!("from {min} to {max}")),
        (Some(min), None) => out.push(format!("{} {min}", if exclusive(schema.exclusive_minimum) { ">" } else { "≥" })),
        (None, Some(max)) => out.push(format!("{} {max}", if exclusive(schema.exclusive_maximum) { "<" } else { "≤" })),
        (None, None) => {}
    }
    if let Some(factor) = schema.multiple_of {
        out.push(format!("a multiple of {factor}"));
    }
    out.extend(bounds(schema.min_length, schema.max_length, "character"));
    if let Some(pattern) = &schema.pattern {
        out.push(format!("matches {}", code(pattern)));
    }
    out.extend(bounds(schema.min_items, schema.max_items, "item"));
    out.extend(bounds(schema.min_properties, schema.max_properties, "entry"));
    if schema.unique_items == Some(true) {
        out.push("items unique".into());
    }
    match schema.x_kubernetes_list_type.as_deref() {
        Some("set") => out.push("a set: each item once (`x-kubernetes-list-type: set`)".into()),
        Some("map") => {
            let keys: Vec<String> = schema.x_kubernetes_list_map_keys.iter().flatten().map(|key| code(key)).collect();
            out.push(format!("a map list: each {} once (`x-kubernetes-list-type: map`)", keys.join(" and ")));
        }
        _ => {}
    }
    if schema.x_kubernetes_preserve_unknown_fields == Some(true) {
        out.push("any fields kept (`x-kubernetes-preserve-unknown-fields`)".into());
    }
    out
}

fn bounds(min: Option<i64>, max: Option<i64>, unit: &str) -> Option<String> {
    let units = |n: i64| {
        if n == 1 {
            format!("{n} {unit}")
        } else {
            match unit.strip_suffix('y') {
                Some(stem) => format!("{n} {stem}ies"),
                None => format!("{n} {unit}s"),
            }
        }
    };
    match (min, max) {
        (Some(min), Some(max)) => Some(format!("{min} to {}", units(max))),
        (Some(min), None) => Some(format!("at least {}", units(min))),
        (None, Some(max)) => Some(format!("at most {}", units(max))),
        (None, None) => None,
    }
}

fn type_of(schema: &JSONSchemaProps) -> String {
    if schema.x_kubernetes_int_or_string == Some(true) {
        return "integer or string".into();
    }
    let base = match schema.type_.as_deref() {
        Some("array") => match items(schema) {
            Some(item) => format!("array of {}", type_of(item)),
            None => "array".into(),
        },
        Some("object") => match values(schema) {
            Some(value) => format!("map of string to {}", type_of(value)),
            None => "object".into(),
        },
        Some(other) => other.to_string(),
        None => "any".into(),
    };
    match &schema.format {
        Some(format) => format!("{base} ({format})"),
        None => base,
    }
}

fn items(schema: &JSONSchemaProps) -> Option<&JSONSchemaProps> {
    match schema.items.as_ref()? {
        JSONSchemaPropsOrArray::Schema(item) => Some(item),
        JSONSchemaPropsOrArray::Schemas(items) => items.first(),
    }
}

fn values(schema: &JSONSchemaProps) -> Option<&JSONSchemaProps> {
    match schema.additional_properties.as_ref()? {
        JSONSchemaPropsOrBool::Schema(value) => Some(value),
        JSONSchemaPropsOrBool::Bool(_) => None,
    }
}

fn scalar(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => json(other),
    }
}

fn json(value: &serde_json::Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| format!("{value:?}"))
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// Every field path the page documents for the CRD in `path` (for tests).
#[cfg(test)]
fn documented_paths(path: &Path) -> Vec<String> {
    fn walk(kind: &str, path: &str, schema: &JSONSchemaProps, out: &mut Vec<String>) {
        out.push(path.to_string());
        if EMBEDDED.iter().any(|embedded| embedded.kind == kind && embedded.path == path) {
            return;
        }
        let mut nested = |prefix: String, schema: &JSONSchemaProps| {
            for (name, child) in schema.properties.iter().flatten() {
                walk(kind, &format!("{prefix}.{name}"), child, out);
            }
        };
        nested(path.to_string(), schema);
        if let Some(item) = items(schema) {
            nested(format!("{path}[]"), item);
        }
        if let Some(value) = values(schema) {
            nested(format!("{path}.*"), value);
        }
    }
    let text = read(path).unwrap_or_else(|e| panic!("{e}"));
    let crd: CustomResourceDefinition = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    for version in &crd.spec.versions {
        let schema = version.schema.as_ref().and_then(|schema| schema.open_api_v3_schema.as_ref());
        for (name, child) in schema.and_then(|schema| schema.properties.as_ref()).into_iter().flatten() {
            walk(&crd.spec.names.kind, name, child, &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;

    use super::*;
    use crate::docs::workspace_root;

    fn crds() -> PathBuf {
        workspace_root().join(CRDS_DIR)
    }

    #[test]
    fn every_field_of_the_crds_outside_the_job_spec_has_its_heading() {
        let page = page(&crds()).unwrap_or_else(|e| panic!("{e}"));
        let mut count = 0;
        for file in sorted_entries(&crds(), Path::is_file).unwrap_or_else(|e| panic!("{e}")) {
            for path in documented_paths(&file) {
                assert!(page.contains(&format!("\n#### `{path}`\n")), "{path} of {} is missing", file.display());
                count += 1;
            }
        }
        assert_eq!(page.matches("\n#### `").count(), count, "a heading for a field the CRDs do not have");
    }

    #[test]
    fn the_job_spec_is_named_with_its_fields_not_expanded() {
        let page = page(&crds()).unwrap_or_else(|e| panic!("{e}"));
        assert!(page.contains("The batch/v1 JobSpec, see the [Kubernetes API reference]"));
        assert!(!page.contains("#### `spec.template`"), "the JobSpec is expanded");
        assert!(!page.contains("#### `spec.template."), "the JobSpec is expanded");
        assert!(page.contains("- `spec.template.spec.containers`: at least 1 item"), "{page}");
        assert!(page.contains("a Job's pods cannot restart Always"));
    }

    #[test]
    fn the_page_shows_validation_rules_immutability_short_names_and_printer_columns() {
        let page = page(&crds()).unwrap_or_else(|e| panic!("{e}"));
        for expected in [
            "- Short names: `jr`",
            "- Short names: `jt`",
            "| Valid | `.status.conditions[?(@.type==\"Valid\")].status` | string | always |",
            "| Reason | `.status.conditions[?(@.type==\"Valid\")].reason` | string | with `-o wide` (priority 1) |",
            "- one of `Pending`, `Running`, `Succeeded`, `Failed`",
            "- 1 to 253 characters",
            "- immutable once created (a rule of `spec`)",
            "- on update, a rule of `spec`: “spec.cancel cannot be unset once true",
            "- a map list: each `name` once (`x-kubernetes-list-type: map`)",
            "- each item: at most 8192 characters",
        ] {
            assert!(page.contains(expected), "no {expected:?}");
        }
    }

    #[test]
    fn an_invalid_crd_file_is_an_error_naming_it() {
        let dir = std::env::temp_dir().join(format!("jtr-docs-api-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let empty = page(&dir).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(empty.contains("holds no CRD"), "{empty}");
        fs::write(dir.join("broken.yaml"), "spec: [1]\n").unwrap_or_else(|e| panic!("{e}"));
        let broken = page(&dir).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(broken.contains("broken.yaml is not valid YAML"), "{broken}");
        fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    }
}
