//! CometBFT's FilePV double-sign rules (`privval/file.go`: `CheckHRS`,
//! `signVote`, `signProposal`) as a pure [`Policy`].
//!
//! Rules, in the order they are checked against the stored (height, round,
//! step):
//!
//! | request vs mark                     | decision                    |
//! |-------------------------------------|-----------------------------|
//! | none stored, or higher HRS          | sign                        |
//! | lower height                        | `hwm-height-regression`     |
//! | same height, lower round            | `hwm-round-regression`      |
//! | same height and round, lower step   | `hwm-step-regression`       |
//! | same HRS, mark has no sign bytes    | `hwm-double-sign`           |
//! | same HRS, identical sign bytes      | replay                      |
//! | same HRS, only the timestamp differs| replay (stored timestamp)   |
//! | same HRS, anything else differs     | `hwm-double-sign`           |
//!
//! A later step at the same height and round may carry a different block
//! (prevote nil then precommit for a block, proposal for A then prevote for
//! B are legitimate): only the HRS orders requests, as in FilePV.
//!
//! Vote extensions: a non-nil precommit also signs its
//! `CanonicalVoteExtension`. On sign the inputs are `[vote, extension]`; on
//! replay the extension is signed afresh (`also_sign`), as CometBFT always
//! re-signs extensions, which carry no double-sign duty. Whatever the
//! pipeline stores, the vote signature is the *first* signature of the
//! answer and the extension signature the *last*.

use tidemark_core::{
    ChainId, Decision, Domain, IdError, KeyId, Mark, ObjectId, Policy, PublicKey, Refusal,
    SignInput,
};

use super::canonical;
use super::state::{CometState, Step};
use super::types::CometMessage;
use crate::error::ConsensusError;
use crate::scheme::sha256_form;
use crate::tags;

/// The object kind of the CometBFT mark of a (chain, key).
pub const COMETBFT_KIND: &str = "cometbft";

/// A validated request to sign a CometBFT vote or proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CometRequest {
    chain_id: ChainId,
    key: KeyId,
    message: CometMessage,
}

impl CometRequest {
    /// Validates `message` (CometBFT's `ValidateBasic`) and builds the
    /// request.
    pub fn new(
        chain_id: ChainId,
        key: KeyId,
        message: CometMessage,
    ) -> Result<Self, ConsensusError> {
        message.validate()?;
        Ok(CometRequest {
            chain_id,
            key,
            message,
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

    /// The message.
    pub fn message(&self) -> &CometMessage {
        &self.message
    }

    /// The (height, round, step) the request would sign at.
    pub fn hrs(&self) -> (i64, i32, Step) {
        let step = match &self.message {
            CometMessage::Vote(v) => Step::of(v.msg_type),
            CometMessage::Proposal(_) => Step::Propose,
        };
        (self.message.height(), self.message.round(), step)
    }

    /// The canonical sign bytes of the message.
    pub fn sign_bytes(&self) -> Vec<u8> {
        canonical::sign_bytes(&self.chain_id, &self.message)
    }

    /// The canonical vote-extension sign bytes, for a non-nil precommit.
    pub fn extension_sign_bytes(&self) -> Option<Vec<u8>> {
        match &self.message {
            CometMessage::Vote(v) if v.signs_extension() => {
                Some(canonical::vote_extension_sign_bytes(&self.chain_id, v))
            }
            _ => None,
        }
    }
}

/// CometBFT's FilePV rules. Stateless: the state lives in the store.
#[derive(Debug, Clone, Copy, Default)]
pub struct CometPolicy;

impl CometPolicy {
    fn refuse(
        object: &ObjectId,
        current: &CometState,
        tag: tidemark_core::Tag,
        detail: String,
    ) -> Decision<CometState> {
        Decision::Refuse(Refusal {
            tag,
            object: object.clone(),
            current: current.mark(),
            detail,
        })
    }
}

impl Policy for CometPolicy {
    type Request = CometRequest;
    type State = CometState;

    fn domain(&self) -> Domain {
        Domain::Consensus
    }

    fn object(&self, request: &CometRequest) -> Result<ObjectId, IdError> {
        ObjectId::new(
            Domain::Consensus,
            request.chain_id.clone(),
            request.key.clone(),
            COMETBFT_KIND,
        )
    }

    fn key<'r>(&self, request: &'r CometRequest) -> &'r KeyId {
        &request.key
    }

    fn mark(&self, state: &CometState) -> Mark {
        state.mark()
    }

    fn decide(
        &self,
        object: &ObjectId,
        key: &PublicKey,
        current: Option<&CometState>,
        request: &CometRequest,
    ) -> Decision<CometState> {
        let (height, round, step) = request.hrs();
        let sign_bytes = request.sign_bytes();
        let extension = request
            .extension_sign_bytes()
            .map(|bytes| sha256_form(&request.key, key.scheme, &bytes));

        if let Some(cur) = current {
            if cur.height > height {
                let detail = format!("height {height} is below the signed height {}", cur.height);
                return Self::refuse(object, cur, tags::HEIGHT_REGRESSION, detail);
            }
            if cur.height == height {
                if cur.round > round {
                    let detail = format!(
                        "round {round} at height {height} is below the signed round {}",
                        cur.round
                    );
                    return Self::refuse(object, cur, tags::ROUND_REGRESSION, detail);
                }
                if cur.round == round {
                    if cur.step > step {
                        let detail = format!(
                            "step {} at height {height} round {round} is below the signed step {}",
                            step.number(),
                            cur.step.number()
                        );
                        return Self::refuse(object, cur, tags::STEP_REGRESSION, detail);
                    }
                    if cur.step == step {
                        return same_hrs(object, cur, request, &sign_bytes, extension);
                    }
                }
            }
        }

        let mut inputs = vec![sha256_form(&request.key, key.scheme, &sign_bytes)];
        inputs.extend(extension);
        Decision::Sign {
            new_state: CometState {
                height,
                round,
                step,
                sign_bytes,
            },
            inputs,
        }
    }
}

/// FilePV at an equal HRS: replay identical bytes or bytes that differ only
/// in the timestamp; refuse anything else.
fn same_hrs(
    object: &ObjectId,
    cur: &CometState,
    request: &CometRequest,
    sign_bytes: &[u8],
    extension: Option<SignInput>,
) -> Decision<CometState> {
    if cur.sign_bytes.is_empty() {
        // An imported mark without sign bytes: we cannot know what was
        // signed at this HRS, and have no signature to return.
        return CometPolicy::refuse(
            object,
            cur,
            tags::DOUBLE_SIGN,
            "this height/round/step was signed before the import and its sign bytes are unknown"
                .to_owned(),
        );
    }
    let replay = Decision::Replay {
        also_sign: extension.into_iter().collect(),
    };
    if cur.sign_bytes == sign_bytes {
        return replay;
    }
    if let Some(stored) = cur.timestamp() {
        let restamped = request.message.with_timestamp(stored);
        if canonical::sign_bytes(&request.chain_id, &restamped) == cur.sign_bytes {
            return replay;
        }
    }
    CometPolicy::refuse(
        object,
        cur,
        tags::DOUBLE_SIGN,
        "a different message was already signed at this height/round/step".to_owned(),
    )
}
