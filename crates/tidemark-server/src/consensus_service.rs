//! The `tidemark.v1.Consensus` service: CometBFT votes and proposals,
//! Tezos operations and plain heights.
//!
//! Each handler: identify the client (certificate), shed if overloaded,
//! build and validate the domain request (malformed: `INVALID_ARGUMENT`,
//! audited), authorize (key and domain grant), then run the pipeline.

use std::sync::Arc;

use tidemark_consensus::{
    BlockId, CometMessage, CometPolicy, CometRequest, HeightPolicy, HeightRequest, PartSetHeader,
    Proposal, SignedMsgType, TezosOperation, TezosRequest, Timestamp, Vote,
};
use tidemark_core::{ChainId, ClientId, Domain, KeyId};
use tidemark_proto::v1;
use tonic::{Request, Response, Status};

use crate::service::Shared;

/// The consensus service.
#[derive(Debug, Clone)]
pub struct ConsensusService {
    shared: Arc<Shared>,
}

impl ConsensusService {
    /// A service over `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        ConsensusService { shared }
    }

    /// Validates the chain and key ids (before anything else is parsed, so
    /// a client without a grant is denied before its payload is read).
    fn ids(
        &self,
        client: &ClientId,
        chain_id: &str,
        key_id: &str,
    ) -> Result<(ChainId, KeyId), Status> {
        let chain =
            ChainId::new(chain_id).map_err(|e| self.shared.invalid(client, "chain_id", e))?;
        let key = KeyId::new(key_id).map_err(|e| self.shared.invalid(client, "key_id", e))?;
        Ok((chain, key))
    }
}

fn timestamp_from(t: Option<v1::Timestamp>) -> Timestamp {
    let t = t.unwrap_or_default();
    Timestamp {
        seconds: t.seconds,
        nanos: t.nanos,
    }
}

fn timestamp_to(t: Timestamp) -> v1::Timestamp {
    v1::Timestamp {
        seconds: t.seconds,
        nanos: t.nanos,
    }
}

fn block_id_from(b: v1::BlockId) -> BlockId {
    let psh = b.part_set_header.unwrap_or_default();
    BlockId {
        hash: b.hash,
        part_set_header: PartSetHeader {
            total: psh.total,
            hash: psh.hash,
        },
    }
}

fn vote_from(v: v1::Vote) -> Result<Vote, String> {
    let msg_type = match v1::VoteType::try_from(v.r#type) {
        Ok(v1::VoteType::Prevote) => SignedMsgType::Prevote,
        Ok(v1::VoteType::Precommit) => SignedMsgType::Precommit,
        _ => {
            return Err(format!(
                "vote type {} is not prevote or precommit",
                v.r#type
            ));
        }
    };
    Ok(Vote {
        msg_type,
        height: v.height,
        round: v.round,
        block_id: v.block_id.map(block_id_from),
        timestamp: timestamp_from(v.timestamp),
        extension: v.extension,
    })
}

#[tonic::async_trait]
impl v1::consensus_server::Consensus for ConsensusService {
    async fn sign_vote(
        &self,
        request: Request<v1::SignVoteRequest>,
    ) -> Result<Response<v1::SignVoteResponse>, Status> {
        let client = self.shared.client(&request)?;
        let permit = self.shared.admit()?;
        let req = request.into_inner();
        let (chain, key) = self.ids(&client, &req.chain_id, &req.key_id)?;
        self.shared.authorize(&client, Domain::Consensus, &key)?;
        let vote = req
            .vote
            .ok_or_else(|| self.shared.invalid(&client, "vote", "missing"))
            .and_then(|v| vote_from(v).map_err(|e| self.shared.invalid(&client, "vote", e)))?;
        let comet = CometRequest::new(chain, key, CometMessage::Vote(vote))
            .map_err(|e| self.shared.invalid(&client, "vote", e))?;
        let signs_extension = comet.extension_sign_bytes().is_some();
        let decided = self
            .shared
            .decide(permit, CometPolicy, client, comet)
            .await?;
        let extension_signature = match decided.signatures.as_slice() {
            // [vote, extension] when signed; on a replay the fresh extension
            // signature comes last.
            [_, .., ext] if signs_extension => ext.0.clone(),
            _ => Vec::new(),
        };
        Ok(Response::new(v1::SignVoteResponse {
            outcome: decided.outcome(),
            signature: decided.first_signature()?,
            extension_signature,
            timestamp: decided.state.timestamp().map(timestamp_to),
            sign_bytes: decided.state.sign_bytes.clone(),
        }))
    }

    async fn sign_proposal(
        &self,
        request: Request<v1::SignProposalRequest>,
    ) -> Result<Response<v1::SignProposalResponse>, Status> {
        let client = self.shared.client(&request)?;
        let permit = self.shared.admit()?;
        let req = request.into_inner();
        let (chain, key) = self.ids(&client, &req.chain_id, &req.key_id)?;
        self.shared.authorize(&client, Domain::Consensus, &key)?;
        let p = req
            .proposal
            .ok_or_else(|| self.shared.invalid(&client, "proposal", "missing"))?;
        let block_id = p
            .block_id
            .ok_or_else(|| self.shared.invalid(&client, "proposal.block_id", "missing"))?;
        let proposal = Proposal {
            height: p.height,
            round: p.round,
            pol_round: p.pol_round,
            block_id: block_id_from(block_id),
            timestamp: timestamp_from(p.timestamp),
        };
        let comet = CometRequest::new(chain, key, CometMessage::Proposal(proposal))
            .map_err(|e| self.shared.invalid(&client, "proposal", e))?;
        let decided = self
            .shared
            .decide(permit, CometPolicy, client, comet)
            .await?;
        Ok(Response::new(v1::SignProposalResponse {
            outcome: decided.outcome(),
            signature: decided.first_signature()?,
            timestamp: decided.state.timestamp().map(timestamp_to),
            sign_bytes: decided.state.sign_bytes.clone(),
        }))
    }

    async fn sign_tezos(
        &self,
        request: Request<v1::SignTezosRequest>,
    ) -> Result<Response<v1::SignTezosResponse>, Status> {
        let client = self.shared.client(&request)?;
        let permit = self.shared.admit()?;
        let req = request.into_inner();
        let (chain, key) = self.ids(&client, &req.chain_id, &req.key_id)?;
        self.shared.authorize(&client, Domain::Consensus, &key)?;
        let tezos = TezosRequest::new(chain, key, req.operation)
            .map_err(|e| self.shared.invalid(&client, "operation", e))?;
        let (level, round) = match tezos.operation() {
            TezosOperation::Consensus { level, round, .. } => (level, round),
            _ => (0, 0),
        };
        let policy = self.shared.tezos.clone();
        let decided = self.shared.decide(permit, policy, client, tezos).await?;
        Ok(Response::new(v1::SignTezosResponse {
            outcome: decided.outcome(),
            signature: decided.first_signature()?,
            level,
            round,
        }))
    }

    async fn sign_height(
        &self,
        request: Request<v1::SignHeightRequest>,
    ) -> Result<Response<v1::SignHeightResponse>, Status> {
        let client = self.shared.client(&request)?;
        let permit = self.shared.admit()?;
        let req = request.into_inner();
        let (chain, key) = self.ids(&client, &req.chain_id, &req.key_id)?;
        self.shared.authorize(&client, Domain::Consensus, &key)?;
        let height = HeightRequest::new(chain, key, req.height, req.round, req.payload)
            .map_err(|e| self.shared.invalid(&client, "payload", e))?;
        let decided = self
            .shared
            .decide(permit, HeightPolicy, client, height)
            .await?;
        Ok(Response::new(v1::SignHeightResponse {
            outcome: decided.outcome(),
            signature: decided.first_signature()?,
        }))
    }
}
