//! Who runs the writer's batches: leader-based group commit.
//!
//! A caller of `commit` or `commit_all` queues its request. If no batch is
//! being written, it becomes the **leader** and writes the batch itself, on
//! its own thread (no hand-off to another thread on the common, uncontended
//! path). While a leader's fsync is in flight, new requests queue behind it
//! and their callers wait; the leader keeps writing batches until its own
//! request is answered, then hands the queue to the background thread,
//! which writes batches until the queue is empty. Fire-and-forget audit
//! entries and WAL checkpoints are always left to the background thread.
//!
//! Invariants:
//! - At most one thread leads at a time (`leading` under the queue lock),
//!   and only the leader takes requests off the queue; the writer's
//!   connection is behind a mutex besides.
//! - A request is never stranded: leadership is released only when the
//!   queue is empty (checked under the same lock a new request is queued
//!   under) or handed to the background thread.
//! - Every queued request is answered, on shutdown too: the background
//!   thread drains the queue before it exits. If writing a batch panics (a
//!   bug), the store stops: the transaction is rolled back, every queued
//!   caller gets `Closed`, and health reports the store down.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use tidemark_core::StoreError;

use crate::writer::{Item, Request, Writer};

/// The queue and who leads.
#[derive(Debug, Default)]
struct Queue {
    pending: VecDeque<Request>,
    /// A thread is writing batches.
    leading: bool,
    /// The leader passed leadership to the background thread.
    handoff: bool,
    /// A WAL checkpoint is due.
    checkpoint_due: bool,
    /// No new requests; drain and stop.
    shutdown: bool,
    /// A batch panicked and the store stopped (`shutdown` is set too).
    failed: bool,
}

/// The writer, its queue and its background thread's wake-ups.
pub(crate) struct Committer {
    queue: Mutex<Queue>,
    /// Wakes the background thread.
    background: Condvar,
    /// Wakes callers waiting for room in a full queue.
    space: Condvar,
    writer: Mutex<Writer>,
    max_batch: usize,
    capacity: usize,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer").finish_non_exhaustive()
    }
}

/// Releases leadership if a leader unwinds (it never should), so the
/// background thread can take over and nobody waits forever.
struct LeaderGuard<'a> {
    committer: &'a Committer,
    armed: bool,
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut q = self.committer.lock_queue();
            if q.pending.is_empty() {
                q.leading = false;
            } else {
                q.handoff = true;
            }
            self.committer.background.notify_one();
        }
    }
}

impl Committer {
    pub(crate) fn new(writer: Writer, max_batch: usize, capacity: usize) -> Self {
        Committer {
            queue: Mutex::new(Queue::default()),
            background: Condvar::new(),
            space: Condvar::new(),
            writer: Mutex::new(writer),
            max_batch: max_batch.max(1),
            capacity: capacity.max(1),
        }
    }

    fn lock_queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `request`, waiting while the queue is full (backpressure).
    fn enqueue<'a>(&'a self, request: Request) -> Result<MutexGuard<'a, Queue>, StoreError> {
        let mut q = self.lock_queue();
        while !q.shutdown && q.pending.len() >= self.capacity {
            q = self.space.wait(q).unwrap_or_else(PoisonError::into_inner);
        }
        if q.shutdown {
            return Err(StoreError::Closed);
        }
        q.pending.push_back(request);
        Ok(q)
    }

    /// Queues `item` and returns once its batch is durable (or failed).
    pub(crate) fn submit(&self, item: Item) -> Result<(), StoreError> {
        let (reply, answer) = mpsc::sync_channel(1);
        let lead = {
            let mut q = self.enqueue(Request {
                item,
                reply: Some(reply),
            })?;
            !std::mem::replace(&mut q.leading, true)
        };
        if lead {
            return self.lead(&answer);
        }
        // The leader, or the background thread it hands over to, answers
        // every queued request; a dropped reply means the store stopped.
        answer.recv().unwrap_or(Err(StoreError::Closed))
    }

    /// True once a batch panicked and the committer stopped.
    pub(crate) fn failed(&self) -> bool {
        self.lock_queue().failed
    }

    /// Queues `item` without waiting for it to be written.
    pub(crate) fn submit_detached(&self, item: Item) -> Result<(), StoreError> {
        let q = self.enqueue(Request { item, reply: None })?;
        if !q.leading || q.handoff {
            self.background.notify_one();
        }
        Ok(())
    }

    /// Writes batches until this leader's own request is answered, then
    /// hands the rest of the queue to the background thread.
    fn lead(&self, answer: &Receiver<Result<(), StoreError>>) -> Result<(), StoreError> {
        let mut guard = LeaderGuard {
            committer: self,
            armed: true,
        };
        loop {
            let Some(batch) = self.take_batch() else {
                // Cannot happen (our request was queued before we led, and
                // only the leader takes requests); do not spin if it does.
                guard.armed = false;
                return answer.recv().unwrap_or(Err(StoreError::Closed));
            };
            self.write(batch);
            if let Ok(result) = answer.try_recv() {
                guard.armed = false;
                let mut q = self.lock_queue();
                if q.pending.is_empty() {
                    q.leading = false;
                } else {
                    q.handoff = true;
                }
                // Wake the background thread only when it has work: a
                // handed-off queue, a checkpoint, or a shutdown to finish
                // (it waits for the leader to let go before it stops).
                if q.handoff || q.checkpoint_due || q.shutdown {
                    self.background.notify_one();
                }
                return result;
            }
        }
    }

    /// Takes the next batch, or releases leadership when the queue is
    /// empty (`None`).
    fn take_batch(&self) -> Option<Vec<Request>> {
        let mut q = self.lock_queue();
        if q.pending.is_empty() {
            q.leading = false;
            if q.shutdown || q.checkpoint_due {
                self.background.notify_one();
            }
            return None;
        }
        let n = q.pending.len().min(self.max_batch);
        let batch: Vec<Request> = q.pending.drain(..n).collect();
        self.space.notify_all();
        Some(batch)
    }

    fn write(&self, batch: Vec<Request>) {
        // A panic here is a bug; it must not leave callers waiting forever
        // or a transaction open. Callers in the panicking batch see their
        // reply dropped (Closed), and the store stops.
        let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.lock_writer().process(batch)
        }));
        match written {
            Ok(true) => self.lock_queue().checkpoint_due = true,
            Ok(false) => {}
            Err(_) => self.fail_stop(),
        }
    }

    /// Stops the store after a batch panicked: rolls back whatever the
    /// batch left open, answers every queued request with `Closed`, refuses
    /// new ones, and lets the background thread finish.
    fn fail_stop(&self) {
        tracing::error!("state store writer panicked: the store stops; restart the signer");
        self.lock_writer().abandon();
        let drained: Vec<Request> = {
            let mut q = self.lock_queue();
            q.shutdown = true;
            q.failed = true;
            q.leading = false;
            q.handoff = false;
            q.pending.drain(..).collect()
        };
        for request in drained {
            if let Some(reply) = request.reply {
                let _ = reply.send(Err(StoreError::Closed));
            }
        }
        self.background.notify_one();
        self.space.notify_all();
    }

    /// The background thread: takes over queues leaders handed off, writes
    /// fire-and-forget entries, checkpoints; on shutdown drains and stops.
    pub(crate) fn run_background(&self) {
        loop {
            let mut q = self.lock_queue();
            loop {
                let can_lead = !q.pending.is_empty() && (!q.leading || q.handoff);
                if can_lead || (q.checkpoint_due && !q.leading) {
                    break;
                }
                if q.shutdown && q.pending.is_empty() && !q.leading {
                    drop(q);
                    self.lock_writer().finish();
                    return;
                }
                q = self
                    .background
                    .wait(q)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            let checkpoint = std::mem::take(&mut q.checkpoint_due);
            let lead = !q.pending.is_empty();
            if lead {
                q.handoff = false;
                q.leading = true;
            }
            drop(q);
            if checkpoint {
                self.lock_writer().checkpoint();
            }
            if lead {
                while let Some(batch) = self.take_batch() {
                    self.write(batch);
                }
            }
        }
    }

    /// Refuses new requests and wakes the background thread to drain the
    /// queue and stop.
    pub(crate) fn shutdown(&self) {
        let mut q = self.lock_queue();
        q.shutdown = true;
        self.background.notify_one();
        self.space.notify_all();
    }
}

#[cfg(test)]
mod tests;
