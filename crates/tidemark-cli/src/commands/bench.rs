//! `tidemark bench`: durable signing latency and throughput over mutual TLS.
//!
//! An embedded signer (SQLite store with fsync, software keystore) serves
//! closed-loop clients over real mutual TLS on 127.0.0.1. At each
//! concurrency `c` (1, 8, 64), `c` workers each own one object (their own
//! chain id) and sign CometBFT prevotes at increasing heights as fast as the
//! signer answers; every answer came after its state was fsync'd. The raw
//! fdatasync latency of the same disk is measured in the same run, so the
//! figures can be read as ratios on a noisy machine.
//!
//! `--bitcoin` measures PSBT signing instead (the `bitcoin` submodule),
//! `--lightning` counterparty-commitment signing (the `lightning`
//! submodule).

mod adapter;
mod bitcoin;
mod lightning;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Serialize;
use tidemark_client::{Client, v1};

use super::support;
use crate::commands::init::WPKH_WALLET;
use crate::embedded::{Embedded, VALIDATOR_KEY};

pub use bitcoin::{BitcoinBenchReport, bench as bench_bitcoin};
pub use lightning::{LightningBenchReport, LightningBenchRun, bench as bench_lightning};

/// Arguments of `tidemark bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Seconds measured at each concurrency.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Concurrencies (objects signed in parallel).
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 8, 64])]
    pub concurrency: Vec<usize>,
    /// Measure signing a 2-input PSBT for a fresh payment intent each time
    /// (one client: a wallet's decisions are serialized), instead of
    /// CometBFT prevotes.
    #[arg(long, conflicts_with_all = ["concurrency", "lightning"])]
    pub bitcoin: bool,
    /// The wallet `--bitcoin` signs for: `wallet-wpkh` or `wallet-tr`.
    #[arg(long, default_value = WPKH_WALLET, requires = "bitcoin")]
    pub wallet: String,
    /// Measure signing a counterparty commitment (a new commitment number
    /// each time, on one channel per HTLC count, through the policy and
    /// the durable commit), instead of CometBFT prevotes.
    #[arg(long, conflicts_with = "concurrency")]
    pub lightning: bool,
    /// The HTLC counts `--lightning` measures, one channel each.
    #[arg(long, value_delimiter = ',', default_values_t = [0u8, 2, 8], requires = "lightning")]
    pub htlcs: Vec<u8>,
    /// Directory for the signer (its disk is what is measured); a temporary
    /// directory in the system temp dir by default.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// One concurrency's figures.
#[derive(Debug, Clone, Serialize)]
pub struct BenchRun {
    /// Objects signed in parallel.
    pub concurrency: usize,
    /// Signatures completed.
    pub signatures: u64,
    /// Median latency.
    pub p50_us: u64,
    /// 99th percentile latency.
    pub p99_us: u64,
    /// Durable signatures per second.
    pub per_sec: f64,
    /// Mean store batch size during the run (commits per fsync).
    pub mean_batch: f64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Median fdatasync latency of the store's disk, same run.
    pub fdatasync_p50_us: u64,
    /// 99th percentile fdatasync latency.
    pub fdatasync_p99_us: u64,
    /// One entry per concurrency.
    pub runs: Vec<BenchRun>,
}

/// Runs `tidemark bench`.
pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let runtime = support::runtime()?;
    if args.bitcoin {
        let report = runtime.block_on(bitcoin::bench(&args))?;
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            bitcoin::print_table(&report);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.lightning {
        let report = runtime.block_on(lightning::bench(&args))?;
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            lightning::print_table(&report);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let report = runtime.block_on(bench(&args))?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs the benchmark (the library form).
pub async fn bench(args: &BenchArgs) -> anyhow::Result<BenchReport> {
    if args.seconds <= 0.0 {
        bail!("--seconds must be positive");
    }
    let signer = Embedded::start_temp(1, args.dir.as_deref()).await?;
    let replica = signer.replicas.first().cloned().context("no replica")?;
    // A handful of connections, as a few replicas would open.
    let clients: Vec<Client> = (0..4)
        .map(|_| signer.client(&replica))
        .collect::<anyhow::Result<_>>()?;

    let (fdatasync_p50_us, fdatasync_p99_us) = fdatasync(signer.dir()).await?;

    let mut runs = Vec::new();
    for (round, &c) in args.concurrency.iter().enumerate() {
        let before = signer.store.metrics();
        let run = measure(&clients, c, round, Duration::from_secs_f64(args.seconds)).await?;
        let after = signer.store.metrics();
        let batches = after.batches.saturating_sub(before.batches).max(1);
        let commits = after.commits.saturating_sub(before.commits);
        runs.push(BenchRun {
            mean_batch: commits as f64 / batches as f64,
            ..run
        });
    }
    signer.stop().await;
    Ok(BenchReport {
        fdatasync_p50_us,
        fdatasync_p99_us,
        runs,
    })
}

async fn measure(
    clients: &[Client],
    concurrency: usize,
    round: usize,
    duration: Duration,
) -> anyhow::Result<BenchRun> {
    let warmup = Duration::from_millis(300);
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let client = clients[w % clients.len()].clone();
        let chain = format!("bench-{round}-{concurrency}-{w}");
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut height = 0i64;
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                height += 1;
                let request = prevote(&chain, height);
                let sent = Instant::now();
                client.sign_vote(request).await?;
                if sent >= measure_from {
                    latencies.push(micros(sent.elapsed()));
                }
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await??);
    }
    let signatures = all.len() as u64;
    let (p50_us, p99_us) = percentiles(all);
    Ok(BenchRun {
        concurrency,
        signatures,
        p50_us,
        p99_us,
        per_sec: signatures as f64 / duration.as_secs_f64(),
        mean_batch: 0.0,
    })
}

fn prevote(chain: &str, height: i64) -> v1::SignVoteRequest {
    v1::SignVoteRequest {
        chain_id: chain.to_owned(),
        key_id: VALIDATOR_KEY.into(),
        vote: Some(v1::Vote {
            r#type: v1::VoteType::Prevote as i32,
            height,
            round: 0,
            block_id: Some(v1::BlockId {
                hash: vec![0xab; 32],
                part_set_header: Some(v1::PartSetHeader {
                    total: 1,
                    hash: vec![0xcd; 32],
                }),
            }),
            timestamp: Some(v1::Timestamp {
                seconds: 1_700_000_000 + height,
                nanos: 0,
            }),
            extension: Vec::new(),
        }),
    }
}

/// (p50, p99) of 200 fdatasyncs in `dir`, in µs.
async fn fdatasync(dir: PathBuf) -> anyhow::Result<(u64, u64)> {
    let samples = tokio::task::spawn_blocking(move || fdatasync_samples(&dir)).await??;
    Ok(percentiles(samples.iter().map(|d| micros(*d)).collect()))
}

fn fdatasync_samples(dir: &Path) -> std::io::Result<Vec<Duration>> {
    tidemark_store::fdatasync_latency(dir, 200)
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// (p50, p99) of `values`; (0, 0) for none.
fn percentiles(mut values: Vec<u64>) -> (u64, u64) {
    if values.is_empty() {
        return (0, 0);
    }
    values.sort_unstable();
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

fn print_table(r: &BenchReport) {
    println!(
        "Tidemark bench: CometBFT prevotes over mutual TLS, SQLite store with fsync per batch"
    );
    println!(
        "fdatasync of the same disk, same run: p50 {} us, p99 {} us\n",
        r.fdatasync_p50_us, r.fdatasync_p99_us
    );
    println!(
        "{:>11} {:>10} {:>10} {:>10} {:>12} {:>11}",
        "concurrency", "p50 us", "p99 us", "sigs/s", "signatures", "batch mean"
    );
    for run in &r.runs {
        println!(
            "{:>11} {:>10} {:>10} {:>10.0} {:>12} {:>11.1}",
            run.concurrency, run.p50_us, run.p99_us, run.per_sec, run.signatures, run.mean_batch
        );
    }
    if let Some(one) = r.runs.iter().find(|x| x.concurrency == 1) {
        let budget = 1.5 * (r.fdatasync_p50_us as f64 + 200.0);
        println!(
            "\nconcurrency 1: p50 {} us vs target 1.5 x (fdatasync p50 + 200 us) = {budget:.0} us",
            one.p50_us
        );
    }
}
