//! The independent checker of the kill test: every signature any replica
//! received verifies, no position was signed twice over different bytes,
//! no released mark is missing from the store after the last kill, and a
//! restarted signer never signs a received request anew.

use super::*;

/// (a) Every signature verifies against `public_key` over sign bytes that
/// are the canonical bytes of what the replica asked (with the stored
/// timestamp on a replay that differed only in it); a new signature keeps
/// the asked timestamp.
pub(super) fn check_signatures(tally: &Tally, public_key: &[u8]) {
    let key = VerifyingKey::from_bytes(&public_key.try_into().expect("32-byte key")).unwrap();
    let verify = |what: &str, bytes: &[u8], sig: &[u8], r: &Received| {
        let sig = EdSignature::from_slice(sig)
            .unwrap_or_else(|e| panic!("{what} of {r:?} is malformed: {e}"));
        key.verify_strict(bytes, &sig)
            .unwrap_or_else(|e| panic!("{what} of {r:?} does not verify: {e}"));
    };
    for r in &tally.received {
        let outcome = r.answer.outcome;
        assert!(
            outcome == v1::Outcome::Signed as i32 || outcome == v1::Outcome::Replayed as i32,
            "{r:?}"
        );
        let asked = match &r.req {
            Req::Vote(v) => v.vote.as_ref().and_then(|v| v.timestamp),
            Req::Proposal(p) => p.proposal.as_ref().and_then(|p| p.timestamp),
        };
        if outcome == v1::Outcome::Signed as i32 {
            assert_eq!(
                r.answer.timestamp, asked,
                "new signature, other time: {r:?}"
            );
        }
        let (bytes, ext) = expected_bytes(&r.req, wire::timestamp(r.answer.timestamp));
        assert_eq!(
            r.answer.sign_bytes, bytes,
            "signed something else than asked: {r:?}"
        );
        verify("signature", &r.answer.sign_bytes, &r.answer.signature, r);
        match ext {
            Some(ext) => verify(
                "extension signature",
                &ext,
                &r.answer.extension_signature,
                r,
            ),
            None => assert!(r.answer.extension_signature.is_empty(), "{r:?}"),
        }
    }
}

/// A (chain, height, round, step).
type Position = (String, Hrs);

/// (b) One payload and one signature per position over all cycles, and at
/// most one `signed` answer per position (a second one would mean the mark
/// of the first was lost). Returns what was received at each position and
/// how many positions were signed.
pub(super) fn check_positions(tally: &Tally) -> (HashMap<Position, &Received>, usize) {
    let mut at: HashMap<Position, &Received> = HashMap::new();
    let mut signed_at: HashMap<Position, &Received> = HashMap::new();
    for r in &tally.received {
        let pos = (r.req.chain().to_owned(), r.req.hrs());
        let first = *at.entry(pos.clone()).or_insert(r);
        assert_eq!(
            first.answer.sign_bytes, r.answer.sign_bytes,
            "DOUBLE SIGN at {pos:?}:\n{first:?}\n{r:?}"
        );
        assert_eq!(first.answer.signature, r.answer.signature, "{pos:?}");
        if r.answer.outcome == v1::Outcome::Signed as i32
            && let Some(first) = signed_at.insert(pos.clone(), r)
        {
            panic!("{pos:?} was signed twice (its first mark was lost):\n{first:?}\n{r:?}");
        }
    }
    (at, signed_at.len())
}

fn hrs_of(state: &CometState) -> Hrs {
    (state.height, state.round, state.step.number())
}

/// (c) The store the last SIGKILL left opens, and holds for every chain a
/// mark at or above the highest position any replica got a signature for;
/// where a replica got one at the stored position, the stored sign bytes
/// and signature are those. Returns the marks by chain.
pub(super) fn check_store_after_kill(
    db: &Path,
    tally: &Tally,
    at: &HashMap<Position, &Received>,
) -> BTreeMap<String, Hrs> {
    let store = SqliteStore::open(db)
        .unwrap_or_else(|e| panic!("the store after the last SIGKILL does not open: {e}"));
    let mut marks = BTreeMap::new();
    for (object, stored) in store.objects().unwrap() {
        let state: CometState = serde_json::from_slice(&stored.state).unwrap();
        let chain = object.chain().to_string();
        if let Some(r) = at.get(&(chain.clone(), hrs_of(&state))) {
            assert_eq!(state.sign_bytes, r.answer.sign_bytes, "{object}");
            assert_eq!(stored.signatures[0].0, r.answer.signature, "{object}");
        }
        marks.insert(chain, hrs_of(&state));
    }
    store.close();
    for r in &tally.received {
        let mark = marks.get(r.req.chain());
        let mark = mark.unwrap_or_else(|| panic!("no mark for {}, but {r:?}", r.req.chain()));
        assert!(
            *mark >= r.req.hrs(),
            "LOST MARK: stored {mark:?} is below a released signature {r:?}"
        );
    }
    marks
}

/// Asks `r` once more of a restarted signer whose mark for its chain is
/// `mark`: at the mark it must be replayed with the very same signature,
/// below it refused as a regression; it is never signed anew. Returns true
/// for a replay.
async fn rerequest(client: &Client, r: &Received, mark: Hrs) -> bool {
    match r.req.send(client).await {
        Ok(a) => {
            assert_eq!(
                a.outcome,
                v1::Outcome::Replayed as i32,
                "re-request after restart was signed anew: {r:?} -> {a:?}"
            );
            assert_eq!(r.req.hrs(), mark, "replayed below the mark: {r:?}");
            assert_eq!(a.signature, r.answer.signature, "{r:?}");
            assert_eq!(a.sign_bytes, r.answer.sign_bytes, "{r:?}");
            true
        }
        Err(ClientError::Refused(refusal)) => {
            assert!(
                r.req.hrs() < mark,
                "refused at the mark {mark:?}: {refusal:?} {r:?}"
            );
            assert!(
                refusal.tag.ends_with("-regression"),
                "{refusal:?} for {r:?}"
            );
            false
        }
        Err(e) => panic!("re-request of {r:?} failed: {e}"),
    }
}

/// Restarts the signer and re-sends every distinct request that was ever
/// answered with a signature (see [`rerequest`]); then stops it with
/// SIGTERM, which must exit cleanly. Returns (distinct, replayed).
pub(super) async fn recheck_after_restart(
    signer: &SignerDir,
    tally: &Tally,
    marks: &BTreeMap<String, Hrs>,
) -> (usize, usize) {
    let (mut child, addr, _) = signer.start(READY_TIMEOUT).await;
    let mut seen = HashSet::new();
    let unique: Vec<Received> = tally
        .received
        .iter()
        .filter(|r| seen.insert(r.req.key()))
        .cloned()
        .collect();
    let chunk = unique.len().div_ceil(REPLICAS).max(1);
    let checks: Vec<_> = unique
        .chunks(chunk)
        .enumerate()
        .map(|(i, part)| {
            let part = part.to_vec();
            let marks = marks.clone();
            let identity = format!("replica-{}", i + 1);
            let client = signer.client(&addr, &identity, Duration::from_secs(5));
            tokio::spawn(async move {
                let mut replayed = 0;
                for r in &part {
                    replayed += usize::from(rerequest(&client, r, marks[r.req.chain()]).await);
                }
                replayed
            })
        })
        .collect();
    let mut replayed = 0;
    for check in checks {
        replayed += tokio::time::timeout(Duration::from_secs(120), check)
            .await
            .expect("re-requests finish")
            .expect("a re-request check failed");
    }
    kill(Pid::from_raw(child.pid()), Signal::SIGTERM).unwrap();
    let status = tokio::task::block_in_place(|| child.wait(Duration::from_secs(20)));
    assert!(
        status.success(),
        "graceful stop failed ({status}):\n{}",
        signer.log_tail()
    );
    (unique.len(), replayed)
}
