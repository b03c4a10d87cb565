//! The `tidemark.v1.Admin` service. Every call needs an admin grant.

use std::sync::Arc;

use tidemark_core::{AuditOutcome, ChainId, KeyId};
use tidemark_proto::v1;
use tonic::{Request, Response, Status};

use crate::marks::{self, StateFileFormat};
use crate::service::Shared;
use crate::status::{mark_to_proto, sign_error};

/// The admin service.
#[derive(Debug, Clone)]
pub struct AdminService {
    shared: Arc<Shared>,
}

impl AdminService {
    /// A service over `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        AdminService { shared }
    }

    fn admin<T>(&self, request: &Request<T>) -> Result<tidemark_core::ClientId, Status> {
        let client = self.shared.client(request)?;
        self.shared.authorize_admin(&client)?;
        Ok(client)
    }

    /// Runs blocking store work off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Shared) -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || f(&shared))
            .await
            .map_err(|e| Status::internal(format!("admin task failed: {e}")))?
    }
}

#[tonic::async_trait]
impl v1::admin_server::Admin for AdminService {
    async fn status(
        &self,
        request: Request<v1::StatusRequest>,
    ) -> Result<Response<v1::StatusResponse>, Status> {
        self.admin(&request)?;
        let health = self.shared.ready_async().await;
        let m = &self.shared.metrics;
        Ok(Response::new(v1::StatusResponse {
            version: env!("CARGO_PKG_VERSION").into(),
            uptime_seconds: self.shared.started.elapsed().as_secs(),
            store_healthy: health.is_ok(),
            store_error: health.err().map(|e| e.to_string()).unwrap_or_default(),
            signed: m.total(AuditOutcome::Signed),
            replayed: m.total(AuditOutcome::Replayed),
            refused: m.total(AuditOutcome::Refused),
            in_flight: self.shared.in_flight.current() as u64,
        }))
    }

    async fn list_keys(
        &self,
        request: Request<v1::ListKeysRequest>,
    ) -> Result<Response<v1::ListKeysResponse>, Status> {
        self.admin(&request)?;
        let keys = self
            .blocking(|s| {
                s.signer
                    .keys()
                    .keys()
                    .map_err(|e| Status::unavailable(e.to_string()))
            })
            .await?;
        Ok(Response::new(v1::ListKeysResponse {
            keys: keys
                .into_iter()
                .map(|(id, pk)| v1::KeyInfo {
                    key_id: id.to_string(),
                    scheme: pk.scheme.to_string(),
                    public_key: pk.bytes,
                })
                .collect(),
        }))
    }

    async fn list_marks(
        &self,
        request: Request<v1::ListMarksRequest>,
    ) -> Result<Response<v1::ListMarksResponse>, Status> {
        self.admin(&request)?;
        let objects = self
            .blocking(|s| {
                s.signer
                    .store()
                    .objects()
                    .map_err(|e| sign_error(&e.into()))
            })
            .await?;
        Ok(Response::new(v1::ListMarksResponse {
            marks: objects
                .into_iter()
                .map(|(object, stored)| v1::ObjectMark {
                    object: object.to_string(),
                    version: stored.version,
                    mark: Some(mark_to_proto(&stored.mark)),
                })
                .collect(),
        }))
    }

    async fn export_marks(
        &self,
        request: Request<v1::ExportMarksRequest>,
    ) -> Result<Response<v1::ExportMarksResponse>, Status> {
        self.admin(&request)?;
        let json = self
            .blocking(|s| {
                let doc = marks::export(s.signer.store().as_ref()).map_err(|e| sign_error(&e))?;
                serde_json::to_string_pretty(&doc).map_err(|e| Status::internal(e.to_string()))
            })
            .await?;
        Ok(Response::new(v1::ExportMarksResponse { json }))
    }

    async fn import_marks(
        &self,
        request: Request<v1::ImportMarksRequest>,
    ) -> Result<Response<v1::ImportMarksResponse>, Status> {
        let client = self.admin(&request)?;
        let req = request.into_inner();
        let report = self
            .blocking(move |s| {
                let format = v1::ImportFormat::try_from(req.format)
                    .map_err(|_| Status::invalid_argument("unknown import format"))?;
                let file_format = match format {
                    v1::ImportFormat::Tidemark => {
                        return marks::import_document(&s.signer, &client, &req.document)
                            .map_err(import_error);
                    }
                    v1::ImportFormat::Cometbft => StateFileFormat::CometBft,
                    v1::ImportFormat::Tmkms => StateFileFormat::Tmkms,
                    v1::ImportFormat::Unspecified => {
                        return Err(Status::invalid_argument("import format is required"));
                    }
                };
                let chain = ChainId::new(req.chain_id)
                    .map_err(|e| Status::invalid_argument(format!("chain_id: {e}")))?;
                let key = KeyId::new(req.key_id)
                    .map_err(|e| Status::invalid_argument(format!("key_id: {e}")))?;
                marks::import_state_file(
                    &s.signer,
                    &client,
                    file_format,
                    chain,
                    key,
                    req.document.as_bytes(),
                )
                .map_err(import_error)
            })
            .await?;
        Ok(Response::new(v1::ImportMarksResponse {
            raised: report.raised,
            unchanged: report.unchanged,
        }))
    }
}

fn import_error(e: marks::MarksError) -> Status {
    match e {
        marks::MarksError::Sign(e) => sign_error(&e),
        other => Status::invalid_argument(other.to_string()),
    }
}
