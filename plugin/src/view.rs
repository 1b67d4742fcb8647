//! What the commands print, from objects and a given `now`: tables in
//! kubectl's layout, `describe`, the REASON of a run, kubectl's ages.

use std::fmt::Write as _;
use std::sync::Arc;

use jtr_core::crd::{CONDITION_VALID, JobRun, JobTemplate, Phase};
use jtr_core::merge::{
    CONDITION_CALLBACK_DELIVERED, CONDITION_FINISHED, CONDITION_JOB_CREATED, CONDITION_STALLED,
    CONDITION_TEMPLATE_READY, allowed_overrides, stall,
};
use k8s_openapi::api::batch::v1::{Job, JobCondition};
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

/// A colour for a cell, shown only on a terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colour {
    Green,
    Red,
    Yellow,
}

impl Colour {
    fn code(self) -> &'static str {
        match self {
            Colour::Green => "32",
            Colour::Red => "31",
            Colour::Yellow => "33",
        }
    }

    /// The colour of a run's phase.
    pub fn of_phase(phase: &str) -> Option<Colour> {
        match phase {
            "Succeeded" => Some(Colour::Green),
            "Failed" => Some(Colour::Red),
            "Pending" => Some(Colour::Yellow),
            _ => None,
        }
    }
}

/// One cell: text, and the colour it has on a terminal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    pub text: String,
    pub colour: Option<Colour>,
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Cell { text, colour: None }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Cell { text: text.to_owned(), colour: None }
    }
}

/// Rows in kubectl's layout (its tabwriter: a column is as wide as its
/// widest cell plus 3 spaces, and at least 10), colours only if `colour`.
pub fn table(headers: &[&str], rows: &[Vec<Cell>], colour: bool) -> String {
    let width = |i: usize| {
        let widest = rows.iter().filter_map(|r| r.get(i)).map(|c| c.text.chars().count()).max().unwrap_or(0);
        (widest.max(headers[i].chars().count()) + 3).max(10)
    };
    let widths: Vec<usize> = (0..headers.len()).map(width).collect();
    let mut out = String::new();
    let mut line = |cells: Vec<Cell>| {
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            let pad = if i == last { 0 } else { widths[i].saturating_sub(cell.text.chars().count()) };
            match cell.colour.filter(|_| colour) {
                Some(c) => {
                    let _ = write!(text, "\x1b[{}m{}\x1b[0m", c.code(), cell.text);
                }
                None => text.push_str(&cell.text),
            }
            text.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(headers.iter().map(|h| Cell::from(*h)).collect());
    rows.iter().for_each(|row| line(row.clone()));
    out
}

/// kubectl's age and duration form (apimachinery's `HumanDuration`):
/// `45s`, `3m20s`, `15m`, `2h5m`, `20h`, `3d4h`, `30d`, `2y3d`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{}d", hours / 24),
            h => format!("{}d{h}h", hours / 24),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        return match (hours / 24) % 365 {
            0 => format!("{}y", hours / 24 / 365),
            d => format!("{}y{d}d", hours / 24 / 365),
        };
    }
    format!("{}y", hours / 24 / 365)
}

fn age(time: Option<&Time>, now: Timestamp) -> String {
    time.map_or_else(|| "<unknown>".to_owned(), |t| human_duration(now.as_second() - t.0.as_second()))
}

fn conditions(run: &JobRun) -> &[JobCondition] {
    run.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default()
}

fn condition<'a>(run: &'a JobRun, type_: &str) -> Option<&'a JobCondition> {
    conditions(run).iter().find(|c| c.type_ == type_)
}

/// The run's phase as printed (empty before the operator wrote a status).
pub fn phase(run: &JobRun) -> &'static str {
    run.status.as_ref().and_then(|s| s.phase).map_or("", Phase::as_str)
}

/// Why the run is where it is, in one word: a failure's reason (the
/// `Failed` condition's: `BackoffLimitExceeded`, `OverrideNotAllowed`, …),
/// else `Stalled`'s, `Finished=False`'s (`Cancelling`), a waiting
/// condition's (`TemplateNotFound`, `QuotaExceeded`, …), or `Suspended`.
pub fn reason(run: &JobRun) -> String {
    let is_true = |type_: &str| condition(run, type_).filter(|c| c.status == "True");
    let is_false = |type_: &str| condition(run, type_).filter(|c| c.status == "False");
    let reason_of = |c: &JobCondition| c.reason.clone().unwrap_or_default();
    match phase(run) {
        "Succeeded" => String::new(),
        "Failed" => is_true("Failed").or_else(|| is_true(CONDITION_FINISHED)).map(reason_of).unwrap_or_default(),
        _ => is_true(CONDITION_STALLED)
            .or_else(|| is_false(CONDITION_FINISHED))
            .or_else(|| is_false(CONDITION_TEMPLATE_READY))
            .or_else(|| is_false(CONDITION_JOB_CREATED))
            .map(reason_of)
            .or_else(|| is_true("Suspended").map(|_| "Suspended".to_owned()))
            .unwrap_or_default(),
    }
}

/// The human message that goes with [`reason`]: the run's `error`, or that
/// condition's message.
pub fn message(run: &JobRun) -> String {
    if let Some(error) = run.status.as_ref().and_then(|s| s.error.clone()) {
        return error;
    }
    let wanted = reason(run);
    if wanted.is_empty() {
        return String::new();
    }
    conditions(run)
        .iter()
        .find(|c| c.reason.as_deref() == Some(wanted.as_str()) && c.type_ != CONDITION_FINISHED)
        .or_else(|| conditions(run).iter().find(|c| c.reason.as_deref() == Some(wanted.as_str())))
        .and_then(|c| c.message.clone())
        .unwrap_or_default()
}

/// When the run finished: its completion time (a succeeded Job's), else
/// the time `Finished` became true (a Job has no completion time when it fails).
pub fn finished_at(run: &JobRun) -> Option<Timestamp> {
    let status = run.status.as_ref()?;
    status.completion_time.as_ref().map(|t| t.0).or_else(|| {
        condition(run, CONDITION_FINISHED)
            .filter(|c| c.status == "True")
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| t.0)
    })
}

/// kubectl's Job DURATION: start to finish, or to now while it runs.
pub fn duration(run: &JobRun, now: Timestamp) -> String {
    let Some(start) = run.status.as_ref().and_then(|s| s.start_time.as_ref()) else { return String::new() };
    let end = finished_at(run).unwrap_or(now);
    human_duration(end.as_second() - start.0.as_second())
}

/// The columns of `get` (with `-A`, NAMESPACE first; `-o wide` adds JOB and MESSAGE).
pub fn run_headers(all_namespaces: bool, wide: bool) -> Vec<&'static str> {
    let mut headers = vec!["NAME", "TEMPLATE", "STATUS", "REASON", "DURATION", "AGE"];
    if wide {
        headers.extend(["JOB", "MESSAGE"]);
    }
    if all_namespaces {
        headers.insert(0, "NAMESPACE");
    }
    headers
}

/// A row of `get`.
pub fn run_row(run: &JobRun, now: Timestamp, all_namespaces: bool, wide: bool) -> Vec<Cell> {
    let phase = phase(run);
    let mut row: Vec<Cell> = vec![
        run.name_any().into(),
        run.spec.template_ref.clone().into(),
        Cell { text: phase.to_owned(), colour: Colour::of_phase(phase) },
        reason(run).into(),
        duration(run, now).into(),
        age(run.metadata.creation_timestamp.as_ref(), now).into(),
    ];
    if wide {
        let job = run.status.as_ref().and_then(|s| s.job_name.clone()).unwrap_or_default();
        row.extend([job.into(), message(run).into()]);
    }
    if all_namespaces {
        row.insert(0, run.namespace().unwrap_or_default().into());
    }
    row
}

/// The columns of `templates`.
pub const TEMPLATE_HEADERS: [&str; 6] = ["NAME", "VALID", "OVERRIDES", "ENV NAMES", "RULES", "AGE"];

/// A row of `templates`: whether runs can use it, and what they may change.
pub fn template_row(template: &JobTemplate, now: Timestamp) -> Vec<Cell> {
    let valid = template
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == CONDITION_VALID))
        .map(|c| if c.status == "True" { c.status.clone() } else { format!("{} ({})", c.status, c.reason) })
        .unwrap_or_default();
    let policy = template.spec.run_policy.as_ref();
    let overrides = allowed_overrides(template);
    let env_names = policy.and_then(|p| p.env_names.as_ref()).map_or_else(|| "*".to_owned(), |n| n.join(","));
    let rules = policy.and_then(|p| p.validations.as_ref()).map_or(0, Vec::len);
    let valid_colour = match valid.as_str() {
        "True" => Some(Colour::Green),
        "" => None,
        _ => Some(Colour::Red),
    };
    vec![
        template.name_any().into(),
        Cell { text: valid, colour: valid_colour },
        if overrides.is_empty() { "none".to_owned() } else { overrides.join(",") }.into(),
        if overrides.contains(&"env") { env_names } else { String::new() }.into(),
        rules.to_string().into(),
        age(template.metadata.creation_timestamp.as_ref(), now).into(),
    ]
}

/// The pods of a Job, oldest first (by creation, then name).
pub fn oldest_first(pods: &mut [Pod]) {
    pods.sort_by(|a, b| {
        let key = |p: &Pod| (p.metadata.creation_timestamp.as_ref().map(|t| t.0), p.name_any());
        key(a).cmp(&key(b))
    });
}

fn time_text(time: Option<&Time>) -> String {
    time.map_or_else(|| "<none>".to_owned(), |t| t.0.to_string())
}

/// What a person needs to see of a run to know what happened: its phase
/// and conditions, its Job and pods (with why a pod cannot start), its
/// callback, and the Events of the run, its Job and its pods, newest last.
pub fn describe(run: &JobRun, job: Option<&Job>, pods: &[Pod], events: &[Event], now: Timestamp) -> String {
    let mut out = String::new();
    let status = run.status.as_ref();
    let field = |out: &mut String, name: &str, value: &str| {
        let _ = writeln!(out, "{:<14}{}", format!("{name}:"), if value.is_empty() { "<none>" } else { value });
    };
    field(&mut out, "Name", &run.name_any());
    field(&mut out, "Namespace", &run.namespace().unwrap_or_default());
    field(&mut out, "Template", &run.spec.template_ref);
    field(&mut out, "Phase", phase(run));
    field(&mut out, "Reason", &reason(run));
    field(&mut out, "Message", &message(run));
    field(&mut out, "Created", &time_text(run.metadata.creation_timestamp.as_ref()));
    field(&mut out, "Started", &time_text(status.and_then(|s| s.start_time.as_ref())));
    field(&mut out, "Finished", &finished_at(run).map(|t| t.to_string()).unwrap_or_default());
    field(&mut out, "Duration", &duration(run, now));
    if run.spec.cancel == Some(true) {
        field(&mut out, "Cancel", "requested");
    }
    if let Some(of) = run.annotations().get(crate::spec::ANNOTATION_RERUN_OF) {
        field(&mut out, "Rerun of", of);
    }

    out.push_str("Conditions:\n");
    let rows: Vec<Vec<Cell>> = conditions(run)
        .iter()
        .map(|c| {
            vec![
                c.type_.clone().into(),
                c.status.clone().into(),
                c.reason.clone().unwrap_or_default().into(),
                c.message.clone().unwrap_or_default().into(),
            ]
        })
        .collect();
    if rows.is_empty() {
        out.push_str("  <none>\n");
    } else {
        indent(&mut out, &table(&["TYPE", "STATUS", "REASON", "MESSAGE"], &rows, false));
    }

    out.push_str("Job:\n");
    match job {
        None => {
            let name = status.and_then(|s| s.job_name.clone());
            let _ = writeln!(out, "  {}", name.map_or("<none>".to_owned(), |n| format!("{n} (not found)")));
        }
        Some(job) => {
            let js = job.status.clone().unwrap_or_default();
            let spec = job.spec.clone().unwrap_or_default();
            let _ = writeln!(
                out,
                "  {}: completions {}/{}, active {}, failed {}{}",
                job.name_any(),
                js.succeeded.unwrap_or(0),
                spec.completions.unwrap_or(1),
                js.active.unwrap_or(0),
                js.failed.unwrap_or(0),
                if spec.suspend == Some(true) { ", suspended" } else { "" }
            );
        }
    }

    out.push_str("Pods:\n");
    if pods.is_empty() {
        out.push_str("  <none>\n");
    } else {
        let rows: Vec<Vec<Cell>> = pods
            .iter()
            .map(|pod| {
                let phase = pod.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
                let restarts: i32 = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .map_or(0, |c| c.iter().map(|c| c.restart_count).sum());
                let (why, detail) = stall(&[Arc::new(pod.clone())], &[])
                    .map_or((String::new(), String::new()), |s| (s.reason, s.message));
                vec![
                    pod.name_any().into(),
                    Cell { text: phase.clone(), colour: Colour::of_phase(&phase) },
                    restarts.to_string().into(),
                    age(pod.metadata.creation_timestamp.as_ref(), now).into(),
                    why.into(),
                    detail.into(),
                ]
            })
            .collect();
        indent(&mut out, &table(&["NAME", "PHASE", "RESTARTS", "AGE", "STALLED", "MESSAGE"], &rows, false));
    }

    if run.spec.callback_url.is_some() || status.and_then(|s| s.callback.as_ref()).is_some() {
        out.push_str("Callback:\n");
        let cb = status.and_then(|s| s.callback.clone()).unwrap_or_default();
        let delivered = condition(run, CONDITION_CALLBACK_DELIVERED);
        let state = delivered.map_or_else(
            || "pending".to_owned(),
            |c| {
                format!(
                    "{} {}: {}",
                    c.status,
                    c.reason.clone().unwrap_or_default(),
                    c.message.clone().unwrap_or_default()
                )
            },
        );
        let _ = writeln!(out, "  Delivered:    {state}");
        let _ = writeln!(out, "  Attempts:     {}", cb.attempts.unwrap_or(0));
        if let Some(code) = cb.last_status_code {
            let _ = writeln!(out, "  Last status:  {code}");
        }
        if let Some(next) = cb.next_attempt_time.as_ref() {
            let _ = writeln!(out, "  Next attempt: {}", next.0);
        }
    }

    out.push_str("Events:\n");
    let mut events: Vec<&Event> = events.iter().collect();
    events.sort_by_key(|e| event_time(e));
    if events.is_empty() {
        out.push_str("  <none>\n");
    } else {
        let rows: Vec<Vec<Cell>> = events
            .iter()
            .map(|e| {
                let kind = e.involved_object.kind.clone().unwrap_or_default();
                let name = e.involved_object.name.clone().unwrap_or_default();
                vec![
                    event_time(e)
                        .map_or_else(|| "<unknown>".to_owned(), |t| human_duration(now.as_second() - t.as_second()))
                        .into(),
                    e.type_.clone().unwrap_or_default().into(),
                    e.reason.clone().unwrap_or_default().into(),
                    format!("{}/{name}", kind.to_lowercase()).into(),
                    e.message.clone().unwrap_or_default().trim_end().to_owned().into(),
                ]
            })
            .collect();
        indent(&mut out, &table(&["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], &rows, false));
    }
    out
}

/// When an Event last happened (its series, last timestamp, event time, or creation).
fn event_time(event: &Event) -> Option<Timestamp> {
    event
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref().map(|t| t.0))
        .or_else(|| event.last_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

fn indent(out: &mut String, text: &str) {
    for line in text.lines() {
        let _ = writeln!(out, "  {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(yaml: &str) -> JobRun {
        serde_norway::from_str(yaml).expect("a run")
    }

    const NOW: &str = "2026-01-01T00:10:00Z";

    fn now() -> Timestamp {
        NOW.parse().expect("a time")
    }

    fn failed_run() -> JobRun {
        run(r#"
apiVersion: cellbytes.io/v1
kind: JobRun
metadata: {name: bad, namespace: team, creationTimestamp: "2026-01-01T00:00:00Z"}
spec: {templateRef: echo}
status:
  phase: Failed
  jobName: bad
  startTime: "2026-01-01T00:00:01Z"
  completionTime: "2026-01-01T00:03:21Z"
  conditions:
  - {type: Failed, status: "True", reason: BackoffLimitExceeded, message: Job has reached the specified backoff limit}
  - {type: Finished, status: "True", reason: Failed, message: Job has reached the specified backoff limit}
"#)
    }

    #[test]
    fn ages_and_durations_read_as_kubectl_prints_them() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (45, "45s"),
            (119, "119s"),
            (120, "2m"),
            (200, "3m20s"),
            (630, "10m"),
            (900, "15m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (2 * 3600 + 5 * 60 + 7 + 3600, "3h5m"),
            (8 * 3600 + 1800, "8h"),
            (20 * 3600, "20h"),
            (3 * 86400 + 4 * 3600, "3d4h"),
            (48 * 3600, "2d"),
            (7 * 86400, "7d"),
            (8 * 86400 + 3600, "8d"),
            (729 * 86400 + 3600, "729d"),
            (730 * 86400, "2y"),
            (730 * 86400 + 5 * 3600, "2y"),
            (8 * 365 * 86400 + 3 * 86400, "8y"),
            (30 * 86400, "30d"),
            (2 * 365 * 86400 + 3 * 86400, "2y3d"),
            (9 * 365 * 86400, "9y"),
        ];
        for (seconds, shown) in cases {
            assert_eq!(human_duration(seconds), shown, "{seconds} s");
        }
    }

    #[test]
    fn pods_are_ordered_oldest_first_then_by_name() {
        let pod = |name: &str, at: &str| -> Pod {
            serde_norway::from_str(&format!("metadata: {{name: {name}, creationTimestamp: \"{at}\"}}")).expect("a pod")
        };
        let mut pods =
            vec![pod("c", "2026-01-01T00:00:02Z"), pod("b", "2026-01-01T00:00:01Z"), pod("a", "2026-01-01T00:00:02Z")];
        oldest_first(&mut pods);
        let names: Vec<String> = pods.iter().map(ResourceExt::name_any).collect();
        assert_eq!(names, ["b", "a", "c"]);
    }

    #[test]
    fn the_message_is_the_reasons_own_condition_not_an_unrelated_one() {
        let mut bad = failed_run();
        let conditions = bad.status.as_mut().and_then(|s| s.conditions.as_mut()).expect("conditions");
        conditions.insert(
            0,
            JobCondition {
                type_: "JobCreated".into(),
                status: "True".into(),
                reason: Some("Created".into()),
                message: Some("unrelated".into()),
                ..JobCondition::default()
            },
        );
        assert_eq!(message(&bad), "Job has reached the specified backoff limit");
        let mut cancelled = bad.clone();
        let conditions = cancelled.status.as_mut().and_then(|s| s.conditions.as_mut()).expect("conditions");
        conditions.retain(|c| c.type_ != "Failed");
        let finished = conditions.iter_mut().find(|c| c.type_ == "Finished").expect("Finished");
        finished.reason = Some("Cancelled".into());
        finished.message = Some("JobRun cancelled".into());
        assert_eq!(reason(&cancelled), "Cancelled");
        assert_eq!(message(&cancelled), "JobRun cancelled", "Finished's own message when only it has the reason");
    }

    #[test]
    fn a_failed_run_shows_the_failure_reason_not_finished() {
        let bad = failed_run();
        assert_eq!(reason(&bad), "BackoffLimitExceeded");
        assert_eq!(message(&bad), "Job has reached the specified backoff limit");
        let mut own_words = bad.clone();
        let finished = &mut own_words.status.as_mut().and_then(|s| s.conditions.as_mut()).expect("conditions")[1];
        finished.reason = Some("BackoffLimitExceeded".into());
        finished.message = Some("JobRun failed".into());
        assert_eq!(
            message(&own_words),
            "Job has reached the specified backoff limit",
            "the failure's own condition first"
        );
        assert_eq!(duration(&bad, now()), "3m20s");
        let mut no_completion = bad.clone();
        let status = no_completion.status.as_mut().expect("a status");
        status.completion_time = None;
        status.conditions.as_mut().expect("conditions")[1].last_transition_time =
            Some(Time("2026-01-01T00:01:01Z".parse().expect("a time")));
        assert_eq!(duration(&no_completion, now()), "60s", "a failed Job has no completion time: Finished's is used");
        let mut running = no_completion.clone();
        running.status.as_mut().expect("a status").conditions = None;
        assert_eq!(duration(&running, now()), "9m59s", "an unfinished run counts to now");
    }

    #[test]
    fn a_waiting_run_shows_why_it_waits_and_a_succeeded_run_no_reason() {
        let waiting = run(r#"
apiVersion: cellbytes.io/v1
kind: JobRun
metadata: {name: w, namespace: team}
spec: {templateRef: missing}
status:
  phase: Pending
  conditions:
  - {type: TemplateReady, status: "False", reason: TemplateNotFound, message: not there}
"#);
        assert_eq!(reason(&waiting), "TemplateNotFound");
        assert_eq!(message(&waiting), "not there");
        assert_eq!(duration(&waiting, now()), "", "no start, no duration");
        let stalled = run(r#"
apiVersion: cellbytes.io/v1
kind: JobRun
metadata: {name: s, namespace: team}
spec: {templateRef: t}
status:
  phase: Pending
  conditions:
  - {type: Stalled, status: "True", reason: ImagePullBackOff, message: pod p}
  - {type: JobCreated, status: "False", reason: QuotaExceeded}
"#);
        assert_eq!(reason(&stalled), "ImagePullBackOff", "stalled comes first");
        let ok = run("apiVersion: cellbytes.io/v1\nkind: JobRun\nmetadata: {name: ok}\nspec: {templateRef: t}\n\
                      status: {phase: Succeeded, conditions: [{type: Finished, status: 'True', reason: Succeeded}]}\n");
        assert_eq!(reason(&ok), "");
        let mut ok_after_a_stall = ok.clone();
        let stalled_condition = conditions(&stalled)[0].clone();
        ok_after_a_stall
            .status
            .as_mut()
            .and_then(|s| s.conditions.as_mut())
            .expect("conditions")
            .push(stalled_condition);
        assert_eq!(reason(&ok_after_a_stall), "", "a succeeded run has no reason, whatever else it kept");
        let fresh = run("apiVersion: cellbytes.io/v1\nkind: JobRun\nmetadata: {name: new}\nspec: {templateRef: t}\n");
        assert_eq!((phase(&fresh), reason(&fresh)), ("", String::new()));
    }

    #[test]
    fn the_get_table_has_kubectls_layout_and_colours_only_when_asked() {
        let rows = vec![run_row(&failed_run(), now(), false, false)];
        let plain = table(&run_headers(false, false), &rows, false);
        assert_eq!(
            plain,
            concat!(
                "NAME      TEMPLATE   STATUS    REASON                 DURATION   AGE\n",
                "bad       echo       Failed    BackoffLimitExceeded   3m20s      10m\n",
            )
        );
        assert!(!plain.contains('\x1b'));
        let coloured = table(&run_headers(false, false), &rows, true);
        assert!(coloured.contains("\x1b[31mFailed\x1b[0m"), "{coloured}");
        assert_eq!(Colour::of_phase("Succeeded"), Some(Colour::Green));
        assert_eq!(Colour::of_phase("Pending"), Some(Colour::Yellow));
        assert_eq!(Colour::of_phase("Running"), None);
        let wide = table(&run_headers(true, true), &[run_row(&failed_run(), now(), true, true)], false);
        let header = wide.lines().next().expect("a header");
        assert!(header.starts_with("NAMESPACE   NAME"), "{header}");
        assert!(header.ends_with("JOB       MESSAGE"), "{header}");
        assert!(wide.lines().nth(1).expect("a row").starts_with("team        bad"));
    }

    #[test]
    fn describe_shows_conditions_pods_with_their_stall_and_events_newest_last() {
        let pod: Pod = serde_norway::from_str(
            r#"
metadata: {name: bad-abcde, namespace: team, creationTimestamp: "2026-01-01T00:00:01Z"}
status:
  phase: Pending
  containerStatuses:
  - {name: main, image: x, imageID: "", ready: false, restartCount: 0, state: {waiting: {reason: ImagePullBackOff, message: back-off pulling x}}}
"#,
        )
        .expect("a pod");
        let event = |reason: &str, at: &str| -> Event {
            serde_norway::from_str(&format!(
                "metadata: {{name: e-{reason}, namespace: team}}\ninvolvedObject: {{kind: JobRun, name: bad}}\n\
                 reason: {reason}\nmessage: m {reason}\ntype: Normal\nlastTimestamp: \"{at}\"\n"
            ))
            .expect("an event")
        };
        let events = [event("Finished", "2026-01-01T00:03:21Z"), event("JobCreated", "2026-01-01T00:00:01Z")];
        let text = describe(&failed_run(), None, &[pod], &events, now());
        assert!(text.contains("Phase:        Failed"), "{text}");
        assert!(text.contains("Reason:       BackoffLimitExceeded"), "{text}");
        assert!(text.contains("bad (not found)"), "{text}");
        assert!(text.contains("ImagePullBackOff"), "the pod's stall: {text}");
        let created = text.find("JobCreated").expect("JobCreated event");
        let finished = text.find("m Finished").expect("Finished event");
        assert!(created < finished, "newest last: {text}");
        assert!(text.contains("jobrun/bad"), "{text}");
        assert!(text.contains("Created:      2026-01-01T00:00:00Z\n"), "{text}");
        assert!(text.contains("Started:      2026-01-01T00:00:01Z\n"), "{text}");
        assert!(!text.contains("Cancel:") && !text.contains("Callback:"), "{text}");
        let mut cancelled = failed_run();
        cancelled.spec.cancel = Some(true);
        cancelled.spec.callback_url = Some("https://hooks.example.com/x".into());
        let text = describe(&cancelled, None, &[], &[], now());
        assert!(text.contains("Cancel:       requested\n"), "{text}");
        assert!(text.contains("Callback:\n  Delivered:    pending\n"), "a callback not yet tried: {text}");
    }

    #[test]
    fn a_templates_row_lists_the_overrides_its_policy_allows() {
        let template: JobTemplate = serde_norway::from_str(
            r#"
apiVersion: cellbytes.io/v1
kind: JobTemplate
metadata: {name: echo, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  template: {spec: {containers: [{name: main, image: busybox}], restartPolicy: Never}}
runPolicy:
  overrides: [args, env]
  envNames: ["APP_*"]
  validations: [{rule: "true", message: m}]
status:
  conditions: [{type: Valid, status: "True", reason: Valid, message: ok, lastTransitionTime: "2026-01-01T00:00:00Z"}]
"#,
        )
        .expect("a template");
        let cells = template_row(&template, now());
        assert_eq!(cells[1].colour, Some(Colour::Green));
        let row: Vec<String> = cells.into_iter().map(|c| c.text).collect();
        assert_eq!(row, ["echo", "True", "args,env", "APP_*", "1", "10m"]);
        let mut bare = template.clone();
        bare.spec.run_policy = None;
        bare.status = None;
        let cells = template_row(&bare, now());
        assert_eq!(cells[1].colour, None, "no status yet: no colour");
        let row: Vec<String> = cells.into_iter().map(|c| c.text).collect();
        assert_eq!(row, ["echo", "", "command,args", "", "0", "10m"]);
    }
}
