//! The server's configuration: one TOML file.
//!
//! Unknown fields are rejected, and every error names the file and the
//! field, so an operator's typo never silently turns a safety setting off.
//! Relative paths are resolved against the directory of the config file.
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:7443"
//! max_in_flight = 512
//!
//! [tls]
//! ca_cert = "tls/ca.pem"
//! server_cert = "tls/server.pem"
//! server_key = "tls/server-key.pem"
//!
//! [store]
//! path = "state.db"
//!
//! [keystore]
//! path = "keystore.json"
//! passphrase_file = "passphrase"
//!
//! [metrics]
//! listen = "127.0.0.1:9464"
//!
//! [[bitcoin.wallets]]
//! name = "payouts"            # the id of a secp256k1 account key
//! kind = "wpkh"               # or "tr"
//! network = "regtest"         # bitcoin, testnet, testnet4, signet, regtest
//! policy = "policies/bitcoin-wallet.toml"
//!
//! [lightning]
//! node = "ln-node"            # the node key (objects and grants)
//! network = "regtest"
//! policy = "policies/lightning-default.toml"
//! remote_key_derivation = "v2"
//!
//! [[clients]]
//! identity = "replica-1"
//! keys = ["validator", "payouts", "ln-node"]
//! domains = ["consensus", "bitcoin", "lightning"]
//! ```

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tidemark_bitcoin::bitcoin::Network;
use tidemark_bitcoin::{SpendPolicy, WalletKind};
use tidemark_core::{ClientId, Domain, KeyId};

mod lightning;

pub use lightning::{LIGHTNING_SEED_LEN, LightningConfig, LightningSection};

/// The configuration file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or a field is wrong; the message names
    /// the field (and its line).
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, naming the field.
        message: String,
    },
    /// A field parsed but its value is not allowed.
    #[error("invalid config file {path}: field `{field}`: {message}")]
    Field {
        /// The file.
        path: PathBuf,
        /// The field, dotted (`clients[2].identity`).
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The gRPC listener and its limits.
    pub server: ServerSection,
    /// Mutual TLS material.
    pub tls: TlsSection,
    /// The durable store.
    pub store: StoreSection,
    /// The software keystore.
    pub keystore: KeystoreSection,
    /// Metrics and health endpoints.
    #[serde(default)]
    pub metrics: Option<MetricsSection>,
    /// Consensus policy options.
    #[serde(default)]
    pub consensus: ConsensusSection,
    /// On-chain wallets.
    #[serde(default)]
    pub bitcoin: BitcoinSection,
    /// The Lightning node (at most one: its keys derive from the
    /// keystore's seed).
    #[serde(default)]
    pub lightning: Option<LightningSection>,
    /// The access-control list: one entry per client identity.
    #[serde(default)]
    pub clients: Vec<ClientGrant>,
    /// The file this was read from (for error messages).
    #[serde(skip)]
    file: PathBuf,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Address to listen on, e.g. `127.0.0.1:7443`.
    pub listen: SocketAddr,
    /// Requests in flight beyond this are refused with
    /// `RESOURCE_EXHAUSTED` before any work is done.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Deadline applied to requests that carry none, in milliseconds.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
}

fn default_max_in_flight() -> usize {
    1024
}

fn default_request_timeout_ms() -> u64 {
    10_000
}

/// `[tls]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// The CA that issues client certificates (PEM).
    pub ca_cert: PathBuf,
    /// The server's certificate chain (PEM).
    pub server_cert: PathBuf,
    /// The server's private key (PEM, mode 0600).
    pub server_key: PathBuf,
}

/// `[store]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// The SQLite database file. It must exist (`tidemark init` creates
    /// it): a missing file is an error, never a fresh empty store.
    pub path: PathBuf,
}

/// `[keystore]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeystoreSection {
    /// The encrypted keystore file (mode 0600).
    pub path: PathBuf,
    /// A file holding the passphrase (mode 0600). If absent, the
    /// passphrase is read from the environment variable
    /// `TIDEMARK_PASSPHRASE`.
    #[serde(default)]
    pub passphrase_file: Option<PathBuf>,
}

/// `[metrics]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// Address for `/metrics`, `/livez` and `/readyz` (plain HTTP; bind it
    /// to a private interface).
    pub listen: SocketAddr,
}

/// `[consensus]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusSection {
    /// Tezos magic bytes other than 0x11, 0x12, 0x13 that may be signed
    /// (without a watermark). Empty by default.
    #[serde(default)]
    pub tezos_allowed_magic: Vec<u8>,
}

/// `[bitcoin]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BitcoinSection {
    /// The wallets the signer serves.
    #[serde(default)]
    pub wallets: Vec<WalletSection>,
}

/// `[[bitcoin.wallets]]`: one descriptor wallet.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalletSection {
    /// The wallet's name: the id of its secp256k1 account key in the
    /// keystore (e.g. a key at `m/84'/1'/0'`). Clients are granted it in
    /// `keys`, with the domain `bitcoin`.
    pub name: String,
    /// `wpkh` or `tr` (key path).
    pub kind: WalletKind,
    /// `bitcoin`, `testnet`, `testnet4`, `signet` or `regtest`.
    pub network: String,
    /// The spend policy file (`policies/bitcoin-wallet.toml`).
    pub policy: PathBuf,
}

/// A wallet ready to serve: its section validated, its policy loaded.
#[derive(Debug, Clone)]
pub struct WalletConfig {
    /// The account key's id.
    pub name: KeyId,
    /// The script type.
    pub kind: WalletKind,
    /// The network.
    pub network: Network,
    /// The spend policy.
    pub policy: SpendPolicy,
}

/// `[[clients]]`: what one client identity may do.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientGrant {
    /// The identity in the client's certificate.
    pub identity: String,
    /// Key ids it may sign with; `["*"]` for all.
    #[serde(default)]
    pub keys: Vec<String>,
    /// Domains it may use (`consensus`, `lightning`, `bitcoin`).
    #[serde(default)]
    pub domains: Vec<String>,
    /// May call the admin service.
    #[serde(default)]
    pub admin: bool,
}

/// A validated grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// `None`: every key.
    pub keys: Option<BTreeSet<KeyId>>,
    /// The domains.
    pub domains: BTreeSet<Domain>,
    /// Admin access.
    pub admin: bool,
}

impl Config {
    /// Reads and validates `path`; relative paths inside are resolved
    /// against its directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, path, base)
    }

    /// Parses `text` (read from `path`), resolving paths against `base`.
    pub fn parse(text: &str, path: &Path, base: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        config.file = path.to_owned();
        config.resolve(base);
        config.validate(path)?;
        Ok(config)
    }

    fn resolve(&mut self, base: &Path) {
        let join = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        join(&mut self.tls.ca_cert);
        join(&mut self.tls.server_cert);
        join(&mut self.tls.server_key);
        join(&mut self.store.path);
        join(&mut self.keystore.path);
        if let Some(p) = self.keystore.passphrase_file.as_mut() {
            join(p);
        }
        for w in &mut self.bitcoin.wallets {
            join(&mut w.policy);
        }
        if let Some(l) = self.lightning.as_mut() {
            lightning::resolve(l, base);
        }
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let field = |field: String, message: String| ConfigError::Field {
            path: path.to_owned(),
            field,
            message,
        };
        if self.server.max_in_flight == 0 {
            return Err(field(
                "server.max_in_flight".into(),
                "must be at least 1".into(),
            ));
        }
        if self.server.request_timeout_ms == 0 {
            return Err(field(
                "server.request_timeout_ms".into(),
                "must be at least 1".into(),
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, c) in self.clients.iter().enumerate() {
            if !seen.insert(c.identity.as_str()) {
                return Err(field(
                    format!("clients[{i}].identity"),
                    format!("{:?} is listed twice", c.identity),
                ));
            }
            self.grant_of(i, c).map_err(|(f, m)| field(f, m))?;
        }
        let mut names = BTreeSet::new();
        for (i, w) in self.bitcoin.wallets.iter().enumerate() {
            let (name, _) = wallet_ids(i, w).map_err(|(f, m)| field(f, m))?;
            if !names.insert(name) {
                return Err(field(
                    format!("bitcoin.wallets[{i}].name"),
                    format!("{:?} is listed twice", w.name),
                ));
            }
        }
        if let Some(l) = &self.lightning {
            lightning::ids(l).map_err(|(f, m)| field(f, m))?;
        }
        Ok(())
    }

    /// The Lightning node, its policy file read and checked against its
    /// network; `None` when the config has no `[lightning]`.
    pub fn lightning(&self) -> Result<Option<LightningConfig>, ConfigError> {
        self.lightning
            .as_ref()
            .map(|l| lightning::load(l, &self.file))
            .transpose()
    }

    /// The configured wallets with their policy files read and checked
    /// against each wallet's network; an error names the file and field.
    pub fn wallets(&self) -> Result<Vec<WalletConfig>, ConfigError> {
        self.bitcoin
            .wallets
            .iter()
            .enumerate()
            .map(|(i, w)| self.wallet(i, w))
            .collect()
    }

    /// The wallet called `name`, its policy loaded.
    pub fn wallet_named(&self, name: &str) -> Result<Option<WalletConfig>, ConfigError> {
        self.bitcoin
            .wallets
            .iter()
            .enumerate()
            .find(|(_, w)| w.name == name)
            .map(|(i, w)| self.wallet(i, w))
            .transpose()
    }

    fn wallet(&self, i: usize, w: &WalletSection) -> Result<WalletConfig, ConfigError> {
        let (name, network) = wallet_ids(i, w).map_err(|(field, message)| ConfigError::Field {
            path: self.file.clone(),
            field,
            message,
        })?;
        let policy_error = |message: String| ConfigError::Field {
            path: self.file.clone(),
            field: format!("bitcoin.wallets[{i}].policy"),
            message: format!("{}: {message}", w.policy.display()),
        };
        let text = std::fs::read_to_string(&w.policy)
            .map_err(|e| policy_error(format!("cannot read: {e}")))?;
        let policy =
            SpendPolicy::from_toml(&text, network).map_err(|e| policy_error(e.to_string()))?;
        Ok(WalletConfig {
            name,
            kind: w.kind,
            network,
            policy,
        })
    }

    fn grant_of(&self, i: usize, c: &ClientGrant) -> Result<(ClientId, Grant), (String, String)> {
        let id = ClientId::new(c.identity.clone())
            .map_err(|e| (format!("clients[{i}].identity"), e.to_string()))?;
        let keys = if c.keys.iter().any(|k| k == "*") {
            None
        } else {
            let mut keys = BTreeSet::new();
            for (j, k) in c.keys.iter().enumerate() {
                keys.insert(
                    KeyId::new(k.clone())
                        .map_err(|e| (format!("clients[{i}].keys[{j}]"), e.to_string()))?,
                );
            }
            Some(keys)
        };
        let mut domains = BTreeSet::new();
        for (j, d) in c.domains.iter().enumerate() {
            domains.insert(
                d.parse::<Domain>()
                    .map_err(|e| (format!("clients[{i}].domains[{j}]"), e.to_string()))?,
            );
        }
        Ok((
            id,
            Grant {
                keys,
                domains,
                admin: c.admin,
            },
        ))
    }

    /// The validated grants, by identity.
    pub fn grants(&self) -> Vec<(ClientId, Grant)> {
        self.clients
            .iter()
            .enumerate()
            .filter_map(|(i, c)| self.grant_of(i, c).ok())
            .collect()
    }
}

/// The validated name and network of wallet `i`, or the field at fault.
fn wallet_ids(i: usize, w: &WalletSection) -> Result<(KeyId, Network), (String, String)> {
    let name = KeyId::new(w.name.clone())
        .map_err(|e| (format!("bitcoin.wallets[{i}].name"), e.to_string()))?;
    let network = w.network.parse::<Network>().map_err(|_| {
        (
            format!("bitcoin.wallets[{i}].network"),
            format!(
                "{:?} is not one of bitcoin, testnet, testnet4, signet, regtest",
                w.network
            ),
        )
    })?;
    Ok((name, network))
}

#[cfg(test)]
mod tests;
