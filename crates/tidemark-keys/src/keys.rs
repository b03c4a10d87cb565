//! Key material in memory and how each key signs.
//!
//! Invariants:
//!
//! - Secrets live in types that erase themselves on drop: the seed in a
//!   [`Zeroizing`] buffer, ed25519 keys in [`SigningKey`] (zeroized on drop
//!   by ed25519-dalek), secp256k1 keys in [`SecpSecret`], whose `Drop`
//!   erases them. secp256k1's key types are `Copy`, so the erasure is best
//!   effort: the compiler may leave copies on the stack while deriving or
//!   signing.
//! - No secret type here implements `Debug`, `Display`, `Clone` or
//!   `Serialize`; [`KeyEntry`]'s hand-written `Debug` prints only the public
//!   key and the derivation path.
//! - Signing keys are derived once, when the keystore is opened or the key
//!   added, and cached; signing does no derivation and no allocation beyond
//!   the returned signature.

use std::fmt;

use bitcoin::bip32::{ChainCode, ChildNumber, DerivationPath, Fingerprint, Xpriv};
use bitcoin::hashes::Hash as _;
use bitcoin::key::TapTweak as _;
use bitcoin::secp256k1::{self, All, Keypair, Message, Secp256k1, SecretKey};
use bitcoin::{NetworkKind, TapNodeHash};
use ed25519_dalek::{Signer as _, SigningKey};
use rand::RngCore as _;
use rand::rngs::OsRng;
use tidemark_core::{
    ChildPath, ExtendedPublicKey, KeyError, KeyId, PublicKey, Scheme, SignMessage, Signature,
};
use zeroize::Zeroizing;

use crate::error::KeystoreError;

/// The shortest seed BIP32 allows (128 bits).
pub(crate) const MIN_SEED_LEN: usize = 16;
/// The longest seed BIP32 allows (512 bits).
pub(crate) const MAX_SEED_LEN: usize = 64;
/// The length of a seed in a new keystore.
pub(crate) const NEW_SEED_LEN: usize = 32;

/// Fills `buf` from the operating system's random number generator.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), KeystoreError> {
    OsRng
        .try_fill_bytes(buf)
        .map_err(|e| KeystoreError::Random(e.to_string()))
}

/// A BIP32 seed, 16 to 64 bytes.
pub(crate) struct Seed(Zeroizing<Vec<u8>>);

impl Seed {
    pub(crate) fn new(bytes: Zeroizing<Vec<u8>>) -> Result<Seed, KeystoreError> {
        if !(MIN_SEED_LEN..=MAX_SEED_LEN).contains(&bytes.len()) {
            return Err(KeystoreError::InvalidSeedLength(bytes.len()));
        }
        Ok(Seed(bytes))
    }

    pub(crate) fn generate() -> Result<Seed, KeystoreError> {
        let mut bytes = Zeroizing::new(vec![0u8; NEW_SEED_LEN]);
        fill_random(&mut bytes)?;
        Seed::new(bytes)
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Derives the extended private key at `path` from `seed` (BIP32, the
/// network only affects serialization and is ignored here), and the
/// fingerprint of the master key.
///
/// The returned [`Xpriv`] is `Copy` and not erased on drop: callers take
/// what they need and erase it with [`erase_xpriv`].
fn derive_xpriv_with_fingerprint(
    secp: &Secp256k1<All>,
    seed: &Seed,
    path: &DerivationPath,
) -> Result<(Xpriv, Fingerprint), KeystoreError> {
    let failed = |e: bitcoin::bip32::Error| KeystoreError::Derivation {
        path: format_path(path),
        reason: e.to_string(),
    };
    let mut master = Xpriv::new_master(NetworkKind::Main, seed.as_bytes()).map_err(failed)?;
    let fingerprint = master.fingerprint(secp);
    let derived = master.derive_priv(secp, path).map_err(failed);
    erase_xpriv(&mut master);
    derived.map(|xpriv| (xpriv, fingerprint))
}

/// Best-effort erasure of an extended private key.
pub(crate) fn erase_xpriv(xpriv: &mut Xpriv) {
    xpriv.private_key.non_secure_erase();
    xpriv.chain_code = bitcoin::bip32::ChainCode::from([0u8; 32]);
}

/// A derivation path as `m/...`, the form stored in the file.
pub(crate) fn format_path(path: &DerivationPath) -> String {
    if path.is_master() {
        "m".to_owned()
    } else {
        format!("m/{path}")
    }
}

/// A secp256k1 key derived from the seed, kept ready for ECDSA and BIP340,
/// with its chain code so that wallet signatures can use its unhardened
/// children (`0/i`, `1/i` below an account key).
pub(crate) struct SecpSecret {
    path: DerivationPath,
    secret: SecretKey,
    keypair: Keypair,
    chain_code: ChainCode,
    extended: ExtendedPublicKey,
}

impl Drop for SecpSecret {
    fn drop(&mut self) {
        self.secret.non_secure_erase();
        self.keypair.non_secure_erase();
        self.chain_code = ChainCode::from([0u8; 32]);
    }
}

impl SecpSecret {
    /// The child secret key at the unhardened `path` below this key.
    fn child_secret(&self, secp: &Secp256k1<All>, path: &ChildPath) -> Result<SecretKey, KeyError> {
        let mut parent = Xpriv {
            network: NetworkKind::Main,
            depth: 0,
            parent_fingerprint: Fingerprint::default(),
            child_number: ChildNumber::Normal { index: 0 },
            private_key: self.secret,
            chain_code: self.chain_code,
        };
        let children: Result<Vec<ChildNumber>, _> = path
            .children()
            .iter()
            .map(|index| ChildNumber::from_normal_idx(*index))
            .collect();
        let derived = children
            .and_then(|children| parent.derive_priv(secp, &children))
            .map_err(|e| KeyError::Backend(format!("cannot derive child {path}: {e}")));
        erase_xpriv(&mut parent);
        let mut child = derived?;
        let secret = child.private_key;
        erase_xpriv(&mut child);
        Ok(secret)
    }
}

/// The private half of a key.
pub(crate) enum KeySecret {
    Ed25519(SigningKey),
    Secp256k1(SecpSecret),
}

/// One named key: its public key and its cached signing material.
pub(crate) struct KeyEntry {
    public: PublicKey,
    secret: KeySecret,
}

impl KeyEntry {
    /// An ed25519 key from its signing key.
    pub(crate) fn ed25519(signing_key: SigningKey) -> KeyEntry {
        let public = PublicKey {
            scheme: Scheme::Ed25519,
            bytes: signing_key.verifying_key().to_bytes().to_vec(),
        };
        KeyEntry {
            public,
            secret: KeySecret::Ed25519(signing_key),
        }
    }

    /// A fresh random ed25519 key.
    pub(crate) fn generate_ed25519() -> Result<KeyEntry, KeystoreError> {
        let mut secret = Zeroizing::new([0u8; 32]);
        fill_random(secret.as_mut())?;
        Ok(KeyEntry::ed25519(SigningKey::from_bytes(&secret)))
    }

    /// The secp256k1 key at `path` under `seed`.
    pub(crate) fn derive_secp256k1(
        secp: &Secp256k1<All>,
        seed: &Seed,
        path: DerivationPath,
    ) -> Result<KeyEntry, KeystoreError> {
        let (mut xpriv, master_fingerprint) = derive_xpriv_with_fingerprint(secp, seed, &path)?;
        let secret = xpriv.private_key;
        let chain_code = xpriv.chain_code;
        let parent_fingerprint = xpriv.parent_fingerprint;
        erase_xpriv(&mut xpriv);
        let keypair = Keypair::from_secret_key(secp, &secret);
        let public_key = secp256k1::PublicKey::from_secret_key(secp, &secret).serialize();
        let extended = ExtendedPublicKey {
            public_key,
            chain_code: chain_code.to_bytes(),
            master_fingerprint: master_fingerprint.to_bytes(),
            parent_fingerprint: parent_fingerprint.to_bytes(),
            path: path.into_iter().map(|c| u32::from(*c)).collect(),
        };
        let public = PublicKey {
            scheme: Scheme::Secp256k1,
            bytes: public_key.to_vec(),
        };
        Ok(KeyEntry {
            public,
            secret: KeySecret::Secp256k1(SecpSecret {
                path,
                secret,
                keypair,
                chain_code,
                extended,
            }),
        })
    }

    pub(crate) fn public(&self) -> &PublicKey {
        &self.public
    }

    pub(crate) fn secret(&self) -> &KeySecret {
        &self.secret
    }

    /// The extended public key of a secp256k1 key.
    pub(crate) fn extended(&self) -> Option<&ExtendedPublicKey> {
        match &self.secret {
            KeySecret::Ed25519(_) => None,
            KeySecret::Secp256k1(k) => Some(&k.extended),
        }
    }

    /// The derivation path of a secp256k1 key.
    pub(crate) fn path(&self) -> Option<&DerivationPath> {
        match &self.secret {
            KeySecret::Ed25519(_) => None,
            KeySecret::Secp256k1(k) => Some(&k.path),
        }
    }

    /// Signs `message`.
    ///
    /// - ed25519: RFC 8032 (deterministic), 64 bytes.
    /// - ECDSA: RFC 6979 deterministic nonce, low-S (libsecp256k1 never
    ///   produces high-S), compact `r || s`, 64 bytes.
    /// - BIP340 Schnorr: with 32 bytes of fresh auxiliary randomness from the
    ///   OS for every signature, as BIP340 recommends against side-channel and
    ///   fault attacks. Two signatures of the same message therefore differ;
    ///   the pipeline's replay of stored signatures (I3) is what makes a
    ///   repeat byte-identical.
    /// - Child ECDSA: as ECDSA, by the unhardened child at the given path.
    /// - Taproot key spend: as BIP340, by the child at the given path
    ///   tweaked per BIP341 (`TapTweak(P || merkle_root)`, negated as the
    ///   tweak requires).
    pub(crate) fn sign(
        &self,
        secp: &Secp256k1<All>,
        name: &KeyId,
        message: &SignMessage,
    ) -> Result<Signature, KeyError> {
        match (&self.secret, message) {
            (KeySecret::Ed25519(key), SignMessage::Ed25519(msg)) => {
                Ok(Signature(key.sign(msg).to_bytes().to_vec()))
            }
            (KeySecret::Secp256k1(key), SignMessage::EcdsaDigest(digest)) => {
                let sig = secp.sign_ecdsa(&Message::from_digest(*digest), &key.secret);
                Ok(Signature(sig.serialize_compact().to_vec()))
            }
            (KeySecret::Secp256k1(key), SignMessage::SchnorrDigest(digest)) => {
                let mut aux = Zeroizing::new([0u8; 32]);
                fill_random(aux.as_mut()).map_err(|e| KeyError::Backend(e.to_string()))?;
                let sig = secp.sign_schnorr_with_aux_rand(
                    &Message::from_digest(*digest),
                    &key.keypair,
                    &aux,
                );
                Ok(Signature(sig.serialize().to_vec()))
            }
            (KeySecret::Secp256k1(key), SignMessage::ChildEcdsaDigest { path, digest }) => {
                let mut child = key.child_secret(secp, path)?;
                let sig = secp.sign_ecdsa(&Message::from_digest(*digest), &child);
                child.non_secure_erase();
                Ok(Signature(sig.serialize_compact().to_vec()))
            }
            (
                KeySecret::Secp256k1(key),
                SignMessage::TaprootKeySpend {
                    path,
                    merkle_root,
                    digest,
                },
            ) => {
                let mut child = key.child_secret(secp, path)?;
                let keypair = Keypair::from_secret_key(secp, &child);
                child.non_secure_erase();
                let root = merkle_root.map(TapNodeHash::from_byte_array);
                let mut tweaked = keypair.tap_tweak(secp, root).to_keypair();
                let mut aux = Zeroizing::new([0u8; 32]);
                fill_random(aux.as_mut()).map_err(|e| KeyError::Backend(e.to_string()))?;
                let sig =
                    secp.sign_schnorr_with_aux_rand(&Message::from_digest(*digest), &tweaked, &aux);
                tweaked.non_secure_erase();
                Ok(Signature(sig.serialize().to_vec()))
            }
            (_, message) => Err(KeyError::SchemeMismatch {
                key: name.to_string(),
                scheme: self.public.scheme,
                wanted: message.kind(),
            }),
        }
    }
}

impl fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("KeyEntry");
        s.field("public", &self.public);
        if let Some(path) = self.path() {
            s.field("path", &format_path(path));
        }
        s.finish_non_exhaustive()
    }
}
