//! Overload shedding: a bounded number of requests in flight.
//!
//! A request beyond the bound is refused at once with
//! `RESOURCE_EXHAUSTED`, before it takes a lock, a thread or a store slot,
//! so an overloaded signer answers fast instead of letting every request's
//! latency collapse.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Counts requests in flight against a bound.
#[derive(Debug)]
pub struct InFlight {
    max: usize,
    current: AtomicUsize,
    shed: AtomicU64,
}

/// A slot; released on drop.
#[derive(Debug)]
pub struct Permit(Arc<InFlight>);

impl InFlight {
    /// A limiter admitting `max` concurrent requests.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(InFlight {
            max,
            current: AtomicUsize::new(0),
            shed: AtomicU64::new(0),
        })
    }

    /// A permit, or `None` if `max` requests are in flight.
    pub fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
        let admitted = self
            .current
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok();
        if admitted {
            Some(Permit(self.clone()))
        } else {
            self.shed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }

    /// Requests in flight now.
    pub fn current(&self) -> usize {
        self.current.load(Ordering::Acquire)
    }

    /// Requests refused since start.
    pub fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.current.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_beyond_the_bound_are_shed_and_slots_come_back() {
        let limit = InFlight::new(2);
        let a = limit.try_acquire().unwrap();
        let _b = limit.try_acquire().unwrap();
        assert!(limit.try_acquire().is_none());
        assert_eq!(limit.shed(), 1);
        drop(a);
        assert!(limit.try_acquire().is_some());
    }
}
