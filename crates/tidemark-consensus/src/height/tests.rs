//! Table tests of the plain-height rules: one line per case.

use sha2::{Digest as _, Sha256};
use tidemark_core::{ChainId, Decision, KeyId, Policy, PublicKey, Scheme, SignMessage};

use super::*;

fn req(height: u64, round: Option<u32>, payload: &[u8]) -> HeightRequest {
    HeightRequest::new(
        ChainId::new("my-chain").unwrap(),
        KeyId::new("k").unwrap(),
        height,
        round,
        payload.to_vec(),
    )
    .unwrap()
}

fn pk(scheme: Scheme) -> PublicKey {
    PublicKey {
        scheme,
        bytes: vec![1; 32],
    }
}

fn decide(
    current: Option<&HeightState>,
    r: &HeightRequest,
    scheme: Scheme,
) -> Decision<HeightState> {
    let object = HeightPolicy.object(r).unwrap();
    HeightPolicy.decide(&object, &pk(scheme), current, r)
}

fn signed(r: HeightRequest) -> HeightState {
    match decide(None, &r, Scheme::Ed25519) {
        Decision::Sign { new_state, .. } => new_state,
        other => panic!("expected sign, got {other:?}"),
    }
}

#[test]
fn height_rules() {
    #[rustfmt::skip]
    let cases: Vec<(&str, Option<HeightRequest>, HeightRequest, &str)> = vec![
        ("first",                          None,                          req(5, None, b"a"),     "sign"),
        ("higher height",                  Some(req(5, Some(9), b"a")),   req(6, Some(0), b"b"),  "sign"),
        ("same height, higher round",      Some(req(5, Some(1), b"a")),   req(5, Some(2), b"b"),  "sign"),
        ("no round then round 1",          Some(req(5, None, b"a")),      req(5, Some(1), b"b"),  "sign"),
        ("lower height",                   Some(req(5, None, b"a")),      req(4, None, b"a"),     "hwm-height-regression"),
        ("same height, lower round",       Some(req(5, Some(2), b"a")),   req(5, Some(1), b"a"),  "hwm-round-regression"),
        ("round 1 then no round",          Some(req(5, Some(1), b"a")),   req(5, None, b"a"),     "hwm-round-regression"),
        ("identical",                      Some(req(5, Some(1), b"a")),   req(5, Some(1), b"a"),  "replay"),
        ("identical, no round",            Some(req(5, None, b"a")),      req(5, None, b"a"),     "replay"),
        ("no round equals round 0",        Some(req(5, None, b"a")),      req(5, Some(0), b"a"),  "replay"),
        ("different payload",              Some(req(5, Some(1), b"a")),   req(5, Some(1), b"b"),  "hwm-double-sign"),
        ("different payload, round 0/none",Some(req(5, Some(0), b"a")),   req(5, None, b"b"),     "hwm-double-sign"),
    ];
    for (name, current, r, want) in cases {
        let current = current.map(signed);
        let got = match decide(current.as_ref(), &r, Scheme::Ed25519) {
            Decision::Sign { .. } => "sign".to_owned(),
            Decision::Replay { .. } => "replay".to_owned(),
            Decision::Refuse(x) => x.tag.to_string(),
        };
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn message_form_per_scheme_and_mark() {
    let r = req(5, Some(2), b"payload");
    #[rustfmt::skip]
    let cases = [
        (Scheme::Ed25519,   SignMessage::Ed25519(b"payload".to_vec())),
        (Scheme::Secp256k1, SignMessage::EcdsaDigest(Sha256::digest(b"payload").into())),
    ];
    for (scheme, want) in cases {
        let Decision::Sign { new_state, inputs } = decide(None, &r, scheme) else {
            panic!("expected sign");
        };
        assert_eq!(inputs[0].message, want);
        assert_eq!(new_state.mark().to_string(), "height=5 round=2");
    }
    assert_eq!(
        HeightPolicy.object(&r).unwrap().to_string(),
        "consensus/my-chain/k/height"
    );
}

#[test]
fn oversized_payloads_are_rejected_and_states_round_trip() {
    let err = HeightRequest::new(
        ChainId::new("c").unwrap(),
        KeyId::new("k").unwrap(),
        1,
        None,
        vec![0; MAX_PAYLOAD_LEN + 1],
    )
    .unwrap_err();
    assert!(matches!(err, crate::ConsensusError::TooLarge { .. }));
    let s = signed(req(5, None, b"a"));
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(serde_json::from_str::<HeightState>(&json).unwrap(), s);
}
