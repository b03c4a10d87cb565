//! Fault tests under a running signer: a full disk, and a corrupt database
//! (while the signer runs, and before it starts).
//!
//! What the system does, as measured here and asserted below:
//!
//! - **Full disk** (a real tmpfs, filled to the last few hundred KB): the
//!   commit that does not fit fails, the request is answered
//!   `UNAVAILABLE` ("store cannot commit: store is full") with no
//!   signature, the mark is unchanged, the server keeps answering (admin
//!   `Status` says the store is unhealthy, gRPC health turns NOT_SERVING
//!   because its probe, a real 64 KB write, fails). Once space is freed,
//!   health turns SERVING again by itself, identical requests are replayed
//!   byte for byte and signing resumes; every acknowledged signature's mark
//!   is in the file after a restart.
//! - **Garbage over the database while the signer runs**: SQLite does not
//!   notice bytes changed under it. Requests whose pages are still in a
//!   connection's page cache are decided as before (cached pages are the
//!   pre-corruption truth, so this is safe); requests that read a damaged
//!   page are refused `UNAVAILABLE` ("store is corrupt"). No request is
//!   ever signed below a mark. The server stays up. After a stop, the
//!   signer refuses to start ("store is corrupt") and leaves the damaged
//!   file as it is: no empty store is created in its place. Garbage over
//!   the header page alone behaves the same.
//!   Readiness, however, stays "ready" (gRPC health SERVING, admin
//!   `store_healthy: true`) while requests fail as corrupt: the store's
//!   health check only looks at failed *writer* batches, and the
//!   corruption is met by reads. `a_running_signer_reports_not_ready_once_
//!   requests_hit_corruption` states the contract and fails until that is
//!   fixed in `tidemark-store`.
//! - **Garbage over the header or the middle of a stopped database**: both
//!   `Embedded::start_existing` and `tidemark serve` refuse to start (the
//!   binary exits non-zero with "store is corrupt" on stderr); the file is
//!   left byte for byte as it was; with the original bytes put back the
//!   signer starts and every mark is there.

// Test code: a failed expectation is a panic with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tidemark_cli::commands::init::{InitArgs, init};
use tidemark_cli::embedded::{Embedded, VALIDATOR_KEY};
use tidemark_client::{Client, ClientError, v1};
use tidemark_consensus::CometState;
use tidemark_core::{ChainId, Domain, KeyId, ObjectId, StateStore as _};
use tidemark_store::SqliteStore;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const CHAIN: &str = "faults-1";
const PAGE: u64 = 4096;

/// A prevote at `height` (round 0) on `chain` for block `block`.
fn vote(chain: &str, height: i64, block: u8) -> v1::SignVoteRequest {
    let mut r = support::vote(
        v1::VoteType::Prevote,
        height,
        0,
        Some(block),
        1_700_000_000 + height,
    );
    r.chain_id = chain.into();
    r
}

fn object(chain: &str) -> ObjectId {
    ObjectId::new(
        Domain::Consensus,
        ChainId::new(chain).unwrap(),
        KeyId::new(VALIDATOR_KEY).unwrap(),
        "cometbft",
    )
    .unwrap()
}

/// The stored (height, round, step) of `chain`, if any.
fn stored_hrs(store: &SqliteStore, chain: &str) -> Option<(i64, i32, u8)> {
    let stored = store.load(&object(chain)).unwrap()?;
    let state: CometState = serde_json::from_slice(&stored.state).unwrap();
    Some((state.height, state.round, state.step.number()))
}

/// `tidemark init` (the library form) into `dir`, with fast key derivation.
fn init_signer(dir: &Path) {
    let args = InitArgs {
        dir: dir.to_owned(),
        replicas: 2,
        listen: "127.0.0.1:0".into(),
        metrics_listen: "127.0.0.1:0".into(),
        server_names: vec!["localhost".into(), "127.0.0.1".into()],
        key: VALIDATOR_KEY.into(),
        insecure_fast_kdf: true,
        seed_file: None,
    };
    init(&args).expect("tidemark init");
}

fn client(e: &Embedded, identity: &str) -> Client {
    let options = e.client_options(identity).unwrap();
    Client::connect_lazy(options.with_deadline(Duration::from_secs(5))).unwrap()
}

/// The gRPC health status of the whole server, asked over the same mutual
/// TLS a replica uses.
async fn health(e: &Embedded) -> ServingStatus {
    let options = e.client_options("replica-1").unwrap();
    let channel =
        tidemark_tls::lazy_channel(&e.addr.to_string(), "localhost", options.tls).unwrap();
    let mut health = HealthClient::new(channel);
    let request = HealthCheckRequest {
        service: String::new(),
    };
    let answer = tokio::time::timeout(Duration::from_secs(5), health.check(request))
        .await
        .expect("health answers within 5 s")
        .expect("health check succeeds");
    ServingStatus::try_from(answer.into_inner().status).unwrap()
}

/// Polls gRPC health until it reports `want`; fails after `timeout`.
async fn wait_for_health(e: &Embedded, want: ServingStatus, timeout: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let got = health(e).await;
        if got == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < timeout,
            "health is still {got:?} after {timeout:?}, expected {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assert_store_error(e: &ClientError, what: &str) {
    match e {
        ClientError::Unavailable(m) => assert!(
            m.contains("store cannot commit") && m.contains(what),
            "expected the store to say {what:?}, got {m:?}"
        ),
        other => panic!("expected UNAVAILABLE ({what}), got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_refuses_signing_stays_up_and_recovers_without_losing_a_mark() {
    let Some(fs) = support::Tmpfs::mount("16m") else {
        return;
    };
    let dir = fs.path().join("signer");
    init_signer(&dir);
    let filler = fs.fill("filler", 256 * 1024);
    let e = Embedded::start_existing(&dir)
        .await
        .expect("the signer starts with 256 KB left");
    let replica = client(&e, "replica-1");

    // Sign new heights until the store cannot commit.
    let mut acked: Vec<(v1::SignVoteRequest, v1::SignVoteResponse)> = Vec::new();
    let mut failed = None;
    for height in 1..=20_000 {
        let request = vote(CHAIN, height, 1);
        match replica.sign_vote(request.clone()).await {
            Ok(answer) => {
                assert_eq!(answer.outcome, v1::Outcome::Signed as i32);
                acked.push((request, answer));
            }
            Err(err) => {
                assert_store_error(&err, "full");
                failed = Some(request);
                break;
            }
        }
    }
    let failed = failed.expect("the disk never filled up");
    let (last_request, last_answer) = acked.last().cloned().expect("signed before it filled");
    let last_height = last_request.vote.as_ref().unwrap().height;
    println!(
        "disk full after {} signatures: height {} refused",
        acked.len(),
        last_height + 1
    );
    // Nothing of the failed request was stored.
    assert_eq!(stored_hrs(&e.store, CHAIN), Some((last_height, 0, 2)));

    // The server is up: a later call is answered (by the server, not the
    // transport), the admin service says why, health turns NOT_SERVING.
    let err = replica.sign_vote(failed.clone()).await.unwrap_err();
    assert_store_error(&err, "full");
    let status = client(&e, "admin").status().await.unwrap();
    assert!(!status.store_healthy, "{status:?}");
    assert!(status.store_error.contains("full"), "{status:?}");
    let took = wait_for_health(&e, ServingStatus::NotServing, Duration::from_secs(5)).await;
    println!("health NOT_SERVING {took:?} after the disk filled");
    assert!(
        e.server.shared().ready().is_err(),
        "readyz must say not ready"
    );

    // Free the space: health comes back by itself, the last acknowledged
    // vote is replayed byte for byte, and signing resumes.
    std::fs::remove_file(&filler).unwrap();
    let took = wait_for_health(&e, ServingStatus::Serving, Duration::from_secs(5)).await;
    println!("health SERVING {took:?} after the space was freed");
    let again = replica.sign_vote(last_request.clone()).await.unwrap();
    assert_eq!(again.outcome, v1::Outcome::Replayed as i32);
    assert_eq!(again.signature, last_answer.signature);
    let resumed = replica.sign_vote(failed.clone()).await.unwrap();
    assert_eq!(resumed.outcome, v1::Outcome::Signed as i32);
    e.stop().await;

    // After a restart: the file holds the newest acknowledged mark, the
    // acknowledged signatures are replayed or refused as regressions, never
    // signed anew.
    let store = SqliteStore::open(dir.join("state.db")).unwrap();
    assert_eq!(stored_hrs(&store, CHAIN), Some((last_height + 1, 0, 2)));
    store.close();
    let e = Embedded::start_existing(&dir).await.unwrap();
    let replica = client(&e, "replica-1");
    let again = replica.sign_vote(failed).await.unwrap();
    assert_eq!(again.outcome, v1::Outcome::Replayed as i32);
    assert_eq!(again.signature, resumed.signature);
    for (request, _) in &acked {
        match replica.sign_vote(request.clone()).await {
            Err(ClientError::Refused(r)) => assert_eq!(r.tag, "hwm-height-regression"),
            other => panic!("an acknowledged vote below the mark got {other:?}"),
        }
    }
    e.stop().await;
}

/// Starts a signer in `dir`, signs heights 1..=3 on `chains` chains, and
/// stops it (a clean stop checkpoints everything into the main file).
async fn populated_signer(dir: &Path, chains: usize) -> Vec<(v1::SignVoteRequest, Vec<u8>)> {
    let e = Embedded::start_in(dir, 2).await.unwrap();
    let replica = client(&e, "replica-1");
    let mut last = Vec::new();
    for c in 0..chains {
        let chain = format!("chain-{c}");
        for height in 1..=3 {
            let answer = replica.sign_vote(vote(&chain, height, 1)).await.unwrap();
            if height == 3 {
                last.push((vote(&chain, height, 1), answer.signature));
            }
        }
    }
    e.stop().await;
    last
}

/// Writes garbage over pages `pages` of `db` (in place, fsync'd); returns
/// the garbage written per page.
fn damage(db: &Path, pages: impl Iterator<Item = u64>) -> Vec<(u64, Vec<u8>)> {
    let mut f = std::fs::OpenOptions::new().write(true).open(db).unwrap();
    let mut written = Vec::new();
    for page in pages {
        let bytes = support::garbage(page + 1, PAGE as usize);
        f.seek(SeekFrom::Start(page * PAGE)).unwrap();
        f.write_all(&bytes).unwrap();
        written.push((page, bytes));
    }
    f.sync_all().unwrap();
    written
}

fn page_count(db: &Path) -> u64 {
    std::fs::metadata(db).unwrap().len() / PAGE
}

/// Runs `tidemark serve` on `dir`'s config; it must exit non-zero within
/// 30 s. Returns its stderr.
fn serve_must_refuse(dir: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .arg("serve")
        .arg("-c")
        .arg(dir.join("tidemark.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
            assert!(
                !status.success(),
                "tidemark serve started on a corrupt store"
            );
            return stderr;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tidemark serve kept running on a corrupt store");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The store files next to `db`, to show that nothing was created beside
/// the damaged one.
fn store_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x.to_string_lossy().starts_with("db"))
        })
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_corrupt_store_is_refused_at_start_and_left_untouched() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("signer");
    let signed = populated_signer(&dir, 40).await;
    let db = dir.join("state.db");
    let pages = page_count(&db);
    assert!(pages >= 8, "the store spans {pages} pages");

    let cases: [(&str, Vec<u64>); 2] = [
        ("header page", vec![0]),
        ("middle of the file", (pages / 3..pages * 2 / 3).collect()),
    ];
    for (what, range) in cases {
        let original = std::fs::read(&db).unwrap();
        damage(&db, range.into_iter());
        let damaged = std::fs::read(&db).unwrap();
        let err = Embedded::start_existing(&dir)
            .await
            .expect_err("the signer started on a corrupt store");
        let message = format!("{err:#}");
        assert!(message.contains("corrupt"), "{what}: {message}");
        let stderr = tokio::task::block_in_place(|| serve_must_refuse(&dir));
        assert!(
            stderr.contains("corrupt"),
            "{what}: tidemark serve said {stderr:?}"
        );
        assert_eq!(
            std::fs::read(&db).unwrap(),
            damaged,
            "{what}: refusing the store changed the file"
        );
        assert!(
            store_files(&dir).iter().all(|f| f == &db
                || std::fs::metadata(f).map_or(true, |m| m.len() == 0)
                || f.to_string_lossy().ends_with("-shm")),
            "{what}: something was created beside the store: {:?}",
            store_files(&dir)
        );
        println!("{what}: refused: {message}");

        // Undo the damage: everything committed is there.
        std::fs::write(&db, &original).unwrap();
        let e = Embedded::start_existing(&dir).await.unwrap();
        let replica = client(&e, "replica-1");
        for (request, signature) in &signed {
            let again = replica.sign_vote(request.clone()).await.unwrap();
            assert_eq!(again.outcome, v1::Outcome::Replayed as i32);
            assert_eq!(&again.signature, signature);
        }
        e.stop().await;
    }
}

/// Damages every page but the header of a running signer's store, then
/// asks for every chain a regression (a different block one height below
/// the mark), the identical last vote and a new height. Returns the
/// answers of the new heights and the damage written.
async fn corrupt_under_a_running_signer(
    e: &Embedded,
    db: &Path,
    signed: &[(v1::SignVoteRequest, Vec<u8>)],
    header: bool,
) -> (
    Vec<Result<v1::SignVoteResponse, ClientError>>,
    Vec<(u64, Vec<u8>)>,
) {
    let replica = client(e, "replica-1");
    // Warm one chain's pages into the caches.
    replica.sign_vote(vote("chain-0", 4, 1)).await.unwrap();
    let written = if header {
        damage(db, 0..1)
    } else {
        damage(db, 1..page_count(db))
    };
    let mut new_heights = Vec::new();
    for (request, signature) in signed {
        let chain = request.chain_id.clone();
        match replica.sign_vote(vote(&chain, 2, 9)).await {
            Err(ClientError::Refused(r)) => assert_eq!(r.tag, "hwm-height-regression"),
            Err(err) => assert_store_error(&err, "corrupt"),
            Ok(a) => panic!("{chain}: signed below the mark on a corrupt store: {a:?}"),
        }
        match replica.sign_vote(request.clone()).await {
            Ok(a) => {
                assert_eq!(a.outcome, v1::Outcome::Replayed as i32);
                assert_eq!(&a.signature, signature);
            }
            Err(ClientError::Refused(r)) if chain == "chain-0" => {
                assert_eq!(r.tag, "hwm-height-regression")
            }
            Err(err) => assert_store_error(&err, "corrupt"),
        }
        new_heights.push(replica.sign_vote(vote(&chain, 10, 1)).await);
    }
    (new_heights, written)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garbage_under_a_running_signer_is_refused_never_signed_below_a_mark() {
    for (what, header) in [
        ("every page but the header", false),
        ("the header page", true),
    ] {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("signer");
        let signed = populated_signer(&dir, 40).await;
        let db = dir.join("state.db");
        let e = Embedded::start_existing(&dir).await.unwrap();
        let (answers, written) = corrupt_under_a_running_signer(&e, &db, &signed, header).await;

        let served = answers.iter().filter(|a| a.is_ok()).count();
        for a in &answers {
            if let Err(err) = a {
                assert_store_error(err, "corrupt");
            }
        }
        println!(
            "garbage over {what} of a running signer: {} new heights refused as corrupt, {served} decided from cached pages",
            answers.len() - served
        );
        assert!(
            served < answers.len(),
            "{what}: no request noticed the corruption"
        );
        // The server is up and answers.
        let status = client(&e, "admin").status().await.unwrap();
        println!("  admin status: store_healthy {}", status.store_healthy);
        e.stop().await;

        // Restart: refused, and the damage is still there (a stop's
        // checkpoint copies back only the pages the WAL holds).
        let err = Embedded::start_existing(&dir)
            .await
            .expect_err("the signer restarted on a corrupt store");
        let message = format!("{err:#}");
        assert!(message.contains("corrupt"), "{what}: {message}");
        let now = std::fs::read(&db).unwrap();
        let intact = written
            .iter()
            .filter(|(page, bytes)| {
                now.get((*page * PAGE) as usize..((*page + 1) * PAGE) as usize) == Some(bytes)
            })
            .count();
        assert!(
            intact * 2 >= written.len(),
            "{what}: only {intact} of {} damaged pages are still as damaged: the file was rewritten",
            written.len()
        );
        println!("  restart refused: {message}");
    }
}

/// The contract of `/readyz` and gRPC health (`tidemark-server`'s `http`
/// module: "a signer whose ... database is corrupt is alive but not
/// ready"): once requests fail because the store is corrupt, the signer
/// must stop reporting ready, so an orchestrator routes replicas away.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_running_signer_reports_not_ready_once_requests_hit_corruption() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("signer");
    let signed = populated_signer(&dir, 40).await;
    let db = dir.join("state.db");
    let e = Embedded::start_existing(&dir).await.unwrap();
    let (answers, _) = corrupt_under_a_running_signer(&e, &db, &signed, false).await;
    assert!(
        answers.iter().any(Result::is_err),
        "no request noticed the corruption"
    );
    let m = e.store.metrics();
    println!(
        "requests failed as corrupt; the store's writer had {} failed batches of {}; check_health: {:?}",
        m.failed_batches,
        m.batches,
        e.server.shared().ready()
    );
    let took = wait_for_health(&e, ServingStatus::NotServing, Duration::from_secs(5)).await;
    println!("health NOT_SERVING {took:?} after requests failed as corrupt");
    assert!(
        e.server.shared().ready().is_err(),
        "readyz must say not ready"
    );
    e.stop().await;
}
