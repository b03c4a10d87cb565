//! The keystore file through the public API: passphrase, tampering,
//! truncation, modes, no overwrite, and failed saves.

// Test code: a failed unwrap is a failed test (clippy.toml allows it in
// `#[test]` functions; this extends it to helpers and closures).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use secrecy::SecretSlice;
use tidemark_core::KeyBackend as _;
use tidemark_keys::{KdfParams, KeystoreError, SoftwareKeystore};

use common::*;

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
