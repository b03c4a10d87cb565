//! Channel keys ids issued from a durable counter.
//!
//! LDK's `KeysManager::generate_channel_keys_id` counts channels in memory
//! from zero on every start and relies on the starting time to keep ids
//! unique. With several replicas asking one signer, an in-memory counter
//! (in a replica or in a signer process) would hand out the same id twice,
//! and two channels would share keys. Here the counter is an object in the
//! [`StateStore`]: each id is the value of a compare-and-swap increment
//! that was durable before the id is returned, so no id is issued twice
//! across replicas, restarts or signer fail-overs.

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bitcoin::hashes::{Hash, sha256};
use serde::{Deserialize, Serialize};
use tidemark_core::{
    AuditEntry, AuditOutcome, ChainId, ClientId, Digest, Domain, KeyId, Mark, ObjectId, StateStore,
    StateWrite, StoreError, StoredState,
};

use super::KeysError;

/// The object kind of a node's channel keys counter:
/// `lightning/<chain>/<node key>/keys-counter`.
pub const KEYS_COUNTER_KIND: &str = "keys-counter";

/// Bytes 8..16 of every id Tidemark issues (ASCII `tidemark`).
///
/// `KeysManager` puts its starting time in seconds there; read as a
/// big-endian `u64` this marker is about 8.4 * 10^18 seconds, a time no
/// clock gives, so a Tidemark id never equals one the node issued while it
/// ran on LDK's `KeysManager`, and channels opened before a move keep keys
/// no later channel can get.
pub const TIDEMARK_ID_MARKER: [u8; 8] = *b"tidemark";

/// How many conflicting commits one issue tolerates before giving up.
const MAX_ATTEMPTS: u32 = 1000;

/// The channel keys id of counter value `counter` for `user_channel_id`.
///
/// The layout follows `KeysManager::generate_channel_keys_id`:
///
/// | bytes  | `KeysManager`                 | Tidemark                                   |
/// |--------|-------------------------------|--------------------------------------------|
/// | 0..4   | in-memory child index (BE)    | low 32 bits of the durable counter (BE)    |
/// | 4..8   | starting time, nanoseconds    | high 32 bits of the counter (BE)           |
/// | 8..16  | starting time, seconds (BE)   | [`TIDEMARK_ID_MARKER`]                     |
/// | 16..32 | `user_channel_id` (BE)        | `user_channel_id` (BE)                     |
///
/// Bytes 0..8 carry the whole 64-bit counter, so ids stay distinct past
/// 2^32 channels (where `KeysManager` asserts). `derive_channel_keys`
/// hashes all 32 bytes with the seed, so distinct ids give independent
/// keys; it also uses the low 32 bits of bytes 0..8 (here the counter's
/// high half) as a BIP 32 index, which needs no uniqueness.
pub fn channel_keys_id(counter: u64, user_channel_id: u128) -> [u8; 32] {
    let counter = counter.to_be_bytes();
    let mut id = [0u8; 32];
    id[0..4].copy_from_slice(&counter[4..8]);
    id[4..8].copy_from_slice(&counter[0..4]);
    id[8..16].copy_from_slice(&TIDEMARK_ID_MARKER);
    id[16..32].copy_from_slice(&user_channel_id.to_be_bytes());
    id
}

/// The counter value and `user_channel_id` of an id [`channel_keys_id`]
/// made; `None` for any other id (one `KeysManager` issued).
pub fn parse_channel_keys_id(id: &[u8; 32]) -> Option<(u64, u128)> {
    if id[8..16] != TIDEMARK_ID_MARKER {
        return None;
    }
    let mut counter = [0u8; 8];
    counter[4..8].copy_from_slice(&id[0..4]);
    counter[0..4].copy_from_slice(&id[4..8]);
    let mut user = [0u8; 16];
    user.copy_from_slice(&id[16..32]);
    Some((u64::from_be_bytes(counter), u128::from_be_bytes(user)))
}

/// The stored counter: the next value to issue.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CounterState {
    next: u64,
}

/// Issues channel keys ids for one node from a durable counter in the
/// state store (the `SignerProvider::generate_channel_keys_id` of a
/// Tidemark-backed node).
pub struct ChannelKeysIdIssuer {
    store: Arc<dyn StateStore>,
    object: ObjectId,
}

impl fmt::Debug for ChannelKeysIdIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelKeysIdIssuer")
            .field("object", &self.object)
            .finish_non_exhaustive()
    }
}

impl ChannelKeysIdIssuer {
    /// The issuer of the node whose key is `node_key` on `chain`; its
    /// counter is `lightning/<chain>/<node_key>/keys-counter`.
    pub fn new(
        store: Arc<dyn StateStore>,
        chain: ChainId,
        node_key: KeyId,
    ) -> Result<Self, KeysError> {
        let object = ObjectId::new(Domain::Lightning, chain, node_key, KEYS_COUNTER_KIND)?;
        Ok(ChannelKeysIdIssuer { store, object })
    }

    /// The counter's object id.
    pub fn object(&self) -> &ObjectId {
        &self.object
    }

    /// The counter value the next [`ChannelKeysIdIssuer::issue`] will use
    /// (0 for a node that never issued one), as stored now.
    pub fn next_counter(&self) -> Result<u64, KeysError> {
        let stored = self.store.load(&self.object)?;
        self.decode(stored.as_ref())
    }

    /// Issues a new channel keys id for `user_channel_id` on behalf of
    /// `client`: increments the counter with a compare-and-swap commit
    /// (retrying when another writer won) and returns the id only once the
    /// increment is durable. On error no id was issued, and the counter
    /// value may or may not have been spent; it is never reused either way.
    ///
    /// The audit log records the issue as `signed` (a new value left the
    /// signer) with the new counter as the mark and the SHA-256 of the id
    /// as the digest.
    pub fn issue(&self, client: &ClientId, user_channel_id: u128) -> Result<[u8; 32], KeysError> {
        for attempt in 1..=MAX_ATTEMPTS {
            let stored = self.store.load(&self.object)?;
            let version = stored.as_ref().map_or(0, |s| s.version);
            let counter = self.decode(stored.as_ref())?;
            let next = counter
                .checked_add(1)
                .ok_or_else(|| KeysError::CounterExhausted {
                    object: self.object.to_string(),
                })?;
            let new_version = version
                .checked_add(1)
                .ok_or_else(|| self.corrupt("the object version is at its maximum"))?;
            let id = channel_keys_id(counter, user_channel_id);
            let state = serde_json::to_vec(&CounterState { next })
                .map_err(|e| self.corrupt(&e.to_string()))?;
            let mark = Mark::none().with("next", next);
            let digest = Digest(sha256::Hash::hash(&id).to_byte_array());
            let write = StateWrite {
                object: self.object.clone(),
                expected_version: version,
                new: StoredState {
                    version: new_version,
                    state,
                    mark: mark.clone(),
                    digest,
                    signatures: Vec::new(),
                },
            };
            let audit = AuditEntry {
                time_ms: now_ms(),
                client: client.to_string(),
                object: self.object.to_string(),
                outcome: AuditOutcome::Signed,
                tag: None,
                mark,
                digest: Some(digest),
            };
            match self.store.commit(write, audit) {
                Ok(()) => {
                    tracing::info!(
                        client = %client,
                        object = %self.object,
                        counter,
                        outcome = "issued",
                        "channel keys id issued"
                    );
                    return Ok(id);
                }
                Err(StoreError::Conflict { .. }) => {
                    tracing::debug!(
                        client = %client,
                        object = %self.object,
                        attempt,
                        "channel keys counter moved; retrying"
                    );
                }
                Err(e) => {
                    tracing::warn!(
                        client = %client,
                        object = %self.object,
                        outcome = "failed",
                        error = %e,
                        "channel keys id not issued"
                    );
                    return Err(e.into());
                }
            }
        }
        Err(KeysError::Contended {
            object: self.object.to_string(),
            attempts: MAX_ATTEMPTS,
        })
    }

    fn decode(&self, stored: Option<&StoredState>) -> Result<u64, KeysError> {
        match stored {
            None => Ok(0),
            Some(s) => serde_json::from_slice::<CounterState>(&s.state)
                .map(|c| c.next)
                .map_err(|e| self.corrupt(&e.to_string())),
        }
    }

    fn corrupt(&self, reason: &str) -> KeysError {
        KeysError::CorruptCounter {
            object: self.object.to_string(),
            reason: reason.to_owned(),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
