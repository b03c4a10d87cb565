//! A corrupt, truncated, missing, foreign or tampered store is refused,
//! never served as an empty one; what was committed is still there once
//! the damage is undone. Malformed rows are typed `Corrupt` errors.

// Test helpers outside #[test] functions may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs;
use std::path::Path;

use common::{db_path, entry, object, state, temp_dir, write};
use tidemark_core::{AuditOutcome, ChainError, StateStore, StoreError};
use tidemark_store::{OpenError, SqliteStore, StoreOptions};

const OBJECTS: usize = 300;

/// A closed store holding `OBJECTS` committed objects and an audit entry
/// for each.
fn populated_store(path: &Path) {
    let store = SqliteStore::create(path).unwrap();
    for i in 0..OBJECTS {
        let o = object(&format!("obj-{i}"));
        store
            .commit(
                write(&o, 0, &format!("p{i}")),
                entry(&o, AuditOutcome::Signed),
            )
            .unwrap();
    }
    store.close();
    assert!(
        !common_wal_exists(path),
        "a clean close leaves everything in the main file"
    );
}

fn common_wal_exists(path: &Path) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    fs::metadata(wal).is_ok_and(|m| m.len() > 0)
}

/// Everything `populated_store` committed is there and verifies.
fn assert_everything_there(path: &Path) {
    let store = SqliteStore::open(path).unwrap();
    for i in 0..OBJECTS {
        let s = store.load(&object(&format!("obj-{i}"))).unwrap().unwrap();
        assert_eq!((s.version, s.state), (1, state(&format!("p{i}"))));
    }
    assert_eq!(
        store.verify_audit_chain().unwrap().unwrap().0,
        OBJECTS as u64
    );
}

fn is_corrupt(e: &OpenError) -> bool {
    matches!(e.store_error(), Some(StoreError::Corrupt(_)))
}

/// Deterministic garbage.
fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn garbage_over_any_page_is_refused_and_nothing_committed_is_lost() {
    let dir = temp_dir();
    let path = db_path(&dir);
    populated_store(&path);
    let original = fs::read(&path).unwrap();
    let page_size = match u16::from_be_bytes([original[16], original[17]]) {
        1 => 65536,
        n => n as usize,
    };
    let pages = original.len() / page_size;
    assert!(pages > 5, "the store spans {pages} pages");
    for page in 0..pages {
        let mut damaged = original.clone();
        damaged[page * page_size..(page + 1) * page_size]
            .copy_from_slice(&garbage(page as u64 + 1, page_size));
        fs::write(&path, &damaged).unwrap();
        let err = SqliteStore::open(&path).unwrap_err();
        assert!(
            is_corrupt(&err) || matches!(err, OpenError::AuditChain { .. }),
            "page {page}: {err:?}"
        );
        // Refusing did not "repair" the file into something else.
        assert_eq!(fs::read(&path).unwrap(), damaged, "page {page}");
    }
    fs::write(&path, &original).unwrap();
    assert_everything_there(&path);
}

#[test]
fn an_empty_file_is_refused_not_taken_for_a_new_store() {
    let dir = temp_dir();
    let path = db_path(&dir);
    populated_store(&path);
    let original = fs::read(&path).unwrap();
    fs::write(&path, b"").unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(is_corrupt(&err), "{err:?}");
    assert_eq!(fs::metadata(&path).unwrap().len(), 0, "open wrote to it");
    // Nor can it be created over.
    assert!(matches!(
        SqliteStore::create(&path),
        Err(OpenError::Exists { .. })
    ));
    fs::write(&path, &original).unwrap();
    assert_everything_there(&path);
}

#[test]
fn a_truncated_file_is_refused() {
    let dir = temp_dir();
    let path = db_path(&dir);
    populated_store(&path);
    let original = fs::read(&path).unwrap();
    let page_size = 4096;
    for len in [
        50,
        100,
        page_size,
        original.len() / 2 / page_size * page_size,
        original.len() - page_size,
        original.len() - 1,
    ] {
        fs::write(&path, &original[..len]).unwrap();
        let err = SqliteStore::open(&path).unwrap_err();
        assert!(is_corrupt(&err), "truncated to {len}: {err:?}");
    }
    fs::write(&path, &original).unwrap();
    assert_everything_there(&path);
}

#[test]
fn a_file_that_is_not_a_database_is_refused() {
    let dir = temp_dir();
    let path = db_path(&dir);
    fs::write(&path, garbage(7, 8192)).unwrap();
    assert!(is_corrupt(&SqliteStore::open(&path).unwrap_err()));
    fs::write(&path, b"{\"marks\": []}\n").unwrap();
    assert!(is_corrupt(&SqliteStore::open(&path).unwrap_err()));
}

#[test]
fn a_missing_file_is_refused_and_not_created() {
    let dir = temp_dir();
    let path = db_path(&dir);
    assert_eq!(
        SqliteStore::open(&path).unwrap_err(),
        OpenError::Missing { path: path.clone() }
    );
    assert!(!path.exists());
    // A store that existed and was deleted is refused the same way.
    populated_store(&path);
    fs::remove_file(&path).unwrap();
    assert!(matches!(
        SqliteStore::open(&path),
        Err(OpenError::Missing { .. })
    ));
    assert!(!path.exists());
}

#[test]
fn create_refuses_an_existing_store_or_a_leftover_wal() {
    let dir = temp_dir();
    let path = db_path(&dir);
    populated_store(&path);
    assert_eq!(
        SqliteStore::create(&path).unwrap_err(),
        OpenError::Exists { path: path.clone() }
    );
    assert_everything_there(&path);

    let other = dir.path().join("other.db");
    let mut wal = other.as_os_str().to_owned();
    wal.push("-wal");
    fs::write(&wal, b"stale frames").unwrap();
    assert!(matches!(
        SqliteStore::create(&other),
        Err(OpenError::Exists { .. })
    ));
    assert!(!other.exists());
}

#[test]
fn a_sqlite_file_of_another_program_is_refused_untouched() {
    let dir = temp_dir();
    let path = db_path(&dir);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(conn);
    let before = fs::read(&path).unwrap();
    assert_eq!(
        SqliteStore::open(&path).unwrap_err(),
        OpenError::Foreign {
            path: path.clone(),
            found: 0
        }
    );
    assert_eq!(fs::read(&path).unwrap(), before);
}

fn raw(path: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(sql).unwrap();
}

#[test]
fn a_newer_schema_is_refused_untouched() {
    let dir = temp_dir();
    let path = db_path(&dir);
    populated_store(&path);
    raw(&path, "PRAGMA user_version = 99;");
    let before = fs::read(&path).unwrap();
    assert_eq!(
        SqliteStore::open(&path).unwrap_err(),
        OpenError::NewerSchema {
            path: path.clone(),
            found: 99,
            supported: 1
        }
    );
    assert_eq!(fs::read(&path).unwrap(), before);
    raw(&path, "PRAGMA user_version = 1;");
    assert_everything_there(&path);
}

#[test]
fn a_tampered_audit_record_is_detected() {
    let dir = temp_dir();
    let path = db_path(&dir);
    populated_store(&path);

    // Edited: open refuses, naming the record.
    raw(
        &path,
        "UPDATE audit SET client = 'mallory' WHERE seq = 290;",
    );
    match SqliteStore::open(&path).unwrap_err() {
        OpenError::AuditChain { source, .. } => assert_eq!(source, ChainError::Altered(290)),
        other => panic!("{other:?}"),
    }
    raw(
        &path,
        "UPDATE audit SET client = 'replica-a' WHERE seq = 290;",
    );
    assert_everything_there(&path);

    // Deleted, anywhere in the log: the sequence check catches it.
    let saved = fs::read(&path).unwrap();
    raw(&path, "DELETE FROM audit WHERE seq = 3;");
    match SqliteStore::open(&path).unwrap_err() {
        OpenError::AuditChain { source, .. } => {
            assert_eq!(
                source,
                ChainError::Gap {
                    previous: 2,
                    found: 4
                }
            )
        }
        other => panic!("{other:?}"),
    }
    fs::write(&path, &saved).unwrap();

    // Edited before the window open checks: the full verification finds it.
    raw(&path, "UPDATE audit SET outcome = 'refused' WHERE seq = 5;");
    let store =
        SqliteStore::open_with(&path, StoreOptions::default().with_audit_tail_check(10)).unwrap();
    assert_eq!(
        store.verify_audit_chain().unwrap(),
        Err(ChainError::Altered(5))
    );
    drop(store);
    assert!(matches!(
        SqliteStore::open(&path),
        Err(OpenError::AuditChain { .. })
    ));
}

/// One malformed row written behind the store's back, and what reading it
/// must say.
#[test]
fn malformed_object_rows_are_corrupt_errors_not_panics() {
    let cases = [
        (
            "state is not JSON",
            "UPDATE objects SET state = X'7B7B7B' WHERE object LIKE '%obj-1'",
        ),
        (
            "state is empty",
            "UPDATE objects SET state = X'' WHERE object LIKE '%obj-1'",
        ),
        (
            "mark is not JSON",
            "UPDATE objects SET mark = 'height=7' WHERE object LIKE '%obj-1'",
        ),
        (
            "mark has the wrong shape",
            "UPDATE objects SET mark = '{\"height\":7}' WHERE object LIKE '%obj-1'",
        ),
        (
            "digest is short",
            "UPDATE objects SET digest = X'0102' WHERE object LIKE '%obj-1'",
        ),
        (
            "signatures are not hex",
            "UPDATE objects SET signatures = '[\"zz\"]' WHERE object LIKE '%obj-1'",
        ),
        (
            "version is negative",
            "UPDATE objects SET version = -1 WHERE object LIKE '%obj-1'",
        ),
        (
            "object id is invalid",
            "UPDATE objects SET object = 'nope/x' WHERE object LIKE '%obj-1'",
        ),
    ];
    for (what, sql) in cases {
        let dir = temp_dir();
        let path = db_path(&dir);
        let store = SqliteStore::create(&path).unwrap();
        for name in ["obj-1", "obj-2"] {
            let o = object(name);
            store
                .commit(write(&o, 0, name), entry(&o, AuditOutcome::Signed))
                .unwrap();
        }
        store.close();
        raw(&path, sql);
        let store = SqliteStore::open(&path).unwrap();
        if what != "object id is invalid" {
            let err = store.load(&object("obj-1")).unwrap_err();
            assert!(matches!(err, StoreError::Corrupt(_)), "{what}: {err:?}");
        }
        let err = store.objects().unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{what}: {err:?}");
        // The intact neighbour is still served, and the store still works.
        assert_eq!(store.load(&object("obj-2")).unwrap().unwrap().version, 1);
        let o = object("obj-3");
        store
            .commit(write(&o, 0, "x"), entry(&o, AuditOutcome::Signed))
            .unwrap();
        // But it reports itself not healthy from the first corrupt read on,
        // even after a commit succeeded: an operator must look at the file.
        assert!(
            matches!(store.check_health(), Err(StoreError::Corrupt(_))),
            "{what}: a store that read corruption must not report healthy"
        );
    }
}

#[test]
fn a_healthy_store_reports_healthy() {
    let dir = temp_dir();
    let store = SqliteStore::create(db_path(&dir)).unwrap();
    let o = object("obj-1");
    store
        .commit(write(&o, 0, "x"), entry(&o, AuditOutcome::Signed))
        .unwrap();
    store.load(&o).unwrap();
    assert_eq!(store.check_health(), Ok(()));
}

#[test]
fn a_malformed_audit_row_is_corrupt() {
    let dir = temp_dir();
    let path = db_path(&dir);
    populated_store(&path);
    raw(&path, "UPDATE audit SET outcome = 'bogus' WHERE seq = 299;");
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(is_corrupt(&err), "{err:?}");

    // Outside the window open checks, reading it is the typed error.
    let store =
        SqliteStore::open_with(&path, StoreOptions::default().with_audit_tail_check(0)).unwrap();
    assert!(matches!(
        store.audit_records(290, 20),
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        store.verify_audit_chain(),
        Err(StoreError::Corrupt(_))
    ));
    assert_eq!(store.audit_records(1, 10).unwrap().len(), 10);
}

#[test]
fn a_store_whose_file_is_deleted_or_replaced_while_open_stops_committing() {
    let dir = temp_dir();
    let path = db_path(&dir);
    let store = SqliteStore::create(&path).unwrap();
    let o = object("a");
    store
        .commit(write(&o, 0, "x"), entry(&o, AuditOutcome::Signed))
        .unwrap();
    let saved = dir.path().join("saved.db");
    fs::rename(&path, &saved).unwrap();
    // Commits would land in a file nobody will open again: refused.
    assert!(matches!(
        store.commit(write(&o, 1, "y"), entry(&o, AuditOutcome::Signed)),
        Err(StoreError::Io(_))
    ));
    assert!(matches!(store.check_health(), Err(StoreError::Io(_))));
    // Something else put in its place is not the store's file either.
    fs::write(&path, b"not the store").unwrap();
    assert!(matches!(
        store.commit(write(&o, 1, "y"), entry(&o, AuditOutcome::Signed)),
        Err(StoreError::Io(_))
    ));
    // Moved back, the store carries on where it was.
    fs::rename(&saved, &path).unwrap();
    store
        .commit(write(&o, 1, "y"), entry(&o, AuditOutcome::Signed))
        .unwrap();
    assert_eq!(store.check_health(), Ok(()));
}

#[test]
fn a_crash_left_wal_is_replayed_and_a_garbled_one_is_refused() {
    let dir = temp_dir();
    let path = db_path(&dir);
    populated_store(&path);
    let store = SqliteStore::open(&path).unwrap();
    let o = object("only-in-the-wal");
    store
        .commit(write(&o, 0, "late"), entry(&o, AuditOutcome::Signed))
        .unwrap();
    // A crash snapshot: the files as they are on disk while the store runs.
    let snapshot = |name: &str| {
        let copy = dir.path().join(name);
        fs::copy(&path, &copy).unwrap();
        let (mut from, mut to) = (path.as_os_str().to_owned(), copy.as_os_str().to_owned());
        from.push("-wal");
        to.push("-wal");
        fs::copy(&from, &to).unwrap();
        (copy, std::path::PathBuf::from(to))
    };
    let (intact, _) = snapshot("intact.db");
    let (garbled, garbled_wal) = snapshot("garbled.db");
    drop(store);

    // The commit lives only in the WAL, and opening replays it.
    let reopened = SqliteStore::open(&intact).unwrap();
    assert_eq!(reopened.load(&o).unwrap().unwrap().state, state("late"));
    drop(reopened);

    // SQLite would ignore a WAL with a bad header and serve older marks.
    let mut wal = fs::read(&garbled_wal).unwrap();
    wal[..32].copy_from_slice(&garbage(3, 32));
    fs::write(&garbled_wal, &wal).unwrap();
    let err = SqliteStore::open(&garbled).unwrap_err();
    assert!(is_corrupt(&err), "{err:?}");
}
