//! The async client.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tidemark_proto::v1;
use tidemark_proto::v1::admin_client::AdminClient;
use tidemark_proto::v1::bitcoin_client::BitcoinClient;
use tidemark_proto::v1::consensus_client::ConsensusClient;
use tidemark_proto::v1::lightning_client::LightningClient;
use tonic::transport::Channel;

use crate::error::ClientError;

/// How to reach the signer.
#[derive(Clone)]
pub struct ClientOptions {
    /// `host:port` of the signer.
    pub addr: String,
    /// The name in the signer's certificate (e.g. `localhost`).
    pub server_name: String,
    /// TLS 1.3 client configuration with this replica's certificate.
    pub tls: Arc<rustls::ClientConfig>,
    /// Deadline of every call (sent to the signer as `grpc-timeout`).
    pub deadline: Duration,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("addr", &self.addr)
            .field("server_name", &self.server_name)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl ClientOptions {
    /// Options from PEM files: the CA, this replica's certificate and key.
    pub fn from_files(
        addr: &str,
        server_name: &str,
        ca: &Path,
        cert: &Path,
        key: &Path,
    ) -> Result<Self, ClientError> {
        let tls = tidemark_tls::client_config_from_files(ca, cert, key)
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        Ok(ClientOptions {
            addr: addr.to_owned(),
            server_name: server_name.to_owned(),
            tls,
            deadline: Duration::from_secs(5),
        })
    }

    /// The same options with another deadline.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }
}

/// An async client. Cheap to clone; clones share one connection.
#[derive(Debug, Clone)]
pub struct Client {
    consensus: ConsensusClient<Channel>,
    bitcoin: BitcoinClient<Channel>,
    lightning: LightningClient<Channel>,
    admin: AdminClient<Channel>,
    deadline: Duration,
}

impl Client {
    /// A client that connects on first use and redials whenever the
    /// connection drops. Must be called within a tokio runtime.
    pub fn connect_lazy(options: ClientOptions) -> Result<Self, ClientError> {
        let channel = tidemark_tls::lazy_channel(&options.addr, &options.server_name, options.tls)
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        Ok(Client::from_channel(channel, options.deadline))
    }

    /// Connects now (fails fast if the signer is unreachable).
    pub async fn connect(options: ClientOptions) -> Result<Self, ClientError> {
        let channel =
            tidemark_tls::connect_channel(&options.addr, &options.server_name, options.tls)
                .await
                .map_err(|e| ClientError::Unavailable(e.to_string()))?;
        Ok(Client::from_channel(channel, options.deadline))
    }

    fn from_channel(channel: Channel, deadline: Duration) -> Self {
        Client {
            consensus: ConsensusClient::new(channel.clone()),
            bitcoin: BitcoinClient::new(channel.clone()),
            lightning: LightningClient::new(channel.clone()),
            admin: AdminClient::new(channel),
            deadline,
        }
    }

    /// The lightning service's generated client (shares the connection).
    pub(crate) fn lightning_client(&self) -> LightningClient<Channel> {
        self.lightning.clone()
    }

    pub(crate) fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.deadline);
        request
    }

    /// Signs a CometBFT vote.
    pub async fn sign_vote(
        &self,
        request: v1::SignVoteRequest,
    ) -> Result<v1::SignVoteResponse, ClientError> {
        let r = self.request(request);
        Ok(self.consensus.clone().sign_vote(r).await?.into_inner())
    }

    /// Signs a CometBFT proposal.
    pub async fn sign_proposal(
        &self,
        request: v1::SignProposalRequest,
    ) -> Result<v1::SignProposalResponse, ClientError> {
        let r = self.request(request);
        Ok(self.consensus.clone().sign_proposal(r).await?.into_inner())
    }

    /// Signs a Tezos operation.
    pub async fn sign_tezos(
        &self,
        request: v1::SignTezosRequest,
    ) -> Result<v1::SignTezosResponse, ClientError> {
        let r = self.request(request);
        Ok(self.consensus.clone().sign_tezos(r).await?.into_inner())
    }

    /// Signs at a plain height.
    pub async fn sign_height(
        &self,
        request: v1::SignHeightRequest,
    ) -> Result<v1::SignHeightResponse, ClientError> {
        let r = self.request(request);
        Ok(self.consensus.clone().sign_height(r).await?.into_inner())
    }

    /// Signs a PSBT for a payment intent. A conflicting intent or input
    /// is [`ClientError::Refused`] (`policy-intent-conflict`,
    /// `policy-input-conflict`, ...); an identical repeat returns the
    /// stored signatures with outcome `REPLAYED`.
    pub async fn sign_psbt(
        &self,
        request: v1::SignPsbtRequest,
    ) -> Result<v1::SignPsbtResponse, ClientError> {
        let r = self.request(request);
        Ok(self.bitcoin.clone().sign_psbt(r).await?.into_inner())
    }

    /// Every intent of `wallet` (admin grant needed).
    pub async fn list_intents(&self, wallet: &str) -> Result<Vec<v1::Intent>, ClientError> {
        let r = self.request(v1::ListIntentsRequest {
            wallet: wallet.to_owned(),
        });
        Ok(self
            .bitcoin
            .clone()
            .list_intents(r)
            .await?
            .into_inner()
            .intents)
    }

    /// Marks an intent confirmed or abandoned, freeing its inputs (admin
    /// grant needed).
    pub async fn release_intent(
        &self,
        request: v1::ReleaseIntentRequest,
    ) -> Result<v1::Intent, ClientError> {
        let r = self.request(request);
        self.bitcoin
            .clone()
            .release_intent(r)
            .await?
            .into_inner()
            .intent
            .ok_or_else(|| ClientError::Other {
                code: tonic::Code::Internal,
                message: "release answered without the intent".into(),
            })
    }

    /// The kind, network and watch-only descriptors of `wallet`.
    pub async fn get_wallet(&self, wallet: &str) -> Result<v1::GetWalletResponse, ClientError> {
        let r = self.request(v1::GetWalletRequest {
            wallet: wallet.to_owned(),
        });
        Ok(self.bitcoin.clone().get_wallet(r).await?.into_inner())
    }

    /// The signer's status (admin grant needed).
    pub async fn status(&self) -> Result<v1::StatusResponse, ClientError> {
        let r = self.request(v1::StatusRequest {});
        Ok(self.admin.clone().status(r).await?.into_inner())
    }

    /// The signer's keys (admin grant needed).
    pub async fn list_keys(&self) -> Result<v1::ListKeysResponse, ClientError> {
        let r = self.request(v1::ListKeysRequest {});
        Ok(self.admin.clone().list_keys(r).await?.into_inner())
    }

    /// Every object's mark (admin grant needed).
    pub async fn list_marks(&self) -> Result<v1::ListMarksResponse, ClientError> {
        let r = self.request(v1::ListMarksRequest {});
        Ok(self.admin.clone().list_marks(r).await?.into_inner())
    }

    /// The marks as the JSON interchange document (admin grant needed).
    pub async fn export_marks(&self) -> Result<String, ClientError> {
        let r = self.request(v1::ExportMarksRequest {});
        Ok(self.admin.clone().export_marks(r).await?.into_inner().json)
    }

    /// Imports marks; only ever raises them (admin grant needed).
    pub async fn import_marks(
        &self,
        request: v1::ImportMarksRequest,
    ) -> Result<v1::ImportMarksResponse, ClientError> {
        let r = self.request(request);
        Ok(self.admin.clone().import_marks(r).await?.into_inner())
    }
}
