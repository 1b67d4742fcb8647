//! The few Markdown forms the generated pages use, escaped once here.

/// A code block longer than this many lines is folded into `<details>`.
const FOLD_LINES: usize = 30;

/// A page being written, line by line.
#[derive(Debug, Default)]
pub(crate) struct Md(String);

impl Md {
    pub(crate) fn line(&mut self, text: impl AsRef<str>) {
        self.0.push_str(text.as_ref());
        self.0.push('\n');
    }

    /// A paragraph: `text`, then a blank line.
    pub(crate) fn para(&mut self, text: impl AsRef<str>) {
        self.line(text);
        self.0.push('\n');
    }

    /// A fenced code block, preceded by its label; folded into `<details>`
    /// (the label as its summary) when it is long.
    pub(crate) fn block(&mut self, label: &Label, lang: &str, text: &str) {
        let lines = text.lines().count();
        if lines > FOLD_LINES {
            self.folded(label, lang, text);
        } else {
            self.para(format!("{}:", label.markdown()));
            self.para(fenced(lang, text));
        }
    }

    /// A fenced code block folded into `<details>` whatever its length.
    pub(crate) fn folded(&mut self, label: &Label, lang: &str, text: &str) {
        let lines = text.lines().count();
        self.para(format!("<details><summary>{} ({lines} lines)</summary>", label.html()));
        self.para(fenced(lang, text));
        self.para("</details>");
    }

    pub(crate) fn finish(self) -> String {
        // One newline at the end, never a blank last line.
        let mut text = self.0;
        while text.ends_with("\n\n") {
            text.pop();
        }
        text
    }
}

/// The label of a block: words, and the file they come from.
pub(crate) struct Label<'a> {
    pub(crate) words: &'a str,
    pub(crate) file: Option<&'a str>,
}

impl Label<'_> {
    fn markdown(&self) -> String {
        match self.file {
            Some(file) => format!("**{}** (`{file}`)", self.words),
            None => format!("**{}**", self.words),
        }
    }

    fn html(&self) -> String {
        let words = html_escape(self.words);
        match self.file {
            Some(file) => format!("<b>{words}</b> (<code>{}</code>)", html_escape(file)),
            None => format!("<b>{words}</b>"),
        }
    }
}

/// `text` in a fence longer than any run of backticks it holds.
pub(crate) fn fenced(lang: &str, text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let body = text.strip_suffix('\n').unwrap_or(text);
    format!("{fence}{lang}\n{body}\n{fence}")
}

/// Prose written as Markdown (backticks for code), with `<` and `>` outside
/// code spans escaped so that `<job name>` is not taken for an HTML tag, and
/// `$` so that `$$(VAR)` is not taken for math.
pub(crate) fn prose(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_code = false;
    for c in text.chars() {
        match c {
            '`' => {
                in_code = !in_code;
                out.push(c);
            }
            '<' if !in_code => out.push_str("&lt;"),
            '>' if !in_code => out.push_str("&gt;"),
            '$' if !in_code => out.push_str("\\$"),
            _ => out.push(c),
        }
    }
    out
}

/// Plain text for a table cell: Markdown's punctuation escaped, one line.
pub(crate) fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// `text` as inline code, whatever backticks it holds.
pub(crate) fn code(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    if longest == 0 {
        return format!("`{text}`");
    }
    let ticks = "`".repeat(longest + 1);
    format!("{ticks} {text} {ticks}")
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A folder name as a sentence: `a-job-is-made` becomes `A job is made`.
/// Its [`slug`] is the folder name again, so the heading's anchor is it.
pub(crate) fn sentence(name: &str) -> String {
    let words = name.replace('-', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The anchor GitHub gives a heading: lower case, punctuation but `-` and
/// `_` dropped, spaces as `-`.
pub(crate) fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_names_sentence_is_anchored_at_the_folder_name() {
        let name = "a-run-name-longer-than-63-characters-is-cut-with-a-stable-hash";
        assert_eq!(sentence(name), "A run name longer than 63 characters is cut with a stable hash");
        assert_eq!(slug(&sentence(name)), name);
    }

    #[test]
    fn prose_escapes_angle_brackets_outside_code_only() {
        assert_eq!(prose("named <job name>, `a<b>`"), "named &lt;job name&gt;, `a<b>`");
        assert_eq!(prose("$$(VAR) `$(VAR)`"), "\\$\\$(VAR) `$(VAR)`");
    }

    #[test]
    fn a_cell_is_one_line_with_its_pipes_escaped() {
        assert_eq!(cell("a | b\n*c*"), "a \\| b \\*c\\*");
    }

    #[test]
    fn a_fence_is_longer_than_the_backticks_inside() {
        assert_eq!(fenced("yaml", "a: ````\n"), "`````yaml\na: ````\n`````");
        assert_eq!(fenced("", "a\n"), "```\na\n```");
    }

    #[test]
    fn a_long_block_is_folded_and_a_short_one_is_not() {
        let label = Label { words: "The pods", file: Some("pods.yaml") };
        let mut short = Md::default();
        short.block(&label, "yaml", "a: 1\n");
        assert!(short.finish().starts_with("**The pods** (`pods.yaml`):\n\n```yaml\na: 1\n```"));
        let mut long = Md::default();
        long.block(&label, "yaml", &"a: 1\n".repeat(FOLD_LINES + 1));
        assert!(long.finish().starts_with("<details><summary><b>The pods</b> (<code>pods.yaml</code>) (31 lines)"));
    }
}
