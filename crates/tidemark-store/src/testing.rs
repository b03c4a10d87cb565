//! A test double for the domains' persist-before-release tests: the real
//! store, whose commits fail as on a full disk. It is only ever used
//! beside the real store (disk-full is also tested on a real full tmpfs in
//! this crate's `tests/disk_full.rs`).

use std::sync::Arc;

use tidemark_core::{
    AuditEntry, AuditRecord, ObjectId, StateStore, StateWrite, StoreError, StoredState,
};

use crate::SqliteStore;

/// Reads and audits go to the wrapped store; every commit fails with
/// [`StoreError::Full`] and writes nothing.
#[derive(Debug, Clone)]
pub struct FailingCommits(pub Arc<SqliteStore>);

impl FailingCommits {
    fn full() -> StoreError {
        StoreError::Full("injected: commits fail as on a full disk".into())
    }
}

impl StateStore for FailingCommits {
    fn load(&self, object: &ObjectId) -> Result<Option<StoredState>, StoreError> {
        self.0.load(object)
    }

    fn commit(&self, _: StateWrite, _: AuditEntry) -> Result<(), StoreError> {
        Err(Self::full())
    }

    fn commit_all(&self, _: Vec<StateWrite>, _: AuditEntry) -> Result<(), StoreError> {
        Err(Self::full())
    }

    fn audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        self.0.audit(entry)
    }

    fn objects(&self) -> Result<Vec<(ObjectId, StoredState)>, StoreError> {
        self.0.objects()
    }

    fn audit_records(&self, from: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        self.0.audit_records(from, limit)
    }

    fn check_health(&self) -> Result<(), StoreError> {
        self.0.check_health()
    }
}
