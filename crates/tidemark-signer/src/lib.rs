//! The decision pipeline: lock the object, load its state, let the policy
//! decide, sign in memory, commit durably, release.
//!
//! This is Tidemark as a library: a wallet, a test or the gRPC server calls
//! [`Signer::sign`] with a [`Policy`](tidemark_core::Policy) and a request
//! and gets an [`Outcome`]. No server, runtime or network is needed.
//!
//! # Layout
//!
//! - `pipeline`: [`Signer`], the one place where the invariants are
//!   enforced, and [`Outcome`].
//! - [`locks`]: per-object locks (I2 within one process).
//! - `error`: [`SignError`].
//!
//! # Invariants
//!
//! - **I1 persist before release**: signatures are computed in memory and
//!   returned only after [`StateStore::commit`](tidemark_core::StateStore::commit)
//!   returned `Ok`; any commit error returns an error and no signature.
//! - **I2 one decision per object**: requests for one object hold its lock
//!   from load to commit; across processes the store's compare-and-swap on
//!   the state version fences, and a lost race is decided again against the
//!   new state.
//! - **I3 idempotent replay**: a replay returns the stored signatures.
//! - **I4 fail closed**: unknown key, unreadable state, store failure: an
//!   error, no state change, no signature.
//! - **I6 accounted for**: each sign, replay and refusal is audited with the
//!   client identity and reported to the [`DecisionObserver`].

mod error;
pub mod locks;
mod pipeline;
mod report;

pub use error::SignError;
pub use pipeline::{DecisionEvent, DecisionObserver, Outcome, Signer};
pub use report::{audit_best_effort, observe};

#[cfg(test)]
mod doubles;
#[cfg(test)]
mod tests;
