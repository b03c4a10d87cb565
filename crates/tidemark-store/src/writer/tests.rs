//! The batch logic, driven directly: these tests choose exactly which
//! requests share one transaction.

use tidemark_core::{Digest, Mark, StateWrite, StoredState, verify_chain};

use super::*;
use crate::open::{create, read_audit};
use crate::options::StoreOptions;
use crate::test_support::{entry, object};

fn encoded(kind: &str, expected: u64, state: Vec<u8>) -> EncodedWrite {
    codec::encode_write(&StateWrite {
        object: object(kind),
        expected_version: expected,
        new: StoredState {
            version: expected + 1,
            state,
            mark: Mark::none().with("height", expected + 1),
            digest: Digest([expected as u8; 32]),
            signatures: vec![],
        },
    })
    .unwrap()
}

fn commit_with_state(kind: &str, expected: u64, state: Vec<u8>) -> Request {
    Request {
        item: Item::Commit {
            writes: vec![encoded(kind, expected, state)],
            audit: entry(&object(kind)),
        },
        reply: None,
    }
}

fn commit(kind: &str, expected: u64) -> Request {
    commit_with_state(kind, expected, br#"{"h":1}"#.to_vec())
}

/// One commit of several `(kind, expected)` writes, audited under the
/// first.
fn commit_all(writes: &[(&str, u64)]) -> Request {
    Request {
        item: Item::Commit {
            writes: writes
                .iter()
                .map(|&(kind, expected)| encoded(kind, expected, br#"{"h":1}"#.to_vec()))
                .collect(),
            audit: entry(&object(writes[0].0)),
        },
        reply: None,
    }
}

fn audit_count(conn: &Connection) -> usize {
    read_audit(conn, 1, 1000).unwrap().len()
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
fn one_stale_write_fails_its_whole_commit_and_nothing_else() {
    let (_dir, conn) = new_store();
    apply_batch(&conn, &[commit_all(&[("a", 0), ("b", 0), ("c", 0)])], 1).unwrap();
    let batch = [
        // b is stale; a and c, checked before and after it, are not.
        commit_all(&[("a", 1), ("b", 0), ("c", 1)]),
        commit("d", 0),
    ];
    let outcomes = apply_batch(&conn, &batch, 2).unwrap();
    assert_eq!(
        outcomes,
        vec![
            Err(StoreError::Conflict {
                object: object("b").to_string(),
                expected: 0,
                found: 1,
            }),
            Ok(())
        ]
    );
    for kind in ["a", "b", "c"] {
        assert_eq!(version(&conn, kind), Some(1), "{kind}");
    }
    assert_eq!(version(&conn, "d"), Some(1));
    // One record for the first commit_all, one for d; none for the conflict.
    assert_eq!(audit_count(&conn), 2);
}

#[test]
fn commits_of_one_and_of_several_objects_in_one_batch_see_each_other() {
    let (_dir, conn) = new_store();
    let conflict = |kind: &str, expected, found| {
        Err(StoreError::Conflict {
            object: object(kind).to_string(),
            expected,
            found,
        })
    };
    let batch = [
        commit_all(&[("a", 0), ("b", 0)]),
        // Stale against the commit_all just before it in the batch.
        commit("a", 0),
        commit("b", 1),
        // Stale on b (now 2): c, new and listed first, is not written.
        commit_all(&[("c", 0), ("b", 1)]),
        commit("c", 0),
        // Stale on c (now 1): a is left as it was.
        commit_all(&[("a", 1), ("c", 0)]),
        commit_all(&[("a", 1), ("c", 1), ("d", 0)]),
    ];
    let outcomes = apply_batch(&conn, &batch, 1).unwrap();
    assert_eq!(
        outcomes,
        vec![
            Ok(()),
            conflict("a", 0, 1),
            Ok(()),
            conflict("b", 1, 2),
            Ok(()),
            conflict("c", 0, 1),
            Ok(()),
        ]
    );
    let versions: Vec<_> = ["a", "b", "c", "d"]
        .into_iter()
        .map(|kind| version(&conn, kind))
        .collect();
    assert_eq!(versions, vec![Some(2), Some(2), Some(2), Some(1)]);
    // One audit record per commit that took effect, chained.
    let records = read_audit(&conn, 1, 100).unwrap();
    assert_eq!(records.len(), 4);
    assert_eq!(verify_chain(&records, 0, GENESIS_HASH).unwrap().0, 4);
}

#[test]
fn a_corrupt_row_fails_only_the_commit_that_reads_it_and_all_of_it() {
    let (_dir, conn) = new_store();
    apply_batch(&conn, &[commit_all(&[("a", 0), ("b", 0)])], 1).unwrap();
    conn.execute(
        "UPDATE objects SET version = 0 WHERE object = ?1",
        [object("b").to_string()],
    )
    .unwrap();
    let batch = [
        commit_all(&[("a", 1), ("b", 1), ("c", 0)]),
        commit_all(&[("a", 1), ("d", 0)]),
    ];
    let outcomes = apply_batch(&conn, &batch, 2).unwrap();
    assert!(
        matches!(outcomes[0], Err(StoreError::Corrupt(_))),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[1], Ok(()));
    // a was bumped by the second commit only; c never written.
    assert_eq!(version(&conn, "a"), Some(2));
    assert_eq!(version(&conn, "c"), None);
    assert_eq!(version(&conn, "d"), Some(1));
    assert_eq!(audit_count(&conn), 2);
}

#[test]
fn probe_size_and_wal_estimate_count_every_write_of_a_commit() {
    let one = [commit("a", 0)];
    let three = [commit_all(&[("a", 0), ("b", 0), ("c", 0)])];
    let w = encoded("a", 0, br#"{"h":1}"#.to_vec());
    let payload = w.state.len() + w.mark.len() + w.signatures.len() + w.object.len();
    // Two more writes, each at least its payload; still one audit record.
    assert!(batch_bytes(&three) >= batch_bytes(&one) + 2 * payload);
    assert_eq!((frames(&one), frames(&three)), (2, 4));
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
