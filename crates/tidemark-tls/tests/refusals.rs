//! Refused connections over real TLS on 127.0.0.1: each refusal is
//! reported through the rejection hook with its reason, the client's call
//! fails, and the server keeps serving.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{Pki, TestServer, check};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair,
};
use secrecy::ExposeSecret;
use tidemark_tls::{
    IncomingOptions, IssuedCert, RejectReason, SecretString, Validity, lazy_channel,
};
use tonic_health::pb::health_check_response::ServingStatus;

const DAY: Duration = Duration::from_secs(86_400);

/// Calls the server with `config`, expects the call to fail and returns
/// the reason the server reported; then checks the server still serves a
/// good client.
async fn refused(pki: &Pki, config: Arc<rustls::ClientConfig>) -> RejectReason {
    let mut server = TestServer::start(pki, IncomingOptions::default()).await;
    let channel = lazy_channel(&server.addr.to_string(), "localhost", config).unwrap();
    // With TLS 1.3 the client finishes its side of the handshake before the
    // server has verified it, so the refusal reaches the client as a
    // transport error on its first call, whose code tonic does not fix.
    check(channel).await.expect_err("the call must fail");
    let rejection = server.next_rejection().await;
    assert!(rejection.remote_addr.ip().is_loopback());
    assert!(
        server.peers.lock().unwrap().is_empty(),
        "no request was served"
    );

    let good = pki.ca.issue_client("replica-ok").unwrap();
    let channel = lazy_channel(
        &server.addr.to_string(),
        "localhost",
        pki.client_config(&good),
    )
    .unwrap();
    assert_eq!(check(channel).await.unwrap(), ServingStatus::Serving);
    server.stop().await;
    rejection.reason
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(pki: &Pki) -> rustls::RootCertStore {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(
            rustls_pki_types::CertificateDer::from_pem_slice(pki.ca.cert_pem().as_bytes()).unwrap(),
        )
        .unwrap();
    roots
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let pki = Pki::new();
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots(&pki))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    assert_eq!(
        refused(&pki, Arc::new(config)).await,
        RejectReason::NoClientCertificate
    );
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let pki = Pki::new();
    let other = tidemark_tls::DevCa::generate("some other CA").unwrap();
    let client = other.issue_client("replica-1").unwrap();
    assert_eq!(
        refused(&pki, pki.client_config(&client)).await,
        RejectReason::UnknownIssuer
    );
}

#[tokio::test]
async fn a_certificate_from_a_ca_with_the_same_name_is_refused() {
    let pki = Pki::new();
    let impostor = tidemark_tls::DevCa::generate("tidemark test CA").unwrap();
    let client = impostor.issue_client("replica-1").unwrap();
    let reason = refused(&pki, pki.client_config(&client)).await;
    assert!(
        matches!(
            reason,
            RejectReason::UnknownIssuer | RejectReason::BadCertificate(_)
        ),
        "{reason:?}"
    );
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let pki = Pki::new();
    let now = SystemTime::now();
    let client = pki
        .ca
        .issue_client_with("replica-1", Validity::between(now - 2 * DAY, now - DAY))
        .unwrap();
    assert_eq!(
        refused(&pki, pki.client_config(&client)).await,
        RejectReason::CertificateExpired
    );
}

#[tokio::test]
async fn a_not_yet_valid_certificate_is_refused() {
    let pki = Pki::new();
    let now = SystemTime::now();
    let client = pki
        .ca
        .issue_client_with("replica-1", Validity::between(now + DAY, now + 2 * DAY))
        .unwrap();
    assert_eq!(
        refused(&pki, pki.client_config(&client)).await,
        RejectReason::CertificateNotYetValid
    );
}

#[tokio::test]
async fn a_server_certificate_cannot_authenticate_a_client() {
    let pki = Pki::new();
    let server_cert = pki.ca.issue_server(&["replica-1"]).unwrap();
    let reason = refused(&pki, pki.client_config(&server_cert)).await;
    assert!(
        matches!(reason, RejectReason::BadCertificate(_)),
        "{reason:?}"
    );
}

#[tokio::test]
async fn a_tls12_only_client_is_refused() {
    let pki = Pki::new();
    let client = pki.ca.issue_client("replica-1").unwrap();
    let chain = vec![
        <rustls_pki_types::CertificateDer as rustls_pki_types::pem::PemObject>::from_pem_slice(
            client.cert_pem().as_bytes(),
        )
        .unwrap(),
    ];
    let key =
        <rustls_pki_types::PrivateKeyDer as rustls_pki_types::pem::PemObject>::from_pem_slice(
            client.key_pem().expose_secret().as_bytes(),
        )
        .unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots(&pki))
        .with_client_auth_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    assert_eq!(
        refused(&pki, Arc::new(config)).await,
        RejectReason::ProtocolVersion
    );
}

#[tokio::test]
async fn a_verified_certificate_without_a_valid_identity_is_refused() {
    let pki = Pki::new();
    // Issue, with the real CA, a client certificate whose only name has a
    // space in it: not a valid client id.
    let ca = pki.ca.to_issued();
    let ca_key = KeyPair::from_pem(ca.key_pem().expose_secret()).unwrap();
    let issuer = Issuer::from_ca_cert_pem(ca.cert_pem(), ca_key).unwrap();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "not an id");
    params.distinguished_name = dn;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let client = IssuedCert::new(cert.pem(), SecretString::from(key.serialize_pem()));

    let reason = refused(&pki, pki.client_config(&client)).await;
    assert!(matches!(reason, RejectReason::Identity(_)), "{reason:?}");
}
