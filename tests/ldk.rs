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

use lightning::sign::KeysManager;
use lightning::util::config::UserConfig;
use support::{ServeProcess, SignerDir};
use tidemark_cli::embedded::DEV_LIGHTNING_NODE;
use tidemark_client::ClientOptions;
pub(crate) use tidemark_ldk::testing::{
    CHANNEL_SAT, Keys, claim, claimed, count, funding_transaction, open_channel, send_payments,
    sent,
};
use tidemark_ldk::testing::{Chain, Node, Pair};
use tidemark_ldk::{AdapterConfig, TidemarkSigner};
use tidemark_lightning::bitcoin::Network;

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

/// The one channel keys id `node`'s adapter derived signers for (the
/// channel the test opened).
pub(crate) fn only_channel_keys_id(node: &Node<TidemarkSigner>) -> [u8; 32] {
    let ids = node.keys.channel_keys_ids();
    assert_eq!(ids.len(), 1, "one channel signer");
    ids[0]
}
