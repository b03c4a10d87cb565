//! Malformed and fuzzed requests over real mutual TLS: each gets a typed
//! error (`INVALID_ARGUMENT`, `PERMISSION_DENIED`, `NOT_FOUND`, or a policy
//! refusal), no state changes, and the signer keeps signing valid requests
//! afterwards. A property test sends random bytes and random field values
//! and checks that the signer never answers `INTERNAL`/`UNKNOWN` and stays
//! up.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use tidemark_cli::embedded::{DEMO_CHAIN, Embedded, VALIDATOR_KEY};
use tidemark_client::{Client, ClientError, v1};
use tidemark_core::{AuditOutcome, ObjectId, StateStore as _, StoredState};

/// Mainnet's chain id bytes and name.
const TEZOS_MAINNET: [u8; 4] = [0x7a, 0x06, 0xa7, 0x70];
const TEZOS_MAINNET_B58: &str = "NetXdQprcVkpaWU";
const TEZOS_GHOSTNET_B58: &str = "NetXnHfVqm9iesp";
const KIB: usize = 1024;

/// Any request of the consensus service.
#[derive(Debug, Clone)]
enum Req {
    Vote(v1::SignVoteRequest),
    Proposal(v1::SignProposalRequest),
    Tezos(v1::SignTezosRequest),
    Height(v1::SignHeightRequest),
}

/// What a request must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Invalid,
    Denied,
    NotFound,
    Refused(&'static str),
    /// Over the server's message size limit: refused by the transport
    /// before it is decoded (`OUT_OF_RANGE`).
    TooLarge,
}

/// gRPC's `OUT_OF_RANGE`.
const OUT_OF_RANGE: i32 = 11;

async fn send(client: &Client, req: Req) -> Result<i32, ClientError> {
    match req {
        Req::Vote(r) => client.sign_vote(r).await.map(|r| r.outcome),
        Req::Proposal(r) => client.sign_proposal(r).await.map(|r| r.outcome),
        Req::Tezos(r) => client.sign_tezos(r).await.map(|r| r.outcome),
        Req::Height(r) => client.sign_height(r).await.map(|r| r.outcome),
    }
}

fn matches_want(e: &ClientError, want: Want) -> bool {
    match (e, want) {
        (ClientError::InvalidArgument(_), Want::Invalid)
        | (ClientError::PermissionDenied(_), Want::Denied)
        | (ClientError::NotFound(_), Want::NotFound) => true,
        (ClientError::Refused(r), Want::Refused(tag)) => r.tag == tag,
        (ClientError::Other { code, .. }, Want::TooLarge) => *code as i32 == OUT_OF_RANGE,
        _ => false,
    }
}

fn objects(signer: &Embedded) -> Vec<(ObjectId, StoredState)> {
    signer.store.objects().unwrap()
}

/// Sends each case, checks its typed error and that the store's objects
/// are exactly `before` afterwards.
async fn expect_all(signer: &Embedded, client: &Client, cases: Vec<(&str, Req, Want)>) {
    let before = objects(signer);
    for (name, req, want) in cases {
        match send(client, req).await {
            Ok(outcome) => panic!("{name}: answered with outcome {outcome}, want {want:?}"),
            Err(e) => assert!(matches_want(&e, want), "{name}: got {e:?}, want {want:?}"),
        }
        assert_eq!(objects(signer), before, "{name}: the store changed");
    }
}

// --- request builders ------------------------------------------------------

fn vote() -> v1::SignVoteRequest {
    support::vote(v1::VoteType::Precommit, 5, 0, Some(3), 1_700_000_500)
}

fn with_vote(f: impl FnOnce(&mut v1::Vote)) -> Req {
    let mut r = vote();
    f(r.vote.as_mut().unwrap());
    Req::Vote(r)
}

fn with_block(f: impl FnOnce(&mut v1::BlockId)) -> Req {
    with_vote(|v| f(v.block_id.as_mut().unwrap()))
}

fn proposal() -> v1::SignProposalRequest {
    let v = vote().vote.unwrap();
    v1::SignProposalRequest {
        chain_id: DEMO_CHAIN.into(),
        key_id: VALIDATOR_KEY.into(),
        proposal: Some(v1::Proposal {
            height: 5,
            round: 1,
            pol_round: -1,
            block_id: v.block_id,
            timestamp: v.timestamp,
        }),
    }
}

fn with_proposal(f: impl FnOnce(&mut v1::Proposal)) -> Req {
    let mut r = proposal();
    f(r.proposal.as_mut().unwrap());
    Req::Proposal(r)
}

fn tezos(chain_id: &str, operation: Vec<u8>) -> Req {
    Req::Tezos(v1::SignTezosRequest {
        chain_id: chain_id.into(),
        key_id: VALIDATOR_KEY.into(),
        operation,
    })
}

/// A Tenderbake attestation on mainnet.
fn attestation(level: i32, round: i32) -> Vec<u8> {
    let mut b = vec![0x13];
    b.extend_from_slice(&TEZOS_MAINNET);
    b.extend_from_slice(&[5; 32]);
    b.push(21);
    b.extend_from_slice(&7u16.to_be_bytes());
    b.extend_from_slice(&level.to_be_bytes());
    b.extend_from_slice(&round.to_be_bytes());
    b.extend_from_slice(&[9; 32]);
    b
}

fn height(chain_id: &str, h: u64, payload: Vec<u8>) -> Req {
    Req::Height(v1::SignHeightRequest {
        chain_id: chain_id.into(),
        key_id: VALIDATOR_KEY.into(),
        height: h,
        round: None,
        payload,
    })
}

/// A signer whose store already holds one signed vote (height 4), so that
/// "unchanged" is checked against real state, not an empty store.
async fn signer_with_state() -> (Embedded, Client) {
    let signer = support::signer(1).await;
    let client = signer.client("replica-1").unwrap();
    let first = support::vote(v1::VoteType::Precommit, 4, 0, Some(3), 1_700_000_400);
    let r = client.sign_vote(first).await.unwrap();
    assert_eq!(r.outcome, v1::Outcome::Signed as i32);
    assert_eq!(objects(&signer).len(), 1);
    (signer, client)
}

/// After the malformed requests: the valid ones still sign.
async fn valid_requests_still_sign(signer: &Embedded, client: &Client) {
    let signed = v1::Outcome::Signed as i32;
    assert_eq!(send(client, Req::Vote(vote())).await.unwrap(), signed);
    assert_eq!(
        send(client, Req::Proposal(proposal())).await.unwrap(),
        signed
    );
    let op = tezos(TEZOS_MAINNET_B58, attestation(10, 0));
    assert_eq!(send(client, op).await.unwrap(), signed);
    let h = height("plain-1", 1, vec![1; 64 * KIB]);
    assert_eq!(send(client, h).await.unwrap(), signed);
    assert_eq!(objects(signer).len(), 3, "cometbft, attestation, height");
}

/// Waits briefly (denials are audited asynchronously) until `n` records
/// are tagged `denied-invalid-argument`.
async fn invalid_argument_audits(signer: &Embedded, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = signer
            .store
            .audit_records(1, 10_000)
            .unwrap()
            .into_iter()
            .filter(|r| {
                r.entry.outcome == AuditOutcome::Denied
                    && r.entry.tag.as_deref() == Some("denied-invalid-argument")
            })
            .count();
        if found >= n {
            assert_eq!(found, n);
            return;
        }
        assert!(Instant::now() < deadline, "{found} of {n} audited");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

// --- tests -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_votes_and_proposals_are_invalid_arguments_and_change_nothing() {
    use Want::*;
    let (signer, client) = signer_with_state().await;
    let long_chain = "c".repeat(51);
    #[rustfmt::skip]
    let cases: Vec<(&str, Req, Want)> = vec![
        ("block hash of 31 bytes",          with_block(|b| b.hash = vec![1; 31]), Invalid),
        ("block hash of 33 bytes",          with_block(|b| b.hash = vec![1; 33]), Invalid),
        ("empty block hash",                with_block(|b| b.hash.clear()), Invalid),
        ("part-set hash of 31 bytes",       with_block(|b| b.part_set_header.as_mut().unwrap().hash = vec![2; 31]), Invalid),
        ("part-set hash of 33 bytes",       with_block(|b| b.part_set_header.as_mut().unwrap().hash = vec![2; 33]), Invalid),
        ("part-set total 0",                with_block(|b| b.part_set_header.as_mut().unwrap().total = 0), Invalid),
        ("no part-set header",              with_block(|b| b.part_set_header = None), Invalid),
        ("zero block id (not nil)",         with_block(|b| *b = v1::BlockId::default()), Invalid),
        ("extension of 1 MiB + 1",          with_vote(|v| v.extension = vec![7; 1024 * KIB + 1]), Invalid),
        ("message over the transport cap",  with_vote(|v| v.extension = vec![7; 2048 * KIB]), TooLarge),
        ("extension on a prevote",          with_vote(|v| { v.r#type = v1::VoteType::Prevote as i32; v.extension = vec![7; 8] }), Invalid),
        ("extension on a nil precommit",    with_vote(|v| { v.block_id = None; v.extension = vec![7; 8] }), Invalid),
        ("vote type unspecified",           with_vote(|v| v.r#type = v1::VoteType::Unspecified as i32), Invalid),
        ("vote type 32 (proposal)",         with_vote(|v| v.r#type = 32), Invalid),
        ("vote type -1",                    with_vote(|v| v.r#type = -1), Invalid),
        ("height 0",                        with_vote(|v| v.height = 0), Invalid),
        ("negative height",                 with_vote(|v| v.height = -5), Invalid),
        ("height i64::MIN",                 with_vote(|v| v.height = i64::MIN), Invalid),
        ("negative round",                  with_vote(|v| v.round = -1), Invalid),
        ("round i32::MIN",                  with_vote(|v| v.round = i32::MIN), Invalid),
        ("nanos of 1e9",                    with_vote(|v| v.timestamp.as_mut().unwrap().nanos = 1_000_000_000), Invalid),
        ("negative nanos",                  with_vote(|v| v.timestamp.as_mut().unwrap().nanos = -1), Invalid),
        ("timestamp after year 9999",       with_vote(|v| v.timestamp.as_mut().unwrap().seconds = 253_402_300_800), Invalid),
        ("timestamp before year 1",         with_vote(|v| v.timestamp.as_mut().unwrap().seconds = i64::MIN), Invalid),
        ("missing vote",                    Req::Vote(v1::SignVoteRequest { vote: None, ..vote() }), Invalid),
        ("chain id of 51 bytes",            Req::Vote(v1::SignVoteRequest { chain_id: long_chain.clone(), ..vote() }), Invalid),
        ("chain id with '/'",               Req::Vote(v1::SignVoteRequest { chain_id: "a/b".into(), ..vote() }), Invalid),
        ("chain id with a space",           Req::Vote(v1::SignVoteRequest { chain_id: "a b".into(), ..vote() }), Invalid),
        ("empty chain id",                  Req::Vote(v1::SignVoteRequest { chain_id: String::new(), ..vote() }), Invalid),
        ("key id with '/'",                 Req::Vote(v1::SignVoteRequest { key_id: "validator/x".into(), ..vote() }), Invalid),
        ("key id of 65 bytes",              Req::Vote(v1::SignVoteRequest { key_id: "k".repeat(65), ..vote() }), Invalid),
        ("empty key id",                    Req::Vote(v1::SignVoteRequest { key_id: String::new(), ..vote() }), Invalid),
        ("missing proposal",                Req::Proposal(v1::SignProposalRequest { proposal: None, ..proposal() }), Invalid),
        ("proposal without block id",       with_proposal(|p| p.block_id = None), Invalid),
        ("proposal with 33-byte hash",      with_proposal(|p| p.block_id.as_mut().unwrap().hash = vec![1; 33]), Invalid),
        ("proposal with pol_round = round", with_proposal(|p| p.pol_round = 1), Invalid),
        ("proposal with pol_round -2",      with_proposal(|p| p.pol_round = -2), Invalid),
        ("proposal at height 0",            with_proposal(|p| p.height = 0), Invalid),
        ("proposal at round -1",            with_proposal(|p| p.round = -1), Invalid),
        ("proposal chain id of 51 bytes",   Req::Proposal(v1::SignProposalRequest { chain_id: long_chain, ..proposal() }), Invalid),
        // A key the replica has no grant for is denied before it is looked up.
        ("key without a grant",             Req::Vote(v1::SignVoteRequest { key_id: "other".into(), ..vote() }), Denied),
    ];
    let invalid = cases.iter().filter(|c| c.2 == Invalid).count();
    expect_all(&signer, &client, cases).await;
    // Every malformed request was audited as such.
    invalid_argument_audits(&signer, invalid).await;
    valid_requests_still_sign(&signer, &client).await;
    signer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_tezos_operations_and_heights_are_typed_errors_and_change_nothing() {
    use Want::*;
    let (signer, client) = signer_with_state().await;
    let mut unknown_tag = attestation(5, 0);
    unknown_tag[37] = 99;
    #[rustfmt::skip]
    let cases: Vec<(&str, Req, Want)> = vec![
        ("empty operation",                 tezos(TEZOS_MAINNET_B58, vec![]), Invalid),
        ("magic byte only",                 tezos(TEZOS_MAINNET_B58, vec![0x13]), Invalid),
        ("garbage after 0x13",              tezos(TEZOS_MAINNET_B58, vec![0x13, 0xde, 0xad, 0xbe, 0xef]), Invalid),
        ("truncated attestation",           tezos(TEZOS_MAINNET_B58, attestation(5, 0)[..60].to_vec()), Invalid),
        ("unknown content tag",             tezos(TEZOS_MAINNET_B58, unknown_tag), Invalid),
        ("negative level",                  tezos(TEZOS_MAINNET_B58, attestation(-1, 0)), Invalid),
        ("negative round",                  tezos(TEZOS_MAINNET_B58, attestation(5, -1)), Invalid),
        ("operation over 64 KiB",           tezos(TEZOS_MAINNET_B58, vec![0x03; 64 * KIB + 1]), Invalid),
        ("chain id differs from the bytes", tezos(TEZOS_GHOSTNET_B58, attestation(5, 0)), Invalid),
        ("chain id not a tezos chain",      tezos(DEMO_CHAIN, attestation(5, 0)), Invalid),
        ("magic byte 0x05",                 tezos(TEZOS_MAINNET_B58, vec![0x05, 1, 2, 3]), Refused("policy-tezos-magic-byte")),
        ("legacy emmy block 0x01",          tezos(TEZOS_MAINNET_B58, vec![0x01, 1, 2, 3]), Refused("policy-tezos-magic-byte")),
        ("legacy emmy endorsement 0x02",    tezos(TEZOS_MAINNET_B58, vec![0x02, 1, 2, 3]), Refused("policy-tezos-magic-byte")),
        ("generic operation 0x03",          tezos(TEZOS_MAINNET_B58, vec![0x03, 1, 2, 3]), Refused("policy-tezos-magic-byte")),
        ("payload over 64 KiB",             height("plain-1", 1, vec![1; 64 * KIB + 1]), Invalid),
        ("payload of 1 MiB",                height("plain-1", 1, vec![1; 1024 * KIB]), Invalid),
        ("payload over the transport cap",  height("plain-1", 1, vec![1; 2048 * KIB]), TooLarge),
        ("height chain id of 51 bytes",     height(&"h".repeat(51), 1, vec![1]), Invalid),
        ("height chain id with '/'",        height("plain/1", 1, vec![1]), Invalid),
        ("tezos key without a grant",       Req::Tezos(v1::SignTezosRequest { key_id: "baker".into(), chain_id: TEZOS_MAINNET_B58.into(), operation: attestation(5, 0) }), Denied),
        ("height key without a grant",      Req::Height(v1::SignHeightRequest { key_id: "other".into(), chain_id: "plain-1".into(), height: 1, round: None, payload: vec![1] }), Denied),
    ];
    let invalid = cases.iter().filter(|c| c.2 == Invalid).count();
    expect_all(&signer, &client, cases).await;
    invalid_argument_audits(&signer, invalid).await;
    valid_requests_still_sign(&signer, &client).await;
    signer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_granted_but_unknown_key_is_not_found_and_changes_nothing() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("signer");
    let signer = Embedded::start_in(&dir, 1).await.unwrap();
    signer.stop().await;

    // Grant replica-1 every key.
    let config = dir.join("tidemark.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let granted: Vec<&str> = text.lines().filter(|l| l.starts_with("keys = [")).collect();
    assert_eq!(granted.len(), 1, "{text}");
    assert!(granted[0].contains(&format!("{VALIDATOR_KEY:?}")), "{text}");
    std::fs::write(&config, text.replace(granted[0], r#"keys = ["*"]"#)).unwrap();

    let signer = Embedded::start_existing(&dir).await.unwrap();
    let client = signer.client("replica-1").unwrap();
    let first = support::vote(v1::VoteType::Precommit, 4, 0, Some(3), 1_700_000_400);
    client.sign_vote(first).await.unwrap();
    let ghost = |r: Req| match r {
        Req::Vote(v) => Req::Vote(v1::SignVoteRequest {
            key_id: "ghost".into(),
            ..v
        }),
        Req::Proposal(p) => Req::Proposal(v1::SignProposalRequest {
            key_id: "ghost".into(),
            ..p
        }),
        Req::Tezos(t) => Req::Tezos(v1::SignTezosRequest {
            key_id: "ghost".into(),
            ..t
        }),
        Req::Height(h) => Req::Height(v1::SignHeightRequest {
            key_id: "ghost".into(),
            ..h
        }),
    };
    let cases = vec![
        (
            "unknown key, vote",
            ghost(Req::Vote(vote())),
            Want::NotFound,
        ),
        (
            "unknown key, proposal",
            ghost(Req::Proposal(proposal())),
            Want::NotFound,
        ),
        (
            "unknown key, tezos",
            ghost(tezos(TEZOS_MAINNET_B58, attestation(5, 0))),
            Want::NotFound,
        ),
        (
            "unknown key, height",
            ghost(height("plain-1", 1, vec![1])),
            Want::NotFound,
        ),
    ];
    expect_all(&signer, &client, cases).await;
    valid_requests_still_sign(&signer, &client).await;
    signer.stop().await;
}

// --- fuzzing ---------------------------------------------------------------

fn fuzzed_tezos() -> impl Strategy<Value = Req> {
    let raw = prop::collection::vec(any::<u8>(), 0..160);
    // Past the magic byte and chain id, so the parser goes deeper.
    let prefixed = (
        prop::sample::select(vec![0x11u8, 0x12, 0x13, 0x01, 0x02, 0x03, 0x05]),
        prop::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|(magic, rest)| {
            let mut b = vec![magic];
            b.extend_from_slice(&TEZOS_MAINNET);
            b.extend(rest);
            b
        });
    let chain = prop_oneof![
        Just(TEZOS_MAINNET_B58.to_owned()),
        Just(TEZOS_GHOSTNET_B58.to_owned()),
        "\\PC{0,60}",
    ];
    (prop_oneof![raw, prefixed], chain).prop_map(|(operation, chain_id)| {
        Req::Tezos(v1::SignTezosRequest {
            chain_id,
            key_id: VALIDATOR_KEY.into(),
            operation,
        })
    })
}

fn fuzzed_vote() -> impl Strategy<Value = Req> {
    let block = prop::option::of((
        prop::collection::vec(any::<u8>(), 0..40),
        prop::option::of((any::<u32>(), prop::collection::vec(any::<u8>(), 0..40))),
    ));
    let chain = prop_oneof![Just(DEMO_CHAIN.to_owned()), "\\PC{0,60}"];
    (
        (-2i32..40, any::<i64>(), any::<i32>(), block),
        (
            prop::option::of((any::<i64>(), any::<i32>())),
            prop::collection::vec(any::<u8>(), 0..64),
            chain,
            any::<bool>(),
        ),
    )
        .prop_map(
            |((r#type, height, round, block), (timestamp, extension, chain_id, has_vote))| {
                let vote = v1::Vote {
                    r#type,
                    height,
                    round,
                    block_id: block.map(|(hash, psh)| v1::BlockId {
                        hash,
                        part_set_header: psh.map(|(total, hash)| v1::PartSetHeader { total, hash }),
                    }),
                    timestamp: timestamp.map(|(seconds, nanos)| v1::Timestamp { seconds, nanos }),
                    extension,
                };
                Req::Vote(v1::SignVoteRequest {
                    chain_id,
                    key_id: VALIDATOR_KEY.into(),
                    vote: has_vote.then_some(vote),
                })
            },
        )
}

fn fuzzed_height() -> impl Strategy<Value = Req> {
    (
        any::<u64>(),
        prop::option::of(any::<u32>()),
        prop::collection::vec(any::<u8>(), 0..100),
        prop_oneof![Just("plain-fuzz".to_owned()), "\\PC{0,60}"],
    )
        .prop_map(|(height, round, payload, chain_id)| {
            Req::Height(v1::SignHeightRequest {
                chain_id,
                key_id: VALIDATOR_KEY.into(),
                height,
                round,
                payload,
            })
        })
}

#[test]
fn fuzzed_requests_never_get_internal_errors_and_the_signer_stays_up() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let signer = runtime.block_on(support::signer(1));
    let (client, admin) = runtime.block_on(async {
        (
            signer.client("replica-1").unwrap(),
            signer.client("admin").unwrap(),
        )
    });

    let mut runner = TestRunner::new(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = prop::collection::vec(
        prop_oneof![fuzzed_tezos(), fuzzed_vote(), fuzzed_height()],
        1..8,
    );
    let answered = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&strategy, |requests| {
            for req in requests {
                let result = runtime.block_on(send(&client, req.clone()));
                // Only typed answers: a signature, a refusal, or a typed
                // error; never INTERNAL or UNKNOWN, never "unavailable"
                // (the store and the process are fine).
                let typed = matches!(
                    result,
                    Ok(_)
                        | Err(ClientError::Refused(_))
                        | Err(ClientError::InvalidArgument(_))
                        | Err(ClientError::PermissionDenied(_))
                        | Err(ClientError::NotFound(_))
                );
                prop_assert!(typed, "{req:?} -> {result:?}");
                answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        })
        .unwrap();
    assert!(answered.into_inner() >= 64);

    runtime.block_on(async {
        // Still up and healthy.
        let status = admin.status().await.expect("the signer answers");
        assert!(status.store_healthy, "{status:?}");
        let after = height("after-fuzz", 1, b"still signing".to_vec());
        assert_eq!(
            send(&client, after).await.unwrap(),
            v1::Outcome::Signed as i32
        );
        assert!(signer.server.shared().ready().is_ok());
    });
    runtime.block_on(signer.stop());
}
