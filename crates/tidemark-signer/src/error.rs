//! The pipeline's error type.

use tidemark_core::{IdError, KeyError, StoreError};

/// Why the pipeline could not decide. Every variant means no state changed
/// and no signature was released. A policy refusal is not an error: it is
/// [`Outcome::Refused`](crate::Outcome::Refused).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The request names an invalid object.
    #[error("invalid request: {0}")]
    InvalidRequest(#[from] IdError),
    /// The key backend failed or does not know the key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The store failed; nothing was committed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored state of an object cannot be read.
    #[error("stored state of {object} is unreadable: {reason}")]
    CorruptState {
        /// The object.
        object: String,
        /// What failed.
        reason: String,
    },
    /// Other writers kept winning the compare-and-swap on this object.
    #[error("gave up on {object} after {attempts} lost compare-and-swap races")]
    Contention {
        /// The object.
        object: String,
        /// How many times the decision was retried.
        attempts: u32,
    },
    /// The policy asked for something the pipeline cannot do (a bug).
    #[error("policy error: {0}")]
    Policy(String),
}
