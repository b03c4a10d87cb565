//! A complete signer in a directory, started in-process: what `tidemark
//! demo`, `tidemark bench` and the end-to-end tests run.
//!
//! Nothing is faked: `tidemark init` writes a real CA, certificates, an
//! encrypted keystore and a SQLite store (fsync'd, on the disk of the
//! directory); the server listens on 127.0.0.1 with mutual TLS, and
//! clients connect over real sockets.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use tidemark_bitcoin::Wallet;
use tidemark_client::{Client, ClientOptions};
use tidemark_core::KeyId;
use tidemark_server::{Config, LightningNode, Server};
use tidemark_store::SqliteStore;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use crate::commands::init::{DEV_LIGHTNING_NODE, TR_WALLET, WPKH_WALLET};
use crate::commands::init::{InitArgs, init};
use crate::commands::serve::build;
use crate::layout::Layout;

/// The chain id the embedded signer's replicas use by default.
pub const DEMO_CHAIN: &str = "tidemark-demo-1";
/// The validator key `init` creates.
pub const VALIDATOR_KEY: &str = "validator";

/// A running in-process signer.
pub struct Embedded {
    /// The directory's layout.
    pub layout: Layout,
    /// Where the gRPC server listens.
    pub addr: SocketAddr,
    /// The non-admin client identities of the config (`replica-1`, ...).
    pub replicas: Vec<String>,
    /// The ed25519 public key of the key `validator` (empty if there is
    /// no such key).
    pub validator_public_key: Vec<u8>,
    /// The server (metrics, pipeline).
    pub server: Arc<Server>,
    /// The store.
    pub store: Arc<SqliteStore>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    _tempdir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded")
            .field("dir", &self.layout.dir)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Embedded {
    /// Initializes a signer with `replicas` client certificates in a new
    /// temporary directory under `parent` (the system temp dir if `None`)
    /// and starts it on 127.0.0.1.
    pub async fn start_temp(replicas: u32, parent: Option<&Path>) -> anyhow::Result<Embedded> {
        Embedded::start_temp_with(replicas, parent, None).await
    }

    /// [`Embedded::start_temp`] with the keystore's seed given (the
    /// Lightning node's keys are then those of an LDK `KeysManager` over
    /// `seed`); `None` generates one.
    pub async fn start_temp_with(
        replicas: u32,
        parent: Option<&Path>,
        seed: Option<&[u8; 32]>,
    ) -> anyhow::Result<Embedded> {
        let tempdir = match parent {
            Some(p) => tempfile::Builder::new().prefix("tidemark-").tempdir_in(p),
            None => tempfile::Builder::new().prefix("tidemark-").tempdir(),
        }
        .context("cannot create a temporary directory")?;
        let dir = tempdir.path().join("signer");
        let seed_file = match seed {
            None => None,
            Some(seed) => {
                let path = tempdir.path().join("seed.hex");
                std::fs::write(&path, hex::encode(seed)).context("cannot write the seed file")?;
                Some(path)
            }
        };
        let mut e = Embedded::init_and_start(&dir, replicas, seed_file).await?;
        e._tempdir = Some(tempdir);
        Ok(e)
    }

    /// Initializes a signer in `dir` (which must not hold one) and starts it.
    pub async fn start_in(dir: &Path, replicas: u32) -> anyhow::Result<Embedded> {
        Embedded::init_and_start(dir, replicas, None).await
    }

    async fn init_and_start(
        dir: &Path,
        replicas: u32,
        seed_file: Option<PathBuf>,
    ) -> anyhow::Result<Embedded> {
        let args = InitArgs {
            dir: dir.to_owned(),
            replicas,
            listen: "127.0.0.1:0".into(),
            metrics_listen: "127.0.0.1:0".into(),
            server_names: vec!["localhost".into(), "127.0.0.1".into()],
            key: VALIDATOR_KEY.into(),
            insecure_fast_kdf: true,
            seed_file,
        };
        let made = tokio::task::block_in_place(|| init(&args))?;
        Embedded::start_existing(&made.layout.dir).await
    }

    /// Starts the signer already initialized in `dir`.
    pub async fn start_existing(dir: &Path) -> anyhow::Result<Embedded> {
        let layout = Layout::new(dir);
        let config = Config::load(&layout.config())?;
        let (server, store) = tokio::task::block_in_place(|| build(&config))?;
        let replicas = config
            .clients
            .iter()
            .filter(|c| !c.admin)
            .map(|c| c.identity.clone())
            .collect();
        let validator = KeyId::new(VALIDATOR_KEY)?;
        let validator_public_key = server
            .shared()
            .signer
            .keys()
            .public_key(&validator)
            .map(|pk| pk.bytes)
            .unwrap_or_default();
        let server = Arc::new(server);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let running = server.clone();
        let task = tokio::spawn(async move {
            let stop = async {
                let _ = rx.await;
            };
            if let Err(e) = running.run(listener, stop).await {
                tracing::error!(error = %e, "embedded server failed");
            }
        });
        Ok(Embedded {
            layout,
            addr,
            replicas,
            validator_public_key,
            server,
            store,
            shutdown: Some(tx),
            task: Some(task),
            _tempdir: None,
        })
    }

    /// Client options for `identity` (a certificate `init` issued).
    pub fn client_options(&self, identity: &str) -> anyhow::Result<ClientOptions> {
        Ok(ClientOptions::from_files(
            &self.addr.to_string(),
            "localhost",
            &self.layout.cert("ca"),
            &self.layout.cert(identity),
            &self.layout.key(identity),
        )?)
    }

    /// A connected client for `identity`.
    pub fn client(&self, identity: &str) -> anyhow::Result<Client> {
        Ok(Client::connect_lazy(self.client_options(identity)?)?)
    }

    /// The wallet `name` the server serves (for building PSBTs that spend
    /// its coins).
    pub fn wallet(&self, name: &str) -> anyhow::Result<Wallet> {
        let key = KeyId::new(name)?;
        self.server
            .shared()
            .wallets
            .wallet(&key)
            .cloned()
            .with_context(|| format!("the signer serves no wallet {name}"))
    }

    /// The Lightning node the server serves (its keys: for simulated
    /// counterparties that build requests for it).
    pub fn lightning(&self) -> anyhow::Result<Arc<LightningNode>> {
        self.server
            .shared()
            .lightning
            .clone()
            .context("the signer serves no lightning node")
    }

    /// The directory.
    pub fn dir(&self) -> PathBuf {
        self.layout.dir.clone()
    }

    /// Stops accepting, finishes requests in flight and closes the store.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let store = self.store.clone();
        tokio::task::block_in_place(|| store.close());
    }
}
