//! The kill test: `tidemark serve` is SIGKILLed at random instants while
//! replicas hammer it with conflicting and identical votes, then restarted,
//! again and again. An independent checker then proves over everything any
//! replica ever received that
//!
//! - every signature verifies against the validator key over its sign
//!   bytes, and those are the canonical bytes of what the replica asked;
//! - no (chain, height, round, step) was ever signed over two different
//!   sign bytes, and none was answered `signed` twice (a second `signed`
//!   would mean the mark of the first was lost);
//! - no released signature's mark is missing after the kills: the store
//!   left by the last SIGKILL holds, for every chain, a mark at or above
//!   the highest position any replica got a signature for, and a restarted
//!   signer answers every request ever answered once more with the very
//!   same signature (at the mark) or a regression refusal (below it),
//!   never with a new signature.
//!
//! `TIDEMARK_KILL_CYCLES` sets the number of kill cycles (default 50),
//! `TIDEMARK_KILL_SEED` the RNG seed (default: from the clock, printed).

// Test code: a failed expectation is a panic with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::{Signature as EdSignature, VerifyingKey};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use support::{SignerDir, wire};
use tidemark_client::{Client, ClientError, v1};
use tidemark_consensus::cometbft::canonical;
use tidemark_consensus::{CometState, Proposal, Timestamp};
use tidemark_core::{ChainId, StateStore as _};
use tidemark_store::SqliteStore;

const CHAINS: [&str; 3] = ["kill-chain-a", "kill-chain-b", "kill-chain-c"];
const REPLICAS: usize = 4;
const KEY: &str = "validator";
/// How long one kill cycle may wait for the signer to answer after start.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// (height, round, step) with step proposal 1 < prevote 2 < precommit 3.
type Hrs = (i64, i32, u8);

/// A request exactly as a replica sent it.
#[derive(Debug, Clone, PartialEq)]
enum Req {
    Vote(v1::SignVoteRequest),
    Proposal(v1::SignProposalRequest),
}

/// What came back with a signature.
#[derive(Debug, Clone)]
struct Answer {
    outcome: i32,
    signature: Vec<u8>,
    extension_signature: Vec<u8>,
    timestamp: Option<v1::Timestamp>,
    sign_bytes: Vec<u8>,
}

/// One signature a replica received.
#[derive(Debug, Clone)]
struct Received {
    cycle: usize,
    replica: usize,
    req: Req,
    answer: Answer,
}

impl Req {
    fn chain(&self) -> &str {
        match self {
            Req::Vote(r) => &r.chain_id,
            Req::Proposal(r) => &r.chain_id,
        }
    }

    fn hrs(&self) -> Hrs {
        match self {
            Req::Vote(r) => {
                let v = r.vote.as_ref().expect("votes are built with a body");
                let step = if v.r#type == v1::VoteType::Prevote as i32 {
                    2
                } else {
                    3
                };
                (v.height, v.round, step)
            }
            Req::Proposal(r) => {
                let p = r
                    .proposal
                    .as_ref()
                    .expect("proposals are built with a body");
                (p.height, p.round, 1)
            }
        }
    }

    /// A key that identifies the request byte for byte.
    fn key(&self) -> String {
        format!("{self:?}")
    }

    async fn send(&self, client: &Client) -> Result<Answer, ClientError> {
        match self {
            Req::Vote(r) => client.sign_vote(r.clone()).await.map(|a| Answer {
                outcome: a.outcome,
                signature: a.signature,
                extension_signature: a.extension_signature,
                timestamp: a.timestamp,
                sign_bytes: a.sign_bytes,
            }),
            Req::Proposal(r) => client.sign_proposal(r.clone()).await.map(|a| Answer {
                outcome: a.outcome,
                signature: a.signature,
                extension_signature: Vec::new(),
                timestamp: a.timestamp,
                sign_bytes: a.sign_bytes,
            }),
        }
    }
}

/// The canonical sign bytes of `req` with `timestamp`, and for a non-nil
/// precommit its vote-extension sign bytes.
fn expected_bytes(req: &Req, timestamp: Timestamp) -> (Vec<u8>, Option<Vec<u8>>) {
    let chain = ChainId::new(req.chain()).expect("test chain ids are valid");
    match req {
        Req::Vote(r) => {
            let vote = wire::vote(
                r.vote.as_ref().expect("votes are built with a body"),
                timestamp,
            );
            let ext = vote
                .signs_extension()
                .then(|| canonical::vote_extension_sign_bytes(&chain, &vote));
            (canonical::vote_sign_bytes(&chain, &vote), ext)
        }
        Req::Proposal(r) => {
            let p = r
                .proposal
                .as_ref()
                .expect("proposals are built with a body");
            let proposal = Proposal {
                height: p.height,
                round: p.round,
                pol_round: p.pol_round,
                block_id: wire::block_id(p.block_id.as_ref().expect("proposals carry a block")),
                timestamp,
            };
            (canonical::proposal_sign_bytes(&chain, &proposal), None)
        }
    }
}

fn block_id(height: i64, which: u8) -> v1::BlockId {
    let mut hash = vec![which; 32];
    hash[..8].copy_from_slice(&height.to_be_bytes());
    v1::BlockId {
        hash,
        part_set_header: Some(v1::PartSetHeader {
            total: 1 + u32::from(which),
            hash: vec![which ^ 0x5a; 32],
        }),
    }
}

/// What the replicas share: per chain the highest height any of them got
/// a signature for, and the last request one of them sent.
struct Shared {
    frontier: [AtomicI64; 3],
    last: Mutex<[Option<Req>; 3]>,
}

/// The next request of a replica: a quarter of the time another replica's
/// last request, as is (an identical repeat) or one second later (differs
/// only in the timestamp); otherwise a random request near the chain's
/// frontier: mostly at or just above it, so replicas race at one position
/// with different blocks, sometimes just below it (stale).
fn next_request(rng: &mut StdRng, shared: &Shared) -> Req {
    let c = rng.gen_range(0..CHAINS.len());
    if rng.gen_range(0..4) == 0
        && let Some(mut req) = shared.last.lock().unwrap()[c].clone()
    {
        if rng.gen_range(0..3) == 0 {
            let t = match &mut req {
                Req::Vote(r) => r.vote.as_mut().and_then(|v| v.timestamp.as_mut()),
                Req::Proposal(r) => r.proposal.as_mut().and_then(|p| p.timestamp.as_mut()),
            };
            if let Some(t) = t {
                t.seconds += 1;
            }
        }
        return req;
    }
    let req = random_request(rng, c, shared.frontier[c].load(Ordering::Relaxed));
    shared.last.lock().unwrap()[c] = Some(req.clone());
    req
}

fn random_request(rng: &mut StdRng, c: usize, top: i64) -> Req {
    let height = (top + [-1, 0, 0, 0, 1, 1, 1][rng.gen_range(0..7)]).max(1);
    let round = [0, 0, 0, 1][rng.gen_range(0..4)];
    let which = rng.gen_range(0..3u8);
    let timestamp = Some(v1::Timestamp {
        seconds: 1_700_000_000 + height * 10,
        nanos: 0,
    });
    let kind = rng.gen_range(0..100);
    if kind < 15 {
        Req::Proposal(v1::SignProposalRequest {
            chain_id: CHAINS[c].into(),
            key_id: KEY.into(),
            proposal: Some(v1::Proposal {
                height,
                round,
                pol_round: -1,
                block_id: Some(block_id(height, which)),
                timestamp,
            }),
        })
    } else {
        let precommit = kind >= 55;
        // One in four votes is nil; a non-nil precommit carries an extension.
        let block = (rng.gen_range(0..4) != 0).then(|| block_id(height, which));
        let extension = if precommit && block.is_some() {
            format!("ext-{height}-{which}").into_bytes()
        } else {
            Vec::new()
        };
        Req::Vote(v1::SignVoteRequest {
            chain_id: CHAINS[c].into(),
            key_id: KEY.into(),
            vote: Some(v1::Vote {
                r#type: if precommit {
                    v1::VoteType::Precommit
                } else {
                    v1::VoteType::Prevote
                } as i32,
                height,
                round,
                block_id: block,
                timestamp,
                extension,
            }),
        })
    }
}

/// What the replicas saw, over all cycles.
#[derive(Default)]
struct Tally {
    received: Vec<Received>,
    refused: BTreeMap<String, u64>,
    /// Requests in flight when the signer was killed, by error.
    killed_in_flight: BTreeMap<String, u64>,
    /// Requests retried after a restart because the kill cut them off.
    retried: u64,
    requests: u64,
}

impl Tally {
    fn replayed(&self) -> usize {
        self.received
            .iter()
            .filter(|r| r.answer.outcome == v1::Outcome::Replayed as i32)
            .count()
    }
}

fn error_kind(e: &ClientError) -> String {
    match e {
        ClientError::Unavailable(_) => "unavailable".into(),
        ClientError::DeadlineExceeded(_) => "deadline-exceeded".into(),
        ClientError::Other { code, .. } => format!("{code:?}"),
        other => format!("{other}"),
    }
}

const EXPECTED_TAGS: [&str; 4] = [
    "hwm-height-regression",
    "hwm-round-regression",
    "hwm-step-regression",
    "hwm-double-sign",
];

/// One replica for one cycle. It first retries `retry` (its request the
/// previous kill cut off, as a real replica would after reconnecting),
/// then sends requests until the signer is killed, recording every answer.
/// Returns the request the kill cut off. Any error before the kill fails
/// the test.
struct Replica {
    cycle: usize,
    index: usize,
    client: Client,
    rng: StdRng,
    shared: Arc<Shared>,
    killed: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
}

impl Replica {
    async fn run(mut self, mut retry: Option<Req>) -> Option<Req> {
        loop {
            let retried = retry.is_some();
            let req = retry
                .take()
                .unwrap_or_else(|| next_request(&mut self.rng, &self.shared));
            let result = req.send(&self.client).await;
            let mut t = self.tally.lock().unwrap();
            t.requests += 1;
            t.retried += u64::from(retried);
            match result {
                Ok(answer) => {
                    let c = CHAINS.iter().position(|c| *c == req.chain()).unwrap();
                    self.shared.frontier[c].fetch_max(req.hrs().0, Ordering::Relaxed);
                    t.received.push(Received {
                        cycle: self.cycle,
                        replica: self.index,
                        req,
                        answer,
                    });
                }
                Err(ClientError::Refused(r)) => {
                    assert!(
                        EXPECTED_TAGS.contains(&r.tag.as_str()),
                        "unexpected refusal {r:?} for {req:?}"
                    );
                    *t.refused.entry(r.tag).or_default() += 1;
                }
                Err(e) if self.killed.load(Ordering::Acquire) => {
                    *t.killed_in_flight.entry(error_kind(&e)).or_default() += 1;
                    return Some(req);
                }
                Err(e) => panic!(
                    "cycle {} replica {}: {e} while the signer was up, for {req:?}",
                    self.cycle, self.index
                ),
            }
            if self.killed.load(Ordering::Acquire) {
                return None;
            }
        }
    }
}

fn cycles() -> usize {
    std::env::var("TIDEMARK_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
        .max(1)
}

fn seed() -> u64 {
    std::env::var("TIDEMARK_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

/// What the kill cycles did.
struct Run {
    tally: Tally,
    kills_under_load: usize,
    slowest_start: Duration,
}

/// `cycles` times: start the signer, let the replicas hammer it, SIGKILL it
/// 5 to 150 ms after it answered.
async fn kill_cycles(
    signer: &SignerDir,
    public_key: &[u8],
    cycles: usize,
    rng: &mut StdRng,
) -> Run {
    let shared = Arc::new(Shared {
        frontier: std::array::from_fn(|_| AtomicI64::new(1)),
        last: Mutex::new(std::array::from_fn(|_| None)),
    });
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut cut_off: Vec<Option<Req>> = vec![None; REPLICAS];
    let mut kills_under_load = 0;
    let mut slowest_start = Duration::ZERO;

    for cycle in 0..cycles {
        let (mut child, addr, startup) = signer.start(READY_TIMEOUT).await;
        slowest_start = slowest_start.max(startup);
        if cycle == 0 {
            let admin = signer.client(&addr, "admin", Duration::from_secs(5));
            let keys = admin.list_keys().await.unwrap();
            let listed = keys.keys.iter().find(|k| k.key_id == KEY);
            let listed = listed.expect("the validator key is listed");
            assert_eq!(
                listed.public_key, public_key,
                "ListKeys disagrees with init"
            );
        }
        let killed = Arc::new(AtomicBool::new(false));
        let received_before = tally.lock().unwrap().received.len();
        let tasks: Vec<_> = (0..REPLICAS)
            .map(|index| {
                let replica = Replica {
                    cycle,
                    index,
                    client: signer.client(
                        &addr,
                        &format!("replica-{}", index + 1),
                        Duration::from_secs(3),
                    ),
                    rng: StdRng::seed_from_u64(rng.r#gen()),
                    shared: shared.clone(),
                    killed: killed.clone(),
                    tally: tally.clone(),
                };
                tokio::spawn(replica.run(cut_off[index].take()))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(rng.gen_range(5..=150))).await;
        if let Some(status) = child.exited() {
            panic!(
                "the signer died by itself ({status}):\n{}",
                signer.log_tail()
            );
        }
        killed.store(true, Ordering::Release);
        kill(Pid::from_raw(child.pid()), Signal::SIGKILL).expect("SIGKILL the signer");
        let status = tokio::task::block_in_place(|| child.wait(Duration::from_secs(10)));
        assert!(!status.success(), "a SIGKILLed signer cannot exit cleanly");
        for (index, task) in tasks.into_iter().enumerate() {
            cut_off[index] = tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("a replica stops after the kill")
                .expect("a replica failed");
        }
        let received = tally.lock().unwrap().received.len() - received_before;
        if received > 0 && cut_off.iter().any(Option::is_some) {
            kills_under_load += 1;
        }
    }
    Run {
        tally: Arc::try_unwrap(tally)
            .ok()
            .expect("replicas are done")
            .into_inner()
            .unwrap(),
        kills_under_load,
        slowest_start,
    }
}

#[path = "kill/checker.rs"]
mod checker;

use checker::{check_positions, check_signatures, check_store_after_kill, recheck_after_restart};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_load_never_loses_a_released_mark_or_double_signs() {
    let started = Instant::now();
    let cycles = cycles();
    let seed = seed();
    println!("kill test: {cycles} cycles, seed {seed} (set TIDEMARK_KILL_SEED to replay)");
    let mut rng = StdRng::seed_from_u64(seed);
    let temp = tempfile::Builder::new()
        .prefix("tidemark-kill-")
        .tempdir()
        .unwrap();
    let signer = SignerDir::init(temp.path(), REPLICAS);
    let public_key = signer.validator_public_key.clone();

    let run = kill_cycles(&signer, &public_key, cycles, &mut rng).await;
    let tally = &run.tally;
    assert!(
        run.kills_under_load * 2 >= cycles,
        "only {} of {cycles} kills cut off requests after signatures were released",
        run.kills_under_load
    );
    check_signatures(tally, &public_key);
    let (at, positions_signed) = check_positions(tally);
    let db = signer.dir.join("state.db");
    let marks = tokio::task::block_in_place(|| check_store_after_kill(&db, tally, &at));
    let (distinct, replayed_again) = recheck_after_restart(&signer, tally, &marks).await;

    let mut per_cycle = vec![0usize; cycles];
    let mut per_replica = [0usize; REPLICAS];
    for r in &tally.received {
        per_cycle[r.cycle] += 1;
        per_replica[r.replica] += 1;
    }
    per_cycle.sort_unstable();
    let replayed = tally.replayed();
    println!("kill test summary (seed {seed}):");
    println!(
        "  cycles                {cycles} ({} killed with requests in flight after signing)",
        run.kills_under_load
    );
    println!(
        "  requests              {} ({} retried after a kill)",
        tally.requests, tally.retried
    );
    println!(
        "  signatures received   {} ({} signed, {replayed} replayed) at {positions_signed} positions",
        tally.received.len(),
        tally.received.len() - replayed
    );
    println!(
        "  per cycle             min {} median {} max {}; per replica {per_replica:?}",
        per_cycle[0],
        per_cycle[cycles / 2],
        per_cycle[cycles - 1]
    );
    println!("  refusals              {:?}", tally.refused);
    println!("  cut off by kills      {:?}", tally.killed_in_flight);
    println!("  marks after last kill {marks:?}");
    println!(
        "  after restart         {distinct} distinct requests re-sent: {replayed_again} replayed identically, {} refused as regressions, 0 signed anew",
        distinct - replayed_again
    );
    println!("  slowest start-up      {:?}", run.slowest_start);
    println!("  duration              {:?}", started.elapsed());
}
