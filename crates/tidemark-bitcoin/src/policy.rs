//! The spend policy of a wallet (`policies/bitcoin-wallet.toml`) and the
//! pure decision over (ledger, intent, request).

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr as _;

use bitcoin::address::NetworkUnchecked;
use bitcoin::{Address, Network, ScriptBuf};
use miniscript::Descriptor;
use miniscript::descriptor::DescriptorPublicKey;
use serde::Deserialize;
use tidemark_core::Tag;

use crate::analysis::Analysis;
use crate::error::BitcoinError;
use crate::state::{IntentId, IntentState, IntentStatus, LedgerState, SignedInput};
use crate::tags;

/// The policy file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    fees: FeesFile,
    velocity: VelocityFile,
    #[serde(default)]
    destinations: DestinationsFile,
    #[serde(default)]
    inputs: InputsFile,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeesFile {
    max_fee_sat: u64,
    max_fee_rate_sat_per_vb: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct VelocityFile {
    limit_sat: u64,
    window_secs: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DestinationsFile {
    #[serde(default)]
    addresses: Vec<String>,
    #[serde(default)]
    descriptors: Vec<String>,
    #[serde(default = "default_descriptor_range")]
    descriptor_range: u32,
}

fn default_descriptor_range() -> u32 {
    1000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputsFile {
    #[serde(default = "yes")]
    require_previous_tx_for_segwit_v0: bool,
}

impl Default for InputsFile {
    fn default() -> Self {
        InputsFile {
            require_previous_tx_for_segwit_v0: true,
        }
    }
}

fn yes() -> bool {
    true
}

/// The largest descriptor range expanded into the allowlist.
const MAX_DESCRIPTOR_RANGE: u32 = 100_000;

/// A wallet's spend policy, checked against the wallet's network.
#[derive(Debug, Clone)]
pub struct SpendPolicy {
    /// The highest absolute fee.
    pub max_fee_sat: u64,
    /// The highest fee rate, in sat/vB, over a lower bound of the size.
    pub max_fee_rate_sat_per_vb: u64,
    /// The most sent to non-wallet outputs per window.
    pub velocity_limit_sat: u64,
    /// The rolling window, in seconds.
    pub velocity_window_secs: u64,
    /// `None`: any destination. Otherwise the scripts non-wallet outputs
    /// may pay.
    pub allowlist: Option<HashSet<ScriptBuf>>,
    /// Whether a segwit v0 wallet input must carry its previous
    /// transaction, so that its amount is proven, not claimed.
    pub require_previous_tx_for_segwit_v0: bool,
}

impl SpendPolicy {
    /// Parses a policy file for a wallet on `network`. Unknown fields, an
    /// address of another network, or a descriptor that does not parse are
    /// errors that name the field.
    pub fn from_toml(text: &str, network: Network) -> Result<SpendPolicy, BitcoinError> {
        let file: PolicyFile = toml::from_str(text)
            .map_err(|e| BitcoinError::Config(e.message().to_owned() + &span(&e)))?;
        if file.velocity.window_secs == 0 {
            return Err(BitcoinError::Config(
                "velocity.window_secs must be at least 1".into(),
            ));
        }
        let d = &file.destinations;
        if d.descriptor_range == 0 || d.descriptor_range > MAX_DESCRIPTOR_RANGE {
            return Err(BitcoinError::Config(format!(
                "destinations.descriptor_range must be 1 to {MAX_DESCRIPTOR_RANGE}"
            )));
        }
        let allowlist = if d.addresses.is_empty() && d.descriptors.is_empty() {
            None
        } else {
            let mut scripts = HashSet::new();
            for (i, text) in d.addresses.iter().enumerate() {
                let address = parse_address(text)
                    .and_then(|a| {
                        a.require_network(network)
                            .map_err(|e| BitcoinError::InvalidAddress {
                                address: text.clone(),
                                reason: e.to_string(),
                            })
                    })
                    .map_err(|e| {
                        BitcoinError::Config(format!("destinations.addresses[{i}]: {e}"))
                    })?;
                scripts.insert(address.script_pubkey());
            }
            for (i, text) in d.descriptors.iter().enumerate() {
                let field =
                    |e: String| BitcoinError::Config(format!("destinations.descriptors[{i}]: {e}"));
                let descriptor = Descriptor::<DescriptorPublicKey>::from_str(text)
                    .map_err(|e| field(e.to_string()))?;
                let range = if descriptor.has_wildcard() {
                    0..d.descriptor_range
                } else {
                    0..1
                };
                for index in range {
                    let script = descriptor
                        .at_derivation_index(index)
                        .map_err(|e| field(e.to_string()))?
                        .script_pubkey();
                    scripts.insert(script);
                }
            }
            Some(scripts)
        };
        Ok(SpendPolicy {
            max_fee_sat: file.fees.max_fee_sat,
            max_fee_rate_sat_per_vb: file.fees.max_fee_rate_sat_per_vb,
            velocity_limit_sat: file.velocity.limit_sat,
            velocity_window_secs: file.velocity.window_secs,
            allowlist,
            require_previous_tx_for_segwit_v0: file.inputs.require_previous_tx_for_segwit_v0,
        })
    }
}

fn span(e: &toml::de::Error) -> String {
    e.span()
        .map(|s| format!(" (at byte {})", s.start))
        .unwrap_or_default()
}

/// Parses an address of any network.
pub(crate) fn parse_address(text: &str) -> Result<Address<NetworkUnchecked>, BitcoinError> {
    Address::from_str(text).map_err(|e| BitcoinError::InvalidAddress {
        address: text.to_owned(),
        reason: e.to_string(),
    })
}

/// A payment the caller declares its intent makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// The destination, of any network (a wrong network is refused by
    /// policy, with its tag).
    pub address: Address<NetworkUnchecked>,
    /// The amount in satoshis.
    pub amount_sat: u64,
}

impl Payment {
    /// A payment from an address string; an address that does not parse
    /// is an error.
    pub fn new(address: &str, amount_sat: u64) -> Result<Payment, BitcoinError> {
        Ok(Payment {
            address: parse_address(address)?,
            amount_sat,
        })
    }
}

/// A request, as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Proposal<'a> {
    pub(crate) intent: &'a IntentId,
    pub(crate) analysis: &'a Analysis,
    pub(crate) payments: &'a [Payment],
    /// Seconds since the Unix epoch; the velocity window ends here.
    pub(crate) now: u64,
}

/// What the policy decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Sign, and commit both states.
    Sign {
        ledger: LedgerState,
        intent: IntentState,
    },
    /// The identical request was signed: return the stored signatures.
    Replay,
    /// Refuse.
    Refuse { tag: Tag, detail: String },
}

fn refuse(tag: &Tag, detail: String) -> Verdict {
    Verdict::Refuse {
        tag: tag.clone(),
        detail,
    }
}

/// Decides a signing request: pure, so that any interleaving of replicas
/// can be checked against it.
///
/// Order: the intent (replay, conflict, released), the inputs (committed to
/// another live intent), disguised change, the declared payments (network,
/// exact match), the allowlist, the fee caps, the velocity window.
pub(crate) fn decide(
    policy: &SpendPolicy,
    network: Network,
    ledger: &LedgerState,
    current: Option<&IntentState>,
    proposal: &Proposal<'_>,
) -> Verdict {
    let Proposal {
        intent,
        analysis,
        payments,
        now,
    } = *proposal;
    let txid = analysis.txid.to_string();
    let inputs: Vec<String> = analysis.inputs.iter().map(ToString::to_string).collect();
    let mut signings = 1;
    if let Some(current) = current {
        let same = current.txid == txid;
        if current.abandoned.iter().any(|a| a.txid == txid) {
            return refuse(
                &tags::INTENT_RELEASED,
                format!(
                    "transaction {txid} of intent {intent} was abandoned; it is not signed again"
                ),
            );
        }
        match (current.status, same) {
            (IntentStatus::Live | IntentStatus::Confirmed, true) => return Verdict::Replay,
            (IntentStatus::Live | IntentStatus::Confirmed, false) => {
                return refuse(
                    &tags::INTENT_CONFLICT,
                    format!(
                        "intent {intent} is {} with transaction {}, not {txid}",
                        current.status.as_str(),
                        current.txid
                    ),
                );
            }
            (IntentStatus::Abandoned, _) => {
                let spends_each = current
                    .abandoned
                    .iter()
                    .all(|old| inputs.iter().any(|i| old.inputs.contains(i)));
                if !spends_each {
                    return refuse(
                        &tags::INTENT_CONFLICT,
                        format!(
                            "intent {intent} was abandoned with transaction {}; a new transaction \
                             must spend an input of every abandoned transaction of the intent so \
                             that at most one confirms",
                            current.txid
                        ),
                    );
                }
                signings = current.signings.saturating_add(1);
            }
        }
    }
    for input in &analysis.wallet_inputs {
        let outpoint = input.outpoint.to_string();
        if let Some(holder) = ledger.reserved.get(&outpoint)
            && holder != intent
        {
            return refuse(
                &tags::INPUT_CONFLICT,
                format!("input {outpoint} is committed to live intent {holder}"),
            );
        }
    }
    if let Some(index) = analysis.disguised.first() {
        return refuse(
            &tags::CHANGE_NOT_WALLET,
            format!(
                "output {index} claims a key of this wallet but its script is not the wallet's"
            ),
        );
    }
    if let Some(bad) = payments
        .iter()
        .find(|p| !p.address.is_valid_for_network(network))
    {
        return refuse(
            &tags::NETWORK_MISMATCH,
            format!(
                "payment address {} is not a {network} address",
                bad.address.clone().assume_checked()
            ),
        );
    }
    if !payments.is_empty() && !pays_exactly(analysis, payments) {
        return refuse(
            &tags::INTENT_MISMATCH,
            "the transaction's outputs to others are not exactly the declared payments".into(),
        );
    }
    if let Some(allowed) = &policy.allowlist
        && let Some((index, _)) = analysis
            .outputs
            .iter()
            .enumerate()
            .find(|(_, o)| !o.wallet && !allowed.contains(&o.script))
    {
        return refuse(
            &tags::DESTINATION_NOT_ALLOWED,
            format!("output {index} pays a script outside the allowlist"),
        );
    }
    if analysis.fee_sat > policy.max_fee_sat {
        return refuse(
            &tags::FEE_ABOVE_MAX,
            format!(
                "fee {} sat is above {} sat",
                analysis.fee_sat, policy.max_fee_sat
            ),
        );
    }
    if analysis.fee_sat
        > policy
            .max_fee_rate_sat_per_vb
            .saturating_mul(analysis.vsize)
    {
        return refuse(
            &tags::FEE_RATE_ABOVE_MAX,
            format!(
                "fee {} sat over at least {} vB is above {} sat/vB",
                analysis.fee_sat, analysis.vsize, policy.max_fee_rate_sat_per_vb
            ),
        );
    }
    let sent = analysis.sent_sat();
    let window = ledger.sent_in_window(now, policy.velocity_window_secs);
    if window.saturating_add(sent) > policy.velocity_limit_sat {
        return refuse(
            &tags::VELOCITY_EXCEEDED,
            format!(
                "{sent} sat more would make {} sat in {} s, above {} sat",
                window.saturating_add(sent),
                policy.velocity_window_secs,
                policy.velocity_limit_sat
            ),
        );
    }

    let mut next = ledger.clone();
    next.prune(now, policy.velocity_window_secs);
    let minute = now / 60;
    let slot = next.sent_per_minute.entry(minute).or_insert(0);
    *slot = slot.saturating_add(sent);
    let wallet_inputs: Vec<String> = analysis
        .wallet_inputs
        .iter()
        .map(|i| i.outpoint.to_string())
        .collect();
    for outpoint in &wallet_inputs {
        next.reserved.insert(outpoint.clone(), intent.clone());
    }
    Verdict::Sign {
        ledger: next,
        intent: IntentState {
            intent: intent.clone(),
            txid,
            status: IntentStatus::Live,
            inputs,
            wallet_inputs,
            sent_sat: sent,
            fee_sat: analysis.fee_sat,
            signed_at: now,
            signings,
            signed: Vec::<SignedInput>::new(),
            abandoned: current.map(|c| c.abandoned.clone()).unwrap_or_default(),
        },
    }
}

/// Whether the outputs that are not the wallet's are exactly the declared
/// payments (as a multiset of script and amount).
fn pays_exactly(analysis: &Analysis, payments: &[Payment]) -> bool {
    let mut wanted: BTreeMap<(ScriptBuf, u64), usize> = BTreeMap::new();
    for p in payments {
        *wanted
            .entry((
                p.address.clone().assume_checked().script_pubkey(),
                p.amount_sat,
            ))
            .or_default() += 1;
    }
    for o in analysis.outputs.iter().filter(|o| !o.wallet) {
        match wanted.get_mut(&(o.script.clone(), o.value)) {
            Some(n) if *n > 0 => *n -= 1,
            _ => return false,
        }
    }
    wanted.values().all(|n| *n == 0)
}
