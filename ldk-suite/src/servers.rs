//! One in-process Tidemark server per (seed, remote key derivation),
//! started on first use and kept for the whole run on one static tokio
//! runtime.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use anyhow::Context as _;
use tidemark_cli::commands::init::{InitArgs, init};
use tidemark_cli::embedded::{Embedded, VALIDATOR_KEY};

/// The server's config as the suite runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServerSettings {
    /// The keystore's seed: the LDK test node's.
    pub seed: [u8; 32],
    /// LDK's `v2_remote_key_derivation` flag of the node.
    pub v2_remote_key_derivation: bool,
}

/// A running server and the directory it lives in.
pub(crate) struct Server {
    pub(crate) embedded: Embedded,
    _dir: tempfile::TempDir,
}

type Servers = Mutex<HashMap<ServerSettings, Arc<Server>>>;

fn servers() -> &'static Servers {
    static SERVERS: OnceLock<Servers> = OnceLock::new();
    SERVERS.get_or_init(Servers::default)
}

/// The runtime every server runs on (two workers: the machine is shared).
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        #[allow(clippy::expect_used)]
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tidemark-suite-server")
            .enable_all()
            .build()
            .expect("a tokio runtime builds unless the OS refuses threads")
    })
}

/// The server for `settings`, started if it is not yet.
pub(crate) fn server(settings: ServerSettings) -> anyhow::Result<Arc<Server>> {
    let mut map = servers().lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(s) = map.get(&settings) {
        return Ok(s.clone());
    }
    let server = Arc::new(start(settings)?);
    map.insert(settings, server.clone());
    Ok(server)
}

/// Stops every server (requests in flight finish, stores close) and
/// removes their directories.
pub fn shutdown_servers() {
    let all: Vec<Arc<Server>> = servers()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .drain()
        .map(|(_, s)| s)
        .collect();
    for server in all {
        // Adapters of tests that timed out may still hold the server:
        // its directory is then removed at exit by no one; say so.
        match Arc::try_unwrap(server) {
            Ok(Server { embedded, _dir }) => runtime().block_on(embedded.stop()),
            Err(s) => eprintln!(
                "a server is still in use, left running: {}",
                s.embedded.dir().display()
            ),
        }
    }
}

/// `tidemark init` with the seed, the config adjusted, then `serve`.
fn start(settings: ServerSettings) -> anyhow::Result<Server> {
    let dir = tempfile::Builder::new()
        .prefix("tidemark-ldk-suite-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let seed_file = dir.path().join("seed.hex");
    std::fs::write(&seed_file, hex(&settings.seed)).context("cannot write the seed file")?;
    let signer_dir = dir.path().join("signer");
    let args = InitArgs {
        dir: signer_dir.clone(),
        replicas: 1,
        listen: "127.0.0.1:0".into(),
        metrics_listen: "127.0.0.1:0".into(),
        server_names: vec!["localhost".into(), "127.0.0.1".into()],
        key: VALIDATOR_KEY.into(),
        insecure_fast_kdf: true,
        seed_file: Some(seed_file),
    };
    let made = init(&args)?;
    adjust_config(&made.layout.config(), settings)?;
    let embedded = runtime().block_on(Embedded::start_existing(&signer_dir))?;
    Ok(Server {
        embedded,
        _dir: dir,
    })
}

/// LDK's functional tests run on testnet; a node created with
/// `with_v1_remote_key_derivation` needs `remote_key_derivation = "v1"`.
fn adjust_config(path: &Path, settings: ServerSettings) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).context("cannot read the config")?;
    let lightning = text
        .find("[lightning]")
        .context("init wrote no [lightning] section")?;
    let (head, tail) = text.split_at(lightning);
    let derivation = if settings.v2_remote_key_derivation {
        "v2"
    } else {
        "v1"
    };
    let tail = replace_once(tail, "network = \"regtest\"", "network = \"testnet\"")?;
    let tail = replace_once(
        &tail,
        "remote_key_derivation = \"v2\"",
        &format!("remote_key_derivation = \"{derivation}\""),
    )?;
    std::fs::write(path, format!("{head}{tail}")).context("cannot write the config")
}

fn replace_once(text: &str, from: &str, to: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        text.matches(from).count() == 1,
        "the [lightning] section has no single {from}"
    );
    Ok(text.replacen(from, to, 1))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
