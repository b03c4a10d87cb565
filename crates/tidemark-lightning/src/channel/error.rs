//! Why a channel request could not be decided or executed. A policy
//! refusal is not an error: it is a [`Verdict::Refuse`](crate::channel::Verdict).

/// A malformed request, a configuration error, or a signer that failed.
/// Every variant means nothing was signed and no state changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// The request is malformed: it names what is wrong.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A policy file error; names the field (or the tag).
    #[error("policy config: {0}")]
    Config(String),
    /// The keys derived from the channel keys id are not the holder keys
    /// of the setup.
    #[error("the holder keys of the setup are not the keys of channel keys id {0}")]
    HolderKeysMismatch(String),
    /// The holder per-commitment point in a holder commitment is not the
    /// one derived from the channel's commitment seed.
    #[error("holder commitment {0} carries a per-commitment point that is not the holder's")]
    HolderPointMismatch(u64),
    /// The stored state contradicts its own invariants.
    #[error("the stored channel state is inconsistent: {0}")]
    CorruptState(String),
    /// LDK's signer refused an operation (it gives no reason).
    #[error("the channel signer failed to {0}")]
    Signer(&'static str),
}
