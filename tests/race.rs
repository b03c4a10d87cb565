//! Replicas racing over real mutual TLS.
//!
//! Eight replica clients, each on its own connection to an embedded signer,
//! send at every position at once: conflicting payloads from two or three
//! groups (different blocks, nil against a block), identical repeats,
//! timestamp-only variants and stale requests. Every signature a replica
//! receives is verified independently against the validator's public key;
//! the signer must have released exactly one payload per position, and
//! every other request must have been answered with the stored signature
//! or a typed refusal.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::wire;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use tidemark_cli::embedded::{DEMO_CHAIN, Embedded, VALIDATOR_KEY};
use tidemark_client::{Client, ClientError, Refusal, v1};
use tidemark_consensus::cometbft::canonical;
use tidemark_consensus::{CometMessage, Proposal, SignedMsgType, Timestamp, Vote};
use tidemark_core::{AuditOutcome, ChainId, StateStore as _};

const REPLICAS: u32 = 8;
const DOUBLE_SIGN: &str = "hwm-double-sign";
const SIGNED: i32 = v1::Outcome::Signed as i32;
const REPLAYED: i32 = v1::Outcome::Replayed as i32;

/// One connection per replica; a generous deadline so that a slow fsync on
/// a loaded machine is not mistaken for an error.
fn connect_replicas(signer: &Embedded) -> Vec<Client> {
    assert_eq!(signer.replicas.len(), REPLICAS as usize);
    signer
        .replicas
        .iter()
        .map(|r| {
            let options = signer
                .client_options(r)
                .unwrap()
                .with_deadline(Duration::from_secs(60));
            Client::connect_lazy(options).unwrap()
        })
        .collect()
}

fn verifying_key(signer: &Embedded) -> VerifyingKey {
    VerifyingKey::try_from(signer.validator_public_key.as_slice()).expect("ed25519 public key")
}

fn verifies(key: &VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    Signature::from_slice(signature).is_ok_and(|s| key.verify(message, &s).is_ok())
}

fn refusal(e: &ClientError) -> &Refusal {
    match e {
        ClientError::Refused(r) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// CometBFT
// ---------------------------------------------------------------------------

/// What a group of replicas votes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    Block(u8),
    Nil,
}

fn wire_block(seed: u8) -> v1::BlockId {
    v1::BlockId {
        hash: vec![seed; 32],
        part_set_header: Some(v1::PartSetHeader {
            total: 1 + u32::from(seed % 3),
            hash: vec![seed ^ 0x5a; 32],
        }),
    }
}

/// A message as a replica sends it.
#[derive(Debug, Clone)]
enum Msg {
    Vote(v1::Vote),
    Proposal(v1::Proposal),
}

impl Msg {
    fn vote(step: SignedMsgType, height: i64, round: i32, content: Content, ts: Timestamp) -> Msg {
        let r#type = match step {
            SignedMsgType::Prevote => v1::VoteType::Prevote,
            SignedMsgType::Precommit => v1::VoteType::Precommit,
            SignedMsgType::Proposal => unreachable!("a vote is a prevote or precommit"),
        };
        Msg::Vote(v1::Vote {
            r#type: r#type as i32,
            height,
            round,
            block_id: match content {
                Content::Block(seed) => Some(wire_block(seed)),
                Content::Nil => None,
            },
            timestamp: Some(v1::Timestamp {
                seconds: ts.seconds,
                nanos: ts.nanos,
            }),
            extension: Vec::new(),
        })
    }

    fn proposal(height: i64, round: i32, seed: u8, ts: Timestamp) -> Msg {
        Msg::Proposal(v1::Proposal {
            height,
            round,
            pol_round: -1,
            block_id: Some(wire_block(seed)),
            timestamp: Some(v1::Timestamp {
                seconds: ts.seconds,
                nanos: ts.nanos,
            }),
        })
    }

    fn with_extension(mut self, extension: Vec<u8>) -> Msg {
        if let Msg::Vote(v) = &mut self {
            v.extension = extension;
        }
        self
    }

    /// The same message as the signer's domain type (what it builds the
    /// sign bytes from).
    fn domain(&self) -> CometMessage {
        match self {
            Msg::Vote(v) => CometMessage::Vote(wire::vote(v, wire::timestamp(v.timestamp))),
            Msg::Proposal(p) => CometMessage::Proposal(Proposal {
                height: p.height,
                round: p.round,
                pol_round: p.pol_round,
                block_id: wire::block_id(p.block_id.as_ref().expect("test proposals have a block")),
                timestamp: wire::timestamp(p.timestamp),
            }),
        }
    }

    /// (height, round, step) with FilePV's step numbers.
    fn hrs(&self) -> (i64, i32, u8) {
        match self {
            Msg::Vote(v) => (v.height, v.round, if v.r#type == 1 { 2 } else { 3 }),
            Msg::Proposal(p) => (p.height, p.round, 1),
        }
    }

    fn timestamp(&self) -> Timestamp {
        self.domain().timestamp()
    }

    /// The canonical bytes of this message carrying timestamp `ts`.
    fn sign_bytes_at(&self, ts: Timestamp) -> Vec<u8> {
        canonical::sign_bytes(&chain(), &self.domain().with_timestamp(ts))
    }

    /// For a non-nil precommit: the canonical vote-extension bytes.
    fn extension_sign_bytes(&self) -> Option<Vec<u8>> {
        match self.domain() {
            CometMessage::Vote(v) if v.signs_extension() => {
                Some(canonical::vote_extension_sign_bytes(&chain(), &v))
            }
            _ => None,
        }
    }
}

fn chain() -> ChainId {
    ChainId::new(DEMO_CHAIN).unwrap()
}

/// One request of a phase: who sends what, and for a stale request the
/// refusal tag it must get.
#[derive(Debug, Clone)]
struct Sent {
    replica: usize,
    msg: Msg,
    stale: Option<&'static str>,
}

/// What the signer answered (votes and proposals alike).
#[derive(Debug, Clone)]
struct Answer {
    outcome: i32,
    signature: Vec<u8>,
    extension_signature: Vec<u8>,
    timestamp: Option<v1::Timestamp>,
    sign_bytes: Vec<u8>,
}

async fn send(client: Client, msg: Msg) -> Result<Answer, ClientError> {
    match msg {
        Msg::Vote(vote) => client
            .sign_vote(v1::SignVoteRequest {
                chain_id: DEMO_CHAIN.into(),
                key_id: VALIDATOR_KEY.into(),
                vote: Some(vote),
            })
            .await
            .map(|r| Answer {
                outcome: r.outcome,
                signature: r.signature,
                extension_signature: r.extension_signature,
                timestamp: r.timestamp,
                sign_bytes: r.sign_bytes,
            }),
        Msg::Proposal(proposal) => client
            .sign_proposal(v1::SignProposalRequest {
                chain_id: DEMO_CHAIN.into(),
                key_id: VALIDATOR_KEY.into(),
                proposal: Some(proposal),
            })
            .await
            .map(|r| Answer {
                outcome: r.outcome,
                signature: r.signature,
                extension_signature: Vec::new(),
                timestamp: r.timestamp,
                sign_bytes: r.sign_bytes,
            }),
    }
}

/// Sends every request of a phase at once (spawn all, then join).
async fn race(clients: &[Client], phase: Vec<Sent>) -> Vec<(Sent, Result<Answer, ClientError>)> {
    let tasks: Vec<_> = phase
        .into_iter()
        .map(|s| {
            let client = clients[s.replica].clone();
            let msg = s.msg.clone();
            (s, tokio::spawn(send(client, msg)))
        })
        .collect();
    let mut results = Vec::new();
    for (s, task) in tasks {
        results.push((s, task.await.expect("request task")));
    }
    results
}

/// What the whole run saw, for the final assertions.
#[derive(Debug, Default)]
struct Ledger {
    /// Decoded (height, round, step) of every released signature -> the
    /// distinct sign bytes released there.
    released: BTreeMap<(i64, i64, u8), BTreeSet<Vec<u8>>>,
    phases: usize,
    signed: usize,
    replayed: usize,
    timestamp_variants_replayed: usize,
    extensions_checked: usize,
    refused_by_tag: BTreeMap<String, usize>,
}

/// Requests of replica `i` for one position: its group's message, an
/// identical repeat for some, a timestamp-only variant for others.
fn contenders(
    contents: &[Content],
    make: impl Fn(Content, Timestamp) -> Msg,
    base: Timestamp,
) -> Vec<Sent> {
    let mut out = Vec::new();
    for i in 0..REPLICAS as usize {
        let content = contents[i % contents.len()];
        let sent = |msg| Sent {
            replica: i,
            msg,
            stale: None,
        };
        out.push(sent(make(content, base)));
        if i % 4 == 0 {
            out.push(sent(make(content, base)));
        }
        if i >= 4 {
            let later = Timestamp {
                seconds: base.seconds + 1 + i as i64,
                nanos: 1000 * i as i32,
            };
            out.push(sent(make(content, later)));
        }
    }
    out
}

/// Checks one phase: every request is for one HRS except the stale ones.
fn check_phase(
    key: &VerifyingKey,
    results: &[(Sent, Result<Answer, ClientError>)],
    ledger: &mut Ledger,
) {
    ledger.phases += 1;
    let (stale, contending): (Vec<_>, Vec<_>) =
        results.iter().partition(|(s, _)| s.stale.is_some());

    // Stale requests: the exact regression tag, and a current mark that
    // really is above them.
    for (s, result) in &stale {
        let tag = s.stale.unwrap();
        let e = result
            .as_ref()
            .err()
            .unwrap_or_else(|| panic!("stale {:?} was answered: {result:?}", s.msg));
        let r = refusal(e);
        assert_eq!(r.tag, tag, "{:?}: {r:?}", s.msg);
        let (h, round, step) = s.msg.hrs();
        let current = (
            r.mark("height").unwrap() as i64,
            r.mark("round").unwrap() as i32,
            r.mark("step").unwrap() as u8,
        );
        assert!(current > (h, round, step), "{r:?} is not above {:?}", s.msg);
        match tag {
            "hwm-height-regression" => assert!(current.0 > h),
            "hwm-round-regression" => assert!(current.0 == h && current.1 > round),
            "hwm-step-regression" => {
                assert!(current.0 == h && current.1 == round && current.2 > step)
            }
            other => panic!("unexpected stale tag {other}"),
        }
        *ledger.refused_by_tag.entry(r.tag.clone()).or_default() += 1;
    }

    let hrs = contending[0].0.msg.hrs();
    assert!(
        contending.iter().all(|(s, _)| s.msg.hrs() == hrs),
        "one HRS per phase"
    );

    // The released signatures: all valid, all over one payload.
    let answers: Vec<(&Sent, &Answer)> = contending
        .iter()
        .filter_map(|(s, r)| r.as_ref().ok().map(|a| (s, a)))
        .collect();
    assert!(!answers.is_empty(), "nobody got a signature at {hrs:?}");
    for (s, a) in &answers {
        assert!(
            verifies(key, &a.sign_bytes, &a.signature),
            "invalid signature for {:?}",
            s.msg
        );
        let summary = canonical::decode(&a.sign_bytes).expect("sign bytes decode");
        assert_eq!(summary.chain_id, DEMO_CHAIN);
        ledger
            .released
            .entry((summary.height, summary.round, summary.msg_type.code()))
            .or_default()
            .insert(a.sign_bytes.clone());
        assert_eq!((summary.height, summary.round), (hrs.0, i64::from(hrs.1)));
    }
    let payloads: BTreeSet<&Vec<u8>> = answers.iter().map(|(_, a)| &a.sign_bytes).collect();
    assert_eq!(payloads.len(), 1, "two payloads signed at {hrs:?}");
    let winner_bytes = payloads.into_iter().next().unwrap().clone();
    let winner_ts = canonical::decode(&winner_bytes).unwrap().timestamp;

    // Exactly one new signature; every other answer is the stored one.
    let signed: Vec<_> = answers
        .iter()
        .filter(|(_, a)| a.outcome == SIGNED)
        .collect();
    assert_eq!(signed.len(), 1, "one new signature at {hrs:?}");
    assert_eq!(
        signed[0].0.msg.timestamp(),
        winner_ts,
        "the first signed timestamp is stored"
    );
    let signatures: BTreeSet<&Vec<u8>> = answers.iter().map(|(_, a)| &a.signature).collect();
    assert_eq!(
        signatures.len(),
        1,
        "identical repeats get identical signatures"
    );
    for (s, a) in &answers {
        assert!(a.outcome == SIGNED || a.outcome == REPLAYED);
        // The request is the winner's message (possibly with another
        // timestamp), and it got the stored timestamp back.
        assert_eq!(s.msg.sign_bytes_at(winner_ts), winner_bytes, "{:?}", s.msg);
        let t = a.timestamp.expect("a timestamp is returned");
        assert_eq!((t.seconds, t.nanos), (winner_ts.seconds, winner_ts.nanos));
        if a.outcome == REPLAYED {
            ledger.replayed += 1;
            if s.msg.timestamp() != winner_ts {
                ledger.timestamp_variants_replayed += 1;
            }
        } else {
            ledger.signed += 1;
        }
        match s.msg.extension_sign_bytes() {
            Some(bytes) => {
                assert!(
                    verifies(key, &bytes, &a.extension_signature),
                    "invalid extension signature for {:?}",
                    s.msg
                );
                ledger.extensions_checked += 1;
            }
            None => assert!(a.extension_signature.is_empty()),
        }
    }

    // Every loser conflicted with the winner and got a double-sign refusal
    // naming a mark at least as high as its request.
    for (s, result) in &contending {
        let Err(e) = result else { continue };
        let r = refusal(e);
        assert_eq!(r.tag, DOUBLE_SIGN, "{:?}: {r:?}", s.msg);
        assert!(r.mark("height").unwrap() >= hrs.0 as u64, "{r:?}");
        assert_ne!(
            s.msg.sign_bytes_at(winner_ts),
            winner_bytes,
            "a request for the signed payload was refused: {:?}",
            s.msg
        );
        *ledger.refused_by_tag.entry(r.tag.clone()).or_default() += 1;
    }
}

fn ts(height: i64, round: i32, step: u8) -> Timestamp {
    Timestamp {
        seconds: 1_700_000_000 + height * 1000 + i64::from(round) * 100 + i64::from(step) * 10,
        nanos: 0,
    }
}

/// The groups of one position: two or three, nil against a block at some
/// heights, block against block at others.
fn groups(height: i64, round: i32) -> Vec<Content> {
    let a = ((height * 4 + i64::from(round) * 2) % 250) as u8 + 1;
    let b = a + 1;
    match height % 3 {
        0 => vec![Content::Block(a), Content::Block(b)],
        1 => vec![Content::Block(a), Content::Nil, Content::Block(b)],
        _ => vec![Content::Nil, Content::Block(a)],
    }
}

/// The vote phases of one (height, round), with extensions on non-nil
/// precommits at even heights.
fn vote_phase(height: i64, round: i32, step: SignedMsgType) -> Vec<Sent> {
    let step_number = if step == SignedMsgType::Prevote { 2 } else { 3 };
    let extend = step == SignedMsgType::Precommit && height % 2 == 0;
    let make = |content: Content, t: Timestamp| {
        let msg = Msg::vote(step, height, round, content, t);
        match content {
            Content::Block(seed) if extend => msg.with_extension(vec![seed; 16 + height as usize]),
            _ => msg,
        }
    };
    contenders(&groups(height, round), make, ts(height, round, step_number))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_replicas_racing_get_one_signed_payload_per_height_round_step() {
    let signer = support::signer(REPLICAS).await;
    let clients = connect_replicas(&signer);
    let key = verifying_key(&signer);
    let mut ledger = Ledger::default();
    const HEIGHTS: i64 = 36;

    for h in 1..=HEIGHTS {
        if h % 3 == 0 {
            let (a, b) = ((h % 200) as u8 + 20, (h % 200) as u8 + 21);
            let make = |c: Content, t| match c {
                Content::Block(seed) => Msg::proposal(h, 0, seed, t),
                Content::Nil => unreachable!("proposals carry a block"),
            };
            let phase = contenders(&[Content::Block(a), Content::Block(b)], make, ts(h, 0, 1));
            check_phase(&key, &race(&clients, phase).await, &mut ledger);
        }

        // Round 0 prevotes, with a vote from two heights back.
        let mut phase = vote_phase(h, 0, SignedMsgType::Prevote);
        if h > 2 {
            phase.push(Sent {
                replica: 7,
                msg: Msg::vote(
                    SignedMsgType::Precommit,
                    h - 2,
                    0,
                    Content::Nil,
                    ts(h - 2, 0, 3),
                ),
                stale: Some("hwm-height-regression"),
            });
        }
        check_phase(&key, &race(&clients, phase).await, &mut ledger);

        // Round 0 precommits, with a proposal for this round (step 1 < 2).
        let mut phase = vote_phase(h, 0, SignedMsgType::Precommit);
        phase.push(Sent {
            replica: 6,
            msg: Msg::proposal(h, 0, 0xee, ts(h, 0, 1)),
            stale: Some("hwm-step-regression"),
        });
        check_phase(&key, &race(&clients, phase).await, &mut ledger);

        if h % 4 == 1 {
            // No decision in round 0: round 1, with a round-0 prevote
            // arriving late.
            check_phase(
                &key,
                &race(&clients, vote_phase(h, 1, SignedMsgType::Prevote)).await,
                &mut ledger,
            );
            let mut phase = vote_phase(h, 1, SignedMsgType::Precommit);
            phase.push(Sent {
                replica: 5,
                msg: Msg::vote(SignedMsgType::Prevote, h, 0, Content::Nil, ts(h, 0, 2)),
                stale: Some("hwm-round-regression"),
            });
            check_phase(&key, &race(&clients, phase).await, &mut ledger);
        }
    }

    // At most one payload per (height, round, step), over the whole run.
    for (hrs, payloads) in &ledger.released {
        assert_eq!(payloads.len(), 1, "double sign at {hrs:?}");
    }
    assert_eq!(ledger.released.len(), ledger.phases);
    assert_eq!(ledger.signed, ledger.phases);
    // The run exercised every path it claims to.
    assert!(ledger.replayed > ledger.phases, "{ledger:?}");
    assert!(ledger.timestamp_variants_replayed > 0, "{ledger:?}");
    assert!(ledger.extensions_checked > 0, "{ledger:?}");
    for tag in [
        DOUBLE_SIGN,
        "hwm-height-regression",
        "hwm-step-regression",
        "hwm-round-regression",
    ] {
        assert!(
            ledger.refused_by_tag.get(tag).copied().unwrap_or(0) > 0,
            "no {tag}: {ledger:?}"
        );
    }

    // The audit log agrees: one `signed` record per position.
    let records = signer.store.audit_records(1, 100_000).unwrap();
    let signed = records
        .iter()
        .filter(|r| r.entry.outcome == AuditOutcome::Signed)
        .count();
    assert_eq!(signed, ledger.phases);
    signer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_non_nil_precommit_gets_an_extension_signature_over_the_canonical_bytes() {
    let signer = support::signer(2).await;
    let key = verifying_key(&signer);
    let client = signer.client("replica-1").unwrap();
    let t = ts(7, 0, 3);
    let msg = Msg::vote(SignedMsgType::Precommit, 7, 0, Content::Block(9), t)
        .with_extension(b"oracle price 42".to_vec());
    let a = send(client.clone(), msg.clone()).await.unwrap();
    assert_eq!(a.outcome, SIGNED);
    assert!(verifies(&key, &a.sign_bytes, &a.signature));
    assert_eq!(a.sign_bytes, msg.sign_bytes_at(t));

    // The extension bytes, built independently of the signer's request
    // type: CanonicalVoteExtension {extension, height, round, chain_id}.
    let Msg::Vote(wire) = &msg else {
        unreachable!()
    };
    let vote = Vote {
        msg_type: SignedMsgType::Precommit,
        height: wire.height,
        round: wire.round,
        block_id: None,
        timestamp: t,
        extension: wire.extension.clone(),
    };
    let bytes = canonical::vote_extension_sign_bytes(&chain(), &vote);
    assert_eq!(Some(bytes.clone()), msg.extension_sign_bytes());
    assert!(!a.extension_signature.is_empty());
    assert!(
        verifies(&key, &bytes, &a.extension_signature),
        "the extension signature verifies over the canonical extension bytes"
    );
    assert!(!verifies(&key, &a.sign_bytes, &a.extension_signature));

    // A replay with another extension: the stored vote signature, and a
    // fresh extension signature over the new extension.
    let other = msg.clone().with_extension(b"oracle price 43".to_vec());
    let b = send(client.clone(), other.clone()).await.unwrap();
    assert_eq!(b.outcome, REPLAYED);
    assert_eq!(b.signature, a.signature);
    assert!(verifies(
        &key,
        &other.extension_sign_bytes().unwrap(),
        &b.extension_signature
    ));

    // A nil precommit carries no extension signature.
    let nil = Msg::vote(SignedMsgType::Precommit, 8, 0, Content::Nil, ts(8, 0, 3));
    let c = send(client, nil).await.unwrap();
    assert_eq!(c.outcome, SIGNED);
    assert!(c.extension_signature.is_empty());
    signer.stop().await;
}

#[path = "race/tezos_and_height.rs"]
mod tezos_and_height;
