//! The lightning service end to end: a real signer (SQLite store with
//! fsync, encrypted keystore whose seed is the node's) over mutual TLS on
//! 127.0.0.1, driven by replicas of one LDK-style node, with a simulated
//! counterparty (`tidemark_lightning::fixtures`) that signs the holder's
//! commitments with LDK's own signer and checks every signature the
//! signer returns.
//!
//! Channel rules here; node operations and grants in `lightning/node.rs`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::audited;

use std::time::{Duration, Instant};

use tidemark_cli::embedded::{DEV_LIGHTNING_NODE, Embedded};
use tidemark_client::lightning::{ChannelAnswer, channel_answer, channel_request};
use tidemark_client::{Client, ClientError, Refusal, v1};
use tidemark_core::{AuditOutcome, StateStore as _};
use tidemark_lightning::channel::{
    ChannelImport, ChannelKind, ChannelRequest, CommitmentNumber, ImportedCommitment,
    ImportedSecret, Output, RevocationSecrets,
};
use tidemark_lightning::fixtures::{BEST_BLOCK_HEIGHT, SimulatedChannel};
use tidemark_lightning::keys::per_commitment_secret;

/// A channel the replicas of the node drive: the simulated counterparty
/// and the channel keys id the signer issued.
struct Chan {
    sim: SimulatedChannel,
    id: [u8; 32],
}

/// Asks `request` about `chan` through `client`.
async fn ask(
    client: &Client,
    chan: &Chan,
    request: &ChannelRequest,
) -> Result<ChannelAnswer, ClientError> {
    client
        .channel_call(
            DEV_LIGHTNING_NODE,
            &chan.id,
            request,
            Some(BEST_BLOCK_HEIGHT),
        )
        .await
}

/// The output of a request that must be decided now.
async fn done(client: &Client, chan: &Chan, request: &ChannelRequest) -> Output {
    let answer = ask(client, chan, request)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", request.kind()));
    assert!(!answer.replayed, "{}: replayed", request.kind());
    answer.output
}

/// The refusal in `result`, which must be one.
fn refusal<T: std::fmt::Debug>(result: Result<T, ClientError>) -> Refusal {
    match result {
        Err(ClientError::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A new channel of `kind` on the signer's node: the keys id issued by
/// the signer, the holder keys it reports checked against the fixture's,
/// and the channel opened (setup, counterparty and holder commitment 0).
async fn open(signer: &Embedded, client: &Client, kind: ChannelKind, user: u128) -> Chan {
    let id = client
        .issue_channel_keys_id(DEV_LIGHTNING_NODE, user)
        .await
        .unwrap();
    let node = signer.lightning().unwrap();
    let sim = SimulatedChannel::new(node.signer.node(), id, kind);
    let reported = client
        .channel_public_keys(DEV_LIGHTNING_NODE, &id)
        .await
        .unwrap();
    assert_eq!(reported, sim.setup.holder, "GetChannelPublicKeys");
    let chan = Chan { sim, id };
    for request in chan.sim.opening_requests().unwrap() {
        done(client, &chan, &request).await;
    }
    chan
}

/// One full round to commitment `n` on both sides.
async fn advance(client: &Client, chan: &Chan, n: u64) {
    for request in chan.sim.round_requests(n).unwrap() {
        done(client, chan, &request).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_counterparty_commitment_is_signed_verified_and_replayed_by_another_replica() {
    let signer = support::signer(2).await;
    let one = signer.client("replica-1").unwrap();
    let two = signer.client("replica-2").unwrap();
    for (user, kind) in ChannelKind::ALL.into_iter().enumerate() {
        let mut chan = open(&signer, &one, kind, user as u128).await;
        advance(&one, &chan, 1).await;
        chan.sim
            .offer_htlcs(3, 20_000, BEST_BLOCK_HEIGHT + 100, 1)
            .unwrap();

        // Replica 1 signs commitment 2; the counterparty checks every
        // signature as it would on receiving `commitment_signed`.
        let data = chan.sim.counterparty_commitment(2).unwrap();
        let request = ChannelRequest::SignCounterpartyCommitment(Box::new(data.clone()));
        let wire = channel_request(DEV_LIGHTNING_NODE, &chan.id, &request, None).unwrap();
        let first = one.channel(wire.clone()).await.unwrap();
        assert_eq!(first.outcome, v1::ChannelOutcome::Done as i32);
        let Output::Commitment {
            signature,
            htlc_signatures,
        } = channel_answer(first.clone()).unwrap().output
        else {
            panic!("not a commitment: {first:?}");
        };
        assert_eq!(htlc_signatures.len(), 3, "{kind:?}");
        chan.sim
            .verify_counterparty_signatures(&data, &signature, &htlc_signatures)
            .unwrap();

        // Replica 2 asks for the very same commitment: the stored answer,
        // byte for byte.
        let again = two.channel(wire).await.unwrap();
        assert_eq!(again.outcome, v1::ChannelOutcome::Replayed as i32);
        assert_eq!(again.output, first.output, "{kind:?}");

        // Replica 2 proposes other content at number 2 (the split brain):
        // refused, and the refusal says where the channel is.
        let mut other = data.clone();
        other.feerate_per_kw += 1;
        let r = refusal(
            ask(
                &two,
                &chan,
                &ChannelRequest::SignCounterpartyCommitment(Box::new(other)),
            )
            .await,
        );
        assert_eq!(r.tag, "policy-commitment-retry-same", "{r:?}");
        assert_eq!(
            r.object,
            format!(
                "lightning/regtest/{DEV_LIGHTNING_NODE}/chan.{}",
                hex::encode(chan.id)
            )
        );
        assert_eq!(r.mark("counterparty_signed"), Some(2), "{r:?}");
        assert_eq!(r.mark("counterparty_revoked"), Some(1), "{r:?}");
        assert_eq!(r.mark("holder_validated"), Some(1), "{r:?}");
        assert_eq!(r.mark("holder_revoked_through"), Some(0), "{r:?}");
        assert_eq!(r.mark("closed"), Some(0), "{r:?}");
    }
    // Every decision is counted by domain, outcome and tag.
    let metrics = signer.server.shared().render_metrics();
    for line in [
        "client=\"replica-2\",domain=\"lightning\",outcome=\"replayed\",tag=\"\"} 2",
        "client=\"replica-2\",domain=\"lightning\",outcome=\"refused\",tag=\"policy-commitment-retry-same\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} not in {metrics}");
    }
    signer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grpc_health_covers_the_lightning_service() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    let signer = support::signer(1).await;
    let options = signer.client_options("replica-1").unwrap();
    let channel =
        tidemark_tls::lazy_channel(&signer.addr.to_string(), "localhost", options.tls).unwrap();
    let mut health = HealthClient::new(channel);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = health
            .check(HealthCheckRequest {
                service: "tidemark.v1.Lightning".into(),
            })
            .await;
        let status = answer.map(|a| ServingStatus::try_from(a.into_inner().status));
        if matches!(status, Ok(Ok(ServingStatus::Serving))) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "tidemark.v1.Lightning is not serving"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    signer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commitment_n_plus_1_waits_for_the_revocation_of_n_minus_1() {
    let signer = support::signer(1).await;
    let client = signer.client("replica-1").unwrap();
    let chan = open(&signer, &client, ChannelKind::AnchorsZeroFeeHtlcTx, 7).await;
    let sign = |n| {
        ChannelRequest::SignCounterpartyCommitment(Box::new(
            chan.sim.counterparty_commitment(n).unwrap(),
        ))
    };
    done(&client, &chan, &sign(1)).await;
    // Commitments 0 and 1 are both unrevoked: a third would be too many.
    let r = refusal(ask(&client, &chan, &sign(2)).await);
    assert_eq!(r.tag, "policy-commitment-previous-revoked", "{r:?}");
    assert_eq!(r.mark("counterparty_signed"), Some(1));
    assert_eq!(r.mark("counterparty_revoked"), Some(0));
    // A revocation secret that is not commitment 0's is refused too.
    let wrong = ChannelRequest::ValidateCounterpartyRevocation {
        number: tidemark_lightning::channel::CommitmentNumber::FIRST,
        secret: chan.sim.counterparty_secret(1).unwrap(),
    };
    let r = refusal(ask(&client, &chan, &wrong).await);
    assert_eq!(r.tag, "policy-revocation-mismatch", "{r:?}");
    // Once the counterparty revoked 0, commitment 2 is signed.
    done(&client, &chan, &chan.sim.revocation_request(0).unwrap()).await;
    let data = chan.sim.counterparty_commitment(2).unwrap();
    let Output::Commitment {
        signature,
        htlc_signatures,
    } = done(&client, &chan, &sign(2)).await
    else {
        panic!("not a commitment");
    };
    chan.sim
        .verify_counterparty_signatures(&data, &signature, &htlc_signatures)
        .unwrap();
    signer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_holder_secret_is_released_only_after_the_next_holder_commitment() {
    let signer = support::signer(1).await;
    let client = signer.client("replica-1").unwrap();
    let chan = open(&signer, &client, ChannelKind::StaticRemoteKey, 3).await;
    let release = chan.sim.release_holder_request(0).unwrap();
    let r = refusal(ask(&client, &chan, &release).await);
    assert_eq!(r.tag, "policy-holder-secret-early", "{r:?}");
    assert_eq!(r.mark("holder_validated"), Some(0));
    assert_eq!(r.mark("holder_revoked_through"), None);

    // The point of commitment 1 is the holder's (public, as LDK asks for
    // it before `commitment_signed`).
    let point = done(
        &client,
        &chan,
        &ChannelRequest::PerCommitmentPoint(
            tidemark_lightning::channel::CommitmentNumber::new(1).unwrap(),
        ),
    )
    .await;
    assert_eq!(
        point,
        Output::PerCommitmentPoint(chan.sim.holder_point(1).unwrap())
    );
    done(
        &client,
        &chan,
        &chan.sim.sign_counterparty_request(1).unwrap(),
    )
    .await;
    done(
        &client,
        &chan,
        &chan.sim.validate_holder_request(1).unwrap(),
    )
    .await;
    let Output::HolderSecret(secret) = done(&client, &chan, &release).await else {
        panic!("not a secret");
    };
    let expected = per_commitment_secret(
        chan.sim.holder_signer(),
        tidemark_lightning::channel::CommitmentNumber::FIRST.ldk_index(),
    )
    .unwrap();
    assert_eq!(*secret.0, expected.secret_bytes());
    // Commitment 0 is revoked now: it can never be signed for broadcast.
    let force =
        ChannelRequest::SignHolderCommitment(tidemark_lightning::channel::CommitmentNumber::FIRST);
    let r = refusal(ask(&client, &chan, &force).await);
    assert_eq!(r.tag, "policy-commitment-holder-not-revoked", "{r:?}");
    assert_eq!(r.mark("holder_revoked_through"), Some(0));
    signer.stop().await;
}

/// Sets one field of a valid counterparty-commitment request.
fn mutated(base: &v1::ChannelRequest, f: impl FnOnce(&mut v1::Commitment)) -> v1::ChannelRequest {
    let mut r = base.clone();
    match r.request.as_mut() {
        Some(v1::channel_request::Request::SignCounterpartyCommitment(c)) => f(c),
        other => panic!("not a counterparty commitment: {other:?}"),
    }
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_requests_are_invalid_and_change_nothing() {
    let signer = support::signer(1).await;
    let client = signer.client("replica-1").unwrap();
    let mut chan = open(&signer, &client, ChannelKind::AnchorsZeroFeeHtlcTx, 1).await;
    chan.sim
        .offer_htlcs(1, 30_000, BEST_BLOCK_HEIGHT + 50, 9)
        .unwrap();
    let valid = channel_request(
        DEV_LIGHTNING_NODE,
        &chan.id,
        &chan.sim.sign_counterparty_request(1).unwrap(),
        Some(BEST_BLOCK_HEIGHT),
    )
    .unwrap();
    let objects = signer.store.objects().unwrap();

    // A setup claiming another channel's keys, on a fresh channel id.
    let stranger = client
        .issue_channel_keys_id(DEV_LIGHTNING_NODE, 99)
        .await
        .unwrap();
    let foreign_setup = channel_request(
        DEV_LIGHTNING_NODE,
        &stranger,
        &chan.sim.setup_request(),
        None,
    )
    .unwrap();
    let objects_after_issue = signer.store.objects().unwrap();
    assert_eq!(
        objects_after_issue.len(),
        objects.len(),
        "an issue moves only the counter"
    );

    let malformed: Vec<(&str, v1::ChannelRequest)> = vec![
        (
            "no request",
            v1::ChannelRequest {
                request: None,
                ..valid.clone()
            },
        ),
        (
            "short keys id",
            v1::ChannelRequest {
                channel_keys_id: vec![7; 31],
                ..valid.clone()
            },
        ),
        (
            "point of 32 bytes",
            mutated(&valid, |c| c.per_commitment_point.truncate(32)),
        ),
        (
            "point off the curve",
            mutated(&valid, |c| {
                c.per_commitment_point = vec![2; 33];
                c.per_commitment_point[1..].copy_from_slice(&[0xff; 32]);
            }),
        ),
        ("number past 2^48", mutated(&valid, |c| c.number = 1 << 48)),
        (
            "short payment hash",
            mutated(&valid, |c| {
                c.htlcs[0].payment_hash.pop();
            }),
        ),
        (
            "too many htlcs",
            mutated(&valid, |c| {
                let h = c.htlcs[0].clone();
                c.htlcs = vec![h; 10_000];
            }),
        ),
        (
            "garbage point",
            mutated(&valid, |c| c.per_commitment_point = support::garbage(3, 33)),
        ),
        ("foreign setup", foreign_setup),
        ("contest delay past u16", {
            let mut r = channel_request(
                DEV_LIGHTNING_NODE,
                &chan.id,
                &chan.sim.setup_request(),
                None,
            )
            .unwrap();
            if let Some(v1::channel_request::Request::Setup(s)) = r.request.as_mut() {
                s.holder_selected_contest_delay = 70_000;
            }
            r
        }),
        (
            "bad revocation secret length",
            v1::ChannelRequest {
                request: Some(
                    v1::channel_request::Request::ValidateCounterpartyRevocation(
                        v1::CounterpartyRevocation {
                            number: 0,
                            per_commitment_secret: vec![1; 31],
                        },
                    ),
                ),
                ..valid.clone()
            },
        ),
        ("bad txid", {
            let mut r = channel_request(
                DEV_LIGHTNING_NODE,
                &chan.id,
                &chan.sim.setup_request(),
                None,
            )
            .unwrap();
            if let Some(v1::channel_request::Request::Setup(s)) = r.request.as_mut() {
                s.funding_outpoint.as_mut().unwrap().txid = "not a txid".into();
            }
            r
        }),
    ];
    for (what, request) in &malformed {
        match client.channel(request.clone()).await {
            Err(ClientError::InvalidArgument(_)) => {}
            other => panic!("{what}: expected InvalidArgument, got {other:?}"),
        }
    }
    // An unknown node is denied before it is looked up (no grant for it).
    match client
        .channel(v1::ChannelRequest {
            node: "other-node".into(),
            ..valid.clone()
        })
        .await
    {
        Err(ClientError::PermissionDenied(_)) => {}
        other => panic!("unknown node: got {other:?}"),
    }
    assert_eq!(signer.store.objects().unwrap(), objects_after_issue);
    audited(
        &signer,
        AuditOutcome::Denied,
        Some("denied-invalid-argument"),
        malformed.len(),
    )
    .await;
    // The channel still works: the valid request is signed once.
    let answer = channel_answer(client.channel(valid).await.unwrap()).unwrap();
    assert!(!answer.replayed);
    signer.stop().await;
}

#[path = "lightning/node.rs"]
mod node;

/// The position of `sim`'s channel after `rounds` full rounds, as the node
/// that ran it before the signer exports it: counterparty commitments
/// `rounds - 1` and `rounds` signed (without their signatures: LDK does
/// not keep them), all below `rounds` revoked; holder commitment `rounds`
/// validated and holder secrets released through `rounds - 1`.
fn position(sim: &SimulatedChannel, rounds: u64) -> ChannelImport {
    let n = |number| CommitmentNumber::new(number).unwrap();
    ChannelImport {
        setup: sim.setup.clone(),
        counterparty_signed: [rounds - 1, rounds]
            .into_iter()
            .map(|number| ImportedCommitment {
                commitment: sim.counterparty_commitment(number).unwrap(),
                signatures: None,
            })
            .collect(),
        counterparty_revoked: rounds,
        counterparty_secrets: RevocationSecrets::compact_numbers(rounds)
            .unwrap()
            .into_iter()
            .map(|number| ImportedSecret {
                number: n(number),
                secret: sim.counterparty_secret(number).unwrap(),
            })
            .collect(),
        holder: sim.holder_commitment(rounds).unwrap(),
        holder_revoked_through: Some(n(rounds - 1)),
    }
}

/// A channel opened under LDK's `KeysManager` and run for a few rounds is
/// imported over the wire (by an identity kept for imports), and the
/// signer continues where the node stopped: it signs the next
/// counterparty commitment and the round after it runs. An import whose
/// parts do not fit is refused with nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_open_channel_imported_over_the_wire_continues_where_the_node_stopped() {
    let signer = support::signer(2).await;
    let replica = signer.client("replica-1").unwrap();
    let importer = signer.client("replica-2").unwrap();
    let node = signer.lightning().unwrap();
    for (user, kind) in ChannelKind::ALL.into_iter().enumerate() {
        let id = replica
            .issue_channel_keys_id(DEV_LIGHTNING_NODE, 100 + user as u128)
            .await
            .unwrap();
        let mut sim = SimulatedChannel::new(node.signer.node(), id, kind);
        sim.offer_htlcs(2, 20_000, BEST_BLOCK_HEIGHT + 100, 1)
            .unwrap();
        let chan = Chan { sim, id };
        let rounds = 4;

        // Inconsistent: holder secrets released through the holder
        // commitment itself. Refused, audited, nothing stored.
        let objects = signer.store.objects().unwrap();
        let mut bad = position(&chan.sim, rounds);
        bad.holder_revoked_through = Some(CommitmentNumber::new(rounds).unwrap());
        let r = refusal(ask(&importer, &chan, &ChannelRequest::Import(Box::new(bad))).await);
        assert_eq!(r.tag, "policy-import-inconsistent", "{r:?}");
        assert_eq!(signer.store.objects().unwrap(), objects, "{kind:?}");
        // The channel is still unknown to every other request.
        let r = refusal(
            ask(
                &replica,
                &chan,
                &chan.sim.sign_counterparty_request(1).unwrap(),
            )
            .await,
        );
        assert_eq!(r.tag, "policy-channel-unknown", "{r:?}");

        // The node's position: stored; the same import again is replayed.
        let import = ChannelRequest::Import(Box::new(position(&chan.sim, rounds)));
        let answer = ask(&importer, &chan, &import).await.unwrap();
        assert!(!answer.replayed);
        assert_eq!(answer.output, Output::Done);
        assert!(ask(&importer, &chan, &import).await.unwrap().replayed);

        // The next counterparty commitment signs through the server and
        // the counterparty's checks pass.
        let data = chan.sim.counterparty_commitment(rounds + 1).unwrap();
        let Output::Commitment {
            signature,
            htlc_signatures,
        } = done(
            &replica,
            &chan,
            &ChannelRequest::SignCounterpartyCommitment(Box::new(data.clone())),
        )
        .await
        else {
            panic!("not a commitment");
        };
        assert_eq!(htlc_signatures.len(), 2, "{kind:?}");
        chan.sim
            .verify_counterparty_signatures(&data, &signature, &htlc_signatures)
            .unwrap();
        // The round completes on the ordinary rules, then another.
        for request in [
            chan.sim.revocation_request(rounds).unwrap(),
            chan.sim.validate_holder_request(rounds + 1).unwrap(),
            chan.sim.release_holder_request(rounds).unwrap(),
        ] {
            done(&replica, &chan, &request).await;
        }
        advance(&replica, &chan, rounds + 2).await;
        // A stale resign below the imported position is refused.
        let stale = chan.sim.sign_counterparty_request(rounds - 1).unwrap();
        assert!(matches!(
            ask(&replica, &chan, &stale).await,
            Err(ClientError::Refused(_))
        ));
    }
    // Imports go through the pipeline's audit: the refusals and the
    // imports, by the importing identity.
    let refused = audited(
        &signer,
        AuditOutcome::Refused,
        Some("policy-import-inconsistent"),
        ChannelKind::ALL.len(),
    )
    .await;
    assert!(refused.iter().all(|r| r.entry.client == "replica-2"));
    signer.stop().await;
}
