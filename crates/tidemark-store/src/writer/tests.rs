//! The batch logic, driven directly: these tests choose exactly which
//! requests share one transaction.

use tidemark_core::{Digest, Mark, StateWrite, StoredState, verify_chain};

use super::*;
use crate::open::{create, read_audit};
use crate::options::StoreOptions;
use crate::test_support::{entry, object};

fn commit_with_state(kind: &str, expected: u64, state: Vec<u8>) -> Request {
    let object = object(kind);
    let write = codec::encode_write(&StateWrite {
        object: object.clone(),
        expected_version: expected,
        new: StoredState {
            version: expected + 1,
            state,
            mark: Mark::none().with("height", expected + 1),
            digest: Digest([expected as u8; 32]),
            signatures: vec![],
        },
    })
    .unwrap();
    Request {
        item: Item::Commit {
            write,
            audit: entry(&object),
        },
        reply: None,
    }
}

fn commit(kind: &str, expected: u64) -> Request {
    commit_with_state(kind, expected, br#"{"h":1}"#.to_vec())
}

fn audit_only(kind: &str) -> Request {
    Request {
        item: Item::Audit(entry(&object(kind))),
        reply: None,
    }
}

fn version(conn: &Connection, kind: &str) -> Option<i64> {
    conn.query_row(
        "SELECT version FROM objects WHERE object = ?1",
        [object(kind).to_string()],
        |r| r.get(0),
    )
    .ok()
}

fn new_store() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let conn = create(&dir.path().join("store.db"), &StoreOptions::default()).unwrap();
    (dir, conn)
}

#[test]
fn two_writes_to_one_object_in_one_batch_see_each_other() {
    let (_dir, conn) = new_store();
    let batch = [
        commit("a", 0),
        commit("a", 1),
        // Stale: it expects the version before both writes above.
        commit("a", 0),
        // Stale: it expects the version between them.
        commit("a", 1),
        commit("b", 0),
        audit_only("c"),
    ];
    let outcomes = apply_batch(&conn, &batch, 1).unwrap();
    let conflict = |expected, found| {
        Err(StoreError::Conflict {
            object: object("a").to_string(),
            expected,
            found,
        })
    };
    assert_eq!(
        outcomes,
        vec![
            Ok(()),
            Ok(()),
            conflict(0, 2),
            conflict(1, 2),
            Ok(()),
            Ok(())
        ]
    );
    assert_eq!(version(&conn, "a"), Some(2));
    assert_eq!(version(&conn, "b"), Some(1));
    // Three writes and one audit-only entry; nothing for the conflicts.
    let records = read_audit(&conn, 1, 100).unwrap();
    assert_eq!(records.len(), 4);
    assert_eq!(verify_chain(&records, 0, GENESIS_HASH).unwrap().0, 4);
}

#[test]
fn a_batch_that_hits_a_full_disk_changes_nothing() {
    let (_dir, conn) = new_store();
    apply_batch(&conn, &[commit("before", 0)], 1).unwrap();
    let head = audit_head(&conn).unwrap();
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
        .unwrap();

    let big = format!("\"{}\"", "x".repeat(64 * 1024)).into_bytes();
    let batch = [
        commit("small", 0),
        audit_only("small"),
        commit_with_state("big", 0, big),
    ];
    let err = apply_batch(&conn, &batch, 2).unwrap_err();
    assert!(matches!(err, StoreError::Full(_)), "{err:?}");
    assert!(conn.is_autocommit(), "the failed transaction is closed");
    // The small write ahead of the big one in the same batch is gone too.
    assert_eq!(version(&conn, "small"), None);
    assert_eq!(version(&conn, "before"), Some(1));
    assert_eq!(audit_head(&conn).unwrap(), head);

    // With room again, the same writes commit and chain onto the old head.
    conn.query_row("PRAGMA max_page_count = 1000000", [], |_| Ok(()))
        .unwrap();
    let outcomes = apply_batch(&conn, &batch, 3).unwrap();
    assert!(outcomes.iter().all(Result::is_ok));
    let records = read_audit(&conn, 1, 100).unwrap();
    assert_eq!(verify_chain(&records, 0, GENESIS_HASH).unwrap().0, 4);
}

#[test]
fn a_corrupt_stored_version_fails_only_its_own_write() {
    let (_dir, conn) = new_store();
    apply_batch(&conn, &[commit("a", 0)], 1).unwrap();
    conn.execute(
        "UPDATE objects SET version = -5 WHERE object = ?1",
        [object("a").to_string()],
    )
    .unwrap();
    let outcomes = apply_batch(&conn, &[commit("a", 1), commit("b", 0)], 2).unwrap();
    assert!(matches!(outcomes[0], Err(StoreError::Corrupt(_))));
    assert_eq!(outcomes[1], Ok(()));
    assert_eq!(version(&conn, "a"), Some(-5));
}

#[test]
fn a_probe_is_a_real_write() {
    let (_dir, conn) = new_store();
    let probe = Request {
        item: Item::Probe { bytes: 10_000 },
        reply: None,
    };
    assert_eq!(apply_batch(&conn, &[probe], 42).unwrap(), vec![Ok(())]);
    let value: String = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'last_probe_ms'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(value, "42");
    let retained: i64 = conn
        .query_row(
            "SELECT length(value) FROM meta WHERE key = 'probe'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(retained, 10_000);
}

#[test]
fn a_probe_fails_while_the_store_has_no_room_for_it() {
    let (_dir, conn) = new_store();
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    conn.query_row(
        &format!("PRAGMA max_page_count = {}", pages + 4),
        [],
        |_| Ok(()),
    )
    .unwrap();
    let probe = |bytes| Request {
        item: Item::Probe { bytes },
        reply: None,
    };
    assert!(matches!(
        apply_batch(&conn, &[probe(64 * 1024)], 1),
        Err(StoreError::Full(_))
    ));
    assert_eq!(apply_batch(&conn, &[probe(1000)], 1).unwrap(), vec![Ok(())]);
}

#[test]
fn created_and_reopened_writers_run_wal_with_synchronous_full() {
    let settings = |conn: &Connection| -> (String, i64) {
        let mode = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let sync = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        (mode, sync)
    };
    let (dir, created) = new_store();
    // synchronous 2 = FULL: COMMIT returns after the WAL is fsync'd.
    assert_eq!(settings(&created), ("wal".to_owned(), 2));
    drop(created);
    let reopened =
        crate::open::open(&dir.path().join("store.db"), &StoreOptions::default()).unwrap();
    assert_eq!(settings(&reopened), ("wal".to_owned(), 2));
}
