//! The bitcoin service end to end: a real signer (SQLite store with fsync,
//! encrypted keystore) over mutual TLS on 127.0.0.1, signing PSBTs for
//! payment intents as active-active payment servers would ask it to.
//!
//! The PSBTs spend synthetic coins of the development wallets `init`
//! creates; every signature returned is checked against the sighash the
//! test computes itself (BIP 143 for wpkh, BIP 341 for tr), and a wpkh
//! PSBT is finalized into a transaction.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::{audit, audited};

use tidemark_bitcoin::bitcoin::hashes::Hash as _;
use tidemark_bitcoin::bitcoin::key::TapTweak as _;
use tidemark_bitcoin::bitcoin::psbt::Psbt;
use tidemark_bitcoin::bitcoin::secp256k1::{Message, Secp256k1};
use tidemark_bitcoin::bitcoin::sighash::{EcdsaSighashType, Prevouts, SighashCache};
use tidemark_bitcoin::bitcoin::{
    Address, CompressedPublicKey, Network, ScriptBuf, Transaction, TxOut, WScriptHash, Witness,
};
use tidemark_bitcoin::fixtures::{PsbtBuilder, funding};
use tidemark_bitcoin::{Branch, Wallet};
use tidemark_cli::embedded::{Embedded, TR_WALLET, WPKH_WALLET};
use tidemark_client::{Client, ClientError, Refusal, v1};
use tidemark_core::{AuditOutcome, AuditRecord, StateStore as _};

/// What each synthetic coin pays the wallet.
const COIN_SAT: u64 = 60_000;
/// What each PSBT pays out.
const PAYMENT_SAT: u64 = 100_000;
/// The fee of each PSBT.
const FEE_SAT: u64 = 1_000;

/// A foreign regtest address (a P2WSH of `OP_TRUE`).
fn payee() -> Address {
    let script = ScriptBuf::new_p2wsh(&WScriptHash::hash(&[0x51]));
    Address::from_script(&script, Network::Regtest).unwrap()
}

/// A PSBT spending coins `coins` (coin `n`: a synthetic transaction paying
/// the wallet's receive key `n`), paying [`PAYMENT_SAT`] to [`payee`] and
/// the rest minus [`FEE_SAT`] to change key `change`.
fn psbt(wallet: &Wallet, coins: &[u32], change: u32) -> Psbt {
    let mut builder = PsbtBuilder::new(wallet);
    for &n in coins {
        let prev = funding(wallet, Branch::Receive, n, COIN_SAT, n).unwrap();
        builder = builder.spend(prev, Branch::Receive, n);
    }
    let total = COIN_SAT * coins.len() as u64;
    builder
        .pay(payee().script_pubkey(), PAYMENT_SAT)
        .change(change, total - PAYMENT_SAT - FEE_SAT)
        .unwrap()
        .build()
        .unwrap()
}

/// A request to sign `psbt` for `intent` of `wallet`, declaring its payment.
fn request(wallet: &str, intent: &str, psbt: &Psbt) -> v1::SignPsbtRequest {
    v1::SignPsbtRequest {
        wallet: wallet.into(),
        intent: intent.into(),
        psbt: psbt.serialize(),
        payments: vec![v1::Payment {
            address: payee().to_string(),
            amount_sat: PAYMENT_SAT,
        }],
    }
}

fn release(wallet: &str, intent: &str, how: v1::Release) -> v1::ReleaseIntentRequest {
    v1::ReleaseIntentRequest {
        wallet: wallet.into(),
        intent: intent.into(),
        release: how as i32,
    }
}

/// The refusal in `result`, which must be one.
fn refusal<T: std::fmt::Debug>(result: Result<T, ClientError>) -> Refusal {
    match result {
        Err(ClientError::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Checks every wpkh input carries exactly one signature, by the key its
/// coin was paid to, valid for the BIP 143 sighash of the unsigned
/// transaction.
fn verify_wpkh(psbt: &Psbt, wallet: &Wallet, coins: &[u32]) {
    let secp = Secp256k1::verification_only();
    let mut cache = SighashCache::new(&psbt.unsigned_tx);
    for (i, (input, &coin)) in psbt.inputs.iter().zip(coins).enumerate() {
        assert_eq!(input.partial_sigs.len(), 1, "input {i}: {input:?}");
        let (key, sig) = input.partial_sigs.first_key_value().unwrap();
        assert_eq!(
            key.inner,
            wallet.public_key_at(Branch::Receive, coin).unwrap()
        );
        assert_eq!(sig.sighash_type, EcdsaSighashType::All);
        let utxo = input.witness_utxo.as_ref().unwrap();
        let pubkey = CompressedPublicKey(key.inner);
        assert_eq!(
            utxo.script_pubkey,
            ScriptBuf::new_p2wpkh(&pubkey.wpubkey_hash())
        );
        let sighash = cache
            .p2wpkh_signature_hash(i, &utxo.script_pubkey, utxo.value, EcdsaSighashType::All)
            .unwrap();
        let message = Message::from_digest(sighash.to_byte_array());
        secp.verify_ecdsa(&message, &sig.signature, &key.inner)
            .unwrap_or_else(|e| panic!("input {i}: the signature does not verify: {e}"));
    }
}

/// Checks every tr input carries a key-path signature valid for the BIP
/// 341 sighash under the output key its coin was paid to.
fn verify_tr(psbt: &Psbt) {
    let secp = Secp256k1::verification_only();
    let mut cache = SighashCache::new(&psbt.unsigned_tx);
    let prevouts: Vec<TxOut> = psbt
        .inputs
        .iter()
        .map(|i| i.witness_utxo.clone().unwrap())
        .collect();
    for (i, input) in psbt.inputs.iter().enumerate() {
        let sig = input.tap_key_sig.expect("a taproot key-path signature");
        let internal = input.tap_internal_key.unwrap();
        let (output_key, _) = internal.tap_tweak(&secp, None);
        assert_eq!(
            prevouts[i].script_pubkey,
            ScriptBuf::new_p2tr_tweaked(output_key)
        );
        let sighash = cache
            .taproot_key_spend_signature_hash(i, &Prevouts::All(&prevouts), sig.sighash_type)
            .unwrap();
        let message = Message::from_digest(sighash.to_byte_array());
        secp.verify_schnorr(&sig.signature, &message, &output_key.to_x_only_public_key())
            .unwrap_or_else(|e| panic!("input {i}: the signature does not verify: {e}"));
    }
}

/// Moves each wpkh partial signature into the input's final witness and
/// extracts the signed transaction.
fn finalize_wpkh(mut psbt: Psbt) -> Transaction {
    for input in &mut psbt.inputs {
        let (key, sig) = input.partial_sigs.pop_first().unwrap();
        input.final_script_witness = Some(Witness::p2wpkh(&sig, &key.inner));
        input.partial_sigs.clear();
        input.bip32_derivation.clear();
        input.sighash_type = None;
    }
    psbt.extract_tx().expect("a finalized PSBT extracts")
}

/// [`support::audited`] for `denied` records with `tag`.
async fn denials(signer: &Embedded, tag: &str, n: usize) -> Vec<AuditRecord> {
    audited(signer, AuditOutcome::Denied, Some(tag), n).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_two_input_wpkh_psbt_is_signed_finalized_and_replayed_byte_for_byte() {
    let signer = support::signer(2).await;
    let wallet = signer.wallet(WPKH_WALLET).unwrap();
    let (one, two) = (
        signer.client("replica-1").unwrap(),
        signer.client("replica-2").unwrap(),
    );
    let unsigned = psbt(&wallet, &[0, 1], 0);

    let signed = one
        .sign_psbt(request(WPKH_WALLET, "payout-1", &unsigned))
        .await
        .unwrap();
    assert_eq!(signed.outcome, v1::Outcome::Signed as i32);
    let intent = signed.intent.clone().unwrap();
    assert_eq!(intent.intent, "payout-1");
    assert_eq!(intent.status, v1::IntentStatus::Live as i32);
    assert_eq!(intent.txid, unsigned.unsigned_tx.compute_txid().to_string());
    assert_eq!(intent.wallet_inputs.len(), 2);
    assert_eq!((intent.sent_sat, intent.fee_sat), (PAYMENT_SAT, FEE_SAT));

    let psbt = Psbt::deserialize(&signed.psbt).unwrap();
    assert_eq!(psbt.unsigned_tx, unsigned.unsigned_tx);
    verify_wpkh(&psbt, &wallet, &[0, 1]);
    let tx = finalize_wpkh(psbt);
    assert_eq!(tx.compute_txid().to_string(), intent.txid);
    assert!(tx.input.iter().all(|i| i.witness.len() == 2));

    // Another replica asks the same: the stored signatures, byte for byte.
    let again = two
        .sign_psbt(request(WPKH_WALLET, "payout-1", &unsigned))
        .await
        .unwrap();
    assert_eq!(again.outcome, v1::Outcome::Replayed as i32);
    assert_eq!(again.psbt, signed.psbt);
    assert_eq!(again.intent, signed.intent);

    // A replica reads the descriptors of a wallet it is granted.
    let info = one.get_wallet(WPKH_WALLET).await.unwrap();
    assert_eq!(info.kind, v1::WalletKind::Wpkh as i32);
    assert_eq!(info.network, "regtest");
    assert_eq!(info.receive_descriptor, wallet.descriptor(Branch::Receive));
    assert_eq!(info.change_descriptor, wallet.descriptor(Branch::Change));
    assert!(info.receive_descriptor.starts_with("wpkh(["));
    signer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_two_input_tr_psbt_is_signed_with_key_path_signatures() {
    let signer = support::signer(1).await;
    let wallet = signer.wallet(TR_WALLET).unwrap();
    let client = signer.client("replica-1").unwrap();
    let unsigned = psbt(&wallet, &[0, 1], 0);
    let signed = client
        .sign_psbt(request(TR_WALLET, "payout-tr", &unsigned))
        .await
        .unwrap();
    assert_eq!(signed.outcome, v1::Outcome::Signed as i32);
    verify_tr(&Psbt::deserialize(&signed.psbt).unwrap());
    let info = client.get_wallet(TR_WALLET).await.unwrap();
    assert_eq!(info.kind, v1::WalletKind::Tr as i32);
    assert!(info.receive_descriptor.starts_with("tr(["));
    signer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_racing_one_intent_with_different_inputs_get_exactly_one_signature() {
    const ROUNDS: u32 = 3;
    const ATTEMPTS: u32 = 8;
    let signer = support::signer(2).await;
    let wallet = signer.wallet(WPKH_WALLET).unwrap();
    let clients: Vec<Client> = ["replica-1", "replica-2"]
        .iter()
        .map(|r| signer.client(r).unwrap())
        .collect();
    for round in 0..ROUNDS {
        let intent = format!("withdrawal-{round}");
        // Every attempt spends two coins of its own.
        let tasks: Vec<_> = (0..ATTEMPTS)
            .map(|a| {
                let first = 2 * (round * ATTEMPTS + a);
                let psbt = psbt(&wallet, &[first, first + 1], first);
                let client = clients[a as usize % clients.len()].clone();
                let request = request(WPKH_WALLET, &intent, &psbt);
                tokio::spawn(async move { client.sign_psbt(request).await })
            })
            .collect();
        let mut signed = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(r) => {
                    assert_eq!(r.outcome, v1::Outcome::Signed as i32, "{r:?}");
                    signed.push(r);
                }
                Err(ClientError::Refused(r)) => {
                    assert_eq!(r.tag, "policy-intent-conflict", "{r:?}");
                    assert!(r.object.ends_with(&format!("intent.{intent}")), "{r:?}");
                    assert_eq!(r.mark("status"), Some(1), "the mark is the live intent");
                }
                Err(e) => panic!("unexpected error: {e:?}"),
            }
        }
        assert_eq!(signed.len(), 1, "round {round}: one signature per intent");
        let winner = signed[0].intent.clone().unwrap();
        let admin = signer.client("admin").unwrap();
        let intents = admin.list_intents(WPKH_WALLET).await.unwrap();
        let stored = intents.iter().find(|i| i.intent == intent).unwrap();
        assert_eq!(stored.txid, winner.txid);
    }
    // Decisions were audited: one signature and ATTEMPTS - 1 refusals per
    // round.
    let refusals = (ROUNDS * (ATTEMPTS - 1)) as usize;
    audited(&signer, AuditOutcome::Refused, None, refusals).await;
    let records = audit(&signer);
    let count = |o: AuditOutcome| records.iter().filter(|r| r.entry.outcome == o).count();
    assert_eq!(count(AuditOutcome::Signed), ROUNDS as usize);
    assert_eq!(count(AuditOutcome::Refused), refusals);
    // And counted by domain and tag.
    let metrics = signer.server.shared().render_metrics();
    let refused: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("tidemark_decisions_total{"))
        .filter(|l| {
            l.contains("domain=\"bitcoin\"") && l.contains("tag=\"policy-intent-conflict\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(refused, u64::from(ROUNDS * (ATTEMPTS - 1)), "{metrics}");
    signer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_input_of_a_live_intent_is_refused_until_that_intent_is_abandoned() {
    let signer = support::signer(1).await;
    let wallet = signer.wallet(WPKH_WALLET).unwrap();
    let client = signer.client("replica-1").unwrap();
    let admin = signer.client("admin").unwrap();

    let first = psbt(&wallet, &[10, 11], 10);
    client
        .sign_psbt(request(WPKH_WALLET, "payout-a", &first))
        .await
        .unwrap();
    // Another intent spends coin 11 again.
    let second = psbt(&wallet, &[11, 12], 11);
    let r = refusal(
        client
            .sign_psbt(request(WPKH_WALLET, "payout-b", &second))
            .await,
    );
    assert_eq!(r.tag, "policy-input-conflict", "{r:?}");
    assert!(r.object.ends_with("intent.payout-b"), "{r:?}");
    assert!(r.detail.contains("payout-a"), "{r:?}");

    // The operator gives payout-a up: its inputs are free again.
    let released = admin
        .release_intent(release(WPKH_WALLET, "payout-a", v1::Release::Abandoned))
        .await
        .unwrap();
    assert_eq!(released.status, v1::IntentStatus::Abandoned as i32);
    let signed = client
        .sign_psbt(request(WPKH_WALLET, "payout-b", &second))
        .await
        .unwrap();
    assert_eq!(signed.outcome, v1::Outcome::Signed as i32);
    verify_wpkh(
        &Psbt::deserialize(&signed.psbt).unwrap(),
        &wallet,
        &[11, 12],
    );

    // The abandoned transaction is not signed again.
    let r = refusal(
        client
            .sign_psbt(request(WPKH_WALLET, "payout-a", &first))
            .await,
    );
    assert_eq!(r.tag, "policy-intent-released", "{r:?}");

    // Confirming payout-b frees nothing for a new payout-b.
    admin
        .release_intent(release(WPKH_WALLET, "payout-b", v1::Release::Confirmed))
        .await
        .unwrap();
    let r = refusal(
        client
            .sign_psbt(request(
                WPKH_WALLET,
                "payout-b",
                &psbt(&wallet, &[13, 14], 13),
            ))
            .await,
    );
    assert_eq!(r.tag, "policy-intent-conflict", "{r:?}");
    // A confirmed intent cannot be abandoned; an unknown one is not found.
    let e = admin
        .release_intent(release(WPKH_WALLET, "payout-b", v1::Release::Abandoned))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::Other { .. }) && e.to_string().contains("FailedPrecondition"),
        "{e:?}"
    );
    let e = admin
        .release_intent(release(WPKH_WALLET, "payout-z", v1::Release::Abandoned))
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::NotFound(_)), "{e:?}");

    let intents = admin.list_intents(WPKH_WALLET).await.unwrap();
    let status: Vec<(&str, i32)> = intents
        .iter()
        .map(|i| (i.intent.as_str(), i.status))
        .collect();
    assert_eq!(
        status,
        [
            ("payout-a", v1::IntentStatus::Abandoned as i32),
            ("payout-b", v1::IntentStatus::Confirmed as i32),
        ]
    );
    signer.stop().await;
}

/// A signer whose `replica-2` may use `wallet-tr` only and whose
/// `replica-3` may use the consensus domain only.
async fn restricted_signer(parent: &std::path::Path) -> Embedded {
    support::signer_with_grants(
        parent,
        &[
            ("replica-2", "\"wallet-tr\"", "\"bitcoin\""),
            ("replica-3", "\"validator\"", "\"consensus\""),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_without_a_wallet_grant_are_denied_and_audited() {
    let tmp = tempfile::tempdir().unwrap();
    let signer = restricted_signer(tmp.path()).await;
    let wallet = signer.wallet(WPKH_WALLET).unwrap();
    let unsigned = psbt(&wallet, &[0, 1], 0);
    let denied = |r: Result<(), ClientError>| match r {
        Err(ClientError::PermissionDenied(_)) => {}
        other => panic!("expected PermissionDenied, got {other:?}"),
    };

    // No bitcoin grant at all; a grant for another wallet; admin only.
    let three = signer.client("replica-3").unwrap();
    let two = signer.client("replica-2").unwrap();
    let admin = signer.client("admin").unwrap();
    for client in [&three, &two, &admin] {
        let r = client
            .sign_psbt(request(WPKH_WALLET, "payout-1", &unsigned))
            .await;
        denied(r.map(|_| ()));
    }
    denied(three.get_wallet(WPKH_WALLET).await.map(|_| ()));
    // Listing and releasing intents are an operator's calls.
    let one = signer.client("replica-1").unwrap();
    denied(one.list_intents(WPKH_WALLET).await.map(|_| ()));
    denied(
        one.release_intent(release(WPKH_WALLET, "payout-1", v1::Release::Abandoned))
            .await
            .map(|_| ()),
    );

    let object = format!("bitcoin/*/{WPKH_WALLET}/*");
    let domain = denials(&signer, "denied-domain", 3).await;
    let clients: Vec<&str> = domain.iter().map(|r| r.entry.client.as_str()).collect();
    assert_eq!(
        clients.iter().filter(|c| **c == "replica-3").count(),
        2,
        "{clients:?}"
    );
    assert!(clients.contains(&"admin"), "{clients:?}");
    let key = denials(&signer, "denied-key", 1).await;
    assert_eq!(key[0].entry.client, "replica-2");
    let not_admin = denials(&signer, "denied-not-admin", 2).await;
    for r in domain.iter().chain(&key).chain(&not_admin) {
        assert_eq!(r.entry.object, object, "{r:?}");
    }

    // Nothing was decided or stored; the granted wallet still works.
    assert!(signer.store.objects().unwrap().is_empty());
    assert!(
        audit(&signer)
            .iter()
            .all(|r| r.entry.outcome == AuditOutcome::Denied)
    );
    let tr = signer.wallet(TR_WALLET).unwrap();
    let signed = two
        .sign_psbt(request(TR_WALLET, "payout-1", &psbt(&tr, &[0, 1], 0)))
        .await
        .unwrap();
    assert_eq!(signed.outcome, v1::Outcome::Signed as i32);
    signer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_malformed_request_is_invalid_and_changes_nothing() {
    let signer = support::signer(1).await;
    let wallet = signer.wallet(WPKH_WALLET).unwrap();
    let client = signer.client("replica-1").unwrap();
    let admin = signer.client("admin").unwrap();
    client
        .sign_psbt(request(WPKH_WALLET, "payout-1", &psbt(&wallet, &[0, 1], 0)))
        .await
        .unwrap();
    let intents = admin.list_intents(WPKH_WALLET).await.unwrap();
    let objects = signer.store.objects().unwrap();

    let fresh = psbt(&wallet, &[2, 3], 2);
    let bytes = fresh.serialize();
    let mut no_utxo = fresh.clone();
    for input in &mut no_utxo.inputs {
        input.non_witness_utxo = None;
        input.witness_utxo = None;
    }
    let mut malformed: Vec<(&str, v1::SignPsbtRequest)> = vec![
        ("garbage", {
            let mut r = request(WPKH_WALLET, "payout-2", &fresh);
            r.psbt = support::garbage(7, 300);
            r
        }),
        ("truncated", {
            let mut r = request(WPKH_WALLET, "payout-2", &fresh);
            r.psbt = bytes[..bytes.len() / 2].to_vec();
            r
        }),
        ("empty", {
            let mut r = request(WPKH_WALLET, "payout-2", &fresh);
            r.psbt = Vec::new();
            r
        }),
        ("no UTXO", request(WPKH_WALLET, "payout-2", &no_utxo)),
        ("bad intent id", request(WPKH_WALLET, "payout 2", &fresh)),
        ("bad address", {
            let mut r = request(WPKH_WALLET, "payout-2", &fresh);
            r.payments[0].address = "not-an-address".into();
            r
        }),
    ];
    // Garbage for an intent already signed is invalid too, not a conflict.
    malformed.push(("garbage for a signed intent", {
        let mut r = request(WPKH_WALLET, "payout-1", &fresh);
        r.psbt = support::garbage(8, 64);
        r
    }));
    for (what, r) in &malformed {
        match client.sign_psbt(r.clone()).await {
            Err(ClientError::InvalidArgument(_)) => {}
            other => panic!("{what}: expected InvalidArgument, got {other:?}"),
        }
    }
    // A wallet the replica is not granted is denied before it is looked up.
    match client
        .sign_psbt(request("no-such-wallet", "payout-2", &fresh))
        .await
    {
        Err(ClientError::PermissionDenied(_)) => {}
        other => panic!("unknown wallet: got {other:?}"),
    }

    assert_eq!(admin.list_intents(WPKH_WALLET).await.unwrap(), intents);
    assert_eq!(signer.store.objects().unwrap(), objects);
    denials(&signer, "denied-invalid-argument", malformed.len()).await;
    signer.stop().await;
}

#[path = "bitcoin/cli.rs"]
mod cli;
