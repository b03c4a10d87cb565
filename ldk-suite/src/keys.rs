//! LDK's dynamic signer traits (`DynKeysInterfaceTrait`, `InnerSign`)
//! over the Tidemark adapter, and the factory LDK's `TestKeysInterface`
//! builds them with.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use bitcoin::secp256k1::ecdh::SharedSecret;
use bitcoin::secp256k1::ecdsa::{RecoverableSignature, Signature};
use bitcoin::secp256k1::{All, PublicKey, Scalar, Secp256k1, SecretKey, schnorr};
use bitcoin::{ScriptBuf, Transaction, TxOut, Txid, absolute::LockTime};
use lightning::bolt11_invoice::RawBolt11Invoice;
use lightning::ln::chan_utils::{
    ChannelPublicKeys, ChannelTransactionParameters, ClosingTransaction, CommitmentTransaction,
    HTLCOutputInCommitment, HolderCommitmentTransaction,
};
use lightning::ln::inbound_payment::ExpandedKey;
use lightning::ln::msgs::{UnsignedChannelAnnouncement, UnsignedGossipMessage};
use lightning::ln::script::ShutdownScript;
use lightning::offers::invoice::UnsignedBolt12Invoice;
use lightning::sign::ecdsa::EcdsaChannelSigner;
use lightning::sign::{
    ChannelSigner, EntropySource, HTLCDescriptor, InMemorySigner, KeysManager, NodeSigner,
    OutputSpender, PeerStorageKey, ReceiveAuthKey, Recipient, SignerProvider,
    SpendableOutputDescriptor,
};
use lightning::types::payment::PaymentPreimage;
use lightning::util::dyn_signer::{DynKeysInterfaceTrait, DynSigner, DynSignerTrait, InnerSign};
use lightning::util::test_utils::TestSignerFactory;
use tidemark_cli::embedded::DEV_LIGHTNING_NODE;
use tidemark_ldk::{AdapterConfig, TidemarkChannelSigner, TidemarkSigner};

use crate::record::{TestRecord, current_record};
use crate::servers::{ServerSettings, server};

/// LDK's `TestSignerFactory`: each node's keys behind the Tidemark server
/// of its seed.
#[derive(Debug, Clone)]
pub struct TidemarkFactory {
    /// Every call's deadline.
    pub deadline: Duration,
    /// How long validations retry transient failures.
    pub validation_patience: Duration,
}

impl Default for TidemarkFactory {
    fn default() -> Self {
        TidemarkFactory {
            deadline: Duration::from_secs(30),
            validation_patience: Duration::from_secs(60),
        }
    }
}

impl TidemarkFactory {
    /// An adapter for `settings`' server, a client of its one replica.
    fn adapter(&self, settings: ServerSettings) -> anyhow::Result<TidemarkSigner> {
        let server = server(settings)?;
        let embedded = &server.embedded;
        let node = embedded.lightning()?;
        let keys = node.signer.node();
        let options = embedded
            .client_options("replica-1")?
            .with_deadline(self.deadline);
        let mut config = AdapterConfig::new(
            DEV_LIGHTNING_NODE,
            keys.destination_script().to_owned(),
            keys.shutdown_script(),
        );
        config.validation_patience = self.validation_patience;
        Ok(TidemarkSigner::new(options, config)?)
    }
}

impl TestSignerFactory for TidemarkFactory {
    /// `now` is not needed: the server issues channel keys ids from its
    /// durable counter and entropy is the OS's.
    fn make_signer(
        &self,
        seed: &[u8; 32],
        now: Duration,
        v2_remote_key_derivation: bool,
    ) -> Box<dyn DynKeysInterfaceTrait<EcdsaSigner = DynSigner>> {
        let settings = ServerSettings {
            seed: *seed,
            v2_remote_key_derivation,
        };
        // LDK's factory cannot fail: a server that does not start fails
        // the test that asked for it, with the reason.
        #[allow(clippy::panic)]
        let adapter = self
            .adapter(settings)
            .unwrap_or_else(|e| panic!("cannot start the Tidemark signer: {e:#}"));
        let record = current_record();
        record.add_adapter(adapter.clone());
        let cheat = Arc::new(KeysManager::new(
            seed,
            now.as_secs(),
            now.subsec_nanos(),
            v2_remote_key_derivation,
        ));
        Box::new(SuiteKeys {
            adapter,
            record,
            cheat,
        })
    }
}

/// One LDK test node's keys interface: the adapter, plus the test's
/// record for the channel signers it derives, and the cheat: LDK's own
/// `KeysManager` over the node's seed, which answers only LDK's test-only
/// `unsafe_sign_holder_commitment` (the test playing a node that
/// broadcasts an old state; see [`SuiteChannelSigner`]).
pub struct SuiteKeys {
    adapter: TidemarkSigner,
    record: Arc<TestRecord>,
    cheat: Arc<KeysManager>,
}

impl EntropySource for SuiteKeys {
    fn get_secure_random_bytes(&self) -> [u8; 32] {
        self.adapter.get_secure_random_bytes()
    }
}

impl NodeSigner for SuiteKeys {
    fn get_expanded_key(&self) -> ExpandedKey {
        self.adapter.get_expanded_key()
    }

    fn get_peer_storage_key(&self) -> PeerStorageKey {
        self.adapter.get_peer_storage_key()
    }

    fn get_receive_auth_key(&self) -> ReceiveAuthKey {
        self.adapter.get_receive_auth_key()
    }

    fn get_node_id(&self, recipient: Recipient) -> Result<PublicKey, ()> {
        self.adapter.get_node_id(recipient)
    }

    fn ecdh(
        &self,
        recipient: Recipient,
        other_key: &PublicKey,
        tweak: Option<&Scalar>,
    ) -> Result<SharedSecret, ()> {
        self.adapter.ecdh(recipient, other_key, tweak)
    }

    fn sign_invoice(
        &self,
        invoice: &RawBolt11Invoice,
        recipient: Recipient,
    ) -> Result<RecoverableSignature, ()> {
        self.adapter.sign_invoice(invoice, recipient)
    }

    fn sign_bolt12_invoice(
        &self,
        invoice: &UnsignedBolt12Invoice,
    ) -> Result<schnorr::Signature, ()> {
        self.adapter.sign_bolt12_invoice(invoice)
    }

    fn sign_gossip_message(&self, msg: UnsignedGossipMessage) -> Result<Signature, ()> {
        self.adapter.sign_gossip_message(msg)
    }

    fn sign_message(&self, msg: &[u8]) -> Result<String, ()> {
        self.adapter.sign_message(msg)
    }
}

impl OutputSpender for SuiteKeys {
    fn spend_spendable_outputs(
        &self,
        descriptors: &[&SpendableOutputDescriptor],
        outputs: Vec<TxOut>,
        change_destination_script: ScriptBuf,
        feerate_sat_per_1000_weight: u32,
        locktime: Option<LockTime>,
        secp_ctx: &Secp256k1<All>,
    ) -> Result<Transaction, ()> {
        self.adapter.spend_spendable_outputs(
            descriptors,
            outputs,
            change_destination_script,
            feerate_sat_per_1000_weight,
            locktime,
            secp_ctx,
        )
    }
}

impl SignerProvider for SuiteKeys {
    type EcdsaSigner = DynSigner;

    fn generate_channel_keys_id(&self, inbound: bool, user_channel_id: u128) -> [u8; 32] {
        self.adapter
            .generate_channel_keys_id(inbound, user_channel_id)
    }

    fn derive_channel_signer(&self, channel_keys_id: [u8; 32]) -> DynSigner {
        DynSigner::new(SuiteChannelSigner {
            inner: self.adapter.derive_channel_signer(channel_keys_id),
            record: self.record.clone(),
            cheat: self.cheat.derive_channel_signer(channel_keys_id),
        })
    }

    fn get_destination_script(&self, channel_keys_id: [u8; 32]) -> Result<ScriptBuf, ()> {
        self.adapter.get_destination_script(channel_keys_id)
    }

    fn get_shutdown_scriptpubkey(&self) -> Result<ShutdownScript, ()> {
        self.adapter.get_shutdown_scriptpubkey()
    }
}

impl DynKeysInterfaceTrait for SuiteKeys {}

/// A Tidemark channel signer as LDK's `InnerSign`.
///
/// Every call goes to Tidemark but one: LDK's test-only
/// `unsafe_sign_holder_commitment`, with which a test makes a node sign
/// its holder commitment now to broadcast it later, typically after it
/// was revoked, to check how the *other* node punishes it. No node asks
/// it outside LDK's tests, and Tidemark's adapter always refuses it; here
/// `cheat` (LDK's `InMemorySigner` for the channel, from the node's seed)
/// signs it, so the test goes on and the honest side's reactions (justice
/// transactions, HTLC claims, sweeps) are decided by Tidemark. Counted in
/// the test's record.
#[derive(Clone)]
pub struct SuiteChannelSigner {
    inner: TidemarkChannelSigner,
    record: Arc<TestRecord>,
    cheat: InMemorySigner,
}

impl DynSignerTrait for SuiteChannelSigner {}

impl InnerSign for SuiteChannelSigner {
    fn box_clone(&self) -> Box<dyn InnerSign> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl ChannelSigner for SuiteChannelSigner {
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

    fn new_funding_pubkey(&self, parent: Txid, secp: &Secp256k1<All>) -> PublicKey {
        self.inner.new_funding_pubkey(parent, secp)
    }

    fn channel_keys_id(&self) -> [u8; 32] {
        self.inner.channel_keys_id()
    }
}

impl EcdsaChannelSigner for SuiteChannelSigner {
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

    fn sign_holder_commitment(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        commitment_tx: &HolderCommitmentTransaction,
        secp: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.inner
            .sign_holder_commitment(channel_parameters, commitment_tx, secp)
    }

    fn unsafe_sign_holder_commitment(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        commitment_tx: &HolderCommitmentTransaction,
        secp: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.record.count_unsafe_holder_cheat();
        self.cheat
            .unsafe_sign_holder_commitment(channel_parameters, commitment_tx, secp)
    }

    fn sign_justice_revoked_output(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        justice_tx: &Transaction,
        input: usize,
        amount: u64,
        per_commitment_key: &SecretKey,
        secp: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
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
