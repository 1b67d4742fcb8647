//! The groups of `docs/merge-semantics.md`, and the ordered rules that put
//! each fixture in one of them from its folder name and its files, so that a
//! new fixture needs no list to be edited: the first rule it meets decides,
//! and a fixture that meets none goes to [`Topic::Other`].

use std::collections::BTreeSet;

use crate::case::FILES;

/// A group of the page, in the page's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Topic {
    NamesAndLabels,
    Overrides,
    Policy,
    OwnershipAndFinalizer,
    StatusMirroring,
    WaitingAndFailures,
    StalledRuns,
    Cancel,
    Callbacks,
    Retention,
    Other,
}

impl Topic {
    /// Every group, in the page's order.
    pub const ALL: [Topic; 11] = [
        Topic::NamesAndLabels,
        Topic::Overrides,
        Topic::Policy,
        Topic::OwnershipAndFinalizer,
        Topic::StatusMirroring,
        Topic::WaitingAndFailures,
        Topic::StalledRuns,
        Topic::Cancel,
        Topic::Callbacks,
        Topic::Retention,
        Topic::Other,
    ];

    /// The group's heading.
    pub fn title(self) -> &'static str {
        match self {
            Topic::NamesAndLabels => "Names and labels",
            Topic::Overrides => "Overrides",
            Topic::Policy => "Policy",
            Topic::OwnershipAndFinalizer => "Ownership and finalizer",
            Topic::StatusMirroring => "Status mirroring",
            Topic::WaitingAndFailures => "Waiting and failures",
            Topic::StalledRuns => "Stalled runs",
            Topic::Cancel => "Cancel",
            Topic::Callbacks => "Callbacks",
            Topic::Retention => "Retention",
            Topic::Other => "Other rules",
        }
    }

    /// What the group's rules are about, in a sentence.
    pub fn summary(self) -> &'static str {
        match self {
            Topic::NamesAndLabels => {
                "The Job's name, and the labels and annotations on the Job and its pods: the operator's, the template's, the run's."
            }
            Topic::Overrides => {
                "What a run's spec changes in the template's Job, and everything it leaves as the template has it."
            }
            Topic::Policy => {
                "The template's `runPolicy`: which overrides a run may set, and the CEL rules it must pass."
            }
            Topic::OwnershipAndFinalizer => {
                "Whose Job it is: the controller reference, a Job of the same name that already exists, and the operator's finalizer."
            }
            Topic::StatusMirroring => "The Job's status, as the run's status shows it.",
            Topic::WaitingAndFailures => {
                "What a run waits for (its template, the API server), and the failures that end it without, or after, a Job."
            }
            Topic::StalledRuns => {
                "Pods that cannot start: the run's `Stalled` condition, and the template's deadline for it."
            }
            Topic::Cancel => "`spec.cancel`: the Job suspended, the run ending `Cancelled` with the Job's last counts.",
            Topic::Callbacks => "The notification of `spec.callbackUrl` once the run has finished.",
            Topic::Retention => "When finished runs are deleted: their TTL and the template's history limits.",
            Topic::Other => {
                "The fixtures that none of the rules of [How the cases are grouped](#how-the-cases-are-grouped) places."
            }
        }
    }
}

/// One grouping rule: a fixture that has one of `files`, or whose folder
/// name has one of `words`, goes to `topic`. A word matches whole words of
/// the name (`job-of` matches `a-job-of-a-run`, not `a-job-off`); a word
/// ending in `*` matches any word it begins (`cancel*`: `cancelled`).
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub topic: Topic,
    pub files: &'static [&'static str],
    pub words: &'static [&'static str],
}

/// The grouping rules, tried in this order; the first that matches decides.
pub const RULES: &[Rule] = &[
    Rule { topic: Topic::Cancel, files: &[], words: &["cancel*"] },
    Rule { topic: Topic::WaitingAndFailures, files: &[FILES.api_error], words: &[] },
    Rule {
        topic: Topic::Retention,
        files: &[FILES.other_runs],
        words: &["history-limit", "runs-ttl", "templates-ttl", "is-deleted"],
    },
    Rule { topic: Topic::Callbacks, files: &[FILES.callback_answers, FILES.secret], words: &["callback*", "notified"] },
    Rule { topic: Topic::StalledRuns, files: &[FILES.events], words: &["stall*"] },
    Rule { topic: Topic::NamesAndLabels, files: &[], words: &["label", "labels", "run-name", "named"] },
    Rule {
        topic: Topic::OwnershipAndFinalizer,
        files: &[],
        words: &["finalizer", "owner", "adopted", "conflict", "job-of", "being-deleted"],
    },
    Rule { topic: Topic::Overrides, files: &[], words: &["pass-through", "passes-through"] },
    Rule { topic: Topic::Policy, files: &[], words: &["policy", "policys", "rule", "rules", "env-names"] },
    Rule {
        topic: Topic::Overrides,
        files: &[],
        words: &["override", "overrides", "overridden", "replace", "replaces", "clears", "merge"],
    },
    Rule {
        topic: Topic::WaitingAndFailures,
        files: &[],
        words: &[
            "wait", "waits", "waiting", "waited", "missing", "rejects", "rejected", "quota", "lost", "vanished",
            "invalid",
        ],
    },
    Rule {
        topic: Topic::StatusMirroring,
        files: &[],
        words: &["makes", "terminal", "mirrored", "status", "suspended", "outcome", "deadline", "finished"],
    },
];

impl Rule {
    fn matches(&self, name: &str, files: &BTreeSet<String>) -> bool {
        self.files.iter().any(|file| files.contains(*file)) || self.words.iter().any(|word| has_word(name, word))
    }
}

/// The group of the fixture named `name` with these files.
pub fn topic_of(name: &str, files: &BTreeSet<String>) -> Topic {
    RULES.iter().find(|rule| rule.matches(name, files)).map_or(Topic::Other, |rule| rule.topic)
}

fn has_word(name: &str, word: &str) -> bool {
    let name = format!("-{name}-");
    match word.strip_suffix('*') {
        Some(prefix) => name.contains(&format!("-{prefix}")),
        None => name.contains(&format!("-{word}-")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|name| (*name).to_string()).collect()
    }

    #[test]
    fn a_file_of_the_case_places_it_whatever_its_name() {
        let with_answers = files(&["run.yaml", "callback-answers.yaml"]);
        assert_eq!(topic_of("something-unheard-of", &with_answers), Topic::Callbacks);
        let with_error = files(&["run.yaml", "api-error.yaml"]);
        assert_eq!(topic_of("an-admission-policy-that-denies-the-job", &with_error), Topic::WaitingAndFailures);
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let run = files(&["run.yaml"]);
        // `policy` is a word of both, but passing through comes first.
        assert_eq!(topic_of("pod-failure-policy-passes-through-unchanged", &run), Topic::Overrides);
        assert_eq!(topic_of("an-override-outside-the-policy-fails", &run), Topic::Policy);
        assert_eq!(topic_of("a-job-that-finished-before-its-run-was-cancelled", &run), Topic::Cancel);
    }

    #[test]
    fn words_match_whole_words_or_declared_prefixes() {
        assert!(has_word("a-job-of-a-run", "job-of"));
        assert!(!has_word("a-job-off", "job-of"));
        assert!(has_word("a-cancelled-run", "cancel*"));
        assert!(!has_word("an-uncancelled-run", "cancel*"));
    }

    #[test]
    fn a_fixture_that_no_rule_places_goes_to_other_rules() {
        assert_eq!(topic_of("something-unheard-of", &files(&["run.yaml"])), Topic::Other);
    }

    #[test]
    fn every_topic_of_a_rule_is_on_the_page() {
        for rule in RULES {
            assert!(Topic::ALL.contains(&rule.topic));
        }
        assert_eq!(Topic::ALL.last(), Some(&Topic::Other));
    }
}
