//! Sweeping spendable outputs (LDK's `OutputSpender`).
//!
//! After a channel closes, LDK hands the node `SpendableOutputDescriptor`s
//! for the outputs that are now the node's: a `to_remote` output, a delayed
//! `to_local` output, a cooperative-close output. A sweep spends them with
//! keys derived from the seed, so it is a funds-moving operation and is
//! held to the destination rule of SPEC 4.2: every output, change
//! included, pays either a script the seed itself controls
//! ([`NodeKeys::is_own_script`]) or one the caller's policy allows. The
//! transaction is built by LDK's `KeysManager::spend_spendable_outputs`
//! from the descriptors (never taken prebuilt), after the checks below
//! have removed every input that could make LDK panic (amount overflow,
//! fee arithmetic past `i64`).

use std::collections::HashSet;

use bitcoin::absolute::LockTime;
use bitcoin::{Amount, OutPoint, Script, ScriptBuf, Transaction, TxOut};
use lightning::sign::{OutputSpender, SpendableOutputDescriptor};

use crate::keys::NodeKeys;

/// The refusal tag of a sweep paying a script that is neither the node's
/// own nor allowed by the caller's policy (the bitcoin domain's
/// destination tag: one rule, one tag).
pub const SWEEP_DESTINATION_TAG: &str = "policy-destination-not-allowed";

/// The most weight a sweep may have: Bitcoin Core's standardness limit
/// (`MAX_STANDARD_TX_WEIGHT`). Also keeps LDK's `i64` fee arithmetic far
/// from overflow.
pub const MAX_SWEEP_WEIGHT: u64 = 400_000;

/// An upper bound on the weight one swept input adds: 41 bytes of input
/// (times 4) plus the largest witness LDK spends (a delayed `to_local`
/// output, about 150 weight units).
const INPUT_WEIGHT_BOUND: u64 = 41 * 4 + 200;

/// What to sweep and where to: the arguments of
/// `OutputSpender::spend_spendable_outputs`.
#[derive(Debug, Clone)]
pub struct SweepRequest<'a> {
    /// The outputs to spend, as LDK described them.
    pub descriptors: &'a [&'a SpendableOutputDescriptor],
    /// Outputs to pay, besides change.
    pub outputs: Vec<TxOut>,
    /// Where what is left after `outputs` and the fee goes (if above
    /// dust).
    pub change_destination_script: ScriptBuf,
    /// The fee rate, satoshis per 1000 weight units.
    pub feerate_sat_per_1000_weight: u32,
    /// The transaction's lock time (0 if `None`).
    pub locktime: Option<LockTime>,
}

/// Why a sweep was refused. Nothing was signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SweepError {
    /// An output (`output: Some(i)`) or the change (`None`) pays a script
    /// that is not the node's and that the policy does not allow.
    #[error("{} pays {script} which is neither the node's nor allowed", describe(*output))]
    DestinationNotAllowed {
        /// The index in `outputs`, `None` for the change.
        output: Option<usize>,
        /// The script.
        script: ScriptBuf,
    },
    /// There is nothing to sweep.
    #[error("no spendable outputs to sweep")]
    NoDescriptors,
    /// Two descriptors spend the same outpoint.
    #[error("outpoint {outpoint} is swept twice")]
    DuplicateOutpoint {
        /// The outpoint.
        outpoint: OutPoint,
    },
    /// A value is above the 21 million bitcoin supply.
    #[error("{what} {index} has {sats} sat, more than can exist")]
    ValueOutOfRange {
        /// `"descriptor"` or `"output"`.
        what: &'static str,
        /// Its index.
        index: usize,
        /// The value.
        sats: u64,
    },
    /// The sweep would exceed [`MAX_SWEEP_WEIGHT`].
    #[error("the sweep would weigh at least {weight} wu (at most {MAX_SWEEP_WEIGHT})")]
    TooHeavy {
        /// A lower bound of its weight.
        weight: u64,
    },
    /// LDK could not build or sign it: a descriptor is not this node's, or
    /// the inputs do not cover the outputs and the fee.
    #[error(
        "ldk could not sign the sweep: an output is not this node's or the value does not cover the outputs and the fee"
    )]
    NotSpendable,
}

fn describe(output: Option<usize>) -> String {
    match output {
        Some(i) => format!("output {i}"),
        None => "the change".to_owned(),
    }
}

impl SweepError {
    /// The policy tag of a refusal under the destination rule; `None` for
    /// malformed or unspendable requests.
    pub fn tag(&self) -> Option<&'static str> {
        match self {
            SweepError::DestinationNotAllowed { .. } => Some(SWEEP_DESTINATION_TAG),
            _ => None,
        }
    }
}

fn descriptor_output(d: &SpendableOutputDescriptor) -> &TxOut {
    match d {
        SpendableOutputDescriptor::StaticOutput { output, .. } => output,
        SpendableOutputDescriptor::DelayedPaymentOutput(d) => &d.output,
        SpendableOutputDescriptor::StaticPaymentOutput(d) => &d.output,
    }
}

impl NodeKeys {
    /// Builds and signs a transaction spending `request.descriptors` to
    /// `request.outputs` plus change (`OutputSpender::spend_spendable_outputs`),
    /// if every output and the change pay a script that is the node's own
    /// ([`NodeKeys::is_own_script`]) or for which `allowed` returns true
    /// (the caller's wallet or allowlist).
    pub fn spend_spendable_outputs(
        &self,
        request: SweepRequest<'_>,
        allowed: &dyn Fn(&Script) -> bool,
    ) -> Result<Transaction, SweepError> {
        check(self, &request, allowed).inspect_err(|e| {
            tracing::warn!(
                outcome = "refused",
                tag = e.tag().unwrap_or("invalid"),
                error = %e,
                "sweep refused"
            );
        })?;
        let SweepRequest {
            descriptors,
            outputs,
            change_destination_script,
            feerate_sat_per_1000_weight,
            locktime,
        } = request;
        let tx = self
            .manager()
            .spend_spendable_outputs(
                descriptors,
                outputs,
                change_destination_script,
                feerate_sat_per_1000_weight,
                locktime,
                self.secp(),
            )
            .map_err(|()| SweepError::NotSpendable)?;
        tracing::info!(
            outcome = "signed",
            txid = %tx.compute_txid(),
            inputs = tx.input.len(),
            "sweep signed"
        );
        Ok(tx)
    }
}

fn check(
    keys: &NodeKeys,
    request: &SweepRequest<'_>,
    allowed: &dyn Fn(&Script) -> bool,
) -> Result<(), SweepError> {
    let destination_ok = |script: &Script| keys.is_own_script(script) || allowed(script);
    for (i, out) in request.outputs.iter().enumerate() {
        if !destination_ok(&out.script_pubkey) {
            return Err(SweepError::DestinationNotAllowed {
                output: Some(i),
                script: out.script_pubkey.clone(),
            });
        }
    }
    if !destination_ok(&request.change_destination_script) {
        return Err(SweepError::DestinationNotAllowed {
            output: None,
            script: request.change_destination_script.clone(),
        });
    }

    if request.descriptors.is_empty() {
        return Err(SweepError::NoDescriptors);
    }
    // LDK adds values with `Amount`'s panicking `+`; bounded values cannot
    // overflow a u64 sum.
    let mut outpoints = HashSet::with_capacity(request.descriptors.len());
    for (index, d) in request.descriptors.iter().enumerate() {
        let value = descriptor_output(d).value;
        if value > Amount::MAX_MONEY {
            return Err(SweepError::ValueOutOfRange {
                what: "descriptor",
                index,
                sats: value.to_sat(),
            });
        }
        let outpoint = d.spendable_outpoint().into_bitcoin_outpoint();
        if !outpoints.insert(outpoint) {
            return Err(SweepError::DuplicateOutpoint { outpoint });
        }
    }
    for (index, out) in request.outputs.iter().enumerate() {
        if out.value > Amount::MAX_MONEY {
            return Err(SweepError::ValueOutOfRange {
                what: "output",
                index,
                sats: out.value.to_sat(),
            });
        }
    }

    // Version, lock time, counts (at most 3 bytes each here), marker.
    let mut weight: u64 = 4 * (4 + 4 + 3 + 3) + 2;
    let inputs = u64::try_from(request.descriptors.len()).unwrap_or(u64::MAX);
    weight = weight.saturating_add(inputs.saturating_mul(INPUT_WEIGHT_BOUND));
    let change = TxOut {
        value: Amount::ZERO,
        script_pubkey: request.change_destination_script.clone(),
    };
    for out in request.outputs.iter().chain(std::iter::once(&change)) {
        let size = u64::try_from(bitcoin::consensus::serialize(out).len()).unwrap_or(u64::MAX);
        weight = weight.saturating_add(size.saturating_mul(4));
    }
    if weight > MAX_SWEEP_WEIGHT {
        return Err(SweepError::TooHeavy { weight });
    }
    Ok(())
}
