//! The lightning policy (`policies/lightning-default.toml`): the ranges of
//! the business rules, the channel types allowed, the destination
//! allowlist, and which business rules the operator downgraded to
//! warnings.
//!
//! Loading fails, naming the field, on an unknown field, an inverted
//! range, an unknown channel type or address; and, naming the tag, on a
//! `[downgrade]` entry that is a funds-safety rule or no rule at all.

use std::collections::BTreeSet;
use std::str::FromStr as _;

use bitcoin::{Address, Network, ScriptBuf};
use serde::Deserialize;
use tidemark_core::Tag;

use crate::channel::ChannelError;
use crate::channel::state::ChannelKind;
use crate::tags;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    commitment: CommitmentFile,
    channel: ChannelFile,
    close: CloseFile,
    #[serde(default)]
    destinations: DestinationsFile,
    #[serde(default)]
    downgrade: DowngradeFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitmentFile {
    min_feerate_per_kw: u32,
    max_feerate_per_kw: u32,
    max_htlcs: u16,
    max_htlc_value_in_flight_msat: u64,
    max_cltv_expiry_delta: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelFile {
    allowed_types: Vec<String>,
    min_contest_delay: u16,
    max_contest_delay: u16,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseFile {
    max_fee_sat: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DestinationsFile {
    #[serde(default)]
    addresses: Vec<String>,
    #[serde(default)]
    scripts: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DowngradeFile {
    #[serde(default)]
    tags: Vec<String>,
}

/// The policy a channel's requests are decided under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LightningPolicy {
    /// The lowest commitment fee rate, sat per 1000 weight units.
    pub min_feerate_per_kw: u32,
    /// The highest commitment fee rate.
    pub max_feerate_per_kw: u32,
    /// The most HTLC outputs in one commitment.
    pub max_htlcs: u16,
    /// The most HTLC value in one commitment, msat.
    pub max_htlc_value_in_flight_msat: u64,
    /// How far past the caller's best block an HTLC may expire.
    pub max_cltv_expiry_delta: u32,
    /// The commitment formats accepted at setup.
    pub allowed_types: BTreeSet<ChannelKind>,
    /// The shortest contest delay (either side's).
    pub min_contest_delay: u16,
    /// The longest contest delay (either side's).
    pub max_contest_delay: u16,
    /// How much less than its last balance a mutual close may pay the
    /// holder.
    pub max_close_fee_sat: u64,
    /// Scripts besides the wallet's that sweeps and closes may pay.
    pub allowlist: BTreeSet<ScriptBuf>,
    downgraded: BTreeSet<Tag>,
}

impl Default for LightningPolicy {
    /// The values of `policies/lightning-default.toml`.
    fn default() -> Self {
        LightningPolicy {
            min_feerate_per_kw: 253,
            max_feerate_per_kw: 100_000,
            max_htlcs: 483,
            max_htlc_value_in_flight_msat: 10_000_000_000,
            max_cltv_expiry_delta: 4032,
            allowed_types: ChannelKind::ALL.into_iter().collect(),
            min_contest_delay: 144,
            max_contest_delay: 2016,
            max_close_fee_sat: 100_000,
            allowlist: BTreeSet::new(),
            downgraded: BTreeSet::new(),
        }
    }
}

fn config(message: String) -> ChannelError {
    ChannelError::Config(message)
}

impl LightningPolicy {
    /// Parses a policy file for a node on `network` (allowlisted addresses
    /// must be of that network).
    pub fn from_toml(text: &str, network: Network) -> Result<LightningPolicy, ChannelError> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| format!(" (at byte {})", s.start))
                .unwrap_or_default();
            config(format!("{}{at}", e.message()))
        })?;
        let c = &file.commitment;
        if c.min_feerate_per_kw > c.max_feerate_per_kw {
            return Err(config(format!(
                "commitment.min_feerate_per_kw ({}) is above commitment.max_feerate_per_kw ({})",
                c.min_feerate_per_kw, c.max_feerate_per_kw
            )));
        }
        let ch = &file.channel;
        if ch.min_contest_delay > ch.max_contest_delay {
            return Err(config(format!(
                "channel.min_contest_delay ({}) is above channel.max_contest_delay ({})",
                ch.min_contest_delay, ch.max_contest_delay
            )));
        }
        let mut allowed_types = BTreeSet::new();
        for (i, name) in ch.allowed_types.iter().enumerate() {
            let kind = ChannelKind::from_name(name).ok_or_else(|| {
                let known: Vec<&str> = ChannelKind::ALL.iter().map(|k| k.name()).collect();
                config(format!(
                    "channel.allowed_types[{i}]: unknown channel type {name:?}, expected one of {known:?}"
                ))
            })?;
            allowed_types.insert(kind);
        }
        let mut allowlist = BTreeSet::new();
        for (i, text) in file.destinations.addresses.iter().enumerate() {
            let address = Address::from_str(text)
                .map_err(|e| e.to_string())
                .and_then(|a| a.require_network(network).map_err(|e| e.to_string()))
                .map_err(|e| config(format!("destinations.addresses[{i}]: {text:?}: {e}")))?;
            allowlist.insert(address.script_pubkey());
        }
        for (i, text) in file.destinations.scripts.iter().enumerate() {
            let bytes =
                hex::decode(text).map_err(|e| config(format!("destinations.scripts[{i}]: {e}")))?;
            allowlist.insert(ScriptBuf::from_bytes(bytes));
        }
        let mut policy = LightningPolicy {
            min_feerate_per_kw: c.min_feerate_per_kw,
            max_feerate_per_kw: c.max_feerate_per_kw,
            max_htlcs: c.max_htlcs,
            max_htlc_value_in_flight_msat: c.max_htlc_value_in_flight_msat,
            max_cltv_expiry_delta: c.max_cltv_expiry_delta,
            allowed_types,
            min_contest_delay: ch.min_contest_delay,
            max_contest_delay: ch.max_contest_delay,
            max_close_fee_sat: file.close.max_fee_sat,
            allowlist,
            downgraded: BTreeSet::new(),
        };
        for (i, text) in file.downgrade.tags.iter().enumerate() {
            policy
                .downgrade(text)
                .map_err(|e| config(format!("downgrade.tags[{i}]: {e}")))?;
        }
        Ok(policy)
    }

    /// Downgrades the business rule `tag` to a warning. A funds-safety
    /// rule, or a string that is no tag of this domain, is an error that
    /// names it.
    pub fn downgrade(&mut self, tag: &str) -> Result<(), String> {
        let parsed = Tag::parse(tag).filter(tags::is_known);
        match parsed {
            None => Err(format!("{tag:?} is not a lightning policy tag")),
            Some(t) if !tags::is_business(&t) => Err(format!(
                "{tag} is a funds-safety rule and cannot be downgraded"
            )),
            Some(t) => {
                self.downgraded.insert(t);
                Ok(())
            }
        }
    }

    /// Whether the business rule `tag` only warns.
    pub fn is_downgraded(&self, tag: &Tag) -> bool {
        self.downgraded.contains(tag)
    }

    /// The downgraded rules.
    pub fn downgraded(&self) -> impl Iterator<Item = &Tag> {
        self.downgraded.iter()
    }
}
