//! Accepted connections over real TLS on 127.0.0.1: identity extraction, a
//! real gRPC call through the listener and the dialer, concurrency of
//! handshakes, and reconnection.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Pki, TestServer, WAIT, check};
use futures_util::StreamExt;
use rustls_pki_types::ServerName;
use tidemark_tls::{DevCa, IncomingOptions, RejectReason, TlsIncoming, connect_channel};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tonic_health::pb::health_check_response::ServingStatus;

#[tokio::test]
async fn valid_client_handshakes_and_its_identity_is_extracted() {
    let pki = Pki::new();
    let client = pki.ca.issue_client("replica-1").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut incoming = TlsIncoming::new(listener, pki.server_config(), IncomingOptions::default());

    let connector = tokio_rustls::TlsConnector::from(pki.client_config(&client));
    let client_task = tokio::spawn(async move {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        assert_eq!(
            tls.get_ref().1.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        tls.write_all(b"ping").await.unwrap();
        let mut pong = [0u8; 4];
        tls.read_exact(&mut pong).await.unwrap();
        assert_eq!(&pong, b"pong");
        tls.get_ref().0.local_addr().unwrap()
    });

    let mut conn = tokio::time::timeout(WAIT, incoming.next())
        .await
        .unwrap()
        .expect("the stream is open")
        .expect("the stream never yields errors");
    assert_eq!(conn.peer().identity.as_str(), "replica-1");
    let mut ping = [0u8; 4];
    conn.read_exact(&mut ping).await.unwrap();
    assert_eq!(&ping, b"ping");
    conn.write_all(b"pong").await.unwrap();
    conn.flush().await.unwrap();
    let client_addr = client_task.await.unwrap();
    assert_eq!(conn.peer().remote_addr, client_addr);
}

#[tokio::test]
async fn grpc_call_succeeds_and_the_handler_sees_the_peer_identity() {
    let pki = Pki::new();
    let server = TestServer::start(&pki, IncomingOptions::default()).await;
    let client = pki.ca.issue_client("validator-a").unwrap();

    let channel = connect_channel(
        &server.addr.to_string(),
        "localhost",
        pki.client_config(&client),
    )
    .await
    .unwrap();
    assert_eq!(
        check(channel.clone()).await.unwrap(),
        ServingStatus::Serving
    );
    assert_eq!(check(channel).await.unwrap(), ServingStatus::Serving);

    let peers = server.peers.lock().unwrap().clone();
    assert_eq!(peers.len(), 2);
    for peer in peers {
        let peer = peer.expect("every request carries PeerInfo");
        assert_eq!(peer.identity.as_str(), "validator-a");
        assert!(peer.remote_addr.ip().is_loopback());
    }
    server.stop().await;
}

#[tokio::test]
async fn the_server_name_is_checked_by_the_client() {
    let pki = Pki::new();
    let mut server = TestServer::start(&pki, IncomingOptions::default()).await;
    let client = pki.ca.issue_client("replica-1").unwrap();

    let err = connect_channel(
        &server.addr.to_string(),
        "signer.example",
        pki.client_config(&client),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, tidemark_tls::TlsError::Connect { .. }),
        "{err}"
    );
    // The server sees the client's alert.
    let rejection = server.next_rejection().await;
    assert!(
        matches!(rejection.reason, RejectReason::Tls(_)),
        "{rejection:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_ca_reloaded_from_its_files_issues_accepted_certificates() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let paths = tidemark_tls::write_pem_files(dir.path(), "ca", &pki.ca.to_issued()).unwrap();
    let reloaded = DevCa::load(&paths.cert, &paths.key).unwrap();
    assert_eq!(reloaded.cert_pem(), pki.ca.cert_pem());
    let client = reloaded.issue_client("replica-2").unwrap();

    let server = TestServer::start(&pki, IncomingOptions::default()).await;
    let channel = connect_channel(
        &server.addr.to_string(),
        "127.0.0.1",
        pki.client_config(&client),
    )
    .await
    .unwrap();
    assert_eq!(check(channel).await.unwrap(), ServingStatus::Serving);
    let peers = server.peers.lock().unwrap().clone();
    assert_eq!(peers[0].as_ref().unwrap().identity.as_str(), "replica-2");
    server.stop().await;
}

#[tokio::test]
async fn a_silent_client_neither_blocks_others_nor_stays_forever() {
    let pki = Pki::new();
    let options = IncomingOptions::default().handshake_timeout(Duration::from_millis(500));
    let mut server = TestServer::start(&pki, options).await;
    let client = pki.ca.issue_client("replica-1").unwrap();

    // Connects and says nothing.
    let silent = TcpStream::connect(server.addr).await.unwrap();
    let channel = connect_channel(
        &server.addr.to_string(),
        "localhost",
        pki.client_config(&client),
    )
    .await
    .unwrap();
    assert_eq!(check(channel).await.unwrap(), ServingStatus::Serving);

    let rejection = server.next_rejection().await;
    assert_eq!(rejection.reason, RejectReason::HandshakeTimeout);
    assert_eq!(rejection.remote_addr, silent.local_addr().unwrap());
    server.stop().await;
}

#[tokio::test]
async fn handshakes_beyond_the_limit_are_shed() {
    let pki = Pki::new();
    let options = IncomingOptions::default().max_pending_handshakes(1);
    let mut server = TestServer::start(&pki, options).await;

    let _silent = TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = TcpStream::connect(server.addr).await.unwrap();
    let rejection = server.next_rejection().await;
    assert_eq!(rejection.reason, RejectReason::TooManyHandshakes);
    assert_eq!(rejection.remote_addr, second.local_addr().unwrap());
    server.stop().await;
}

#[tokio::test]
async fn the_channel_redials_a_restarted_server() {
    let pki = Pki::new();
    let first = TestServer::start(&pki, IncomingOptions::default()).await;
    let addr = first.addr;
    let client = pki.ca.issue_client("replica-1").unwrap();
    let channel = connect_channel(&addr.to_string(), "localhost", pki.client_config(&client))
        .await
        .unwrap();
    assert_eq!(
        check(channel.clone()).await.unwrap(),
        ServingStatus::Serving
    );
    first.stop().await;

    // The old listener closes once its accept task is gone; rebind the port.
    let listener = rebind(addr).await;
    let second = TestServer::start_on(listener, &pki, IncomingOptions::default());

    let mut outcome = None;
    for _ in 0..50 {
        match check(channel.clone()).await {
            Ok(status) => {
                outcome = Some(status);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(outcome, Some(ServingStatus::Serving));
    let peers = second.peers.lock().unwrap().clone();
    assert_eq!(
        peers.last().unwrap().as_ref().unwrap().identity.as_str(),
        "replica-1"
    );
    second.stop().await;
}

async fn rebind(addr: std::net::SocketAddr) -> TcpListener {
    for _ in 0..50 {
        match TcpListener::bind(addr).await {
            Ok(listener) => return listener,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("cannot rebind {addr}");
}
