//! A plain, strictly increasing height (optionally with a round) for any
//! chain that is neither CometBFT nor Tezos.
//!
//! One object per (chain, key) with kind `height`. The mark is (height,
//! round), a missing round counting as round 0, so `(h, None)` and
//! `(h, Some(0))` are the same position and can never both be signed with
//! different payloads.
//!
//! | request vs mark                    | decision                 |
//! |------------------------------------|--------------------------|
//! | none stored, or higher mark        | sign                     |
//! | lower height                       | `hwm-height-regression`  |
//! | same height, lower round           | `hwm-round-regression`   |
//! | same mark, identical payload       | replay                   |
//! | same mark, different payload       | `hwm-double-sign`        |
//!
//! Ed25519 signs the payload, secp256k1 signs `sha256(payload)` (ECDSA).
//! The state keeps `sha256(payload)`, which is what identifies a repeat.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tidemark_core::{
    ChainId, Decision, Domain, IdError, KeyId, Mark, ObjectId, Policy, PublicKey, Refusal, Tag,
};

use crate::error::ConsensusError;
use crate::scheme::sha256_form;
use crate::tags;

#[cfg(test)]
mod tests;

/// The object kind of a plain-height mark.
pub const HEIGHT_KIND: &str = "height";

/// The largest payload accepted, in bytes.
pub const MAX_PAYLOAD_LEN: usize = 64 * 1024;

/// A validated request to sign `payload` at (height, round).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeightRequest {
    chain_id: ChainId,
    key: KeyId,
    height: u64,
    round: Option<u32>,
    payload: Vec<u8>,
}

impl HeightRequest {
    /// Checks the payload size and builds the request.
    pub fn new(
        chain_id: ChainId,
        key: KeyId,
        height: u64,
        round: Option<u32>,
        payload: Vec<u8>,
    ) -> Result<Self, ConsensusError> {
        if payload.len() > MAX_PAYLOAD_LEN {
            return Err(ConsensusError::TooLarge {
                what: "payload",
                len: payload.len(),
                max: MAX_PAYLOAD_LEN,
            });
        }
        Ok(HeightRequest {
            chain_id,
            key,
            height,
            round,
            payload,
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

    /// The height.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The round, if the chain uses rounds.
    pub fn round(&self) -> Option<u32> {
        self.round
    }

    /// The payload to sign.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
}

/// The stored state of a plain-height object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeightState {
    /// The last height signed.
    pub height: u64,
    /// Its round, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<u32>,
    /// sha256 of the payload signed (hex).
    #[serde(with = "tidemark_core::serde_hex::bytes")]
    pub digest: Vec<u8>,
}

impl HeightState {
    /// (height, round) with a missing round as 0.
    pub fn position(&self) -> (u64, u32) {
        (self.height, self.round.unwrap_or(0))
    }

    /// The mark: `height`, `round` (0 when the chain has none).
    pub fn mark(&self) -> Mark {
        let (height, round) = self.position();
        Mark::none()
            .with("height", height)
            .with("round", u64::from(round))
    }
}

/// The plain-height rules. Stateless.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeightPolicy;

fn refuse(object: &ObjectId, cur: &HeightState, tag: Tag, detail: String) -> Decision<HeightState> {
    Decision::Refuse(Refusal {
        tag,
        object: object.clone(),
        current: cur.mark(),
        detail,
    })
}

impl Policy for HeightPolicy {
    type Request = HeightRequest;
    type State = HeightState;

    fn domain(&self) -> Domain {
        Domain::Consensus
    }

    fn object(&self, request: &HeightRequest) -> Result<ObjectId, IdError> {
        ObjectId::new(
            Domain::Consensus,
            request.chain_id.clone(),
            request.key.clone(),
            HEIGHT_KIND,
        )
    }

    fn key<'r>(&self, request: &'r HeightRequest) -> &'r KeyId {
        &request.key
    }

    fn mark(&self, state: &HeightState) -> Mark {
        state.mark()
    }

    fn decide(
        &self,
        object: &ObjectId,
        key: &PublicKey,
        current: Option<&HeightState>,
        request: &HeightRequest,
    ) -> Decision<HeightState> {
        let digest = Sha256::digest(&request.payload).to_vec();
        let (height, round) = (request.height, request.round.unwrap_or(0));
        if let Some(cur) = current {
            let (cur_height, cur_round) = cur.position();
            if height < cur_height {
                let detail = format!("height {height} is below the signed height {cur_height}");
                return refuse(object, cur, tags::HEIGHT_REGRESSION, detail);
            }
            if height == cur_height && round < cur_round {
                let detail = format!(
                    "round {round} at height {height} is below the signed round {cur_round}"
                );
                return refuse(object, cur, tags::ROUND_REGRESSION, detail);
            }
            if (height, round) == (cur_height, cur_round) {
                if cur.digest == digest {
                    return Decision::Replay {
                        also_sign: Vec::new(),
                    };
                }
                let detail = format!(
                    "a different payload was already signed at height {height} round {round}"
                );
                return refuse(object, cur, tags::DOUBLE_SIGN, detail);
            }
        }
        Decision::Sign {
            new_state: HeightState {
                height: request.height,
                round: request.round,
                digest,
            },
            inputs: vec![sha256_form(&request.key, key.scheme, &request.payload)],
        }
    }
}
