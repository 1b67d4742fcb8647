//! Completion for kubectl's plugin hook: `kubectl jobrun <TAB>` makes
//! kubectl run `kubectl_complete-jobrun <words…> <partial word>`, and reads
//! cobra's format back: one candidate per line, then `:<directive>`.

use crate::args::Cli;

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

/// The subcommands, as offered: the command line's own, but the hidden.
pub fn subcommands() -> Vec<String> {
    use clap::CommandFactory;
    Cli::command().get_subcommands().filter(|c| !c.is_hide_set()).map(|c| c.get_name().to_owned()).collect()
}

/// The flags whose value is the next word (not `--dry-run`, which takes
/// its value after `=`), read from the command line's definition.
fn flags_with_values() -> Vec<String> {
    use clap::CommandFactory;
    let cli = Cli::command();
    let args = cli.get_arguments().chain(cli.get_subcommands().flat_map(|c| c.get_arguments()));
    let mut flags: Vec<String> = args
        .filter(|a| a.get_action().takes_values() && !a.is_require_equals_set() && !a.is_positional())
        .flat_map(|a| {
            let long = a.get_long().map(|l| format!("--{l}"));
            let short = a.get_short().map(|s| format!("-{s}"));
            long.into_iter().chain(short)
        })
        .collect();
    flags.sort();
    flags.dedup();
    flags
}

/// cobra's `ShellCompDirectiveNoFileComp`: offer no file names.
pub const NO_FILE_COMPLETION: u8 = 4;

/// What to offer for the last of `words` (the partial word, maybe empty).
pub fn wanted(words: &[String]) -> Wanted {
    let Some((_partial, before)) = words.split_last() else { return Wanted::Subcommands };
    let with_values = flags_with_values();
    let takes_value = |word: &str| with_values.iter().any(|f| f == word);
    match before.last().map(String::as_str) {
        Some("-n" | "--namespace") => return Wanted::Namespaces,
        Some("--context") => return Wanted::Contexts,
        Some(flag) if takes_value(flag) => return Wanted::Nothing,
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
        } else if takes_value(word) {
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
    fn the_subcommands_and_flags_come_from_the_command_lines_definition() {
        assert_eq!(
            subcommands(),
            ["create", "get", "describe", "logs", "wait", "cancel", "rerun", "templates", "completion"]
        );
        let flags = flags_with_values();
        for flag in ["-n", "--namespace", "--context", "--kubeconfig", "-o", "--env", "-e", "--timeout", "-l", "-c"] {
            assert!(flags.iter().any(|f| f == flag), "{flag} takes a value: {flags:?}");
        }
        assert!(!flags.iter().any(|f| f == "--dry-run" || f == "--wait" || f == "-f"), "{flags:?}");
    }

    #[test]
    fn candidates_are_filtered_by_the_partial_word_and_end_with_the_directive() {
        assert_eq!(cobra_output(["echo-1", "echo-2", "other"], "echo"), "echo-1\necho-2\n:4\n");
        assert_eq!(cobra_output(["a"], "z"), ":4\n");
    }
}
