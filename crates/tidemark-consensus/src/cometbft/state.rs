//! The CometBFT high-water mark: FilePV's `LastSignState`.
//!
//! One [`CometState`] per (chain, key) covers proposals and votes. It is
//! ordered by (height, round, step) with step proposal(1) < prevote(2) <
//! precommit(3).
//!
//! Invariants:
//! - `sign_bytes` are the canonical sign bytes the stored signature was made
//!   over, or empty for a mark imported without them (see
//!   [`super::import`]); an empty `sign_bytes` never allows a replay.
//! - The stored timestamp is not kept twice: [`CometState::timestamp`]
//!   decodes it from `sign_bytes`, so it always matches what was signed.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use tidemark_core::Mark;

use super::canonical;
use super::types::{SignedMsgType, Timestamp};

/// A step within a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum Step {
    /// A proposal (1).
    Propose = 1,
    /// A prevote (2).
    Prevote = 2,
    /// A precommit (3).
    Precommit = 3,
}

impl Step {
    /// The step a message type is signed at.
    pub fn of(msg_type: SignedMsgType) -> Step {
        match msg_type {
            SignedMsgType::Proposal => Step::Propose,
            SignedMsgType::Prevote => Step::Prevote,
            SignedMsgType::Precommit => Step::Precommit,
        }
    }

    /// FilePV's number for the step.
    pub fn number(self) -> u8 {
        self as u8
    }
}

impl TryFrom<u8> for Step {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        match v {
            1 => Ok(Step::Propose),
            2 => Ok(Step::Prevote),
            3 => Ok(Step::Precommit),
            other => Err(format!("step must be 1, 2 or 3, got {other}")),
        }
    }
}

impl From<Step> for u8 {
    fn from(s: Step) -> u8 {
        s.number()
    }
}

/// The last thing signed for a (chain, key), as stored (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CometState {
    /// Height of the last signed message.
    pub height: i64,
    /// Its round.
    pub round: i32,
    /// Its step.
    pub step: Step,
    /// Its canonical sign bytes (hex); empty for a mark imported without
    /// them.
    #[serde(with = "tidemark_core::serde_hex::bytes", default)]
    pub sign_bytes: Vec<u8>,
}

impl CometState {
    /// (height, round, step) for ordering.
    pub fn hrs(&self) -> (i64, i32, Step) {
        (self.height, self.round, self.step)
    }

    /// Compares the state's HRS with another.
    pub fn cmp_hrs(&self, other: (i64, i32, Step)) -> Ordering {
        self.hrs().cmp(&other)
    }

    /// The mark: `height`, `round`, `step`.
    pub fn mark(&self) -> Mark {
        Mark::none()
            .with("height", u64::try_from(self.height).unwrap_or(0))
            .with("round", u64::try_from(self.round).unwrap_or(0))
            .with("step", u64::from(self.step.number()))
    }

    /// The timestamp of the stored signed message, decoded from the stored
    /// sign bytes; `None` when there are none (an imported bare mark) or they
    /// do not decode.
    ///
    /// When [`super::CometPolicy`] answers [`tidemark_core::Decision::Replay`]
    /// for a request whose timestamp differs from the stored one, the stored
    /// signature covers *this* timestamp: the server must return it with the
    /// signature (CometBFT's FilePV sets `vote.Timestamp` / `proposal.Timestamp`
    /// to it) or the validator would broadcast an invalid signature.
    pub fn timestamp(&self) -> Option<Timestamp> {
        if self.sign_bytes.is_empty() {
            return None;
        }
        canonical::decode(&self.sign_bytes).map(|s| s.timestamp)
    }
}
