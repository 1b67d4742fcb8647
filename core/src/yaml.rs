//! The one YAML dialect of the project: what `render`, `crd` and the
//! fixtures print. `serde_norway` is a maintained fork of the archived
//! `serde_yaml`, with the same output, plus one rule of `kubectl -o yaml`:
//! a string that a YAML 1.1 reader (PyYAML, go-yaml v2) would take for
//! another type is single-quoted.
//!
//! `serde_norway` quotes what its own YAML 1.2 reader would misread (`'True'`,
//! `'1'`, `'0755'`), but prints `2026-01-01T00:00:05Z`, `yes`, `on`, `1:20` and
//! `.5` plain, which YAML 1.1 reads as a datetime, booleans and numbers.
//! [`is_ambiguous`] is the rule; [`to_string`] applies it by printing each
//! such string as a placeholder that `serde_norway` leaves plain, then
//! putting the quoted string in its place.

use std::borrow::Cow;

use serde::Serialize;
use serde_norway::{Mapping, Value};

/// The canonical YAML of an object.
pub fn to_string<T: Serialize>(value: &T) -> Result<String, serde_norway::Error> {
    let mut tree = serde_norway::to_value(value)?;
    let mut texts = Vec::new();
    collect_texts(&tree, &mut texts);
    let marker = unused_marker(&texts);
    let mut quoted = Vec::new();
    tree = mark_ambiguous(tree, &marker, &mut quoted);
    let yaml = serde_norway::to_string(&tree)?;
    Ok(unmark(&yaml, &marker, &quoted))
}

/// True when a YAML 1.1 reader, or a YAML 1.2 core-schema reader, would
/// resolve `text` as a plain scalar to something other than a string: a
/// null, a boolean, an integer, a float, a timestamp, or the `<<` merge and
/// `=` value keys (PyYAML's safe loader refuses both). The forms are those of
/// the YAML 1.1 type repository (yaml.org/type), PyYAML's resolver and the
/// YAML 1.2 core schema, joined.
pub fn is_ambiguous(text: &str) -> bool {
    is_null(text) || is_bool(text) || is_int(text) || is_float(text) || is_timestamp(text) || matches!(text, "<<" | "=")
}

/// `~`, `null`, `Null`, `NULL` and the empty scalar.
fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// YAML 1.1's booleans, in exactly the case forms it accepts.
fn is_bool(text: &str) -> bool {
    matches!(
        text,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
    )
}

/// Base 2 (`0b1010`), 8 (`0755`, YAML 1.2's `0o755`), 10 (`-1_000`), 16
/// (`0x_0A`) and 60 (`1:20`); and any other run of digits with a leading
/// zero (`089`), which a reader may take for an octal.
fn is_int(text: &str) -> bool {
    let digits = unsigned(text);
    let all = |s: &str, allowed: fn(u8) -> bool| !s.is_empty() && s.bytes().all(allowed);
    if let Some(rest) = digits.strip_prefix("0b") {
        return all(rest, |b| matches!(b, b'0' | b'1' | b'_'));
    }
    if let Some(rest) = digits.strip_prefix("0x") {
        return all(rest, |b| b.is_ascii_hexdigit() || b == b'_');
    }
    if let Some(rest) = digits.strip_prefix("0o") {
        return all(rest, |b| matches!(b, b'0'..=b'7'));
    }
    if digits.starts_with(|c: char| c.is_ascii_digit()) && all(digits, |b| b.is_ascii_digit() || b == b'_') {
        return true;
    }
    match digits.split_once(':') {
        Some((head, sexagesimal)) => {
            head.starts_with(|c: char| matches!(c, '1'..='9'))
                && all(head, |b| b.is_ascii_digit() || b == b'_')
                && is_base_60_tail(sexagesimal)
        }
        None => false,
    }
}

/// Base 10 with a dot (`1.5`, `.5`, `1.`, `685_230.15`, `6.8523015e+5`; the
/// type repository's `[-+]?([0-9][0-9_]*)?\.[0-9.]*([eE][-+][0-9]+)?` also
/// takes `.` and `1.2.3`), with an exponent and no dot (YAML 1.2's `1e3`),
/// base 60 (`190:20:30.15`), `.inf` and `.nan` in their three case forms.
fn is_float(text: &str) -> bool {
    let number = unsigned(text);
    if matches!(number, ".inf" | ".Inf" | ".INF") || matches!(text, ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    if let Some((head, tail)) = number.split_once(':') {
        let Some((minutes, fraction)) = tail.rsplit_once('.') else {
            return false;
        };
        return head.starts_with(|c: char| c.is_ascii_digit())
            && head.bytes().all(|b| b.is_ascii_digit() || b == b'_')
            && is_base_60_tail(minutes)
            && fraction.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    }
    let (mantissa, exponent) = match number.find(['e', 'E']) {
        Some(at) => (&number[..at], Some(&number[at + 1..])),
        None => (number, None),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let digits = e.strip_prefix(['-', '+']).unwrap_or(e);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    });
    let integer =
        |s: &str| s.starts_with(|c: char| c.is_ascii_digit()) && s.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, fraction)) => {
            (whole.is_empty() || integer(whole))
                && fraction.bytes().all(|b| b.is_ascii_digit() || b == b'_' || b == b'.')
        }
        None => exponent.is_some() && integer(mantissa),
    };
    exponent_ok && mantissa_ok
}

/// `:` groups of one digit or of two whose first is 0 to 5 (`20:30`).
fn is_base_60_tail(tail: &str) -> bool {
    tail.split(':').all(|group| match group.as_bytes() {
        [digit] => digit.is_ascii_digit(),
        [tens, digit] => matches!(tens, b'0'..=b'5') && digit.is_ascii_digit(),
        _ => false,
    })
}

/// `2002-12-14`, or a date and a time: `2001-12-14t21:59:43.10-05:00`,
/// `2001-12-14 21:59:43.10 -5`, `2026-01-01T00:00:05Z`.
fn is_timestamp(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digits =
        |from: usize, count: usize| bytes.get(from..from + count).is_some_and(|run| run.iter().all(u8::is_ascii_digit));
    if bytes.len() == 10 && digits(0, 4) && bytes[4] == b'-' && digits(5, 2) && bytes[7] == b'-' && digits(8, 2) {
        return true;
    }
    let mut scan = Scan { bytes, at: 0 };
    let date = scan.digits(4, 4) && scan.byte(b'-') && scan.digits(1, 2) && scan.byte(b'-') && scan.digits(1, 2);
    let separator = scan.byte(b'T') || scan.byte(b't') || scan.blanks() > 0;
    let time = scan.digits(1, 2) && scan.byte(b':') && scan.digits(2, 2) && scan.byte(b':') && scan.digits(2, 2);
    if !(date && separator && time) {
        return false;
    }
    if scan.byte(b'.') {
        scan.digits(0, usize::MAX);
    }
    let before_zone = scan.at;
    scan.blanks();
    let zone = scan.byte(b'Z')
        || ((scan.byte(b'-') || scan.byte(b'+')) && scan.digits(1, 2) && (!scan.byte(b':') || scan.digits(2, 2)));
    if !zone {
        scan.at = before_zone;
    }
    scan.at == bytes.len()
}

/// A cursor over a scalar's bytes, for [`is_timestamp`].
struct Scan<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Scan<'_> {
    fn byte(&mut self, expected: u8) -> bool {
        let found = self.bytes.get(self.at) == Some(&expected);
        self.at += usize::from(found);
        found
    }

    /// Consumes `min` to `max` digits; false (and nothing consumed) when fewer than `min`.
    fn digits(&mut self, min: usize, max: usize) -> bool {
        let count = self.bytes[self.at..].iter().take(max).take_while(|b| b.is_ascii_digit()).count();
        if count < min {
            return false;
        }
        self.at += count;
        true
    }

    fn blanks(&mut self) -> usize {
        let count = self.bytes[self.at..].iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
        self.at += count;
        count
    }
}

fn unsigned(text: &str) -> &str {
    text.strip_prefix(['-', '+']).unwrap_or(text)
}

/// Every string of the tree, keys and tags too.
fn collect_texts<'a>(value: &'a Value, texts: &mut Vec<Cow<'a, str>>) {
    match value {
        Value::String(text) => texts.push(Cow::Borrowed(text)),
        Value::Sequence(items) => items.iter().for_each(|item| collect_texts(item, texts)),
        Value::Mapping(mapping) => {
            for (key, item) in mapping {
                collect_texts(key, texts);
                collect_texts(item, texts);
            }
        }
        Value::Tagged(tagged) => {
            texts.push(Cow::Owned(tagged.tag.to_string()));
            collect_texts(&tagged.value, texts);
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// A plain word that no string of the tree contains, so that in the output
/// it can only be a placeholder.
fn unused_marker(texts: &[Cow<'_, str>]) -> String {
    (0u64..)
        .map(|n| format!("jtrYaml11Quote{n}n"))
        .find(|marker| !texts.iter().any(|text| text.contains(marker.as_str())))
        .unwrap_or_default()
}

/// The tree with each ambiguous string replaced by `<marker><index>x`;
/// `quoted` gets the strings, by index.
fn mark_ambiguous(value: Value, marker: &str, quoted: &mut Vec<String>) -> Value {
    match value {
        Value::String(text) if is_ambiguous(&text) => {
            let placeholder = format!("{marker}{}x", quoted.len());
            quoted.push(text);
            Value::String(placeholder)
        }
        Value::Sequence(items) => {
            Value::Sequence(items.into_iter().map(|item| mark_ambiguous(item, marker, quoted)).collect())
        }
        Value::Mapping(mapping) => {
            let mut marked = Mapping::with_capacity(mapping.len());
            for (key, item) in mapping {
                let key = mark_ambiguous(key, marker, quoted);
                marked.insert(key, mark_ambiguous(item, marker, quoted));
            }
            Value::Mapping(marked)
        }
        Value::Tagged(mut tagged) => {
            tagged.value = mark_ambiguous(tagged.value, marker, quoted);
            Value::Tagged(tagged)
        }
        other => other,
    }
}

/// `yaml` with each placeholder replaced by its string, single-quoted.
fn unmark(yaml: &str, marker: &str, quoted: &[String]) -> String {
    let mut out = String::with_capacity(yaml.len() + 2 * quoted.len());
    let mut rest = yaml;
    while let Some(at) = rest.find(marker) {
        out.push_str(&rest[..at]);
        let after = &rest[at + marker.len()..];
        let index_len = after.bytes().take_while(u8::is_ascii_digit).count();
        let text = after[..index_len].parse::<usize>().ok().and_then(|i| quoted.get(i));
        match (text, after.as_bytes().get(index_len)) {
            (Some(text), Some(b'x')) => {
                out.push('\'');
                out.push_str(&text.replace('\'', "''"));
                out.push('\'');
                rest = &after[index_len + 1..];
            }
            _ => {
                out.push_str(marker);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples of the YAML 1.1 type repository (yaml.org/type) and
    /// PyYAML's resolver, by type; each is read as that type, not a string.
    const YAML_1_1_IMPLICIT_TYPES: &[(&str, &[&str])] = &[
        ("null", &["~", "null", "Null", "NULL"]),
        (
            "bool",
            &[
                "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false", "False",
                "FALSE", "on", "On", "ON", "off", "Off", "OFF",
            ],
        ),
        (
            "int",
            &[
                "0b1010_0111_0100_1010_1110",
                "-0b101",
                "02472256",
                "0755",
                "+0755",
                "685230",
                "+685_230",
                "-12",
                "0",
                "0x_0A_74_AE",
                "0xFF",
                "190:20:30",
                "1:20",
                "-1:20",
                "0o755",
                "089",
                "1_",
            ],
        ),
        (
            "float",
            &[
                "6.8523015e+5",
                "685.230_15e+03",
                "685_230.15",
                "190:20:30.15",
                "-.inf",
                "+.Inf",
                ".INF",
                ".nan",
                ".NaN",
                ".NAN",
                "1.5",
                ".5",
                "1.",
                "-0.5",
                "1e3",
                "1E-3",
                "2.5e10",
                ".",
                "1.2.3",
            ],
        ),
        (
            "timestamp",
            &[
                "2001-12-15T02:59:43.1Z",
                "2001-12-14t21:59:43.10-05:00",
                "2001-12-14 21:59:43.10 -5",
                "2001-12-15 2:59:43.10",
                "2002-12-14",
                "2026-01-01T00:00:05Z",
                "2026-01-01T00:00:05.123456Z",
                "2026-1-1T0:00:05+01:00",
                "2026-01-01 00:00:05 Z",
                "2026-01-01T00:00:05 +01",
            ],
        ),
        ("merge and value keys", &["<<", "="]),
    ];

    /// Strings that every YAML reader reads as strings, close to the forms above.
    const PLAIN_STRINGS: &[&str] = &[
        "yEs",
        "Yes please",
        "ok",
        "o",
        "nulls",
        "truthy",
        "0x",
        "0b",
        "0b2",
        "0o8",
        "1e",
        "e3",
        "1e3x",
        "_1",
        "1:60",
        "0:20",
        "1::2",
        "12:30am",
        "inf",
        ".info",
        "-.nan",
        "2026-1-1",
        "2026-01-01T",
        "2026-01-01T00:00",
        "2026-01-01T00:00:05+",
        "2026-01-01T00:00:05+01:",
        "2026-01-01T00:00:05Zulu",
        "2026-01-01x",
        "v1.2.3",
        "busybox:1.36",
        "echo-run",
        "Complete",
        "-",
        "+",
        "a=b",
        "<",
    ];

    #[test]
    fn every_yaml_1_1_implicit_type_form_is_ambiguous() {
        for (kind, forms) in YAML_1_1_IMPLICIT_TYPES {
            for form in *forms {
                assert!(is_ambiguous(form), "{form:?} is a YAML 1.1 {kind} but was taken for a string");
            }
        }
        assert!(is_ambiguous(""), "an empty plain scalar is a null");
    }

    #[test]
    fn strings_near_those_forms_are_not_ambiguous() {
        for text in PLAIN_STRINGS {
            assert!(!is_ambiguous(text), "{text:?} is a string in YAML 1.1 and 1.2, but was taken for another type");
        }
    }

    #[test]
    fn every_ambiguous_string_is_printed_single_quoted_as_a_value_an_item_and_a_key() {
        for (_, forms) in YAML_1_1_IMPLICIT_TYPES {
            for form in *forms {
                let quoted = format!("'{form}'");
                let mapping = std::collections::BTreeMap::from([(form.to_string(), vec![form.to_string()])]);
                let yaml = to_string(&mapping).expect("serializable");
                assert_eq!(yaml, format!("{quoted}:\n- {quoted}\n"), "{form:?}");
                let yaml = to_string(&std::collections::BTreeMap::from([("key", form)])).expect("serializable");
                assert_eq!(yaml, format!("key: {quoted}\n"), "{form:?}");
            }
        }
    }

    #[test]
    fn other_strings_and_non_strings_print_as_serde_norway_prints_them() {
        let value = serde_json::json!({
            "plain": PLAIN_STRINGS,
            "number": 1,
            "float": 1.5,
            "bool": true,
            "null": null,
            "empty": "",
            "multi": "line one\nline two\n",
            "quote": "it's",
            "spaces": " padded ",
        });
        assert_eq!(to_string(&value).expect("serializable"), serde_norway::to_string(&value).expect("serializable"));
    }

    #[test]
    fn a_string_that_looks_like_the_placeholder_is_printed_as_it_is() {
        let value = serde_json::json!(["jtrYaml11Quote0n0x", "yes", "jtrYaml11Quote1n", "on"]);
        let yaml = to_string(&value).expect("serializable");
        assert_eq!(yaml, "- jtrYaml11Quote0n0x\n- 'yes'\n- jtrYaml11Quote1n\n- 'on'\n");
    }

    #[test]
    fn base_60_floats_take_underscores_in_each_part_and_one_digit_groups_but_need_a_leading_digit() {
        for float in ["1_0:20.5", "1:20.1_5", "1:5.0", "190:20:30.15"] {
            assert!(is_float(float), "{float} is a base 60 float");
        }
        for not in ["_1:20.5", "1:60.5", "1:20"] {
            assert!(!is_float(not), "{not} is no base 60 float");
        }
    }

    #[test]
    fn a_date_and_a_time_need_a_separator_between_them() {
        assert!(is_timestamp("2001-12-14 21:59:43"));
        assert!(!is_timestamp("2001-12-1421:59:43"));
    }

    #[test]
    fn a_string_that_looks_like_a_placeholder_is_left_alone() {
        // The marker is a word no string of the tree contains; a fixed
        // one would take this string for a placeholder and quote "yes" there.
        let value = serde_json::json!({ "a": "yes", "b": "xyzzy0x", "c": "jtrYaml11Quote0n0x" });
        let yaml = to_string(&value).expect("serializes");
        assert_eq!(yaml, "a: 'yes'\nb: xyzzy0x\nc: jtrYaml11Quote0n0x\n");
    }
}
