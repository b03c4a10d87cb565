//! Counterparty commitments: signing them and validating their
//! revocations.
//!
//! - A commitment number is signed once: the next number, or the newest
//!   (or the one before) again with identical content, which replays the
//!   stored signatures. Other content at a signed number is
//!   `policy-commitment-retry-same`: two replicas racing to sign different
//!   commitments for one number get one signature and one refusal.
//! - Commitment n+1 is signed only after the revocation of n-1 was
//!   validated (`policy-commitment-previous-revoked`): the peer never
//!   holds more than two unrevoked commitments.
//! - A revocation must be of the oldest unrevoked commitment, and its
//!   secret must match the point that commitment was signed with.

use bitcoin::secp256k1::{PublicKey, SecretKey};

use crate::channel::build::{self, Broadcaster};
use crate::channel::decide::{Rules, Stop, kind, refuse};
use crate::channel::number::CommitmentNumber;
use crate::channel::request::CommitmentData;
use crate::channel::state::{ChannelState, SignedCommitment};
use crate::channel::verdict::{Operation, Output, Verdict};
use crate::tags;

/// Decides the signature of counterparty commitment `data`.
pub(crate) fn sign(
    mut rules: Rules<'_>,
    state: &ChannelState,
    data: &CommitmentData,
) -> Result<Verdict, Stop> {
    let ledger = &state.counterparty;
    let n = data.number;
    let kind = kind(state)?;
    let secp = rules.ctx.secp;
    if let Some(signed) = ledger.get(n) {
        let digest = build::commitment(
            &state.setup,
            kind,
            rules.params()?,
            data,
            Broadcaster::Counterparty,
            secp,
        )
        .map(|tx| build::commitment_digest(&tx));
        return match (digest, &signed.released) {
            (Ok(d), Some(released)) if d == signed.digest => Ok(Verdict::Replay {
                output: Output::Commitment {
                    signature: released.signature,
                    htlc_signatures: released.htlc_signatures.clone(),
                },
            }),
            // Only an import stores a commitment without its signatures:
            // they are not signed again, since the signer cannot tell that
            // the content is what the node signed before the move.
            (Ok(d), None) if d == signed.digest => refuse(
                &tags::COMMITMENT_RETRY_SAME,
                format!(
                    "counterparty commitment {n} was imported without its signatures; \
                     they cannot be replayed, and it is not signed again"
                ),
            ),
            (Err(Stop::Error(e)), _) => Err(Stop::Error(e)),
            _ => refuse(
                &tags::COMMITMENT_RETRY_SAME,
                format!(
                    "counterparty commitment {n} was signed with other content (txid {})",
                    signed.txid
                ),
            ),
        };
    }
    if let Some(closing) = state.closed {
        return refuse(
            &tags::CHANNEL_CLOSED,
            format!("the channel is closed ({closing:?}); commitment {n} is not signed"),
        );
    }
    let expected = ledger.newest().map_or(0, |c| c.number.get() + 1);
    if n.get() != expected {
        return refuse(
            &tags::COMMITMENT_NOT_NEXT,
            format!("counterparty commitment {n} is not the next one, {expected}"),
        );
    }
    if n.get() >= 2 && ledger.revoked < n.get() - 1 {
        return refuse(
            &tags::COMMITMENT_PREVIOUS_REVOKED,
            format!(
                "counterparty commitment {n} needs the revocation of {} first; \
                 only commitments below {} are revoked",
                n.get() - 2,
                ledger.revoked
            ),
        );
    }
    rules.commitment_ranges(data)?;
    let tx = build::commitment(
        &state.setup,
        kind,
        rules.params()?,
        data,
        Broadcaster::Counterparty,
        secp,
    )?;
    let mut next = state.clone();
    next.counterparty.signed.push(SignedCommitment {
        number: n,
        per_commitment_point: data.per_commitment_point,
        txid: tx.trust().txid(),
        digest: build::commitment_digest(&tx),
        to_holder_sat: data.to_countersignatory_sat,
        htlc_count: u32::try_from(tx.nondust_htlcs().len()).unwrap_or(u32::MAX),
        released: None,
    });
    let keep = next.counterparty.signed.len().saturating_sub(2);
    next.counterparty.signed.drain(..keep);
    Ok(rules.sign(Some(next), Operation::SignCounterpartyCommitment(tx)))
}

/// Decides the counterparty's revocation of commitment `number`.
pub(crate) fn revocation(
    rules: Rules<'_>,
    state: &ChannelState,
    number: CommitmentNumber,
    secret: &[u8; 32],
) -> Result<Verdict, Stop> {
    let ledger = &state.counterparty;
    let revoked = ledger.revoked;
    if number.get() < revoked {
        return match ledger.secrets.get(number.ldk_index()) {
            Some(stored) if stored == *secret => Ok(Verdict::Replay {
                output: Output::Done,
            }),
            _ => refuse(
                &tags::REVOCATION_MISMATCH,
                format!("commitment {number} was revoked with another secret"),
            ),
        };
    }
    let signed = ledger.get(number).filter(|_| number.get() == revoked);
    let newest = ledger.newest().map(|c| c.number);
    let Some(signed) = signed.filter(|_| newest > Some(number)) else {
        return refuse(
            &tags::REVOCATION_OUT_OF_ORDER,
            format!(
                "the next revocation is of commitment {revoked}, once its successor is signed \
                 (newest signed: {newest:?}); not of {number}"
            ),
        );
    };
    let point = SecretKey::from_slice(secret)
        .map(|key| PublicKey::from_secret_key(rules.ctx.secp, &key))
        .ok();
    if point != Some(signed.per_commitment_point) {
        return refuse(
            &tags::REVOCATION_MISMATCH,
            format!("the secret does not match the point commitment {number} was signed with"),
        );
    }
    let mut next = state.clone();
    if next
        .counterparty
        .secrets
        .provide(number.ldk_index(), *secret)
        .is_err()
    {
        return refuse(
            &tags::REVOCATION_MISMATCH,
            format!("the secret of commitment {number} contradicts the secrets received before"),
        );
    }
    next.counterparty.revoked = revoked + 1;
    Ok(rules.sign(Some(next), Operation::Acknowledge))
}
