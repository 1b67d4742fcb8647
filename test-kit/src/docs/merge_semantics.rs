//! `docs/merge-semantics.md`: every fixture case, grouped by topic, with its
//! rule, its inputs, the Job it makes (a diff from the template's Job), the
//! run's status and the reconciles.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use k8s_openapi::api::batch::v1::JobSpec;
use serde::Serialize;
use similar::TextDiff;

use super::markdown::{Label, Md, cell, code, prose, sentence, slug};
use super::topics::{RULES, Topic, topic_of};
use super::{CARGO_COMMAND, COMMAND, DocsError, FIXTURES_DIR, generated_comment, read, sorted_entries, to_yaml};
use crate::case::{Case, FILES};
use crate::golden::UPDATE_ENV;
use crate::world::Reconcile;

/// The optional inputs of a case, in the order the page shows them.
const INPUTS: [(&str, &str); 10] = [
    (FILES.existing_job, "The Job that already exists"),
    (FILES.job_status, "The status the Job shows"),
    (FILES.pods, "The Job's pods"),
    (FILES.events, "The Job controller's Events"),
    (FILES.situation, "The situation"),
    (FILES.api_error, "The API server's answer to the create"),
    (FILES.other_runs, "Other runs of the namespace"),
    (FILES.secret, "The Secret of the run's token"),
    (FILES.callback_answers, "The callback receiver's answers, attempt by attempt"),
    (FILES.admission_refusal, "The API server's refusal at admission"),
];

/// The files the page shows in their own way (not as an input block).
const SHOWN_APART: [&str; 5] =
    [FILES.run, FILES.template, FILES.expected_job, FILES.expected_status, FILES.expected_steps];

/// One case, ready to print.
struct Entry {
    case: Case,
    files: BTreeSet<String>,
    /// The comment at the top of `run.yaml`.
    rule: String,
    /// The run as shown: without `apiVersion`, `kind`, the namespace and uid.
    run: String,
    /// The template's `runPolicy`, as written.
    policy: Option<String>,
    /// The template's `spec`, as written.
    template_spec: Option<String>,
    /// The template's spec alone, as a Job: what the diff starts from.
    template_job: Option<String>,
    steps: Vec<Reconcile>,
}

/// The page for the cases in `fixtures`.
pub(super) fn page(fixtures: &Path) -> Result<String, DocsError> {
    let mut groups: BTreeMap<Topic, Vec<Entry>> = Topic::ALL.iter().map(|topic| (*topic, Vec::new())).collect();
    let mut count = 0;
    for dir in sorted_entries(fixtures, Path::is_dir)? {
        let entry = Entry::load(&dir)?;
        groups.entry(topic_of(&entry.case.name, &entry.files)).or_default().push(entry);
        count += 1;
    }
    let mut md = Md::default();
    md.para(generated_comment(&format!("{FIXTURES_DIR}/")));
    md.para("# Merge semantics");
    intro(&mut md, count);
    md.para("## Contents");
    for (topic, entries) in &groups {
        md.line(format!("- [{}](#{}) ({})", topic.title(), slug(topic.title()), entries.len()));
    }
    md.para(format!("- [How the cases are grouped](#{})", slug("How the cases are grouped")));
    for (topic, entries) in &groups {
        group(&mut md, *topic, entries)?;
    }
    grouping(&mut md);
    Ok(md.finish())
}

fn intro(md: &mut Md, count: usize) {
    md.para(format!(
        "The rules of the merge and of the reconcile, one per fixture: each of the {count} folders of \
         [`fixtures/`](../fixtures/) is a case named by the rule it pins, replayed byte for byte by the \
         golden tests (`test-kit/tests/fixtures_golden.rs`) and on a real API server by the e2e suite."
    ));
    md.para(
        "For each case: its rule (the folder name, and the comment at the top of its `run.yaml`); the inputs \
         that matter (the run, the template's `runPolicy`, and the case's other \
         files); the Job the operator creates, as a diff from the template's Job (the template's `spec` alone, \
         as a Job), or that no Job is created; the run's status at the end; and every reconcile until the \
         world is quiet: what started it, its steps, and when it said to come back. Unless a case's \
         `situation.yaml` says otherwise, the clock stands still at the run's `creationTimestamp`.",
    );
    md.para(format!(
        "Regenerate it with `{COMMAND}` (`{CARGO_COMMAND}`) after adding or changing a fixture; \
         `test-kit/tests/docs_are_current.rs` fails while it differs from the fixtures."
    ));
}

fn group(md: &mut Md, topic: Topic, entries: &[Entry]) -> Result<(), DocsError> {
    md.para(format!("## {}", topic.title()));
    md.para(topic.summary());
    if entries.is_empty() {
        md.para("None: the rules place every fixture in a group above.");
        return Ok(());
    }
    for entry in entries {
        md.line(format!("- [{}](#{})", sentence(&entry.case.name), entry.case.name));
    }
    md.line("");
    for entry in entries {
        case(md, entry)?;
    }
    Ok(())
}

fn case(md: &mut Md, entry: &Entry) -> Result<(), DocsError> {
    let name = &entry.case.name;
    let heading = sentence(name);
    if slug(&heading) != *name {
        md.line(format!("<a id=\"{name}\"></a>"));
    }
    md.para(format!("### {heading}"));
    md.para(prose(&entry.rule));
    md.para(format!("Fixture: [`{FIXTURES_DIR}/{name}/`](../{FIXTURES_DIR}/{name}/)"));

    md.block(&Label { words: "The run", file: Some(FILES.run) }, "yaml", &entry.run);
    match (&entry.policy, &entry.template_spec) {
        (_, None) => md.para(format!(
            "**No template**: the case has no `{}`; no JobTemplate of that name exists.",
            FILES.template
        )),
        (Some(policy), _) => {
            md.block(&Label { words: "The template's policy", file: Some(FILES.template) }, "yaml", policy);
        }
        (None, Some(_)) => md.para("**The template** has no `runPolicy`."),
    }
    for (file, words) in INPUTS {
        if entry.files.contains(file) {
            md.block(&Label { words, file: Some(file) }, "yaml", &read(&entry.case.dir.join(file))?);
        }
    }
    for file in &entry.files {
        if !SHOWN_APART.contains(&file.as_str()) && !INPUTS.iter().any(|(input, _)| input == file) {
            md.block(
                &Label { words: "Another file of the case", file: Some(file) },
                "",
                &read(&entry.case.dir.join(file))?,
            );
        }
    }

    match &entry.case.expected_job {
        Some(job) => {
            let (from, label) = match &entry.template_job {
                Some(template_job) => (template_job.as_str(), "the template's Job"),
                None => ("", "no template"),
            };
            let diff = TextDiff::from_lines(from, job.as_str())
                .unified_diff()
                .context_radius(3)
                .header(label, "the run's Job")
                .to_string();
            md.para(format!("**The Job** (`{}`), as a diff from the template's Job:", FILES.expected_job));
            md.para(super::markdown::fenced("diff", &diff));
        }
        None => {
            if let Some(spec) = &entry.template_spec {
                md.folded(&Label { words: "The template's spec", file: Some(FILES.template) }, "yaml", spec);
            }
            if entry.files.contains(FILES.existing_job) {
                md.para(format!("**No Job is created** (the one in `{}` is all there is).", FILES.existing_job));
            } else {
                md.para("**No Job is created.**");
            }
        }
    }
    md.block(
        &Label { words: "The run's status", file: Some(FILES.expected_status) },
        "yaml",
        &entry.case.expected_status,
    );
    md.para(format!("**The reconciles** (`{}`):", FILES.expected_steps));
    md.line("| # | Started by | Steps | Then |");
    md.line("|---:|---|---|---|");
    for (number, reconcile) in entry.steps.iter().enumerate() {
        let steps: Vec<String> = reconcile.steps.iter().map(|step| cell(step)).collect();
        md.line(format!(
            "| {} | {} | {} | {} |",
            number + 1,
            cell(&reconcile.trigger),
            steps.join("<br>"),
            cell(&reconcile.then)
        ));
    }
    md.line("");
    Ok(())
}

/// The grouping rules, as the page explains them.
fn grouping(md: &mut Md) {
    md.para("## How the cases are grouped");
    md.para(
        "A case goes to the group of the first of these rules it meets, tried in order \
         (`test-kit/src/docs/topics.rs`), so a new fixture needs no list to be edited. A word matches whole \
         words of the folder name; a word ending in `*` matches any word it begins.",
    );
    for (number, rule) in RULES.iter().enumerate() {
        let mut conditions = Vec::new();
        if !rule.files.is_empty() {
            let files: Vec<String> = rule.files.iter().map(|file| code(file)).collect();
            conditions.push(format!("the case has {}", files.join(" or ")));
        }
        if !rule.words.is_empty() {
            let words: Vec<String> = rule.words.iter().map(|word| code(word)).collect();
            let any = if words.len() > 1 { "one of " } else { "" };
            conditions.push(format!("the name has {any}{}", words.join(", ")));
        }
        md.line(format!("{}. **{}**: {}.", number + 1, rule.topic.title(), conditions.join(", or ")));
    }
    md.line("");
    md.para(format!("A case that meets none goes to [{}](#{}).", Topic::Other.title(), slug(Topic::Other.title())));
}

impl Entry {
    fn load(dir: &Path) -> Result<Self, DocsError> {
        let case = Case::load(dir)?;
        let files = sorted_entries(dir, Path::is_file)?
            .iter()
            .filter_map(|path| path.file_name().map(|name| name.to_string_lossy().into_owned()))
            .collect();
        let run_path = dir.join(FILES.run);
        let run_text = read(&run_path)?;
        let rule = comment(&run_text);
        if rule.is_empty() {
            return Err(DocsError::Invalid { path: run_path, why: "no comment at its top states the rule".into() });
        }
        let run = shown_run(&run_text);
        let (mut policy, mut template_spec, mut template_job) = (None, None, None);
        if let Some(template) = &case.template {
            let path = dir.join(FILES.template);
            let text = read(&path)?;
            policy = top_level_block(&text, "runPolicy");
            template_spec = top_level_block(&text, "spec");
            template_job = Some(to_yaml(&TemplatesJob::of(&template.spec.spec.0), &path)?);
        }
        let steps_path = dir.join(FILES.expected_steps);
        let Some(steps_text) = &case.expected_steps else {
            let why =
                format!("is missing; `{UPDATE_ENV}=1 cargo test -p jtr-test-kit --test fixtures_golden` writes it");
            return Err(DocsError::Invalid { path: steps_path, why });
        };
        let steps = parse(&steps_path, steps_text)?;
        Ok(Self { case, files, rule, run, policy, template_spec, template_job, steps })
    }
}

/// The template's spec alone, as a Job.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TemplatesJob<'a> {
    api_version: &'static str,
    kind: &'static str,
    spec: &'a JobSpec,
}

impl<'a> TemplatesJob<'a> {
    fn of(spec: &'a JobSpec) -> Self {
        Self { api_version: "batch/v1", kind: "Job", spec }
    }
}

/// The comment lines at the top of `text`, as one paragraph (a bare `#`
/// line starts another).
fn comment(text: &str) -> String {
    let mut paragraphs = vec![String::new()];
    for line in text.lines().map_while(|line| line.strip_prefix('#')) {
        let line = line.trim();
        let Some(current) = paragraphs.last_mut() else { continue };
        if line.is_empty() {
            if !current.is_empty() {
                paragraphs.push(String::new());
            }
        } else {
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(line);
        }
    }
    paragraphs.retain(|paragraph| !paragraph.is_empty());
    paragraphs.join("\n\n")
}

/// The run as written, without its comment (the rule, shown above it),
/// `apiVersion` and `kind`.
fn shown_run(text: &str) -> String {
    let body = text.lines().skip_while(|line| line.starts_with('#'));
    let kept: Vec<&str> = body.filter(|line| !line.starts_with("apiVersion:") && !line.starts_with("kind:")).collect();
    kept.join("\n") + "\n"
}

/// The top-level `key` of a YAML document and what is nested under it, as
/// written (its comments and order kept).
fn top_level_block(text: &str, key: &str) -> Option<String> {
    let mut lines = text.lines().skip_while(|line| !line.starts_with(&format!("{key}:")));
    let first = lines.next()?;
    let nested = lines.take_while(|line| line.is_empty() || line.starts_with([' ', '-', '#']));
    let block: Vec<&str> = std::iter::once(first).chain(nested).collect();
    Some(block.join("\n").trim_end().to_string() + "\n")
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, DocsError> {
    serde_norway::from_str(text).map_err(|source| DocsError::Parse { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;

    use super::*;
    use crate::docs::workspace_root;

    fn fixtures() -> PathBuf {
        workspace_root().join(FIXTURES_DIR)
    }

    fn folders() -> Vec<String> {
        let dirs = sorted_entries(&fixtures(), Path::is_dir).unwrap_or_else(|e| panic!("{e}"));
        dirs.iter().map(|dir| dir.file_name().unwrap_or_default().to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn every_fixture_lands_in_exactly_one_group() {
        let mut placed: BTreeMap<String, Vec<Topic>> = BTreeMap::new();
        for dir in sorted_entries(&fixtures(), Path::is_dir).unwrap_or_else(|e| panic!("{e}")) {
            let entry = Entry::load(&dir).unwrap_or_else(|e| panic!("{e}"));
            let groups: Vec<Topic> =
                Topic::ALL.into_iter().filter(|topic| topic_of(&entry.case.name, &entry.files) == *topic).collect();
            placed.insert(entry.case.name, groups);
        }
        assert_eq!(placed.len(), folders().len());
        for (name, groups) in &placed {
            assert_eq!(groups.len(), 1, "{name} is in {groups:?}");
        }
    }

    #[test]
    fn the_page_has_every_folder_as_a_heading_anchored_at_its_name_and_in_its_groups_list() {
        let page = page(&fixtures()).unwrap_or_else(|e| panic!("{e}"));
        let headings: BTreeSet<String> = page.lines().filter_map(|line| line.strip_prefix("### ")).map(slug).collect();
        for name in folders() {
            assert!(headings.contains(&name), "no heading anchored at {name}");
            assert!(page.contains(&format!("](#{name})")), "no link to {name}");
            assert!(page.contains(&format!("](../fixtures/{name}/)")), "no link to the folder {name}");
        }
        assert_eq!(page.matches("\n### ").count(), folders().len());
    }

    #[test]
    fn the_page_is_the_same_each_time() {
        assert_eq!(page(&fixtures()).ok(), page(&fixtures()).ok());
    }

    #[test]
    fn a_case_without_a_job_says_so_and_one_with_a_job_shows_its_diff() {
        let page = page(&fixtures()).unwrap_or_else(|e| panic!("{e}"));
        let section = |name: &str| {
            let start = page.find(&format!("### {}\n", sentence(name))).unwrap_or_else(|| panic!("no {name}"));
            let rest = &page[start + 4..];
            rest[..rest.find("\n### ").unwrap_or(rest.len())].to_string()
        };
        let refused = section("an-override-outside-the-policy-fails-the-run-with-override-not-allowed");
        assert!(refused.contains("**No Job is created.**"));
        let adopted = section("an-existing-job-of-the-same-run-is-adopted");
        assert!(
            adopted.contains("**No Job is created** (the one in `existing-job.yaml` is all there is)."),
            "{adopted}"
        );
        let args = section("args-on-the-run-replace-the-template-args");
        assert!(args.contains("-        - template default\n+        - Hello, world!"), "{args}");
        assert!(args.contains("--- the template's Job\n+++ the run's Job"));
    }

    #[test]
    fn a_top_level_block_is_taken_as_written() {
        let text = "apiVersion: v1\nrunPolicy:\n  # why\n  overrides:\n  - env\nspec:\n  template: {}\n";
        assert_eq!(top_level_block(text, "runPolicy").as_deref(), Some("runPolicy:\n  # why\n  overrides:\n  - env\n"));
        assert_eq!(top_level_block(text, "spec").as_deref(), Some("spec:\n  template: {}\n"));
        assert_eq!(top_level_block(text, "status"), None);
    }

    #[test]
    fn the_run_is_shown_without_its_comment_api_version_and_kind() {
        let text = "# The rule.\napiVersion: cellbytes.io/v1\nkind: JobRun\nmetadata:\n  name: r\n";
        assert_eq!(shown_run(text), "metadata:\n  name: r\n");
    }

    #[test]
    fn the_comment_at_the_top_is_the_rule() {
        let text = "# One rule\n# on two lines.\n#\n# Another paragraph.\napiVersion: v1\n# not this\n";
        assert_eq!(comment(text), "One rule on two lines.\n\nAnother paragraph.");
    }

    #[test]
    fn a_case_whose_file_is_missing_or_invalid_is_an_error_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("jtr-docs-{}", std::process::id()));
        let case = dir.join("a-case");
        fs::create_dir_all(&case).unwrap_or_else(|e| panic!("{e}"));
        let missing = page(&dir).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(missing.contains("a-case/run.yaml"), "{missing}");
        fs::write(case.join(FILES.run), "# A rule.\nspec: [not, a, spec]\n").unwrap_or_else(|e| panic!("{e}"));
        fs::write(case.join(FILES.expected_status), "phase: Pending\n").unwrap_or_else(|e| panic!("{e}"));
        let invalid = page(&dir).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(invalid.contains("a-case/run.yaml is not valid YAML"), "{invalid}");
        fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    }
}
