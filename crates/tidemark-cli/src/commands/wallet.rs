//! `tidemark wallet descriptors|intents|release`: the configured wallets.
//!
//! Like `state`, these work on the config's keystore and store files
//! directly, so they also work while the signer is stopped. They are safe
//! beside a running signer too: a release is one compare-and-swap of the
//! intent and the wallet's ledger, as the signer's own commits are.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use tidemark_bitcoin::{Branch, IntentId, IntentRecord, Release, Wallet, WalletSigner};
use tidemark_core::{ClientId, KeyBackend, KeyId, StateStore};
use tidemark_server::{Config, WalletConfig};

use super::support;
use crate::ConfigArg;

/// `tidemark wallet ...`
#[derive(Debug, Clone, clap::Subcommand)]
pub enum WalletCommand {
    /// Prints a wallet's receive and change descriptors, for a watch-only
    /// wallet (BDK, Bitcoin Core `importdescriptors`).
    Descriptors(WalletArgs),
    /// Lists a wallet's intents and their status.
    Intents(WalletArgs),
    /// Marks an intent confirmed (mined) or abandoned, freeing its inputs.
    Release(ReleaseArgs),
}

/// A config and a wallet.
#[derive(Debug, Clone, clap::Args)]
pub struct WalletArgs {
    /// The config file.
    #[command(flatten)]
    pub config: ConfigArg,
    /// The wallet's name (its `[[bitcoin.wallets]]` name).
    pub wallet: String,
}

/// Arguments of `wallet release`.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("release").required(true).args(["confirmed", "abandoned"])))]
pub struct ReleaseArgs {
    /// The config and the wallet.
    #[command(flatten)]
    pub wallet: WalletArgs,
    /// The intent id.
    pub intent: String,
    /// The transaction was mined: the intent can never be paid again.
    #[arg(long)]
    pub confirmed: bool,
    /// The transaction was given up: its inputs are free, and the intent
    /// may be signed again only by a transaction that double-spends it.
    #[arg(long)]
    pub abandoned: bool,
}

/// Runs `tidemark wallet`.
pub fn run(cmd: WalletCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        WalletCommand::Descriptors(a) => descriptors(&a),
        WalletCommand::Intents(a) => intents(&a),
        WalletCommand::Release(a) => release(&a),
    }?;
    Ok(ExitCode::SUCCESS)
}

fn descriptors(args: &WalletArgs) -> anyhow::Result<()> {
    let (config, wallet) = configured(args)?;
    let keystore = support::open_keystore(&config)?;
    let xpub = keystore
        .extended_public_key(&wallet.name)
        .with_context(|| format!("wallet {}", wallet.name))?;
    let w = Wallet::new(wallet.name.clone(), wallet.kind, wallet.network, &xpub)?;
    println!("# {} ({} {})", w.name(), w.kind(), w.network());
    println!("receive {}", w.descriptor(Branch::Receive));
    println!("change  {}", w.descriptor(Branch::Change));
    Ok(())
}

fn intents(args: &WalletArgs) -> anyhow::Result<()> {
    let (signer, name) = signer(args)?;
    let records = signer.intents(&name)?;
    println!(
        "{:<24} {:<10} {:>12} {:>8} {:>8}  txid",
        "intent", "status", "sent sat", "fee sat", "signings"
    );
    for r in &records {
        print_intent(r);
    }
    println!("{} intents", records.len());
    Ok(())
}

fn release(args: &ReleaseArgs) -> anyhow::Result<()> {
    let (signer, name) = signer(&args.wallet)?;
    let intent = IntentId::new(args.intent.clone())?;
    let how = match (args.confirmed, args.abandoned) {
        (true, false) => Release::Confirmed,
        (false, true) => Release::Abandoned,
        _ => bail!("give exactly one of --confirmed and --abandoned"),
    };
    let operator = ClientId::new("operator-cli")?;
    let record = signer.release(&operator, &name, &intent, how)?;
    print_intent(&record);
    Ok(())
}

fn print_intent(r: &IntentRecord) {
    let s = &r.state;
    println!(
        "{:<24} {:<10} {:>12} {:>8} {:>8}  {}",
        s.intent.as_str(),
        s.status.as_str(),
        s.sent_sat,
        s.fee_sat,
        s.signings,
        s.txid
    );
}

/// The config and the wallet `args` names in it.
fn configured(args: &WalletArgs) -> anyhow::Result<(Config, WalletConfig)> {
    let config = support::load_config(&args.config.config)?;
    let Some(wallet) = config.wallet_named(&args.wallet)? else {
        bail!(
            "no wallet {:?} in {} (a [[bitcoin.wallets]] entry)",
            args.wallet,
            args.config.config.display()
        );
    };
    Ok((config, wallet))
}

/// A wallet pipeline over the config's store and keystore, with the one
/// wallet `args` names.
fn signer(args: &WalletArgs) -> anyhow::Result<(WalletSigner, KeyId)> {
    let (config, wallet) = configured(args)?;
    let store: Arc<dyn StateStore> = Arc::new(support::open_store(&config)?);
    let keys: Arc<dyn KeyBackend> = Arc::new(support::open_keystore(&config)?);
    let mut signer = WalletSigner::new(store, keys);
    let name = wallet.name.clone();
    signer.add_wallet(wallet.name, wallet.kind, wallet.network, wallet.policy)?;
    Ok((signer, name))
}
