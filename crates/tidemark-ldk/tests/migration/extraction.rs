//! The extraction on its own: the position `KeysManager` left (numbers,
//! secrets, keys), byte-for-byte agreement with what the peer received,
//! every step of a payment exchange, and what it refuses (updates in
//! flight, a foreign seed, a closed channel).

use super::super::*;

/// Extraction alone: a channel that has just opened is at commitment 0 on
/// both sides (its counterparty commitment is the monitor's initial one);
/// after each payment round both sides are two commitments further and
/// every counterparty commitment but the newest is revoked, with the
/// compact store's secrets. The keys are `KeysManager`'s.
#[test]
fn extraction_reads_the_position_keys_manager_left() {
    for anchors in [false, true] {
        extraction_reads_the_position(anchors);
    }
}

fn extraction_reads_the_position(anchors: bool) {
    let mut p = keys_manager_pair(anchors);
    let id = open_channel(&mut p).0;
    let fresh = extract(&p.a.snapshot());
    let c = only(&fresh);
    assert_eq!(c.channel_id, id);
    assert_eq!(c.counterparty_node_id, p.b.id());
    let i = &c.import;
    assert_eq!(i.counterparty_signed.len(), 1);
    assert_eq!(i.counterparty_signed[0].commitment.number.get(), 0);
    assert!(i.counterparty_signed[0].signatures.is_some());
    assert_eq!(i.counterparty_revoked, 0);
    assert!(i.counterparty_secrets.is_empty());
    assert_eq!(i.holder.commitment.number.get(), 0);
    assert_eq!(i.holder_revoked_through, None);
    // The holder keys are KeysManager's for the channel keys id.
    let derived = keys_manager(&SEED).derive_channel_signer(i.setup.channel_keys_id);
    let secp = bitcoin::secp256k1::Secp256k1::new();
    assert_eq!(
        i.setup.holder,
        ChannelKeys::from_ldk(&derived.pubkeys(&secp))
    );
    assert!(i.setup.is_outbound);
    assert_eq!(i.setup.channel_value_sat, CHANNEL_SAT);

    for rounds in 1..=2u64 {
        pay_both_ways(&p, 1);
        let channels = extract(&p.a.snapshot());
        let i = &only(&channels).import;
        // Two payments a round, two commitments each (add, then settle).
        let expected = 4 * rounds;
        assert_eq!(i.counterparty_signed[0].commitment.number.get(), expected);
        assert_eq!(i.counterparty_revoked, expected);
        assert_eq!(i.holder.commitment.number.get(), expected);
        assert_eq!(
            i.holder_revoked_through.map(|n| n.get()),
            Some(expected - 1)
        );
        let numbers: Vec<u64> = i
            .counterparty_secrets
            .iter()
            .map(|s| s.number.get())
            .collect();
        assert_eq!(
            numbers,
            RevocationSecrets::compact_numbers(expected).unwrap()
        );
        // Quiescent: the counterparty commitment mirrors the holder's.
        let (cp, h) = (&i.counterparty_signed[0].commitment, &i.holder.commitment);
        assert_eq!(cp.to_broadcaster_sat, h.to_countersignatory_sat);
        assert_eq!(cp.to_countersignatory_sat, h.to_broadcaster_sat);
        assert!(cp.htlcs.is_empty() && h.htlcs.is_empty());
    }
    // Pure: extracting again gives the same imports.
    let snapshot = p.a.snapshot();
    assert_eq!(extract(&snapshot), extract(&snapshot));
    assert_eq!(
        only(&extract(&snapshot))
            .import
            .setup
            .channel_type_features()
            .supports_anchors_zero_fee_htlc_tx(),
        anchors
    );

    // An HTLC B holds without claiming: committed on both sides, so the
    // channel is quiescent and both commitments carry it.
    send(&p.a, &p.b, &[30_000_000]);
    p.pump(|_, _| {}, |_, _| {});
    let channels = extract(&p.a.snapshot());
    let i = &only(&channels).import;
    let (cp, h) = (&i.counterparty_signed[0].commitment, &i.holder.commitment);
    assert_eq!(cp.number.get(), 9);
    assert_eq!(h.number.get(), 9);
    assert_eq!(cp.htlcs.len(), 1);
    assert_eq!(h.htlcs.len(), 1);
    assert!(h.htlcs[0].offered && !cp.htlcs[0].offered);
    let sigs = i.counterparty_signed[0].signatures.as_ref().unwrap();
    assert_eq!(sigs.htlc_signatures.len(), 1);
}

/// What A's extraction says A signed is what B received, byte for byte:
/// B's own extraction (B runs `KeysManager` too) has A's counterparty
/// commitment as its holder commitment, countersigned with the
/// signatures A's extraction computed again, and the reverse; B holds the
/// secrets A released, exactly through A's `holder_revoked_through`.
#[test]
fn extraction_agrees_with_what_the_peer_received() {
    for anchors in [false, true] {
        let mut p = keys_manager_pair(anchors);
        open_channel(&mut p);
        let check = |p: &Pair<KeysManager, KeysManager>| {
            let a = only(&extract(&p.a.snapshot())).import.clone();
            let b_channels =
                extract_channels(&[7; 32], RemoteKeyDerivation::V2, &p.b.snapshot().monitors)
                    .unwrap();
            let b = only(&b_channels).import.clone();
            let signed = &a.counterparty_signed[0];
            let sigs = signed.signatures.as_ref().unwrap();
            assert_eq!(b.holder.commitment, signed.commitment);
            assert_eq!(b.holder.counterparty_signature, sigs.signature);
            assert_eq!(b.holder.counterparty_htlc_signatures, sigs.htlc_signatures);
            let b_signed = &b.counterparty_signed[0];
            let b_sigs = b_signed.signatures.as_ref().unwrap();
            assert_eq!(a.holder.commitment, b_signed.commitment);
            assert_eq!(a.holder.counterparty_signature, b_sigs.signature);
            assert_eq!(
                a.holder.counterparty_htlc_signatures,
                b_sigs.htlc_signatures
            );
            // B revoked through A's holder number minus one, with A's
            // secrets.
            assert_eq!(
                a.holder_revoked_through.map(|n| n.get() + 1).unwrap_or(0),
                b.counterparty_revoked
            );
            let a_keys = keys_manager(&SEED).derive_channel_signer(a.setup.channel_keys_id);
            for s in &b.counterparty_secrets {
                let released = a_keys
                    .release_commitment_secret(s.number.ldk_index())
                    .unwrap();
                assert_eq!(released, s.secret, "A's secret of {}", s.number);
            }
        };
        check(&p);
        pay_both_ways(&p, 2);
        check(&p);
        send(&p.a, &p.b, &[30_000_000]);
        p.pump(|_, _| {}, |_, _| {});
        check(&p);
    }
}

/// At every step of payments both ways (one message delivered at a time,
/// a monitor persisted after each), A's extraction either refuses the
/// channel as not quiescent or gives exactly the counterparty commitment
/// A last sent, with the signatures A sent for it: never another.
#[test]
fn extraction_at_every_step_is_refused_or_what_a_last_sent() {
    let mut p = keys_manager_pair(false);
    open_channel(&mut p);
    let initial = only(&extract(&p.a.snapshot())).import.clone();
    let mut last_sent = initial.counterparty_signed[0].signatures.clone().unwrap();
    let (mut extracted, mut refused) = (0, 0);
    let mut check = |p: &Pair<KeysManager, KeysManager>, last_sent: &CommitmentSignatures| {
        match extract_channels(&SEED, RemoteKeyDerivation::V2, &p.a.snapshot().monitors) {
            Ok(channels) => {
                let signed = &only(&channels).import.counterparty_signed[0];
                assert_eq!(signed.signatures.as_ref(), Some(last_sent));
                extracted += 1;
            }
            Err(MigrateError::NotQuiescent { .. }) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    };
    send(&p.a, &p.b, &[20_000_000, 7_000_000]);
    send(&p.b, &p.a, &[3_000_000]);
    for _ in 0..200 {
        p.a.manager.process_pending_htlc_forwards();
        p.b.manager.process_pending_htlc_forwards();
        let new_a = p.a.events();
        let new_b = p.b.events();
        new_a.iter().for_each(|e| claim(&p.a, e));
        new_b.iter().for_each(|e| claim(&p.b, e));
        let msgs_a = p.a.manager.get_and_clear_pending_msg_events();
        let msgs_b = p.b.manager.get_and_clear_pending_msg_events();
        if new_a.is_empty() && new_b.is_empty() && msgs_a.is_empty() && msgs_b.is_empty() {
            break;
        }
        check(&p, &last_sent);
        for m in msgs_a {
            if let MessageSendEvent::UpdateHTLCs { updates, .. } = &m
                && let Some(cs) = updates.commitment_signed.last()
            {
                last_sent = CommitmentSignatures {
                    signature: cs.signature,
                    htlc_signatures: cs.htlc_signatures.clone(),
                };
            }
            deliver(&p.b, p.a.id(), m);
            check(&p, &last_sent);
        }
        for m in msgs_b {
            deliver(&p.a, p.b.id(), m);
            check(&p, &last_sent);
        }
    }
    assert!(
        extracted > 0 && refused > 0,
        "{extracted} extracted, {refused} refused"
    );
    // Quiet again: extracted.
    let channels = extract(&p.a.snapshot());
    assert_eq!(
        only(&channels).import.counterparty_signed[0]
            .signatures
            .as_ref(),
        Some(&last_sent)
    );
}

/// A channel with an update in flight (A signed the next counterparty
/// commitment and awaits B's revocation) is not extracted; nor is one
/// under another seed.
#[test]
fn extraction_refuses_updates_in_flight_and_a_foreign_seed() {
    let mut p = keys_manager_pair(false);
    open_channel(&mut p);
    pay_both_ways(&p, 1);
    send(&p.a, &p.b, &[1_000_000]);
    let in_flight = p.a.snapshot();
    let e = extract_channels(&SEED, RemoteKeyDerivation::V2, &in_flight.monitors).unwrap_err();
    assert!(matches!(e, MigrateError::NotQuiescent { .. }), "{e}");
    // Delivered and settled: quiescent again.
    p.pump(|_, _| {}, claim);
    let settled = p.a.snapshot();
    assert_eq!(extract(&settled).len(), 1);
    let e = extract_channels(&[9; 32], RemoteKeyDerivation::V2, &settled.monitors).unwrap_err();
    assert!(matches!(e, MigrateError::ForeignSeed { .. }), "{e}");
    let e = extract_channels(&SEED, RemoteKeyDerivation::V2, &[vec![1u8, 1, 0]]).unwrap_err();
    assert!(matches!(e, MigrateError::Deserialize(_)), "{e}");
}

/// A channel closed cooperatively, its closing transaction confirmed, is
/// not extracted.
#[test]
fn extraction_refuses_a_closed_channel() {
    let mut p = keys_manager_pair(false);
    let id = open_channel(&mut p).0;
    pay_both_ways(&p, 1);
    let before = p.a.broadcaster.all().len() + p.b.broadcaster.all().len();
    p.a.manager.close_channel(&id, &p.b.id()).unwrap();
    p.pump(|_, _| {}, |_, _| {});
    let mut closing: Vec<Transaction> = p.a.broadcaster.all();
    closing.extend(p.b.broadcaster.all());
    assert!(
        closing.len() > before,
        "the closing transaction is broadcast"
    );
    let closing = closing.last().unwrap().clone();
    p.mine(&[closing], 6);
    p.pump(|_, _| {}, |_, _| {});
    let snapshot = p.a.snapshot();
    assert_eq!(snapshot.monitors.len(), 1, "the monitor is still persisted");
    let e = extract_channels(&SEED, RemoteKeyDerivation::V2, &snapshot.monitors).unwrap_err();
    assert!(matches!(e, MigrateError::Closed { .. }), "{e}");
}
