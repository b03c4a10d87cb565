//! [`WalletSigner`]: the wallet pipeline.
//!
//! lock the wallet -> load its ledger and the intent -> analyse the PSBT
//! -> policy decides (pure) -> sign in memory -> commit ledger and intent
//! in ONE compare-and-swap (fsync) -> release the signed PSBT -> audit.
//!
//! Invariants:
//! - No signature leaves before the commit that records it returned.
//! - An intent is signed for at most one unsigned transaction while it is
//!   live or confirmed; an outpoint is committed to at most one live
//!   intent. Both hold across processes sharing the store, because every
//!   commit compares the versions of both objects it read.
//! - An identical repeat gets the stored signatures, byte for byte.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tidemark_core::{
    AuditEntry, AuditOutcome, ChainId, ClientId, Digest, Domain, KeyBackend, KeyId, Mark, ObjectId,
    Refusal, Signature, StateStore, StateWrite, StoreError, StoredState,
};
use tidemark_signer::DecisionObserver;
use tracing::info;

use crate::analysis;
use crate::error::BitcoinError;
use crate::policy::{self, Payment, SpendPolicy, Verdict};
use crate::state::{AbandonedTx, IntentId, IntentState, IntentStatus, LedgerState};
use crate::wallet::{Wallet, WalletKind};

mod signatures;

/// How often a decision is retried after losing a compare-and-swap race
/// against another process sharing the store. Every signature of a wallet
/// moves its ledger, so two busy processes on one wallet lose races often;
/// each loss means the other one made progress.
const MAX_CAS_ATTEMPTS: u32 = 64;

/// The intents listed by [`WalletSigner::intents`] at most.
pub const MAX_LISTED_INTENTS: usize = 10_000;

/// A request to sign a PSBT for an intent.
#[derive(Debug, Clone)]
pub struct SignRequest {
    /// The wallet (its account key's id).
    pub wallet: KeyId,
    /// The caller's payment id.
    pub intent: IntentId,
    /// The PSBT, BIP 174 binary.
    pub psbt: Vec<u8>,
    /// What the intent pays, if the caller declares it: the transaction's
    /// outputs to others must be exactly these.
    pub payments: Vec<Payment>,
}

/// An intent as the signer records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentRecord {
    /// The wallet.
    pub wallet: KeyId,
    /// The stored state.
    pub state: IntentState,
}

/// What the signer answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignOutcome {
    /// Newly signed, after the intent and its inputs were made durable.
    Signed {
        /// The PSBT with the wallet's signatures added.
        psbt: Vec<u8>,
        /// The intent now stored.
        intent: IntentRecord,
    },
    /// The identical request was signed before: the stored signatures.
    Replayed {
        /// The PSBT with the stored signatures added.
        psbt: Vec<u8>,
        /// The intent.
        intent: IntentRecord,
    },
    /// Refused by policy; nothing changed.
    Refused(Refusal),
}

/// How the operator releases an intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Mined: the intent can never be paid again; its inputs are spent.
    Confirmed,
    /// Given up: its inputs are free; the intent may be signed again only
    /// by a transaction that double-spends the abandoned one.
    Abandoned,
}

struct WalletEntry {
    wallet: Wallet,
    policy: SpendPolicy,
    ledger: ObjectId,
    lock: Mutex<()>,
}

/// Signs PSBTs for the wallets it was given, over a store and a key
/// backend. Cheap to share behind an `Arc`; requests for one wallet are
/// serialized, wallets run in parallel.
pub struct WalletSigner {
    store: Arc<dyn StateStore>,
    keys: Arc<dyn KeyBackend>,
    wallets: BTreeMap<KeyId, WalletEntry>,
    observer: Option<Arc<dyn DecisionObserver>>,
}

impl std::fmt::Debug for WalletSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalletSigner")
            .field("wallets", &self.wallets.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn object(wallet: &Wallet, kind: &str) -> Result<ObjectId, BitcoinError> {
    let chain = ChainId::new(wallet.network().to_string())?;
    Ok(ObjectId::new(
        Domain::Bitcoin,
        chain,
        wallet.name().clone(),
        kind,
    )?)
}

fn intent_object(wallet: &Wallet, intent: &IntentId) -> Result<ObjectId, BitcoinError> {
    object(wallet, &format!("intent.{intent}"))
}

impl WalletSigner {
    /// A signer over `store` and `keys`, with no wallet yet.
    pub fn new(store: Arc<dyn StateStore>, keys: Arc<dyn KeyBackend>) -> Self {
        WalletSigner {
            store,
            keys,
            wallets: BTreeMap::new(),
            observer: None,
        }
    }

    /// Reports every decision to `observer` (metrics).
    pub fn with_observer(mut self, observer: Arc<dyn DecisionObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Adds the wallet of account key `name` (a secp256k1 key of the
    /// backend, typically at `m/84'/c'/a'` or `m/86'/c'/a'`).
    pub fn add_wallet(
        &mut self,
        name: KeyId,
        kind: WalletKind,
        network: bitcoin::Network,
        policy: SpendPolicy,
    ) -> Result<&Wallet, BitcoinError> {
        let xpub = self.keys.extended_public_key(&name)?;
        let wallet = Wallet::new(name.clone(), kind, network, &xpub)?;
        let ledger = object(&wallet, "ledger")?;
        self.wallets.insert(
            name.clone(),
            WalletEntry {
                wallet,
                policy,
                ledger,
                lock: Mutex::new(()),
            },
        );
        self.wallet(&name)
            .ok_or_else(|| BitcoinError::UnknownWallet(name.to_string()))
    }

    /// The wallet called `name`.
    pub fn wallet(&self, name: &KeyId) -> Option<&Wallet> {
        self.wallets.get(name).map(|e| &e.wallet)
    }

    /// Every wallet.
    pub fn wallets(&self) -> impl Iterator<Item = &Wallet> {
        self.wallets.values().map(|e| &e.wallet)
    }

    fn entry(&self, name: &KeyId) -> Result<&WalletEntry, BitcoinError> {
        self.wallets
            .get(name)
            .ok_or_else(|| BitcoinError::UnknownWallet(name.to_string()))
    }

    /// Signs `request` for `client` now.
    pub fn sign(
        &self,
        client: &ClientId,
        request: &SignRequest,
    ) -> Result<SignOutcome, BitcoinError> {
        self.sign_at(client, request, now_secs())
    }

    /// Signs `request` as of `now` (seconds since the Unix epoch; the
    /// velocity window ends there).
    pub fn sign_at(
        &self,
        client: &ClientId,
        request: &SignRequest,
        now: u64,
    ) -> Result<SignOutcome, BitcoinError> {
        let started = Instant::now();
        let entry = self.entry(&request.wallet)?;
        let wallet = &entry.wallet;
        let intent_id = intent_object(wallet, &request.intent)?;
        let mut psbt = analysis::decode(&request.psbt)?;
        let facts = analysis::analyse(
            wallet,
            &psbt,
            entry.policy.require_previous_tx_for_segwit_v0,
        )?;
        let _guard = entry.lock.lock().unwrap_or_else(PoisonError::into_inner);

        let mut attempts = 0;
        let outcome = loop {
            attempts += 1;
            let Loaded {
                ledger_stored,
                ledger,
                intent_stored,
                intent: current,
            } = self.load(entry, &intent_id)?;
            let verdict = policy::decide(
                &entry.policy,
                wallet.network(),
                &ledger,
                current.as_ref(),
                &policy::Proposal {
                    intent: &request.intent,
                    analysis: &facts,
                    payments: &request.payments,
                    now,
                },
            );
            match verdict {
                Verdict::Refuse { tag, detail } => {
                    let mark = current
                        .as_ref()
                        .map_or_else(|| ledger.mark(), IntentState::mark);
                    let refusal = Refusal {
                        tag,
                        object: intent_id.clone(),
                        current: mark.clone(),
                        detail,
                    };
                    info!(object = %intent_id, client = %client, tag = %refusal.tag, detail = %refusal.detail, "refused");
                    self.audit_best_effort(audit_entry(
                        client,
                        &intent_id,
                        AuditOutcome::Refused,
                        Some(refusal.tag.as_str()),
                        &mark,
                        None,
                    ));
                    break SignOutcome::Refused(refusal);
                }
                Verdict::Replay => {
                    let (Some(stored), Some(state)) = (intent_stored, current) else {
                        return Err(BitcoinError::CorruptState {
                            object: intent_id.to_string(),
                            reason: "replay without a stored intent".into(),
                        });
                    };
                    signatures::apply(&mut psbt, &state.signed, &stored.signatures, &intent_id)?;
                    self.audit_best_effort(audit_entry(
                        client,
                        &intent_id,
                        AuditOutcome::Replayed,
                        None,
                        &state.mark(),
                        Some(stored.digest),
                    ));
                    break SignOutcome::Replayed {
                        psbt: psbt.serialize(),
                        intent: IntentRecord {
                            wallet: wallet.name().clone(),
                            state,
                        },
                    };
                }
                Verdict::Sign {
                    ledger: next_ledger,
                    intent: mut next_intent,
                } => {
                    let inputs = analysis::sign_inputs(wallet, &psbt, &facts)?;
                    let (signed, signatures) =
                        signatures::sign_all(self.keys.as_ref(), wallet, &facts, &inputs)?;
                    next_intent.signed = signed;
                    let digest = Digest::of_inputs(&inputs);
                    let mark = next_intent.mark();
                    let writes = vec![
                        ledger_write(entry, ledger_stored.as_ref(), &next_ledger)?,
                        write(
                            &intent_id,
                            intent_stored.as_ref(),
                            &next_intent,
                            mark.clone(),
                            digest,
                            signatures.clone(),
                        )?,
                    ];
                    let audit = audit_entry(
                        client,
                        &intent_id,
                        AuditOutcome::Signed,
                        None,
                        &mark,
                        Some(digest),
                    );
                    match self.store.commit_all(writes, audit) {
                        Ok(()) => {
                            signatures::apply(
                                &mut psbt,
                                &next_intent.signed,
                                &signatures,
                                &intent_id,
                            )?;
                            break SignOutcome::Signed {
                                psbt: psbt.serialize(),
                                intent: IntentRecord {
                                    wallet: wallet.name().clone(),
                                    state: next_intent,
                                },
                            };
                        }
                        Err(StoreError::Conflict { .. }) if attempts < MAX_CAS_ATTEMPTS => {
                            // Another process moved the ledger or the
                            // intent: the signatures are dropped unreleased
                            // and the request decided again.
                            continue;
                        }
                        Err(StoreError::Conflict { .. }) => {
                            return Err(BitcoinError::Contention(intent_id.to_string()));
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        };
        self.observe(&intent_id, client, &outcome, started);
        Ok(outcome)
    }

    /// Every intent of `wallet` the store holds (at most
    /// [`MAX_LISTED_INTENTS`]), ordered by id.
    pub fn intents(&self, wallet: &KeyId) -> Result<Vec<IntentRecord>, BitcoinError> {
        let entry = self.entry(wallet)?;
        let prefix = intent_object(&entry.wallet, &IntentId::new("x")?)?;
        let mut out = Vec::new();
        for (object, stored) in self.store.objects()? {
            let ours = object.domain() == Domain::Bitcoin
                && object.chain() == prefix.chain()
                && object.key() == prefix.key()
                && object.kind().starts_with("intent.");
            if !ours {
                continue;
            }
            if let Some(state) = decode_state::<IntentState>(&object, Some(&stored))? {
                out.push(IntentRecord {
                    wallet: wallet.clone(),
                    state,
                });
                if out.len() >= MAX_LISTED_INTENTS {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The ledger of `wallet`: reserved outpoints and the velocity window.
    pub fn ledger(&self, wallet: &KeyId) -> Result<LedgerState, BitcoinError> {
        let entry = self.entry(wallet)?;
        let stored = self.store.load(&entry.ledger)?;
        Ok(decode_state(&entry.ledger, stored.as_ref())?.unwrap_or_default())
    }

    /// Releases `intent` of `wallet` (an operator's call): its outpoints
    /// are no longer reserved. Releasing again the same way is a no-op;
    /// a confirmed intent cannot be abandoned.
    pub fn release(
        &self,
        client: &ClientId,
        wallet: &KeyId,
        intent: &IntentId,
        release: Release,
    ) -> Result<IntentRecord, BitcoinError> {
        let entry = self.entry(wallet)?;
        let intent_id = intent_object(&entry.wallet, intent)?;
        let _guard = entry.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let Loaded {
                ledger_stored,
                ledger,
                intent_stored,
                intent: current,
            } = self.load(entry, &intent_id)?;
            let (Some(stored), Some(mut state)) = (intent_stored.as_ref(), current) else {
                return Err(BitcoinError::UnknownIntent(intent.to_string()));
            };
            let wanted = match release {
                Release::Confirmed => IntentStatus::Confirmed,
                Release::Abandoned => IntentStatus::Abandoned,
            };
            if state.status == wanted {
                return Ok(IntentRecord {
                    wallet: wallet.clone(),
                    state,
                });
            }
            if state.status == IntentStatus::Confirmed {
                return Err(BitcoinError::InvalidRelease {
                    intent: intent.to_string(),
                    status: state.status.as_str(),
                    wanted: wanted.as_str(),
                });
            }
            if wanted == IntentStatus::Abandoned {
                state.abandoned.push(AbandonedTx {
                    txid: state.txid.clone(),
                    inputs: state.inputs.clone(),
                });
            }
            state.status = wanted;
            let mut next_ledger = ledger.clone();
            next_ledger.reserved.retain(|_, holder| holder != intent);
            let mark = state.mark();
            let writes = vec![
                ledger_write(entry, ledger_stored.as_ref(), &next_ledger)?,
                write(
                    &intent_id,
                    Some(stored),
                    &state,
                    mark.clone(),
                    stored.digest,
                    stored.signatures.clone(),
                )?,
            ];
            let audit = audit_entry(
                client,
                &intent_id,
                AuditOutcome::Released,
                Some(wanted.as_str()),
                &mark,
                None,
            );
            match self.store.commit_all(writes, audit) {
                Ok(()) => {
                    info!(object = %intent_id, client = %client, status = wanted.as_str(), "intent released");
                    return Ok(IntentRecord {
                        wallet: wallet.clone(),
                        state,
                    });
                }
                Err(StoreError::Conflict { .. }) if attempts < MAX_CAS_ATTEMPTS => continue,
                Err(StoreError::Conflict { .. }) => {
                    return Err(BitcoinError::Contention(intent_id.to_string()));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Loads the wallet's ledger and the intent (the two objects every
    /// wallet decision reads and compares on commit).
    fn load(&self, entry: &WalletEntry, intent: &ObjectId) -> Result<Loaded, BitcoinError> {
        let ledger_stored = self.store.load(&entry.ledger)?;
        let ledger = decode_state(&entry.ledger, ledger_stored.as_ref())?.unwrap_or_default();
        let intent_stored = self.store.load(intent)?;
        let intent_state = decode_state(intent, intent_stored.as_ref())?;
        Ok(Loaded {
            ledger_stored,
            ledger,
            intent_stored,
            intent: intent_state,
        })
    }

    fn audit_best_effort(&self, entry: AuditEntry) {
        tidemark_signer::audit_best_effort(self.store.as_ref(), entry);
    }

    fn observe(
        &self,
        object: &ObjectId,
        client: &ClientId,
        outcome: &SignOutcome,
        started: Instant,
    ) {
        let (kind, tag) = match outcome {
            SignOutcome::Signed { .. } => (AuditOutcome::Signed, None),
            SignOutcome::Replayed { .. } => (AuditOutcome::Replayed, None),
            SignOutcome::Refused(r) => (AuditOutcome::Refused, Some(r.tag.as_str())),
        };
        tidemark_signer::observe(self.observer.as_ref(), object, client, kind, tag, started);
    }
}

/// The two objects a wallet decision reads, as loaded.
struct Loaded {
    ledger_stored: Option<StoredState>,
    ledger: LedgerState,
    intent_stored: Option<StoredState>,
    intent: Option<IntentState>,
}

/// The compare-and-swap write of a wallet's ledger (it carries no
/// signatures).
fn ledger_write(
    entry: &WalletEntry,
    stored: Option<&StoredState>,
    next: &LedgerState,
) -> Result<StateWrite, BitcoinError> {
    write(
        &entry.ledger,
        stored,
        next,
        next.mark(),
        Digest::ZERO,
        Vec::new(),
    )
}

fn decode_state<S: serde::de::DeserializeOwned>(
    object: &ObjectId,
    stored: Option<&StoredState>,
) -> Result<Option<S>, BitcoinError> {
    stored
        .map(|s| {
            serde_json::from_slice(&s.state).map_err(|e| BitcoinError::CorruptState {
                object: object.to_string(),
                reason: e.to_string(),
            })
        })
        .transpose()
}

fn write<S: serde::Serialize>(
    object: &ObjectId,
    stored: Option<&StoredState>,
    state: &S,
    mark: Mark,
    digest: Digest,
    signatures: Vec<Signature>,
) -> Result<StateWrite, BitcoinError> {
    let state = serde_json::to_vec(state).map_err(|e| BitcoinError::CorruptState {
        object: object.to_string(),
        reason: e.to_string(),
    })?;
    Ok(StateWrite::after(
        object, stored, state, mark, digest, signatures,
    ))
}

fn audit_entry(
    client: &ClientId,
    object: &ObjectId,
    outcome: AuditOutcome,
    tag: Option<&str>,
    mark: &Mark,
    digest: Option<Digest>,
) -> AuditEntry {
    AuditEntry::now(client, object, outcome, tag, mark, digest)
}
