//! Group-commit benchmark: commits per second and commit latency (p50,
//! p99) at 1, 8 and 64 concurrent callers, each caller on its own object,
//! printed beside the raw fdatasync latency of the same disk measured in
//! the same run.
//!
//! ```text
//! cargo run --release -p tidemark-store --example group_commit -- [DIR] [SECONDS]
//! ```
//!
//! `DIR` (default `.`) is where the scratch stores go: put it on the disk
//! you want to measure. Each level runs for `SECONDS` (default 3). The
//! last column is commits/s times the fdatasync p50 measured just before
//! the level: how many commits each fsync's worth of time carried, a
//! ratio that holds on a noisy machine.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use tidemark_core::{
    AuditEntry, AuditOutcome, ChainId, Digest, Domain, KeyId, Mark, ObjectId, Signature,
    StateStore, StateWrite, StoredState,
};
use tidemark_store::{SqliteStore, fdatasync_latency};

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

struct Level {
    callers: usize,
    commits: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    batches: u64,
}

/// One caller: commits version after version of its own object until the
/// deadline; returns each commit's latency.
fn caller(
    store: &SqliteStore,
    id: usize,
    start: &Barrier,
    run_for: Duration,
) -> Result<Vec<Duration>, String> {
    let object = ObjectId::new(
        Domain::Consensus,
        ChainId::new("bench-chain").map_err(|e| e.to_string())?,
        KeyId::new(format!("validator-{id}")).map_err(|e| e.to_string())?,
        "cometbft",
    )
    .map_err(|e| e.to_string())?;
    let mut latencies = Vec::new();
    start.wait();
    let deadline = Instant::now() + run_for;
    let mut version = 0u64;
    while Instant::now() < deadline {
        let write = StateWrite {
            object: object.clone(),
            expected_version: version,
            new: StoredState {
                version: version + 1,
                state: format!("{{\"height\":{},\"round\":0,\"step\":3}}", version + 1)
                    .into_bytes(),
                mark: Mark::none().with("height", version + 1),
                digest: Digest([7; 32]),
                signatures: vec![Signature(vec![0xab; 64])],
            },
        };
        let audit = AuditEntry {
            time_ms: 0,
            client: format!("replica-{id}"),
            object: object.to_string(),
            outcome: AuditOutcome::Signed,
            tag: None,
            mark: Mark::none().with("height", version + 1),
            digest: Some(Digest([7; 32])),
        };
        let started = Instant::now();
        store.commit(write, audit).map_err(|e| e.to_string())?;
        latencies.push(started.elapsed());
        version += 1;
    }
    Ok(latencies)
}

fn run_level(dir: &Path, callers: usize, run_for: Duration) -> Result<Level, Box<dyn Error>> {
    let store = Arc::new(SqliteStore::create(
        dir.join(format!("bench-{callers}.db")),
    )?);
    let start = Arc::new(Barrier::new(callers + 1));
    let threads: Vec<_> = (0..callers)
        .map(|id| {
            let (store, start) = (Arc::clone(&store), Arc::clone(&start));
            thread::spawn(move || caller(&store, id, &start, run_for))
        })
        .collect();
    start.wait();
    let began = Instant::now();
    let mut latencies = Vec::new();
    for t in threads {
        let mine = t.join().map_err(|_| "a caller thread panicked")??;
        latencies.extend(mine);
    }
    let elapsed = began.elapsed();
    latencies.sort_unstable();
    let batches = store.metrics().batches;
    Ok(Level {
        callers,
        commits: latencies.len(),
        elapsed,
        latencies,
        batches,
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    let seconds: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3.0);
    let run_for = Duration::from_secs_f64(seconds);
    let scratch = tempfile::Builder::new()
        .prefix("tidemark-group-commit-")
        .tempdir_in(&dir)?;

    println!(
        "scratch dir {}; {seconds} s per level; fdatasync measured right before each level \
         (100 x 4 KiB overwrites)",
        scratch.path().display()
    );
    println!(
        "{:>7} {:>9} {:>10} {:>9} {:>9} {:>8} {:>13} {:>11} {:>12}",
        "callers",
        "commits",
        "commits/s",
        "p50",
        "p99",
        "batches",
        "commits/batch",
        "fsync p50",
        "x 1/fsync"
    );
    for callers in [1, 8, 64] {
        let mut fsync = fdatasync_latency(scratch.path(), 100)?;
        fsync.sort_unstable();
        let fsync_p50 = percentile(&fsync, 0.50);
        let level = run_level(scratch.path(), callers, run_for)?;
        let per_second = level.commits as f64 / level.elapsed.as_secs_f64();
        println!(
            "{:>7} {:>9} {:>10.0} {:>9} {:>9} {:>8} {:>13.1} {:>11} {:>12.1}",
            level.callers,
            level.commits,
            per_second,
            micros(percentile(&level.latencies, 0.50)),
            micros(percentile(&level.latencies, 0.99)),
            level.batches,
            level.commits as f64 / level.batches.max(1) as f64,
            micros(fsync_p50),
            // Throughput relative to one fdatasync per commit.
            per_second * fsync_p50.as_secs_f64(),
        );
    }
    Ok(())
}
