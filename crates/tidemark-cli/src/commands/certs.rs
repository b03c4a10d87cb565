//! `tidemark certs issue`: a client certificate for a new replica, from the
//! development CA `init` wrote.
//!
//! The new identity can do nothing until a `[[clients]]` entry grants it
//! keys and domains and the signer is restarted.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use tidemark_core::ClientId;
use tidemark_tls::{DevCa, write_pem_files};

use crate::ConfigArg;

/// `tidemark certs ...`
#[derive(Debug, Clone, clap::Subcommand)]
pub enum CertsCommand {
    /// Issues a client certificate and key for a new identity.
    Issue(IssueArgs),
}

/// Arguments of `certs issue`.
#[derive(Debug, Clone, clap::Args)]
pub struct IssueArgs {
    /// The config file (the CA is read from its `tls/` directory).
    #[command(flatten)]
    pub config: ConfigArg,
    /// The client identity, e.g. `replica-3`.
    #[arg(long)]
    pub name: String,
    /// Where to write `<name>.crt` and `<name>.key` (default: the config's
    /// `tls/` directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs `tidemark certs`.
pub fn run(cmd: CertsCommand) -> anyhow::Result<ExitCode> {
    let CertsCommand::Issue(a) = cmd;
    let identity = ClientId::new(a.name.clone())?;
    let base = a
        .config
        .config
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    let tls = base.join("tls");
    let out = a.out.unwrap_or_else(|| tls.clone());
    let cert_path = out.join(format!("{identity}.crt"));
    if cert_path.exists() {
        bail!("{} already exists", cert_path.display());
    }
    let ca = DevCa::load(&tls.join("ca.crt"), &tls.join("ca.key"))
        .with_context(|| format!("cannot load the CA from {}", tls.display()))?;
    let paths = write_pem_files(
        &out,
        identity.as_str(),
        &ca.issue_client(identity.as_str())?,
    )?;
    println!(
        "issued {identity}: {} and {}",
        paths.cert.display(),
        paths.key.display()
    );
    println!("grant it in the config, then restart the signer:");
    println!(
        "  [[clients]]\n  identity = \"{identity}\"\n  keys = [\"validator\"]\n  domains = [\"consensus\"]"
    );
    Ok(ExitCode::SUCCESS)
}
