//! One LDK node (a `ChannelManager` and its `ChainMonitor`) generic over
//! its signer, a synthetic chain fed through `chain::Confirm`, and the
//! message pump between two nodes.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bitcoin::block::{Header, Version};
use bitcoin::blockdata::constants::genesis_block;
use bitcoin::hash_types::TxMerkleNode;
use bitcoin::hashes::Hash as _;
use bitcoin::secp256k1::PublicKey;
use bitcoin::{CompactTarget, Network, Transaction};
use lightning::chain::chainmonitor::ChainMonitor;
use lightning::chain::{BestBlock, Confirm, Filter};
use lightning::events::{Event, EventsProvider as _};
use lightning::ln::channelmanager::{ChainParameters, ChannelManager};
use lightning::ln::msgs::{BaseMessageHandler, ChannelMessageHandler, Init, MessageSendEvent};
use lightning::onion_message::messenger::NullMessageRouter;
use lightning::sign::{EntropySource, NodeSigner, Recipient, SignerProvider};
use lightning::util::config::UserConfig;

use super::plumbing::{Broadcaster, DirectRouter, Fees, Log, Monitors};

/// What a node's signer must be: the three roles LDK asks of a keys
/// manager, in one value.
pub(crate) trait Keys:
    SignerProvider + NodeSigner + EntropySource + Send + Sync + 'static
{
}
impl<K: SignerProvider + NodeSigner + EntropySource + Send + Sync + 'static> Keys for K {}

pub(crate) type Monitor<K> = ChainMonitor<
    <K as SignerProvider>::EcdsaSigner,
    Arc<dyn Filter + Send + Sync>,
    Arc<Broadcaster>,
    Arc<Fees>,
    Arc<Log>,
    Arc<Monitors>,
    Arc<K>,
>;

pub(crate) type Manager<K> = ChannelManager<
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
pub(crate) const FEE_RATE: u32 = 1000;

/// A synthetic chain: headers that link, no proof of work.
pub(crate) struct Chain {
    pub(crate) network: Network,
    headers: Vec<Header>,
}

impl Chain {
    pub(crate) fn new(network: Network) -> Chain {
        Chain {
            network,
            headers: vec![genesis_block(network).header],
        }
    }

    pub(crate) fn height(&self) -> u32 {
        u32::try_from(self.headers.len() - 1).unwrap()
    }

    pub(crate) fn tip(&self) -> BestBlock {
        BestBlock::new(self.headers.last().unwrap().block_hash(), self.height())
    }

    /// Appends a block; returns its header and height.
    fn next(&mut self) -> (Header, u32) {
        let prev = self.headers.last().unwrap();
        let height = self.height() + 1;
        let header = Header {
            version: Version::TWO,
            prev_blockhash: prev.block_hash(),
            merkle_root: TxMerkleNode::all_zeros(),
            time: prev.time + 600,
            bits: CompactTarget::from_consensus(0x207f_ffff),
            nonce: height,
        };
        self.headers.push(header);
        (header, height)
    }
}

/// An LDK node with signer `K`.
pub(crate) struct Node<K: Keys> {
    pub(crate) keys: Arc<K>,
    pub(crate) manager: Manager<K>,
    pub(crate) monitor: Arc<Monitor<K>>,
    pub(crate) broadcaster: Arc<Broadcaster>,
    pub(crate) monitors: Arc<Monitors>,
}

impl<K: Keys> Node<K> {
    pub(crate) fn new(name: &'static str, keys: K, chain: &Chain, config: UserConfig) -> Node<K> {
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
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let manager = ChannelManager::new(
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
        );
        Node {
            keys,
            manager,
            monitor,
            broadcaster,
            monitors,
        }
    }

    pub(crate) fn id(&self) -> PublicKey {
        self.keys.get_node_id(Recipient::Node).unwrap()
    }

    /// The manager's pending events, in order.
    pub(crate) fn events(&self) -> Vec<Event> {
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
        let confirms: [&dyn Confirm; 2] = [&self.manager, &*self.monitor];
        for c in confirms {
            if !txdata.is_empty() {
                c.transactions_confirmed(header, &txdata, height);
            }
            c.best_block_updated(header, height);
        }
    }
}

/// Two connected nodes on one chain.
pub(crate) struct Pair<A: Keys, B: Keys> {
    pub(crate) a: Node<A>,
    pub(crate) b: Node<B>,
    pub(crate) chain: Chain,
}

impl<A: Keys, B: Keys> Pair<A, B> {
    /// Connects `a` and `b` (`a` dials).
    pub(crate) fn connect(a: Node<A>, b: Node<B>, chain: Chain) -> Self {
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
        Pair { a, b, chain }
    }

    /// Mines one block with `txs`, then `more` empty blocks, feeding each
    /// to both nodes.
    pub(crate) fn mine(&mut self, txs: &[Transaction], more: u32) {
        let (header, height) = self.chain.next();
        self.a.block(&header, txs, height);
        self.b.block(&header, txs, height);
        for _ in 0..more {
            let (header, height) = self.chain.next();
            self.a.block(&header, &[], height);
            self.b.block(&header, &[], height);
        }
    }

    /// Delivers messages both ways and forwards HTLCs until both nodes are
    /// quiet; returns the events each produced meanwhile. `on_b` runs on
    /// each of B's events as it appears (to claim payments), likewise
    /// `on_a`.
    pub(crate) fn pump(
        &self,
        mut on_a: impl FnMut(&Node<A>, &Event),
        mut on_b: impl FnMut(&Node<B>, &Event),
    ) -> (Vec<Event>, Vec<Event>) {
        let (mut events_a, mut events_b) = (Vec::new(), Vec::new());
        for _ in 0..1000 {
            self.a.manager.process_pending_htlc_forwards();
            self.b.manager.process_pending_htlc_forwards();
            let new_a = self.a.events();
            let new_b = self.b.events();
            new_a.iter().for_each(|e| on_a(&self.a, e));
            new_b.iter().for_each(|e| on_b(&self.b, e));
            let msgs_a = self.a.manager.get_and_clear_pending_msg_events();
            let msgs_b = self.b.manager.get_and_clear_pending_msg_events();
            let quiet =
                new_a.is_empty() && new_b.is_empty() && msgs_a.is_empty() && msgs_b.is_empty();
            events_a.extend(new_a);
            events_b.extend(new_b);
            if quiet {
                return (events_a, events_b);
            }
            for m in msgs_a {
                deliver(&self.b.manager, self.a.id(), m);
            }
            for m in msgs_b {
                deliver(&self.a.manager, self.b.id(), m);
            }
        }
        panic!("the nodes never went quiet");
    }
}

/// Delivers one message `from` a peer to `to`.
fn deliver(to: &impl ChannelMessageHandler, from: PublicKey, event: MessageSendEvent) {
    use MessageSendEvent as M;
    match event {
        M::SendOpenChannel { msg, .. } => to.handle_open_channel(from, &msg),
        M::SendAcceptChannel { msg, .. } => to.handle_accept_channel(from, &msg),
        M::SendFundingCreated { msg, .. } => to.handle_funding_created(from, &msg),
        M::SendFundingSigned { msg, .. } => to.handle_funding_signed(from, &msg),
        M::SendChannelReady { msg, .. } => to.handle_channel_ready(from, &msg),
        M::UpdateHTLCs { updates, .. } => {
            for m in &updates.update_add_htlcs {
                to.handle_update_add_htlc(from, m);
            }
            for m in updates.update_fulfill_htlcs {
                to.handle_update_fulfill_htlc(from, m);
            }
            for m in &updates.update_fail_htlcs {
                to.handle_update_fail_htlc(from, m);
            }
            for m in &updates.update_fail_malformed_htlcs {
                to.handle_update_fail_malformed_htlc(from, m);
            }
            if let Some(m) = &updates.update_fee {
                to.handle_update_fee(from, m);
            }
            assert_eq!(
                updates.commitment_signed.len(),
                1,
                "no splices in the harness"
            );
            to.handle_commitment_signed(from, &updates.commitment_signed[0]);
        }
        M::SendRevokeAndACK { msg, .. } => to.handle_revoke_and_ack(from, &msg),
        M::SendShutdown { msg, .. } => to.handle_shutdown(from, &msg),
        M::SendClosingSigned { msg, .. } => to.handle_closing_signed(from, &msg),
        M::SendChannelReestablish { msg, .. } => to.handle_channel_reestablish(from, &msg),
        M::HandleError { action, .. } => panic!("a node reported an error to its peer: {action:?}"),
        // Gossip: the harness's channels are unannounced and routing is
        // direct.
        M::SendChannelUpdate { .. }
        | M::BroadcastChannelUpdate { .. }
        | M::SendAnnouncementSignatures { .. } => {}
        other => panic!("the harness does not deliver {other:?}"),
    }
}
