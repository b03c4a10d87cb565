//! LDK's signer traits over the Tidemark signer: every replica of an LDK
//! node signs through Tidemark, which keeps each channel's state and
//! refuses what would lose funds (two counterparty commitments for one
//! number, a revoked holder commitment).
//!
//! ```text
//! LDK ChannelManager / ChainMonitor
//!   │ SignerProvider, NodeSigner, EntropySource, OutputSpender
//!   ▼
//! TidemarkSigner ──derive_channel_signer──> TidemarkChannelSigner
//!   │ BlockingClient (own tokio runtime thread, deadline per call)
//!   ▼ gRPC over mutual TLS
//! tidemark serve (tidemark.v1.Lightning)
//! ```
//!
//! # Async signing
//!
//! When the signer is unreachable or busy (transport error, UNAVAILABLE,
//! RESOURCE_EXHAUSTED, deadline), the calls LDK may retry return `Err(())`
//! and mark the channel blocked; a watcher thread probes the signer and,
//! when it answers, runs the callbacks registered with
//! [`TidemarkSigner::on_unblocked`] (wire them to
//! `ChannelManager::signer_unblocked(None)` and
//! `ChainMonitor::signer_unblocked(None)`). Validations never fail for a
//! transient reason (they retry up to [`AdapterConfig::validation_patience`]).
//! A policy refusal is logged with its tag, counted in
//! [`TidemarkSigner::refusals`] and returned once as `Err(())`.
//!
//! # Inbound channels
//!
//! LDK validates an inbound channel's first holder commitment (after
//! checking the counterparty's signature itself) before any call carries
//! the channel's parameters, so the signer cannot know the channel yet.
//! The adapter answers that one validation `Ok` and sends it right after
//! the setup, before the first signature of the channel leaves (the
//! `funding_signed`); if the signer refuses it, that signature fails and
//! the channel never opens. Until the signer has validated it, it signs no
//! holder commitment of the channel and releases no holder secret.
//!
//! # Limits
//!
//! - A deferred first validation lives in the process: if the node dies
//!   between accepting an inbound channel and sending `funding_signed`,
//!   the channel does not open (the counterparty never got a signature).
//! - Splicing, anchor channels' fee bumping through a wallet (LDK's
//!   `BumpTransactionEvent`; the anchor input itself is signed) and
//!   phantom nodes are not supported.
//!
//! # Layout
//!
//! - `node`: [`TidemarkSigner`], [`AdapterConfig`], [`AdapterError`].
//! - `channel`: [`TidemarkChannelSigner`].
//! - `connection`: call classification, blocked channels, the watcher,
//!   [`Refusals`].
//! - `convert`: LDK's arguments to structured channel requests.
//! - [`migrate`]: a `KeysManager` node's open channels, read from its
//!   monitors and imported into the signer.

mod channel;
mod connection;
mod convert;
pub mod migrate;
mod node;
#[cfg(feature = "testing")]
pub mod testing;

pub use channel::TidemarkChannelSigner;
pub use connection::{Backoff, Refusals, UnblockedCallback};
pub use node::{AdapterConfig, AdapterError, TidemarkSigner};
