//! `tidemark demo`: split-brain, shown.
//!
//! Starts an embedded signer (SQLite store in a temporary directory,
//! software keystore, development CA) and several replica clients over real
//! mutual TLS. At every height the replicas race: two groups vote for
//! different blocks (split brain), replicas in the same group send
//! identical votes (or the same vote with another timestamp), and one
//! replays a stale vote from two heights back. Then an independent checker
//! verifies every signature the replicas received against the validator's
//! public key and counts double signs: two valid signatures at one
//! height/round/step over different sign bytes. It must find none.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use ed25519_dalek::{Signature as EdSignature, Verifier as _, VerifyingKey};
use serde::Serialize;
use tidemark_client::{Client, ClientError, v1};
use tokio::sync::Mutex;

use super::support;
use crate::embedded::{DEMO_CHAIN, Embedded, VALIDATOR_KEY};

/// Arguments of `tidemark demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Number of racing replicas (at least 2).
    #[arg(long, default_value_t = 4)]
    pub replicas: u32,
    /// Number of heights to race over.
    #[arg(long, default_value_t = 25)]
    pub heights: i64,
}

/// What a demo run found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DemoReport {
    /// Replicas.
    pub replicas: u32,
    /// Heights.
    pub heights: i64,
    /// New signatures released.
    pub signed: u64,
    /// Identical repeats answered with the stored signature.
    pub replayed: u64,
    /// Requests refused.
    pub refused: u64,
    /// Refusals by tag.
    pub refused_by_tag: BTreeMap<String, u64>,
    /// Other errors (must be 0).
    pub errors: u64,
    /// Signatures the checker verified.
    pub signatures_checked: u64,
    /// Signatures that did not verify (must be 0).
    pub invalid_signatures: u64,
    /// Positions with two valid signatures over different bytes (must be 0).
    pub double_signs: u64,
}

/// One signature a replica received.
#[derive(Debug, Clone)]
struct Received {
    height: i64,
    round: i32,
    vote_type: i32,
    sign_bytes: Vec<u8>,
    signature: Vec<u8>,
}

/// Runs `tidemark demo`.
pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let runtime = support::runtime()?;
    let report = runtime.block_on(demo(&args))?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report);
    }
    let clean = report.double_signs == 0 && report.invalid_signatures == 0 && report.errors == 0;
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs the demo and returns its report (the library form).
pub async fn demo(args: &DemoArgs) -> anyhow::Result<DemoReport> {
    let replicas = args.replicas.max(2);
    let signer = Embedded::start_temp(replicas, None).await?;
    let clients: Vec<Client> = signer
        .replicas
        .iter()
        .map(|r| signer.client(r))
        .collect::<anyhow::Result<_>>()?;
    let report = Arc::new(Mutex::new(DemoReport {
        replicas,
        heights: args.heights,
        ..DemoReport::default()
    }));
    let received = Arc::new(Mutex::new(Vec::<Received>::new()));

    for height in 1..=args.heights {
        for vote_type in [v1::VoteType::Prevote, v1::VoteType::Precommit] {
            let mut tasks = Vec::new();
            for (i, client) in clients.iter().enumerate() {
                let plans = plan(i, height, vote_type);
                for vote in plans {
                    let (client, report, received) =
                        (client.clone(), report.clone(), received.clone());
                    tasks.push(tokio::spawn(async move {
                        let request = v1::SignVoteRequest {
                            chain_id: DEMO_CHAIN.into(),
                            key_id: VALIDATOR_KEY.into(),
                            vote: Some(vote.clone()),
                        };
                        let result = client.sign_vote(request).await;
                        let mut report = report.lock().await;
                        match result {
                            Ok(r) => {
                                if r.outcome == v1::Outcome::Replayed as i32 {
                                    report.replayed += 1;
                                } else {
                                    report.signed += 1;
                                }
                                received.lock().await.push(Received {
                                    height: vote.height,
                                    round: vote.round,
                                    vote_type: vote.r#type,
                                    sign_bytes: r.sign_bytes,
                                    signature: r.signature,
                                });
                            }
                            Err(ClientError::Refused(refusal)) => {
                                report.refused += 1;
                                *report.refused_by_tag.entry(refusal.tag).or_default() += 1;
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "demo request failed");
                                report.errors += 1;
                            }
                        }
                    }));
                }
            }
            for t in tasks {
                t.await?;
            }
        }
    }
    let public_key = signer.validator_public_key.clone();
    signer.stop().await;

    let mut report = Arc::try_unwrap(report)
        .map_err(|_| anyhow::anyhow!("report still shared"))?
        .into_inner();
    let received = received.lock().await.clone();
    check(&public_key, &received, &mut report)?;
    Ok(report)
}

/// The votes replica `i` sends at `height` for `vote_type`: its group's
/// block, sometimes again with a later timestamp, and a stale vote.
fn plan(i: usize, height: i64, vote_type: v1::VoteType) -> Vec<v1::Vote> {
    let group = (i % 2) as u8;
    let vote = |h: i64, seconds: i64| v1::Vote {
        r#type: vote_type as i32,
        height: h,
        round: 0,
        block_id: Some(v1::BlockId {
            hash: vec![group + 1; 32],
            part_set_header: Some(v1::PartSetHeader {
                total: 1,
                hash: vec![group + 0x10; 32],
            }),
        }),
        timestamp: Some(v1::Timestamp { seconds, nanos: 0 }),
        extension: Vec::new(),
    };
    let base = 1_700_000_000 + height * 10;
    let mut votes = vec![vote(height, base)];
    if i >= 2 {
        // Same vote, later timestamp: the signer answers with the stored
        // signature and timestamp.
        votes.push(vote(height, base + 1 + i as i64));
    }
    if i == 1 && height > 2 {
        votes.push(vote(height - 2, base - 20));
    }
    votes
}

/// The independent check: every received signature must verify over its
/// sign bytes, and no (height, round, type) may have two different signed
/// byte strings.
fn check(public_key: &[u8], received: &[Received], report: &mut DemoReport) -> anyhow::Result<()> {
    let key = VerifyingKey::try_from(public_key).context("validator key is not ed25519")?;
    let mut signed: HashMap<(i64, i32, i32), HashSet<Vec<u8>>> = HashMap::new();
    for r in received {
        report.signatures_checked += 1;
        let valid = EdSignature::from_slice(&r.signature)
            .map(|s| key.verify(&r.sign_bytes, &s).is_ok())
            .unwrap_or(false);
        if !valid {
            report.invalid_signatures += 1;
            continue;
        }
        signed
            .entry((r.height, r.round, r.vote_type))
            .or_default()
            .insert(r.sign_bytes.clone());
    }
    report.double_signs = signed.values().filter(|s| s.len() > 1).count() as u64;
    Ok(())
}

fn print_table(r: &DemoReport) {
    println!(
        "Tidemark demo: {} replicas racing over {} heights (prevote + precommit), one validator key",
        r.replicas, r.heights
    );
    println!("  two replica groups vote for different blocks (split brain), some repeat");
    println!("  their vote or resend it with another timestamp, one replays stale votes\n");
    println!("  {:<28} {:>6}", "signed", r.signed);
    println!("  {:<28} {:>6}", "replayed (stored signature)", r.replayed);
    println!("  {:<28} {:>6}", "refused", r.refused);
    for (tag, n) in &r.refused_by_tag {
        println!("    {tag:<26} {n:>6}");
    }
    if r.errors > 0 {
        println!("  {:<28} {:>6}", "errors", r.errors);
    }
    println!();
    println!(
        "  independent check: {} signatures verified, {} invalid, double signs found: {}",
        r.signatures_checked, r.invalid_signatures, r.double_signs
    );
}
