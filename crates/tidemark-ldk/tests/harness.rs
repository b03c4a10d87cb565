//! Two real LDK nodes in one process, no bitcoind: node A signs through
//! an in-process Tidemark signer over mutual TLS on 127.0.0.1 (the
//! adapter), node B uses LDK's `KeysManager`. Messages are pumped between
//! the nodes, blocks are synthetic and fed through `chain::Confirm`.
//!
//! Node A opens every channel: LDK validates an inbound channel's first
//! holder commitment before the adapter has sent the channel's setup (see
//! the crate's limits), so a Tidemark-signed node cannot yet accept one.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness {
    pub(crate) mod node;
    pub(crate) mod plumbing;
}

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bitcoin::hashes::Hash as _;
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, OutPoint, Sequence, Transaction, TxIn, TxOut, Txid, Witness, absolute::LockTime,
};
use harness::node::{Chain, Keys, Node, Pair};
use lightning::events::Event;
use lightning::ln::channelmanager::{PaymentId, RecipientOnionFields, Retry};
use lightning::ln::types::ChannelId;
use lightning::routing::router::{PaymentParameters, RouteParameters};
use lightning::sign::KeysManager;
use lightning::util::config::UserConfig;
use tidemark_cli::embedded::{DEV_LIGHTNING_NODE, Embedded};
use tidemark_ldk::{AdapterConfig, TidemarkSigner};

/// The channel's value and what each payment moves.
const CHANNEL_SAT: u64 = 1_000_000;

struct World {
    runtime: tokio::runtime::Runtime,
    signer: Option<Embedded>,
}

impl World {
    fn start() -> World {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let signer = runtime.block_on(Embedded::start_temp(2, None)).unwrap();
        World {
            runtime,
            signer: Some(signer),
        }
    }

    fn signer(&self) -> &Embedded {
        self.signer.as_ref().unwrap()
    }

    /// Node A's adapter, for replica `identity`.
    fn adapter(&self, identity: &str) -> TidemarkSigner {
        let node = self.signer().lightning().unwrap();
        let keys = node.signer.node();
        let options = self
            .signer()
            .client_options(identity)
            .unwrap()
            .with_deadline(Duration::from_secs(5));
        let config = AdapterConfig::new(
            DEV_LIGHTNING_NODE,
            keys.destination_script().to_owned(),
            keys.shutdown_script(),
        );
        TidemarkSigner::new(options, config).unwrap()
    }

    /// The signer's mark of the channel of `channel_keys_id`.
    fn mark(&self, channel_keys_id: &[u8; 32], name: &str) -> Option<u64> {
        let node = self.signer().lightning().unwrap();
        let state = node.signer.channel_state(channel_keys_id).unwrap()?;
        state.mark().get(name)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(s) = self.signer.take() {
            self.runtime.block_on(s.stop());
        }
    }
}

fn config() -> UserConfig {
    let mut c = UserConfig::default();
    c.channel_handshake_config.announce_for_forwarding = false;
    c.channel_handshake_limits
        .force_announced_channel_preference = false;
    c
}

fn keys_manager(seed: u8) -> KeysManager {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    KeysManager::new(&[seed; 32], now.as_secs(), now.subsec_nanos(), true)
}

/// Node A (Tidemark) and node B (`KeysManager`), connected.
fn pair(world: &World) -> Pair<TidemarkSigner, KeysManager> {
    let network = world.signer().lightning().unwrap().network;
    let chain = Chain::new(network);
    let a = Node::new("a", world.adapter("replica-1"), &chain, config());
    let b = Node::new("b", keys_manager(7), &chain, config());
    Pair::connect(a, b, chain)
}

/// A funding transaction paying `script` `value`, from a synthetic input
/// (LDK checks that inputs carry witnesses, not that they verify).
fn funding_transaction(value: Amount, script: bitcoin::ScriptBuf) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::new(Txid::from_byte_array([0x42; 32]), 0),
            script_sig: bitcoin::ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: Witness::from_slice(&[vec![0x30; 72], vec![0x02; 33]]),
        }],
        output: vec![TxOut {
            value,
            script_pubkey: script,
        }],
    }
}

/// A opens a channel to B, funds it, and both see it usable.
fn open_channel(p: &mut Pair<TidemarkSigner, KeysManager>) -> ChannelId {
    p.a.manager
        .create_channel(p.b.id(), CHANNEL_SAT, 0, 1, None, None)
        .unwrap();
    p.pump(
        |a, e| {
            if let Event::FundingGenerationReady {
                temporary_channel_id,
                counterparty_node_id,
                channel_value_satoshis,
                output_script,
                ..
            } = e
            {
                let tx = funding_transaction(
                    Amount::from_sat(*channel_value_satoshis),
                    output_script.clone(),
                );
                a.manager
                    .funding_transaction_generated(*temporary_channel_id, *counterparty_node_id, tx)
                    .unwrap();
            }
        },
        |_, _| {},
    );
    let broadcast = p.a.broadcaster.all();
    assert_eq!(broadcast.len(), 1, "A broadcasts the funding transaction");
    let funding = broadcast[0].clone();
    p.mine(&[funding], 6);
    let (events_a, events_b) = p.pump(|_, _| {}, |_, _| {});
    let ready = |events: &[Event]| {
        events.iter().find_map(|e| match e {
            Event::ChannelReady { channel_id, .. } => Some(*channel_id),
            _ => None,
        })
    };
    let id = ready(&events_a).expect("A sees the channel ready");
    assert_eq!(ready(&events_b), Some(id), "B sees the same channel ready");
    assert_eq!(p.a.manager.list_usable_channels().len(), 1);
    assert_eq!(p.a.monitors.len(), 1, "A persisted the channel's monitor");
    id
}

/// `from` pays `to` `amount_msat` for each amount, all sent before any
/// message moves (the HTLCs are in flight together).
fn send_payments<F: Keys, T: Keys>(
    from: &Node<F>,
    to: &Node<T>,
    amounts: &[u64],
) -> Vec<lightning::types::payment::PaymentHash> {
    amounts
        .iter()
        .map(|&amount| {
            let (hash, secret) = to
                .manager
                .create_inbound_payment(Some(amount), 3600, None)
                .unwrap();
            let params = RouteParameters::from_payment_params_and_value(
                PaymentParameters::from_node_id(to.id(), 40),
                amount,
            );
            from.manager
                .send_payment(
                    hash,
                    RecipientOnionFields::secret_only(secret),
                    PaymentId(hash.0),
                    params,
                    Retry::Attempts(0),
                )
                .unwrap();
            hash
        })
        .collect()
}

/// Claims every claimable payment as it appears.
fn claim<K: Keys>(node: &Node<K>, event: &Event) {
    if let Event::PaymentClaimable { purpose, .. } = event {
        node.manager.claim_funds(
            purpose
                .preimage()
                .expect("inbound payments carry their preimage"),
        );
    }
}

fn count(events: &[Event], what: fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| what(e)).count()
}

#[test]
fn a_tidemark_node_opens_a_channel_and_pays_both_ways() {
    let world = World::start();
    let mut p = pair(&world);
    let channel = open_channel(&mut p);
    let ids = p.a.keys.channel_keys_ids();
    assert_eq!(ids.len(), 1, "A derived one channel signer");
    let keys_id = ids[0];
    let after_open = world.mark(&keys_id, "counterparty_signed");
    assert_eq!(
        after_open,
        Some(0),
        "the signer signed B's first commitment"
    );

    // A pays B twice, both HTLCs in flight together.
    send_payments(&p.a, &p.b, &[10_000_000, 20_000_000]);
    let (events_a, events_b) = p.pump(|_, _| {}, claim);
    assert_eq!(
        count(&events_a, |e| matches!(e, Event::PaymentSent { .. })),
        2
    );
    assert_eq!(
        count(&events_b, |e| matches!(e, Event::PaymentClaimed { .. })),
        2
    );

    // B pays A back.
    send_payments(&p.b, &p.a, &[5_000_000]);
    let (events_a, events_b) = p.pump(claim, |_, _| {});
    assert_eq!(
        count(&events_b, |e| matches!(e, Event::PaymentSent { .. })),
        1
    );
    assert_eq!(
        count(&events_a, |e| matches!(e, Event::PaymentClaimed { .. })),
        1
    );

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
    let mut p = pair(&world);
    let channel = open_channel(&mut p);
    let keys_id = p.a.keys.channel_keys_ids()[0];
    send_payments(&p.a, &p.b, &[50_000_000]);
    p.pump(|_, _| {}, claim);

    p.a.manager.close_channel(&channel, &p.b.id()).unwrap();
    let (events_a, events_b) = p.pump(|_, _| {}, |_, _| {});
    let closed = |e: &Event| matches!(e, Event::ChannelClosed { .. });
    assert_eq!(count(&events_a, closed), 1, "A closed: {events_a:?}");
    assert_eq!(count(&events_b, closed), 1, "B closed: {events_b:?}");

    let broadcast = p.a.broadcaster.all();
    assert_eq!(broadcast.len(), 2, "funding, then the closing transaction");
    let (funding, closing) = (&broadcast[0], &broadcast[1]);
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
    let shutdown = lightning::sign::SignerProvider::get_shutdown_scriptpubkey(&*p.a.keys)
        .unwrap()
        .into_inner();
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
