//! Open, pay both ways with several HTLCs in flight, close cooperatively:
//! every signature of node A through the signer process.

use lightning::events::Event;
use lightning::sign::SignerProvider as _;
use tidemark_lightning::bitcoin::Amount;

use crate::{
    CHANNEL_SAT, World, claim, claimed, count, only_channel_keys_id, open_channel, pair,
    send_payments, sent,
};

#[test]
fn a_tidemark_node_opens_a_channel_and_pays_both_ways() {
    let world = World::start();
    let mut p = pair(&world, "replica-1");
    let (channel, _) = open_channel(&mut p);
    let keys_id = only_channel_keys_id(&p.a);
    assert_eq!(
        world.mark(&keys_id, "counterparty_signed"),
        Some(0),
        "the signer signed B's first commitment"
    );

    // A pays B three times, the HTLCs in flight together.
    send_payments(&p.a, &p.b, &[10_000_000, 20_000_000, 30_000_000]);
    let (events_a, events_b) = p.pump(|_, _| {}, claim);
    assert_eq!(count(&events_a, sent), 3);
    assert_eq!(count(&events_b, claimed), 3);

    // B pays A back, twice at once.
    send_payments(&p.b, &p.a, &[5_000_000, 7_000_000]);
    let (events_a, events_b) = p.pump(claim, |_, _| {});
    assert_eq!(count(&events_b, sent), 2);
    assert_eq!(count(&events_a, claimed), 2);

    let details = &p.a.manager.list_usable_channels()[0];
    assert_eq!(details.channel_id, channel);
    let signed = world.mark(&keys_id, "counterparty_signed").unwrap();
    assert!(
        signed >= 4,
        "every update went through the signer: {signed}"
    );
    assert!(world.mark(&keys_id, "holder_validated").unwrap() >= 4);
    assert_eq!(p.a.keys.refusals().total, 0);
}

#[test]
fn a_tidemark_node_closes_cooperatively_to_its_shutdown_script() {
    let world = World::start();
    let mut p = pair(&world, "replica-1");
    let (channel, funding) = open_channel(&mut p);
    let keys_id = only_channel_keys_id(&p.a);
    send_payments(&p.a, &p.b, &[50_000_000]);
    p.pump(|_, _| {}, claim);

    p.a.manager.close_channel(&channel, &p.b.id()).unwrap();
    let (events_a, events_b) = p.pump(|_, _| {}, |_, _| {});
    let closed = |e: &Event| matches!(e, Event::ChannelClosed { .. });
    assert_eq!(count(&events_a, closed), 1, "A closed: {events_a:?}");
    assert_eq!(count(&events_b, closed), 1, "B closed: {events_b:?}");

    let broadcast = p.a.broadcaster.all();
    assert_eq!(broadcast.len(), 2, "funding, then the closing transaction");
    let closing = &broadcast[1];
    assert_eq!(closing.input.len(), 1);
    assert_eq!(
        closing.input[0].previous_output.txid,
        funding.compute_txid()
    );
    assert_eq!(
        closing.input[0].witness.len(),
        4,
        "both signatures over the 2-of-2 funding script"
    );
    crate::ldk::force_close::verify_spends(closing, &[&funding]);
    let shutdown = p.a.keys.get_shutdown_scriptpubkey().unwrap().into_inner();
    let to_a = closing
        .output
        .iter()
        .find(|o| o.script_pubkey == shutdown)
        .expect("the closing transaction pays A's shutdown script");
    assert!(to_a.value > Amount::from_sat(CHANNEL_SAT - 60_000));
    assert_eq!(
        world.mark(&keys_id, "closed"),
        Some(1),
        "the signer saw a mutual close"
    );
    assert_eq!(p.a.keys.refusals().total, 0);
}

#[test]
fn a_tidemark_node_accepts_an_inbound_channel_and_pays_both_ways() {
    let world = World::start();
    let mut p = pair(&world, "replica-1");
    p.b.manager
        .create_channel(p.a.id(), CHANNEL_SAT, 0, 9, None, None)
        .unwrap();
    p.pump(
        |_, _| {},
        |b, e| {
            if let Event::FundingGenerationReady {
                temporary_channel_id,
                counterparty_node_id,
                channel_value_satoshis,
                output_script,
                ..
            } = e
            {
                let tx = crate::funding_transaction(
                    Amount::from_sat(*channel_value_satoshis),
                    output_script.clone(),
                    0x77,
                );
                b.manager
                    .funding_transaction_generated(*temporary_channel_id, *counterparty_node_id, tx)
                    .unwrap();
            }
        },
    );
    let funding =
        p.b.broadcaster
            .all()
            .pop()
            .expect("B broadcasts the funding");
    p.mine(std::slice::from_ref(&funding), 6);
    p.pump(|_, _| {}, |_, _| {});
    assert_eq!(
        p.a.manager.list_usable_channels().len(),
        1,
        "A accepted the channel"
    );
    let keys_id = only_channel_keys_id(&p.a);
    assert_eq!(
        world.mark(&keys_id, "holder_validated"),
        Some(0),
        "the first holder commitment was validated (after the setup)"
    );

    send_payments(&p.b, &p.a, &[40_000_000, 10_000_000]);
    let (events_a, events_b) = p.pump(claim, |_, _| {});
    assert_eq!((count(&events_b, sent), count(&events_a, claimed)), (2, 2));
    send_payments(&p.a, &p.b, &[15_000_000]);
    let (events_a, events_b) = p.pump(|_, _| {}, claim);
    assert_eq!((count(&events_a, sent), count(&events_b, claimed)), (1, 1));
    assert!(world.mark(&keys_id, "holder_validated").unwrap() >= 4);
    assert_eq!(p.a.keys.refusals().total, 0);
}

#[test]
fn an_anchor_channel_opens_pays_and_closes_through_the_signer() {
    let world = World::start();
    let mut anchors = crate::config();
    anchors
        .channel_handshake_config
        .negotiate_anchors_zero_fee_htlc_tx = true;
    let mut accepts_by_hand = anchors.clone();
    accepts_by_hand.manually_accept_inbound_channels = true;
    let mut p = crate::pair_with(&world, "replica-1", anchors, accepts_by_hand);
    let (channel, funding) = open_channel(&mut p);
    let details = &p.a.manager.list_usable_channels()[0];
    assert!(
        details
            .channel_type
            .as_ref()
            .is_some_and(|t| t.supports_anchors_zero_fee_htlc_tx()),
        "an anchor channel: {:?}",
        details.channel_type
    );
    let keys_id = only_channel_keys_id(&p.a);

    send_payments(&p.a, &p.b, &[10_000_000, 20_000_000]);
    let (events_a, events_b) = p.pump(|_, _| {}, claim);
    assert_eq!((count(&events_a, sent), count(&events_b, claimed)), (2, 2));
    send_payments(&p.b, &p.a, &[5_000_000]);
    let (events_a, events_b) = p.pump(claim, |_, _| {});
    assert_eq!((count(&events_b, sent), count(&events_a, claimed)), (1, 1));

    p.a.manager.close_channel(&channel, &p.b.id()).unwrap();
    p.pump(|_, _| {}, |_, _| {});
    let closing = p.a.broadcaster.all().pop().unwrap();
    crate::ldk::force_close::verify_spends(&closing, &[&funding]);
    assert_eq!(world.mark(&keys_id, "closed"), Some(1));
    assert_eq!(p.a.keys.refusals().total, 0);
}
