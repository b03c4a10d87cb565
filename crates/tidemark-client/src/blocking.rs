//! The blocking client: an async [`Client`] on a runtime of its own.
//! The lightning calls are in `lightning`.

mod lightning;

use tidemark_proto::v1;

use crate::client::{Client, ClientOptions};
use crate::error::ClientError;

/// A synchronous client. Do not call it from inside an async runtime
/// (use [`Client`] there).
#[derive(Debug)]
pub struct BlockingClient {
    runtime: tokio::runtime::Runtime,
    client: Client,
}

impl BlockingClient {
    /// A client that connects on first use and redials when needed.
    pub fn connect_lazy(options: ClientOptions) -> Result<Self, ClientError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tidemark-client")
            .enable_all()
            .build()
            .map_err(|e| ClientError::Unavailable(format!("cannot start client runtime: {e}")))?;
        let client = {
            let _entered = runtime.enter();
            Client::connect_lazy(options)?
        };
        Ok(BlockingClient { runtime, client })
    }

    /// The async client inside (for calls this type does not wrap).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Signs a CometBFT vote.
    pub fn sign_vote(&self, r: v1::SignVoteRequest) -> Result<v1::SignVoteResponse, ClientError> {
        self.runtime.block_on(self.client.sign_vote(r))
    }

    /// Signs a CometBFT proposal.
    pub fn sign_proposal(
        &self,
        r: v1::SignProposalRequest,
    ) -> Result<v1::SignProposalResponse, ClientError> {
        self.runtime.block_on(self.client.sign_proposal(r))
    }

    /// Signs a Tezos operation.
    pub fn sign_tezos(
        &self,
        r: v1::SignTezosRequest,
    ) -> Result<v1::SignTezosResponse, ClientError> {
        self.runtime.block_on(self.client.sign_tezos(r))
    }

    /// Signs at a plain height.
    pub fn sign_height(
        &self,
        r: v1::SignHeightRequest,
    ) -> Result<v1::SignHeightResponse, ClientError> {
        self.runtime.block_on(self.client.sign_height(r))
    }

    /// Signs a PSBT for a payment intent.
    pub fn sign_psbt(&self, r: v1::SignPsbtRequest) -> Result<v1::SignPsbtResponse, ClientError> {
        self.runtime.block_on(self.client.sign_psbt(r))
    }

    /// Every intent of `wallet` (admin grant needed).
    pub fn list_intents(&self, wallet: &str) -> Result<Vec<v1::Intent>, ClientError> {
        self.runtime.block_on(self.client.list_intents(wallet))
    }

    /// Marks an intent confirmed or abandoned (admin grant needed).
    pub fn release_intent(&self, r: v1::ReleaseIntentRequest) -> Result<v1::Intent, ClientError> {
        self.runtime.block_on(self.client.release_intent(r))
    }

    /// The kind, network and watch-only descriptors of `wallet`.
    pub fn get_wallet(&self, wallet: &str) -> Result<v1::GetWalletResponse, ClientError> {
        self.runtime.block_on(self.client.get_wallet(wallet))
    }

    /// The signer's status (admin grant needed).
    pub fn status(&self) -> Result<v1::StatusResponse, ClientError> {
        self.runtime.block_on(self.client.status())
    }
}
