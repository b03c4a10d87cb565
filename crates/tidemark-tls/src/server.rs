//! A mutual-TLS listener for tonic.
//!
//! [`TlsIncoming`] turns a [`TcpListener`] into the stream of authenticated
//! connections that `tonic::transport::Server::serve_with_incoming*` takes.
//! Each [`TlsConnection`] carries the client's [`PeerInfo`], which tonic
//! puts into every request's extensions.
//!
//! Invariants:
//! - only connections whose client certificate verified against the CA
//!   *and* names a valid [`ClientId`] are yielded; the stream never yields
//!   an error, so a bad client can never end the server;
//! - handshakes run in their own tasks, each bounded by a timeout, and at
//!   most `max_pending_handshakes` at once (beyond that, new connections are
//!   closed at once): a slow or malicious client cannot stall the accept
//!   loop;
//! - every refused connection is logged with `tracing` and reported once to
//!   the `on_rejected` hook with a typed [`RejectReason`], so the server can
//!   audit it;
//! - dropping the stream (as tonic does on shutdown) stops the accept loop
//!   and closes the listening socket.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use rustls::server::ServerConfig;
use rustls::{CertificateError, PeerIncompatible};
use tidemark_core::ClientId;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::AbortHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tonic::transport::server::Connected;

use crate::error::IdentityError;
use crate::identity;

/// Default bound on one TLS handshake.
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default bound on handshakes in progress at once.
const DEFAULT_MAX_PENDING_HANDSHAKES: usize = 256;
/// Authenticated connections waiting for the server to take them.
const QUEUE: usize = 64;
/// Pause after an accept error that is not about one connection (such as
/// running out of file descriptors), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Who is on the other end of a connection: tonic hands a clone to every
/// request as an extension.
///
/// ```no_run
/// # fn handler(request: tonic::Request<()>) -> Result<(), tonic::Status> {
/// use tidemark_tls::PeerInfo;
/// let peer = PeerInfo::of(&request)
///     .ok_or_else(|| tonic::Status::unauthenticated("no client identity"))?;
/// tracing::info!(client = %peer.identity, "request");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerInfo {
    /// The client identity from its verified certificate.
    pub identity: ClientId,
    /// The client's address.
    pub remote_addr: SocketAddr,
}

impl PeerInfo {
    /// Builds a peer, e.g. for calling a handler directly in a test.
    pub fn new(identity: ClientId, remote_addr: SocketAddr) -> Self {
        Self {
            identity,
            remote_addr,
        }
    }

    /// The peer of a request served over a [`TlsIncoming`], or `None` when
    /// the request did not come through one.
    pub fn of<T>(request: &tonic::Request<T>) -> Option<&PeerInfo> {
        request.extensions().get::<PeerInfo>()
    }
}

/// Why a connection was refused before any request was served.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectReason {
    /// The client presented no certificate.
    NoClientCertificate,
    /// The client certificate was not issued by the trusted CA.
    UnknownIssuer,
    /// The client certificate has expired.
    CertificateExpired,
    /// The client certificate is not valid yet.
    CertificateNotYetValid,
    /// The client certificate is otherwise unacceptable (bad signature,
    /// wrong key usage, ...).
    BadCertificate(String),
    /// The client does not speak TLS 1.3.
    ProtocolVersion,
    /// The client shares no cipher suite, group, signature scheme or
    /// application protocol with the server.
    Incompatible(String),
    /// The certificate verified but names no usable client identity.
    Identity(IdentityError),
    /// The handshake did not finish within the handshake timeout.
    HandshakeTimeout,
    /// Too many handshakes were in progress; the connection was closed
    /// without reading from it.
    TooManyHandshakes,
    /// Any other TLS failure (malformed message, alert from the client).
    Tls(String),
    /// The connection failed or closed during the handshake.
    Io(String),
}

impl RejectReason {
    /// A stable snake_case tag for metrics and audit records.
    pub fn tag(&self) -> &'static str {
        match self {
            RejectReason::NoClientCertificate => "no_client_certificate",
            RejectReason::UnknownIssuer => "unknown_issuer",
            RejectReason::CertificateExpired => "certificate_expired",
            RejectReason::CertificateNotYetValid => "certificate_not_yet_valid",
            RejectReason::BadCertificate(_) => "bad_certificate",
            RejectReason::ProtocolVersion => "protocol_version",
            RejectReason::Incompatible(_) => "incompatible",
            RejectReason::Identity(_) => "no_identity",
            RejectReason::HandshakeTimeout => "handshake_timeout",
            RejectReason::TooManyHandshakes => "too_many_handshakes",
            RejectReason::Tls(_) => "tls",
            RejectReason::Io(_) => "io",
        }
    }

    fn from_io(err: &io::Error) -> Self {
        match err
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(tls) => Self::from_rustls(tls),
            None => RejectReason::Io(err.to_string()),
        }
    }

    fn from_rustls(err: &rustls::Error) -> Self {
        match err {
            rustls::Error::NoCertificatesPresented => RejectReason::NoClientCertificate,
            rustls::Error::InvalidCertificate(cert) => match cert {
                CertificateError::UnknownIssuer => RejectReason::UnknownIssuer,
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    RejectReason::CertificateExpired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    RejectReason::CertificateNotYetValid
                }
                other => RejectReason::BadCertificate(other.to_string()),
            },
            rustls::Error::PeerIncompatible(
                PeerIncompatible::Tls12NotOffered
                | PeerIncompatible::Tls12NotOfferedOrEnabled
                | PeerIncompatible::SupportedVersionsExtensionRequired,
            ) => RejectReason::ProtocolVersion,
            rustls::Error::PeerIncompatible(other) => {
                RejectReason::Incompatible(format!("{other:?}"))
            }
            rustls::Error::NoApplicationProtocol => {
                RejectReason::Incompatible("no common application protocol (h2)".to_owned())
            }
            other => RejectReason::Tls(other.to_string()),
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::NoClientCertificate => f.write_str("no client certificate"),
            RejectReason::UnknownIssuer => {
                f.write_str("client certificate not issued by the trusted CA")
            }
            RejectReason::CertificateExpired => f.write_str("client certificate expired"),
            RejectReason::CertificateNotYetValid => f.write_str("client certificate not valid yet"),
            RejectReason::BadCertificate(why) => write!(f, "bad client certificate: {why}"),
            RejectReason::ProtocolVersion => f.write_str("client does not offer TLS 1.3"),
            RejectReason::Incompatible(why) => write!(f, "incompatible client: {why}"),
            RejectReason::Identity(why) => write!(f, "no usable client identity: {why}"),
            RejectReason::HandshakeTimeout => f.write_str("handshake timed out"),
            RejectReason::TooManyHandshakes => f.write_str("too many handshakes in progress"),
            RejectReason::Tls(why) => write!(f, "tls error: {why}"),
            RejectReason::Io(why) => write!(f, "connection failed during the handshake: {why}"),
        }
    }
}

/// A refused connection, as reported to the `on_rejected` hook.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rejection {
    /// The client's address.
    pub remote_addr: SocketAddr,
    /// Why it was refused.
    pub reason: RejectReason,
}

type RejectHook = Arc<dyn Fn(&Rejection) + Send + Sync>;

/// Options of a [`TlsIncoming`]; `Default` gives a 10 s handshake timeout,
/// 256 handshakes at once and no hook.
#[derive(Clone)]
pub struct IncomingOptions {
    handshake_timeout: Duration,
    max_pending_handshakes: usize,
    on_rejected: Option<RejectHook>,
}

impl Default for IncomingOptions {
    fn default() -> Self {
        Self {
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_pending_handshakes: DEFAULT_MAX_PENDING_HANDSHAKES,
            on_rejected: None,
        }
    }
}

impl fmt::Debug for IncomingOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncomingOptions")
            .field("handshake_timeout", &self.handshake_timeout)
            .field("max_pending_handshakes", &self.max_pending_handshakes)
            .field("on_rejected", &self.on_rejected.is_some())
            .finish()
    }
}

impl IncomingOptions {
    /// Bounds each TLS handshake (the time from TCP accept to an
    /// authenticated connection).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Bounds the handshakes in progress at once (at least 1); connections
    /// beyond it are closed at once and reported as
    /// [`RejectReason::TooManyHandshakes`].
    pub fn max_pending_handshakes(mut self, max: usize) -> Self {
        self.max_pending_handshakes = max.max(1);
        self
    }

    /// Calls `hook` once for every refused connection, from the task that
    /// ran its handshake. Keep it quick (e.g. send to a channel).
    pub fn on_rejected(mut self, hook: impl Fn(&Rejection) + Send + Sync + 'static) -> Self {
        self.on_rejected = Some(Arc::new(hook));
        self
    }

    fn reject(&self, remote_addr: SocketAddr, reason: RejectReason) {
        match &reason {
            RejectReason::Io(_) => tracing::info!(
                %remote_addr, tag = reason.tag(), %reason, "refused connection"
            ),
            _ => tracing::warn!(
                %remote_addr, tag = reason.tag(), %reason, "refused connection"
            ),
        }
        if let Some(hook) = &self.on_rejected {
            hook(&Rejection {
                remote_addr,
                reason,
            });
        }
    }
}

/// The stream of authenticated connections accepted on a listener; see
/// the module documentation for its guarantees.
///
/// ```no_run
/// # async fn run(
/// #     config: std::sync::Arc<rustls::ServerConfig>,
/// #     shutdown: impl std::future::Future<Output = ()>,
/// # ) -> Result<(), Box<dyn std::error::Error>> {
/// use tidemark_tls::{IncomingOptions, TlsIncoming};
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let options = IncomingOptions::default()
///     .on_rejected(|r| eprintln!("refused {}: {}", r.remote_addr, r.reason));
/// let incoming = TlsIncoming::new(listener, config, options);
/// let (_reporter, health) = tonic_health::server::health_reporter();
/// tonic::transport::Server::builder()
///     .add_service(health)
///     .serve_with_incoming_shutdown(incoming, shutdown)
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TlsIncoming {
    connections: mpsc::Receiver<TlsConnection>,
    accept_loop: AbortHandle,
}

impl TlsIncoming {
    /// Starts accepting on `listener`, handshaking with `config` (see
    /// [`crate::server_config`]).
    ///
    /// Must be called within a Tokio runtime: it spawns the accept loop.
    pub fn new(listener: TcpListener, config: Arc<ServerConfig>, options: IncomingOptions) -> Self {
        let (sender, connections) = mpsc::channel(QUEUE);
        let acceptor = TlsAcceptor::from(config);
        let accept_loop = tokio::spawn(accept_loop(listener, acceptor, options, sender));
        Self {
            connections,
            accept_loop: accept_loop.abort_handle(),
        }
    }
}

impl Stream for TlsIncoming {
    type Item = Result<TlsConnection, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.connections.poll_recv(cx).map(|next| next.map(Ok))
    }
}

impl Drop for TlsIncoming {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    options: IncomingOptions,
    sender: mpsc::Sender<TlsConnection>,
) {
    let handshakes = Arc::new(Semaphore::new(options.max_pending_handshakes));
    loop {
        let accepted = tokio::select! {
            () = sender.closed() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, remote_addr) = match accepted {
            Ok(accepted) => accepted,
            Err(err) if is_connection_error(&err) => {
                tracing::debug!(%err, "connection failed before accept");
                continue;
            }
            Err(err) => {
                tracing::error!(%err, "accept failed; pausing");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let Ok(permit) = handshakes.clone().try_acquire_owned() else {
            drop(tcp);
            options.reject(remote_addr, RejectReason::TooManyHandshakes);
            continue;
        };
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(%remote_addr, %err, "cannot set TCP_NODELAY");
        }
        let acceptor = acceptor.clone();
        let options = options.clone();
        let sender = sender.clone();
        tokio::spawn(async move {
            let outcome = handshake(tcp, remote_addr, &acceptor, &options).await;
            drop(permit);
            match outcome {
                Ok(connection) => {
                    if sender.send(connection).await.is_err() {
                        tracing::debug!(%remote_addr, "server stopped; connection dropped");
                    }
                }
                Err(reason) => options.reject(remote_addr, reason),
            }
        });
    }
}

async fn handshake(
    tcp: TcpStream,
    remote_addr: SocketAddr,
    acceptor: &TlsAcceptor,
    options: &IncomingOptions,
) -> Result<TlsConnection, RejectReason> {
    let stream = tokio::time::timeout(options.handshake_timeout, acceptor.accept(tcp))
        .await
        .map_err(|_| RejectReason::HandshakeTimeout)?
        .map_err(|err| RejectReason::from_io(&err))?;
    let certs = stream.get_ref().1.peer_certificates().unwrap_or_default();
    let identity = identity::identity_of(certs).map_err(RejectReason::Identity)?;
    tracing::info!(%remote_addr, client = %identity, "client authenticated");
    Ok(TlsConnection {
        stream,
        peer: PeerInfo::new(identity, remote_addr),
    })
}

/// Errors of `accept` that concern one connection only.
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// An authenticated TLS connection, as yielded by [`TlsIncoming`].
#[derive(Debug)]
pub struct TlsConnection {
    stream: TlsStream<TcpStream>,
    peer: PeerInfo,
}

impl TlsConnection {
    /// Who is on the other end.
    pub fn peer(&self) -> &PeerInfo {
        &self.peer
    }
}

impl Connected for TlsConnection {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        self.peer.clone()
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
