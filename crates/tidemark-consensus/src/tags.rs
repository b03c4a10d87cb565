//! The stable refusal tags of the consensus domain.
//!
//! Tags are API: clients match on them and dashboards count them, so a tag
//! is never renamed or reused for another meaning. Every refusal this crate
//! makes uses one of these constants.

use tidemark_core::Tag;

/// The request's height (or Tezos level) is below the object's mark.
pub const HEIGHT_REGRESSION: Tag = Tag::new("hwm-height-regression");

/// Tezos: the operation's level is below the object's mark.
pub const LEVEL_REGRESSION: Tag = Tag::new("hwm-level-regression");

/// Same height (or level), lower round.
pub const ROUND_REGRESSION: Tag = Tag::new("hwm-round-regression");

/// CometBFT: same height and round, lower step.
pub const STEP_REGRESSION: Tag = Tag::new("hwm-step-regression");

/// Same mark, different payload: signing would be a double sign.
pub const DOUBLE_SIGN: Tag = Tag::new("hwm-double-sign");

/// Tezos: a magic byte the policy does not allow.
pub const TEZOS_MAGIC_BYTE: Tag = Tag::new("policy-tezos-magic-byte");

/// The stored state cannot be read as this domain's state (a corrupt or
/// foreign record): fail closed.
pub const STATE_UNREADABLE: Tag = Tag::new("policy-state-unreadable");
