//! Real LDK nodes signing through a real `tidemark serve` process.
//!
//! Every test starts the signer as a separate process (`tidemark init`
//! then `tidemark serve`: SQLite store with fsync, encrypted keystore,
//! mutual TLS on 127.0.0.1) and runs LDK nodes in this process with
//! `tidemark_ldk::testing`: node A (and its replicas) signs through the
//! adapter over gRPC, node B uses LDK's `KeysManager`. No bitcoind: blocks
//! are synthetic and fed through `chain::Confirm`, messages are delivered
//! between the nodes by the harness.
//!
//! - `ldk/payments.rs`: open (A opens; B opens to A), payments both ways
//!   with HTLCs in flight, cooperative close.
//! - `ldk/force_close.rs`: a force close with an HTLC in flight: holder
//!   commitment, HTLC-timeout transaction and sweeps to the wallet, each
//!   checked by Bitcoin Core's script interpreter.
//! - `ldk/split_brain.rs`: two replicas restored from one snapshot race to
//!   advance the channel; a stale replica restored from an old snapshot.
//! - `ldk/outage.rs`: the signer is killed mid-payment and restarted, then
//!   at random instants while payments flow.
//! - `ldk/migration.rs`: a node that ran on `KeysManager` moves to the
//!   signer (`init --seed-file`, its channels imported) and keeps paying.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod ldk {
    pub(crate) mod force_close;
    mod migration;
    mod outage;
    mod payments;
    mod split_brain;
}

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lightning::events::Event;
use lightning::ln::channelmanager::{PaymentId, RecipientOnionFields, Retry};
use lightning::ln::types::ChannelId;
use lightning::routing::router::{PaymentParameters, RouteParameters};
use lightning::sign::KeysManager;
use lightning::types::payment::PaymentHash;
use lightning::util::config::UserConfig;
use support::{ServeProcess, SignerDir};
use tidemark_cli::embedded::DEV_LIGHTNING_NODE;
use tidemark_client::ClientOptions;
use tidemark_ldk::testing::{Chain, Keys, Node, Pair};
use tidemark_ldk::{AdapterConfig, TidemarkSigner};
use tidemark_lightning::bitcoin::hashes::Hash as _;
use tidemark_lightning::bitcoin::transaction::Version;
use tidemark_lightning::bitcoin::{
    Amount, Network, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness,
    absolute::LockTime,
};

/// The channel's value.
pub(crate) const CHANNEL_SAT: u64 = 1_000_000;

/// A signer running as a `tidemark serve` process on its own directory.
pub(crate) struct World {
    /// Runs the tests' async calls (the admin client, restarts).
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) signer: SignerDir,
    pub(crate) addr: String,
    serve: Option<ServeProcess>,
    _temp: tempfile::TempDir,
}

impl World {
    /// `tidemark init` with two replicas, then `tidemark serve`.
    pub(crate) fn start() -> World {
        World::start_with(&[])
    }

    /// `tidemark init --seed-file` (the keystore's seed is `seed`: the
    /// node's keys are `KeysManager`'s over it), then `tidemark serve`.
    pub(crate) fn start_with_seed(seed: &[u8; 32]) -> World {
        let temp = tempfile::tempdir().unwrap();
        let file = temp.path().join("seed.hex");
        std::fs::write(&file, hex::encode(seed)).unwrap();
        World::start_in(temp, &["--seed-file".as_ref(), file.as_os_str()])
    }

    fn start_with(more: &[&std::ffi::OsStr]) -> World {
        World::start_in(tempfile::tempdir().unwrap(), more)
    }

    fn start_in(temp: tempfile::TempDir, more: &[&std::ffi::OsStr]) -> World {
        let signer = SignerDir::init_with(temp.path(), 2, more);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (serve, addr, _) = runtime.block_on(signer.start(Duration::from_secs(60)));
        World {
            signer,
            addr,
            serve: Some(serve),
            runtime,
            _temp: temp,
        }
    }

    /// Kills the signer (SIGKILL) and waits until it is gone.
    pub(crate) fn kill(&mut self) {
        let serve = self.serve.take().expect("the signer is running");
        drop(serve);
    }

    /// Starts the signer again on the same address.
    pub(crate) fn restart(&mut self) {
        assert!(self.serve.is_none(), "the signer is already running");
        let serve = self
            .runtime
            .block_on(self.signer.restart(&self.addr, Duration::from_secs(60)));
        self.serve = Some(serve);
    }

    pub(crate) fn options(&self, identity: &str) -> ClientOptions {
        let tls = self.signer.dir.join("tls");
        ClientOptions::from_files(
            &self.addr,
            "localhost",
            &tls.join("ca.crt"),
            &tls.join(format!("{identity}.crt")),
            &tls.join(format!("{identity}.key")),
        )
        .unwrap()
        .with_deadline(Duration::from_secs(5))
    }

    /// Node A's adapter for replica `identity`; its scripts come from the
    /// signer.
    pub(crate) fn adapter(&self, identity: &str) -> TidemarkSigner {
        let options = self.options(identity);
        let mut config = AdapterConfig::from_signer(DEV_LIGHTNING_NODE, &options).unwrap();
        config.probe_interval = Duration::from_millis(100);
        TidemarkSigner::new(options, config).unwrap()
    }

    /// The signer's mark `name` of the channel of `channel_keys_id`, read
    /// with the admin `ListMarks` call.
    pub(crate) fn mark(&self, channel_keys_id: &[u8; 32], name: &str) -> Option<u64> {
        let marks = self
            .runtime
            .block_on(async {
                let admin = self
                    .signer
                    .client(&self.addr, "admin", Duration::from_secs(5));
                admin.list_marks().await
            })
            .unwrap();
        let suffix = hex::encode(channel_keys_id);
        let object = marks.marks.iter().find(|m| m.object.ends_with(&suffix))?;
        object
            .mark
            .as_ref()?
            .fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value)
    }
}

pub(crate) fn config() -> UserConfig {
    let mut c = UserConfig::default();
    c.channel_handshake_config.announce_for_forwarding = false;
    c.channel_handshake_limits
        .force_announced_channel_preference = false;
    c
}

pub(crate) fn keys_manager(seed: u8) -> KeysManager {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    KeysManager::new(&[seed; 32], now.as_secs(), now.subsec_nanos(), true)
}

/// Node A (replica `identity` of the Tidemark node) and node B
/// (`KeysManager`), connected, with A's unblocked notice wired.
pub(crate) fn pair(world: &World, identity: &str) -> Pair<TidemarkSigner, KeysManager> {
    pair_with(world, identity, config(), config())
}

/// [`pair`] with each node's config.
pub(crate) fn pair_with(
    world: &World,
    identity: &str,
    config_a: UserConfig,
    config_b: UserConfig,
) -> Pair<TidemarkSigner, KeysManager> {
    let chain = Chain::new(Network::Regtest);
    let adapter = world.adapter(identity);
    let a = Node::new("a", adapter.clone(), &chain, config_a);
    a.wire_unblocked(&adapter);
    let b = Node::new("b", keys_manager(7), &chain, config_b);
    Pair::connect(a, b, chain)
}

/// A funding transaction paying `script` `value`, from a synthetic input
/// (LDK checks that inputs carry witnesses, not that they verify).
pub(crate) fn funding_transaction(value: Amount, script: ScriptBuf, salt: u8) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::new(Txid::from_byte_array([salt; 32]), 0),
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: Witness::from_slice(&[vec![0x30; 72], vec![0x02; 33]]),
        }],
        output: vec![TxOut {
            value,
            script_pubkey: script,
        }],
    }
}

/// A opens a channel to B, funds it, and both see it usable. Returns the
/// channel and its funding transaction.
pub(crate) fn open_channel<A: Keys, B: Keys>(p: &mut Pair<A, B>) -> (ChannelId, Transaction) {
    let before = p.a.broadcaster.all().len();
    let salt = u8::try_from(p.a.manager.list_channels().len() + 0x42).unwrap();
    p.a.manager
        .create_channel(p.b.id(), CHANNEL_SAT, 0, u128::from(salt), None, None)
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
                    salt,
                );
                a.manager
                    .funding_transaction_generated(*temporary_channel_id, *counterparty_node_id, tx)
                    .unwrap();
            }
        },
        |b, e| {
            // B accepts by hand when its config asks it to (anchors).
            if let Event::OpenChannelRequest {
                temporary_channel_id,
                counterparty_node_id,
                ..
            } = e
            {
                b.manager
                    .accept_inbound_channel(temporary_channel_id, counterparty_node_id, 0, None)
                    .unwrap();
            }
        },
    );
    let broadcast = p.a.broadcaster.all();
    assert_eq!(broadcast.len(), before + 1, "A broadcasts the funding");
    let funding = broadcast[before].clone();
    p.mine(std::slice::from_ref(&funding), 6);
    let (events_a, events_b) = p.pump(|_, _| {}, |_, _| {});
    let ready = |events: &[Event]| {
        events.iter().find_map(|e| match e {
            Event::ChannelReady { channel_id, .. } => Some(*channel_id),
            _ => None,
        })
    };
    let id = ready(&events_a).expect("A sees the channel ready");
    assert_eq!(ready(&events_b), Some(id), "B sees the same channel ready");
    assert!(
        p.a.manager
            .list_usable_channels()
            .iter()
            .any(|c| c.channel_id == id)
    );
    (id, funding)
}

/// `from` starts paying `to` each amount (an invoice of `to` per amount);
/// nothing is delivered yet, so the HTLCs are in flight together.
pub(crate) fn send_payments<F: Keys, T: Keys>(
    from: &Node<F>,
    to: &Node<T>,
    amounts: &[u64],
) -> Vec<PaymentHash> {
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
pub(crate) fn claim<K: Keys>(node: &Node<K>, event: &Event) {
    if let Event::PaymentClaimable { purpose, .. } = event {
        node.manager.claim_funds(
            purpose
                .preimage()
                .expect("inbound payments carry their preimage"),
        );
    }
}

pub(crate) fn count(events: &[Event], what: fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| what(e)).count()
}

pub(crate) fn sent(e: &Event) -> bool {
    matches!(e, Event::PaymentSent { .. })
}

pub(crate) fn claimed(e: &Event) -> bool {
    matches!(e, Event::PaymentClaimed { .. })
}

/// The one channel keys id `node`'s adapter derived signers for (the
/// channel the test opened).
pub(crate) fn only_channel_keys_id(node: &Node<TidemarkSigner>) -> [u8; 32] {
    let ids = node.keys.channel_keys_ids();
    assert_eq!(ids.len(), 1, "one channel signer");
    ids[0]
}
