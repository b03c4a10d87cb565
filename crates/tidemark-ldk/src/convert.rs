//! LDK's arguments to Tidemark's structured requests. Nothing here sends
//! a transaction to sign: commitments become their numbers, points,
//! balances, fee rate and HTLCs; spends become their parts; the signer
//! rebuilds what it signs.

use bitcoin::Transaction;
use lightning::ln::chan_utils::{
    ChannelTransactionParameters, CommitmentTransaction, HTLCOutputInCommitment,
};
use lightning::ln::msgs::UnsignedChannelAnnouncement;
use tidemark_lightning::channel::{
    Announcement, ChannelKeys, ChannelSetup, CommitmentData, CommitmentNumber, FundingOutpoint,
    Htlc, SpendTx,
};

/// Why LDK's arguments have no Tidemark request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unsupported(pub(crate) &'static str);

pub(crate) fn number(ldk_index: u64) -> Result<CommitmentNumber, Unsupported> {
    CommitmentNumber::from_ldk_index(ldk_index)
        .ok_or(Unsupported("a commitment index above 2^48-1"))
}

pub(crate) fn htlc(h: &HTLCOutputInCommitment) -> Htlc {
    Htlc {
        offered: h.offered,
        amount_msat: h.amount_msat,
        cltv_expiry: h.cltv_expiry,
        payment_hash: h.payment_hash.0,
    }
}

/// The content of a commitment LDK built.
pub(crate) fn commitment(tx: &CommitmentTransaction) -> Result<CommitmentData, Unsupported> {
    Ok(CommitmentData {
        number: number(tx.commitment_number())?,
        per_commitment_point: tx.per_commitment_point(),
        to_broadcaster_sat: tx.to_broadcaster_value_sat(),
        to_countersignatory_sat: tx.to_countersignatory_value_sat(),
        feerate_per_kw: tx.negotiated_feerate_per_kw(),
        htlcs: tx.nondust_htlcs().iter().map(htlc).collect(),
    })
}

/// The setup of a channel from LDK's populated parameters.
pub(crate) fn setup(
    channel_keys_id: [u8; 32],
    p: &ChannelTransactionParameters,
) -> Result<ChannelSetup, Unsupported> {
    if p.splice_parent_funding_txid.is_some() {
        return Err(Unsupported("splicing"));
    }
    let counterparty = p
        .counterparty_parameters
        .as_ref()
        .ok_or(Unsupported("parameters without the counterparty's"))?;
    let funding = p
        .funding_outpoint
        .ok_or(Unsupported("parameters without the funding outpoint"))?;
    Ok(ChannelSetup {
        channel_keys_id,
        holder: ChannelKeys::from_ldk(&p.holder_pubkeys),
        counterparty: ChannelKeys::from_ldk(&counterparty.pubkeys),
        holder_selected_contest_delay: p.holder_selected_contest_delay,
        counterparty_selected_contest_delay: counterparty.selected_contest_delay,
        funding_outpoint: FundingOutpoint {
            txid: funding.txid,
            vout: funding.index,
        },
        channel_type: p.channel_type_features.le_flags().to_vec(),
        channel_value_sat: p.channel_value_satoshis,
        is_outbound: p.is_outbound_from_holder,
    })
}

pub(crate) fn spend(tx: &Transaction) -> SpendTx {
    SpendTx::from_transaction(tx)
}

pub(crate) fn input(index: usize) -> Result<u32, Unsupported> {
    u32::try_from(index).map_err(|_| Unsupported("an input index above 2^32"))
}

pub(crate) fn announcement(msg: &UnsignedChannelAnnouncement) -> Result<Announcement, Unsupported> {
    let point = |id: &lightning::routing::gossip::NodeId| {
        id.as_pubkey()
            .map_err(|_| Unsupported("an announcement with an invalid key"))
    };
    let mut features = msg.features.le_flags().to_vec();
    features.reverse();
    Ok(Announcement {
        features,
        chain_hash: msg.chain_hash.to_bytes(),
        short_channel_id: msg.short_channel_id,
        node_id_1: point(&msg.node_id_1)?,
        node_id_2: point(&msg.node_id_2)?,
        bitcoin_key_1: point(&msg.bitcoin_key_1)?,
        bitcoin_key_2: point(&msg.bitcoin_key_2)?,
        excess_data: msg.excess_data.clone(),
    })
}
