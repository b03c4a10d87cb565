//! The interface every domain implements.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::decision::Decision;
use crate::ids::{Domain, IdError, KeyId, ObjectId};
use crate::mark::Mark;
use crate::ports::PublicKey;

/// A domain's rules: a pure decision over (current state, request).
///
/// Implementations do no I/O and hold no mutable state: the pipeline
/// serializes requests per object, loads the state, calls
/// [`Policy::decide`] and commits what it answers. Because `decide` is pure,
/// it can be property-tested against any interleaving of requests.
pub trait Policy: Send + Sync {
    /// A validated request. Malformed input is rejected when the request is
    /// built, before it reaches a policy.
    type Request: Send + Sync;
    /// The per-object state, stored as JSON. It must hold everything needed
    /// to decide the next request and to recognise an identical repeat.
    type State: Clone + Serialize + DeserializeOwned + Send + Sync;

    /// The domain this policy serves.
    fn domain(&self) -> Domain;

    /// The object `request` is about.
    fn object(&self, request: &Self::Request) -> Result<ObjectId, IdError>;

    /// The key that signs `request`.
    fn key<'r>(&self, request: &'r Self::Request) -> &'r KeyId;

    /// The mark a state stands for (for refusals, audit and export).
    fn mark(&self, state: &Self::State) -> Mark;

    /// Decides `request` against `current` (`None`: never signed).
    /// `key` is the public key that will sign, so the policy can build the
    /// message in the form the key's scheme needs.
    fn decide(
        &self,
        object: &ObjectId,
        key: &PublicKey,
        current: Option<&Self::State>,
        request: &Self::Request,
    ) -> Decision<Self::State>;
}
