//! Holder commitments: validation (counterparty signatures verified
//! against the rebuilt transaction), secret release only after the next
//! commitment was validated, and force close only of the newest,
//! unrevoked commitment.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod channel_support;

use channel_support::*;
use lightning::sign::ChannelSigner as _;
use tidemark_lightning::channel::{ChannelError, ChannelKind, ChannelRequest, Closing, Output};
use tidemark_lightning::tags;

#[test]
fn holder_secret_early_released_only_after_the_next_commitment_was_validated() {
    let mut c = Channel::open(ChannelKind::StaticRemoteKey);
    let detail = c.release_holder(0).refused(&tags::HOLDER_SECRET_EARLY);
    assert!(detail.contains("commitment 1"), "{detail}");
    c.release_holder(7).refused(&tags::HOLDER_SECRET_EARLY);
    c.validate_holder(1).signed();
    let Output::HolderSecret(secret) = c.release_holder(0).signed() else {
        panic!("not a secret");
    };
    let expected = c
        .holder
        .release_commitment_secret(n(0).ldk_index())
        .unwrap();
    assert_eq!(*secret.0, expected);
    assert_eq!(format!("{secret:?}"), "HolderSecret(..)");
    assert_eq!(c.state().holder.revoked_through, Some(n(0)));
    // Released again: the same secret, no state change.
    c.release_holder(0).signed();
}

#[test]
fn holder_not_revoked_a_revoked_holder_commitment_is_never_signed() {
    for kind in KINDS {
        let mut c = Channel::open(kind);
        c.advance(1);
        let detail = c
            .ask(ChannelRequest::SignHolderCommitment(n(0)))
            .unwrap()
            .refused(&tags::HOLDER_NOT_REVOKED);
        assert!(detail.contains("revoked"), "{detail}");
        let sig = signature(
            c.ask(ChannelRequest::SignHolderCommitment(n(1)))
                .unwrap()
                .signed(),
        );
        // The signature is the holder's over the rebuilt commitment 1.
        let tx = c.rebuilt_holder(&c.holder_data(1));
        let sighash = tx
            .trust()
            .built_transaction()
            .get_sighash_all(&c.funding_script(), VALUE_SAT);
        c.secp
            .verify_ecdsa(&sighash, &sig, &c.setup.holder.funding_pubkey)
            .unwrap();
        assert_eq!(c.state().closed, Some(Closing::Force { number: n(1) }));
    }
}

#[test]
fn holder_not_newest_only_the_newest_validated_commitment_is_signed() {
    let mut c = Channel::open(ChannelKind::AnchorsZeroFeeHtlcTx);
    c.validate_holder(1).signed();
    // 0 is not revoked yet, but it is not the newest.
    c.ask(ChannelRequest::SignHolderCommitment(n(0)))
        .unwrap()
        .refused(&tags::HOLDER_NOT_NEWEST);
    c.ask(ChannelRequest::SignHolderCommitment(n(2)))
        .unwrap()
        .refused(&tags::HOLDER_NOT_NEWEST);
    c.ask(ChannelRequest::SignHolderCommitment(n(1)))
        .unwrap()
        .signed();
    // May be asked again for the same transaction.
    c.ask(ChannelRequest::SignHolderCommitment(n(1)))
        .unwrap()
        .signed();
}

#[test]
fn a_force_closed_commitment_is_never_revoked_afterwards() {
    let mut c = Channel::open(ChannelKind::StaticRemoteKey);
    c.advance(1);
    c.ask(ChannelRequest::SignHolderCommitment(n(1)))
        .unwrap()
        .signed();
    // A stale replica goes on with the channel: no newer holder commitment
    // is validated, so the broadcast one's secret is never released.
    c.validate_holder(2).refused(&tags::CHANNEL_CLOSED);
    c.release_holder(1).refused(&tags::HOLDER_SECRET_EARLY);
}

#[test]
fn holder_commitment_conflict_other_content_at_a_validated_number() {
    let mut c = Channel::open(ChannelKind::StaticRemoteKey);
    c.validate_holder(1).signed();
    assert_eq!(c.validate_holder(1).replayed(), Output::Done);
    c.holder_sat -= 5_000;
    c.counterparty_sat += 5_000;
    c.validate_holder(1)
        .refused(&tags::HOLDER_COMMITMENT_CONFLICT);
}

#[test]
fn counterparty_signature_invalid_signatures_must_verify() {
    for kind in KINDS {
        let mut c = Channel::open(kind);
        c.holder_sat -= 30_000;
        c.htlcs = vec![htlc(true, 30_000, HEIGHT + 10, 1)];
        // Signed for other balances than those presented.
        let mut forged = c.holder_commitment(1);
        forged.commitment.to_countersignatory_sat -= 1;
        let detail = c
            .ask(ChannelRequest::ValidateHolderCommitment(Box::new(forged)))
            .unwrap()
            .refused(&tags::COUNTERPARTY_SIGNATURE_INVALID);
        assert!(detail.contains("commitment signature"), "{detail}");
        // An HTLC signature for another HTLC.
        let mut swapped = c.holder_commitment(1);
        swapped.counterparty_htlc_signatures[0] = swapped.counterparty_signature;
        c.ask(ChannelRequest::ValidateHolderCommitment(Box::new(swapped)))
            .unwrap()
            .refused(&tags::COUNTERPARTY_SIGNATURE_INVALID);
        // A missing one.
        let mut missing = c.holder_commitment(1);
        missing.counterparty_htlc_signatures.clear();
        c.ask(ChannelRequest::ValidateHolderCommitment(Box::new(missing)))
            .unwrap()
            .refused(&tags::COUNTERPARTY_SIGNATURE_INVALID);
        c.validate_holder(1).signed();
    }
}

#[test]
fn a_holder_commitment_with_a_foreign_point_is_an_error_and_changes_nothing() {
    let mut c = Channel::open(ChannelKind::StaticRemoteKey);
    let mut data = c.holder_data(1);
    data.per_commitment_point = c.holder_point(9);
    let holder = c.countersign(data);
    let before = c.state().clone();
    let err = c
        .ask(ChannelRequest::ValidateHolderCommitment(Box::new(holder)))
        .unwrap_err();
    assert_eq!(err, ChannelError::HolderPointMismatch(1));
    assert_eq!(c.state(), &before);
}
