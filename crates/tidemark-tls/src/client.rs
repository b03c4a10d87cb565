//! Dialing the signer over mutual TLS from a tonic client.
//!
//! [`TlsDialer`] is the connector tonic's [`Channel`] calls whenever it
//! needs a connection: it dials TCP (with `TCP_NODELAY`), runs the rustls
//! handshake and hands the stream to hyper. The channel calls it again on
//! every reconnect, so a restarted signer is redialed through it.
//!
//! Invariants:
//! - the server is verified against the client configuration's CA and must
//!   present a certificate for `server_name`;
//! - the endpoint URI handed to tonic uses the `http` scheme and only
//!   carries the authority: TLS is done here, never by tonic itself (so it
//!   does not matter whether some other crate enabled tonic's own TLS
//!   features); the request origin is still `https://<addr>`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::error::TlsError;

/// Default bound on dialing plus the TLS handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default HTTP/2 keep-alive ping interval, to notice a dead signer.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// Default time to wait for a keep-alive ping's answer.
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// A tonic connector that dials one address over mutual TLS; a
/// `tower::Service<Uri>` for [`Endpoint::connect_with_connector`].
///
/// ```no_run
/// # async fn run(config: std::sync::Arc<rustls::ClientConfig>) -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use tidemark_tls::TlsDialer;
/// let dialer = TlsDialer::new("127.0.0.1:7400", "localhost", config)?;
/// let channel = dialer
///     .endpoint()?
///     .timeout(Duration::from_secs(5))
///     .connect_with_connector(dialer)
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TlsDialer {
    addr: Arc<str>,
    server_name: ServerName<'static>,
    connector: TlsConnector,
}

impl std::fmt::Debug for TlsDialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsDialer")
            .field("addr", &self.addr)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsDialer {
    /// A dialer for `addr` (`host:port`, e.g. `127.0.0.1:7400` or
    /// `signer.internal:7400`) that expects the server certificate to be
    /// valid for `server_name` (a DNS name or an IP address) and
    /// authenticates with `config` (see [`crate::client_config`]).
    pub fn new(
        addr: impl Into<String>,
        server_name: &str,
        config: Arc<ClientConfig>,
    ) -> Result<Self, TlsError> {
        let server_name = ServerName::try_from(server_name.to_owned()).map_err(|source| {
            TlsError::ServerName {
                name: server_name.to_owned(),
                source,
            }
        })?;
        Ok(Self {
            addr: Arc::from(addr.into()),
            server_name,
            connector: TlsConnector::from(config),
        })
    }

    /// The address this dialer dials.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// An [`Endpoint`] for this dialer's address with Tidemark's defaults
    /// (10 s connect timeout covering dial and handshake, HTTP/2 keep-alive
    /// every 30 s). Tune it, then pass the dialer to
    /// [`Endpoint::connect_with_connector`] or
    /// [`Endpoint::connect_with_connector_lazy`].
    pub fn endpoint(&self) -> Result<Endpoint, TlsError> {
        let invalid = |source| TlsError::Endpoint {
            addr: self.addr.to_string(),
            source,
        };
        let endpoint = Endpoint::from_shared(format!("http://{}", self.addr)).map_err(invalid)?;
        let origin = Endpoint::from_shared(format!("https://{}", self.addr))
            .map_err(invalid)?
            .uri()
            .clone();
        Ok(endpoint
            .origin(origin)
            .connect_timeout(CONNECT_TIMEOUT)
            .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(KEEP_ALIVE_TIMEOUT))
    }

    async fn dial(self) -> io::Result<TokioIo<TlsStream<TcpStream>>> {
        let tcp = TcpStream::connect(&*self.addr).await?;
        tcp.set_nodelay(true)?;
        let tls = self.connector.connect(self.server_name, tcp).await?;
        Ok(TokioIo::new(tls))
    }
}

impl tower::Service<Uri> for TlsDialer {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        Box::pin(self.clone().dial())
    }
}

/// Connects a [`Channel`] to the signer at `addr` now, so that a wrong
/// address, a refused certificate or a dead signer shows up here. The
/// channel redials through a [`TlsDialer`] whenever its connection drops.
pub async fn connect_channel(
    addr: &str,
    server_name: &str,
    config: Arc<ClientConfig>,
) -> Result<Channel, TlsError> {
    let dialer = TlsDialer::new(addr, server_name, config)?;
    dialer
        .endpoint()?
        .connect_with_connector(dialer)
        .await
        .map_err(|source| TlsError::Connect {
            addr: addr.to_owned(),
            source,
        })
}

/// Like [`connect_channel`], but connects on the first request instead of
/// now.
pub fn lazy_channel(
    addr: &str,
    server_name: &str,
    config: Arc<ClientConfig>,
) -> Result<Channel, TlsError> {
    let dialer = TlsDialer::new(addr, server_name, config)?;
    Ok(dialer.endpoint()?.connect_with_connector_lazy(dialer))
}
