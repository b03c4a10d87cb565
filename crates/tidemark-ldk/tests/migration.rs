//! Migrating an LDK node from `KeysManager` to Tidemark: node A runs on
//! `KeysManager` over a seed, opens a channel to B and pays both ways; it
//! stops; a Tidemark signer is made from the same seed, A's channels are
//! read from its persisted monitors and imported; A restarts from its
//! persisted manager and monitors with the adapter and carries on.
//!
//! Also the extraction on its own (numbers, secrets, a channel with an
//! update in flight, a foreign seed) and the imports the signer refuses.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod migration {
    mod extraction;
}

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bitcoin::{Network, Transaction};
use lightning::events::Event;
use lightning::ln::msgs::{BaseMessageHandler as _, MessageSendEvent};
use lightning::sign::{ChannelSigner as _, KeysManager, SignerProvider as _};
use lightning::util::config::UserConfig;
use tidemark_cli::embedded::{DEV_LIGHTNING_NODE, Embedded};
use tidemark_client::ClientError;
use tidemark_ldk::migrate::{
    ImportOutcome, MigrateError, MigratedChannel, extract_channels, import_channels,
};
use tidemark_ldk::testing::{
    CHANNEL_SAT, Chain, Keys, Node, Pair, Snapshot, claim, connect, deliver, disconnect,
    open_channel, send_payments as send,
};
use tidemark_ldk::{AdapterConfig, TidemarkSigner};
use tidemark_lightning::RemoteKeyDerivation;
use tidemark_lightning::channel::{ChannelKeys, CommitmentSignatures, RevocationSecrets};

const SEED: [u8; 32] = [0x5a; 32];
/// The replica identity A's adapter uses, and the one kept for imports.
const REPLICA: &str = "replica-1";
const IMPORTER: &str = "replica-2";

/// A node's config; with `anchors`, channels are
/// `option_anchors_zero_fee_htlc_tx` (inbound ones accepted by hand, as
/// LDK requires for anchors).
fn config(anchors: bool) -> UserConfig {
    let mut c = UserConfig::default();
    c.channel_handshake_config.announce_for_forwarding = false;
    c.channel_handshake_limits
        .force_announced_channel_preference = false;
    c.channel_handshake_config
        .negotiate_anchors_zero_fee_htlc_tx = anchors;
    c.manually_accept_inbound_channels = anchors;
    c
}

/// `KeysManager` as a node builds it (v2 remote key derivation, the
/// signer's default).
fn keys_manager(seed: &[u8; 32]) -> KeysManager {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    KeysManager::new(seed, now.as_secs(), now.subsec_nanos(), true)
}

/// A (on `KeysManager` over [`SEED`]) and B, connected.
fn keys_manager_pair(anchors: bool) -> Pair<KeysManager, KeysManager> {
    let chain = Chain::new(Network::Regtest);
    let a = Node::new("a", keys_manager(&SEED), &chain, config(anchors));
    let b = Node::new("b", keys_manager(&[7; 32]), &chain, config(anchors));
    Pair::connect(a, b, chain)
}

fn sent(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::PaymentSent { .. }))
        .count()
}

/// Pays A to B, then B to A, one payment at a time, each completed.
fn pay_both_ways<A: Keys, B: Keys>(p: &Pair<A, B>, rounds: usize) {
    for _ in 0..rounds {
        send(&p.a, &p.b, &[20_000_000]);
        let (events_a, _) = p.pump(|_, _| {}, claim);
        assert_eq!(sent(&events_a), 1, "A's payment completes");
        send(&p.b, &p.a, &[5_000_000]);
        let (_, events_b) = p.pump(claim, |_, _| {});
        assert_eq!(sent(&events_b), 1, "B's payment completes");
    }
}

/// The only channel in `channels`.
fn only(channels: &[MigratedChannel]) -> &MigratedChannel {
    assert_eq!(channels.len(), 1, "one channel");
    &channels[0]
}

fn extract(snapshot: &Snapshot) -> Vec<MigratedChannel> {
    extract_channels(&SEED, RemoteKeyDerivation::V2, &snapshot.monitors).unwrap()
}

struct Signer {
    runtime: tokio::runtime::Runtime,
    embedded: Option<Embedded>,
}

impl Signer {
    /// A Tidemark signer whose node keys are `KeysManager`'s over `seed`.
    fn start(seed: &[u8; 32]) -> Signer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let embedded = runtime
            .block_on(Embedded::start_temp_with(2, None, Some(seed)))
            .unwrap();
        Signer {
            runtime,
            embedded: Some(embedded),
        }
    }

    fn embedded(&self) -> &Embedded {
        self.embedded.as_ref().unwrap()
    }

    fn adapter(&self) -> TidemarkSigner {
        let options = self
            .embedded()
            .client_options(REPLICA)
            .unwrap()
            .with_deadline(Duration::from_secs(5));
        let config = AdapterConfig::from_signer(DEV_LIGHTNING_NODE, &options).unwrap();
        TidemarkSigner::new(options, config).unwrap()
    }

    fn import(&self, channels: &[MigratedChannel]) -> Result<Vec<ImportOutcome>, MigrateError> {
        let _runtime = self.runtime.enter();
        let client = self.embedded().client(IMPORTER).unwrap();
        self.runtime
            .block_on(import_channels(&client, DEV_LIGHTNING_NODE, channels))
    }

    /// The signer's mark `name` of the channel.
    fn mark(&self, channel_keys_id: &[u8; 32], name: &str) -> Option<u64> {
        let node = self.embedded().lightning().unwrap();
        node.signer
            .channel_state(channel_keys_id)
            .unwrap()
            .expect("the channel has state")
            .mark()
            .get(name)
    }
}

impl Drop for Signer {
    fn drop(&mut self) {
        if let Some(e) = self.embedded.take() {
            self.runtime.block_on(e.stop());
        }
    }
}

fn refusal_tag(e: &MigrateError) -> String {
    match e {
        MigrateError::Import { source, .. } => match &**source {
            ClientError::Refused(r) => r.tag.clone(),
            other => panic!("not a refusal: {other}"),
        },
        other => panic!("not an import failure: {other}"),
    }
}

/// The whole migration: A on `KeysManager` opens a channel and pays both
/// ways, is persisted and stops; a signer over the same seed gets the
/// channel's import; A restarts from its persisted state on the adapter,
/// keeps its node id, reconnects and pays both ways again, with no
/// refusal, the signer's marks continuing from the import. An import
/// again is replayed; an import of the older snapshot, and of the newest
/// once the channel moved on, are refused.
#[test]
fn a_keys_manager_node_moves_to_tidemark_with_its_node_id_and_channel() {
    migrate(false);
}

/// The same on an anchors channel.
#[test]
fn a_keys_manager_node_moves_to_tidemark_with_an_anchors_channel() {
    migrate(true);
}

fn migrate(anchors: bool) {
    let mut p = keys_manager_pair(anchors);
    let node_id = p.a.id();
    let channel_id = open_channel(&mut p).0;
    pay_both_ways(&p, 1);
    let older = p.a.snapshot();
    pay_both_ways(&p, 1);
    let newest = p.a.snapshot();

    // A stops.
    let Pair { a, b, mut chain } = p;
    disconnect(&a, &b);
    drop(a);

    // The signer from the same seed, the channel imported.
    let signer = Signer::start(&SEED);
    let channels = extract(&newest);
    let import = &only(&channels).import;
    let id = import.setup.channel_keys_id;
    let imported_n = import.counterparty_signed[0].commitment.number.get();
    assert_eq!(
        signer.import(&channels).unwrap(),
        vec![ImportOutcome::Imported]
    );
    let holder_n = import.holder.commitment.number.get();
    assert_eq!(signer.mark(&id, "counterparty_signed"), Some(imported_n));
    assert_eq!(signer.mark(&id, "counterparty_revoked"), Some(imported_n));
    assert_eq!(signer.mark(&id, "holder_validated"), Some(holder_n));
    // Again: replayed, harmless.
    assert_eq!(
        signer.import(&channels).unwrap(),
        vec![ImportOutcome::AlreadyImported]
    );
    // The older snapshot: refused, the channel has state.
    let e = signer.import(&extract(&older)).unwrap_err();
    assert_eq!(refusal_tag(&e), "policy-channel-already-setup");

    // A restarts from its persisted state, on the adapter.
    let adapter = signer.adapter();
    chain.mine(&[]);
    let a = Node::restore("a", adapter.clone(), &newest, &chain, config(anchors));
    a.wire_unblocked(&adapter);
    b.sync(&chain);
    assert_eq!(a.id(), node_id, "the node id is the seed's");
    connect(&a, &b);
    let p = Pair { a, b, chain };
    p.pump(|_, _| {}, |_, _| {});
    assert!(
        p.a.manager
            .list_usable_channels()
            .iter()
            .any(|c| c.channel_id == channel_id),
        "the channel is usable after the reconnect"
    );
    assert!(p.a.errors.lock().unwrap().is_empty());
    assert!(p.b.errors.lock().unwrap().is_empty());

    pay_both_ways(&p, 2);
    assert_eq!(adapter.refusals().total, 0, "no refusal");
    // Two rounds of two payments, two commitments each.
    assert_eq!(
        signer.mark(&id, "counterparty_signed"),
        Some(imported_n + 8)
    );
    assert_eq!(
        signer.mark(&id, "counterparty_revoked"),
        Some(imported_n + 8)
    );
    assert_eq!(signer.mark(&id, "holder_validated"), Some(holder_n + 8));

    // The import the node started from, now stale: refused.
    let e = signer.import(&channels).unwrap_err();
    assert_eq!(refusal_tag(&e), "policy-channel-already-setup");
}

/// A stale import on a fresh signer (an older snapshot's: the signer
/// cannot tell) fails safe: the node, restarted from its newest state,
/// asks for the next counterparty commitment after the one it really
/// signed, which is not the next after the import's: refused, nothing
/// signed, the payment does not go through and the signer's marks stay
/// at the import.
#[test]
fn a_stale_import_is_refused_when_the_node_signs_past_it() {
    let mut p = keys_manager_pair(false);
    open_channel(&mut p);
    pay_both_ways(&p, 1);
    let older = p.a.snapshot();
    pay_both_ways(&p, 1);
    let newest = p.a.snapshot();
    let Pair { a, b, chain } = p;
    disconnect(&a, &b);
    drop(a);

    let signer = Signer::start(&SEED);
    let stale = extract(&older);
    let id = only(&stale).import.setup.channel_keys_id;
    let stale_n = only(&stale).import.counterparty_signed[0]
        .commitment
        .number
        .get();
    assert!(
        stale_n
            < only(&extract(&newest)).import.counterparty_signed[0]
                .commitment
                .number
                .get()
    );
    assert_eq!(
        signer.import(&stale).unwrap(),
        vec![ImportOutcome::Imported]
    );

    let adapter = signer.adapter();
    let a = Node::restore("a", adapter.clone(), &newest, &chain, config(false));
    a.wire_unblocked(&adapter);
    connect(&a, &b);
    let p = Pair { a, b, chain };
    p.pump(|_, _| {}, |_, _| {});
    send(&p.a, &p.b, &[20_000_000]);
    let (events_a, _) = p.pump(|_, _| {}, claim);
    assert_eq!(sent(&events_a), 0, "no payment past a stale import");
    let refusals = adapter.refusals();
    assert!(
        refusals.tagged("policy-commitment-not-next") >= 1,
        "{refusals:?}"
    );
    assert_eq!(signer.mark(&id, "counterparty_signed"), Some(stale_n));
}
