//! Unit tests of the decoders: every mutation of a keystore file, and every
//! kind of bad payload behind a valid tag, is a typed error, never a panic.

use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use secrecy::SecretString;
use tidemark_core::{KeyId, PublicKey};

use crate::envelope::{Header, Sealed};
use crate::kdf::{KdfParams, derive_file_key};
use crate::{KeystoreError, SoftwareKeystore};

const PASS: &str = "unit test passphrase";

fn pass() -> SecretString {
    SecretString::from(PASS)
}

/// A keystore file's bytes with an ed25519 and a secp256k1 key, and its keys.
fn sample_file() -> (Vec<u8>, Vec<(KeyId, PublicKey)>) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ks.json");
    let mut ks = SoftwareKeystore::create(&file, &pass(), KdfParams::insecure_for_tests()).unwrap();
    ks.add_ed25519(KeyId::new("ed").unwrap()).unwrap();
    ks.add_secp256k1(KeyId::new("k1").unwrap(), &"m/1'/2".parse().unwrap())
        .unwrap();
    (std::fs::read(&file).unwrap(), ks.keys())
}

fn open_bytes(bytes: &[u8]) -> Result<SoftwareKeystore, KeystoreError> {
    SoftwareKeystore::from_file_bytes(Path::new("/nonexistent/ks.json"), bytes, &pass())
}

/// Either a typed error, or (a mutation that does not change meaning, such
/// as the case of a hex digit) exactly the original keys.
fn check(bytes: &[u8], original: &[(KeyId, PublicKey)], what: &str) {
    if let Ok(ks) = open_bytes(bytes) {
        assert_eq!(ks.keys(), original, "{what} opened with different keys");
    }
}

#[test]
fn the_sample_file_opens() {
    let (bytes, keys) = sample_file();
    assert_eq!(open_bytes(&bytes).unwrap().keys(), keys);
}

#[test]
fn every_single_byte_mutation_is_rejected_or_harmless() {
    let (bytes, keys) = sample_file();
    let replacements = [b'0', b'f', b'"', b'}', b'\\', b' ', 0x00, 0xff];
    for i in 0..bytes.len() {
        for xor in [0x01u8, 0x20, 0x80] {
            let mut m = bytes.clone();
            m[i] ^= xor;
            check(&m, &keys, &format!("byte {i} xor {xor:#x}"));
        }
        for r in replacements {
            let mut m = bytes.clone();
            m[i] = r;
            check(&m, &keys, &format!("byte {i} = {r:#x}"));
        }
        let mut m = bytes.clone();
        m.remove(i);
        check(&m, &keys, &format!("byte {i} removed"));
    }
}

#[test]
fn every_truncation_is_rejected() {
    let (bytes, _) = sample_file();
    // The last byte is a newline; dropping it changes nothing.
    for n in 0..bytes.len() - 1 {
        assert!(open_bytes(&bytes[..n]).is_err(), "truncated to {n}");
    }
}

#[test]
fn random_multi_byte_mutations_and_garbage_never_panic() {
    let (bytes, keys) = sample_file();
    let mut rng = StdRng::seed_from_u64(0x71de);
    for round in 0..3000 {
        let mut m = bytes.clone();
        for _ in 0..rng.gen_range(1..8) {
            let at = rng.gen_range(0..m.len());
            m[at] = rng.r#gen();
        }
        check(&m, &keys, &format!("round {round}"));
    }
    for _ in 0..2000 {
        let len = rng.gen_range(0..512);
        let garbage: Vec<u8> = (0..len).map(|_| rng.r#gen()).collect();
        assert!(open_bytes(&garbage).is_err());
    }
}

/// Seals `payload` exactly as a keystore would, under the test passphrase.
fn sealed_file(payload: &[u8]) -> Vec<u8> {
    let header = Header {
        kdf: KdfParams::insecure_for_tests(),
        salt: vec![7; 16],
    };
    let key = derive_file_key(&header.kdf, &header.salt, &pass()).unwrap();
    Sealed::seal(header, &key, payload)
        .unwrap()
        .encode()
        .unwrap()
}

#[test]
fn valid_tag_around_an_invalid_payload_is_invalid_contents() {
    let secret = "11".repeat(32);
    let seed = "22".repeat(32);
    let payloads = [
        String::new(),
        "null".to_owned(),
        format!(r#"{{"seed":"{seed}"}}"#),
        r#"{"seed":"00","keys":[]}"#.to_owned(),
        format!(r#"{{"seed":"{}","keys":[]}}"#, "00".repeat(65)),
        format!(r#"{{"seed":"{seed}0","keys":[]}}"#),
        format!(r#"{{"seed":"{}zz","keys":[]}}"#, "00".repeat(31)),
        format!(r#"{{"seed":"{seed}","keys":[],"extra":1}}"#),
        format!(
            r#"{{"seed":"{seed}","keys":[{{"name":"a","scheme":"rsa","secret":"{secret}"}}]}}"#
        ),
        format!(
            r#"{{"seed":"{seed}","keys":[{{"name":"a","scheme":"ed25519","secret":"{secret}00"}}]}}"#
        ),
        format!(
            r#"{{"seed":"{seed}","keys":[{{"name":"a","scheme":"ed25519","secret":"{}"}}]}}"#,
            &secret[2..]
        ),
        format!(r#"{{"seed":"{seed}","keys":[{{"name":"a","scheme":"ed25519","path":"m/0"}}]}}"#),
        format!(
            r#"{{"seed":"{seed}","keys":[{{"name":"a","scheme":"secp256k1","secret":"{secret}"}}]}}"#
        ),
        format!(r#"{{"seed":"{seed}","keys":[{{"name":"a","scheme":"secp256k1","path":"m/x"}}]}}"#),
        format!(
            r#"{{"seed":"{seed}","keys":[{{"name":"a b","scheme":"secp256k1","path":"m/0"}}]}}"#
        ),
        format!(
            r#"{{"seed":"{seed}","keys":[{{"name":"a","scheme":"secp256k1","path":"m/0"}},{{"name":"a","scheme":"secp256k1","path":"m/1"}}]}}"#
        ),
        format!(
            r#"{{"seed":"{seed}","keys":[{{"name":"a","scheme":"ed25519","secret":"{secret}","x":1}}]}}"#
        ),
        // An escape where a borrowed string is expected.
        format!(
            r#"{{"seed":"{seed}","keys":[{{"name":"\u0061","scheme":"ed25519","secret":"{secret}"}}]}}"#
        ),
    ];
    for (i, payload) in payloads.iter().enumerate() {
        let err = open_bytes(&sealed_file(payload.as_bytes())).err();
        assert!(
            matches!(
                err,
                Some(KeystoreError::InvalidContents(_) | KeystoreError::InvalidKeyName(_))
            ),
            "payload {i}: {err:?}"
        );
        let shown = format!("{err:?}");
        assert!(
            !shown.contains(&secret[..16]) && !shown.contains(&seed[..16]),
            "{shown}"
        );
    }
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..500 {
        let len = rng.gen_range(0..300);
        let payload: Vec<u8> = (0..len).map(|_| rng.r#gen()).collect();
        assert!(matches!(
            open_bytes(&sealed_file(&payload)),
            Err(KeystoreError::InvalidContents(_))
        ));
    }
    // The well-formed payload of the same shape opens.
    let ok = format!(
        r#"{{"seed":"{seed}","keys":[{{"name":"a","scheme":"ed25519","secret":"{secret}"}},{{"name":"b","scheme":"secp256k1","path":"m"}}]}}"#
    );
    assert_eq!(
        open_bytes(&sealed_file(ok.as_bytes()))
            .unwrap()
            .keys()
            .len(),
        2
    );
}

#[test]
fn derivation_deeper_than_bip32_allows_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut ks = SoftwareKeystore::create(
        dir.path().join("ks"),
        &pass(),
        KdfParams::insecure_for_tests(),
    )
    .unwrap();
    let deepest = format!("m{}", "/2147483647'".repeat(255));
    ks.add_secp256k1(KeyId::new("deep").unwrap(), &deepest.parse().unwrap())
        .unwrap();
    let too_deep = format!("m{}", "/1".repeat(256));
    let err = ks
        .add_secp256k1(KeyId::new("deeper").unwrap(), &too_deep.parse().unwrap())
        .unwrap_err();
    assert!(matches!(err, KeystoreError::Derivation { .. }), "{err:?}");
    // The long path survives the round trip through the payload encoder.
    let reopened = SoftwareKeystore::open(dir.path().join("ks"), &pass()).unwrap();
    assert_eq!(reopened.keys(), ks.keys());
}

#[test]
fn kdf_params_are_bounded() {
    assert!(KdfParams::new(8, 1, 1).is_ok());
    assert!(KdfParams::new(KdfParams::MAX_M_COST_KIB, 1, 1).is_ok());
    for (m, t, p) in [
        (7, 1, 1),
        (8, 1, 2),
        (KdfParams::MAX_M_COST_KIB + 1, 1, 1),
        (64, 0, 1),
        (64, KdfParams::MAX_T_COST + 1, 1),
        (64, 1, 0),
        (1024, 1, KdfParams::MAX_P_COST + 1),
    ] {
        assert!(
            matches!(
                KdfParams::new(m, t, p),
                Err(KeystoreError::InvalidKdfParams(_))
            ),
            "{m} {t} {p}"
        );
    }
    let d = KdfParams::default();
    assert_eq!((d.m_cost_kib(), d.t_cost(), d.p_cost()), (65536, 3, 1));
}

#[test]
fn headers_that_differ_have_different_associated_data() {
    let base = Header {
        kdf: KdfParams::new(64, 2, 1).unwrap(),
        salt: vec![1; 16],
    };
    let variants = [
        Header {
            kdf: KdfParams::new(65, 2, 1).unwrap(),
            ..base.clone()
        },
        Header {
            kdf: KdfParams::new(64, 3, 1).unwrap(),
            ..base.clone()
        },
        Header {
            kdf: KdfParams::new(64, 2, 2).unwrap(),
            ..base.clone()
        },
        Header {
            salt: vec![1; 17],
            ..base.clone()
        },
        Header {
            salt: vec![2; 16],
            ..base.clone()
        },
    ];
    for v in variants {
        assert_ne!(v.aad(), base.aad(), "{v:?}");
    }
}

#[test]
fn the_header_is_bound_even_when_the_file_key_is_known() {
    // Changing a KDF field already changes the derived key; this checks the
    // associated data on its own, by opening with the original key.
    let header = Header {
        kdf: KdfParams::new(64, 2, 1).unwrap(),
        salt: vec![1; 16],
    };
    let key = [9u8; 32];
    let sealed = Sealed::seal(header.clone(), &key, b"payload").unwrap();
    assert_eq!(&sealed.open(&key).unwrap()[..], b"payload");
    let changed = [
        KdfParams::new(65, 2, 1).unwrap(),
        KdfParams::new(64, 3, 1).unwrap(),
        KdfParams::new(64, 2, 2).unwrap(),
    ];
    for kdf in changed {
        let mut s = sealed.clone();
        s.header.kdf = kdf;
        assert!(matches!(
            s.open(&key),
            Err(KeystoreError::WrongPassphraseOrTampered)
        ));
    }
    let mut s = sealed.clone();
    s.header.salt[0] ^= 1;
    assert!(matches!(
        s.open(&key),
        Err(KeystoreError::WrongPassphraseOrTampered)
    ));
    let mut s = sealed;
    s.nonce[23] ^= 1;
    assert!(matches!(
        s.open(&key),
        Err(KeystoreError::WrongPassphraseOrTampered)
    ));
}
