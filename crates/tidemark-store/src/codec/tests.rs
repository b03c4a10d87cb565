use tidemark_core::{ChainId, Domain, KeyId};

use super::*;

fn write(expected: u64, version: u64, state: &[u8]) -> StateWrite {
    StateWrite {
        object: ObjectId::new(
            Domain::Consensus,
            ChainId::new("test-chain").unwrap(),
            KeyId::new("key-1").unwrap(),
            "cometbft",
        )
        .unwrap(),
        expected_version: expected,
        new: StoredState {
            version,
            state: state.to_vec(),
            mark: Mark::none().with("height", 7),
            digest: Digest([7; 32]),
            signatures: vec![Signature(vec![1, 2, 3])],
        },
    }
}

fn is_invalid(r: Result<EncodedWrite, StoreError>) -> bool {
    matches!(r, Err(StoreError::Invalid(_)))
}

#[test]
fn a_well_formed_write_encodes() {
    let w = encode_write(&write(4, 5, br#"{"height":7}"#)).unwrap();
    assert_eq!((w.expected, w.version), (4, 5));
    assert_eq!(w.object, "consensus/test-chain/key-1/cometbft");
    assert_eq!(w.signatures, r#"["010203"]"#);
}

#[test]
fn the_new_version_must_be_expected_plus_one() {
    assert!(is_invalid(encode_write(&write(4, 4, b"{}"))));
    assert!(is_invalid(encode_write(&write(4, 6, b"{}"))));
    assert!(is_invalid(encode_write(&write(0, 0, b"{}"))));
}

#[test]
fn versions_beyond_sqlite_integers_are_invalid() {
    assert!(is_invalid(encode_write(&write(u64::MAX, 0, b"{}"))));
    let max = i64::MAX as u64;
    assert!(is_invalid(encode_write(&write(max, max + 1, b"{}"))));
    assert!(is_invalid(encode_write(&write(max + 1, max + 2, b"{}"))));
}

#[test]
fn a_state_that_is_not_json_is_invalid() {
    assert!(is_invalid(encode_write(&write(0, 1, b"{not json"))));
    assert!(is_invalid(encode_write(&write(0, 1, b""))));
}

#[test]
fn an_audit_time_beyond_sqlite_integers_is_invalid() {
    let mut entry = AuditEntry {
        time_ms: u64::MAX,
        client: "c".into(),
        object: "o".into(),
        outcome: AuditOutcome::Refused,
        tag: Some("hwm-double-sign".into()),
        mark: Mark::none(),
        digest: None,
    };
    assert!(matches!(check_entry(&entry), Err(StoreError::Invalid(_))));
    entry.time_ms = 1;
    assert!(check_entry(&entry).is_ok());
}

#[test]
fn outcomes_round_trip_through_their_names() {
    for o in AuditOutcome::ALL {
        assert_eq!(outcome(o.as_str()), Some(o));
    }
    assert_eq!(outcome("imported"), Some(AuditOutcome::Imported));
    assert_eq!(outcome("SIGNED"), None);
}

#[test]
fn a_commit_needs_writes_to_distinct_objects() {
    let invalid =
        |writes: &[StateWrite]| matches!(encode_writes(writes), Err(StoreError::Invalid(_)));
    assert!(invalid(&[]));
    let a = write(0, 1, b"{}");
    assert!(invalid(&[a.clone(), a.clone()]));
    // The same object at two versions is still the same object.
    assert!(invalid(&[a.clone(), write(1, 2, b"{}")]));
    // One malformed write makes the whole commit invalid.
    let mut b = a.clone();
    b.object = "consensus/test-chain/key-1/other".parse().unwrap();
    assert!(invalid(&[b.clone(), write(0, 2, b"{}")]));
    let encoded = encode_writes(&[a, b]).unwrap();
    let objects: Vec<_> = encoded.iter().map(|w| w.object.as_str()).collect();
    assert_eq!(
        objects,
        vec![
            "consensus/test-chain/key-1/cometbft",
            "consensus/test-chain/key-1/other"
        ]
    );
}
