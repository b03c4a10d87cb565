//! Mutual close and the channel announcement.
//!
//! A mutual close is signed only when no commitment has HTLCs
//! (`policy-close-pending-htlcs`), pays the holder's output to the wallet
//! or the allowlist (`policy-destination-not-allowed`), and pays the
//! holder no less than its balance in the last commitments minus the
//! allowed fee (`policy-close-value`). It marks the channel closed: no new
//! commitment is signed after it.

use bitcoin::constants::ChainHash;
use lightning::chain::transaction::OutPoint as LdkOutPoint;
use lightning::ln::chan_utils::ClosingTransaction;
use lightning::ln::msgs::UnsignedChannelAnnouncement;
use lightning::routing::gossip::NodeId;
use lightning::types::features::ChannelFeatures;

use crate::channel::decide::{Rules, Stop, refuse};
use crate::channel::request::{Announcement, ClosingProposal};
use crate::channel::state::{ChannelState, Closing};
use crate::channel::verdict::{Operation, Verdict};
use crate::tags;

/// Decides a mutual close proposal.
pub(crate) fn closing(
    rules: Rules<'_>,
    state: &ChannelState,
    proposal: &ClosingProposal,
) -> Result<Verdict, Stop> {
    let Some(holder) = state.holder.current.as_ref() else {
        return refuse(
            &tags::CLOSE_VALUE,
            "no holder commitment was validated: there is no balance to close on".into(),
        );
    };
    let counterparty = state.counterparty.newest();
    let pending =
        holder.commitment.htlcs.len() as u64 + counterparty.map_or(0, |c| u64::from(c.htlc_count));
    if pending > 0 {
        return refuse(
            &tags::CLOSE_PENDING_HTLCS,
            format!("{pending} HTLCs are pending in the newest commitments"),
        );
    }
    let total = proposal
        .to_holder_sat
        .checked_add(proposal.to_counterparty_sat)
        .filter(|t| *t <= state.setup.channel_value_sat);
    if total.is_none() {
        return refuse(
            &tags::CLOSE_VALUE,
            format!(
                "the outputs ({} + {} sat) exceed the channel's {} sat",
                proposal.to_holder_sat, proposal.to_counterparty_sat, state.setup.channel_value_sat
            ),
        );
    }
    if proposal.to_holder_sat > 0 && !rules.is_ours(&proposal.holder_script) {
        return refuse(
            &tags::DESTINATION_NOT_ALLOWED,
            format!(
                "the holder's output pays {}, which is neither the wallet's nor allowlisted",
                proposal.holder_script.to_hex_string()
            ),
        );
    }
    let balance = counterparty.map_or(holder.commitment.to_broadcaster_sat, |c| {
        c.to_holder_sat.min(holder.commitment.to_broadcaster_sat)
    });
    let fee = rules.policy.max_close_fee_sat;
    if proposal.to_holder_sat.saturating_add(fee) < balance {
        return refuse(
            &tags::CLOSE_VALUE,
            format!(
                "the close pays the holder {} sat; its balance is {balance} sat and at most \
                 {fee} sat may go to fees",
                proposal.to_holder_sat
            ),
        );
    }
    let funding = state.setup.funding_outpoint;
    let tx = ClosingTransaction::new(
        proposal.to_holder_sat,
        proposal.to_counterparty_sat,
        proposal.holder_script.clone(),
        proposal.counterparty_script.clone(),
        LdkOutPoint {
            txid: funding.txid,
            index: funding.vout,
        }
        .into_bitcoin_outpoint(),
    );
    let next = state.closed.is_none().then(|| {
        let mut next = state.clone();
        next.closed = Some(Closing::Mutual);
        next
    });
    Ok(rules.sign(next, Operation::SignClosing(tx)))
}

/// Decides the funding-key signature of a channel announcement.
pub(crate) fn announcement(
    rules: Rules<'_>,
    state: &ChannelState,
    a: &Announcement,
) -> Result<Verdict, Stop> {
    let ours = [
        state.setup.holder.funding_pubkey,
        state.setup.counterparty.funding_pubkey,
    ];
    let keys_match = (a.bitcoin_key_1 == ours[0] && a.bitcoin_key_2 == ours[1])
        || (a.bitcoin_key_1 == ours[1] && a.bitcoin_key_2 == ours[0]);
    if !keys_match {
        return refuse(
            &tags::ANNOUNCEMENT_MISMATCH,
            "the announced funding keys are not this channel's".into(),
        );
    }
    let vout = a.short_channel_id & 0xffff;
    if vout != u64::from(state.setup.funding_outpoint.vout) {
        return refuse(
            &tags::ANNOUNCEMENT_MISMATCH,
            format!(
                "the short channel id names output {vout}; the funding output is {}",
                state.setup.funding_outpoint.vout
            ),
        );
    }
    let message = UnsignedChannelAnnouncement {
        features: ChannelFeatures::from_be_bytes(a.features.clone()),
        chain_hash: ChainHash::from(a.chain_hash),
        short_channel_id: a.short_channel_id,
        node_id_1: NodeId::from_pubkey(&a.node_id_1),
        node_id_2: NodeId::from_pubkey(&a.node_id_2),
        bitcoin_key_1: NodeId::from_pubkey(&a.bitcoin_key_1),
        bitcoin_key_2: NodeId::from_pubkey(&a.bitcoin_key_2),
        excess_data: a.excess_data.clone(),
    };
    Ok(rules.sign(None, Operation::SignChannelAnnouncement(message)))
}
