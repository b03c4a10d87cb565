//! What several commands share: opening the store and the keystore named
//! by a config, and reading the passphrase.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use secrecy::SecretString;
use tidemark_keys::SoftwareKeystore;
use tidemark_server::Config;
use tidemark_server::config::KeystoreSection;
use tidemark_store::SqliteStore;

/// The environment variable holding the keystore passphrase when the
/// config names no passphrase file.
pub(crate) const PASSPHRASE_ENV: &str = "TIDEMARK_PASSPHRASE";

/// Loads the config file.
pub(crate) fn load_config(path: &Path) -> anyhow::Result<Config> {
    Ok(Config::load(path)?)
}

/// Reads the passphrase from the configured file (mode 0600 enforced) or
/// from `TIDEMARK_PASSPHRASE`.
pub(crate) fn passphrase(section: &KeystoreSection) -> anyhow::Result<SecretString> {
    match &section.passphrase_file {
        Some(path) => {
            let meta = std::fs::metadata(path)
                .with_context(|| format!("cannot read passphrase file {}", path.display()))?;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                bail!(
                    "passphrase file {} has mode {mode:o}; it must not be readable by group or others (chmod 600)",
                    path.display()
                );
            }
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read passphrase file {}", path.display()))?;
            Ok(SecretString::from(
                text.trim_end_matches(['\n', '\r']).to_owned(),
            ))
        }
        None => match std::env::var(PASSPHRASE_ENV) {
            Ok(p) if !p.is_empty() => Ok(SecretString::from(p)),
            _ => bail!(
                "no passphrase: set keystore.passphrase_file in the config or the {PASSPHRASE_ENV} environment variable"
            ),
        },
    }
}

/// Opens the configured keystore.
pub(crate) fn open_keystore(config: &Config) -> anyhow::Result<SoftwareKeystore> {
    let passphrase = passphrase(&config.keystore)?;
    SoftwareKeystore::open(&config.keystore.path, &passphrase)
        .with_context(|| format!("cannot open keystore {}", config.keystore.path.display()))
}

/// Opens the configured store (it must exist).
pub(crate) fn open_store(config: &Config) -> anyhow::Result<SqliteStore> {
    SqliteStore::open(&config.store.path)
        .with_context(|| format!("cannot open store {}", config.store.path.display()))
}

/// The multi-threaded runtime the async commands run on.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tidemark")
        .build()
        .context("cannot start the runtime")
}
