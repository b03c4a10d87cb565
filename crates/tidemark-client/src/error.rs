//! Errors as the client sees them.
//!
//! # Transport failures
//!
//! tonic reports a connection that broke under a call (reset, closed, an
//! HTTP/2 error) as a status it made up on the client side: usually
//! `UNKNOWN` "transport error", sometimes `INTERNAL`, `CANCELLED` or
//! `UNAVAILABLE` from the HTTP/2 reason. Such a status carries the error
//! that caused it as its `source()`; a status the signer sent arrives in
//! the response trailers and has no source. So a status is a transport
//! failure when its source chain holds a [`tonic::transport::Error`], a
//! [`hyper::Error`] or a [`std::io::Error`], and it maps to
//! [`ClientError::Unavailable`] (retryable) whatever its code. A genuine
//! `UNKNOWN` or `INTERNAL` from the signer (no source) stays
//! [`ClientError::Other`], not retryable: the signer decided something
//! went wrong and retrying blindly would hide it. Retrying after a
//! transport failure is safe: the call may have been decided, and an
//! identical repeat returns the stored answer (`REPLAYED`).

use std::error::Error as _;

use prost::Message as _;
use tidemark_proto::v1;
use tonic::{Code, Status};

/// A refusal by the signer's policy: nothing was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The stable tag (`hwm-double-sign`, `hwm-height-regression`,
    /// `policy-intent-conflict`, ...).
    pub tag: String,
    /// The object (`domain/chain/key/kind`).
    pub object: String,
    /// The signer's current mark, as (name, value) pairs.
    pub current: Vec<(String, u64)>,
    /// A human-readable detail.
    pub detail: String,
}

impl Refusal {
    /// The value of mark field `name`.
    pub fn mark(&self, name: &str) -> Option<u64> {
        self.current
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }
}

/// Why a call did not return a signature.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The policy refused: a conflicting or stale request. Do not retry.
    #[error("refused: {} on {}: {}", .0.tag, .0.object, .0.detail)]
    Refused(Refusal),
    /// The signer is overloaded; retry with backoff.
    #[error("signer overloaded: {0}")]
    Overloaded(String),
    /// The signer cannot commit or is unreachable; retry later.
    #[error("signer unavailable: {0}")]
    Unavailable(String),
    /// The deadline passed. The request may have been signed: retrying the
    /// identical request returns the same signature.
    #[error("deadline exceeded: {0}")]
    DeadlineExceeded(String),
    /// This client's certificate has no grant for the key, wallet or
    /// domain, or the call needs the admin grant.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The request is malformed.
    #[error("invalid request: {0}")]
    InvalidArgument(String),
    /// The key, wallet or intent is unknown to the signer.
    #[error("not found: {0}")]
    NotFound(String),
    /// TLS configuration or connection setup failed.
    #[error("tls: {0}")]
    Tls(String),
    /// Any other status.
    #[error("signer error {code:?}: {message}")]
    Other {
        /// The gRPC code.
        code: Code,
        /// Its message.
        message: String,
    },
}

impl ClientError {
    /// True if the same request may succeed later (transient failure).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ClientError::Overloaded(_)
                | ClientError::Unavailable(_)
                | ClientError::DeadlineExceeded(_)
        )
    }
}

/// True if `status` was made up by the client's transport (its source
/// chain holds a transport, hyper or I/O error) rather than sent by the
/// signer. The client's own deadline ([`tonic::TimeoutExpired`]) is not a
/// transport failure: it stays [`ClientError::DeadlineExceeded`].
fn is_transport_failure(status: &Status) -> bool {
    if status.code() == Code::DeadlineExceeded {
        return false;
    }
    let mut chain = Vec::new();
    let mut source = status.source();
    while let Some(err) = source {
        chain.push(err);
        source = err.source();
    }
    // The deadline may sit anywhere in the chain (tonic wraps it in a
    // transport error), so look at all of it before deciding.
    if chain.iter().any(|e| e.is::<tonic::TimeoutExpired>()) {
        return false;
    }
    chain.iter().any(|e| {
        e.is::<tonic::transport::Error>() || e.is::<hyper::Error>() || e.is::<std::io::Error>()
    })
}

impl From<Status> for ClientError {
    fn from(status: Status) -> Self {
        let message = status.message().to_owned();
        if is_transport_failure(&status) {
            let cause = status
                .source()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            return ClientError::Unavailable(format!("transport: {message}{cause}"));
        }
        match status.code() {
            Code::FailedPrecondition => match v1::Refusal::decode(status.details()) {
                Ok(r) if !r.tag.is_empty() => ClientError::Refused(Refusal {
                    tag: r.tag,
                    object: r.object,
                    current: r
                        .current
                        .map(|m| m.fields.into_iter().map(|f| (f.name, f.value)).collect())
                        .unwrap_or_default(),
                    detail: r.detail,
                }),
                _ => ClientError::Other {
                    code: Code::FailedPrecondition,
                    message,
                },
            },
            Code::ResourceExhausted => ClientError::Overloaded(message),
            Code::Unavailable => ClientError::Unavailable(message),
            Code::DeadlineExceeded | Code::Cancelled => ClientError::DeadlineExceeded(message),
            Code::PermissionDenied | Code::Unauthenticated => {
                ClientError::PermissionDenied(message)
            }
            Code::InvalidArgument => ClientError::InvalidArgument(message),
            Code::NotFound => ClientError::NotFound(message),
            code => ClientError::Other { code, message },
        }
    }
}

#[cfg(test)]
mod tests;
