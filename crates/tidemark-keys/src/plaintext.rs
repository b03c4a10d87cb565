//! The secret payload inside the envelope: the seed and the named keys.
//!
//! ```json
//! {"seed":"<hex>","keys":[
//!   {"name":"val-1","scheme":"ed25519","secret":"<hex, 32 bytes>"},
//!   {"name":"ln-node","scheme":"secp256k1","path":"m/0'/1"}]}
//! ```
//!
//! secp256k1 keys are stored as their derivation path only; the seed is the
//! one secret they depend on. ed25519 keys are stored as their 32-byte
//! secret.
//!
//! Invariants:
//!
//! - The payload is written by hand into a [`Zeroizing`] buffer whose
//!   capacity is reserved up front and never exceeded (a reallocation would
//!   free an un-erased copy); no secret type derives `Serialize`.
//! - It is read with borrowed `&str` fields that point into the decrypted
//!   [`Zeroizing`] buffer, so parsing makes no un-erased copy of a secret.
//!   Hex is decoded straight into zeroizing buffers.
//! - Parse errors never quote the input (it holds secrets).

use std::collections::BTreeMap;

use bitcoin::bip32::DerivationPath;
use bitcoin::secp256k1::{All, Secp256k1};
use ed25519_dalek::SigningKey;
use serde::Deserialize;
use tidemark_core::KeyId;
use zeroize::Zeroizing;

use crate::error::{KeystoreError, json_error_position};
use crate::keys::{KeyEntry, KeySecret, MAX_SEED_LEN, Seed, format_path};

/// Appends `bytes` as lower-case hex without reallocating.
fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0x0f)]);
    }
}

/// Encodes the seed and keys.
pub(crate) fn encode(seed: &Seed, keys: &BTreeMap<KeyId, KeyEntry>) -> Zeroizing<Vec<u8>> {
    let paths: Vec<(Option<String>, &KeyId, &KeyEntry)> = keys
        .iter()
        .map(|(name, entry)| (entry.path().map(format_path), name, entry))
        .collect();
    // An upper bound on the encoded length; everything below is ASCII with
    // no escapes (key names and paths use restricted alphabets).
    let capacity = 32
        + 2 * seed.as_bytes().len()
        + paths
            .iter()
            .map(|(path, name, _)| 64 + name.as_str().len() + path.as_ref().map_or(64, String::len))
            .sum::<usize>();
    let mut out = Zeroizing::new(Vec::with_capacity(capacity));
    let reserved = out.capacity();
    out.extend_from_slice(b"{\"seed\":\"");
    push_hex(&mut out, seed.as_bytes());
    out.extend_from_slice(b"\",\"keys\":[");
    for (i, (path, name, entry)) in paths.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":\"");
        out.extend_from_slice(name.as_str().as_bytes());
        match (entry.secret(), path) {
            (KeySecret::Ed25519(key), _) => {
                out.extend_from_slice(b"\",\"scheme\":\"ed25519\",\"secret\":\"");
                push_hex(&mut out, key.as_bytes());
            }
            (KeySecret::Secp256k1(_), path) => {
                out.extend_from_slice(b"\",\"scheme\":\"secp256k1\",\"path\":\"");
                out.extend_from_slice(path.as_deref().unwrap_or("m").as_bytes());
            }
        }
        out.extend_from_slice(b"\"}");
    }
    out.extend_from_slice(b"]}");
    debug_assert!(
        out.capacity() == reserved,
        "the plaintext buffer grew, leaving an un-erased copy"
    );
    out
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayloadJson<'a> {
    #[serde(borrow)]
    seed: &'a str,
    #[serde(borrow)]
    keys: Vec<KeyJson<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyJson<'a> {
    #[serde(borrow)]
    name: &'a str,
    #[serde(borrow)]
    scheme: &'a str,
    #[serde(borrow, default)]
    secret: Option<&'a str>,
    #[serde(borrow, default)]
    path: Option<&'a str>,
}

fn invalid(what: impl Into<String>) -> KeystoreError {
    KeystoreError::InvalidContents(what.into())
}

/// The decoded payload.
pub(crate) struct Payload {
    pub(crate) seed: Seed,
    pub(crate) keys: BTreeMap<KeyId, KeyEntry>,
}

/// Decodes a decrypted payload and derives every secp256k1 key.
pub(crate) fn decode(bytes: &[u8], secp: &Secp256k1<All>) -> Result<Payload, KeystoreError> {
    let json: PayloadJson<'_> =
        serde_json::from_slice(bytes).map_err(|e| invalid(json_error_position(&e)))?;

    let hex_len = json.seed.len();
    if !hex_len.is_multiple_of(2) || hex_len / 2 > MAX_SEED_LEN {
        return Err(invalid(format!("seed is {hex_len} hex digits")));
    }
    let mut seed = Zeroizing::new(vec![0u8; hex_len / 2]);
    hex::decode_to_slice(json.seed, &mut seed).map_err(|_| invalid("seed is not hex"))?;
    let seed = Seed::new(seed).map_err(|e| invalid(e.to_string()))?;

    let mut keys = BTreeMap::new();
    for key in json.keys {
        let name = KeyId::new(key.name).map_err(KeystoreError::InvalidKeyName)?;
        let entry = match (key.scheme, key.secret, key.path) {
            ("ed25519", Some(secret), None) => {
                let mut bytes = Zeroizing::new([0u8; 32]);
                hex::decode_to_slice(secret, bytes.as_mut())
                    .map_err(|_| invalid(format!("key {name}: secret is not 32 bytes of hex")))?;
                KeyEntry::ed25519(SigningKey::from_bytes(&bytes))
            }
            ("secp256k1", None, Some(path)) => {
                let path: DerivationPath = path
                    .parse()
                    .map_err(|e| invalid(format!("key {name}: derivation path: {e}")))?;
                KeyEntry::derive_secp256k1(secp, &seed, path)?
            }
            (scheme, _, _) => {
                return Err(invalid(format!(
                    "key {name}: scheme {:?} with the wrong fields",
                    scheme.chars().take(16).collect::<String>()
                )));
            }
        };
        if keys.insert(name.clone(), entry).is_some() {
            return Err(invalid(format!("key {name} appears twice")));
        }
    }
    Ok(Payload { seed, keys })
}
