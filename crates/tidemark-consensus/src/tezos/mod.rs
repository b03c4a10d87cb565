//! Tezos (Tenderbake): a (level, round) watermark per (chain, key, kind),
//! parsed from the raw bytes the baker asks to sign.
//!
//! - [`operation`]: the parser of magic byte, chain id, level and round.
//! - [`base58`]: the `Net...` form of chain ids, to check the request's
//!   chain against the bytes.
//! - [`policy`]: the rules, [`TezosPolicy`].

pub mod base58;
pub mod operation;
pub mod policy;

#[cfg(test)]
mod tests;

pub use operation::{TezosKind, TezosOperation};
pub use policy::{TezosPolicy, TezosRequest, TezosState, Watermark};
