//! A channel between a holder signed through Tidemark's `decide` and
//! `execute` (keys from an LDK `KeysManager`) and a counterparty signed by
//! LDK's own `InMemorySigner` (another `KeysManager`), so every signature
//! a test checks comes from real keys over real BOLT 3 transactions.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use bitcoin::hashes::Hash as _;
use bitcoin::secp256k1::{All, PublicKey, Secp256k1};
use bitcoin::{ScriptBuf, Txid};
use lightning::chain::transaction::OutPoint as LdkOutPoint;
use lightning::ln::chan_utils::{
    self, ChannelTransactionParameters, CommitmentTransaction,
    CounterpartyChannelTransactionParameters, HTLCOutputInCommitment,
};
use lightning::sign::ecdsa::EcdsaChannelSigner as _;
use lightning::sign::{ChannelSigner as _, InMemorySigner, KeysManager};
use lightning::types::features::ChannelTypeFeatures;
use lightning::types::payment::PaymentHash;
use tidemark_core::Tag;
use tidemark_lightning::channel::{
    ChannelError, ChannelKeys, ChannelKind, ChannelRequest, ChannelSetup, ChannelState,
    CommitmentData, CommitmentNumber, Context, FundingOutpoint, HolderCommitment, Htlc, Output,
    Verdict, Warning, decide, execute,
};
use tidemark_lightning::policy::LightningPolicy;

pub const VALUE_SAT: u64 = 1_000_000;
pub const FEE_SAT: u64 = 10_000;
pub const FEERATE: u32 = 2_500;
pub const HEIGHT: u32 = 800_000;

pub fn n(number: u64) -> CommitmentNumber {
    CommitmentNumber::new(number).unwrap()
}

/// What one request came to.
#[derive(Debug)]
pub enum Outcome {
    Signed {
        output: Output,
        warnings: Vec<Warning>,
    },
    Replayed(Output),
    Refused {
        tag: Tag,
        detail: String,
    },
}

impl Outcome {
    pub fn signed(self) -> Output {
        match self {
            Outcome::Signed { output, .. } => output,
            other => panic!("expected a signature, got {other:?}"),
        }
    }

    pub fn replayed(self) -> Output {
        match self {
            Outcome::Replayed(output) => output,
            other => panic!("expected a replay, got {other:?}"),
        }
    }

    /// The refusal's detail; panics unless refused with `tag`.
    pub fn refused(self, tag: &Tag) -> String {
        match self {
            Outcome::Refused { tag: t, detail } if &t == tag => detail,
            other => panic!("expected a refusal with {tag}, got {other:?}"),
        }
    }

    pub fn warnings(&self) -> &[Warning] {
        match self {
            Outcome::Signed { warnings, .. } => warnings,
            _ => &[],
        }
    }
}

/// An HTLC from the holder's point of view (`offered`: by the holder).
pub fn htlc(offered: bool, sat: u64, expiry: u32, tag: u8) -> Htlc {
    Htlc {
        offered,
        amount_msat: sat * 1000,
        cltv_expiry: expiry,
        payment_hash: [tag; 32],
    }
}

pub struct Channel {
    pub policy: LightningPolicy,
    pub secp: Secp256k1<All>,
    pub wallet: Vec<ScriptBuf>,
    pub best_block: Option<u32>,
    pub holder: InMemorySigner,
    pub counterparty: InMemorySigner,
    pub setup: ChannelSetup,
    pub kind: ChannelKind,
    pub state: Option<ChannelState>,
    /// Balances outside HTLCs.
    pub holder_sat: u64,
    pub counterparty_sat: u64,
    /// Pending HTLCs, holder's view.
    pub htlcs: Vec<Htlc>,
}

fn keys_id(tag: u8) -> [u8; 32] {
    let mut id = [tag; 32];
    id[0] = 0;
    id
}

impl Channel {
    /// A channel not yet set up; the holder opened it.
    pub fn new(kind: ChannelKind) -> Channel {
        let secp = Secp256k1::new();
        let holder_keys = KeysManager::new(&[1; 32], 1, 0, true);
        let counterparty_keys = KeysManager::new(&[2; 32], 1, 0, true);
        let holder = holder_keys.derive_channel_keys(&keys_id(7));
        let counterparty = counterparty_keys.derive_channel_keys(&keys_id(9));
        let features = match kind {
            ChannelKind::StaticRemoteKey => ChannelTypeFeatures::only_static_remote_key(),
            ChannelKind::AnchorsZeroFeeHtlcTx => {
                ChannelTypeFeatures::anchors_zero_htlc_fee_and_dependencies()
            }
        };
        let setup = ChannelSetup {
            channel_keys_id: holder.channel_keys_id(),
            holder: ChannelKeys::from_ldk(&holder.pubkeys(&secp)),
            counterparty: ChannelKeys::from_ldk(&counterparty.pubkeys(&secp)),
            holder_selected_contest_delay: 144,
            counterparty_selected_contest_delay: 288,
            funding_outpoint: FundingOutpoint {
                txid: Txid::from_byte_array([0x42; 32]),
                vout: 1,
            },
            channel_type: features.le_flags().to_vec(),
            channel_value_sat: VALUE_SAT,
            is_outbound: true,
        };
        let wallet = vec![ScriptBuf::new_p2wpkh(
            &bitcoin::WPubkeyHash::from_byte_array([0x11; 20]),
        )];
        Channel {
            policy: LightningPolicy::default(),
            secp,
            wallet,
            best_block: Some(HEIGHT),
            holder,
            counterparty,
            setup,
            kind,
            state: None,
            holder_sat: 700_000,
            counterparty_sat: 300_000,
            htlcs: Vec::new(),
        }
    }

    /// A channel set up, with counterparty commitment 0 signed and holder
    /// commitment 0 validated.
    pub fn open(kind: ChannelKind) -> Channel {
        let mut c = Channel::new(kind);
        c.ask(ChannelRequest::Setup(Box::new(c.setup.clone())))
            .unwrap()
            .signed();
        c.sign_counterparty(0).signed();
        c.validate_holder(0).signed();
        c
    }

    pub fn state(&self) -> &ChannelState {
        self.state.as_ref().unwrap()
    }

    /// Decides only (no execution, no state change).
    pub fn decide(&self, request: &ChannelRequest) -> Result<Verdict, ChannelError> {
        let ctx = Context {
            wallet_scripts: &self.wallet,
            best_block_height: self.best_block,
            secp: &self.secp,
        };
        decide(&self.policy, &ctx, self.state.as_ref(), request)
    }

    /// The pipeline in memory: decide, execute, record, "commit" (a JSON
    /// round trip, as the store keeps it), release.
    pub fn ask(&mut self, request: ChannelRequest) -> Result<Outcome, ChannelError> {
        Ok(match self.decide(&request)? {
            Verdict::Refuse { tag, detail } => Outcome::Refused { tag, detail },
            Verdict::Replay { output } => Outcome::Replayed(output),
            Verdict::Sign {
                new_state,
                action,
                warnings,
            } => {
                let output = execute(&action, &self.holder, &self.secp)?;
                if let Some(mut next) = new_state {
                    next.record(&output)?;
                    let json = serde_json::to_vec(&*next).unwrap();
                    self.state = Some(serde_json::from_slice(&json).unwrap());
                }
                Outcome::Signed { output, warnings }
            }
        })
    }

    fn anchors_sat(&self) -> u64 {
        if self.kind.has_anchors() { 660 } else { 0 }
    }

    pub fn counterparty_point(&self, number: u64) -> PublicKey {
        self.counterparty
            .get_per_commitment_point(n(number).ldk_index(), &self.secp)
            .unwrap()
    }

    pub fn counterparty_secret(&self, number: u64) -> [u8; 32] {
        self.counterparty
            .release_commitment_secret(n(number).ldk_index())
            .unwrap()
    }

    pub fn holder_point(&self, number: u64) -> PublicKey {
        self.holder
            .get_per_commitment_point(n(number).ldk_index(), &self.secp)
            .unwrap()
    }

    /// The counterparty's commitment `number` at the current balances.
    pub fn counterparty_commitment(&self, number: u64) -> CommitmentData {
        CommitmentData {
            number: n(number),
            per_commitment_point: self.counterparty_point(number),
            to_broadcaster_sat: self.counterparty_sat,
            to_countersignatory_sat: self.holder_sat - FEE_SAT - self.anchors_sat(),
            feerate_per_kw: FEERATE,
            htlcs: self
                .htlcs
                .iter()
                .map(|h| Htlc {
                    offered: !h.offered,
                    ..h.clone()
                })
                .collect(),
        }
    }

    /// The holder's commitment `number` at the current balances, without
    /// signatures.
    pub fn holder_data(&self, number: u64) -> CommitmentData {
        CommitmentData {
            number: n(number),
            per_commitment_point: self.holder_point(number),
            to_broadcaster_sat: self.holder_sat - FEE_SAT - self.anchors_sat(),
            to_countersignatory_sat: self.counterparty_sat,
            feerate_per_kw: FEERATE,
            htlcs: self.htlcs.clone(),
        }
    }

    /// The counterparty's view of the channel parameters.
    pub fn counterparty_params(&self) -> ChannelTransactionParameters {
        let s = &self.setup;
        ChannelTransactionParameters {
            holder_pubkeys: s.counterparty.to_ldk(),
            holder_selected_contest_delay: s.counterparty_selected_contest_delay,
            is_outbound_from_holder: !s.is_outbound,
            counterparty_parameters: Some(CounterpartyChannelTransactionParameters {
                pubkeys: s.holder.to_ldk(),
                selected_contest_delay: s.holder_selected_contest_delay,
            }),
            funding_outpoint: Some(LdkOutPoint {
                txid: s.funding_outpoint.txid,
                index: s.funding_outpoint.vout,
            }),
            splice_parent_funding_txid: None,
            channel_type_features: s.channel_type_features(),
            channel_value_satoshis: s.channel_value_sat,
        }
    }

    /// Holder commitment `data` with the counterparty's real signatures.
    pub fn countersign(&self, data: CommitmentData) -> HolderCommitment {
        let params = self.counterparty_params();
        let tx = CommitmentTransaction::new(
            data.number.ldk_index(),
            &data.per_commitment_point,
            data.to_broadcaster_sat,
            data.to_countersignatory_sat,
            data.feerate_per_kw,
            data.htlcs.iter().map(ldk_htlc).collect(),
            &params.as_counterparty_broadcastable(),
            &self.secp,
        );
        let (sig, htlc_sigs) = self
            .counterparty
            .sign_counterparty_commitment(&params, &tx, Vec::new(), Vec::new(), &self.secp)
            .unwrap();
        HolderCommitment {
            commitment: data,
            counterparty_signature: sig,
            counterparty_htlc_signatures: htlc_sigs,
        }
    }

    pub fn holder_commitment(&self, number: u64) -> HolderCommitment {
        self.countersign(self.holder_data(number))
    }

    pub fn sign_counterparty(&mut self, number: u64) -> Outcome {
        let data = self.counterparty_commitment(number);
        self.ask(ChannelRequest::SignCounterpartyCommitment(Box::new(data)))
            .unwrap()
    }

    pub fn revoke_counterparty(&mut self, number: u64) -> Outcome {
        let secret = self.counterparty_secret(number);
        self.ask(ChannelRequest::ValidateCounterpartyRevocation {
            number: n(number),
            secret,
        })
        .unwrap()
    }

    pub fn validate_holder(&mut self, number: u64) -> Outcome {
        let holder = self.holder_commitment(number);
        self.ask(ChannelRequest::ValidateHolderCommitment(Box::new(holder)))
            .unwrap()
    }

    pub fn release_holder(&mut self, number: u64) -> Outcome {
        self.ask(ChannelRequest::ReleaseHolderSecret(n(number)))
            .unwrap()
    }

    /// One full round to commitment `number` on both sides: sign the
    /// counterparty's, take its revocation of the one before, validate the
    /// holder's, release the holder's secret of the one before.
    pub fn advance(&mut self, number: u64) {
        self.sign_counterparty(number).signed();
        self.revoke_counterparty(number - 1).signed();
        self.validate_holder(number).signed();
        self.release_holder(number - 1).signed();
    }

    /// The counterparty commitment as the holder's signer rebuilt it.
    pub fn rebuilt_counterparty(&self, data: &CommitmentData) -> CommitmentTransaction {
        let params = self.setup.transaction_parameters();
        CommitmentTransaction::new(
            data.number.ldk_index(),
            &data.per_commitment_point,
            data.to_broadcaster_sat,
            data.to_countersignatory_sat,
            data.feerate_per_kw,
            data.htlcs.iter().map(ldk_htlc).collect(),
            &params.as_counterparty_broadcastable(),
            &self.secp,
        )
    }

    /// Verifies a counterparty commitment signature with the holder's
    /// funding key.
    pub fn verify_counterparty_signature(&self, data: &CommitmentData, output: &Output) {
        let Output::Commitment {
            signature,
            htlc_signatures,
        } = output
        else {
            panic!("not a commitment signature: {output:?}");
        };
        let tx = self.rebuilt_counterparty(data);
        let script = chan_utils::make_funding_redeemscript(
            &self.setup.holder.funding_pubkey,
            &self.setup.counterparty.funding_pubkey,
        );
        let sighash = tx
            .trust()
            .built_transaction()
            .get_sighash_all(&script, VALUE_SAT);
        self.secp
            .verify_ecdsa(&sighash, signature, &self.setup.holder.funding_pubkey)
            .unwrap();
        assert_eq!(htlc_signatures.len(), tx.nondust_htlcs().len());
    }
}

pub fn ldk_htlc(h: &Htlc) -> HTLCOutputInCommitment {
    HTLCOutputInCommitment {
        offered: h.offered,
        amount_msat: h.amount_msat,
        cltv_expiry: h.cltv_expiry,
        payment_hash: PaymentHash(h.payment_hash),
        transaction_output_index: None,
    }
}

/// Both channel kinds.
pub const KINDS: [ChannelKind; 2] = [
    ChannelKind::StaticRemoteKey,
    ChannelKind::AnchorsZeroFeeHtlcTx,
];

impl Channel {
    /// The holder commitment as the holder's signer rebuilds it.
    pub fn rebuilt_holder(&self, data: &CommitmentData) -> CommitmentTransaction {
        let params = self.setup.transaction_parameters();
        CommitmentTransaction::new(
            data.number.ldk_index(),
            &data.per_commitment_point,
            data.to_broadcaster_sat,
            data.to_countersignatory_sat,
            data.feerate_per_kw,
            data.htlcs.iter().map(ldk_htlc).collect(),
            &params.as_holder_broadcastable(),
            &self.secp,
        )
    }

    /// The 2-of-2 funding script.
    pub fn funding_script(&self) -> ScriptBuf {
        chan_utils::make_funding_redeemscript(
            &self.setup.holder.funding_pubkey,
            &self.setup.counterparty.funding_pubkey,
        )
    }

    /// A script that is neither the wallet's nor allowlisted.
    pub fn foreign_script() -> ScriptBuf {
        ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([0xee; 20]))
    }
}

/// The one signature of an output.
pub fn signature(output: Output) -> bitcoin::secp256k1::ecdsa::Signature {
    match output {
        Output::Signature(sig) => sig,
        other => panic!("not one signature: {other:?}"),
    }
}
