//! `kubectl-jobrun`: errors are one line on stderr with exit code 1.

use std::process::ExitCode;

use clap::Parser;
use kubectl_jobrun::args::Cli;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match kubectl_jobrun::commands::run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
