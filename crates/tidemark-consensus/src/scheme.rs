//! The message form each key scheme signs.
//!
//! Invariant: the consensus domain only ever asks an Ed25519 key to sign
//! the bytes themselves and a secp256k1 key to sign a 32-byte digest with
//! ECDSA; it never asks for a Schnorr signature.

use sha2::{Digest as _, Sha256};
use tidemark_core::{KeyId, Scheme, SignInput, SignMessage};

/// CometBFT and plain-height form: Ed25519 over `bytes`, ECDSA over
/// `sha256(bytes)`.
pub(crate) fn sha256_form(key: &KeyId, scheme: Scheme, bytes: &[u8]) -> SignInput {
    let message = match scheme {
        Scheme::Ed25519 => SignMessage::Ed25519(bytes.to_vec()),
        Scheme::Secp256k1 => SignMessage::EcdsaDigest(Sha256::digest(bytes).into()),
    };
    SignInput {
        key: key.clone(),
        message,
    }
}

/// Tezos form: both schemes sign the 32-byte BLAKE2b digest of the
/// watermarked bytes (Ed25519 over the digest, ECDSA of the digest).
pub(crate) fn digest_form(key: &KeyId, scheme: Scheme, digest: [u8; 32]) -> SignInput {
    let message = match scheme {
        Scheme::Ed25519 => SignMessage::Ed25519(digest.to_vec()),
        Scheme::Secp256k1 => SignMessage::EcdsaDigest(digest),
    };
    SignInput {
        key: key.clone(),
        message,
    }
}
