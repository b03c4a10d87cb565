//! Tidemark's software key backend: an encrypted keystore file holding a
//! BIP32 seed and named keys, implementing [`tidemark_core::KeyBackend`].
//!
//! # Layout
//!
//! - `keystore`: [`SoftwareKeystore`]: create, open, add keys, save, and
//!   the [`KeyBackend`](tidemark_core::KeyBackend) implementation.
//! - `keys`: key material in memory (seed, ed25519 and secp256k1 keys),
//!   BIP32 derivation, and how each scheme signs.
//! - `envelope`: the file format: JSON envelope, XChaCha20-Poly1305 with the
//!   header as associated data.
//! - `kdf`: [`KdfParams`] and Argon2id, from passphrase to file key.
//! - `plaintext`: the secret payload inside the envelope (seed and keys).
//! - `cometbft`: import of a CometBFT `priv_validator_key.json`.
//! - `fsio`: atomic 0600 writes and permission-checked reads.
//! - `error`: [`KeystoreError`], the crate's one error type.
//!
//! # Invariants (I5, keys never leave)
//!
//! - **No API returns private material.** Public keys and signatures come
//!   out; seeds and secret keys do not. The single, deliberately named
//!   exception is [`SoftwareKeystore::with_seed_for_derivation`], which lends
//!   the seed to a closure for in-process derivation (the Lightning signer).
//! - **Secrets live in erasing types**: the seed and decrypted file contents
//!   in [`zeroize::Zeroizing`] buffers, ed25519 keys in
//!   `ed25519_dalek::SigningKey` (zeroized on drop), secp256k1 keys in a
//!   wrapper that erases them on drop, the passphrase in
//!   [`secrecy::SecretString`]. No secret type implements `Debug`,
//!   `Display`, `Clone` or `Serialize`; `Debug` of the keystore prints only
//!   the path, the KDF parameters, key names, public keys and paths.
//! - **The file is 0600**: created with mode 0600 through a temporary file,
//!   fsync and rename; refused at open if `mode & 0o077 != 0`.
//! - **What is encrypted**: the seed and every key (ed25519 secrets, and
//!   the derivation paths of secp256k1 keys) and the key names. The header
//!   (format, Argon2id parameters and salt) is in clear but authenticated;
//!   the nonce is in clear. The file's size reveals roughly how many keys
//!   it holds.
//!
//! # What the passphrase protects against, and what not
//!
//! It protects a copy of the file at rest (a stolen disk or backup, a
//! leaked volume snapshot): without the passphrase the attacker must guess
//! it, paying one Argon2id derivation (64 MiB, 3 passes by default) per
//! guess. It also detects any change to the file.
//!
//! It does not protect against anyone who can read the signer's memory,
//! attach a debugger or run code as its user while the keystore is open
//! (the keys are decrypted in memory to sign fast), against a weak
//! passphrase, against whoever learns the passphrase (from the operator's
//! shell history or a config file beside the keystore), nor against an
//! attacker who replaces the file with an older version of itself encrypted
//! under the same passphrase (a rollback to fewer keys). It says nothing
//! about *what* gets signed: that is the policy's and the store's job.

mod cometbft;
mod envelope;
mod error;
mod fsio;
mod kdf;
mod keys;
mod keystore;
mod plaintext;

#[cfg(test)]
mod tests;

pub use bitcoin::bip32::DerivationPath;
pub use error::KeystoreError;
pub use kdf::KdfParams;
pub use keystore::SoftwareKeystore;
