//! What every RPC handler shares: the pipelines, the ACL, the in-flight
//! bound, metrics, and the steps every request takes before a decision
//! (identify, shed, validate, authorize) with their audit records.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tidemark_bitcoin::WalletSigner;
use tidemark_core::{AuditEntry, AuditOutcome, ClientId, Domain, KeyId, Mark, Policy, StoreError};
use tidemark_signer::{Outcome, Signer};
use tidemark_tls::PeerInfo;
use tonic::{Request, Status};
use tracing::warn;

use crate::acl::{Acl, Denial};
use crate::lightning_service::LightningNode;
use crate::limit::{InFlight, Permit};
use crate::metrics::Metrics;
use crate::status;

/// State shared by all handlers.
pub struct Shared {
    /// The decision pipeline.
    pub signer: Arc<Signer>,
    /// The wallet pipeline (over the same store and keys).
    pub wallets: Arc<WalletSigner>,
    /// The Lightning node, if the config has one (over the same store).
    pub lightning: Option<Arc<LightningNode>>,
    /// Who may do what.
    pub acl: Acl,
    /// The in-flight bound.
    pub in_flight: Arc<InFlight>,
    /// Metrics (also the pipeline's observer).
    pub metrics: Arc<Metrics>,
    /// Tezos policy options.
    pub tezos: tidemark_consensus::TezosPolicy,
    /// When the server started.
    pub started: Instant,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    /// The Prometheus exposition.
    pub fn render_metrics(&self) -> String {
        self.metrics
            .render(self.in_flight.current(), self.in_flight.shed())
    }

    /// Ok when the store can take commits. May write a durable probe (after
    /// a failed commit), so it blocks: from async code use [`Shared::ready_async`].
    pub fn ready(&self) -> Result<(), StoreError> {
        self.signer.store().check_health()
    }

    /// [`Shared::ready`] on a blocking thread.
    pub async fn ready_async(self: &Arc<Self>) -> Result<(), StoreError> {
        let shared = self.clone();
        tokio::task::spawn_blocking(move || shared.ready())
            .await
            .unwrap_or(Err(StoreError::Closed))
    }

    /// The authenticated client of `request`.
    pub fn client<T>(&self, request: &Request<T>) -> Result<ClientId, Status> {
        PeerInfo::of(request)
            .map(|p| p.identity.clone())
            .ok_or_else(|| Status::unauthenticated("no verified client certificate"))
    }

    /// A permit to proceed, or `RESOURCE_EXHAUSTED`.
    pub fn admit(&self) -> Result<Permit, Status> {
        self.in_flight.try_acquire().ok_or_else(|| {
            self.metrics.count_denied("overloaded");
            status::overloaded()
        })
    }

    /// Checks the grant of `client` for `key` in `domain`; a denial is
    /// audited and counted.
    pub fn authorize(&self, client: &ClientId, domain: Domain, key: &KeyId) -> Result<(), Status> {
        self.acl.authorize(client, domain, key).map_err(|d| {
            self.audit_denial(client.as_str(), &format!("{domain}/*/{key}/*"), &d);
            status::denied(&d)
        })
    }

    /// Checks that `client` may use the admin service.
    pub fn authorize_admin(&self, client: &ClientId) -> Result<(), Status> {
        self.authorize_admin_for(client, "admin")
    }

    /// Checks that `client` has the admin grant an operator's call on
    /// `object` needs; a denial is audited against `object`.
    pub fn authorize_admin_for(&self, client: &ClientId, object: &str) -> Result<(), Status> {
        self.acl.authorize_admin(client).map_err(|d| {
            self.audit_denial(client.as_str(), object, &d);
            status::denied(&d)
        })
    }

    /// Audits and counts a malformed request; returns `INVALID_ARGUMENT`.
    pub fn invalid(&self, client: &ClientId, what: &str, error: impl std::fmt::Display) -> Status {
        self.audit_denied(client.as_str(), what, "denied-invalid-argument");
        Status::invalid_argument(format!("{what}: {error}"))
    }

    fn audit_denial(&self, client: &str, object: &str, denial: &Denial) {
        self.audit_denied(client, object, denial.tag());
    }

    /// Writes a `denied` audit record and counts it.
    pub fn audit_denied(&self, client: &str, object: &str, tag: &'static str) {
        self.metrics.count_denied(tag);
        let entry = AuditEntry {
            time_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            client: client.to_owned(),
            object: object.to_owned(),
            outcome: AuditOutcome::Denied,
            tag: Some(tag.to_owned()),
            mark: Mark::none(),
            digest: None,
        };
        if let Err(e) = self.signer.store().audit(entry) {
            warn!(error = %e, "denial not audited");
        }
    }

    /// Runs the pipeline on a blocking thread (it waits for an fsync) and
    /// maps a refusal or error to a status.
    ///
    /// The `permit` moves into the blocking task: a request whose caller
    /// gave up (deadline) still counts against the in-flight bound until
    /// its commit is done.
    pub async fn decide<P>(
        self: &Arc<Self>,
        permit: Permit,
        policy: P,
        client: ClientId,
        request: P::Request,
    ) -> Result<Decided<P::State>, Status>
    where
        P: Policy + 'static,
        P::Request: 'static,
        P::State: 'static,
    {
        let shared = self.clone();
        // If the caller's deadline passes while this runs, the task still
        // finishes: a signature committed but never delivered is safe (a
        // retry replays it), a half-done commit is not possible.
        let outcome = tokio::task::spawn_blocking(move || {
            let result = shared.signer.sign(&policy, &client, &request);
            drop(permit);
            result
        })
        .await
        .map_err(|e| Status::internal(format!("signing task failed: {e}")))?
        .map_err(|e| status::sign_error(&e))?;
        match outcome {
            Outcome::Signed {
                signatures, state, ..
            } => Ok(Decided {
                replayed: false,
                signatures,
                state,
            }),
            Outcome::Replayed {
                signatures, state, ..
            } => Ok(Decided {
                replayed: true,
                signatures,
                state,
            }),
            Outcome::Refused(refusal) => Err(status::refused(&refusal)),
        }
    }
}

/// A successful decision, ready to be turned into a response.
#[derive(Debug)]
pub struct Decided<S> {
    /// True for an identical repeat.
    pub replayed: bool,
    /// The signatures.
    pub signatures: Vec<tidemark_core::Signature>,
    /// The state they belong to.
    pub state: S,
}

impl<S> Decided<S> {
    /// The wire outcome.
    pub fn outcome(&self) -> i32 {
        if self.replayed {
            tidemark_proto::v1::Outcome::Replayed as i32
        } else {
            tidemark_proto::v1::Outcome::Signed as i32
        }
    }

    /// The first signature's bytes (every accepted request has one).
    pub fn first_signature(&self) -> Result<Vec<u8>, Status> {
        self.signatures
            .first()
            .map(|s| s.0.clone())
            .ok_or_else(|| Status::internal("decision produced no signature"))
    }
}
