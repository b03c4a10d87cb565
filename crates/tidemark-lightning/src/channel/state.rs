//! [`ChannelState`]: what the signer remembers of one channel, stored as
//! JSON after every change and before any signature or secret leaves.
//!
//! Commitment numbers are BOLT 3 numbers counting up from 0 (see
//! [`CommitmentNumber`]); LDK's counting-down indexes are converted at the
//! boundary.
//!
//! Invariants (kept by `decide`):
//! - `setup` never changes once stored; in particular the funding outpoint.
//! - `counterparty.signed` holds the one or two newest counterparty
//!   commitments signed, oldest first, consecutive numbers; every
//!   commitment below `counterparty.revoked` is revoked and its secret is
//!   in `counterparty.secrets`; at most two are unrevoked.
//! - `holder.current` is the newest validated holder commitment;
//!   `holder.revoked_through` is below its number.
//! - A state made by an import (see `import`) keeps these invariants; it
//!   has no `holder.previous`, and its counterparty commitments may lack
//!   their `released` signatures.

use bitcoin::Txid;
use bitcoin::secp256k1::PublicKey;
use bitcoin::secp256k1::ecdsa::Signature;
use lightning::chain::transaction::OutPoint as LdkOutPoint;
use lightning::ln::chan_utils::{
    ChannelPublicKeys, ChannelTransactionParameters, CounterpartyChannelTransactionParameters,
};
use lightning::types::features::ChannelTypeFeatures;
use serde::{Deserialize, Serialize};
use tidemark_core::{Digest, Mark};

use crate::channel::error::ChannelError;
use crate::channel::number::CommitmentNumber;
use crate::channel::request::CommitmentData;
use crate::channel::secrets::RevocationSecrets;
use crate::channel::serde_hex;
use crate::channel::verdict::Output;

/// One side's channel public keys (BOLT 3 basepoints).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelKeys {
    /// The funding key (2-of-2 multisig, and the keyed anchor).
    #[serde(with = "serde_hex::pubkey")]
    pub funding_pubkey: PublicKey,
    /// The revocation basepoint.
    #[serde(with = "serde_hex::pubkey")]
    pub revocation_basepoint: PublicKey,
    /// The payment point (static remote key).
    #[serde(with = "serde_hex::pubkey")]
    pub payment_point: PublicKey,
    /// The delayed payment basepoint.
    #[serde(with = "serde_hex::pubkey")]
    pub delayed_payment_basepoint: PublicKey,
    /// The HTLC basepoint.
    #[serde(with = "serde_hex::pubkey")]
    pub htlc_basepoint: PublicKey,
}

impl ChannelKeys {
    /// From LDK's form.
    pub fn from_ldk(keys: &ChannelPublicKeys) -> ChannelKeys {
        ChannelKeys {
            funding_pubkey: keys.funding_pubkey,
            revocation_basepoint: keys.revocation_basepoint.to_public_key(),
            payment_point: keys.payment_point,
            delayed_payment_basepoint: keys.delayed_payment_basepoint.to_public_key(),
            htlc_basepoint: keys.htlc_basepoint.to_public_key(),
        }
    }

    /// LDK's form.
    pub fn to_ldk(&self) -> ChannelPublicKeys {
        ChannelPublicKeys {
            funding_pubkey: self.funding_pubkey,
            revocation_basepoint: self.revocation_basepoint.into(),
            payment_point: self.payment_point,
            delayed_payment_basepoint: self.delayed_payment_basepoint.into(),
            htlc_basepoint: self.htlc_basepoint.into(),
        }
    }
}

/// The funding output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FundingOutpoint {
    /// The funding transaction.
    #[serde(with = "serde_hex::txid")]
    pub txid: Txid,
    /// The output index.
    pub vout: u16,
}

/// The commitment formats the signer can rebuild.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChannelKind {
    /// `option_static_remotekey` without anchors.
    StaticRemoteKey,
    /// `option_anchors_zero_fee_htlc_tx` (with static remote key).
    AnchorsZeroFeeHtlcTx,
}

impl ChannelKind {
    /// Every kind.
    pub const ALL: [ChannelKind; 2] = [
        ChannelKind::StaticRemoteKey,
        ChannelKind::AnchorsZeroFeeHtlcTx,
    ];

    /// The name in policy files.
    pub fn name(self) -> &'static str {
        match self {
            ChannelKind::StaticRemoteKey => "static-remote-key",
            ChannelKind::AnchorsZeroFeeHtlcTx => "anchors-zero-fee-htlc-tx",
        }
    }

    /// The kind called `name`.
    pub fn from_name(name: &str) -> Option<ChannelKind> {
        ChannelKind::ALL.into_iter().find(|k| k.name() == name)
    }

    fn base_features(self) -> ChannelTypeFeatures {
        match self {
            ChannelKind::StaticRemoteKey => ChannelTypeFeatures::only_static_remote_key(),
            ChannelKind::AnchorsZeroFeeHtlcTx => {
                ChannelTypeFeatures::anchors_zero_htlc_fee_and_dependencies()
            }
        }
    }

    /// The kind of a channel type: its commitment format, with only the
    /// `scid_privacy` and `zero_conf` bits (which change no transaction)
    /// allowed beside it. `None` for anything else.
    pub fn of(features: &ChannelTypeFeatures) -> Option<ChannelKind> {
        ChannelKind::ALL.into_iter().find(|kind| {
            let mut expected = kind.base_features();
            if features.supports_scid_privacy() {
                expected.set_scid_privacy_required();
            }
            if features.supports_zero_conf() {
                expected.set_zero_conf_required();
            }
            &expected == features
        })
    }

    /// Whether the commitments carry keyed anchors.
    pub fn has_anchors(self) -> bool {
        self == ChannelKind::AnchorsZeroFeeHtlcTx
    }
}

/// The channel's parameters, fixed at setup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSetup {
    /// The channel keys id the holder's keys derive from.
    #[serde(with = "serde_hex::array32")]
    pub channel_keys_id: [u8; 32],
    /// The holder's public keys (checked against the keys derived from
    /// `channel_keys_id` before the setup is stored).
    pub holder: ChannelKeys,
    /// The counterparty's public keys.
    pub counterparty: ChannelKeys,
    /// The delay the holder imposes on the counterparty's `to_local`.
    pub holder_selected_contest_delay: u16,
    /// The delay the counterparty imposes on the holder's `to_local`.
    pub counterparty_selected_contest_delay: u16,
    /// The funding output.
    pub funding_outpoint: FundingOutpoint,
    /// The BOLT 9 channel type, little-endian feature bits.
    #[serde(with = "serde_hex::vec")]
    pub channel_type: Vec<u8>,
    /// The channel's value, in satoshis.
    pub channel_value_sat: u64,
    /// Whether the holder opened (funded) the channel.
    pub is_outbound: bool,
}

impl ChannelSetup {
    /// The channel type as LDK's features.
    pub fn channel_type_features(&self) -> ChannelTypeFeatures {
        ChannelTypeFeatures::from_le_bytes(self.channel_type.clone())
    }

    /// The commitment format (`None` if the type is not one the signer can
    /// rebuild; such a setup is refused).
    pub fn kind(&self) -> Option<ChannelKind> {
        ChannelKind::of(&self.channel_type_features())
    }

    /// LDK's fully populated channel parameters.
    pub fn transaction_parameters(&self) -> ChannelTransactionParameters {
        ChannelTransactionParameters {
            holder_pubkeys: self.holder.to_ldk(),
            holder_selected_contest_delay: self.holder_selected_contest_delay,
            is_outbound_from_holder: self.is_outbound,
            counterparty_parameters: Some(CounterpartyChannelTransactionParameters {
                pubkeys: self.counterparty.to_ldk(),
                selected_contest_delay: self.counterparty_selected_contest_delay,
            }),
            funding_outpoint: Some(LdkOutPoint {
                txid: self.funding_outpoint.txid,
                index: self.funding_outpoint.vout,
            }),
            splice_parent_funding_txid: None,
            channel_type_features: self.channel_type_features(),
            channel_value_satoshis: self.channel_value_sat,
        }
    }
}

/// A counterparty commitment the signer signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCommitment {
    /// Its number.
    pub number: CommitmentNumber,
    /// The counterparty's per-commitment point.
    #[serde(with = "serde_hex::pubkey")]
    pub per_commitment_point: PublicKey,
    /// The rebuilt transaction's txid.
    #[serde(with = "serde_hex::txid")]
    pub txid: Txid,
    /// The digest of its content (see `build::commitment_digest`).
    pub digest: Digest,
    /// The holder's balance in it (`to_remote`), in satoshis.
    pub to_holder_sat: u64,
    /// How many HTLC outputs it has.
    pub htlc_count: u32,
    /// The signatures released. `None` in a new state between `decide`
    /// and [`ChannelState::record`], and in a stored state only for a
    /// commitment imported without its signatures (an identical retry of
    /// it is refused, not signed again).
    pub released: Option<CommitmentSignatures>,
}

/// The signatures of one counterparty commitment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitmentSignatures {
    /// The commitment transaction signature.
    #[serde(with = "serde_hex::signature")]
    pub signature: Signature,
    /// The HTLC transaction signatures, in output order.
    #[serde(with = "serde_hex::signatures")]
    pub htlc_signatures: Vec<Signature>,
}

/// The counterparty's side: commitments signed and revoked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterpartyLedger {
    /// The one or two newest commitments signed, oldest first.
    pub signed: Vec<SignedCommitment>,
    /// How many commitments are revoked: every number below this one.
    pub revoked: u64,
    /// Their revocation secrets (BOLT 3 compact storage).
    pub secrets: RevocationSecrets,
}

impl CounterpartyLedger {
    /// The newest commitment signed.
    pub fn newest(&self) -> Option<&SignedCommitment> {
        self.signed.last()
    }

    /// The signed commitment `number`, if it is one of the two kept.
    pub fn get(&self, number: CommitmentNumber) -> Option<&SignedCommitment> {
        self.signed.iter().find(|c| c.number == number)
    }
}

/// A holder commitment the signer validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolderRecord {
    /// Its content.
    pub commitment: CommitmentData,
    /// The rebuilt transaction's txid.
    #[serde(with = "serde_hex::txid")]
    pub txid: Txid,
    /// The digest of its content.
    pub digest: Digest,
    /// The counterparty's signature.
    #[serde(with = "serde_hex::signature")]
    pub counterparty_signature: Signature,
    /// The counterparty's HTLC signatures, in output order.
    #[serde(with = "serde_hex::signatures")]
    pub counterparty_htlc_signatures: Vec<Signature>,
}

/// The holder's side: commitments validated and revoked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolderLedger {
    /// The newest validated holder commitment.
    pub current: Option<HolderRecord>,
    /// The one validated before it (its HTLC transactions may still be
    /// asked for if a stale monitor broadcast it).
    pub previous: Option<HolderRecord>,
    /// The highest commitment whose secret was released: it and every
    /// commitment below it are revoked.
    pub revoked_through: Option<CommitmentNumber>,
}

impl HolderLedger {
    /// Whether holder commitment `number` is revoked.
    pub fn is_revoked(&self, number: CommitmentNumber) -> bool {
        self.revoked_through.is_some_and(|r| number <= r)
    }

    /// The stored record of holder commitment `number`.
    pub fn get(&self, number: CommitmentNumber) -> Option<&HolderRecord> {
        [self.current.as_ref(), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|r| r.commitment.number == number)
    }
}

/// How the channel was closed, as far as the signer took part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Closing {
    /// A mutual close was signed.
    Mutual,
    /// Holder commitment `number` was signed to be broadcast.
    Force {
        /// The commitment.
        number: CommitmentNumber,
    },
}

/// Everything the signer keeps about one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelState {
    /// The parameters fixed at setup.
    pub setup: ChannelSetup,
    /// The counterparty's commitments.
    pub counterparty: CounterpartyLedger,
    /// The holder's commitments.
    pub holder: HolderLedger,
    /// Set once a close was signed; no new commitment is signed after.
    pub closed: Option<Closing>,
}

impl ChannelState {
    /// A channel just set up.
    pub fn new(setup: ChannelSetup) -> ChannelState {
        ChannelState {
            setup,
            counterparty: CounterpartyLedger::default(),
            holder: HolderLedger::default(),
            closed: None,
        }
    }

    /// Records what an executed action released in the new state before it
    /// is committed: a counterparty commitment's signatures, so that an
    /// identical repeat gets them back byte for byte. Other outputs leave
    /// the state as it is.
    pub fn record(&mut self, output: &Output) -> Result<(), ChannelError> {
        let Output::Commitment {
            signature,
            htlc_signatures,
        } = output
        else {
            return Ok(());
        };
        match self.counterparty.signed.last_mut() {
            Some(newest) if newest.released.is_none() => {
                newest.released = Some(CommitmentSignatures {
                    signature: *signature,
                    htlc_signatures: htlc_signatures.clone(),
                });
                Ok(())
            }
            _ => Err(ChannelError::InvalidRequest(
                "commitment signatures for a state that awaits none".into(),
            )),
        }
    }

    /// The mark a refusal reports: the numbers a replica compares with its
    /// own to tell it is stale. Absent numbers are left out.
    pub fn mark(&self) -> Mark {
        let mut mark = Mark::none();
        if let Some(c) = self.counterparty.newest() {
            mark = mark.with("counterparty_signed", c.number.get());
        }
        mark = mark.with("counterparty_revoked", self.counterparty.revoked);
        if let Some(h) = &self.holder.current {
            mark = mark.with("holder_validated", h.commitment.number.get());
        }
        if let Some(r) = self.holder.revoked_through {
            mark = mark.with("holder_revoked_through", r.get());
        }
        mark.with(
            "closed",
            match self.closed {
                None => 0,
                Some(Closing::Mutual) => 1,
                Some(Closing::Force { .. }) => 2,
            },
        )
    }
}
