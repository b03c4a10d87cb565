//! Tidemark's gRPC signer service.
//!
//! Replicas connect over mutual TLS (TLS 1.3, client certificates
//! required); each request is identified by its certificate, checked
//! against the ACL, shed if too many are in flight, decided by the
//! pipeline and answered only after its state is durable.
//!
//! # Layout
//!
//! - [`config`]: the TOML configuration (unknown fields rejected).
//! - [`acl`]: which identity may use which keys and domains.
//! - [`limit`]: the in-flight bound (overload is refused, not queued).
//! - [`status`]: the one mapping from errors and refusals to gRPC statuses.
//! - [`service`]: what all handlers share and the steps before a decision.
//! - [`consensus_service`], [`bitcoin_service`], [`lightning_service`],
//!   [`admin_service`]: the RPC handlers.
//! - [`marks`]: export and raise-only import of marks.
//! - [`metrics`], [`http`]: Prometheus metrics, `/livez`, `/readyz`.
//!
//! [`Server::run`] takes its listener and shutdown signal from the caller,
//! so tests bind `127.0.0.1:0`; on shutdown it stops accepting, lets
//! in-flight requests finish their commits, and returns.

pub mod acl;
pub mod admin_service;
pub mod bitcoin_service;
pub mod config;
pub mod consensus_service;
pub mod http;
pub mod lightning_service;
pub mod limit;
pub mod marks;
pub mod metrics;
pub mod service;
pub mod status;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tidemark_bitcoin::{BitcoinError, WalletSigner};
use tidemark_core::{KeyBackend, StateStore};
use tidemark_lightning::{LightningError, LightningSigner, NodeKeys};
use tidemark_proto::v1;
use tidemark_signer::Signer;
use tidemark_tls::{IncomingOptions, TlsIncoming};
use tokio::net::TcpListener;
use tracing::{info, warn};

pub use acl::Acl;
pub use config::{Config, LightningConfig, WalletConfig};
pub use lightning_service::LightningNode;
pub use metrics::Metrics;
pub use service::Shared;

/// The largest signing request accepted: room for the largest input a
/// domain takes (a CometBFT vote extension of 1 MiB) and the message
/// around it; larger messages are refused (`OUT_OF_RANGE`) before they are
/// decoded.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024 + 64 * 1024;

/// The largest admin request accepted (a marks document to import).
pub const MAX_ADMIN_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// The server could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The gRPC transport failed.
    #[error("grpc transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// A configured wallet cannot be served (its key is unknown or not a
    /// BIP32 account key).
    #[error("wallet {wallet} cannot be served")]
    Wallet {
        /// The wallet.
        wallet: String,
        /// Why.
        source: BitcoinError,
    },
    /// The configured Lightning node cannot be served (its channel keys
    /// counter is unusable).
    #[error("lightning node {node} cannot be served")]
    Lightning {
        /// The node key.
        node: String,
        /// Why.
        source: LightningError,
    },
}

/// A configured server, ready to run on a listener.
pub struct Server {
    shared: Arc<Shared>,
    tls: Arc<rustls::ServerConfig>,
    request_timeout: Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").finish_non_exhaustive()
    }
}

/// What a server is built from.
pub struct ServerOptions {
    /// The durable store.
    pub store: Arc<dyn StateStore>,
    /// The keys.
    pub keys: Arc<dyn KeyBackend>,
    /// Who may do what.
    pub acl: Acl,
    /// The TLS configuration (client certificates required).
    pub tls: Arc<rustls::ServerConfig>,
    /// Bound on requests in flight.
    pub max_in_flight: usize,
    /// Deadline for requests that carry none.
    pub request_timeout: Duration,
    /// Tezos options.
    pub tezos: tidemark_consensus::TezosPolicy,
    /// The on-chain wallets, over the same store and keys.
    pub wallets: Vec<WalletConfig>,
    /// The Lightning node, over the same store.
    pub lightning: Option<LightningOptions>,
}

/// The Lightning node a server serves: its config and its keys, derived
/// from the keystore's seed ([`LightningConfig::node_keys`]).
pub struct LightningOptions {
    /// The `[lightning]` section, validated, its policy loaded.
    pub config: LightningConfig,
    /// The node's keys.
    pub keys: Arc<NodeKeys>,
}

impl Server {
    /// Builds the server: a pipeline and a wallet pipeline over the store
    /// and keys that report every decision to the server's metrics. Fails
    /// if a wallet's account key is missing or not a BIP32 key.
    pub fn new(options: ServerOptions) -> Result<Self, ServerError> {
        let metrics = Metrics::new();
        let mut wallets = WalletSigner::new(options.store.clone(), options.keys.clone())
            .with_observer(metrics.clone());
        for w in options.wallets {
            let wallet = w.name.to_string();
            wallets
                .add_wallet(w.name, w.kind, w.network, w.policy)
                .map_err(|source| ServerError::Wallet { wallet, source })?;
        }
        let lightning = options
            .lightning
            .map(|l| {
                let node = l.config.node.to_string();
                lightning_node(options.store.clone(), l, &metrics)
                    .map(Arc::new)
                    .map_err(|source| ServerError::Lightning { node, source })
            })
            .transpose()?;
        let signer = Signer::new(options.store, options.keys).with_observer(metrics.clone());
        let shared = Arc::new(Shared {
            signer: Arc::new(signer),
            wallets: Arc::new(wallets),
            lightning,
            acl: options.acl,
            in_flight: limit::InFlight::new(options.max_in_flight),
            metrics,
            tezos: options.tezos,
            started: Instant::now(),
        });
        Ok(Server {
            shared,
            tls: options.tls,
            request_timeout: options.request_timeout,
        })
    }

    /// What the handlers share (metrics, the pipeline, readiness).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Serves gRPC on `listener` until `shutdown` completes, then finishes
    /// the requests in flight and returns.
    pub async fn run(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServerError> {
        let addr = listener.local_addr().ok();
        let audit_to = self.shared.clone();
        let options = IncomingOptions::default().on_rejected(move |rejection| {
            warn!(remote = %rejection.remote_addr, reason = %rejection.reason.tag(), "tls connection refused");
            audit_to.audit_denied(
                &rejection.remote_addr.to_string(),
                "tls",
                rejection_tag(rejection.reason.tag()),
            );
        });
        let incoming = TlsIncoming::new(listener, self.tls.clone(), options);

        let (reporter, health_service) = tonic_health::server::health_reporter();
        let health_task = tokio::spawn(watch_health(self.shared.clone(), reporter));

        info!(?addr, "tidemark serving");
        let result = tonic::transport::Server::builder()
            .timeout(self.request_timeout)
            .tcp_nodelay(true)
            .add_service(health_service)
            .add_service(
                v1::consensus_server::ConsensusServer::new(
                    consensus_service::ConsensusService::new(self.shared.clone()),
                )
                .max_decoding_message_size(MAX_REQUEST_BYTES),
            )
            .add_service(
                v1::bitcoin_server::BitcoinServer::new(bitcoin_service::BitcoinService::new(
                    self.shared.clone(),
                ))
                .max_decoding_message_size(MAX_REQUEST_BYTES),
            )
            .add_service(
                v1::lightning_server::LightningServer::new(
                    lightning_service::LightningService::new(self.shared.clone()),
                )
                .max_decoding_message_size(MAX_REQUEST_BYTES),
            )
            .add_service(
                v1::admin_server::AdminServer::new(admin_service::AdminService::new(
                    self.shared.clone(),
                ))
                .max_decoding_message_size(MAX_ADMIN_REQUEST_BYTES),
            )
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await;
        health_task.abort();
        info!("tidemark stopped");
        Ok(result?)
    }

    /// Serves `/metrics`, `/livez` and `/readyz` on `listener` until
    /// `shutdown` completes.
    pub async fn serve_ops(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) {
        http::serve_ops(listener, self.shared.clone(), shutdown).await;
    }
}

/// The node's channel signer over `store`, reporting to `metrics`.
fn lightning_node(
    store: Arc<dyn StateStore>,
    options: LightningOptions,
    metrics: &Arc<Metrics>,
) -> Result<LightningNode, LightningError> {
    let LightningOptions { config, keys } = options;
    let signer = LightningSigner::new(
        store,
        keys,
        config.chain.clone(),
        config.node.clone(),
        config.policy,
    )?
    .with_observer(metrics.clone());
    LightningNode::new(config.node, config.network, config.chain, signer)
}

fn rejection_tag(tag: &str) -> &'static str {
    match tag {
        "no_client_certificate" => "denied-tls-no-certificate",
        "unknown_issuer" => "denied-tls-unknown-issuer",
        "certificate_expired" => "denied-tls-expired",
        "certificate_not_yet_valid" => "denied-tls-not-yet-valid",
        "protocol_version" => "denied-tls-version",
        "no_identity" => "denied-tls-no-identity",
        _ => "denied-tls",
    }
}

/// Keeps the gRPC health service in step with the store: serving while it
/// can commit, not serving while it is full, corrupt or down.
async fn watch_health(shared: Arc<Shared>, reporter: tonic_health::server::HealthReporter) {
    const SERVICES: [&str; 4] = [
        "",
        "tidemark.v1.Consensus",
        "tidemark.v1.Bitcoin",
        "tidemark.v1.Lightning",
    ];
    let mut last = None;
    loop {
        let ready = shared.ready_async().await.is_ok();
        if last != Some(ready) {
            let status = if ready {
                tonic_health::ServingStatus::Serving
            } else {
                tonic_health::ServingStatus::NotServing
            };
            for service in SERVICES {
                reporter.set_service_status(service, status).await;
            }
            if !ready {
                warn!("store cannot commit: health is NOT_SERVING");
            }
            last = Some(ready);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
