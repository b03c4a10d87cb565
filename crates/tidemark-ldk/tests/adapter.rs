//! The adapter against a real in-process signer over mutual TLS on
//! 127.0.0.1, with `fixtures::SimulatedChannel` as the counterparty: LDK
//! types built with `chan_utils` go in, signatures that verify come out.
//!
//! Outages are made by a TCP relay between the adapter and the signer:
//! taking it down drops every connection and refuses new ones (what the
//! adapter sees when the signer host is gone), bringing it up restores the
//! path on the same address.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lightning::ln::chan_utils::HolderCommitmentTransaction;
use lightning::sign::ecdsa::EcdsaChannelSigner as _;
use lightning::sign::{ChannelSigner as _, NodeSigner as _, Recipient, SignerProvider as _};
use tidemark_cli::embedded::{DEV_LIGHTNING_NODE, Embedded};
use tidemark_ldk::{AdapterConfig, TidemarkSigner};
use tidemark_lightning::bitcoin::secp256k1::{Secp256k1, SecretKey};
use tidemark_lightning::channel::{ChannelKeys, ChannelKind};
use tidemark_lightning::fixtures::{BEST_BLOCK_HEIGHT, SimulatedChannel};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A relay that can be taken down and brought back up.
struct Relay {
    addr: SocketAddr,
    up: watch::Sender<bool>,
}

impl Relay {
    async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, _) = watch::channel(true);
        let state = up.subscribe();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !*state.borrow() {
                    drop(inbound);
                    continue;
                }
                let mut state = state.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = state.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Relay { addr, up }
    }

    fn set(&self, up: bool) {
        self.up.send_replace(up);
    }
}

struct World {
    runtime: tokio::runtime::Runtime,
    signer: Option<Embedded>,
    relay: Relay,
}

impl World {
    fn start() -> World {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let signer = runtime.block_on(Embedded::start_temp(2, None)).unwrap();
        let relay = runtime.block_on(Relay::start(signer.addr));
        World {
            runtime,
            signer: Some(signer),
            relay,
        }
    }

    fn signer(&self) -> &Embedded {
        self.signer.as_ref().unwrap()
    }

    /// An adapter for replica `identity`, through the relay.
    fn adapter(&self, identity: &str) -> TidemarkSigner {
        let node = self.signer().lightning().unwrap();
        let keys = node.signer.node();
        let mut options = self.signer().client_options(identity).unwrap();
        options.addr = self.relay.addr.to_string();
        let options = options.with_deadline(Duration::from_secs(2));
        let mut config = AdapterConfig::new(
            DEV_LIGHTNING_NODE,
            keys.destination_script().to_owned(),
            keys.shutdown_script(),
        );
        config.probe_interval = Duration::from_millis(100);
        TidemarkSigner::new(options, config).unwrap()
    }

    fn sim(&self, id: [u8; 32]) -> SimulatedChannel {
        let node = self.signer().lightning().unwrap();
        SimulatedChannel::new(node.signer.node(), id, ChannelKind::AnchorsZeroFeeHtlcTx)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(s) = self.signer.take() {
            self.runtime.block_on(s.stop());
        }
    }
}

/// Signs counterparty commitment `n` of `sim` through `adapter`'s channel
/// signer, as LDK would call it.
fn sign_counterparty(
    signer: &tidemark_ldk::TidemarkChannelSigner,
    sim: &SimulatedChannel,
    n: u64,
) -> Result<(), ()> {
    let data = sim.counterparty_commitment(n).unwrap();
    let tx = sim.rebuilt_counterparty(&data);
    let params = sim.setup.transaction_parameters();
    let (sig, htlc_sigs) = signer.sign_counterparty_commitment(
        &params,
        &tx,
        Vec::new(),
        Vec::new(),
        &Secp256k1::new(),
    )?;
    sim.verify_counterparty_signatures(&data, &sig, &htlc_sigs)
        .unwrap();
    Ok(())
}

/// Validates holder commitment `n` of `sim`, countersigned.
fn validate_holder(signer: &tidemark_ldk::TidemarkChannelSigner, sim: &SimulatedChannel, n: u64) {
    let signed = sim.holder_commitment(n).unwrap();
    let tx = sim.rebuilt_holder(&signed.commitment);
    let holder_tx = HolderCommitmentTransaction::new(
        tx,
        signed.counterparty_signature,
        signed.counterparty_htlc_signatures,
        &sim.setup.holder.funding_pubkey,
        &sim.setup.counterparty.funding_pubkey,
    );
    signer
        .validate_holder_commitment(&holder_tx, Vec::new())
        .unwrap();
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_channel_signs_through_the_adapter_survives_an_outage_and_unblocks() {
    let world = World::start();
    let adapter = world.adapter("replica-1");
    let fired = Arc::new(AtomicUsize::new(0));
    let counter = fired.clone();
    adapter.on_unblocked(Box::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    }));

    let expected_node = world.signer().lightning().unwrap().signer.node().node_id();
    assert_eq!(adapter.get_node_id(Recipient::Node), Ok(expected_node));

    let id = adapter.generate_channel_keys_id(false, 7);
    let channel = adapter.derive_channel_signer(id);
    let mut sim = world.sim(id);
    let secp = Secp256k1::new();
    let keys = ChannelKeys::from_ldk(&channel.pubkeys(&secp));
    assert_eq!(
        keys, sim.setup.holder,
        "the signer's keys are the fixture's"
    );
    assert_eq!(channel.channel_keys_id(), id);

    // Opening: counterparty commitment 0 (sends the setup), holder 0.
    sign_counterparty(&channel, &sim, 0).unwrap();
    validate_holder(&channel, &sim, 0);
    assert_eq!(
        channel.get_per_commitment_point(tidemark_lightning::channel::MAX_COMMITMENT_NUMBER, &secp),
        Ok(sim.holder_point(0).unwrap())
    );

    // The signer goes away: cached keys still answer, signing fails
    // retryably and blocks the channel.
    sim.offer_htlcs(2, 20_000, BEST_BLOCK_HEIGHT + 100, 1)
        .unwrap();
    world.relay.set(false);
    let again = adapter.derive_channel_signer(id);
    assert_eq!(ChannelKeys::from_ldk(&again.pubkeys(&secp)), keys);
    assert_eq!(adapter.get_node_id(Recipient::Node), Ok(expected_node));
    assert!(!channel.is_blocked());
    assert_eq!(sign_counterparty(&channel, &sim, 1), Err(()));
    assert!(channel.is_blocked());
    assert_eq!(fired.load(Ordering::SeqCst), 0);

    // Back: the watcher fires the callback, LDK's retry succeeds.
    world.relay.set(true);
    wait_until("the unblocked callback", Duration::from_secs(15), || {
        fired.load(Ordering::SeqCst) > 0
    });
    assert!(!channel.is_blocked());
    sign_counterparty(&channel, &sim, 1).unwrap();

    // A validation during an outage waits for the signer instead of
    // failing: the relay comes back after 500 ms.
    world.relay.set(false);
    let relay_up = world.relay.up.clone();
    let restorer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        relay_up.send_replace(true);
    });
    let secret = SecretKey::from_slice(&sim.counterparty_secret(0).unwrap()).unwrap();
    let index = tidemark_lightning::channel::MAX_COMMITMENT_NUMBER;
    assert_eq!(
        channel.validate_counterparty_revocation(index, &secret),
        Ok(())
    );
    restorer.join().unwrap();
    assert_eq!(adapter.refusals().total, 0);
}

#[test]
fn a_second_replica_signing_other_content_for_a_number_is_refused_and_counted() {
    let world = World::start();
    let one = world.adapter("replica-1");
    let two = world.adapter("replica-2");
    let id = one.generate_channel_keys_id(false, 1);
    let mut sim = world.sim(id);
    let first = one.derive_channel_signer(id);
    sign_counterparty(&first, &sim, 0).unwrap();
    validate_holder(&first, &sim, 0);
    sign_counterparty(&first, &sim, 1).unwrap();

    // Replica two, from a stale snapshot, signs other content for 1.
    sim.offer_htlcs(1, 30_000, BEST_BLOCK_HEIGHT + 100, 9)
        .unwrap();
    let second = two.derive_channel_signer(id);
    assert_eq!(sign_counterparty(&second, &sim, 1), Err(()));
    let refusals = two.refusals();
    assert_eq!(refusals.total, 1);
    assert_eq!(refusals.tagged("policy-commitment-retry-same"), 1);
    assert!(!second.is_blocked(), "a refusal does not block the channel");
    assert_eq!(one.refusals().total, 0);
}
