//! [`LightningSigner`]: the durable pipeline of the channel signer.
//!
//! lock the channel -> load its state -> policy decides (pure) -> compute
//! with the channel's keys in memory -> commit the new state
//! (compare-and-swap, fsync) -> release -> audit.
//!
//! Invariants:
//! - Nothing leaves before the state that records it is durable: a
//!   counterparty commitment signature, a released holder secret, the
//!   validation of a holder commitment (which later decides what may be
//!   force-closed).
//! - Requests for one channel are serialized in this process; two
//!   processes sharing the store are fenced by the compare-and-swap, and
//!   the loser decides again on the fresh state (so a replica that lost
//!   the race is refused with `policy-commitment-retry-same`, never given
//!   a second signature for one number).
//! - An identical repeat of a signed counterparty commitment gets the
//!   stored signatures, byte for byte.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bitcoin::ScriptBuf;
use bitcoin::hashes::{Hash as _, sha256};
use bitcoin::secp256k1::{All, Secp256k1};
use lightning::sign::InMemorySigner;
use tidemark_core::{
    AuditEntry, AuditOutcome, ChainId, ClientId, Digest, Domain, KeyId, Mark, ObjectId, Refusal,
    StateStore, StateWrite, StoreError, StoredState,
};
use tidemark_signer::DecisionObserver;
use tracing::{info, warn};

use crate::channel::{
    ChannelRequest, ChannelState, Context, Output, Verdict, Warning, decide, execute,
};
use crate::error::LightningError;
use crate::keys::{ChannelKeysIdIssuer, NodeKeys};
use crate::policy::LightningPolicy;

/// How often a decision is retried after losing a compare-and-swap race
/// against another process sharing the store.
const MAX_CAS_ATTEMPTS: u32 = 32;

/// Channel signers kept derived before the cache is emptied.
const MAX_CACHED_SIGNERS: usize = 10_000;

/// What the signer answered for a channel request.
#[derive(Debug)]
pub enum ChannelOutcome {
    /// Computed (and, if the state changed, committed) and released.
    Done {
        /// What the request yields.
        output: Output,
        /// Business rules that failed but were downgraded to warnings.
        warnings: Vec<Warning>,
    },
    /// The identical request was decided before: the stored output.
    Replayed {
        /// The stored output (signatures byte for byte).
        output: Output,
    },
    /// Refused by policy; nothing changed.
    Refused(Refusal),
}

/// The channel signer of one Lightning node over a store.
pub struct LightningSigner {
    store: Arc<dyn StateStore>,
    node: Arc<NodeKeys>,
    chain: ChainId,
    node_key: KeyId,
    policy: LightningPolicy,
    wallet_scripts: Vec<ScriptBuf>,
    issuer: ChannelKeysIdIssuer,
    locks: Mutex<HashMap<[u8; 32], Arc<Mutex<()>>>>,
    signers: Mutex<HashMap<[u8; 32], Arc<InMemorySigner>>>,
    secp: Secp256k1<All>,
    observer: Option<Arc<dyn DecisionObserver>>,
}

impl std::fmt::Debug for LightningSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LightningSigner")
            .field("chain", &self.chain)
            .field("node_key", &self.node_key)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl LightningSigner {
    /// The signer of the node `node_key` on `chain` (its objects are
    /// `lightning/<chain>/<node_key>/...`), with keys `node` and `policy`.
    /// Sweeps and closes may pay the node's destination and shutdown
    /// scripts, and the policy's allowlist.
    pub fn new(
        store: Arc<dyn StateStore>,
        node: Arc<NodeKeys>,
        chain: ChainId,
        node_key: KeyId,
        policy: LightningPolicy,
    ) -> Result<Self, LightningError> {
        let wallet_scripts = vec![
            node.destination_script().to_owned(),
            ScriptBuf::from(node.shutdown_script()),
        ];
        let issuer = ChannelKeysIdIssuer::new(store.clone(), chain.clone(), node_key.clone())?;
        Ok(LightningSigner {
            store,
            node,
            chain,
            node_key,
            policy,
            wallet_scripts,
            issuer,
            locks: Mutex::default(),
            signers: Mutex::default(),
            secp: Secp256k1::new(),
            observer: None,
        })
    }

    /// Reports every channel decision to `observer` (metrics).
    pub fn with_observer(mut self, observer: Arc<dyn DecisionObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The node's keys (node-level operations).
    pub fn node(&self) -> &NodeKeys {
        &self.node
    }

    /// The policy.
    pub fn policy(&self) -> &LightningPolicy {
        &self.policy
    }

    /// Issues a channel keys id from the durable counter (the id is
    /// returned only once the counter that makes it unique is durable).
    pub fn issue_channel_keys_id(
        &self,
        client: &ClientId,
        user_channel_id: u128,
    ) -> Result<[u8; 32], LightningError> {
        Ok(self.issuer.issue(client, user_channel_id)?)
    }

    /// The object of the channel whose keys derive from `channel_keys_id`.
    pub fn channel_object(&self, channel_keys_id: &[u8; 32]) -> Result<ObjectId, LightningError> {
        Ok(ObjectId::new(
            Domain::Lightning,
            self.chain.clone(),
            self.node_key.clone(),
            &format!("chan.{}", hex::encode(channel_keys_id)),
        )?)
    }

    /// The stored state of a channel, `None` before its first commit.
    pub fn channel_state(
        &self,
        channel_keys_id: &[u8; 32],
    ) -> Result<Option<ChannelState>, LightningError> {
        let object = self.channel_object(channel_keys_id)?;
        let stored = self.store.load(&object)?;
        decode(&object, stored.as_ref())
    }

    /// Decides `request` about the channel of `channel_keys_id` for
    /// `client`, and answers only once what it changed is durable.
    /// `best_block_height`, if the caller tracks the chain, bounds HTLC
    /// expiries.
    pub fn channel(
        &self,
        client: &ClientId,
        channel_keys_id: &[u8; 32],
        request: &ChannelRequest,
        best_block_height: Option<u32>,
    ) -> Result<ChannelOutcome, LightningError> {
        let started = Instant::now();
        let object = self.channel_object(channel_keys_id)?;
        let lock = self.lock_of(channel_keys_id);
        let _guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let ctx = Context {
            wallet_scripts: &self.wallet_scripts,
            best_block_height,
            secp: &self.secp,
        };
        let digest = request_digest(request);
        let mut attempts = 0;
        let outcome = loop {
            attempts += 1;
            let stored = self.store.load(&object)?;
            let state = decode(&object, stored.as_ref())?;
            let mark = state.as_ref().map_or_else(Mark::none, ChannelState::mark);
            match decide(&self.policy, &ctx, state.as_ref(), request)? {
                Verdict::Refuse { tag, detail } => {
                    let refusal = Refusal {
                        tag,
                        object: object.clone(),
                        current: mark.clone(),
                        detail,
                    };
                    info!(object = %object, client = %client, tag = %refusal.tag, detail = %refusal.detail, "refused");
                    let tag = refusal.tag.as_str().to_owned();
                    self.audit(AuditEntry::now(
                        client,
                        &object,
                        AuditOutcome::Refused,
                        Some(&tag),
                        &mark,
                        None,
                    ));
                    break ChannelOutcome::Refused(refusal);
                }
                Verdict::Replay { output } => {
                    self.audit(AuditEntry::now(
                        client,
                        &object,
                        AuditOutcome::Replayed,
                        None,
                        &mark,
                        Some(digest),
                    ));
                    break ChannelOutcome::Replayed { output };
                }
                Verdict::Sign {
                    new_state,
                    action,
                    warnings,
                } => {
                    for w in &warnings {
                        warn!(object = %object, client = %client, tag = %w.tag, detail = %w.detail, "downgraded rule failed; signing");
                    }
                    let signer = self.signer_of(channel_keys_id);
                    let output = execute(&action, &signer, &self.secp)?;
                    let Some(mut next) = new_state else {
                        // Nothing to make durable (a point, a signature of a
                        // transaction the stored state already allows).
                        self.audit(AuditEntry::now(
                            client,
                            &object,
                            AuditOutcome::Signed,
                            None,
                            &mark,
                            Some(digest),
                        ));
                        break ChannelOutcome::Done { output, warnings };
                    };
                    next.record(&output)?;
                    let next_mark = next.mark();
                    let write =
                        state_write(&object, stored.as_ref(), &next, next_mark.clone(), digest)?;
                    let audit = AuditEntry::now(
                        client,
                        &object,
                        AuditOutcome::Signed,
                        None,
                        &next_mark,
                        Some(digest),
                    );
                    match self.store.commit(write, audit) {
                        Ok(()) => break ChannelOutcome::Done { output, warnings },
                        Err(StoreError::Conflict { .. }) if attempts < MAX_CAS_ATTEMPTS => {
                            // Another process moved the channel: the output
                            // is dropped unreleased and the request decided
                            // again on the fresh state.
                            continue;
                        }
                        Err(StoreError::Conflict { .. }) => {
                            return Err(LightningError::Contention(object.to_string()));
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        };
        self.observe(&object, client, &outcome, started);
        Ok(outcome)
    }

    fn lock_of(&self, channel_keys_id: &[u8; 32]) -> Arc<Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        if locks.len() >= MAX_CACHED_SIGNERS {
            // Only entries nobody holds can go; a held lock keeps its Arc.
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(*channel_keys_id).or_default().clone()
    }

    fn signer_of(&self, channel_keys_id: &[u8; 32]) -> Arc<InMemorySigner> {
        let mut signers = self.signers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(signer) = signers.get(channel_keys_id) {
            return signer.clone();
        }
        if signers.len() >= MAX_CACHED_SIGNERS {
            signers.clear();
        }
        let signer = Arc::new(self.node.channel_signer(*channel_keys_id));
        signers.insert(*channel_keys_id, signer.clone());
        signer
    }

    fn audit(&self, entry: AuditEntry) {
        tidemark_signer::audit_best_effort(self.store.as_ref(), entry);
    }

    fn observe(
        &self,
        object: &ObjectId,
        client: &ClientId,
        outcome: &ChannelOutcome,
        started: Instant,
    ) {
        let (kind, tag) = match outcome {
            ChannelOutcome::Done { .. } => (AuditOutcome::Signed, None),
            ChannelOutcome::Replayed { .. } => (AuditOutcome::Replayed, None),
            ChannelOutcome::Refused(r) => (AuditOutcome::Refused, Some(r.tag.as_str())),
        };
        tidemark_signer::observe(self.observer.as_ref(), object, client, kind, tag, started);
    }
}

/// The digest the audit log records for a request, to correlate records of
/// one request: SHA-256 of its `Debug` form (every field, keys and
/// signatures in hex; secrets never appear in a request).
fn request_digest(request: &ChannelRequest) -> Digest {
    let text = format!("{request:?}");
    Digest(sha256::Hash::hash(text.as_bytes()).to_byte_array())
}

fn decode(
    object: &ObjectId,
    stored: Option<&StoredState>,
) -> Result<Option<ChannelState>, LightningError> {
    stored
        .map(|s| {
            serde_json::from_slice(&s.state).map_err(|e| LightningError::CorruptState {
                object: object.to_string(),
                reason: e.to_string(),
            })
        })
        .transpose()
}

fn state_write(
    object: &ObjectId,
    stored: Option<&StoredState>,
    state: &ChannelState,
    mark: Mark,
    digest: Digest,
) -> Result<StateWrite, LightningError> {
    let state = serde_json::to_vec(state).map_err(|e| LightningError::CorruptState {
        object: object.to_string(),
        reason: e.to_string(),
    })?;
    Ok(StateWrite::after(
        object,
        stored,
        state,
        mark,
        digest,
        Vec::new(),
    ))
}
