//! One LDK node (a `ChannelManager` and its `ChainMonitor`) generic over
//! its signer, its snapshots, a synthetic chain fed through
//! `chain::Confirm`, and the message pump between two nodes.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bitcoin::block::{Header, Version};
use bitcoin::blockdata::constants::genesis_block;
use bitcoin::hash_types::TxMerkleNode;
use bitcoin::hashes::Hash as _;
use bitcoin::secp256k1::PublicKey;
use bitcoin::{BlockHash, CompactTarget, Network, Transaction};
use lightning::chain::chainmonitor::ChainMonitor;
use lightning::chain::channelmonitor::ChannelMonitor;
use lightning::chain::{self, BestBlock, ChannelMonitorUpdateStatus, Confirm, Filter};
use lightning::events::{Event, EventsProvider as _};
use lightning::ln::channelmanager::{ChainParameters, ChannelManager, ChannelManagerReadArgs};
use lightning::ln::msgs::{
    BaseMessageHandler, ChannelMessageHandler, ErrorAction, Init, MessageSendEvent,
};
use lightning::onion_message::messenger::NullMessageRouter;
use lightning::sign::{EntropySource, NodeSigner, Recipient, SignerProvider};
use lightning::util::config::UserConfig;
use lightning::util::ser::{ReadableArgs as _, Writeable as _};

use super::plumbing::{Broadcaster, DirectRouter, Fees, Log, Monitors};

/// What a node's signer must be: the three roles LDK asks of a keys
/// manager, in one value.
pub trait Keys: SignerProvider + NodeSigner + EntropySource + Send + Sync + 'static {}
impl<K: SignerProvider + NodeSigner + EntropySource + Send + Sync + 'static> Keys for K {}

pub type Monitor<K> = ChainMonitor<
    <K as SignerProvider>::EcdsaSigner,
    Arc<dyn Filter + Send + Sync>,
    Arc<Broadcaster>,
    Arc<Fees>,
    Arc<Log>,
    Arc<Monitors>,
    Arc<K>,
>;

pub type Manager<K> = ChannelManager<
    Arc<Monitor<K>>,
    Arc<Broadcaster>,
    Arc<K>,
    Arc<K>,
    Arc<K>,
    Arc<Fees>,
    Arc<DirectRouter>,
    Arc<NullMessageRouter>,
    Arc<Log>,
>;

/// The fee rate every node estimates (sat per 1000 weight).
pub const FEE_RATE: u32 = 1000;

/// A synthetic chain: headers that link, no proof of work, and the
/// transactions of each block (so a node restored from an old snapshot
/// can catch up).
pub struct Chain {
    pub network: Network,
    blocks: Vec<(Header, Vec<Transaction>)>,
}

impl Chain {
    pub fn new(network: Network) -> Chain {
        Chain {
            network,
            blocks: vec![(genesis_block(network).header, Vec::new())],
        }
    }

    pub fn height(&self) -> u32 {
        u32::try_from(self.blocks.len() - 1).unwrap()
    }

    pub fn tip(&self) -> BestBlock {
        BestBlock::new(self.blocks.last().unwrap().0.block_hash(), self.height())
    }

    /// Appends a block with `txs`; returns its height.
    pub fn mine(&mut self, txs: &[Transaction]) -> u32 {
        let prev = self.blocks.last().unwrap().0;
        let height = self.height() + 1;
        let header = Header {
            version: Version::TWO,
            prev_blockhash: prev.block_hash(),
            merkle_root: TxMerkleNode::all_zeros(),
            time: prev.time + 600,
            bits: CompactTarget::from_consensus(0x207f_ffff),
            nonce: height,
        };
        self.blocks.push((header, txs.to_vec()));
        height
    }

    /// The height at which `txid` was mined, if it was.
    pub fn confirmed_at(&self, txid: bitcoin::Txid) -> Option<u32> {
        self.blocks
            .iter()
            .position(|(_, txs)| txs.iter().any(|t| t.compute_txid() == txid))
            .map(|h| u32::try_from(h).unwrap())
    }
}

/// A node's persisted state: its manager and every monitor, serialized as
/// a node writes them, at a chain height.
#[derive(Clone)]
pub struct Snapshot {
    pub manager: Vec<u8>,
    pub monitors: Vec<Vec<u8>>,
    pub height: u32,
}

/// An LDK node with signer `K`.
pub struct Node<K: Keys> {
    pub name: &'static str,
    pub keys: Arc<K>,
    pub manager: Arc<Manager<K>>,
    pub monitor: Arc<Monitor<K>>,
    pub broadcaster: Arc<Broadcaster>,
    pub monitors: Arc<Monitors>,
    /// The height of the last block fed to this node.
    synced: Mutex<u32>,
    /// The errors peers sent this node.
    pub errors: Mutex<Vec<String>>,
}

/// What a node is made of besides its manager: the same for a new node
/// and a restored one.
struct Parts<K: Keys> {
    keys: Arc<K>,
    log: Arc<Log>,
    fees: Arc<Fees>,
    broadcaster: Arc<Broadcaster>,
    monitors: Arc<Monitors>,
    monitor: Arc<Monitor<K>>,
}

impl<K: Keys> Parts<K> {
    fn new(name: &'static str, keys: K) -> Parts<K> {
        let keys = Arc::new(keys);
        let log = Arc::new(Log(name));
        let fees = Arc::new(Fees(FEE_RATE));
        let broadcaster = Arc::new(Broadcaster::default());
        let monitors = Arc::new(Monitors::default());
        let monitor = Arc::new(ChainMonitor::new(
            None,
            broadcaster.clone(),
            log.clone(),
            fees.clone(),
            monitors.clone(),
            keys.clone(),
            keys.get_peer_storage_key(),
        ));
        Parts {
            keys,
            log,
            fees,
            broadcaster,
            monitors,
            monitor,
        }
    }
}

impl<K: Keys> Node<K> {
    pub fn new(name: &'static str, keys: K, chain: &Chain, config: UserConfig) -> Node<K> {
        let Parts {
            keys,
            log,
            fees,
            broadcaster,
            monitors,
            monitor,
        } = Parts::new(name, keys);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let manager = Arc::new(ChannelManager::new(
            fees,
            monitor.clone(),
            broadcaster.clone(),
            Arc::new(DirectRouter),
            Arc::new(NullMessageRouter {}),
            log,
            keys.clone(),
            keys.clone(),
            keys.clone(),
            config,
            ChainParameters {
                network: chain.network,
                best_block: chain.tip(),
            },
            u32::try_from(now.as_secs()).unwrap(),
        ));
        Node {
            name,
            keys,
            manager,
            monitor,
            broadcaster,
            monitors,
            synced: Mutex::new(chain.height()),
            errors: Mutex::default(),
        }
    }

    /// Wires the signer's "reachable again" notice to
    /// `signer_unblocked` on the manager and the monitor, as a node using
    /// the adapter must.
    pub fn wire_unblocked(&self, adapter: &crate::TidemarkSigner)
    where
        K::EcdsaSigner: Send + Sync,
    {
        let (manager, monitor) = (self.manager.clone(), self.monitor.clone());
        adapter.on_unblocked(Box::new(move || {
            manager.signer_unblocked(None);
            monitor.signer_unblocked(None);
        }));
    }

    /// The node's persisted state now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            manager: self.manager.encode(),
            monitors: self.monitors.all(),
            height: *self.synced.lock().unwrap(),
        }
    }

    /// A node deserialized from `snapshot` with signer `keys` (a replica of
    /// the node that took it), fed the blocks mined since.
    pub fn restore(
        name: &'static str,
        keys: K,
        snapshot: &Snapshot,
        chain: &Chain,
        config: UserConfig,
    ) -> Node<K> {
        let Parts {
            keys,
            log,
            fees,
            broadcaster,
            monitors,
            monitor,
        } = Parts::new(name, keys);
        let channel_monitors: Vec<ChannelMonitor<K::EcdsaSigner>> = snapshot
            .monitors
            .iter()
            .map(|bytes| {
                let (_, m) = <(BlockHash, ChannelMonitor<K::EcdsaSigner>)>::read(
                    &mut &bytes[..],
                    (&*keys, &*keys),
                )
                .expect("a snapshot's monitor deserializes");
                m
            })
            .collect();
        let args = ChannelManagerReadArgs::new(
            keys.clone(),
            keys.clone(),
            keys.clone(),
            fees,
            monitor.clone(),
            broadcaster.clone(),
            Arc::new(DirectRouter),
            Arc::new(NullMessageRouter {}),
            log,
            config,
            channel_monitors.iter().collect(),
        );
        let (_, manager) = <(BlockHash, Arc<Manager<K>>)>::read(&mut &snapshot.manager[..], args)
            .expect("a snapshot's manager deserializes");
        for m in channel_monitors {
            let status = chain::Watch::watch_channel(&*monitor, m.channel_id(), m)
                .expect("the restored monitor is watched");
            assert_eq!(status, ChannelMonitorUpdateStatus::Completed);
        }
        let node = Node {
            name,
            keys,
            manager,
            monitor,
            broadcaster,
            monitors,
            synced: Mutex::new(snapshot.height),
            errors: Mutex::default(),
        };
        node.sync(chain);
        node
    }

    /// Feeds every block mined since the last one this node saw.
    pub fn sync(&self, chain: &Chain) {
        let from = *self.synced.lock().unwrap() + 1;
        for height in from..=chain.height() {
            let (header, txs) = &chain.blocks[height as usize];
            self.block(header, txs, height);
        }
        *self.synced.lock().unwrap() = chain.height();
    }

    pub fn id(&self) -> PublicKey {
        self.keys.get_node_id(Recipient::Node).unwrap()
    }

    /// The manager's pending events, in order.
    pub fn events(&self) -> Vec<Event> {
        let events = RefCell::new(Vec::new());
        let collect = |e: Event| {
            events.borrow_mut().push(e);
            Ok(())
        };
        self.manager.process_pending_events(&collect);
        self.monitor.process_pending_events(&collect);
        events.into_inner()
    }

    /// Feeds one block (its transactions, then the tip) to both the
    /// manager and the monitor.
    fn block(&self, header: &Header, txs: &[Transaction], height: u32) {
        let txdata: Vec<(usize, &Transaction)> = txs.iter().enumerate().collect();
        let confirms: [&dyn Confirm; 2] = [&*self.manager, &*self.monitor];
        for c in confirms {
            if !txdata.is_empty() {
                c.transactions_confirmed(header, &txdata, height);
            }
            c.best_block_updated(header, height);
        }
    }
}

/// Two connected nodes on one chain.
pub struct Pair<A: Keys, B: Keys> {
    pub a: Node<A>,
    pub b: Node<B>,
    pub chain: Chain,
}

impl<A: Keys, B: Keys> Pair<A, B> {
    /// Connects `a` and `b` (`a` dials).
    pub fn connect(a: Node<A>, b: Node<B>, chain: Chain) -> Self {
        connect(&a, &b);
        Pair { a, b, chain }
    }

    /// Mines one block with `txs`, then `more` empty blocks, feeding each
    /// to both nodes.
    pub fn mine(&mut self, txs: &[Transaction], more: u32) {
        self.chain.mine(txs);
        for _ in 0..more {
            self.chain.mine(&[]);
        }
        self.a.sync(&self.chain);
        self.b.sync(&self.chain);
    }

    /// Delivers messages both ways and forwards HTLCs until both nodes are
    /// quiet; returns the events each produced meanwhile. `on_b` runs on
    /// each of B's events as it appears (to claim payments), likewise
    /// `on_a`.
    pub fn pump(
        &self,
        on_a: impl FnMut(&Node<A>, &Event),
        on_b: impl FnMut(&Node<B>, &Event),
    ) -> (Vec<Event>, Vec<Event>) {
        pump(&self.a, &self.b, on_a, on_b)
    }
}

/// Connects `a` and `b` (`a` dials): each sends its channel reestablish
/// messages on the next [`pump`].
pub fn connect<A: Keys, B: Keys>(a: &Node<A>, b: &Node<B>) {
    let (a_id, b_id) = (a.id(), b.id());
    let init = |features| Init {
        features,
        networks: None,
        remote_network_address: None,
    };
    a.manager
        .peer_connected(b_id, &init(b.manager.provided_init_features(a_id)), false)
        .unwrap();
    b.manager
        .peer_connected(a_id, &init(a.manager.provided_init_features(b_id)), true)
        .unwrap();
}

/// Disconnects `a` and `b`.
pub fn disconnect<A: Keys, B: Keys>(a: &Node<A>, b: &Node<B>) {
    a.manager.peer_disconnected(b.id());
    b.manager.peer_disconnected(a.id());
}

/// Delivers messages both ways and forwards HTLCs until both nodes are
/// quiet; returns the events each produced meanwhile. `on_b` runs on each
/// of B's events as it appears (to claim payments), likewise `on_a`.
/// Messages for other peers are dropped.
pub fn pump<A: Keys, B: Keys>(
    a: &Node<A>,
    b: &Node<B>,
    mut on_a: impl FnMut(&Node<A>, &Event),
    mut on_b: impl FnMut(&Node<B>, &Event),
) -> (Vec<Event>, Vec<Event>) {
    let (mut events_a, mut events_b) = (Vec::new(), Vec::new());
    for _ in 0..1000 {
        a.manager.process_pending_htlc_forwards();
        b.manager.process_pending_htlc_forwards();
        let new_a = a.events();
        let new_b = b.events();
        new_a.iter().for_each(|e| on_a(a, e));
        new_b.iter().for_each(|e| on_b(b, e));
        let msgs_a = a.manager.get_and_clear_pending_msg_events();
        let msgs_b = b.manager.get_and_clear_pending_msg_events();
        let quiet = new_a.is_empty() && new_b.is_empty() && msgs_a.is_empty() && msgs_b.is_empty();
        events_a.extend(new_a);
        events_b.extend(new_b);
        if quiet {
            return (events_a, events_b);
        }
        for m in msgs_a {
            deliver(b, a.id(), m);
        }
        for m in msgs_b {
            deliver(a, b.id(), m);
        }
    }
    panic!("the nodes never went quiet");
}

/// Delivers one message `from` a peer to `to`.
/// An error message is delivered and recorded in the receiver's
/// [`Node::errors`]; a message for another peer is dropped.
pub fn deliver<K: Keys>(to: &Node<K>, from: PublicKey, event: MessageSendEvent) {
    use MessageSendEvent as M;
    let for_to = match &event {
        M::HandleError { node_id, .. }
        | M::SendOpenChannel { node_id, .. }
        | M::SendAcceptChannel { node_id, .. }
        | M::SendFundingCreated { node_id, .. }
        | M::SendFundingSigned { node_id, .. }
        | M::SendChannelReady { node_id, .. }
        | M::UpdateHTLCs { node_id, .. }
        | M::SendRevokeAndACK { node_id, .. }
        | M::SendShutdown { node_id, .. }
        | M::SendClosingSigned { node_id, .. }
        | M::SendChannelReestablish { node_id, .. } => *node_id == to.id(),
        _ => true,
    };
    if !for_to {
        return;
    }
    let handler = &to.manager;
    match event {
        M::SendOpenChannel { msg, .. } => handler.handle_open_channel(from, &msg),
        M::SendAcceptChannel { msg, .. } => handler.handle_accept_channel(from, &msg),
        M::SendFundingCreated { msg, .. } => handler.handle_funding_created(from, &msg),
        M::SendFundingSigned { msg, .. } => handler.handle_funding_signed(from, &msg),
        M::SendChannelReady { msg, .. } => handler.handle_channel_ready(from, &msg),
        M::UpdateHTLCs { updates, .. } => {
            for m in &updates.update_add_htlcs {
                handler.handle_update_add_htlc(from, m);
            }
            for m in updates.update_fulfill_htlcs {
                handler.handle_update_fulfill_htlc(from, m);
            }
            for m in &updates.update_fail_htlcs {
                handler.handle_update_fail_htlc(from, m);
            }
            for m in &updates.update_fail_malformed_htlcs {
                handler.handle_update_fail_malformed_htlc(from, m);
            }
            if let Some(m) = &updates.update_fee {
                handler.handle_update_fee(from, m);
            }
            assert_eq!(
                updates.commitment_signed.len(),
                1,
                "no splices in the harness"
            );
            handler.handle_commitment_signed(from, &updates.commitment_signed[0]);
        }
        M::SendRevokeAndACK { msg, .. } => handler.handle_revoke_and_ack(from, &msg),
        M::SendShutdown { msg, .. } => handler.handle_shutdown(from, &msg),
        M::SendClosingSigned { msg, .. } => handler.handle_closing_signed(from, &msg),
        M::SendChannelReestablish { msg, .. } => handler.handle_channel_reestablish(from, &msg),
        M::HandleError { action, .. } => {
            to.errors.lock().unwrap().push(format!("{action:?}"));
            if let ErrorAction::SendErrorMessage { msg }
            | ErrorAction::DisconnectPeer { msg: Some(msg) } = action
            {
                handler.handle_error(from, &msg);
            }
        }
        // Gossip: the harness's channels are unannounced and routing is
        // direct.
        M::SendChannelUpdate { .. }
        | M::BroadcastChannelUpdate { .. }
        | M::SendAnnouncementSignatures { .. } => {}
        other => panic!("the harness does not deliver {other:?}"),
    }
}
