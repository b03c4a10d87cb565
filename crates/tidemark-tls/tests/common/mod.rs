//! A throwaway PKI and a real tonic server on 127.0.0.1:0 for the tests.

#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tidemark_tls::{DevCa, IncomingOptions, IssuedCert, PeerInfo, Rejection, TlsIncoming};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
use tonic_health::server::{HealthReporter, HealthService};

/// How long a test waits for something that should happen at once.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct Pki {
    pub ca: DevCa,
    pub server: IssuedCert,
}

impl Pki {
    pub fn new() -> Self {
        let ca = DevCa::generate("tidemark test CA").unwrap();
        let server = ca.issue_server(&["localhost", "127.0.0.1"]).unwrap();
        Self { ca, server }
    }

    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        tidemark_tls::server_config(
            self.ca.cert_pem(),
            self.server.cert_pem(),
            self.server.key_pem(),
        )
        .unwrap()
    }

    pub fn client_config(&self, client: &IssuedCert) -> Arc<rustls::ClientConfig> {
        tidemark_tls::client_config(self.ca.cert_pem(), client.cert_pem(), client.key_pem())
            .unwrap()
    }
}

/// A running health server whose interceptor records each request's peer.
pub struct TestServer {
    pub addr: SocketAddr,
    pub peers: Arc<Mutex<Vec<Option<PeerInfo>>>>,
    pub rejections: mpsc::UnboundedReceiver<Rejection>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
}

impl TestServer {
    pub async fn start(pki: &Pki, options: IncomingOptions) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(listener, pki, options)
    }

    pub fn start_on(listener: TcpListener, pki: &Pki, options: IncomingOptions) -> Self {
        let addr = listener.local_addr().unwrap();
        let (reject_tx, rejections) = mpsc::unbounded_channel();
        let options = options.on_rejected(move |rejection| {
            let _ = reject_tx.send(rejection.clone());
        });
        let incoming = TlsIncoming::new(listener, pki.server_config(), options);

        let peers = Arc::new(Mutex::new(Vec::new()));
        let seen = peers.clone();
        let health = HealthServer::with_interceptor(
            HealthService::from_health_reporter(HealthReporter::new()),
            move |request: tonic::Request<()>| {
                seen.lock().unwrap().push(PeerInfo::of(&request).cloned());
                Ok(request)
            },
        );
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(health)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = signal.await;
                }),
        );
        Self {
            addr,
            peers,
            rejections,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// The next rejection reported by the listener.
    pub async fn next_rejection(&mut self) -> Rejection {
        tokio::time::timeout(WAIT, self.rejections.recv())
            .await
            .expect("a rejection within the wait")
            .expect("the rejection channel is open")
    }

    /// Stops the server and waits until it has stopped.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("the server stops within the wait")
                .unwrap()
                .unwrap();
        }
    }
}

/// One `grpc.health.v1.Health/Check` for the whole server.
pub async fn check(channel: Channel) -> Result<ServingStatus, tonic::Status> {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?;
    Ok(response.into_inner().status())
}
