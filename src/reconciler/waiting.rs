//! The unfinished runs of each template, kept beside the runs cache (whose
//! store has no index), so that a template event wakes its runs without a
//! scan of every run: with 10,000 finished runs a template edit costs the
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

/// Unfinished runs by the template they name; cheap to clone (shared).
#[derive(Clone, Default)]
pub struct WaitingRuns {
    inner: Arc<Mutex<Index>>,
}

#[derive(Default)]
struct Index {
    by_template: HashMap<TemplateKey, HashSet<ObjectRef<JobRun>>>,
    /// Built during a re-list (between `Init` and `InitDone`), then swapped
    /// in, so that runs deleted during a watch gap do not linger.
    relisting: Option<HashMap<TemplateKey, HashSet<ObjectRef<JobRun>>>>,
}

impl WaitingRuns {
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
        index.by_template.get(&(namespace, template)).map(|runs| runs.iter().cloned().collect()).unwrap_or_default()
    }
}

fn update(index: &mut HashMap<TemplateKey, HashSet<ObjectRef<JobRun>>>, run: &JobRun, deleted: bool) {
    let key = (run.namespace(), run.spec.template_ref.clone());
    let reference = ObjectRef::from_obj(run);
    if deleted || merge::is_finished(run) {
        if let Some(runs) = index.get_mut(&key) {
            runs.remove(&reference);
            if runs.is_empty() {
                index.remove(&key);
            }
        }
    } else {
        index.entry(key).or_default().insert(reference);
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

    fn names(waiting: &WaitingRuns, template: &str) -> Vec<String> {
        let mut names: Vec<String> =
            waiting.of(Some("ns".into()), template.into()).into_iter().map(|r| r.name).collect();
        names.sort();
        names
    }

    #[test]
    fn a_template_wakes_only_its_own_unfinished_runs() {
        let waiting = WaitingRuns::default();
        waiting.observe(&watcher::Event::Apply(run("a", "t", None)));
        waiting.observe(&watcher::Event::Apply(run("b", "t", Some(Phase::Pending))));
        waiting.observe(&watcher::Event::Apply(run("c", "other", None)));
        waiting.observe(&watcher::Event::Apply(run("d", "t", Some(Phase::Succeeded))));
        assert_eq!(names(&waiting, "t"), ["a", "b"]);
        assert_eq!(names(&waiting, "other"), ["c"]);
        assert!(waiting.of(Some("elsewhere".into()), "t".into()).is_empty(), "namespaces are apart");
    }

    #[test]
    fn a_run_leaves_the_index_when_it_finishes_or_is_deleted() {
        let waiting = WaitingRuns::default();
        waiting.observe(&watcher::Event::Apply(run("a", "t", None)));
        waiting.observe(&watcher::Event::Apply(run("b", "t", None)));
        waiting.observe(&watcher::Event::Apply(run("a", "t", Some(Phase::Failed))));
        waiting.observe(&watcher::Event::Delete(run("b", "t", Some(Phase::Running))));
        assert!(names(&waiting, "t").is_empty());
        assert!(waiting.inner.lock().expect("unpoisoned").by_template.is_empty(), "no empty sets are kept");
    }

    #[test]
    fn a_relist_replaces_the_index_so_runs_deleted_unseen_are_forgotten() {
        let waiting = WaitingRuns::default();
        waiting.observe(&watcher::Event::Apply(run("gone", "t", None)));
        waiting.observe(&watcher::Event::Init);
        waiting.observe(&watcher::Event::InitApply(run("kept", "t", None)));
        assert_eq!(names(&waiting, "t"), ["gone"], "the old index serves until the re-list is done");
        waiting.observe(&watcher::Event::InitDone);
        assert_eq!(names(&waiting, "t"), ["kept"]);
    }
}
