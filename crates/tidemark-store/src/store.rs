//! [`SqliteStore`]: the handle callers share.
//!
//! Invariants:
//! - Writes go only through the writer thread (see `writer`); reads go
//!   through separate read-only connections (WAL readers), so a read never
//!   waits for an fsync and never sees a batch that is not committed.
//! - A `commit` or `commit_all` that returned `Ok` is durable, all its
//!   writes and its audit record; one that returned an error changed
//!   nothing (a `Conflict` or `Invalid` commit was never applied, not one
//!   of its writes; a failed batch was rolled back).
//! - After `close` (or drop) every queued request has been answered and
//!   every later one gets `Closed`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use rusqlite::Connection;
use tidemark_core::{
    AuditEntry, AuditRecord, ChainError, GENESIS_HASH, ObjectId, StateStore, StateWrite,
    StoreError, StoredState, verify_chain,
};

use crate::codec::{self, STATE_COLUMNS};
use crate::committer::Committer;
use crate::error::{OpenError, store_error};
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::open::{self, FileIdentity};
use crate::options::StoreOptions;
use crate::schema;
use crate::writer::{Item, PROBE_MIN_BYTES, Shared, Writer, now_ms};

/// Records read per query by [`SqliteStore::verify_audit_chain`].
const VERIFY_PAGE: i64 = 4096;

/// A durable [`StateStore`] on one SQLite file: WAL, `synchronous=FULL`,
/// leader-based group commit, a hash-chained audit log.
///
/// Share it between threads by reference or in an `Arc`; every method
/// takes `&self`. `commit` and `commit_all` block until their batch is
/// durable; `audit` returns once the entry is queued (it blocks only while
/// the writer's queue is full, which is the store's backpressure).
pub struct SqliteStore {
    path: PathBuf,
    options: StoreOptions,
    committer: Arc<Committer>,
    shared: Arc<Shared>,
    closed: AtomicBool,
    writer: Mutex<Option<JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
    file: FileIdentity,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Creates a new, empty store at `path`. Fails with
    /// [`OpenError::Exists`] if the file (or a leftover WAL) exists.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        Self::create_with(path, StoreOptions::default())
    }

    /// [`SqliteStore::create`] with options.
    pub fn create_with(path: impl AsRef<Path>, options: StoreOptions) -> Result<Self, OpenError> {
        let path = path.as_ref();
        let conn = open::create(path, &options)?;
        Self::start(path, conn, options)
    }

    /// Opens the existing store at `path`, after checking it: fails with
    /// [`OpenError::Missing`] if there is no file (never creates one), and
    /// refuses a file that is empty, truncated, not a Tidemark store, of a
    /// newer schema, fails `PRAGMA quick_check`, or whose audit chain does
    /// not verify.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        Self::open_with(path, StoreOptions::default())
    }

    /// [`SqliteStore::open`] with options.
    pub fn open_with(path: impl AsRef<Path>, options: StoreOptions) -> Result<Self, OpenError> {
        let path = path.as_ref();
        let conn = open::open(path, &options)?;
        Self::start(path, conn, options)
    }

    fn start(path: &Path, conn: Connection, options: StoreOptions) -> Result<Self, OpenError> {
        let shared = Arc::new(Shared::new());
        let fail = |source| OpenError::Store {
            path: path.to_owned(),
            source,
        };
        let file = FileIdentity::of(path).map_err(fail)?;
        let writer = Writer {
            conn,
            path: path.to_owned(),
            file,
            shared: Arc::clone(&shared),
            frames_estimate: 0,
        };
        let committer = Arc::new(Committer::new(
            writer,
            options.max_batch,
            options.queue_capacity,
        ));
        let background = Arc::clone(&committer);
        let handle = std::thread::Builder::new()
            .name("tidemark-store-writer".to_owned())
            .spawn(move || background.run_background())
            .map_err(|e| {
                fail(StoreError::Io(format!(
                    "cannot start the writer thread: {e}"
                )))
            })?;
        Ok(SqliteStore {
            path: path.to_owned(),
            options,
            committer,
            shared,
            closed: AtomicBool::new(false),
            writer: Mutex::new(Some(handle)),
            readers: Mutex::new(Vec::new()),
            file,
        })
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The counters so far.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.shared.metrics.snapshot()
    }

    /// Lets the writer finish every queued request, stops it and closes
    /// the connections. Later calls get [`StoreError::Closed`]. Idempotent;
    /// also done on drop.
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.lock_readers().clear();
            self.committer.shutdown();
        }
        // Holding the lock across the join makes a concurrent close() wait
        // until the writer has drained, too.
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(handle) = writer.take()
            && handle.join().is_err()
        {
            tracing::error!(path = %self.path.display(), "state store writer panicked");
        }
        drop(writer);
        self.lock_readers().clear();
    }

    /// Verifies the whole audit log from its first record: `Ok(Ok((seq,
    /// hash)))` of the last record if the chain is unbroken, `Ok(Err(_))`
    /// saying where it breaks, `Err(_)` if the log could not be read.
    pub fn verify_audit_chain(&self) -> Result<Result<(u64, [u8; 32]), ChainError>, StoreError> {
        self.with_reader(|conn| {
            let mut head = (0u64, GENESIS_HASH);
            loop {
                let from = i64::try_from(head.0 + 1).unwrap_or(i64::MAX);
                let page = open::read_audit(conn, from, VERIFY_PAGE)?;
                if page.is_empty() {
                    break;
                }
                match verify_chain(&page, head.0, head.1) {
                    Ok(next) => head = next,
                    Err(e) => return Ok(Err(e)),
                }
            }
            // A record past a hole would never be read by the loop above.
            let max: Option<i64> = conn
                .query_row("SELECT MAX(seq) FROM audit", [], |r| r.get(0))
                .map_err(store_error)?;
            match max.and_then(|m| u64::try_from(m).ok()) {
                Some(m) if m != head.0 => Ok(Err(ChainError::Gap {
                    previous: head.0,
                    found: m,
                })),
                _ => Ok(Ok(head)),
            }
        })
    }

    fn lock_readers(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.readers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `item` and waits for its durable answer.
    fn request(&self, item: Item) -> Result<(), StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        self.committer.submit(item)
    }

    /// Runs `f` on a pooled read connection.
    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let pooled = self.lock_readers().pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = open::connect(&self.path)?;
                schema::configure_reader(&conn, self.options.busy_timeout)?;
                conn
            }
        };
        let result = f(&conn);
        if let Err(e) = &result {
            self.shared.note_corruption(e);
        }
        let reusable = !matches!(result, Err(StoreError::Io(_) | StoreError::Corrupt(_)));
        if reusable && !self.closed.load(Ordering::Acquire) {
            let mut pool = self.lock_readers();
            if pool.len() < self.options.idle_readers {
                pool.push(conn);
            }
        }
        result
    }
}

impl StateStore for SqliteStore {
    fn load(&self, object: &ObjectId) -> Result<Option<StoredState>, StoreError> {
        self.with_reader(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {STATE_COLUMNS} FROM objects WHERE object = ?1"
                ))
                .map_err(store_error)?;
            let mut rows = stmt.query([object.to_string()]).map_err(store_error)?;
            match rows.next().map_err(store_error)? {
                Some(row) => codec::decode_state(row, 0).map(Some),
                None => Ok(None),
            }
        })
    }

    fn commit(&self, write: StateWrite, audit: AuditEntry) -> Result<(), StoreError> {
        self.commit_all(vec![write], audit)
    }

    fn commit_all(&self, writes: Vec<StateWrite>, audit: AuditEntry) -> Result<(), StoreError> {
        let started = Instant::now();
        let encoded = codec::encode_writes(&writes)
            .and_then(|encoded| codec::check_entry(&audit).map(|()| encoded));
        let encoded = match encoded {
            Ok(encoded) => encoded,
            Err(e) => {
                Metrics::add(&self.shared.metrics.invalid, 1);
                return Err(e);
            }
        };
        let result = self.request(Item::Commit {
            writes: encoded,
            audit,
        });
        self.shared
            .metrics
            .commit_latency_us
            .record_duration(started.elapsed());
        if let Err(e) = &result {
            let objects: Vec<String> = writes.iter().map(|w| w.object.to_string()).collect();
            tracing::debug!(objects = ?objects, error = %e, "state commit failed");
        }
        result
    }

    fn audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        if let Err(e) = codec::check_entry(&entry) {
            Metrics::add(&self.shared.metrics.invalid, 1);
            return Err(e);
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        self.committer.submit_detached(Item::Audit(entry))
    }

    fn objects(&self) -> Result<Vec<(ObjectId, StoredState)>, StoreError> {
        let mut objects = self.with_reader(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!("SELECT object, {STATE_COLUMNS} FROM objects"))
                .map_err(store_error)?;
            let mut rows = stmt.query([]).map_err(store_error)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(store_error)? {
                out.push(codec::decode_object(row)?);
            }
            Ok(out)
        })?;
        // ObjectId's order, which is not the order of its string form.
        objects.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(objects)
    }

    fn audit_records(&self, from: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let from = i64::try_from(from).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_reader(|conn| open::read_audit(conn, from, limit))
    }

    fn check_health(&self) -> Result<(), StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        // Before the liveness check: after a failure the writer thread also
        // stops, and the failure is what the operator needs to see.
        if self.committer.failed() {
            return Err(StoreError::Io(
                "the store's writer failed and stopped; restart the signer".into(),
            ));
        }
        let alive = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|h| !h.is_finished());
        if !alive {
            return Err(StoreError::Closed);
        }
        self.file.check(&self.path)?;
        if let Some(corruption) = self.shared.corruption() {
            return Err(corruption);
        }
        let busy_since = self.shared.busy_since_ms.load(Ordering::Relaxed);
        let busy_for = now_ms().saturating_sub(busy_since);
        let threshold = u64::try_from(self.options.stall_threshold.as_millis()).unwrap_or(u64::MAX);
        if busy_since != 0 && busy_for > threshold {
            return Err(StoreError::Io(format!(
                "the writer has been in one commit for {busy_for} ms"
            )));
        }
        match self.shared.last_failure() {
            None => Ok(()),
            // The last batch failed: a real durable write about as large
            // as that batch tells whether commits work again; if it
            // commits, health is restored.
            Some(_) => {
                let bytes = self.shared.probe_bytes.load(Ordering::Relaxed);
                self.request(Item::Probe {
                    bytes: usize::try_from(bytes).unwrap_or(PROBE_MIN_BYTES),
                })
            }
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}
