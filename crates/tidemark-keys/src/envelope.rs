//! The keystore file format: a JSON envelope around one AEAD ciphertext.
//!
//! ```json
//! {
//!   "format": "tidemark-keystore-v1",
//!   "kdf": { "algorithm": "argon2id", "version": 19,
//!            "m_cost_kib": 65536, "t_cost": 3, "p_cost": 1, "salt": "<hex>" },
//!   "nonce": "<hex, 24 bytes>",
//!   "ciphertext": "<hex, XChaCha20-Poly1305 output with its 16-byte tag>"
//! }
//! ```
//!
//! Invariants:
//!
//! - The header (format and every KDF field, salt included) is the AEAD's
//!   associated data, in the canonical encoding of [`Header::aad`], so no
//!   header field can change without decryption failing. The nonce is bound
//!   by the AEAD itself.
//! - Every save draws a fresh random 24-byte nonce; XChaCha20's nonce is long
//!   enough that random nonces under one key never collide in practice.
//! - Parsing never panics and accepts nothing but this exact shape:
//!   unknown fields, wrong lengths and bad hex are [`KeystoreError::Malformed`].
//! - Plaintext exists only in [`Zeroizing`] buffers that are never grown
//!   (growing would leave an un-erased copy behind).

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::KeystoreError;
use crate::kdf::{KdfParams, MAX_SALT_LEN, MIN_SALT_LEN};

/// The format string of this version.
pub(crate) const FORMAT: &str = "tidemark-keystore-v1";
const KDF_ALGORITHM: &str = "argon2id";
const ARGON2_VERSION: u32 = 0x13;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// The authenticated, unencrypted header: how to turn the passphrase into
/// the file key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) kdf: KdfParams,
    pub(crate) salt: Vec<u8>,
}

impl Header {
    /// The canonical encoding of the header, used as associated data:
    /// every field fixed-width or length-prefixed, so two different headers
    /// never encode alike.
    pub(crate) fn aad(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.salt.len());
        for s in [FORMAT, KDF_ALGORITHM] {
            out.extend_from_slice(&(s.len() as u32).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        for n in [
            ARGON2_VERSION,
            self.kdf.m_cost_kib(),
            self.kdf.t_cost(),
            self.kdf.p_cost(),
            self.salt.len() as u32,
        ] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        out.extend_from_slice(&self.salt);
        out
    }
}

/// A parsed keystore file, still encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sealed {
    pub(crate) header: Header,
    pub(crate) nonce: [u8; NONCE_LEN],
    /// Ciphertext followed by the 16-byte tag.
    pub(crate) ciphertext: Vec<u8>,
}

#[derive(Deserialize)]
struct FormatProbe {
    format: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvelopeJson {
    format: String,
    kdf: KdfJson,
    nonce: String,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KdfJson {
    algorithm: String,
    version: u32,
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
    salt: String,
}

fn malformed(what: impl Into<String>) -> KeystoreError {
    KeystoreError::Malformed(what.into())
}

impl Sealed {
    /// Parses a keystore file. Checks shape only; authenticity is checked
    /// by [`Sealed::open`].
    pub(crate) fn parse(bytes: &[u8]) -> Result<Sealed, KeystoreError> {
        let probe: FormatProbe =
            serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
        if probe.format != FORMAT {
            return Err(KeystoreError::UnsupportedFormat {
                found: probe.format.chars().take(64).collect(),
                expected: FORMAT,
            });
        }
        let json: EnvelopeJson =
            serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
        if json.kdf.algorithm != KDF_ALGORITHM || json.kdf.version != ARGON2_VERSION {
            return Err(KeystoreError::InvalidKdfParams(format!(
                "only {KDF_ALGORITHM} version {ARGON2_VERSION} is supported"
            )));
        }
        let kdf = KdfParams::new(json.kdf.m_cost_kib, json.kdf.t_cost, json.kdf.p_cost)?;
        let salt = hex::decode(&json.kdf.salt).map_err(|e| malformed(format!("kdf.salt: {e}")))?;
        if !(MIN_SALT_LEN..=MAX_SALT_LEN).contains(&salt.len()) {
            return Err(malformed(format!(
                "kdf.salt is {} bytes, expected {MIN_SALT_LEN} to {MAX_SALT_LEN}",
                salt.len()
            )));
        }
        let mut nonce = [0u8; NONCE_LEN];
        hex::decode_to_slice(&json.nonce, &mut nonce)
            .map_err(|e| malformed(format!("nonce (expected {NONCE_LEN} bytes): {e}")))?;
        let ciphertext =
            hex::decode(&json.ciphertext).map_err(|e| malformed(format!("ciphertext: {e}")))?;
        if ciphertext.len() < TAG_LEN {
            return Err(malformed(format!(
                "ciphertext is {} bytes, shorter than its {TAG_LEN}-byte tag",
                ciphertext.len()
            )));
        }
        Ok(Sealed {
            header: Header { kdf, salt },
            nonce,
            ciphertext,
        })
    }

    /// The file's bytes: pretty JSON and a final newline.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, KeystoreError> {
        let json = EnvelopeJson {
            format: FORMAT.to_owned(),
            kdf: KdfJson {
                algorithm: KDF_ALGORITHM.to_owned(),
                version: ARGON2_VERSION,
                m_cost_kib: self.header.kdf.m_cost_kib(),
                t_cost: self.header.kdf.t_cost(),
                p_cost: self.header.kdf.p_cost(),
                salt: hex::encode(&self.header.salt),
            },
            nonce: hex::encode(self.nonce),
            ciphertext: hex::encode(&self.ciphertext),
        };
        let mut out = serde_json::to_vec_pretty(&json)
            .map_err(|e| malformed(format!("cannot encode the envelope: {e}")))?;
        out.push(b'\n');
        Ok(out)
    }

    /// Encrypts `plaintext` under `key` with a fresh random nonce, binding
    /// `header`.
    pub(crate) fn seal(
        header: Header,
        key: &[u8; 32],
        plaintext: &[u8],
    ) -> Result<Sealed, KeystoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        crate::keys::fill_random(&mut nonce)?;
        let cipher = XChaCha20Poly1305::new(key.into());
        // The buffer holds plaintext only until it is encrypted in place.
        let mut buffer = Zeroizing::new(plaintext.to_vec());
        let tag = cipher
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), &header.aad(), &mut buffer)
            .map_err(|_| malformed("plaintext too long to encrypt"))?;
        let mut ciphertext = Vec::with_capacity(buffer.len() + TAG_LEN);
        ciphertext.extend_from_slice(&buffer);
        ciphertext.extend_from_slice(&tag);
        Ok(Sealed {
            header,
            nonce,
            ciphertext,
        })
    }

    /// Decrypts and authenticates with `key`.
    pub(crate) fn open(&self, key: &[u8; 32]) -> Result<Zeroizing<Vec<u8>>, KeystoreError> {
        let split = self
            .ciphertext
            .len()
            .checked_sub(TAG_LEN)
            .ok_or_else(|| malformed("ciphertext shorter than its tag"))?;
        let (body, tag) = self.ciphertext.split_at(split);
        let cipher = XChaCha20Poly1305::new(key.into());
        let mut buffer = Zeroizing::new(body.to_vec());
        cipher
            .decrypt_in_place_detached(
                XNonce::from_slice(&self.nonce),
                &self.header.aad(),
                &mut buffer,
                Tag::from_slice(tag),
            )
            .map_err(|_| KeystoreError::WrongPassphraseOrTampered)?;
        Ok(buffer)
    }
}
