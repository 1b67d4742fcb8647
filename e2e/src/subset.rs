//! Subset matching, as chainsaw and kuttl assert: every field of `expected`
//! must be in `actual` with the same value; maps may have more keys (fields
//! the API server defaults); lists must have the same length and match
//! position by position.

use serde_json::Value;

/// The paths where `actual` does not contain `expected`, with the values.
pub fn mismatches(expected: &Value, actual: &Value, wildcard: &dyn Fn(&Value) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    walk(expected, actual, wildcard, false, "", &mut out);
    out
}

/// Like [`mismatches`], but `actual` may have no field that `expected`
/// lacks: an exact comparison where only `wildcard` values stand for
/// what the server sets (timestamps).
pub fn differences(expected: &Value, actual: &Value, wildcard: &dyn Fn(&Value) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    walk(expected, actual, wildcard, true, "", &mut out);
    out
}

fn walk(
    expected: &Value,
    actual: &Value,
    wildcard: &dyn Fn(&Value) -> bool,
    exact: bool,
    path: &str,
    out: &mut Vec<String>,
) {
    if wildcard(expected) && !actual.is_null() {
        return;
    }
    match (expected, actual) {
        (Value::Object(want), Value::Object(have)) => {
            for (key, value) in want {
                let here = format!("{path}.{key}");
                match have.get(key) {
                    Some(found) => walk(value, found, wildcard, exact, &here, out),
                    None => out.push(format!("{here}: missing, expected {value}")),
                }
            }
            if exact {
                for (key, value) in have.iter().filter(|(key, _)| !want.contains_key(*key)) {
                    out.push(format!("{path}.{key}: not expected, found {value}"));
                }
            }
        }
        (Value::Array(want), Value::Array(have)) => {
            if want.len() != have.len() {
                out.push(format!("{path}: expected {} items, found {}: {actual}", want.len(), have.len()));
                return;
            }
            for (index, (value, found)) in want.iter().zip(have).enumerate() {
                walk(value, found, wildcard, exact, &format!("{path}[{index}]"), out);
            }
        }
        _ if expected == actual => {}
        _ => out.push(format!("{path}: expected {expected}, found {actual}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn none(_: &Value) -> bool {
        false
    }

    #[test]
    fn extra_fields_in_maps_are_ignored() {
        let expected = json!({"spec": {"backoffLimit": 6}});
        let actual = json!({"spec": {"backoffLimit": 6, "completions": 1}, "status": {}});
        assert!(mismatches(&expected, &actual, &none).is_empty());
    }

    #[test]
    fn lists_match_position_by_position_and_length() {
        let expected = json!({"args": ["a", "b"]});
        assert_eq!(
            mismatches(&expected, &json!({"args": ["a", "c"]}), &none),
            [".args[1]: expected \"b\", found \"c\""]
        );
        assert_eq!(mismatches(&expected, &json!({"args": ["a"]}), &none).len(), 1);
    }

    #[test]
    fn an_exact_comparison_reports_an_extra_field() {
        let expected = json!({"phase": "Succeeded"});
        let actual = json!({"phase": "Succeeded", "error": "JobLost"});
        assert!(mismatches(&expected, &actual, &none).is_empty());
        assert_eq!(differences(&expected, &actual, &none), [".error: not expected, found \"JobLost\""]);
    }

    #[test]
    fn a_missing_field_is_reported_with_its_path() {
        let found = mismatches(&json!({"metadata": {"labels": {"a": "1"}}}), &json!({"metadata": {}}), &none);
        assert_eq!(found, [".metadata.labels: missing, expected {\"a\":\"1\"}"]);
    }

    #[test]
    fn a_wildcard_value_matches_anything_present() {
        let wildcard = |v: &Value| v == "ANY";
        assert!(mismatches(&json!({"t": "ANY"}), &json!({"t": "2026"}), &wildcard).is_empty());
        assert_eq!(mismatches(&json!({"t": "ANY"}), &json!({}), &wildcard).len(), 1);
    }
}
