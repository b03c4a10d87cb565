//! Importing an open channel: a node runs a channel for several rounds on
//! its own state (as LDK's `KeysManager` would), then its position is
//! imported into a fresh state and the signer continues from there.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod channel_support;

use channel_support::*;
use tidemark_lightning::channel::{
    ChannelError, ChannelImport, ChannelKind, ChannelRequest, ChannelState, Closing,
    CommitmentSignatures, ImportedCommitment, ImportedSecret, RevocationSecrets,
};
use tidemark_lightning::tags;

/// A channel the node ran through `rounds` full rounds, with two HTLCs
/// pending from round 2 on; and the node's own state.
fn node_after(kind: ChannelKind, rounds: u64) -> (Channel, ChannelState) {
    let mut c = Channel::open(kind);
    for round in 1..=rounds {
        if round == 2 {
            c.offer_htlcs(2, 20_000, HEIGHT + 100, 1).unwrap();
        }
        c.advance(round);
    }
    let state = c.state().clone();
    (c, state)
}

/// The import of the node's position: counterparty commitments `signed`
/// (with the signatures the node released, if `signatures`), `revoked`
/// counterparty commitments, holder commitment `holder` and holder secrets
/// released through `holder_revoked_through`.
fn import_of(
    c: &Channel,
    node: &ChannelState,
    signed: &[u64],
    signatures: bool,
    revoked: u64,
    holder: u64,
    holder_revoked_through: Option<u64>,
) -> ChannelImport {
    ChannelImport {
        setup: c.setup.clone(),
        counterparty_signed: signed
            .iter()
            .map(|&number| ImportedCommitment {
                commitment: c.counterparty_commitment(number),
                signatures: signatures
                    .then(|| node.counterparty.get(n(number)).unwrap().released.clone())
                    .flatten(),
            })
            .collect(),
        counterparty_revoked: revoked,
        counterparty_secrets: RevocationSecrets::compact_numbers(revoked)
            .unwrap()
            .into_iter()
            .map(|number| ImportedSecret {
                number: n(number),
                secret: c.counterparty_secret(number),
            })
            .collect(),
        holder: c.holder_commitment(holder),
        holder_revoked_through: holder_revoked_through.map(n),
    }
}

/// The position after five full rounds: counterparty 4 and 5 signed, 4
/// revoked; holder 5 validated, holder 4 revoked.
fn after_five(c: &Channel, node: &ChannelState, signatures: bool) -> ChannelImport {
    import_of(c, node, &[4, 5], signatures, 5, 5, Some(4))
}

fn import(c: &mut Channel, import: ChannelImport) -> Outcome {
    c.ask(ChannelRequest::Import(Box::new(import))).unwrap()
}

#[test]
fn an_imported_channel_continues_where_the_node_stopped() {
    for kind in KINDS {
        let (mut c, node) = node_after(kind, 5);
        let position = after_five(&c, &node, true);
        c.state = None;
        import(&mut c, position.clone()).signed();
        let imported = c.state().clone();
        assert_eq!(imported.setup, node.setup);
        assert_eq!(imported.counterparty, node.counterparty);
        assert_eq!(imported.holder.current, node.holder.current);
        assert_eq!(imported.holder.revoked_through, Some(n(4)));
        assert_eq!(imported.closed, None);
        // The same import again is replayed; another is refused.
        import(&mut c, position.clone()).replayed();
        let other = import_of(&c, &node, &[5], true, 5, 5, Some(4));
        import(&mut c, other).refused(&tags::CHANNEL_ALREADY_SETUP);
        // The next counterparty commitment signs and verifies.
        let data = c.counterparty_commitment(6);
        let output = c.sign_counterparty(6).signed();
        c.verify_counterparty_signature(&data, &output);
        c.revoke_counterparty(5).signed();
        c.validate_holder(6).signed();
        c.release_holder(5).signed();
        c.advance(7);
        assert_eq!(c.state().counterparty.revoked, 7);
        // A setup identical to the imported one is replayed.
        c.ask(c.setup_request()).unwrap().replayed();
    }
}

#[test]
fn import_onto_a_channel_with_state_is_refused() {
    let (mut c, node) = node_after(ChannelKind::StaticRemoteKey, 5);
    let position = after_five(&c, &node, true);
    let detail = import(&mut c, position).refused(&tags::CHANNEL_ALREADY_SETUP);
    assert!(detail.contains("no state"), "{detail}");
    assert_eq!(c.state(), &node);
}

#[test]
fn stale_resigns_after_an_import_are_refused_and_the_newest_replays() {
    let (mut c, node) = node_after(ChannelKind::AnchorsZeroFeeHtlcTx, 5);
    c.state = None;
    let position = after_five(&c, &node, true);
    import(&mut c, position).signed();
    // An older number is not the next one.
    c.sign_counterparty(3).refused(&tags::COMMITMENT_NOT_NEXT);
    // The newest, identical: the signatures the node released, byte for
    // byte.
    let stored = node
        .counterparty
        .get(n(5))
        .unwrap()
        .released
        .clone()
        .unwrap();
    let output = c.sign_counterparty(5).replayed();
    assert_eq!(
        output,
        tidemark_lightning::channel::Output::Commitment {
            signature: stored.signature,
            htlc_signatures: stored.htlc_signatures,
        }
    );
    // The newest with other content: the split-brain guard.
    let mut other = c.counterparty_commitment(5);
    other.feerate_per_kw += 1;
    c.ask(ChannelRequest::SignCounterpartyCommitment(Box::new(other)))
        .unwrap()
        .refused(&tags::COMMITMENT_RETRY_SAME);
}

#[test]
fn an_import_without_signatures_refuses_a_retry_of_the_newest() {
    let (mut c, node) = node_after(ChannelKind::StaticRemoteKey, 5);
    c.state = None;
    let position = after_five(&c, &node, false);
    import(&mut c, position).signed();
    let detail = c.sign_counterparty(5).refused(&tags::COMMITMENT_RETRY_SAME);
    assert!(detail.contains("without its signatures"), "{detail}");
    c.sign_counterparty(6).signed();
    // Once signed through the signer, a retry replays.
    c.sign_counterparty(6).replayed();
}

#[test]
fn force_close_after_an_import_signs_only_the_newest_validated_holder_commitment() {
    for kind in KINDS {
        let (mut c, node) = node_after(kind, 5);
        c.state = None;
        let position = after_five(&c, &node, true);
        import(&mut c, position).signed();
        c.ask(ChannelRequest::SignHolderCommitment(n(4)))
            .unwrap()
            .refused(&tags::HOLDER_NOT_REVOKED);
        c.ask(ChannelRequest::SignHolderCommitment(n(6)))
            .unwrap()
            .refused(&tags::HOLDER_NOT_NEWEST);
        c.release_holder(5).refused(&tags::HOLDER_SECRET_EARLY);
        let sig = signature(
            c.ask(ChannelRequest::SignHolderCommitment(n(5)))
                .unwrap()
                .signed(),
        );
        let tx = c.rebuilt_holder(&c.holder_data(5));
        let sighash = tx
            .trust()
            .built_transaction()
            .get_sighash_all(&c.funding_script(), VALUE_SAT);
        c.secp
            .verify_ecdsa(&sighash, &sig, &c.setup.holder.funding_pubkey)
            .unwrap();
        assert_eq!(c.state().closed, Some(Closing::Force { number: n(5) }));
    }
}

#[test]
fn an_import_mid_round_takes_the_pending_revocations() {
    let (mut c, _) = node_after(ChannelKind::StaticRemoteKey, 5);
    // The node signed counterparty 6 and validated holder 6, but neither
    // revocation of 5 happened yet.
    c.sign_counterparty(6).signed();
    c.validate_holder(6).signed();
    let node = c.state().clone();
    c.state = None;
    let position = import_of(&c, &node, &[5, 6], true, 5, 6, Some(4));
    import(&mut c, position).signed();
    // Holder 5 is not revoked yet, but it is not the newest either.
    c.ask(ChannelRequest::SignHolderCommitment(n(5)))
        .unwrap()
        .refused(&tags::HOLDER_NOT_NEWEST);
    // Counterparty 7 waits for the revocation of 5.
    c.sign_counterparty(7)
        .refused(&tags::COMMITMENT_PREVIOUS_REVOKED);
    c.revoke_counterparty(5).signed();
    c.release_holder(5).signed();
    c.advance(7);
    assert_eq!(c.state().holder.revoked_through, Some(n(6)));
}

#[test]
fn import_with_other_holder_keys_or_points_is_an_error() {
    let (mut c, node) = node_after(ChannelKind::StaticRemoteKey, 5);
    c.state = None;
    let mut wrong_keys = after_five(&c, &node, true);
    wrong_keys.setup.channel_keys_id[31] ^= 1;
    assert!(matches!(
        c.ask(ChannelRequest::Import(Box::new(wrong_keys))),
        Err(ChannelError::HolderKeysMismatch(_))
    ));
    // A holder commitment whose point is not the holder's for its number
    // (the counterparty signed it that way): an error, as in validation.
    let mut wrong_point = after_five(&c, &node, true);
    let mut data = c.holder_data(5);
    data.per_commitment_point = c.holder_point(6);
    wrong_point.holder = c.countersign(data);
    assert!(matches!(
        c.ask(ChannelRequest::Import(Box::new(wrong_point))),
        Err(ChannelError::HolderPointMismatch(5))
    ));
    assert!(c.state.is_none());
}

#[test]
fn counterparty_signature_invalid_on_the_imported_holder_commitment_is_refused() {
    let (mut c, node) = node_after(ChannelKind::AnchorsZeroFeeHtlcTx, 5);
    c.state = None;
    let mut bad = after_five(&c, &node, true);
    bad.holder.counterparty_signature = c.holder_commitment(4).counterparty_signature;
    import(&mut c, bad).refused(&tags::COUNTERPARTY_SIGNATURE_INVALID);
    let mut bad_htlc = after_five(&c, &node, true);
    bad_htlc.holder.counterparty_htlc_signatures.swap(0, 1);
    import(&mut c, bad_htlc).refused(&tags::COUNTERPARTY_SIGNATURE_INVALID);
    assert!(c.state.is_none());
}

#[test]
fn revocation_mismatch_secrets_that_do_not_fit_are_refused() {
    let (mut c, node) = node_after(ChannelKind::StaticRemoteKey, 9);
    c.state = None;
    // Secret of 7 (a compact entry of 0..9) from another commitment: it
    // does not derive the older entries.
    let mut contradicting = import_of(&c, &node, &[8, 9], true, 9, 9, Some(8));
    let entry = contradicting
        .counterparty_secrets
        .iter_mut()
        .find(|s| s.number == n(7))
        .unwrap();
    entry.secret = c.counterparty_secret(9);
    let detail = import(&mut c, contradicting).refused(&tags::REVOCATION_MISMATCH);
    assert!(detail.contains("contradicts"), "{detail}");
    // Consistent secrets, but the previous commitment carries another
    // point than its secret's (imported without signatures, which would
    // not verify either).
    let mut wrong_point = import_of(&c, &node, &[8, 9], false, 9, 9, Some(8));
    wrong_point.counterparty_signed[0]
        .commitment
        .per_commitment_point = c.counterparty_point(9);
    let detail = import(&mut c, wrong_point).refused(&tags::REVOCATION_MISMATCH);
    assert!(detail.contains("point"), "{detail}");
    assert!(c.state.is_none());
}

#[test]
fn import_inconsistent_positions_are_refused() {
    let (mut c, node) = node_after(ChannelKind::StaticRemoteKey, 5);
    c.state = None;
    let cases: Vec<(&str, ChannelImport)> = vec![
        ("no counterparty commitment", {
            let mut i = after_five(&c, &node, true);
            i.counterparty_signed.clear();
            i
        }),
        ("not consecutive", {
            let mut i = after_five(&c, &node, true);
            i.counterparty_signed.reverse();
            i
        }),
        (
            "three unrevoked",
            import_of(&c, &node, &[4, 5], true, 3, 5, Some(4)),
        ),
        (
            "an unrevoked previous not given",
            import_of(&c, &node, &[5], true, 4, 5, Some(4)),
        ),
        ("a compact entry missing", {
            let mut i = after_five(&c, &node, true);
            i.counterparty_secrets.pop();
            i
        }),
        ("a secret beside the compact entries", {
            let mut i = after_five(&c, &node, true);
            i.counterparty_secrets.push(ImportedSecret {
                number: n(1),
                secret: c.counterparty_secret(1),
            });
            i
        }),
        (
            "holder revoked through its newest",
            import_of(&c, &node, &[4, 5], true, 5, 5, Some(5)),
        ),
        (
            "holder revocation three behind",
            import_of(&c, &node, &[4, 5], true, 5, 5, Some(2)),
        ),
        (
            "no holder revocation at 5",
            import_of(&c, &node, &[4, 5], true, 5, 5, None),
        ),
        ("the holder's signatures of another commitment", {
            let mut i = after_five(&c, &node, true);
            let other = node.counterparty.get(n(4)).unwrap().released.clone();
            i.counterparty_signed[1].signatures = other;
            i
        }),
        ("too few holder HTLC signatures", {
            let mut i = after_five(&c, &node, true);
            let sigs = i.counterparty_signed[1].signatures.as_mut().unwrap();
            sigs.htlc_signatures.pop();
            i
        }),
    ];
    for (case, position) in cases {
        let outcome = import(&mut c, position);
        let detail = outcome.refused(&tags::IMPORT_INCONSISTENT);
        assert!(!detail.is_empty(), "{case}");
        assert!(c.state.is_none(), "{case}");
    }
    // A consistent position still imports.
    let ok: CommitmentSignatures = node
        .counterparty
        .get(n(5))
        .unwrap()
        .released
        .clone()
        .unwrap();
    let mut position = after_five(&c, &node, true);
    position.counterparty_signed[1].signatures = Some(ok);
    import(&mut c, position).signed();
}

#[test]
fn an_import_at_the_first_commitments_matches_a_setup_and_opening() {
    let (mut c, node) = node_after(ChannelKind::AnchorsZeroFeeHtlcTx, 0);
    c.state = None;
    let position = import_of(&c, &node, &[0], true, 0, 0, None);
    import(&mut c, position).signed();
    assert_eq!(c.state().counterparty, node.counterparty);
    assert_eq!(c.state().holder, node.holder);
    c.advance(1);
}
