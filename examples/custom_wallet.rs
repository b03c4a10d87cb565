//! A custom wallet that uses Tidemark as a library, with no server: an
//! encrypted keystore, the SQLite state store and a `wpkh` wallet on
//! regtest. It builds a payment from a synthetic UTXO, has Tidemark sign
//! it for a payout intent, finalizes it and prints the transaction.
//!
//! ```text
//! cargo run -p tidemark-bitcoin --example custom_wallet [DIR]
//! ```
//!
//! DIR (default: a fresh temporary directory) keeps `keys.json` and
//! `state.db`; run it twice on the same DIR and the second run replays the
//! stored signature for the same payout instead of signing anew.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use bitcoin::{Network, Witness};
use secrecy::{SecretSlice, SecretString};
use tidemark_bitcoin::fixtures::{PsbtBuilder, funding};
use tidemark_bitcoin::{
    Branch, IntentId, SignOutcome, SignRequest, SpendPolicy, WalletKind, WalletSigner,
};
use tidemark_core::{ClientId, KeyId};
use tidemark_keys::{KdfParams, SoftwareKeystore};
use tidemark_store::SqliteStore;

const POLICY: &str = include_str!("../policies/bitcoin-wallet.toml");

fn main() -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| temp.path().to_path_buf(), PathBuf::from);
    std::fs::create_dir_all(&dir)?;

    // 1. Keys: a keystore with a fixed demo seed (a real wallet generates
    //    one: SoftwareKeystore::create) and a BIP 84 account key.
    let pass = SecretString::from("example passphrase");
    let keys_file = dir.join("keys.json");
    let name = KeyId::new("payouts")?;
    let keystore = if keys_file.exists() {
        SoftwareKeystore::open(&keys_file, &pass)?
    } else {
        let mut ks = SoftwareKeystore::create_from_seed(
            &keys_file,
            &pass,
            SecretSlice::from(vec![42u8; 32]),
            KdfParams::insecure_for_tests(),
        )?;
        ks.add_secp256k1(name.clone(), &"m/84'/1'/0'".parse()?)?;
        ks
    };

    // 2. The durable state store (fsync'd SQLite).
    let db = dir.join("state.db");
    let store = if db.exists() {
        SqliteStore::open(&db)?
    } else {
        SqliteStore::create(&db)?
    };

    // 3. The wallet and its spend policy.
    let mut signer = WalletSigner::new(Arc::new(store), Arc::new(keystore));
    let policy = SpendPolicy::from_toml(POLICY, Network::Regtest)?;
    let wallet = signer.add_wallet(name.clone(), WalletKind::Wpkh, Network::Regtest, policy)?;
    println!("receive descriptor: {}", wallet.descriptor(Branch::Receive));
    println!("change descriptor:  {}", wallet.descriptor(Branch::Change));

    // 4. A payment: 0.001 BTC to a destination, change back to the wallet.
    let utxo = funding(wallet, Branch::Receive, 0, 250_000, 1)?;
    let destination = wallet.address_at(Branch::Receive, 99)?.script_pubkey();
    let psbt = PsbtBuilder::new(wallet)
        .spend(utxo, Branch::Receive, 0)
        .pay(destination, 100_000)
        .change(0, 149_000)?
        .build()?;

    // 5. Sign it for payout "payout-0001", durably.
    let request = SignRequest {
        wallet: name,
        intent: IntentId::new("payout-0001")?,
        psbt: psbt.serialize(),
        payments: Vec::new(),
    };
    let (signed, how) = match signer.sign(&ClientId::new("example")?, &request)? {
        SignOutcome::Signed { psbt, .. } => (psbt, "signed"),
        SignOutcome::Replayed { psbt, .. } => (psbt, "replayed (stored signature)"),
        SignOutcome::Refused(refusal) => bail!("refused: {refusal}"),
    };
    println!("payout-0001: {how}");

    // 6. Finalize (P2WPKH witness: signature, public key) and print.
    let mut psbt = bitcoin::psbt::Psbt::deserialize(&signed)?;
    for input in &mut psbt.inputs {
        let (key, sig) = input
            .partial_sigs
            .pop_first()
            .context("an input was not signed")?;
        input.final_script_witness = Some(Witness::from_slice(&[sig.to_vec(), key.to_bytes()]));
    }
    let tx = psbt.extract_tx()?;
    println!("txid: {}", tx.compute_txid());
    println!("raw:  {}", bitcoin::consensus::encode::serialize_hex(&tx));
    Ok(())
}
