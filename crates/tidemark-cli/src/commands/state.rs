//! `tidemark state show|export|import`: high-water marks.
//!
//! These work on the store file directly, so they also work while the
//! signer is stopped (for a migration, before the first start). They are
//! safe beside a running signer too: every write is a compare-and-swap on
//! the object's version.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use tidemark_core::{
    ChainId, ClientId, KeyBackend, KeyError, KeyId, PublicKey, SignMessage, Signature, StateStore,
};
use tidemark_server::marks::{self, StateFileFormat};
use tidemark_signer::Signer;

use super::support;
use crate::ConfigArg;

/// `tidemark state ...`
#[derive(Debug, Clone, clap::Subcommand)]
pub enum StateCommand {
    /// Prints every object's mark.
    Show(ConfigArg),
    /// Writes the marks as the JSON interchange document.
    Export(ExportArgs),
    /// Imports marks; only ever raises them.
    Import(ImportArgs),
}

/// Arguments of `state export`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// The config file.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Write here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Arguments of `state import`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The config file.
    #[command(flatten)]
    pub config: ConfigArg,
    /// `tidemark` (an export document), `cometbft`
    /// (`priv_validator_state.json`) or `tmkms` (tmkms's state file).
    #[arg(long, default_value = "tidemark")]
    pub format: String,
    /// The chain id (cometbft and tmkms formats).
    #[arg(long)]
    pub chain_id: Option<String>,
    /// The key id (cometbft and tmkms formats).
    #[arg(long)]
    pub key: Option<String>,
    /// The file to import.
    pub file: PathBuf,
}

/// A key backend with no keys: imports change marks and sign nothing.
struct NoKeys;

impl KeyBackend for NoKeys {
    fn public_key(&self, key: &KeyId) -> Result<PublicKey, KeyError> {
        Err(KeyError::UnknownKey(key.to_string()))
    }
    fn sign(&self, key: &KeyId, _: &SignMessage) -> Result<Signature, KeyError> {
        Err(KeyError::UnknownKey(key.to_string()))
    }
    fn keys(&self) -> Result<Vec<(KeyId, PublicKey)>, KeyError> {
        Ok(Vec::new())
    }
}

/// Runs `tidemark state`.
pub fn run(cmd: StateCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        StateCommand::Show(c) => {
            let config = support::load_config(&c.config)?;
            let store = support::open_store(&config)?;
            let objects = store.objects()?;
            println!("{:<60} {:>8}  mark", "object", "version");
            for (object, stored) in &objects {
                println!(
                    "{:<60} {:>8}  {}",
                    object.to_string(),
                    stored.version,
                    stored.mark
                );
            }
            println!("{} objects", objects.len());
        }
        StateCommand::Export(a) => {
            let config = support::load_config(&a.config.config)?;
            let store = support::open_store(&config)?;
            let doc = marks::export(&store)?;
            let json = serde_json::to_string_pretty(&doc)?;
            match a.out {
                Some(path) => std::fs::write(&path, json + "\n")
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => println!("{json}"),
            }
        }
        StateCommand::Import(a) => {
            let config = support::load_config(&a.config.config)?;
            let store: Arc<dyn StateStore> = Arc::new(support::open_store(&config)?);
            let signer = Signer::new(store, Arc::new(NoKeys));
            let operator = ClientId::new("operator-cli")?;
            let bytes = std::fs::read(&a.file)
                .with_context(|| format!("cannot read {}", a.file.display()))?;
            let report = match a.format.as_str() {
                "tidemark" => {
                    let text = String::from_utf8(bytes).context("the document is not UTF-8")?;
                    marks::import_document(&signer, &operator, &text)?
                }
                f @ ("cometbft" | "tmkms") => {
                    let (Some(chain), Some(key)) = (a.chain_id, a.key) else {
                        bail!("--format {f} needs --chain-id and --key");
                    };
                    let format = if f == "cometbft" {
                        StateFileFormat::CometBft
                    } else {
                        StateFileFormat::Tmkms
                    };
                    marks::import_state_file(
                        &signer,
                        &operator,
                        format,
                        ChainId::new(chain)?,
                        KeyId::new(key)?,
                        &bytes,
                    )?
                }
                other => bail!("unknown format {other:?} (tidemark, cometbft or tmkms)"),
            };
            for o in &report.raised {
                println!("raised     {o}");
            }
            for o in &report.unchanged {
                println!("unchanged  {o} (already at or above the imported mark)");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
