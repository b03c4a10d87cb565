//! Import of a CometBFT (Tendermint) `priv_validator_key.json` ed25519 key.
//!
//! ```json
//! {
//!   "address": "<upper-case hex, the first 20 bytes of sha256(public key)>",
//!   "pub_key": {"type": "tendermint/PubKeyEd25519", "value": "<base64, 32 bytes>"},
//!   "priv_key": {"type": "tendermint/PrivKeyEd25519", "value": "<base64, 64 bytes>"}
//! }
//! ```
//!
//! `priv_key.value` is the 32-byte secret followed by the 32-byte public key
//! (Go's `ed25519.PrivateKey`). Invariants:
//!
//! - The public half, and `pub_key` and `address` when present, must match
//!   the public key derived from the secret: a file whose parts disagree is
//!   refused rather than guessed at.
//! - Only ed25519 is imported; a secp256k1 validator key is refused with its
//!   type named.
//! - The secret is decoded (constant-time base64) into a zeroizing buffer;
//!   errors never quote the input.

use base64ct::{Base64, Encoding as _};
use bitcoin::hashes::{Hash as _, sha256};
use ed25519_dalek::SigningKey;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::{KeystoreError, json_error_position};

const PRIV_KEY_TYPE: &str = "tendermint/PrivKeyEd25519";
const PUB_KEY_TYPE: &str = "tendermint/PubKeyEd25519";

#[derive(Deserialize)]
struct PrivValidatorKeyJson<'a> {
    #[serde(borrow)]
    priv_key: TypedValue<'a>,
    #[serde(borrow, default)]
    pub_key: Option<TypedValue<'a>>,
    #[serde(borrow, default)]
    address: Option<&'a str>,
}

#[derive(Deserialize)]
struct TypedValue<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(borrow)]
    value: &'a str,
}

fn refuse(what: impl Into<String>) -> KeystoreError {
    KeystoreError::CometBftKey(what.into())
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Parses a `priv_validator_key.json` and returns its signing key.
pub(crate) fn parse_priv_validator_key(json: &str) -> Result<SigningKey, KeystoreError> {
    let file: PrivValidatorKeyJson<'_> =
        serde_json::from_str(json).map_err(|e| refuse(json_error_position(&e)))?;
    if file.priv_key.kind != PRIV_KEY_TYPE {
        return Err(refuse(format!(
            "priv_key.type is {:?}, only {PRIV_KEY_TYPE:?} is supported",
            short(file.priv_key.kind)
        )));
    }

    let mut keypair = Zeroizing::new([0u8; 64]);
    let decoded_len = Base64::decode(file.priv_key.value, keypair.as_mut())
        .map_err(|_| refuse("priv_key.value is not base64 of 64 bytes"))?
        .len();
    if decoded_len != 64 {
        return Err(refuse(format!(
            "priv_key.value holds {decoded_len} bytes, expected 64 (secret and public key)"
        )));
    }
    let mut secret = Zeroizing::new([0u8; 32]);
    secret.copy_from_slice(&keypair[..32]);
    let signing_key = SigningKey::from_bytes(&secret);
    let public = signing_key.verifying_key().to_bytes();
    if keypair[32..] != public {
        return Err(refuse(
            "the public half of priv_key.value does not match its secret half",
        ));
    }

    if let Some(pub_key) = file.pub_key {
        if pub_key.kind != PUB_KEY_TYPE {
            return Err(refuse(format!(
                "pub_key.type is {:?}, expected {PUB_KEY_TYPE:?}",
                short(pub_key.kind)
            )));
        }
        let mut stated = [0u8; 32];
        match Base64::decode(pub_key.value, &mut stated) {
            Ok(bytes) if bytes.len() == 32 => {}
            _ => return Err(refuse("pub_key.value is not base64 of 32 bytes")),
        }
        if stated != public {
            return Err(refuse("pub_key does not match priv_key"));
        }
    }

    if let Some(address) = file.address {
        let hash = sha256::Hash::hash(&public);
        let expected = hex::encode_upper(&hash.as_byte_array()[..20]);
        if !address.eq_ignore_ascii_case(&expected) {
            return Err(refuse(format!(
                "address {:?} does not match the key (expected {expected})",
                short(address)
            )));
        }
    }
    Ok(signing_key)
}
