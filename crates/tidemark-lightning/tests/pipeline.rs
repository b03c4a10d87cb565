//! The durable channel pipeline over a real SQLite store and keys derived
//! from a seed: persist before release, replay after a restart, and two
//! signer processes racing on one channel (split brain) never sign two
//! counterparty commitments for one number.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod channel_support;

use std::sync::Arc;

use channel_support::{Channel, KINDS};
use tidemark_core::{ChainId, ClientId, KeyId, StateStore, Tag};
use tidemark_lightning::channel::{ChannelRequest, CommitmentData, Output};
use tidemark_lightning::{
    ChannelOutcome, LightningError, LightningPolicy, LightningSigner, NodeKeys,
    RemoteKeyDerivation, tags,
};
use tidemark_store::SqliteStore;

/// The seed `channel_support` derives the holder's keys from (its
/// `KeysManager::new(&[1; 32], .., true)`).
const HOLDER_SEED: [u8; 32] = [1; 32];

fn signer(store: Arc<dyn StateStore>) -> LightningSigner {
    let node = NodeKeys::new(&HOLDER_SEED, RemoteKeyDerivation::V2).unwrap();
    LightningSigner::new(
        store,
        Arc::new(node),
        ChainId::new("regtest").unwrap(),
        KeyId::new("ln-node").unwrap(),
        LightningPolicy::default(),
    )
    .unwrap()
}

fn client(name: &str) -> ClientId {
    ClientId::new(name).unwrap()
}

fn ask(
    s: &LightningSigner,
    c: &Channel,
    who: &str,
    request: ChannelRequest,
) -> Result<ChannelOutcome, LightningError> {
    s.channel(
        &client(who),
        &c.setup.channel_keys_id,
        &request,
        c.best_block,
    )
}

fn done(outcome: ChannelOutcome) -> Output {
    match outcome {
        ChannelOutcome::Done { output, .. } => output,
        other => panic!("expected done, got {other:?}"),
    }
}

fn refused(outcome: ChannelOutcome, tag: &Tag) {
    match outcome {
        ChannelOutcome::Refused(r) => assert_eq!(&r.tag, tag, "{r}"),
        other => panic!("expected {tag}, got {other:?}"),
    }
}

fn sign_counterparty(data: CommitmentData) -> ChannelRequest {
    ChannelRequest::SignCounterpartyCommitment(Box::new(data))
}

/// Sets the channel up and signs counterparty commitment 0 and validates
/// holder commitment 0 through `s`.
fn open(s: &LightningSigner, c: &Channel) {
    done(
        ask(
            s,
            c,
            "replica-a",
            ChannelRequest::Setup(Box::new(c.setup.clone())),
        )
        .unwrap(),
    );
    done(
        ask(
            s,
            c,
            "replica-a",
            sign_counterparty(c.counterparty_commitment(0)),
        )
        .unwrap(),
    );
    let holder = c.holder_commitment(0);
    done(
        ask(
            s,
            c,
            "replica-a",
            ChannelRequest::ValidateHolderCommitment(Box::new(holder)),
        )
        .unwrap(),
    );
}

#[test]
fn the_pipeline_signs_persists_and_replays_after_a_restart() {
    for kind in KINDS {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let c = Channel::new(kind);
        let first = {
            let store = Arc::new(SqliteStore::create(&path).unwrap());
            let s = signer(store.clone());
            open(&s, &c);
            let out = done(
                ask(
                    &s,
                    &c,
                    "replica-a",
                    sign_counterparty(c.counterparty_commitment(1)),
                )
                .unwrap(),
            );
            c.verify_counterparty_signature(&c.counterparty_commitment(1), &out);
            store.close();
            out
        };
        // A restarted signer (a new process) over the same file.
        let s = signer(Arc::new(SqliteStore::open(&path).unwrap()));
        let state = s.channel_state(&c.setup.channel_keys_id).unwrap().unwrap();
        assert_eq!(state.mark().get("counterparty_signed"), Some(1));
        match ask(
            &s,
            &c,
            "replica-b",
            sign_counterparty(c.counterparty_commitment(1)),
        )
        .unwrap()
        {
            ChannelOutcome::Replayed { output } => assert_eq!(output, first, "{kind:?}"),
            other => panic!("{other:?}"),
        }
        let mut other = c.counterparty_commitment(1);
        other.feerate_per_kw += 1;
        refused(
            ask(&s, &c, "replica-b", sign_counterparty(other)).unwrap(),
            &tags::COMMITMENT_RETRY_SAME,
        );
    }
}

#[test]
fn split_brain_replicas_get_one_signature_per_commitment_number() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn StateStore> =
        Arc::new(SqliteStore::create(dir.path().join("state.db")).unwrap());
    let c = Channel::new(KINDS[1]);
    // Two signer processes sharing the store: only its compare-and-swap
    // stands between them.
    let processes = [signer(store.clone()), signer(store.clone())];
    open(&processes[0], &c);
    // Sixteen replicas each propose a different commitment 1 (another fee
    // rate each), half through each process.
    let outcomes: Vec<ChannelOutcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16u32)
            .map(|i| {
                let s = &processes[i as usize % 2];
                let mut data = c.counterparty_commitment(1);
                data.feerate_per_kw += i;
                let c = &c;
                scope.spawn(move || {
                    ask(s, c, &format!("replica-{i}"), sign_counterparty(data)).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let signed = outcomes
        .iter()
        .filter(|o| matches!(o, ChannelOutcome::Done { .. }))
        .count();
    let retry_same = outcomes
        .iter()
        .filter(|o| matches!(o, ChannelOutcome::Refused(r) if r.tag == tags::COMMITMENT_RETRY_SAME))
        .count();
    assert_eq!((signed, retry_same), (1, 15), "{outcomes:?}");
    // The refusals tell a stale replica where the channel is.
    for o in &outcomes {
        if let ChannelOutcome::Refused(r) = o {
            assert_eq!(r.current.get("counterparty_signed"), Some(1), "{r}");
        }
    }
}

use tidemark_store::testing::FailingCommits as FullDisk;

#[test]
fn nothing_leaves_when_the_commit_fails() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::create(dir.path().join("state.db")).unwrap());
    let c = Channel::new(KINDS[0]);
    open(&signer(store.clone()), &c);
    let failing = signer(Arc::new(FullDisk(store.clone())));
    // Neither a counterparty signature nor a holder secret leaves.
    assert!(matches!(
        ask(
            &failing,
            &c,
            "a",
            sign_counterparty(c.counterparty_commitment(1))
        ),
        Err(LightningError::Store(tidemark_core::StoreError::Full(_)))
    ));
    let healthy = signer(store);
    let state = healthy
        .channel_state(&c.setup.channel_keys_id)
        .unwrap()
        .unwrap();
    assert_eq!(state.mark().get("counterparty_signed"), Some(0));
    // The real store then signs commitment 1 once.
    done(
        ask(
            &healthy,
            &c,
            "a",
            sign_counterparty(c.counterparty_commitment(1)),
        )
        .unwrap(),
    );
}

#[test]
fn channel_keys_ids_come_from_the_durable_counter() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let first: Vec<[u8; 32]> = {
        let store = Arc::new(SqliteStore::create(&path).unwrap());
        let s = signer(store.clone());
        let ids = (0..3)
            .map(|u| s.issue_channel_keys_id(&client("a"), u).unwrap())
            .collect();
        store.close();
        ids
    };
    let s = signer(Arc::new(SqliteStore::open(&path).unwrap()));
    let next = s.issue_channel_keys_id(&client("b"), 0).unwrap();
    assert!(
        !first.contains(&next),
        "an id was issued twice across a restart"
    );
    assert_eq!(first.len(), 3);
    assert_ne!(first[0], first[1]);
}
