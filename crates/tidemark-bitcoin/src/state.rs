//! The durable state of a wallet: one ledger object per wallet and one
//! object per intent.
//!
//! - The **intent** object (`bitcoin/<network>/<wallet>/intent.<id>`)
//!   records the unsigned transaction an intent was signed for, its inputs,
//!   what it sends, and its status. Its stored signatures are returned to an
//!   identical repeat.
//! - The **ledger** object (`bitcoin/<network>/<wallet>/ledger`) records
//!   which outpoints are committed to which live intent, and the amounts
//!   sent per minute over the velocity window.
//!
//! A signature moves both in one atomic compare-and-swap
//! ([`StateStore::commit_all`](tidemark_core::StateStore::commit_all)), so
//! a crash can never leave an intent signed without its inputs reserved.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use tidemark_core::Mark;

use crate::error::BitcoinError;

/// The caller's id for a payment (a payout or withdrawal id): 1 to 64 of
/// `[A-Za-z0-9._-]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IntentId(String);

impl IntentId {
    /// Validates `id`.
    pub fn new(id: impl Into<String>) -> Result<IntentId, BitcoinError> {
        let id = id.into();
        let ok = !id.is_empty()
            && id.len() <= 64
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if ok {
            Ok(IntentId(id))
        } else {
            Err(BitcoinError::InvalidIntent(id))
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IntentId {
    type Error = BitcoinError;
    fn try_from(s: String) -> Result<Self, BitcoinError> {
        IntentId::new(s)
    }
}

impl From<IntentId> for String {
    fn from(id: IntentId) -> String {
        id.0
    }
}

impl fmt::Display for IntentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an intent stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntentStatus {
    /// Signed; its inputs are committed to it.
    Live,
    /// The operator confirmed it was mined: its inputs are free (spent) and
    /// the intent can never be paid again.
    Confirmed,
    /// The operator gave it up: its inputs are free, and the intent may be
    /// signed again only by a transaction that double-spends the abandoned
    /// one, so that at most one of them can confirm.
    Abandoned,
}

impl IntentStatus {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            IntentStatus::Live => "live",
            IntentStatus::Confirmed => "confirmed",
            IntentStatus::Abandoned => "abandoned",
        }
    }

    fn code(self) -> u64 {
        match self {
            IntentStatus::Live => 1,
            IntentStatus::Confirmed => 2,
            IntentStatus::Abandoned => 3,
        }
    }
}

/// How a signature was made, so that a replay can put it back in a PSBT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedInput {
    /// The input index.
    pub index: u32,
    /// The public key that signed (33 bytes for ECDSA, the x-only internal
    /// key for taproot), hex.
    pub pubkey: String,
    /// `ecdsa` or `taproot`.
    pub scheme: String,
}

/// The state of one intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentState {
    /// The intent.
    pub intent: IntentId,
    /// The txid of the unsigned transaction it was signed for.
    pub txid: String,
    /// Its status.
    pub status: IntentStatus,
    /// Every outpoint it spends (`txid:vout`).
    pub inputs: Vec<String>,
    /// The wallet's outpoints among them (reserved while live).
    pub wallet_inputs: Vec<String>,
    /// Satoshis sent to outputs that are not the wallet's.
    pub sent_sat: u64,
    /// The fee in satoshis.
    pub fee_sat: u64,
    /// When it was signed (seconds since the Unix epoch).
    pub signed_at: u64,
    /// How many times it was signed (a replacement of an abandoned intent
    /// counts again).
    pub signings: u64,
    /// The signatures' places, in the order of the stored signatures.
    pub signed: Vec<SignedInput>,
    /// Every transaction of this intent that was abandoned. None is signed
    /// again, and a replacement must double-spend each of them, so that at
    /// most one transaction of the intent can ever confirm.
    #[serde(default)]
    pub abandoned: Vec<AbandonedTx>,
}

/// A transaction an operator abandoned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbandonedTx {
    /// Its txid.
    pub txid: String,
    /// The outpoints it spends.
    pub inputs: Vec<String>,
}

impl IntentState {
    /// The mark an intent stands for.
    pub fn mark(&self) -> Mark {
        Mark::none()
            .with("status", self.status.code())
            .with("signings", self.signings)
            .with("sent_sat", self.sent_sat)
    }
}

/// The state of one wallet's ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerState {
    /// Outpoint (`txid:vout`) -> the live intent it is committed to.
    pub reserved: BTreeMap<String, IntentId>,
    /// Minute (since the Unix epoch) -> satoshis sent to non-wallet
    /// outputs in that minute. Minutes older than the window are dropped.
    pub sent_per_minute: BTreeMap<u64, u64>,
}

impl LedgerState {
    /// Satoshis sent in the window of `window_secs` ending at `now`: every
    /// minute that overlaps it counts in full (never less than the truth).
    pub fn sent_in_window(&self, now: u64, window_secs: u64) -> u64 {
        let first = now.saturating_sub(window_secs) / 60;
        self.sent_per_minute
            .range(first..)
            .map(|(_, sat)| *sat)
            .fold(0u64, u64::saturating_add)
    }

    /// Drops the minutes that lie wholly before the window.
    pub fn prune(&mut self, now: u64, window_secs: u64) {
        let first = now.saturating_sub(window_secs) / 60;
        self.sent_per_minute = self.sent_per_minute.split_off(&first);
    }

    /// The mark a ledger stands for.
    pub fn mark(&self) -> Mark {
        Mark::none()
            .with("reserved", self.reserved.len() as u64)
            .with(
                "window_sat",
                self.sent_per_minute
                    .values()
                    .fold(0u64, |a, b| a.saturating_add(*b)),
            )
    }
}
