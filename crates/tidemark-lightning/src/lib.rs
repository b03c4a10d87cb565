//! Tidemark's Lightning domain: a VLS-style channel signer for LDK nodes.
//!
//! Every replica of a Lightning node asks Tidemark to sign; Tidemark keeps
//! each channel's state (commitment numbers, revocations, the parameters
//! the channel was opened with) durably, rebuilds every transaction it
//! signs from that state with LDK's `chan_utils`, and refuses what would
//! lose funds: a second counterparty commitment for a number already
//! signed, a revoked holder commitment, a secret released too early, a
//! sweep to a foreign script.
//!
//! # Layout
//!
//! - `keys`: node and channel keys derived from the seed exactly as LDK's
//!   `KeysManager` derives them, and channel keys ids issued from a
//!   durable counter.
//! - `node`: node-level operations (node id, ECDH, invoices, gossip,
//!   messages, expanded and peer-storage keys).
//! - `channel`: per-channel state, requests and the pure policy decision.
//! - `policy`: `policies/lightning-default.toml`: ranges and which business
//!   rules an operator downgraded to warnings.
//! - `signer`: [`LightningSigner`], the durable pipeline: per-channel
//!   lock, decide, compute with the channel's keys, commit, release.
//! - `tags`: the refusal tags.
//! - `fixtures`: a simulated counterparty and channel producing valid
//!   structured requests, for tests, benchmarks and examples.

pub mod channel;
pub mod error;
pub mod fixtures;
pub mod keys;
pub mod node;
pub mod policy;
pub mod signer;
pub mod tags;

/// The `bitcoin` crate this crate's types use (0.32, fixed by LDK).
pub use bitcoin;
/// The `lightning` crate (LDK, exactly 0.2.7) this crate builds on.
pub use lightning;

pub use channel::{ChannelError, ChannelRequest, ChannelState, Verdict, decide, execute};
pub use error::LightningError;
pub use keys::{ChannelKeysIdIssuer, NodeKeys, RemoteKeyDerivation};
pub use policy::LightningPolicy;
pub use signer::{ChannelOutcome, LightningSigner};
