//! Helpers and known vectors shared by the integration tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use base64ct::{Base64, Encoding as _};
use bitcoin::bip32::DerivationPath;
use bitcoin::hashes::{Hash as _, sha256};
use secrecy::{SecretSlice, SecretString};
use tempfile::TempDir;
use tidemark_core::KeyId;
use tidemark_keys::{KdfParams, SoftwareKeystore};

pub(crate) const BIP32_VECTOR_1_SEED: &str = "000102030405060708090a0b0c0d0e0f";

/// RFC 8032 section 7.1, TEST 1 (empty message) and TEST 2 (one byte).
pub(crate) const RFC8032_1_SECRET: &str =
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
pub(crate) const RFC8032_1_PUBLIC: &str =
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
pub(crate) const RFC8032_1_SIGNATURE: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
pub(crate) const RFC8032_2_SECRET: &str =
    "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";
pub(crate) const RFC8032_2_PUBLIC: &str =
    "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
pub(crate) const RFC8032_2_SIGNATURE: &str = "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00";

pub(crate) fn pass(s: &str) -> SecretString {
    SecretString::from(s)
}

pub(crate) fn id(s: &str) -> KeyId {
    KeyId::new(s).unwrap()
}

pub(crate) fn path(s: &str) -> DerivationPath {
    s.parse().unwrap()
}

pub(crate) fn seed(hex_seed: &str) -> SecretSlice<u8> {
    SecretSlice::from(hex::decode(hex_seed).unwrap())
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    let mut buf = [0u8; 128];
    Base64::encode(bytes, &mut buf).unwrap().to_owned()
}

/// A `priv_validator_key.json` as CometBFT writes it.
pub(crate) fn cometbft_json(secret_hex: &str, public_hex: &str) -> String {
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

pub(crate) struct Fixture {
    _dir: TempDir,
    pub(crate) file: PathBuf,
}

pub(crate) fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keystore.json");
    Fixture { _dir: dir, file }
}

pub(crate) fn new_store(file: &Path) -> SoftwareKeystore {
    SoftwareKeystore::create(
        file,
        &pass("correct horse"),
        KdfParams::insecure_for_tests(),
    )
    .unwrap()
}

pub(crate) fn mode_of(file: &Path) -> u32 {
    fs::metadata(file).unwrap().permissions().mode() & 0o7777
}

pub(crate) fn sha256d(msg: &[u8]) -> [u8; 32] {
    sha256::Hash::hash(msg).to_byte_array()
}
