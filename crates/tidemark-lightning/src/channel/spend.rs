//! Spends of channel outputs after a close: holder HTLC transactions,
//! claims of counterparty HTLC outputs, justice, and the holder's anchor.
//!
//! The signer assembles each transaction from its parts and checks it:
//! a holder HTLC transaction must be the BOLT 3 one for an HTLC output of
//! a stored holder commitment; claims and justice transactions pay only
//! the wallet or the allowlist; justice only against revoked commitments.

use bitcoin::secp256k1::SecretKey;
use bitcoin::{OutPoint, Transaction};
use lightning::ln::chan_utils;

use crate::channel::build::{self, Broadcaster};
use crate::channel::decide::{Rules, Stop, kind, refuse};
use crate::channel::error::ChannelError;
use crate::channel::number::CommitmentNumber;
use crate::channel::request::{
    AnchorSpend, CounterpartyHtlcSpend, HolderHtlcSpend, Htlc, JusticeSpend, SpendTx,
};
use crate::channel::state::ChannelState;
use crate::channel::verdict::{Operation, Verdict};
use crate::tags;

/// How many revoked commitments a justice request without a number is
/// searched through (newest first).
pub(crate) const MAX_JUSTICE_SEARCH: u64 = 1 << 20;

/// The transaction and the index of its input, checked to exist.
fn assemble(tx: &SpendTx, input: u32) -> Result<(Transaction, usize), Stop> {
    let index = usize::try_from(input).unwrap_or(usize::MAX);
    if index >= tx.inputs.len() {
        return Err(ChannelError::InvalidRequest(format!(
            "input {input} of a transaction with {} inputs",
            tx.inputs.len()
        ))
        .into());
    }
    Ok((tx.to_transaction(), index))
}

fn amount_of(htlc: &Htlc, amount_sat: u64) -> Result<(), Stop> {
    if htlc.amount_msat / 1000 != amount_sat {
        return Err(ChannelError::InvalidRequest(format!(
            "the spent amount {amount_sat} sat is not the HTLC's {} sat",
            htlc.amount_msat / 1000
        ))
        .into());
    }
    Ok(())
}

/// Decides a holder HTLC transaction.
pub(crate) fn holder_htlc(
    rules: Rules<'_>,
    state: &ChannelState,
    request: &HolderHtlcSpend,
) -> Result<Verdict, Stop> {
    let n = request.commitment;
    let mismatch = |detail: String| refuse(&tags::HOLDER_HTLC_MISMATCH, detail);
    let Some(record) = state.holder.get(n) else {
        return mismatch(format!(
            "holder commitment {n} is not one of the two newest validated"
        ));
    };
    let kind = kind(state)?;
    let params = rules.params()?;
    let tx = build::commitment(
        &state.setup,
        kind,
        params,
        &record.commitment,
        Broadcaster::Holder,
        rules.ctx.secp,
    )?;
    let Some((position, htlc)) = tx
        .nondust_htlcs()
        .iter()
        .enumerate()
        .find(|(_, h)| h.transaction_output_index == Some(request.htlc_output_index))
    else {
        return mismatch(format!(
            "output {} of holder commitment {n} is not an HTLC",
            request.htlc_output_index
        ));
    };
    let (spend, input) = assemble(&request.tx, request.input)?;
    let trusted = tx.trust();
    let keys = trusted.keys();
    let commitment_txid = trusted.txid();
    let feerate = if kind.has_anchors() {
        0
    } else {
        tx.negotiated_feerate_per_kw()
    };
    let expected = chan_utils::build_htlc_transaction(
        &commitment_txid,
        feerate,
        params.as_holder_broadcastable().contest_delay(),
        htlc,
        &params.channel_type_features,
        &keys.broadcaster_delayed_payment_key,
        &keys.revocation_key,
    );
    // With anchors, LDK aggregates HTLC claims with fee inputs and change
    // (our signature commits to all of them, the counterparty's only to
    // its pair). A timeout keeps its exact expiry; a success claim may
    // share a transaction with timeouts and so carry their lock time.
    let matches = if kind.has_anchors() {
        spend.version == expected.version
            && (spend.lock_time == expected.lock_time || !htlc.offered)
            && spend.input.get(input) == expected.input.first()
            && spend.output.get(input) == expected.output.first()
    } else {
        spend == expected
    };
    if !matches {
        return mismatch(format!(
            "the transaction is not the BOLT 3 HTLC transaction of output {} of holder \
             commitment {n}",
            request.htlc_output_index
        ));
    }
    let counterparty_signature = *record
        .counterparty_htlc_signatures
        .get(position)
        .ok_or_else(|| {
            Stop::Error(ChannelError::CorruptState(format!(
                "holder commitment {n} is stored without the HTLC signature {position}"
            )))
        })?;
    let operation = Operation::SignHolderHtlc {
        tx: spend,
        input,
        commitment_txid,
        number: n,
        point: record.commitment.per_commitment_point,
        feerate_per_kw: feerate,
        htlc: htlc.clone(),
        counterparty_signature,
    };
    Ok(rules.sign(None, operation))
}

/// Decides a claim of an HTLC output of a counterparty commitment.
pub(crate) fn counterparty_htlc(
    rules: Rules<'_>,
    state: &ChannelState,
    request: &CounterpartyHtlcSpend,
) -> Result<Verdict, Stop> {
    let known = state
        .counterparty
        .signed
        .iter()
        .find(|c| c.per_commitment_point == request.per_commitment_point);
    if known.is_none() {
        return refuse(
            &tags::COUNTERPARTY_COMMITMENT_UNKNOWN,
            "the per-commitment point is not one of the two newest counterparty commitments \
             signed (a revoked commitment is claimed by justice)"
                .into(),
        );
    }
    let (tx, input) = assemble(&request.tx, request.input)?;
    amount_of(&request.htlc, request.amount_sat)?;
    rules.destinations(&request.tx.outputs)?;
    let operation = Operation::SignCounterpartyHtlc {
        tx,
        input,
        amount_sat: request.amount_sat,
        point: request.per_commitment_point,
        htlc: build::ldk_htlc(&request.htlc),
    };
    Ok(rules.sign(None, operation))
}

/// The revoked commitment whose secret is `secret`, newest first.
fn find_revoked(state: &ChannelState, secret: &[u8; 32]) -> Option<CommitmentNumber> {
    let ledger = &state.counterparty;
    (0..ledger.revoked)
        .rev()
        .take(MAX_JUSTICE_SEARCH as usize)
        .filter_map(CommitmentNumber::new)
        .find(|n| ledger.secrets.get(n.ldk_index()).as_ref() == Some(secret))
}

/// Decides a justice transaction input.
pub(crate) fn justice(
    rules: Rules<'_>,
    state: &ChannelState,
    request: &JusticeSpend,
) -> Result<Verdict, Stop> {
    let ledger = &state.counterparty;
    let secret = &request.per_commitment_secret;
    let number = match request.commitment {
        Some(n) => Some(n).filter(|n| {
            n.get() < ledger.revoked && ledger.secrets.get(n.ldk_index()).as_ref() == Some(secret)
        }),
        None => find_revoked(state, secret),
    };
    if number.is_none() {
        return refuse(
            &tags::JUSTICE_NOT_REVOKED,
            format!(
                "the secret is not that of a revoked counterparty commitment{} \
                 (commitments below {} are revoked)",
                request
                    .commitment
                    .map(|n| format!(" {n}"))
                    .unwrap_or_default(),
                ledger.revoked
            ),
        );
    }
    let (tx, input) = assemble(&request.tx, request.input)?;
    if let Some(htlc) = &request.htlc {
        amount_of(htlc, request.amount_sat)?;
    }
    rules.destinations(&request.tx.outputs)?;
    let per_commitment_key = SecretKey::from_slice(secret).map_err(|e| {
        Stop::Error(ChannelError::InvalidRequest(format!(
            "per-commitment secret: {e}"
        )))
    })?;
    let operation = Operation::SignJustice {
        tx,
        input,
        amount_sat: request.amount_sat,
        per_commitment_key,
        htlc: request.htlc.as_ref().map(build::ldk_htlc),
    };
    Ok(rules.sign(None, operation))
}

/// Decides the holder's anchor input.
pub(crate) fn anchor(
    rules: Rules<'_>,
    state: &ChannelState,
    request: &AnchorSpend,
) -> Result<Verdict, Stop> {
    let kind = kind(state)?;
    let not_holder = |detail: String| refuse(&tags::ANCHOR_NOT_HOLDER, detail);
    if !kind.has_anchors() {
        return not_holder(format!("a {} channel has no anchors", kind.name()));
    }
    let Some(record) = state.holder.current.as_ref() else {
        return not_holder("no holder commitment was validated".into());
    };
    let tx = build::commitment(
        &state.setup,
        kind,
        rules.params()?,
        &record.commitment,
        Broadcaster::Holder,
        rules.ctx.secp,
    )?;
    let script =
        chan_utils::get_keyed_anchor_redeemscript(&state.setup.holder.funding_pubkey).to_p2wsh();
    let trusted = tx.trust();
    let built = &trusted.built_transaction().transaction;
    let anchor = built
        .output
        .iter()
        .position(|o| o.script_pubkey == script)
        .and_then(|i| u32::try_from(i).ok())
        .map(|vout| OutPoint {
            txid: trusted.txid(),
            vout,
        });
    let (spend, input) = assemble(&request.tx, request.input)?;
    if anchor.is_none() || anchor != spend.input.get(input).map(|i| i.previous_output) {
        return not_holder(format!(
            "input {input} does not spend the holder's anchor of holder commitment {}",
            record.commitment.number
        ));
    }
    Ok(rules.sign(None, Operation::SignHolderAnchor { tx: spend, input }))
}
