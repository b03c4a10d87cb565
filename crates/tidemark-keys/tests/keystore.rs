//! The software keystore through its public API: round trips, known
//! vectors, tampering, file modes, secrecy of `Debug`, and refusals.

// Test code: a failed unwrap is a failed test (clippy.toml allows it in
// `#[test]` functions; this extends it to the helpers below).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use base64ct::{Base64, Encoding as _};
use bitcoin::bip32::{DerivationPath, Xpriv, Xpub};
use bitcoin::hashes::{Hash as _, sha256};
use bitcoin::secp256k1::{self, Message, Secp256k1, XOnlyPublicKey, ecdsa, schnorr};
use ed25519_dalek::{Verifier as _, VerifyingKey};
use secrecy::{SecretSlice, SecretString};
use tempfile::TempDir;
use tidemark_core::{KeyBackend, KeyError, KeyId, Scheme, SignMessage};
use tidemark_keys::{KdfParams, KeystoreError, SoftwareKeystore};

const BIP32_VECTOR_1_SEED: &str = "000102030405060708090a0b0c0d0e0f";

/// RFC 8032 section 7.1, TEST 1 (empty message) and TEST 2 (one byte).
const RFC8032_1_SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const RFC8032_1_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const RFC8032_1_SIGNATURE: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
const RFC8032_2_SECRET: &str = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";
const RFC8032_2_PUBLIC: &str = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
const RFC8032_2_SIGNATURE: &str = "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00";

fn pass(s: &str) -> SecretString {
    SecretString::from(s)
}

fn id(s: &str) -> KeyId {
    KeyId::new(s).unwrap()
}

fn path(s: &str) -> DerivationPath {
    s.parse().unwrap()
}

fn seed(hex_seed: &str) -> SecretSlice<u8> {
    SecretSlice::from(hex::decode(hex_seed).unwrap())
}

fn b64(bytes: &[u8]) -> String {
    let mut buf = [0u8; 128];
    Base64::encode(bytes, &mut buf).unwrap().to_owned()
}

/// A `priv_validator_key.json` as CometBFT writes it.
fn cometbft_json(secret_hex: &str, public_hex: &str) -> String {
    let public = hex::decode(public_hex).unwrap();
    let mut keypair = hex::decode(secret_hex).unwrap();
    keypair.extend_from_slice(&public);
    let address = hex::encode_upper(&sha256::Hash::hash(&public).as_byte_array()[..20]);
    format!(
        r#"{{
  "address": "{address}",
  "pub_key": {{"type": "tendermint/PubKeyEd25519", "value": "{}"}},
  "priv_key": {{"type": "tendermint/PrivKeyEd25519", "value": "{}"}}
}}"#,
        b64(&public),
        b64(&keypair)
    )
}

struct Fixture {
    _dir: TempDir,
    file: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keystore.json");
    Fixture { _dir: dir, file }
}

fn new_store(file: &Path) -> SoftwareKeystore {
    SoftwareKeystore::create(
        file,
        &pass("correct horse"),
        KdfParams::insecure_for_tests(),
    )
    .unwrap()
}

fn mode_of(file: &Path) -> u32 {
    fs::metadata(file).unwrap().permissions().mode() & 0o7777
}

fn sha256d(msg: &[u8]) -> [u8; 32] {
    sha256::Hash::hash(msg).to_byte_array()
}

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
fn wrong_passphrase_is_a_typed_error() {
    let f = fixture();
    new_store(&f.file);
    for wrong in ["correct horsE", "", "correct horse "] {
        let err = SoftwareKeystore::open(&f.file, &pass(wrong)).unwrap_err();
        assert!(
            matches!(err, KeystoreError::WrongPassphraseOrTampered),
            "{err:?}"
        );
    }
}

/// Rewrites one field of the envelope with `edit` and expects the open to fail.
fn tamper(file: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> KeystoreError {
    let original = fs::read(file).unwrap();
    let mut json: serde_json::Value = serde_json::from_slice(&original).unwrap();
    edit(&mut json);
    let tampered_file = file.with_extension("tampered");
    let _ = fs::remove_file(&tampered_file);
    fs::write(&tampered_file, serde_json::to_vec(&json).unwrap()).unwrap();
    fs::set_permissions(&tampered_file, fs::Permissions::from_mode(0o600)).unwrap();
    SoftwareKeystore::open(&tampered_file, &pass("correct horse")).unwrap_err()
}

fn flip_hex_digit(value: &mut serde_json::Value, at: usize) {
    let s = value.as_str().unwrap();
    let mut bytes = s.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    *value = serde_json::Value::String(String::from_utf8(bytes).unwrap());
}

#[test]
fn any_change_to_header_nonce_or_ciphertext_is_detected() {
    let f = fixture();
    let mut store = new_store(&f.file);
    store.add_ed25519(id("val")).unwrap();
    let ct_len = serde_json::from_slice::<serde_json::Value>(&fs::read(&f.file).unwrap()).unwrap()
        ["ciphertext"]
        .as_str()
        .unwrap()
        .len();

    let tampered: Vec<(&str, KeystoreError)> = vec![
        (
            "salt",
            tamper(&f.file, |j| flip_hex_digit(&mut j["kdf"]["salt"], 3)),
        ),
        (
            "nonce",
            tamper(&f.file, |j| flip_hex_digit(&mut j["nonce"], 0)),
        ),
        (
            "nonce end",
            tamper(&f.file, |j| flip_hex_digit(&mut j["nonce"], 47)),
        ),
        (
            "ciphertext start",
            tamper(&f.file, |j| flip_hex_digit(&mut j["ciphertext"], 0)),
        ),
        (
            "ciphertext tag",
            tamper(&f.file, |j| {
                flip_hex_digit(&mut j["ciphertext"], ct_len - 1)
            }),
        ),
        (
            "m_cost",
            tamper(&f.file, |j| j["kdf"]["m_cost_kib"] = 16.into()),
        ),
        ("t_cost", tamper(&f.file, |j| j["kdf"]["t_cost"] = 2.into())),
        (
            "salt length",
            tamper(&f.file, |j| {
                let salt = j["kdf"]["salt"].as_str().unwrap().to_owned();
                j["kdf"]["salt"] = format!("{salt}00").into();
            }),
        ),
    ];
    for (what, err) in tampered {
        assert!(
            matches!(err, KeystoreError::WrongPassphraseOrTampered),
            "{what}: {err:?}"
        );
    }

    let structural = [
        tamper(&f.file, |j| j["format"] = "tidemark-keystore-v2".into()),
        tamper(&f.file, |j| j["kdf"]["algorithm"] = "argon2i".into()),
        tamper(&f.file, |j| j["kdf"]["m_cost_kib"] = u32::MAX.into()),
        tamper(&f.file, |j| j["kdf"]["p_cost"] = 0.into()),
        tamper(&f.file, |j| j["nonce"] = "00".into()),
        tamper(&f.file, |j| j["ciphertext"] = "".into()),
        tamper(&f.file, |j| j["extra"] = 1.into()),
    ];
    for err in structural {
        assert!(
            matches!(
                err,
                KeystoreError::UnsupportedFormat { .. }
                    | KeystoreError::InvalidKdfParams(_)
                    | KeystoreError::Malformed(_)
            ),
            "{err:?}"
        );
    }
    // The untouched file still opens.
    SoftwareKeystore::open(&f.file, &pass("correct horse")).unwrap();
}

#[test]
fn truncated_and_garbage_files_are_typed_errors() {
    let f = fixture();
    let mut store = new_store(&f.file);
    store.add_secp256k1(id("k"), &path("m/1")).unwrap();
    let bytes = fs::read(&f.file).unwrap();
    let probe = f.file.with_extension("probe");
    // Every prefix short of the final newline (dropping it changes nothing).
    let mut contents: Vec<Vec<u8>> = (0..bytes.len() - 1)
        .step_by(7)
        .map(|n| bytes[..n].to_vec())
        .collect();
    contents.push(b"\xff\xfe\x00garbage".to_vec());
    contents.push(b"null".to_vec());
    contents.push(b"[]".to_vec());
    for c in contents {
        let _ = fs::remove_file(&probe);
        fs::write(&probe, &c).unwrap();
        fs::set_permissions(&probe, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(SoftwareKeystore::open(&probe, &pass("correct horse")).is_err());
    }
}

#[test]
fn new_files_are_0600_and_group_or_other_access_is_refused() {
    let f = fixture();
    let mut store = new_store(&f.file);
    assert_eq!(mode_of(&f.file), 0o600);
    store.add_ed25519(id("a")).unwrap();
    assert_eq!(mode_of(&f.file), 0o600, "after an atomic replace");

    for mode in [0o644, 0o640, 0o604, 0o610, 0o601, 0o660, 0o666] {
        fs::set_permissions(&f.file, fs::Permissions::from_mode(mode)).unwrap();
        let err = SoftwareKeystore::open(&f.file, &pass("correct horse")).unwrap_err();
        match &err {
            KeystoreError::InsecurePermissions { path, mode: m } => {
                assert_eq!(path, &f.file);
                assert_eq!(*m, mode);
            }
            other => panic!("mode {mode:o}: {other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains(&f.file.display().to_string()) && msg.contains(&format!("{mode:04o}")),
            "{msg}"
        );
    }
    fs::set_permissions(&f.file, fs::Permissions::from_mode(0o400)).unwrap();
    SoftwareKeystore::open(&f.file, &pass("correct horse")).unwrap();

    // No temporary files are left behind.
    let names: Vec<_> = fs::read_dir(f.file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["keystore.json"]);
}

#[test]
fn create_never_overwrites_and_a_directory_is_not_a_keystore() {
    let f = fixture();
    let mut store = new_store(&f.file);
    let before = store.add_ed25519(id("a")).unwrap();
    let err =
        SoftwareKeystore::create(&f.file, &pass("x"), KdfParams::insecure_for_tests()).unwrap_err();
    assert!(
        matches!(err, KeystoreError::AlreadyExists { .. }),
        "{err:?}"
    );
    let reopened = SoftwareKeystore::open(&f.file, &pass("correct horse")).unwrap();
    assert_eq!(reopened.public_key(&id("a")).unwrap(), before);

    let dir = f.file.parent().unwrap();
    let err = SoftwareKeystore::open(dir, &pass("x")).unwrap_err();
    assert!(
        matches!(
            err,
            KeystoreError::NotAFile { .. } | KeystoreError::InsecurePermissions { .. }
        ),
        "{err:?}"
    );
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
fn empty_passphrase_and_bad_seed_lengths_are_refused() {
    let f = fixture();
    let err =
        SoftwareKeystore::create(&f.file, &pass(""), KdfParams::insecure_for_tests()).unwrap_err();
    assert!(matches!(err, KeystoreError::EmptyPassphrase), "{err:?}");
    for len in [0, 15, 65] {
        let err = SoftwareKeystore::create_from_seed(
            &f.file,
            &pass("pw"),
            SecretSlice::from(vec![1u8; len]),
            KdfParams::insecure_for_tests(),
        )
        .unwrap_err();
        assert!(
            matches!(err, KeystoreError::InvalidSeedLength(l) if l == len),
            "{err:?}"
        );
    }
    assert!(!f.file.exists());
    SoftwareKeystore::create_from_seed(
        &f.file,
        &pass("pw"),
        SecretSlice::from(vec![1u8; 64]),
        KdfParams::insecure_for_tests(),
    )
    .unwrap();
}

#[test]
fn a_failed_save_leaves_the_keystore_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    fs::create_dir(&sub).unwrap();
    let file = sub.join("keystore.json");
    let mut store = new_store(&file);
    store.add_ed25519(id("a")).unwrap();
    fs::remove_dir_all(&sub).unwrap();
    let err = store.add_ed25519(id("b")).unwrap_err();
    assert!(matches!(err, KeystoreError::Io { .. }), "{err:?}");
    assert_eq!(store.keys().len(), 1);
    assert!(store.public_key(&id("b")).is_err());
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
