//! Table tests of the Tezos parser and watermark rules: one line per case.

use blake2::Blake2b;
use blake2::digest::{Digest as _, consts::U32};
use tidemark_core::{ChainId, Decision, KeyId, Policy, PublicKey, Scheme, SignMessage};

use super::operation::{TezosKind::*, TezosOperation, parse};
use super::*;
use crate::error::ConsensusError;

/// Mainnet, `NetXdQprcVkpaWU`.
const MAINNET: [u8; 4] = [0x7a, 0x06, 0xa7, 0x70];
const MAINNET_B58: &str = "NetXdQprcVkpaWU";

/// A Tenderbake block header request; `payload` varies the bytes.
fn block(level: i32, round: i32, payload: u8) -> Vec<u8> {
    let mut b = vec![0x11];
    b.extend_from_slice(&MAINNET);
    b.extend_from_slice(&level.to_be_bytes());
    b.push(9); // proto
    b.extend_from_slice(&[1; 32]); // predecessor
    b.extend_from_slice(&1_700_000_000i64.to_be_bytes());
    b.push(4); // validation passes
    b.extend_from_slice(&[2; 32]); // operations hash
    let elems: [&[u8]; 5] = [
        &[2],
        &level.to_be_bytes(),
        &[],
        &(-1i32).to_be_bytes(),
        &round.to_be_bytes(),
    ];
    let fitness: Vec<u8> = elems
        .iter()
        .flat_map(|e| {
            (e.len() as u32)
                .to_be_bytes()
                .into_iter()
                .chain(e.iter().copied())
        })
        .collect();
    b.extend_from_slice(&(fitness.len() as u32).to_be_bytes());
    b.extend_from_slice(&fitness);
    b.extend_from_slice(&[3; 32]); // context
    b.extend_from_slice(&[payload; 32]); // payload hash
    b.extend_from_slice(&0i32.to_be_bytes()); // payload round
    b.extend_from_slice(&[0; 8]); // proof of work nonce
    b.push(0); // no seed nonce hash
    b.push(2); // per-block votes
    b
}

/// A (pre)attestation request with content tag `tag`.
fn consensus(magic: u8, tag: u8, level: i32, round: i32, payload: u8) -> Vec<u8> {
    let mut b = vec![magic];
    b.extend_from_slice(&MAINNET);
    b.extend_from_slice(&[5; 32]); // branch
    b.push(tag);
    if matches!(tag, 20 | 21 | 23) {
        b.extend_from_slice(&7u16.to_be_bytes()); // slot
    }
    b.extend_from_slice(&level.to_be_bytes());
    b.extend_from_slice(&round.to_be_bytes());
    b.extend_from_slice(&[payload; 32]);
    if tag == 23 {
        b.push(0x05); // DAL attestation bitset (Z)
    }
    b
}

fn att(level: i32, round: i32, payload: u8) -> Vec<u8> {
    consensus(0x13, 21, level, round, payload)
}

fn pre(level: i32, round: i32, payload: u8) -> Vec<u8> {
    consensus(0x12, 20, level, round, payload)
}

fn cons(kind: TezosKind, level: u32, round: u32) -> Result<TezosOperation, ConsensusError> {
    Ok(TezosOperation::Consensus {
        kind,
        chain_id: MAINNET,
        level,
        round,
    })
}

fn truncated(b: Vec<u8>, keep: usize) -> Vec<u8> {
    b[..keep].to_vec()
}

/// A block whose fitness length field is replaced by `len`.
fn block_with_fitness_len(len: u32) -> Vec<u8> {
    let mut b = block(1, 0, 0);
    b[83..87].copy_from_slice(&len.to_be_bytes());
    b
}

/// A block whose fitness is exactly `fitness` (length-prefixed for you).
fn block_with_fitness(fitness: &[u8]) -> Vec<u8> {
    let mut b = block(1, 0, 0)[..83].to_vec();
    b.extend_from_slice(&(fitness.len() as u32).to_be_bytes());
    b.extend_from_slice(fitness);
    b.extend_from_slice(&[0; 40]);
    b
}

#[test]
fn parser_layouts() {
    use ConsensusError as E;
    let fitness_err = |m| Err(E::TezosFitness(m));
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<u8>, Result<TezosOperation, ConsensusError>)> = vec![
        ("block",                          block(100, 2, 0),                       cons(Block, 100, 2)),
        ("preattestation, tag 20",         pre(100, 1, 0),                         cons(Preattestation, 100, 1)),
        ("attestation, tag 21",            att(100, 3, 0),                         cons(Attestation, 100, 3)),
        ("attestation with dal, tag 23",   consensus(0x13, 23, 101, 0, 0),         cons(Attestation, 101, 0)),
        ("bls preattestation, tag 40",     consensus(0x12, 40, 102, 4, 0),         cons(Preattestation, 102, 4)),
        ("bls attestation, tag 41",        consensus(0x13, 41, 103, 5, 0),         cons(Attestation, 103, 5)),
        ("generic operation 0x03",         vec![0x03, 1, 2, 3],                    Ok(TezosOperation::Other { magic: 0x03 })),
        ("legacy emmy block 0x01",         vec![0x01],                             Ok(TezosOperation::Other { magic: 0x01 })),
        ("empty",                          vec![],                                 Err(E::Truncated { what: "tezos operation", needed: 1, len: 0 })),
        ("magic only",                     vec![0x11],                             Err(E::Truncated { what: "tezos chain id", needed: 5, len: 1 })),
        ("block cut before level",         truncated(block(1, 0, 0), 7),           Err(E::Truncated { what: "tezos block level", needed: 9, len: 7 })),
        ("block cut before fitness",       truncated(block(1, 0, 0), 85),          Err(E::Truncated { what: "tezos block fitness", needed: 87, len: 85 })),
        ("block cut inside fitness",       truncated(block(1, 0, 0), 100),         Err(E::Truncated { what: "tezos block header", needed: 87 + 33 + 32, len: 100 })),
        ("block without context",          truncated(block(1, 0, 0), 87 + 33),     Err(E::Truncated { what: "tezos block header", needed: 87 + 33 + 32, len: 120 })),
        ("fitness length u32::MAX",        block_with_fitness_len(u32::MAX),       Err(E::Truncated { what: "tezos block header", needed: 87 + u32::MAX as usize + 32, len: block(1, 0, 0).len() })),
        ("empty fitness",                  block_with_fitness(&[]),                fitness_err("fitness is empty")),
        ("fitness element overruns",       block_with_fitness(&[0, 0, 0, 9, 1]),   fitness_err("element runs past the fitness")),
        ("fitness length cut short",       block_with_fitness(&[0, 0]),            fitness_err("element length runs past the fitness")),
        ("round element of 2 bytes",       block_with_fitness(&[0, 0, 0, 2, 0, 1]), fitness_err("last element (the round) is not 4 bytes")),
        ("attestation cut before tag",     truncated(att(1, 0, 0), 37),            Err(E::Truncated { what: "tezos consensus operation", needed: 38, len: 37 })),
        ("attestation cut in payload",     truncated(att(1, 0, 0), 60),            Err(E::Truncated { what: "tezos consensus operation", needed: 80, len: 60 })),
        ("dal attestation without dal",    truncated(consensus(0x13, 23, 1, 0, 0), 80), Err(E::Truncated { what: "tezos consensus operation", needed: 81, len: 80 })),
        ("bls attestation cut",            truncated(consensus(0x13, 41, 1, 0, 0), 77), Err(E::Truncated { what: "tezos consensus operation", needed: 78, len: 77 })),
        ("attestation tag under 0x12",     consensus(0x12, 21, 1, 0, 0),           Err(E::TezosContentTag { magic: 0x12, tag: 21 })),
        ("preattestation tag under 0x13",  consensus(0x13, 20, 1, 0, 0),           Err(E::TezosContentTag { magic: 0x13, tag: 20 })),
        ("unknown content tag",            consensus(0x13, 99, 1, 0, 0),           Err(E::TezosContentTag { magic: 0x13, tag: 99 })),
        ("negative level",                 att(-1, 0, 0),                          Err(E::TezosWatermark { what: "level", value: -1 })),
        ("negative round",                 block(1, -2, 0),                        Err(E::TezosWatermark { what: "round", value: -2 })),
        ("oversized",                      vec![0x03; operation::MAX_OPERATION_LEN + 1], Err(E::TooLarge { what: "tezos operation", len: operation::MAX_OPERATION_LEN + 1, max: operation::MAX_OPERATION_LEN })),
    ];
    for (name, bytes, want) in cases {
        assert_eq!(parse(&bytes), want, "{name}");
    }
}

fn chain() -> ChainId {
    ChainId::new(MAINNET_B58).unwrap()
}

fn key() -> KeyId {
    KeyId::new("baker").unwrap()
}

fn pk(scheme: Scheme) -> PublicKey {
    PublicKey {
        scheme,
        bytes: vec![1; 32],
    }
}

fn req(bytes: Vec<u8>) -> TezosRequest {
    TezosRequest::new(chain(), key(), bytes).unwrap()
}

fn decide(
    policy: &TezosPolicy,
    current: Option<&TezosState>,
    bytes: Vec<u8>,
) -> Decision<TezosState> {
    let r = req(bytes);
    let object = policy.object(&r).unwrap();
    policy.decide(&object, &pk(Scheme::Ed25519), current, &r)
}

/// The state after signing `bytes` from scratch.
fn signed(bytes: Vec<u8>) -> TezosState {
    match decide(&TezosPolicy::default(), None, bytes) {
        Decision::Sign { new_state, .. } => new_state,
        other => panic!("expected sign, got {other:?}"),
    }
}

fn outcome(policy: &TezosPolicy, current: Option<Vec<u8>>, bytes: Vec<u8>) -> String {
    let current = current.map(signed);
    match decide(policy, current.as_ref(), bytes) {
        Decision::Sign { .. } => "sign".into(),
        Decision::Replay { .. } => "replay".into(),
        Decision::Refuse(r) => r.tag.to_string(),
    }
}

#[test]
fn watermark_rules() {
    type Case = (&'static str, Option<Vec<u8>>, Vec<u8>, &'static str);
    let p = TezosPolicy::default();
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("first block",                      None,                   block(10, 0, 1),    "sign"),
        ("higher level",                     Some(block(10, 3, 1)),  block(11, 0, 2),    "sign"),
        ("same level, higher round",         Some(att(10, 0, 1)),    att(10, 1, 2),      "sign"),
        ("lower level",                      Some(att(10, 0, 1)),    att(9, 5, 1),       "hwm-level-regression"),
        ("same level, lower round",          Some(pre(10, 2, 1)),    pre(10, 1, 1),      "hwm-round-regression"),
        ("identical block",                  Some(block(10, 1, 1)),  block(10, 1, 1),    "replay"),
        ("identical attestation",            Some(att(10, 1, 1)),    att(10, 1, 1),      "replay"),
        ("block, different payload",         Some(block(10, 1, 1)),  block(10, 1, 2),    "hwm-double-sign"),
        ("attestation, different payload",   Some(att(10, 1, 1)),    att(10, 1, 2),      "hwm-double-sign"),
        ("preattestation, different bytes",  Some(pre(10, 1, 1)),    pre(10, 1, 9),      "hwm-double-sign"),
        ("dal vs plain attestation",         Some(att(10, 1, 1)),    consensus(0x13, 23, 10, 1, 1), "hwm-double-sign"),
        ("generic op, not allowed",          None,                   vec![0x03, 1],      "policy-tezos-magic-byte"),
        ("unknown magic, not allowed",       None,                   vec![0x42],         "policy-tezos-magic-byte"),
    ];
    for (name, current, bytes, want) in cases {
        assert_eq!(outcome(&p, current, bytes), want, "{name}");
    }
}

#[test]
fn allowed_magic_bytes_sign_without_watermark_but_never_legacy_consensus() {
    let p = TezosPolicy {
        allowed_magic: vec![0x03, 0x01, 0x02],
    };
    let generic = vec![0x03, 9, 9];
    let Decision::Sign { new_state, .. } = decide(&p, None, generic.clone()) else {
        panic!("expected sign");
    };
    assert_eq!(new_state.watermark, None);
    assert!(new_state.mark().is_none());
    #[rustfmt::skip]
    let cases: Vec<(&str, Option<&TezosState>, Vec<u8>, &str)> = vec![
        ("identical generic op replays", Some(&new_state), generic.clone(),   "replay"),
        ("another generic op signs",     Some(&new_state), vec![0x03, 1],     "sign"),
        ("emmy block refused",           None,             vec![0x01, 0, 0],  "policy-tezos-magic-byte"),
        ("emmy endorsement refused",     None,             vec![0x02, 0, 0],  "policy-tezos-magic-byte"),
    ];
    for (name, current, bytes, want) in cases {
        let got = match decide(&p, current, bytes) {
            Decision::Sign { .. } => "sign".to_owned(),
            Decision::Replay { .. } => "replay".to_owned(),
            Decision::Refuse(r) => r.tag.to_string(),
        };
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn objects_are_per_kind_and_refusals_carry_the_mark() {
    let p = TezosPolicy::default();
    #[rustfmt::skip]
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (block(1, 0, 0),                     "consensus/NetXdQprcVkpaWU/baker/block"),
        (pre(1, 0, 0),                       "consensus/NetXdQprcVkpaWU/baker/preattestation"),
        (att(1, 0, 0),                       "consensus/NetXdQprcVkpaWU/baker/attestation"),
        (consensus(0x13, 41, 1, 0, 0),       "consensus/NetXdQprcVkpaWU/baker/attestation"),
        (vec![0x03],                         "consensus/NetXdQprcVkpaWU/baker/magic-03"),
    ];
    for (bytes, want) in cases {
        assert_eq!(p.object(&req(bytes)).unwrap().to_string(), want);
    }
    let Decision::Refuse(r) = decide(&p, Some(&signed(att(10, 2, 0))), att(9, 0, 0)) else {
        panic!("expected refusal");
    };
    assert_eq!(r.current.to_string(), "level=10 round=2");
    assert_eq!(
        r.object.to_string(),
        "consensus/NetXdQprcVkpaWU/baker/attestation"
    );
}

#[test]
fn both_schemes_sign_the_blake2b_digest_of_the_watermarked_bytes() {
    let bytes = att(10, 0, 1);
    let digest: [u8; 32] = Blake2b::<U32>::digest(&bytes).into();
    let r = req(bytes);
    assert_eq!(r.digest(), digest);
    let p = TezosPolicy::default();
    let object = p.object(&r).unwrap();
    for (scheme, want) in [
        (Scheme::Ed25519, SignMessage::Ed25519(digest.to_vec())),
        (Scheme::Secp256k1, SignMessage::EcdsaDigest(digest)),
    ] {
        let Decision::Sign { inputs, .. } = p.decide(&object, &pk(scheme), None, &r) else {
            panic!("expected sign");
        };
        assert_eq!(inputs.len(), 1);
        assert_eq!(inputs[0].message, want);
    }
}

#[test]
fn the_request_chain_must_match_the_bytes() {
    let ghostnet = ChainId::new("NetXnHfVqm9iesp").unwrap();
    let err = TezosRequest::new(ghostnet, key(), att(1, 0, 0)).unwrap_err();
    assert_eq!(
        err,
        ConsensusError::ChainMismatch {
            request: "NetXnHfVqm9iesp".into(),
            operation: MAINNET_B58.into(),
        }
    );
    // Generic operations carry no chain id: nothing to compare.
    assert!(TezosRequest::new(ChainId::new("any").unwrap(), key(), vec![0x03]).is_ok());
}

#[test]
fn state_round_trips_through_json() {
    let s = signed(block(10, 1, 1));
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(serde_json::from_str::<TezosState>(&json).unwrap(), s);
    assert!(serde_json::from_str::<TezosState>(r#"{"digest":"00"}"#).is_err());
}
