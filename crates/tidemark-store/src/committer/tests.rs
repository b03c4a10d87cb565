//! The committer when a batch panics (a bug): nobody waits forever, nothing
//! half-written is committed, and the store reports itself down.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use tidemark_core::{
    AuditEntry, AuditOutcome, Digest, Mark, StateStore, StateWrite, StoreError, StoredState,
};

use crate::SqliteStore;
use crate::test_support::{entry, object};
use crate::writer::PANIC_IN_NEXT_BATCH;

fn commit(store: &SqliteStore, kind: &str) -> Result<(), StoreError> {
    let object = object(kind);
    let write = StateWrite {
        object: object.clone(),
        expected_version: 0,
        new: StoredState {
            version: 1,
            state: br#"{"h":1}"#.to_vec(),
            mark: Mark::none().with("height", 1),
            digest: Digest([1; 32]),
            signatures: vec![],
        },
    };
    let audit = entry(&object);
    store.commit(write, audit)
}

/// Runs `f` on another thread and fails the test if it takes over 10 s.
fn within_10s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("call did not return: a caller would wait forever")
}

#[test]
fn a_panicking_batch_stops_the_store_without_stranding_anyone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = Arc::new(SqliteStore::create(&path).unwrap());
    commit(&store, "before").unwrap();

    // This thread leads its own batch (nothing else is queued), and that
    // batch panics mid-transaction.
    PANIC_IN_NEXT_BATCH.with(|p| p.set(true));
    assert_eq!(commit(&store, "panicked"), Err(StoreError::Closed));

    // Later callers are refused at once, never left waiting.
    let s = Arc::clone(&store);
    assert_eq!(
        within_10s(move || commit(&s, "after")),
        Err(StoreError::Closed)
    );
    let s = Arc::clone(&store);
    let audit = within_10s(move || {
        s.audit(AuditEntry {
            time_ms: 1,
            client: "replica-a".into(),
            object: "x".into(),
            outcome: AuditOutcome::Refused,
            tag: Some("hwm-double-sign".into()),
            mark: Mark::none(),
            digest: None,
        })
    });
    assert_eq!(audit, Err(StoreError::Closed));
    assert!(matches!(store.check_health(), Err(StoreError::Io(_))));
    let s = Arc::clone(&store);
    within_10s(move || s.close());

    // Nothing of the panicked batch was committed; what came before was.
    drop(store);
    let reopened = SqliteStore::open(&path).unwrap();
    assert!(reopened.load(&object("before")).unwrap().is_some());
    assert!(reopened.load(&object("panicked")).unwrap().is_none());
    assert!(reopened.load(&object("after")).unwrap().is_none());
}
