//! The appendices' channel as Tidemark stores it, and the part of BOLT 3
//! LDK's builder leaves to its caller (fee, trimming, anchors' cost).

use bitcoin::Txid;
use bitcoin::hashes::{Hash as _, sha256};
use bitcoin::secp256k1::{All, PublicKey, Secp256k1, SecretKey};
use lightning::chain::transaction::OutPoint;
use lightning::ln::chan_utils::{
    ChannelPublicKeys, ChannelTransactionParameters, CounterpartyChannelTransactionParameters,
    HTLCOutputInCommitment, htlc_success_tx_weight, htlc_timeout_tx_weight,
};
use lightning::ln::channel_keys::{DelayedPaymentBasepoint, HtlcBasepoint, RevocationBasepoint};
use lightning::types::features::ChannelTypeFeatures;
use lightning::types::payment::{PaymentHash, PaymentPreimage};

use crate::vectors::*;

/// BOLT 2's starting commitment number: LDK counts commitment numbers
/// down from it, BOLT 3 up from 0.
pub(crate) const INITIAL_COMMITMENT_NUMBER: u64 = (1 << 48) - 1;
/// BOLT 3 "Fee Calculation": the expected commitment weight without HTLCs.
const COMMITMENT_BASE_WEIGHT: u64 = 724;
/// The same with `option_anchors` (two anchor outputs).
const COMMITMENT_BASE_WEIGHT_ANCHORS: u64 = 1124;
/// BOLT 3: each untrimmed HTLC adds 172 to the expected weight (LDK's
/// constant of the same name is crate-private).
const COMMITMENT_TX_WEIGHT_PER_HTLC: u64 = 172;
/// BOLT 3: each anchor output is 330 satoshis, paid by the opener.
const ANCHOR_OUTPUT_SAT: u64 = 330;

pub(crate) fn secret(hex: &str) -> SecretKey {
    SecretKey::from_slice(&hex::decode(hex).unwrap()).unwrap()
}

pub(crate) fn public(hex: &str) -> PublicKey {
    PublicKey::from_slice(&hex::decode(hex).unwrap()).unwrap()
}

/// One side's secrets; the vectors use the payment basepoint as the HTLC
/// basepoint.
pub(crate) struct Party {
    pub(crate) funding: SecretKey,
    pub(crate) payment_base: SecretKey,
    pub(crate) revocation_base: SecretKey,
    pub(crate) delayed_payment_base: SecretKey,
}

impl Party {
    pub(crate) fn pubkeys(&self, secp: &Secp256k1<All>) -> ChannelPublicKeys {
        let point = |secret: &SecretKey| PublicKey::from_secret_key(secp, secret);
        ChannelPublicKeys {
            funding_pubkey: point(&self.funding),
            revocation_basepoint: RevocationBasepoint(point(&self.revocation_base)),
            payment_point: point(&self.payment_base),
            delayed_payment_basepoint: DelayedPaymentBasepoint(point(&self.delayed_payment_base)),
            htlc_basepoint: HtlcBasepoint(point(&self.payment_base)),
        }
    }
}

/// The appendices' channel: local (the opener) broadcasts every
/// commitment, remote countersigns.
pub(crate) struct Channel {
    pub(crate) secp: Secp256k1<All>,
    pub(crate) local: Party,
    pub(crate) remote: Party,
    pub(crate) per_commitment_point: PublicKey,
}

impl Channel {
    pub(crate) fn new() -> Self {
        let secp = Secp256k1::new();
        let per_commitment_point =
            PublicKey::from_secret_key(&secp, &secret(LOCAL_PER_COMMITMENT_SECRET));
        Channel {
            local: Party {
                funding: secret(LOCAL_FUNDING_PRIVKEY),
                payment_base: secret(LOCAL_PAYMENT_BASEPOINT_SECRET),
                revocation_base: secret(LOCAL_REVOCATION_BASEPOINT_SECRET),
                delayed_payment_base: secret(LOCAL_DELAYED_PAYMENT_BASEPOINT_SECRET),
            },
            remote: Party {
                funding: secret(REMOTE_FUNDING_PRIVKEY),
                payment_base: secret(REMOTE_PAYMENT_BASEPOINT_SECRET),
                revocation_base: secret(REMOTE_REVOCATION_BASEPOINT_SECRET),
                delayed_payment_base: secret(REMOTE_DELAYED_PAYMENT_BASEPOINT_SECRET),
            },
            per_commitment_point,
            secp,
        }
    }

    /// What Tidemark stores per channel, from local's (the holder's) side.
    pub(crate) fn parameters(
        &self,
        channel_type: ChannelTypeFeatures,
    ) -> ChannelTransactionParameters {
        ChannelTransactionParameters {
            holder_pubkeys: self.local.pubkeys(&self.secp),
            holder_selected_contest_delay: LOCAL_DELAY,
            is_outbound_from_holder: true,
            counterparty_parameters: Some(CounterpartyChannelTransactionParameters {
                pubkeys: self.remote.pubkeys(&self.secp),
                selected_contest_delay: LOCAL_DELAY,
            }),
            funding_outpoint: Some(OutPoint {
                txid: FUNDING_TXID.parse::<Txid>().unwrap(),
                index: FUNDING_OUTPUT_INDEX,
            }),
            splice_parent_funding_txid: None,
            channel_type_features: channel_type,
            channel_value_satoshis: FUNDING_AMOUNT_SAT,
        }
    }

    /// Local's and remote's funding pubkeys.
    pub(crate) fn funding_pubkeys(&self) -> (PublicKey, PublicKey) {
        (
            PublicKey::from_secret_key(&self.secp, &self.local.funding),
            PublicKey::from_secret_key(&self.secp, &self.remote.funding),
        )
    }
}

/// What `CommitmentTransaction::new` takes from its caller, computed as
/// BOLT 3 specifies ("Trimmed Outputs", "Fee Calculation", "Fee
/// Payment"). LDK's builder places the outputs it is given; the fee, the
/// trimming and the anchors' cost are its caller's to compute (in LDK the
/// crate-private `TxBuilder`), and so Tidemark's.
pub(crate) struct CommitmentInputs {
    pub(crate) to_local_sat: u64,
    pub(crate) to_remote_sat: u64,
    pub(crate) nondust_htlcs: Vec<HTLCOutputInCommitment>,
}

impl CommitmentInputs {
    pub(crate) fn new(case: &CommitmentVector, channel_type: &ChannelTypeFeatures) -> Self {
        let anchors = channel_type.supports_anchors_zero_fee_htlc_tx();
        let feerate = u64::from(case.feerate_per_kw);
        // Zero with zero-fee HTLC anchors; otherwise the feerate times the
        // HTLC transaction's expected weight (663 for HTLC-timeout, 703 for
        // HTLC-success, as LDK's public weight functions give them),
        // rounded down.
        let second_stage_fee_sat = |offered: bool| {
            if anchors {
                0
            } else if offered {
                feerate * htlc_timeout_tx_weight(channel_type) / 1000
            } else {
                feerate * htlc_success_tx_weight(channel_type) / 1000
            }
        };
        // An HTLC is trimmed when its amount minus its second-stage fee is
        // below the commitment owner's dust limit.
        let nondust_htlcs: Vec<HTLCOutputInCommitment> = case
            .htlcs
            .htlcs()
            .iter()
            .filter(|h| {
                h.amount_msat / 1000 >= case.dust_limit_sat + second_stage_fee_sat(h.offered)
            })
            .map(|h| HTLCOutputInCommitment {
                offered: h.offered,
                amount_msat: h.amount_msat,
                cltv_expiry: h.cltv_expiry,
                payment_hash: payment_hash(&h.payment_preimage),
                transaction_output_index: None,
            })
            .collect();
        let base_weight = if anchors {
            COMMITMENT_BASE_WEIGHT_ANCHORS
        } else {
            COMMITMENT_BASE_WEIGHT
        };
        let weight = base_weight + COMMITMENT_TX_WEIGHT_PER_HTLC * nondust_htlcs.len() as u64;
        let fee_sat = feerate * weight / 1000;
        let anchors_sat = if anchors { 2 * ANCHOR_OUTPUT_SAT } else { 0 };
        let above_dust = |sat: u64| if sat < case.dust_limit_sat { 0 } else { sat };
        CommitmentInputs {
            // Local is the opener: it pays the fee and the anchors, and
            // what it cannot pay leaves it with nothing.
            to_local_sat: above_dust(
                (case.to_local_msat / 1000).saturating_sub(fee_sat + anchors_sat),
            ),
            to_remote_sat: above_dust(case.to_remote_msat / 1000),
            nondust_htlcs,
        }
    }
}

fn payment_hash(preimage: &[u8; 32]) -> PaymentHash {
    PaymentHash(sha256::Hash::hash(preimage).to_byte_array())
}

/// The appendix's HTLC that `htlc` was built from (payment hash and CLTV
/// identify it: the same-amount HTLCs share the hash, not the CLTV).
pub(crate) fn appendix_htlc(
    case: &CommitmentVector,
    htlc: &HTLCOutputInCommitment,
) -> &'static HtlcVector {
    case.htlcs
        .htlcs()
        .iter()
        .find(|h| {
            payment_hash(&h.payment_preimage) == htlc.payment_hash
                && h.cltv_expiry == htlc.cltv_expiry
        })
        .unwrap()
}

/// The preimage local reveals in an HTLC-success transaction; `None` for
/// an HTLC-timeout.
pub(crate) fn preimage(
    case: &CommitmentVector,
    htlc: &HTLCOutputInCommitment,
) -> Option<PaymentPreimage> {
    (!htlc.offered).then(|| PaymentPreimage(appendix_htlc(case, htlc).payment_preimage))
}
