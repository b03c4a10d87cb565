//! The decision pipeline as a library, over the real store and keystore
//! (no server): `tidemark_signer::Signer` on a `SqliteStore` file and a
//! `SoftwareKeystore`.
//!
//! - Persist before release on a really full disk (a tmpfs, and a store
//!   capped with `max_page_count`): the commit that does not fit makes
//!   `Signer::sign` return `SignError::Store(StoreError::Full)` and no
//!   signature, and the mark is what it was, also after reopening.
//! - A property test: replica threads racing CometBFT votes and proposals
//!   (conflicting, identical, stale, differing only in the timestamp) never
//!   get two signatures over different bytes at one height/round/step, get
//!   the stored signature for every repeat, and leave the highest signed
//!   position as the mark in the reopened file.
//! - Two `Signer`s on two `SqliteStore` handles of one file (two signer
//!   processes sharing a store) racing on one object: the store's
//!   compare-and-swap lets exactly one payload be signed per mark.

// Test code: a failed expectation is a panic with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Barrier, OnceLock};

use ed25519_dalek::{Signature as EdSignature, VerifyingKey};
use proptest::prelude::*;
use secrecy::SecretString;
use tidemark_consensus::{
    BlockId, CometMessage, CometPolicy, CometRequest, CometState, HeightPolicy, HeightRequest,
    HeightState, PartSetHeader, Proposal, SignedMsgType, Timestamp, Vote,
};
use tidemark_core::{
    ChainId, ClientId, KeyBackend, KeyId, ObjectId, Policy as _, Signature, StateStore, StoreError,
};
use tidemark_keys::{KdfParams, SoftwareKeystore};
use tidemark_signer::{Outcome, SignError, Signer};
use tidemark_store::{SqliteStore, StoreOptions};

const KEY: &str = "validator";

/// One keystore with an ed25519 key for every test in this binary (key
/// derivation is cheap, but once is enough), and its public key.
fn keystore() -> (Arc<SoftwareKeystore>, VerifyingKey) {
    static KEYS: OnceLock<(tempfile::TempDir, Arc<SoftwareKeystore>)> = OnceLock::new();
    let (_, keys) = KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let passphrase = SecretString::from("pipeline test passphrase");
        let mut keys = SoftwareKeystore::create(
            dir.path().join("keystore.json"),
            &passphrase,
            KdfParams::insecure_for_tests(),
        )
        .unwrap();
        keys.add_ed25519(KeyId::new(KEY).unwrap()).unwrap();
        (dir, Arc::new(keys))
    });
    let public = keys.public_key(&KeyId::new(KEY).unwrap()).unwrap();
    let public = VerifyingKey::from_bytes(&public.bytes.try_into().unwrap()).unwrap();
    (keys.clone(), public)
}

fn signer(store: Arc<dyn StateStore>) -> Signer {
    let (keys, _) = keystore();
    Signer::new(store, keys)
}

fn verify(public: &VerifyingKey, bytes: &[u8], signature: &Signature) {
    let sig = EdSignature::from_slice(&signature.0).unwrap();
    public
        .verify_strict(bytes, &sig)
        .unwrap_or_else(|e| panic!("a released signature does not verify: {e}"));
}

// ---------------------------------------------------------------------------
// (a) Persist before release on a full disk.

fn height_request(chain: &str, height: u64, payload: &[u8]) -> HeightRequest {
    HeightRequest::new(
        ChainId::new(chain).unwrap(),
        KeyId::new(KEY).unwrap(),
        height,
        None,
        payload.to_vec(),
    )
    .unwrap()
}

fn height_object(request: &HeightRequest) -> ObjectId {
    HeightPolicy.object(request).unwrap()
}

/// What was signed before the store filled up.
struct Filled {
    /// Per chain, the last acknowledged request and its signature.
    acked: HashMap<String, (HeightRequest, Signature)>,
    /// The request that failed with `Full`.
    failed: HeightRequest,
    count: usize,
}

/// Signs increasing heights on eight chains, round robin, until a commit
/// fails. It must fail with `SignError::Store(StoreError::Full)`, and the
/// signer must not have changed the failed object's mark.
fn sign_until_full(signer: &Signer) -> Filled {
    let (_, public) = keystore();
    let client = ClientId::new("replica-1").unwrap();
    let mut acked: HashMap<String, (HeightRequest, Signature)> = HashMap::new();
    for i in 0..100_000u64 {
        let chain = format!("full-{}", i % 8);
        let height = i / 8 + 1;
        let payload = format!("block {height} of {chain}").repeat(8);
        let request = height_request(&chain, height, payload.as_bytes());
        let before = signer
            .current::<HeightPolicy>(&height_object(&request))
            .unwrap();
        match signer.sign(&HeightPolicy, &client, &request) {
            Ok(Outcome::Signed { signatures, .. }) => {
                verify(&public, payload.as_bytes(), &signatures[0]);
                acked.insert(chain, (request, signatures[0].clone()));
            }
            Ok(other) => panic!("a new height was not signed: {other:?}"),
            Err(SignError::Store(StoreError::Full(_))) => {
                let after = signer
                    .current::<HeightPolicy>(&height_object(&request))
                    .unwrap();
                assert_eq!(before, after, "a failed commit changed the mark");
                return Filled {
                    acked,
                    failed: request,
                    count: i as usize,
                };
            }
            Err(e) => panic!("expected only signatures or a full store, got {e:?}"),
        }
    }
    panic!("the store never filled up");
}

/// On a reopened store with room: every acknowledged mark is there (the
/// last request per chain is replayed byte for byte), the failed one is
/// not (it is signed now, as new).
fn assert_reopened(path: &Path, filled: &Filled) {
    let store = Arc::new(SqliteStore::open(path).unwrap());
    let signer = signer(store.clone());
    let client = ClientId::new("replica-2").unwrap();
    for (chain, (request, signature)) in &filled.acked {
        let stored: Option<(u64, HeightState)> = signer
            .current::<HeightPolicy>(&height_object(request))
            .unwrap();
        assert_eq!(
            stored.map(|(_, s)| s.height),
            Some(request.height()),
            "{chain}: the acknowledged mark is not in the file"
        );
        match signer.sign(&HeightPolicy, &client, request).unwrap() {
            Outcome::Replayed { signatures, .. } => assert_eq!(&signatures[0], signature),
            other => panic!("{chain}: an acknowledged request was not replayed: {other:?}"),
        }
    }
    match signer.sign(&HeightPolicy, &client, &filled.failed).unwrap() {
        Outcome::Signed { .. } => {}
        other => panic!("the request that failed had left a trace: {other:?}"),
    }
    store.close();
}

#[test]
fn a_full_tmpfs_fails_sign_with_full_and_releases_nothing() {
    let Some(fs) = support::Tmpfs::mount("4m") else {
        return;
    };
    let path = fs.path().join("state.db");
    SqliteStore::create(&path).unwrap().close();
    let filler = fs.fill("filler", 128 * 1024);
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let filled = sign_until_full(&signer(store.clone()));
    println!("tmpfs full after {} signatures", filled.count);
    assert!(
        filled.count > 0,
        "nothing was signed before the disk filled"
    );
    store.close();
    drop(store);
    std::fs::remove_file(filler).unwrap();
    assert_reopened(&path, &filled);
}

/// The number of pages a closed store file has.
fn pages(path: &Path) -> u64 {
    let header = std::fs::read(path).unwrap();
    u64::from(u32::from_be_bytes(header[28..32].try_into().unwrap()))
}

#[test]
fn a_size_capped_store_fails_sign_with_full_and_releases_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    SqliteStore::create(&path).unwrap().close();
    let cap = pages(&path) + 6;
    let capped = || StoreOptions::default().with_max_page_count(Some(cap));
    let store = Arc::new(SqliteStore::open_with(&path, capped()).unwrap());
    let filled = sign_until_full(&signer(store.clone()));
    println!(
        "store capped at {cap} pages full after {} signatures",
        filled.count
    );
    assert!(filled.count > 0, "nothing was signed before the cap");
    store.close();
    drop(store);

    // Reopened with the same cap: the marks are there, still full.
    let store = Arc::new(SqliteStore::open_with(&path, capped()).unwrap());
    let again = signer(store.clone());
    let client = ClientId::new("replica-1").unwrap();
    for (request, _) in filled.acked.values() {
        let (_, stored) = again
            .current::<HeightPolicy>(&height_object(request))
            .unwrap()
            .expect("an acknowledged mark is in the file");
        assert_eq!(stored.height, request.height());
    }
    let big = height_request("full-new", 1, &[7u8; 60 * 1024]);
    assert!(matches!(
        again.sign(&HeightPolicy, &client, &big),
        Err(SignError::Store(StoreError::Full(_)))
    ));
    store.close();
    drop(store);

    // Without the cap: everything acknowledged is there, nothing else.
    assert_reopened(&path, &filled);
}

#[path = "pipeline/racing.rs"]
mod racing;

use racing::Op;

// ---------------------------------------------------------------------------
// (c) Two signer processes sharing one store file.

#[test]
fn two_signers_on_one_file_sign_exactly_one_payload_per_mark() {
    const HEIGHTS: i64 = 60;
    const PER_SIGNER: usize = 2;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    SqliteStore::create(&path).unwrap().close();
    let stores = [
        Arc::new(SqliteStore::open(&path).unwrap()),
        Arc::new(SqliteStore::open(&path).unwrap()),
    ];
    let signers = [signer(stores[0].clone()), signer(stores[1].clone())];
    let (_, public) = keystore();
    let barrier = Barrier::new(2 * PER_SIGNER);

    // Every thread asks for a prevote at each height for its own block
    // (one of the two threads of each signer sends the other's identical
    // request, so repeats across processes are raced too).
    let results: Vec<(i64, usize, Result<Outcome<CometState>, SignError>)> =
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..2 * PER_SIGNER)
                .map(|t| {
                    let (signer, barrier) = (&signers[t % 2], &barrier);
                    s.spawn(move || {
                        let client =
                            ClientId::new(format!("process-{}-thread-{t}", t % 2)).unwrap();
                        let mut out = Vec::new();
                        for height in 1..=HEIGHTS {
                            let op = Op {
                                chain: 0,
                                height,
                                round: 0,
                                kind: 0,
                                block: 1 + (t % 3) as u8,
                                second: 0,
                            };
                            barrier.wait();
                            let result = signer.sign(&CometPolicy, &client, &op.request());
                            out.push((height, t, result));
                        }
                        out
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });

    let mut signed_per_height: HashMap<i64, Vec<u8>> = HashMap::new();
    let mut refused = 0;
    let mut replayed = 0;
    for (height, t, result) in &results {
        match result {
            Ok(Outcome::Signed {
                signatures, state, ..
            }) => {
                verify(&public, &state.sign_bytes, &signatures[0]);
                if let Some(first) = signed_per_height.insert(*height, state.sign_bytes.clone()) {
                    panic!(
                        "height {height} signed twice (thread {t}): {} and {}",
                        hex::encode(first),
                        hex::encode(&state.sign_bytes)
                    );
                }
            }
            Ok(Outcome::Replayed { state, .. }) => {
                assert_eq!(state.height, *height);
                replayed += 1;
            }
            Ok(Outcome::Refused(r)) => {
                assert_eq!(r.tag.as_str(), "hwm-double-sign", "height {height}");
                refused += 1;
            }
            Err(e) => panic!("height {height} thread {t}: {e}"),
        }
    }
    // Every replay and every refusal agrees with the one signed payload.
    for (height, _, result) in &results {
        if let Ok(Outcome::Replayed { state, .. }) = result {
            assert_eq!(Some(&state.sign_bytes), signed_per_height.get(height));
        }
    }
    assert_eq!(
        signed_per_height.len(),
        HEIGHTS as usize,
        "a height got no signature"
    );
    let conflicts: u64 = stores.iter().map(|s| s.metrics().conflicts).sum();
    println!(
        "two signers on one file: {HEIGHTS} heights signed once each, {replayed} replays, {refused} refusals, {conflicts} compare-and-swap conflicts"
    );
    assert!(
        conflicts > 0,
        "the two stores never raced a commit: the compare-and-swap was not exercised"
    );
    for store in &stores {
        store.close();
    }

    let store = SqliteStore::open(&path).unwrap();
    let request = Op {
        chain: 0,
        height: HEIGHTS,
        round: 0,
        kind: 0,
        block: 1,
        second: 0,
    }
    .request();
    let stored = store
        .load(&CometPolicy.object(&request).unwrap())
        .unwrap()
        .unwrap();
    let state: CometState = serde_json::from_slice(&stored.state).unwrap();
    assert_eq!(state.height, HEIGHTS);
    assert_eq!(Some(&state.sign_bytes), signed_per_height.get(&HEIGHTS));
    store.close();
}
