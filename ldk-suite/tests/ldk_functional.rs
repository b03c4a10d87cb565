//! Runs every functional test LDK exports (`lightning::get_xtests()`,
//! feature `_externalize_tests`) with each node's keys behind a Tidemark
//! server ([`TidemarkFactory`]), so Tidemark decides every channel
//! signature.
//!
//! One line per test (outcome, time, name; the reason when it failed),
//! then `passed/total`. A test that fails and is not in
//! [`EXPECTED_FAILURES`], a listed test that fails without the refusal it
//! is listed with, and a listed test that passes, each fail the run.
//!
//! Arguments filter tests by substring. Environment:
//! `TIDEMARK_SUITE_THREADS` (default 2) tests at once,
//! `TIDEMARK_SUITE_TIMEOUT_SECS` (default 300) before a test counts as
//! hung (failed; its thread is abandoned), `TIDEMARK_SUITE_LDK_LOG` a
//! file for what the tests print (LDK's test logger prints every log line
//! to stdout; by default it goes to /dev/null), `RUST_LOG` to add
//! Tidemark's logs (e.g. `tidemark_ldk=warn`) to that file.

#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use lightning::XTestItem;
use lightning::util::test_utils::SIGNER_FACTORY;
use tidemark_ldk_suite::{TestRecord, TidemarkFactory, set_current_record, shutdown_servers};

/// Tests that fail with Tidemark deciding, each with the reason. All but
/// the [`UNEXPLAINED`] ones are refusals Tidemark must make: the test asks
/// for a signature that could lose funds, or to sweep to a script that is
/// not the node's. A listed test must fail with its refusal's tag among
/// those the signer gave it; failing otherwise is unexpected. The
/// [`UNEXPLAINED`] ones fail without a refusal, for a reason still to be
/// found: they are bugs until explained.
const EXPECTED_FAILURES: &[(&str, Expected)] = &[
    ("test_bump_penalty_txn_on_revoked_htlcs", UNEXPLAINED),
    (
        "test_claim_on_remote_revoked_sizeable_push_msat",
        SWEEP_TO_OP_RETURN,
    ),
    (
        "test_claim_on_remote_sizeable_push_msat",
        SWEEP_TO_OP_RETURN,
    ),
    ("test_claim_sizeable_push_msat", SWEEP_TO_OP_RETURN),
    ("test_concurrent_monitor_claim", WATCHTOWER_CLOSED),
    ("test_counterparty_raa_skip_no_crash", TAMPERED_SECRET),
    ("test_dust_limit_fee_accounting", TAMPERED_SECRET),
    (
        "test_dynamic_spendable_outputs_local_htlc_success_tx",
        SWEEP_TO_OP_RETURN,
    ),
    (
        "test_dynamic_spendable_outputs_local_htlc_timeout_tx",
        SWEEP_TO_OP_RETURN,
    ),
    ("test_fee_spike_violation_fails_htlc", TAMPERED_SECRET),
    ("test_key_derivation_params", SWEEP_TO_OP_RETURN),
    ("test_multiple_package_conflicts", ZERO_FEE_COMMITMENTS),
    ("test_static_output_closing_tx", SWEEP_TO_OP_RETURN),
    (
        "test_static_spendable_outputs_justice_tx_revoked_commitment_tx",
        SWEEP_TO_OP_RETURN,
    ),
    (
        "test_static_spendable_outputs_justice_tx_revoked_htlc_success_tx",
        SWEEP_TO_OP_RETURN,
    ),
    (
        "test_static_spendable_outputs_justice_tx_revoked_htlc_timeout_tx",
        SWEEP_TO_OP_RETURN,
    ),
    (
        "test_static_spendable_outputs_preimage_tx",
        SWEEP_TO_OP_RETURN,
    ),
    (
        "test_static_spendable_outputs_timeout_tx",
        SWEEP_TO_OP_RETURN,
    ),
    (
        "test_tx_confirmed_skipping_blocks_immediate_broadcast",
        SWEEP_TO_OP_RETURN,
    ),
    ("test_update_err_monitor_lockdown", WATCHTOWER_CLOSED),
];

/// Fails in some runs only, on LDK's assertion about which revoked HTLC
/// transaction's output an aggregated penalty transaction spends first,
/// with no refusal by Tidemark; not understood yet (see docs/lightning.md,
/// "LDK's functional test suite against Tidemark"). Listed so that the
/// run stays a check of everything else; a pass is fine.
const UNEXPLAINED: Expected = Expected {
    tag: "",
    reason: "fails in some runs on LDK's assertion about the input order of an \
     aggregated penalty transaction, with no refusal by Tidemark; not understood yet",
};

/// Its variant with zero-fee commitments (`option_zero_fee_commitments`,
/// P2A anchors), a channel type the signer cannot rebuild: the setup is
/// refused `policy-channel-type` (logged by the adapter; that node's
/// refusals do not reach the test's record, so it is not checked here).
const ZERO_FEE_COMMITMENTS: Expected = Expected {
    tag: "",
    reason: "runs a variant on zero-fee-commitment (P2A) channels, a type the signer \
     cannot rebuild: policy-channel-type at setup",
};

/// `check_spendable_outputs!` sweeps every spendable output to a bare
/// OP_RETURN script: neither the node's wallet nor an allowlisted
/// destination.
const SWEEP_TO_OP_RETURN: Expected = Expected {
    tag: "policy-destination-not-allowed",
    reason: "sweeps its spendable outputs to a bare OP_RETURN script, not the \
     node's wallet nor allowlisted: policy-destination-not-allowed",
};

/// A watchtower copy of the channel monitor force-closes (signs the holder
/// commitment), then the node validates a newer holder commitment: a
/// replica would advance a channel another replica is closing with an
/// older state.
const WATCHTOWER_CLOSED: Expected = Expected {
    tag: "policy-channel-closed",
    reason: "a watchtower's copy of the monitor signs the holder commitment to \
     close, then the node advances the channel: policy-channel-closed",
};

/// The test lowers LDK's own signer state ("make the signer believe we
/// validated another commitment") to release the secret of the current
/// holder commitment for a hand-built revoke_and_ack.
const TAMPERED_SECRET: Expected = Expected {
    tag: "policy-holder-secret-early",
    reason: "releases the secret of the current holder commitment (LDK's signer \
     state tampered with to allow it): policy-holder-secret-early",
};

/// Why a listed test fails: the refusal it must get, and why.
#[derive(Clone, Copy)]
struct Expected {
    tag: &'static str,
    reason: &'static str,
}

/// What one test did.
enum Outcome {
    Passed,
    /// The test's panic (or the missing one), first line.
    Failed(String),
    TimedOut,
}

struct Report {
    name: &'static str,
    outcome: Outcome,
    elapsed: Duration,
    refusals: BTreeMap<String, u64>,
}

/// The runner's own output: the original stdout (fd 1 goes to the log).
static OUT: OnceLock<Mutex<File>> = OnceLock::new();

/// Prints a line of the report.
macro_rules! say {
    ($($arg:tt)*) => {{
        let line = format!($($arg)*);
        match OUT.get() {
            Some(out) => {
                let mut out = out.lock().unwrap_or_else(PoisonError::into_inner);
                let _ = writeln!(out, "{line}");
            }
            None => println!("{line}"),
        }
    }};
}

/// Sends what the tests print (fds 1 and 2) to `TIDEMARK_SUITE_LDK_LOG`
/// or /dev/null; the report keeps the original stdout.
fn divert_test_output() -> std::io::Result<()> {
    let report = File::from(nix::unistd::dup(std::io::stdout())?);
    let sink = match std::env::var_os("TIDEMARK_SUITE_LDK_LOG") {
        Some(path) => File::create(path)?,
        None => File::options().write(true).open("/dev/null")?,
    };
    std::io::stdout().flush()?;
    nix::unistd::dup2_stdout(&sink)?;
    nix::unistd::dup2_stderr(&sink)?;
    let _ = OUT.set(Mutex::new(report));
    Ok(())
}

thread_local! {
    /// The last panic message on a test thread (the hook keeps it instead
    /// of printing it).
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
    static ON_TEST_THREAD: RefCell<bool> = const { RefCell::new(false) };
}

fn main() -> ExitCode {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let threads = env_number("TIDEMARK_SUITE_THREADS", 2).max(1);
    let timeout = Duration::from_secs(env_number("TIDEMARK_SUITE_TIMEOUT_SECS", 300));
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    if let Err(e) = divert_test_output() {
        eprintln!("cannot divert the tests' output, it stays here: {e}");
    }
    install_panic_hook();
    SIGNER_FACTORY.set(Arc::new(TidemarkFactory::default()));

    let mut tests = lightning::get_xtests();
    tests.sort_by_key(|t| t.test_name);
    tests.retain(|t| filters.is_empty() || filters.iter().any(|f| t.test_name.contains(f)));
    let total = tests.len();
    say!("running {total} LDK functional tests against Tidemark ({threads} at once)");

    let started = Instant::now();
    let by_name: BTreeMap<&str, &'static XTestItem> =
        tests.iter().map(|t| (t.test_name, *t)).collect();
    let mut reports = run_all(tests, threads, timeout);
    retry_unexpected_failures(&mut reports, &by_name, timeout);
    let summary = summarize(&reports, total, filters.is_empty());
    say!("finished in {:.0}s", started.elapsed().as_secs_f64());

    if !reports
        .iter()
        .any(|r| matches!(r.outcome, Outcome::TimedOut))
    {
        shutdown_servers();
    }
    if summary {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Panics on test threads are kept for the report, not printed.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if ON_TEST_THREAD.with(|t| *t.borrow()) {
            let message = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("(non-string panic)");
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let first = message.lines().next().unwrap_or_default();
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{first}{at}")));
        } else {
            default(info);
        }
    }));
}

/// Runs each test that failed unexpectedly once more, alone: a test that
/// passes then is reported as flaky (`FLAKY`, with the first failure) and
/// does not fail the run; one that fails again stays a failure.
fn retry_unexpected_failures(
    reports: &mut [Report],
    by_name: &BTreeMap<&str, &'static XTestItem>,
    timeout: Duration,
) {
    for report in reports.iter_mut() {
        if !matches!(verdict(report), Verdict::Unexpected)
            || matches!(report.outcome, Outcome::Passed)
        {
            continue;
        }
        let Some(test) = by_name.get(report.name) else {
            continue;
        };
        let again = run_one(test, timeout);
        if matches!(again.outcome, Outcome::Passed) {
            let first = match &report.outcome {
                Outcome::Failed(why) => why.clone(),
                _ => "timed out".to_owned(),
            };
            say!(
                "FLAKY           {}: failed ({first}), passed on retry",
                report.name
            );
            *report = again;
        } else {
            say!("FAILED AGAIN    {}", report.name);
        }
    }
}

/// Runs the tests on `threads` dispatchers, each test on its own thread
/// (so a hung test is abandoned after `timeout`), printing each result as
/// it comes.
fn run_all(tests: Vec<&'static XTestItem>, threads: u64, timeout: Duration) -> Vec<Report> {
    let queue = Arc::new(Mutex::new(VecDeque::from(tests)));
    let (tx, rx) = mpsc::channel::<Report>();
    for _ in 0..threads {
        let queue = queue.clone();
        let tx = tx.clone();
        std::thread::spawn(move || {
            loop {
                let next = queue
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .pop_front();
                let Some(test) = next else { break };
                if tx.send(run_one(test, timeout)).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let mut reports = Vec::new();
    for report in rx {
        print_line(&report);
        reports.push(report);
    }
    reports
}

fn run_one(test: &'static XTestItem, timeout: Duration) -> Report {
    let record = Arc::new(TestRecord::default());
    let (tx, rx) = mpsc::channel::<Outcome>();
    let started = Instant::now();
    let thread_record = record.clone();
    let spawned = std::thread::Builder::new()
        .name(test.test_name.to_owned())
        .stack_size(16 << 20)
        .spawn(move || {
            ON_TEST_THREAD.with(|t| *t.borrow_mut() = true);
            set_current_record(Some(thread_record));
            let result = std::panic::catch_unwind(test.test_fn);
            let panic = LAST_PANIC.with(|p| p.borrow_mut().take());
            let outcome = match (result, test.should_panic) {
                (Ok(()), false) | (Err(_), true) => Outcome::Passed,
                (Ok(()), true) => Outcome::Failed("did not panic (should_panic)".into()),
                (Err(_), false) => Outcome::Failed(panic.unwrap_or_else(|| "panicked".into())),
            };
            set_current_record(None);
            let _ = tx.send(outcome);
        });
    let outcome = match spawned {
        Err(e) => Outcome::Failed(format!("cannot start the test's thread: {e}")),
        Ok(_) => match rx.recv_timeout(timeout) {
            Ok(o) => o,
            Err(RecvTimeoutError::Timeout) => Outcome::TimedOut,
            Err(RecvTimeoutError::Disconnected) => Outcome::Failed("the test thread died".into()),
        },
    };
    let report = Report {
        name: test.test_name,
        outcome,
        elapsed: started.elapsed(),
        refusals: record.refusals(),
    };
    if !matches!(report.outcome, Outcome::TimedOut) {
        record.release();
    }
    report
}

/// A report judged against [`EXPECTED_FAILURES`].
enum Verdict {
    Ok,
    ExpectedFailure(Expected),
    /// Listed, but passed.
    UnexpectedPass(Expected),
    /// Not listed, or listed but without the listed refusal.
    Unexpected,
}

fn verdict(r: &Report) -> Verdict {
    let listed = EXPECTED_FAILURES
        .iter()
        .find(|(name, _)| *name == r.name)
        .map(|(_, e)| *e);
    match (&r.outcome, listed) {
        (Outcome::Passed, None) => Verdict::Ok,
        // A failure the runner cannot check against a refusal: a pass is
        // fine too.
        (Outcome::Passed, Some(e)) if e.tag.is_empty() => Verdict::Ok,
        (Outcome::Passed, Some(e)) => Verdict::UnexpectedPass(e),
        (Outcome::Failed(_), Some(e)) if e.tag.is_empty() || r.refusals.contains_key(e.tag) => {
            Verdict::ExpectedFailure(e)
        }
        _ => Verdict::Unexpected,
    }
}

fn print_line(r: &Report) {
    let status = match (verdict(r), &r.outcome) {
        (Verdict::Ok, _) => "ok",
        (Verdict::ExpectedFailure(_), _) => "expected fail",
        (Verdict::UnexpectedPass(_), _) => "UNEXPECTED PASS",
        (Verdict::Unexpected, Outcome::TimedOut) => "TIMED OUT",
        (Verdict::Unexpected, _) => "FAILED",
    };
    let secs = r.elapsed.as_secs_f64();
    say!("{status:<15} {secs:>7.2}s  {}", r.name);
    if let Outcome::Failed(why) = &r.outcome {
        say!("{:>26}panic: {why}", "");
    }
    if !r.refusals.is_empty() {
        say!("{:>26}refused: {}", "", tags(&r.refusals));
    }
    match verdict(r) {
        Verdict::UnexpectedPass(e) => say!("{:>26}listed as expected to fail: {}", "", e.reason),
        Verdict::Unexpected if !matches!(r.outcome, Outcome::Passed) => {
            if let Some((_, e)) = EXPECTED_FAILURES.iter().find(|(n, _)| *n == r.name) {
                say!(
                    "{:>26}listed to fail with {}, which was not refused",
                    "",
                    e.tag
                );
            }
        }
        _ => {}
    }
}

fn tags(refusals: &BTreeMap<String, u64>) -> String {
    refusals
        .iter()
        .map(|(t, n)| format!("{t} x{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints the summary; whether the run is clean (every failure listed
/// with its refusal, every listed test that ran failed).
fn summarize(reports: &[Report], total: usize, whole_suite: bool) -> bool {
    let passed = reports
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Passed))
        .count();
    let mut by_reason: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut unexpected = Vec::new();
    let mut unexpected_passes = Vec::new();
    for r in reports {
        match verdict(r) {
            Verdict::Ok => {}
            Verdict::ExpectedFailure(e) => by_reason.entry(e.reason).or_default().push(r.name),
            Verdict::UnexpectedPass(_) => unexpected_passes.push(r.name),
            Verdict::Unexpected => unexpected.push(r.name),
        }
    }
    say!("");
    say!("passed {passed}/{total}");
    let listed: usize = by_reason.values().map(Vec::len).sum();
    say!(
        "expected failures: {listed} (of {} listed)",
        EXPECTED_FAILURES.len()
    );
    for (reason, names) in &by_reason {
        say!("  {} tests {reason}:", names.len());
        say!("    {}", names.join(" "));
    }
    if whole_suite {
        let ran: Vec<&str> = reports.iter().map(|r| r.name).collect();
        for (name, _) in EXPECTED_FAILURES {
            if !ran.contains(name) {
                say!("listed but not exported by LDK: {name}");
            }
        }
    }
    for name in &unexpected_passes {
        say!("UNEXPECTED PASS (remove it from EXPECTED_FAILURES): {name}");
    }
    for name in &unexpected {
        say!("UNEXPECTED FAILURE: {name}");
    }
    unexpected.is_empty() && unexpected_passes.is_empty()
}
