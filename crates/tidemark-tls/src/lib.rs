//! Tidemark mutual TLS: a development CA, TLS 1.3-only rustls
//! configurations, client identities, and the TLS listener and connector
//! that carry gRPC between replicas and the signer.
//!
//! # Layout
//!
//! - `pki`: [`DevCa`], a development CA that issues the server certificate
//!   and one client certificate per replica, and [`Validity`] windows.
//! - `files`: PEM parsing and PEM files on disk (certificates 0644, keys
//!   0600, written atomically; key modes checked at load).
//! - `config`: the rustls [`ServerConfig`](rustls::ServerConfig) and
//!   [`ClientConfig`](rustls::ClientConfig): `ring` provider passed
//!   explicitly, TLS 1.3 only, ALPN `h2`, client certificates required.
//! - `identity`: the rule that turns a verified certificate into a
//!   [`ClientId`](tidemark_core::ClientId) ([`peer_identity`]).
//! - `server`: [`TlsIncoming`], the stream of authenticated connections for
//!   `tonic::transport::Server::serve_with_incoming_shutdown`, and
//!   [`PeerInfo`], which every request carries in its extensions.
//! - `client`: [`TlsDialer`], the connector for tonic's
//!   `Endpoint::connect_with_connector`, and [`connect_channel`].
//! - `error`: [`TlsError`], the crate's one error type.
//!
//! # Example
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use tidemark_tls::{DevCa, IncomingOptions, PeerInfo, TlsIncoming};
//!
//! let ca = DevCa::generate("tidemark dev CA")?;
//! let server = ca.issue_server(&["localhost", "127.0.0.1"])?;
//! let replica = ca.issue_client("replica-1")?;
//!
//! // Server side.
//! let config = tidemark_tls::server_config(ca.cert_pem(), server.cert_pem(), server.key_pem())?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let incoming = TlsIncoming::new(listener, config, IncomingOptions::default());
//! let (_reporter, health) = tonic_health::server::health_reporter();
//! tokio::spawn(
//!     tonic::transport::Server::builder()
//!         .add_service(health)
//!         .serve_with_incoming_shutdown(incoming, std::future::pending()),
//! );
//! // In a handler: `PeerInfo::of(&request)` is the authenticated replica.
//!
//! // Client side.
//! let config = tidemark_tls::client_config(ca.cert_pem(), replica.cert_pem(), replica.key_pem())?;
//! let channel = tidemark_tls::connect_channel(&addr.to_string(), "localhost", config).await?;
//! # let _ = channel; Ok(()) }
//! ```

mod client;
mod config;
mod error;
mod files;
mod identity;
mod pki;
mod server;

pub use client::{TlsDialer, connect_channel, lazy_channel};
pub use config::{
    client_config, client_config_from_files, server_config, server_config_from_files,
};
pub use error::{IdentityError, PemOrigin, TlsError};
pub use files::{
    PemPaths, read_cert_file, read_key_file, write_cert_file, write_key_file, write_pem_files,
};
pub use identity::{CLIENT_URI_PREFIX, client_uri, peer_identity};
pub use pki::{DevCa, IssuedCert, Validity};
pub use server::{IncomingOptions, PeerInfo, RejectReason, Rejection, TlsConnection, TlsIncoming};

pub use secrecy::{ExposeSecret, SecretString};
