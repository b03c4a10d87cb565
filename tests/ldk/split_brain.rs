//! Replicas of node A that must not both advance the channel.
//!
//! - Split-brain: two replicas deserialized from one persisted snapshot,
//!   each with its own adapter (its own client identity), both reconnected
//!   and both paying at the same instant. The signer lets exactly one
//!   advance; the other is refused with its tag, gets no signature, and
//!   cannot force-close with the commitment the winner has since revoked.
//! - Stale restore: a replica restored from an old snapshot after the
//!   channel moved on, fed the peer's reestablish of that time (so LDK
//!   itself believes the old state is current): it gets no signature for
//!   an old commitment number and cannot broadcast a revoked commitment.
//!
//! B runs one connection for node A at a time, as a real peer does: the
//! replica it talks to is the one whose reestablish it received; the other
//! replica is told B's reestablish and then cut off, so LDK on that replica
//! believes the channel usable and asks the signer as it would in a real
//! split-brain.

use std::sync::Barrier;

use lightning::ln::msgs::{BaseMessageHandler as _, Init, MessageSendEvent};
use tidemark_ldk::TidemarkSigner;
use tidemark_ldk::testing::{Keys, Node, Pair, connect, deliver, disconnect, pump};
use tidemark_lightning::bitcoin::Transaction;

use crate::{
    World, claim, config, count, only_channel_keys_id, open_channel, pair, send_payments, sent,
};

const RETRY_SAME: &str = "policy-commitment-retry-same";
/// Signing a holder commitment whose secret was released.
const HOLDER_REVOKED: &str = "policy-commitment-holder-not-revoked";
/// A counterparty commitment number that is neither the next nor one of
/// the two kept.
const NOT_NEXT: &str = "policy-commitment-not-next";

/// Tells `node` that `peer` connected, without telling `peer`.
fn hears_from<A: Keys, B: Keys>(node: &Node<A>, peer: &Node<B>, inbound: bool) {
    let init = Init {
        features: peer.manager.provided_init_features(node.id()),
        networks: None,
        remote_network_address: None,
    };
    node.manager
        .peer_connected(peer.id(), &init, inbound)
        .unwrap();
}

/// The one channel reestablish `node` has to send; its other messages are
/// dropped.
fn take_reestablish<K: Keys>(node: &Node<K>) -> MessageSendEvent {
    let mut found: Vec<MessageSendEvent> = node
        .manager
        .get_and_clear_pending_msg_events()
        .into_iter()
        .filter(|m| matches!(m, MessageSendEvent::SendChannelReestablish { .. }))
        .collect();
    assert_eq!(found.len(), 1, "{} sends one reestablish", node.name);
    found.remove(0)
}

/// Whether `messages` carry a commitment_signed (a signed counterparty
/// commitment).
fn has_commitment(messages: &[MessageSendEvent]) -> bool {
    messages.iter().any(|m| {
        matches!(m, MessageSendEvent::UpdateHTLCs { updates, .. } if !updates.commitment_signed.is_empty())
    })
}

fn broadcast_spending(node: &Node<TidemarkSigner>, funding: &Transaction) -> Vec<Transaction> {
    let txid = funding.compute_txid();
    node.broadcaster
        .all()
        .into_iter()
        .filter(|t| t.input.iter().any(|i| i.previous_output.txid == txid))
        .collect()
}

#[test]
fn split_brain_replicas_racing_get_one_signature_and_the_winner_keeps_paying() {
    let world = World::start();
    let mut p = pair(&world, "replica-1");
    let (channel, funding) = open_channel(&mut p);
    send_payments(&p.a, &p.b, &[20_000_000]);
    p.pump(|_, _| {}, claim);
    let keys_id = only_channel_keys_id(&p.a);
    let snapshot = p.a.snapshot();
    let signed_at_snapshot = world.mark(&keys_id, "counterparty_signed").unwrap();

    // The original process dies; two replicas start from its snapshot.
    let Pair { a, b, chain } = p;
    b.manager.peer_disconnected(a.id());
    drop(a);
    let (adapter_1, adapter_2) = (world.adapter("replica-1"), world.adapter("replica-2"));
    let a1 = Node::restore("a1", adapter_1.clone(), &snapshot, &chain, config());
    let a2 = Node::restore("a2", adapter_2.clone(), &snapshot, &chain, config());
    hears_from(&b, &a1, true);
    hears_from(&a1, &b, false);
    hears_from(&a2, &b, false);
    let from_b = take_reestablish(&b);
    let from_a1 = take_reestablish(&a1);
    take_reestablish(&a2);
    deliver(&a1, b.id(), from_b.clone());
    deliver(&a2, b.id(), from_b);
    deliver(&b, a1.id(), from_a1);
    pump(&a1, &b, |_, _| {}, |_, _| {});
    a2.manager.get_and_clear_pending_msg_events();
    for replica in [&a1, &a2] {
        assert_eq!(
            replica.manager.list_usable_channels().len(),
            1,
            "{} believes it runs the channel",
            replica.name
        );
    }

    // Both pay at the same instant: each asks the signer for the next
    // counterparty commitment, with different HTLCs.
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        for replica in [&a1, &a2] {
            let (barrier, b) = (&barrier, &b);
            s.spawn(move || {
                barrier.wait();
                send_payments(replica, b, &[11_000_000]);
            });
        }
    });
    let messages_1 = a1.manager.get_and_clear_pending_msg_events();
    let messages_2 = a2.manager.get_and_clear_pending_msg_events();
    assert_ne!(
        has_commitment(&messages_1),
        has_commitment(&messages_2),
        "exactly one replica got the commitment signed"
    );
    let (winner, winner_messages, loser, loser_adapter, winner_adapter) =
        if has_commitment(&messages_1) {
            (&a1, messages_1, &a2, &adapter_2, &adapter_1)
        } else {
            (&a2, messages_2, &a1, &adapter_1, &adapter_2)
        };
    eprintln!("the race went to {}", winner.name);
    let refusals = loser_adapter.refusals();
    assert_eq!(refusals.tagged(RETRY_SAME), 1, "{refusals:?}");
    assert_eq!(refusals.total, 1, "{refusals:?}");
    assert_eq!(winner_adapter.refusals().total, 0);
    assert_eq!(
        world.mark(&keys_id, "counterparty_signed"),
        Some(signed_at_snapshot + 1),
        "one commitment signed for the number both asked"
    );

    // The winner's payment completes and it keeps paying.
    if winner.name == "a2" {
        // B talks to the winner from now on: on reconnecting, the winner
        // sends its update again (the signer replays the signature).
        disconnect(&a1, &b);
        a2.manager.peer_disconnected(b.id());
        connect(&a2, &b);
    } else {
        for m in winner_messages {
            deliver(&b, winner.id(), m);
        }
    }
    let (events_w, _) = pump(winner, &b, |_, _| {}, claim);
    assert!(
        count(&events_w, sent) >= 1,
        "the winner's payment completes"
    );
    send_payments(winner, &b, &[3_000_000, 4_000_000]);
    let (events_w, _) = pump(winner, &b, |_, _| {}, claim);
    assert_eq!(count(&events_w, sent), 2, "the winner keeps paying");
    let signed = world.mark(&keys_id, "counterparty_signed").unwrap();
    assert!(signed >= signed_at_snapshot + 3, "{signed}");

    // The loser cannot close with its commitment: the winner revoked it.
    loser
        .manager
        .force_close_broadcasting_latest_txn(&channel, &b.id(), "split-brain".into())
        .unwrap();
    assert!(
        broadcast_spending(loser, &funding).is_empty(),
        "the loser broadcast a commitment"
    );
    let refusals = loser_adapter.refusals();
    assert!(refusals.tagged(HOLDER_REVOKED) >= 1, "{refusals:?}");
    assert_eq!(
        world.mark(&keys_id, "counterparty_signed"),
        Some(signed),
        "the loser got nothing signed"
    );
    assert_eq!(winner_adapter.refusals().total, 0);
}

#[test]
fn a_replica_restored_from_an_old_snapshot_gets_no_signature_for_an_old_state() {
    let world = World::start();
    let mut p = pair(&world, "replica-1");
    let (channel, funding) = open_channel(&mut p);
    send_payments(&p.a, &p.b, &[10_000_000]);
    p.pump(|_, _| {}, claim);
    let keys_id = only_channel_keys_id(&p.a);

    // The old snapshot, and what B says to a replica at that state.
    let old = p.a.snapshot();
    disconnect(&p.a, &p.b);
    connect(&p.a, &p.b);
    let old_from_b = take_reestablish(&p.b);
    deliver(&p.a, p.b.id(), old_from_b.clone());
    p.pump(|_, _| {}, |_, _| {});

    // The channel moves on, both ways.
    send_payments(&p.a, &p.b, &[20_000_000, 30_000_000]);
    p.pump(|_, _| {}, claim);
    send_payments(&p.b, &p.a, &[5_000_000]);
    p.pump(claim, |_, _| {});
    let signed = world.mark(&keys_id, "counterparty_signed").unwrap();
    let validated = world.mark(&keys_id, "holder_validated").unwrap();

    // A replica restored from the old snapshot believes the old state is
    // current and pays.
    let Pair { a, b, chain } = p;
    disconnect(&a, &b);
    let stale_adapter = world.adapter("replica-2");
    let stale: Node<TidemarkSigner> =
        Node::restore("a-stale", stale_adapter.clone(), &old, &chain, config());
    hears_from(&stale, &b, false);
    take_reestablish(&stale);
    deliver(&stale, b.id(), old_from_b);
    stale.manager.get_and_clear_pending_msg_events();
    assert_eq!(stale.manager.list_usable_channels().len(), 1);
    send_payments(&stale, &b, &[5_000_000]);
    let messages = stale.manager.get_and_clear_pending_msg_events();
    assert!(
        !has_commitment(&messages),
        "the stale replica got an old commitment signed"
    );
    let refusals = stale_adapter.refusals();
    assert_eq!(refusals.tagged(NOT_NEXT), 1, "{refusals:?}");
    assert_eq!(refusals.total, 1, "{refusals:?}");

    // Nor can it force-close with its (revoked) holder commitment.
    stale
        .manager
        .force_close_broadcasting_latest_txn(&channel, &b.id(), "stale".into())
        .unwrap();
    assert!(broadcast_spending(&stale, &funding).is_empty());
    assert!(stale_adapter.refusals().tagged(HOLDER_REVOKED) >= 1);
    assert_eq!(world.mark(&keys_id, "counterparty_signed"), Some(signed));
    assert_eq!(world.mark(&keys_id, "holder_validated"), Some(validated));

    // The live node reconnects and keeps paying.
    connect(&a, &b);
    pump(&a, &b, |_, _| {}, |_, _| {});
    send_payments(&a, &b, &[2_000_000]);
    let (events_a, _) = pump(&a, &b, |_, _| {}, claim);
    assert_eq!(count(&events_a, sent), 1);
    assert_eq!(a.keys.refusals().total, 0);
}
