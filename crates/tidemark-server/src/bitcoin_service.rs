//! The `tidemark.v1.Bitcoin` service: PSBTs signed for payment intents.
//!
//! `SignPsbt`: identify the client (certificate), shed if overloaded,
//! validate the wallet and intent ids (malformed: `INVALID_ARGUMENT`,
//! audited), authorize (a grant for the domain `bitcoin` and the wallet's
//! key), parse the declared payments, then run the wallet pipeline on a
//! blocking thread. A PSBT the pipeline cannot use is `INVALID_ARGUMENT`
//! and audited like any malformed request; a refusal is
//! `FAILED_PRECONDITION` with the refusal in the details, as in every
//! domain.
//!
//! `ListIntents` and `ReleaseIntent` are an operator's calls and need the
//! admin grant; `GetWallet` needs a grant for the wallet or the admin grant.

use std::sync::Arc;

use tidemark_bitcoin::{
    BitcoinError, IntentId, IntentRecord, IntentStatus, Payment, Release, SignOutcome, SignRequest,
    WalletKind,
};
use tidemark_core::{ClientId, Domain, KeyId};
use tidemark_proto::v1;
use tonic::{Code, Request, Response, Status};

use crate::service::Shared;
use crate::status;

/// The bitcoin service.
#[derive(Debug, Clone)]
pub struct BitcoinService {
    shared: Arc<Shared>,
}

impl BitcoinService {
    /// A service over `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        BitcoinService { shared }
    }

    fn wallet_id(&self, client: &ClientId, wallet: &str) -> Result<KeyId, Status> {
        KeyId::new(wallet).map_err(|e| self.shared.invalid(client, "wallet", e))
    }

    fn intent_id(&self, client: &ClientId, intent: &str) -> Result<IntentId, Status> {
        IntentId::new(intent).map_err(|e| self.shared.invalid(client, "intent", e))
    }

    /// A wallet pipeline error as a status; an `INVALID_ARGUMENT` one is
    /// audited and counted like every malformed request.
    fn failed(&self, client: &ClientId, wallet: &KeyId, e: &BitcoinError) -> Status {
        let status = status::bitcoin_error(e);
        if status.code() == Code::InvalidArgument {
            self.shared.audit_denied(
                client.as_str(),
                &wallet_object(wallet),
                "denied-invalid-argument",
            );
        }
        status
    }

    /// Runs blocking wallet work (store reads, commits) off the async
    /// threads.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Shared) -> Result<T, BitcoinError> + Send + 'static,
    ) -> Result<Result<T, BitcoinError>, Status> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || f(&shared))
            .await
            .map_err(|e| Status::internal(format!("wallet task failed: {e}")))
    }
}

/// The object a denial or a malformed request about `wallet` is audited
/// against (the form [`Shared::authorize`] uses).
fn wallet_object(wallet: &KeyId) -> String {
    format!("{}/*/{wallet}/*", Domain::Bitcoin)
}

fn payments_from(payments: Vec<v1::Payment>) -> Result<Vec<Payment>, BitcoinError> {
    payments
        .into_iter()
        .map(|p| Payment::new(&p.address, p.amount_sat))
        .collect()
}

fn release_from(release: i32) -> Result<Release, String> {
    match v1::Release::try_from(release) {
        Ok(v1::Release::Confirmed) => Ok(Release::Confirmed),
        Ok(v1::Release::Abandoned) => Ok(Release::Abandoned),
        _ => Err(format!("release {release} is not CONFIRMED or ABANDONED")),
    }
}

fn status_to_proto(status: IntentStatus) -> v1::IntentStatus {
    match status {
        IntentStatus::Live => v1::IntentStatus::Live,
        IntentStatus::Confirmed => v1::IntentStatus::Confirmed,
        IntentStatus::Abandoned => v1::IntentStatus::Abandoned,
    }
}

fn kind_to_proto(kind: WalletKind) -> v1::WalletKind {
    match kind {
        WalletKind::Wpkh => v1::WalletKind::Wpkh,
        WalletKind::Tr => v1::WalletKind::Tr,
    }
}

/// The wire form of an intent.
fn intent_to_proto(record: &IntentRecord) -> v1::Intent {
    let s = &record.state;
    v1::Intent {
        intent: s.intent.to_string(),
        txid: s.txid.clone(),
        status: status_to_proto(s.status) as i32,
        inputs: s.inputs.clone(),
        wallet_inputs: s.wallet_inputs.clone(),
        sent_sat: s.sent_sat,
        fee_sat: s.fee_sat,
        signed_at: s.signed_at,
        signings: s.signings,
    }
}

#[tonic::async_trait]
impl v1::bitcoin_server::Bitcoin for BitcoinService {
    async fn sign_psbt(
        &self,
        request: Request<v1::SignPsbtRequest>,
    ) -> Result<Response<v1::SignPsbtResponse>, Status> {
        let client = self.shared.client(&request)?;
        let permit = self.shared.admit()?;
        let req = request.into_inner();
        let wallet = self.wallet_id(&client, &req.wallet)?;
        let intent = self.intent_id(&client, &req.intent)?;
        self.shared.authorize(&client, Domain::Bitcoin, &wallet)?;
        let payments =
            payments_from(req.payments).map_err(|e| self.shared.invalid(&client, "payments", e))?;
        let sign = SignRequest {
            wallet: wallet.clone(),
            intent,
            psbt: req.psbt,
            payments,
        };
        let asking = client.clone();
        // As in every domain, the permit moves into the blocking task and a
        // request whose caller gave up still finishes its commit.
        let outcome = self
            .blocking(move |s| {
                let result = s.wallets.sign(&asking, &sign);
                drop(permit);
                result
            })
            .await?
            .map_err(|e| self.failed(&client, &wallet, &e))?;
        let (outcome, psbt, intent) = match outcome {
            SignOutcome::Signed { psbt, intent } => (v1::Outcome::Signed, psbt, intent),
            SignOutcome::Replayed { psbt, intent } => (v1::Outcome::Replayed, psbt, intent),
            SignOutcome::Refused(refusal) => return Err(status::refused(&refusal)),
        };
        Ok(Response::new(v1::SignPsbtResponse {
            outcome: outcome as i32,
            psbt,
            intent: Some(intent_to_proto(&intent)),
        }))
    }

    async fn list_intents(
        &self,
        request: Request<v1::ListIntentsRequest>,
    ) -> Result<Response<v1::ListIntentsResponse>, Status> {
        let client = self.shared.client(&request)?;
        let wallet = self.wallet_id(&client, &request.get_ref().wallet)?;
        self.shared
            .authorize_admin_for(&client, &wallet_object(&wallet))?;
        let name = wallet.clone();
        let records = self
            .blocking(move |s| s.wallets.intents(&name))
            .await?
            .map_err(|e| self.failed(&client, &wallet, &e))?;
        Ok(Response::new(v1::ListIntentsResponse {
            intents: records.iter().map(intent_to_proto).collect(),
        }))
    }

    async fn release_intent(
        &self,
        request: Request<v1::ReleaseIntentRequest>,
    ) -> Result<Response<v1::ReleaseIntentResponse>, Status> {
        let client = self.shared.client(&request)?;
        let req = request.into_inner();
        let wallet = self.wallet_id(&client, &req.wallet)?;
        let intent = self.intent_id(&client, &req.intent)?;
        self.shared
            .authorize_admin_for(&client, &wallet_object(&wallet))?;
        let release =
            release_from(req.release).map_err(|e| self.shared.invalid(&client, "release", e))?;
        let (operator, name) = (client.clone(), wallet.clone());
        let record = self
            .blocking(move |s| s.wallets.release(&operator, &name, &intent, release))
            .await?
            .map_err(|e| self.failed(&client, &wallet, &e))?;
        Ok(Response::new(v1::ReleaseIntentResponse {
            intent: Some(intent_to_proto(&record)),
        }))
    }

    async fn get_wallet(
        &self,
        request: Request<v1::GetWalletRequest>,
    ) -> Result<Response<v1::GetWalletResponse>, Status> {
        let client = self.shared.client(&request)?;
        let name = self.wallet_id(&client, &request.get_ref().wallet)?;
        if self.shared.acl.authorize_admin(&client).is_err() {
            self.shared.authorize(&client, Domain::Bitcoin, &name)?;
        }
        let wallet =
            self.shared.wallets.wallet(&name).ok_or_else(|| {
                status::bitcoin_error(&BitcoinError::UnknownWallet(name.to_string()))
            })?;
        Ok(Response::new(v1::GetWalletResponse {
            wallet: name.to_string(),
            kind: kind_to_proto(wallet.kind()) as i32,
            network: wallet.network().to_string(),
            receive_descriptor: wallet.descriptor(tidemark_bitcoin::Branch::Receive),
            change_descriptor: wallet.descriptor(tidemark_bitcoin::Branch::Change),
        }))
    }
}
