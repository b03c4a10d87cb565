//! [`TestRecord`]: the adapters one test made and what the signer refused
//! them, found through the test's thread.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tidemark_ldk::TidemarkSigner;

/// What one test asked of the signer.
#[derive(Debug, Default)]
pub struct TestRecord {
    adapters: Mutex<Vec<TidemarkSigner>>,
    unsafe_holder_cheat: AtomicU64,
}

impl TestRecord {
    pub(crate) fn add_adapter(&self, adapter: TidemarkSigner) {
        self.adapters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(adapter);
    }

    pub(crate) fn count_unsafe_holder_cheat(&self) {
        self.unsafe_holder_cheat.fetch_add(1, Ordering::Relaxed);
    }

    /// How many holder commitments the test had signed outside Tidemark
    /// (LDK's test-only `unsafe_sign_holder_commitment`, the cheat).
    pub fn unsafe_holder_cheats(&self) -> u64 {
        self.unsafe_holder_cheat.load(Ordering::Relaxed)
    }

    /// The policy refusals of the test's adapters, by tag.
    pub fn refusals(&self) -> BTreeMap<String, u64> {
        let mut all = BTreeMap::new();
        for adapter in self
            .adapters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            for (tag, n) in adapter.refusals().by_tag {
                *all.entry(tag).or_insert(0) += n;
            }
        }
        all
    }

    /// Drops the test's adapters (their connections and watcher threads).
    pub fn release(&self) {
        self.adapters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<TestRecord>>> = const { RefCell::new(None) };
}

/// Makes `record` the record of the test running on this thread.
pub fn set_current_record(record: Option<Arc<TestRecord>>) {
    CURRENT.with(|c| *c.borrow_mut() = record);
}

/// The record of the test running on this thread (a detached one if none
/// was set: a node made outside the runner).
pub fn current_record() -> Arc<TestRecord> {
    CURRENT.with(|c| c.borrow().clone()).unwrap_or_default()
}
