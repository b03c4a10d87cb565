//! What a replica asks of a channel: structured data only.
//!
//! A request never carries a transaction to sign as such: it carries the
//! values a transaction is made of (commitment number, per-commitment
//! point, balances, fee rate, HTLCs; or the inputs and outputs of a sweep),
//! and the signer rebuilds the transaction from the channel's stored
//! parameters with LDK's `chan_utils`. Every number is a BOLT 3 commitment
//! number counting up ([`CommitmentNumber`]).

use bitcoin::secp256k1::PublicKey;
use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::transaction::Version;
use bitcoin::{OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness, absolute};
use serde::{Deserialize, Serialize};

use crate::channel::number::CommitmentNumber;
use crate::channel::serde_hex;
use crate::channel::state::{ChannelSetup, CommitmentSignatures};

/// An HTLC as it appears in a commitment transaction (above dust).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Htlc {
    /// Offered by the commitment's broadcaster (outbound from its side).
    pub offered: bool,
    /// The amount in millisatoshis.
    pub amount_msat: u64,
    /// The absolute block height at which it expires.
    pub cltv_expiry: u32,
    /// The payment hash.
    #[serde(with = "serde_hex::array32")]
    pub payment_hash: [u8; 32],
}

/// The content of one commitment transaction, as BOLT 3 builds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitmentData {
    /// The commitment number (BOLT 3, counting up).
    pub number: CommitmentNumber,
    /// The broadcaster's per-commitment point.
    #[serde(with = "serde_hex::pubkey")]
    pub per_commitment_point: PublicKey,
    /// The broadcaster's balance (`to_local`), in satoshis; 0 if trimmed.
    pub to_broadcaster_sat: u64,
    /// The countersignatory's balance (`to_remote`), in satoshis; 0 if
    /// trimmed.
    pub to_countersignatory_sat: u64,
    /// The negotiated fee rate, in satoshis per 1000 weight units.
    pub feerate_per_kw: u32,
    /// The HTLCs above dust, in any order (the signer sorts them as
    /// BOLT 3 does).
    pub htlcs: Vec<Htlc>,
}

/// A holder commitment the counterparty signed (`commitment_signed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolderCommitment {
    /// The commitment.
    pub commitment: CommitmentData,
    /// The counterparty's signature of the commitment transaction.
    #[serde(with = "serde_hex::signature")]
    pub counterparty_signature: Signature,
    /// The counterparty's HTLC signatures, in the order of the HTLC
    /// outputs of the rebuilt transaction (LDK's `nondust_htlcs()` order).
    #[serde(with = "serde_hex::signatures")]
    pub counterparty_htlc_signatures: Vec<Signature>,
}

/// A counterparty commitment the node signed before it moved to the
/// signer, as part of a [`ChannelImport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedCommitment {
    /// Its content (LDK: the counterparty commitment the `ChannelMonitor`
    /// holds for this number).
    pub commitment: CommitmentData,
    /// The signatures the node released for it, if the operator has them
    /// (LDK does not keep them; a `KeysManager` over the same seed computes
    /// them again, deterministically). They are verified against the
    /// rebuilt transaction. Without them an identical retry of this number
    /// cannot be replayed and is refused `policy-commitment-retry-same`.
    pub signatures: Option<CommitmentSignatures>,
}

/// One counterparty revocation secret received before the import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportedSecret {
    /// The revoked counterparty commitment.
    pub number: CommitmentNumber,
    /// Its per-commitment secret.
    pub secret: [u8; 32],
}

/// The position of an open channel, taken from the node that ran it
/// (LDK's `KeysManager` over the same seed), so that the signer continues
/// where the node stopped. The operator vouches for it being the node's
/// newest persisted state; the signer checks everything it can (see
/// `docs/lightning.md`, "Importing an open channel").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelImport {
    /// The channel's parameters, as [`ChannelRequest::Setup`] gives them.
    pub setup: ChannelSetup,
    /// The newest counterparty commitment signed and, if the counterparty
    /// has not revoked it yet (or to check its secret), the one before it;
    /// oldest first, consecutive numbers. The next one signed is the
    /// newest's number plus one.
    pub counterparty_signed: Vec<ImportedCommitment>,
    /// How many counterparty commitments are revoked: every number below
    /// this one (the newest signed, or the one before it).
    pub counterparty_revoked: u64,
    /// The BOLT 3 compact storage of the counterparty's revocation
    /// secrets: exactly the entries a store that received the secrets of
    /// commitments `0..counterparty_revoked` in order holds (at most 49;
    /// [`RevocationSecrets::compact_numbers`](crate::channel::RevocationSecrets::compact_numbers)
    /// lists their numbers).
    pub counterparty_secrets: Vec<ImportedSecret>,
    /// The newest holder commitment validated, with the counterparty's
    /// signatures.
    pub holder: HolderCommitment,
    /// The highest holder commitment whose secret was released (`None`
    /// before the first release): the holder's number minus one, or minus
    /// two while the newest revocation is still to be sent.
    pub holder_revoked_through: Option<CommitmentNumber>,
}

/// One input of a transaction the signer builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpendInput {
    /// The output it spends.
    pub previous_output: OutPoint,
    /// Its nSequence.
    pub sequence: u32,
}

/// A transaction that spends channel outputs, given by its parts: the
/// signer assembles it (no witness, no scriptSig) and checks every part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendTx {
    /// The transaction version (2 for every BOLT 3 transaction).
    pub version: i32,
    /// nLockTime.
    pub lock_time: u32,
    /// The inputs, in order.
    pub inputs: Vec<SpendInput>,
    /// The outputs, in order.
    pub outputs: Vec<TxOut>,
}

impl SpendTx {
    /// The unsigned transaction.
    pub fn to_transaction(&self) -> Transaction {
        Transaction {
            version: Version(self.version),
            lock_time: absolute::LockTime::from_consensus(self.lock_time),
            input: self
                .inputs
                .iter()
                .map(|i| TxIn {
                    previous_output: i.previous_output,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence(i.sequence),
                    witness: Witness::new(),
                })
                .collect(),
            output: self.outputs.clone(),
        }
    }

    /// The parts of `tx` (its witnesses and scriptSigs are dropped).
    pub fn from_transaction(tx: &Transaction) -> SpendTx {
        SpendTx {
            version: tx.version.0,
            lock_time: tx.lock_time.to_consensus_u32(),
            inputs: tx
                .input
                .iter()
                .map(|i| SpendInput {
                    previous_output: i.previous_output,
                    sequence: i.sequence.0,
                })
                .collect(),
            outputs: tx.output.clone(),
        }
    }
}

/// Sign the holder's HTLC-success or HTLC-timeout transaction for an HTLC
/// output of a holder commitment the signer validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderHtlcSpend {
    /// The holder commitment (the newest validated or the one before).
    pub commitment: CommitmentNumber,
    /// The HTLC's output index in that commitment transaction.
    pub htlc_output_index: u32,
    /// The HTLC transaction. Without anchors it must be exactly the BOLT 3
    /// HTLC transaction; with anchors, input `input` and output `input`
    /// must be the BOLT 3 pair and other inputs and outputs may add fees.
    pub tx: SpendTx,
    /// The input that spends the HTLC output.
    pub input: u32,
}

/// Sign a claim of an HTLC output of a counterparty commitment (with the
/// preimage, or after the timeout) to the wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterpartyHtlcSpend {
    /// The counterparty's per-commitment point of the commitment that
    /// holds the HTLC (one of the two newest the signer signed).
    pub per_commitment_point: PublicKey,
    /// The HTLC, as it appears in that commitment.
    pub htlc: Htlc,
    /// The claiming transaction; every output must pay the wallet or the
    /// allowlist.
    pub tx: SpendTx,
    /// The input to sign.
    pub input: u32,
    /// The value of the spent output, in satoshis.
    pub amount_sat: u64,
}

/// Sign a justice transaction input that spends an output of a revoked
/// counterparty commitment: its `to_local` (no `htlc`) or an HTLC output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JusticeSpend {
    /// The revoked commitment's number; `None` to let the signer find it
    /// from the secret (LDK passes only the secret).
    pub commitment: Option<CommitmentNumber>,
    /// The counterparty's per-commitment secret of that commitment.
    pub per_commitment_secret: [u8; 32],
    /// The HTLC spent, if the input spends an HTLC output.
    pub htlc: Option<Htlc>,
    /// The justice transaction; every output must pay the wallet or the
    /// allowlist.
    pub tx: SpendTx,
    /// The input to sign.
    pub input: u32,
    /// The value of the spent output, in satoshis.
    pub amount_sat: u64,
}

/// Sign the holder's keyed anchor of the newest holder commitment (CPFP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorSpend {
    /// The anchor transaction (the wallet adds fee inputs and change).
    pub tx: SpendTx,
    /// The input that spends the holder's anchor output.
    pub input: u32,
}

/// A mutual close proposal (`closing_signed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosingProposal {
    /// The holder's output, in satoshis (0: omitted).
    pub to_holder_sat: u64,
    /// The counterparty's output, in satoshis (0: omitted).
    pub to_counterparty_sat: u64,
    /// The holder's shutdown script: the wallet's or allowlisted.
    pub holder_script: ScriptBuf,
    /// The counterparty's shutdown script.
    pub counterparty_script: ScriptBuf,
}

/// The fields of a BOLT 7 `channel_announcement` to sign with the funding
/// key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// The channel features, big-endian as on the wire.
    pub features: Vec<u8>,
    /// The chain's genesis hash.
    pub chain_hash: [u8; 32],
    /// The short channel id (its output index must be the funding output's).
    pub short_channel_id: u64,
    /// The first node id.
    pub node_id_1: PublicKey,
    /// The second node id.
    pub node_id_2: PublicKey,
    /// The first node's funding key.
    pub bitcoin_key_1: PublicKey,
    /// The second node's funding key.
    pub bitcoin_key_2: PublicKey,
    /// Fields after these, signed as they are.
    pub excess_data: Vec<u8>,
}

/// Everything a replica asks of one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelRequest {
    /// Fix the channel's parameters (once; the funding outpoint never
    /// changes).
    Setup(Box<ChannelSetup>),
    /// Import an open channel's position from the node that ran it (once,
    /// onto a channel with no state).
    Import(Box<ChannelImport>),
    /// The holder's per-commitment point of a commitment (public; may be
    /// asked before setup, for `open_channel`).
    PerCommitmentPoint(CommitmentNumber),
    /// Release the holder's per-commitment secret of a commitment: it
    /// revokes that commitment.
    ReleaseHolderSecret(CommitmentNumber),
    /// Validate a holder commitment the counterparty signed.
    ValidateHolderCommitment(Box<HolderCommitment>),
    /// Validate the counterparty's revocation of one of its commitments.
    ValidateCounterpartyRevocation {
        /// The revoked commitment.
        number: CommitmentNumber,
        /// Its per-commitment secret.
        secret: [u8; 32],
    },
    /// Sign a counterparty commitment and its HTLC transactions.
    SignCounterpartyCommitment(Box<CommitmentData>),
    /// Sign the newest holder commitment to broadcast it (force close).
    SignHolderCommitment(CommitmentNumber),
    /// Sign a holder HTLC transaction.
    SignHolderHtlc(Box<HolderHtlcSpend>),
    /// Sign a claim of an HTLC output of a counterparty commitment.
    SignCounterpartyHtlc(Box<CounterpartyHtlcSpend>),
    /// Sign a justice transaction input.
    SignJustice(Box<JusticeSpend>),
    /// Sign the holder's anchor input.
    SignHolderAnchor(Box<AnchorSpend>),
    /// Sign a mutual close.
    SignClosing(Box<ClosingProposal>),
    /// Sign a channel announcement with the funding key.
    SignChannelAnnouncement(Box<Announcement>),
}

impl ChannelRequest {
    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ChannelRequest::Setup(_) => "setup",
            ChannelRequest::Import(_) => "import",
            ChannelRequest::PerCommitmentPoint(_) => "per-commitment-point",
            ChannelRequest::ReleaseHolderSecret(_) => "release-holder-secret",
            ChannelRequest::ValidateHolderCommitment(_) => "validate-holder-commitment",
            ChannelRequest::ValidateCounterpartyRevocation { .. } => {
                "validate-counterparty-revocation"
            }
            ChannelRequest::SignCounterpartyCommitment(_) => "sign-counterparty-commitment",
            ChannelRequest::SignHolderCommitment(_) => "sign-holder-commitment",
            ChannelRequest::SignHolderHtlc(_) => "sign-holder-htlc",
            ChannelRequest::SignCounterpartyHtlc(_) => "sign-counterparty-htlc",
            ChannelRequest::SignJustice(_) => "sign-justice",
            ChannelRequest::SignHolderAnchor(_) => "sign-holder-anchor",
            ChannelRequest::SignClosing(_) => "sign-closing",
            ChannelRequest::SignChannelAnnouncement(_) => "sign-channel-announcement",
        }
    }
}
