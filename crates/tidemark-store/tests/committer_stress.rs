//! Tries to break leader-based group commit: many rounds of 1..N
//! committers, fire-and-forget audit entries and health checks against a
//! tiny queue (backpressure) and tiny batches (leaders that write several
//! batches, hand-offs to the background thread), enough batches for WAL
//! checkpoints, and `close` at random points.
//!
//! Every call must return within a bounded time (checked with
//! `recv_timeout`, never an unbounded join); every commit answered `Ok` must
//! be there after reopening and every one answered with an error must not;
//! every audit entry that was queued must be written; the audit chain must
//! verify.
//!
//! Set `TIDEMARK_STRESS_SEED` to replay a run (the seed is printed).

// Test helpers outside #[test] functions may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{db_path, entry, object, state, temp_dir, write};
use tidemark_core::{AuditOutcome, ObjectId, StateStore, StoreError};
use tidemark_store::{SqliteStore, StoreOptions};

/// How long any one step may take before the test calls it a hang.
const HANG: Duration = Duration::from_secs(10);
/// Total time spent in rounds (a few more rounds run past it only to hit
/// the checkpoint quota).
const BUDGET: Duration = Duration::from_secs(12);

/// xorshift64*: deterministic from the seed, good enough for schedules.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// What one committer thread saw.
#[derive(Debug, Default)]
struct Report {
    /// Per own object: commits answered `Ok` and the last such payload.
    own: Vec<(ObjectId, u64, Option<String>)>,
    /// Commits to the shared hot object answered `Ok`.
    hot_ok: u64,
    /// Commits to the hot object refused by compare-and-swap.
    hot_conflicts: u64,
    /// Audit entries accepted (`Ok`) by `audit`.
    audits_ok: u64,
}

/// Runs `f` on a helper thread and waits at most `HANG` for it.
fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(HANG) {
        Ok(v) => v,
        Err(RecvTimeoutError::Timeout) => panic!("{what} did not return within {HANG:?}"),
        Err(RecvTimeoutError::Disconnected) => panic!("{what} panicked"),
    }
}

/// A committer: commits to its own objects (each a chain of versions),
/// sometimes races the others on the hot object, sometimes queues an audit
/// entry; stops at the first `Closed`. Any other error fails the test.
fn committer(
    store: &SqliteStore,
    tag: &str,
    seed: u64,
    hot: &ObjectId,
    progress: &AtomicU64,
) -> Result<Report, String> {
    let mut rng = Rng::new(seed);
    let mut report = Report::default();
    let objects = rng.range(1, 3);
    for k in 0..objects {
        report
            .own
            .push((object(&format!("{tag}-o{k}")), 0, None::<String>));
    }
    for i in 0u64.. {
        let roll = rng.next() % 100;
        if roll < 10 {
            match store.audit(entry(hot, AuditOutcome::Denied)) {
                Ok(()) => report.audits_ok += 1,
                Err(StoreError::Closed) => return Ok(report),
                Err(e) => return Err(format!("{tag}: audit failed: {e:?}")),
            }
        } else if roll < 25 {
            let expected = match store.load(hot) {
                Ok(s) => s.map_or(0, |s| s.version),
                Err(StoreError::Closed) => return Ok(report),
                Err(e) => return Err(format!("{tag}: load(hot) failed: {e:?}")),
            };
            let payload = format!("{tag}-hot-{i}");
            match store.commit(
                write(hot, expected, &payload),
                entry(hot, AuditOutcome::Signed),
            ) {
                Ok(()) => report.hot_ok += 1,
                Err(StoreError::Conflict { .. }) => report.hot_conflicts += 1,
                Err(StoreError::Closed) => return Ok(report),
                Err(e) => return Err(format!("{tag}: hot commit failed: {e:?}")),
            }
        } else {
            let n = report.own.len() as u64;
            let slot = usize::try_from(rng.next() % n).unwrap();
            let (o, version, last) = &mut report.own[slot];
            let payload = format!("{tag}-{i}");
            match store.commit(write(o, *version, &payload), entry(o, AuditOutcome::Signed)) {
                Ok(()) => {
                    *version += 1;
                    *last = Some(payload);
                    progress.fetch_add(1, Ordering::SeqCst);
                }
                Err(StoreError::Closed) => return Ok(report),
                Err(e) => return Err(format!("{tag}: commit of {o} v{version} failed: {e:?}")),
            }
        }
    }
    unreachable!()
}

/// What one round found.
struct RoundOutcome {
    commits: u64,
    checkpoints: u64,
}

fn round(round: u64, seed: u64, checkpoint_round: bool) -> RoundOutcome {
    let ctx = format!("round {round} (seed {seed:#x})");
    let mut rng = Rng::new(seed);
    let capacity = usize::try_from(rng.range(1, 4)).unwrap();
    let max_batch = usize::try_from(rng.range(1, 3)).unwrap();
    let committers = rng.range(1, 6);
    let audit_spammers = rng.range(0, 2);
    let health = rng.chance(30);
    let double_close = rng.chance(20);
    // When to close: right away, after a few commits, after many, or (for
    // checkpoints: > 1000 WAL frames at ~4 frames a batch) after hundreds.
    let close_after = if checkpoint_round {
        rng.range(500, 700)
    } else {
        match rng.next() % 10 {
            0 => 0,
            1..=5 => rng.range(1, 20),
            _ => rng.range(20, 120),
        }
    };
    let ctx = format!(
        "{ctx}: capacity {capacity}, max_batch {max_batch}, {committers} committers, \
         {audit_spammers} audit spammers, health {health}, close after {close_after}"
    );

    let dir = temp_dir();
    let path = db_path(&dir);
    let options = StoreOptions::default()
        .with_queue_capacity(capacity)
        .with_max_batch(max_batch);
    let store = Arc::new(SqliteStore::create_with(&path, options).unwrap());
    let hot = object("hot");
    let progress = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let threads = usize::try_from(committers + audit_spammers).unwrap() + usize::from(health);
    let start = Arc::new(Barrier::new(threads + 1));

    let (reports_tx, reports) = mpsc::channel::<Result<Report, String>>();
    for t in 0..committers {
        let (store, hot, progress, start, tx) = (
            Arc::clone(&store),
            hot.clone(),
            Arc::clone(&progress),
            Arc::clone(&start),
            reports_tx.clone(),
        );
        let thread_seed = rng.next();
        thread::spawn(move || {
            start.wait();
            let tag = format!("r{round}-c{t}");
            let _ = tx.send(committer(&store, &tag, thread_seed, &hot, &progress));
        });
    }
    for s in 0..audit_spammers {
        let (store, start, tx) = (Arc::clone(&store), Arc::clone(&start), reports_tx.clone());
        let burst = rng.range(50, 400);
        thread::spawn(move || {
            start.wait();
            let o = object(&format!("r{round}-spam{s}"));
            let mut report = Report::default();
            let result = loop {
                if report.audits_ok >= burst {
                    break Ok(report);
                }
                match store.audit(entry(&o, AuditOutcome::Refused)) {
                    Ok(()) => report.audits_ok += 1,
                    Err(StoreError::Closed) => break Ok(report),
                    Err(e) => break Err(format!("spammer {s}: audit failed: {e:?}")),
                }
            };
            let _ = tx.send(result);
        });
    }
    let health_done = if health {
        let (store, start, stop) = (Arc::clone(&store), Arc::clone(&start), Arc::clone(&stop));
        let (tx, rx) = mpsc::channel::<Result<(), String>>();
        thread::spawn(move || {
            start.wait();
            let result = loop {
                if stop.load(Ordering::SeqCst) {
                    break Ok(());
                }
                match store.check_health() {
                    Ok(()) | Err(StoreError::Closed) => {}
                    Err(e) => break Err(format!("check_health failed: {e:?}")),
                }
                thread::sleep(Duration::from_millis(1));
            };
            let _ = tx.send(result);
        });
        Some(rx)
    } else {
        None
    };
    drop(reports_tx);
    start.wait();

    // Wait for the close point; committers that stop making progress hang.
    let waited = Instant::now();
    while progress.load(Ordering::SeqCst) < close_after {
        assert!(
            waited.elapsed() < HANG,
            "{ctx}: committers stuck at {} commits",
            progress.load(Ordering::SeqCst)
        );
        thread::sleep(Duration::from_micros(200));
    }
    let (closed_tx, closed) = mpsc::channel();
    for _ in 0..if double_close { 2 } else { 1 } {
        let (store, closed_tx) = (Arc::clone(&store), closed_tx.clone());
        thread::spawn(move || {
            store.close();
            let _ = closed_tx.send(());
        });
    }
    drop(closed_tx);
    for _ in 0..if double_close { 2 } else { 1 } {
        match closed.recv_timeout(HANG) {
            Ok(()) => {}
            Err(e) => panic!("{ctx}: close() did not return: {e:?}"),
        }
    }
    stop.store(true, Ordering::SeqCst);

    // Every thread returns (its last call answered `Closed`).
    let mut collected = Vec::new();
    for _ in 0..committers + audit_spammers {
        match reports.recv_timeout(HANG) {
            Ok(Ok(report)) => collected.push(report),
            Ok(Err(e)) => panic!("{ctx}: {e}"),
            Err(e) => panic!(
                "{ctx}: a caller did not return after close ({e:?}); {} of {} returned",
                collected.len(),
                committers + audit_spammers
            ),
        }
    }
    if let Some(rx) = health_done {
        match rx.recv_timeout(HANG) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("{ctx}: {e}"),
            Err(e) => panic!("{ctx}: check_health did not return ({e:?})"),
        }
    }

    // Closed is closed, promptly.
    let late = object("late");
    let s = Arc::clone(&store);
    let late_results = bounded("calls after close", move || {
        (
            s.commit(write(&late, 0, "x"), entry(&late, AuditOutcome::Signed)),
            s.audit(entry(&late, AuditOutcome::Denied)),
            s.check_health(),
        )
    });
    assert_eq!(
        late_results,
        (
            Err(StoreError::Closed),
            Err(StoreError::Closed),
            Err(StoreError::Closed)
        ),
        "{ctx}"
    );

    let m = store.metrics();
    assert_eq!(
        (m.failed_batches, m.failed_commits, m.audit_dropped),
        (0, 0, 0),
        "{ctx}: {m:?}"
    );
    assert!(
        m.max_batch_size <= max_batch as u64,
        "{ctx}: batch of {} > max_batch {max_batch}",
        m.max_batch_size
    );
    let checkpoints = m.checkpoints;
    drop(store);

    // Reopen: exactly what was answered Ok is there.
    let store = bounded("reopen", move || SqliteStore::open(&path).unwrap());
    let mut commits = 0;
    let mut audits = 0;
    let mut hot_ok = 0;
    for report in &collected {
        for (o, ok, last) in &report.own {
            let stored = store.load(o).unwrap();
            match last {
                None => assert_eq!(stored, None, "{ctx}: {o} was never answered Ok"),
                Some(payload) => {
                    let stored = stored.unwrap_or_else(|| panic!("{ctx}: {o} lost"));
                    assert_eq!(stored.version, *ok, "{ctx}: {o}");
                    assert_eq!(stored.state, state(payload), "{ctx}: {o}");
                }
            }
            commits += ok;
        }
        hot_ok += report.hot_ok;
        audits += report.audits_ok;
    }
    let hot_version = store.load(&hot).unwrap().map_or(0, |s| s.version);
    assert_eq!(hot_version, hot_ok, "{ctx}: hot object");
    // One record per durable commit, one per queued audit entry.
    let (seq, _) = store
        .verify_audit_chain()
        .unwrap()
        .unwrap_or_else(|e| panic!("{ctx}: audit chain broken: {e:?}"));
    assert_eq!(
        seq,
        commits + hot_ok + audits,
        "{ctx}: audit records vs {commits} commits, {hot_ok} hot commits, {audits} audit entries"
    );
    store.close();
    RoundOutcome {
        commits: commits + hot_ok,
        checkpoints,
    }
}

#[test]
fn group_commit_survives_random_schedules_and_closes() {
    let seed = std::env::var("TIDEMARK_STRESS_SEED")
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("committer stress: TIDEMARK_STRESS_SEED={seed:x}");
    let mut rng = Rng::new(seed);
    let started = Instant::now();
    let (mut rounds, mut commits, mut checkpoints, mut checkpoint_rounds) = (0u64, 0, 0, 0);
    // Short rounds until the budget is spent; at least 2 rounds are long
    // enough to checkpoint.
    while started.elapsed() < BUDGET || checkpoint_rounds < 2 {
        let long = checkpoint_rounds < 2 && (rounds % 8 == 3 || started.elapsed() >= BUDGET);
        let outcome = round(rounds, rng.next(), long);
        if long {
            checkpoint_rounds += 1;
            assert!(
                outcome.checkpoints > 0,
                "round {rounds}: {} commits and no checkpoint",
                outcome.commits
            );
        }
        commits += outcome.commits;
        checkpoints += outcome.checkpoints;
        rounds += 1;
    }
    eprintln!(
        "committer stress: {rounds} rounds, {commits} commits, {checkpoints} checkpoints in {:?}",
        started.elapsed()
    );
}
