//! The crate's error: why a lightning request could not be decided. A
//! policy refusal is not an error: it is
//! [`ChannelOutcome::Refused`](crate::signer::ChannelOutcome::Refused).

use tidemark_core::{IdError, StoreError};

use crate::channel::ChannelError;
use crate::keys::KeysError;

/// A request was malformed or could not be served. Every variant means no
/// state changed and nothing was released.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LightningError {
    /// The request or the channel's keys failed (a malformed request, a
    /// setup whose keys are not this node's).
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// Key derivation or the channel keys counter failed.
    #[error(transparent)]
    Keys(#[from] KeysError),
    /// An identifier failed validation.
    #[error(transparent)]
    Id(#[from] IdError),
    /// The store failed; nothing was committed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored channel state does not decode.
    #[error("stored state of {object} is unreadable: {reason}")]
    CorruptState {
        /// The object.
        object: String,
        /// What failed.
        reason: String,
    },
    /// Other writers kept winning the compare-and-swap on this channel.
    #[error("gave up on {0} after repeated lost compare-and-swap races")]
    Contention(String),
}
