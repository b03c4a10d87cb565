//! `tidemark audit verify`: checks the audit log's hash chain offline.

use std::process::ExitCode;

use tidemark_core::{GENESIS_HASH, StateStore as _, verify_chain};

use super::support;
use crate::ConfigArg;

/// `tidemark audit ...`
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AuditCommand {
    /// Verifies that no audit record was removed, reordered or altered.
    Verify(ConfigArg),
}

/// Runs `tidemark audit`.
pub fn run(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    let AuditCommand::Verify(c) = cmd;
    let config = support::load_config(&c.config)?;
    let store = support::open_store(&config)?;
    let (mut seq, mut hash) = (0u64, GENESIS_HASH);
    loop {
        let batch = store.audit_records(seq + 1, 4096)?;
        if batch.is_empty() {
            break;
        }
        match verify_chain(&batch, seq, hash) {
            Ok((s, h)) => (seq, hash) = (s, h),
            Err(e) => {
                eprintln!("audit log does NOT verify: {e}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    println!(
        "audit log verified: {seq} records, head {}",
        hex::encode(hash)
    );
    Ok(ExitCode::SUCCESS)
}
