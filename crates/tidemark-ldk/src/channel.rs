//! [`TidemarkChannelSigner`]: LDK's `ChannelSigner` and
//! `EcdsaChannelSigner` for one channel, every call a structured
//! [`ChannelRequest`] to the signer.
//!
//! Error semantics (LDK's async-signing contract):
//! - signing calls and `get_per_commitment_point` /
//!   `release_commitment_secret`: a transient failure returns `Err(())`
//!   and marks the channel blocked; the watcher calls the node's
//!   `signer_unblocked` callbacks when the signer answers again, and LDK
//!   retries. A refusal is logged with its tag, counted
//!   ([`crate::TidemarkSigner::refusals`]) and returned as `Err(())` once.
//! - validation calls never fail for a transient reason: they retry with
//!   backoff for up to the validation patience (ten minutes by default),
//!   and only then give up.
//! - `pubkeys` is fetched once (on first use, retrying until answered) and
//!   cached for the node's lifetime; `channel_keys_id` never calls out.
//!
//! Before the first call that carries the channel's parameters, the
//! adapter sends the setup (an identical setup is replayed by the signer,
//! so every process and replica may send it).
//!
//! An inbound channel's first holder commitment arrives before any call
//! that carries the parameters (LDK validates it in `funding_created`,
//! then signs the counterparty's first commitment for `funding_signed`).
//! When this process has not sent the channel's setup yet, that
//! validation (of the first commitment only) is deferred: it is sent right
//! after the setup, before the first signature, and while the signer has
//! not accepted it every signing call that carries the channel's
//! parameters fails (nothing is signed for a channel whose first holder
//! commitment was not validated).

use std::sync::{Arc, OnceLock, PoisonError};

use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::{All, PublicKey, Secp256k1, SecretKey};
use bitcoin::{Transaction, Txid};
use lightning::ln::chan_utils::{
    ChannelPublicKeys, ChannelTransactionParameters, ClosingTransaction, CommitmentTransaction,
    HTLCOutputInCommitment, HolderCommitmentTransaction,
};
use lightning::ln::msgs::UnsignedChannelAnnouncement;
use lightning::sign::ecdsa::EcdsaChannelSigner;
use lightning::sign::{ChannelSigner, HTLCDescriptor};
use lightning::types::payment::PaymentPreimage;
use tidemark_lightning::channel::{
    AnchorSpend, ChannelKeys, ChannelRequest, ClosingProposal, CounterpartyHtlcSpend,
    HolderCommitment, HolderHtlcSpend, JusticeSpend, Output,
};

use crate::connection::{Connection, Failure, hex_id};
use crate::convert::{self, Unsupported};

/// One channel's signer. Cheap to clone; clones share the cached keys.
#[derive(Clone)]
pub struct TidemarkChannelSigner {
    connection: Arc<Connection>,
    channel_keys_id: [u8; 32],
    keys: Arc<OnceLock<ChannelKeys>>,
}

impl std::fmt::Debug for TidemarkChannelSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TidemarkChannelSigner")
            .field("channel_keys_id", &hex_id(&self.channel_keys_id))
            .finish_non_exhaustive()
    }
}

impl TidemarkChannelSigner {
    pub(crate) fn new(
        connection: Arc<Connection>,
        channel_keys_id: [u8; 32],
        keys: Arc<OnceLock<ChannelKeys>>,
    ) -> Self {
        TidemarkChannelSigner {
            connection,
            channel_keys_id,
            keys,
        }
    }

    /// Whether the last call failed because the signer was unreachable or
    /// busy and the watcher has not seen it back yet.
    pub fn is_blocked(&self) -> bool {
        self.connection.is_blocked(&self.channel_keys_id)
    }

    /// The holder's public keys, fetched on first use (retrying until the
    /// signer answers: LDK's `pubkeys` cannot fail) and cached.
    fn holder_keys(&self) -> Option<ChannelKeys> {
        if let Some(k) = self.keys.get() {
            return Some(*k);
        }
        let (node, id) = (&self.connection.node, &self.channel_keys_id);
        match self
            .connection
            .until_answered("channel-public-keys", Some(id), false, |c| {
                c.channel_public_keys(node, id)
            }) {
            Ok(k) => Some(*self.keys.get_or_init(|| k)),
            Err(_) => None,
        }
    }

    fn unsupported(&self, call: &'static str, why: Unsupported) {
        tracing::error!(node = %self.connection.node, channel = %hex_id(&self.channel_keys_id),
            call, reason = why.0, "the adapter cannot express this call to the signer");
    }

    /// Sends the setup once per process (the signer replays an identical
    /// one), then a deferred first holder commitment validation.
    fn ensure_setup(&self, params: &ChannelTransactionParameters) -> Result<(), ()> {
        let id = self.channel_keys_id;
        if !self.is_set_up() {
            let setup = convert::setup(id, params).map_err(|e| self.unsupported("setup", e))?;
            self.call("setup", ChannelRequest::Setup(Box::new(setup)))?;
            self.connection
                .set_up
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id);
        }
        self.validate_deferred()
    }

    /// Sends the deferred validation, if any. It stays pending until the
    /// signer accepts it, so every signing call that carries the channel's
    /// parameters fails until then.
    fn validate_deferred(&self) -> Result<(), ()> {
        let id = self.channel_keys_id;
        let pending = self
            .connection
            .deferred
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned();
        let Some(request) = pending else {
            return Ok(());
        };
        self.validate("validate-holder-commitment", request)?;
        self.connection
            .deferred
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        Ok(())
    }

    /// Whether this process has sent the channel's setup.
    fn is_set_up(&self) -> bool {
        self.connection
            .set_up
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&self.channel_keys_id)
    }

    fn request(
        &self,
        request: &ChannelRequest,
    ) -> impl FnMut(
        &tidemark_client::BlockingClient,
    ) -> Result<tidemark_client::ChannelAnswer, tidemark_client::ClientError> {
        let node = self.connection.node.clone();
        let id = self.channel_keys_id;
        let request = request.clone();
        move |c| c.channel_call(&node, &id, &request, None)
    }

    fn answered(&self, what: &'static str, answer: tidemark_client::ChannelAnswer) -> Output {
        for (tag, detail) in &answer.warnings {
            tracing::warn!(node = %self.connection.node, channel = %hex_id(&self.channel_keys_id),
                call = what, %tag, %detail, "signed with a downgraded rule failing");
        }
        answer.output
    }

    /// One call that LDK may retry: transient failures block the channel.
    fn call(&self, what: &'static str, request: ChannelRequest) -> Result<Output, ()> {
        let answer = self
            .connection
            .once(what, Some(&self.channel_keys_id), self.request(&request))
            .map_err(|_| ())?;
        Ok(self.answered(what, answer))
    }

    /// A validation: never failed for a transient reason (bounded retry).
    fn validate(&self, what: &'static str, request: ChannelRequest) -> Result<(), ()> {
        match self.connection.until_answered(
            what,
            Some(&self.channel_keys_id),
            true,
            self.request(&request),
        ) {
            Ok(answer) => {
                self.answered(what, answer);
                Ok(())
            }
            Err(Failure::Transient(_) | Failure::Refused(_) | Failure::Definitive(_)) => Err(()),
        }
    }

    fn signature(&self, what: &'static str, request: ChannelRequest) -> Result<Signature, ()> {
        match self.call(what, request)? {
            Output::Signature(s) => Ok(s),
            other => self.unexpected(what, &other),
        }
    }

    fn unexpected<T>(&self, what: &'static str, output: &Output) -> Result<T, ()> {
        tracing::error!(node = %self.connection.node, channel = %hex_id(&self.channel_keys_id),
            call = what, output = ?std::mem::discriminant(output),
            "the signer answered another kind of output");
        Err(())
    }
}

impl ChannelSigner for TidemarkChannelSigner {
    fn get_per_commitment_point(&self, idx: u64, _: &Secp256k1<All>) -> Result<PublicKey, ()> {
        let n = convert::number(idx).map_err(|e| self.unsupported("per-commitment-point", e))?;
        match self.call(
            "per-commitment-point",
            ChannelRequest::PerCommitmentPoint(n),
        )? {
            Output::PerCommitmentPoint(p) => Ok(p),
            other => self.unexpected("per-commitment-point", &other),
        }
    }

    fn release_commitment_secret(&self, idx: u64) -> Result<[u8; 32], ()> {
        let n = convert::number(idx).map_err(|e| self.unsupported("release-holder-secret", e))?;
        match self.call(
            "release-holder-secret",
            ChannelRequest::ReleaseHolderSecret(n),
        )? {
            Output::HolderSecret(s) => Ok(*s.0),
            other => self.unexpected("release-holder-secret", &other),
        }
    }

    fn validate_holder_commitment(
        &self,
        holder_tx: &HolderCommitmentTransaction,
        _outbound_htlc_preimages: Vec<PaymentPreimage>,
    ) -> Result<(), ()> {
        let what = "validate-holder-commitment";
        let commitment = convert::commitment(holder_tx).map_err(|e| self.unsupported(what, e))?;
        let first = commitment.number.get() == 0;
        let request = ChannelRequest::ValidateHolderCommitment(Box::new(HolderCommitment {
            commitment,
            counterparty_signature: holder_tx.counterparty_sig,
            counterparty_htlc_signatures: holder_tx.counterparty_htlc_sigs.clone(),
        }));
        if first && !self.is_set_up() {
            // An inbound channel: LDK validates the first holder commitment
            // (having checked the counterparty's signature itself) before
            // any call carries the channel's parameters. The validation is
            // sent right after the setup, before the first signature
            // leaves; until the signer has it, it signs no holder
            // commitment and releases no holder secret of this channel.
            tracing::debug!(node = %self.connection.node, channel = %hex_id(&self.channel_keys_id),
                "first holder commitment validation deferred until the setup");
            self.connection
                .deferred
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(self.channel_keys_id, request);
            return Ok(());
        }
        self.validate(what, request)
    }

    fn validate_counterparty_revocation(&self, idx: u64, secret: &SecretKey) -> Result<(), ()> {
        let what = "validate-counterparty-revocation";
        let number = convert::number(idx).map_err(|e| self.unsupported(what, e))?;
        let request = ChannelRequest::ValidateCounterpartyRevocation {
            number,
            secret: secret.secret_bytes(),
        };
        self.validate(what, request)
    }

    /// Fetched on first use (retrying transient failures until answered)
    /// and cached. If the signer refuses for good (unknown node, no
    /// grant), LDK's signature leaves no way to fail: this logs and
    /// returns keys no one can sign for (see `unusable_keys`).
    fn pubkeys(&self, _: &Secp256k1<All>) -> ChannelPublicKeys {
        match self.holder_keys() {
            Some(k) => k.to_ldk(),
            None => unusable_keys(),
        }
    }

    /// Splicing is not supported: logs and returns the current funding key
    /// (the signer refuses every splice signature).
    fn new_funding_pubkey(&self, _: Txid, _: &Secp256k1<All>) -> PublicKey {
        tracing::error!(node = %self.connection.node, "splicing is not supported by tidemark-ldk");
        self.pubkeys(&Secp256k1::new()).funding_pubkey
    }

    fn channel_keys_id(&self) -> [u8; 32] {
        self.channel_keys_id
    }
}

/// Keys no one holds a secret of (the generator point for each), returned
/// only when the signer definitively refuses to say the channel's keys:
/// a channel opened with them can never be signed for, so no funds move.
fn unusable_keys() -> ChannelPublicKeys {
    let g = PublicKey::from_secret_key(&Secp256k1::signing_only(), &one());
    ChannelKeys {
        funding_pubkey: g,
        revocation_basepoint: g,
        payment_point: g,
        delayed_payment_basepoint: g,
        htlc_basepoint: g,
    }
    .to_ldk()
}

#[allow(clippy::expect_used)]
fn one() -> SecretKey {
    SecretKey::from_slice(&bitcoin::secp256k1::constants::ONE)
        .expect("1 is below the curve order: a valid secret key")
}

impl EcdsaChannelSigner for TidemarkChannelSigner {
    fn sign_counterparty_commitment(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        commitment_tx: &CommitmentTransaction,
        _inbound_htlc_preimages: Vec<PaymentPreimage>,
        _outbound_htlc_preimages: Vec<PaymentPreimage>,
        _: &Secp256k1<All>,
    ) -> Result<(Signature, Vec<Signature>), ()> {
        let what = "sign-counterparty-commitment";
        self.ensure_setup(channel_parameters)?;
        let data = convert::commitment(commitment_tx).map_err(|e| self.unsupported(what, e))?;
        match self.call(
            what,
            ChannelRequest::SignCounterpartyCommitment(Box::new(data)),
        )? {
            Output::Commitment {
                signature,
                htlc_signatures,
            } => Ok((signature, htlc_signatures)),
            other => self.unexpected(what, &other),
        }
    }

    fn sign_holder_commitment(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        commitment_tx: &HolderCommitmentTransaction,
        _: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        let what = "sign-holder-commitment";
        self.ensure_setup(channel_parameters)?;
        let n = convert::number(commitment_tx.commitment_number())
            .map_err(|e| self.unsupported(what, e))?;
        self.signature(what, ChannelRequest::SignHolderCommitment(n))
    }

    /// LDK's test-only door (features `_test_utils`,
    /// `unsafe_revoked_tx_signing`) to a holder commitment that may be
    /// revoked by the time it is broadcast. Always refused: never signing
    /// a holder commitment that may be revoked is what Tidemark is for.
    #[cfg(feature = "ldk-test-utils")]
    fn unsafe_sign_holder_commitment(
        &self,
        _: &ChannelTransactionParameters,
        commitment_tx: &HolderCommitmentTransaction,
        _: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        tracing::error!(node = %self.connection.node, channel = %hex_id(&self.channel_keys_id),
            call = "unsafe-sign-holder-commitment",
            commitment_number = commitment_tx.commitment_number(),
            "refused: a holder commitment that may be revoked is never signed");
        Err(())
    }

    fn sign_justice_revoked_output(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        justice_tx: &Transaction,
        input: usize,
        amount: u64,
        per_commitment_key: &SecretKey,
        _: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.justice(
            channel_parameters,
            justice_tx,
            input,
            amount,
            per_commitment_key,
            None,
        )
    }

    fn sign_justice_revoked_htlc(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        justice_tx: &Transaction,
        input: usize,
        amount: u64,
        per_commitment_key: &SecretKey,
        htlc: &HTLCOutputInCommitment,
        _: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.justice(
            channel_parameters,
            justice_tx,
            input,
            amount,
            per_commitment_key,
            Some(htlc),
        )
    }

    fn sign_holder_htlc_transaction(
        &self,
        htlc_tx: &Transaction,
        input: usize,
        htlc_descriptor: &HTLCDescriptor,
        _: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        let what = "sign-holder-htlc";
        let params = &htlc_descriptor
            .channel_derivation_parameters
            .transaction_parameters;
        self.ensure_setup(params)?;
        let commitment = convert::number(htlc_descriptor.per_commitment_number)
            .map_err(|e| self.unsupported(what, e))?;
        let htlc_output_index = htlc_descriptor
            .htlc
            .transaction_output_index
            .ok_or(Unsupported("an htlc without an output"))
            .map_err(|e| self.unsupported(what, e))?;
        let input = convert::input(input).map_err(|e| self.unsupported(what, e))?;
        let spend = HolderHtlcSpend {
            commitment,
            htlc_output_index,
            tx: convert::spend(htlc_tx),
            input,
        };
        self.signature(what, ChannelRequest::SignHolderHtlc(Box::new(spend)))
    }

    fn sign_counterparty_htlc_transaction(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        htlc_tx: &Transaction,
        input: usize,
        amount: u64,
        per_commitment_point: &PublicKey,
        htlc: &HTLCOutputInCommitment,
        _: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        let what = "sign-counterparty-htlc";
        self.ensure_setup(channel_parameters)?;
        let input = convert::input(input).map_err(|e| self.unsupported(what, e))?;
        let spend = CounterpartyHtlcSpend {
            per_commitment_point: *per_commitment_point,
            htlc: convert::htlc(htlc),
            tx: convert::spend(htlc_tx),
            input,
            amount_sat: amount,
        };
        self.signature(what, ChannelRequest::SignCounterpartyHtlc(Box::new(spend)))
    }

    fn sign_closing_transaction(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        closing_tx: &ClosingTransaction,
        _: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.ensure_setup(channel_parameters)?;
        let proposal = ClosingProposal {
            to_holder_sat: closing_tx.to_holder_value_sat(),
            to_counterparty_sat: closing_tx.to_counterparty_value_sat(),
            holder_script: closing_tx.to_holder_script().to_owned(),
            counterparty_script: closing_tx.to_counterparty_script().to_owned(),
        };
        self.signature(
            "sign-closing",
            ChannelRequest::SignClosing(Box::new(proposal)),
        )
    }

    fn sign_holder_keyed_anchor_input(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        anchor_tx: &Transaction,
        input: usize,
        _: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        let what = "sign-holder-anchor";
        self.ensure_setup(channel_parameters)?;
        let input = convert::input(input).map_err(|e| self.unsupported(what, e))?;
        let spend = AnchorSpend {
            tx: convert::spend(anchor_tx),
            input,
        };
        self.signature(what, ChannelRequest::SignHolderAnchor(Box::new(spend)))
    }

    fn sign_channel_announcement_with_funding_key(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        msg: &UnsignedChannelAnnouncement,
        _: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        let what = "sign-channel-announcement";
        self.ensure_setup(channel_parameters)?;
        let a = convert::announcement(msg).map_err(|e| self.unsupported(what, e))?;
        self.signature(what, ChannelRequest::SignChannelAnnouncement(Box::new(a)))
    }

    /// Splicing is not supported. LDK's signature cannot fail, so this
    /// logs an error and returns a signature that verifies under no key
    /// LDK expects (the splice transaction is invalid and never confirms;
    /// nothing is signed by the channel's keys).
    fn sign_splice_shared_input(
        &self,
        _: &ChannelTransactionParameters,
        _: &Transaction,
        _: usize,
        _: &Secp256k1<All>,
    ) -> Signature {
        self.unsupported("sign-splice-shared-input", Unsupported("splicing"));
        let secp = Secp256k1::signing_only();
        let msg = bitcoin::secp256k1::Message::from_digest([0; 32]);
        secp.sign_ecdsa(&msg, &one())
    }
}

impl TidemarkChannelSigner {
    fn justice(
        &self,
        params: &ChannelTransactionParameters,
        tx: &Transaction,
        input: usize,
        amount: u64,
        per_commitment_key: &SecretKey,
        htlc: Option<&HTLCOutputInCommitment>,
    ) -> Result<Signature, ()> {
        let what = "sign-justice";
        self.ensure_setup(params)?;
        let input = convert::input(input).map_err(|e| self.unsupported(what, e))?;
        let spend = JusticeSpend {
            commitment: None,
            per_commitment_secret: per_commitment_key.secret_bytes(),
            htlc: htlc.map(convert::htlc),
            tx: convert::spend(tx),
            input,
            amount_sat: amount,
        };
        self.signature(what, ChannelRequest::SignJustice(Box::new(spend)))
    }
}
