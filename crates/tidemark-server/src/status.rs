//! The one place where Tidemark's errors and refusals become gRPC statuses.
//!
//! | what                         | code                 |
//! |------------------------------|----------------------|
//! | policy or mark refusal       | `FAILED_PRECONDITION`, details = `Refusal` |
//! | malformed request or PSBT    | `INVALID_ARGUMENT`   |
//! | unknown key, wallet, intent  | `NOT_FOUND`          |
//! | no grant                     | `PERMISSION_DENIED`  |
//! | no client identity           | `UNAUTHENTICATED`    |
//! | overload                     | `RESOURCE_EXHAUSTED` |
//! | store down, full or corrupt  | `UNAVAILABLE`        |
//! | lost CAS races, key backend  | `UNAVAILABLE`        |
//! | anything else                | `INTERNAL`           |

use prost::Message as _;
use tidemark_bitcoin::BitcoinError;
use tidemark_core::{KeyError, Mark, Refusal, StoreError};
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
