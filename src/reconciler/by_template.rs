//! The runs of each template, unfinished and finished apart, kept beside
//! the runs cache (whose store has no index): a template event wakes its
//! unfinished runs, and a finished run reads its template's history, without
//! a scan of every run. With 10,000 finished runs a template edit costs the
//! runs of that template, not 10,000 comparisons.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use crate::crd::JobRun;
use crate::merge;

/// A template's key: its namespace and name.
type TemplateKey = (Option<String>, String);

/// Runs by the template they name; cheap to clone (shared).
#[derive(Clone, Default)]
pub struct RunsByTemplate {
    inner: Arc<Mutex<Index>>,
}

#[derive(Default)]
struct Index {
    by_template: HashMap<TemplateKey, Runs>,
    /// Built during a re-list (between `Init` and `InitDone`), then swapped
    /// in, so that runs deleted during a watch gap do not linger.
    relisting: Option<HashMap<TemplateKey, Runs>>,
}

/// One template's runs.
#[derive(Default)]
struct Runs {
    unfinished: HashSet<ObjectRef<JobRun>>,
    finished: HashSet<ObjectRef<JobRun>>,
}

impl RunsByTemplate {
    /// Follows one event of the runs watch.
    pub fn observe(&self, event: &watcher::Event<JobRun>) {
        let mut index = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match event {
            watcher::Event::Init => index.relisting = Some(HashMap::new()),
            watcher::Event::InitApply(run) => {
                if let Some(relisting) = index.relisting.as_mut() {
                    update(relisting, run, false);
                }
            }
            watcher::Event::InitDone => {
                if let Some(relisted) = index.relisting.take() {
                    index.by_template = relisted;
                }
            }
            watcher::Event::Apply(run) => update(&mut index.by_template, run, false),
            watcher::Event::Delete(run) => update(&mut index.by_template, run, true),
        }
    }

    /// The unfinished runs that name `template` in `namespace`.
    pub fn of(&self, namespace: Option<String>, template: String) -> Vec<ObjectRef<JobRun>> {
        let index = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let runs = index.by_template.get(&(namespace, template));
        runs.map(|runs| runs.unfinished.iter().cloned().collect()).unwrap_or_default()
    }

    /// The finished runs that name `template` in `namespace`.
    pub fn finished_of(&self, namespace: Option<String>, template: String) -> Vec<ObjectRef<JobRun>> {
        let index = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let runs = index.by_template.get(&(namespace, template));
        runs.map(|runs| runs.finished.iter().cloned().collect()).unwrap_or_default()
    }
}

fn update(index: &mut HashMap<TemplateKey, Runs>, run: &JobRun, deleted: bool) {
    let key = (run.namespace(), run.spec.template_ref.clone());
    let reference = ObjectRef::from_obj(run);
    let runs = index.entry(key.clone()).or_default();
    runs.unfinished.remove(&reference);
    runs.finished.remove(&reference);
    if !deleted {
        let set = if merge::is_finished(run) { &mut runs.finished } else { &mut runs.unfinished };
        set.insert(reference);
    }
    if runs.unfinished.is_empty() && runs.finished.is_empty() {
        index.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{JobRunSpec, JobRunStatus, Phase};

    fn run(name: &str, template: &str, phase: Option<Phase>) -> JobRun {
        let mut run = JobRun::new(name, JobRunSpec { template_ref: template.into(), ..JobRunSpec::default() });
        run.metadata.namespace = Some("ns".into());
        run.status = phase.map(|phase| JobRunStatus { phase: Some(phase), ..JobRunStatus::default() });
        run
    }

    fn names(waiting: &RunsByTemplate, template: &str) -> Vec<String> {
        let mut names: Vec<String> =
            waiting.of(Some("ns".into()), template.into()).into_iter().map(|r| r.name).collect();
        names.sort();
        names
    }

    #[test]
    fn a_template_wakes_only_its_own_unfinished_runs() {
        let waiting = RunsByTemplate::default();
        waiting.observe(&watcher::Event::Apply(run("a", "t", None)));
        waiting.observe(&watcher::Event::Apply(run("b", "t", Some(Phase::Pending))));
        waiting.observe(&watcher::Event::Apply(run("c", "other", None)));
        waiting.observe(&watcher::Event::Apply(run("d", "t", Some(Phase::Succeeded))));
        assert_eq!(names(&waiting, "t"), ["a", "b"]);
        assert_eq!(names(&waiting, "other"), ["c"]);
        assert!(waiting.of(Some("elsewhere".into()), "t".into()).is_empty(), "namespaces are apart");
    }

    #[test]
    fn a_run_moves_to_the_history_when_it_finishes_and_leaves_the_index_when_deleted() {
        let waiting = RunsByTemplate::default();
        waiting.observe(&watcher::Event::Apply(run("a", "t", None)));
        waiting.observe(&watcher::Event::Apply(run("b", "t", None)));
        waiting.observe(&watcher::Event::Apply(run("a", "t", Some(Phase::Failed))));
        waiting.observe(&watcher::Event::Delete(run("b", "t", Some(Phase::Running))));
        assert!(names(&waiting, "t").is_empty());
        let finished: Vec<String> =
            waiting.finished_of(Some("ns".into()), "t".into()).into_iter().map(|r| r.name).collect();
        assert_eq!(finished, ["a"]);
        waiting.observe(&watcher::Event::Delete(run("a", "t", Some(Phase::Failed))));
        assert!(waiting.inner.lock().expect("unpoisoned").by_template.is_empty(), "no empty sets are kept");
    }

    #[test]
    fn a_relist_replaces_the_index_so_runs_deleted_unseen_are_forgotten() {
        let waiting = RunsByTemplate::default();
        waiting.observe(&watcher::Event::Apply(run("gone", "t", None)));
        waiting.observe(&watcher::Event::Init);
        waiting.observe(&watcher::Event::InitApply(run("kept", "t", None)));
        assert_eq!(names(&waiting, "t"), ["gone"], "the old index serves until the re-list is done");
        waiting.observe(&watcher::Event::InitDone);
        assert_eq!(names(&waiting, "t"), ["kept"]);
    }
}
