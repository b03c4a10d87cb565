//! Tidemark's durable state store: SQLite with WAL and `synchronous=FULL`,
//! leader-based group commit (one batch, one transaction, one fsync), and a
//! hash-chained audit log.
//!
//! [`SqliteStore`] implements [`tidemark_core::StateStore`]. A `commit`
//! (one object) or `commit_all` (several, all or none) returns only once
//! its state and audit record are fsync'd; concurrent commits share one
//! transaction and one fsync. The store fails closed: a
//! missing, empty, truncated, corrupt or tampered file is refused, never
//! replaced by an empty store, and a full disk fails the commits it hits
//! without changing anything.
//!
//! # Layout
//!
//! - `store`: [`SqliteStore`], the shared handle: open/create, the
//!   [`StateStore`](tidemark_core::StateStore) methods, read connections,
//!   health and shutdown.
//! - `committer`: leader-based group commit: who writes a batch (the
//!   first waiting caller, or the background thread) and the queue.
//! - `writer`: one batch in one transaction: all-or-none compare-and-swap
//!   of each commit's objects inside a batch, the audit chain, checkpoints.
//! - `open`: creating and opening a file, failing closed (header, identity,
//!   schema version, `quick_check`, audit chain).
//! - `schema`: the tables, the ordered migrations and connection settings.
//! - `codec`: rows to values and back; a malformed row is `Corrupt`.
//! - `error`: [`OpenError`] and the mapping of SQLite codes to
//!   [`StoreError`](tidemark_core::StoreError).
//! - `metrics`: counters and histograms ([`MetricsSnapshot`]).
//! - `options`: [`StoreOptions`].
//! - `fsync`: [`fdatasync_latency`], the raw disk figure benchmarks print.

#![forbid(unsafe_code)]

mod codec;
mod committer;
mod error;
mod fsync;
mod metrics;
mod open;
mod options;
mod schema;
mod store;
#[cfg(test)]
mod test_support;
pub mod testing;
mod writer;

pub use error::OpenError;
pub use fsync::fdatasync_latency;
pub use metrics::{HistogramSnapshot, MetricsSnapshot};
pub use options::StoreOptions;
pub use store::SqliteStore;
