//! P6: the criterion results of `benches/merge.rs` (render, status, decide
//! and admit per fixture case, and their floors: a clone of the inputs), read
//! from criterion's output folder.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// Median time in ns, by case, then by function (`render`, `render-floor`,
/// `status`, `status-floor`, `decide`, `decide-floor`, `admit`,
/// `admit-floor`; and the group `policy-with-three-rules`).
pub type Medians = BTreeMap<String, BTreeMap<String, f64>>;

#[derive(Deserialize)]
struct Benchmark {
    group_id: String,
    function_id: Option<String>,
}

#[derive(Deserialize)]
struct Estimates {
    median: Estimate,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
}

/// Reads every `<group>/<function>/new/{benchmark,estimates}.json` under
/// `dir`; unreadable entries are skipped.
pub fn read(dir: &Path) -> Medians {
    let mut medians = Medians::new();
    let read_json = |path: &Path| std::fs::read_to_string(path).ok();
    for group in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for function in std::fs::read_dir(group.path()).into_iter().flatten().flatten() {
            let new = function.path().join("new");
            let benchmark =
                read_json(&new.join("benchmark.json")).and_then(|text| serde_json::from_str::<Benchmark>(&text).ok());
            let estimates =
                read_json(&new.join("estimates.json")).and_then(|text| serde_json::from_str::<Estimates>(&text).ok());
            if let (Some(benchmark), Some(estimates)) = (benchmark, estimates) {
                let function = benchmark.function_id.unwrap_or_default();
                medians.entry(benchmark.group_id).or_default().insert(function, estimates.median.point_estimate);
            }
        }
    }
    medians
}
