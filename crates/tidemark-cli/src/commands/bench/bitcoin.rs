//! `tidemark bench --bitcoin`: the latency of signing a 2-input PSBT
//! through the server.
//!
//! One closed-loop client signs, over mutual TLS, a fresh intent over a
//! fresh PSBT each time: two synthetic previous transactions paying the
//! wallet's receive addresses, spent by one payment and change, with each
//! input's previous transaction and key origin and the change's key origin.
//! Every answer came after the intent and the wallet's ledger were
//! committed in one fsync'd compare-and-swap. After each signature an
//! operator confirms the intent (not timed), as a payment server would once
//! it is mined, so the ledger of live reservations stays as small as in
//! steady operation. A wallet's decisions are serialized (one lock and one
//! ledger per wallet), so one client is the figure that matters.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Serialize;
use tidemark_bitcoin::bitcoin::hashes::Hash as _;
use tidemark_bitcoin::bitcoin::{Address, Network, ScriptBuf, WScriptHash};
use tidemark_bitcoin::fixtures::{PsbtBuilder, funding};
use tidemark_bitcoin::{Branch, Wallet};
use tidemark_client::{Client, v1};

use super::{BenchArgs, fdatasync, micros, percentiles};
use crate::embedded::Embedded;

/// What each previous transaction pays the wallet.
const COIN_SAT: u64 = 60_000;
/// What each PSBT pays out.
const PAYMENT_SAT: u64 = 100_000;
/// The fee of each PSBT (about 5 sat/vB for two P2WPKH inputs).
const FEE_SAT: u64 = 1_000;

/// The report of `tidemark bench --bitcoin`.
#[derive(Debug, Clone, Serialize)]
pub struct BitcoinBenchReport {
    /// The wallet signed for.
    pub wallet: String,
    /// Its script type (`wpkh` or `tr`).
    pub kind: String,
    /// Inputs per PSBT.
    pub inputs: usize,
    /// Median fdatasync latency of the store's disk, same run.
    pub fdatasync_p50_us: u64,
    /// 99th percentile fdatasync latency.
    pub fdatasync_p99_us: u64,
    /// PSBTs signed in the measured window.
    pub signatures: u64,
    /// Median sign latency, request sent to signed PSBT received.
    pub p50_us: u64,
    /// 99th percentile sign latency.
    pub p99_us: u64,
    /// Signed PSBTs per second (the untimed confirmations included in the
    /// wall time).
    pub per_sec: f64,
    /// `p50_us / fdatasync_p50_us`.
    pub p50_over_fdatasync: f64,
    /// `p99_us / fdatasync_p50_us`.
    pub p99_over_fdatasync: f64,
}

/// Runs the bitcoin benchmark (the library form).
pub async fn bench(args: &BenchArgs) -> anyhow::Result<BitcoinBenchReport> {
    if args.seconds <= 0.0 {
        bail!("--seconds must be positive");
    }
    let signer = Embedded::start_temp(1, args.dir.as_deref()).await?;
    let replica = signer.replicas.first().cloned().context("no replica")?;
    let client = signer.client(&replica)?;
    let admin = signer.client("admin")?;
    let wallet = signer.wallet(&args.wallet)?;

    let (fdatasync_p50_us, fdatasync_p99_us) = fdatasync(signer.dir()).await?;
    let duration = Duration::from_secs_f64(args.seconds);
    let (latencies, elapsed) = measure(&client, &admin, &wallet, duration).await?;
    signer.stop().await;

    let signatures = latencies.len() as u64;
    let (p50_us, p99_us) = percentiles(latencies);
    let ratio = |us: u64| us as f64 / fdatasync_p50_us.max(1) as f64;
    Ok(BitcoinBenchReport {
        wallet: wallet.name().to_string(),
        kind: wallet.kind().to_string(),
        inputs: 2,
        fdatasync_p50_us,
        fdatasync_p99_us,
        signatures,
        p50_us,
        p99_us,
        per_sec: signatures as f64 / elapsed.as_secs_f64().max(f64::EPSILON),
        p50_over_fdatasync: ratio(p50_us),
        p99_over_fdatasync: ratio(p99_us),
    })
}

/// Signs fresh intents for a warm-up and then `duration`; returns the
/// measured latencies (µs) and the measured wall time.
async fn measure(
    client: &Client,
    admin: &Client,
    wallet: &Wallet,
    duration: Duration,
) -> anyhow::Result<(Vec<u64>, Duration)> {
    let warmup = Duration::from_millis(300);
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let payee = payee()?;
    let mut latencies = Vec::new();
    let mut n: u32 = 0;
    while Instant::now() < end {
        let request = sign_request(wallet, &payee, n)?;
        let intent = request.intent.clone();
        let sent = Instant::now();
        let response = client.sign_psbt(request).await?;
        if sent >= measure_from {
            latencies.push(micros(sent.elapsed()));
        }
        if response.outcome != v1::Outcome::Signed as i32 {
            bail!("intent {intent} was not newly signed: {response:?}");
        }
        admin
            .release_intent(v1::ReleaseIntentRequest {
                wallet: wallet.name().to_string(),
                intent,
                release: v1::Release::Confirmed as i32,
            })
            .await?;
        n = n.checked_add(1).context("too many iterations")?;
    }
    Ok((latencies, start.elapsed().saturating_sub(warmup)))
}

/// A foreign regtest address the PSBTs pay (a P2WSH of `OP_TRUE`).
fn payee() -> anyhow::Result<Address> {
    let script = ScriptBuf::new_p2wsh(&WScriptHash::hash(&[0x51]));
    Ok(Address::from_script(&script, Network::Regtest)?)
}

/// Intent `bench-n`: a fresh 2-input PSBT paying `payee`, with change.
fn sign_request(wallet: &Wallet, payee: &Address, n: u32) -> anyhow::Result<v1::SignPsbtRequest> {
    let first = n.checked_mul(2).context("too many iterations")?;
    let second = first + 1;
    let psbt = PsbtBuilder::new(wallet)
        .spend(
            funding(wallet, Branch::Receive, first, COIN_SAT, first)?,
            Branch::Receive,
            first,
        )
        .spend(
            funding(wallet, Branch::Receive, second, COIN_SAT, second)?,
            Branch::Receive,
            second,
        )
        .pay(payee.script_pubkey(), PAYMENT_SAT)
        .change(n, 2 * COIN_SAT - PAYMENT_SAT - FEE_SAT)?
        .build()?;
    Ok(v1::SignPsbtRequest {
        wallet: wallet.name().to_string(),
        intent: format!("bench-{n}"),
        psbt: psbt.serialize(),
        payments: vec![v1::Payment {
            address: payee.to_string(),
            amount_sat: PAYMENT_SAT,
        }],
    })
}

/// Prints the report as a table.
pub(super) fn print_table(r: &BitcoinBenchReport) {
    println!(
        "Tidemark bench: {}-input {} PSBTs (wallet {}) over mutual TLS, SQLite store with fsync per commit",
        r.inputs, r.kind, r.wallet
    );
    println!("one client; each PSBT a fresh intent, confirmed after it is signed (not timed)");
    println!(
        "fdatasync of the same disk, same run: p50 {} us, p99 {} us\n",
        r.fdatasync_p50_us, r.fdatasync_p99_us
    );
    println!(
        "{:>10} {:>10} {:>10} {:>12} {:>18} {:>18}",
        "p50 us", "p99 us", "psbts/s", "signatures", "p50/fdatasync p50", "p99/fdatasync p50"
    );
    println!(
        "{:>10} {:>10} {:>10.0} {:>12} {:>18.2} {:>18.2}",
        r.p50_us, r.p99_us, r.per_sec, r.signatures, r.p50_over_fdatasync, r.p99_over_fdatasync
    );
}
