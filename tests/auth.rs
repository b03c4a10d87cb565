//! Clients without or with wrong certificates, and clients without a grant.
//!
//! Against a real embedded signer over mutual TLS: a client with no
//! certificate, one from another CA, one with an expired certificate from
//! the signer's own CA, a valid identity without an ACL entry, a replica
//! asking for a key it has no grant for, and a replica calling the admin
//! service. Every one is refused, nothing is signed or stored, and every
//! refusal leaves a `denied` audit record with its reason.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tidemark_cli::embedded::{DEMO_CHAIN, Embedded, VALIDATOR_KEY};
use tidemark_client::{Client, ClientError, ClientOptions, v1};
use tidemark_core::{AuditOutcome, AuditRecord, StateStore as _};
use tidemark_tls::{DevCa, IssuedCert, Validity};

const DAY: Duration = Duration::from_secs(86_400);

fn a_vote(height: i64) -> v1::SignVoteRequest {
    support::vote(
        v1::VoteType::Prevote,
        height,
        0,
        Some(7),
        1_700_000_000 + height,
    )
}

fn ca_pem(signer: &Embedded) -> String {
    std::fs::read_to_string(signer.layout.cert("ca")).unwrap()
}

/// Client options for the signer with `tls`.
fn options(signer: &Embedded, tls: Arc<rustls::ClientConfig>) -> ClientOptions {
    ClientOptions {
        addr: signer.addr.to_string(),
        server_name: "localhost".into(),
        tls,
        deadline: Duration::from_secs(5),
    }
}

/// A client that presents `cert` and trusts the signer's CA.
fn client_with(signer: &Embedded, cert: &IssuedCert) -> Client {
    let tls = tidemark_tls::client_config(&ca_pem(signer), cert.cert_pem(), cert.key_pem())
        .expect("client TLS configuration");
    Client::connect_lazy(options(signer, tls)).unwrap()
}

/// The signer's own CA, loaded from the files `init` wrote.
fn real_ca(signer: &Embedded) -> DevCa {
    DevCa::load(&signer.layout.cert("ca"), &signer.layout.key("ca")).expect("load the real CA")
}

fn audit(signer: &Embedded) -> Vec<AuditRecord> {
    signer.store.audit_records(1, 10_000).unwrap()
}

/// Waits (briefly: denials are audited asynchronously, TLS rejections by
/// the listener's hook) until `n` `denied` records match `pred`, and
/// returns them; more than `n` fails.
async fn denials(
    signer: &Embedded,
    n: usize,
    pred: impl Fn(&AuditRecord) -> bool,
) -> Vec<AuditRecord> {
    let found = at_least(signer, n, pred).await;
    assert_eq!(found.len(), n, "{found:#?}");
    found
}

/// Waits until at least `n` `denied` records match `pred`.
async fn at_least(
    signer: &Embedded,
    n: usize,
    pred: impl Fn(&AuditRecord) -> bool,
) -> Vec<AuditRecord> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found: Vec<AuditRecord> = audit(signer)
            .into_iter()
            .filter(|r| r.entry.outcome == AuditOutcome::Denied && pred(r))
            .collect();
        if found.len() >= n {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {n} denied records: {:#?}",
            found.len(),
            audit(signer)
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The one `denied` record tagged `tag`.
async fn denial(signer: &Embedded, tag: &str) -> AuditRecord {
    let mut found = denials(signer, 1, |r| r.entry.tag.as_deref() == Some(tag)).await;
    found.remove(0)
}

/// Nothing was signed: no object, and no decision in the audit log.
fn nothing_signed(signer: &Embedded) {
    assert!(signer.store.objects().unwrap().is_empty());
    for r in audit(signer) {
        assert_eq!(r.entry.outcome, AuditOutcome::Denied, "{r:?}");
    }
}

/// A TLS-level refusal: the first call fails (TLS 1.3 clients see the
/// server's verdict only after their handshake), nothing is stored, the
/// rejection is audited with `tag`, and the signer still serves replicas.
async fn refused_at_tls(signer: &Embedded, client: Client, tag: &str) {
    let e = client
        .sign_vote(a_vote(1))
        .await
        .expect_err("the call must fail");
    assert!(
        !matches!(e, ClientError::Refused(_)),
        "a TLS refusal never reaches the policy: {e:?}"
    );
    assert!(client.status().await.is_err());
    // Each refused connection is audited (the channel may not redial for
    // the second call), with the remote address as the client.
    let records = at_least(signer, 1, |r| r.entry.tag.as_deref() == Some(tag)).await;
    for record in &records {
        assert_eq!(record.entry.object, "tls");
        assert!(
            record.entry.client.starts_with("127.0.0.1:"),
            "the remote address is recorded: {:?}",
            record.entry
        );
    }
    for r in audit(signer) {
        assert_eq!(r.entry.tag.as_deref(), Some(tag), "no other denial: {r:?}");
    }
    nothing_signed(signer);

    // The listener keeps serving real replicas.
    let good = signer.client("replica-1").unwrap();
    assert_eq!(
        good.sign_vote(a_vote(2)).await.unwrap().outcome,
        v1::Outcome::Signed as i32
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_without_a_certificate_is_refused_and_audited() {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;

    let signer = support::signer(1).await;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem(&signer).as_bytes()).unwrap())
        .unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let client = Client::connect_lazy(options(&signer, Arc::new(config))).unwrap();
    refused_at_tls(&signer, client, "denied-tls-no-certificate").await;
    signer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_certificate_from_another_ca_is_refused_and_audited() {
    let signer = support::signer(1).await;
    let other = DevCa::generate("Some other CA").unwrap();
    let impostor = other.issue_client("replica-1").unwrap();
    let client = client_with(&signer, &impostor);
    refused_at_tls(&signer, client, "denied-tls-unknown-issuer").await;
    signer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_certificate_from_the_real_ca_is_refused_and_audited() {
    let signer = support::signer(1).await;
    let now = SystemTime::now();
    let expired = real_ca(&signer)
        .issue_client_with("replica-1", Validity::between(now - 2 * DAY, now - DAY))
        .unwrap();
    let client = client_with(&signer, &expired);
    refused_at_tls(&signer, client, "denied-tls-expired").await;
    signer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_valid_identity_without_a_grant_is_denied_and_audited() {
    let signer = support::signer(1).await;
    let stranger = real_ca(&signer).issue_client("stranger").unwrap();
    let client = client_with(&signer, &stranger);
    let e = client.sign_vote(a_vote(1)).await.unwrap_err();
    assert!(matches!(e, ClientError::PermissionDenied(_)), "{e:?}");
    let e = client
        .sign_height(v1::SignHeightRequest {
            chain_id: "plain-1".into(),
            key_id: VALIDATOR_KEY.into(),
            height: 1,
            round: None,
            payload: b"x".to_vec(),
        })
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::PermissionDenied(_)), "{e:?}");
    let e = client.status().await.unwrap_err();
    assert!(matches!(e, ClientError::PermissionDenied(_)), "{e:?}");

    // Every denied call is audited, with the identity that asked.
    let records = denials(&signer, 3, |r| r.entry.client == "stranger").await;
    for r in records {
        assert_eq!(r.entry.tag.as_deref(), Some("denied-no-grant"), "{r:?}");
    }
    nothing_signed(&signer);
    signer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_asking_for_a_key_it_has_no_grant_for_is_denied_and_audited() {
    let signer = support::signer(1).await;
    let client = signer.client("replica-1").unwrap();
    let mut request = a_vote(1);
    request.key_id = "other-key".into();
    let e = client.sign_vote(request).await.unwrap_err();
    assert!(matches!(e, ClientError::PermissionDenied(_)), "{e:?}");
    let record = denial(&signer, "denied-key").await;
    assert_eq!(record.entry.client, "replica-1");
    assert!(
        record.entry.object.contains("other-key"),
        "{:?}",
        record.entry
    );
    nothing_signed(&signer);

    // The admin identity has no signing grant at all.
    let admin = signer.client("admin").unwrap();
    let e = admin.sign_vote(a_vote(1)).await.unwrap_err();
    assert!(matches!(e, ClientError::PermissionDenied(_)), "{e:?}");
    denial(&signer, "denied-domain").await;
    nothing_signed(&signer);
    signer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_cannot_use_the_admin_service_and_an_admin_can() {
    let signer = support::signer(1).await;
    let replica = signer.client("replica-1").unwrap();
    let denied = |r: Result<_, ClientError>| match r {
        Err(ClientError::PermissionDenied(_)) => {}
        other => panic!("expected PermissionDenied, got {other:?}"),
    };
    denied(replica.status().await.map(|_| ()));
    denied(replica.list_keys().await.map(|_| ()));
    denied(replica.list_marks().await.map(|_| ()));
    denied(replica.export_marks().await.map(|_| ()));
    // An import would raise a mark: the most dangerous admin call.
    let document = serde_json::json!({
        "format": "tidemark-marks-v1",
        "objects": [{
            "object": format!("consensus/{DEMO_CHAIN}/{VALIDATOR_KEY}/cometbft"),
            "mark": [["height", 1000], ["round", 0], ["step", 3]],
        }],
    })
    .to_string();
    let import = v1::ImportMarksRequest {
        format: v1::ImportFormat::Tidemark as i32,
        document,
        chain_id: String::new(),
        key_id: String::new(),
    };
    denied(replica.import_marks(import.clone()).await.map(|_| ()));
    let records = denials(&signer, 5, |r| {
        r.entry.tag.as_deref() == Some("denied-not-admin")
    })
    .await;
    for r in records {
        assert_eq!(r.entry.client, "replica-1");
        assert_eq!(r.entry.object, "admin");
    }
    nothing_signed(&signer);

    // The admin identity may.
    let admin = signer.client("admin").unwrap();
    let status = admin.status().await.unwrap();
    assert!(status.store_healthy);
    assert_eq!(status.signed, 0);
    let keys = admin.list_keys().await.unwrap().keys;
    assert!(
        keys.iter()
            .any(|k| k.key_id == VALIDATOR_KEY && k.public_key == signer.validator_public_key),
        "{keys:?}"
    );
    assert!(admin.list_marks().await.unwrap().marks.is_empty());
    let raised = admin.import_marks(import).await.unwrap();
    assert_eq!(raised.raised.len(), 1);
    let objects = signer.store.objects().unwrap();
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0].1.mark.get("height"), Some(1000));
    signer.stop().await;
}
