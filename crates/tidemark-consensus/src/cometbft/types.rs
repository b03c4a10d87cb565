//! CometBFT's structured consensus messages, validated like CometBFT's
//! `ValidateBasic`.
//!
//! Invariants after [`CometMessage::validate`] succeeded:
//! - height > 0, round >= 0, and for a proposal -1 <= pol_round < round;
//! - every hash is empty or 32 bytes; a proposal's block id is complete; a
//!   vote's block id is `None` (nil) or complete (never a zero block id in
//!   `Some`, so nil has exactly one representation);
//! - a vote extension appears only on a non-nil precommit and is at most
//!   [`MAX_EXTENSION_LEN`] bytes;
//! - the timestamp is inside google.protobuf.Timestamp's range.

use serde::{Deserialize, Serialize};

use crate::error::ConsensusError;

/// The largest vote extension accepted, in bytes.
pub const MAX_EXTENSION_LEN: usize = 1024 * 1024;

/// The message type, with CometBFT's protobuf codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignedMsgType {
    /// A prevote (code 1).
    Prevote,
    /// A precommit (code 2).
    Precommit,
    /// A proposal (code 32).
    Proposal,
}

impl SignedMsgType {
    /// The protobuf enum value.
    pub fn code(self) -> u8 {
        match self {
            SignedMsgType::Prevote => 1,
            SignedMsgType::Precommit => 2,
            SignedMsgType::Proposal => 32,
        }
    }

    /// The type for a protobuf enum value, if it is one of the three.
    pub fn from_code(code: u64) -> Option<Self> {
        match code {
            1 => Some(SignedMsgType::Prevote),
            2 => Some(SignedMsgType::Precommit),
            32 => Some(SignedMsgType::Proposal),
            _ => None,
        }
    }
}

/// The header of the block's part set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PartSetHeader {
    /// Number of parts.
    pub total: u32,
    /// Merkle root of the parts: empty or 32 bytes.
    #[serde(with = "tidemark_core::serde_hex::bytes")]
    pub hash: Vec<u8>,
}

/// A block id: the header hash and the part-set header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlockId {
    /// The block header hash: empty or 32 bytes.
    #[serde(with = "tidemark_core::serde_hex::bytes")]
    pub hash: Vec<u8>,
    /// The part-set header.
    pub part_set_header: PartSetHeader,
}

impl BlockId {
    /// True for the zero block id (CometBFT's `IsZero`).
    pub fn is_zero(&self) -> bool {
        self.hash.is_empty()
            && self.part_set_header.total == 0
            && self.part_set_header.hash.is_empty()
    }

    /// True for a complete block id (CometBFT's `IsComplete`).
    pub fn is_complete(&self) -> bool {
        self.hash.len() == 32
            && self.part_set_header.total > 0
            && self.part_set_header.hash.len() == 32
    }

    fn validate_hashes(&self) -> Result<(), ConsensusError> {
        check_hash("block id hash", &self.hash)?;
        check_hash("part set header hash", &self.part_set_header.hash)
    }
}

fn check_hash(what: &'static str, hash: &[u8]) -> Result<(), ConsensusError> {
    match hash.len() {
        0 | 32 => Ok(()),
        len => Err(ConsensusError::HashLength { what, len }),
    }
}

/// A google.protobuf.Timestamp.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    pub seconds: i64,
    /// Nanoseconds within the second, 0..1_000_000_000.
    pub nanos: i32,
}

impl Timestamp {
    /// 0001-01-01T00:00:00Z.
    pub const MIN_SECONDS: i64 = -62_135_596_800;
    /// 9999-12-31T23:59:59Z.
    pub const MAX_SECONDS: i64 = 253_402_300_799;

    /// Checks the range of google.protobuf.Timestamp.
    pub fn validate(&self) -> Result<(), ConsensusError> {
        let ok = (Self::MIN_SECONDS..=Self::MAX_SECONDS).contains(&self.seconds)
            && (0..1_000_000_000).contains(&self.nanos);
        if ok {
            Ok(())
        } else {
            Err(ConsensusError::Timestamp {
                seconds: self.seconds,
                nanos: self.nanos,
            })
        }
    }
}

/// A prevote or precommit, as the validator wants it signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// Prevote or precommit.
    pub msg_type: SignedMsgType,
    /// Block height, > 0.
    pub height: i64,
    /// Round, >= 0.
    pub round: i32,
    /// The block voted for; `None` is a nil vote.
    pub block_id: Option<BlockId>,
    /// The validator's local time.
    pub timestamp: Timestamp,
    /// The application's vote extension (non-nil precommits only).
    #[serde(with = "tidemark_core::serde_hex::bytes", default)]
    pub extension: Vec<u8>,
}

impl Vote {
    /// True for a precommit for a block: the only vote that carries (and
    /// signs) an extension.
    pub fn signs_extension(&self) -> bool {
        self.msg_type == SignedMsgType::Precommit && self.block_id.is_some()
    }

    /// CometBFT's `Vote.ValidateBasic`, for the fields the signer sees.
    pub fn validate(&self) -> Result<(), ConsensusError> {
        if self.msg_type == SignedMsgType::Proposal {
            return Err(ConsensusError::MessageType {
                what: "vote",
                found: self.msg_type.code(),
            });
        }
        validate_height_round(self.height, self.round)?;
        if let Some(block_id) = &self.block_id {
            block_id.validate_hashes()?;
            if !block_id.is_complete() {
                return Err(ConsensusError::IncompleteBlockId("vote"));
            }
        }
        if !self.extension.is_empty() && !self.signs_extension() {
            return Err(ConsensusError::UnexpectedExtension);
        }
        if self.extension.len() > MAX_EXTENSION_LEN {
            return Err(ConsensusError::TooLarge {
                what: "vote extension",
                len: self.extension.len(),
                max: MAX_EXTENSION_LEN,
            });
        }
        self.timestamp.validate()
    }
}

/// A block proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// Block height, > 0.
    pub height: i64,
    /// Round, >= 0.
    pub round: i32,
    /// Proof-of-lock round, -1 for none, else below `round`.
    pub pol_round: i32,
    /// The proposed block (complete).
    pub block_id: BlockId,
    /// The proposer's local time.
    pub timestamp: Timestamp,
}

impl Proposal {
    /// CometBFT's `Proposal.ValidateBasic`, for the fields the signer sees.
    pub fn validate(&self) -> Result<(), ConsensusError> {
        validate_height_round(self.height, self.round)?;
        if self.pol_round < -1 || self.pol_round >= self.round {
            return Err(ConsensusError::PolRound {
                pol_round: self.pol_round,
                round: self.round,
            });
        }
        self.block_id.validate_hashes()?;
        if !self.block_id.is_complete() {
            return Err(ConsensusError::IncompleteBlockId("proposal"));
        }
        self.timestamp.validate()
    }
}

fn validate_height_round(height: i64, round: i32) -> Result<(), ConsensusError> {
    if height <= 0 {
        return Err(ConsensusError::Height(height));
    }
    if round < 0 {
        return Err(ConsensusError::Round(round));
    }
    Ok(())
}

/// A message a CometBFT validator asks to have signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CometMessage {
    /// A prevote or precommit.
    Vote(Vote),
    /// A proposal.
    Proposal(Proposal),
}

impl CometMessage {
    /// Validates the message (see the module invariants).
    pub fn validate(&self) -> Result<(), ConsensusError> {
        match self {
            CometMessage::Vote(v) => v.validate(),
            CometMessage::Proposal(p) => p.validate(),
        }
    }

    /// The message's height.
    pub fn height(&self) -> i64 {
        match self {
            CometMessage::Vote(v) => v.height,
            CometMessage::Proposal(p) => p.height,
        }
    }

    /// The message's round.
    pub fn round(&self) -> i32 {
        match self {
            CometMessage::Vote(v) => v.round,
            CometMessage::Proposal(p) => p.round,
        }
    }

    /// The message's timestamp.
    pub fn timestamp(&self) -> Timestamp {
        match self {
            CometMessage::Vote(v) => v.timestamp,
            CometMessage::Proposal(p) => p.timestamp,
        }
    }

    /// The same message with another timestamp.
    pub fn with_timestamp(&self, timestamp: Timestamp) -> CometMessage {
        let mut m = self.clone();
        match &mut m {
            CometMessage::Vote(v) => v.timestamp = timestamp,
            CometMessage::Proposal(p) => p.timestamp = timestamp,
        }
        m
    }
}
