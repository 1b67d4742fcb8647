//! `runPolicy.validations`: CEL rules over a run's spec, as `self`.
//!
//! PLACEHOLDER: the interface only; the implementation (the `cel` crate,
//! a static cost bound per rule) comes with its tests.

use crate::crd::{JobRunSpec, Validation};

/// A rule of a template that cannot be used: the template is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("runPolicy.validations[{index}].rule does not compile: {message}")]
    Compile { index: usize, message: String },
    #[error("runPolicy.validations[{index}].rule has an estimated cost of {cost}, beyond the limit of {limit}")]
    TooCostly { index: usize, cost: u64, limit: u64 },
}

/// Why a run does not pass its template's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleFailure {
    /// A rule cannot be used (the template is invalid).
    Invalid(RuleError),
    /// Rule `index` evaluated to something other than `true`; `message` is its message.
    Failed { index: usize, message: String },
    /// Rule `index` could not be evaluated against the run (`error`, e.g. a
    /// field the run does not set); `message` is the rule's message.
    Errored { index: usize, message: String, error: String },
}

/// Compiles every rule: the first that does not compile, or costs too much.
pub fn check_rules(validations: &[Validation]) -> Result<(), RuleError> {
    let _ = validations;
    Ok(())
}

/// Evaluates the rules in order against `spec` as `self`: the first that
/// is not `true`.
pub fn evaluate_rules(validations: &[Validation], spec: &JobRunSpec) -> Result<(), RuleFailure> {
    let _ = (validations, spec);
    Ok(())
}
