//! What the pure decision answers, and what executing it yields.

use std::fmt;

use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::{All, PublicKey, Secp256k1, SecretKey};
use bitcoin::{ScriptBuf, Transaction, Txid};
use lightning::ln::chan_utils::{
    ChannelTransactionParameters, ClosingTransaction, CommitmentTransaction,
    HTLCOutputInCommitment, HolderCommitmentTransaction,
};
use lightning::ln::msgs::UnsignedChannelAnnouncement;
use tidemark_core::Tag;
use zeroize::Zeroizing;

use crate::channel::number::CommitmentNumber;
use crate::channel::state::{ChannelKeys, ChannelState};

/// What the caller knows besides the request: the node's wallet scripts
/// (its destination and shutdown scripts), the best block height if it
/// tracks the chain, and a secp256k1 context.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// The scripts of the node's own wallet: sweeps and closes may pay them.
    pub wallet_scripts: &'a [ScriptBuf],
    /// The best block height, if known (HTLC expiries are checked against
    /// it).
    pub best_block_height: Option<u32>,
    /// A verification-capable context.
    pub secp: &'a Secp256k1<All>,
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("wallet_scripts", &self.wallet_scripts)
            .field("best_block_height", &self.best_block_height)
            .finish_non_exhaustive()
    }
}

/// A business rule that failed but was downgraded to a warning: the
/// pipeline logs it with the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The rule.
    pub tag: Tag,
    /// What exceeded it.
    pub detail: String,
}

/// The decision for one request.
#[derive(Debug)]
pub enum Verdict {
    /// Accept: [`execute`](crate::channel::execute) `action`, then commit
    /// `new_state` (when `Some`) durably, and only then release the output.
    /// `None`: the state does not change (nothing to commit).
    Sign {
        /// The state to commit before the output leaves.
        new_state: Option<Box<ChannelState>>,
        /// What to compute with the channel's keys.
        action: Box<Action>,
        /// Downgraded business rules that failed.
        warnings: Vec<Warning>,
    },
    /// The identical request was decided before: return this output (the
    /// stored signatures, byte for byte), change nothing.
    Replay {
        /// The stored answer.
        output: Output,
    },
    /// Refuse: change nothing, release nothing.
    Refuse {
        /// The stable reason.
        tag: Tag,
        /// What conflicted, for a human.
        detail: String,
    },
}

/// What to compute with the channel's keys: an operation and the stored
/// channel parameters it needs (`None` only for operations that need
/// none: a per-commitment point).
#[derive(Debug)]
pub struct Action {
    /// The operation.
    pub operation: Operation,
    /// The channel's parameters, from the stored setup (or the setup being
    /// stored).
    pub params: Option<ChannelTransactionParameters>,
}

/// An operation with the channel's secret keys, fully determined by the
/// decision: every transaction in it was built by the signer from the
/// stored parameters.
#[non_exhaustive]
pub enum Operation {
    /// Nothing to compute (a validated revocation).
    Acknowledge,
    /// Check that the keys of `channel_keys_id` are `holder`.
    VerifySetup {
        /// The id the keys derive from.
        channel_keys_id: [u8; 32],
        /// The holder keys the setup claims.
        holder: ChannelKeys,
    },
    /// Check an import: the keys of `channel_keys_id` are `holder`, and
    /// the holder commitment imported carries the holder's own point.
    VerifyImport {
        /// The id the keys derive from.
        channel_keys_id: [u8; 32],
        /// The holder keys the import's setup claims.
        holder: ChannelKeys,
        /// The imported holder commitment.
        number: CommitmentNumber,
        /// The point it carries.
        point: PublicKey,
    },
    /// The holder's per-commitment point.
    PerCommitmentPoint(CommitmentNumber),
    /// Release the holder's per-commitment secret.
    ReleaseHolderSecret(CommitmentNumber),
    /// Check the holder point a validated holder commitment was built with.
    CheckHolderPoint {
        /// The commitment.
        number: CommitmentNumber,
        /// The point it carries.
        point: PublicKey,
    },
    /// Sign a rebuilt counterparty commitment and its HTLC transactions.
    SignCounterpartyCommitment(CommitmentTransaction),
    /// Sign the rebuilt newest holder commitment.
    SignHolderCommitment(HolderCommitmentTransaction),
    /// Sign a holder HTLC transaction.
    SignHolderHtlc {
        /// The transaction (checked against the rebuilt HTLC pair).
        tx: Transaction,
        /// The input spending the HTLC output.
        input: usize,
        /// The holder commitment's txid.
        commitment_txid: Txid,
        /// Its number.
        number: CommitmentNumber,
        /// Its holder per-commitment point.
        point: PublicKey,
        /// The fee rate of the HTLC transaction (0 with anchors).
        feerate_per_kw: u32,
        /// The HTLC, with its output index.
        htlc: HTLCOutputInCommitment,
        /// The counterparty's HTLC signature.
        counterparty_signature: Signature,
    },
    /// Sign a claim of a counterparty commitment's HTLC output.
    SignCounterpartyHtlc {
        /// The claiming transaction.
        tx: Transaction,
        /// The input to sign.
        input: usize,
        /// The spent output's value.
        amount_sat: u64,
        /// The counterparty commitment's point.
        point: PublicKey,
        /// The HTLC.
        htlc: HTLCOutputInCommitment,
    },
    /// Sign a justice input (to_local when `htlc` is `None`).
    SignJustice {
        /// The justice transaction.
        tx: Transaction,
        /// The input to sign.
        input: usize,
        /// The spent output's value.
        amount_sat: u64,
        /// The revoked commitment's secret (the counterparty's, revealed).
        per_commitment_key: SecretKey,
        /// The HTLC, for an HTLC output.
        htlc: Option<HTLCOutputInCommitment>,
    },
    /// Sign the holder's anchor input.
    SignHolderAnchor {
        /// The anchor transaction.
        tx: Transaction,
        /// The anchor input.
        input: usize,
    },
    /// Sign a mutual close.
    SignClosing(ClosingTransaction),
    /// Sign a channel announcement with the funding key.
    SignChannelAnnouncement(UnsignedChannelAnnouncement),
}

impl Operation {
    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Acknowledge => "acknowledge",
            Operation::VerifySetup { .. } => "verify-setup",
            Operation::VerifyImport { .. } => "verify-import",
            Operation::PerCommitmentPoint(_) => "per-commitment-point",
            Operation::ReleaseHolderSecret(_) => "release-holder-secret",
            Operation::CheckHolderPoint { .. } => "check-holder-point",
            Operation::SignCounterpartyCommitment(_) => "sign-counterparty-commitment",
            Operation::SignHolderCommitment(_) => "sign-holder-commitment",
            Operation::SignHolderHtlc { .. } => "sign-holder-htlc",
            Operation::SignCounterpartyHtlc { .. } => "sign-counterparty-htlc",
            Operation::SignJustice { .. } => "sign-justice",
            Operation::SignHolderAnchor { .. } => "sign-holder-anchor",
            Operation::SignClosing(_) => "sign-closing",
            Operation::SignChannelAnnouncement(_) => "sign-channel-announcement",
        }
    }
}

impl fmt::Debug for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Operation({})", self.name())
    }
}

/// A released per-commitment secret: it leaves the signer by design (it
/// revokes a commitment), but is never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct HolderSecret(pub Zeroizing<[u8; 32]>);

impl fmt::Debug for HolderSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HolderSecret(..)")
    }
}

/// What a request yields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Done: a setup stored, a commitment or revocation validated.
    Done,
    /// A holder per-commitment point.
    PerCommitmentPoint(PublicKey),
    /// A holder per-commitment secret.
    HolderSecret(HolderSecret),
    /// A counterparty commitment's signatures.
    Commitment {
        /// The commitment transaction signature.
        signature: Signature,
        /// The HTLC transaction signatures, in output order.
        htlc_signatures: Vec<Signature>,
    },
    /// One signature (SIGHASH_ALL).
    Signature(Signature),
}
