//! Tuning knobs of a store. The defaults suit a signer; none of them can
//! weaken durability (`synchronous=FULL` and the fsync per batch are not
//! options).

use std::time::Duration;

/// How a [`SqliteStore`](crate::SqliteStore) runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreOptions {
    /// Most requests the writer puts in one transaction (default 1024).
    pub max_batch: usize,
    /// Requests that may wait in the writer's queue before callers block
    /// (default 4096).
    pub queue_capacity: usize,
    /// A cap on the database size in pages (`PRAGMA max_page_count`);
    /// a write past it fails with `Full`. `None`: no cap (default).
    pub max_page_count: Option<u64>,
    /// How many of the newest audit records `open` verifies against their
    /// hashes (default 1024). The sequence numbers of the whole log are
    /// always checked for gaps; the whole chain is checked by
    /// [`SqliteStore::verify_audit_chain`](crate::SqliteStore::verify_audit_chain).
    pub audit_tail_check: usize,
    /// Idle read connections kept open for reuse (default 4).
    pub idle_readers: usize,
    /// How long a connection waits for a lock held by another process
    /// (default 5 s).
    pub busy_timeout: Duration,
    /// A commit in flight for longer than this makes `check_health` fail
    /// (default 10 s): a writer stuck in fsync is not a healthy writer.
    pub stall_threshold: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_batch: 1024,
            queue_capacity: 4096,
            max_page_count: None,
            audit_tail_check: 1024,
            idle_readers: 4,
            busy_timeout: Duration::from_secs(5),
            stall_threshold: Duration::from_secs(10),
        }
    }
}

impl StoreOptions {
    /// Sets [`StoreOptions::max_batch`] (at least 1).
    pub fn with_max_batch(mut self, n: usize) -> Self {
        self.max_batch = n.max(1);
        self
    }

    /// Sets [`StoreOptions::queue_capacity`] (at least 1).
    pub fn with_queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = n.max(1);
        self
    }

    /// Sets [`StoreOptions::max_page_count`].
    pub fn with_max_page_count(mut self, pages: Option<u64>) -> Self {
        self.max_page_count = pages;
        self
    }

    /// Sets [`StoreOptions::audit_tail_check`].
    pub fn with_audit_tail_check(mut self, records: usize) -> Self {
        self.audit_tail_check = records;
        self
    }

    /// Sets [`StoreOptions::idle_readers`].
    pub fn with_idle_readers(mut self, n: usize) -> Self {
        self.idle_readers = n;
        self
    }

    /// Sets [`StoreOptions::busy_timeout`].
    pub fn with_busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Sets [`StoreOptions::stall_threshold`].
    pub fn with_stall_threshold(mut self, threshold: Duration) -> Self {
        self.stall_threshold = threshold;
        self
    }
}
