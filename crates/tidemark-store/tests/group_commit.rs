//! Group commit under concurrency, compare-and-swap (of one object and of
//! several at once), the audit chain and shutdown.

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
fn commit_all_makes_every_write_durable_with_one_audit_record() {
    let dir = temp_dir();
    let (a, b, c) = (object("a"), object("b"), object("c"));
    let store = SqliteStore::create(db_path(&dir)).unwrap();
    store
        .commit_all(
            vec![write(&a, 0, "a1"), write(&b, 0, "b1")],
            entry(&a, AuditOutcome::Signed),
        )
        .unwrap();
    // An existing object and two new ones in one commit.
    store
        .commit_all(
            vec![write(&b, 1, "b2"), write(&a, 1, "a2"), write(&c, 0, "c1")],
            entry(&b, AuditOutcome::Signed),
        )
        .unwrap();
    assert_eq!(store.metrics().commits, 2);
    drop(store);

    let store = SqliteStore::open(db_path(&dir)).unwrap();
    let stored: Vec<_> = store
        .objects()
        .unwrap()
        .into_iter()
        .map(|(o, s)| (o, s.version, s.state))
        .collect();
    assert_eq!(
        stored,
        vec![
            (a, 2, state("a2")),
            (b, 2, state("b2")),
            (c, 1, state("c1"))
        ]
    );
    assert_eq!(store.verify_audit_chain().unwrap().unwrap().0, 2);
}

#[test]
fn one_stale_write_in_a_commit_all_applies_none_of_it() {
    let dir = temp_dir();
    let store = SqliteStore::create(db_path(&dir)).unwrap();
    let objects = [object("a"), object("b"), object("c")];
    let writes = |expected: [u64; 3], payload: &str| -> Vec<_> {
        objects
            .iter()
            .zip(expected)
            .map(|(o, e)| write(o, e, payload))
            .collect()
    };
    let signed = entry(&objects[0], AuditOutcome::Signed);
    store
        .commit_all(writes([0, 0, 0], "v1"), signed.clone())
        .unwrap();
    store
        .commit(write(&objects[1], 1, "v2"), signed.clone())
        .unwrap();
    let before = store.objects().unwrap();

    // b is at 2; a and c are where the commit expects them.
    assert_eq!(
        store.commit_all(writes([1, 1, 1], "lost"), signed.clone()),
        Err(StoreError::Conflict {
            object: objects[1].to_string(),
            expected: 1,
            found: 2,
        })
    );
    assert_eq!(store.objects().unwrap(), before);
    let versions: Vec<_> = before.iter().map(|(_, s)| s.version).collect();
    assert_eq!(versions, vec![1, 2, 1]);
    assert_eq!(store.audit_records(1, 100).unwrap().len(), 2);
    let m = store.metrics();
    assert_eq!((m.commits, m.conflicts), (2, 1));

    // Reloaded, the same decision commits.
    store.commit_all(writes([1, 2, 1], "v3"), signed).unwrap();
    assert_eq!(store.audit_records(1, 100).unwrap().len(), 3);
}

#[test]
fn an_empty_commit_all_or_one_naming_an_object_twice_is_invalid() {
    let dir = temp_dir();
    let store = SqliteStore::create(db_path(&dir)).unwrap();
    let (a, b) = (object("a"), object("b"));
    let signed = entry(&a, AuditOutcome::Signed);
    assert!(matches!(
        store.commit_all(vec![], signed.clone()),
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.commit_all(
            vec![write(&a, 0, "x"), write(&b, 0, "x"), write(&a, 1, "y")],
            signed.clone()
        ),
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.commit_all(vec![write(&a, 0, "x"), write(&a, 0, "x")], signed),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.objects().unwrap(), vec![]);
    assert!(store.audit_records(1, 10).unwrap().is_empty());
    let m = store.metrics();
    assert_eq!((m.invalid_writes, m.batches), (3, 0));
}

/// Every thread moves a shared ledger and its own object in one commit_all,
/// reloading and retrying on conflict. If a commit could apply in part, a
/// thread's own object would run ahead of its successes (its next commit
/// would conflict on it) or the ledger would miss increments.
#[test]
fn commit_all_under_group_commit_moves_a_shared_ledger_atomically() {
    const THREADS: usize = 12;
    const EACH: u64 = 15;
    let dir = temp_dir();
    let store = Arc::new(SqliteStore::create(db_path(&dir)).unwrap());
    let ledger = object("ledger");
    let start = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, start, ledger) = (Arc::clone(&store), Arc::clone(&start), ledger.clone());
            thread::spawn(move || {
                let own = object(&format!("wallet-{t}"));
                let mut conflicts = 0u64;
                start.wait();
                for done in 0..EACH {
                    loop {
                        let at = store.load(&ledger).unwrap().map_or(0, |s| s.version);
                        let payload = format!("t{t}-{done}");
                        match store.commit_all(
                            vec![write(&ledger, at, &payload), write(&own, done, &payload)],
                            entry(&own, AuditOutcome::Signed),
                        ) {
                            Ok(()) => break,
                            Err(StoreError::Conflict { object, .. }) => {
                                assert_eq!(object, ledger.to_string(), "thread {t}");
                                conflicts += 1;
                            }
                            Err(e) => panic!("thread {t}: {e}"),
                        }
                    }
                }
                conflicts
            })
        })
        .collect();
    let conflicts: u64 = workers.into_iter().map(|h| h.join().unwrap()).sum();
    let successes = THREADS as u64 * EACH;
    let m = store.metrics();
    assert_eq!((m.commits, m.conflicts), (successes, conflicts));
    assert!(m.max_batch_size > 1, "no two commits shared a batch");
    drop(store);

    let store = SqliteStore::open(db_path(&dir)).unwrap();
    assert_eq!(store.load(&ledger).unwrap().unwrap().version, successes);
    for t in 0..THREADS {
        let own = store.load(&object(&format!("wallet-{t}"))).unwrap();
        assert_eq!(own.map(|s| s.version), Some(EACH), "wallet-{t}");
    }
    assert_eq!(store.verify_audit_chain().unwrap().unwrap().0, successes);
}

/// A commit_all and a single commit racing on one of its objects, so they
/// often share a batch: exactly one wins, and the commit_all's other object
/// exists exactly when it won.
#[test]
fn a_commit_all_racing_a_commit_on_one_of_its_objects_exactly_one_wins() {
    let dir = temp_dir();
    let store = Arc::new(SqliteStore::create(db_path(&dir)).unwrap());
    for round in 0..30 {
        let (shared, other) = (
            object(&format!("shared-{round}")),
            object(&format!("other-{round}")),
        );
        let start = Arc::new(Barrier::new(2));
        let all = {
            let (store, start) = (Arc::clone(&store), Arc::clone(&start));
            let (shared, other) = (shared.clone(), other.clone());
            thread::spawn(move || {
                start.wait();
                store.commit_all(
                    vec![write(&other, 0, "all"), write(&shared, 0, "all")],
                    entry(&shared, AuditOutcome::Signed),
                )
            })
        };
        start.wait();
        let one = store.commit(
            write(&shared, 0, "one"),
            entry(&shared, AuditOutcome::Signed),
        );
        let all = all.join().unwrap();
        let lost = Err(StoreError::Conflict {
            object: shared.to_string(),
            expected: 0,
            found: 1,
        });
        let stored = store.load(&shared).unwrap().unwrap();
        assert_eq!(stored.version, 1, "round {round}");
        if all.is_ok() {
            assert_eq!(one, lost, "round {round}");
            assert_eq!(stored.state, state("all"));
            assert_eq!(store.load(&other).unwrap().unwrap().version, 1);
        } else {
            assert_eq!((one, all), (Ok(()), lost), "round {round}");
            assert_eq!(stored.state, state("one"));
            assert_eq!(store.load(&other).unwrap(), None, "round {round}");
        }
    }
    assert_eq!(store.audit_records(1, 1000).unwrap().len(), 30);
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
