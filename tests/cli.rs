//! The `tidemark` binary, driven as an operator would: `init`, `keys list`,
//! `state show|export|import`, `audit verify`, `demo --json`, and a real
//! `serve` process that signs, reports readiness and metrics, stops on
//! SIGTERM and replays after a restart.
//!
//! Every child process is bounded in time and killed if a test fails.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tidemark_cli::embedded::{DEMO_CHAIN, Embedded, VALIDATOR_KEY};
use tidemark_client::{ClientError, v1};

const BIN: &str = env!("CARGO_BIN_EXE_tidemark");
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// A command of the binary, with no configuration leaking in from the
/// environment.
fn command(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_remove("TIDEMARK_CONFIG")
        .env_remove("TIDEMARK_PASSPHRASE")
        .env("RUST_LOG", "info");
    c
}

/// Runs the binary to completion (at most [`COMMAND_TIMEOUT`]).
fn run(args: &[&str]) -> Output {
    let child = command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tidemark");
    let pid = Pid::from_raw(child.id() as i32);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(COMMAND_TIMEOUT) {
        Ok(output) => output.expect("wait for tidemark"),
        Err(_) => {
            let _ = kill(pid, Signal::SIGKILL);
            panic!("tidemark {args:?} did not finish in {COMMAND_TIMEOUT:?}");
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs the binary and requires success; returns its stdout.
fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "tidemark {args:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs the binary and requires failure; returns its stderr.
fn fails(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        !out.status.success(),
        "tidemark {args:?} succeeded\nstdout: {}",
        text(&out.stdout)
    );
    text(&out.stderr)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// `tidemark init` with cheap key derivation into `dir`.
fn init(dir: &Path, extra: &[&str]) {
    let mut args = vec![
        "init",
        "--dir",
        s(dir),
        "--replicas",
        "2",
        "--insecure-fast-kdf",
    ];
    args.extend_from_slice(extra);
    ok(&args);
}

fn config(dir: &Path) -> String {
    s(&dir.join("tidemark.toml")).to_owned()
}

/// Every file under `dir`: its bytes and mode.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path.clone());
                out.insert(path, (Vec::new(), meta.permissions().mode()));
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(path, (bytes, meta.permissions().mode()));
            }
        }
    }
    out
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn init_writes_a_signer_with_private_key_files_and_never_runs_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("signer");
    init(&dir, &[]);

    for f in ["tidemark.toml", "state.db", "keystore.json", "passphrase"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let tls = dir.join("tls");
    for stem in ["ca", "server", "replica-1", "replica-2", "admin"] {
        assert!(tls.join(format!("{stem}.crt")).is_file(), "{stem}.crt");
        assert!(tls.join(format!("{stem}.key")).is_file(), "{stem}.key");
    }
    assert!(!tls.join("replica-3.crt").exists());
    // Secrets are readable by the owner only.
    assert_eq!(mode(&dir.join("keystore.json")), 0o600);
    assert_eq!(mode(&dir.join("passphrase")), 0o600);
    let mut keys = 0;
    for entry in std::fs::read_dir(&tls).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "key") {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
            keys += 1;
        }
    }
    assert_eq!(keys, 5);

    // A second init into the same directory fails and touches nothing.
    let before = snapshot(&dir);
    let stderr = fails(&[
        "init",
        "--dir",
        s(&dir),
        "--replicas",
        "3",
        "--insecure-fast-kdf",
    ]);
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(
        snapshot(&dir),
        before,
        "the second init changed the directory"
    );
    assert!(!tls.join("replica-3.crt").exists());
}

#[test]
fn keys_list_shows_the_validator_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("signer");
    init(&dir, &[]);
    let out = ok(&["keys", "list", "-c", &config(&dir)]);
    let line = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(VALIDATOR_KEY))
        .unwrap_or_else(|| panic!("no validator key in:\n{out}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[1], "ed25519", "{line}");
    assert_eq!(hex::decode(fields[2]).unwrap().len(), 32, "{line}");
}

#[test]
fn keys_new_adds_keys_that_survive_reopening_and_refuses_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("signer");
    init(&dir, &[]);
    let c = config(&dir);
    ok(&["keys", "new", "-c", &c, "--name", "second"]);
    ok(&[
        "keys",
        "new",
        "-c",
        &c,
        "--name",
        "wallet",
        "--scheme",
        "secp256k1",
        "--path",
        "m/84'/0'/0'/0/0",
    ]);
    let err = fails(&["keys", "new", "-c", &c, "--name", "second"]);
    assert!(
        err.contains("second"),
        "a duplicate name is refused by name: {err}"
    );
    let err = fails(&[
        "keys",
        "new",
        "-c",
        &c,
        "--name",
        "k",
        "--scheme",
        "secp256k1",
    ]);
    assert!(err.contains("--path"), "{err}");

    let out = ok(&["keys", "list", "-c", &c]);
    let key = |name: &str| {
        let line = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no key {name} in:\n{out}"));
        line.split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(key("second")[1], "ed25519");
    let wallet = key("wallet");
    assert_eq!(wallet[1], "secp256k1");
    assert_eq!(
        hex::decode(&wallet[2]).unwrap().len(),
        33,
        "compressed secp256k1 key"
    );
    assert_eq!(key(VALIDATOR_KEY)[1], "ed25519");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn certs_issue_makes_a_client_certificate_the_signer_authenticates() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("signer");
    init(&dir, &[]);
    let c = config(&dir);
    ok(&["certs", "issue", "-c", &c, "--name", "replica-9"]);
    assert_eq!(mode(&dir.join("tls").join("replica-9.key")), 0o600);
    let err = fails(&["certs", "issue", "-c", &c, "--name", "replica-9"]);
    assert!(err.contains("already exists"), "{err}");

    // TLS accepts the new certificate (it chains to the signer's CA and
    // names replica-9); the ACL then denies it, as it has no grant yet.
    let signer = Embedded::start_existing(&dir).await.unwrap();
    let client = signer.client("replica-9").unwrap();
    let mut vote = v1::SignVoteRequest {
        chain_id: DEMO_CHAIN.into(),
        key_id: VALIDATOR_KEY.into(),
        vote: None,
    };
    vote.vote = Some(v1::Vote {
        r#type: v1::VoteType::Prevote as i32,
        height: 1,
        round: 0,
        block_id: None,
        timestamp: Some(v1::Timestamp {
            seconds: 1,
            nanos: 0,
        }),
        extension: Vec::new(),
    });
    match client.sign_vote(vote).await {
        Err(ClientError::PermissionDenied(m)) => assert!(m.contains("replica-9"), "{m}"),
        other => panic!("expected an ACL denial for replica-9, got {other:?}"),
    }
    signer.stop().await;
}

/// The marks of `state export`, as (object, mark) pairs.
fn exported(dir: &Path) -> Vec<(String, serde_json::Value)> {
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["state", "export", "-c", &config(dir)])).unwrap();
    assert_eq!(json["format"], "tidemark-marks-v1");
    json["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["object"].as_str().unwrap().to_owned(), o["mark"].clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn state_import_only_raises_marks_and_export_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("signer");
    init(&dir, &[]);
    let cfg = config(&dir);
    let show = ok(&["state", "show", "-c", &cfg]);
    assert!(show.contains("0 objects"), "{show}");

    // CometBFT's priv_validator_state.json without sign bytes.
    let pvs = tmp.path().join("priv_validator_state.json");
    std::fs::write(&pvs, r#"{"height":"100","round":0,"step":3}"#).unwrap();
    let import = |file: &Path| {
        ok(&[
            "state",
            "import",
            "-c",
            &cfg,
            "--format",
            "cometbft",
            "--chain-id",
            "c",
            "--key",
            VALIDATOR_KEY,
            s(file),
        ])
    };
    let out = import(&pvs);
    assert!(out.contains("raised"), "{out}");
    let show = ok(&["state", "show", "-c", &cfg]);
    assert!(show.contains("consensus/c/validator/cometbft"), "{show}");
    assert!(show.contains("height=100 round=0 step=3"), "{show}");
    assert!(show.contains("1 objects"), "{show}");
    let mark = serde_json::json!([["height", 100], ["round", 0], ["step", 3]]);
    assert_eq!(
        exported(&dir),
        vec![("consensus/c/validator/cometbft".to_owned(), mark.clone())]
    );

    // A lower mark changes nothing.
    let lower = tmp.path().join("lower.json");
    std::fs::write(&lower, r#"{"height":"50","round":2,"step":3}"#).unwrap();
    let out = import(&lower);
    assert!(out.contains("unchanged"), "{out}");
    assert!(!out.contains("raised"), "{out}");
    let show = ok(&["state", "show", "-c", &cfg]);
    assert!(show.contains("height=100 round=0 step=3"), "{show}");

    // Export, then import into a second signer: the same marks.
    let doc = tmp.path().join("marks.json");
    ok(&["state", "export", "-c", &cfg, "--out", s(&doc)]);
    let second = tmp.path().join("second");
    init(&second, &[]);
    let out = ok(&[
        "state",
        "import",
        "-c",
        &config(&second),
        "--format",
        "tidemark",
        s(&doc),
    ]);
    assert!(out.contains("raised"), "{out}");
    assert_eq!(exported(&second), exported(&dir));

    // The imported mark guards the running signer: below it is stale, at
    // it nothing can be signed (its sign bytes are unknown), above it signs.
    let signer = Embedded::start_existing(&second).await.unwrap();
    let client = signer.client("replica-1").unwrap();
    let at = |height: i64| {
        let mut v = support::vote(v1::VoteType::Precommit, height, 0, Some(1), 1_700_000_000);
        v.chain_id = "c".into();
        v
    };
    let tag = |r: Result<v1::SignVoteResponse, ClientError>| match r {
        Err(ClientError::Refused(r)) => r.tag,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(tag(client.sign_vote(at(99)).await), "hwm-height-regression");
    assert_eq!(tag(client.sign_vote(at(100)).await), "hwm-double-sign");
    let signed = client.sign_vote(at(101)).await.unwrap();
    assert_eq!(signed.outcome, v1::Outcome::Signed as i32);
    signer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_verify_passes_on_a_good_store_and_fails_after_tampering() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("signer");
    init(&dir, &[]);
    let cfg = config(&dir);
    // Three decisions, three records: signed, replayed, refused.
    let signer = Embedded::start_existing(&dir).await.unwrap();
    let client = signer.client("replica-1").unwrap();
    let vote = support::vote(v1::VoteType::Prevote, 3, 0, Some(1), 1_700_000_003);
    client.sign_vote(vote.clone()).await.unwrap();
    client.sign_vote(vote).await.unwrap();
    let stale = support::vote(v1::VoteType::Prevote, 2, 0, Some(1), 1_700_000_002);
    client.sign_vote(stale).await.unwrap_err();
    signer.stop().await;

    let out = ok(&["audit", "verify", "-c", &cfg]);
    assert!(out.contains("audit log verified: 3 records"), "{out}");

    // Rewrite who asked for the second record.
    {
        let db = rusqlite::Connection::open(dir.join("state.db")).unwrap();
        let changed = db
            .execute("UPDATE audit SET client = 'mallory' WHERE seq = 2", [])
            .unwrap();
        assert_eq!(changed, 1);
    }
    let out = run(&["audit", "verify", "-c", &cfg]);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    // Either the store refuses to open over a broken chain or the verifier
    // reports it; both name the altered record.
    let stderr = text(&out.stderr).to_lowercase();
    assert!(stderr.contains("not verify"), "{stderr}");
    assert!(stderr.contains("record 2"), "{stderr}");
}

#[test]
fn serve_refuses_a_config_with_an_unknown_field_and_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("signer");
    init(&dir, &[]);
    let cfg = config(&dir);
    let original = std::fs::read_to_string(&cfg).unwrap();
    assert_eq!(original.matches("[store]\n").count(), 1);
    std::fs::write(
        &cfg,
        original.replace("[store]\n", "[store]\nsynchronous = \"off\"\n"),
    )
    .unwrap();
    let stderr = fails(&["serve", "-c", &cfg]);
    assert!(stderr.contains("synchronous"), "{stderr}");
    assert!(stderr.contains(&cfg), "{stderr}");
}

#[test]
fn serve_without_its_store_fails_and_never_creates_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("signer");
    init(&dir, &[]);
    let store = dir.join("state.db");
    std::fs::remove_file(&store).unwrap();
    for side in ["state.db-wal", "state.db-shm"] {
        let _ = std::fs::remove_file(dir.join(side));
    }
    let stderr = fails(&["serve", "-c", &config(&dir)]);
    assert!(stderr.contains("state.db"), "{stderr}");
    assert!(!store.exists(), "serve created a fresh store");
    fails(&["state", "show", "-c", &config(&dir)]);
    assert!(!store.exists(), "state show created a fresh store");
}

#[test]
fn demo_json_reports_signatures_replays_refusals_and_no_double_sign() {
    let out = ok(&["demo", "--json"]);
    let report: serde_json::Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("demo --json printed no JSON object ({e}):\n{out}"));
    for field in ["signed", "replayed", "refused"] {
        let n = report[field]
            .as_u64()
            .unwrap_or_else(|| panic!("{field} is not an integer: {report}"));
        assert!(n > 0, "{field} is 0: {report}");
    }
    assert_eq!(report["double_signs"].as_u64(), Some(0), "{report}");
    let by_tag = report["refused_by_tag"]
        .as_object()
        .unwrap_or_else(|| panic!("refused_by_tag is not an object: {report}"));
    assert!(by_tag.contains_key("hwm-double-sign"), "{report}");
    let total: u64 = by_tag.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(Some(total), report["refused"].as_u64());
}

// --- a real `serve` process --------------------------------------------------

#[path = "cli/serve.rs"]
mod serve;
