//! The one error type of this crate: malformed input.
//!
//! A [`ConsensusError`] means a request, an operation or a state file could
//! not be understood; it is raised while a request is *built*, before any
//! policy sees it, and it never changes state. A policy refusal (a request
//! that is well formed but unsafe to sign) is not an error: it is a
//! [`tidemark_core::Refusal`] carried by [`tidemark_core::Decision::Refuse`].
//!
//! Invariants: every decoder in this crate returns one of these variants
//! instead of panicking, whatever bytes it is given; messages are lower case
//! and say what was expected and what was found.

/// Malformed consensus input: a CometBFT message, a Tezos operation, a
/// plain-height request or an imported state file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConsensusError {
    /// A height is zero or negative.
    #[error("height must be positive, got {0}")]
    Height(i64),
    /// A round is negative.
    #[error("round must not be negative, got {0}")]
    Round(i32),
    /// A proposal's proof-of-lock round is below -1 or not below its round.
    #[error("pol_round must be -1 or in 0..round ({round}), got {pol_round}")]
    PolRound {
        /// The proof-of-lock round given.
        pol_round: i32,
        /// The proposal's round.
        round: i32,
    },
    /// A vote carries the proposal message type (or the reverse).
    #[error("message type {found} is not valid for a {what}")]
    MessageType {
        /// The message kind (`vote` or `proposal`).
        what: &'static str,
        /// The type code found.
        found: u8,
    },
    /// A hash is neither empty nor 32 bytes.
    #[error("{what} must be empty or 32 bytes, got {len}")]
    HashLength {
        /// Which hash.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// A block id must be complete (32-byte hash, at least one part,
    /// 32-byte part-set hash) and is not.
    #[error(
        "block id of a {0} must be complete: 32-byte hash, total > 0 and 32-byte part-set hash"
    )]
    IncompleteBlockId(&'static str),
    /// A vote extension on anything but a non-nil precommit.
    #[error("vote extensions are only allowed in non-nil precommits")]
    UnexpectedExtension,
    /// A field or payload is longer than allowed.
    #[error("{what} is {len} bytes, more than the maximum of {max}")]
    TooLarge {
        /// Which field.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A timestamp outside google.protobuf.Timestamp's range
    /// (0001-01-01 to 9999-12-31, nanos in 0..1e9).
    #[error("timestamp {seconds}s {nanos}ns is out of range")]
    Timestamp {
        /// Seconds since the Unix epoch.
        seconds: i64,
        /// Nanoseconds.
        nanos: i32,
    },
    /// Input ended before a field could be read.
    #[error("{what}: input is {len} bytes, need at least {needed}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        len: usize,
    },
    /// A Tezos operation's content tag does not match its magic byte.
    #[error("tezos operation with magic byte 0x{magic:02x} has unknown content tag {tag}")]
    TezosContentTag {
        /// The magic byte.
        magic: u8,
        /// The content tag found.
        tag: u8,
    },
    /// A Tezos block header's fitness is not a well-formed Tenderbake fitness.
    #[error("tezos block fitness is malformed: {0}")]
    TezosFitness(&'static str),
    /// A Tezos level or round is negative.
    #[error("tezos {what} must not be negative, got {value}")]
    TezosWatermark {
        /// `level` or `round`.
        what: &'static str,
        /// The value found.
        value: i32,
    },
    /// The chain id in the request differs from the one in the bytes.
    #[error("request is for chain {request} but the operation is for chain {operation}")]
    ChainMismatch {
        /// The chain id the request named.
        request: String,
        /// The chain id encoded in the operation.
        operation: String,
    },
    /// An imported state file could not be parsed.
    #[error("malformed state file: {0}")]
    StateFile(String),
    /// An imported state file parsed but contradicts itself.
    #[error("inconsistent state file: {0}")]
    StateInconsistent(String),
}
