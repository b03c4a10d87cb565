//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use tidemark_core::{
    AuditEntry, AuditOutcome, ChainId, Digest, Domain, KeyId, Mark, ObjectId, Signature,
    StateWrite, StoredState,
};

/// A scratch directory on the real disk (target/tmp), so fsync costs what
/// it costs.
pub(crate) fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

pub(crate) fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("state.db")
}

pub(crate) fn object(name: &str) -> ObjectId {
    ObjectId::new(
        Domain::Consensus,
        ChainId::new("test-chain").unwrap(),
        KeyId::new("validator-1").unwrap(),
        name,
    )
    .unwrap()
}

pub(crate) fn entry(object: &ObjectId, outcome: AuditOutcome) -> AuditEntry {
    AuditEntry {
        time_ms: 1_700_000_000_000,
        client: "replica-a".into(),
        object: object.to_string(),
        outcome,
        tag: (outcome == AuditOutcome::Refused).then(|| "hwm-double-sign".to_owned()),
        mark: Mark::none().with("height", 7),
        digest: Some(Digest([9; 32])),
    }
}

/// The state a write of `payload` stores.
pub(crate) fn state(payload: &str) -> Vec<u8> {
    format!("{{\"payload\":\"{payload}\"}}").into_bytes()
}

/// A write of `object` from `expected` to `expected + 1`, carrying
/// `payload` in its state and signature.
pub(crate) fn write(object: &ObjectId, expected: u64, payload: &str) -> StateWrite {
    StateWrite {
        object: object.clone(),
        expected_version: expected,
        new: StoredState {
            version: expected + 1,
            state: state(payload),
            mark: Mark::none().with("height", expected + 1),
            digest: Digest([(expected % 251) as u8; 32]),
            signatures: vec![Signature(payload.as_bytes().to_vec())],
        },
    }
}
