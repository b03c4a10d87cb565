//! The pure core of Tidemark.
//!
//! Tidemark signs a request only if a policy accepts it against the durable
//! high-water mark of the object the request is about. This crate holds the
//! vocabulary every other crate shares and does no I/O: it opens no file,
//! no socket and starts no task.
//!
//! # Layout
//!
//! - [`ids`]: validated identifiers: [`KeyId`], [`ChainId`], [`ObjectId`].
//! - [`mark`]: [`Mark`], the high-water mark as a list of named numbers.
//! - [`decision`]: what a policy answers: [`Decision`] (sign, replay or
//!   refuse), [`Refusal`] with its stable [`Tag`], and [`SignInput`].
//! - [`policy`]: the [`Policy`] trait every domain implements: a pure
//!   function of (current state, request).
//! - [`ports`]: the traits the outer crates implement: [`StateStore`]
//!   (durable state and audit) and [`KeyBackend`] (signing keys).
//! - [`audit`]: the audit record and its hash chain.
//! - [`serde_hex`]: bytes as hex in JSON (states, signatures, digests).
//!
//! # Invariants this crate states (and the pipeline enforces)
//!
//! - A [`Decision::Sign`] carries the complete new state; a signature is
//!   released only after a [`StateStore::commit`] of that state returned.
//! - A [`Refusal`] always carries a [`Tag`] starting with `policy-` or
//!   `hwm-`, the object, and the current mark.

pub mod audit;
pub mod decision;
pub mod ids;
pub mod mark;
pub mod policy;
pub mod ports;
pub mod serde_hex;

pub use audit::{AuditEntry, AuditOutcome, AuditRecord, ChainError, GENESIS_HASH, verify_chain};
pub use decision::{ChildPath, Decision, Digest, Refusal, SignInput, SignMessage, Signature, Tag};
pub use ids::{ChainId, ClientId, Domain, IdError, KeyId, ObjectId};
pub use mark::Mark;
pub use policy::Policy;
pub use ports::{
    ExtendedPublicKey, KeyBackend, KeyError, PublicKey, Scheme, StateStore, StateWrite, StoreError,
    StoredState,
};
