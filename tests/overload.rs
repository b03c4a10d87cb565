//! Overload and deadlines over real mutual TLS.
//!
//! - Beyond `server.max_in_flight` requests are refused with
//!   `RESOURCE_EXHAUSTED` (the client's `Overloaded`) before any work: a
//!   shed request leaves no state behind, and the signer keeps serving.
//! - A request whose deadline expired may or may not have been signed; the
//!   identical retry returns a valid signature and never a conflicting one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use tidemark_cli::commands::init::{InitArgs, init};
use tidemark_cli::embedded::{Embedded, VALIDATOR_KEY};
use tidemark_client::{Client, ClientError, v1};
use tidemark_core::StateStore as _;

async fn signer_with_limit(max_in_flight: usize) -> (tempfile::TempDir, Embedded) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("signer");
    let made = init(&InitArgs {
        dir: dir.clone(),
        replicas: 1,
        listen: "127.0.0.1:0".into(),
        metrics_listen: "127.0.0.1:0".into(),
        server_names: vec!["localhost".into()],
        key: VALIDATOR_KEY.into(),
        insecure_fast_kdf: true,
        seed_file: None,
    })
    .unwrap();
    let config = made.layout.config();
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace(
        "max_in_flight = 1024",
        &format!("max_in_flight = {max_in_flight}"),
    );
    std::fs::write(&config, text).unwrap();
    (tmp, Embedded::start_existing(&dir).await.unwrap())
}

fn prevote(chain: &str, height: i64) -> v1::SignVoteRequest {
    let mut r = support::vote(v1::VoteType::Prevote, height, 0, Some(7), 1_700_000_000);
    r.chain_id = chain.into();
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_beyond_the_in_flight_bound_are_shed_and_change_nothing() {
    let (_tmp, signer) = signer_with_limit(2).await;
    let clients: Vec<Client> = (0..8)
        .map(|_| signer.client("replica-1").unwrap())
        .collect();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let client = clients[i % clients.len()].clone();
        tasks.push(tokio::spawn(async move {
            let chain = format!("overload-{i}");
            (chain.clone(), client.sign_vote(prevote(&chain, 1)).await)
        }));
    }
    let (mut signed, mut shed) = (Vec::new(), Vec::new());
    for t in tasks {
        match t.await.unwrap() {
            (chain, Ok(_)) => signed.push(chain),
            (chain, Err(ClientError::Overloaded(_))) => shed.push(chain),
            (chain, Err(e)) => panic!("{chain}: unexpected error {e}"),
        }
    }
    assert!(
        !shed.is_empty(),
        "200 concurrent requests against a bound of 2 shed none"
    );
    assert!(!signed.is_empty(), "nothing was served at all");

    // A shed request did no work: no object exists for it.
    let objects: Vec<String> = signer
        .store
        .objects()
        .unwrap()
        .into_iter()
        .map(|(o, _)| o.chain().to_string())
        .collect();
    for chain in &shed {
        assert!(
            !objects.contains(chain),
            "shed request for {chain} left state"
        );
    }
    assert_eq!(objects.len(), signed.len());
    let metrics = signer.server.shared().render_metrics();
    assert!(
        !metrics.contains("tidemark_shed_total 0\n"),
        "shed requests are counted"
    );

    // The signer keeps serving once the burst is over.
    clients[0]
        .sign_vote(prevote("after-burst", 1))
        .await
        .unwrap();
    signer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_after_a_missed_deadline_gets_the_same_valid_signature() {
    let (_tmp, signer) = signer_with_limit(64).await;
    let hurried = Client::connect_lazy(
        signer
            .client_options("replica-1")
            .unwrap()
            .with_deadline(Duration::from_micros(1)),
    )
    .unwrap();
    let patient = signer.client("replica-1").unwrap();
    let public =
        ed25519_dalek::VerifyingKey::try_from(signer.validator_public_key.as_slice()).unwrap();

    for height in 1..=20 {
        let request = prevote("deadline", height);
        let first = hurried.sign_vote(request.clone()).await;
        match &first {
            Ok(_) | Err(ClientError::DeadlineExceeded(_)) => {}
            Err(e) => panic!("unexpected error {e}"),
        }
        // Whatever happened to the hurried request, the retry gets one
        // signature over the same sign bytes, and it verifies.
        let retry = patient.sign_vote(request).await.unwrap();
        let sig = ed25519_dalek::Signature::from_slice(&retry.signature).unwrap();
        public.verify_strict(&retry.sign_bytes, &sig).unwrap();
        if let Ok(first) = first {
            assert_eq!(first.signature, retry.signature);
            assert_eq!(retry.outcome, v1::Outcome::Replayed as i32);
        }
    }
    signer.stop().await;
}
