//! Node operations against LDK's `KeysManager` (byte-equal where LDK is
//! deterministic, verified where it uses auxiliary randomness) and the
//! refusals `KeysManager` does not make.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bitcoin::constants::ChainHash;
use bitcoin::hashes::{Hash, sha256};
use bitcoin::secp256k1::{Message, Secp256k1, SecretKey, XOnlyPublicKey};
use bitcoin::{Network, Txid};
use lightning::blinded_path::BlindedHop;
use lightning::blinded_path::payment::{BlindedPayInfo, BlindedPaymentPath};
use lightning::bolt11_invoice::{Currency, InvoiceBuilder, PaymentSecret};
use lightning::ln::msgs::{
    UnsignedChannelAnnouncement, UnsignedChannelUpdate, UnsignedNodeAnnouncement,
};
use lightning::offers::refund::RefundBuilder;
use lightning::routing::gossip::NodeAlias;
use lightning::sign::KeysManager;
use lightning::types::features::{BlindedHopFeatures, ChannelFeatures, NodeFeatures};
use lightning::types::payment::PaymentHash;
use lightning::util::message_signing;

use super::*;
use crate::keys::RemoteKeyDerivation;

mod sweeps;

const SEEDS: [[u8; 32]; 3] = [[0; 32], [0x42; 32], [0xfe; 32]];

fn pair(seed: &[u8; 32]) -> (NodeKeys, KeysManager) {
    (
        NodeKeys::with_entropy_start(seed, RemoteKeyDerivation::V2, 10, 20).unwrap(),
        KeysManager::new(seed, 30, 40, true),
    )
}

fn other_key(byte: u8) -> PublicKey {
    PublicKey::from_secret_key(
        &Secp256k1::new(),
        &SecretKey::from_slice(&[byte; 32]).unwrap(),
    )
}

fn raw_invoice() -> RawBolt11Invoice {
    InvoiceBuilder::new(Currency::Regtest)
        .description("tidemark".to_owned())
        .payment_hash(sha256::Hash::hash(b"preimage"))
        .payment_secret(PaymentSecret([7; 32]))
        .duration_since_epoch(Duration::from_secs(1_750_000_000))
        .min_final_cltv_expiry_delta(144)
        .build_raw()
        .unwrap()
}

fn channel_update() -> UnsignedChannelUpdate {
    UnsignedChannelUpdate {
        chain_hash: ChainHash::using_genesis_block(Network::Regtest),
        short_channel_id: 42 << 40 | 1 << 16 | 1,
        timestamp: 1_750_000_000,
        message_flags: 1,
        channel_flags: 0,
        cltv_expiry_delta: 144,
        htlc_minimum_msat: 1000,
        htlc_maximum_msat: 100_000_000,
        fee_base_msat: 1000,
        fee_proportional_millionths: 100,
        excess_data: Vec::new(),
    }
}

fn node_announcement(node: PublicKey) -> UnsignedNodeAnnouncement {
    UnsignedNodeAnnouncement {
        features: NodeFeatures::empty(),
        timestamp: 1_750_000_000,
        node_id: NodeId::from_pubkey(&node),
        rgb: [1, 2, 3],
        alias: NodeAlias(*b"tidemark-test-node.............."),
        addresses: Vec::new(),
        excess_address_data: Vec::new(),
        excess_data: Vec::new(),
    }
}

fn channel_announcement(a: PublicKey, b: PublicKey) -> UnsignedChannelAnnouncement {
    UnsignedChannelAnnouncement {
        features: ChannelFeatures::empty(),
        chain_hash: ChainHash::using_genesis_block(Network::Regtest),
        short_channel_id: 42 << 40 | 1 << 16 | 1,
        node_id_1: NodeId::from_pubkey(&a),
        node_id_2: NodeId::from_pubkey(&b),
        bitcoin_key_1: NodeId::from_pubkey(&other_key(0x31)),
        bitcoin_key_2: NodeId::from_pubkey(&other_key(0x32)),
        excess_data: Vec::new(),
    }
}

fn bolt12_invoice(signing_pubkey: PublicKey) -> UnsignedBolt12Invoice {
    let refund = RefundBuilder::new(vec![1; 32], other_key(0x21), 50_000)
        .unwrap()
        .build()
        .unwrap();
    let payinfo = BlindedPayInfo {
        fee_base_msat: 1,
        fee_proportional_millionths: 1,
        cltv_expiry_delta: 40,
        htlc_minimum_msat: 1,
        htlc_maximum_msat: 100_000_000,
        features: BlindedHopFeatures::empty(),
    };
    let hop = BlindedHop {
        blinded_node_id: other_key(0x22),
        encrypted_payload: vec![0; 32],
    };
    let path = BlindedPaymentPath::from_blinded_path_and_payinfo(
        other_key(0x23),
        other_key(0x24),
        vec![hop],
        payinfo,
    );
    refund
        .respond_with_no_std(
            vec![path],
            PaymentHash([5; 32]),
            signing_pubkey,
            Duration::from_secs(1_750_000_000),
        )
        .unwrap()
        .build()
        .unwrap()
}

#[test]
fn node_id_matches_and_phantom_is_refused() {
    for seed in &SEEDS {
        let (ours, ldk) = pair(seed);
        assert_eq!(
            ours.node_id_for(Recipient::Node).unwrap(),
            ldk.get_node_id(Recipient::Node).unwrap()
        );
        assert_eq!(
            ours.node_id_for(Recipient::PhantomNode),
            Err(NodeError::PhantomNotSupported {
                operation: "node id"
            })
        );
    }
}

#[test]
fn ecdh_matches_keys_manager_with_and_without_tweak() {
    let tweak = Scalar::from_be_bytes([3; 32]).unwrap();
    for seed in &SEEDS {
        let (ours, ldk) = pair(seed);
        for other in [other_key(1), other_key(2)] {
            for t in [None, Some(&tweak)] {
                assert_eq!(
                    ours.ecdh(Recipient::Node, &other, t).unwrap(),
                    ldk.ecdh(Recipient::Node, &other, t).unwrap()
                );
            }
        }
    }
}

#[test]
fn ecdh_refuses_a_zero_tweak_and_phantom_nodes() {
    let (ours, _) = pair(&SEEDS[1]);
    assert_eq!(
        ours.ecdh(Recipient::Node, &other_key(1), Some(&Scalar::ZERO)),
        Err(NodeError::InvalidTweak)
    );
    assert!(matches!(
        ours.ecdh(Recipient::PhantomNode, &other_key(1), None),
        Err(NodeError::PhantomNotSupported { .. })
    ));
}

#[test]
fn bolt11_invoice_signatures_are_byte_equal_and_recover_the_node_id() {
    let invoice = raw_invoice();
    let secp = Secp256k1::new();
    for seed in &SEEDS {
        let (ours, ldk) = pair(seed);
        let sig = ours.sign_invoice(&invoice, Recipient::Node).unwrap();
        assert_eq!(sig, ldk.sign_invoice(&invoice, Recipient::Node).unwrap());
        let digest = Message::from_digest(invoice.signable_hash());
        assert_eq!(secp.recover_ecdsa(&digest, &sig).unwrap(), ours.node_id());
        assert!(matches!(
            ours.sign_invoice(&invoice, Recipient::PhantomNode),
            Err(NodeError::PhantomNotSupported { .. })
        ));
    }
}

#[test]
fn gossip_signatures_are_byte_equal() {
    for seed in &SEEDS {
        let (ours, ldk) = pair(seed);
        let update = channel_update();
        let node = node_announcement(ours.node_id());
        let first = channel_announcement(ours.node_id(), other_key(9));
        let second = channel_announcement(other_key(9), ours.node_id());
        let message = |i| match i {
            0 => UnsignedGossipMessage::ChannelUpdate(&update),
            1 => UnsignedGossipMessage::NodeAnnouncement(&node),
            2 => UnsignedGossipMessage::ChannelAnnouncement(&first),
            _ => UnsignedGossipMessage::ChannelAnnouncement(&second),
        };
        for i in 0..4 {
            let theirs = ldk.sign_gossip_message(message(i)).unwrap();
            assert_eq!(ours.sign_gossip_message(message(i)).unwrap(), theirs);
        }
    }
}

#[test]
fn gossip_for_another_node_is_refused() {
    let (ours, _) = pair(&SEEDS[0]);
    let node = node_announcement(other_key(9));
    assert_eq!(
        ours.sign_gossip_message(UnsignedGossipMessage::NodeAnnouncement(&node)),
        Err(NodeError::ForeignGossip {
            message: "node announcement"
        })
    );
    let channel = channel_announcement(other_key(8), other_key(9));
    assert!(matches!(
        ours.sign_gossip_message(UnsignedGossipMessage::ChannelAnnouncement(&channel)),
        Err(NodeError::ForeignGossip {
            message: "channel announcement"
        })
    ));
}

#[test]
fn message_signatures_are_byte_equal_and_verify() {
    for seed in &SEEDS {
        let (ours, ldk) = pair(seed);
        for message in [&b""[..], b"hello tidemark", &[0xff; 300]] {
            let sig = ours.sign_message(message).unwrap();
            assert_eq!(sig, ldk.sign_message(message).unwrap());
            assert!(message_signing::verify(message, &sig, &ours.node_id()));
        }
    }
}

#[test]
fn bolt12_invoice_signatures_verify_under_the_node_id_like_keys_managers() {
    // Both sign with BIP 340 auxiliary randomness from their entropy
    // streams, so the bytes differ; both must verify under the node id.
    let secp = Secp256k1::new();
    for seed in &SEEDS {
        let (ours, ldk) = pair(seed);
        let invoice = bolt12_invoice(ours.node_id());
        let digest = invoice.tagged_hash().as_digest();
        let key = XOnlyPublicKey::from(ours.node_id());
        let mine = ours.sign_bolt12_invoice(&invoice).unwrap();
        let theirs = ldk.sign_bolt12_invoice(&invoice).unwrap();
        secp.verify_schnorr(&mine, digest, &key).unwrap();
        secp.verify_schnorr(&theirs, digest, &key).unwrap();
    }
}

#[test]
fn bolt12_invoices_for_another_signing_key_are_refused() {
    let (ours, ldk) = pair(&SEEDS[2]);
    let invoice = bolt12_invoice(other_key(0x55));
    assert_eq!(
        ours.sign_bolt12_invoice(&invoice),
        Err(NodeError::ForeignSigningKey {
            signing_pubkey: other_key(0x55)
        })
    );
    // KeysManager signs it anyway, with a key the invoice does not name.
    assert!(ldk.sign_bolt12_invoice(&invoice).is_ok());
}

#[test]
fn static_keys_match_keys_manager() {
    for seed in &SEEDS {
        let (ours, ldk) = pair(seed);
        assert_eq!(ours.expanded_key(), ldk.get_expanded_key());
        assert_eq!(
            ExpandedKey::new(*ours.inbound_payment_key_material()),
            ldk.get_expanded_key()
        );
        assert!(ours.peer_storage_key() == ldk.get_peer_storage_key());
        assert!(ours.receive_auth_key() == ldk.get_receive_auth_key());
    }
}

#[test]
fn random_bytes_never_repeat() {
    let (ours, _) = pair(&SEEDS[0]);
    let draws: std::collections::HashSet<[u8; 32]> =
        (0..64).map(|_| ours.secure_random_bytes()).collect();
    assert_eq!(draws.len(), 64);
}

fn txid(byte: u8) -> Txid {
    Txid::from_byte_array([byte; 32])
}
