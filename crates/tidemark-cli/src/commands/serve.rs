//! `tidemark serve`: runs the signer until SIGINT or SIGTERM.
//!
//! Start-up fails closed: a missing or corrupt store, a keystore with loose
//! permissions or a wrong passphrase, bad TLS material or an unknown config
//! field stop the signer before it listens.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tidemark_consensus::TezosPolicy;
use tidemark_core::{KeyBackend, StateStore};
use tidemark_server::{Acl, Config, LightningOptions, Server, ServerOptions};
use tidemark_store::SqliteStore;
use tokio::net::TcpListener;
use tracing::info;

use super::support;
use crate::ConfigArg;

/// Arguments of `tidemark serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// The config file.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Log as JSON lines.
    #[arg(long)]
    pub log_json: bool,
}

/// Runs `tidemark serve`.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging(args.log_json);
    let config = support::load_config(&args.config.config)?;
    let runtime = support::runtime()?;
    runtime.block_on(serve(config))?;
    Ok(ExitCode::SUCCESS)
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Builds a server from `config`: opens the store and keystore, derives the
/// Lightning node's keys from the keystore's seed (if configured) and loads
/// the TLS material.
pub fn build(config: &Config) -> anyhow::Result<(Server, Arc<SqliteStore>)> {
    let store = Arc::new(support::open_store(config)?);
    let keystore = support::open_keystore(config)?;
    let lightning = match config.lightning()? {
        Some(l) => {
            let keys = keystore.with_seed_for_derivation(|seed| l.node_keys(seed))?;
            Some(LightningOptions {
                config: l,
                keys: Arc::new(keys),
            })
        }
        None => None,
    };
    let keys: Arc<dyn KeyBackend> = Arc::new(keystore);
    let tls = tidemark_tls::server_config_from_files(
        &config.tls.ca_cert,
        &config.tls.server_cert,
        &config.tls.server_key,
    )
    .context("cannot load the server's TLS material")?;
    let server = Server::new(ServerOptions {
        store: store.clone() as Arc<dyn StateStore>,
        keys,
        acl: Acl::new(config.grants()),
        tls,
        max_in_flight: config.server.max_in_flight,
        request_timeout: Duration::from_millis(config.server.request_timeout_ms),
        tezos: TezosPolicy {
            allowed_magic: config.consensus.tezos_allowed_magic.clone(),
        },
        wallets: config.wallets()?,
        lightning,
    })?;
    let metrics_store = store.clone();
    server
        .shared()
        .metrics
        .add_source(Arc::new(move || store_metrics(&metrics_store)));
    Ok((server, store))
}

/// The store's counters as Prometheus lines.
fn store_metrics(store: &SqliteStore) -> Vec<(String, f64)> {
    let m = store.metrics();
    let mut lines = vec![
        ("tidemark_store_batches_total".to_owned(), m.batches as f64),
        (
            "tidemark_store_failed_batches_total".to_owned(),
            m.failed_batches as f64,
        ),
        ("tidemark_store_commits_total".to_owned(), m.commits as f64),
        (
            "tidemark_store_conflicts_total".to_owned(),
            m.conflicts as f64,
        ),
        (
            "tidemark_store_audit_dropped_total".to_owned(),
            m.audit_dropped as f64,
        ),
        (
            "tidemark_store_last_batch_size".to_owned(),
            m.last_batch_size as f64,
        ),
        (
            "tidemark_store_max_batch_size".to_owned(),
            m.max_batch_size as f64,
        ),
    ];
    for (name, h) in [
        ("tidemark_store_commit_latency_us", &m.commit_latency_us),
        ("tidemark_store_batch_latency_us", &m.batch_latency_us),
        ("tidemark_store_batch_size", &m.batch_sizes),
    ] {
        for q in [0.5, 0.99] {
            lines.push((format!("{name}{{quantile=\"{q}\"}}"), h.quantile(q) as f64));
        }
    }
    lines
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let (server, store) = tokio::task::block_in_place(|| build(&config))?;
    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let server = Arc::new(server);
    let ops = match &config.metrics {
        Some(m) => {
            let l = TcpListener::bind(m.listen)
                .await
                .with_context(|| format!("cannot listen on {} (metrics.listen)", m.listen))?;
            info!(addr = %m.listen, "metrics and health endpoint");
            let server = server.clone();
            let rx = stop_rx.clone();
            Some(tokio::spawn(async move {
                server.serve_ops(l, stopped(rx)).await
            }))
        }
        None => None,
    };
    tokio::spawn(async move {
        shutdown_signal().await;
        info!("shutting down: finishing requests in flight");
        let _ = stop_tx.send(true);
    });
    server.run(listener, stopped(stop_rx)).await?;
    if let Some(ops) = ops {
        ops.abort();
    }
    // Let the writer finish queued commits before the process exits.
    tokio::task::block_in_place(|| store.close());
    Ok(())
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
