//! Mutual close (no pending HTLCs, to the wallet, consistent with the last
//! commitment) and the channel announcement (this channel's funding keys
//! and funding output).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod channel_support;

use bitcoin::hashes::{Hash as _, sha256d};
use bitcoin::secp256k1::{Message, PublicKey, SecretKey};
use channel_support::*;
use lightning::chain::transaction::OutPoint as LdkOutPoint;
use lightning::ln::chan_utils::ClosingTransaction;
use lightning::ln::msgs::UnsignedChannelAnnouncement;
use lightning::routing::gossip::NodeId;
use lightning::types::features::ChannelFeatures;
use lightning::util::ser::Writeable as _;
use tidemark_lightning::channel::{
    Announcement, ChannelKind, ChannelRequest, Closing, ClosingProposal,
};
use tidemark_lightning::tags;

fn close(to_holder: u64, to_counterparty: u64, script: bitcoin::ScriptBuf) -> ChannelRequest {
    ChannelRequest::SignClosing(Box::new(ClosingProposal {
        to_holder_sat: to_holder,
        to_counterparty_sat: to_counterparty,
        holder_script: script,
        counterparty_script: Channel::foreign_script(),
    }))
}

#[test]
fn a_mutual_close_to_the_wallet_is_signed_and_verifies() {
    let mut c = Channel::open(ChannelKind::AnchorsZeroFeeHtlcTx);
    c.advance(1);
    // The funder gets the commitment fee and anchors back, less the
    // closing fee.
    let (to_holder, to_counterparty) = (695_000, 300_000);
    let sig = signature(
        c.ask(close(to_holder, to_counterparty, c.wallet[0].clone()))
            .unwrap()
            .signed(),
    );
    let f = c.setup.funding_outpoint;
    let tx = ClosingTransaction::new(
        to_holder,
        to_counterparty,
        c.wallet[0].clone(),
        Channel::foreign_script(),
        LdkOutPoint {
            txid: f.txid,
            index: f.vout,
        }
        .into_bitcoin_outpoint(),
    );
    let sighash = tx.trust().get_sighash_all(&c.funding_script(), VALUE_SAT);
    c.secp
        .verify_ecdsa(&sighash, &sig, &c.setup.holder.funding_pubkey)
        .unwrap();
    assert_eq!(c.state().closed, Some(Closing::Mutual));
    // Fee negotiation: another proposal is signed too; no new commitment.
    c.ask(close(694_000, 300_000, c.wallet[0].clone()))
        .unwrap()
        .signed();
    c.sign_counterparty(2).refused(&tags::CHANNEL_CLOSED);
}

#[test]
fn close_pending_htlcs_no_mutual_close_while_htlcs_are_pending() {
    let mut c = Channel::open(ChannelKind::StaticRemoteKey);
    c.holder_sat -= 40_000;
    c.htlcs = vec![htlc(true, 40_000, HEIGHT + 10, 1)];
    c.advance(1);
    let detail = c
        .ask(close(650_000, 300_000, c.wallet[0].clone()))
        .unwrap()
        .refused(&tags::CLOSE_PENDING_HTLCS);
    assert!(detail.contains("2 HTLCs"), "{detail}");
    // The HTLC fails back: the holder has its 40,000 sat again.
    c.holder_sat += 40_000;
    c.htlcs.clear();
    c.advance(2);
    c.ask(close(695_000, 300_000, c.wallet[0].clone()))
        .unwrap()
        .signed();
}

#[test]
fn close_value_the_holder_keeps_its_balance_less_the_allowed_fee() {
    let mut c = Channel::open(ChannelKind::StaticRemoteKey);
    c.policy.max_close_fee_sat = 20_000;
    // Holder balance in the last commitments: 690,000 sat.
    let detail = c
        .ask(close(600_000, 390_000, c.wallet[0].clone()))
        .unwrap()
        .refused(&tags::CLOSE_VALUE);
    assert!(detail.contains("690000"), "{detail}");
    c.ask(close(700_000, 400_000, c.wallet[0].clone()))
        .unwrap()
        .refused(&tags::CLOSE_VALUE);
    c.ask(close(670_000, 300_000, c.wallet[0].clone()))
        .unwrap()
        .signed();
}

#[test]
fn destination_not_allowed_a_mutual_close_pays_the_wallet_or_the_allowlist() {
    let mut c = Channel::open(ChannelKind::StaticRemoteKey);
    c.ask(close(690_000, 300_000, Channel::foreign_script()))
        .unwrap()
        .refused(&tags::DESTINATION_NOT_ALLOWED);
    c.policy.allowlist.insert(Channel::foreign_script());
    c.ask(close(690_000, 300_000, Channel::foreign_script()))
        .unwrap()
        .signed();
}

fn node(tag: u8) -> PublicKey {
    PublicKey::from_secret_key(
        &bitcoin::secp256k1::Secp256k1::new(),
        &SecretKey::from_slice(&[tag; 32]).unwrap(),
    )
}

fn announcement(c: &Channel) -> Announcement {
    Announcement {
        features: Vec::new(),
        chain_hash: [0x6f; 32],
        short_channel_id: (800_000u64 << 40) | (5 << 16) | u64::from(c.setup.funding_outpoint.vout),
        node_id_1: node(3),
        node_id_2: node(4),
        bitcoin_key_1: c.setup.counterparty.funding_pubkey,
        bitcoin_key_2: c.setup.holder.funding_pubkey,
        excess_data: Vec::new(),
    }
}

#[test]
fn announcement_mismatch_only_this_channels_keys_and_output() {
    let mut c = Channel::open(ChannelKind::AnchorsZeroFeeHtlcTx);
    let mut foreign_key = announcement(&c);
    foreign_key.bitcoin_key_1 = node(5);
    c.ask(ChannelRequest::SignChannelAnnouncement(Box::new(
        foreign_key,
    )))
    .unwrap()
    .refused(&tags::ANNOUNCEMENT_MISMATCH);
    let mut other_output = announcement(&c);
    other_output.short_channel_id += 1;
    c.ask(ChannelRequest::SignChannelAnnouncement(Box::new(
        other_output,
    )))
    .unwrap()
    .refused(&tags::ANNOUNCEMENT_MISMATCH);

    let a = announcement(&c);
    let sig = signature(
        c.ask(ChannelRequest::SignChannelAnnouncement(Box::new(a.clone())))
            .unwrap()
            .signed(),
    );
    let message = UnsignedChannelAnnouncement {
        features: ChannelFeatures::empty(),
        chain_hash: bitcoin::constants::ChainHash::from(a.chain_hash),
        short_channel_id: a.short_channel_id,
        node_id_1: NodeId::from_pubkey(&a.node_id_1),
        node_id_2: NodeId::from_pubkey(&a.node_id_2),
        bitcoin_key_1: NodeId::from_pubkey(&a.bitcoin_key_1),
        bitcoin_key_2: NodeId::from_pubkey(&a.bitcoin_key_2),
        excess_data: Vec::new(),
    };
    let digest = sha256d::Hash::hash(&message.encode());
    c.secp
        .verify_ecdsa(
            &Message::from_digest(digest.to_byte_array()),
            &sig,
            &c.setup.holder.funding_pubkey,
        )
        .unwrap();
}
