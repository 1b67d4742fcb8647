//! `runPolicy.validations`: CEL rules over a run's spec, as `self`, the way
//! the API server evaluates `x-kubernetes-validations`.
//!
//! The [`cel`](https://crates.io/crates/cel) crate parses and evaluates;
//! it has no cost limit of its own, so each rule's cost is bounded before
//! it runs by a static estimate over its syntax tree ([`estimated_cost`]).
//! Compiled rules are kept in a small process-wide memo keyed by their
//! source: parsing is most of the work, and a template's rules are the same
//! for all of its runs. `matches` compiles each pattern once, the same way.
//! The memos never change a result.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::common::types::{CelBool, CelString};
use cel::{Context, Env, Program, Value};

use crate::crd::{JobRunSpec, Validation};

/// The most a rule may cost, in the units of [`estimated_cost`]: the API
/// server's limit for one CEL expression (`PerCallLimit`).
pub const MAX_RULE_COST: u64 = 1_000_000;
/// How many times a comprehension (`all`, `exists`, `map`, `filter`, …) is
/// taken to loop: the most items of any list of a JobRun's spec (`command`,
/// `args`; `env` and the maps hold fewer).
pub const MAX_LIST_SIZE: u64 = 256;
/// The longest rule source (the CRD says so too).
pub const MAX_RULE_CHARACTERS: usize = 4096;
/// The deepest syntax tree a rule may have. The interpreter evaluates by
/// recursion, so a deeper tree (`1+1+…+1`, `{}.a.a….a`: 2,000 levels fit
/// in 4,096 characters) overflows a 2 MiB stack, a tokio worker's, and
/// aborts the process. The parser itself stops nested parentheses, calls
/// and lists at 96.
pub const MAX_RULE_DEPTH: usize = 100;
/// Stack a level of the tree takes while it is evaluated, at most: about
/// 1.7 KiB measured in a release build, 40 KiB in a debug one.
const STACK_PER_LEVEL: usize = if cfg!(debug_assertions) { 64 * 1024 } else { 4 * 1024 };
/// Stack the rules are evaluated with: where less is left (a debug build),
/// they run on a stack of their own.
const EVALUATION_STACK: usize = MAX_RULE_DEPTH * STACK_PER_LEVEL;
/// Stack the parser runs on (only on a memo miss): its recursion follows
/// the rule's nesting before [`MAX_RULE_DEPTH`] can be checked, and a
/// 4,096-character rule nests about 2,000 levels.
const PARSE_STACK: usize = 64 << 20;
/// Compiled rules kept in the memo, at most; it is emptied when full.
const MEMO_CAPACITY: usize = 1024;

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
    validations.iter().enumerate().try_for_each(|(index, v)| compiled(index, &v.rule).map(|_| ()))
}

/// Evaluates the rules in order against `spec` as `self`: the first that
/// is not `true`.
pub fn evaluate_rules(validations: &[Validation], spec: &JobRunSpec) -> Result<(), RuleFailure> {
    if validations.is_empty() {
        return Ok(());
    }
    let programs = validations
        .iter()
        .enumerate()
        .map(|(index, v)| compiled(index, &v.rule))
        .collect::<Result<Vec<_>, _>>()
        .map_err(RuleFailure::Invalid)?;
    let this = cel::to_value(spec).map_err(|e| RuleFailure::Errored {
        index: 0,
        message: validations[0].message.clone(),
        error: format!("the run's spec cannot be given to CEL: {e}"),
    })?;
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    let mut context = Context::with_env(Arc::clone(ENV.get_or_init(|| Arc::new(environment()))));
    context.add_variable_from_value("self", this);
    stacker::maybe_grow(EVALUATION_STACK, EVALUATION_STACK + (1 << 20), || evaluate(&programs, validations, &context))
}

/// Rule after rule: the first that is not `true`.
fn evaluate(programs: &[Arc<Program>], validations: &[Validation], context: &Context) -> Result<(), RuleFailure> {
    for (index, (program, validation)) in programs.iter().zip(validations).enumerate() {
        match program.execute(context) {
            Ok(Value::Bool(true)) => {}
            Ok(Value::Bool(false)) => {
                return Err(RuleFailure::Failed { index, message: validation.message.clone() });
            }
            Ok(other) => {
                return Err(RuleFailure::Errored {
                    index,
                    message: validation.message.clone(),
                    error: format!("the rule gave a {}, not a bool", other.type_of()),
                });
            }
            Err(error) => {
                return Err(RuleFailure::Errored {
                    index,
                    message: validation.message.clone(),
                    error: one_line(&error.to_string()),
                });
            }
        }
    }
    Ok(())
}

/// CEL's standard library, with `matches` from [`regex_matches`]: the
/// crate's own compiles its pattern on every call, most of a rule's time.
fn environment() -> Env {
    let mut env = Env::stdlib();
    // Each fails only on a second `matches` of the same signature, and the
    // standard library is built without one (no `regex` feature); the
    // tests of `matches` below would fail if it were not registered.
    let member = cel::add_member_overload!(env, fn regex_matches: (CelString, CelString) -> Result<CelBool>, name = "matches", id = "string.matches(string)");
    let global = cel::add_overload!(env, fn regex_matches: (CelString, CelString) -> Result<CelBool>, name = "matches", id = "matches");
    let _ = member.and(global);
    env
}

/// `s.matches(re)`: RE2 syntax, as the API server's CEL, with each pattern
/// compiled once (a bounded process-wide memo, emptied when full).
fn regex_matches(this: &CelString<'_>, re: &CelString<'_>) -> Result<CelBool, cel::ExecutionError> {
    static PATTERNS: OnceLock<Mutex<HashMap<String, Arc<regex::Regex>>>> = OnceLock::new();
    let patterns = PATTERNS.get_or_init(|| Mutex::new(HashMap::new()));
    let pattern = re.inner();
    let cached = patterns.lock().ok().and_then(|p| p.get(pattern).cloned());
    let compiled = match cached {
        Some(compiled) => compiled,
        None => {
            let compiled = Arc::new(regex::Regex::new(pattern).map_err(|err| cel::ExecutionError::FunctionError {
                function: "matches".to_owned(),
                message: format!("'{pattern}' is not a valid regex: {err}"),
            })?);
            if let Ok(mut patterns) = patterns.lock() {
                if patterns.len() >= MEMO_CAPACITY {
                    patterns.clear();
                }
                patterns.insert(pattern.to_owned(), Arc::clone(&compiled));
            }
            compiled
        }
    };
    Ok(CelBool::from(compiled.is_match(this.inner())))
}

/// The compiled program of rule `index`, from the memo or freshly parsed
/// and cost-checked. A rule that does not compile is remembered too: every
/// run of an invalid template asks again.
fn compiled(index: usize, source: &str) -> Result<Arc<Program>, RuleError> {
    type Memo = HashMap<String, Result<Arc<Program>, RuleError>>;
    static MEMO: OnceLock<Mutex<Memo>> = OnceLock::new();
    let memo = MEMO.get_or_init(|| Mutex::new(HashMap::new()));
    let known = memo.lock().ok().and_then(|m| m.get(source).cloned());
    let result = match known {
        Some(result) => result,
        None => {
            let result = stacker::grow(PARSE_STACK, || compile(0, source)).map(Arc::new);
            if let Ok(mut memo) = memo.lock() {
                if memo.len() >= MEMO_CAPACITY {
                    memo.clear();
                }
                memo.insert(source.to_owned(), result.clone());
            }
            result
        }
    };
    result.map_err(|error| match error {
        RuleError::Compile { message, .. } => RuleError::Compile { index, message },
        RuleError::TooCostly { cost, limit, .. } => RuleError::TooCostly { index, cost, limit },
    })
}

fn compile(index: usize, source: &str) -> Result<Program, RuleError> {
    let characters = source.chars().count();
    if characters > MAX_RULE_CHARACTERS {
        return Err(RuleError::Compile {
            index,
            message: format!("{characters} characters, more than the {MAX_RULE_CHARACTERS} a rule may have"),
        });
    }
    let program =
        Program::compile(source).map_err(|e| RuleError::Compile { index, message: one_line(&e.to_string()) })?;
    let depth = depth(program.expression());
    if depth > MAX_RULE_DEPTH {
        return Err(RuleError::Compile {
            index,
            message: format!("nested {depth} levels deep, more than the {MAX_RULE_DEPTH} a rule may have"),
        });
    }
    let cost = estimated_cost(program.expression());
    if cost > MAX_RULE_COST {
        return Err(RuleError::TooCostly { index, cost, limit: MAX_RULE_COST });
    }
    Ok(program)
}

/// An upper bound of the work a rule does, in nodes visited: each node
/// costs 1; a comprehension costs its range, and its loop condition and
/// step [`MAX_LIST_SIZE`] times (so nested comprehensions multiply); a
/// string function (`matches`, `contains`, …) costs as much as a list is
/// long, for the string it scans. Saturating, never overflowing.
pub fn estimated_cost(expression: &IdedExpr) -> u64 {
    let cost = estimated_cost;
    let sum = |items: &mut dyn Iterator<Item = &IdedExpr>| items.map(cost).fold(0u64, u64::saturating_add);
    match &expression.expr {
        Expr::Unspecified | Expr::Ident(_) | Expr::Literal(_) => 1,
        Expr::Select(select) => 1u64.saturating_add(cost(&select.operand)),
        Expr::Call(call) => {
            let scans = matches!(call.func_name.as_str(), "matches" | "contains" | "startsWith" | "endsWith");
            let own = if scans { MAX_LIST_SIZE } else { 1 };
            let target = call.target.as_deref().map_or(0, cost);
            own.saturating_add(target).saturating_add(sum(&mut call.args.iter()))
        }
        Expr::List(list) => 1u64.saturating_add(sum(&mut list.elements.iter())),
        Expr::Map(map) => 1u64.saturating_add(sum(&mut map.entries.iter().flat_map(|e| entry_exprs(&e.expr)))),
        Expr::Struct(s) => 1u64.saturating_add(sum(&mut s.entries.iter().flat_map(|e| entry_exprs(&e.expr)))),
        Expr::Comprehension(c) => {
            let body = cost(&c.loop_cond).saturating_add(cost(&c.loop_step));
            1u64.saturating_add(cost(&c.iter_range))
                .saturating_add(cost(&c.accu_init))
                .saturating_add(cost(&c.result))
                .saturating_add(MAX_LIST_SIZE.saturating_mul(body))
        }
    }
}

/// How many levels deep the tree of `expression` is, found without
/// recursion (any depth the parser gives is safe to measure).
fn depth<'a>(expression: &'a IdedExpr) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(expression, 1usize)];
    while let Some((node, level)) = pending.pop() {
        deepest = deepest.max(level);
        let mut push = |child: &'a IdedExpr| pending.push((child, level + 1));
        match &node.expr {
            Expr::Unspecified | Expr::Ident(_) | Expr::Literal(_) => {}
            Expr::Select(select) => push(&select.operand),
            Expr::Call(call) => call.target.iter().map(|t| &**t).chain(&call.args).for_each(push),
            Expr::List(list) => list.elements.iter().for_each(push),
            Expr::Map(map) => map.entries.iter().flat_map(|e| entry_exprs(&e.expr)).for_each(push),
            Expr::Struct(s) => s.entries.iter().flat_map(|e| entry_exprs(&e.expr)).for_each(push),
            Expr::Comprehension(c) => {
                [&c.iter_range, &c.accu_init, &c.loop_cond, &c.loop_step, &c.result].into_iter().for_each(push)
            }
        }
    }
    deepest
}

fn entry_exprs(entry: &EntryExpr) -> Vec<&IdedExpr> {
    match entry {
        EntryExpr::StructField(field) => vec![&field.value],
        EntryExpr::MapEntry(entry) => vec![&entry.key, &entry.value],
    }
}

/// The first line of `text`, at most 300 characters.
fn one_line(text: &str) -> String {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
    let cut: String = line.chars().take(300).collect();
    if cut.len() < line.len() { format!("{cut}…") } else { cut }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(rule: &str) -> Validation {
        Validation { rule: rule.to_owned(), message: format!("message of {rule}") }
    }

    fn spec(args: Option<&[&str]>) -> JobRunSpec {
        JobRunSpec {
            template_ref: "t".into(),
            args: args.map(|a| a.iter().map(|s| (*s).to_owned()).collect()),
            ..JobRunSpec::default()
        }
    }

    const EXAMPLE: &str = "self.args.size() == 1 && self.args[0].matches('^[a-z0-9-]+$')";

    #[test]
    fn a_true_rule_passes_and_a_false_rule_fails_with_its_message() {
        assert_eq!(evaluate_rules(&[rule("true")], &spec(None)), Ok(()));
        assert_eq!(
            evaluate_rules(&[rule("1 == 2")], &spec(None)),
            Err(RuleFailure::Failed { index: 0, message: "message of 1 == 2".into() })
        );
    }

    #[test]
    fn the_issues_example_admits_one_lower_case_argument_and_nothing_else() {
        assert_eq!(evaluate_rules(&[rule(EXAMPLE)], &spec(Some(&["ok-1"]))), Ok(()));
        for args in [&["Not ok"][..], &["a", "b"], &[]] {
            assert!(
                matches!(
                    evaluate_rules(&[rule(EXAMPLE)], &spec(Some(args))),
                    Err(RuleFailure::Failed { index: 0, .. })
                ),
                "{args:?}"
            );
        }
    }

    #[test]
    fn matches_works_as_a_member_and_as_a_function_and_a_bad_pattern_errors() {
        let run = spec(Some(&["ab"]));
        assert_eq!(evaluate_rules(&[rule("matches(self.args[0], '^a')")], &run), Ok(()));
        assert_eq!(evaluate_rules(&[rule("self.args[0].matches('b$')")], &run), Ok(()));
        assert!(matches!(evaluate_rules(&[rule("self.args[0].matches('^b')")], &run), Err(RuleFailure::Failed { .. })));
        let bad = evaluate_rules(&[rule("self.args[0].matches('(')")], &run);
        assert!(
            matches!(&bad, Err(RuleFailure::Errored { error, .. }) if error.contains("not a valid regex")),
            "{bad:?}"
        );
    }

    #[test]
    fn a_rule_over_a_field_the_run_does_not_set_errors_unless_it_guards_it_with_has() {
        let failure = evaluate_rules(&[rule("self.args.size() == 1")], &spec(None));
        assert!(matches!(failure, Err(RuleFailure::Errored { index: 0, .. })), "{failure:?}");
        assert_eq!(evaluate_rules(&[rule("has(self.args) ? self.args.size() == 1 : true")], &spec(None)), Ok(()));
        assert_eq!(evaluate_rules(&[rule("!has(self.args)")], &spec(None)), Ok(()));
        assert_eq!(evaluate_rules(&[rule("self.templateRef == 't'")], &spec(None)), Ok(()));
    }

    #[test]
    fn a_rule_that_gives_no_bool_errors() {
        let failure = evaluate_rules(&[rule("self.templateRef")], &spec(None));
        assert!(matches!(failure, Err(RuleFailure::Errored { index: 0, .. })), "{failure:?}");
    }

    #[test]
    fn the_first_failing_rule_in_order_is_reported() {
        let rules = [rule("true"), rule("false"), rule("self.nothing")];
        assert_eq!(
            evaluate_rules(&rules, &spec(None)),
            Err(RuleFailure::Failed { index: 1, message: "message of false".into() })
        );
    }

    #[test]
    fn a_rule_that_does_not_parse_is_a_compile_error_with_its_index() {
        let rules = [rule("true"), rule("self.args.size( ==")];
        let error = check_rules(&rules).expect_err("does not compile");
        assert!(
            matches!(&error, RuleError::Compile { index: 1, message } if !message.is_empty() && !message.contains('\n')),
            "{error:?}"
        );
        assert!(matches!(
            evaluate_rules(&rules, &spec(None)),
            Err(RuleFailure::Invalid(RuleError::Compile { index: 1, .. }))
        ));
    }

    #[test]
    fn a_rule_longer_than_4096_characters_is_refused() {
        let long = format!("true{}", " && true".repeat(600));
        assert!(matches!(check_rules(&[rule(&long)]), Err(RuleError::Compile { index: 0, .. })));
    }

    #[test]
    fn two_nested_comprehensions_are_within_the_cost_limit_and_three_are_not() {
        let two = "self.args.all(a, self.args.exists(b, a == b))";
        let three = "self.args.all(a, self.args.all(b, self.args.exists(c, a == b && b == c)))";
        assert_eq!(check_rules(&[rule(two)]), Ok(()));
        assert!(
            matches!(check_rules(&[rule(three)]), Err(RuleError::TooCostly { index: 0, cost, limit: MAX_RULE_COST }) if cost > MAX_RULE_COST)
        );
        assert_eq!(evaluate_rules(&[rule(two)], &spec(Some(&["x", "y"]))), Ok(()));
    }

    #[test]
    fn a_string_scan_costs_as_much_as_a_list_is_long() {
        let program = Program::compile("'a'.matches('a')").expect("compiles");
        assert!(estimated_cost(program.expression()) >= MAX_LIST_SIZE);
        let program = Program::compile("1 + 2").expect("compiles");
        assert!(estimated_cost(program.expression()) < 10);
    }

    #[test]
    fn env_and_the_numbers_reach_the_rules_by_their_json_names() {
        let mut run = spec(None);
        run.env = Some(vec![k8s_openapi::api::core::v1::EnvVar {
            name: "APP_MODE".into(),
            value: Some("x".into()),
            ..Default::default()
        }]);
        run.parallelism = Some(3);
        let rules = [
            rule("self.env.all(e, e.name.startsWith('APP_'))"),
            rule("self.parallelism <= 10"),
            rule("!has(self.backoffLimit)"),
        ];
        assert_eq!(evaluate_rules(&rules, &run), Ok(()));
        run.parallelism = Some(11);
        assert!(matches!(evaluate_rules(&rules, &run), Err(RuleFailure::Failed { index: 1, .. })));
    }

    #[test]
    fn a_rule_nested_deeper_than_the_limit_is_refused_without_overflowing_the_stack() {
        // About 2,000 levels in 4,096 characters: evaluated, either would abort
        // the process with a stack overflow (a 2 MiB stack, release build).
        for deep in [format!("1{}>0", "+1".repeat(2040)), format!("{{}}{}==1", ".a".repeat(2040))] {
            let error = check_rules(&[rule(&deep)]).expect_err("too deep");
            assert!(
                matches!(&error, RuleError::Compile { index: 0, message } if message.contains("levels deep")),
                "{error:?}"
            );
            assert!(matches!(evaluate_rules(&[rule(&deep)], &spec(None)), Err(RuleFailure::Invalid(_))));
        }
    }

    #[test]
    fn a_rule_nested_as_deep_as_the_limit_is_evaluated_on_a_test_threads_stack() {
        // The test thread has 2 MiB, as a tokio worker; a debug build needs
        // about 40 KiB a level, so these run on a stack of their own.
        let n = MAX_RULE_DEPTH - 2;
        let plus = format!("1{}>0", "+1".repeat(n));
        let select = format!("{{}}{}==1", ".a".repeat(n));
        let index = format!("[[1]]{}>0", "[0]".repeat(n - 2));
        for source in [&plus, &select, &index] {
            let program = Program::compile(source).expect("compiles");
            assert!(depth(program.expression()) <= MAX_RULE_DEPTH, "{source}");
        }
        assert_eq!(
            depth(Program::compile(&format!("1{}>0", "+1".repeat(n + 1))).expect("compiles").expression()),
            MAX_RULE_DEPTH + 1
        );
        assert_eq!(evaluate_rules(&[rule(&plus)], &spec(None)), Ok(()));
        assert!(matches!(evaluate_rules(&[rule(&select)], &spec(None)), Err(RuleFailure::Errored { .. })));
        assert!(matches!(evaluate_rules(&[rule(&index)], &spec(None)), Err(RuleFailure::Errored { .. })));
    }
}
