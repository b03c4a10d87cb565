//! Migration from LDK's `KeysManager`, as docs/lightning.md ("Migrating a
//! KeysManager node") tells an operator: node A runs on `KeysManager`,
//! opens a channel and pays both ways; it stops; `tidemark init
//! --seed-file` makes a signer from its seed and `tidemark serve` runs it;
//! the channel is read from A's persisted monitor
//! (`tidemark_ldk::migrate::extract_channels`) and imported with a client;
//! A restarts from its persisted state with the adapter. It keeps its node
//! id and its channel, and pays both ways; the signer's marks continue
//! from the imported position.

use lightning::sign::{KeysManager, SignerProvider as _};
use tidemark_cli::embedded::DEV_LIGHTNING_NODE;
use tidemark_ldk::migrate::{ImportOutcome, extract_channels, import_channels};
use tidemark_ldk::testing::{Chain, Node, Pair, connect, disconnect};
use tidemark_lightning::RemoteKeyDerivation;
use tidemark_lightning::bitcoin::Network;

use crate::{World, claim, config, count, open_channel, send_payments, sent};

const SEED: [u8; 32] = [0x5a; 32];

/// One payment A→B and one B→A, each completed.
fn pay_both_ways<A: crate::Keys, B: crate::Keys>(p: &Pair<A, B>) {
    send_payments(&p.a, &p.b, &[20_000_000]);
    let (events_a, _) = p.pump(|_, _| {}, claim);
    assert_eq!(count(&events_a, sent), 1, "A's payment completes");
    send_payments(&p.b, &p.a, &[5_000_000]);
    let (_, events_b) = p.pump(claim, |_, _| {});
    assert_eq!(count(&events_b, sent), 1, "B's payment completes");
}

#[test]
fn a_keys_manager_node_moves_to_the_signer_process_with_its_node_id_and_channel() {
    let chain = Chain::new(Network::Regtest);
    let a = Node::new("a", KeysManager::new(&SEED, 1, 2, true), &chain, config());
    let b = Node::new("b", crate::keys_manager(7), &chain, config());
    let mut p = Pair::connect(a, b, chain);
    let node_id = p.a.id();
    let (channel, _) = open_channel(&mut p);
    pay_both_ways(&p);
    pay_both_ways(&p);
    let newest = p.a.snapshot();

    // A stops; the operator makes the signer from its seed and imports.
    let Pair { a, b, mut chain } = p;
    disconnect(&a, &b);
    drop(a);
    let world = World::start_with_seed(&SEED);
    let channels = extract_channels(&SEED, RemoteKeyDerivation::V2, &newest.monitors).unwrap();
    assert_eq!(channels.len(), 1);
    let keys_id = channels[0].import.setup.channel_keys_id;
    let imported = channels[0]
        .import
        .counterparty_signed
        .last()
        .unwrap()
        .commitment
        .number
        .get();
    let outcomes = world.runtime.block_on(async {
        let importer =
            world
                .signer
                .client(&world.addr, "replica-2", std::time::Duration::from_secs(5));
        import_channels(&importer, DEV_LIGHTNING_NODE, &channels).await
    });
    assert_eq!(outcomes.unwrap(), vec![ImportOutcome::Imported]);
    assert_eq!(world.mark(&keys_id, "counterparty_signed"), Some(imported));

    // A restarts from its persisted state, signing through the signer.
    let adapter = world.adapter("replica-1");
    chain.mine(&[]);
    let a = Node::restore("a", adapter.clone(), &newest, &chain, config());
    a.wire_unblocked(&adapter);
    b.sync(&chain);
    assert_eq!(a.id(), node_id, "the node id is the seed's");
    assert_eq!(
        a.keys.get_destination_script([0; 32]).unwrap(),
        KeysManager::new(&SEED, 1, 2, true)
            .get_destination_script([0; 32])
            .unwrap(),
        "the wallet's script is the seed's"
    );
    connect(&a, &b);
    let p = Pair { a, b, chain };
    p.pump(|_, _| {}, |_, _| {});
    assert!(
        p.a.manager
            .list_usable_channels()
            .iter()
            .any(|c| c.channel_id == channel),
        "the channel is usable after the reconnect"
    );
    pay_both_ways(&p);
    pay_both_ways(&p);
    assert_eq!(adapter.refusals().total, 0);
    assert_eq!(
        world.mark(&keys_id, "counterparty_signed"),
        Some(imported + 8),
        "two rounds of two payments, two commitments each, all signed by the signer"
    );
    assert!(p.a.errors.lock().unwrap().is_empty());
    assert!(p.b.errors.lock().unwrap().is_empty());
}
