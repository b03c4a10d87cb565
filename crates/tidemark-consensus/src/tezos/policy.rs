//! The Tezos watermark rules (octez-signer's high watermark, per kind).
//!
//! One object per (chain, key, kind) with kind `block`, `preattestation`
//! or `attestation`; its state is the last (level, round) signed and the
//! BLAKE2b-256 digest of the signed bytes.
//!
//! | request vs mark                        | decision                  |
//! |----------------------------------------|---------------------------|
//! | none stored, or higher (level, round)  | sign                      |
//! | lower level                            | `hwm-level-regression`    |
//! | same level, lower round                | `hwm-round-regression`    |
//! | same (level, round), identical bytes   | replay                    |
//! | same (level, round), different bytes   | `hwm-double-sign`         |
//! | other magic byte, not allowed          | `policy-tezos-magic-byte` |
//! | other magic byte, allowed              | sign, without watermark   |
//!
//! Allowed magic bytes (e.g. 0x03 generic operations for a wallet key) are
//! signed *without* a watermark: their object is `magic-XX`, its state
//! only remembers the digest of the last bytes (an identical repeat is
//! replayed, anything else is signed). Only allow magic bytes whose
//! operations carry no double-sign risk. The legacy Emmy consensus bytes
//! 0x01 and 0x02 are never signed, whatever the configuration: they would
//! be consensus operations without a watermark.
//!
//! Tezos signs the BLAKE2b-256 digest of the full watermarked bytes: an
//! Ed25519 key signs the 32-byte digest, a secp256k1 key signs it with
//! ECDSA. "Identical bytes" is checked on that digest, which is exactly
//! what the stored signature covers.

use blake2::Blake2b;
use blake2::digest::{Digest as _, consts::U32};
use serde::{Deserialize, Serialize};
use tidemark_core::{
    ChainId, Decision, Domain, IdError, KeyId, Mark, ObjectId, Policy, PublicKey, Refusal, Tag,
};

use super::base58::chain_id_b58;
use super::operation::{TezosOperation, parse};
use crate::error::ConsensusError;
use crate::scheme::digest_form;
use crate::tags;

/// Emmy-era consensus magic bytes: never signable (no watermark parsed).
const LEGACY_CONSENSUS_MAGIC: [u8; 2] = [0x01, 0x02];

/// A validated request to sign raw Tezos bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TezosRequest {
    chain_id: ChainId,
    key: KeyId,
    bytes: Vec<u8>,
    operation: TezosOperation,
    digest: [u8; 32],
}

impl TezosRequest {
    /// Parses `bytes`; for a consensus operation the chain id in the bytes
    /// must be `chain_id` (its `Net...` base58check form).
    pub fn new(chain_id: ChainId, key: KeyId, bytes: Vec<u8>) -> Result<Self, ConsensusError> {
        let operation = parse(&bytes)?;
        if let TezosOperation::Consensus { chain_id: raw, .. } = operation {
            let in_bytes = chain_id_b58(raw);
            if in_bytes != chain_id.as_str() {
                return Err(ConsensusError::ChainMismatch {
                    request: chain_id.to_string(),
                    operation: in_bytes,
                });
            }
        }
        let digest = Blake2b::<U32>::digest(&bytes).into();
        Ok(TezosRequest {
            chain_id,
            key,
            bytes,
            operation,
            digest,
        })
    }

    /// The chain.
    pub fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }

    /// The signing key.
    pub fn key(&self) -> &KeyId {
        &self.key
    }

    /// The raw bytes, magic byte first.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// What the bytes are.
    pub fn operation(&self) -> TezosOperation {
        self.operation
    }

    /// BLAKE2b-256 of the bytes: what is signed.
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    /// The object kind: `block`, `preattestation`, `attestation` or
    /// `magic-XX` for other magic bytes.
    pub fn kind(&self) -> String {
        match self.operation {
            TezosOperation::Consensus { kind, .. } => kind.as_str().to_owned(),
            TezosOperation::Other { magic } => format!("magic-{magic:02x}"),
        }
    }
}

/// A (level, round) watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Watermark {
    /// The level.
    pub level: u32,
    /// The round.
    pub round: u32,
}

/// The stored state of a Tezos object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TezosState {
    /// The last watermark signed; `None` for an allowed magic byte signed
    /// without watermark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<Watermark>,
    /// BLAKE2b-256 of the last signed bytes (hex).
    #[serde(with = "tidemark_core::serde_hex::array32")]
    pub digest: [u8; 32],
}

impl TezosState {
    /// The mark: `level`, `round` (empty without watermark).
    pub fn mark(&self) -> Mark {
        match self.watermark {
            Some(w) => Mark::none()
                .with("level", u64::from(w.level))
                .with("round", u64::from(w.round)),
            None => Mark::none(),
        }
    }
}

/// The Tezos policy and its one setting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TezosPolicy {
    /// Magic bytes other than 0x11/0x12/0x13 that may be signed without a
    /// watermark (e.g. `[0x03]` for generic operations). 0x01 and 0x02 are
    /// refused even if listed.
    #[serde(default)]
    pub allowed_magic: Vec<u8>,
}

impl TezosPolicy {
    fn allows(&self, magic: u8) -> bool {
        self.allowed_magic.contains(&magic) && !LEGACY_CONSENSUS_MAGIC.contains(&magic)
    }
}

fn refuse(
    object: &ObjectId,
    current: Option<&TezosState>,
    tag: Tag,
    detail: String,
) -> Decision<TezosState> {
    Decision::Refuse(Refusal {
        tag,
        object: object.clone(),
        current: current.map(TezosState::mark).unwrap_or_default(),
        detail,
    })
}

impl Policy for TezosPolicy {
    type Request = TezosRequest;
    type State = TezosState;

    fn domain(&self) -> Domain {
        Domain::Consensus
    }

    fn object(&self, request: &TezosRequest) -> Result<ObjectId, IdError> {
        ObjectId::new(
            Domain::Consensus,
            request.chain_id.clone(),
            request.key.clone(),
            &request.kind(),
        )
    }

    fn key<'r>(&self, request: &'r TezosRequest) -> &'r KeyId {
        &request.key
    }

    fn mark(&self, state: &TezosState) -> Mark {
        state.mark()
    }

    fn decide(
        &self,
        object: &ObjectId,
        key: &PublicKey,
        current: Option<&TezosState>,
        request: &TezosRequest,
    ) -> Decision<TezosState> {
        let watermark = match request.operation {
            TezosOperation::Other { magic } if !self.allows(magic) => {
                let detail = format!("magic byte 0x{magic:02x} is not allowed by the policy");
                return refuse(object, current, tags::TEZOS_MAGIC_BYTE, detail);
            }
            TezosOperation::Other { .. } => None,
            TezosOperation::Consensus { level, round, .. } => Some(Watermark { level, round }),
        };
        let sign = Decision::Sign {
            new_state: TezosState {
                watermark,
                digest: request.digest,
            },
            inputs: vec![digest_form(&request.key, key.scheme, request.digest)],
        };
        let Some(cur) = current else {
            return sign;
        };
        let Some(new) = watermark else {
            // Unwatermarked: replay an identical repeat, sign anything else.
            return if cur.digest == request.digest {
                Decision::Replay {
                    also_sign: Vec::new(),
                }
            } else {
                sign
            };
        };
        let Some(old) = cur.watermark else {
            let detail = "stored state has no watermark for a consensus operation".to_owned();
            return refuse(object, current, tags::STATE_UNREADABLE, detail);
        };
        if new.level < old.level {
            let detail = format!(
                "level {} is below the signed level {}",
                new.level, old.level
            );
            return refuse(object, current, tags::LEVEL_REGRESSION, detail);
        }
        if new.level == old.level && new.round < old.round {
            let detail = format!(
                "round {} at level {} is below the signed round {}",
                new.round, new.level, old.round
            );
            return refuse(object, current, tags::ROUND_REGRESSION, detail);
        }
        if new == old {
            if cur.digest == request.digest {
                return Decision::Replay {
                    also_sign: Vec::new(),
                };
            }
            let detail = format!(
                "different bytes were already signed at level {} round {}",
                new.level, new.round
            );
            return refuse(object, current, tags::DOUBLE_SIGN, detail);
        }
        sign
    }
}
