//! The connection to the signer as the adapter sees it: every call is
//! classified as answered, transient (unreachable, busy, deadline), refused
//! by policy, or failed for good; transient failures mark the channel
//! blocked and wake the watcher.
//!
//! Invariants:
//! - a refusal is counted once per call and never retried here;
//! - only [`Connection::until_answered`] retries, with a bounded backoff.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tidemark_client::{BlockingClient, ClientError, Refusal};
use tidemark_lightning::channel::ChannelRequest;
use tonic::Code as tonic_code;

/// What the node runs when the signer is reachable again (wired to
/// `ChannelManager::signer_unblocked(None)` and
/// `ChainMonitor::signer_unblocked(None)`).
pub type UnblockedCallback = Box<dyn Fn() + Send + Sync>;

/// How a call ended when it did not return an answer.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Unreachable, overloaded or past the deadline: may succeed later.
    Transient(ClientError),
    /// Refused by policy, with its tag: do not retry.
    Refused(Refusal),
    /// Any other error (permission, malformed request, ...): do not retry.
    Definitive(ClientError),
}

impl Failure {
    fn of(error: ClientError) -> Failure {
        match error {
            ClientError::Refused(r) => Failure::Refused(r),
            e if e.is_retryable() => Failure::Transient(e),
            // tonic reports a connection dropped mid-call as UNKNOWN
            // ("transport error"); the signer itself never answers it.
            e @ ClientError::Other {
                code: tonic_code::Unknown,
                ..
            } => Failure::Transient(e),
            e => Failure::Definitive(e),
        }
    }
}

/// Locks `m`; a poisoned lock still guards plain data that stays valid.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Timing of retries and probes.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The first pause.
    pub first: Duration,
    /// The longest pause.
    pub max: Duration,
}

impl Backoff {
    fn next(&self, pause: Duration) -> Duration {
        (pause * 2).min(self.max)
    }
}

/// State shared by the node signer, every channel signer and the watcher.
pub(crate) struct Connection {
    pub(crate) client: BlockingClient,
    pub(crate) node: String,
    backoff: Backoff,
    validation_patience: Duration,
    blocked: Mutex<HashSet<[u8; 32]>>,
    wake: Condvar,
    callbacks: Mutex<Vec<Arc<UnblockedCallback>>>,
    refusals_total: AtomicU64,
    refusals: Mutex<BTreeMap<String, u64>>,
    /// Channels whose setup the signer acknowledged (this process).
    pub(crate) set_up: Mutex<HashSet<[u8; 32]>>,
    /// First holder-commitment validations that arrived before the
    /// channel's setup could be sent (an inbound channel), sent right
    /// after it.
    pub(crate) deferred: Mutex<HashMap<[u8; 32], ChannelRequest>>,
}

impl Connection {
    pub(crate) fn new(
        client: BlockingClient,
        node: String,
        backoff: Backoff,
        validation_patience: Duration,
    ) -> Connection {
        Connection {
            client,
            node,
            backoff,
            validation_patience,
            blocked: Mutex::new(HashSet::new()),
            wake: Condvar::new(),
            callbacks: Mutex::new(Vec::new()),
            refusals_total: AtomicU64::new(0),
            refusals: Mutex::new(BTreeMap::new()),
            set_up: Mutex::new(HashSet::new()),
            deferred: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `call` once and classifies its failure; a transient failure
    /// marks `channel` (if any) blocked, a refusal is counted and logged.
    pub(crate) fn once<T>(
        &self,
        what: &'static str,
        channel: Option<&[u8; 32]>,
        call: impl FnOnce(&BlockingClient) -> Result<T, ClientError>,
    ) -> Result<T, Failure> {
        match call(&self.client) {
            Ok(v) => Ok(v),
            Err(e) => Err(self.report(what, channel, Failure::of(e))),
        }
    }

    /// Logs `failure`; marks the channel blocked or counts the refusal.
    fn report(&self, what: &'static str, channel: Option<&[u8; 32]>, failure: Failure) -> Failure {
        let id = channel.map(hex_id).unwrap_or_default();
        match &failure {
            Failure::Transient(e) => {
                tracing::warn!(node = %self.node, channel = %id, call = what, error = %e,
                    "signer unreachable or busy; the call fails retryably");
                if let Some(c) = channel {
                    lock(&self.blocked).insert(*c);
                    self.wake.notify_all();
                }
            }
            Failure::Refused(r) => {
                self.refusals_total.fetch_add(1, Ordering::Relaxed);
                *lock(&self.refusals).entry(r.tag.clone()).or_default() += 1;
                tracing::warn!(node = %self.node, channel = %id, call = what, tag = %r.tag,
                    object = %r.object, detail = %r.detail, "signer refused by policy");
            }
            Failure::Definitive(e) => {
                tracing::error!(node = %self.node, channel = %id, call = what, error = %e,
                    "signer call failed");
            }
        }
        failure
    }

    /// Runs `call` until it is answered, refused or fails for good:
    /// transient failures are retried with backoff for at most
    /// `validation_patience` (`bounded`) or forever (`!bounded`).
    pub(crate) fn until_answered<T>(
        &self,
        what: &'static str,
        channel: Option<&[u8; 32]>,
        bounded: bool,
        mut call: impl FnMut(&BlockingClient) -> Result<T, ClientError>,
    ) -> Result<T, Failure> {
        let start = Instant::now();
        let mut pause = self.backoff.first;
        loop {
            // Not through `once`: a wait here is not a blocked channel.
            match call(&self.client).map_err(Failure::of) {
                Err(Failure::Transient(e)) => {
                    if bounded && start.elapsed() >= self.validation_patience {
                        tracing::error!(node = %self.node, call = what, error = %e,
                            "signer unreachable past the validation patience; giving up");
                        return Err(Failure::Transient(e));
                    }
                    tracing::warn!(node = %self.node, call = what, error = %e,
                        retry_in_ms = pause.as_millis() as u64, "signer unreachable; retrying");
                    std::thread::sleep(pause);
                    pause = self.backoff.next(pause);
                }
                Ok(v) => return Ok(v),
                Err(f) => return Err(self.report(what, channel, f)),
            }
        }
    }

    pub(crate) fn is_blocked(&self, channel: &[u8; 32]) -> bool {
        lock(&self.blocked).contains(channel)
    }

    pub(crate) fn on_unblocked(&self, callback: UnblockedCallback) {
        lock(&self.callbacks).push(Arc::new(callback));
    }

    pub(crate) fn refusals(&self) -> Refusals {
        Refusals {
            total: self.refusals_total.load(Ordering::Relaxed),
            by_tag: lock(&self.refusals).clone(),
        }
    }

    /// One watcher step: waits until a channel is blocked (or `interval`
    /// passes), then probes the signer; when it answers, clears every
    /// blocked mark and runs the callbacks. Returns whether it fired.
    fn watch_step(&self, interval: Duration) -> bool {
        {
            let guard = lock(&self.blocked);
            if guard.is_empty() {
                let _ = self
                    .wake
                    .wait_timeout(guard, interval)
                    .unwrap_or_else(PoisonError::into_inner);
                return false;
            }
        }
        std::thread::sleep(interval);
        if self.client.node_id(&self.node).is_err() {
            return false;
        }
        let released = std::mem::take(&mut *lock(&self.blocked));
        if released.is_empty() {
            return false;
        }
        tracing::info!(node = %self.node, channels = released.len(),
            "signer reachable again; unblocking");
        let callbacks: Vec<_> = lock(&self.callbacks).clone();
        for c in callbacks {
            c();
        }
        true
    }
}

/// Starts the watcher thread: it lives while `connection` has other
/// owners and probes every `interval` while a channel is blocked.
pub(crate) fn spawn_watcher(
    connection: &Arc<Connection>,
    interval: Duration,
) -> std::io::Result<()> {
    let weak = Arc::downgrade(connection);
    std::thread::Builder::new()
        .name("tidemark-ldk-watcher".into())
        .spawn(move || {
            while let Some(c) = weak.upgrade() {
                c.watch_step(interval);
            }
        })
        .map(|_| ())
}

/// Policy refusals seen by this node's adapter: the operator's metric.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refusals {
    /// Every refusal.
    pub total: u64,
    /// Refusals per tag (`policy-commitment-retry-same`, ...).
    pub by_tag: BTreeMap<String, u64>,
}

impl Refusals {
    /// The refusals with `tag`.
    pub fn tagged(&self, tag: &str) -> u64 {
        self.by_tag.get(tag).copied().unwrap_or(0)
    }
}

pub(crate) fn hex_id(id: &[u8; 32]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}
