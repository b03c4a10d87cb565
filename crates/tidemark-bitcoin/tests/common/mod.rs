//! The harness the wallet tests share: a real keystore, a real SQLite
//! store and a `WalletSigner`, with helpers to fund and pay.

#![allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub use std::sync::Arc;

pub use bitcoin::psbt::Psbt;
pub use bitcoin::secp256k1::{Message, Secp256k1};
pub use bitcoin::sighash::{EcdsaSighashType, Prevouts, SighashCache, TapSighashType};
pub use bitcoin::{Amount, Network, ScriptBuf, Transaction, TxOut};
pub use secrecy::{SecretSlice, SecretString};
pub use tempfile::TempDir;
pub use tidemark_bitcoin::fixtures::{PsbtBuilder, funding};
pub use tidemark_bitcoin::{
    BitcoinError, Branch, IntentId, IntentStatus, Payment, Release, SignOutcome, SignRequest,
    SpendPolicy, Wallet, WalletKind, WalletSigner, tags,
};
pub use tidemark_core::{ClientId, KeyBackend, KeyId, StateStore, Tag};
pub use tidemark_keys::{KdfParams, SoftwareKeystore};
pub use tidemark_store::SqliteStore;

pub const DEFAULT_POLICY: &str = include_str!("../../../../policies/bitcoin-wallet.toml");
pub const NOW: u64 = 1_800_000_000;

pub struct Harness {
    pub _dir: TempDir,
    pub store: Arc<SqliteStore>,
    pub keys: Arc<SoftwareKeystore>,
    pub signer: WalletSigner,
    pub name: KeyId,
    pub nonce: std::cell::Cell<u32>,
    /// The receive index each funding transaction pays.
    pub funded: std::cell::RefCell<std::collections::HashMap<bitcoin::Txid, u32>>,
}

pub fn policy_with(extra: &str) -> SpendPolicy {
    // Later keys in a TOML table cannot repeat earlier ones, so the
    // overrides replace whole tables of the default file.
    let mut text = String::new();
    let mut skip = false;
    let replaced: Vec<&str> = extra.lines().filter(|l| l.starts_with('[')).collect();
    for line in DEFAULT_POLICY.lines() {
        if line.starts_with('[') {
            skip = replaced.contains(&line);
        }
        if !skip {
            text.push_str(line);
            text.push('\n');
        }
    }
    text.push_str(extra);
    SpendPolicy::from_toml(&text, Network::Testnet).unwrap()
}

pub fn harness(kind: WalletKind, policy: SpendPolicy) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut keystore = SoftwareKeystore::create_from_seed(
        dir.path().join("keys.json"),
        &SecretString::from("pw"),
        SecretSlice::from(vec![7u8; 32]),
        KdfParams::insecure_for_tests(),
    )
    .unwrap();
    let (name, path) = match kind {
        WalletKind::Wpkh => ("payouts", "m/84'/1'/0'"),
        WalletKind::Tr => ("payouts-tr", "m/86'/1'/0'"),
    };
    let name = KeyId::new(name).unwrap();
    keystore
        .add_secp256k1(name.clone(), &path.parse().unwrap())
        .unwrap();
    let keys = Arc::new(keystore);
    let store = Arc::new(SqliteStore::create(dir.path().join("state.db")).unwrap());
    let mut signer = WalletSigner::new(store.clone(), keys.clone());
    signer
        .add_wallet(name.clone(), kind, Network::Testnet, policy)
        .unwrap();
    Harness {
        _dir: dir,
        store,
        keys,
        signer,
        name,
        nonce: std::cell::Cell::new(0),
        funded: Default::default(),
    }
}

pub fn client(name: &str) -> ClientId {
    ClientId::new(name).unwrap()
}

pub fn intent(id: &str) -> IntentId {
    IntentId::new(id).unwrap()
}

/// A foreign destination (a P2WPKH script of another key).
pub fn elsewhere(n: u8) -> ScriptBuf {
    let secp = Secp256k1::new();
    let sk = bitcoin::secp256k1::SecretKey::from_slice(&[n.max(1); 32]).unwrap();
    let pk = bitcoin::CompressedPublicKey(sk.public_key(&secp));
    ScriptBuf::new_p2wpkh(&pk.wpubkey_hash())
}

impl Harness {
    pub fn wallet(&self) -> &Wallet {
        self.signer.wallet(&self.name).unwrap()
    }

    /// A fresh UTXO of the wallet (receive index `index`).
    pub fn utxo(&self, index: u32, sat: u64) -> Transaction {
        let n = self.nonce.get() + 1;
        self.nonce.set(n);
        let tx = funding(self.wallet(), Branch::Receive, index, sat, n).unwrap();
        self.funded.borrow_mut().insert(tx.compute_txid(), index);
        tx
    }

    /// Pays `pay` sat to `to` from `utxos`, the rest minus 1000 sat of fee
    /// as change.
    pub fn payment(&self, utxos: &[Transaction], to: ScriptBuf, pay: u64) -> Psbt {
        let total: u64 = utxos.iter().map(|t| t.output[0].value.to_sat()).sum();
        let mut b = PsbtBuilder::new(self.wallet());
        for u in utxos {
            let index = self.funded.borrow()[&u.compute_txid()];
            b = b.spend(u.clone(), Branch::Receive, index);
        }
        b.pay(to, pay)
            .change(0, total - pay - 1000)
            .unwrap()
            .build()
            .unwrap()
    }

    pub fn sign(&self, who: &str, id: &str, psbt: &Psbt) -> Result<SignOutcome, BitcoinError> {
        self.sign_with(who, id, psbt, Vec::new(), NOW)
    }

    pub fn sign_with(
        &self,
        who: &str,
        id: &str,
        psbt: &Psbt,
        payments: Vec<Payment>,
        now: u64,
    ) -> Result<SignOutcome, BitcoinError> {
        self.signer.sign_at(
            &client(who),
            &SignRequest {
                wallet: self.name.clone(),
                intent: intent(id),
                psbt: psbt.serialize(),
                payments,
            },
            now,
        )
    }

    pub fn intents(&self) -> Vec<(String, IntentStatus)> {
        self.signer
            .intents(&self.name)
            .unwrap()
            .into_iter()
            .map(|r| (r.state.intent.to_string(), r.state.status))
            .collect()
    }
}

pub fn signed(outcome: SignOutcome) -> Psbt {
    match outcome {
        SignOutcome::Signed { psbt, .. } => Psbt::deserialize(&psbt).unwrap(),
        other => panic!("expected a signature, got {other:?}"),
    }
}

pub fn refused_with(outcome: SignOutcome, tag: &Tag) -> String {
    match outcome {
        SignOutcome::Refused(r) => {
            assert_eq!(&r.tag, tag, "{r}");
            r.detail
        }
        other => panic!("expected {tag}, got {other:?}"),
    }
}

/// Verifies every wallet signature in `psbt` against the sighash computed
/// here, independently of the signer; returns how many inputs are signed.
pub fn verify_signatures(wallet: &Wallet, psbt: &Psbt) -> usize {
    let secp = Secp256k1::verification_only();
    let prevouts: Vec<TxOut> = psbt
        .inputs
        .iter()
        .map(|i| i.witness_utxo.clone().unwrap())
        .collect();
    let mut cache = SighashCache::new(&psbt.unsigned_tx);
    let mut signed = 0;
    for (index, input) in psbt.inputs.iter().enumerate() {
        for (pk, sig) in &input.partial_sigs {
            let hash = cache
                .p2wpkh_signature_hash(
                    index,
                    &prevouts[index].script_pubkey,
                    prevouts[index].value,
                    EcdsaSighashType::All,
                )
                .unwrap();
            secp.verify_ecdsa(&Message::from(hash), &sig.signature, &pk.inner)
                .unwrap();
            signed += 1;
        }
        if let Some(sig) = input.tap_key_sig {
            let hash = cache
                .taproot_key_spend_signature_hash(
                    index,
                    &Prevouts::All(&prevouts),
                    TapSighashType::Default,
                )
                .unwrap();
            let output_key = bitcoin::key::TweakedPublicKey::dangerous_assume_tweaked(
                bitcoin::XOnlyPublicKey::from_slice(&prevouts[index].script_pubkey.as_bytes()[2..])
                    .unwrap(),
            );
            secp.verify_schnorr(
                &sig.signature,
                &Message::from(hash),
                &output_key.to_x_only_public_key(),
            )
            .unwrap();
            signed += 1;
        }
    }
    let _ = wallet;
    signed
}

pub use tidemark_store::testing::FailingCommits as FullDisk;
