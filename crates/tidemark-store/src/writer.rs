//! The writer: one batch in one transaction.
//!
//! A batch (chosen by the `committer`: everything queued, up to
//! `max_batch`) is applied in ONE transaction, made durable by ONE fsync
//! (`COMMIT` under `synchronous=FULL`). Requests that arrive while that
//! fsync is in flight queue up and form the next batch, so throughput grows
//! with concurrency while every caller is answered only after its own batch
//! is durable.
//!
//! Invariants:
//! - A commit request carries one or more state writes to distinct objects
//!   and one audit entry (`commit` is a commit of one write). It is all or
//!   nothing: EVERY write is a compare-and-swap against the version as the
//!   batch has left it so far (two requests touching one object in one
//!   batch: the second sees the first), and all are checked before any is
//!   written. The first mismatch (`Conflict`) or corrupt row (`Corrupt`)
//!   fails that request alone: none of its writes and no audit record is
//!   written for it. Otherwise all its writes and then its one audit record
//!   are written, in the batch's transaction.
//! - A batch whose transaction fails is rolled back and every caller in it
//!   gets the error; audit-only entries in it are dropped and counted.
//! - The audit chain head is read inside each write transaction, so a
//!   failed batch cannot leave a stale head behind, and the chain never
//!   forks even if another process writes to the same file.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;
use tidemark_core::{AuditEntry, AuditRecord, GENESIS_HASH, StoreError};

use crate::codec::{self, EncodedWrite};
use crate::error::{is_fatal, store_error};
use crate::metrics::Metrics;
use crate::open::FileIdentity;

/// Estimated WAL frames after which the writer checkpoints (SQLite's own
/// default threshold).
const CHECKPOINT_FRAMES: u64 = 1000;

/// The smallest health probe: about one large batch.
pub(crate) const PROBE_MIN_BYTES: usize = 64 * 1024;
/// The largest health probe.
const PROBE_MAX_BYTES: usize = 4 * 1024 * 1024;

/// What a request asks the writer to do.
#[derive(Debug)]
pub(crate) enum Item {
    /// Compare-and-swap state writes to distinct objects (at least one),
    /// applied all or none, and the audit entry of their decision.
    Commit {
        writes: Vec<EncodedWrite>,
        audit: AuditEntry,
    },
    /// An audit entry for a decision that changed no state.
    Audit(AuditEntry),
    /// A real, durable write of about `bytes` bytes that tells whether a
    /// batch like the one that last failed would commit now.
    Probe { bytes: usize },
}

/// One request and where to send its answer.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) item: Item,
    /// `None` for fire-and-forget audit entries.
    pub(crate) reply: Option<SyncSender<Result<(), StoreError>>>,
}

/// State the writer shares with the store handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) metrics: Metrics,
    /// The error of the last batch, if it failed with Full, Corrupt or Io;
    /// cleared by the next batch that commits.
    pub(crate) last_failure: Mutex<Option<StoreError>>,
    /// When the batch in progress started (ms since the epoch), 0 if idle.
    pub(crate) busy_since_ms: AtomicU64,
    /// How much a health probe writes: about the size of the last batch
    /// that failed, within [`PROBE_MIN_BYTES`, `PROBE_MAX_BYTES`].
    pub(crate) probe_bytes: AtomicU64,
    /// The first corruption any read or write ran into. Sticky: a corrupt
    /// file does not heal itself, and a probe that happens to touch intact
    /// pages must not make the store look healthy again. Cleared only by
    /// reopening the store.
    pub(crate) corruption: Mutex<Option<StoreError>>,
}

impl Shared {
    pub(crate) fn new() -> Self {
        Shared {
            metrics: Metrics::new(),
            last_failure: Mutex::new(None),
            busy_since_ms: AtomicU64::new(0),
            probe_bytes: AtomicU64::new(PROBE_MIN_BYTES as u64),
            corruption: Mutex::new(None),
        }
    }

    /// Remembers `error` if it reports corruption (first one wins).
    pub(crate) fn note_corruption(&self, error: &StoreError) {
        if matches!(error, StoreError::Corrupt(_)) {
            let mut seen = self
                .corruption
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if seen.is_none() {
                tracing::error!(error = %error, "store corruption detected: not ready until reopened");
                *seen = Some(error.clone());
            }
        }
    }

    /// The corruption seen, if any.
    pub(crate) fn corruption(&self) -> Option<StoreError> {
        self.corruption
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn last_failure(&self) -> Option<StoreError> {
        self.last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_last_failure(&self, failure: Option<StoreError>) {
        *self
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = failure;
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
thread_local! {
    /// Tests set this to make the next batch written on this thread panic.
    pub(crate) static PANIC_IN_NEXT_BATCH: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The writer thread's state.
pub(crate) struct Writer {
    pub(crate) conn: Connection,
    /// The store's path and the file it named at open: checked before
    /// every batch.
    pub(crate) path: PathBuf,
    pub(crate) file: FileIdentity,
    pub(crate) shared: Arc<Shared>,
    pub(crate) frames_estimate: u64,
}

impl Writer {
    /// After a panic in `process`: ends any transaction it left open, so
    /// nothing half-written can be committed later.
    pub(crate) fn abandon(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    /// The last checkpoint, when the store stops: the WAL is folded back
    /// into the database file.
    pub(crate) fn finish(&mut self) {
        if let Err(e) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        {
            tracing::warn!(error = %e, "final WAL checkpoint failed; the WAL keeps the data");
        }
        tracing::debug!("state store writer stopped");
    }

    /// Applies `batch` in one transaction and answers every caller in it.
    /// Returns true when the WAL has grown enough for a checkpoint (run
    /// later, by the background thread, so it delays no caller).
    pub(crate) fn process(&mut self, batch: Vec<Request>) -> bool {
        #[cfg(test)]
        if PANIC_IN_NEXT_BATCH.with(|p| p.replace(false)) {
            // Mid-transaction, like a bug in the batch logic would.
            let _ = self.conn.execute_batch("BEGIN IMMEDIATE");
            panic!("injected panic in a batch (test)");
        }
        let m = &self.shared.metrics;
        let size = batch.len() as u64;
        self.shared
            .busy_since_ms
            .store(now_ms().max(1), Ordering::Relaxed);
        let started = Instant::now();
        let result = self
            .file
            .check(&self.path)
            .and_then(|()| apply_batch(&self.conn, &batch, now_ms()));
        m.batch_latency_us.record_duration(started.elapsed());
        self.shared.busy_since_ms.store(0, Ordering::Relaxed);
        Metrics::add(&m.batches, 1);
        m.batch_sizes.record(size);
        m.last_batch_size.store(size, Ordering::Relaxed);
        m.max_batch_size.fetch_max(size, Ordering::Relaxed);

        match result {
            Ok(outcomes) => {
                self.shared.set_last_failure(None);
                let frames = frames(&batch);
                for (request, outcome) in batch.into_iter().zip(outcomes) {
                    match (&request.item, &outcome) {
                        (Item::Commit { .. }, Ok(())) => {
                            Metrics::add(&m.commits, 1);
                            Metrics::add(&m.audit_written, 1);
                        }
                        (Item::Commit { .. }, Err(StoreError::Conflict { .. })) => {
                            Metrics::add(&m.conflicts, 1);
                        }
                        (Item::Commit { .. }, Err(e)) => {
                            self.shared.note_corruption(e);
                            Metrics::add(&m.failed_commits, 1);
                        }
                        (Item::Audit(_), _) => Metrics::add(&m.audit_written, 1),
                        (Item::Probe { .. }, _) => {}
                    }
                    if let Some(reply) = request.reply {
                        // The caller may have gone away; nothing to do then.
                        let _ = reply.send(outcome);
                    }
                }
                self.frames_estimate += frames + 2;
            }
            Err(e) => {
                let commits = batch
                    .iter()
                    .filter(|r| matches!(r.item, Item::Commit { .. }))
                    .count() as u64;
                let audits = batch
                    .iter()
                    .filter(|r| matches!(r.item, Item::Audit(_)))
                    .count() as u64;
                Metrics::add(&m.failed_batches, 1);
                Metrics::add(&m.failed_commits, commits);
                Metrics::add(&m.audit_dropped, audits);
                tracing::error!(
                    error = %e,
                    batch = size,
                    commits,
                    dropped_audit_entries = audits,
                    "state store batch failed and was rolled back"
                );
                if is_fatal(&e) {
                    self.shared.note_corruption(&e);
                    self.shared.set_last_failure(Some(e.clone()));
                    let bytes = batch_bytes(&batch).clamp(PROBE_MIN_BYTES, PROBE_MAX_BYTES);
                    self.shared
                        .probe_bytes
                        .store(bytes as u64, Ordering::Relaxed);
                }
                for request in batch {
                    if let Some(reply) = request.reply {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
        }
        self.frames_estimate >= CHECKPOINT_FRAMES
    }

    /// Copies the WAL back into the database (passive: never waits for
    /// readers).
    pub(crate) fn checkpoint(&mut self) {
        let m = &self.shared.metrics;
        let result = self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            });
        match result {
            Ok((log, done)) => {
                Metrics::add(&m.checkpoints, 1);
                self.frames_estimate = u64::try_from(log - done).unwrap_or(0);
            }
            Err(e) => {
                Metrics::add(&m.failed_checkpoints, 1);
                tracing::warn!(error = %e, "WAL checkpoint failed; the WAL keeps the data");
                self.frames_estimate = CHECKPOINT_FRAMES / 2;
            }
        }
    }
}

/// Applies `batch` in one transaction. `Ok` holds one outcome per request
/// (a `Conflict` fails only its own write); `Err` means the transaction
/// was rolled back and nothing in the batch took effect.
pub(crate) fn apply_batch(
    conn: &Connection,
    batch: &[Request],
    now_ms: u64,
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(store_error)?;
    let result = apply_in_transaction(conn, batch, now_ms).and_then(|outcomes| {
        conn.execute_batch("COMMIT")
            .map(|()| outcomes)
            .map_err(store_error)
    });
    if result.is_err()
        && !conn.is_autocommit()
        && let Err(e) = conn.execute_batch("ROLLBACK")
    {
        tracing::warn!(error = %e, "rollback of a failed batch failed");
    }
    result
}

fn apply_in_transaction(
    conn: &Connection,
    batch: &[Request],
    now_ms: u64,
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    let mut head = audit_head(conn)?;
    let updated_ms = i64::try_from(now_ms).unwrap_or(i64::MAX);
    let mut outcomes = Vec::with_capacity(batch.len());
    for request in batch {
        let outcome = match &request.item {
            Item::Commit { writes, audit } => match check_versions(conn, writes)? {
                // A conflict or a corrupt row fails its own request, not
                // the batch, and nothing of that request is written.
                Err(e) => Err(e),
                Ok(()) => {
                    for write in writes {
                        upsert(conn, write, updated_ms)?;
                    }
                    append_audit(conn, &mut head, audit)?;
                    Ok(())
                }
            },
            // Any SQL failure fails the whole batch (SQLite may already have
            // rolled the transaction back), hence `?` here.
            Item::Audit(entry) => {
                append_audit(conn, &mut head, entry)?;
                Ok(())
            }
            Item::Probe { bytes } => {
                probe(conn, *bytes, now_ms)?;
                Ok(())
            }
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Checks every write's expected version against the stored one, before
/// any is written. The transaction sees its own writes, so a request is
/// checked against the requests before it in the batch; the objects of one
/// request are distinct (checked when it was encoded), so its own writes do
/// not affect each other's checks. The outer error is a failed query (it
/// fails the batch), the inner one the first conflict or corrupt row (it
/// fails only this request).
#[allow(clippy::type_complexity)]
fn check_versions(
    conn: &Connection,
    writes: &[EncodedWrite],
) -> Result<Result<(), StoreError>, StoreError> {
    for write in writes {
        match stored_version(conn, &write.object)? {
            Err(e) => return Ok(Err(e)),
            Ok(found) if found != write.expected => {
                return Ok(Err(StoreError::Conflict {
                    object: write.object.clone(),
                    expected: u64::try_from(write.expected).unwrap_or(0),
                    found: u64::try_from(found).unwrap_or(0),
                }));
            }
            Ok(_) => {}
        }
    }
    Ok(Ok(()))
}

/// The last audit record's (seq, hash), or (0, genesis).
pub(crate) fn audit_head(conn: &Connection) -> Result<(u64, [u8; 32]), StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        .map_err(store_error)?;
    let mut rows = stmt.query([]).map_err(store_error)?;
    let Some(row) = rows.next().map_err(store_error)? else {
        return Ok((0, GENESIS_HASH));
    };
    let seq: i64 = row.get(0).map_err(store_error)?;
    let hash: Vec<u8> = row.get(1).map_err(store_error)?;
    let seq = u64::try_from(seq)
        .map_err(|_| StoreError::Corrupt(format!("audit head has negative seq {seq}")))?;
    let hash = hash.as_slice().try_into().map_err(|_| {
        StoreError::Corrupt(format!("audit record {seq} has a {}-byte hash", hash.len()))
    })?;
    Ok((seq, hash))
}

/// The stored version of `object`, 0 if absent. The outer error is a
/// failed query (it fails the batch), the inner one a corrupt row (it fails
/// only the write that needed it).
#[allow(clippy::type_complexity)]
fn stored_version(conn: &Connection, object: &str) -> Result<Result<i64, StoreError>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT version FROM objects WHERE object = ?1")
        .map_err(store_error)?;
    let mut rows = stmt.query([object]).map_err(store_error)?;
    let Some(row) = rows.next().map_err(store_error)? else {
        return Ok(Ok(0));
    };
    Ok(match row.get::<_, i64>(0) {
        Ok(v) if v >= 1 => Ok(v),
        Ok(v) => Err(StoreError::Corrupt(format!(
            "object {object} has stored version {v}"
        ))),
        Err(e) => Err(StoreError::Corrupt(format!(
            "object {object} has an unreadable version: {e}"
        ))),
    })
}

fn upsert(conn: &Connection, w: &EncodedWrite, updated_ms: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO objects (object, version, state, mark, digest, signatures, updated_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (object) DO UPDATE SET version = excluded.version, state = excluded.state, \
         mark = excluded.mark, digest = excluded.digest, signatures = excluded.signatures, \
         updated_ms = excluded.updated_ms",
    )
    .and_then(|mut stmt| {
        stmt.execute(rusqlite::params![
            w.object,
            w.version,
            w.state,
            w.mark,
            w.digest.as_slice(),
            w.signatures,
            updated_ms,
        ])
    })
    .map(|_| ())
    .map_err(store_error)
}

/// The probe's write: allocates `bytes` of fresh pages and frees them
/// again (headroom for the next batches, which reuse freed pages first;
/// under `max_page_count` this fails while the store is at its cap), and
/// rewrites a retained row of `bytes` (real WAL frames: on a full disk
/// this fails while there is no room for them).
fn probe(conn: &Connection, bytes: usize, now_ms: u64) -> Result<(), StoreError> {
    let filler = "0".repeat(bytes);
    let run = || -> rusqlite::Result<()> {
        let mut upsert = conn.prepare_cached(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )?;
        upsert.execute(["probe-headroom", filler.as_str()])?;
        conn.prepare_cached("DELETE FROM meta WHERE key = 'probe-headroom'")?
            .execute([])?;
        upsert.execute(["probe", filler.as_str()])?;
        upsert.execute(["last_probe_ms", now_ms.to_string().as_str()])?;
        Ok(())
    };
    run().map_err(store_error)
}

/// Roughly how many WAL frames `batch` adds: about one per row written
/// (every state write and audit record), at least two per request.
fn frames(batch: &[Request]) -> u64 {
    batch
        .iter()
        .map(|r| match &r.item {
            Item::Commit { writes, .. } => (writes.len() as u64 + 1).max(2),
            Item::Audit(_) | Item::Probe { .. } => 2,
        })
        .sum()
}

/// Roughly how many bytes `batch` writes, for sizing a later probe.
fn batch_bytes(batch: &[Request]) -> usize {
    const RECORD_OVERHEAD: usize = 256;
    batch
        .iter()
        .map(|r| match &r.item {
            Item::Commit { writes, audit } => {
                writes
                    .iter()
                    .map(|w| {
                        w.state.len()
                            + w.mark.len()
                            + w.signatures.len()
                            + 2 * w.object.len()
                            + RECORD_OVERHEAD
                    })
                    .sum::<usize>()
                    + audit.client.len()
                    + RECORD_OVERHEAD
            }
            Item::Audit(audit) => audit.client.len() + audit.object.len() + RECORD_OVERHEAD,
            Item::Probe { bytes } => *bytes,
        })
        .sum()
}

fn append_audit(
    conn: &Connection,
    head: &mut (u64, [u8; 32]),
    entry: &AuditEntry,
) -> Result<(), StoreError> {
    let record = AuditRecord::chained(head.1, head.0 + 1, entry.clone());
    codec::insert_audit(conn, &record)?;
    *head = (record.seq, record.hash);
    Ok(())
}

#[cfg(test)]
mod tests;
