//! Builders the crate's unit tests share.

use tidemark_core::{AuditEntry, AuditOutcome, ChainId, Domain, KeyId, Mark, ObjectId};

/// An object of kind `kind` on a test chain and key.
pub(crate) fn object(kind: &str) -> ObjectId {
    ObjectId::new(
        Domain::Consensus,
        ChainId::new("test-chain").unwrap(),
        KeyId::new("key-1").unwrap(),
        kind,
    )
    .unwrap()
}

/// A `signed` audit entry for `object`.
pub(crate) fn entry(object: &ObjectId) -> AuditEntry {
    AuditEntry {
        time_ms: 1,
        client: "replica-a".into(),
        object: object.to_string(),
        outcome: AuditOutcome::Signed,
        tag: None,
        mark: Mark::none().with("height", 1),
        digest: None,
    }
}
