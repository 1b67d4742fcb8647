//! Names and label values that must fit in 63 characters.

use sha2::{Digest, Sha256};

/// The longest label value, and so the longest Job name: the Job controller
/// copies the Job's name into the `job-name` label of its pods.
pub const MAX_NAME_LENGTH: usize = 63;

/// Hex digits of the hash that makes a cut name unique (40 bits).
const HASH_LENGTH: usize = 10;

/// `name` unchanged when it fits in a label value; otherwise its first
/// characters, a dash and a short hash of the whole name. The hash is stable,
/// so the same name always maps to the same value, and two long names that
/// share their first 52 characters still get different values.
pub fn label_safe(name: &str) -> String {
    if name.len() <= MAX_NAME_LENGTH {
        return name.to_owned();
    }
    let digest = Sha256::digest(name.as_bytes());
    let hash: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    let keep = MAX_NAME_LENGTH - HASH_LENGTH - 1;
    // A label value must end in an alphanumeric. `render` only passes DNS-1123
    // names (ASCII), so the byte cut is a character cut.
    let prefix = name.get(..keep).unwrap_or(name).trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    format!("{prefix}-{}", &hash[..HASH_LENGTH])
}

/// True for a DNS-1123 subdomain, the form of every Kubernetes object name:
/// lowercase alphanumerics, `-` and `.`, starting and ending alphanumeric,
/// at most 253 characters.
pub fn is_dns_subdomain(name: &str) -> bool {
    let alphanumeric = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && alphanumeric(name.chars().next())
        && alphanumeric(name.chars().last())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_that_fits_is_kept() {
        assert_eq!(label_safe("echo-hello"), "echo-hello");
        let exact = "a".repeat(63);
        assert_eq!(label_safe(&exact), exact);
    }

    #[test]
    fn a_long_name_is_cut_to_63_characters_with_a_hash() {
        let long = format!("{}-tail", "x".repeat(70));
        let safe = label_safe(&long);
        assert_eq!(safe.len(), 63);
        assert!(safe.starts_with(&"x".repeat(52)));
        assert_eq!(safe, label_safe(&long), "stable");
    }

    #[test]
    fn two_long_names_with_the_same_start_differ() {
        let base = "y".repeat(60);
        assert_ne!(label_safe(&format!("{base}-one")), label_safe(&format!("{base}-two")));
    }

    #[test]
    fn a_cut_never_leaves_a_dash_or_dot_before_the_hash() {
        let long = format!("{}.-{}", "z".repeat(50), "q".repeat(20));
        let safe = label_safe(&long);
        assert!(safe.starts_with(&format!("{}-", "z".repeat(50))));
        assert!(!safe.contains(".-"));
    }
}

#[cfg(test)]
mod dns_tests {
    use super::is_dns_subdomain;

    #[test]
    fn object_names_are_lowercase_dns_subdomains() {
        assert!(is_dns_subdomain("echo-run.v2"));
        for bad in ["", "My_Run", "-run", "run-", "é", &"a".repeat(254)] {
            assert!(!is_dns_subdomain(bad), "{bad:?}");
        }
    }
}
