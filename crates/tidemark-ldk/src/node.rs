//! [`TidemarkSigner`]: one per LDK node. LDK's `SignerProvider`,
//! `NodeSigner`, `EntropySource`, `OutputSpender` and a change destination
//! over one [`BlockingClient`] (its own tokio runtime thread; every call
//! carries the client's deadline).
//!
//! What never calls out: `derive_channel_signer` (the channel's keys are
//! fetched on the channel signer's first `pubkeys`), `channel_keys_id`,
//! `get_node_id` after the first call, `get_destination_script`,
//! `get_shutdown_scriptpubkey`, the change destination and entropy (OS
//! randomness).
//!
//! Calls whose LDK signature cannot fail (`generate_channel_keys_id`,
//! `get_expanded_key`, `get_peer_storage_key`, `get_receive_auth_key`)
//! retry transient failures with backoff until the signer answers (they
//! block the calling thread meanwhile) and cache what they may. `ecdh`
//! can fail in its signature, but LDK unwraps it on the payment path, so
//! it retries transient failures for up to the validation patience
//! (found by `tests/ldk/outage.rs`, which kills the signer at random
//! instants).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use bitcoin::consensus::deserialize;
use bitcoin::secp256k1::ecdh::SharedSecret;
use bitcoin::secp256k1::ecdsa::{RecoverableSignature, RecoveryId, Signature};
use bitcoin::secp256k1::{All, PublicKey, Scalar, Secp256k1, schnorr};
use bitcoin::{ScriptBuf, Transaction, TxOut, absolute::LockTime};
use lightning::bolt11_invoice::RawBolt11Invoice;
use lightning::ln::inbound_payment::ExpandedKey;
use lightning::ln::msgs::UnsignedGossipMessage;
use lightning::ln::script::ShutdownScript;
use lightning::offers::invoice::UnsignedBolt12Invoice;
use lightning::sign::{
    ChangeDestinationSource, ChangeDestinationSourceSync, EntropySource, NodeSigner, OutputSpender,
    PeerStorageKey, ReceiveAuthKey, Recipient, SignerProvider, SpendableOutputDescriptor,
};
use lightning::util::async_poll::AsyncResult;
use lightning::util::ser::Writeable;
use rand::RngCore as _;
use tidemark_client::{BlockingClient, ClientError, ClientOptions, v1};
use tidemark_lightning::channel::ChannelKeys;
use zeroize::Zeroize as _;

use crate::channel::TidemarkChannelSigner;
use crate::connection::{Backoff, Connection, Refusals, UnblockedCallback, spawn_watcher};

/// One channel's cached public keys, shared by its signers.
type KeysCell = Arc<OnceLock<ChannelKeys>>;

/// How the adapter reaches the signer and what it knows of the node.
#[derive(Clone)]
pub struct AdapterConfig {
    /// The node's name in the signer's config (`[lightning] node`).
    pub node: String,
    /// The node's destination script (`SignerProvider::get_destination_script`,
    /// the change destination): the signer's `NodeKeys::destination_script`.
    pub destination_script: ScriptBuf,
    /// The node's shutdown script: the signer's `NodeKeys::shutdown_script`.
    pub shutdown_script: ShutdownScript,
    /// Retries of calls that cannot fail.
    pub backoff: Backoff,
    /// How long validations retry transient failures before giving up.
    pub validation_patience: Duration,
    /// How often the watcher probes a signer that blocked a channel.
    pub probe_interval: Duration,
}

impl std::fmt::Debug for AdapterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdapterConfig")
            .field("node", &self.node)
            .field("destination_script", &self.destination_script)
            .field("shutdown_script", &self.shutdown_script.as_legacy_pubkey())
            .field("backoff", &self.backoff)
            .field("validation_patience", &self.validation_patience)
            .field("probe_interval", &self.probe_interval)
            .finish()
    }
}

impl AdapterConfig {
    /// Defaults: backoff 50 ms doubling to 2 s, validation patience 10
    /// minutes, probe every 250 ms.
    pub fn new(
        node: impl Into<String>,
        destination_script: ScriptBuf,
        shutdown_script: ShutdownScript,
    ) -> Self {
        AdapterConfig {
            node: node.into(),
            destination_script,
            shutdown_script,
            backoff: Backoff {
                first: Duration::from_millis(50),
                max: Duration::from_secs(2),
            },
            validation_patience: Duration::from_secs(600),
            probe_interval: Duration::from_millis(250),
        }
    }
}

impl AdapterConfig {
    /// The defaults of [`AdapterConfig::new`] with the node's scripts asked
    /// of the signer (`GetNodeScripts`), so they can never disagree with
    /// the keys the signer holds. Makes one call, with `options`' deadline.
    pub fn from_signer(
        node: impl Into<String>,
        options: &ClientOptions,
    ) -> Result<AdapterConfig, AdapterError> {
        let node = node.into();
        let client = BlockingClient::connect_lazy(options.clone())?;
        let scripts = client.node_scripts(&node)?;
        Ok(AdapterConfig::new(
            node,
            scripts.destination_script,
            scripts.shutdown_script,
        ))
    }
}

/// Why the adapter could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdapterError {
    /// The client could not be built (TLS configuration, runtime).
    #[error("cannot build the signer client: {0}")]
    Client(#[from] ClientError),
    /// The watcher thread could not start.
    #[error("cannot start the watcher thread: {0}")]
    Watcher(#[from] std::io::Error),
}

/// LDK's node-level signer traits over Tidemark. One per node (per
/// replica). Cheap to clone: clones share the connection and caches.
#[derive(Clone)]
pub struct TidemarkSigner {
    connection: Arc<Connection>,
    config: Arc<AdapterConfig>,
    node_id: Arc<OnceLock<PublicKey>>,
    secrets: Arc<Mutex<HashMap<&'static str, [u8; 32]>>>,
    channel_keys: Arc<Mutex<HashMap<[u8; 32], KeysCell>>>,
}

impl std::fmt::Debug for TidemarkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TidemarkSigner")
            .field("node", &self.config.node)
            .finish_non_exhaustive()
    }
}

impl TidemarkSigner {
    /// A signer for `config.node` through a client with `options` (its
    /// deadline is every call's). Connects lazily: no call is made here.
    pub fn new(options: ClientOptions, config: AdapterConfig) -> Result<Self, AdapterError> {
        let client = BlockingClient::connect_lazy(options)?;
        let connection = Arc::new(Connection::new(
            client,
            config.node.clone(),
            config.backoff,
            config.validation_patience,
        ));
        spawn_watcher(&connection, config.probe_interval)?;
        Ok(TidemarkSigner {
            connection,
            config: Arc::new(config),
            node_id: Arc::new(OnceLock::new()),
            secrets: Arc::new(Mutex::new(HashMap::new())),
            channel_keys: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// Registers `callback`, run by the watcher when the signer answers
    /// again after a transient failure blocked a channel. Wire it to
    /// `ChannelManager::signer_unblocked(None)` and
    /// `ChainMonitor::signer_unblocked(None)`.
    pub fn on_unblocked(&self, callback: UnblockedCallback) {
        self.connection.on_unblocked(callback);
    }

    /// The policy refusals this adapter received, by tag.
    pub fn refusals(&self) -> Refusals {
        self.connection.refusals()
    }

    /// The channel keys ids this adapter has derived channel signers for
    /// (in this process), sorted: what an operator (or a test) looks up
    /// on the signer.
    pub fn channel_keys_ids(&self) -> Vec<[u8; 32]> {
        let mut ids: Vec<[u8; 32]> = self
            .channel_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect();
        ids.sort_unstable();
        ids
    }

    fn node(&self) -> &str {
        &self.config.node
    }

    /// A node secret LDK cannot be refused: fetched once, retried until
    /// answered, cached.
    fn secret(
        &self,
        what: &'static str,
        fetch: impl Fn(&BlockingClient, &str) -> Result<zeroize::Zeroizing<[u8; 32]>, ClientError>,
    ) -> [u8; 32] {
        let mut cache = self.secrets.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = cache.get(what) {
            return *s;
        }
        let node = self.node();
        loop {
            match self
                .connection
                .until_answered(what, None, false, |c| fetch(c, node))
            {
                Ok(s) => {
                    cache.insert(what, *s);
                    return *s;
                }
                // A definitive failure (no grant, unknown node) cannot be
                // returned to LDK: keep asking slowly; the operator sees
                // the error in the log.
                Err(_) => std::thread::sleep(self.config.backoff.max),
            }
        }
    }
}

impl EntropySource for TidemarkSigner {
    /// OS randomness: no call to the signer.
    fn get_secure_random_bytes(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut b);
        b
    }
}

impl NodeSigner for TidemarkSigner {
    fn get_expanded_key(&self) -> ExpandedKey {
        let mut m = self.secret("expanded-key", |c, n| c.expanded_key_material(n));
        let key = ExpandedKey::new(m);
        m.zeroize();
        key
    }

    fn get_peer_storage_key(&self) -> PeerStorageKey {
        PeerStorageKey {
            inner: self.secret("peer-storage-key", |c, n| c.peer_storage_key(n)),
        }
    }

    fn get_receive_auth_key(&self) -> ReceiveAuthKey {
        ReceiveAuthKey(self.secret("receive-auth-key", |c, n| c.receive_auth_key(n)))
    }

    fn get_node_id(&self, recipient: Recipient) -> Result<PublicKey, ()> {
        if !matches!(recipient, Recipient::Node) {
            return Err(());
        }
        if let Some(id) = self.node_id.get() {
            return Ok(*id);
        }
        let node = self.node();
        let id = self
            .connection
            .once("node-id", None, |c| c.node_id(node))
            .map_err(|_| ())?;
        Ok(*self.node_id.get_or_init(|| id))
    }

    fn ecdh(
        &self,
        recipient: Recipient,
        other_key: &PublicKey,
        tweak: Option<&Scalar>,
    ) -> Result<SharedSecret, ()> {
        if !matches!(recipient, Recipient::Node) {
            return Err(());
        }
        let request = v1::EcdhRequest {
            node: self.node().to_owned(),
            other_key: other_key.serialize().to_vec(),
            tweak: tweak.map(|t| t.to_be_bytes().to_vec()),
        };
        // LDK unwraps this result when it decodes an HTLC's onion (0.2.7,
        // `onion_utils::decode_next_payment_hop`): a transient failure
        // must not reach it, so it is retried like a validation.
        let secret = self
            .connection
            .until_answered("ecdh", None, true, |c| c.ecdh(request.clone()))
            .map_err(|_| ())?;
        Ok(SharedSecret::from_bytes(secret))
    }

    fn sign_invoice(
        &self,
        invoice: &RawBolt11Invoice,
        recipient: Recipient,
    ) -> Result<RecoverableSignature, ()> {
        if !matches!(recipient, Recipient::Node) {
            return Err(());
        }
        let (hrp, words) = invoice.to_raw();
        let request = v1::SignInvoiceRequest {
            node: self.node().to_owned(),
            hrp,
            data: words.iter().map(|w| w.to_u8()).collect(),
        };
        let r = self
            .connection
            .once("sign-invoice", None, |c| c.sign_invoice(request.clone()))
            .map_err(|_| ())?;
        let id = RecoveryId::from_i32(r.recovery_id).map_err(|_| ())?;
        RecoverableSignature::from_compact(&r.signature, id).map_err(|_| ())
    }

    fn sign_bolt12_invoice(
        &self,
        invoice: &UnsignedBolt12Invoice,
    ) -> Result<schnorr::Signature, ()> {
        let request = v1::SignBolt12InvoiceRequest {
            node: self.node().to_owned(),
            invoice: invoice.encode(),
        };
        let r = self
            .connection
            .once("sign-bolt12-invoice", None, |c| {
                c.sign_bolt12_invoice(request.clone())
            })
            .map_err(|_| ())?;
        schnorr::Signature::from_slice(&r.signature).map_err(|_| ())
    }

    fn sign_gossip_message(&self, msg: UnsignedGossipMessage) -> Result<Signature, ()> {
        use v1::sign_gossip_message_request::Message as M;
        let message = match &msg {
            UnsignedGossipMessage::NodeAnnouncement(m) => M::NodeAnnouncement(m.encode()),
            UnsignedGossipMessage::ChannelAnnouncement(m) => M::ChannelAnnouncement(m.encode()),
            UnsignedGossipMessage::ChannelUpdate(m) => M::ChannelUpdate(m.encode()),
        };
        let request = v1::SignGossipMessageRequest {
            node: self.node().to_owned(),
            message: Some(message),
        };
        self.connection
            .once("sign-gossip-message", None, |c| {
                c.sign_gossip_message(request.clone())
            })
            .map_err(|_| ())
    }

    fn sign_message(&self, msg: &[u8]) -> Result<String, ()> {
        let node = self.node();
        self.connection
            .once("sign-message", None, |c| c.sign_message(node, msg))
            .map_err(|_| ())
    }
}

impl OutputSpender for TidemarkSigner {
    fn spend_spendable_outputs(
        &self,
        descriptors: &[&SpendableOutputDescriptor],
        outputs: Vec<TxOut>,
        change_destination_script: ScriptBuf,
        feerate_sat_per_1000_weight: u32,
        locktime: Option<LockTime>,
        _: &Secp256k1<All>,
    ) -> Result<Transaction, ()> {
        let request = v1::SpendSpendableOutputsRequest {
            node: self.node().to_owned(),
            descriptors: descriptors.iter().map(|d| d.encode()).collect(),
            outputs: outputs
                .iter()
                .map(|o| v1::TxOut {
                    value_sat: o.value.to_sat(),
                    script_pubkey: o.script_pubkey.to_bytes(),
                })
                .collect(),
            change_destination_script: change_destination_script.to_bytes(),
            feerate_sat_per_1000_weight,
            locktime: locktime.map(|l| l.to_consensus_u32()),
        };
        let bytes = self
            .connection
            .once("spend-spendable-outputs", None, |c| {
                c.spend_spendable_outputs(request.clone())
            })
            .map_err(|_| ())?;
        deserialize(&bytes).map_err(|e| {
            tracing::error!(node = %self.node(), error = %e, "the signer answered a malformed sweep");
        })
    }
}

impl SignerProvider for TidemarkSigner {
    type EcdsaSigner = TidemarkChannelSigner;

    /// From the signer's durable counter. LDK's signature cannot fail:
    /// transient failures are retried with backoff until the signer
    /// answers (the calling thread blocks meanwhile; a channel cannot be
    /// opened without a signer anyway).
    fn generate_channel_keys_id(&self, _inbound: bool, user_channel_id: u128) -> [u8; 32] {
        let node = self.node();
        loop {
            match self
                .connection
                .until_answered("issue-channel-keys-id", None, false, |c| {
                    c.issue_channel_keys_id(node, user_channel_id)
                }) {
                Ok(id) => return id,
                Err(_) => std::thread::sleep(self.config.backoff.max),
            }
        }
    }

    /// No network call: the channel's keys are fetched on first `pubkeys`.
    fn derive_channel_signer(&self, channel_keys_id: [u8; 32]) -> TidemarkChannelSigner {
        let keys = self
            .channel_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(channel_keys_id)
            .or_default()
            .clone();
        TidemarkChannelSigner::new(self.connection.clone(), channel_keys_id, keys)
    }

    fn get_destination_script(&self, _channel_keys_id: [u8; 32]) -> Result<ScriptBuf, ()> {
        Ok(self.config.destination_script.clone())
    }

    fn get_shutdown_scriptpubkey(&self) -> Result<ShutdownScript, ()> {
        Ok(self.config.shutdown_script.clone())
    }
}

impl ChangeDestinationSourceSync for TidemarkSigner {
    /// The node's destination script (the signer sweeps only to it).
    fn get_change_destination_script(&self) -> Result<ScriptBuf, ()> {
        Ok(self.config.destination_script.clone())
    }
}

impl ChangeDestinationSource for TidemarkSigner {
    fn get_change_destination_script<'a>(&'a self) -> AsyncResult<'a, ScriptBuf, ()> {
        let script = self.config.destination_script.clone();
        Box::pin(async move { Ok(script) })
    }
}
