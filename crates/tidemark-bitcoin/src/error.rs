//! Why a wallet request could not be decided. A policy refusal is not an
//! error: it is [`SignOutcome::Refused`](crate::SignOutcome::Refused).

use tidemark_core::{IdError, KeyError, StoreError};

/// A request was malformed or the signer could not serve it. Every variant
/// means nothing was signed and no state changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BitcoinError {
    /// The PSBT does not decode (BIP 174) or is inconsistent.
    #[error("malformed PSBT: {0}")]
    MalformedPsbt(String),
    /// An input carries no UTXO (amount and script), or a segwit v0 input
    /// of the wallet carries no full previous transaction although the
    /// policy requires one.
    #[error("input {index} has no {what}")]
    MissingUtxo {
        /// The input.
        index: usize,
        /// What is missing.
        what: &'static str,
    },
    /// An input's UTXO data contradicts itself: a previous transaction
    /// that does not hash to the spent txid, or a `witness_utxo` that
    /// differs from the output it names.
    #[error("input {index}: {reason}")]
    UtxoMismatch {
        /// The input.
        index: usize,
        /// What disagrees.
        reason: String,
    },
    /// A wallet input asks for a sighash type other than ALL (DEFAULT for
    /// taproot); anything else would let the transaction change after
    /// signing.
    #[error("input {index} asks for sighash type {found}; only ALL is signed")]
    UnsupportedSighash {
        /// The input.
        index: usize,
        /// The type asked for.
        found: String,
    },
    /// No input of the PSBT belongs to the wallet.
    #[error("no input belongs to wallet {0}")]
    NoWalletInputs(String),
    /// The outputs spend more than the inputs bring.
    #[error("outputs ({outputs} sat) exceed inputs ({inputs} sat)")]
    OutputsExceedInputs {
        /// Sum of the inputs.
        inputs: u64,
        /// Sum of the outputs.
        outputs: u64,
    },
    /// An intent id is not 1 to 64 of `[A-Za-z0-9._-]`.
    #[error("invalid intent id: {0}")]
    InvalidIntent(String),
    /// A declared payment address does not parse.
    #[error("invalid address {address:?}: {reason}")]
    InvalidAddress {
        /// The address.
        address: String,
        /// Why.
        reason: String,
    },
    /// No wallet by that name.
    #[error("unknown wallet {0}")]
    UnknownWallet(String),
    /// The intent was never signed.
    #[error("unknown intent {0}")]
    UnknownIntent(String),
    /// A release the intent's status does not allow (a confirmed intent
    /// cannot be abandoned).
    #[error("intent {intent} is {status} and cannot become {wanted}")]
    InvalidRelease {
        /// The intent.
        intent: String,
        /// Its status.
        status: &'static str,
        /// The release asked for.
        wanted: &'static str,
    },
    /// A wallet or policy configuration error; names the field.
    #[error("config: {0}")]
    Config(String),
    /// An identifier failed validation.
    #[error(transparent)]
    Id(#[from] IdError),
    /// The key backend failed or does not know the key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The store failed; nothing was committed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored state does not decode.
    #[error("stored state of {object} is unreadable: {reason}")]
    CorruptState {
        /// The object.
        object: String,
        /// What failed.
        reason: String,
    },
    /// Other writers kept winning the compare-and-swap.
    #[error("gave up on {0} after repeated lost compare-and-swap races")]
    Contention(String),
}
