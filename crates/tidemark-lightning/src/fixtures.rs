//! A simulated counterparty and channel, for tests, benchmarks and
//! examples: it produces the structured requests a holder's replica sends
//! Tidemark, with real keys over real BOLT 3 transactions, and checks the
//! signatures Tidemark returns. No chain and no peer are involved.
//!
//! The holder's keys come from a [`NodeKeys`] (the seed the signer under
//! test uses) and a channel keys id; the counterparty is an LDK
//! `KeysManager` of its own seed, signing with LDK's `InMemorySigner`, so
//! every holder commitment it countersigns is what a real LDK peer would
//! send in `commitment_signed`.
//!
//! ```text
//! SimulatedChannel::new(&node, channel_keys_id, kind)
//!   .setup_request()                      ChannelRequest::Setup
//!   .sign_counterparty_request(n)         the counterparty's commitment n
//!   .revocation_request(n)                the counterparty's secret of n
//!   .validate_holder_request(n)           holder commitment n, countersigned
//!   .release_holder_request(n)            the holder's secret of n
//!   .verify_counterparty_signatures(..)   check what the signer returned
//! ```
//!
//! Balances and HTLCs are public fields: change them between requests to
//! move the channel ([`SimulatedChannel::offer_htlcs`] adds holder-offered
//! HTLCs). Every commitment pays a fixed fee of [`COMMITMENT_FEE_SAT`] out
//! of the holder's balance (the holder opened the channel).
//!
//! Numbers are BOLT 3 commitment numbers counting up (see
//! [`CommitmentNumber`]); a number above 2^48 - 1 is an error, never a
//! panic.

use bitcoin::hashes::{Hash as _, sha256};
use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::{All, Message, PublicKey, Secp256k1};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{ScriptBuf, Txid};
use lightning::chain::transaction::OutPoint as LdkOutPoint;
use lightning::ln::chan_utils::{
    self, ChannelTransactionParameters, CommitmentTransaction,
    CounterpartyChannelTransactionParameters, HTLCOutputInCommitment,
};
use lightning::sign::ecdsa::EcdsaChannelSigner as _;
use lightning::sign::{ChannelSigner as _, InMemorySigner, KeysManager};
use lightning::types::features::ChannelTypeFeatures;
use lightning::types::payment::PaymentHash;

use crate::channel::{
    ChannelKeys, ChannelKind, ChannelRequest, ChannelSetup, CommitmentData, CommitmentNumber,
    FundingOutpoint, HolderCommitment, Htlc,
};
use crate::keys::{self, KeysError, NodeKeys};

/// The channel's value.
pub const CHANNEL_VALUE_SAT: u64 = 1_000_000;
/// The holder's balance when the channel opens.
pub const HOLDER_OPENING_SAT: u64 = 700_000;
/// The counterparty's balance when the channel opens.
pub const COUNTERPARTY_OPENING_SAT: u64 = 300_000;
/// The fee every commitment pays, out of the holder's balance.
pub const COMMITMENT_FEE_SAT: u64 = 10_000;
/// The commitments' fee rate, satoshis per 1000 weight units.
pub const FEERATE_PER_KW: u32 = 2_500;
/// The best block height the simulated replicas report.
pub const BEST_BLOCK_HEIGHT: u32 = 800_000;
/// The seed of the default counterparty's `KeysManager`.
pub const COUNTERPARTY_SEED: [u8; 32] = [2; 32];
/// The delay the holder imposes on the counterparty.
pub const HOLDER_CONTEST_DELAY: u16 = 144;
/// The delay the counterparty imposes on the holder.
pub const COUNTERPARTY_CONTEST_DELAY: u16 = 288;
/// The value of each keyed anchor output (BOLT 3).
pub const ANCHOR_SAT: u64 = 330;

/// The counterparty's channel keys id (its own `KeysManager`'s; any value
/// gives valid keys).
const COUNTERPARTY_KEYS_ID: [u8; 32] = [9; 32];

/// Why the fixture could not build a request or check an answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FixtureError {
    /// A commitment number past 2^48 - 1.
    #[error("commitment number {0} is out of range (at most 2^48 - 1)")]
    Number(u64),
    /// A balance would go below zero.
    #[error("the {side} balance of {sat} sat cannot pay {needed} sat")]
    Balance {
        /// `"holder"` or `"counterparty"`.
        side: &'static str,
        /// The balance.
        sat: u64,
        /// What it was asked to pay.
        needed: u64,
    },
    /// Deriving a per-commitment point or secret failed.
    #[error(transparent)]
    Keys(#[from] KeysError),
    /// LDK's signer refused (it gives no reason).
    #[error("the counterparty's signer failed to {0}")]
    Signer(&'static str),
    /// A signature the signer returned does not verify.
    #[error("signature check failed: {0}")]
    Verify(String),
}

/// An HTLC from the holder's point of view (`offered`: by the holder) of
/// `sat` satoshis expiring at `expiry`, with payment hash `[tag; 32]`.
pub fn htlc(offered: bool, sat: u64, expiry: u32, tag: u8) -> Htlc {
    Htlc {
        offered,
        amount_msat: sat.saturating_mul(1000),
        cltv_expiry: expiry,
        payment_hash: [tag; 32],
    }
}

/// LDK's form of an HTLC of a commitment being built (no output index yet).
pub fn ldk_htlc(h: &Htlc) -> HTLCOutputInCommitment {
    HTLCOutputInCommitment {
        offered: h.offered,
        amount_msat: h.amount_msat,
        cltv_expiry: h.cltv_expiry,
        payment_hash: PaymentHash(h.payment_hash),
        transaction_output_index: None,
    }
}

/// The LDK channel type of a commitment format.
pub fn channel_type(kind: ChannelKind) -> ChannelTypeFeatures {
    match kind {
        ChannelKind::StaticRemoteKey => ChannelTypeFeatures::only_static_remote_key(),
        ChannelKind::AnchorsZeroFeeHtlcTx => {
            ChannelTypeFeatures::anchors_zero_htlc_fee_and_dependencies()
        }
    }
}

fn number(n: u64) -> Result<CommitmentNumber, FixtureError> {
    CommitmentNumber::new(n).ok_or(FixtureError::Number(n))
}

/// A channel between a holder (whose keys the signer under test holds)
/// and a simulated counterparty. The holder opened and funded it.
pub struct SimulatedChannel {
    /// The parameters the holder's replica sends in
    /// [`ChannelRequest::Setup`]. Change them before the setup to test
    /// the setup rules.
    pub setup: ChannelSetup,
    /// The commitment format.
    pub kind: ChannelKind,
    /// The holder's balance outside HTLCs, before the commitment fee.
    pub holder_sat: u64,
    /// The counterparty's balance outside HTLCs.
    pub counterparty_sat: u64,
    /// The fee rate of new commitments.
    pub feerate_per_kw: u32,
    /// The pending HTLCs, from the holder's point of view.
    pub htlcs: Vec<Htlc>,
    holder: InMemorySigner,
    counterparty: InMemorySigner,
    secp: Secp256k1<All>,
}

impl std::fmt::Debug for SimulatedChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedChannel")
            .field("setup", &self.setup)
            .field("holder_sat", &self.holder_sat)
            .field("counterparty_sat", &self.counterparty_sat)
            .field("htlcs", &self.htlcs.len())
            .finish_non_exhaustive()
    }
}

impl SimulatedChannel {
    /// A channel of `kind` whose holder keys derive from `channel_keys_id`
    /// under `holder`, with the default counterparty ([`COUNTERPARTY_SEED`]).
    pub fn new(holder: &NodeKeys, channel_keys_id: [u8; 32], kind: ChannelKind) -> Self {
        Self::with_counterparty(holder, channel_keys_id, kind, &COUNTERPARTY_SEED)
    }

    /// [`SimulatedChannel::new`] with a counterparty derived from
    /// `counterparty_seed`. The funding outpoint is derived from the
    /// channel keys id, so distinct channels have distinct outpoints.
    pub fn with_counterparty(
        holder: &NodeKeys,
        channel_keys_id: [u8; 32],
        kind: ChannelKind,
        counterparty_seed: &[u8; 32],
    ) -> Self {
        let secp = Secp256k1::new();
        let holder = holder.channel_signer(channel_keys_id);
        // The starting time only seeds the counterparty's nonces.
        let counterparty = KeysManager::new(counterparty_seed, 1, 0, true)
            .derive_channel_keys(&COUNTERPARTY_KEYS_ID);
        let funding_txid =
            Txid::from_byte_array(sha256::Hash::hash(&channel_keys_id).to_byte_array());
        let setup = ChannelSetup {
            channel_keys_id,
            holder: ChannelKeys::from_ldk(&holder.pubkeys(&secp)),
            counterparty: ChannelKeys::from_ldk(&counterparty.pubkeys(&secp)),
            holder_selected_contest_delay: HOLDER_CONTEST_DELAY,
            counterparty_selected_contest_delay: COUNTERPARTY_CONTEST_DELAY,
            funding_outpoint: FundingOutpoint {
                txid: funding_txid,
                vout: 1,
            },
            channel_type: channel_type(kind).le_flags().to_vec(),
            channel_value_sat: CHANNEL_VALUE_SAT,
            is_outbound: true,
        };
        SimulatedChannel {
            setup,
            kind,
            holder_sat: HOLDER_OPENING_SAT,
            counterparty_sat: COUNTERPARTY_OPENING_SAT,
            feerate_per_kw: FEERATE_PER_KW,
            htlcs: Vec::new(),
            holder,
            counterparty,
            secp,
        }
    }

    /// The holder's channel signer (its secrets: for in-memory pipelines
    /// in tests).
    pub fn holder_signer(&self) -> &InMemorySigner {
        &self.holder
    }

    /// The counterparty's channel signer.
    pub fn counterparty_signer(&self) -> &InMemorySigner {
        &self.counterparty
    }

    /// Adds `count` HTLCs the holder offers, `sat` each, expiring at
    /// `expiry`, paid out of the holder's balance (payment hashes
    /// `[first_tag..]`).
    pub fn offer_htlcs(
        &mut self,
        count: u8,
        sat: u64,
        expiry: u32,
        first_tag: u8,
    ) -> Result<(), FixtureError> {
        let needed = sat.saturating_mul(u64::from(count));
        self.holder_sat = self
            .holder_sat
            .checked_sub(needed)
            .ok_or(FixtureError::Balance {
                side: "holder",
                sat: self.holder_sat,
                needed,
            })?;
        for i in 0..count {
            self.htlcs
                .push(htlc(true, sat, expiry, first_tag.wrapping_add(i)));
        }
        Ok(())
    }

    fn anchors_sat(&self) -> u64 {
        if self.kind.has_anchors() {
            2 * ANCHOR_SAT
        } else {
            0
        }
    }

    /// The holder's balance in a commitment: after the fee and anchors.
    fn holder_output_sat(&self) -> Result<u64, FixtureError> {
        let needed = COMMITMENT_FEE_SAT + self.anchors_sat();
        self.holder_sat
            .checked_sub(needed)
            .ok_or(FixtureError::Balance {
                side: "holder",
                sat: self.holder_sat,
                needed,
            })
    }

    /// The counterparty's per-commitment point of commitment `n`.
    pub fn counterparty_point(&self, n: u64) -> Result<PublicKey, FixtureError> {
        Ok(keys::per_commitment_point(
            &self.counterparty,
            number(n)?.ldk_index(),
            &self.secp,
        )?)
    }

    /// The counterparty's per-commitment secret of commitment `n` (what it
    /// sends in `revoke_and_ack` to revoke `n`).
    pub fn counterparty_secret(&self, n: u64) -> Result<[u8; 32], FixtureError> {
        Ok(keys::per_commitment_secret(&self.counterparty, number(n)?.ldk_index())?.secret_bytes())
    }

    /// The holder's per-commitment point of commitment `n`.
    pub fn holder_point(&self, n: u64) -> Result<PublicKey, FixtureError> {
        Ok(keys::per_commitment_point(
            &self.holder,
            number(n)?.ldk_index(),
            &self.secp,
        )?)
    }

    /// The counterparty's commitment `n` at the current balances and
    /// HTLCs: what the holder's replica asks Tidemark to sign.
    pub fn counterparty_commitment(&self, n: u64) -> Result<CommitmentData, FixtureError> {
        Ok(CommitmentData {
            number: number(n)?,
            per_commitment_point: self.counterparty_point(n)?,
            to_broadcaster_sat: self.counterparty_sat,
            to_countersignatory_sat: self.holder_output_sat()?,
            feerate_per_kw: self.feerate_per_kw,
            htlcs: self
                .htlcs
                .iter()
                .map(|h| Htlc {
                    offered: !h.offered,
                    ..h.clone()
                })
                .collect(),
        })
    }

    /// The holder's commitment `n` at the current balances and HTLCs,
    /// without the counterparty's signatures.
    pub fn holder_data(&self, n: u64) -> Result<CommitmentData, FixtureError> {
        Ok(CommitmentData {
            number: number(n)?,
            per_commitment_point: self.holder_point(n)?,
            to_broadcaster_sat: self.holder_output_sat()?,
            to_countersignatory_sat: self.counterparty_sat,
            feerate_per_kw: self.feerate_per_kw,
            htlcs: self.htlcs.clone(),
        })
    }

    /// The channel's parameters as the counterparty sees them.
    pub fn counterparty_params(&self) -> ChannelTransactionParameters {
        let s = &self.setup;
        ChannelTransactionParameters {
            holder_pubkeys: s.counterparty.to_ldk(),
            holder_selected_contest_delay: s.counterparty_selected_contest_delay,
            is_outbound_from_holder: !s.is_outbound,
            counterparty_parameters: Some(CounterpartyChannelTransactionParameters {
                pubkeys: s.holder.to_ldk(),
                selected_contest_delay: s.holder_selected_contest_delay,
            }),
            funding_outpoint: Some(LdkOutPoint {
                txid: s.funding_outpoint.txid,
                index: s.funding_outpoint.vout,
            }),
            splice_parent_funding_txid: None,
            channel_type_features: s.channel_type_features(),
            channel_value_satoshis: s.channel_value_sat,
        }
    }

    /// Holder commitment `data` with the counterparty's real signatures
    /// (its `commitment_signed`).
    pub fn countersign(&self, data: CommitmentData) -> Result<HolderCommitment, FixtureError> {
        let params = self.counterparty_params();
        let tx = CommitmentTransaction::new(
            data.number.ldk_index(),
            &data.per_commitment_point,
            data.to_broadcaster_sat,
            data.to_countersignatory_sat,
            data.feerate_per_kw,
            data.htlcs.iter().map(ldk_htlc).collect(),
            &params.as_counterparty_broadcastable(),
            &self.secp,
        );
        let (signature, htlc_signatures) = self
            .counterparty
            .sign_counterparty_commitment(&params, &tx, Vec::new(), Vec::new(), &self.secp)
            .map_err(|()| FixtureError::Signer("sign the holder's commitment"))?;
        Ok(HolderCommitment {
            commitment: data,
            counterparty_signature: signature,
            counterparty_htlc_signatures: htlc_signatures,
        })
    }

    /// Holder commitment `n` at the current balances, countersigned.
    pub fn holder_commitment(&self, n: u64) -> Result<HolderCommitment, FixtureError> {
        self.countersign(self.holder_data(n)?)
    }

    /// The counterparty's commitment as the holder's signer rebuilds it.
    pub fn rebuilt_counterparty(&self, data: &CommitmentData) -> CommitmentTransaction {
        self.rebuilt(data, false)
    }

    /// The holder's commitment as the holder's signer rebuilds it.
    pub fn rebuilt_holder(&self, data: &CommitmentData) -> CommitmentTransaction {
        self.rebuilt(data, true)
    }

    fn rebuilt(&self, data: &CommitmentData, holder: bool) -> CommitmentTransaction {
        let params = self.setup.transaction_parameters();
        let directed = if holder {
            params.as_holder_broadcastable()
        } else {
            params.as_counterparty_broadcastable()
        };
        CommitmentTransaction::new(
            data.number.ldk_index(),
            &data.per_commitment_point,
            data.to_broadcaster_sat,
            data.to_countersignatory_sat,
            data.feerate_per_kw,
            data.htlcs.iter().map(ldk_htlc).collect(),
            &directed,
            &self.secp,
        )
    }

    /// The 2-of-2 funding script.
    pub fn funding_script(&self) -> ScriptBuf {
        chan_utils::make_funding_redeemscript(
            &self.setup.holder.funding_pubkey,
            &self.setup.counterparty.funding_pubkey,
        )
    }

    /// Checks what the signer returned for the counterparty commitment
    /// `data`: `signature` must be the holder funding key's over the
    /// rebuilt commitment, and `htlc_signatures` the holder HTLC key's
    /// over each HTLC transaction, in output order, as the counterparty
    /// will check them.
    pub fn verify_counterparty_signatures(
        &self,
        data: &CommitmentData,
        signature: &Signature,
        htlc_signatures: &[Signature],
    ) -> Result<(), FixtureError> {
        let tx = self.rebuilt_counterparty(data);
        let trusted = tx.trust();
        let built = trusted.built_transaction();
        let sighash = built.get_sighash_all(&self.funding_script(), self.setup.channel_value_sat);
        self.secp
            .verify_ecdsa(&sighash, signature, &self.setup.holder.funding_pubkey)
            .map_err(|e| FixtureError::Verify(format!("commitment signature: {e}")))?;
        let htlcs = tx.nondust_htlcs();
        if htlcs.len() != htlc_signatures.len() {
            return Err(FixtureError::Verify(format!(
                "{} htlc signatures for {} htlc outputs",
                htlc_signatures.len(),
                htlcs.len()
            )));
        }
        let keys = trusted.keys();
        let features = self.setup.channel_type_features();
        let sighash_type = if self.kind.has_anchors() {
            EcdsaSighashType::SinglePlusAnyoneCanPay
        } else {
            EcdsaSighashType::All
        };
        let holder_htlc_key = keys.countersignatory_htlc_key.to_public_key();
        for (i, (h, sig)) in htlcs.iter().zip(htlc_signatures).enumerate() {
            if h.transaction_output_index.is_none() {
                return Err(FixtureError::Verify(format!("htlc {i} has no output")));
            }
            let htlc_tx = chan_utils::build_htlc_transaction(
                &built.txid,
                data.feerate_per_kw,
                self.setup.holder_selected_contest_delay,
                h,
                &features,
                &keys.broadcaster_delayed_payment_key,
                &keys.revocation_key,
            );
            let script = chan_utils::get_htlc_redeemscript(h, &features, keys);
            let sighash = SighashCache::new(&htlc_tx)
                .p2wsh_signature_hash(0, &script, h.to_bitcoin_amount(), sighash_type)
                .map_err(|e| FixtureError::Verify(format!("htlc {i} sighash: {e}")))?;
            self.secp
                .verify_ecdsa(
                    &Message::from_digest(sighash.to_byte_array()),
                    sig,
                    &holder_htlc_key,
                )
                .map_err(|e| FixtureError::Verify(format!("htlc {i} signature: {e}")))?;
        }
        Ok(())
    }

    /// [`ChannelRequest::Setup`] of [`SimulatedChannel::setup`].
    pub fn setup_request(&self) -> ChannelRequest {
        ChannelRequest::Setup(Box::new(self.setup.clone()))
    }

    /// Sign the counterparty's commitment `n`.
    pub fn sign_counterparty_request(&self, n: u64) -> Result<ChannelRequest, FixtureError> {
        Ok(ChannelRequest::SignCounterpartyCommitment(Box::new(
            self.counterparty_commitment(n)?,
        )))
    }

    /// Validate the counterparty's revocation of its commitment `n`.
    pub fn revocation_request(&self, n: u64) -> Result<ChannelRequest, FixtureError> {
        Ok(ChannelRequest::ValidateCounterpartyRevocation {
            number: number(n)?,
            secret: self.counterparty_secret(n)?,
        })
    }

    /// Validate holder commitment `n`, countersigned by the counterparty.
    pub fn validate_holder_request(&self, n: u64) -> Result<ChannelRequest, FixtureError> {
        Ok(ChannelRequest::ValidateHolderCommitment(Box::new(
            self.holder_commitment(n)?,
        )))
    }

    /// Release the holder's secret of commitment `n` (revoking it).
    pub fn release_holder_request(&self, n: u64) -> Result<ChannelRequest, FixtureError> {
        Ok(ChannelRequest::ReleaseHolderSecret(number(n)?))
    }

    /// The requests that open the channel: the setup, the counterparty's
    /// commitment 0 and the holder's commitment 0 (as `funding_created` /
    /// `funding_signed` exchange them).
    pub fn opening_requests(&self) -> Result<Vec<ChannelRequest>, FixtureError> {
        Ok(vec![
            self.setup_request(),
            self.sign_counterparty_request(0)?,
            self.validate_holder_request(0)?,
        ])
    }

    /// The requests of one full round to commitment `n` on both sides:
    /// sign the counterparty's `n`, validate its revocation of `n - 1`,
    /// validate the holder's `n`, release the holder's secret of `n - 1`.
    pub fn round_requests(&self, n: u64) -> Result<Vec<ChannelRequest>, FixtureError> {
        let previous = n.checked_sub(1).ok_or(FixtureError::Number(n))?;
        Ok(vec![
            self.sign_counterparty_request(n)?,
            self.revocation_request(previous)?,
            self.validate_holder_request(n)?,
            self.release_holder_request(previous)?,
        ])
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::keys::RemoteKeyDerivation;

    #[test]
    fn a_holder_commitment_the_counterparty_signs_verifies_under_its_funding_key() {
        let node = NodeKeys::with_entropy_start(&[1; 32], RemoteKeyDerivation::V2, 1, 0).unwrap();
        for kind in ChannelKind::ALL {
            let mut c = SimulatedChannel::new(&node, [7; 32], kind);
            c.offer_htlcs(2, 20_000, BEST_BLOCK_HEIGHT + 100, 1)
                .unwrap();
            let signed = c.holder_commitment(3).unwrap();
            let tx = c.rebuilt_holder(&signed.commitment);
            let sighash = tx
                .trust()
                .built_transaction()
                .get_sighash_all(&c.funding_script(), CHANNEL_VALUE_SAT);
            c.secp
                .verify_ecdsa(
                    &sighash,
                    &signed.counterparty_signature,
                    &c.setup.counterparty.funding_pubkey,
                )
                .unwrap();
            assert_eq!(signed.counterparty_htlc_signatures.len(), 2);
        }
    }

    #[test]
    fn out_of_range_numbers_and_balances_are_errors() {
        let node = NodeKeys::with_entropy_start(&[1; 32], RemoteKeyDerivation::V2, 1, 0).unwrap();
        let mut c = SimulatedChannel::new(&node, [7; 32], ChannelKind::StaticRemoteKey);
        assert!(matches!(
            c.sign_counterparty_request(1 << 48),
            Err(FixtureError::Number(_))
        ));
        assert!(matches!(c.round_requests(0), Err(FixtureError::Number(0))));
        assert!(matches!(
            c.offer_htlcs(200, 10_000, BEST_BLOCK_HEIGHT, 0),
            Err(FixtureError::Balance { .. })
        ));
    }
}
