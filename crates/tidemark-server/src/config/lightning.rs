//! `[lightning]`: the Lightning node the signer serves.
//!
//! ```toml
//! [lightning]
//! node = "ln-node"                  # the node key: its objects' key and the grant
//! network = "regtest"               # bitcoin, testnet, testnet4, signet, regtest
//! policy = "policies/lightning-default.toml"
//! remote_key_derivation = "v2"      # "v1" for a node that ran LDK without it
//! ```
//!
//! The node's keys derive from the keystore's BIP32 seed exactly as LDK's
//! `KeysManager` derives them from its 32-byte seed, so the seed must be
//! exactly 32 bytes ([`LightningConfig::node_keys`]). One keystore is one
//! seed, so one signer serves at most one Lightning node: two nodes on one
//! seed would share their node id and, worse, derive the same keys for
//! channels opened with equal channel keys ids.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tidemark_core::{ChainId, KeyId};
use tidemark_lightning::bitcoin::Network;
use tidemark_lightning::{LightningPolicy, NodeKeys, RemoteKeyDerivation};

use super::ConfigError;

/// The length LDK's `KeysManager` takes its seed in.
pub const LIGHTNING_SEED_LEN: usize = 32;

/// `[lightning]`, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LightningSection {
    /// The node key's name: the key of the node's objects
    /// (`lightning/<network>/<node>/...`) and the key clients are granted
    /// with the domain `lightning`. It names no key in the keystore: the
    /// node's keys derive from the keystore's seed.
    pub node: String,
    /// `bitcoin`, `testnet`, `testnet4`, `signet` or `regtest`.
    pub network: String,
    /// The channel policy file (`policies/lightning-default.toml`).
    pub policy: PathBuf,
    /// `v2` or `v1`: LDK's `v2_remote_key_derivation` flag. A node moving
    /// from LDK keeps the value it ran with; a new node takes `v2`.
    pub remote_key_derivation: RemoteKeyDerivation,
}

/// The Lightning node, its section validated and its policy loaded.
#[derive(Debug, Clone)]
pub struct LightningConfig {
    /// The node key's name.
    pub node: KeyId,
    /// The network.
    pub network: Network,
    /// The chain id of the node's objects: the network's name.
    pub chain: ChainId,
    /// The channel policy.
    pub policy: LightningPolicy,
    /// The remote-key derivation.
    pub remote_key_derivation: RemoteKeyDerivation,
    file: PathBuf,
}

impl LightningConfig {
    /// The node's keys from the keystore's BIP32 `seed`, which must be
    /// exactly [`LIGHTNING_SEED_LEN`] bytes; anything else is an error
    /// that says why, naming the config file.
    pub fn node_keys(&self, seed: &[u8]) -> Result<NodeKeys, ConfigError> {
        let error = |message: String| ConfigError::Field {
            path: self.file.clone(),
            field: "lightning".into(),
            message,
        };
        let seed: &[u8; LIGHTNING_SEED_LEN] = seed.try_into().map_err(|_| {
            error(format!(
                "the keystore's BIP32 seed is {} bytes, but a Lightning node's seed must be exactly {LIGHTNING_SEED_LEN} bytes: \
                 LDK's KeysManager derives the node id and channel keys from a 32-byte seed, and Tidemark derives the same keys \
                 so that a node can move between them; use a keystore created by `tidemark init` or restored from the node's \
                 32-byte seed, or remove [lightning]",
                seed.len()
            ))
        })?;
        NodeKeys::new(seed, self.remote_key_derivation)
            .map_err(|e| error(format!("cannot derive the node's keys: {e}")))
    }
}

/// The validated node key and network of the section, or the field at
/// fault.
pub(super) fn ids(s: &LightningSection) -> Result<(KeyId, Network, ChainId), (String, String)> {
    let node = KeyId::new(s.node.clone()).map_err(|e| ("lightning.node".into(), e.to_string()))?;
    let network = s.network.parse::<Network>().map_err(|_| {
        (
            "lightning.network".to_owned(),
            format!(
                "{:?} is not one of bitcoin, testnet, testnet4, signet, regtest",
                s.network
            ),
        )
    })?;
    let chain = ChainId::new(network.to_string())
        .map_err(|e| ("lightning.network".into(), e.to_string()))?;
    Ok((node, network, chain))
}

/// Resolves the section's policy path against `base`.
pub(super) fn resolve(s: &mut LightningSection, base: &Path) {
    if s.policy.is_relative() {
        s.policy = base.join(&s.policy);
    }
}

/// The section validated and its policy read (`file`: the config file,
/// for errors).
pub(super) fn load(s: &LightningSection, file: &Path) -> Result<LightningConfig, ConfigError> {
    let (node, network, chain) = ids(s).map_err(|(field, message)| ConfigError::Field {
        path: file.to_owned(),
        field,
        message,
    })?;
    let policy_error = |message: String| ConfigError::Field {
        path: file.to_owned(),
        field: "lightning.policy".into(),
        message: format!("{}: {message}", s.policy.display()),
    };
    let text = std::fs::read_to_string(&s.policy)
        .map_err(|e| policy_error(format!("cannot read: {e}")))?;
    let policy =
        LightningPolicy::from_toml(&text, network).map_err(|e| policy_error(e.to_string()))?;
    Ok(LightningConfig {
        node,
        network,
        chain,
        policy,
        remote_key_derivation: s.remote_key_derivation,
        file: file.to_owned(),
    })
}
