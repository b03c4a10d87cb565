//! Executing a decided [`Action`] with the channel's keys (LDK's
//! `InMemorySigner`). Every transaction in an action was built by
//! `decide` from the stored parameters; this module only signs it.

use bitcoin::secp256k1::{All, PublicKey, Secp256k1};
use lightning::ln::chan_utils::ChannelTransactionParameters;
use lightning::sign::ecdsa::EcdsaChannelSigner as _;
use lightning::sign::{
    ChannelDerivationParameters, ChannelSigner as _, HTLCDescriptor, InMemorySigner,
};
use zeroize::Zeroizing;

use crate::channel::error::ChannelError;
use crate::channel::number::CommitmentNumber;
use crate::channel::state::ChannelKeys;
use crate::channel::verdict::{Action, HolderSecret, Operation, Output};

fn signer_failed(what: &'static str) -> impl FnOnce(()) -> ChannelError {
    move |()| ChannelError::Signer(what)
}

/// Runs `action` with `signer`, the keys of the channel's keys id. Signing
/// is in memory; the caller commits the new state (after
/// [`ChannelState::record`](crate::channel::ChannelState::record)) before
/// releasing the output.
pub fn execute(
    action: &Action,
    signer: &InMemorySigner,
    secp: &Secp256k1<All>,
) -> Result<Output, ChannelError> {
    let params = || -> Result<&ChannelTransactionParameters, ChannelError> {
        action.params.as_ref().ok_or_else(|| {
            ChannelError::InvalidRequest("the action carries no channel parameters".into())
        })
    };
    match &action.operation {
        Operation::Acknowledge => Ok(Output::Done),
        Operation::VerifySetup {
            channel_keys_id,
            holder,
        } => {
            verify_keys(signer, channel_keys_id, holder, secp)?;
            Ok(Output::Done)
        }
        Operation::VerifyImport {
            channel_keys_id,
            holder,
            number,
            point,
        } => {
            verify_keys(signer, channel_keys_id, holder, secp)?;
            check_holder_point(signer, *number, point, secp)?;
            Ok(Output::Done)
        }
        Operation::PerCommitmentPoint(n) => signer
            .get_per_commitment_point(n.ldk_index(), secp)
            .map(Output::PerCommitmentPoint)
            .map_err(signer_failed("derive a per-commitment point")),
        Operation::ReleaseHolderSecret(n) => signer
            .release_commitment_secret(n.ldk_index())
            .map(|s| Output::HolderSecret(HolderSecret(Zeroizing::new(s))))
            .map_err(signer_failed("release a per-commitment secret")),
        Operation::CheckHolderPoint { number, point } => {
            check_holder_point(signer, *number, point, secp)?;
            Ok(Output::Done)
        }
        Operation::SignCounterpartyCommitment(tx) => signer
            .sign_counterparty_commitment(params()?, tx, Vec::new(), Vec::new(), secp)
            .map(|(signature, htlc_signatures)| Output::Commitment {
                signature,
                htlc_signatures,
            })
            .map_err(signer_failed("sign a counterparty commitment")),
        Operation::SignHolderCommitment(tx) => signer
            .sign_holder_commitment(params()?, tx, secp)
            .map(Output::Signature)
            .map_err(signer_failed("sign a holder commitment")),
        Operation::SignHolderHtlc {
            tx,
            input,
            commitment_txid,
            number,
            point,
            feerate_per_kw,
            htlc,
            counterparty_signature,
        } => {
            let params = params()?;
            let descriptor = HTLCDescriptor {
                channel_derivation_parameters: ChannelDerivationParameters {
                    value_satoshis: params.channel_value_satoshis,
                    keys_id: signer.channel_keys_id(),
                    transaction_parameters: params.clone(),
                },
                commitment_txid: *commitment_txid,
                per_commitment_number: number.ldk_index(),
                per_commitment_point: *point,
                feerate_per_kw: *feerate_per_kw,
                htlc: htlc.clone(),
                preimage: None,
                counterparty_sig: *counterparty_signature,
            };
            signer
                .sign_holder_htlc_transaction(tx, *input, &descriptor, secp)
                .map(Output::Signature)
                .map_err(signer_failed("sign a holder HTLC transaction"))
        }
        Operation::SignCounterpartyHtlc {
            tx,
            input,
            amount_sat,
            point,
            htlc,
        } => signer
            .sign_counterparty_htlc_transaction(
                params()?,
                tx,
                *input,
                *amount_sat,
                point,
                htlc,
                secp,
            )
            .map(Output::Signature)
            .map_err(signer_failed("sign a counterparty HTLC claim")),
        Operation::SignJustice {
            tx,
            input,
            amount_sat,
            per_commitment_key,
            htlc,
        } => match htlc {
            None => signer.sign_justice_revoked_output(
                params()?,
                tx,
                *input,
                *amount_sat,
                per_commitment_key,
                secp,
            ),
            Some(htlc) => signer.sign_justice_revoked_htlc(
                params()?,
                tx,
                *input,
                *amount_sat,
                per_commitment_key,
                htlc,
                secp,
            ),
        }
        .map(Output::Signature)
        .map_err(signer_failed("sign a justice transaction")),
        Operation::SignHolderAnchor { tx, input } => signer
            .sign_holder_keyed_anchor_input(params()?, tx, *input, secp)
            .map(Output::Signature)
            .map_err(signer_failed("sign the holder's anchor")),
        Operation::SignClosing(tx) => signer
            .sign_closing_transaction(params()?, tx, secp)
            .map(Output::Signature)
            .map_err(signer_failed("sign a mutual close")),
        Operation::SignChannelAnnouncement(message) => signer
            .sign_channel_announcement_with_funding_key(params()?, message, secp)
            .map(Output::Signature)
            .map_err(signer_failed("sign a channel announcement")),
    }
}

/// The keys of `signer` are those of `channel_keys_id` and are `holder`.
fn verify_keys(
    signer: &InMemorySigner,
    channel_keys_id: &[u8; 32],
    holder: &ChannelKeys,
    secp: &Secp256k1<All>,
) -> Result<(), ChannelError> {
    if signer.channel_keys_id() != *channel_keys_id
        || ChannelKeys::from_ldk(&signer.pubkeys(secp)) != *holder
    {
        return Err(ChannelError::HolderKeysMismatch(hex::encode(
            channel_keys_id,
        )));
    }
    Ok(())
}

/// `point` is the holder's own per-commitment point of commitment `number`.
fn check_holder_point(
    signer: &InMemorySigner,
    number: CommitmentNumber,
    point: &PublicKey,
    secp: &Secp256k1<All>,
) -> Result<(), ChannelError> {
    let ours = signer
        .get_per_commitment_point(number.ldk_index(), secp)
        .map_err(signer_failed("derive a per-commitment point"))?;
    if ours != *point {
        return Err(ChannelError::HolderPointMismatch(number.get()));
    }
    Ok(())
}
