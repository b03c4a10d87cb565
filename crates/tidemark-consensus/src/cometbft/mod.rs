//! CometBFT: FilePV double-sign protection with signer-built sign bytes.
//!
//! A replica sends a structured [`Vote`] or [`Proposal`] and the chain id;
//! the signer validates it ([`CometRequest::new`]), builds the canonical
//! sign bytes itself ([`canonical`]) and decides against the (chain, key)
//! mark with FilePV's rules ([`CometPolicy`]). A replica never hands the
//! signer opaque bytes plus a claimed height.
//!
//! - [`types`]: the messages and their `ValidateBasic`.
//! - [`canonical`]: canonical sign bytes (and their decoder).
//! - `proto`: the tiny protobuf writer and reader behind it.
//! - [`state`]: the stored mark, [`CometState`].
//! - [`policy`]: the rules.
//! - [`import`]: marks from CometBFT's and tmkms's state files.

pub mod canonical;
pub mod import;
pub mod policy;
mod proto;
pub mod state;
pub mod types;

#[cfg(test)]
mod crosscheck_tests;
#[cfg(test)]
mod tests;

pub use import::{ImportedMark, parse_priv_validator_state, parse_tmkms_state, raise};
pub use policy::{COMETBFT_KIND, CometPolicy, CometRequest};
pub use state::{CometState, Step};
pub use types::{BlockId, CometMessage, PartSetHeader, Proposal, SignedMsgType, Timestamp, Vote};
