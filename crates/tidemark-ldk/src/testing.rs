//! Test support (feature `testing`): real LDK nodes in one process, no
//! bitcoind. Each node is a `ChannelManager` and its `ChainMonitor` over a
//! signer of the caller's choice (the adapter, or LDK's `KeysManager`);
//! blocks are synthetic and fed through `chain::Confirm`; messages are
//! delivered between nodes by [`pump`]. A node can be snapshotted (its
//! manager and monitors, serialized as a node persists them) and restored
//! any number of times, with any signer: the replicas of split-brain and
//! stale-restore scenarios, and the migration from `KeysManager`.
//!
//! This is test code: it panics on anything unexpected, with a message.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod flows;
mod node;
mod plumbing;

pub use flows::{
    CHANNEL_SAT, claim, claimed, count, funding_transaction, open_channel, send_payments, sent,
};
pub use node::{
    Chain, FEE_RATE, Keys, Manager, Monitor, Node, Pair, Snapshot, connect, deliver, disconnect,
    pump,
};
pub use plumbing::{Broadcaster, DirectRouter, Fees, Log, Monitors};
