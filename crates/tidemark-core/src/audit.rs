//! Audit records and their hash chain.
//!
//! Every decision (sign, replay, refusal) and every denied client writes one
//! [`AuditEntry`]. The store numbers entries and chains them: record `n`
//! carries `hash_n = SHA-256(hash_{n-1} || canonical(entry_n, n))`, starting
//! from [`GENESIS_HASH`]. [`verify_chain`] checks a sequence of records
//! offline, so a deleted, reordered or edited record is detected.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::decision::Digest;
use crate::ids::{ClientId, ObjectId};
use crate::mark::Mark;

/// The hash before the first record.
pub const GENESIS_HASH: [u8; 32] = [0u8; 32];

/// What a decision came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditOutcome {
    /// A new signature was released.
    Signed,
    /// A stored signature was returned to an identical repeat.
    Replayed,
    /// A policy or mark refused the request.
    Refused,
    /// The client was not allowed to ask, or the request was malformed.
    Denied,
    /// An operator imported a mark (raised it from another signer's state).
    Imported,
    /// An operator released a wallet intent (confirmed or abandoned), so
    /// its inputs are free again.
    Released,
}

impl AuditOutcome {
    /// Every outcome, for decoders that map names back to values.
    pub const ALL: [AuditOutcome; 6] = [
        AuditOutcome::Signed,
        AuditOutcome::Replayed,
        AuditOutcome::Refused,
        AuditOutcome::Denied,
        AuditOutcome::Imported,
        AuditOutcome::Released,
    ];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Signed => "signed",
            AuditOutcome::Replayed => "replayed",
            AuditOutcome::Refused => "refused",
            AuditOutcome::Denied => "denied",
            AuditOutcome::Imported => "imported",
            AuditOutcome::Released => "released",
        }
    }
}

// Adding an outcome breaks this match: add it to `AuditOutcome::ALL` too.
const _: () = match AuditOutcome::Signed {
    AuditOutcome::Signed
    | AuditOutcome::Replayed
    | AuditOutcome::Refused
    | AuditOutcome::Denied
    | AuditOutcome::Imported
    | AuditOutcome::Released => (),
};

/// One decision, as the pipeline reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The client identity that asked.
    pub client: String,
    /// The object (its canonical string), or what was asked for if the
    /// request never named a valid object.
    pub object: String,
    /// The outcome.
    pub outcome: AuditOutcome,
    /// The refusal tag or denial reason, if any.
    pub tag: Option<String>,
    /// The mark after the decision.
    pub mark: Mark,
    /// The payload digest, for signatures and replays.
    pub digest: Option<Digest>,
}

impl AuditEntry {
    /// An entry for a decision made now (the wall clock, in milliseconds).
    pub fn now(
        client: &ClientId,
        object: &ObjectId,
        outcome: AuditOutcome,
        tag: Option<&str>,
        mark: &Mark,
        digest: Option<Digest>,
    ) -> AuditEntry {
        AuditEntry {
            time_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            client: client.to_string(),
            object: object.to_string(),
            outcome,
            tag: tag.map(str::to_owned),
            mark: mark.clone(),
            digest,
        }
    }
}

/// An audit entry as stored: numbered and chained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Sequence number, from 1, without gaps.
    pub seq: u64,
    /// The entry.
    pub entry: AuditEntry,
    /// `hash` of the previous record ([`GENESIS_HASH`] for the first).
    pub prev_hash: [u8; 32],
    /// This record's hash.
    pub hash: [u8; 32],
}

impl AuditRecord {
    /// The hash record `seq` must carry after `prev_hash`.
    pub fn chain_hash(prev_hash: &[u8; 32], seq: u64, entry: &AuditEntry) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(prev_hash);
        h.update(seq.to_be_bytes());
        // serde_json of a struct with only strings, numbers and options is
        // deterministic (field order is declaration order).
        match serde_json::to_vec(entry) {
            Ok(bytes) => h.update(&bytes),
            Err(_) => h.update(b"unserializable"),
        }
        h.finalize().into()
    }

    /// Builds the record that follows `prev_hash`.
    pub fn chained(prev_hash: [u8; 32], seq: u64, entry: AuditEntry) -> Self {
        let hash = Self::chain_hash(&prev_hash, seq, &entry);
        AuditRecord {
            seq,
            entry,
            prev_hash,
            hash,
        }
    }
}

/// Why an audit chain does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// A sequence number is missing or out of order.
    #[error("audit record {found} follows {previous}: a record is missing or reordered")]
    Gap {
        /// The previous sequence number.
        previous: u64,
        /// The one found.
        found: u64,
    },
    /// A record does not link to its predecessor.
    #[error("audit record {0} does not link to the record before it")]
    BrokenLink(u64),
    /// A record's content does not match its hash.
    #[error("audit record {0} was altered: its hash does not match its content")]
    Altered(u64),
}

/// Checks that `records` form an unbroken chain starting after
/// (`previous_seq`, `previous_hash`). Returns the last (seq, hash).
pub fn verify_chain<'a>(
    records: impl IntoIterator<Item = &'a AuditRecord>,
    previous_seq: u64,
    previous_hash: [u8; 32],
) -> Result<(u64, [u8; 32]), ChainError> {
    let (mut seq, mut hash) = (previous_seq, previous_hash);
    for r in records {
        if r.seq != seq + 1 {
            return Err(ChainError::Gap {
                previous: seq,
                found: r.seq,
            });
        }
        if r.prev_hash != hash {
            return Err(ChainError::BrokenLink(r.seq));
        }
        if AuditRecord::chain_hash(&r.prev_hash, r.seq, &r.entry) != r.hash {
            return Err(ChainError::Altered(r.seq));
        }
        seq = r.seq;
        hash = r.hash;
    }
    Ok((seq, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(client: &str) -> AuditEntry {
        AuditEntry {
            time_ms: 1,
            client: client.into(),
            object: "consensus/c/k/cometbft".into(),
            outcome: AuditOutcome::Signed,
            tag: None,
            mark: Mark::none().with("height", 1),
            digest: None,
        }
    }

    fn chain(n: u64) -> Vec<AuditRecord> {
        let mut prev = GENESIS_HASH;
        (1..=n)
            .map(|seq| {
                let r = AuditRecord::chained(prev, seq, entry("a"));
                prev = r.hash;
                r
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        let c = chain(3);
        assert_eq!(verify_chain(&c, 0, GENESIS_HASH).unwrap().0, 3);
    }

    #[test]
    fn an_edited_record_is_detected() {
        let mut c = chain(3);
        c[1].entry.client = "mallory".into();
        assert_eq!(
            verify_chain(&c, 0, GENESIS_HASH),
            Err(ChainError::Altered(2))
        );
    }

    #[test]
    fn a_deleted_record_is_detected() {
        let mut c = chain(3);
        c.remove(1);
        assert!(matches!(
            verify_chain(&c, 0, GENESIS_HASH),
            Err(ChainError::Gap {
                previous: 1,
                found: 3
            })
        ));
    }
}
