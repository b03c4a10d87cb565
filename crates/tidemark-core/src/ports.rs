//! The ports: traits the outer crates implement.
//!
//! [`StateStore`] is the durable store of high-water marks and the audit
//! log (SQLite by default, etcd for a fleet). [`KeyBackend`] holds keys and
//! signs (a software keystore, a PKCS#11 token). Both are synchronous and
//! may block: the pipeline calls them from a thread that is allowed to wait
//! for an fsync.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::audit::{AuditEntry, AuditRecord};
use crate::decision::{Digest, SignMessage, Signature};
use crate::ids::{KeyId, ObjectId};
use crate::mark::Mark;

/// An object's durable state as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredState {
    /// Increases by one on every commit; the compare-and-swap fence.
    pub version: u64,
    /// The domain's state, JSON.
    pub state: Vec<u8>,
    /// The mark the state stands for (lets tools show it without the domain).
    pub mark: Mark,
    /// The digest of the payload the stored signatures were made over.
    pub digest: Digest,
    /// The signatures released for this state, returned to an identical
    /// repeat byte for byte.
    pub signatures: Vec<Signature>,
}

/// A compare-and-swap write of one object's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateWrite {
    /// The object.
    pub object: ObjectId,
    /// The version the decision was made against (0: the object had no
    /// state). The write fails with [`StoreError::Conflict`] if the stored
    /// version differs.
    pub expected_version: u64,
    /// The new state; its `version` must be `expected_version + 1`.
    pub new: StoredState,
}

impl StateWrite {
    /// The write that follows `stored` (`None`: the object is new): a
    /// compare-and-swap against its version that stores the next one.
    pub fn after(
        object: &ObjectId,
        stored: Option<&StoredState>,
        state: Vec<u8>,
        mark: Mark,
        digest: Digest,
        signatures: Vec<Signature>,
    ) -> StateWrite {
        let version = stored.map_or(0, |s| s.version);
        StateWrite {
            object: object.clone(),
            expected_version: version,
            new: StoredState {
                version: version + 1,
                state,
                mark,
                digest,
                signatures,
            },
        }
    }
}

/// Why the store could not do what was asked. Every variant means the
/// operation did not take effect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another writer committed first: reload and decide again.
    #[error("version conflict on {object}: expected {expected}, found {found}")]
    Conflict {
        /// The object.
        object: String,
        /// The version the write expected.
        expected: u64,
        /// The version found.
        found: u64,
    },
    /// The disk is full.
    #[error("store is full: {0}")]
    Full(String),
    /// The store's file or a record in it is corrupt.
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    /// Any other I/O failure.
    #[error("store i/o error: {0}")]
    Io(String),
    /// The store is shut down or its writer is gone.
    #[error("store is closed")]
    Closed,
    /// A write was malformed (a bug in the caller).
    #[error("invalid write: {0}")]
    Invalid(String),
}

/// The durable store of states and audit records.
pub trait StateStore: Send + Sync {
    /// The current state of `object`, `None` if it was never written.
    fn load(&self, object: &ObjectId) -> Result<Option<StoredState>, StoreError>;

    /// Writes `write` and `audit` atomically and returns only once both are
    /// durable (fsync'd). On any error nothing was written.
    fn commit(&self, write: StateWrite, audit: AuditEntry) -> Result<(), StoreError>;

    /// Writes every one of `writes` and `audit` atomically: each write is a
    /// compare-and-swap, and if any of them fails none is applied. Returns
    /// only once all are durable. The objects must be distinct
    /// ([`StoreError::Invalid`] otherwise). Domains whose one decision
    /// moves several objects (a wallet's intent and its ledger) use this.
    fn commit_all(&self, writes: Vec<StateWrite>, audit: AuditEntry) -> Result<(), StoreError>;

    /// Appends an audit record for a decision that changed no state
    /// (replay, refusal, denied client). May return before it is durable.
    fn audit(&self, entry: AuditEntry) -> Result<(), StoreError>;

    /// Every object and its state, ordered by object id.
    fn objects(&self) -> Result<Vec<(ObjectId, StoredState)>, StoreError>;

    /// The audit log from sequence number `from` on, at most `limit` records.
    fn audit_records(&self, from: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError>;

    /// Ok if the store can take commits now.
    fn check_health(&self) -> Result<(), StoreError>;
}

/// The signature schemes a key can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Ed25519 (CometBFT, Tezos tz1).
    Ed25519,
    /// secp256k1, usable for ECDSA and BIP340 Schnorr.
    Secp256k1,
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Ed25519 => "ed25519",
            Scheme::Secp256k1 => "secp256k1",
        })
    }
}

/// A public key: 32 bytes for Ed25519, 33 bytes (compressed) for secp256k1.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublicKey {
    /// The scheme.
    pub scheme: Scheme,
    /// The encoded key.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({}:{})", self.scheme, hex::encode(&self.bytes))
    }
}

/// Why a key backend could not sign or answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// No key by that name.
    #[error("unknown key {0}")]
    UnknownKey(String),
    /// The key cannot make that kind of signature.
    #[error("key {key} is {scheme} and cannot sign {wanted}")]
    SchemeMismatch {
        /// The key.
        key: String,
        /// Its scheme.
        scheme: Scheme,
        /// What was asked.
        wanted: &'static str,
    },
    /// The key is not a BIP32 key, so it has no extended public key and no
    /// children to sign with.
    #[error("key {0} is not a BIP32 key")]
    NotExtended(String),
    /// The backend failed (a token unplugged, a driver error).
    #[error("key backend error: {0}")]
    Backend(String),
}

/// A BIP32 extended public key and where it sits under its seed: what a
/// watch-only wallet needs to describe the key in an output descriptor
/// (`[fingerprint/path]xpub`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendedPublicKey {
    /// The compressed public key (33 bytes).
    pub public_key: [u8; 33],
    /// The chain code.
    pub chain_code: [u8; 32],
    /// The fingerprint of the seed's master key.
    pub master_fingerprint: [u8; 4],
    /// The fingerprint of the parent key (zero for the master key), as
    /// BIP32 serializes it.
    pub parent_fingerprint: [u8; 4],
    /// The derivation path from the master key, as BIP32 child numbers
    /// (hardened ones have the top bit set).
    pub path: Vec<u32>,
}

/// Holds keys and signs; never returns private material.
pub trait KeyBackend: Send + Sync {
    /// The public key of `key`.
    fn public_key(&self, key: &KeyId) -> Result<PublicKey, KeyError>;

    /// Signs `message` with `key`.
    fn sign(&self, key: &KeyId, message: &SignMessage) -> Result<Signature, KeyError>;

    /// Every key the backend holds, with its public key, ordered by name.
    fn keys(&self) -> Result<Vec<(KeyId, PublicKey)>, KeyError>;

    /// The BIP32 extended public key of `key`, for backends that derive
    /// children ([`KeyError::NotExtended`] by default).
    fn extended_public_key(&self, key: &KeyId) -> Result<ExtendedPublicKey, KeyError> {
        Err(KeyError::NotExtended(key.to_string()))
    }
}
