//! One channel: its state, the requests a replica makes about it, the pure
//! decision, and the execution of what was decided with its keys.
//!
//! ```text
//! request ──decide(policy, context, state)──> Verdict
//!   Sign { new_state, action } ──execute(action, signer)──> Output
//!        ──state.record(output); commit(new_state) (fsync)──> release Output
//!   Replay { output }  -> release the stored output
//!   Refuse { tag, .. } -> nothing changes, nothing leaves
//! ```
//!
//! # Layout
//!
//! - [`number`]: BOLT 3 commitment numbers (counting up) and LDK indexes.
//! - [`state`]: [`ChannelState`], stored as JSON per channel.
//! - [`request`]: [`ChannelRequest`] and its structured parts.
//! - `decide`: dispatch and the setup rules; `import`: an open channel's
//!   position taken over from the node that ran it; `counterparty`,
//!   `holder`, `spend` and `close`: the rules of each kind of request.
//! - `build`: rebuilding BOLT 3 transactions with LDK's `chan_utils`.
//! - [`execute`](execute()): signing with LDK's `InMemorySigner`.
//! - `secrets`: BOLT 3 compact storage of revocation secrets.
//!
//! # Invariants
//!
//! - `decide` is pure and holds no secret; `execute` signs only what
//!   `decide` built from the stored parameters.
//! - The pipeline commits `new_state` before it releases anything
//!   `execute` returned; a refusal or an error changes nothing.

mod build;
mod close;
mod counterparty;
mod decide;
mod error;
mod execute;
mod holder;
mod import;
pub mod number;
pub mod request;
mod secrets;
mod serde_hex;
mod spend;
pub mod state;
mod verdict;

pub use decide::decide;
pub use error::ChannelError;
pub use execute::execute;
pub use number::{CommitmentNumber, MAX_COMMITMENT_NUMBER};
pub use request::{
    AnchorSpend, Announcement, ChannelImport, ChannelRequest, ClosingProposal, CommitmentData,
    CounterpartyHtlcSpend, HolderCommitment, HolderHtlcSpend, Htlc, ImportedCommitment,
    ImportedSecret, JusticeSpend, SpendInput, SpendTx,
};
pub use secrets::{RevocationSecrets, SecretMismatch};
pub use state::{
    ChannelKeys, ChannelKind, ChannelSetup, ChannelState, Closing, CommitmentSignatures,
    CounterpartyLedger, FundingOutpoint, HolderLedger, HolderRecord, SignedCommitment,
};
pub use verdict::{Action, Context, HolderSecret, Operation, Output, Verdict, Warning};
