//! The refusal tags of the bitcoin domain. Each one is part of the API.

use tidemark_core::Tag;

/// Same intent, a different unsigned transaction (or a replacement of an
/// abandoned intent that does not double-spend it).
pub const INTENT_CONFLICT: Tag = Tag::new("policy-intent-conflict");
/// An input is committed to another live intent.
pub const INPUT_CONFLICT: Tag = Tag::new("policy-input-conflict");
/// The intent was abandoned: its signatures are not released again.
pub const INTENT_RELEASED: Tag = Tag::new("policy-intent-released");
/// The transaction does not pay exactly what the intent declared.
pub const INTENT_MISMATCH: Tag = Tag::new("policy-intent-mismatch");
/// A declared payment address is for another network.
pub const NETWORK_MISMATCH: Tag = Tag::new("policy-network-mismatch");
/// A non-change output pays a script outside the allowlist.
pub const DESTINATION_NOT_ALLOWED: Tag = Tag::new("policy-destination-not-allowed");
/// An output claims to be the wallet's (a key origin of this wallet) but
/// its script is not derived from the wallet's descriptors.
pub const CHANGE_NOT_WALLET: Tag = Tag::new("policy-change-not-wallet");
/// The absolute fee is above the cap.
pub const FEE_ABOVE_MAX: Tag = Tag::new("policy-fee-above-max");
/// The fee rate is above the cap.
pub const FEE_RATE_ABOVE_MAX: Tag = Tag::new("policy-fee-rate-above-max");
/// The amount sent in the rolling window would exceed the limit.
pub const VELOCITY_EXCEEDED: Tag = Tag::new("policy-velocity-exceeded");

/// Every tag, for documentation and metrics.
pub const ALL: [&Tag; 10] = [
    &INTENT_CONFLICT,
    &INPUT_CONFLICT,
    &INTENT_RELEASED,
    &INTENT_MISMATCH,
    &NETWORK_MISMATCH,
    &DESTINATION_NOT_ALLOWED,
    &CHANGE_NOT_WALLET,
    &FEE_ABOVE_MAX,
    &FEE_RATE_ABOVE_MAX,
    &VELOCITY_EXCEEDED,
];
