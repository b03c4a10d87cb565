//! Test doubles: an in-memory store with injectable failures, a
//! deterministic key backend and a small counter policy.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tidemark_core::{
    AuditEntry, AuditRecord, ChainId, Decision, Domain, IdError, KeyBackend, KeyError, KeyId, Mark,
    ObjectId, Policy, PublicKey, Refusal, Scheme, SignInput, SignMessage, Signature, StateStore,
    StateWrite, StoreError, StoredState, Tag,
};

/// How the memory store misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    None,
    /// Every commit fails as a full disk would.
    CommitFails,
    /// Before the next commit, another "process" commits `payload` at the
    /// request's number first, so the commit loses the CAS.
    RaceOnce,
}

pub(crate) struct MemoryStore {
    pub(crate) objects: Mutex<BTreeMap<ObjectId, StoredState>>,
    pub(crate) audit: Mutex<Vec<AuditEntry>>,
    pub(crate) fault: Mutex<Fault>,
}

impl MemoryStore {
    pub(crate) fn new(fault: Fault) -> Self {
        MemoryStore {
            objects: Mutex::default(),
            audit: Mutex::default(),
            fault: Mutex::new(fault),
        }
    }
}

impl StateStore for MemoryStore {
    fn load(&self, object: &ObjectId) -> Result<Option<StoredState>, StoreError> {
        Ok(self.objects.lock().unwrap().get(object).cloned())
    }

    fn commit(&self, write: StateWrite, audit: AuditEntry) -> Result<(), StoreError> {
        let mut objects = self.objects.lock().unwrap();
        let mut fault = self.fault.lock().unwrap();
        match *fault {
            Fault::CommitFails => return Err(StoreError::Full("injected".into())),
            Fault::RaceOnce => {
                *fault = Fault::None;
                let mut rival = write.new.clone();
                let mut state: CounterState = serde_json::from_slice(&rival.state).unwrap();
                state.payload = "rival".into();
                rival.state = serde_json::to_vec(&state).unwrap();
                rival.signatures = vec![Signature(b"rival-signature".to_vec())];
                objects.insert(write.object.clone(), rival);
            }
            Fault::None => {}
        }
        let found = objects.get(&write.object).map_or(0, |s| s.version);
        if found != write.expected_version {
            return Err(StoreError::Conflict {
                object: write.object.to_string(),
                expected: write.expected_version,
                found,
            });
        }
        objects.insert(write.object, write.new);
        self.audit.lock().unwrap().push(audit);
        Ok(())
    }

    fn commit_all(&self, writes: Vec<StateWrite>, audit: AuditEntry) -> Result<(), StoreError> {
        let mut objects = self.objects.lock().unwrap();
        if matches!(*self.fault.lock().unwrap(), Fault::CommitFails) {
            return Err(StoreError::Full("injected".into()));
        }
        for write in &writes {
            let found = objects.get(&write.object).map_or(0, |s| s.version);
            if found != write.expected_version {
                return Err(StoreError::Conflict {
                    object: write.object.to_string(),
                    expected: write.expected_version,
                    found,
                });
            }
        }
        for write in writes {
            objects.insert(write.object, write.new);
        }
        self.audit.lock().unwrap().push(audit);
        Ok(())
    }

    fn audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        self.audit.lock().unwrap().push(entry);
        Ok(())
    }

    fn objects(&self) -> Result<Vec<(ObjectId, StoredState)>, StoreError> {
        Ok(self
            .objects
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn audit_records(&self, _from: u64, _limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        Ok(Vec::new())
    }

    fn check_health(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Signs with "signature = SHA-256(key || message)": deterministic and
/// distinct per message, enough to tell signatures apart.
pub(crate) struct HashKeys;

impl KeyBackend for HashKeys {
    fn public_key(&self, key: &KeyId) -> Result<PublicKey, KeyError> {
        if key.as_str() == "missing" {
            return Err(KeyError::UnknownKey(key.to_string()));
        }
        Ok(PublicKey {
            scheme: Scheme::Ed25519,
            bytes: Sha256::digest(key.as_str()).to_vec(),
        })
    }

    fn sign(&self, key: &KeyId, message: &SignMessage) -> Result<Signature, KeyError> {
        let mut h = Sha256::new();
        h.update(key.as_str());
        h.update(message.bytes());
        Ok(Signature(h.finalize().to_vec()))
    }

    fn keys(&self) -> Result<Vec<(KeyId, PublicKey)>, KeyError> {
        Ok(Vec::new())
    }
}

/// A strictly increasing counter: the smallest policy with sign, replay
/// and refuse.
pub(crate) struct CounterPolicy;

pub(crate) struct CounterRequest {
    pub(crate) key: KeyId,
    pub(crate) n: u64,
    pub(crate) payload: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CounterState {
    pub(crate) n: u64,
    pub(crate) payload: String,
}

pub(crate) fn request(n: u64, payload: &str) -> CounterRequest {
    CounterRequest {
        key: KeyId::new("k").unwrap(),
        n,
        payload: payload.into(),
    }
}

impl Policy for CounterPolicy {
    type Request = CounterRequest;
    type State = CounterState;

    fn domain(&self) -> Domain {
        Domain::Consensus
    }

    fn object(&self, r: &CounterRequest) -> Result<ObjectId, IdError> {
        ObjectId::new(
            Domain::Consensus,
            ChainId::new("test")?,
            r.key.clone(),
            "counter",
        )
    }

    fn key<'r>(&self, r: &'r CounterRequest) -> &'r KeyId {
        &r.key
    }

    fn mark(&self, s: &CounterState) -> Mark {
        Mark::none().with("n", s.n)
    }

    fn decide(
        &self,
        object: &ObjectId,
        _key: &PublicKey,
        current: Option<&CounterState>,
        r: &CounterRequest,
    ) -> Decision<CounterState> {
        let refuse = |tag, s: &CounterState| {
            Decision::Refuse(Refusal {
                tag: Tag::new(tag),
                object: object.clone(),
                current: self.mark(s),
                detail: String::new(),
            })
        };
        match current {
            Some(s) if r.n < s.n => refuse("hwm-height-regression", s),
            Some(s) if r.n == s.n && r.payload == s.payload => Decision::Replay {
                also_sign: Vec::new(),
            },
            Some(s) if r.n == s.n => refuse("hwm-double-sign", s),
            _ => Decision::Sign {
                new_state: CounterState {
                    n: r.n,
                    payload: r.payload.clone(),
                },
                inputs: vec![SignInput {
                    key: r.key.clone(),
                    message: SignMessage::Ed25519(format!("{}:{}", r.n, r.payload).into_bytes()),
                }],
            },
        }
    }
}
