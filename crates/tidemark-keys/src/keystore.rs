//! [`SoftwareKeystore`]: the keystore file, opened, as a [`KeyBackend`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use bitcoin::bip32::DerivationPath;
use bitcoin::secp256k1::{All, Secp256k1};
use secrecy::{ExposeSecret as _, SecretSlice, SecretString};
use tidemark_core::{
    ExtendedPublicKey, KeyBackend, KeyError, KeyId, PublicKey, SignMessage, Signature,
};
use zeroize::Zeroizing;

use crate::cometbft::parse_priv_validator_key;
use crate::envelope::{Header, Sealed};
use crate::error::KeystoreError;
use crate::fsio::{Overwrite, read_private_file, write_private_file};
use crate::kdf::{KdfParams, SALT_LEN, derive_file_key};
use crate::keys::{KeyEntry, Seed, fill_random};
use crate::plaintext::{self, Payload};

/// An encrypted keystore file holding a BIP32 seed and named keys, opened
/// and ready to sign.
///
/// - secp256k1 keys are derived from the seed by a BIP32 path and sign
///   ECDSA and BIP340 Schnorr; ed25519 keys are random or imported secrets.
/// - Every change ([`add_ed25519`](Self::add_ed25519),
///   [`add_secp256k1`](Self::add_secp256k1),
///   [`import_cometbft_key`](Self::import_cometbft_key)) is saved to the
///   file atomically before it returns; if the save fails the change is
///   undone in memory too.
/// - Adding keys takes `&mut self`; signing takes `&self` and runs in
///   parallel. Put the keystore behind an `RwLock` to add keys while serving.
///
/// The passphrase is not kept: the keystore keeps the 32-byte file key that
/// Argon2id derived from it, so that saving needs no new derivation.
pub struct SoftwareKeystore {
    path: PathBuf,
    header: Header,
    file_key: Zeroizing<[u8; 32]>,
    seed: Seed,
    keys: BTreeMap<KeyId, KeyEntry>,
    secp: Secp256k1<All>,
}

impl SoftwareKeystore {
    /// Creates a new keystore file at `path` with a fresh random 32-byte
    /// seed and no keys. Fails with [`KeystoreError::AlreadyExists`] rather
    /// than overwrite a file.
    pub fn create(
        path: impl AsRef<Path>,
        passphrase: &SecretString,
        params: KdfParams,
    ) -> Result<Self, KeystoreError> {
        Self::create_with(path.as_ref(), passphrase, Seed::generate()?, params)
    }

    /// Creates a new keystore file at `path` around an existing BIP32 seed
    /// (16 to 64 bytes, e.g. a BIP39 seed), to restore a backup.
    pub fn create_from_seed(
        path: impl AsRef<Path>,
        passphrase: &SecretString,
        seed: SecretSlice<u8>,
        params: KdfParams,
    ) -> Result<Self, KeystoreError> {
        let seed = Seed::new(Zeroizing::new(seed.expose_secret().to_vec()))?;
        Self::create_with(path.as_ref(), passphrase, seed, params)
    }

    fn create_with(
        path: &Path,
        passphrase: &SecretString,
        seed: Seed,
        params: KdfParams,
    ) -> Result<Self, KeystoreError> {
        if passphrase.expose_secret().is_empty() {
            return Err(KeystoreError::EmptyPassphrase);
        }
        let mut salt = vec![0u8; SALT_LEN];
        fill_random(&mut salt)?;
        let header = Header { kdf: params, salt };
        let file_key = derive_file_key(&header.kdf, &header.salt, passphrase)?;
        let keystore = SoftwareKeystore {
            path: path.to_path_buf(),
            header,
            file_key,
            seed,
            keys: BTreeMap::new(),
            secp: Secp256k1::new(),
        };
        keystore.write(Overwrite::Never)?;
        Ok(keystore)
    }

    /// Opens the keystore file at `path`.
    ///
    /// Refuses a file that grants any permission to group or others
    /// ([`KeystoreError::InsecurePermissions`]); a wrong passphrase or a
    /// changed byte anywhere in the header, nonce or ciphertext gives
    /// [`KeystoreError::WrongPassphraseOrTampered`].
    pub fn open(path: impl AsRef<Path>, passphrase: &SecretString) -> Result<Self, KeystoreError> {
        let path = path.as_ref();
        let bytes = read_private_file(path)?;
        Self::from_file_bytes(path, &bytes, passphrase)
    }

    /// Decrypts and decodes a keystore file's contents; `path` is where
    /// later saves go. Never panics, whatever `bytes` holds.
    pub(crate) fn from_file_bytes(
        path: &Path,
        bytes: &[u8],
        passphrase: &SecretString,
    ) -> Result<Self, KeystoreError> {
        let sealed = Sealed::parse(bytes)?;
        let file_key = derive_file_key(&sealed.header.kdf, &sealed.header.salt, passphrase)?;
        let plaintext = sealed.open(&file_key)?;
        let secp = Secp256k1::new();
        let Payload { seed, keys } = plaintext::decode(&plaintext, &secp)?;
        Ok(SoftwareKeystore {
            path: path.to_path_buf(),
            header: sealed.header,
            file_key,
            seed,
            keys,
            secp,
        })
    }

    /// Adds a new random ed25519 key named `name` and saves.
    pub fn add_ed25519(&mut self, name: KeyId) -> Result<PublicKey, KeystoreError> {
        self.check_new_name(&name)?;
        let entry = KeyEntry::generate_ed25519()?;
        self.insert_and_save(name, entry)
    }

    /// Imports the ed25519 key of a CometBFT `priv_validator_key.json` under
    /// `name` and saves. The file's public key and address, when present,
    /// must match its secret. Hold `json` in a zeroizing buffer: it is the
    /// secret in plain text.
    pub fn import_cometbft_key(
        &mut self,
        name: KeyId,
        json: &str,
    ) -> Result<PublicKey, KeystoreError> {
        self.check_new_name(&name)?;
        let entry = KeyEntry::ed25519(parse_priv_validator_key(json)?);
        self.insert_and_save(name, entry)
    }

    /// Adds the secp256k1 key at BIP32 `path` under the seed as `name` and
    /// saves. The returned public key is compressed (33 bytes); its x-only
    /// form for BIP340 is bytes 1 to 32.
    pub fn add_secp256k1(
        &mut self,
        name: KeyId,
        path: &DerivationPath,
    ) -> Result<PublicKey, KeystoreError> {
        self.check_new_name(&name)?;
        let entry = KeyEntry::derive_secp256k1(&self.secp, &self.seed, path.clone())?;
        self.insert_and_save(name, entry)
    }

    /// Writes the keystore to its file atomically (temporary file, fsync,
    /// rename, directory fsync), encrypted under a fresh nonce.
    pub fn save(&self) -> Result<(), KeystoreError> {
        self.write(Overwrite::Replace)
    }

    /// Every key with its public key, ordered by name.
    pub fn keys(&self) -> Vec<(KeyId, PublicKey)> {
        self.keys
            .iter()
            .map(|(name, entry)| (name.clone(), entry.public().clone()))
            .collect()
    }

    /// The BIP32 path of a secp256k1 key; `None` for an ed25519 key or an
    /// unknown name.
    pub fn derivation_path(&self, key: &KeyId) -> Option<&DerivationPath> {
        self.keys.get(key).and_then(KeyEntry::path)
    }

    /// The keystore file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The Argon2id parameters the file is encrypted with.
    pub fn kdf_params(&self) -> KdfParams {
        self.header.kdf
    }

    /// Lends the BIP32 seed to `derive`, for in-process key derivation that
    /// this crate does not do itself (a Lightning signer initialising LDK's
    /// key manager from it).
    ///
    /// This is the one door through which secret material leaves this
    /// crate. It exists for code running inside the signer process only:
    /// never send what `derive` computes over an API, log it or store it
    /// unencrypted, and erase copies (keep them in `Zeroizing`).
    pub fn with_seed_for_derivation<R>(&self, derive: impl FnOnce(&[u8]) -> R) -> R {
        derive(self.seed.as_bytes())
    }

    fn check_new_name(&self, name: &KeyId) -> Result<(), KeystoreError> {
        if self.keys.contains_key(name) {
            return Err(KeystoreError::DuplicateKey(name.clone()));
        }
        Ok(())
    }

    fn insert_and_save(
        &mut self,
        name: KeyId,
        entry: KeyEntry,
    ) -> Result<PublicKey, KeystoreError> {
        let public = entry.public().clone();
        self.keys.insert(name.clone(), entry);
        if let Err(e) = self.save() {
            self.keys.remove(&name);
            return Err(e);
        }
        Ok(public)
    }

    fn write(&self, overwrite: Overwrite) -> Result<(), KeystoreError> {
        let plaintext = plaintext::encode(&self.seed, &self.keys);
        let sealed = Sealed::seal(self.header.clone(), &self.file_key, &plaintext)?;
        write_private_file(&self.path, &sealed.encode()?, overwrite)
    }
}

impl KeyBackend for SoftwareKeystore {
    fn public_key(&self, key: &KeyId) -> Result<PublicKey, KeyError> {
        self.keys
            .get(key)
            .map(|entry| entry.public().clone())
            .ok_or_else(|| KeyError::UnknownKey(key.to_string()))
    }

    fn sign(&self, key: &KeyId, message: &SignMessage) -> Result<Signature, KeyError> {
        self.keys
            .get(key)
            .ok_or_else(|| KeyError::UnknownKey(key.to_string()))?
            .sign(&self.secp, key, message)
    }

    fn keys(&self) -> Result<Vec<(KeyId, PublicKey)>, KeyError> {
        Ok(SoftwareKeystore::keys(self))
    }

    fn extended_public_key(&self, key: &KeyId) -> Result<ExtendedPublicKey, KeyError> {
        self.keys
            .get(key)
            .ok_or_else(|| KeyError::UnknownKey(key.to_string()))?
            .extended()
            .cloned()
            .ok_or_else(|| KeyError::NotExtended(key.to_string()))
    }
}

impl fmt::Debug for SoftwareKeystore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Keys<'a>(&'a BTreeMap<KeyId, KeyEntry>);
        impl fmt::Debug for Keys<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(self.0.iter().map(|(name, entry)| (name.as_str(), entry)))
                    .finish()
            }
        }
        f.debug_struct("SoftwareKeystore")
            .field("path", &self.path)
            .field("kdf", &self.header.kdf)
            .field("keys", &Keys(&self.keys))
            .finish_non_exhaustive()
    }
}
