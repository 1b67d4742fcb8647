//! The results: one row per metric, the floor's figure and each operator's
//! figure with its ratio to the floor; Markdown and CSV, and the gate of
//! the quick mode.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::p6::Medians;

/// What a row promises (the targets), checked for each operator.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    None,
    AtMost(f64),
    FloorPlus(f64),
    RatioAtMost(f64),
}

impl Target {
    fn met(self, value: f64, floor: Option<f64>) -> Option<bool> {
        match (self, floor) {
            (Target::None, _) => None,
            (Target::AtMost(max), _) => Some(value <= max),
            (Target::FloorPlus(plus), Some(floor)) => Some(value <= floor + plus),
            (Target::RatioAtMost(ratio), Some(floor)) if floor > 0.0 => Some(value / floor <= ratio),
            _ => None,
        }
    }

    fn describe(self, unit: &str) -> String {
        match self {
            Target::None => String::new(),
            Target::AtMost(max) => format!("≤ {} {unit}", number(max)),
            Target::FloorPlus(plus) => format!("≤ floor + {} {unit}", number(plus)),
            Target::RatioAtMost(ratio) => format!("≤ {}× floor", number(ratio)),
        }
    }
}

/// What fails the quick mode (and `--check`) for a row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gate {
    /// An operator's ratio to the floor above this.
    Ratio(f64),
    /// An operator's value above this (in the row's unit).
    AtMost(f64),
}

#[derive(Debug, Clone)]
pub struct Row {
    pub id: &'static str,
    pub metric: String,
    pub unit: &'static str,
    pub floor: Option<f64>,
    /// Operator label → value.
    pub values: BTreeMap<String, f64>,
    pub target: Target,
    /// In the quick mode: fail when an operator's figure passes it.
    pub gate: Option<Gate>,
}

impl Row {
    pub fn new(id: &'static str, metric: impl Into<String>, unit: &'static str, floor: Option<f64>) -> Self {
        Self { id, metric: metric.into(), unit, floor, values: BTreeMap::new(), target: Target::None, gate: None }
    }

    pub fn target(mut self, target: Target) -> Self {
        self.target = target;
        self
    }

    /// Fail when an operator's ratio to the floor is above `max_ratio`.
    pub fn gate(mut self, max_ratio: f64) -> Self {
        self.gate = Some(Gate::Ratio(max_ratio));
        self
    }

    /// Fail when an operator's value is above `max` (in the row's unit).
    pub fn gate_at_most(mut self, max: f64) -> Self {
        self.gate = Some(Gate::AtMost(max));
        self
    }

    pub fn ratio(&self, label: &str) -> Option<f64> {
        let (value, floor) = (self.values.get(label)?, self.floor?);
        (floor > 0.0).then(|| value / floor)
    }
}

/// Everything one run of the benchmark found.
#[derive(Debug, Default)]
pub struct Report {
    pub title: String,
    pub machine: Vec<(String, String)>,
    /// Operator labels with their commands, in order.
    pub operators: Vec<(String, String)>,
    pub rows: Vec<Row>,
    /// Per operator: API calls per run by verb and resource.
    pub calls: BTreeMap<String, String>,
    pub p6: Medians,
    pub notes: Vec<String>,
    /// Samples for the chart, by series name ("floor", "ours", …).
    pub p1: BTreeMap<String, Vec<f64>>,
    pub p3: BTreeMap<String, Vec<f64>>,
    pub bursts: BTreeMap<String, Vec<f64>>,
}

/// A number with a precision that suits its size, without trailing zeros.
pub fn number(value: f64) -> String {
    let magnitude = value.abs();
    let text = if magnitude >= 100.0 || magnitude == 0.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude >= 0.1 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    };
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_owned() } else { text }
}

impl Report {
    pub fn row(&mut self, row: Row) {
        self.rows.push(row);
    }

    pub fn markdown(&self, chart: Option<&str>) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# {}\n", self.title);
        for (key, value) in &self.machine {
            let _ = writeln!(md, "- **{key}**: {value}");
        }
        let _ = writeln!(md);
        for (label, command) in &self.operators {
            let _ = writeln!(md, "- `{label}`: `{command}`");
        }
        let _ = writeln!(md);
        md.push_str(&self.table());
        if !self.calls.is_empty() {
            let _ = writeln!(md, "\nAPI calls per run over its whole life (P3 runs), by verb and resource:\n");
            let _ = writeln!(md, "- floor: create jobs 1.00, patch jobruns/status 1.00");
            for (label, calls) in &self.calls {
                let _ = writeln!(md, "- {label}: {calls}");
            }
        }
        if let Some(chart) = chart {
            let _ = writeln!(md, "\n![P1 and P3 latency distributions and the burst timeline]({chart})");
        }
        if !self.p6.is_empty() {
            let _ = writeln!(md, "\nP6 per fixture case (criterion median, ns; floor: a clone of the inputs):\n");
            let _ = writeln!(
                md,
                "| Case | render | clone of the template | status | clone of the Job status | decide | clone of the run, Job and template |"
            );
            let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
            for (case, functions) in &self.p6 {
                let cell = |f: &str| functions.get(f).map(|v| format!("{v:.0}")).unwrap_or_else(|| "—".into());
                let _ = writeln!(
                    md,
                    "| {case} | {} | {} | {} | {} | {} | {} |",
                    cell("render"),
                    cell("render-floor"),
                    cell("status"),
                    cell("status-floor"),
                    cell("decide"),
                    cell("decide-floor")
                );
            }
        }
        if !self.notes.is_empty() {
            let _ = writeln!(md);
            for note in &self.notes {
                let _ = writeln!(md, "- {note}");
            }
        }
        md
    }

    /// The main table: metric, floor, each operator (value and ratio), target.
    pub fn table(&self) -> String {
        let mut md = String::new();
        let labels: Vec<&str> = self.operators.iter().map(|(l, _)| l.as_str()).collect();
        let _ = write!(md, "| | Metric | Floor |");
        for label in &labels {
            let _ = write!(md, " {label} |");
        }
        let _ = writeln!(md, " Target |");
        let _ = writeln!(md, "|---|---|---:|{}---|", "---:|".repeat(labels.len()));
        for row in &self.rows {
            let floor = row.floor.map(number).unwrap_or_else(|| "—".into());
            let _ = write!(md, "| {} | {} ({}) | {floor} |", row.id, row.metric, row.unit);
            for label in &labels {
                let cell = match row.values.get(*label) {
                    None => "—".to_owned(),
                    Some(value) => {
                        let mut cell = number(*value);
                        if let Some(ratio) = row.ratio(label) {
                            let _ = write!(cell, " ({}×)", number(ratio));
                        }
                        if row.target.met(*value, row.floor) == Some(false) {
                            cell.push_str(" ✗");
                        }
                        cell
                    }
                };
                let _ = write!(md, " {cell} |");
            }
            let _ = writeln!(md, " {} |", row.target.describe(row.unit));
        }
        md
    }

    pub fn csv(&self) -> String {
        let mut csv = String::from("id,metric,unit,column,value,floor,ratio\n");
        let quote = |text: &str| format!("\"{}\"", text.replace('"', "\"\""));
        for row in &self.rows {
            let floor = row.floor.map(|f| f.to_string()).unwrap_or_default();
            if let Some(value) = row.floor {
                let _ = writeln!(csv, "{},{},{},floor,{value},{floor},1", row.id, quote(&row.metric), row.unit);
            }
            for (label, value) in &row.values {
                let ratio = row.ratio(label).map(|r| r.to_string()).unwrap_or_default();
                let _ = writeln!(csv, "{},{},{},{label},{value},{floor},{ratio}", row.id, quote(&row.metric), row.unit);
            }
        }
        for (case, functions) in &self.p6 {
            for (function, ns) in functions {
                let _ = writeln!(csv, "P6,{},ns,{function},{ns},,", quote(case));
            }
        }
        csv
    }

    /// The rows whose figure passes their gate, as messages.
    pub fn regressions(&self) -> Vec<String> {
        let mut found = Vec::new();
        for row in &self.rows {
            let Some(gate) = row.gate else { continue };
            for (label, value) in &row.values {
                let floor = row.floor.map(number).unwrap_or_else(|| "—".into());
                match gate {
                    Gate::Ratio(gate) => {
                        if let Some(ratio) = row.ratio(label).filter(|r| *r > gate) {
                            found.push(format!(
                                "{} {}: {label} is {} {} = {}× the floor of {floor} (gate {}×)",
                                row.id,
                                row.metric,
                                number(*value),
                                row.unit,
                                number(ratio),
                                number(gate)
                            ));
                        }
                    }
                    Gate::AtMost(max) => {
                        if *value > max {
                            found.push(format!(
                                "{} {}: {label} is {} {} (gate ≤ {} {}; floor {floor})",
                                row.id,
                                row.metric,
                                number(*value),
                                row.unit,
                                number(max),
                                row.unit
                            ));
                        }
                    }
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_targets_and_gates() {
        let mut report = Report { operators: vec![("ours".into(), "x".into())], ..Default::default() };
        report.row(Row::new("P1", "create → Job, median", "ms", Some(10.0)).target(Target::FloorPlus(5.0)).gate(3.0));
        report.rows[0].values.insert("ours".into(), 40.0);
        let table = report.table();
        assert!(table.contains("| P1 | create → Job, median (ms) | 10 | 40 (4×) ✗ | ≤ floor + 5 ms |"), "{table}");
        assert_eq!(report.regressions().len(), 1);
        report.rows[0].values.insert("ours".into(), 12.0);
        assert!(report.regressions().is_empty());
        assert!(report.csv().contains("P1,\"create → Job, median\",ms,ours,12,10,1.2"));
        report.rows[0].values.insert("ours".into(), 30.0);
        assert!(report.regressions().is_empty(), "at the gate passes");
        report.rows[0].values.insert("ours".into(), 31.0);
        assert_eq!(report.regressions(), ["P1 create → Job, median: ours is 31 ms = 3.1× the floor of 10 (gate 3×)"]);
    }

    #[test]
    fn absolute_gate() {
        let mut report = Report::default();
        report.row(Row::new("P5", "writes per run", "calls", Some(2.0)).gate_at_most(9.0));
        report.rows[0].values.insert("ours".into(), 9.0);
        assert!(report.regressions().is_empty(), "at the gate passes");
        report.rows[0].values.insert("ours".into(), 9.1);
        assert_eq!(report.regressions(), ["P5 writes per run: ours is 9.1 calls (gate ≤ 9 calls; floor 2)"]);
    }
}
