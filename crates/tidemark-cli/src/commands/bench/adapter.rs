//! `tidemark bench --lightning`, through the LDK adapter: the same
//! counterparty commitments as the client path, but each one asked as LDK
//! asks it, `EcdsaChannelSigner::sign_counterparty_commitment` on a
//! `tidemark_ldk::TidemarkChannelSigner` with LDK's own
//! `CommitmentTransaction`. The difference from the client path is what
//! the adapter adds: converting LDK's arguments to a structured request,
//! the blocking client's hop to its runtime thread, and decoding.

use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use lightning::ln::chan_utils::HolderCommitmentTransaction;
use lightning::sign::ecdsa::EcdsaChannelSigner as _;
use lightning::sign::{ChannelSigner as _, SignerProvider as _};
use tidemark_ldk::{AdapterConfig, TidemarkChannelSigner, TidemarkSigner};
use tidemark_lightning::NodeKeys;
use tidemark_lightning::bitcoin::secp256k1::{Secp256k1, SecretKey};
use tidemark_lightning::channel::{ChannelKind, MAX_COMMITMENT_NUMBER};
use tidemark_lightning::fixtures::{BEST_BLOCK_HEIGHT, SimulatedChannel};

use super::lightning::HTLC_SAT;
use super::micros;
use crate::embedded::{DEV_LIGHTNING_NODE, Embedded};

/// Signs counterparty commitments 1, 2, ... of a fresh channel with
/// `htlcs` HTLCs through the adapter, for a warm-up and then `duration`;
/// returns the latencies (µs) and the measured wall time. Blocking: run
/// it outside the runtime's worker threads.
pub(super) fn measure(
    signer: &Embedded,
    replica: &str,
    holder: &NodeKeys,
    kind: ChannelKind,
    htlcs: u8,
    duration: Duration,
) -> anyhow::Result<(Vec<u64>, Duration)> {
    let options = signer
        .client_options(replica)?
        .with_deadline(Duration::from_secs(10));
    let config = AdapterConfig::from_signer(DEV_LIGHTNING_NODE, &options)?;
    let adapter = TidemarkSigner::new(options, config)?;
    let id = adapter.generate_channel_keys_id(false, u128::from(htlcs));
    let channel = adapter.derive_channel_signer(id);
    let mut sim = SimulatedChannel::new(holder, id, kind);
    sim.offer_htlcs(htlcs, HTLC_SAT, BEST_BLOCK_HEIGHT + 144, 1)?;
    let secp = Secp256k1::new();
    // Opening (untimed): counterparty commitment 0 (the adapter sends the
    // setup first), then holder commitment 0.
    sign(&channel, &sim, 0, &secp)?;
    let signed = sim.holder_commitment(0)?;
    let holder_tx = HolderCommitmentTransaction::new(
        sim.rebuilt_holder(&signed.commitment),
        signed.counterparty_signature,
        signed.counterparty_htlc_signatures,
        &sim.setup.holder.funding_pubkey,
        &sim.setup.counterparty.funding_pubkey,
    );
    channel
        .validate_holder_commitment(&holder_tx, Vec::new())
        .map_err(|()| anyhow!("holder commitment 0 was not validated"))?;

    let warmup = Duration::from_millis(300);
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let mut latencies = Vec::new();
    let mut n: u64 = 1;
    while Instant::now() < end {
        let sent = Instant::now();
        sign(&channel, &sim, n, &secp)?;
        if sent >= measure_from {
            latencies.push(micros(sent.elapsed()));
        }
        // Untimed: the counterparty revokes the commitment before.
        let secret = SecretKey::from_slice(&sim.counterparty_secret(n - 1)?)?;
        channel
            .validate_counterparty_revocation(MAX_COMMITMENT_NUMBER - (n - 1), &secret)
            .map_err(|()| anyhow!("the revocation of {} was not validated", n - 1))?;
        n += 1;
    }
    if adapter.refusals().total != 0 {
        bail!("the signer refused: {:?}", adapter.refusals());
    }
    Ok((latencies, start.elapsed().saturating_sub(warmup)))
}

/// Counterparty commitment `n` of `sim`, as LDK asks for it; the first
/// signatures are checked.
fn sign(
    channel: &TidemarkChannelSigner,
    sim: &SimulatedChannel,
    n: u64,
    secp: &Secp256k1<lightning::bitcoin::secp256k1::All>,
) -> anyhow::Result<()> {
    let data = sim.counterparty_commitment(n)?;
    let tx = sim.rebuilt_counterparty(&data);
    let params = sim.setup.transaction_parameters();
    let (signature, htlc_signatures) = channel
        .sign_counterparty_commitment(&params, &tx, Vec::new(), Vec::new(), secp)
        .map_err(|()| anyhow!("counterparty commitment {n} was not signed"))?;
    if n <= 1 {
        sim.verify_counterparty_signatures(&data, &signature, &htlc_signatures)
            .context("the adapter's signatures do not verify")?;
    }
    Ok(())
}
