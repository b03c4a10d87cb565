//! The lightning calls of [`BlockingClient`]: LDK's signer traits are
//! synchronous, so the LDK adapter calls these.

use tidemark_lightning::bitcoin::secp256k1::PublicKey;
use tidemark_lightning::bitcoin::secp256k1::ecdsa::Signature;
use tidemark_lightning::channel::{ChannelKeys, ChannelRequest};
use tidemark_proto::v1;
use zeroize::Zeroizing;

use super::BlockingClient;
use crate::error::ClientError;
use crate::lightning::{ChannelAnswer, NodeScripts};

impl BlockingClient {
    /// A new channel keys id from the signer's durable counter.
    pub fn issue_channel_keys_id(
        &self,
        node: &str,
        user_channel_id: u128,
    ) -> Result<[u8; 32], ClientError> {
        self.runtime
            .block_on(self.client.issue_channel_keys_id(node, user_channel_id))
    }

    /// The holder's channel public keys of `channel_keys_id`.
    pub fn channel_public_keys(
        &self,
        node: &str,
        channel_keys_id: &[u8; 32],
    ) -> Result<ChannelKeys, ClientError> {
        self.runtime
            .block_on(self.client.channel_public_keys(node, channel_keys_id))
    }

    /// One channel operation, as a wire request.
    pub fn channel(&self, r: v1::ChannelRequest) -> Result<v1::ChannelResponse, ClientError> {
        self.runtime.block_on(self.client.channel(r))
    }

    /// One structured channel operation, its answer decoded.
    pub fn channel_call(
        &self,
        node: &str,
        channel_keys_id: &[u8; 32],
        request: &ChannelRequest,
        best_block_height: Option<u32>,
    ) -> Result<ChannelAnswer, ClientError> {
        self.runtime.block_on(self.client.channel_call(
            node,
            channel_keys_id,
            request,
            best_block_height,
        ))
    }

    /// The node id.
    pub fn node_id(&self, node: &str) -> Result<PublicKey, ClientError> {
        self.runtime.block_on(self.client.node_id(node))
    }

    /// The node's destination and shutdown scripts.
    pub fn node_scripts(&self, node: &str) -> Result<NodeScripts, ClientError> {
        self.runtime.block_on(self.client.node_scripts(node))
    }

    /// ECDH with the node secret.
    pub fn ecdh(&self, r: v1::EcdhRequest) -> Result<[u8; 32], ClientError> {
        self.runtime.block_on(self.client.ecdh(r))
    }

    /// Signs a BOLT 11 invoice.
    pub fn sign_invoice(
        &self,
        r: v1::SignInvoiceRequest,
    ) -> Result<v1::SignInvoiceResponse, ClientError> {
        self.runtime.block_on(self.client.sign_invoice(r))
    }

    /// Signs a BOLT 12 invoice.
    pub fn sign_bolt12_invoice(
        &self,
        r: v1::SignBolt12InvoiceRequest,
    ) -> Result<v1::SignBolt12InvoiceResponse, ClientError> {
        self.runtime.block_on(self.client.sign_bolt12_invoice(r))
    }

    /// Signs a gossip message.
    pub fn sign_gossip_message(
        &self,
        r: v1::SignGossipMessageRequest,
    ) -> Result<Signature, ClientError> {
        self.runtime.block_on(self.client.sign_gossip_message(r))
    }

    /// Signs a message (zbase32).
    pub fn sign_message(&self, node: &str, message: &[u8]) -> Result<String, ClientError> {
        self.runtime
            .block_on(self.client.sign_message(node, message))
    }

    /// The inbound payment key material (a node secret).
    pub fn expanded_key_material(&self, node: &str) -> Result<Zeroizing<[u8; 32]>, ClientError> {
        self.runtime
            .block_on(self.client.expanded_key_material(node))
    }

    /// The peer storage key (a node secret).
    pub fn peer_storage_key(&self, node: &str) -> Result<Zeroizing<[u8; 32]>, ClientError> {
        self.runtime.block_on(self.client.peer_storage_key(node))
    }

    /// The receive auth key (a node secret).
    pub fn receive_auth_key(&self, node: &str) -> Result<Zeroizing<[u8; 32]>, ClientError> {
        self.runtime.block_on(self.client.receive_auth_key(node))
    }

    /// Sweeps spendable outputs: the signed transaction, consensus-encoded.
    pub fn spend_spendable_outputs(
        &self,
        r: v1::SpendSpendableOutputsRequest,
    ) -> Result<Vec<u8>, ClientError> {
        self.runtime
            .block_on(self.client.spend_spendable_outputs(r))
    }
}
