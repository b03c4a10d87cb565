//! The one place where Tidemark's errors and refusals become gRPC statuses.
//!
//! | what                         | code                 |
//! |------------------------------|----------------------|
//! | policy or mark refusal       | `FAILED_PRECONDITION`, details = `Refusal` |
//! | malformed request or PSBT    | `INVALID_ARGUMENT`   |
//! | lightning input that does not decode, a setup whose keys are not the node's | `INVALID_ARGUMENT` |
//! | unknown key, wallet, intent, lightning node | `NOT_FOUND` |
//! | no grant                     | `PERMISSION_DENIED`  |
//! | no client identity           | `UNAUTHENTICATED`    |
//! | overload                     | `RESOURCE_EXHAUSTED` |
//! | store down, full or corrupt  | `UNAVAILABLE`        |
//! | lost CAS races, key backend  | `UNAVAILABLE`        |
//! | anything else                | `INTERNAL`           |

use prost::Message as _;
use tidemark_bitcoin::BitcoinError;
use tidemark_core::{KeyError, Mark, Refusal, StoreError};
use tidemark_lightning::keys::KeysError;
use tidemark_lightning::node::{NodeError, SweepError};
use tidemark_lightning::{ChannelError, LightningError};
use tidemark_proto::v1;
use tidemark_signer::SignError;
use tonic::{Code, Status};

use crate::acl::Denial;

/// The wire form of a mark.
pub fn mark_to_proto(mark: &Mark) -> v1::Mark {
    v1::Mark {
        fields: mark
            .fields()
            .iter()
            .map(|(name, value)| v1::MarkField {
                name: name.clone(),
                value: *value,
            })
            .collect(),
    }
}

/// A refusal as `FAILED_PRECONDITION` with the `Refusal` in the details.
pub fn refused(refusal: &Refusal) -> Status {
    let details = v1::Refusal {
        tag: refusal.tag.to_string(),
        object: refusal.object.to_string(),
        current: Some(mark_to_proto(&refusal.current)),
        detail: refusal.detail.clone(),
    }
    .encode_to_vec();
    Status::with_details(
        Code::FailedPrecondition,
        format!("{}: {}", refusal.tag, refusal.detail),
        details.into(),
    )
}

/// A pipeline error as a status.
pub fn sign_error(e: &SignError) -> Status {
    match e {
        SignError::InvalidRequest(e) => Status::invalid_argument(e.to_string()),
        SignError::Key(e) => key_error(e),
        SignError::Store(e) => store_error(e),
        SignError::CorruptState { .. } => Status::unavailable(e.to_string()),
        SignError::Contention { .. } => Status::unavailable(e.to_string()),
        other => Status::internal(other.to_string()),
    }
}

/// A wallet pipeline error as a status: a request the PSBT or its ids make
/// impossible is `INVALID_ARGUMENT`, an unknown wallet or intent
/// `NOT_FOUND`, a release the intent's status forbids
/// `FAILED_PRECONDITION` (without a refusal: nothing was asked to sign).
pub fn bitcoin_error(e: &BitcoinError) -> Status {
    match e {
        BitcoinError::MalformedPsbt(_)
        | BitcoinError::MissingUtxo { .. }
        | BitcoinError::UtxoMismatch { .. }
        | BitcoinError::UnsupportedSighash { .. }
        | BitcoinError::NoWalletInputs(_)
        | BitcoinError::OutputsExceedInputs { .. }
        | BitcoinError::InvalidIntent(_)
        | BitcoinError::InvalidAddress { .. }
        | BitcoinError::Id(_) => Status::invalid_argument(e.to_string()),
        BitcoinError::UnknownWallet(_) | BitcoinError::UnknownIntent(_) => {
            Status::not_found(e.to_string())
        }
        BitcoinError::InvalidRelease { .. } => Status::failed_precondition(e.to_string()),
        BitcoinError::Key(e) => key_error(e),
        BitcoinError::Store(e) => store_error(e),
        BitcoinError::CorruptState { .. } | BitcoinError::Contention(_) => {
            Status::unavailable(e.to_string())
        }
        other => Status::internal(other.to_string()),
    }
}

/// A lightning pipeline error as a status: a request whose values cannot
/// be used (a setup with another node's keys, a holder point that is not
/// the holder's, a number out of range) is `INVALID_ARGUMENT`; a store or
/// counter that cannot commit, or a channel other writers keep moving,
/// `UNAVAILABLE`.
pub fn lightning_error(e: &LightningError) -> Status {
    match e {
        LightningError::Channel(
            ChannelError::InvalidRequest(_)
            | ChannelError::HolderKeysMismatch(_)
            | ChannelError::HolderPointMismatch(_),
        )
        | LightningError::Id(_)
        | LightningError::Keys(
            KeysError::CommitmentIndexOutOfRange { .. }
            | KeysError::InvalidCommitmentSecret { .. }
            | KeysError::Id(_),
        ) => Status::invalid_argument(e.to_string()),
        LightningError::Store(e) | LightningError::Keys(KeysError::Store(e)) => store_error(e),
        LightningError::Channel(ChannelError::CorruptState(_))
        | LightningError::Keys(KeysError::Contended { .. } | KeysError::CorruptCounter { .. })
        | LightningError::CorruptState { .. }
        | LightningError::Contention(_) => Status::unavailable(e.to_string()),
        other => Status::internal(other.to_string()),
    }
}

/// A node operation's error as a status: the request is not this node's
/// to sign or does not make sense (`INVALID_ARGUMENT`), or LDK failed
/// where it never does (`INTERNAL`).
pub fn node_error(e: &NodeError) -> Status {
    match e {
        NodeError::Unexpected { .. } => Status::internal(e.to_string()),
        _ => Status::invalid_argument(e.to_string()),
    }
}

/// A sweep that is not a policy refusal (the destination rule is a
/// refusal, see the lightning service): malformed or unspendable input.
pub fn sweep_error(e: &SweepError) -> Status {
    Status::invalid_argument(e.to_string())
}

fn key_error(e: &KeyError) -> Status {
    match e {
        KeyError::UnknownKey(k) => Status::not_found(format!("unknown key {k}")),
        KeyError::SchemeMismatch { .. } => Status::invalid_argument(e.to_string()),
        e => Status::unavailable(e.to_string()),
    }
}

fn store_error(e: &StoreError) -> Status {
    Status::unavailable(format!("store cannot commit: {e}"))
}

/// A denial as `PERMISSION_DENIED`.
pub fn denied(d: &Denial) -> Status {
    Status::permission_denied(d.to_string())
}

/// Overload.
pub fn overloaded() -> Status {
    Status::resource_exhausted("too many requests in flight; retry with backoff")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lightning_errors_map_to_the_codes_of_the_table() {
        let cases: [(LightningError, Code); 8] = [
            (
                ChannelError::InvalidRequest("x".into()).into(),
                Code::InvalidArgument,
            ),
            (
                ChannelError::HolderKeysMismatch("id".into()).into(),
                Code::InvalidArgument,
            ),
            (
                KeysError::CommitmentIndexOutOfRange { index: 1 << 50 }.into(),
                Code::InvalidArgument,
            ),
            (StoreError::Full("disk".into()).into(), Code::Unavailable),
            (
                KeysError::Store(StoreError::Io("eio".into())).into(),
                Code::Unavailable,
            ),
            (LightningError::Contention("chan".into()), Code::Unavailable),
            (
                LightningError::CorruptState {
                    object: "o".into(),
                    reason: "r".into(),
                },
                Code::Unavailable,
            ),
            (ChannelError::Signer("sign").into(), Code::Internal),
        ];
        for (error, code) in cases {
            assert_eq!(lightning_error(&error).code(), code, "{error}");
        }
        assert_eq!(
            node_error(&NodeError::InvalidTweak).code(),
            Code::InvalidArgument
        );
        assert_eq!(
            sweep_error(&SweepError::NoDescriptors).code(),
            Code::InvalidArgument
        );
    }

    #[test]
    fn wallet_errors_map_to_the_codes_of_the_table() {
        let cases: [(BitcoinError, Code); 9] = [
            (
                BitcoinError::MalformedPsbt("x".into()),
                Code::InvalidArgument,
            ),
            (
                BitcoinError::MissingUtxo {
                    index: 0,
                    what: "UTXO",
                },
                Code::InvalidArgument,
            ),
            (
                BitcoinError::InvalidIntent("a b".into()),
                Code::InvalidArgument,
            ),
            (BitcoinError::UnknownWallet("w".into()), Code::NotFound),
            (BitcoinError::UnknownIntent("i".into()), Code::NotFound),
            (
                BitcoinError::Key(KeyError::UnknownKey("w".into())),
                Code::NotFound,
            ),
            (
                BitcoinError::Store(StoreError::Full("disk".into())),
                Code::Unavailable,
            ),
            (
                BitcoinError::Store(StoreError::Io("eio".into())),
                Code::Unavailable,
            ),
            (
                BitcoinError::InvalidRelease {
                    intent: "i".into(),
                    status: "confirmed",
                    wanted: "abandoned",
                },
                Code::FailedPrecondition,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(bitcoin_error(&error).code(), code, "{error}");
        }
    }
}
