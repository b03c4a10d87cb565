//! The `tidemark` command.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = tidemark_cli::Cli::parse();
    match tidemark_cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
