//! Tidemark's consensus domain: double-sign protection for validators.
//!
//! Three pure [`tidemark_core::Policy`] implementations, one per protocol
//! family. None does I/O; each is a function of (stored mark, request).
//!
//! # Layout
//!
//! - [`cometbft`]: CometBFT votes and proposals with FilePV's exact rules;
//!   the signer builds the canonical sign bytes itself; import of
//!   CometBFT's and tmkms's state files.
//! - [`tezos`]: Tenderbake blocks, preattestations and attestations: the
//!   (level, round) watermark parsed from the operation bytes.
//! - [`height`]: a plain strictly increasing height (optionally with a
//!   round) for any other chain.
//! - [`error`]: [`ConsensusError`], malformed input (never a panic).
//! - [`tags`]: the stable refusal tags.
//!
//! # Invariants
//!
//! - Requests are validated when they are built; a policy only sees
//!   well-formed requests and never panics.
//! - A refusal carries a stable tag from [`tags`], the object and the
//!   current mark; it changes no state.
//! - A replay is answered only when the stored state proves the request
//!   identical to what was signed (same payload, or for CometBFT only a
//!   different timestamp); a mark whose payload is unknown refuses its own
//!   exact position.

pub mod cometbft;
pub mod error;
pub mod height;
mod scheme;
pub mod tags;
pub mod tezos;

#[cfg(test)]
mod proptests;

pub use cometbft::{
    BlockId, COMETBFT_KIND, CometMessage, CometPolicy, CometRequest, CometState, ImportedMark,
    PartSetHeader, Proposal, SignedMsgType, Step, Timestamp, Vote,
};
pub use error::ConsensusError;
pub use height::{HEIGHT_KIND, HeightPolicy, HeightRequest, HeightState};
pub use tezos::{TezosKind, TezosOperation, TezosPolicy, TezosRequest, TezosState, Watermark};
