//! The `tidemark` command line, as a library so tests drive it in-process.
//!
//! # Layout
//!
//! - [`commands`]: one module per subcommand (`init`, `serve`, `certs`,
//!   `keys`, `state`, `wallet`, `audit`, `demo`, `bench`).
//! - [`embedded`]: a complete signer (SQLite store, software keystore, dev
//!   CA, mutual-TLS gRPC server on 127.0.0.1) in a directory, as `demo`,
//!   `bench` and the end-to-end tests use it.
//! - [`layout`]: the files `tidemark init` writes and where.

pub mod commands;
pub mod embedded;
pub mod layout;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tidemark: a remote signer that never signs two conflicting things.
#[derive(Debug, Parser)]
#[command(name = "tidemark", version, about)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Writes a config, a development CA with server and client
    /// certificates, a software keystore with a new seed and an empty store.
    Init(commands::init::InitArgs),
    /// Runs the signer.
    Serve(commands::serve::ServeArgs),
    /// Issues client certificates from the development CA.
    #[command(subcommand)]
    Certs(commands::certs::CertsCommand),
    /// Lists or creates keys in the keystore.
    #[command(subcommand)]
    Keys(commands::keys::KeysCommand),
    /// Shows, exports or imports high-water marks.
    #[command(subcommand)]
    State(commands::state::StateCommand),
    /// Shows a wallet's descriptors, lists or releases its intents.
    #[command(subcommand)]
    Wallet(commands::wallet::WalletCommand),
    /// Verifies the audit log's hash chain.
    #[command(subcommand)]
    Audit(commands::audit::AuditCommand),
    /// Runs an embedded signer with racing replicas and counts double signs.
    Demo(commands::demo::DemoArgs),
    /// Measures durable signing latency and throughput over mutual TLS.
    Bench(commands::bench::BenchArgs),
}

/// Runs `cli`.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Init(args) => commands::init::run(args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Certs(cmd) => commands::certs::run(cmd),
        Command::Keys(cmd) => commands::keys::run(cmd),
        Command::State(cmd) => commands::state::run(cmd),
        Command::Wallet(cmd) => commands::wallet::run(cmd),
        Command::Audit(cmd) => commands::audit::run(cmd),
        Command::Demo(args) => commands::demo::run(args),
        Command::Bench(args) => commands::bench::run(args),
    }
}

/// The `--config` option shared by the commands that use a config file.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// The configuration file written by `tidemark init`.
    #[arg(
        long,
        short,
        default_value = "tidemark/tidemark.toml",
        env = "TIDEMARK_CONFIG"
    )]
    pub config: PathBuf,
}
