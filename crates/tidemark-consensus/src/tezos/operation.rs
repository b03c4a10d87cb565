//! Parsing the (level, round) watermark out of raw Tezos signing requests.
//!
//! Layouts (big-endian; the first byte is the magic byte):
//!
//! ```text
//! 0x11 block:  magic(1) chain_id(4) level(i32) proto(1) predecessor(32)
//!              timestamp(8) validation_pass(1) operations_hash(32)
//!              fitness(u32 length, then elements of u32 length + bytes)
//!              context(32) protocol data...
//!              round = the last fitness element (4 bytes), as octez-signer
//! 0x12/0x13:   magic(1) chain_id(4) branch(32) tag(1) content
//!   tag 20 preattestation, 21 attestation, 23 attestation_with_dal:
//!              slot(u16) level(i32) round(i32) block_payload_hash(32) [dal]
//!   tag 40 preattestation, 41 attestation (BLS, tz4 keys; no slot):
//!              level(i32) round(i32) block_payload_hash(32)
//! ```
//!
//! Invariants: [`parse`] never panics and never indexes out of bounds; it
//! returns a typed error for short input, a content tag that does not
//! belong to the magic byte, a malformed fitness or a negative level or
//! round. Any other magic byte parses as [`TezosOperation::Other`] and is
//! left to the policy to allow or refuse.

use serde::{Deserialize, Serialize};

use crate::error::ConsensusError;

/// The largest operation accepted, in bytes.
pub const MAX_OPERATION_LEN: usize = 64 * 1024;

/// Magic byte of a Tenderbake block.
pub const MAGIC_BLOCK: u8 = 0x11;
/// Magic byte of a Tenderbake preattestation.
pub const MAGIC_PREATTESTATION: u8 = 0x12;
/// Magic byte of a Tenderbake attestation.
pub const MAGIC_ATTESTATION: u8 = 0x13;

const CHAIN_ID_END: usize = 5;
const BRANCH_END: usize = CHAIN_ID_END + 32;
/// magic, chain id, level, proto, predecessor, timestamp, validation pass,
/// operations hash.
const FITNESS_OFFSET: usize = 1 + 4 + 4 + 1 + 32 + 8 + 1 + 32;

/// The consensus operation kinds that carry a watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TezosKind {
    /// A block header (0x11).
    Block,
    /// A preattestation (0x12).
    Preattestation,
    /// An attestation (0x13).
    Attestation,
}

impl TezosKind {
    /// The object kind: `block`, `preattestation` or `attestation`.
    pub fn as_str(self) -> &'static str {
        match self {
            TezosKind::Block => "block",
            TezosKind::Preattestation => "preattestation",
            TezosKind::Attestation => "attestation",
        }
    }
}

/// What the bytes of a signing request are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TezosOperation {
    /// A Tenderbake consensus operation and its watermark.
    Consensus {
        /// Block, preattestation or attestation.
        kind: TezosKind,
        /// The 4-byte chain id in the bytes.
        chain_id: [u8; 4],
        /// The level.
        level: u32,
        /// The round.
        round: u32,
    },
    /// Any other magic byte (generic operation, legacy Emmy, ...).
    Other {
        /// The magic byte.
        magic: u8,
    },
}

/// Parses the magic byte and, for consensus operations, the watermark.
pub fn parse(bytes: &[u8]) -> Result<TezosOperation, ConsensusError> {
    if bytes.len() > MAX_OPERATION_LEN {
        return Err(ConsensusError::TooLarge {
            what: "tezos operation",
            len: bytes.len(),
            max: MAX_OPERATION_LEN,
        });
    }
    let Some(&magic) = bytes.first() else {
        return Err(truncated("tezos operation", 1, bytes));
    };
    let kind = match magic {
        MAGIC_BLOCK => TezosKind::Block,
        MAGIC_PREATTESTATION => TezosKind::Preattestation,
        MAGIC_ATTESTATION => TezosKind::Attestation,
        _ => return Ok(TezosOperation::Other { magic }),
    };
    let chain_id: [u8; 4] = array(bytes, 1, "tezos chain id")?;
    let (level, round) = match kind {
        TezosKind::Block => block_watermark(bytes)?,
        TezosKind::Preattestation | TezosKind::Attestation => consensus_watermark(magic, bytes)?,
    };
    Ok(TezosOperation::Consensus {
        kind,
        chain_id,
        level: non_negative("level", level)?,
        round: non_negative("round", round)?,
    })
}

fn block_watermark(bytes: &[u8]) -> Result<(i32, i32), ConsensusError> {
    let level = i32_at(bytes, CHAIN_ID_END, "tezos block level")?;
    let fitness_len = u32::from_be_bytes(array(bytes, FITNESS_OFFSET, "tezos block fitness")?);
    let start = FITNESS_OFFSET + 4;
    let fitness_len = usize::try_from(fitness_len).unwrap_or(usize::MAX);
    let end = start.saturating_add(fitness_len);
    // The fitness is followed by the 32-byte context hash.
    let needed = end.saturating_add(32);
    let fitness = bytes
        .get(start..end)
        .filter(|_| bytes.len() >= needed)
        .ok_or_else(|| truncated("tezos block header", needed, bytes))?;

    let mut rest = fitness;
    let mut last: Option<&[u8]> = None;
    while !rest.is_empty() {
        let len: [u8; 4] =
            rest.get(..4)
                .and_then(|s| s.try_into().ok())
                .ok_or(ConsensusError::TezosFitness(
                    "element length runs past the fitness",
                ))?;
        let len = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
        let (elem, tail) = rest
            .get(4..)
            .and_then(|body| body.split_at_checked(len))
            .ok_or(ConsensusError::TezosFitness(
                "element runs past the fitness",
            ))?;
        last = Some(elem);
        rest = tail;
    }
    let round: [u8; 4] = last
        .ok_or(ConsensusError::TezosFitness("fitness is empty"))?
        .try_into()
        .map_err(|_| ConsensusError::TezosFitness("last element (the round) is not 4 bytes"))?;
    Ok((level, i32::from_be_bytes(round)))
}

fn consensus_watermark(magic: u8, bytes: &[u8]) -> Result<(i32, i32), ConsensusError> {
    let tag = *bytes
        .get(BRANCH_END)
        .ok_or_else(|| truncated("tezos consensus operation", BRANCH_END + 1, bytes))?;
    let content = BRANCH_END + 1;
    // (offset of the level, minimum length of the whole request)
    let (level_at, min_len) = match (magic, tag) {
        (MAGIC_PREATTESTATION, 20) | (MAGIC_ATTESTATION, 21) => (content + 2, content + 2 + 8 + 32),
        (MAGIC_ATTESTATION, 23) => (content + 2, content + 2 + 8 + 32 + 1),
        (MAGIC_PREATTESTATION, 40) | (MAGIC_ATTESTATION, 41) => (content, content + 8 + 32),
        _ => return Err(ConsensusError::TezosContentTag { magic, tag }),
    };
    if bytes.len() < min_len {
        return Err(truncated("tezos consensus operation", min_len, bytes));
    }
    let level = i32_at(bytes, level_at, "tezos consensus level")?;
    let round = i32_at(bytes, level_at + 4, "tezos consensus round")?;
    Ok((level, round))
}

fn array<const N: usize>(
    bytes: &[u8],
    at: usize,
    what: &'static str,
) -> Result<[u8; N], ConsensusError> {
    bytes
        .get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| truncated(what, at + N, bytes))
}

fn i32_at(bytes: &[u8], at: usize, what: &'static str) -> Result<i32, ConsensusError> {
    array(bytes, at, what).map(i32::from_be_bytes)
}

fn non_negative(what: &'static str, value: i32) -> Result<u32, ConsensusError> {
    u32::try_from(value).map_err(|_| ConsensusError::TezosWatermark { what, value })
}

fn truncated(what: &'static str, needed: usize, bytes: &[u8]) -> ConsensusError {
    ConsensusError::Truncated {
        what,
        needed,
        len: bytes.len(),
    }
}
