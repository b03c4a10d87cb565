//! `tidemark init`: everything a signer needs, in one directory.
//!
//! Besides the validator key it creates two regtest wallets for
//! development (see [`DEV_WALLETS`]), with the shipped spend policy copied
//! to `policies/bitcoin-wallet.toml`, and a regtest Lightning node
//! ([`DEV_LIGHTNING_NODE`], its keys derived from the keystore's new
//! 32-byte seed as LDK's `KeysManager` derives them) with the shipped
//! channel policy copied to `policies/lightning-default.toml`; it grants
//! the replicas all of them.
//!
//! Refuses to touch a directory that already holds a config, a store or a
//! keystore: re-running init must never replace a store (that would forget
//! every mark) or a seed.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use rand::RngCore as _;
use secrecy::SecretString;
use tidemark_bitcoin::WalletKind;
use tidemark_core::KeyId;
use tidemark_keys::{DerivationPath, KdfParams, SoftwareKeystore};
use tidemark_store::SqliteStore;
use tidemark_tls::{DevCa, write_pem_files};

use crate::layout::{LIGHTNING_POLICY_FILE, Layout, WALLET_POLICY_FILE};

/// A development wallet `init` creates: its account key's name, script
/// type and BIP32 account path (coin type 1': every test network).
#[derive(Debug, Clone, Copy)]
pub struct DevWallet {
    /// The wallet's name: its account key's id.
    pub name: &'static str,
    /// The script type.
    pub kind: WalletKind,
    /// The account key's path (BIP 84 or BIP 86).
    pub path: &'static str,
}

/// The development `wpkh` wallet.
pub const WPKH_WALLET: &str = "wallet-wpkh";
/// The development `tr` wallet.
pub const TR_WALLET: &str = "wallet-tr";

/// The development wallets, on regtest.
pub const DEV_WALLETS: [DevWallet; 2] = [
    DevWallet {
        name: WPKH_WALLET,
        kind: WalletKind::Wpkh,
        path: "m/84'/1'/0'",
    },
    DevWallet {
        name: TR_WALLET,
        kind: WalletKind::Tr,
        path: "m/86'/1'/0'",
    },
];

/// The network of the development wallets.
pub const DEV_WALLET_NETWORK: &str = "regtest";

/// The shipped wallet policy, copied into the signer's directory.
const WALLET_POLICY: &str = include_str!("../../../../policies/bitcoin-wallet.toml");

/// The development Lightning node's key: its objects' key and the grant.
pub const DEV_LIGHTNING_NODE: &str = "ln-node";

/// The network of the development Lightning node.
pub const DEV_LIGHTNING_NETWORK: &str = "regtest";

/// The shipped Lightning channel policy, copied into the signer's
/// directory.
const LIGHTNING_POLICY: &str = include_str!("../../../../policies/lightning-default.toml");

/// Arguments of `tidemark init`.
#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    /// Directory to create the signer in.
    #[arg(long, default_value = "tidemark")]
    pub dir: PathBuf,
    /// How many replica client certificates to issue.
    #[arg(long, default_value_t = 2)]
    pub replicas: u32,
    /// The gRPC listen address written to the config.
    #[arg(long, default_value = "127.0.0.1:7443")]
    pub listen: String,
    /// The metrics/health listen address written to the config.
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub metrics_listen: String,
    /// DNS names and IP addresses for the server certificate.
    #[arg(long = "server-name", default_values_t = ["localhost".to_owned(), "127.0.0.1".to_owned()])]
    pub server_names: Vec<String>,
    /// Name of the ed25519 validator key to create.
    #[arg(long, default_value = "validator")]
    pub key: String,
    /// Use cheap key-derivation parameters (tests and demos only).
    #[arg(long, hide = true)]
    pub insecure_fast_kdf: bool,
    /// A file holding the keystore's seed as hex (32 bytes for the
    /// Lightning node: the seed an LDK `KeysManager` ran with, to migrate
    /// that node). Without it a fresh random seed is generated.
    #[arg(long)]
    pub seed_file: Option<PathBuf>,
}

/// What `init` made.
#[derive(Debug, Clone)]
pub struct Initialized {
    /// The layout.
    pub layout: Layout,
    /// The client identities issued (replicas, then `admin`).
    pub clients: Vec<String>,
    /// The validator key's public key (hex).
    pub validator_public_key: String,
}

/// Runs `tidemark init`.
pub fn run(args: InitArgs) -> anyhow::Result<ExitCode> {
    let made = init(&args)?;
    let l = &made.layout;
    println!("Initialized a Tidemark signer in {}", l.dir.display());
    println!("  config      {}", l.config().display());
    println!("  store       {}", l.store().display());
    println!(
        "  keystore    {}  (key {:?}: ed25519 {})",
        l.keystore().display(),
        args.key,
        made.validator_public_key
    );
    println!(
        "  passphrase  {}  (0600; for production use TIDEMARK_PASSPHRASE instead)",
        l.passphrase().display()
    );
    println!(
        "  CA          {}  (keep {} offline)",
        l.cert("ca").display(),
        l.key("ca").display()
    );
    println!("  server cert {}", l.cert("server").display());
    for c in &made.clients {
        println!("  client cert {}  identity {c}", l.cert(c).display());
    }
    for w in DEV_WALLETS {
        println!(
            "  wallet      {}  ({} {DEV_WALLET_NETWORK}, account key {}; policy {})",
            w.name,
            w.kind,
            w.path,
            l.wallet_policy().display()
        );
    }
    println!(
        "  lightning   {DEV_LIGHTNING_NODE}  ({DEV_LIGHTNING_NETWORK}, keys from the keystore's seed as LDK's KeysManager; policy {})",
        l.lightning_policy().display()
    );
    println!();
    println!("Next: tidemark serve --config {}", l.config().display());
    Ok(ExitCode::SUCCESS)
}

/// Creates the signer directory; the library form of `tidemark init`.
pub fn init(args: &InitArgs) -> anyhow::Result<Initialized> {
    let layout = Layout::new(&args.dir);
    for existing in [layout.config(), layout.store(), layout.keystore()] {
        if existing.exists() {
            bail!(
                "{} already exists: init never overwrites a signer (its store holds the marks, its keystore the seed)",
                existing.display()
            );
        }
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(layout.tls())
        .with_context(|| format!("cannot create {}", layout.tls().display()))?;

    // TLS: a development CA, the server certificate, one per replica, admin.
    let ca = DevCa::generate("Tidemark development CA")?;
    write_pem_files(&layout.tls(), "ca", &ca.to_issued())?;
    let names: Vec<&str> = args.server_names.iter().map(String::as_str).collect();
    write_pem_files(&layout.tls(), "server", &ca.issue_server(&names)?)?;
    let mut clients: Vec<String> = (1..=args.replicas)
        .map(|i| format!("replica-{i}"))
        .collect();
    clients.push("admin".into());
    for c in &clients {
        write_pem_files(&layout.tls(), c, &ca.issue_client(c)?)?;
    }

    // Keystore with a fresh seed and one ed25519 validator key.
    let passphrase = random_passphrase();
    write_secret_file(&layout.passphrase(), &passphrase)?;
    let params = if args.insecure_fast_kdf {
        KdfParams::insecure_for_tests()
    } else {
        KdfParams::default()
    };
    let secret = SecretString::from(passphrase);
    let mut keystore = match &args.seed_file {
        None => SoftwareKeystore::create(layout.keystore(), &secret, params)?,
        Some(path) => {
            let seed = read_seed_file(path)?;
            SoftwareKeystore::create_from_seed(layout.keystore(), &secret, seed, params)?
        }
    };
    let key = KeyId::new(args.key.clone())?;
    let public = keystore.add_ed25519(key)?;
    for w in DEV_WALLETS {
        let path: DerivationPath = w
            .path
            .parse()
            .with_context(|| format!("invalid BIP32 path {:?}", w.path))?;
        keystore.add_secp256k1(KeyId::new(w.name)?, &path)?;
    }
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(layout.policies())
        .with_context(|| format!("cannot create {}", layout.policies().display()))?;
    std::fs::write(layout.wallet_policy(), WALLET_POLICY)
        .with_context(|| format!("cannot write {}", layout.wallet_policy().display()))?;
    std::fs::write(layout.lightning_policy(), LIGHTNING_POLICY)
        .with_context(|| format!("cannot write {}", layout.lightning_policy().display()))?;

    // The store, created empty (serve refuses to create one).
    SqliteStore::create(layout.store())?.close();

    std::fs::write(layout.config(), config_text(args, &clients))
        .with_context(|| format!("cannot write {}", layout.config().display()))?;

    Ok(Initialized {
        layout,
        clients,
        validator_public_key: hex::encode(public.bytes),
    })
}

fn config_text(args: &InitArgs, clients: &[String]) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "# Tidemark configuration written by `tidemark init`.");
    let _ = writeln!(
        t,
        "# Relative paths are relative to this file. Unknown fields are errors.\n"
    );
    let _ = writeln!(
        t,
        "[server]\nlisten = {:?}\nmax_in_flight = 1024\nrequest_timeout_ms = 10000\n",
        args.listen
    );
    let _ = writeln!(
        t,
        "[tls]\nca_cert = \"tls/ca.crt\"\nserver_cert = \"tls/server.crt\"\nserver_key = \"tls/server.key\"\n"
    );
    let _ = writeln!(t, "[store]\npath = \"state.db\"\n");
    let _ = writeln!(
        t,
        "[keystore]\npath = \"keystore.json\"\npassphrase_file = \"passphrase\"\n"
    );
    let _ = writeln!(t, "[metrics]\nlisten = {:?}\n", args.metrics_listen);
    let _ = writeln!(
        t,
        "# Development wallets: each is the account key of that name in the keystore."
    );
    for w in DEV_WALLETS {
        let _ = writeln!(
            t,
            "[[bitcoin.wallets]]\nname = {:?}\nkind = \"{}\"\nnetwork = \"{DEV_WALLET_NETWORK}\"\npolicy = \"policies/{WALLET_POLICY_FILE}\"\n",
            w.name, w.kind
        );
    }
    let _ = writeln!(
        t,
        "# The development Lightning node: its keys derive from the keystore's 32-byte seed\n\
         # as LDK's KeysManager derives them; `node` is the key clients are granted.\n\
         [lightning]\nnode = {DEV_LIGHTNING_NODE:?}\nnetwork = \"{DEV_LIGHTNING_NETWORK}\"\n\
         policy = \"policies/{LIGHTNING_POLICY_FILE}\"\nremote_key_derivation = \"v2\"\n"
    );
    let mut keys = vec![args.key.as_str()];
    keys.extend(DEV_WALLETS.iter().map(|w| w.name));
    keys.push(DEV_LIGHTNING_NODE);
    for c in clients {
        if c == "admin" {
            let _ = writeln!(t, "[[clients]]\nidentity = \"admin\"\nadmin = true\n");
        } else {
            let _ = writeln!(
                t,
                "[[clients]]\nidentity = {c:?}\nkeys = {keys:?}\ndomains = [\"consensus\", \"bitcoin\", \"lightning\"]\n"
            );
        }
    }
    t
}

fn random_passphrase() -> String {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn write_secret_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    writeln!(f, "{contents}")?;
    f.sync_all()?;
    Ok(())
}

/// Reads a hex seed (whitespace around it ignored) of exactly 32 bytes:
/// the Lightning node's keys need a 32-byte seed.
fn read_seed_file(path: &Path) -> anyhow::Result<secrecy::SecretSlice<u8>> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the seed file {}", path.display()))?,
    );
    let bytes = zeroize::Zeroizing::new(
        hex::decode(text.trim())
            .with_context(|| format!("{}: the seed must be hex", path.display()))?,
    );
    if bytes.len() != 32 {
        bail!(
            "{}: the seed must be 32 bytes (64 hex digits), found {} bytes",
            path.display(),
            bytes.len()
        );
    }
    Ok(secrecy::SecretSlice::from(bytes.to_vec()))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::read_seed_file;

    #[test]
    fn a_seed_file_must_hold_32_bytes_of_hex() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed");
        std::fs::write(&path, format!("  {}\n", "ab".repeat(32))).unwrap();
        assert_eq!(
            read_seed_file(&path).unwrap().expose_secret(),
            &[0xab; 32][..]
        );
        for (text, why) in [
            ("ab".repeat(31), "32 bytes"),
            ("ab".repeat(33), "32 bytes"),
            ("zz".repeat(32), "hex"),
        ] {
            std::fs::write(&path, text).unwrap();
            let error = read_seed_file(&path).unwrap_err().to_string();
            assert!(error.contains(why), "{error}");
        }
        let missing = read_seed_file(&dir.path().join("none")).unwrap_err();
        assert!(missing.to_string().contains("cannot read"));
    }
}
