//! The `tidemark.v1.Lightning` service: a channel signer for LDK nodes.
//!
//! Every call: identify the client (certificate), shed if overloaded,
//! validate the node's name (malformed: `INVALID_ARGUMENT`, audited),
//! authorize (a grant for the domain `lightning` and the node key; the
//! calls that return node secrets need it too), look the node up
//! (`NOT_FOUND`), check every field (`INVALID_ARGUMENT`, audited, nothing
//! changes), then decide.
//!
//! - `Channel` runs [`LightningSigner::channel`] on a blocking thread: the
//!   per-channel lock, the pure policy decision, the computation with the
//!   channel's keys and the durable commit, then the answer. A refusal is
//!   `FAILED_PRECONDITION` with the refusal in the details, its mark
//!   carrying the channel's numbers, as in every domain.
//! - `IssueChannelKeysId` commits the node's counter before it answers.
//! - The node operations sign or derive with the node secret in memory;
//!   each is audited and counted like a decision (a sweep to a script that
//!   is neither the node's nor allowlisted is refused with
//!   `policy-destination-not-allowed`).
//!
//! # Layout
//!
//! - `convert`: wire to domain and back, every field checked.
//! - `node_ops`: the node-level operations.

mod convert;
mod node_ops;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tidemark_core::{
    AuditEntry, AuditOutcome, ChainId, ClientId, Domain, KeyId, Mark, ObjectId, Refusal,
};
use tidemark_lightning::bitcoin::Network;
use tidemark_lightning::{ChannelOutcome, LightningError, LightningSigner};
use tidemark_proto::v1;
use tidemark_signer::{DecisionEvent, DecisionObserver as _};
use tonic::{Code, Request, Response, Status};
use tracing::{info, warn};

use crate::service::Shared;
use crate::status;

/// The object kind of a node's node-level operations
/// (`lightning/<network>/<node>/node`), in audit records and metrics.
pub const NODE_OBJECT_KIND: &str = "node";

/// The Lightning node a server serves: its node key, network and signer.
pub struct LightningNode {
    /// The node key's name (the grant and the objects' key).
    pub key: KeyId,
    /// The network.
    pub network: Network,
    /// The channel signer (and, through [`LightningSigner::node`], the
    /// node's keys).
    pub signer: LightningSigner,
    object: ObjectId,
}

impl std::fmt::Debug for LightningNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LightningNode")
            .field("key", &self.key)
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}

impl LightningNode {
    /// The node `key` on `chain` served by `signer`.
    pub fn new(
        key: KeyId,
        network: Network,
        chain: ChainId,
        signer: LightningSigner,
    ) -> Result<Self, LightningError> {
        let object = ObjectId::new(Domain::Lightning, chain, key.clone(), NODE_OBJECT_KIND)?;
        Ok(LightningNode {
            key,
            network,
            signer,
            object,
        })
    }

    /// The object node-level operations are audited against.
    pub fn object(&self) -> &ObjectId {
        &self.object
    }
}

/// The lightning service.
#[derive(Debug, Clone)]
pub struct LightningService {
    shared: Arc<Shared>,
}

/// The scope a denial or a malformed request about `node` is audited
/// against (the form [`Shared::authorize`] uses).
fn node_scope(node: &KeyId) -> String {
    format!("{}/*/{node}/*", Domain::Lightning)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl LightningService {
    /// A service over `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        LightningService { shared }
    }

    /// The node `name` names, once `client` is authorized for it: denied
    /// before it is looked up, so a client learns nothing of nodes it may
    /// not use.
    fn node(&self, client: &ClientId, name: &str) -> Result<Arc<LightningNode>, Status> {
        let key = KeyId::new(name).map_err(|e| self.shared.invalid(client, "node", e))?;
        self.shared.authorize(client, Domain::Lightning, &key)?;
        match &self.shared.lightning {
            Some(node) if node.key == key => Ok(node.clone()),
            _ => Err(Status::not_found(format!(
                "the signer serves no lightning node {key}"
            ))),
        }
    }

    /// Audits and counts a malformed request about `node`;
    /// `INVALID_ARGUMENT`.
    fn invalid(
        &self,
        client: &ClientId,
        node: &LightningNode,
        e: impl std::fmt::Display,
    ) -> Status {
        self.shared.audit_denied(
            client.as_str(),
            &node_scope(&node.key),
            "denied-invalid-argument",
        );
        Status::invalid_argument(e.to_string())
    }

    /// A status that is `INVALID_ARGUMENT` is audited like every malformed
    /// request.
    fn audited(&self, client: &ClientId, node: &LightningNode, status: Status) -> Status {
        if status.code() == Code::InvalidArgument {
            self.shared.audit_denied(
                client.as_str(),
                &node_scope(&node.key),
                "denied-invalid-argument",
            );
        }
        status
    }

    /// Runs blocking lightning work (store reads, commits) off the async
    /// threads; the permit is held until it is done, even if the caller
    /// gave up.
    async fn blocking<T: Send + 'static>(
        &self,
        permit: crate::limit::Permit,
        f: impl FnOnce() -> Result<T, LightningError> + Send + 'static,
    ) -> Result<Result<T, LightningError>, Status> {
        tokio::task::spawn_blocking(move || {
            let result = f();
            drop(permit);
            result
        })
        .await
        .map_err(|e| Status::internal(format!("lightning task failed: {e}")))
    }

    /// Records a node-level operation: one audit record and one metric.
    fn account(
        &self,
        client: &ClientId,
        node: &LightningNode,
        operation: &str,
        outcome: AuditOutcome,
        tag: Option<&str>,
        started: Instant,
    ) {
        let object = node.object();
        info!(client = %client, object = %object, operation, outcome = outcome.as_str(), tag = tag.unwrap_or(""), "node operation");
        self.shared.metrics.observe(&DecisionEvent {
            object,
            client,
            outcome,
            tag,
            latency: started.elapsed(),
        });
        let entry = AuditEntry {
            time_ms: now_ms(),
            client: client.to_string(),
            object: object.to_string(),
            outcome,
            tag: tag.map(str::to_owned),
            mark: Mark::none(),
            digest: None,
        };
        if let Err(e) = self.shared.signer.store().audit(entry) {
            warn!(error = %e, "node operation not audited");
        }
    }

    /// A node-level refusal: audited, counted, `FAILED_PRECONDITION`.
    fn refuse(
        &self,
        client: &ClientId,
        node: &LightningNode,
        operation: &str,
        tag: &'static str,
        detail: String,
        started: Instant,
    ) -> Status {
        self.account(
            client,
            node,
            operation,
            AuditOutcome::Refused,
            Some(tag),
            started,
        );
        status::refused(&Refusal {
            tag: tidemark_core::Tag::new(tag),
            object: node.object().clone(),
            current: Mark::none(),
            detail,
        })
    }
}

#[tonic::async_trait]
impl v1::lightning_server::Lightning for LightningService {
    async fn issue_channel_keys_id(
        &self,
        request: Request<v1::IssueChannelKeysIdRequest>,
    ) -> Result<Response<v1::IssueChannelKeysIdResponse>, Status> {
        let client = self.shared.client(&request)?;
        let permit = self.shared.admit()?;
        let req = request.into_inner();
        let node = self.node(&client, &req.node)?;
        let user = convert::user_channel_id(&req.user_channel_id)
            .map_err(|e| self.invalid(&client, &node, e))?;
        let (n, asking) = (node.clone(), client.clone());
        let id = self
            .blocking(permit, move || {
                n.signer.issue_channel_keys_id(&asking, user)
            })
            .await?
            .map_err(|e| self.audited(&client, &node, status::lightning_error(&e)))?;
        Ok(Response::new(v1::IssueChannelKeysIdResponse {
            channel_keys_id: id.to_vec(),
        }))
    }

    async fn get_channel_public_keys(
        &self,
        request: Request<v1::GetChannelPublicKeysRequest>,
    ) -> Result<Response<v1::GetChannelPublicKeysResponse>, Status> {
        let client = self.shared.client(&request)?;
        let req = request.into_inner();
        let node = self.node(&client, &req.node)?;
        let id = convert::bytes32("channel_keys_id", &req.channel_keys_id)
            .map_err(|e| self.invalid(&client, &node, e))?;
        let keys = node.signer.node().channel_public_keys(id);
        Ok(Response::new(v1::GetChannelPublicKeysResponse {
            keys: Some(convert::channel_keys_to_proto(&keys)),
        }))
    }

    async fn channel(
        &self,
        request: Request<v1::ChannelRequest>,
    ) -> Result<Response<v1::ChannelResponse>, Status> {
        let client = self.shared.client(&request)?;
        let permit = self.shared.admit()?;
        let req = request.into_inner();
        let node = self.node(&client, &req.node)?;
        let call = convert::channel_request(req).map_err(|e| self.invalid(&client, &node, e))?;
        let (n, asking) = (node.clone(), client.clone());
        let outcome = self
            .blocking(permit, move || {
                n.signer.channel(
                    &asking,
                    &call.channel_keys_id,
                    &call.request,
                    call.best_block_height,
                )
            })
            .await?
            .map_err(|e| self.audited(&client, &node, status::lightning_error(&e)))?;
        let response = match outcome {
            ChannelOutcome::Done { output, warnings } => {
                convert::channel_response(v1::ChannelOutcome::Done, &output, &warnings)
            }
            ChannelOutcome::Replayed { output } => {
                convert::channel_response(v1::ChannelOutcome::Replayed, &output, &[])
            }
            ChannelOutcome::Refused(refusal) => return Err(status::refused(&refusal)),
        };
        Ok(Response::new(response))
    }

    async fn get_node_id(
        &self,
        request: Request<v1::GetNodeIdRequest>,
    ) -> Result<Response<v1::GetNodeIdResponse>, Status> {
        let client = self.shared.client(&request)?;
        let node = self.node(&client, &request.get_ref().node)?;
        Ok(Response::new(v1::GetNodeIdResponse {
            node_id: node.signer.node().node_id().serialize().to_vec(),
        }))
    }

    async fn get_node_scripts(
        &self,
        request: Request<v1::GetNodeScriptsRequest>,
    ) -> Result<Response<v1::GetNodeScriptsResponse>, Status> {
        let client = self.shared.client(&request)?;
        let node = self.node(&client, &request.get_ref().node)?;
        let keys = node.signer.node();
        Ok(Response::new(v1::GetNodeScriptsResponse {
            destination_script: keys.destination_script().to_bytes(),
            shutdown_script: keys.shutdown_script().into_inner().into_bytes(),
        }))
    }

    async fn ecdh(
        &self,
        request: Request<v1::EcdhRequest>,
    ) -> Result<Response<v1::EcdhResponse>, Status> {
        let client = self.shared.client(&request)?;
        let _permit = self.shared.admit()?;
        let req = request.into_inner();
        let node = self.node(&client, &req.node)?;
        node_ops::ecdh(self, &client, &node, req).map(Response::new)
    }

    async fn sign_invoice(
        &self,
        request: Request<v1::SignInvoiceRequest>,
    ) -> Result<Response<v1::SignInvoiceResponse>, Status> {
        let client = self.shared.client(&request)?;
        let _permit = self.shared.admit()?;
        let req = request.into_inner();
        let node = self.node(&client, &req.node)?;
        node_ops::sign_invoice(self, &client, &node, req).map(Response::new)
    }

    async fn sign_bolt12_invoice(
        &self,
        request: Request<v1::SignBolt12InvoiceRequest>,
    ) -> Result<Response<v1::SignBolt12InvoiceResponse>, Status> {
        let client = self.shared.client(&request)?;
        let _permit = self.shared.admit()?;
        let req = request.into_inner();
        let node = self.node(&client, &req.node)?;
        node_ops::sign_bolt12_invoice(self, &client, &node, req).map(Response::new)
    }

    async fn sign_gossip_message(
        &self,
        request: Request<v1::SignGossipMessageRequest>,
    ) -> Result<Response<v1::SignGossipMessageResponse>, Status> {
        let client = self.shared.client(&request)?;
        let _permit = self.shared.admit()?;
        let req = request.into_inner();
        let node = self.node(&client, &req.node)?;
        node_ops::sign_gossip_message(self, &client, &node, req).map(Response::new)
    }

    async fn sign_message(
        &self,
        request: Request<v1::SignMessageRequest>,
    ) -> Result<Response<v1::SignMessageResponse>, Status> {
        let client = self.shared.client(&request)?;
        let _permit = self.shared.admit()?;
        let req = request.into_inner();
        let node = self.node(&client, &req.node)?;
        node_ops::sign_message(self, &client, &node, req).map(Response::new)
    }

    async fn get_expanded_key(
        &self,
        request: Request<v1::GetExpandedKeyRequest>,
    ) -> Result<Response<v1::GetExpandedKeyResponse>, Status> {
        let client = self.shared.client(&request)?;
        let node = self.node(&client, &request.get_ref().node)?;
        let started = Instant::now();
        let key = node.signer.node().inbound_payment_key_material();
        self.account(
            &client,
            &node,
            "get-expanded-key",
            AuditOutcome::Signed,
            None,
            started,
        );
        Ok(Response::new(v1::GetExpandedKeyResponse {
            key_material: key.to_vec(),
        }))
    }

    async fn get_peer_storage_key(
        &self,
        request: Request<v1::GetPeerStorageKeyRequest>,
    ) -> Result<Response<v1::GetPeerStorageKeyResponse>, Status> {
        let client = self.shared.client(&request)?;
        let node = self.node(&client, &request.get_ref().node)?;
        let started = Instant::now();
        let key = zeroize::Zeroizing::new(node.signer.node().peer_storage_key().inner);
        self.account(
            &client,
            &node,
            "get-peer-storage-key",
            AuditOutcome::Signed,
            None,
            started,
        );
        Ok(Response::new(v1::GetPeerStorageKeyResponse {
            key: key.to_vec(),
        }))
    }

    async fn get_receive_auth_key(
        &self,
        request: Request<v1::GetReceiveAuthKeyRequest>,
    ) -> Result<Response<v1::GetReceiveAuthKeyResponse>, Status> {
        let client = self.shared.client(&request)?;
        let node = self.node(&client, &request.get_ref().node)?;
        let started = Instant::now();
        let key = zeroize::Zeroizing::new(node.signer.node().receive_auth_key().0);
        self.account(
            &client,
            &node,
            "get-receive-auth-key",
            AuditOutcome::Signed,
            None,
            started,
        );
        Ok(Response::new(v1::GetReceiveAuthKeyResponse {
            key: key.to_vec(),
        }))
    }

    async fn spend_spendable_outputs(
        &self,
        request: Request<v1::SpendSpendableOutputsRequest>,
    ) -> Result<Response<v1::SpendSpendableOutputsResponse>, Status> {
        let client = self.shared.client(&request)?;
        let _permit = self.shared.admit()?;
        let req = request.into_inner();
        let node = self.node(&client, &req.node)?;
        node_ops::spend_spendable_outputs(self, &client, &node, req).map(Response::new)
    }
}
