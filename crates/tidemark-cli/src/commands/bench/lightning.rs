//! `tidemark bench --lightning`: the latency of signing a counterparty
//! commitment through the server, with 0, 2 and 8 HTLCs.
//!
//! One closed-loop client, over mutual TLS, drives one channel per HTLC
//! count with a simulated counterparty (`tidemark_lightning::fixtures`):
//! the channel is set up and opened (untimed), then each timed request
//! signs the counterparty's next commitment number: the signer rebuilds
//! the commitment and its HTLC transactions from the stored channel,
//! applies the policy (retry-same, previous-revoked, ranges), signs the
//! commitment and each HTLC transaction and commits the new state with an
//! fsync before it answers. Between two timed requests the counterparty's
//! revocation of the commitment before is validated (untimed), as the
//! rule of at most two unrevoked commitments requires. A channel's
//! decisions are serialized, so one client is the figure that matters.
//!
//! Each HTLC count is measured twice: with the client's structured
//! request (`via = client`), and as LDK asks, through the adapter
//! (`via = adapter`, see `adapter.rs`): the difference is what the
//! adapter adds to every call.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Serialize;
use tidemark_client::Client;
use tidemark_client::lightning::{channel_answer, channel_request};
use tidemark_lightning::NodeKeys;
use tidemark_lightning::channel::{ChannelKind, ChannelRequest, Output};
use tidemark_lightning::fixtures::{BEST_BLOCK_HEIGHT, SimulatedChannel};

use super::{BenchArgs, fdatasync, micros, percentiles};
use crate::embedded::{DEV_LIGHTNING_NODE, Embedded};

/// The value of each HTLC (above dust at the fixture's fee rate).
pub(super) const HTLC_SAT: u64 = 20_000;

/// One HTLC count's figures.
#[derive(Debug, Clone, Serialize)]
pub struct LightningBenchRun {
    /// `client` (structured requests) or `adapter` (LDK's signer trait).
    pub via: &'static str,
    /// HTLCs in each commitment.
    pub htlcs: u8,
    /// Commitments signed in the measured window.
    pub signatures: u64,
    /// Median latency, request sent to signatures received.
    pub p50_us: u64,
    /// 99th percentile latency.
    pub p99_us: u64,
    /// Signed commitments per second (the untimed revocations included in
    /// the wall time).
    pub per_sec: f64,
    /// `p50_us / fdatasync_p50_us`.
    pub p50_over_fdatasync: f64,
    /// `p99_us / fdatasync_p50_us`.
    pub p99_over_fdatasync: f64,
}

/// The report of `tidemark bench --lightning`.
#[derive(Debug, Clone, Serialize)]
pub struct LightningBenchReport {
    /// The commitment format (`anchors-zero-fee-htlc-tx`).
    pub channel_type: String,
    /// Median fdatasync latency of the store's disk, same run.
    pub fdatasync_p50_us: u64,
    /// 99th percentile fdatasync latency.
    pub fdatasync_p99_us: u64,
    /// One entry per HTLC count.
    pub runs: Vec<LightningBenchRun>,
}

/// Runs the lightning benchmark (the library form).
pub async fn bench(args: &BenchArgs) -> anyhow::Result<LightningBenchReport> {
    if args.seconds <= 0.0 {
        bail!("--seconds must be positive");
    }
    let kind = ChannelKind::AnchorsZeroFeeHtlcTx;
    let signer = Embedded::start_temp(1, args.dir.as_deref()).await?;
    let replica = signer.replicas.first().cloned().context("no replica")?;
    let client = signer.client(&replica)?;
    let node = signer.lightning()?;

    let (fdatasync_p50_us, fdatasync_p99_us) = fdatasync(signer.dir()).await?;
    let duration = Duration::from_secs_f64(args.seconds);
    let mut runs = Vec::new();
    for (i, &htlcs) in args.htlcs.iter().enumerate() {
        let user_channel_id = u128::try_from(i).context("too many runs")?;
        let by_client = measure(
            &client,
            node.signer.node(),
            kind,
            user_channel_id,
            htlcs,
            duration,
        )
        .await?;
        let by_adapter = tokio::task::block_in_place(|| {
            super::adapter::measure(&signer, &replica, node.signer.node(), kind, htlcs, duration)
        })?;
        for (via, (latencies, elapsed)) in [("client", by_client), ("adapter", by_adapter)] {
            let signatures = latencies.len() as u64;
            let (p50_us, p99_us) = percentiles(latencies);
            let ratio = |us: u64| us as f64 / fdatasync_p50_us.max(1) as f64;
            runs.push(LightningBenchRun {
                via,
                htlcs,
                signatures,
                p50_us,
                p99_us,
                per_sec: signatures as f64 / elapsed.as_secs_f64().max(f64::EPSILON),
                p50_over_fdatasync: ratio(p50_us),
                p99_over_fdatasync: ratio(p99_us),
            });
        }
    }
    signer.stop().await;
    Ok(LightningBenchReport {
        channel_type: kind.name().to_owned(),
        fdatasync_p50_us,
        fdatasync_p99_us,
        runs,
    })
}

/// Sends `request` about the channel and checks that it was decided now.
async fn call(client: &Client, id: &[u8; 32], request: &ChannelRequest) -> anyhow::Result<Output> {
    let answer = client
        .channel_call(DEV_LIGHTNING_NODE, id, request, Some(BEST_BLOCK_HEIGHT))
        .await
        .with_context(|| format!("{} was not answered", request.kind()))?;
    if answer.replayed {
        bail!("{} was replayed, not decided", request.kind());
    }
    Ok(answer.output)
}

/// Opens a fresh channel with `htlcs` pending HTLCs and signs counterparty
/// commitments 1, 2, ... for a warm-up and then `duration`; returns the
/// measured latencies (µs) and the measured wall time.
async fn measure(
    client: &Client,
    holder: &NodeKeys,
    kind: ChannelKind,
    user_channel_id: u128,
    htlcs: u8,
    duration: Duration,
) -> anyhow::Result<(Vec<u64>, Duration)> {
    let id = client
        .issue_channel_keys_id(DEV_LIGHTNING_NODE, user_channel_id)
        .await?;
    let mut channel = SimulatedChannel::new(holder, id, kind);
    channel.offer_htlcs(htlcs, HTLC_SAT, BEST_BLOCK_HEIGHT + 144, 1)?;
    for request in channel.opening_requests()? {
        call(client, &id, &request).await?;
    }

    let warmup = Duration::from_millis(300);
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let mut latencies = Vec::new();
    let mut n: u64 = 1;
    while Instant::now() < end {
        let data = channel.counterparty_commitment(n)?;
        let wire = channel_request(
            DEV_LIGHTNING_NODE,
            &id,
            &ChannelRequest::SignCounterpartyCommitment(Box::new(data.clone())),
            Some(BEST_BLOCK_HEIGHT),
        )
        .context("a counterparty commitment has a wire form")?;
        let sent = Instant::now();
        let response = client.channel(wire).await?;
        if sent >= measure_from {
            latencies.push(micros(sent.elapsed()));
        }
        let answer = channel_answer(response)?;
        let Output::Commitment {
            signature,
            htlc_signatures,
        } = &answer.output
        else {
            bail!("commitment {n} was answered with {:?}", answer.output);
        };
        if answer.replayed || htlc_signatures.len() != usize::from(htlcs) {
            bail!("commitment {n} was not newly signed with {htlcs} htlc signatures");
        }
        if n == 1 {
            channel.verify_counterparty_signatures(&data, signature, htlc_signatures)?;
        }
        // Untimed: the counterparty revokes the commitment before, so the
        // next number may be signed.
        call(client, &id, &channel.revocation_request(n - 1)?).await?;
        n += 1;
    }
    Ok((latencies, start.elapsed().saturating_sub(warmup)))
}

/// Prints the report as a table.
pub(super) fn print_table(r: &LightningBenchReport) {
    println!(
        "Tidemark bench: counterparty commitments ({}) over mutual TLS, SQLite store with fsync per commit",
        r.channel_type
    );
    println!(
        "one client, one channel per HTLC count; each request a new commitment number, the revocation of the one before validated in between (not timed)"
    );
    println!(
        "fdatasync of the same disk, same run: p50 {} us, p99 {} us\n",
        r.fdatasync_p50_us, r.fdatasync_p99_us
    );
    println!(
        "{:>8} {:>6} {:>10} {:>10} {:>10} {:>12} {:>18} {:>18}",
        "via",
        "htlcs",
        "p50 us",
        "p99 us",
        "sigs/s",
        "signatures",
        "p50/fdatasync p50",
        "p99/fdatasync p50"
    );
    for run in &r.runs {
        println!(
            "{:>8} {:>6} {:>10} {:>10} {:>10.0} {:>12} {:>18.2} {:>18.2}",
            run.via,
            run.htlcs,
            run.p50_us,
            run.p99_us,
            run.per_sec,
            run.signatures,
            run.p50_over_fdatasync,
            run.p99_over_fdatasync
        );
    }
}
