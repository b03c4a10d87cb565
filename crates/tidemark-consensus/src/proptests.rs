//! Property tests across the crate.
//!
//! - Replicas: several replicas send random interleavings of identical,
//!   conflicting, stale and timestamp-only-different requests to one
//!   signer (a tiny in-test pipeline around `decide` that "signs" with
//!   `sha256(key || message)`). Nothing ever releases two signatures over
//!   different messages at the same position, and every signature released
//!   at a position is the signature of the one message signed there (so an
//!   identical repeat gets byte-identical bytes).
//! - Fuzz: arbitrary bytes and fields to every decoder never panic.

use std::collections::HashMap;

use proptest::prelude::*;
use sha2::{Digest as _, Sha256};
use tidemark_core::{ChainId, Decision, KeyId, Policy, PublicKey, Scheme, SignInput};

use crate::cometbft::{self, canonical};
use crate::tezos::operation;
use crate::{
    BlockId, CometMessage, CometPolicy, CometRequest, HeightPolicy, HeightRequest, PartSetHeader,
    Proposal, SignedMsgType, TezosPolicy, TezosRequest, Timestamp, Vote,
};

fn fake_sign(input: &SignInput) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(input.key.as_str().as_bytes());
    h.update(input.message.bytes());
    h.finalize().to_vec()
}

/// One signer: the stored state and signatures of one object, and the
/// pipeline steps (sign, commit, release / replay / refuse).
struct Signer<P: Policy> {
    policy: P,
    key: PublicKey,
    state: Option<P::State>,
    signatures: Vec<Vec<u8>>,
}

impl<P: Policy> Signer<P> {
    fn new(policy: P, scheme: Scheme) -> Self {
        Signer {
            policy,
            key: PublicKey {
                scheme,
                bytes: vec![3; 32],
            },
            state: None,
            signatures: Vec::new(),
        }
    }

    /// The released signatures and the message the first one covers.
    fn handle(&mut self, request: &P::Request) -> Option<Vec<Vec<u8>>> {
        let object = self.policy.object(request).unwrap();
        match self
            .policy
            .decide(&object, &self.key, self.state.as_ref(), request)
        {
            Decision::Sign { new_state, inputs } => {
                let sigs: Vec<Vec<u8>> = inputs.iter().map(fake_sign).collect();
                self.state = Some(new_state);
                self.signatures = sigs.clone();
                Some(sigs)
            }
            Decision::Replay { also_sign } => {
                let mut sigs = self.signatures.clone();
                sigs.extend(also_sign.iter().map(fake_sign));
                Some(sigs)
            }
            Decision::Refuse(_) => None,
        }
    }
}

/// Checks the safety properties over one run. `position` names the mark a
/// request is at, `message` the bytes its first signature must cover.
fn run_replicas<P: Policy>(
    signer: &mut Signer<P>,
    requests: &[P::Request],
    position: impl Fn(&P::Request) -> String,
    message: impl Fn(&P::Request) -> SignInput,
) -> Result<(), TestCaseError>
where
    P::Request: PartialEq + std::fmt::Debug,
{
    // position -> the one message signed there
    let mut signed_at: HashMap<String, SignInput> = HashMap::new();
    // request index -> first answer, for identical repeats
    let mut answers: Vec<(usize, Vec<u8>)> = Vec::new();
    for (i, request) in requests.iter().enumerate() {
        let Some(sigs) = signer.handle(request) else {
            continue;
        };
        let pos = position(request);
        let wanted = message(request);
        let first = signed_at
            .entry(pos.clone())
            .or_insert_with(|| wanted.clone());
        // The first signature released is the signature of the one message
        // ever signed at this position (a replay returns it even for a
        // request that differs only in its timestamp).
        prop_assert_eq!(
            &sigs[0],
            &fake_sign(first),
            "conflicting signature at {}",
            pos
        );
        for (j, earlier) in &answers {
            if &requests[*j] == request {
                prop_assert_eq!(earlier, &sigs[0], "repeat {:?} got other bytes", request);
            }
        }
        answers.push((i, sigs[0].clone()));
    }
    Ok(())
}

// ---------------------------------------------------------------- CometBFT

fn block(seed: u8) -> BlockId {
    BlockId {
        hash: vec![seed; 32],
        part_set_header: PartSetHeader {
            total: 1,
            hash: vec![seed; 32],
        },
    }
}

/// A small request space so that collisions (identical, conflicting,
/// timestamp-only, stale) are frequent.
fn arb_comet_message() -> impl Strategy<Value = CometMessage> {
    (1i64..4, 0i32..3, 0u8..3, 0u8..3, 0i64..2, 0u8..2).prop_map(
        |(height, round, kind, blk, secs, ext)| {
            let timestamp = Timestamp {
                seconds: 1_000 + secs,
                nanos: 0,
            };
            let block_id = (blk > 0).then(|| block(blk));
            match kind {
                0 => CometMessage::Proposal(Proposal {
                    height,
                    round,
                    pol_round: -1,
                    block_id: block(blk.max(1)),
                    timestamp,
                }),
                k => {
                    let msg_type = if k == 1 {
                        SignedMsgType::Prevote
                    } else {
                        SignedMsgType::Precommit
                    };
                    let extension = if msg_type == SignedMsgType::Precommit && block_id.is_some() {
                        vec![ext]
                    } else {
                        Vec::new()
                    };
                    CometMessage::Vote(Vote {
                        msg_type,
                        height,
                        round,
                        block_id,
                        timestamp,
                        extension,
                    })
                }
            }
        },
    )
}

/// Several replicas, each with its own ordered script, merged by a random
/// interleaving.
fn interleave<T: Clone>(scripts: &[Vec<T>], order: &[usize]) -> Vec<T> {
    let mut cursors = vec![0usize; scripts.len()];
    let mut out = Vec::new();
    for &pick in order {
        let r = pick % scripts.len();
        if let Some(item) = scripts[r].get(cursors[r]) {
            out.push(item.clone());
            cursors[r] += 1;
        }
    }
    out
}

fn comet_request(m: CometMessage) -> CometRequest {
    CometRequest::new(
        ChainId::new("chain").unwrap(),
        KeyId::new("val").unwrap(),
        m,
    )
    .unwrap()
}

proptest! {
    #[test]
    fn cometbft_replicas_never_double_sign(
        scripts in proptest::collection::vec(proptest::collection::vec(arb_comet_message(), 1..12), 2..4),
        order in proptest::collection::vec(any::<usize>(), 10..60),
        secp in any::<bool>(),
    ) {
        let scripts: Vec<Vec<CometRequest>> = scripts
            .into_iter()
            .map(|mut s| {
                s.sort_by_key(|m| comet_request(m.clone()).hrs());
                s.into_iter().map(comet_request).collect()
            })
            .collect();
        let requests = interleave(&scripts, &order);
        let scheme = if secp { Scheme::Secp256k1 } else { Scheme::Ed25519 };
        let mut signer = Signer::new(CometPolicy, scheme);
        let key = signer.key.clone();
        run_replicas(
            &mut signer,
            &requests,
            |r| format!("{:?}", r.hrs()),
            |r| crate::scheme::sha256_form(r.key(), key.scheme, &r.sign_bytes()),
        )?;
        // Extensions: the last signature of a non-nil precommit answer is
        // over this request's own extension.
        let mut signer = Signer::new(CometPolicy, scheme);
        for r in &requests {
            if let (Some(sigs), Some(ext)) = (signer.handle(r), r.extension_sign_bytes()) {
                let want = fake_sign(&crate::scheme::sha256_form(r.key(), scheme, &ext));
                prop_assert_eq!(sigs.last().unwrap(), &want);
            }
        }
    }

    #[test]
    fn tezos_replicas_never_double_sign(
        scripts in proptest::collection::vec(
            proptest::collection::vec((0u8..3, 1i32..4, 0i32..3, 0u8..3), 1..12), 2..4),
        order in proptest::collection::vec(any::<usize>(), 10..60),
    ) {
        let requests: Vec<TezosRequest> = interleave(&scripts, &order)
            .into_iter()
            .map(|(kind, level, round, payload)| {
                TezosRequest::new(
                    ChainId::new("NetXdQprcVkpaWU").unwrap(),
                    KeyId::new("baker").unwrap(),
                    tezos_bytes(kind, level, round, payload),
                )
                .unwrap()
            })
            .collect();
        // One signer per object (kind), as the store keys them.
        for kind in ["block", "preattestation", "attestation"] {
            let of_kind: Vec<TezosRequest> =
                requests.iter().filter(|r| r.kind() == kind).cloned().collect();
            let mut signer = Signer::new(TezosPolicy::default(), Scheme::Ed25519);
            run_replicas(
                &mut signer,
                &of_kind,
                |r| format!("{:?}", r.operation()),
                |r| crate::scheme::digest_form(r.key(), Scheme::Ed25519, r.digest()),
            )?;
        }
    }

    #[test]
    fn height_replicas_never_double_sign(
        scripts in proptest::collection::vec(
            proptest::collection::vec((1u64..4, proptest::option::of(0u32..3), 0u8..3), 1..12), 2..4),
        order in proptest::collection::vec(any::<usize>(), 10..60),
    ) {
        let requests: Vec<HeightRequest> = interleave(&scripts, &order)
            .into_iter()
            .map(|(h, r, p)| {
                HeightRequest::new(ChainId::new("c").unwrap(), KeyId::new("k").unwrap(), h, r, vec![p])
                    .unwrap()
            })
            .collect();
        let mut signer = Signer::new(HeightPolicy, Scheme::Secp256k1);
        run_replicas(
            &mut signer,
            &requests,
            |r| format!("{}/{}", r.height(), r.round().unwrap_or(0)),
            |r| crate::scheme::sha256_form(r.key(), Scheme::Secp256k1, r.payload()),
        )?;
    }
}

/// Tezos request bytes: kind 0 block, 1 preattestation, 2 attestation.
fn tezos_bytes(kind: u8, level: i32, round: i32, payload: u8) -> Vec<u8> {
    let chain = [0x7a, 0x06, 0xa7, 0x70];
    match kind {
        0 => {
            let mut b = vec![0x11];
            b.extend_from_slice(&chain);
            b.extend_from_slice(&level.to_be_bytes());
            b.extend_from_slice(&[0; 1 + 32 + 8 + 1 + 32]);
            b.extend_from_slice(&8u32.to_be_bytes());
            b.extend_from_slice(&4u32.to_be_bytes());
            b.extend_from_slice(&round.to_be_bytes());
            b.extend_from_slice(&[0; 32]);
            b.extend_from_slice(&[payload; 32]);
            b
        }
        k => {
            let mut b = vec![if k == 1 { 0x12 } else { 0x13 }];
            b.extend_from_slice(&chain);
            b.extend_from_slice(&[1; 32]);
            b.push(if k == 1 { 20 } else { 21 });
            b.extend_from_slice(&0u16.to_be_bytes());
            b.extend_from_slice(&level.to_be_bytes());
            b.extend_from_slice(&round.to_be_bytes());
            b.extend_from_slice(&[payload; 32]);
            b
        }
    }
}

// -------------------------------------------------------------------- fuzz

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn tezos_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = operation::parse(&bytes);
        let _ = TezosRequest::new(ChainId::new("NetXdQprcVkpaWU").unwrap(), KeyId::new("k").unwrap(), bytes);
    }

    #[test]
    fn tezos_parser_survives_mutated_valid_operations(
        kind in 0u8..3,
        flips in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<proptest::sample::Index>(),
    ) {
        let mut bytes = tezos_bytes(kind, 5, 1, 7);
        for (at, v) in flips {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        let _ = operation::parse(&bytes);
    }

    #[test]
    fn canonical_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = canonical::decode(&bytes);
    }

    #[test]
    fn state_file_importers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = cometbft::parse_priv_validator_state(&bytes, &ChainId::new("c").unwrap());
        let _ = cometbft::parse_tmkms_state(&bytes);
    }

    #[test]
    fn state_file_importers_never_panic_on_json_like_input(
        s in r#"\{("(height|round|step|signature|signbytes|block_id)":("[0-9A-Fa-f=+/-]{0,12}"|-?[0-9]{1,22}|null|\[\]|\{\}),?){0,6}\}"#,
    ) {
        let _ = cometbft::parse_priv_validator_state(s.as_bytes(), &ChainId::new("c").unwrap());
        let _ = cometbft::parse_tmkms_state(s.as_bytes());
    }

    #[test]
    fn stored_states_from_arbitrary_json_never_panic(s in ".{0,80}") {
        let _ = serde_json::from_str::<crate::CometState>(&s).map(|st| st.timestamp());
        let _ = serde_json::from_str::<crate::TezosState>(&s);
        let _ = serde_json::from_str::<crate::HeightState>(&s);
    }

    #[test]
    fn comet_validation_never_panics_and_valid_messages_decode_back(
        height in any::<i64>(),
        round in any::<i32>(),
        pol_round in any::<i32>(),
        kind in 0u8..3,
        hash_len in prop_oneof![Just(0usize), Just(32), 0usize..40],
        total in any::<u32>(),
        seconds in any::<i64>(),
        nanos in any::<i32>(),
        extension in proptest::collection::vec(any::<u8>(), 0..4),
    ) {
        let block_id = BlockId {
            hash: vec![1; hash_len],
            part_set_header: PartSetHeader { total, hash: vec![2; hash_len] },
        };
        let timestamp = Timestamp { seconds, nanos };
        let m = match kind {
            0 => CometMessage::Proposal(Proposal { height, round, pol_round, block_id, timestamp }),
            k => CometMessage::Vote(Vote {
                msg_type: if k == 1 { SignedMsgType::Prevote } else { SignedMsgType::Precommit },
                height, round, block_id: (hash_len > 0).then_some(block_id), timestamp, extension,
            }),
        };
        if let Ok(r) = CometRequest::new(ChainId::new("c").unwrap(), KeyId::new("k").unwrap(), m) {
            let s = canonical::decode(&r.sign_bytes()).unwrap();
            prop_assert_eq!(s.timestamp, r.message().timestamp());
            prop_assert_eq!((s.height, s.round), (r.message().height(), i64::from(r.message().round())));
        }
    }
}
