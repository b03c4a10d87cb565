//! A signer provider that is LDK's `KeysManager` and records what a
//! throwaway `ChannelMonitor` hands its channel signer: the arguments of
//! `sign_holder_commitment` (the channel parameters and the newest holder
//! commitment with the counterparty's signatures) and the revocation
//! secret of `sign_justice_revoked_output`.
//!
//! Every signing call is delegated to the channel's `InMemorySigner`, so
//! the recorder signs exactly what `KeysManager` would. Its signatures are
//! thrown away with the monitor copy: nothing it signs is broadcast (the
//! copy's broadcaster drops every transaction).

use std::sync::{Arc, Mutex, PoisonError};

use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::{All, PublicKey, Secp256k1, SecretKey};
use bitcoin::{ScriptBuf, Transaction, Txid};
use lightning::ln::chan_utils::{
    ChannelPublicKeys, ChannelTransactionParameters, ClosingTransaction, CommitmentTransaction,
    HTLCOutputInCommitment, HolderCommitmentTransaction,
};
use lightning::ln::msgs::UnsignedChannelAnnouncement;
use lightning::ln::script::ShutdownScript;
use lightning::sign::ecdsa::EcdsaChannelSigner;
use lightning::sign::{
    ChannelSigner, EntropySource, HTLCDescriptor, InMemorySigner, KeysManager, SignerProvider,
};
use lightning::types::payment::PaymentPreimage;

/// What the monitor copy handed its signer.
#[derive(Default)]
pub(crate) struct Recorded {
    /// The channel keys id the monitor derived its signer for.
    pub(crate) channel_keys_id: Option<[u8; 32]>,
    /// The last `sign_holder_commitment` call.
    pub(crate) holder: Option<(ChannelTransactionParameters, HolderCommitmentTransaction)>,
    /// The secret of the last `sign_justice_revoked_output` call.
    pub(crate) justice_key: Option<SecretKey>,
}

type Shared = Arc<Mutex<Recorded>>;

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Recorded> {
    // A poisoned lock only means a recording call panicked; the recorded
    // values are plain data and stay consistent.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `KeysManager` over the node's seed, recording its channel signers'
/// calls.
pub(crate) struct RecordingKeys {
    keys: KeysManager,
    recorded: Shared,
}

impl RecordingKeys {
    pub(crate) fn new(keys: KeysManager) -> Self {
        RecordingKeys {
            keys,
            recorded: Shared::default(),
        }
    }

    /// Runs `f` on the recording.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Recorded) -> T) -> T {
        f(&mut lock(&self.recorded))
    }

    /// The `InMemorySigner` of `channel_keys_id`, as `KeysManager` derives
    /// it (not recording).
    pub(crate) fn in_memory(&self, channel_keys_id: [u8; 32]) -> InMemorySigner {
        self.keys.derive_channel_signer(channel_keys_id)
    }
}

impl EntropySource for RecordingKeys {
    fn get_secure_random_bytes(&self) -> [u8; 32] {
        self.keys.get_secure_random_bytes()
    }
}

impl SignerProvider for RecordingKeys {
    type EcdsaSigner = RecordingSigner;

    fn generate_channel_keys_id(&self, inbound: bool, user_channel_id: u128) -> [u8; 32] {
        self.keys.generate_channel_keys_id(inbound, user_channel_id)
    }

    fn derive_channel_signer(&self, channel_keys_id: [u8; 32]) -> RecordingSigner {
        lock(&self.recorded).channel_keys_id = Some(channel_keys_id);
        RecordingSigner {
            inner: self.keys.derive_channel_signer(channel_keys_id),
            recorded: self.recorded.clone(),
        }
    }

    fn get_destination_script(&self, channel_keys_id: [u8; 32]) -> Result<ScriptBuf, ()> {
        self.keys.get_destination_script(channel_keys_id)
    }

    fn get_shutdown_scriptpubkey(&self) -> Result<ShutdownScript, ()> {
        self.keys.get_shutdown_scriptpubkey()
    }
}

/// A channel's `InMemorySigner`, recording two calls.
#[derive(Clone)]
pub(crate) struct RecordingSigner {
    inner: InMemorySigner,
    recorded: Shared,
}

impl ChannelSigner for RecordingSigner {
    fn get_per_commitment_point(&self, idx: u64, secp: &Secp256k1<All>) -> Result<PublicKey, ()> {
        self.inner.get_per_commitment_point(idx, secp)
    }

    fn release_commitment_secret(&self, idx: u64) -> Result<[u8; 32], ()> {
        self.inner.release_commitment_secret(idx)
    }

    fn validate_holder_commitment(
        &self,
        holder_tx: &HolderCommitmentTransaction,
        outbound_htlc_preimages: Vec<PaymentPreimage>,
    ) -> Result<(), ()> {
        self.inner
            .validate_holder_commitment(holder_tx, outbound_htlc_preimages)
    }

    fn validate_counterparty_revocation(&self, idx: u64, secret: &SecretKey) -> Result<(), ()> {
        self.inner.validate_counterparty_revocation(idx, secret)
    }

    fn pubkeys(&self, secp: &Secp256k1<All>) -> ChannelPublicKeys {
        self.inner.pubkeys(secp)
    }

    fn new_funding_pubkey(&self, txid: Txid, secp: &Secp256k1<All>) -> PublicKey {
        self.inner.new_funding_pubkey(txid, secp)
    }

    fn channel_keys_id(&self) -> [u8; 32] {
        self.inner.channel_keys_id()
    }
}

impl EcdsaChannelSigner for RecordingSigner {
    fn sign_counterparty_commitment(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        commitment_tx: &CommitmentTransaction,
        inbound_htlc_preimages: Vec<PaymentPreimage>,
        outbound_htlc_preimages: Vec<PaymentPreimage>,
        secp: &Secp256k1<All>,
    ) -> Result<(Signature, Vec<Signature>), ()> {
        self.inner.sign_counterparty_commitment(
            channel_parameters,
            commitment_tx,
            inbound_htlc_preimages,
            outbound_htlc_preimages,
            secp,
        )
    }

    /// Recorded: the parameters and the commitment.
    fn sign_holder_commitment(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        commitment_tx: &HolderCommitmentTransaction,
        secp: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        lock(&self.recorded).holder = Some((channel_parameters.clone(), commitment_tx.clone()));
        self.inner
            .sign_holder_commitment(channel_parameters, commitment_tx, secp)
    }

    /// Only with LDK's test utilities: refused, as by the adapter (the
    /// extraction never asks for it).
    #[cfg(feature = "ldk-test-utils")]
    fn unsafe_sign_holder_commitment(
        &self,
        _: &ChannelTransactionParameters,
        _: &HolderCommitmentTransaction,
        _: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        Err(())
    }

    /// Recorded: the per-commitment secret.
    fn sign_justice_revoked_output(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        justice_tx: &Transaction,
        input: usize,
        amount: u64,
        per_commitment_key: &SecretKey,
        secp: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        lock(&self.recorded).justice_key = Some(*per_commitment_key);
        self.inner.sign_justice_revoked_output(
            channel_parameters,
            justice_tx,
            input,
            amount,
            per_commitment_key,
            secp,
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
        secp: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.inner.sign_justice_revoked_htlc(
            channel_parameters,
            justice_tx,
            input,
            amount,
            per_commitment_key,
            htlc,
            secp,
        )
    }

    fn sign_holder_htlc_transaction(
        &self,
        htlc_tx: &Transaction,
        input: usize,
        htlc_descriptor: &HTLCDescriptor,
        secp: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.inner
            .sign_holder_htlc_transaction(htlc_tx, input, htlc_descriptor, secp)
    }

    fn sign_counterparty_htlc_transaction(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        htlc_tx: &Transaction,
        input: usize,
        amount: u64,
        per_commitment_point: &PublicKey,
        htlc: &HTLCOutputInCommitment,
        secp: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.inner.sign_counterparty_htlc_transaction(
            channel_parameters,
            htlc_tx,
            input,
            amount,
            per_commitment_point,
            htlc,
            secp,
        )
    }

    fn sign_closing_transaction(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        closing_tx: &ClosingTransaction,
        secp: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.inner
            .sign_closing_transaction(channel_parameters, closing_tx, secp)
    }

    fn sign_holder_keyed_anchor_input(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        anchor_tx: &Transaction,
        input: usize,
        secp: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.inner
            .sign_holder_keyed_anchor_input(channel_parameters, anchor_tx, input, secp)
    }

    fn sign_channel_announcement_with_funding_key(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        msg: &UnsignedChannelAnnouncement,
        secp: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.inner
            .sign_channel_announcement_with_funding_key(channel_parameters, msg, secp)
    }

    fn sign_splice_shared_input(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        tx: &Transaction,
        input_index: usize,
        secp: &Secp256k1<All>,
    ) -> Signature {
        self.inner
            .sign_splice_shared_input(channel_parameters, tx, input_index, secp)
    }
}
