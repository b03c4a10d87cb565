//! The mapping of statuses to [`ClientError`], transport failures first.

use std::io;

use tidemark_proto::v1::lightning_client::LightningClient;
use tonic::{Code, Status};

use super::ClientError;

fn io_status(kind: io::ErrorKind) -> Status {
    Status::from_error(Box::new(io::Error::new(kind, "connection reset by peer")))
}

/// An error that wraps another, as a middleware would.
#[derive(Debug)]
struct Wrapped(io::Error);

impl std::fmt::Display for Wrapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("wrapped")
    }
}

impl std::error::Error for Wrapped {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[test]
fn unknown_with_an_io_source_is_retryable() {
    let status = io_status(io::ErrorKind::ConnectionReset);
    assert_eq!(status.code(), Code::Unknown);
    let err = ClientError::from(status);
    assert!(matches!(err, ClientError::Unavailable(_)), "{err:?}");
    assert!(err.is_retryable());
}

#[test]
fn a_nested_io_source_is_found() {
    let status = Status::from_error(Box::new(Wrapped(io::Error::new(
        io::ErrorKind::BrokenPipe,
        "broken pipe",
    ))));
    let err = ClientError::from(status);
    assert!(err.is_retryable(), "{err:?}");
}

#[test]
fn a_server_sent_unknown_is_not_retryable() {
    let err = ClientError::from(Status::unknown("transport error"));
    assert!(
        matches!(
            err,
            ClientError::Other {
                code: Code::Unknown,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    let err = ClientError::from(Status::internal("store corrupt"));
    assert!(!err.is_retryable());
}

#[test]
fn table_of_codes_without_a_source() {
    // (code, retryable)
    let table = [
        (Code::Unavailable, true),
        (Code::ResourceExhausted, true),
        (Code::DeadlineExceeded, true),
        (Code::Cancelled, true),
        (Code::Unknown, false),
        (Code::Internal, false),
        (Code::InvalidArgument, false),
        (Code::NotFound, false),
        (Code::PermissionDenied, false),
        (Code::FailedPrecondition, false),
    ];
    for (code, retryable) in table {
        let err = ClientError::from(Status::new(code, "x"));
        assert_eq!(err.is_retryable(), retryable, "{code:?}: {err:?}");
    }
}

#[test]
fn the_clients_own_deadline_stays_deadline_exceeded() {
    let status = Status::from_error(Box::new(tonic::TimeoutExpired(())));
    assert_eq!(status.code(), Code::Cancelled);
    let err = ClientError::from(status);
    assert!(matches!(err, ClientError::DeadlineExceeded(_)), "{err:?}");
    assert!(err.is_retryable());
}

/// A peer that accepts the connection and drops it mid-call: tonic's
/// status is made up on the client side, and must be retryable.
#[tokio::test]
async fn a_connection_dropped_mid_call_is_retryable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local port");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let server = tokio::spawn(async move {
        // Accept, read a little of the HTTP/2 preface, drop.
        for _ in 0..4 {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 16];
            let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut buf).await;
            drop(socket);
        }
    });
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("a valid uri")
        .connect_lazy();
    let mut client = LightningClient::new(channel);
    let status = client
        .get_node_id(tidemark_proto::v1::GetNodeIdRequest { node: "n".into() })
        .await
        .expect_err("the peer drops the connection");
    let code = status.code();
    let err = ClientError::from(status);
    assert!(err.is_retryable(), "{code:?}: {err:?}");
    server.abort();
}
