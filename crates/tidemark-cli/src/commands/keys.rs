//! `tidemark keys list|new|import-cometbft`: works on the keystore file.
//!
//! A running signer loaded its keystore at start: restart it to serve a
//! key created here.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use tidemark_core::KeyId;
use tidemark_keys::DerivationPath;

use super::support;
use crate::ConfigArg;

/// `tidemark keys ...`
#[derive(Debug, Clone, clap::Subcommand)]
pub enum KeysCommand {
    /// Lists the keys and their public keys.
    List(ConfigArg),
    /// Creates a key.
    New(NewKeyArgs),
    /// Imports an ed25519 key from CometBFT's `priv_validator_key.json`.
    ImportCometbft(ImportKeyArgs),
}

/// Arguments of `keys new`.
#[derive(Debug, Clone, clap::Args)]
pub struct NewKeyArgs {
    /// The config file.
    #[command(flatten)]
    pub config: ConfigArg,
    /// The key's name.
    #[arg(long)]
    pub name: String,
    /// `ed25519` (a new random key) or `secp256k1` (derived from the seed).
    #[arg(long, default_value = "ed25519")]
    pub scheme: String,
    /// BIP32 path for a secp256k1 key, e.g. `m/84'/0'/0'/0/0`.
    #[arg(long)]
    pub path: Option<String>,
}

/// Arguments of `keys import-cometbft`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportKeyArgs {
    /// The config file.
    #[command(flatten)]
    pub config: ConfigArg,
    /// The key's name.
    #[arg(long)]
    pub name: String,
    /// CometBFT's `priv_validator_key.json`.
    pub file: PathBuf,
}

/// Runs `tidemark keys`.
pub fn run(cmd: KeysCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        KeysCommand::List(c) => {
            let config = support::load_config(&c.config)?;
            let keystore = support::open_keystore(&config)?;
            println!("{:<24} {:<10} public key", "key", "scheme");
            for (id, pk) in keystore.keys() {
                println!("{:<24} {:<10} {}", id, pk.scheme, hex::encode(&pk.bytes));
            }
        }
        KeysCommand::New(a) => {
            let config = support::load_config(&a.config.config)?;
            let mut keystore = support::open_keystore(&config)?;
            let name = KeyId::new(a.name)?;
            let pk = match (a.scheme.as_str(), a.path) {
                ("ed25519", None) => keystore.add_ed25519(name.clone())?,
                ("ed25519", Some(_)) => bail!("--path is only for secp256k1 keys"),
                ("secp256k1", Some(p)) => {
                    let path: DerivationPath = p
                        .parse()
                        .with_context(|| format!("invalid BIP32 path {p:?}"))?;
                    keystore.add_secp256k1(name.clone(), &path)?
                }
                ("secp256k1", None) => bail!("a secp256k1 key needs --path (a BIP32 path)"),
                (other, _) => bail!("unknown scheme {other:?} (ed25519 or secp256k1)"),
            };
            println!("created {name} ({}) {}", pk.scheme, hex::encode(&pk.bytes));
            println!(
                "restart `tidemark serve` to use it, and grant it in the config's [[clients]]"
            );
        }
        KeysCommand::ImportCometbft(a) => {
            let config = support::load_config(&a.config.config)?;
            let mut keystore = support::open_keystore(&config)?;
            let json = std::fs::read_to_string(&a.file)
                .with_context(|| format!("cannot read {}", a.file.display()))?;
            let name = KeyId::new(a.name)?;
            let pk = keystore.import_cometbft_key(name.clone(), &json)?;
            println!("imported {name} (ed25519) {}", hex::encode(&pk.bytes));
        }
    }
    Ok(ExitCode::SUCCESS)
}
