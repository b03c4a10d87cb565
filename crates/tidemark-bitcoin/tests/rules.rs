//! Every rule of the wallet domain, through the public API over a real
//! SQLite store and a real keystore: each tag has a test that triggers it
//! beside the legitimate path, and each attack of the issue is tried.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use bitcoin::psbt::Psbt;
use bitcoin::secp256k1::{Message, Secp256k1};
use bitcoin::sighash::{EcdsaSighashType, Prevouts, SighashCache, TapSighashType};
use bitcoin::{Amount, Network, ScriptBuf, Transaction, TxOut};
use secrecy::{SecretSlice, SecretString};
use tempfile::TempDir;
use tidemark_bitcoin::fixtures::{PsbtBuilder, funding};
use tidemark_bitcoin::{
    BitcoinError, Branch, IntentId, IntentStatus, Payment, Release, SignOutcome, SignRequest,
    SpendPolicy, Wallet, WalletKind, WalletSigner, tags,
};
use tidemark_core::{ClientId, KeyBackend, KeyId, StateStore, Tag};
use tidemark_keys::{KdfParams, SoftwareKeystore};
use tidemark_store::SqliteStore;

const DEFAULT_POLICY: &str = include_str!("../../../policies/bitcoin-wallet.toml");
const NOW: u64 = 1_800_000_000;

struct Harness {
    _dir: TempDir,
    store: Arc<SqliteStore>,
    keys: Arc<SoftwareKeystore>,
    signer: WalletSigner,
    name: KeyId,
    nonce: std::cell::Cell<u32>,
    /// The receive index each funding transaction pays.
    funded: std::cell::RefCell<std::collections::HashMap<bitcoin::Txid, u32>>,
}

fn policy_with(extra: &str) -> SpendPolicy {
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

fn harness(kind: WalletKind, policy: SpendPolicy) -> Harness {
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

fn client(name: &str) -> ClientId {
    ClientId::new(name).unwrap()
}

fn intent(id: &str) -> IntentId {
    IntentId::new(id).unwrap()
}

/// A foreign destination (a P2WPKH script of another key).
fn elsewhere(n: u8) -> ScriptBuf {
    let secp = Secp256k1::new();
    let sk = bitcoin::secp256k1::SecretKey::from_slice(&[n.max(1); 32]).unwrap();
    let pk = bitcoin::CompressedPublicKey(sk.public_key(&secp));
    ScriptBuf::new_p2wpkh(&pk.wpubkey_hash())
}

impl Harness {
    fn wallet(&self) -> &Wallet {
        self.signer.wallet(&self.name).unwrap()
    }

    /// A fresh UTXO of the wallet (receive index `index`).
    fn utxo(&self, index: u32, sat: u64) -> Transaction {
        let n = self.nonce.get() + 1;
        self.nonce.set(n);
        let tx = funding(self.wallet(), Branch::Receive, index, sat, n).unwrap();
        self.funded.borrow_mut().insert(tx.compute_txid(), index);
        tx
    }

    /// Pays `pay` sat to `to` from `utxos`, the rest minus 1000 sat of fee
    /// as change.
    fn payment(&self, utxos: &[Transaction], to: ScriptBuf, pay: u64) -> Psbt {
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

    fn sign(&self, who: &str, id: &str, psbt: &Psbt) -> Result<SignOutcome, BitcoinError> {
        self.sign_with(who, id, psbt, Vec::new(), NOW)
    }

    fn sign_with(
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

    fn intents(&self) -> Vec<(String, IntentStatus)> {
        self.signer
            .intents(&self.name)
            .unwrap()
            .into_iter()
            .map(|r| (r.state.intent.to_string(), r.state.status))
            .collect()
    }
}

fn signed(outcome: SignOutcome) -> Psbt {
    match outcome {
        SignOutcome::Signed { psbt, .. } => Psbt::deserialize(&psbt).unwrap(),
        other => panic!("expected a signature, got {other:?}"),
    }
}

fn refused_with(outcome: SignOutcome, tag: &Tag) -> String {
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
fn verify_signatures(wallet: &Wallet, psbt: &Psbt) -> usize {
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

#[test]
fn wpkh_and_tr_inputs_are_signed_and_verify() {
    for kind in [WalletKind::Wpkh, WalletKind::Tr] {
        let h = harness(kind, policy_with(""));
        let psbt = h.payment(
            &[h.utxo(0, 60_000), h.utxo(1, 50_000)],
            elsewhere(1),
            70_000,
        );
        let out = signed(h.sign("replica-a", "payout-1", &psbt).unwrap());
        assert_eq!(verify_signatures(h.wallet(), &out), 2, "{kind}");
        assert_eq!(out.unsigned_tx, psbt.unsigned_tx);
        assert_eq!(h.intents(), [("payout-1".to_owned(), IntentStatus::Live)]);
        let ledger = h.signer.ledger(&h.name).unwrap();
        assert_eq!(ledger.reserved.len(), 2);
        assert_eq!(ledger.sent_in_window(NOW, 3600), 70_000);
    }
}

#[test]
fn an_identical_repeat_gets_the_byte_identical_psbt() {
    for kind in [WalletKind::Wpkh, WalletKind::Tr] {
        let h = harness(kind, policy_with(""));
        let psbt = h.payment(&[h.utxo(0, 60_000)], elsewhere(1), 10_000);
        let first = match h.sign("replica-a", "payout-1", &psbt).unwrap() {
            SignOutcome::Signed { psbt, .. } => psbt,
            other => panic!("{other:?}"),
        };
        // Another replica, the same request: the stored signatures
        // (taproot signatures use fresh randomness, so only a replay can
        // make them identical).
        match h.sign("replica-b", "payout-1", &psbt).unwrap() {
            SignOutcome::Replayed { psbt, .. } => assert_eq!(psbt, first, "{kind}"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn the_same_intent_with_another_transaction_is_refused() {
    let h = harness(WalletKind::Wpkh, policy_with(""));
    let a = h.payment(&[h.utxo(0, 60_000)], elsewhere(1), 10_000);
    let b = h.payment(&[h.utxo(1, 80_000)], elsewhere(1), 10_000);
    signed(h.sign("replica-a", "payout-1", &a).unwrap());
    let detail = refused_with(
        h.sign("replica-b", "payout-1", &b).unwrap(),
        &tags::INTENT_CONFLICT,
    );
    assert!(detail.contains("live"), "{detail}");
    // The second transaction's input was not reserved by the refusal.
    assert_eq!(h.signer.ledger(&h.name).unwrap().reserved.len(), 1);
}

#[test]
fn an_input_of_a_live_intent_is_refused_to_another_until_released() {
    for release in [Release::Abandoned, Release::Confirmed] {
        let h = harness(WalletKind::Tr, policy_with(""));
        let shared = h.utxo(0, 60_000);
        let first = h.payment(std::slice::from_ref(&shared), elsewhere(1), 10_000);
        let second = h.payment(&[shared], elsewhere(2), 20_000);
        signed(h.sign("replica-a", "payout-1", &first).unwrap());
        let detail = refused_with(
            h.sign("replica-b", "payout-2", &second).unwrap(),
            &tags::INPUT_CONFLICT,
        );
        assert!(detail.contains("payout-1"), "{detail}");

        h.signer
            .release(&client("operator"), &h.name, &intent("payout-1"), release)
            .unwrap();
        assert!(h.signer.ledger(&h.name).unwrap().reserved.is_empty());
        signed(h.sign("replica-b", "payout-2", &second).unwrap());
    }
}

#[test]
fn a_confirmed_intent_is_never_paid_again_and_replays_its_transaction() {
    let h = harness(WalletKind::Wpkh, policy_with(""));
    let a = h.payment(&[h.utxo(0, 60_000)], elsewhere(1), 10_000);
    signed(h.sign("replica-a", "payout-1", &a).unwrap());
    let op = client("operator");
    h.signer
        .release(&op, &h.name, &intent("payout-1"), Release::Confirmed)
        .unwrap();
    // Idempotent, and a confirmed intent cannot be abandoned.
    h.signer
        .release(&op, &h.name, &intent("payout-1"), Release::Confirmed)
        .unwrap();
    assert!(matches!(
        h.signer
            .release(&op, &h.name, &intent("payout-1"), Release::Abandoned),
        Err(BitcoinError::InvalidRelease { .. })
    ));
    assert!(matches!(
        h.sign("replica-a", "payout-1", &a).unwrap(),
        SignOutcome::Replayed { .. }
    ));
    let b = h.payment(&[h.utxo(1, 60_000)], elsewhere(1), 10_000);
    refused_with(
        h.sign("replica-a", "payout-1", &b).unwrap(),
        &tags::INTENT_CONFLICT,
    );
    assert!(matches!(
        h.signer
            .release(&op, &h.name, &intent("never-signed"), Release::Confirmed),
        Err(BitcoinError::UnknownIntent(_))
    ));
}

#[test]
fn an_abandoned_intent_is_signed_again_only_by_a_double_spend() {
    let h = harness(WalletKind::Wpkh, policy_with(""));
    let old_input = h.utxo(0, 60_000);
    let old = h.payment(std::slice::from_ref(&old_input), elsewhere(1), 10_000);
    signed(h.sign("replica-a", "payout-1", &old).unwrap());
    h.signer
        .release(
            &client("operator"),
            &h.name,
            &intent("payout-1"),
            Release::Abandoned,
        )
        .unwrap();
    // The abandoned transaction's signatures are not released again.
    refused_with(
        h.sign("replica-a", "payout-1", &old).unwrap(),
        &tags::INTENT_RELEASED,
    );
    // A replacement that does not conflict with it could confirm beside it.
    let unrelated = h.payment(&[h.utxo(1, 70_000)], elsewhere(1), 10_000);
    let detail = refused_with(
        h.sign("replica-a", "payout-1", &unrelated).unwrap(),
        &tags::INTENT_CONFLICT,
    );
    assert!(detail.contains("abandoned"), "{detail}");
    // One that spends the abandoned input (a higher fee) is signed.
    let mut b = PsbtBuilder::new(h.wallet()).spend(old_input, Branch::Receive, 0);
    b = b.pay(elsewhere(1), 10_000).change(0, 48_000).unwrap();
    let replacement = b.build().unwrap();
    let out = h.sign("replica-a", "payout-1", &replacement).unwrap();
    match out {
        SignOutcome::Signed { intent, .. } => assert_eq!(intent.state.signings, 2),
        other => panic!("{other:?}"),
    }
}

#[test]
fn racing_replicas_pay_an_intent_once() {
    // Eight replicas (each its own pipeline, sharing only the store), all
    // paying payout-1 with different inputs, and all paying different
    // payouts with one shared input.
    let h = harness(WalletKind::Wpkh, policy_with(""));
    let shared = h.utxo(100, 500_000);
    let same_intent: Vec<Psbt> = (0..8u32)
        .map(|i| h.payment(&[h.utxo(i, 60_000)], elsewhere(1), 10_000))
        .collect();
    let same_input: Vec<Psbt> = (0..8u32)
        .map(|i| {
            h.payment(
                std::slice::from_ref(&shared),
                elsewhere(2),
                10_000 + u64::from(i),
            )
        })
        .collect();
    // Two replicas of the pipeline (two servers sharing one store): only
    // the store's compare-and-swap stands between them.
    let store: Arc<dyn StateStore> = h.store.clone();
    let keys: Arc<dyn KeyBackend> = h.keys.clone();
    let replicas: Vec<WalletSigner> = (0..2)
        .map(|_| {
            let mut r = WalletSigner::new(store.clone(), keys.clone());
            r.add_wallet(
                h.name.clone(),
                WalletKind::Wpkh,
                Network::Testnet,
                policy_with(""),
            )
            .unwrap();
            r
        })
        .collect();
    let outcomes: Vec<(usize, SignOutcome)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let replica = &replicas[i % 2];
                let (id, psbt) = if i < 8 {
                    ("payout-1".to_owned(), same_intent[i].clone())
                } else {
                    (format!("payout-{}", i + 10), same_input[i - 8].clone())
                };
                let request = SignRequest {
                    wallet: h.name.clone(),
                    intent: intent(&id),
                    psbt: psbt.serialize(),
                    payments: Vec::new(),
                };
                s.spawn(move || {
                    (
                        i,
                        replica
                            .sign_at(&client(&format!("replica-{i}")), &request, NOW)
                            .unwrap(),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let count = |range: std::ops::Range<usize>, tag: Option<&Tag>| {
        outcomes
            .iter()
            .filter(|(i, o)| {
                range.contains(i)
                    && match (o, tag) {
                        (SignOutcome::Signed { .. }, None) => true,
                        (SignOutcome::Refused(r), Some(t)) => &r.tag == t,
                        _ => false,
                    }
            })
            .count()
    };
    assert_eq!(count(0..8, None), 1, "payout-1 signed exactly once");
    assert_eq!(count(0..8, Some(&tags::INTENT_CONFLICT)), 7);
    assert_eq!(
        count(8..16, None),
        1,
        "the shared input signed exactly once"
    );
    assert_eq!(count(8..16, Some(&tags::INPUT_CONFLICT)), 7);
    let ledger = h.signer.ledger(&h.name).unwrap();
    assert_eq!(ledger.reserved.len(), 2);
}

#[test]
fn change_disguised_with_a_wallet_key_origin_is_refused() {
    let h = harness(WalletKind::Wpkh, policy_with(""));
    let mut psbt = h.payment(&[h.utxo(0, 60_000)], elsewhere(1), 10_000);
    // The change output now pays a foreign script but keeps its origin.
    psbt.unsigned_tx.output[1].script_pubkey = elsewhere(9);
    refused_with(
        h.sign("replica-a", "payout-1", &psbt).unwrap(),
        &tags::CHANGE_NOT_WALLET,
    );
    assert!(h.intents().is_empty());
}

#[test]
fn declared_payments_must_match_and_be_of_the_wallet_network() {
    let h = harness(WalletKind::Wpkh, policy_with(""));
    let to = bitcoin::Address::from_script(&elsewhere(1), Network::Testnet).unwrap();
    let mainnet = bitcoin::Address::from_script(&elsewhere(1), Network::Bitcoin).unwrap();
    let psbt = h.payment(&[h.utxo(0, 60_000)], elsewhere(1), 10_000);
    let pay = |a: &bitcoin::Address, sat| vec![Payment::new(&a.to_string(), sat).unwrap()];

    refused_with(
        h.sign_with("a", "payout-1", &psbt, pay(&mainnet, 10_000), NOW)
            .unwrap(),
        &tags::NETWORK_MISMATCH,
    );
    refused_with(
        h.sign_with("a", "payout-1", &psbt, pay(&to, 9_999), NOW)
            .unwrap(),
        &tags::INTENT_MISMATCH,
    );
    let extra = [pay(&to, 10_000), pay(&to, 1)].concat();
    refused_with(
        h.sign_with("a", "payout-1", &psbt, extra, NOW).unwrap(),
        &tags::INTENT_MISMATCH,
    );
    signed(
        h.sign_with("a", "payout-1", &psbt, pay(&to, 10_000), NOW)
            .unwrap(),
    );
    assert!(matches!(
        Payment::new("not-an-address", 1),
        Err(BitcoinError::InvalidAddress { .. })
    ));
}

#[test]
fn a_mainnet_address_is_refused_in_a_testnet_allowlist() {
    let mainnet = bitcoin::Address::from_script(&elsewhere(1), Network::Bitcoin).unwrap();
    let text = DEFAULT_POLICY.replace("addresses = []", &format!("addresses = [\"{mainnet}\"]"));
    let err = SpendPolicy::from_toml(&text, Network::Testnet).unwrap_err();
    assert!(
        err.to_string().contains("destinations.addresses[0]"),
        "{err}"
    );
}

#[test]
fn destinations_outside_the_allowlist_are_refused() {
    let allowed = bitcoin::Address::from_script(&elsewhere(1), Network::Testnet).unwrap();
    // A descriptor allowlist: a cold wallet's receive branch.
    let secp = Secp256k1::new();
    let cold_key = bitcoin::bip32::Xpub::from_priv(
        &secp,
        &bitcoin::bip32::Xpriv::new_master(Network::Testnet, &[9u8; 32]).unwrap(),
    );
    let cold = format!("wpkh({cold_key}/0/*)");
    let miniscript_script = {
        use std::str::FromStr as _;
        miniscript::Descriptor::<miniscript::DescriptorPublicKey>::from_str(&cold)
            .unwrap()
            .at_derivation_index(17)
            .unwrap()
            .script_pubkey()
    };
    let policy = policy_with(&format!(
        "[destinations]\naddresses = [\"{allowed}\"]\ndescriptors = [\"{cold}\"]\ndescriptor_range = 100\n"
    ));
    let h = harness(WalletKind::Tr, policy);
    let bad = h.payment(&[h.utxo(0, 60_000)], elsewhere(2), 10_000);
    refused_with(
        h.sign("a", "payout-1", &bad).unwrap(),
        &tags::DESTINATION_NOT_ALLOWED,
    );
    let good = h.payment(&[h.utxo(1, 60_000)], elsewhere(1), 10_000);
    signed(h.sign("a", "payout-2", &good).unwrap());
    let cold_payment = h.payment(&[h.utxo(2, 60_000)], miniscript_script, 10_000);
    signed(h.sign("a", "payout-3", &cold_payment).unwrap());
}

#[test]
fn fees_above_the_caps_are_refused() {
    let policy = policy_with("[fees]\nmax_fee_sat = 5000\nmax_fee_rate_sat_per_vb = 20\n");
    let h = harness(WalletKind::Wpkh, policy);
    let utxo = h.utxo(0, 100_000);
    let with_fee = |fee: u64| {
        PsbtBuilder::new(h.wallet())
            .spend(utxo.clone(), Branch::Receive, 0)
            .pay(elsewhere(1), 10_000)
            .change(0, 90_000 - fee)
            .unwrap()
            .build()
            .unwrap()
    };
    // One P2WPKH input, two outputs: about 141 vB, so 20 sat/vB is ~2820.
    refused_with(
        h.sign("a", "p-1", &with_fee(6_000)).unwrap(),
        &tags::FEE_ABOVE_MAX,
    );
    refused_with(
        h.sign("a", "p-2", &with_fee(4_000)).unwrap(),
        &tags::FEE_RATE_ABOVE_MAX,
    );
    signed(h.sign("a", "p-3", &with_fee(2_000)).unwrap());
}

#[test]
fn velocity_over_the_window_is_refused_until_it_slides() {
    let policy = policy_with("[velocity]\nlimit_sat = 100000\nwindow_secs = 3600\n");
    let h = harness(WalletKind::Tr, policy);
    let pay = |i: u32, sat: u64| h.payment(&[h.utxo(i, 200_000)], elsewhere(1), sat);
    signed(
        h.sign_with("a", "p-1", &pay(0, 60_000), vec![], NOW)
            .unwrap(),
    );
    // Change does not count: 60k sent so far, 50k more would be 110k.
    refused_with(
        h.sign_with("a", "p-2", &pay(1, 50_000), vec![], NOW + 60)
            .unwrap(),
        &tags::VELOCITY_EXCEEDED,
    );
    signed(
        h.sign_with("a", "p-3", &pay(2, 40_000), vec![], NOW + 60)
            .unwrap(),
    );
    // An hour and two minutes later the first two payments left the window.
    signed(
        h.sign_with("a", "p-2", &pay(1, 50_000), vec![], NOW + 3720)
            .unwrap(),
    );
}

#[test]
fn fee_inflation_by_wrong_or_missing_amounts_is_an_error_and_changes_nothing() {
    let h = harness(WalletKind::Wpkh, policy_with(""));
    let psbt = h.payment(&[h.utxo(0, 60_000)], elsewhere(1), 10_000);

    // witness_utxo claims less than the previous transaction pays.
    let mut lie = psbt.clone();
    lie.inputs[0].witness_utxo.as_mut().unwrap().value = Amount::from_sat(59_000);
    assert!(matches!(
        h.sign("a", "p-1", &lie),
        Err(BitcoinError::UtxoMismatch { index: 0, .. })
    ));

    // A previous transaction that is not the one spent.
    let mut wrong_tx = psbt.clone();
    wrong_tx.inputs[0].non_witness_utxo = Some(h.utxo(0, 60_000));
    assert!(matches!(
        h.sign("a", "p-1", &wrong_tx),
        Err(BitcoinError::UtxoMismatch { .. })
    ));

    // No previous transaction where the policy requires it.
    let mut only_witness = psbt.clone();
    only_witness.inputs[0].non_witness_utxo = None;
    assert!(matches!(
        h.sign("a", "p-1", &only_witness),
        Err(BitcoinError::MissingUtxo { .. })
    ));

    // No UTXO at all.
    let mut none = only_witness.clone();
    none.inputs[0].witness_utxo = None;
    assert!(matches!(
        h.sign("a", "p-1", &none),
        Err(BitcoinError::MissingUtxo { .. })
    ));

    assert!(h.intents().is_empty());
    assert!(h.signer.ledger(&h.name).unwrap().reserved.is_empty());

    // With the requirement off, witness_utxo alone is enough.
    let relaxed = harness(
        WalletKind::Wpkh,
        policy_with("[inputs]\nrequire_previous_tx_for_segwit_v0 = false\n"),
    );
    let mut psbt = relaxed.payment(&[relaxed.utxo(0, 60_000)], elsewhere(1), 10_000);
    psbt.inputs[0].non_witness_utxo = None;
    signed(relaxed.sign("a", "p-1", &psbt).unwrap());
}

#[test]
fn sighash_types_other_than_all_are_errors() {
    use bitcoin::psbt::PsbtSighashType;
    for (kind, bad) in [
        (
            WalletKind::Wpkh,
            PsbtSighashType::from(EcdsaSighashType::None),
        ),
        (
            WalletKind::Wpkh,
            PsbtSighashType::from(EcdsaSighashType::AllPlusAnyoneCanPay),
        ),
        (
            WalletKind::Tr,
            PsbtSighashType::from(TapSighashType::Single),
        ),
        (WalletKind::Tr, PsbtSighashType::from_u32(0x55)),
    ] {
        let h = harness(kind, policy_with(""));
        let mut psbt = h.payment(&[h.utxo(0, 60_000)], elsewhere(1), 10_000);
        psbt.inputs[0].sighash_type = Some(bad);
        assert!(
            matches!(
                h.sign("a", "p-1", &psbt),
                Err(BitcoinError::UnsupportedSighash { index: 0, .. })
            ),
            "{kind} {bad}"
        );
        assert!(h.intents().is_empty());
    }
}

#[test]
fn foreign_inputs_are_left_alone() {
    let h = harness(WalletKind::Wpkh, policy_with(""));
    let other = harness(WalletKind::Tr, policy_with(""));
    let ours = h.utxo(0, 60_000);
    let theirs = other.utxo(0, 40_000);
    let mut psbt = h.payment(&[ours], elsewhere(1), 10_000);
    // A second input, the other wallet's (its own origin, its script).
    let foreign = other.payment(&[theirs], elsewhere(1), 1_000);
    psbt.unsigned_tx
        .input
        .push(foreign.unsigned_tx.input[0].clone());
    psbt.inputs.push(foreign.inputs[0].clone());
    let out = signed(h.sign("a", "p-1", &psbt).unwrap());
    assert_eq!(out.inputs[0].partial_sigs.len(), 1);
    assert!(out.inputs[1].partial_sigs.is_empty());
    assert!(out.inputs[1].tap_key_sig.is_none());
    assert_eq!(h.signer.ledger(&h.name).unwrap().reserved.len(), 1);

    // A PSBT with no input of the wallet is an error.
    let only_theirs = other.payment(&[other.utxo(1, 40_000)], elsewhere(1), 1_000);
    assert!(matches!(
        h.sign("a", "p-2", &only_theirs),
        Err(BitcoinError::NoWalletInputs(_))
    ));
}

#[test]
fn malformed_input_is_a_typed_error_and_never_panics() {
    let h = harness(WalletKind::Tr, policy_with(""));
    let good = h
        .payment(&[h.utxo(0, 60_000)], elsewhere(1), 10_000)
        .serialize();
    let request = |bytes: Vec<u8>| SignRequest {
        wallet: h.name.clone(),
        intent: intent("p-1"),
        psbt: bytes,
        payments: Vec::new(),
    };
    assert!(matches!(
        h.signer
            .sign_at(&client("a"), &request(b"garbage".to_vec()), NOW),
        Err(BitcoinError::MalformedPsbt(_))
    ));
    // Every truncation and a spread of single-byte flips: an error or (a
    // flip in a field that still decodes) any outcome, never a panic.
    for cut in 0..good.len() {
        let _ = h
            .signer
            .sign_at(&client("a"), &request(good[..cut].to_vec()), NOW);
    }
    for i in (0..good.len()).step_by(3) {
        let mut bytes = good.clone();
        bytes[i] ^= 0x41;
        let _ = h.signer.sign_at(&client("a"), &request(bytes), NOW);
    }
    let mut spending_more = h.payment(&[h.utxo(1, 60_000)], elsewhere(1), 10_000);
    spending_more.unsigned_tx.output[0].value = Amount::from_sat(70_000);
    assert!(matches!(
        h.sign("a", "p-9", &spending_more),
        Err(BitcoinError::OutputsExceedInputs { .. })
    ));
    assert!(matches!(
        IntentId::new("a/b"),
        Err(BitcoinError::InvalidIntent(_))
    ));
    assert!(matches!(
        IntentId::new(""),
        Err(BitcoinError::InvalidIntent(_))
    ));
    assert!(matches!(
        IntentId::new("x".repeat(65)),
        Err(BitcoinError::InvalidIntent(_))
    ));
}

#[test]
fn the_default_policy_file_loads_and_bad_files_name_their_field() {
    for network in [
        Network::Bitcoin,
        Network::Testnet,
        Network::Signet,
        Network::Regtest,
    ] {
        SpendPolicy::from_toml(DEFAULT_POLICY, network).unwrap();
    }
    let unknown = format!("{DEFAULT_POLICY}\n[extra]\nx = 1\n");
    let err = SpendPolicy::from_toml(&unknown, Network::Testnet).unwrap_err();
    assert!(err.to_string().contains("extra"), "{err}");
    let bad_descriptor =
        DEFAULT_POLICY.replace("descriptors = []", "descriptors = [\"wpkh(nope)\"]");
    let err = SpendPolicy::from_toml(&bad_descriptor, Network::Testnet).unwrap_err();
    assert!(
        err.to_string().contains("destinations.descriptors[0]"),
        "{err}"
    );
    let zero_window = DEFAULT_POLICY.replace("window_secs = 86_400", "window_secs = 0");
    assert!(SpendPolicy::from_toml(&zero_window, Network::Testnet).is_err());
}

/// A second test double beside the real store: the real SQLite store whose
/// commits fail as on a full disk.
struct FullDisk(Arc<SqliteStore>);

impl StateStore for FullDisk {
    fn load(
        &self,
        object: &tidemark_core::ObjectId,
    ) -> Result<Option<tidemark_core::StoredState>, tidemark_core::StoreError> {
        self.0.load(object)
    }
    fn commit(
        &self,
        _: tidemark_core::StateWrite,
        _: tidemark_core::AuditEntry,
    ) -> Result<(), tidemark_core::StoreError> {
        Err(tidemark_core::StoreError::Full("injected".into()))
    }
    fn commit_all(
        &self,
        _: Vec<tidemark_core::StateWrite>,
        _: tidemark_core::AuditEntry,
    ) -> Result<(), tidemark_core::StoreError> {
        Err(tidemark_core::StoreError::Full("injected".into()))
    }
    fn audit(&self, entry: tidemark_core::AuditEntry) -> Result<(), tidemark_core::StoreError> {
        self.0.audit(entry)
    }
    fn objects(
        &self,
    ) -> Result<Vec<(tidemark_core::ObjectId, tidemark_core::StoredState)>, tidemark_core::StoreError>
    {
        self.0.objects()
    }
    fn audit_records(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<tidemark_core::AuditRecord>, tidemark_core::StoreError> {
        self.0.audit_records(from, limit)
    }
    fn check_health(&self) -> Result<(), tidemark_core::StoreError> {
        self.0.check_health()
    }
}

#[test]
fn nothing_is_released_when_the_commit_fails() {
    let h = harness(WalletKind::Tr, policy_with(""));
    let mut failing = WalletSigner::new(Arc::new(FullDisk(h.store.clone())), h.keys.clone());
    failing
        .add_wallet(
            h.name.clone(),
            WalletKind::Tr,
            Network::Testnet,
            policy_with(""),
        )
        .unwrap();
    let psbt = h.payment(&[h.utxo(0, 60_000)], elsewhere(1), 10_000);
    let request = SignRequest {
        wallet: h.name.clone(),
        intent: intent("p-1"),
        psbt: psbt.serialize(),
        payments: Vec::new(),
    };
    assert!(matches!(
        failing.sign_at(&client("a"), &request, NOW),
        Err(BitcoinError::Store(tidemark_core::StoreError::Full(_)))
    ));
    assert!(h.intents().is_empty());
    // The real store then signs it, once.
    signed(h.sign("a", "p-1", &psbt).unwrap());
}
