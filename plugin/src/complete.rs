//! Completion for kubectl's plugin hook: `kubectl jobrun <TAB>` makes
//! kubectl run `kubectl_complete-jobrun <words…> <partial word>`, and reads
//! cobra's format back: one candidate per line, then `:<directive>`.

/// What the word under the cursor names.
#[derive(Debug, PartialEq, Eq)]
pub enum Wanted {
    Subcommands,
    Runs,
    Templates,
    Shells,
    Namespaces,
    Contexts,
    Nothing,
}

/// The subcommands, as offered.
pub const SUBCOMMANDS: [&str; 9] =
    ["create", "get", "describe", "logs", "wait", "cancel", "rerun", "templates", "completion"];

/// Flags that take a value as the next word (their value is not a positional).
const FLAGS_WITH_VALUES: [&str; 23] = [
    "-n",
    "--namespace",
    "--context",
    "--kubeconfig",
    "-o",
    "--output",
    "-e",
    "--env",
    "--container",
    "-c",
    "--request",
    "--limit",
    "-l",
    "--label",
    "--annotation",
    "--timeout",
    "--generate-name",
    "--active-deadline-seconds",
    "--backoff-limit",
    "--parallelism",
    "--completions",
    "--ttl-seconds-after-finished",
    "--selector",
];

/// cobra's `ShellCompDirectiveNoFileComp`: offer no file names.
pub const NO_FILE_COMPLETION: u8 = 4;

/// What to offer for the last of `words` (the partial word, maybe empty).
pub fn wanted(words: &[String]) -> Wanted {
    let Some((_partial, before)) = words.split_last() else { return Wanted::Subcommands };
    match before.last().map(String::as_str) {
        Some("-n" | "--namespace") => return Wanted::Namespaces,
        Some("--context") => return Wanted::Contexts,
        Some(flag) if FLAGS_WITH_VALUES.contains(&flag) => return Wanted::Nothing,
        _ => {}
    }
    if before.iter().any(|w| w == "--") {
        return Wanted::Nothing;
    }
    let mut positionals = Vec::new();
    let mut skip = false;
    for word in before {
        if skip {
            skip = false;
        } else if FLAGS_WITH_VALUES.contains(&word.as_str()) {
            skip = true;
        } else if !word.starts_with('-') {
            positionals.push(word.as_str());
        }
    }
    match positionals.as_slice() {
        [] => Wanted::Subcommands,
        ["create"] => Wanted::Templates,
        ["get" | "describe" | "logs" | "wait" | "cancel" | "rerun"] => Wanted::Runs,
        ["completion"] => Wanted::Shells,
        _ => Wanted::Nothing,
    }
}

/// The candidates starting with `partial`, in cobra's format.
pub fn cobra_output<'a>(candidates: impl IntoIterator<Item = &'a str>, partial: &str) -> String {
    let mut out: String = candidates.into_iter().filter(|c| c.starts_with(partial)).map(|c| format!("{c}\n")).collect();
    out.push_str(&format!(":{NO_FILE_COMPLETION}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        let mut words: Vec<String> = text.split(' ').map(str::to_owned).collect();
        if text.is_empty() {
            words = vec![String::new()];
        }
        words
    }

    #[test]
    fn the_word_under_the_cursor_is_a_subcommand_a_run_or_a_template() {
        assert_eq!(wanted(&words("")), Wanted::Subcommands);
        assert_eq!(wanted(&words("de")), Wanted::Subcommands);
        assert_eq!(wanted(&words("-n team ")), Wanted::Subcommands);
        assert_eq!(wanted(&words("describe ")), Wanted::Runs);
        assert_eq!(wanted(&words("logs -f ec")), Wanted::Runs);
        assert_eq!(wanted(&words("-n team wait ")), Wanted::Runs);
        assert_eq!(wanted(&words("create ")), Wanted::Templates);
        assert_eq!(wanted(&words("create echo ")), Wanted::Nothing, "a new run's name is the user's");
        assert_eq!(wanted(&words("create echo -- ")), Wanted::Nothing);
        assert_eq!(wanted(&words("get -n ")), Wanted::Namespaces);
        assert_eq!(wanted(&words("get --context ")), Wanted::Contexts);
        assert_eq!(wanted(&words("create --env ")), Wanted::Nothing);
        assert_eq!(wanted(&words("completion ")), Wanted::Shells);
        assert_eq!(wanted(&words("create --dry-run ")), Wanted::Templates, "--dry-run takes its value with =");
        assert_eq!(wanted(&[]), Wanted::Subcommands);
    }

    #[test]
    fn candidates_are_filtered_by_the_partial_word_and_end_with_the_directive() {
        assert_eq!(cobra_output(["echo-1", "echo-2", "other"], "echo"), "echo-1\necho-2\n:4\n");
        assert_eq!(cobra_output(["a"], "z"), ":4\n");
    }
}
