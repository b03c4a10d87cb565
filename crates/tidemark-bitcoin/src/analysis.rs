//! What a PSBT would do, established without trusting its claims: which
//! inputs are the wallet's (by deriving their scripts), what every input
//! brings (from UTXO data checked against the spent txid), which outputs
//! are the wallet's, the fee and a lower bound of the final size.

use bitcoin::psbt::Psbt;
use bitcoin::sighash::{EcdsaSighashType, Prevouts, SighashCache, TapSighashType};
use bitcoin::{OutPoint, ScriptBuf, TxOut, Txid};
use tidemark_core::{ChildPath, KeyId, SignInput, SignMessage};

use crate::error::BitcoinError;
use crate::wallet::{Ownership, Wallet, WalletKind};

/// Witness weight of a P2WPKH spend, at least: item count, a low-R DER
/// signature with its sighash byte (72), the public key (34).
const P2WPKH_WITNESS_WU: u64 = 1 + 72 + 34;
/// Witness weight of a taproot key-path spend, at least: item count and a
/// 64-byte signature with its length.
const P2TR_KEY_WITNESS_WU: u64 = 1 + 65;
/// The segwit marker and flag.
const SEGWIT_MARKER_WU: u64 = 2;

/// An input the wallet signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WalletInput {
    pub(crate) index: usize,
    pub(crate) path: ChildPath,
    pub(crate) outpoint: OutPoint,
    /// Taproot only: the sighash type (DEFAULT or ALL).
    pub(crate) tap_sighash: TapSighashType,
}

/// An output and whether the wallet owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutputInfo {
    pub(crate) script: ScriptBuf,
    pub(crate) value: u64,
    pub(crate) wallet: bool,
}

/// The facts of a PSBT for one wallet.
#[derive(Debug, Clone)]
pub(crate) struct Analysis {
    pub(crate) txid: Txid,
    pub(crate) inputs: Vec<OutPoint>,
    pub(crate) wallet_inputs: Vec<WalletInput>,
    pub(crate) outputs: Vec<OutputInfo>,
    /// Outputs that claim the wallet's account but do not derive.
    pub(crate) disguised: Vec<usize>,
    pub(crate) fee_sat: u64,
    /// A lower bound of the signed transaction's virtual size, so that
    /// `fee / vsize` is an upper bound of the fee rate.
    pub(crate) vsize: u64,
    prevouts: Vec<TxOut>,
}

impl Analysis {
    /// Satoshis sent to outputs that are not the wallet's.
    pub(crate) fn sent_sat(&self) -> u64 {
        self.outputs
            .iter()
            .filter(|o| !o.wallet)
            .map(|o| o.value)
            .fold(0, u64::saturating_add)
    }
}

/// Decodes a PSBT (BIP 174).
pub(crate) fn decode(bytes: &[u8]) -> Result<Psbt, BitcoinError> {
    Psbt::deserialize(bytes).map_err(|e| BitcoinError::MalformedPsbt(e.to_string()))
}

/// Analyses `psbt` for `wallet`. `require_previous_tx` makes a segwit v0
/// wallet input without `non_witness_utxo` an error (its amount cannot be
/// checked otherwise).
pub(crate) fn analyse(
    wallet: &Wallet,
    psbt: &Psbt,
    require_previous_tx: bool,
) -> Result<Analysis, BitcoinError> {
    let tx = &psbt.unsigned_tx;
    if psbt.inputs.len() != tx.input.len() || psbt.outputs.len() != tx.output.len() {
        return Err(BitcoinError::MalformedPsbt(
            "input or output maps do not match the transaction".into(),
        ));
    }
    let mut prevouts = Vec::with_capacity(tx.input.len());
    let mut wallet_inputs = Vec::new();
    let mut input_sat: u64 = 0;
    let mut witness_wu: u64 = 0;
    for (index, (txin, input)) in tx.input.iter().zip(&psbt.inputs).enumerate() {
        let utxo = utxo_of(index, txin.previous_output, input)?;
        input_sat = input_sat
            .checked_add(utxo.value.to_sat())
            .ok_or_else(|| BitcoinError::MalformedPsbt("input amounts overflow".into()))?;
        let origins: Vec<_> = match wallet.kind() {
            WalletKind::Wpkh => input.bip32_derivation.values().collect(),
            WalletKind::Tr => input
                .tap_key_origins
                .values()
                .filter(|(leaves, _)| leaves.is_empty())
                .map(|(_, source)| source)
                .collect(),
        };
        if let Ownership::Ours(path) = wallet.recognise(&utxo.script_pubkey, origins.into_iter()) {
            let tap_sighash = check_sighash(index, wallet.kind(), input)?;
            if wallet.kind() == WalletKind::Wpkh
                && require_previous_tx
                && input.non_witness_utxo.is_none()
            {
                return Err(BitcoinError::MissingUtxo {
                    index,
                    what: "previous transaction (non_witness_utxo), which the policy requires",
                });
            }
            witness_wu += match wallet.kind() {
                WalletKind::Wpkh => P2WPKH_WITNESS_WU,
                WalletKind::Tr => P2TR_KEY_WITNESS_WU,
            };
            wallet_inputs.push(WalletInput {
                index,
                path,
                outpoint: txin.previous_output,
                tap_sighash,
            });
        }
        prevouts.push(utxo);
    }
    if wallet_inputs.is_empty() {
        return Err(BitcoinError::NoWalletInputs(wallet.name().to_string()));
    }

    let mut outputs = Vec::with_capacity(tx.output.len());
    let mut disguised = Vec::new();
    let mut output_sat: u64 = 0;
    for (index, (txout, output)) in tx.output.iter().zip(&psbt.outputs).enumerate() {
        output_sat = output_sat
            .checked_add(txout.value.to_sat())
            .ok_or_else(|| BitcoinError::MalformedPsbt("output amounts overflow".into()))?;
        let origins = output.bip32_derivation.values().chain(
            output
                .tap_key_origins
                .values()
                .filter(|(leaves, _)| leaves.is_empty())
                .map(|(_, source)| source),
        );
        let wallet_owned = match wallet.recognise(&txout.script_pubkey, origins) {
            Ownership::Ours(_) => true,
            Ownership::Lie => {
                disguised.push(index);
                false
            }
            Ownership::Foreign => false,
        };
        outputs.push(OutputInfo {
            script: txout.script_pubkey.clone(),
            value: txout.value.to_sat(),
            wallet: wallet_owned,
        });
    }
    let fee_sat = input_sat
        .checked_sub(output_sat)
        .ok_or(BitcoinError::OutputsExceedInputs {
            inputs: input_sat,
            outputs: output_sat,
        })?;
    let weight = tx.weight().to_wu() + witness_wu + SEGWIT_MARKER_WU;
    Ok(Analysis {
        txid: tx.compute_txid(),
        inputs: tx.input.iter().map(|i| i.previous_output).collect(),
        wallet_inputs,
        outputs,
        disguised,
        fee_sat,
        vsize: weight.div_ceil(4),
        prevouts,
    })
}

/// The output an input spends, from its UTXO data, checked: a previous
/// transaction must hash to the spent txid and have the spent output, and
/// a `witness_utxo` given beside it must be that very output.
fn utxo_of(
    index: usize,
    outpoint: OutPoint,
    input: &bitcoin::psbt::Input,
) -> Result<TxOut, BitcoinError> {
    let mismatch = |reason: String| BitcoinError::UtxoMismatch { index, reason };
    let from_tx = match &input.non_witness_utxo {
        Some(prev) => {
            let txid = prev.compute_txid();
            if txid != outpoint.txid {
                return Err(mismatch(format!(
                    "previous transaction hashes to {txid}, the input spends {}",
                    outpoint.txid
                )));
            }
            let out = usize::try_from(outpoint.vout)
                .ok()
                .and_then(|vout| prev.output.get(vout))
                .ok_or_else(|| {
                    mismatch(format!(
                        "previous transaction has no output {}",
                        outpoint.vout
                    ))
                })?;
            Some(out.clone())
        }
        None => None,
    };
    match (&input.witness_utxo, from_tx) {
        (Some(w), Some(t)) if *w != t => Err(mismatch(format!(
            "witness_utxo says {} sat to {}, the previous transaction says {} sat to {}",
            w.value.to_sat(),
            w.script_pubkey,
            t.value.to_sat(),
            t.script_pubkey
        ))),
        (_, Some(t)) => Ok(t),
        (Some(w), None) => Ok(w.clone()),
        (None, None) => Err(BitcoinError::MissingUtxo {
            index,
            what: "UTXO (witness_utxo or non_witness_utxo)",
        }),
    }
}

/// Only SIGHASH_ALL (or taproot's DEFAULT) is signed: every other type
/// lets inputs or outputs change after signing, which no intent survives.
fn check_sighash(
    index: usize,
    kind: WalletKind,
    input: &bitcoin::psbt::Input,
) -> Result<TapSighashType, BitcoinError> {
    let unsupported = |found: String| BitcoinError::UnsupportedSighash { index, found };
    match (kind, input.sighash_type) {
        (WalletKind::Wpkh, None) => Ok(TapSighashType::Default),
        (WalletKind::Wpkh, Some(t)) => match t.ecdsa_hash_ty() {
            Ok(EcdsaSighashType::All) => Ok(TapSighashType::Default),
            _ => Err(unsupported(t.to_string())),
        },
        (WalletKind::Tr, None) => Ok(TapSighashType::Default),
        (WalletKind::Tr, Some(t)) => match t.taproot_hash_ty() {
            Ok(ty @ (TapSighashType::Default | TapSighashType::All)) => Ok(ty),
            _ => Err(unsupported(t.to_string())),
        },
    }
}

/// What to sign for each wallet input: its sighash, by its child key.
pub(crate) fn sign_inputs(
    wallet: &Wallet,
    psbt: &Psbt,
    analysis: &Analysis,
) -> Result<Vec<SignInput>, BitcoinError> {
    let mut cache = SighashCache::new(&psbt.unsigned_tx);
    let failed = |e: String| BitcoinError::MalformedPsbt(format!("cannot compute sighash: {e}"));
    let key: &KeyId = wallet.name();
    analysis
        .wallet_inputs
        .iter()
        .map(|input| {
            let message = match wallet.kind() {
                WalletKind::Wpkh => {
                    let utxo = &analysis.prevouts[input.index];
                    let hash = cache
                        .p2wpkh_signature_hash(
                            input.index,
                            &utxo.script_pubkey,
                            utxo.value,
                            EcdsaSighashType::All,
                        )
                        .map_err(|e| failed(e.to_string()))?;
                    SignMessage::ChildEcdsaDigest {
                        path: input.path.clone(),
                        digest: hash.to_raw_hash().to_byte_array(),
                    }
                }
                WalletKind::Tr => {
                    let hash = cache
                        .taproot_key_spend_signature_hash(
                            input.index,
                            &Prevouts::All(&analysis.prevouts),
                            input.tap_sighash,
                        )
                        .map_err(|e| failed(e.to_string()))?;
                    SignMessage::TaprootKeySpend {
                        path: input.path.clone(),
                        merkle_root: None,
                        digest: hash.to_raw_hash().to_byte_array(),
                    }
                }
            };
            Ok(SignInput {
                key: key.clone(),
                message,
            })
        })
        .collect()
}

use bitcoin::hashes::Hash as _;
