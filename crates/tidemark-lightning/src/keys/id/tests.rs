use std::collections::HashSet;
use std::sync::Arc;

use tidemark_core::{ChainId, ClientId, KeyId, StateStore};
use tidemark_store::SqliteStore;

use super::*;

fn issuer(store: Arc<SqliteStore>) -> ChannelKeysIdIssuer {
    let store: Arc<dyn StateStore> = store;
    ChannelKeysIdIssuer::new(
        store,
        ChainId::new("regtest").expect("valid chain id"),
        KeyId::new("node-1").expect("valid key id"),
    )
    .expect("valid object id")
}

fn client() -> ClientId {
    ClientId::new("replica-a").expect("valid client id")
}

#[test]
fn the_layout_puts_the_counter_first_the_marker_next_and_the_user_id_last() {
    let id = channel_keys_id(
        0x0102_0304_0506_0708,
        0x1112_1314_1516_1718_191a_1b1c_1d1e_1f20,
    );
    assert_eq!(&id[0..4], &[5, 6, 7, 8]);
    assert_eq!(&id[4..8], &[1, 2, 3, 4]);
    assert_eq!(&id[8..16], b"tidemark");
    assert_eq!(
        &id[16..32],
        &0x1112_1314_1516_1718_191a_1b1c_1d1e_1f20u128.to_be_bytes()
    );
    assert_eq!(
        parse_channel_keys_id(&id),
        Some((
            0x0102_0304_0506_0708,
            0x1112_1314_1516_1718_191a_1b1c_1d1e_1f20
        ))
    );
}

#[test]
fn counters_past_two_to_the_32_give_distinct_ids() {
    let ids: HashSet<[u8; 32]> = [0, 1, 1 << 32, (1 << 32) + 1, u64::MAX]
        .into_iter()
        .map(|c| channel_keys_id(c, 7))
        .collect();
    assert_eq!(ids.len(), 5);
}

#[test]
fn ids_keys_manager_issued_are_not_ours() {
    // KeysManager's layout: child index, nanos, secs, user channel id.
    let mut ldk = [0u8; 32];
    ldk[0..4].copy_from_slice(&0u32.to_be_bytes());
    ldk[4..8].copy_from_slice(&123_456_789u32.to_be_bytes());
    ldk[8..16].copy_from_slice(&1_750_000_000u64.to_be_bytes());
    ldk[16..32].copy_from_slice(&7u128.to_be_bytes());
    assert_eq!(parse_channel_keys_id(&ldk), None);
    assert_ne!(ldk, channel_keys_id(0, 7));
}

#[test]
fn sequential_issues_are_distinct_and_count_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::create(dir.path().join("state.db")).unwrap());
    let issuer = issuer(Arc::clone(&store));
    assert_eq!(issuer.next_counter().unwrap(), 0);
    let ids: Vec<[u8; 32]> = (0..20)
        .map(|_| issuer.issue(&client(), 42).unwrap())
        .collect();
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(parse_channel_keys_id(id), Some((n as u64, 42)));
    }
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 20);
    assert_eq!(issuer.next_counter().unwrap(), 20);
    assert_eq!(
        issuer.object().to_string(),
        "lightning/regtest/node-1/keys-counter"
    );
    // Every issue left an audit record on the counter.
    let records = store.audit_records(1, 100).unwrap();
    assert_eq!(records.len(), 20);
    assert!(
        records
            .iter()
            .all(|r| r.entry.object == "lightning/regtest/node-1/keys-counter")
    );
}

#[test]
fn concurrent_issuers_never_get_the_same_id() {
    const THREADS: usize = 8;
    const EACH: usize = 15;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::create(dir.path().join("state.db")).unwrap());
    // One issuer per thread, as separate replicas would have.
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let issuer = issuer(Arc::clone(&store));
            std::thread::spawn(move || {
                (0..EACH)
                    .map(|_| issuer.issue(&client(), t as u128).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut counters = HashSet::new();
    let mut ids = HashSet::new();
    for handle in handles {
        for id in handle.join().unwrap() {
            let (counter, _) = parse_channel_keys_id(&id).unwrap();
            assert!(counters.insert(counter), "counter {counter} issued twice");
            assert!(ids.insert(id));
        }
    }
    assert_eq!(ids.len(), THREADS * EACH);
    let all: HashSet<u64> = (0..(THREADS * EACH) as u64).collect();
    assert_eq!(counters, all, "the counter has no gaps and no repeats");
    assert_eq!(
        issuer(store).next_counter().unwrap(),
        (THREADS * EACH) as u64
    );
}

#[test]
fn the_counter_continues_after_the_store_is_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut seen = HashSet::new();
    {
        let store = Arc::new(SqliteStore::create(&path).unwrap());
        let issuer = issuer(Arc::clone(&store));
        for _ in 0..5 {
            assert!(seen.insert(issuer.issue(&client(), 1).unwrap()));
        }
        drop(issuer);
        store.close();
    }
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let issuer = issuer(store);
    assert_eq!(issuer.next_counter().unwrap(), 5);
    for n in 5..10 {
        // Same user channel id: only the durable counter keeps them apart.
        let id = issuer.issue(&client(), 1).unwrap();
        assert_eq!(parse_channel_keys_id(&id), Some((n, 1)));
        assert!(seen.insert(id), "an id was issued twice across a reopen");
    }
}

#[test]
fn a_corrupt_counter_is_reported_not_reset() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::create(dir.path().join("state.db")).unwrap());
    let issuer = issuer(Arc::clone(&store));
    let write = StateWrite {
        object: issuer.object().clone(),
        expected_version: 0,
        new: StoredState {
            version: 1,
            state: b"{\"next\":\"three\"}".to_vec(),
            mark: Mark::none(),
            digest: Digest([0; 32]),
            signatures: Vec::new(),
        },
    };
    let audit = AuditEntry {
        time_ms: 0,
        client: "test".to_owned(),
        object: issuer.object().to_string(),
        outcome: AuditOutcome::Imported,
        tag: None,
        mark: Mark::none(),
        digest: None,
    };
    store.commit(write, audit).unwrap();
    assert!(matches!(
        issuer.issue(&client(), 1),
        Err(KeysError::CorruptCounter { .. })
    ));
}
