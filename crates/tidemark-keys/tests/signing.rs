//! Signing through the public API: round trips, BIP32 and RFC 8032
//! vectors, CometBFT import, `Debug` secrecy, and refusals.

// Test code: a failed unwrap is a failed test (clippy.toml allows it in
// `#[test]` functions; this extends it to helpers and closures).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::str::FromStr as _;

use bitcoin::bip32::{Xpriv, Xpub};
use bitcoin::secp256k1::{self, Message, Secp256k1, XOnlyPublicKey, ecdsa, schnorr};
use ed25519_dalek::{Verifier as _, VerifyingKey};
use tidemark_core::{KeyBackend, KeyError, Scheme, SignMessage};
use tidemark_keys::{KdfParams, KeystoreError, SoftwareKeystore};

use common::*;

#[test]
fn round_trip_keeps_public_keys_and_signatures_verify() {
    let f = fixture();
    let mut store = new_store(&f.file);
    let ed = store.add_ed25519(id("val-1")).unwrap();
    let k1 = store
        .add_secp256k1(id("ln-node"), &path("m/84'/0'/0'/0/0"))
        .unwrap();
    let k2 = store.add_secp256k1(id("master"), &path("m")).unwrap();
    assert_eq!(ed.scheme, Scheme::Ed25519);
    assert_eq!(ed.bytes.len(), 32);
    assert_eq!(k1.bytes.len(), 33);
    assert_ne!(k1, k2);

    let reopened = SoftwareKeystore::open(&f.file, &pass("correct horse")).unwrap();
    assert_eq!(reopened.keys(), store.keys());
    assert_eq!(KeyBackend::keys(&reopened).unwrap(), store.keys());
    let names: Vec<_> = reopened.keys().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, [id("ln-node"), id("master"), id("val-1")]);
    assert_eq!(
        reopened.derivation_path(&id("ln-node")),
        Some(&path("m/84'/0'/0'/0/0"))
    );
    assert_eq!(reopened.derivation_path(&id("val-1")), None);

    // ed25519: verifies, and is deterministic across the reopen.
    let msg = b"block 7, round 0".to_vec();
    let sig = reopened
        .sign(&id("val-1"), &SignMessage::Ed25519(msg.clone()))
        .unwrap();
    let vk = VerifyingKey::from_bytes(&ed.bytes.clone().try_into().unwrap()).unwrap();
    vk.verify(&msg, &ed25519_dalek::Signature::from_slice(&sig.0).unwrap())
        .unwrap();
    assert_eq!(
        store
            .sign(&id("val-1"), &SignMessage::Ed25519(msg))
            .unwrap(),
        sig
    );

    // ECDSA over a sha256 digest: verifies, low-S, RFC 6979 deterministic.
    let secp = Secp256k1::verification_only();
    let digest = sha256d(b"commitment 42");
    let sig = reopened
        .sign(&id("ln-node"), &SignMessage::EcdsaDigest(digest))
        .unwrap();
    assert_eq!(sig.0.len(), 64);
    let parsed = ecdsa::Signature::from_compact(&sig.0).unwrap();
    let mut normalized = parsed;
    normalized.normalize_s();
    assert_eq!(normalized, parsed, "signature must be low-S");
    let pk = secp256k1::PublicKey::from_slice(&k1.bytes).unwrap();
    secp.verify_ecdsa(&Message::from_digest(digest), &parsed, &pk)
        .unwrap();
    assert_eq!(
        store
            .sign(&id("ln-node"), &SignMessage::EcdsaDigest(digest))
            .unwrap(),
        sig
    );

    // BIP340: verifies against the x-only key; fresh aux randomness.
    let digest = sha256d(b"taproot sighash");
    let sig_a = reopened
        .sign(&id("ln-node"), &SignMessage::SchnorrDigest(digest))
        .unwrap();
    let sig_b = reopened
        .sign(&id("ln-node"), &SignMessage::SchnorrDigest(digest))
        .unwrap();
    assert_ne!(sig_a, sig_b, "aux randomness must be fresh per signature");
    let xonly = XOnlyPublicKey::from_slice(&k1.bytes[1..]).unwrap();
    for sig in [sig_a, sig_b] {
        let sig = schnorr::Signature::from_slice(&sig.0).unwrap();
        secp.verify_schnorr(&sig, &Message::from_digest(digest), &xonly)
            .unwrap();
    }
}

#[test]
fn bip32_test_vector_1_through_the_keystore() {
    let f = fixture();
    let mut store = SoftwareKeystore::create_from_seed(
        &f.file,
        &pass("pw"),
        seed(BIP32_VECTOR_1_SEED),
        KdfParams::insecure_for_tests(),
    )
    .unwrap();
    let cases = [
        (
            "m/0'/1",
            "xpub6ASuArnXKPbfEwhqN6e3mwBcDTgzisQN1wXN9BJcM47sSikHjJf3UFHKkNAWbWMiGj7Wf5uMash7SyYq527Hqck2AxYysAA7xmALppuCkwQ",
        ),
        (
            "m/0h/1/2h/2/1000000000",
            "xpub6H1LXWLaKsWFhvm6RVpEL9P4KfRZSW7abD2ttkWP3SSQvnyA8FSVqNTEcYFgJS2UaFcxupHiYkro49S8yGasTvXEYBVPamhGW6cFJodrTHy",
        ),
    ];
    for (i, (p, xpub)) in cases.iter().enumerate() {
        let expected = Xpub::from_str(xpub).unwrap().public_key.serialize();
        let got = store.add_secp256k1(id(&format!("k{i}")), &path(p)).unwrap();
        assert_eq!(got.bytes, expected, "path {p}");
    }
    let reopened = SoftwareKeystore::open(&f.file, &pass("pw")).unwrap();
    assert_eq!(reopened.keys(), store.keys());
    assert_eq!(
        hex::encode(&reopened.public_key(&id("k0")).unwrap().bytes),
        "03501e454bf00751f24b1b489aa925215d66af2234e3891c3b21a52bedb3cd711c"
    );
}

#[test]
fn rfc8032_vectors_through_cometbft_import() {
    let f = fixture();
    let mut store = new_store(&f.file);
    for (name, secret, public, msg, signature) in [
        (
            "t1",
            RFC8032_1_SECRET,
            RFC8032_1_PUBLIC,
            "",
            RFC8032_1_SIGNATURE,
        ),
        (
            "t2",
            RFC8032_2_SECRET,
            RFC8032_2_PUBLIC,
            "72",
            RFC8032_2_SIGNATURE,
        ),
    ] {
        let pk = store
            .import_cometbft_key(id(name), &cometbft_json(secret, public))
            .unwrap();
        assert_eq!(hex::encode(&pk.bytes), public);
        let sig = store
            .sign(&id(name), &SignMessage::Ed25519(hex::decode(msg).unwrap()))
            .unwrap();
        assert_eq!(hex::encode(&sig.0), signature);
    }
    // The imported secrets survive a reopen.
    let reopened = SoftwareKeystore::open(&f.file, &pass("correct horse")).unwrap();
    let sig = reopened
        .sign(&id("t1"), &SignMessage::Ed25519(Vec::new()))
        .unwrap();
    assert_eq!(hex::encode(&sig.0), RFC8032_1_SIGNATURE);
}

#[test]
fn imports_the_example_key_from_the_cometbft_documentation() {
    // docs.cometbft.com/v1.0/references/config/priv_validator_key.json: a
    // file as CometBFT writes it, to pin the secret-then-public layout and
    // the address rule to the real thing.
    let json = r#"{
  "address": "E74FBE24164CFC4F88E311C3AC92E63D0DC310D8",
  "pub_key": {"type": "tendermint/PubKeyEd25519", "value": "UjxDQgVTlHJOZ7axpMl/iczMIJXiQpFxCFjwKGvzYqE="},
  "priv_key": {"type": "tendermint/PrivKeyEd25519",
    "value": "9giFjwnmAKCAI95l4Q32kXsau+itGrbsvz84CTLxGnJSPENCBVOUck5ntrGkyX+JzMwgleJCkXEIWPAoa/NioQ=="}
}"#;
    let f = fixture();
    let mut store = new_store(&f.file);
    let pk = store.import_cometbft_key(id("val"), json).unwrap();
    assert_eq!(
        b64(&pk.bytes),
        "UjxDQgVTlHJOZ7axpMl/iczMIJXiQpFxCFjwKGvzYqE="
    );
}

#[test]
fn inconsistent_or_foreign_cometbft_files_are_refused_without_echoing_the_secret() {
    let f = fixture();
    let mut store = new_store(&f.file);
    let good = cometbft_json(RFC8032_1_SECRET, RFC8032_1_PUBLIC);
    let secret_b64 = {
        let mut kp = hex::decode(RFC8032_1_SECRET).unwrap();
        kp.extend(hex::decode(RFC8032_1_PUBLIC).unwrap());
        b64(&kp)
    };
    let other_public_b64 = b64(&hex::decode(RFC8032_2_PUBLIC).unwrap());
    let own_public_b64 = b64(&hex::decode(RFC8032_1_PUBLIC).unwrap());
    let mut mismatched_half = hex::decode(RFC8032_1_SECRET).unwrap();
    mismatched_half.extend(hex::decode(RFC8032_2_PUBLIC).unwrap());
    let cases = [
        good.replace("PrivKeyEd25519", "PrivKeySecp256k1"),
        good.replace("PubKeyEd25519", "PubKeySecp256k1"),
        good.replace(&own_public_b64, &other_public_b64),
        good.replace(&secret_b64, &b64(&mismatched_half)),
        good.replace(&secret_b64, &secret_b64[..40]),
        good.replace(&secret_b64, &format!("{secret_b64}AAAA")),
        good.replace(&secret_b64, &secret_b64.replace('/', "*")),
        good.replace("\"address\": \"", "\"address\": \"00"),
        good.replace(&format!("\"{secret_b64}\""), "42"),
        good.replace(&format!("\"{secret_b64}\""), &format!("[\"{secret_b64}\"]")),
        format!("{good} trailing"),
        String::new(),
        "{}".to_owned(),
    ];
    for (i, json) in cases.iter().enumerate() {
        let err = store
            .import_cometbft_key(id("val"), json)
            .expect_err(&format!("case {i} must be refused"));
        assert!(
            matches!(err, KeystoreError::CometBftKey(_)),
            "case {i}: {err:?}"
        );
        let shown = format!("{err} {err:?}");
        for secret in [&secret_b64[..20], RFC8032_1_SECRET] {
            assert!(!shown.contains(secret), "case {i} leaks: {shown}");
        }
    }
    assert!(store.keys().is_empty());
    // A missing pub_key and address is fine: the secret carries its public half.
    let minimal =
        format!(r#"{{"priv_key":{{"type":"tendermint/PrivKeyEd25519","value":"{secret_b64}"}}}}"#);
    store.import_cometbft_key(id("val"), &minimal).unwrap();
}

#[test]
fn scheme_mismatch_and_unknown_key_are_refused() {
    let f = fixture();
    let mut store = new_store(&f.file);
    store.add_ed25519(id("ed")).unwrap();
    store.add_secp256k1(id("k1"), &path("m/0")).unwrap();
    let backend: &dyn KeyBackend = &store;
    let cases = [
        (
            "ed",
            SignMessage::EcdsaDigest([1; 32]),
            Scheme::Ed25519,
            "ecdsa",
        ),
        (
            "ed",
            SignMessage::SchnorrDigest([1; 32]),
            Scheme::Ed25519,
            "schnorr",
        ),
        (
            "k1",
            SignMessage::Ed25519(b"m".to_vec()),
            Scheme::Secp256k1,
            "ed25519",
        ),
    ];
    for (key, message, scheme, wanted) in cases {
        assert_eq!(
            backend.sign(&id(key), &message).unwrap_err(),
            KeyError::SchemeMismatch {
                key: key.to_owned(),
                scheme,
                wanted
            }
        );
    }
    assert_eq!(
        backend
            .sign(&id("nope"), &SignMessage::Ed25519(Vec::new()))
            .unwrap_err(),
        KeyError::UnknownKey("nope".to_owned())
    );
    assert_eq!(
        backend.public_key(&id("nope")).unwrap_err(),
        KeyError::UnknownKey("nope".to_owned())
    );
}

#[test]
fn duplicate_names_are_refused_and_change_nothing() {
    let f = fixture();
    let mut store = new_store(&f.file);
    let first = store.add_ed25519(id("k")).unwrap();
    let json = cometbft_json(RFC8032_1_SECRET, RFC8032_1_PUBLIC);
    let errs = [
        store.add_ed25519(id("k")).unwrap_err(),
        store.add_secp256k1(id("k"), &path("m/0")).unwrap_err(),
        store.import_cometbft_key(id("k"), &json).unwrap_err(),
    ];
    for err in errs {
        assert!(
            matches!(&err, KeystoreError::DuplicateKey(n) if n == &id("k")),
            "{err:?}"
        );
    }
    let reopened = SoftwareKeystore::open(&f.file, &pass("correct horse")).unwrap();
    assert_eq!(reopened.keys(), vec![(id("k"), first)]);
}

#[test]
fn debug_output_names_keys_and_never_shows_secrets() {
    let f = fixture();
    let seed_hex = "7f".repeat(32);
    let mut store = SoftwareKeystore::create_from_seed(
        &f.file,
        &pass("correct horse"),
        seed(&seed_hex),
        KdfParams::insecure_for_tests(),
    )
    .unwrap();
    store
        .import_cometbft_key(
            id("val"),
            &cometbft_json(RFC8032_1_SECRET, RFC8032_1_PUBLIC),
        )
        .unwrap();
    store.add_secp256k1(id("ln"), &path("m/0'/7")).unwrap();
    let secp = Secp256k1::new();
    let secp_secret =
        Xpriv::new_master(bitcoin::NetworkKind::Main, &hex::decode(&seed_hex).unwrap())
            .unwrap()
            .derive_priv(&secp, &path("m/0'/7"))
            .unwrap()
            .private_key
            .display_secret()
            .to_string();

    let reopened = SoftwareKeystore::open(&f.file, &pass("correct horse")).unwrap();
    for shown in [
        format!("{store:?}"),
        format!("{store:#?}"),
        format!("{reopened:?}"),
        format!("{:?}", store.keys()),
    ] {
        for secret in [
            &seed_hex,
            RFC8032_1_SECRET,
            secp_secret.as_str(),
            "correct horse",
        ] {
            assert!(!shown.contains(secret), "{shown} leaks {secret}");
        }
    }
    let shown = format!("{store:?}");
    assert!(
        shown.contains("val") && shown.contains(RFC8032_1_PUBLIC),
        "{shown}"
    );
    assert!(shown.contains("m/0'/7"), "{shown}");
}

#[test]
fn signs_from_many_threads_through_a_shared_backend() {
    let f = fixture();
    let mut store = new_store(&f.file);
    let pk = store.add_secp256k1(id("k"), &path("m/0'/0")).unwrap();
    let backend: std::sync::Arc<dyn KeyBackend> = std::sync::Arc::new(store);
    let pk = secp256k1::PublicKey::from_slice(&pk.bytes).unwrap();
    std::thread::scope(|s| {
        for t in 0..4u8 {
            let backend = backend.clone();
            s.spawn(move || {
                let secp = Secp256k1::verification_only();
                for i in 0..50u8 {
                    let digest = sha256d(&[t, i]);
                    let sig = backend
                        .sign(&id("k"), &SignMessage::EcdsaDigest(digest))
                        .unwrap();
                    let sig = ecdsa::Signature::from_compact(&sig.0).unwrap();
                    secp.verify_ecdsa(&Message::from_digest(digest), &sig, &pk)
                        .unwrap();
                }
            });
        }
    });
}

#[test]
fn the_seed_is_lent_for_in_process_derivation() {
    let f = fixture();
    let store = SoftwareKeystore::create_from_seed(
        &f.file,
        &pass("pw"),
        seed(BIP32_VECTOR_1_SEED),
        KdfParams::insecure_for_tests(),
    )
    .unwrap();
    let len = store.with_seed_for_derivation(|s| {
        assert_eq!(hex::encode(s), BIP32_VECTOR_1_SEED);
        s.len()
    });
    assert_eq!(len, 16);
}

#[test]
fn account_keys_sign_with_their_unhardened_children_and_taproot_tweaks() {
    use bitcoin::bip32::{ChildNumber, Fingerprint};
    use bitcoin::key::TapTweak as _;
    use tidemark_core::ChildPath;

    let secp = Secp256k1::new();
    let f = fixture();
    let mut store = SoftwareKeystore::create_from_seed(
        &f.file,
        &pass("pw"),
        seed(BIP32_VECTOR_1_SEED),
        KdfParams::insecure_for_tests(),
    )
    .unwrap();
    store
        .add_secp256k1(id("wallet"), &path("m/84'/1'/0'"))
        .unwrap();

    // The extended public key is the one BIP32 gives for that path.
    let master = Xpriv::new_master(
        bitcoin::NetworkKind::Test,
        &hex::decode(BIP32_VECTOR_1_SEED).unwrap(),
    )
    .unwrap();
    let account = Xpub::from_priv(
        &secp,
        &master.derive_priv(&secp, &path("m/84'/1'/0'")).unwrap(),
    );
    let xpub = store.extended_public_key(&id("wallet")).unwrap();
    assert_eq!(xpub.public_key, account.public_key.serialize());
    assert_eq!(xpub.chain_code, account.chain_code.to_bytes());
    assert_eq!(
        Fingerprint::from(xpub.master_fingerprint),
        master.fingerprint(&secp)
    );
    assert_eq!(
        Fingerprint::from(xpub.parent_fingerprint),
        account.parent_fingerprint
    );
    assert_eq!(
        xpub.path,
        [0x8000_0054, 0x8000_0001, 0x8000_0000],
        "hardened child numbers carry the top bit"
    );

    let digest = [0x5au8; 32];
    for (branch, index) in [(0u32, 0u32), (1, 7), (0, 2_147_483_647)] {
        let child_path = ChildPath::new(vec![branch, index]).unwrap();
        let child = account
            .derive_pub(
                &secp,
                &[
                    ChildNumber::from_normal_idx(branch).unwrap(),
                    ChildNumber::from_normal_idx(index).unwrap(),
                ],
            )
            .unwrap()
            .public_key;

        let sig = store
            .sign(
                &id("wallet"),
                &SignMessage::ChildEcdsaDigest {
                    path: child_path.clone(),
                    digest,
                },
            )
            .unwrap();
        let sig = ecdsa::Signature::from_compact(&sig.0).unwrap();
        secp.verify_ecdsa(&Message::from_digest(digest), &sig, &child)
            .unwrap();
        // Not the account key's own signature.
        assert!(
            secp.verify_ecdsa(&Message::from_digest(digest), &sig, &account.public_key)
                .is_err()
        );

        for merkle_root in [None, Some([7u8; 32])] {
            let sig = store
                .sign(
                    &id("wallet"),
                    &SignMessage::TaprootKeySpend {
                        path: child_path.clone(),
                        merkle_root,
                        digest,
                    },
                )
                .unwrap();
            let internal = XOnlyPublicKey::from(child);
            let root = merkle_root.map(|r| {
                use bitcoin::hashes::Hash as _;
                bitcoin::TapNodeHash::from_byte_array(r)
            });
            let (output_key, _) = internal.tap_tweak(&secp, root);
            let sig = schnorr::Signature::from_slice(&sig.0).unwrap();
            secp.verify_schnorr(
                &sig,
                &Message::from_digest(digest),
                &output_key.to_x_only_public_key(),
            )
            .unwrap();
            assert!(
                secp.verify_schnorr(&sig, &Message::from_digest(digest), &internal)
                    .is_err(),
                "a key-path spend is signed by the tweaked key"
            );
        }
    }

    // An ed25519 key has no extended key and no children.
    store.add_ed25519(id("val")).unwrap();
    assert!(matches!(
        store.extended_public_key(&id("val")),
        Err(KeyError::NotExtended(_))
    ));
    assert!(matches!(
        store.sign(
            &id("val"),
            &SignMessage::ChildEcdsaDigest {
                path: ChildPath::new(vec![0, 0]).unwrap(),
                digest,
            },
        ),
        Err(KeyError::SchemeMismatch { .. })
    ));
    // Hardened or too deep paths cannot even be expressed.
    assert!(ChildPath::new(vec![0x8000_0000]).is_none());
    assert!(ChildPath::new(vec![0; 9]).is_none());
}
