//! Canonical sign bytes, built by the signer from the structured message.
//!
//! The bytes are CometBFT's `VoteSignBytes` / `ProposalSignBytes` /
//! `VoteExtensionSignBytes`: the protobuf encoding of `CanonicalVote`,
//! `CanonicalProposal` or `CanonicalVoteExtension` (proto/cometbft/types
//! canonical.proto), length-delimited with a uvarint prefix.
//!
//! ```text
//! CanonicalVote      1 type (enum)  2 height (sfixed64)  3 round (sfixed64)
//!                    4 block_id (CanonicalBlockID, omitted when nil)
//!                    5 timestamp (google.protobuf.Timestamp, always present)
//!                    6 chain_id (string)
//! CanonicalProposal  1 type  2 height (sfixed64)  3 round (sfixed64)
//!                    4 pol_round (int64 varint, -1 as ten bytes)
//!                    5 block_id  6 timestamp  7 chain_id
//! CanonicalVoteExtension 1 extension (bytes) 2 height (sfixed64)
//!                    3 round (sfixed64) 4 chain_id
//! CanonicalBlockID   1 hash (bytes)  2 part_set_header (always present)
//! CanonicalPartSetHeader 1 total (uint32)  2 hash (bytes)
//! Timestamp          1 seconds (int64)  2 nanos (int32)
//! ```
//!
//! Invariants: proto3 defaults (zero numbers, empty bytes and strings) are
//! omitted; embedded messages marked non-nullable are always emitted; the
//! encoding is byte-identical to tendermint-rs and CometBFT (checked by the
//! cross-check tests); [`decode`] never panics.

use tidemark_core::ChainId;

use super::proto::{Reader, Value, Writer, length_delimited};
use super::types::{BlockId, CometMessage, Proposal, SignedMsgType, Timestamp, Vote};

/// The sign bytes of a vote or proposal for `chain_id`.
pub fn sign_bytes(chain_id: &ChainId, message: &CometMessage) -> Vec<u8> {
    match message {
        CometMessage::Vote(v) => vote_sign_bytes(chain_id, v),
        CometMessage::Proposal(p) => proposal_sign_bytes(chain_id, p),
    }
}

/// `VoteSignBytes`: the length-delimited `CanonicalVote`.
pub fn vote_sign_bytes(chain_id: &ChainId, vote: &Vote) -> Vec<u8> {
    let mut w = Writer::new();
    w.varint_nonzero(1, i64::from(vote.msg_type.code()));
    w.sfixed64_nonzero(2, vote.height);
    w.sfixed64_nonzero(3, i64::from(vote.round));
    if let Some(block_id) = vote.block_id.as_ref().filter(|b| !b.is_zero()) {
        w.message(4, &encode_block_id(block_id));
    }
    w.message(5, &encode_timestamp(vote.timestamp));
    w.bytes_nonempty(6, chain_id.as_str().as_bytes());
    length_delimited(&w.into_bytes())
}

/// `ProposalSignBytes`: the length-delimited `CanonicalProposal`.
pub fn proposal_sign_bytes(chain_id: &ChainId, proposal: &Proposal) -> Vec<u8> {
    let mut w = Writer::new();
    w.varint_nonzero(1, i64::from(SignedMsgType::Proposal.code()));
    w.sfixed64_nonzero(2, proposal.height);
    w.sfixed64_nonzero(3, i64::from(proposal.round));
    w.varint_nonzero(4, i64::from(proposal.pol_round));
    if !proposal.block_id.is_zero() {
        w.message(5, &encode_block_id(&proposal.block_id));
    }
    w.message(6, &encode_timestamp(proposal.timestamp));
    w.bytes_nonempty(7, chain_id.as_str().as_bytes());
    length_delimited(&w.into_bytes())
}

/// `VoteExtensionSignBytes`: the length-delimited `CanonicalVoteExtension`.
pub fn vote_extension_sign_bytes(chain_id: &ChainId, vote: &Vote) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes_nonempty(1, &vote.extension);
    w.sfixed64_nonzero(2, vote.height);
    w.sfixed64_nonzero(3, i64::from(vote.round));
    w.bytes_nonempty(4, chain_id.as_str().as_bytes());
    length_delimited(&w.into_bytes())
}

fn encode_block_id(block_id: &BlockId) -> Vec<u8> {
    let mut psh = Writer::new();
    psh.varint_nonzero(1, i64::from(block_id.part_set_header.total));
    psh.bytes_nonempty(2, &block_id.part_set_header.hash);
    let mut w = Writer::new();
    w.bytes_nonempty(1, &block_id.hash);
    w.message(2, &psh.into_bytes());
    w.into_bytes()
}

fn encode_timestamp(t: Timestamp) -> Vec<u8> {
    let mut w = Writer::new();
    w.varint_nonzero(1, t.seconds);
    w.varint_nonzero(2, i64::from(t.nanos));
    w.into_bytes()
}

/// What [`decode`] recovers from stored sign bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalSummary {
    /// The message type.
    pub msg_type: SignedMsgType,
    /// The height.
    pub height: i64,
    /// The round.
    pub round: i64,
    /// The timestamp (the zero timestamp if the field was absent).
    pub timestamp: Timestamp,
    /// The chain id.
    pub chain_id: String,
}

/// Decodes length-delimited `CanonicalVote` or `CanonicalProposal` bytes.
/// `None` if they are not well-formed sign bytes; never panics.
pub fn decode(bytes: &[u8]) -> Option<CanonicalSummary> {
    let body = Reader::new(bytes).length_delimited()?;
    let mut r = Reader::new(body);
    let (mut msg_type, mut height, mut round) = (0u64, 0i64, 0i64);
    let mut fields: Vec<(u32, Value<'_>)> = Vec::new();
    while !r.is_empty() {
        let (field, value) = r.field()?;
        match (field, value) {
            (1, Value::Varint(v)) => msg_type = v,
            (2, Value::Fixed64(v)) => height = v as i64,
            (3, Value::Fixed64(v)) => round = v as i64,
            _ => fields.push((field, value)),
        }
    }
    let msg_type = SignedMsgType::from_code(msg_type)?;
    let (ts_field, chain_field) = match msg_type {
        SignedMsgType::Proposal => (6, 7),
        SignedMsgType::Prevote | SignedMsgType::Precommit => (5, 6),
    };
    let mut timestamp = Timestamp::default();
    let mut chain_id = String::new();
    for (field, value) in fields {
        match value {
            Value::Bytes(b) if field == ts_field => timestamp = decode_timestamp(b)?,
            Value::Bytes(b) if field == chain_field => {
                chain_id = String::from_utf8(b.to_vec()).ok()?;
            }
            _ => {}
        }
    }
    Some(CanonicalSummary {
        msg_type,
        height,
        round,
        timestamp,
        chain_id,
    })
}

fn decode_timestamp(bytes: &[u8]) -> Option<Timestamp> {
    let mut r = Reader::new(bytes);
    let mut t = Timestamp::default();
    while !r.is_empty() {
        match r.field()? {
            (1, Value::Varint(v)) => t.seconds = v as i64,
            (2, Value::Varint(v)) => t.nanos = i32::try_from(v as i64).ok()?,
            _ => {}
        }
    }
    Some(t)
}
