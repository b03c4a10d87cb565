//! [`Signer`]: the decision pipeline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tidemark_core::{
    AuditEntry, AuditOutcome, ClientId, Decision, Digest, KeyBackend, Mark, ObjectId, Policy,
    Refusal, SignInput, Signature, StateStore, StateWrite, StoreError, StoredState,
};
use tracing::{debug, info, warn};

use crate::error::SignError;
use crate::locks::ObjectLocks;

/// How often a decision is retried after losing a compare-and-swap race
/// against another process sharing the store.
const MAX_CAS_ATTEMPTS: u32 = 8;

/// Objects kept in the state cache before it is emptied and refilled.
const MAX_CACHED_OBJECTS: usize = 100_000;

/// What the pipeline answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<S> {
    /// New signatures, released after `state` became durable.
    Signed {
        /// The signatures, in the order the policy listed its inputs.
        signatures: Vec<Signature>,
        /// The state now stored.
        state: S,
        /// Its mark.
        mark: Mark,
    },
    /// An identical repeat: the stored signatures, byte for byte (followed
    /// by fresh signatures of the policy's `also_sign` inputs, if any).
    Replayed {
        /// The signatures.
        signatures: Vec<Signature>,
        /// The stored state the signatures belong to.
        state: S,
        /// Its mark.
        mark: Mark,
    },
    /// Refused by the policy; nothing changed.
    Refused(Refusal),
}

impl<S> Outcome<S> {
    /// `signed`, `replayed` or `refused`.
    pub fn kind(&self) -> AuditOutcome {
        match self {
            Outcome::Signed { .. } => AuditOutcome::Signed,
            Outcome::Replayed { .. } => AuditOutcome::Replayed,
            Outcome::Refused(_) => AuditOutcome::Refused,
        }
    }
}

/// One decision, reported to a [`DecisionObserver`] (metrics).
#[derive(Debug, Clone)]
pub struct DecisionEvent<'a> {
    /// The object.
    pub object: &'a ObjectId,
    /// The client.
    pub client: &'a ClientId,
    /// What happened.
    pub outcome: AuditOutcome,
    /// The refusal tag, if refused.
    pub tag: Option<&'a str>,
    /// Time from lock request to answer.
    pub latency: Duration,
}

/// Receives every decision; the server exports them as metrics.
pub trait DecisionObserver: Send + Sync {
    /// Called once per decision, after the answer is final.
    fn observe(&self, event: &DecisionEvent<'_>);
}

/// The decision pipeline over a store and a key backend.
///
/// # The state cache
///
/// The pipeline keeps the last state it loaded or committed for each object,
/// so a hot object costs no store read. This is safe even when another
/// process shares the store and the cache is stale, because marks only ever
/// rise:
///
/// - a `Sign` decided on a stale state fails the commit's compare-and-swap;
///   the entry is dropped and the request decided again on a fresh load;
/// - a `Replay` of a stale state returns signatures that were already
///   released for that identical request;
/// - a `Refuse` on a stale (lower) state would also be refused by the newer,
///   higher one (possibly with another tag).
pub struct Signer {
    store: Arc<dyn StateStore>,
    keys: Arc<dyn KeyBackend>,
    locks: ObjectLocks,
    cache: Mutex<HashMap<ObjectId, StoredState>>,
    observer: Option<Arc<dyn DecisionObserver>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("locked_objects", &self.locks.len())
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A pipeline over `store` and `keys`.
    pub fn new(store: Arc<dyn StateStore>, keys: Arc<dyn KeyBackend>) -> Self {
        Signer {
            store,
            keys,
            locks: ObjectLocks::new(),
            cache: Mutex::new(HashMap::new()),
            observer: None,
        }
    }

    /// Reports every decision to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn DecisionObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.store
    }

    /// The key backend.
    pub fn keys(&self) -> &Arc<dyn KeyBackend> {
        &self.keys
    }

    /// Decides `request` for `client` under `policy`, and signs if the
    /// policy accepts. Blocks until the new state is durable.
    #[tracing::instrument(level = "debug", skip_all, fields(client = %client))]
    pub fn sign<P: Policy>(
        &self,
        policy: &P,
        client: &ClientId,
        request: &P::Request,
    ) -> Result<Outcome<P::State>, SignError> {
        let started = Instant::now();
        let object = policy.object(request)?;
        let public_key = self.keys.public_key(policy.key(request))?;
        let _guard = self.locks.lock(&object);

        let mut attempts = 0;
        let outcome = loop {
            attempts += 1;
            let (stored, current) = self.load_decoded::<P>(&object)?;
            let decision = policy.decide(&object, &public_key, current.as_ref(), request);
            match decision {
                Decision::Sign { new_state, inputs } => {
                    let signatures = self.sign_inputs(&inputs)?;
                    let mark = policy.mark(&new_state);
                    let digest = Digest::of_inputs(&inputs);
                    let audit = AuditEntry {
                        digest: Some(digest),
                        ..entry(client, &object, AuditOutcome::Signed, None, &mark)
                    };
                    let result = self.commit::<P>(
                        &object,
                        stored.as_ref(),
                        &new_state,
                        (mark.clone(), digest, signatures.clone()),
                        audit,
                    )?;
                    match result {
                        Ok(()) => {
                            break Outcome::Signed {
                                signatures,
                                state: new_state,
                                mark,
                            };
                        }
                        Err(StoreError::Conflict { .. }) if attempts < MAX_CAS_ATTEMPTS => {
                            // Another signer instance committed this object
                            // first. The signatures made above are dropped
                            // unreleased; decide again on the new state.
                            debug!(%object, attempts, "lost compare-and-swap, deciding again");
                            continue;
                        }
                        Err(StoreError::Conflict { .. }) => {
                            return Err(SignError::Contention {
                                object: object.to_string(),
                                attempts,
                            });
                        }
                        Err(e) => {
                            warn!(%object, error = %e, "commit failed: no signature released");
                            return Err(e.into());
                        }
                    }
                }
                Decision::Replay { also_sign } => {
                    let Some(stored) = stored else {
                        return Err(SignError::Policy(format!(
                            "policy replayed {object} which has no stored state"
                        )));
                    };
                    let Some(state) = current else {
                        return Err(SignError::Policy("replay without state".into()));
                    };
                    if stored.signatures.is_empty() {
                        return Err(SignError::Policy(format!(
                            "policy replayed {object} whose state has no stored signature"
                        )));
                    }
                    let mut signatures = stored.signatures;
                    signatures.extend(self.sign_inputs(&also_sign)?);
                    let mark = policy.mark(&state);
                    let audit = AuditEntry {
                        digest: Some(stored.digest),
                        ..entry(client, &object, AuditOutcome::Replayed, None, &mark)
                    };
                    self.audit_best_effort(audit);
                    break Outcome::Replayed {
                        signatures,
                        state,
                        mark,
                    };
                }
                Decision::Refuse(refusal) => {
                    let audit = entry(
                        client,
                        &object,
                        AuditOutcome::Refused,
                        Some(refusal.tag.as_str()),
                        &refusal.current,
                    );
                    self.audit_best_effort(audit);
                    break Outcome::Refused(refusal);
                }
            }
        };

        let tag = match &outcome {
            Outcome::Refused(r) => Some(r.tag.as_str()),
            _ => None,
        };
        info!(
            %client, %object, outcome = outcome.kind().as_str(), tag = tag.unwrap_or(""),
            "decision"
        );
        crate::report::observe(
            self.observer.as_ref(),
            &object,
            client,
            outcome.kind(),
            tag,
            started,
        );
        Ok(outcome)
    }

    /// The current state of `object` under `policy`, if any.
    pub fn current<P: Policy>(
        &self,
        object: &ObjectId,
    ) -> Result<Option<(u64, P::State)>, SignError> {
        match self.store.load(object)? {
            None => Ok(None),
            Some(stored) => Ok(Some((stored.version, decode_state::<P>(object, &stored)?))),
        }
    }

    /// Replaces `object`'s state with what `update` makes of it, under the
    /// object's lock, durably; `update` returning `None` changes nothing.
    /// Used to import marks: the domain's `update` only ever raises them.
    /// `update` also returns the signatures that belong to the new state
    /// (those an identical request will get back); a state imported without
    /// its signature must be one its policy never replays.
    pub fn update_state<P: Policy>(
        &self,
        policy: &P,
        client: &ClientId,
        object: &ObjectId,
        update: impl FnOnce(Option<&P::State>) -> Option<(P::State, Vec<Signature>)>,
    ) -> Result<Option<P::State>, SignError> {
        let _guard = self.locks.lock(object);
        // Read the store, not the cache: an import decides on what is durable.
        self.remember(object, None);
        let (stored, current) = self.load_decoded::<P>(object)?;
        let Some((new_state, signatures)) = update(current.as_ref()) else {
            return Ok(None);
        };
        let mark = policy.mark(&new_state);
        let audit = entry(client, object, AuditOutcome::Imported, None, &mark);
        self.commit::<P>(
            object,
            stored.as_ref(),
            &new_state,
            (mark, Digest::ZERO, signatures),
            audit,
        )??;
        Ok(Some(new_state))
    }

    /// Commits `new_state` over `stored` (compare-and-swap on its version)
    /// with its mark, payload digest and signatures, and keeps the cache in
    /// step. The outer error is a state that does not encode; the inner one
    /// is the store's answer.
    fn commit<P: Policy>(
        &self,
        object: &ObjectId,
        stored: Option<&StoredState>,
        new_state: &P::State,
        (mark, digest, signatures): (Mark, Digest, Vec<Signature>),
        audit: AuditEntry,
    ) -> Result<Result<(), StoreError>, SignError> {
        let write = StateWrite::after(
            object,
            stored,
            encode_state::<P>(new_state)?,
            mark,
            digest,
            signatures,
        );
        let committed = write.new.clone();
        let result = self.store.commit(write, audit);
        self.remember(object, result.as_ref().ok().map(|()| committed));
        Ok(result)
    }

    /// The object's stored state and its decoded domain state.
    fn load_decoded<P: Policy>(
        &self,
        object: &ObjectId,
    ) -> Result<(Option<StoredState>, Option<P::State>), SignError> {
        let stored = self.load(object)?;
        let current = stored
            .as_ref()
            .map(|s| decode_state::<P>(object, s))
            .transpose()?;
        Ok((stored, current))
    }

    /// The object's state: from the cache, else from the store.
    fn load(&self, object: &ObjectId) -> Result<Option<StoredState>, SignError> {
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(object)
            .cloned();
        if let Some(stored) = cached {
            return Ok(Some(stored));
        }
        let stored = self.store.load(object)?;
        if let Some(s) = &stored {
            self.remember(object, Some(s.clone()));
        }
        Ok(stored)
    }

    /// Records `object`'s state after a commit, or forgets it (`None`)
    /// after a failed one.
    fn remember(&self, object: &ObjectId, state: Option<StoredState>) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        match state {
            Some(s) => {
                if cache.len() >= MAX_CACHED_OBJECTS {
                    cache.clear();
                }
                cache.insert(object.clone(), s);
            }
            None => {
                cache.remove(object);
            }
        }
    }

    fn sign_inputs(&self, inputs: &[SignInput]) -> Result<Vec<Signature>, SignError> {
        inputs
            .iter()
            .map(|input| Ok(self.keys.sign(&input.key, &input.message)?))
            .collect()
    }

    fn audit_best_effort(&self, entry: AuditEntry) {
        crate::report::audit_best_effort(self.store.as_ref(), entry);
    }
}

fn entry(
    client: &ClientId,
    object: &ObjectId,
    outcome: AuditOutcome,
    tag: Option<&str>,
    mark: &Mark,
) -> AuditEntry {
    AuditEntry::now(client, object, outcome, tag, mark, None)
}

fn decode_state<P: Policy>(object: &ObjectId, stored: &StoredState) -> Result<P::State, SignError> {
    serde_json::from_slice(&stored.state).map_err(|e| SignError::CorruptState {
        object: object.to_string(),
        reason: e.to_string(),
    })
}

fn encode_state<P: Policy>(state: &P::State) -> Result<Vec<u8>, SignError> {
    serde_json::to_vec(state).map_err(|e| SignError::Policy(format!("state does not encode: {e}")))
}
