//! The wallet's signatures in PSBT form: made in memory by the key
//! backend, recorded with the intent, and put into a PSBT (a new signature
//! or a replay of the stored ones).

use bitcoin::psbt::Psbt;
use bitcoin::secp256k1;
use bitcoin::sighash::EcdsaSighashType;
use tidemark_core::{KeyBackend, ObjectId, SignInput, SignMessage, Signature};

use crate::analysis::Analysis;
use crate::error::BitcoinError;
use crate::state::SignedInput;
use crate::wallet::Wallet;

/// Signs every input in memory; returns where each signature goes and
/// the signatures in PSBT form (DER + sighash byte for ECDSA; 64 or 65
/// bytes for taproot).
pub(super) fn sign_all(
    keys: &dyn KeyBackend,
    wallet: &Wallet,
    facts: &Analysis,
    inputs: &[SignInput],
) -> Result<(Vec<SignedInput>, Vec<Signature>), BitcoinError> {
    let mut placed = Vec::with_capacity(inputs.len());
    let mut signatures = Vec::with_capacity(inputs.len());
    for (input, facts) in inputs.iter().zip(&facts.wallet_inputs) {
        let raw = keys.sign(&input.key, &input.message)?;
        let index = u32::try_from(facts.index).unwrap_or(u32::MAX);
        let child = wallet.child_public_key(&facts.path)?;
        let bad = |e: String| BitcoinError::Key(tidemark_core::KeyError::Backend(e));
        match &input.message {
            SignMessage::ChildEcdsaDigest { .. } => {
                let signature = secp256k1::ecdsa::Signature::from_compact(&raw.0)
                    .map_err(|e| bad(e.to_string()))?;
                let sig = bitcoin::ecdsa::Signature {
                    signature,
                    sighash_type: EcdsaSighashType::All,
                };
                placed.push(SignedInput {
                    index,
                    pubkey: hex::encode(child.serialize()),
                    scheme: "ecdsa".into(),
                });
                signatures.push(Signature(sig.to_vec()));
            }
            _ => {
                let signature = secp256k1::schnorr::Signature::from_slice(&raw.0)
                    .map_err(|e| bad(e.to_string()))?;
                let sig = bitcoin::taproot::Signature {
                    signature,
                    sighash_type: facts.tap_sighash,
                };
                placed.push(SignedInput {
                    index,
                    pubkey: hex::encode(child.x_only_public_key().0.serialize()),
                    scheme: "taproot".into(),
                });
                signatures.push(Signature(sig.to_vec()));
            }
        }
    }
    Ok((placed, signatures))
}

/// Puts signatures (PSBT form) where `placed` says.
pub(super) fn apply(
    psbt: &mut Psbt,
    placed: &[SignedInput],
    signatures: &[Signature],
    object: &ObjectId,
) -> Result<(), BitcoinError> {
    let corrupt = |reason: String| BitcoinError::CorruptState {
        object: object.to_string(),
        reason,
    };
    if placed.len() != signatures.len() {
        return Err(corrupt(
            "signature count differs from the signed inputs".into(),
        ));
    }
    for (place, sig) in placed.iter().zip(signatures) {
        let input = usize::try_from(place.index)
            .ok()
            .and_then(|i| psbt.inputs.get_mut(i))
            .ok_or_else(|| corrupt(format!("no input {}", place.index)))?;
        let key = hex::decode(&place.pubkey).map_err(|e| corrupt(e.to_string()))?;
        match place.scheme.as_str() {
            "ecdsa" => {
                let pubkey =
                    bitcoin::PublicKey::from_slice(&key).map_err(|e| corrupt(e.to_string()))?;
                let sig = bitcoin::ecdsa::Signature::from_slice(&sig.0)
                    .map_err(|e| corrupt(e.to_string()))?;
                input.partial_sigs.insert(pubkey, sig);
            }
            "taproot" => {
                let internal = secp256k1::XOnlyPublicKey::from_slice(&key)
                    .map_err(|e| corrupt(e.to_string()))?;
                let sig = bitcoin::taproot::Signature::from_slice(&sig.0)
                    .map_err(|e| corrupt(e.to_string()))?;
                if input.tap_internal_key.is_none() {
                    input.tap_internal_key = Some(internal);
                }
                input.tap_key_sig = Some(sig);
            }
            other => return Err(corrupt(format!("unknown signature scheme {other:?}"))),
        }
    }
    Ok(())
}
