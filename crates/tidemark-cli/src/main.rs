//! The `tidemark` command.

use std::process::ExitCode;

use clap::Parser as _;

/// mimalloc: the signer allocates many small buffers per request on many
/// threads, where glibc's malloc spent a sixth of the CPU in profiles.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
