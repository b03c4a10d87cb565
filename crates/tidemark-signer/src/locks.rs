//! Per-object locks.
//!
//! [`ObjectLocks::lock`] returns a guard that excludes every other holder of
//! the same [`ObjectId`] and no one else: requests for different objects
//! never wait for each other. Entries are removed when the last interested
//! thread lets go, so the map holds only objects in use.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use tidemark_core::ObjectId;

/// One object's lock: a held flag and a condition variable to wait on.
#[derive(Debug, Default)]
struct Slot {
    held: Mutex<bool>,
    released: Condvar,
}

impl Slot {
    fn acquire(&self) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        while *held {
            held = self
                .released
                .wait(held)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *held = true;
    }

    fn release(&self) {
        *self.held.lock().unwrap_or_else(PoisonError::into_inner) = false;
        self.released.notify_one();
    }
}

/// A map of per-object locks.
#[derive(Debug, Default)]
pub struct ObjectLocks {
    slots: Mutex<HashMap<ObjectId, Arc<Slot>>>,
}

/// Holds one object's lock; releases it on drop (also on unwind).
#[derive(Debug)]
pub struct ObjectGuard<'a> {
    owner: &'a ObjectLocks,
    object: ObjectId,
    slot: Arc<Slot>,
}

impl ObjectLocks {
    /// Creates an empty lock map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Blocks until this thread holds `object`'s lock.
    pub fn lock(&self, object: &ObjectId) -> ObjectGuard<'_> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            slots.entry(object.clone()).or_default().clone()
        };
        slot.acquire();
        ObjectGuard {
            owner: self,
            object: object.clone(),
            slot,
        }
    }

    /// How many objects currently have a lock entry (for tests and metrics).
    pub fn len(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// True when no object is locked or waited for.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for ObjectGuard<'_> {
    fn drop(&mut self) {
        self.slot.release();
        let mut slots = self
            .owner
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // The map holds one reference and this guard another; anyone else
        // holding one is waiting for the lock and still needs the entry.
        if Arc::strong_count(&self.slot) == 2 {
            slots.remove(&self.object);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tidemark_core::{ChainId, Domain, KeyId};

    fn object(kind: &str) -> ObjectId {
        ObjectId::new(
            Domain::Consensus,
            ChainId::new("c").unwrap(),
            KeyId::new("k").unwrap(),
            kind,
        )
        .unwrap()
    }

    #[test]
    fn one_object_is_held_by_one_thread_at_a_time() {
        let locks = Arc::new(ObjectLocks::new());
        let inside = Arc::new(AtomicUsize::new(0));
        let max_inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (locks, inside, max_inside) =
                    (locks.clone(), inside.clone(), max_inside.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let _g = locks.lock(&object("a"));
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        max_inside.fetch_max(now, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(max_inside.load(Ordering::SeqCst), 1);
        assert!(locks.is_empty(), "entries are reclaimed");
    }

    #[test]
    fn different_objects_do_not_wait_for_each_other() {
        let locks = Arc::new(ObjectLocks::new());
        let _held = locks.lock(&object("a"));
        let other = locks.clone();
        let t = std::thread::spawn(move || {
            let _g = other.lock(&object("b"));
        });
        // If "b" waited for "a" this join would hang while we hold "a".
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !t.is_finished() {
            assert!(std::time::Instant::now() < deadline, "b waited for a");
            std::thread::sleep(Duration::from_millis(1));
        }
        t.join().unwrap();
    }
}
