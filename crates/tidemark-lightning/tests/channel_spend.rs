//! Spends after a close: justice only against revoked counterparty
//! commitments, claims and justice only to the wallet or the allowlist,
//! holder HTLC transactions exactly as BOLT 3 builds them, the holder's
//! anchor only of the newest holder commitment.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod channel_support;

use bitcoin::hashes::Hash as _;
use bitcoin::secp256k1::Message;
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{Amount, OutPoint, Transaction, TxOut, Txid};
use channel_support::*;
use lightning::ln::chan_utils;
use lightning::ln::channel_keys::{DelayedPaymentKey, RevocationKey};
use tidemark_lightning::channel::{
    AnchorSpend, ChannelError, ChannelKind, ChannelRequest, CounterpartyHtlcSpend, HolderHtlcSpend,
    JusticeSpend, SpendInput, SpendTx,
};
use tidemark_lightning::tags;

fn sweep(from: OutPoint, to: bitcoin::ScriptBuf, value: u64) -> SpendTx {
    SpendTx {
        version: 2,
        lock_time: 0,
        inputs: vec![SpendInput {
            previous_output: from,
            sequence: 0xffff_fffd,
        }],
        outputs: vec![TxOut {
            value: Amount::from_sat(value),
            script_pubkey: to,
        }],
    }
}

/// A channel whose counterparty commitment 0 is revoked, and the outpoint
/// and value of that commitment's `to_local`.
fn revoked_channel() -> (Channel, OutPoint, u64) {
    let mut c = Channel::open(ChannelKind::StaticRemoteKey);
    let data = c.counterparty_commitment(0);
    let tx = c.rebuilt_counterparty(&data);
    let vout = tx.trust().revokeable_output_index().unwrap() as u32;
    let outpoint = OutPoint {
        txid: tx.trust().txid(),
        vout,
    };
    c.advance(1);
    (c, outpoint, data.to_broadcaster_sat)
}

fn justice(
    c: &Channel,
    number: Option<u64>,
    secret_of: u64,
    tx: SpendTx,
    amount: u64,
) -> ChannelRequest {
    ChannelRequest::SignJustice(Box::new(JusticeSpend {
        commitment: number.map(n),
        per_commitment_secret: c.counterparty_secret(secret_of),
        htlc: None,
        tx,
        input: 0,
        amount_sat: amount,
    }))
}

#[test]
fn justice_against_a_revoked_commitment_to_the_wallet_is_signed_and_verifies() {
    let (mut c, outpoint, amount) = revoked_channel();
    let tx = sweep(outpoint, c.wallet[0].clone(), amount - 1_000);
    for number in [Some(0), None] {
        let sig = signature(
            c.ask(justice(&c, number, 0, tx.clone(), amount))
                .unwrap()
                .signed(),
        );
        // The signature spends the revoked to_local by the revocation path.
        let point = c.counterparty_point(0);
        let revocation = RevocationKey::from_basepoint(
            &c.secp,
            &c.setup.holder.revocation_basepoint.into(),
            &point,
        );
        let delayed = DelayedPaymentKey::from_basepoint(
            &c.secp,
            &c.setup.counterparty.delayed_payment_basepoint.into(),
            &point,
        );
        let script = chan_utils::get_revokeable_redeemscript(
            &revocation,
            c.setup.holder_selected_contest_delay,
            &delayed,
        );
        let unsigned: Transaction = tx.to_transaction();
        let sighash = SighashCache::new(&unsigned)
            .p2wsh_signature_hash(0, &script, Amount::from_sat(amount), EcdsaSighashType::All)
            .unwrap();
        c.secp
            .verify_ecdsa(
                &Message::from_digest(sighash.to_byte_array()),
                &sig,
                &revocation.to_public_key(),
            )
            .unwrap();
    }
}

#[test]
fn justice_not_revoked_is_refused() {
    let (mut c, outpoint, amount) = revoked_channel();
    let tx = sweep(outpoint, c.wallet[0].clone(), amount - 1_000);
    // Commitment 1 is signed but not revoked: its secret is not known to
    // the signer, even if the caller has it.
    for number in [Some(1), None] {
        let detail = c
            .ask(justice(&c, number, 1, tx.clone(), amount))
            .unwrap()
            .refused(&tags::JUSTICE_NOT_REVOKED);
        assert!(detail.contains("below 1"), "{detail}");
    }
    // The right number with another commitment's secret.
    c.ask(justice(&c, Some(0), 3, tx.clone(), amount))
        .unwrap()
        .refused(&tags::JUSTICE_NOT_REVOKED);
    c.ask(justice(&c, Some(0), 0, tx, amount)).unwrap().signed();
}

#[test]
fn destination_not_allowed_justice_pays_only_the_wallet_or_the_allowlist() {
    let (mut c, outpoint, amount) = revoked_channel();
    let foreign = sweep(outpoint, Channel::foreign_script(), amount - 1_000);
    c.ask(justice(&c, Some(0), 0, foreign.clone(), amount))
        .unwrap()
        .refused(&tags::DESTINATION_NOT_ALLOWED);
    c.policy.allowlist.insert(Channel::foreign_script());
    c.ask(justice(&c, Some(0), 0, foreign, amount))
        .unwrap()
        .signed();
}

#[test]
fn a_spend_input_out_of_range_is_an_error() {
    let (mut c, outpoint, amount) = revoked_channel();
    let tx = sweep(outpoint, c.wallet[0].clone(), amount - 1_000);
    let mut request = justice(&c, Some(0), 0, tx, amount);
    if let ChannelRequest::SignJustice(j) = &mut request {
        j.input = 1;
    }
    assert!(matches!(
        c.ask(request),
        Err(ChannelError::InvalidRequest(_))
    ));
}

fn claim(c: &Channel, point_of: u64, to: bitcoin::ScriptBuf) -> ChannelRequest {
    let h = htlc(false, 40_000, HEIGHT + 10, 7);
    ChannelRequest::SignCounterpartyHtlc(Box::new(CounterpartyHtlcSpend {
        per_commitment_point: c.counterparty_point(point_of),
        htlc: h,
        tx: sweep(
            OutPoint {
                txid: Txid::from_byte_array([9; 32]),
                vout: 2,
            },
            to,
            39_000,
        ),
        input: 0,
        amount_sat: 40_000,
    }))
}

#[test]
fn counterparty_htlc_claims_only_on_signed_commitments_and_to_the_wallet() {
    let mut c = Channel::open(ChannelKind::AnchorsZeroFeeHtlcTx);
    c.sign_counterparty(1).signed();
    c.ask(claim(&c, 5, c.wallet[0].clone()))
        .unwrap()
        .refused(&tags::COUNTERPARTY_COMMITMENT_UNKNOWN);
    c.ask(claim(&c, 1, Channel::foreign_script()))
        .unwrap()
        .refused(&tags::DESTINATION_NOT_ALLOWED);
    c.ask(claim(&c, 1, c.wallet[0].clone())).unwrap().signed();
    c.ask(claim(&c, 0, c.wallet[0].clone())).unwrap().signed();
}

/// A channel whose holder commitment 1 has one offered HTLC; the BOLT 3
/// HTLC-timeout transaction of it and its output index.
fn htlc_channel(kind: ChannelKind) -> (Channel, Transaction, u32) {
    let mut c = Channel::open(kind);
    c.holder_sat -= 50_000;
    c.htlcs = vec![htlc(true, 50_000, HEIGHT + 20, 8)];
    c.advance(1);
    let tx = c.rebuilt_holder(&c.holder_data(1));
    let trusted = tx.trust();
    let h = &tx.nondust_htlcs()[0];
    let params = c.setup.transaction_parameters();
    let feerate = if kind.has_anchors() { 0 } else { FEERATE };
    let htlc_tx = chan_utils::build_htlc_transaction(
        &trusted.txid(),
        feerate,
        c.setup.counterparty_selected_contest_delay,
        h,
        &params.channel_type_features,
        &trusted.keys().broadcaster_delayed_payment_key,
        &trusted.keys().revocation_key,
    );
    let index = h.transaction_output_index.unwrap();
    (c, htlc_tx, index)
}

fn holder_htlc(number: u64, index: u32, tx: &Transaction, input: u32) -> ChannelRequest {
    ChannelRequest::SignHolderHtlc(Box::new(HolderHtlcSpend {
        commitment: n(number),
        htlc_output_index: index,
        tx: SpendTx::from_transaction(tx),
        input,
    }))
}

#[test]
fn holder_htlc_the_bolt3_transaction_is_signed_and_verifies() {
    for kind in KINDS {
        let (mut c, tx, index) = htlc_channel(kind);
        let sig = signature(c.ask(holder_htlc(1, index, &tx, 0)).unwrap().signed());
        let commitment = c.rebuilt_holder(&c.holder_data(1));
        let trusted = commitment.trust();
        let h = &commitment.nondust_htlcs()[0];
        let script =
            chan_utils::get_htlc_redeemscript(h, &c.setup.channel_type_features(), trusted.keys());
        let sighash = SighashCache::new(&tx)
            .p2wsh_signature_hash(0, &script, Amount::from_sat(50_000), EcdsaSighashType::All)
            .unwrap();
        c.secp
            .verify_ecdsa(
                &Message::from_digest(sighash.to_byte_array()),
                &sig,
                &trusted.keys().broadcaster_htlc_key.to_public_key(),
            )
            .unwrap();
    }
}

#[test]
fn holder_htlc_mismatch_anything_but_the_bolt3_transaction_is_refused() {
    let (mut c, tx, index) = htlc_channel(ChannelKind::StaticRemoteKey);
    let mut richer = tx.clone();
    richer.output[0].value += Amount::from_sat(1_000);
    c.ask(holder_htlc(1, index, &richer, 0))
        .unwrap()
        .refused(&tags::HOLDER_HTLC_MISMATCH);
    let mut foreign = tx.clone();
    foreign.output[0].script_pubkey = Channel::foreign_script();
    c.ask(holder_htlc(1, index, &foreign, 0))
        .unwrap()
        .refused(&tags::HOLDER_HTLC_MISMATCH);
    c.ask(holder_htlc(1, index + 1, &tx, 0))
        .unwrap()
        .refused(&tags::HOLDER_HTLC_MISMATCH);
    c.ask(holder_htlc(5, index, &tx, 0))
        .unwrap()
        .refused(&tags::HOLDER_HTLC_MISMATCH);
    c.ask(holder_htlc(1, index, &tx, 0)).unwrap().signed();
}

#[test]
fn holder_htlc_with_anchors_may_add_fee_inputs_and_change() {
    let (mut c, tx, index) = htlc_channel(ChannelKind::AnchorsZeroFeeHtlcTx);
    let mut bumped = tx.clone();
    bumped.input.insert(0, bumped.input[0].clone());
    bumped.input[0].previous_output = OutPoint {
        txid: Txid::from_byte_array([5; 32]),
        vout: 0,
    };
    bumped.output.insert(
        0,
        TxOut {
            value: Amount::from_sat(10_000),
            script_pubkey: c.wallet[0].clone(),
        },
    );
    // The HTLC pair is at index 1 now.
    c.ask(holder_htlc(1, index, &bumped, 1)).unwrap().signed();
    c.ask(holder_htlc(1, index, &bumped, 0))
        .unwrap()
        .refused(&tags::HOLDER_HTLC_MISMATCH);
    // A timeout keeps its expiry.
    let mut later = bumped.clone();
    later.lock_time = bitcoin::absolute::LockTime::from_consensus(HEIGHT + 21);
    c.ask(holder_htlc(1, index, &later, 1))
        .unwrap()
        .refused(&tags::HOLDER_HTLC_MISMATCH);
    bumped.output[1].value += Amount::from_sat(1);
    c.ask(holder_htlc(1, index, &bumped, 1))
        .unwrap()
        .refused(&tags::HOLDER_HTLC_MISMATCH);
}

fn anchor_spend(anchor: OutPoint, wallet: bitcoin::ScriptBuf) -> ChannelRequest {
    let mut tx = sweep(anchor, wallet, 20_000);
    tx.inputs.push(SpendInput {
        previous_output: OutPoint {
            txid: Txid::from_byte_array([6; 32]),
            vout: 3,
        },
        sequence: 0xffff_fffd,
    });
    ChannelRequest::SignHolderAnchor(Box::new(AnchorSpend { tx, input: 0 }))
}

#[test]
fn anchor_not_holder_only_the_holders_anchor_of_the_newest_commitment() {
    let mut c = Channel::open(ChannelKind::AnchorsZeroFeeHtlcTx);
    let tx = c.rebuilt_holder(&c.holder_data(0));
    let script =
        chan_utils::get_keyed_anchor_redeemscript(&c.setup.holder.funding_pubkey).to_p2wsh();
    let built = &tx.trust().built_transaction().transaction;
    let vout = built
        .output
        .iter()
        .position(|o| o.script_pubkey == script)
        .unwrap() as u32;
    let txid = tx.trust().txid();
    let theirs = OutPoint {
        txid,
        vout: built
            .output
            .iter()
            .position(|o| o.value.to_sat() == 330 && o.script_pubkey != script)
            .unwrap() as u32,
    };
    c.ask(anchor_spend(theirs, c.wallet[0].clone()))
        .unwrap()
        .refused(&tags::ANCHOR_NOT_HOLDER);
    c.ask(anchor_spend(OutPoint { txid, vout }, c.wallet[0].clone()))
        .unwrap()
        .signed();

    let mut plain = Channel::open(ChannelKind::StaticRemoteKey);
    plain
        .ask(anchor_spend(OutPoint { txid, vout }, c.wallet[0].clone()))
        .unwrap()
        .refused(&tags::ANCHOR_NOT_HOLDER);
}
