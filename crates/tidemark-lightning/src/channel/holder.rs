//! Holder commitments: validating them, releasing their secrets (which
//! revokes them) and signing the newest one to broadcast (force close).
//!
//! - Holder commitment n+1 is validated (its counterparty signatures
//!   verified against the rebuilt transaction) before the secret of n is
//!   released (`policy-holder-secret-early`).
//! - A holder commitment whose secret was released is never signed
//!   (`policy-commitment-holder-not-revoked`); only the newest validated
//!   one is (`policy-commitment-holder-not-newest`), and signing it marks
//!   the channel force-closed, so no newer commitment is validated and its
//!   secret is never released.

use lightning::ln::chan_utils::HolderCommitmentTransaction;

use crate::channel::build::{self, Broadcaster};
use crate::channel::decide::{Rules, Stop, kind, refuse};
use crate::channel::number::CommitmentNumber;
use crate::channel::request::HolderCommitment;
use crate::channel::state::{ChannelState, Closing, HolderRecord};
use crate::channel::verdict::{Operation, Output, Verdict};
use crate::tags;

/// Decides the release of the holder secret of commitment `n`.
pub(crate) fn release_secret(
    rules: Rules<'_>,
    state: &ChannelState,
    n: CommitmentNumber,
) -> Result<Verdict, Stop> {
    let newest = state.holder.current.as_ref().map(|r| r.commitment.number);
    if newest.is_none_or(|newest| n >= newest) {
        return refuse(
            &tags::HOLDER_SECRET_EARLY,
            format!(
                "the secret of holder commitment {n} is released only after commitment {} \
                 was validated; the newest validated is {newest:?}",
                n.get().saturating_add(1)
            ),
        );
    }
    let next = if state.holder.is_revoked(n) {
        None
    } else {
        let mut next = state.clone();
        next.holder.revoked_through = Some(n);
        Some(next)
    };
    Ok(rules.sign(next, Operation::ReleaseHolderSecret(n)))
}

/// Decides the validation of a holder commitment the counterparty signed.
pub(crate) fn validate(
    mut rules: Rules<'_>,
    state: &ChannelState,
    holder: &HolderCommitment,
) -> Result<Verdict, Stop> {
    let n = holder.commitment.number;
    let kind = kind(state)?;
    let secp = rules.ctx.secp;
    let tx = build::commitment(
        &state.setup,
        kind,
        rules.params()?,
        &holder.commitment,
        Broadcaster::Holder,
        secp,
    );
    if let Some(record) = state.holder.get(n) {
        return match tx {
            Ok(tx) if build::holder_digest(&tx, holder) == record.digest => Ok(Verdict::Replay {
                output: Output::Done,
            }),
            Err(Stop::Error(e)) => Err(Stop::Error(e)),
            _ => refuse(
                &tags::HOLDER_COMMITMENT_CONFLICT,
                format!(
                    "holder commitment {n} was validated with other content (txid {})",
                    record.txid
                ),
            ),
        };
    }
    if let Some(closing) = state.closed {
        return refuse(
            &tags::CHANNEL_CLOSED,
            format!("the channel is closed ({closing:?}); holder commitment {n} is not validated"),
        );
    }
    let expected = state
        .holder
        .current
        .as_ref()
        .map_or(0, |r| r.commitment.number.get() + 1);
    if n.get() != expected {
        return refuse(
            &tags::COMMITMENT_NOT_NEXT,
            format!("holder commitment {n} is not the next one, {expected}"),
        );
    }
    rules.commitment_ranges(&holder.commitment)?;
    let tx = tx?;
    if let Err(detail) =
        build::verify_counterparty_signatures(&state.setup, rules.params()?, &tx, holder, secp)
    {
        return refuse(
            &tags::COUNTERPARTY_SIGNATURE_INVALID,
            format!("holder commitment {n}: {detail}"),
        );
    }
    let mut next = state.clone();
    next.holder.previous = next.holder.current.take();
    next.holder.current = Some(HolderRecord {
        commitment: holder.commitment.clone(),
        txid: tx.trust().txid(),
        digest: build::holder_digest(&tx, holder),
        counterparty_signature: holder.counterparty_signature,
        counterparty_htlc_signatures: holder.counterparty_htlc_signatures.clone(),
    });
    let operation = Operation::CheckHolderPoint {
        number: n,
        point: holder.commitment.per_commitment_point,
    };
    Ok(rules.sign(Some(next), operation))
}

/// Decides the signature of holder commitment `n` for broadcast.
pub(crate) fn sign(
    rules: Rules<'_>,
    state: &ChannelState,
    n: CommitmentNumber,
) -> Result<Verdict, Stop> {
    if state.holder.is_revoked(n) {
        return refuse(
            &tags::HOLDER_NOT_REVOKED,
            format!(
                "holder commitment {n} is revoked (secrets released through {:?}); \
                 broadcasting it would forfeit the channel",
                state.holder.revoked_through.map(|r| r.get())
            ),
        );
    }
    let Some(record) = state
        .holder
        .current
        .as_ref()
        .filter(|r| r.commitment.number == n)
    else {
        return refuse(
            &tags::HOLDER_NOT_NEWEST,
            format!(
                "holder commitment {n} is not the newest validated ({:?})",
                state
                    .holder
                    .current
                    .as_ref()
                    .map(|r| r.commitment.number.get())
            ),
        );
    };
    let tx = build::commitment(
        &state.setup,
        kind(state)?,
        rules.params()?,
        &record.commitment,
        Broadcaster::Holder,
        rules.ctx.secp,
    )?;
    let holder_tx = HolderCommitmentTransaction::new(
        tx,
        record.counterparty_signature,
        record.counterparty_htlc_signatures.clone(),
        &state.setup.holder.funding_pubkey,
        &state.setup.counterparty.funding_pubkey,
    );
    let closing = Closing::Force { number: n };
    let next = (state.closed != Some(closing)).then(|| {
        let mut next = state.clone();
        next.closed = Some(closing);
        next
    });
    Ok(rules.sign(next, Operation::SignHolderCommitment(holder_tx)))
}
