//! The files `tidemark init` writes, relative to its directory.
//!
//! ```text
//! DIR/
//!   tidemark.toml        the configuration
//!   state.db             the SQLite store of marks and audit records
//!   keystore.json        the encrypted keystore (0600)
//!   passphrase           the keystore passphrase (0600; development only,
//!                        use TIDEMARK_PASSPHRASE or a secret mount in production)
//!   tls/ca.crt, ca.key   the development CA (keep ca.key offline)
//!   tls/server.crt, .key the signer's certificate
//!   tls/<client>.crt,.key one certificate per replica, and `admin`
//!   policies/bitcoin-wallet.toml  the development wallets' spend policy
//!   policies/lightning-default.toml  the development Lightning node's policy
//! ```

use std::path::PathBuf;

/// The wallet policy's file name, under `policies/` (as in the repository).
pub const WALLET_POLICY_FILE: &str = "bitcoin-wallet.toml";

/// The Lightning channel policy's file name, under `policies/` (as in the
/// repository).
pub const LIGHTNING_POLICY_FILE: &str = "lightning-default.toml";

/// Paths inside an init directory.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The directory.
    pub dir: PathBuf,
}

impl Layout {
    /// The layout rooted at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Layout { dir: dir.into() }
    }

    /// `tidemark.toml`.
    pub fn config(&self) -> PathBuf {
        self.dir.join("tidemark.toml")
    }

    /// `state.db`.
    pub fn store(&self) -> PathBuf {
        self.dir.join("state.db")
    }

    /// `keystore.json`.
    pub fn keystore(&self) -> PathBuf {
        self.dir.join("keystore.json")
    }

    /// `passphrase`.
    pub fn passphrase(&self) -> PathBuf {
        self.dir.join("passphrase")
    }

    /// `tls/`.
    pub fn tls(&self) -> PathBuf {
        self.dir.join("tls")
    }

    /// `tls/<stem>.crt`.
    pub fn cert(&self, stem: &str) -> PathBuf {
        self.tls().join(format!("{stem}.crt"))
    }

    /// `tls/<stem>.key`.
    pub fn key(&self, stem: &str) -> PathBuf {
        self.tls().join(format!("{stem}.key"))
    }

    /// `policies/`.
    pub fn policies(&self) -> PathBuf {
        self.dir.join("policies")
    }

    /// `policies/bitcoin-wallet.toml`.
    pub fn wallet_policy(&self) -> PathBuf {
        self.policies().join(WALLET_POLICY_FILE)
    }

    /// `policies/lightning-default.toml`.
    pub fn lightning_policy(&self) -> PathBuf {
        self.policies().join(LIGHTNING_POLICY_FILE)
    }
}
