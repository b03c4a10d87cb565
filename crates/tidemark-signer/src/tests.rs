//! Pipeline tests against the doubles in `doubles.rs`. The same pipeline
//! over the real SQLite store and keystore is tested in the workspace's
//! `tests/`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tidemark_core::{AuditOutcome, ClientId, StoreError};

use crate::doubles::{CounterPolicy, Fault, HashKeys, MemoryStore, request};
use crate::{Outcome, SignError, Signer};

fn signer(fault: Fault) -> (Signer, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new(fault));
    (Signer::new(store.clone(), Arc::new(HashKeys)), store)
}

fn client(name: &str) -> ClientId {
    ClientId::new(name).unwrap()
}

#[test]
fn identical_repeat_returns_the_stored_signature() {
    let (s, store) = signer(Fault::None);
    let Outcome::Signed {
        signatures: first, ..
    } = s
        .sign(&CounterPolicy, &client("a"), &request(1, "x"))
        .unwrap()
    else {
        panic!("first request must sign")
    };
    let Outcome::Replayed {
        signatures: again, ..
    } = s
        .sign(&CounterPolicy, &client("b"), &request(1, "x"))
        .unwrap()
    else {
        panic!("identical repeat must replay")
    };
    assert_eq!(first, again);
    let outcomes: Vec<_> = store
        .audit
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.outcome)
        .collect();
    assert_eq!(outcomes, [AuditOutcome::Signed, AuditOutcome::Replayed]);
}

#[test]
fn conflicting_request_is_refused_and_changes_nothing() {
    let (s, store) = signer(Fault::None);
    s.sign(&CounterPolicy, &client("a"), &request(1, "x"))
        .unwrap();
    let before = store.objects().unwrap();
    let Outcome::Refused(r) = s
        .sign(&CounterPolicy, &client("b"), &request(1, "y"))
        .unwrap()
    else {
        panic!("conflict must be refused")
    };
    assert_eq!(r.tag.as_str(), "hwm-double-sign");
    assert_eq!(r.current.get("n"), Some(1));
    assert_eq!(store.objects().unwrap(), before);
    let last = store.audit.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last.outcome, AuditOutcome::Refused);
    assert_eq!(last.client, "b");
    assert_eq!(last.tag.as_deref(), Some("hwm-double-sign"));
}

use tidemark_core::StateStore as _;

#[test]
fn no_signature_is_released_when_the_commit_fails() {
    let (s, store) = signer(Fault::CommitFails);
    let result = s.sign(&CounterPolicy, &client("a"), &request(1, "x"));
    assert!(
        matches!(result, Err(SignError::Store(StoreError::Full(_)))),
        "expected a store error and no signature, got {result:?}"
    );
    assert!(store.objects().unwrap().is_empty(), "nothing was committed");
    // Once the store recovers the same request signs: the failed attempt left
    // no mark that would block it, and no signature that could conflict.
    *store.fault.lock().unwrap() = Fault::None;
    assert!(matches!(
        s.sign(&CounterPolicy, &client("a"), &request(1, "x"))
            .unwrap(),
        Outcome::Signed { .. }
    ));
}

#[test]
fn a_lost_compare_and_swap_is_decided_again_against_the_winner() {
    // Another signer process commits "rival" at n=1 between our load and
    // our commit: our signature for "x" must never be released.
    let (s, _store) = signer(Fault::RaceOnce);
    let outcome = s
        .sign(&CounterPolicy, &client("a"), &request(1, "x"))
        .unwrap();
    let Outcome::Refused(r) = outcome else {
        panic!("the loser of the race must be refused, got {outcome:?}")
    };
    assert_eq!(r.tag.as_str(), "hwm-double-sign");
}

#[test]
fn unknown_key_is_an_error_and_changes_nothing() {
    let (s, store) = signer(Fault::None);
    let mut r = request(1, "x");
    r.key = tidemark_core::KeyId::new("missing").unwrap();
    assert!(matches!(
        s.sign(&CounterPolicy, &client("a"), &r),
        Err(SignError::Key(_))
    ));
    assert!(store.objects().unwrap().is_empty());
}

#[test]
fn corrupt_stored_state_fails_closed() {
    let (s, store) = signer(Fault::None);
    s.sign(&CounterPolicy, &client("a"), &request(1, "x"))
        .unwrap();
    for v in store.objects.lock().unwrap().values_mut() {
        v.state = b"{not json".to_vec();
    }
    // A restarted pipeline (empty cache) reads the corrupt state.
    let restarted = Signer::new(store.clone(), Arc::new(HashKeys));
    assert!(matches!(
        restarted.sign(&CounterPolicy, &client("a"), &request(2, "x")),
        Err(SignError::CorruptState { .. })
    ));
}

#[test]
fn racing_replicas_get_one_payload_per_mark() {
    let (s, _store) = signer(Fault::None);
    let s = Arc::new(s);
    let signed: Arc<Mutex<HashMap<u64, Vec<String>>>> = Arc::default();
    let threads: Vec<_> = (0..8)
        .map(|replica| {
            let (s, signed) = (s.clone(), signed.clone());
            std::thread::spawn(move || {
                let me = client(&format!("replica-{replica}"));
                for n in 1..=30 {
                    // Half the replicas agree on the payload, half conflict.
                    let payload = format!("block-{}", replica % 2);
                    if let Outcome::Signed { .. } | Outcome::Replayed { .. } =
                        s.sign(&CounterPolicy, &me, &request(n, &payload)).unwrap()
                    {
                        signed.lock().unwrap().entry(n).or_default().push(payload);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for (n, payloads) in signed.lock().unwrap().iter() {
        assert!(
            payloads.iter().all(|p| p == &payloads[0]),
            "two payloads signed at n={n}: {payloads:?}"
        );
    }
}

#[test]
fn a_stale_cache_never_lets_a_second_process_sign_a_conflict() {
    // Two pipelines ("processes") share one store; each caches what it saw.
    let store = Arc::new(MemoryStore::new(Fault::None));
    let a = Signer::new(store.clone(), Arc::new(HashKeys));
    let b = Signer::new(store.clone(), Arc::new(HashKeys));
    a.sign(&CounterPolicy, &client("a"), &request(1, "x"))
        .unwrap();
    // b advances the object; a's cache still says n=1.
    assert!(matches!(
        b.sign(&CounterPolicy, &client("b"), &request(2, "y"))
            .unwrap(),
        Outcome::Signed { .. }
    ));
    // a decides on its stale state, loses the compare-and-swap, reloads
    // and refuses instead of signing a second payload at n=2.
    let Outcome::Refused(r) = a
        .sign(&CounterPolicy, &client("a"), &request(2, "z"))
        .unwrap()
    else {
        panic!("a stale cache must not produce a conflicting signature")
    };
    assert_eq!(r.tag.as_str(), "hwm-double-sign");
    // And a's identical repeat of b's request replays b's signature.
    let Outcome::Replayed { signatures, .. } = a
        .sign(&CounterPolicy, &client("a"), &request(2, "y"))
        .unwrap()
    else {
        panic!("identical repeat must replay")
    };
    assert_eq!(signatures, store.objects().unwrap()[0].1.signatures);
}
