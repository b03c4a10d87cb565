//! Tidemark's on-chain wallet domain.
//!
//! A payment server (or several replicas of one, active-active behind a
//! load balancer) asks Tidemark to sign a PSBT for a **payment intent**:
//! its own payout or withdrawal id. Tidemark signs an intent for at most
//! one transaction, commits each wallet input to at most one live intent,
//! and applies the wallet's spend policy, all durably before a signature
//! leaves. Two replicas paying the same payout with different inputs get
//! one signature and one refusal (`policy-intent-conflict`), never two.
//!
//! # Layout
//!
//! - [`wallet`]: [`Wallet`], a `wpkh` or `tr` descriptor wallet over one
//!   BIP32 account key of the key backend; its descriptors for a
//!   watch-only wallet; recognition of its inputs and change by derivation.
//! - `analysis`: what a PSBT does, without trusting its claims (UTXOs
//!   checked against the spent txid, ownership derived, fee, size bound).
//! - [`policy`]: [`SpendPolicy`] (`policies/bitcoin-wallet.toml`) and the
//!   pure decision.
//! - [`state`]: the intent and ledger states.
//! - [`signer`]: [`WalletSigner`], the pipeline over a
//!   [`StateStore`](tidemark_core::StateStore) and a
//!   [`KeyBackend`](tidemark_core::KeyBackend).
//! - [`tags`]: the refusal tags.
//! - [`fixtures`]: synthetic PSBTs for tests, benchmarks and examples.

mod analysis;
pub mod error;
pub mod fixtures;
pub mod policy;
pub mod signer;
pub mod state;
pub mod tags;
pub mod wallet;

pub use error::BitcoinError;
pub use policy::{Payment, SpendPolicy};
pub use signer::{IntentRecord, Release, SignOutcome, SignRequest, WalletSigner};
pub use state::{AbandonedTx, IntentId, IntentState, IntentStatus, LedgerState};
pub use wallet::{Branch, Wallet, WalletKind};

pub use bitcoin;

#[cfg(test)]
mod tests;
