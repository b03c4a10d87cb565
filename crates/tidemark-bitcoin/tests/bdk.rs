//! The proof with a real wallet: a watch-only BDK wallet (`bdk_wallet`)
//! holding Tidemark's own descriptors builds the PSBTs, Tidemark signs them
//! through [`WalletSigner::sign`] over the real store and keystore, BDK
//! finalizes, and Bitcoin Core's script interpreter (libbitcoinconsensus)
//! accepts every input against its prevout; for `wpkh` and `tr`, one input
//! and several, and beside an input that is not the wallet's.
//!
//! No node is involved: the wallet is funded by synthetic transactions
//! handed to BDK as unconfirmed. Every verification is also run on a
//! tampered copy of the transaction (one output value changed after
//! signing), which must fail on every input, so the check can fail.
//!
//! libbitcoinconsensus is Core 26.0's (`bitcoinconsensus` 0.106), called
//! with the spent outputs and `VERIFY_TAPROOT`. The `bitcoin` crate's own
//! `bitcoinconsensus` feature (bitcoin 0.32) binds Core 25.1's library,
//! whose flags have no taproot bit and whose API takes no spent outputs:
//! under those flags a witness v1 output is spent without any check, so
//! `Transaction::verify` would accept a forged taproot spend
//! (`pre_taproot_flags_accept_a_tampered_taproot_spend` below).

// Test code: a failed unwrap is a failed test (clippy.toml allows it in
// `#[test]` functions; this extends it to helpers and closures).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;

use bdk_wallet::{KeychainKind, SignOptions, TxOrdering};
use bitcoin::bip32::DerivationPath;
use bitcoin::hashes::{Hash as _, sha256d};
use bitcoin::psbt::{Input, Psbt};
use bitcoin::secp256k1::{Message, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, CompressedPublicKey, FeeRate, Network, OutPoint, ScriptBuf, Sequence, Transaction,
    TxIn, TxOut, Txid, Witness, absolute,
};
use bitcoinconsensus::{Utxo, VERIFY_ALL_PRE_TAPROOT, VERIFY_TAPROOT};
use miniscript::Descriptor;
use secrecy::{SecretSlice, SecretString};
use tempfile::TempDir;
use tidemark_bitcoin::{
    Branch, IntentId, IntentRecord, SignOutcome, SignRequest, SpendPolicy, WalletKind, WalletSigner,
};
use tidemark_core::{ClientId, KeyId};
use tidemark_keys::{KdfParams, SoftwareKeystore};
use tidemark_store::SqliteStore;

const NETWORK: Network = Network::Regtest;
/// The repository's default policy, as an operator would deploy it
/// (`require_previous_tx_for_segwit_v0 = true`).
const POLICY: &str = include_str!("../../../policies/bitcoin-wallet.toml");
const SEED: [u8; 32] = [7; 32];
const FEE_RATE_SAT_PER_VB: u32 = 2;
/// Every flag of the library's interface: the script rules in force today.
const ALL_FLAGS: u32 = VERIFY_ALL_PRE_TAPROOT | VERIFY_TAPROOT;

/// A Tidemark signer holding one wallet (real keystore, real SQLite store)
/// and a watch-only BDK wallet over the same descriptors.
struct Setup {
    _dir: TempDir,
    kind: WalletKind,
    name: KeyId,
    signer: WalletSigner,
    bdk: bdk_wallet::Wallet,
    /// Every output the synthetic funding transactions created.
    prevouts: HashMap<OutPoint, TxOut>,
    funded: u32,
}

/// A transaction BDK built, Tidemark signed and BDK finalized.
struct Spent {
    /// The PSBT BDK built, before signing.
    unsigned: Psbt,
    /// The PSBT Tidemark returned.
    signed: Psbt,
    /// The intent Tidemark recorded.
    intent: IntentRecord,
    tx: Transaction,
}

/// An output of a key that is not the wallet's, with its private key.
struct Foreign {
    key: SecretKey,
    outpoint: OutPoint,
    input: Input,
}

fn account_path(kind: WalletKind) -> DerivationPath {
    match kind {
        WalletKind::Wpkh => "m/84'/1'/0'",
        WalletKind::Tr => "m/86'/1'/0'",
    }
    .parse()
    .unwrap()
}

impl Setup {
    fn new(kind: WalletKind) -> Setup {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let name = KeyId::new(format!("wallet-{kind}")).unwrap();
        let mut keys = SoftwareKeystore::create_from_seed(
            dir.path().join("keystore"),
            &SecretString::from("correct horse"),
            SecretSlice::from(SEED.to_vec()),
            KdfParams::insecure_for_tests(),
        )
        .unwrap();
        keys.add_secp256k1(name.clone(), &account_path(kind))
            .unwrap();
        let store = SqliteStore::create(dir.path().join("state.db")).unwrap();
        let mut signer = WalletSigner::new(Arc::new(store), Arc::new(keys));
        let policy = SpendPolicy::from_toml(POLICY, NETWORK).unwrap();
        let wallet = signer
            .add_wallet(name.clone(), kind, NETWORK, policy)
            .unwrap();
        let receive = wallet.descriptor(Branch::Receive);
        let change = wallet.descriptor(Branch::Change);
        let first = wallet.address_at(Branch::Receive, 0).unwrap();
        let first_change = wallet.address_at(Branch::Change, 0).unwrap();
        assert!(
            receive.starts_with(&format!("{kind}([")) && receive.contains("tpub"),
            "{receive}"
        );
        assert!(!receive.contains("prv") && !change.contains("prv"));

        let bdk = bdk_wallet::Wallet::create(receive, change)
            .network(NETWORK)
            .create_wallet_no_persist()
            .unwrap();
        // BDK derives the same addresses from the descriptors as Tidemark.
        assert_eq!(bdk.peek_address(KeychainKind::External, 0).address, first);
        assert_eq!(
            bdk.peek_address(KeychainKind::Internal, 0).address,
            first_change
        );
        Setup {
            _dir: dir,
            kind,
            name,
            signer,
            bdk,
            prevouts: HashMap::new(),
            funded: 0,
        }
    }

    /// A synthetic transaction paying `value` to `script`; its own input
    /// spends a made-up outpoint, unique per call (a transaction without
    /// inputs would not survive a PSBT round trip).
    fn funding_tx(&mut self, script: ScriptBuf, value: u64) -> Transaction {
        self.funded += 1;
        let tx = Transaction {
            version: Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint {
                    txid: Txid::from_raw_hash(sha256d::Hash::hash(
                        format!("funding {}", self.funded).as_bytes(),
                    )),
                    vout: 0,
                },
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![TxOut {
                value: Amount::from_sat(value),
                script_pubkey: script,
            }],
        };
        let outpoint = OutPoint::new(tx.compute_txid(), 0);
        self.prevouts.insert(outpoint, tx.output[0].clone());
        tx
    }

    /// Pays each of `values` to a new BDK receive address, one unconfirmed
    /// transaction each; returns the wallet's new outpoints.
    fn fund(&mut self, values: &[u64]) -> Vec<OutPoint> {
        let mut outpoints = Vec::new();
        for value in values {
            let address = self.bdk.reveal_next_address(KeychainKind::External);
            let tx = self.funding_tx(address.script_pubkey(), *value);
            outpoints.push(OutPoint::new(tx.compute_txid(), 0));
            let seen = 1_700_000_000 + u64::from(self.funded);
            self.bdk.apply_unconfirmed_txs([(tx, seen)]);
        }
        let spendable: Vec<_> = self.bdk.list_unspent().map(|u| u.outpoint).collect();
        for outpoint in &outpoints {
            assert!(spendable.contains(outpoint), "BDK does not see {outpoint}");
        }
        outpoints
    }

    /// A P2WPKH output of a separately generated key, not the wallet's.
    fn foreign(&mut self, value: u64) -> Foreign {
        let key = SecretKey::from_slice(&[0x42; 32]).unwrap();
        let tx = self.funding_tx(ScriptBuf::new_p2wpkh(&public(&key).wpubkey_hash()), value);
        let outpoint = OutPoint::new(tx.compute_txid(), 0);
        let input = Input {
            witness_utxo: Some(tx.output[0].clone()),
            non_witness_utxo: Some(tx),
            ..Input::default()
        };
        Foreign {
            key,
            outpoint,
            input,
        }
    }

    /// BDK builds a PSBT spending exactly `utxos` (and `foreign`, if any)
    /// and paying `pay` to an outside address, change to itself.
    fn build(&mut self, utxos: &[OutPoint], foreign: Option<&Foreign>, pay: u64) -> Psbt {
        let mut builder = self.bdk.build_tx();
        builder
            .add_utxos(utxos)
            .unwrap()
            .manually_selected_only()
            .add_recipient(payee(), Amount::from_sat(pay))
            .fee_rate(FeeRate::from_sat_per_vb_u32(FEE_RATE_SAT_PER_VB))
            .ordering(TxOrdering::Untouched);
        if let Some(f) = foreign {
            let key = bitcoin::PublicKey::new(public(&f.key).0);
            let weight = Descriptor::new_wpkh(key)
                .unwrap()
                .max_weight_to_satisfy()
                .unwrap();
            builder
                .add_foreign_utxo(f.outpoint, f.input.clone(), weight)
                .unwrap();
        }
        let psbt = builder.finish().unwrap();
        assert_eq!(
            psbt.inputs.len(),
            utxos.len() + usize::from(foreign.is_some())
        );
        self.assert_bdk_metadata(&psbt, utxos);
        psbt
    }

    /// What Tidemark needs and BDK must attach: every wallet input's UTXO
    /// (for wpkh the previous transaction) and key origin, and a key
    /// origin on the change output.
    fn assert_bdk_metadata(&self, psbt: &Psbt, utxos: &[OutPoint]) {
        for index in wallet_inputs(psbt, utxos) {
            let input = &psbt.inputs[index];
            assert!(input.witness_utxo.is_some(), "input {index}: witness_utxo");
            match self.kind {
                WalletKind::Wpkh => {
                    assert!(input.non_witness_utxo.is_some(), "input {index}: prev tx");
                    assert_eq!(input.bip32_derivation.len(), 1, "input {index}: origin");
                }
                WalletKind::Tr => {
                    assert!(input.tap_internal_key.is_some(), "input {index}");
                    assert_eq!(input.tap_key_origins.len(), 1, "input {index}: origin");
                }
            }
        }
        let change: Vec<_> = psbt
            .outputs
            .iter()
            .filter(|o| !o.bip32_derivation.is_empty() || !o.tap_key_origins.is_empty())
            .collect();
        assert_eq!(change.len(), 1, "BDK's change output carries its origin");
    }

    /// Tidemark signs `psbt` for `intent`; a refusal fails the test.
    fn sign(&self, intent: &str, psbt: &Psbt) -> (Psbt, IntentRecord) {
        let request = SignRequest {
            wallet: self.name.clone(),
            intent: IntentId::new(intent).unwrap(),
            psbt: psbt.serialize(),
            payments: vec![],
        };
        let client = ClientId::new("payments-a").unwrap();
        match self.signer.sign(&client, &request).unwrap() {
            SignOutcome::Signed {
                psbt: signed,
                intent,
            } => {
                // An identical repeat gets the stored signatures, byte for
                // byte.
                match self.signer.sign(&client, &request).unwrap() {
                    SignOutcome::Replayed { psbt: again, .. } => assert_eq!(again, signed),
                    other => panic!("repeat of {intent:?} was not replayed: {other:?}"),
                }
                (Psbt::deserialize(&signed).unwrap(), intent)
            }
            other => panic!("Tidemark did not sign {}: {other:?}", request.intent),
        }
    }

    /// The whole path: BDK builds, Tidemark signs, (the foreign key signs
    /// its input), BDK finalizes, the transaction is extracted and every
    /// input verified; the tampered copy fails on every input.
    fn spend(&mut self, intent: &str, utxos: &[OutPoint], foreign: Option<&Foreign>) -> Spent {
        let owned: u64 = utxos.iter().map(|o| self.prevouts[o].value.to_sat()).sum();
        let pay = owned / 2;
        let unsigned = self.build(utxos, foreign, pay);
        let (signed, intent) = self.sign(intent, &unsigned);

        let ours = wallet_inputs(&signed, utxos);
        assert_eq!(ours.len(), utxos.len());
        self.assert_signed(&signed, &ours);
        assert_eq!(signed.unsigned_tx, unsigned.unsigned_tx);
        assert_eq!(intent.state.wallet_inputs.len(), utxos.len());
        assert_eq!(
            intent.state.sent_sat, pay,
            "Tidemark counts BDK's change as the wallet's"
        );
        assert_eq!(intent.state.fee_sat, unsigned.fee().unwrap().to_sat());

        let mut finalizing = signed.clone();
        if let Some(f) = foreign {
            let index = input_of(&finalizing, f.outpoint);
            assert_eq!(
                finalizing.inputs[index], unsigned.inputs[index],
                "Tidemark left the foreign input untouched"
            );
            sign_p2wpkh(&mut finalizing, index, &f.key);
        }
        let finalized = self
            .bdk
            .finalize_psbt(&mut finalizing, SignOptions::default())
            .unwrap();
        assert!(finalized, "BDK finalizes Tidemark's signatures");
        let tx = finalizing.extract_tx().unwrap();
        assert_eq!(tx.compute_txid(), unsigned.unsigned_tx.compute_txid());

        for (index, result) in verify(&tx, &self.prevouts, ALL_FLAGS).iter().enumerate() {
            assert_eq!(*result, Ok(()), "input {index} does not verify");
        }
        let tampered = tamper(&tx);
        for (index, result) in verify(&tampered, &self.prevouts, ALL_FLAGS)
            .iter()
            .enumerate()
        {
            assert!(result.is_err(), "tampered input {index} still verifies");
        }
        Spent {
            unsigned,
            signed,
            intent,
            tx,
        }
    }

    /// Every wallet input carries exactly Tidemark's signature.
    fn assert_signed(&self, psbt: &Psbt, indexes: &[usize]) {
        for &index in indexes {
            let input = &psbt.inputs[index];
            match self.kind {
                WalletKind::Wpkh => {
                    let (key, _) = input.bip32_derivation.iter().next().unwrap();
                    assert_eq!(input.partial_sigs.len(), 1, "input {index}");
                    assert!(
                        input
                            .partial_sigs
                            .contains_key(&bitcoin::PublicKey::new(*key))
                    );
                    assert!(input.tap_key_sig.is_none());
                }
                WalletKind::Tr => {
                    assert!(input.tap_key_sig.is_some(), "input {index}");
                    assert!(input.partial_sigs.is_empty());
                }
            }
        }
    }
}

fn public(key: &SecretKey) -> CompressedPublicKey {
    CompressedPublicKey(key.public_key(&Secp256k1::signing_only()))
}

/// An outside address (P2WPKH of a key nobody here uses).
fn payee() -> ScriptBuf {
    let key = SecretKey::from_slice(&[0x51; 32]).unwrap();
    ScriptBuf::new_p2wpkh(&public(&key).wpubkey_hash())
}

fn input_of(psbt: &Psbt, outpoint: OutPoint) -> usize {
    psbt.unsigned_tx
        .input
        .iter()
        .position(|i| i.previous_output == outpoint)
        .unwrap()
}

fn wallet_inputs(psbt: &Psbt, utxos: &[OutPoint]) -> Vec<usize> {
    utxos.iter().map(|o| input_of(psbt, *o)).collect()
}

/// Signs and finalizes P2WPKH input `index` with `key` (SIGHASH_ALL), as
/// the foreign input's owner would.
fn sign_p2wpkh(psbt: &mut Psbt, index: usize, key: &SecretKey) {
    let utxo = psbt.inputs[index].witness_utxo.clone().unwrap();
    let sighash = SighashCache::new(&psbt.unsigned_tx)
        .p2wpkh_signature_hash(
            index,
            &utxo.script_pubkey,
            utxo.value,
            EcdsaSighashType::All,
        )
        .unwrap();
    let signature = Secp256k1::signing_only().sign_ecdsa(&Message::from(sighash), key);
    let signature = bitcoin::ecdsa::Signature::sighash_all(signature);
    psbt.inputs[index].final_script_witness = Some(Witness::p2wpkh(&signature, &public(key).0));
}

/// `tx` with its first output one satoshi smaller.
fn tamper(tx: &Transaction) -> Transaction {
    let mut tampered = tx.clone();
    tampered.output[0].value -= Amount::from_sat(1);
    tampered
}

/// libbitcoinconsensus's verdict on every input of `tx`, given every
/// spent output (taproot signatures commit to all of them).
fn verify(
    tx: &Transaction,
    prevouts: &HashMap<OutPoint, TxOut>,
    flags: u32,
) -> Vec<Result<(), bitcoinconsensus::Error>> {
    let bytes = bitcoin::consensus::serialize(tx);
    let spent: Vec<&TxOut> = tx
        .input
        .iter()
        .map(|i| &prevouts[&i.previous_output])
        .collect();
    let utxos: Vec<Utxo> = spent
        .iter()
        .map(|o| Utxo {
            script_pubkey: o.script_pubkey.as_bytes().as_ptr(),
            script_pubkey_len: u32::try_from(o.script_pubkey.len()).unwrap(),
            value: i64::try_from(o.value.to_sat()).unwrap(),
        })
        .collect();
    spent
        .iter()
        .enumerate()
        .map(|(index, out)| {
            bitcoinconsensus::verify_with_flags(
                out.script_pubkey.as_bytes(),
                out.value.to_sat(),
                &bytes,
                Some(&utxos),
                index,
                flags,
            )
        })
        .collect()
}

fn single_input(kind: WalletKind) {
    let mut setup = Setup::new(kind);
    let utxos = setup.fund(&[100_000]);
    let spent = setup.spend("payout-1", &utxos, None);
    assert_eq!(spent.tx.input.len(), 1);
    assert_eq!(spent.tx.output.len(), 2, "payment and change");
}

fn multi_input(kind: WalletKind) {
    let mut setup = Setup::new(kind);
    let utxos = setup.fund(&[30_000, 40_000, 50_000]);
    let spent = setup.spend("payout-2", &utxos, None);
    assert_eq!(spent.tx.input.len(), 3);
    assert_eq!(spent.intent.state.signed.len(), 3);
}

fn mixed_with_foreign_input(kind: WalletKind) {
    let mut setup = Setup::new(kind);
    let utxos = setup.fund(&[80_000]);
    let foreign = setup.foreign(60_000);
    let spent = setup.spend("payout-3", &utxos, Some(&foreign));
    let index = input_of(&spent.signed, foreign.outpoint);
    let input = &spent.signed.inputs[index];
    assert!(input.partial_sigs.is_empty() && input.tap_key_sig.is_none());
    assert_eq!(*input, spent.unsigned.inputs[index]);
    assert_eq!(spent.intent.state.inputs.len(), 2);
    assert_eq!(spent.intent.state.wallet_inputs.len(), 1);
    assert_eq!(spent.intent.state.signed.len(), 1);
    assert_eq!(spent.tx.input.len(), 2);
}

#[test]
fn wpkh_single_input_verifies() {
    single_input(WalletKind::Wpkh);
}

#[test]
fn wpkh_multi_input_verifies() {
    multi_input(WalletKind::Wpkh);
}

#[test]
fn wpkh_beside_a_foreign_input_signs_only_its_own() {
    mixed_with_foreign_input(WalletKind::Wpkh);
}

#[test]
fn tr_single_input_verifies() {
    single_input(WalletKind::Tr);
}

#[test]
fn tr_multi_input_verifies() {
    multi_input(WalletKind::Tr);
}

#[test]
fn tr_beside_a_foreign_input_signs_only_its_own() {
    mixed_with_foreign_input(WalletKind::Tr);
}

/// Why the `bitcoin` crate's `bitcoinconsensus` feature is not enough:
/// its flags (Core 25.1's `VERIFY_ALL`, here `VERIFY_ALL_PRE_TAPROOT`)
/// accept a taproot spend whose signature no longer matches.
#[test]
fn pre_taproot_flags_accept_a_tampered_taproot_spend() {
    let mut setup = Setup::new(WalletKind::Tr);
    let utxos = setup.fund(&[100_000]);
    let spent = setup.spend("payout-4", &utxos, None);
    let tampered = tamper(&spent.tx);
    assert!(verify(&tampered, &setup.prevouts, ALL_FLAGS)[0].is_err());
    assert_eq!(
        verify(&tampered, &setup.prevouts, VERIFY_ALL_PRE_TAPROOT)[0],
        Ok(())
    );
}
