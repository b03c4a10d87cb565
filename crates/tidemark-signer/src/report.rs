//! What every pipeline (this crate's, the wallet's, the channel signer's)
//! does after a decision: the audit record and the observer's event.

use std::sync::Arc;
use std::time::Instant;

use tidemark_core::{AuditEntry, AuditOutcome, ClientId, ObjectId, StateStore};
use tracing::warn;

use crate::pipeline::{DecisionEvent, DecisionObserver};

/// Appends `entry` for a decision that changed no state (a replay, a
/// refusal). A failure is logged, never returned: the decision stands.
pub fn audit_best_effort(store: &dyn StateStore, entry: AuditEntry) {
    if let Err(e) = store.audit(entry) {
        warn!(error = %e, "audit record not written");
    }
}

/// Reports a final decision to `observer`, if there is one.
pub fn observe(
    observer: Option<&Arc<dyn DecisionObserver>>,
    object: &ObjectId,
    client: &ClientId,
    outcome: AuditOutcome,
    tag: Option<&str>,
    started: Instant,
) {
    if let Some(observer) = observer {
        observer.observe(&DecisionEvent {
            object,
            client,
            outcome,
            tag,
            latency: started.elapsed(),
        });
    }
}
