//! Rows to values and back.
//!
//! Invariants: encoding checks a commit's writes before they reach the
//! writer thread (a malformed write, an empty commit or one that names an
//! object twice is `Invalid` and never enters a batch); decoding a row
//! that does not hold what this module wrote is `Corrupt`, never a panic.

use std::collections::HashSet;

use rusqlite::types::FromSql;
use rusqlite::{Connection, Row};
use tidemark_core::{
    AuditEntry, AuditOutcome, AuditRecord, Digest, Mark, ObjectId, Signature, StateWrite,
    StoreError, StoredState,
};

use crate::error::store_error;

/// A [`StateWrite`] checked and encoded on the caller's thread, ready for
/// the writer.
#[derive(Debug, Clone)]
pub(crate) struct EncodedWrite {
    /// The object's canonical string.
    pub(crate) object: String,
    /// The version the write expects (0: absent).
    pub(crate) expected: i64,
    /// The new version, `expected + 1`.
    pub(crate) version: i64,
    /// The state, valid JSON.
    pub(crate) state: Vec<u8>,
    /// The mark, JSON.
    pub(crate) mark: String,
    /// The payload digest.
    pub(crate) digest: [u8; 32],
    /// The signatures, JSON.
    pub(crate) signatures: String,
}

/// Checks and encodes `write`: the new version must be `expected + 1` and
/// fit SQLite's integers, the state must be JSON.
pub(crate) fn encode_write(write: &StateWrite) -> Result<EncodedWrite, StoreError> {
    let object = write.object.to_string();
    let invalid = |what: String| StoreError::Invalid(format!("write to {object}: {what}"));
    let expected = i64::try_from(write.expected_version)
        .map_err(|_| invalid(format!("version {} is too large", write.expected_version)))?;
    if Some(write.new.version) != write.expected_version.checked_add(1) || expected == i64::MAX {
        return Err(invalid(format!(
            "new version {} must be expected version {} + 1",
            write.new.version, write.expected_version
        )));
    }
    if serde_json::from_slice::<serde_json::Value>(&write.new.state).is_err() {
        return Err(invalid("state is not valid JSON".to_owned()));
    }
    let mark = serde_json::to_string(&write.new.mark)
        .map_err(|e| invalid(format!("mark does not encode: {e}")))?;
    let signatures = serde_json::to_string(&write.new.signatures)
        .map_err(|e| invalid(format!("signatures do not encode: {e}")))?;
    Ok(EncodedWrite {
        expected,
        version: expected + 1,
        state: write.new.state.clone(),
        mark,
        digest: write.new.digest.0,
        signatures,
        object,
    })
}

/// Checks and encodes the writes of one commit: at least one, each as
/// [`encode_write`] checks it, and no object twice (the compare-and-swap of
/// every write is checked against the version stored before the commit, so
/// a second write to one object could never be consistent with it).
pub(crate) fn encode_writes(writes: &[StateWrite]) -> Result<Vec<EncodedWrite>, StoreError> {
    if writes.is_empty() {
        return Err(StoreError::Invalid(
            "a commit needs at least one state write".to_owned(),
        ));
    }
    let mut seen = HashSet::with_capacity(writes.len());
    let mut encoded = Vec::with_capacity(writes.len());
    for write in writes {
        let write = encode_write(write)?;
        if !seen.insert(write.object.clone()) {
            return Err(StoreError::Invalid(format!(
                "a commit writes {} more than once",
                write.object
            )));
        }
        encoded.push(write);
    }
    Ok(encoded)
}

/// Checks that an audit entry can be stored exactly as it will be hashed.
pub(crate) fn check_entry(entry: &AuditEntry) -> Result<(), StoreError> {
    if i64::try_from(entry.time_ms).is_err() {
        return Err(StoreError::Invalid(format!(
            "audit entry time {} ms is out of range",
            entry.time_ms
        )));
    }
    Ok(())
}

/// The columns [`decode_state`] reads, in order.
pub(crate) const STATE_COLUMNS: &str = "version, state, mark, digest, signatures";

/// The columns [`decode_audit`] reads, in order.
pub(crate) const AUDIT_COLUMNS: &str =
    "seq, time_ms, client, object, outcome, tag, mark, digest, prev_hash, hash";

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {detail}"))
}

/// Reads column `idx` of `row`; any failure is corruption of `what`.
fn col<T: FromSql>(row: &Row<'_>, idx: usize, what: &str) -> Result<T, StoreError> {
    row.get(idx).map_err(|e| corrupt(what, e))
}

fn version(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| corrupt(what, format!("negative value {v}")))
}

fn hash32(bytes: &[u8], what: &str) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| corrupt(what, format!("{} bytes, expected 32", bytes.len())))
}

/// Decodes [`STATE_COLUMNS`] starting at column `at`.
pub(crate) fn decode_state(row: &Row<'_>, at: usize) -> Result<StoredState, StoreError> {
    let version = version(col(row, at, "objects.version")?, "objects.version")?;
    let state: Vec<u8> = col(row, at + 1, "objects.state")?;
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&state) {
        return Err(corrupt("objects.state", format!("not JSON: {e}")));
    }
    let mark: String = col(row, at + 2, "objects.mark")?;
    let mark: Mark = serde_json::from_str(&mark).map_err(|e| corrupt("objects.mark", e))?;
    let digest: Vec<u8> = col(row, at + 3, "objects.digest")?;
    let digest = Digest(hash32(&digest, "objects.digest")?);
    let signatures: String = col(row, at + 4, "objects.signatures")?;
    let signatures: Vec<Signature> =
        serde_json::from_str(&signatures).map_err(|e| corrupt("objects.signatures", e))?;
    Ok(StoredState {
        version,
        state,
        mark,
        digest,
        signatures,
    })
}

/// Decodes `object, STATE_COLUMNS`.
pub(crate) fn decode_object(row: &Row<'_>) -> Result<(ObjectId, StoredState), StoreError> {
    let object: String = col(row, 0, "objects.object")?;
    let id: ObjectId = object
        .parse()
        .map_err(|e| corrupt("objects.object", format!("{object:?}: {e}")))?;
    Ok((id, decode_state(row, 1)?))
}

fn outcome(s: &str) -> Option<AuditOutcome> {
    AuditOutcome::ALL.into_iter().find(|o| o.as_str() == s)
}

/// Decodes [`AUDIT_COLUMNS`].
pub(crate) fn decode_audit(row: &Row<'_>) -> Result<AuditRecord, StoreError> {
    let seq = version(col(row, 0, "audit.seq")?, "audit.seq")?;
    let time_ms = version(col(row, 1, "audit.time_ms")?, "audit.time_ms")?;
    let outcome_text: String = col(row, 4, "audit.outcome")?;
    let outcome = outcome(&outcome_text)
        .ok_or_else(|| corrupt("audit.outcome", format!("unknown outcome {outcome_text:?}")))?;
    let mark: String = col(row, 6, "audit.mark")?;
    let mark: Mark = serde_json::from_str(&mark).map_err(|e| corrupt("audit.mark", e))?;
    let digest: Option<Vec<u8>> = col(row, 7, "audit.digest")?;
    let digest = match digest {
        Some(d) => Some(Digest(hash32(&d, "audit.digest")?)),
        None => None,
    };
    let prev_hash: Vec<u8> = col(row, 8, "audit.prev_hash")?;
    let hash: Vec<u8> = col(row, 9, "audit.hash")?;
    Ok(AuditRecord {
        seq,
        entry: AuditEntry {
            time_ms,
            client: col(row, 2, "audit.client")?,
            object: col(row, 3, "audit.object")?,
            outcome,
            tag: col(row, 5, "audit.tag")?,
            mark,
            digest,
        },
        prev_hash: hash32(&prev_hash, "audit.prev_hash")?,
        hash: hash32(&hash, "audit.hash")?,
    })
}

/// Inserts `record` into the audit table.
pub(crate) fn insert_audit(conn: &Connection, record: &AuditRecord) -> Result<(), StoreError> {
    let e = &record.entry;
    let seq = i64::try_from(record.seq)
        .map_err(|_| StoreError::Corrupt(format!("audit sequence {} overflows", record.seq)))?;
    let time_ms = i64::try_from(e.time_ms)
        .map_err(|_| StoreError::Invalid(format!("audit time {} ms is out of range", e.time_ms)))?;
    let mark = serde_json::to_string(&e.mark)
        .map_err(|err| StoreError::Invalid(format!("audit mark does not encode: {err}")))?;
    let digest = e.digest.map(|d| d.0.to_vec());
    conn.prepare_cached(
        "INSERT INTO audit (seq, time_ms, client, object, outcome, tag, mark, digest, prev_hash, hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut stmt| {
        stmt.execute(rusqlite::params![
            seq,
            time_ms,
            e.client,
            e.object,
            e.outcome.as_str(),
            e.tag,
            mark,
            digest,
            record.prev_hash.as_slice(),
            record.hash.as_slice(),
        ])
    })
    .map_err(store_error)?;
    Ok(())
}

#[cfg(test)]
mod tests;
