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
    // API names are ASCII (DNS-1123), but `render` also reads files: cut on
    // characters, and end on an alphanumeric as a label value must.
    let prefix: String = name.chars().take(keep).collect();
    let prefix = prefix.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    format!("{prefix}-{}", &hash[..HASH_LENGTH])
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
    fn a_long_name_with_multibyte_characters_is_cut_without_panicking() {
        let safe = label_safe(&"é".repeat(70));
        assert!(safe.ends_with(|c: char| c.is_ascii_hexdigit()));
    }

    #[test]
    fn a_cut_never_leaves_a_dash_or_dot_before_the_hash() {
        let long = format!("{}.-{}", "z".repeat(50), "q".repeat(20));
        let safe = label_safe(&long);
        assert!(safe.starts_with(&format!("{}-", "z".repeat(50))));
        assert!(!safe.contains(".-"));
    }
}
