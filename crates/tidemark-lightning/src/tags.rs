//! The stable refusal tags of the lightning domain.
//!
//! Tags are API: a replica matches on them, dashboards count them, so a
//! tag is never renamed or reused. Each is either a **funds-safety** rule
//! ([`SAFETY`]), which no configuration can relax, or a **business** rule
//! ([`BUSINESS`]), which an operator may downgrade to a logged warning in
//! the policy file's `[downgrade]` list.

use tidemark_core::Tag;

// --- counterparty commitments -------------------------------------------

/// A counterparty commitment number that was already signed, with other
/// content: signing it would give the peer two commitments for one number
/// (the split-brain guard).
pub const COMMITMENT_RETRY_SAME: Tag = Tag::new("policy-commitment-retry-same");
/// Signing counterparty commitment n+1 before the revocation of n-1 was
/// validated would leave three unrevoked commitments.
pub const COMMITMENT_PREVIOUS_REVOKED: Tag = Tag::new("policy-commitment-previous-revoked");
/// A commitment number that is neither the next one nor one of the kept
/// ones (a gap, or too old to compare).
pub const COMMITMENT_NOT_NEXT: Tag = Tag::new("policy-commitment-not-next");
/// A commitment's outputs and HTLCs add up to more than the channel, or an
/// HTLC does not cover its second-stage fee.
pub const COMMITMENT_VALUE: Tag = Tag::new("policy-commitment-value");

// --- revocations ----------------------------------------------------------

/// A counterparty revocation secret that does not match the stored
/// per-commitment point, or contradicts the secrets received before.
pub const REVOCATION_MISMATCH: Tag = Tag::new("policy-revocation-mismatch");
/// A revocation of a commitment that is not the oldest unrevoked one, or
/// that was never signed.
pub const REVOCATION_OUT_OF_ORDER: Tag = Tag::new("policy-revocation-out-of-order");

// --- holder commitments ---------------------------------------------------

/// Signing a holder commitment whose secret was released (revoked): the
/// peer could take the whole channel.
pub const HOLDER_NOT_REVOKED: Tag = Tag::new("policy-commitment-holder-not-revoked");
/// Signing a holder commitment that is not the newest validated one.
pub const HOLDER_NOT_NEWEST: Tag = Tag::new("policy-commitment-holder-not-newest");
/// Releasing the holder secret of n before holder commitment n+1 was
/// validated.
pub const HOLDER_SECRET_EARLY: Tag = Tag::new("policy-holder-secret-early");
/// A holder commitment number already validated, with other content.
pub const HOLDER_COMMITMENT_CONFLICT: Tag = Tag::new("policy-holder-commitment-conflict");
/// The counterparty's signature (commitment or HTLC) on a holder
/// commitment does not verify against the rebuilt transaction.
pub const COUNTERPARTY_SIGNATURE_INVALID: Tag = Tag::new("policy-counterparty-signature-invalid");

// --- spends ---------------------------------------------------------------

/// A sweep, justice transaction or mutual close that pays a script that is
/// neither the wallet's nor allowlisted.
pub const DESTINATION_NOT_ALLOWED: Tag = Tag::new("policy-destination-not-allowed");
/// A justice transaction against a commitment that was not revoked.
pub const JUSTICE_NOT_REVOKED: Tag = Tag::new("policy-justice-not-revoked");
/// A holder HTLC transaction that does not spend an HTLC output of a
/// stored holder commitment exactly as BOLT 3 builds it.
pub const HOLDER_HTLC_MISMATCH: Tag = Tag::new("policy-holder-htlc-mismatch");
/// A claim of an HTLC of a counterparty commitment the signer did not
/// sign (or that is revoked: use justice).
pub const COUNTERPARTY_COMMITMENT_UNKNOWN: Tag = Tag::new("policy-counterparty-commitment-unknown");
/// An anchor spend that does not spend the holder's anchor of the newest
/// holder commitment.
pub const ANCHOR_NOT_HOLDER: Tag = Tag::new("policy-anchor-not-holder-commitment");

// --- close ----------------------------------------------------------------

/// A mutual close while a commitment still has HTLCs.
pub const CLOSE_PENDING_HTLCS: Tag = Tag::new("policy-close-pending-htlcs");
/// A mutual close that pays the holder less than the last commitment did,
/// beyond the allowed fee.
pub const CLOSE_VALUE: Tag = Tag::new("policy-close-value");

// --- channel lifecycle ----------------------------------------------------

/// A request for a channel that was never set up.
pub const CHANNEL_UNKNOWN: Tag = Tag::new("policy-channel-unknown");
/// A second, different setup of a channel.
pub const CHANNEL_ALREADY_SETUP: Tag = Tag::new("policy-channel-already-setup");
/// A setup that changes the funding outpoint.
pub const FUNDING_OUTPOINT_CHANGED: Tag = Tag::new("policy-funding-outpoint-changed");
/// A new commitment after a close was signed.
pub const CHANNEL_CLOSED: Tag = Tag::new("policy-channel-closed");
/// A channel type the policy does not allow or the signer cannot rebuild.
pub const CHANNEL_TYPE: Tag = Tag::new("policy-channel-type");
/// An import of an open channel whose parts do not fit together: numbers
/// out of step (more than two unrevoked commitments, a gap, a holder
/// revocation ahead of the holder commitment), revocation secrets other
/// than the compact store's entries, or holder signatures of a
/// counterparty commitment that do not verify.
pub const IMPORT_INCONSISTENT: Tag = Tag::new("policy-import-inconsistent");
/// A channel announcement whose funding keys or short channel id are not
/// this channel's.
pub const ANNOUNCEMENT_MISMATCH: Tag = Tag::new("policy-announcement-mismatch");

// --- business ranges (downgradable) ---------------------------------------

/// A commitment fee rate outside the configured range.
pub const FEERATE_RANGE: Tag = Tag::new("policy-feerate-range");
/// More HTLCs in a commitment than configured.
pub const HTLC_COUNT: Tag = Tag::new("policy-htlc-count");
/// More HTLC value in flight than configured.
pub const HTLC_VALUE_IN_FLIGHT: Tag = Tag::new("policy-htlc-value-in-flight");
/// An HTLC expiry beyond the configured delta (or not a block height).
pub const HTLC_CLTV_RANGE: Tag = Tag::new("policy-htlc-cltv-range");
/// A contest delay outside the configured range.
pub const CONTEST_DELAY_RANGE: Tag = Tag::new("policy-contest-delay-range");

/// The funds-safety rules: never downgradable.
pub const SAFETY: [&Tag; 25] = [
    &COMMITMENT_RETRY_SAME,
    &COMMITMENT_PREVIOUS_REVOKED,
    &COMMITMENT_NOT_NEXT,
    &COMMITMENT_VALUE,
    &REVOCATION_MISMATCH,
    &REVOCATION_OUT_OF_ORDER,
    &HOLDER_NOT_REVOKED,
    &HOLDER_NOT_NEWEST,
    &HOLDER_SECRET_EARLY,
    &HOLDER_COMMITMENT_CONFLICT,
    &COUNTERPARTY_SIGNATURE_INVALID,
    &DESTINATION_NOT_ALLOWED,
    &JUSTICE_NOT_REVOKED,
    &HOLDER_HTLC_MISMATCH,
    &COUNTERPARTY_COMMITMENT_UNKNOWN,
    &ANCHOR_NOT_HOLDER,
    &CLOSE_PENDING_HTLCS,
    &CLOSE_VALUE,
    &CHANNEL_UNKNOWN,
    &CHANNEL_ALREADY_SETUP,
    &FUNDING_OUTPOINT_CHANGED,
    &CHANNEL_CLOSED,
    &CHANNEL_TYPE,
    &ANNOUNCEMENT_MISMATCH,
    &IMPORT_INCONSISTENT,
];

/// The business rules: an operator may downgrade each to a warning.
pub const BUSINESS: [&Tag; 5] = [
    &FEERATE_RANGE,
    &HTLC_COUNT,
    &HTLC_VALUE_IN_FLIGHT,
    &HTLC_CLTV_RANGE,
    &CONTEST_DELAY_RANGE,
];

/// Whether `tag` is a business rule (downgradable).
pub fn is_business(tag: &Tag) -> bool {
    BUSINESS.contains(&tag)
}

/// Whether `tag` is one of this domain's tags.
pub fn is_known(tag: &Tag) -> bool {
    is_business(tag) || SAFETY.contains(&tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_unique_and_well_formed() {
        let all: Vec<&Tag> = SAFETY.iter().chain(BUSINESS.iter()).copied().collect();
        let unique: std::collections::BTreeSet<&str> = all.iter().map(|t| t.as_str()).collect();
        assert_eq!(unique.len(), all.len());
        for tag in all {
            assert!(Tag::parse(tag.as_str()).is_some(), "{tag}");
        }
    }
}
