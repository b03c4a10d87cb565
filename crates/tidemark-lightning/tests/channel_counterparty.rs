//! Counterparty commitments and revocations: the split-brain guard
//! (retry-same), at most two unrevoked commitments, order, values and the
//! business ranges, each with the request that triggers it and the
//! legitimate request that passes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod channel_support;

use channel_support::*;
use tidemark_lightning::channel::{ChannelKind, ChannelRequest, Output};
use tidemark_lightning::tags;

#[test]
fn a_channel_runs_many_rounds_and_every_signature_verifies() {
    for kind in KINDS {
        let mut c = Channel::open(kind);
        for round in 1..=5 {
            if round == 2 {
                c.holder_sat -= 50_000;
                c.htlcs.push(htlc(true, 50_000, HEIGHT + 100, 1));
            }
            if round == 3 {
                c.counterparty_sat -= 20_000;
                c.htlcs.push(htlc(false, 20_000, HEIGHT + 200, 2));
            }
            let data = c.counterparty_commitment(round);
            let out = c
                .ask(ChannelRequest::SignCounterpartyCommitment(Box::new(
                    data.clone(),
                )))
                .unwrap()
                .signed();
            c.verify_counterparty_signature(&data, &out);
            c.revoke_counterparty(round - 1).signed();
            c.validate_holder(round).signed();
            c.release_holder(round - 1).signed();
        }
        let s = c.state();
        assert_eq!(s.counterparty.revoked, 5);
        assert_eq!(
            s.counterparty.signed.len(),
            2,
            "only the two newest are kept"
        );
        assert_eq!(s.holder.revoked_through, Some(n(4)));
        assert_eq!(s.mark().get("counterparty_signed"), Some(5));
    }
}

#[test]
fn retry_same_an_identical_repeat_gets_the_stored_signatures() {
    let mut c = Channel::open(ChannelKind::AnchorsZeroFeeHtlcTx);
    c.htlcs.push(htlc(true, 40_000, HEIGHT + 50, 3));
    c.holder_sat -= 40_000;
    let first = c.sign_counterparty(1).signed();
    // Another replica asks for the very same commitment: the stored
    // signatures, byte for byte.
    assert_eq!(c.sign_counterparty(1).replayed(), first);
    // The one before the newest is kept too.
    c.htlcs.clear();
    c.holder_sat += 40_000;
    let zero = c.sign_counterparty(0).replayed();
    assert!(matches!(zero, Output::Commitment { .. }));
}

#[test]
fn retry_same_other_content_at_a_signed_number_is_refused() {
    let mut c = Channel::open(ChannelKind::StaticRemoteKey);
    c.sign_counterparty(1).signed();
    // A second replica with a different view of the balances.
    c.holder_sat -= 1_000;
    c.counterparty_sat += 1_000;
    let detail = c.sign_counterparty(1).refused(&tags::COMMITMENT_RETRY_SAME);
    assert!(detail.contains("commitment 1"), "{detail}");
    // Also with values the channel cannot even hold.
    let mut data = c.counterparty_commitment(1);
    data.to_broadcaster_sat = u64::MAX;
    c.ask(ChannelRequest::SignCounterpartyCommitment(Box::new(data)))
        .unwrap()
        .refused(&tags::COMMITMENT_RETRY_SAME);
}

#[test]
fn previous_revoked_n_plus_one_waits_for_the_revocation_of_n_minus_one() {
    let mut c = Channel::open(ChannelKind::AnchorsZeroFeeHtlcTx);
    c.sign_counterparty(1).signed();
    let detail = c
        .sign_counterparty(2)
        .refused(&tags::COMMITMENT_PREVIOUS_REVOKED);
    assert!(detail.contains("revocation of 0"), "{detail}");
    c.revoke_counterparty(0).signed();
    c.sign_counterparty(2).signed();
}

#[test]
fn not_next_gaps_and_forgotten_numbers_are_refused() {
    let mut c = Channel::open(ChannelKind::StaticRemoteKey);
    c.sign_counterparty(2).refused(&tags::COMMITMENT_NOT_NEXT);
    c.advance(1);
    c.advance(2);
    // Commitment 0 is no longer kept: its content cannot be compared.
    c.sign_counterparty(0).refused(&tags::COMMITMENT_NOT_NEXT);
    c.sign_counterparty(3).signed();
    // The holder side: a gap.
    c.validate_holder(4).refused(&tags::COMMITMENT_NOT_NEXT);
    c.validate_holder(3).signed();
}

#[test]
fn commitment_value_outputs_above_the_channel_are_refused() {
    let mut c = Channel::open(ChannelKind::StaticRemoteKey);
    c.counterparty_sat += 20_000;
    let detail = c.sign_counterparty(1).refused(&tags::COMMITMENT_VALUE);
    assert!(detail.contains("exceed"), "{detail}");
    c.counterparty_sat -= 20_000;
    // An HTLC that does not cover its second-stage fee is dust, not an
    // output (LDK would panic building its HTLC transaction).
    c.htlcs.push(htlc(true, 1, HEIGHT + 10, 4));
    c.sign_counterparty(1).refused(&tags::COMMITMENT_VALUE);
    c.htlcs.clear();
    // Amounts that overflow.
    let mut data = c.counterparty_commitment(1);
    data.htlcs = vec![htlc(true, u64::MAX / 1000, HEIGHT, 5); 2];
    c.policy.max_htlc_value_in_flight_msat = u64::MAX;
    c.policy.downgrade("policy-htlc-value-in-flight").unwrap();
    c.ask(ChannelRequest::SignCounterpartyCommitment(Box::new(data)))
        .unwrap()
        .refused(&tags::COMMITMENT_VALUE);
    c.sign_counterparty(1).signed();
}

#[test]
fn revocation_mismatch_a_secret_that_is_not_the_commitments() {
    let mut c = Channel::open(ChannelKind::AnchorsZeroFeeHtlcTx);
    c.sign_counterparty(1).signed();
    // The secret of another commitment.
    let wrong = c.counterparty_secret(5);
    let detail = c
        .ask(ChannelRequest::ValidateCounterpartyRevocation {
            number: n(0),
            secret: wrong,
        })
        .unwrap()
        .refused(&tags::REVOCATION_MISMATCH);
    assert!(detail.contains("point"), "{detail}");
    // Not a valid scalar at all.
    c.ask(ChannelRequest::ValidateCounterpartyRevocation {
        number: n(0),
        secret: [0xff; 32],
    })
    .unwrap()
    .refused(&tags::REVOCATION_MISMATCH);
    c.revoke_counterparty(0).signed();
    // A repeat of a validated revocation is a replay; another secret for
    // it is a mismatch.
    assert_eq!(c.revoke_counterparty(0).replayed(), Output::Done);
    c.ask(ChannelRequest::ValidateCounterpartyRevocation {
        number: n(0),
        secret: wrong,
    })
    .unwrap()
    .refused(&tags::REVOCATION_MISMATCH);
}

#[test]
fn revocation_out_of_order_only_the_oldest_unrevoked_with_a_successor() {
    let mut c = Channel::open(ChannelKind::StaticRemoteKey);
    // Commitment 0 has no successor yet.
    c.revoke_counterparty(0)
        .refused(&tags::REVOCATION_OUT_OF_ORDER);
    c.sign_counterparty(1).signed();
    c.revoke_counterparty(1)
        .refused(&tags::REVOCATION_OUT_OF_ORDER);
    c.revoke_counterparty(0).signed();
}

#[test]
fn channel_closed_no_new_commitment_after_a_close() {
    let mut c = Channel::open(ChannelKind::StaticRemoteKey);
    c.ask(ChannelRequest::SignHolderCommitment(n(0)))
        .unwrap()
        .signed();
    c.sign_counterparty(1).refused(&tags::CHANNEL_CLOSED);
    c.validate_holder(1).refused(&tags::CHANNEL_CLOSED);
    // What was signed before the close is still replayed.
    c.sign_counterparty(0).replayed();
    c.validate_holder(0).replayed();
}

#[test]
fn feerate_range_refused_then_downgraded_to_a_warning() {
    let mut c = Channel::open(ChannelKind::StaticRemoteKey);
    c.policy.max_feerate_per_kw = FEERATE - 1;
    let detail = c.sign_counterparty(1).refused(&tags::FEERATE_RANGE);
    assert!(detail.contains("2500"), "{detail}");
    c.policy.downgrade("policy-feerate-range").unwrap();
    let out = c.sign_counterparty(1);
    assert_eq!(out.warnings()[0].tag, tags::FEERATE_RANGE);
    out.signed();
}

#[test]
fn htlc_count_refused_above_the_limit_passes_at_it() {
    let mut c = Channel::open(ChannelKind::AnchorsZeroFeeHtlcTx);
    c.policy.max_htlcs = 1;
    c.holder_sat -= 20_000;
    c.htlcs = vec![
        htlc(true, 10_000, HEIGHT + 10, 1),
        htlc(true, 10_000, HEIGHT + 10, 2),
    ];
    c.sign_counterparty(1).refused(&tags::HTLC_COUNT);
    c.policy.max_htlcs = 2;
    c.sign_counterparty(1).signed();
}

#[test]
fn htlc_value_in_flight_refused_within_the_limit_passes() {
    let mut c = Channel::open(ChannelKind::StaticRemoteKey);
    c.policy.max_htlc_value_in_flight_msat = 30_000_000;
    c.holder_sat -= 40_000;
    c.htlcs = vec![htlc(true, 40_000, HEIGHT + 10, 1)];
    c.sign_counterparty(1).refused(&tags::HTLC_VALUE_IN_FLIGHT);
    c.policy.max_htlc_value_in_flight_msat = 40_000_000;
    c.sign_counterparty(1).signed();
}

#[test]
fn htlc_cltv_range_far_expiries_and_timestamps_are_refused() {
    let mut c = Channel::open(ChannelKind::StaticRemoteKey);
    c.holder_sat -= 40_000;
    c.htlcs = vec![htlc(true, 40_000, HEIGHT + 5000, 1)];
    c.sign_counterparty(1).refused(&tags::HTLC_CLTV_RANGE);
    // Without a best block only the block-height form is checked.
    c.best_block = None;
    c.htlcs = vec![htlc(true, 40_000, 600_000_000, 1)];
    c.sign_counterparty(1).refused(&tags::HTLC_CLTV_RANGE);
    c.best_block = Some(HEIGHT);
    c.htlcs = vec![htlc(true, 40_000, HEIGHT + 4032, 1)];
    c.sign_counterparty(1).signed();
}
