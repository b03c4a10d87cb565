//! Node and channel keys, derived from the seed exactly as LDK's
//! `KeysManager` derives them.
//!
//! An LDK node that moves its 32-byte seed into Tidemark keeps its node id,
//! its inbound-payment, peer-storage and receive-auth keys, its destination
//! and shutdown scripts and the keys of every open channel: [`NodeKeys`]
//! wraps a [`KeysManager`] built from that seed, so there is one derivation
//! and it is LDK's. `tests.rs` checks every derived value against a
//! separately built `KeysManager`.
//!
//! # Invariants
//!
//! - **The starting time changes no key.** `KeysManager::new` takes a
//!   `starting_time_secs/nanos` pair. In lightning 0.2.7 it feeds exactly
//!   two things: the seed of the ChaCha20 stream behind
//!   `get_secure_random_bytes` (SHA-256 of secs, nanos, seed and a tag) and
//!   bytes 4..16 of the ids `generate_channel_keys_id` makes. The node
//!   secret, the expanded (inbound payment) key, the peer storage key, the
//!   receive auth key, the destination script, the shutdown key and
//!   `derive_channel_keys` read only the seed and the channel keys id (the
//!   per-channel signer's entropy stream, used for signature nonces, is
//!   again random). Tidemark never calls `generate_channel_keys_id`: ids
//!   come from [`ChannelKeysIdIssuer`], a durable counter, so the starting
//!   pair only has to be unique, and [`NodeKeys::new`] draws it from the
//!   operating system's random source (96 bits).
//! - **Channel keys ids never repeat** across restarts, replicas or a move
//!   from LDK: see [`channel_keys_id`] for the layout.
//! - **Deterministic derivation panics are unreachable.** `KeysManager`
//!   and rust-bitcoin's BIP 32 `expect` that HMAC-SHA512 and SHA-256
//!   outputs are valid secp256k1 scalars; each fails with probability about
//!   2^-127, and no choice of seed or channel keys id makes it likelier
//!   short of breaking those hashes. Inputs that *can* be bad are checked
//!   here instead: a commitment index past 2^48 - 1 (which LDK would
//!   silently alias to a lower one), sweep amounts, ECDH tweaks.
//!
//! # Secrets
//!
//! [`NodeKeys`] is neither `Clone` nor `Serialize`, and its `Debug` shows
//! only the node id. Zeroization is limited: the seed and every derived
//! secret live inside LDK's `KeysManager` and `InMemorySigner`, which do
//! not wipe memory on drop (`SecretKey` is `Copy`, `InMemorySigner` is
//! `Clone`). Keeping the process's memory unreadable (no core dumps, no
//! swap, no ptrace) is the server's job; the caller should hold the seed it
//! passes in a `Zeroizing` buffer.

mod id;

#[cfg(test)]
mod tests;

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use bitcoin::bip32::{ChildNumber, Xpriv};
use bitcoin::secp256k1::{All, PublicKey, Secp256k1, SecretKey};
use bitcoin::{Script, ScriptBuf};
use lightning::ln::chan_utils::{self, ChannelPublicKeys};
use lightning::ln::script::ShutdownScript;
use lightning::sign::{
    ChannelSigner, InMemorySigner, KeysManager, NodeSigner, Recipient, SignerProvider,
};
use tidemark_core::StoreError;
use zeroize::Zeroizing;

pub use id::{
    ChannelKeysIdIssuer, KEYS_COUNTER_KIND, TIDEMARK_ID_MARKER, channel_keys_id,
    parse_channel_keys_id,
};

/// The highest per-commitment index BOLT 3 defines (2^48 - 1): LDK's first
/// commitment has this index and each later one the next lower.
pub const MAX_COMMITMENT_INDEX: u64 = (1 << 48) - 1;

/// Which key receives the node's balance when the counterparty force-closes
/// a new channel: LDK's `v2_remote_key_derivation` flag of
/// `KeysManager::new`.
///
/// It changes the `payment_point` of channels opened (or spliced) from now
/// on, nothing else. A node moving from LDK must keep the value it ran with
/// so that Tidemark reports the same basepoints for its channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RemoteKeyDerivation {
    /// The per-channel payment key (`v2_remote_key_derivation = false`).
    V1,
    /// One of `STATIC_PAYMENT_KEY_COUNT` static keys, recoverable from the
    /// seed alone (`v2_remote_key_derivation = true`).
    V2,
}

impl RemoteKeyDerivation {
    fn is_v2(self) -> bool {
        matches!(self, RemoteKeyDerivation::V2)
    }
}

/// Why a key could not be derived or a channel keys id not issued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeysError {
    /// LDK returned an error where lightning 0.2.7 never does (a
    /// `KeysManager` getter that is infallible in this version).
    #[error("ldk's KeysManager unexpectedly failed to give {what}")]
    Unexpected {
        /// What was asked.
        what: &'static str,
    },
    /// A per-commitment index beyond BOLT 3's 48 bits. LDK would ignore the
    /// high bits and return the secret of a different index.
    #[error("commitment index {index} is out of range (at most 2^48 - 1)")]
    CommitmentIndexOutOfRange {
        /// The index asked for.
        index: u64,
    },
    /// A per-commitment secret is not a valid secp256k1 secret key
    /// (probability about 2^-128).
    #[error("the per-commitment secret of index {index} is not a valid secret key")]
    InvalidCommitmentSecret {
        /// The index.
        index: u64,
    },
    /// The channel keys counter reached `u64::MAX`.
    #[error("the channel keys counter {object} is exhausted")]
    CounterExhausted {
        /// The counter's object id.
        object: String,
    },
    /// The stored counter does not decode.
    #[error("the channel keys counter {object} is corrupt: {reason}")]
    CorruptCounter {
        /// The counter's object id.
        object: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Other writers kept winning the compare-and-swap.
    #[error("gave up issuing a channel keys id after {attempts} conflicting commits on {object}")]
    Contended {
        /// The counter's object id.
        object: String,
        /// How many commits conflicted.
        attempts: u32,
    },
    /// The counter's object id is invalid.
    #[error("invalid channel keys counter id: {0}")]
    Id(#[from] tidemark_core::IdError),
    /// The state store failed; nothing was issued.
    #[error("the state store failed; no channel keys id was issued")]
    Store(#[from] StoreError),
}

/// Everything Tidemark derives for one Lightning node from its 32-byte
/// seed, identical to what LDK's `KeysManager` derives from it.
///
/// `NodeKeys` is `Send + Sync`; share it by reference or `Arc`. The
/// node-level operations (ECDH, invoice, gossip and message signing,
/// sweeps) are in [`crate::node`].
pub struct NodeKeys {
    manager: KeysManager,
    secp: Secp256k1<All>,
    derivation: RemoteKeyDerivation,
    node_id: PublicKey,
    destination_script: ScriptBuf,
    shutdown_script: ShutdownScript,
    shutdown_script_pubkey: ScriptBuf,
    shutdown_pubkey: PublicKey,
    inbound_payment_key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for NodeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeKeys")
            .field("node_id", &format_args!("{}", self.node_id))
            .field("derivation", &self.derivation)
            .finish_non_exhaustive()
    }
}

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<NodeKeys>();
};

impl NodeKeys {
    /// Derives the node's keys from `seed`, with a fresh entropy stream
    /// seeded from 96 bits of operating-system randomness (the "starting
    /// time" `KeysManager` asks for; see the module docs).
    pub fn new(seed: &[u8; 32], derivation: RemoteKeyDerivation) -> Result<Self, KeysError> {
        use bitcoin::secp256k1::rand::{Rng, thread_rng};
        let mut rng = thread_rng();
        // The clock is mixed in so that even a broken RNG gives distinct
        // streams across restarts.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let start_secs = rng.r#gen::<u64>() ^ now;
        let start_nanos = rng.r#gen::<u32>();
        Self::with_entropy_start(seed, derivation, start_secs, start_nanos)
    }

    /// [`NodeKeys::new`] with a chosen entropy start. Keys do not depend on
    /// it; [`NodeKeys::secure_random_bytes`] and the nonces of channel
    /// signatures do, so a pair must never be used twice with one seed.
    /// For tests and reproducible runs.
    pub fn with_entropy_start(
        seed: &[u8; 32],
        derivation: RemoteKeyDerivation,
        start_secs: u64,
        start_nanos: u32,
    ) -> Result<Self, KeysError> {
        let manager = KeysManager::new(seed, start_secs, start_nanos, derivation.is_v2());
        let node_id = manager
            .get_node_id(Recipient::Node)
            .map_err(|()| KeysError::Unexpected { what: "node id" })?;
        // KeysManager ignores the channel keys id here: one destination
        // script per node.
        let destination_script =
            manager
                .get_destination_script([0; 32])
                .map_err(|()| KeysError::Unexpected {
                    what: "destination script",
                })?;
        let shutdown_script =
            manager
                .get_shutdown_scriptpubkey()
                .map_err(|()| KeysError::Unexpected {
                    what: "shutdown script",
                })?;
        let shutdown_pubkey = *shutdown_script
            .as_legacy_pubkey()
            .ok_or(KeysError::Unexpected {
                what: "shutdown public key",
            })?;
        let shutdown_script_pubkey = shutdown_script.clone().into_inner();
        let inbound_payment_key = inbound_payment_key_material(seed)?;
        Ok(NodeKeys {
            manager,
            secp: Secp256k1::new(),
            derivation,
            node_id,
            destination_script,
            shutdown_script,
            shutdown_script_pubkey,
            shutdown_pubkey,
            inbound_payment_key,
        })
    }

    /// The node id: the public key of the node secret (`m/0'`).
    pub fn node_id(&self) -> PublicKey {
        self.node_id
    }

    /// The remote-key derivation this node was built with.
    pub fn remote_key_derivation(&self) -> RemoteKeyDerivation {
        self.derivation
    }

    /// The signer of the channel with `channel_keys_id`: LDK's
    /// `KeysManager::derive_channel_keys`, so the funding key, basepoints
    /// and commitment seed are the ones an LDK node with this seed uses.
    ///
    /// The returned signer holds the channel's secrets and is `Clone`; do
    /// not keep more copies than needed.
    pub fn channel_signer(&self, channel_keys_id: [u8; 32]) -> InMemorySigner {
        self.manager.derive_channel_keys(&channel_keys_id)
    }

    /// The public keys of the channel with `channel_keys_id`, as
    /// `ChannelSigner::pubkeys` reports them.
    pub fn channel_public_keys(&self, channel_keys_id: [u8; 32]) -> ChannelPublicKeys {
        self.channel_signer(channel_keys_id).pubkeys(&self.secp)
    }

    /// The script the node's claimable balances are swept to (P2WPKH of
    /// `m/1'`). `KeysManager` uses one for every channel.
    pub fn destination_script(&self) -> &Script {
        &self.destination_script
    }

    /// The key of the node's cooperative-close output (`m/2'`).
    pub fn shutdown_pubkey(&self) -> PublicKey {
        self.shutdown_pubkey
    }

    /// The node's shutdown script (P2WPKH of [`NodeKeys::shutdown_pubkey`]),
    /// as `SignerProvider::get_shutdown_scriptpubkey` returns it.
    pub fn shutdown_script(&self) -> ShutdownScript {
        self.shutdown_script.clone()
    }

    /// True if `script` is one the seed alone can spend: the destination
    /// or the shutdown script.
    pub fn is_own_script(&self, script: &Script) -> bool {
        script == self.destination_script.as_script()
            || script == self.shutdown_script_pubkey.as_script()
    }

    pub(crate) fn manager(&self) -> &KeysManager {
        &self.manager
    }

    pub(crate) fn secp(&self) -> &Secp256k1<All> {
        &self.secp
    }

    pub(crate) fn inbound_payment_key(&self) -> &Zeroizing<[u8; 32]> {
        &self.inbound_payment_key
    }
}

/// The 32 bytes `KeysManager` expands into its `ExpandedKey`: the secret
/// key at `m/5'` of the seed (LDK keeps only the expansion, which cannot
/// be read back).
fn inbound_payment_key_material(seed: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, KeysError> {
    let secp = Secp256k1::signing_only();
    let unexpected = |_| KeysError::Unexpected {
        what: "inbound payment key",
    };
    // As in `KeysManager::new`: the network changes no private key.
    let master = Xpriv::new_master(bitcoin::Network::Testnet, seed).map_err(unexpected)?;
    let key = master
        .derive_priv(&secp, &[ChildNumber::Hardened { index: 5 }])
        .map_err(unexpected)?;
    Ok(Zeroizing::new(key.private_key.secret_bytes()))
}

/// The holder's per-commitment secret of `index` (BOLT 3 `I`; LDK's
/// commitment number), from the channel's commitment seed.
///
/// Unlike `chan_utils::build_commitment_secret` this refuses an index past
/// [`MAX_COMMITMENT_INDEX`] instead of ignoring its high bits.
pub fn per_commitment_secret(signer: &InMemorySigner, index: u64) -> Result<SecretKey, KeysError> {
    if index > MAX_COMMITMENT_INDEX {
        return Err(KeysError::CommitmentIndexOutOfRange { index });
    }
    let bytes = chan_utils::build_commitment_secret(&signer.commitment_seed, index);
    SecretKey::from_slice(&bytes).map_err(|_| KeysError::InvalidCommitmentSecret { index })
}

/// The holder's per-commitment point of `index`: the public key of
/// [`per_commitment_secret`].
pub fn per_commitment_point(
    signer: &InMemorySigner,
    index: u64,
    secp: &Secp256k1<All>,
) -> Result<PublicKey, KeysError> {
    per_commitment_secret(signer, index).map(|secret| PublicKey::from_secret_key(secp, &secret))
}
