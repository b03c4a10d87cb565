//! A descriptor wallet over one BIP32 account key of the key backend.
//!
//! The wallet is `wpkh(K/0/*)` + `wpkh(K/1/*)` or `tr(K/0/*)` + `tr(K/1/*)`
//! (key path only), where `K` is the account key (for example
//! `m/84'/1'/0'`) the key backend holds. The signer never trusts a PSBT's
//! claim that a script is the wallet's: it derives the script from the
//! account's extended public key and compares.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex, PoisonError};

use bitcoin::bip32::{ChainCode, ChildNumber, DerivationPath, Fingerprint, KeySource, Xpub};
use bitcoin::secp256k1::{self, Secp256k1, VerifyOnly};
use bitcoin::{CompressedPublicKey, Network, NetworkKind, ScriptBuf};
use miniscript::Descriptor;
use miniscript::descriptor::DescriptorPublicKey;
use serde::{Deserialize, Serialize};
use tidemark_core::{ChildPath, ExtendedPublicKey, KeyId};

use crate::error::BitcoinError;

/// The script type of a wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WalletKind {
    /// Segwit v0 pay-to-witness-pubkey-hash (BIP 84), ECDSA.
    Wpkh,
    /// Taproot key path (BIP 86), BIP340 Schnorr.
    Tr,
}

impl WalletKind {
    /// `wpkh` or `tr`.
    pub fn as_str(self) -> &'static str {
        match self {
            WalletKind::Wpkh => "wpkh",
            WalletKind::Tr => "tr",
        }
    }
}

impl fmt::Display for WalletKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The two branches under the account key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Branch {
    /// `0/*`: addresses handed out to payers.
    Receive,
    /// `1/*`: change.
    Change,
}

impl Branch {
    fn child(self) -> u32 {
        match self {
            Branch::Receive => 0,
            Branch::Change => 1,
        }
    }
}

/// A wallet: a name (the account key's id), a script type, a network and
/// the account's extended public key.
#[derive(Debug, Clone)]
pub struct Wallet {
    name: KeyId,
    kind: WalletKind,
    network: Network,
    xpub: Xpub,
    master_fingerprint: Fingerprint,
    account_path: DerivationPath,
    secp: Secp256k1<VerifyOnly>,
    /// Child public keys and their scripts already derived (public data:
    /// a cache, bounded).
    children: Arc<Mutex<HashMap<ChildPath, (secp256k1::PublicKey, ScriptBuf)>>>,
}

/// Child keys kept by [`Wallet`]'s cache before it is emptied.
const MAX_CACHED_CHILDREN: usize = 100_000;

impl Wallet {
    /// The wallet of account key `name`, described by `key` (from
    /// [`KeyBackend::extended_public_key`](tidemark_core::KeyBackend::extended_public_key)).
    pub fn new(
        name: KeyId,
        kind: WalletKind,
        network: Network,
        key: &ExtendedPublicKey,
    ) -> Result<Wallet, BitcoinError> {
        let depth = u8::try_from(key.path.len())
            .map_err(|_| BitcoinError::Config(format!("key {name}: path too deep")))?;
        let public_key = secp256k1::PublicKey::from_slice(&key.public_key)
            .map_err(|e| BitcoinError::Config(format!("key {name}: bad public key: {e}")))?;
        let account_path: DerivationPath = key.path.iter().map(|c| ChildNumber::from(*c)).collect();
        let xpub = Xpub {
            network: NetworkKind::from(network),
            depth,
            parent_fingerprint: Fingerprint::from(key.parent_fingerprint),
            child_number: account_path
                .into_iter()
                .last()
                .copied()
                .unwrap_or(ChildNumber::Normal { index: 0 }),
            public_key,
            chain_code: ChainCode::from(key.chain_code),
        };
        Ok(Wallet {
            name,
            kind,
            network,
            xpub,
            master_fingerprint: Fingerprint::from(key.master_fingerprint),
            account_path,
            secp: Secp256k1::verification_only(),
            children: Arc::default(),
        })
    }

    /// The wallet's name: the id of its account key.
    pub fn name(&self) -> &KeyId {
        &self.name
    }

    /// The script type.
    pub fn kind(&self) -> WalletKind {
        self.kind
    }

    /// The network.
    pub fn network(&self) -> Network {
        self.network
    }

    /// The account's extended public key.
    pub fn xpub(&self) -> &Xpub {
        &self.xpub
    }

    /// The output descriptor of `branch`, with its checksum, in the form a
    /// watch-only wallet (BDK, Bitcoin Core) imports:
    /// `wpkh([fingerprint/84'/1'/0']tpub.../0/*)#checksum`.
    pub fn descriptor(&self, branch: Branch) -> String {
        let origin = self.account_path.to_string();
        let origin = origin.trim_start_matches('m').trim_start_matches('/');
        let text = format!(
            "{}([{}/{}]{}/{}/*)",
            self.kind,
            self.master_fingerprint,
            origin,
            self.xpub,
            branch.child()
        );
        // A descriptor we built from a valid key always parses; the
        // checksum is what parsing and printing add.
        match Descriptor::<DescriptorPublicKey>::from_str(&text) {
            Ok(d) => d.to_string(),
            Err(_) => text,
        }
    }

    /// The script of the wallet at `branch`/`index`.
    pub fn script_at(&self, branch: Branch, index: u32) -> Result<ScriptBuf, BitcoinError> {
        let path = ChildPath::new(vec![branch.child(), index])
            .ok_or_else(|| BitcoinError::Config(format!("index {index} is hardened")))?;
        self.script_for(&path)
    }

    /// The address of the wallet at `branch`/`index`.
    pub fn address_at(&self, branch: Branch, index: u32) -> Result<bitcoin::Address, BitcoinError> {
        let script = self.script_at(branch, index)?;
        bitcoin::Address::from_script(&script, self.network)
            .map_err(|e| BitcoinError::Config(e.to_string()))
    }

    pub(crate) fn child_public_key(
        &self,
        path: &ChildPath,
    ) -> Result<secp256k1::PublicKey, BitcoinError> {
        self.child(path).map(|(key, _)| key)
    }

    fn script_for(&self, path: &ChildPath) -> Result<ScriptBuf, BitcoinError> {
        self.child(path).map(|(_, script)| script)
    }

    /// The child key at `path` below the account and its script, from the
    /// cache or derived.
    fn child(&self, path: &ChildPath) -> Result<(secp256k1::PublicKey, ScriptBuf), BitcoinError> {
        let cache = || self.children.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = cache().get(path) {
            return Ok(found.clone());
        }
        let children: Vec<ChildNumber> = path
            .children()
            .iter()
            .map(|i| ChildNumber::Normal { index: *i })
            .collect();
        let key = self
            .xpub
            .derive_pub(&self.secp, &children)
            .map(|x| x.public_key)
            .map_err(|e| BitcoinError::Config(format!("cannot derive {path}: {e}")))?;
        let script = match self.kind {
            WalletKind::Wpkh => ScriptBuf::new_p2wpkh(&CompressedPublicKey(key).wpubkey_hash()),
            WalletKind::Tr => ScriptBuf::new_p2tr(&self.secp, key.x_only_public_key().0, None),
        };
        let mut cached = cache();
        if cached.len() >= MAX_CACHED_CHILDREN {
            cached.clear();
        }
        cached.insert(path.clone(), (key, script.clone()));
        Ok((key, script))
    }

    /// The key origin (`[master fingerprint/account/branch/index]`) of the
    /// wallet's key at `branch`/`index`, as a PSBT names it.
    pub fn origin(&self, branch: Branch, index: u32) -> KeySource {
        let path = self.account_path.extend([
            ChildNumber::Normal {
                index: branch.child(),
            },
            ChildNumber::Normal { index },
        ]);
        (self.master_fingerprint, path)
    }

    /// The public key at `branch`/`index`.
    pub fn public_key_at(
        &self,
        branch: Branch,
        index: u32,
    ) -> Result<secp256k1::PublicKey, BitcoinError> {
        let path = ChildPath::new(vec![branch.child(), index])
            .ok_or_else(|| BitcoinError::Config(format!("index {index} is hardened")))?;
        self.child_public_key(&path)
    }

    /// The branch and index a key origin names under this wallet's
    /// account, if it names one (`[fingerprint/account/branch/index]`).
    fn child_of(&self, source: &KeySource) -> Option<ChildPath> {
        let (fingerprint, path) = source;
        if *fingerprint != self.master_fingerprint {
            return None;
        }
        let account = self.account_path.as_ref();
        let full = path.as_ref();
        let rest = full.strip_prefix(account)?;
        let children: Option<Vec<u32>> = rest
            .iter()
            .map(|c| match c {
                ChildNumber::Normal { index } => Some(*index),
                ChildNumber::Hardened { .. } => None,
            })
            .collect();
        let children = children?;
        (children.len() == 2 && children[0] <= 1)
            .then(|| ChildPath::new(children))
            .flatten()
    }

    /// Decides whether `script` is the wallet's, from the key origins a
    /// PSBT attached to it.
    ///
    /// - `Ours(path)`: an origin of this wallet derives exactly `script`.
    /// - `Lie`: an origin claims this wallet's account but no claimed
    ///   child derives `script` (a foreign script disguised as change).
    /// - `Foreign`: no origin of this wallet's account at all.
    pub(crate) fn recognise<'a>(
        &self,
        script: &ScriptBuf,
        origins: impl Iterator<Item = &'a KeySource>,
    ) -> Ownership {
        let mut claimed = false;
        for source in origins {
            let Some(path) = self.child_of(source) else {
                continue;
            };
            claimed = true;
            if self.script_for(&path).is_ok_and(|s| s == *script) {
                return Ownership::Ours(path);
            }
        }
        if claimed {
            Ownership::Lie
        } else {
            Ownership::Foreign
        }
    }
}

/// Whether a script belongs to the wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ownership {
    /// Derived from the wallet's descriptors at this path.
    Ours(ChildPath),
    /// Claims the wallet's account but does not derive.
    Lie,
    /// Not the wallet's.
    Foreign,
}

#[cfg(test)]
mod tests;
