//! Unit tests of the pure parts: the velocity window and intent ids.

use crate::state::{IntentId, LedgerState};

#[test]
fn the_velocity_window_counts_whole_minutes_that_overlap_it() {
    let mut ledger = LedgerState::default();
    let t0 = 1_800_000_000; // a minute boundary
    ledger.sent_per_minute.insert(t0 / 60, 100);
    ledger.sent_per_minute.insert(t0 / 60 + 1, 20);
    ledger.sent_per_minute.insert(t0 / 60 + 59, 3);
    assert_eq!(ledger.sent_in_window(t0 + 60 * 59, 3600), 123);
    // 59 s into the window's first minute: that minute still counts.
    assert_eq!(ledger.sent_in_window(t0 + 3600 + 59, 3600), 123);
    assert_eq!(ledger.sent_in_window(t0 + 3600 + 60, 3600), 23);
    assert_eq!(ledger.sent_in_window(t0 + 3600 + 59 * 60, 3600), 3);
    assert_eq!(ledger.sent_in_window(t0 + 7200, 3600), 0);
    ledger.prune(t0 + 3600 + 60, 3600);
    assert_eq!(ledger.sent_per_minute.len(), 2);
    // Saturating, never wrapping.
    ledger.sent_per_minute.insert(t0 / 60 + 60, u64::MAX);
    assert_eq!(ledger.sent_in_window(t0 + 3660, 3600), u64::MAX);
}

#[test]
fn intent_ids_use_a_safe_alphabet() {
    for ok in ["payout-2026-000123", "a", "A.b_c-9", &"x".repeat(64)] {
        IntentId::new(ok).unwrap();
    }
    for bad in ["", "a b", "a/b", "é", &"x".repeat(65)] {
        assert!(IntentId::new(bad).is_err(), "{bad:?}");
    }
    // Ids are validated when states are decoded too.
    assert!(serde_json::from_str::<IntentId>("\"a/b\"").is_err());
}
