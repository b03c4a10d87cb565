//! Tidemark's gRPC API, generated from `proto/tidemark/v1/*.proto`.
//!
//! The messages and services are documented in the proto files. Refusals
//! travel as `FAILED_PRECONDITION` statuses whose details are an encoded
//! [`v1::Refusal`].

/// Version 1 of the API (`package tidemark.v1`).
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("tidemark.v1");
}
