//! Group commit under concurrency, compare-and-swap, the audit chain and
//! shutdown.

// Test helpers outside #[test] functions may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Barrier};
use std::thread;

use common::{db_path, entry, object, state, temp_dir, write};
use tidemark_core::{AuditOutcome, GENESIS_HASH, StateStore, StoreError, verify_chain};
use tidemark_store::SqliteStore;

#[test]
fn hundreds_of_concurrent_commits_are_all_durable_and_share_fsyncs() {
    const CALLERS: usize = 500;
    let dir = temp_dir();
    let store = Arc::new(SqliteStore::create(db_path(&dir)).unwrap());
    let start = Arc::new(Barrier::new(CALLERS));
    let callers: Vec<_> = (0..CALLERS)
        .map(|i| {
            let (store, start) = (Arc::clone(&store), Arc::clone(&start));
            thread::spawn(move || {
                let o = object(&format!("obj-{i}"));
                start.wait();
                store.commit(
                    write(&o, 0, &format!("p{i}")),
                    entry(&o, AuditOutcome::Signed),
                )
            })
        })
        .collect();
    for (i, caller) in callers.into_iter().enumerate() {
        assert_eq!(caller.join().unwrap(), Ok(()), "caller {i}");
    }
    let m = store.metrics();
    assert_eq!(m.commits, CALLERS as u64);
    assert!(
        m.batches < CALLERS as u64,
        "no batching happened: {} batches for {CALLERS} commits",
        m.batches
    );
    assert!(m.max_batch_size > 1);
    assert_eq!(m.batch_sizes.count, m.batches);
    assert_eq!(m.commit_latency_us.count, CALLERS as u64);
    assert_eq!(
        (m.failed_batches, m.failed_commits, m.audit_dropped),
        (0, 0, 0)
    );
    drop(store);

    let store = SqliteStore::open(db_path(&dir)).unwrap();
    for i in 0..CALLERS {
        let s = store.load(&object(&format!("obj-{i}"))).unwrap().unwrap();
        assert_eq!(s.version, 1, "obj-{i}");
        assert_eq!(s.state, state(&format!("p{i}")));
    }
    assert_eq!(store.objects().unwrap().len(), CALLERS);
    assert_eq!(
        store.verify_audit_chain().unwrap().unwrap().0,
        CALLERS as u64
    );
}

#[test]
fn two_writers_racing_on_one_version_exactly_one_wins() {
    let dir = temp_dir();
    let store = Arc::new(SqliteStore::create(db_path(&dir)).unwrap());
    for round in 0..20 {
        let o = object(&format!("race-{round}"));
        let start = Arc::new(Barrier::new(2));
        let racers: Vec<_> = ["left", "right"]
            .into_iter()
            .map(|payload| {
                let (store, start, o) = (Arc::clone(&store), Arc::clone(&start), o.clone());
                thread::spawn(move || {
                    start.wait();
                    let r = store.commit(write(&o, 0, payload), entry(&o, AuditOutcome::Signed));
                    (payload, r)
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        let winners: Vec<_> = racers.iter().filter(|(_, r)| r.is_ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {racers:?}");
        let loser = racers.iter().find(|(_, r)| r.is_err()).unwrap();
        assert_eq!(
            loser.1,
            Err(StoreError::Conflict {
                object: o.to_string(),
                expected: 0,
                found: 1
            })
        );
        let stored = store.load(&o).unwrap().unwrap();
        assert_eq!((stored.version, stored.state), (1, state(winners[0].0)));
    }
    // Conflicts write no audit record.
    assert_eq!(store.audit_records(1, 1000).unwrap().len(), 20);
}

#[test]
fn many_writers_on_one_version_in_shared_batches_exactly_one_wins() {
    const WRITERS: usize = 64;
    let dir = temp_dir();
    let store = Arc::new(SqliteStore::create(db_path(&dir)).unwrap());
    let o = object("contended");
    let start = Arc::new(Barrier::new(WRITERS));
    let results: Vec<_> = (0..WRITERS)
        .map(|i| {
            let (store, start, o) = (Arc::clone(&store), Arc::clone(&start), o.clone());
            thread::spawn(move || {
                start.wait();
                store.commit(
                    write(&o, 0, &format!("w{i}")),
                    entry(&o, AuditOutcome::Signed),
                )
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    for r in results.iter().filter(|r| r.is_err()) {
        assert!(
            matches!(
                r,
                Err(StoreError::Conflict {
                    expected: 0,
                    found: 1,
                    ..
                })
            ),
            "{r:?}"
        );
    }
    let m = store.metrics();
    assert_eq!((m.commits, m.conflicts), (1, WRITERS as u64 - 1));
    assert_eq!(store.load(&o).unwrap().unwrap().version, 1);
}

#[test]
fn load_and_retry_loops_serialise_every_increment() {
    const THREADS: u64 = 8;
    const EACH: u64 = 40;
    let dir = temp_dir();
    let store = Arc::new(SqliteStore::create(db_path(&dir)).unwrap());
    let o = object("counter");
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, o) = (Arc::clone(&store), o.clone());
            thread::spawn(move || {
                let mut won = Vec::new();
                while (won.len() as u64) < EACH {
                    let current = store.load(&o).unwrap().map_or(0, |s| s.version);
                    let payload = format!("t{t}");
                    match store.commit(
                        write(&o, current, &payload),
                        entry(&o, AuditOutcome::Signed),
                    ) {
                        Ok(()) => won.push(current + 1),
                        Err(StoreError::Conflict { .. }) => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
                won
            })
        })
        .collect();
    let mut versions: Vec<u64> = workers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    versions.sort_unstable();
    // Every version from 1 to N was won by exactly one writer.
    assert_eq!(versions, (1..=THREADS * EACH).collect::<Vec<_>>());
    assert_eq!(store.load(&o).unwrap().unwrap().version, THREADS * EACH);
    let records = store.audit_records(1, usize::MAX).unwrap();
    assert_eq!(records.len() as u64, THREADS * EACH);
}

#[test]
fn commits_and_audit_entries_form_one_chain_across_reopen() {
    let dir = temp_dir();
    let path = db_path(&dir);
    let mut expected_entries = Vec::new();
    for session in 0..3u64 {
        let store = if session == 0 {
            SqliteStore::create(&path).unwrap()
        } else {
            SqliteStore::open(&path).unwrap()
        };
        for i in 0..10u64 {
            let o = object(&format!("obj-{i}"));
            let refused = entry(&o, AuditOutcome::Refused);
            store.audit(refused.clone()).unwrap();
            expected_entries.push(refused);
            let signed = entry(&o, AuditOutcome::Signed);
            store
                .commit(write(&o, session, &format!("s{session}")), signed.clone())
                .unwrap();
            expected_entries.push(signed);
        }
        // Fire-and-forget entries queued last are written by close.
        let replayed = entry(&object("obj-0"), AuditOutcome::Replayed);
        store.audit(replayed.clone()).unwrap();
        expected_entries.push(replayed);
        store.close();
    }
    let store = SqliteStore::open(&path).unwrap();
    let records = store.audit_records(1, usize::MAX).unwrap();
    let entries: Vec<_> = records.iter().map(|r| r.entry.clone()).collect();
    assert_eq!(entries, expected_entries);
    assert_eq!(
        verify_chain(&records, 0, GENESIS_HASH).unwrap().0,
        expected_entries.len() as u64
    );
    assert_eq!(
        store.verify_audit_chain().unwrap().unwrap(),
        (records.len() as u64, records.last().unwrap().hash)
    );
    // Paging: a window verifies against the record before it.
    let window = store.audit_records(11, 5).unwrap();
    assert_eq!(
        window.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![11, 12, 13, 14, 15]
    );
    verify_chain(&window, 10, records[9].hash).unwrap();
    assert_eq!(store.metrics().audit_dropped, 0);
}

#[test]
fn an_audit_entry_is_durable_once_a_later_commit_returns() {
    let dir = temp_dir();
    let store = SqliteStore::create(db_path(&dir)).unwrap();
    let o = object("a");
    store.audit(entry(&o, AuditOutcome::Denied)).unwrap();
    store
        .commit(write(&o, 0, "x"), entry(&o, AuditOutcome::Signed))
        .unwrap();
    let records = store.audit_records(1, 10).unwrap();
    let outcomes: Vec<_> = records.iter().map(|r| r.entry.outcome).collect();
    assert_eq!(outcomes, vec![AuditOutcome::Denied, AuditOutcome::Signed]);
}

#[test]
fn an_invalid_write_is_refused_and_stores_nothing() {
    let dir = temp_dir();
    let store = SqliteStore::create(db_path(&dir)).unwrap();
    let o = object("a");
    let mut skip = write(&o, 0, "x");
    skip.new.version = 2;
    assert!(matches!(
        store.commit(skip, entry(&o, AuditOutcome::Signed)),
        Err(StoreError::Invalid(_))
    ));
    let mut not_json = write(&o, 0, "x");
    not_json.new.state = b"{oops".to_vec();
    assert!(matches!(
        store.commit(not_json, entry(&o, AuditOutcome::Signed)),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.load(&o).unwrap(), None);
    assert!(store.audit_records(1, 10).unwrap().is_empty());
    assert_eq!(store.metrics().invalid_writes, 2);
}

#[test]
fn objects_are_listed_in_object_id_order() {
    let dir = temp_dir();
    let store = SqliteStore::create(db_path(&dir)).unwrap();
    let ids: Vec<tidemark_core::ObjectId> = [
        "lightning/c/k/x",
        "bitcoin/c/k/x",
        "consensus/c/k/x",
        "consensus/c/k-2/x",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    for o in &ids {
        store
            .commit(write(o, 0, "x"), entry(o, AuditOutcome::Signed))
            .unwrap();
    }
    let listed: Vec<_> = store
        .objects()
        .unwrap()
        .into_iter()
        .map(|(o, _)| o)
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(listed, sorted);
}

#[test]
fn close_answers_every_queued_commit_and_refuses_later_ones() {
    const CALLERS: usize = 64;
    let dir = temp_dir();
    let path = db_path(&dir);
    let store = Arc::new(SqliteStore::create(&path).unwrap());
    assert_eq!(store.check_health(), Ok(()));
    let start = Arc::new(Barrier::new(CALLERS + 1));
    let callers: Vec<_> = (0..CALLERS)
        .map(|i| {
            let (store, start) = (Arc::clone(&store), Arc::clone(&start));
            thread::spawn(move || {
                let o = object(&format!("obj-{i}"));
                start.wait();
                (
                    o.clone(),
                    store.commit(write(&o, 0, "x"), entry(&o, AuditOutcome::Signed)),
                )
            })
        })
        .collect();
    start.wait();
    store.close();
    let results: Vec<_> = callers.into_iter().map(|h| h.join().unwrap()).collect();
    for (_, r) in &results {
        assert!(matches!(r, Ok(()) | Err(StoreError::Closed)), "{r:?}");
    }
    let o = object("late");
    assert_eq!(
        store.commit(write(&o, 0, "x"), entry(&o, AuditOutcome::Signed)),
        Err(StoreError::Closed)
    );
    assert_eq!(
        store.audit(entry(&o, AuditOutcome::Denied)),
        Err(StoreError::Closed)
    );
    assert_eq!(store.load(&o), Err(StoreError::Closed));
    assert_eq!(store.check_health(), Err(StoreError::Closed));
    drop(store);

    // Exactly the commits that were answered Ok are there.
    let store = SqliteStore::open(&path).unwrap();
    for (o, r) in &results {
        assert_eq!(store.load(o).unwrap().is_some(), r.is_ok(), "{o}");
    }
}

/// `close` while commits are in flight always returns: the leader that
/// lets go last must wake the background thread, which waits for it before
/// it stops. Run many times to hit the interleavings.
#[test]
fn close_never_hangs_while_leaders_are_writing() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    for round in 0..100 {
        let dir = temp_dir();
        let store = Arc::new(SqliteStore::create(db_path(&dir)).unwrap());
        let committed = Arc::new(AtomicUsize::new(0));
        // One committer leaves the queue empty when it lets go of
        // leadership, the case where nobody else would wake the background.
        let committers: Vec<_> = (0..1 + round % 4)
            .map(|t| {
                let (store, committed) = (Arc::clone(&store), Arc::clone(&committed));
                thread::spawn(move || {
                    for i in 0.. {
                        let o = object(&format!("r{round}-t{t}-{i}"));
                        match store.commit(write(&o, 0, "x"), entry(&o, AuditOutcome::Signed)) {
                            Ok(()) => committed.fetch_add(1, Ordering::SeqCst),
                            Err(_) => break,
                        };
                    }
                })
            })
            .collect();
        // Close while leaders are in the middle of writing.
        while committed.load(Ordering::SeqCst) < 1 + round % 7 {
            thread::yield_now();
        }
        let (done, closed) = std::sync::mpsc::channel();
        let closer = Arc::clone(&store);
        thread::spawn(move || {
            closer.close();
            let _ = done.send(());
        });
        assert!(
            closed
                .recv_timeout(std::time::Duration::from_secs(20))
                .is_ok(),
            "close() hung in round {round}"
        );
        for c in committers {
            c.join().unwrap();
        }
    }
}
