//! NodeKeys against LDK's own `KeysManager`: every key a node moving its
//! seed into Tidemark relies on must come out identical. The
//! `KeysManager` here always has a different starting time than the
//! `NodeKeys`, which is the point: the starting time must not matter.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bitcoin::secp256k1::Secp256k1;
use lightning::sign::{
    ChannelSigner, EntropySource, KeysManager, NodeSigner, Recipient, SignerProvider,
};
use proptest::prelude::*;

use super::*;

const SEEDS: [[u8; 32]; 4] = [[0; 32], [1; 32], [0xff; 32], {
    let mut s = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        s[i] = i as u8 * 7 + 3;
        i += 1;
    }
    s
}];

fn ids(ldk: &KeysManager) -> Vec<[u8; 32]> {
    vec![
        [0; 32],
        [0xff; 32],
        channel_keys_id(0, 0),
        channel_keys_id(1, 42),
        channel_keys_id((1 << 32) + 5, u128::MAX),
        channel_keys_id(u64::MAX, 1),
        // An id KeysManager itself issued (as for a channel opened before
        // the node moved to Tidemark).
        ldk.generate_channel_keys_id(false, 7),
        ldk.generate_channel_keys_id(true, 8),
    ]
}

const DERIVATIONS: [RemoteKeyDerivation; 2] = [RemoteKeyDerivation::V1, RemoteKeyDerivation::V2];

const INDEXES: [u64; 6] = [
    MAX_COMMITMENT_INDEX,
    MAX_COMMITMENT_INDEX - 1,
    MAX_COMMITMENT_INDEX - 1000,
    0xaaa_aaaa_aaaa,
    1,
    0,
];

fn pair(seed: &[u8; 32], derivation: RemoteKeyDerivation) -> (NodeKeys, KeysManager) {
    let ours = NodeKeys::with_entropy_start(seed, derivation, 1, 2).unwrap();
    let ldk = KeysManager::new(
        seed,
        1_750_000_000,
        987_654_321,
        derivation == RemoteKeyDerivation::V2,
    );
    (ours, ldk)
}

fn assert_node_keys_match(ours: &NodeKeys, ldk: &KeysManager) {
    assert_eq!(ours.node_id(), ldk.get_node_id(Recipient::Node).unwrap());
    assert_eq!(
        ours.node_id(),
        PublicKey::from_secret_key(&Secp256k1::new(), &ldk.get_node_secret_key())
    );
    assert_eq!(ours.manager().get_expanded_key(), ldk.get_expanded_key());
    assert!(ours.manager().get_peer_storage_key() == ldk.get_peer_storage_key());
    assert!(ours.manager().get_receive_auth_key() == ldk.get_receive_auth_key());
    assert_eq!(
        ours.destination_script(),
        ldk.get_destination_script([9; 32]).unwrap().as_script()
    );
    let ldk_shutdown = ldk.get_shutdown_scriptpubkey().unwrap();
    assert!(ours.shutdown_script() == ldk_shutdown);
    assert_eq!(
        Some(&ours.shutdown_pubkey()),
        ldk_shutdown.as_legacy_pubkey()
    );
    assert!(ours.is_own_script(ours.destination_script()));
    assert!(ours.is_own_script(&ldk_shutdown.into_inner()));
}

fn assert_channel_keys_match(ours: &NodeKeys, ldk: &KeysManager, id: [u8; 32]) {
    let secp = Secp256k1::new();
    let mine = ours.channel_signer(id);
    let theirs = ldk.derive_channel_signer(id);
    // InMemorySigner's PartialEq compares every secret (funding,
    // revocation, both payment keys, delayed payment, HTLC), the
    // commitment seed, the remote-key flag and the id.
    assert!(mine == theirs, "channel secrets differ for id {id:02x?}");
    assert_eq!(mine.channel_keys_id(), id);
    let pubkeys = ours.channel_public_keys(id);
    assert_eq!(pubkeys, theirs.pubkeys(&secp));
    assert_eq!(pubkeys.funding_pubkey, mine.pubkeys(&secp).funding_pubkey);
    for index in INDEXES {
        assert_eq!(
            per_commitment_point(&mine, index, &secp).unwrap(),
            theirs.get_per_commitment_point(index, &secp).unwrap(),
        );
        assert_eq!(
            per_commitment_secret(&mine, index).unwrap().secret_bytes(),
            theirs.release_commitment_secret(index).unwrap(),
        );
    }
}

#[test]
fn node_keys_equal_keys_manager_for_fixed_seeds() {
    for seed in &SEEDS {
        for derivation in DERIVATIONS {
            let (ours, ldk) = pair(seed, derivation);
            assert_node_keys_match(&ours, &ldk);
        }
    }
}

#[test]
fn channel_keys_equal_keys_manager_for_fixed_seeds_and_ids() {
    for seed in &SEEDS {
        for derivation in DERIVATIONS {
            let (ours, ldk) = pair(seed, derivation);
            for id in ids(&ldk) {
                assert_channel_keys_match(&ours, &ldk, id);
            }
        }
    }
}

#[test]
fn the_remote_key_derivation_changes_only_the_payment_point() {
    let (v1, _) = pair(&SEEDS[3], RemoteKeyDerivation::V1);
    let (v2, _) = pair(&SEEDS[3], RemoteKeyDerivation::V2);
    assert_eq!(v1.node_id(), v2.node_id());
    let id = channel_keys_id(3, 3);
    let (a, b) = (v1.channel_public_keys(id), v2.channel_public_keys(id));
    assert_ne!(a.payment_point, b.payment_point);
    assert_eq!(a.funding_pubkey, b.funding_pubkey);
    assert_eq!(a.revocation_basepoint, b.revocation_basepoint);
    assert_eq!(a.delayed_payment_basepoint, b.delayed_payment_basepoint);
    assert_eq!(a.htlc_basepoint, b.htlc_basepoint);
}

#[test]
fn distinct_ids_give_distinct_channel_keys() {
    let (ours, _) = pair(&SEEDS[1], RemoteKeyDerivation::V2);
    let a = ours.channel_public_keys(channel_keys_id(0, 5));
    let b = ours.channel_public_keys(channel_keys_id(1, 5));
    let c = ours.channel_public_keys(channel_keys_id(1 << 32, 5));
    assert_ne!(a.funding_pubkey, b.funding_pubkey);
    assert_ne!(a.funding_pubkey, c.funding_pubkey);
    assert_ne!(b.funding_pubkey, c.funding_pubkey);
}

#[test]
fn the_entropy_start_changes_the_random_stream_but_no_key() {
    let a = NodeKeys::with_entropy_start(&SEEDS[2], RemoteKeyDerivation::V1, 1, 2).unwrap();
    let b = NodeKeys::with_entropy_start(&SEEDS[2], RemoteKeyDerivation::V1, 1, 3).unwrap();
    let (ra, rb) = (
        a.manager().get_secure_random_bytes(),
        b.manager().get_secure_random_bytes(),
    );
    assert_ne!(ra, rb);
    assert_ne!(ra, a.manager().get_secure_random_bytes());
    assert_eq!(a.node_id(), b.node_id());
    assert!(a.channel_signer([4; 32]) == b.channel_signer([4; 32]));
    // Two fresh instances never share a stream.
    let c = NodeKeys::new(&SEEDS[2], RemoteKeyDerivation::V1).unwrap();
    let d = NodeKeys::new(&SEEDS[2], RemoteKeyDerivation::V1).unwrap();
    assert_ne!(
        c.manager().get_secure_random_bytes(),
        d.manager().get_secure_random_bytes()
    );
}

#[test]
fn commitment_indexes_past_48_bits_are_refused_not_aliased() {
    let (ours, _) = pair(&SEEDS[0], RemoteKeyDerivation::V1);
    let signer = ours.channel_signer([1; 32]);
    let secp = Secp256k1::new();
    for index in [MAX_COMMITMENT_INDEX + 1, 1 << 48 | 5, u64::MAX] {
        assert!(matches!(
            per_commitment_secret(&signer, index),
            Err(KeysError::CommitmentIndexOutOfRange { index: i }) if i == index
        ));
        assert!(per_commitment_point(&signer, index, &secp).is_err());
    }
    // What LDK would have done: index 2^48 + 5 is silently index 5.
    assert_eq!(
        chan_utils::build_commitment_secret(&signer.commitment_seed, 1 << 48 | 5),
        chan_utils::build_commitment_secret(&signer.commitment_seed, 5)
    );
}

#[test]
fn debug_shows_the_node_id_and_no_secret() {
    let (ours, ldk) = pair(&SEEDS[3], RemoteKeyDerivation::V2);
    let shown = format!("{ours:?}");
    assert!(shown.contains(&ours.node_id().to_string()));
    let secret = ldk.get_node_secret_key().display_secret().to_string();
    assert!(!shown.contains(&secret));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_seeds_and_ids_derive_like_keys_manager(
        seed in any::<[u8; 32]>(),
        id in any::<[u8; 32]>(),
        counter in any::<u64>(),
        user_channel_id in any::<u128>(),
        v2 in any::<bool>(),
        index in 0..=MAX_COMMITMENT_INDEX,
        secs in any::<u64>(),
        nanos in any::<u32>(),
    ) {
        let derivation = if v2 { RemoteKeyDerivation::V2 } else { RemoteKeyDerivation::V1 };
        let ours = NodeKeys::with_entropy_start(&seed, derivation, secs, nanos).unwrap();
        let ldk = KeysManager::new(&seed, secs.wrapping_add(1), nanos, v2);
        assert_node_keys_match(&ours, &ldk);
        let secp = Secp256k1::new();
        for id in [id, channel_keys_id(counter, user_channel_id)] {
            let mine = ours.channel_signer(id);
            let theirs = ldk.derive_channel_signer(id);
            prop_assert!(mine == theirs);
            prop_assert_eq!(ours.channel_public_keys(id), theirs.pubkeys(&secp));
            prop_assert_eq!(
                per_commitment_point(&mine, index, &secp).unwrap(),
                theirs.get_per_commitment_point(index, &secp).unwrap()
            );
        }
    }
}
