//! A channel between a holder signed through Tidemark's `decide` and
//! `execute` (keys from an LDK `KeysManager`) and a counterparty signed by
//! LDK's own `InMemorySigner` (another `KeysManager`), so every signature
//! a test checks comes from real keys over real BOLT 3 transactions.
//!
//! The channel itself is [`tidemark_lightning::fixtures::SimulatedChannel`];
//! this module adds the in-memory pipeline (decide, execute, record, a JSON
//! round trip for the commit) and panicking shorthands for tests.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::ops::{Deref, DerefMut};

use bitcoin::ScriptBuf;
use bitcoin::hashes::Hash as _;
use bitcoin::secp256k1::{All, PublicKey, Secp256k1};
use lightning::ln::chan_utils::{ChannelTransactionParameters, CommitmentTransaction};
use lightning::sign::InMemorySigner;
use tidemark_core::Tag;
use tidemark_lightning::channel::{
    ChannelError, ChannelKind, ChannelRequest, ChannelState, CommitmentData, CommitmentNumber,
    Context, HolderCommitment, Output, Verdict, Warning, decide, execute,
};
use tidemark_lightning::fixtures::{self, SimulatedChannel};
use tidemark_lightning::policy::LightningPolicy;
use tidemark_lightning::{NodeKeys, RemoteKeyDerivation};

// Not every test binary uses every helper.
#[allow(unused_imports)]
pub use tidemark_lightning::fixtures::{htlc, ldk_htlc};

pub const VALUE_SAT: u64 = fixtures::CHANNEL_VALUE_SAT;
pub const FEE_SAT: u64 = fixtures::COMMITMENT_FEE_SAT;
pub const FEERATE: u32 = fixtures::FEERATE_PER_KW;
pub const HEIGHT: u32 = fixtures::BEST_BLOCK_HEIGHT;

/// The seed the holder's keys derive from.
pub const HOLDER_SEED: [u8; 32] = [1; 32];

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

/// A simulated channel (its fields through `Deref`) and the holder's
/// in-memory pipeline.
pub struct Channel {
    pub sim: SimulatedChannel,
    /// The holder's channel signer (what the in-memory pipeline signs
    /// with).
    pub holder: InMemorySigner,
    pub policy: LightningPolicy,
    pub secp: Secp256k1<All>,
    pub wallet: Vec<ScriptBuf>,
    pub best_block: Option<u32>,
    pub state: Option<ChannelState>,
}

impl Deref for Channel {
    type Target = SimulatedChannel;
    fn deref(&self) -> &SimulatedChannel {
        &self.sim
    }
}

impl DerefMut for Channel {
    fn deref_mut(&mut self) -> &mut SimulatedChannel {
        &mut self.sim
    }
}

fn keys_id(tag: u8) -> [u8; 32] {
    let mut id = [tag; 32];
    id[0] = 0;
    id
}

impl Channel {
    /// A channel not yet set up; the holder opened it.
    pub fn new(kind: ChannelKind) -> Channel {
        let node =
            NodeKeys::with_entropy_start(&HOLDER_SEED, RemoteKeyDerivation::V2, 1, 0).unwrap();
        let wallet = vec![ScriptBuf::new_p2wpkh(
            &bitcoin::WPubkeyHash::from_byte_array([0x11; 20]),
        )];
        let sim = SimulatedChannel::new(&node, keys_id(7), kind);
        Channel {
            holder: sim.holder_signer().clone(),
            sim,
            policy: LightningPolicy::default(),
            secp: Secp256k1::new(),
            wallet,
            best_block: Some(HEIGHT),
            state: None,
        }
    }

    /// A channel set up, with counterparty commitment 0 signed and holder
    /// commitment 0 validated.
    pub fn open(kind: ChannelKind) -> Channel {
        let mut c = Channel::new(kind);
        for request in c.sim.opening_requests().unwrap() {
            c.ask(request).unwrap().signed();
        }
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

    pub fn counterparty_point(&self, number: u64) -> PublicKey {
        self.sim.counterparty_point(number).unwrap()
    }

    pub fn counterparty_secret(&self, number: u64) -> [u8; 32] {
        self.sim.counterparty_secret(number).unwrap()
    }

    pub fn holder_point(&self, number: u64) -> PublicKey {
        self.sim.holder_point(number).unwrap()
    }

    /// The counterparty's commitment `number` at the current balances.
    pub fn counterparty_commitment(&self, number: u64) -> CommitmentData {
        self.sim.counterparty_commitment(number).unwrap()
    }

    /// The holder's commitment `number` at the current balances, without
    /// signatures.
    pub fn holder_data(&self, number: u64) -> CommitmentData {
        self.sim.holder_data(number).unwrap()
    }

    /// The counterparty's view of the channel parameters.
    pub fn counterparty_params(&self) -> ChannelTransactionParameters {
        self.sim.counterparty_params()
    }

    /// Holder commitment `data` with the counterparty's real signatures.
    pub fn countersign(&self, data: CommitmentData) -> HolderCommitment {
        self.sim.countersign(data).unwrap()
    }

    pub fn holder_commitment(&self, number: u64) -> HolderCommitment {
        self.sim.holder_commitment(number).unwrap()
    }

    pub fn sign_counterparty(&mut self, number: u64) -> Outcome {
        let request = self.sim.sign_counterparty_request(number).unwrap();
        self.ask(request).unwrap()
    }

    pub fn revoke_counterparty(&mut self, number: u64) -> Outcome {
        let request = self.sim.revocation_request(number).unwrap();
        self.ask(request).unwrap()
    }

    pub fn validate_holder(&mut self, number: u64) -> Outcome {
        let request = self.sim.validate_holder_request(number).unwrap();
        self.ask(request).unwrap()
    }

    pub fn release_holder(&mut self, number: u64) -> Outcome {
        self.ask(ChannelRequest::ReleaseHolderSecret(n(number)))
            .unwrap()
    }

    /// One full round to commitment `number` on both sides: sign the
    /// counterparty's, take its revocation of the one before, validate the
    /// holder's, release the holder's secret of the one before.
    pub fn advance(&mut self, number: u64) {
        for request in self.sim.round_requests(number).unwrap() {
            self.ask(request).unwrap().signed();
        }
    }

    /// The counterparty commitment as the holder's signer rebuilt it.
    pub fn rebuilt_counterparty(&self, data: &CommitmentData) -> CommitmentTransaction {
        self.sim.rebuilt_counterparty(data)
    }

    /// Verifies a counterparty commitment signature with the holder's
    /// funding key, and its HTLC signatures with the holder's HTLC key.
    pub fn verify_counterparty_signature(&self, data: &CommitmentData, output: &Output) {
        let Output::Commitment {
            signature,
            htlc_signatures,
        } = output
        else {
            panic!("not a commitment signature: {output:?}");
        };
        self.sim
            .verify_counterparty_signatures(data, signature, htlc_signatures)
            .unwrap();
    }
}

/// Both channel kinds.
pub const KINDS: [ChannelKind; 2] = [
    ChannelKind::StaticRemoteKey,
    ChannelKind::AnchorsZeroFeeHtlcTx,
];

impl Channel {
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
