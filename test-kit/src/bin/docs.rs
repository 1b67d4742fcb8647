//! Writes or checks the generated reference pages: `docs/merge-semantics.md`
//! (from `fixtures/`) and `docs/api.md` (from the chart's CRDs).
//!
//! ```text
//! cargo run -q -p jtr-test-kit --bin docs -- --write   # make docs
//! cargo run -q -p jtr-test-kit --bin docs -- --check   # exit 1 when a page is stale
//! ```

use std::fs;
use std::process::ExitCode;

use jtr_test_kit::docs::{COMMAND, DocsError, pages, workspace_root};

enum Mode {
    Write,
    Check,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["--write"] => Mode::Write,
        ["--check"] => Mode::Check,
        _ => {
            eprintln!("usage: docs --write | --check");
            return ExitCode::from(2);
        }
    };
    match run(&mode) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// True when every page is current (after writing, they all are).
fn run(mode: &Mode) -> Result<bool, DocsError> {
    let root = workspace_root();
    let mut current = true;
    for page in pages(&root)? {
        let path = root.join(page.path);
        let lines = page.text.lines().count();
        let committed = fs::read_to_string(&path).ok();
        let same = committed.as_deref() == Some(page.text.as_str());
        match mode {
            Mode::Write if same => println!("{} is current ({lines} lines)", page.path),
            Mode::Write => {
                fs::write(&path, &page.text).map_err(|source| DocsError::Write { path: path.clone(), source })?;
                println!("wrote {} ({lines} lines)", page.path);
            }
            Mode::Check if same => println!("{} is current", page.path),
            Mode::Check => {
                eprintln!("{} differs from what it is generated from; run `{COMMAND}`", page.path);
                current = false;
            }
        }
    }
    Ok(current)
}
