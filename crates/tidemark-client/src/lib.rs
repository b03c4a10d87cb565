//! The Rust client of the Tidemark signer.
//!
//! [`Client`] is async; [`BlockingClient`] wraps it with its own runtime for
//! synchronous callers (an LDK signer trait, a wallet's worker thread).
//! Both speak gRPC over mutual TLS, put a deadline on every call, and
//! reconnect by themselves: the channel redials when the signer restarts.
//!
//! A refusal is a value, not a string: [`ClientError::Refused`] carries the
//! tag, the object and the signer's current mark, so a replica can tell it
//! is stale (`hwm-...`) or conflicting (`hwm-double-sign`), or that another
//! replica already paid its payment intent (`policy-intent-conflict`).
//!
//! # Layout
//!
//! - `error`: [`ClientError`] and [`Refusal`], decoded from gRPC statuses.
//! - `client`: [`Client`], [`ClientOptions`].
//! - `blocking`: [`BlockingClient`].
//! - [`lightning`]: the lightning service's calls (on [`Client`] and
//!   [`BlockingClient`]) and the conversion of structured channel requests
//!   to the wire and of answers back.

mod blocking;
mod client;
mod error;
pub mod lightning;

pub use blocking::BlockingClient;
pub use client::{Client, ClientOptions};
pub use error::{ClientError, Refusal};
pub use lightning::{ChannelAnswer, NodeScripts};
pub use tidemark_proto::v1;
