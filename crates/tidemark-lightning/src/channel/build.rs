//! Rebuilding BOLT 3 transactions from the stored parameters with LDK's
//! `chan_utils`, after checking every value that would make LDK panic
//! (amount sums that overflow, HTLCs below their second-stage fee, outputs
//! above the channel value).

use bitcoin::hashes::{Hash as _, HashEngine as _, sha256};
use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::{All, Message, Secp256k1};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{Amount, ScriptBuf};
use lightning::ln::chan_utils::{
    self, ChannelTransactionParameters, CommitmentTransaction, HTLCOutputInCommitment,
};
use lightning::types::payment::PaymentHash;
use tidemark_core::Digest;

use crate::channel::decide::Stop;
use crate::channel::error::ChannelError;
use crate::channel::request::{CommitmentData, HolderCommitment, Htlc};
use crate::channel::state::{ChannelKind, ChannelSetup};
use crate::tags;

/// The most HTLC outputs a commitment can hold (483 in each direction).
pub(crate) const MAX_HTLC_OUTPUTS: usize = 966;
/// The value of a keyed anchor output.
pub(crate) const ANCHOR_SAT: u64 = 330;

/// Which side broadcasts the commitment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Broadcaster {
    Holder,
    Counterparty,
}

/// LDK's HTLC, without an output index yet.
pub(crate) fn ldk_htlc(htlc: &Htlc) -> HTLCOutputInCommitment {
    HTLCOutputInCommitment {
        offered: htlc.offered,
        amount_msat: htlc.amount_msat,
        cltv_expiry: htlc.cltv_expiry,
        payment_hash: PaymentHash(htlc.payment_hash),
        transaction_output_index: None,
    }
}

/// The fee of the second-stage transaction of `htlc` (0 with anchors).
pub(crate) fn second_stage_fee_sat(kind: ChannelKind, feerate_per_kw: u32, offered: bool) -> u64 {
    if kind.has_anchors() {
        return 0;
    }
    let features = lightning::types::features::ChannelTypeFeatures::only_static_remote_key();
    let weight = if offered {
        chan_utils::htlc_timeout_tx_weight(&features)
    } else {
        chan_utils::htlc_success_tx_weight(&features)
    };
    u64::from(feerate_per_kw) * weight / 1000
}

fn value(detail: String) -> Stop {
    Stop::Refuse(tags::COMMITMENT_VALUE.clone(), detail)
}

/// Checks the values of `data` against the channel and builds the
/// commitment as `broadcaster` would broadcast it.
pub(crate) fn commitment(
    setup: &ChannelSetup,
    kind: ChannelKind,
    params: &ChannelTransactionParameters,
    data: &CommitmentData,
    broadcaster: Broadcaster,
    secp: &Secp256k1<All>,
) -> Result<CommitmentTransaction, Stop> {
    if data.htlcs.len() > MAX_HTLC_OUTPUTS {
        return Err(ChannelError::InvalidRequest(format!(
            "{} HTLCs; a commitment holds at most {MAX_HTLC_OUTPUTS}",
            data.htlcs.len()
        ))
        .into());
    }
    let mut htlc_sat: u64 = 0;
    for (i, htlc) in data.htlcs.iter().enumerate() {
        let sat = htlc.amount_msat / 1000;
        let fee = second_stage_fee_sat(kind, data.feerate_per_kw, htlc.offered);
        if sat < fee {
            return Err(value(format!(
                "HTLC {i} of {sat} sat does not cover its second-stage fee of {fee} sat: it is dust"
            )));
        }
        htlc_sat = htlc_sat
            .checked_add(sat)
            .ok_or_else(|| value("the HTLC amounts overflow".into()))?;
    }
    let has_htlcs = htlc_sat > 0;
    let anchors = if kind.has_anchors() {
        ANCHOR_SAT
            * (u64::from(data.to_broadcaster_sat > 0 || has_htlcs)
                + u64::from(data.to_countersignatory_sat > 0 || has_htlcs))
    } else {
        0
    };
    let total = [
        data.to_broadcaster_sat,
        data.to_countersignatory_sat,
        anchors,
    ]
    .into_iter()
    .try_fold(htlc_sat, u64::checked_add);
    match total {
        Some(t) if t <= setup.channel_value_sat => {}
        _ => {
            return Err(value(format!(
                "outputs of {} + {} sat, HTLCs of {htlc_sat} sat and anchors of {anchors} sat \
                 exceed the channel's {} sat",
                data.to_broadcaster_sat, data.to_countersignatory_sat, setup.channel_value_sat
            )));
        }
    }
    let directed = match broadcaster {
        Broadcaster::Holder => params.as_holder_broadcastable(),
        Broadcaster::Counterparty => params.as_counterparty_broadcastable(),
    };
    Ok(CommitmentTransaction::new(
        data.number.ldk_index(),
        &data.per_commitment_point,
        data.to_broadcaster_sat,
        data.to_countersignatory_sat,
        data.feerate_per_kw,
        data.htlcs.iter().map(ldk_htlc).collect(),
        &directed,
        secp,
    ))
}

/// The digest of a built commitment: its number, point, balances, fee
/// rate, txid and HTLCs in output order (the txid alone does not fix an
/// offered HTLC's expiry, which its HTLC transaction commits to).
pub(crate) fn commitment_digest(tx: &CommitmentTransaction) -> Digest {
    let mut h = sha256::Hash::engine();
    h.input(b"tidemark-lightning-commitment-v1");
    h.input(&tx.commitment_number().to_be_bytes());
    h.input(&tx.per_commitment_point().serialize());
    h.input(&tx.to_broadcaster_value_sat().to_be_bytes());
    h.input(&tx.to_countersignatory_value_sat().to_be_bytes());
    h.input(&tx.negotiated_feerate_per_kw().to_be_bytes());
    h.input(tx.trust().txid().as_byte_array());
    for htlc in tx.nondust_htlcs() {
        h.input(&[u8::from(htlc.offered)]);
        h.input(&htlc.amount_msat.to_be_bytes());
        h.input(&htlc.cltv_expiry.to_be_bytes());
        h.input(&htlc.payment_hash.0);
        h.input(
            &htlc
                .transaction_output_index
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
    }
    Digest(sha256::Hash::from_engine(h).to_byte_array())
}

/// The digest of a holder commitment: the commitment's digest and the
/// counterparty's signatures.
pub(crate) fn holder_digest(tx: &CommitmentTransaction, holder: &HolderCommitment) -> Digest {
    let mut h = sha256::Hash::engine();
    h.input(b"tidemark-lightning-holder-v1");
    h.input(&commitment_digest(tx).0);
    h.input(&holder.counterparty_signature.serialize_compact());
    for sig in &holder.counterparty_htlc_signatures {
        h.input(&sig.serialize_compact());
    }
    Digest(sha256::Hash::from_engine(h).to_byte_array())
}

/// The 2-of-2 funding script.
pub(crate) fn funding_script(setup: &ChannelSetup) -> ScriptBuf {
    chan_utils::make_funding_redeemscript(
        &setup.holder.funding_pubkey,
        &setup.counterparty.funding_pubkey,
    )
}

/// Verifies the counterparty's signatures of a holder commitment built by
/// [`commitment`]; the detail says which one failed.
pub(crate) fn verify_counterparty_signatures(
    setup: &ChannelSetup,
    params: &ChannelTransactionParameters,
    tx: &CommitmentTransaction,
    holder: &HolderCommitment,
    secp: &Secp256k1<All>,
) -> Result<(), String> {
    verify_countersignatures(
        setup,
        params,
        tx,
        Broadcaster::Holder,
        &holder.counterparty_signature,
        &holder.counterparty_htlc_signatures,
        secp,
    )
    .map_err(|what| format!("the counterparty's {what} does not verify"))
}

/// Verifies the holder's own signatures of a counterparty commitment built
/// by [`commitment`] (signatures the node released before an import).
pub(crate) fn verify_holder_signatures(
    setup: &ChannelSetup,
    params: &ChannelTransactionParameters,
    tx: &CommitmentTransaction,
    signature: &Signature,
    htlc_signatures: &[Signature],
    secp: &Secp256k1<All>,
) -> Result<(), String> {
    verify_countersignatures(
        setup,
        params,
        tx,
        Broadcaster::Counterparty,
        signature,
        htlc_signatures,
        secp,
    )
    .map_err(|what| format!("the holder's {what} does not verify"))
}

/// Verifies the countersignatory's signatures of a commitment that
/// `broadcaster` broadcasts: the commitment's, with the countersignatory's
/// funding key, and each HTLC transaction's, with its HTLC key. The error
/// names the signature that failed.
fn verify_countersignatures(
    setup: &ChannelSetup,
    params: &ChannelTransactionParameters,
    tx: &CommitmentTransaction,
    broadcaster: Broadcaster,
    signature: &Signature,
    htlc_signatures: &[Signature],
    secp: &Secp256k1<All>,
) -> Result<(), String> {
    let (funding_key, contest_delay) = match broadcaster {
        Broadcaster::Holder => (
            setup.counterparty.funding_pubkey,
            params.as_holder_broadcastable().contest_delay(),
        ),
        Broadcaster::Counterparty => (
            setup.holder.funding_pubkey,
            params.as_counterparty_broadcastable().contest_delay(),
        ),
    };
    let trusted = tx.trust();
    let built = trusted.built_transaction();
    let sighash = built.get_sighash_all(&funding_script(setup), setup.channel_value_sat);
    secp.verify_ecdsa(&sighash, signature, &funding_key)
        .map_err(|_| "commitment signature".to_owned())?;
    let htlcs = tx.nondust_htlcs();
    if htlcs.len() != htlc_signatures.len() {
        return Err(format!(
            "set of {} HTLC signatures for {} HTLC outputs",
            htlc_signatures.len(),
            htlcs.len()
        ));
    }
    let features = &params.channel_type_features;
    let keys = trusted.keys();
    let sighash_type = if features.supports_anchors_zero_fee_htlc_tx() {
        EcdsaSighashType::SinglePlusAnyoneCanPay
    } else {
        EcdsaSighashType::All
    };
    let countersignatory_htlc_key = keys.countersignatory_htlc_key.to_public_key();
    for (i, (htlc, sig)) in htlcs.iter().zip(htlc_signatures).enumerate() {
        let htlc_tx = chan_utils::build_htlc_transaction(
            &built.txid,
            tx.negotiated_feerate_per_kw(),
            contest_delay,
            htlc,
            features,
            &keys.broadcaster_delayed_payment_key,
            &keys.revocation_key,
        );
        let script = chan_utils::get_htlc_redeemscript(htlc, features, keys);
        let sighash = SighashCache::new(&htlc_tx)
            .p2wsh_signature_hash(
                0,
                &script,
                Amount::from_sat(htlc.amount_msat / 1000),
                sighash_type,
            )
            .map_err(|e| format!("signature of HTLC output {i} ({e})"))?;
        let message = Message::from_digest(sighash.to_byte_array());
        secp.verify_ecdsa(&message, sig, &countersignatory_htlc_key)
            .map_err(|_| format!("signature of HTLC output {i}"))?;
    }
    Ok(())
}
