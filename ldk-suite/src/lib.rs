//! LDK's exported functional tests with every node's keys behind a real
//! Tidemark server: [`TidemarkFactory`] is LDK's `TestSignerFactory`.
//!
//! ```text
//! LDK functional test ── TestKeysInterface (LDK's checks, per node)
//!   │ backing: DynKeysInterface
//!   ▼
//! SuiteKeys ──derive_channel_signer──> DynSigner(SuiteChannelSigner)
//!   │ tidemark_ldk::TidemarkSigner / TidemarkChannelSigner
//!   ▼ gRPC over mutual TLS on 127.0.0.1
//! one in-process Tidemark server per (seed, remote key derivation)
//! ```
//!
//! # Invariants
//!
//! - One server per seed (and LDK remote-key derivation) for the whole
//!   run, started on first use: its node's keys are exactly LDK
//!   `KeysManager`'s for that seed. Channel state is keyed by the channel
//!   keys id, which the server issues from its durable counter, so tests
//!   sharing a server never share a channel.
//! - Each `make_signer` call (one per test node) gets its own adapter, a
//!   client of that server, recorded in the [`TestRecord`] of the test
//!   running on the calling thread: a test's refusals are its adapters'.
//!
//! # Layout
//!
//! - `servers`: the per-seed servers and their runtime.
//! - `keys`: [`SuiteKeys`] and [`SuiteChannelSigner`], LDK's dynamic
//!   signer traits over the adapter.
//! - `record`: [`TestRecord`], what the signer refused in one test.

mod keys;
mod record;
mod servers;

pub use keys::{SuiteChannelSigner, SuiteKeys, TidemarkFactory};
pub use record::{TestRecord, current_record, set_current_record};
pub use servers::{ServerSettings, shutdown_servers};
