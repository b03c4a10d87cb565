//! The intent rules through the public API over a real SQLite store and a
//! real keystore: replay, intent and input conflicts, release, and persist
//! before release.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

#[test]
fn wpkh_and_tr_inputs_are_signed_and_verify() {
    for kind in [WalletKind::Wpkh, WalletKind::Tr] {
        let h = harness(kind, policy_with(""));
        let psbt = h.payment(
            &[h.utxo(0, 60_000), h.utxo(1, 50_000)],
            elsewhere(1),
            70_000,
        );
        let out = signed(h.sign("replica-a", "payout-1", &psbt).unwrap());
        assert_eq!(verify_signatures(h.wallet(), &out), 2, "{kind}");
        assert_eq!(out.unsigned_tx, psbt.unsigned_tx);
        assert_eq!(h.intents(), [("payout-1".to_owned(), IntentStatus::Live)]);
        let ledger = h.signer.ledger(&h.name).unwrap();
        assert_eq!(ledger.reserved.len(), 2);
        assert_eq!(ledger.sent_in_window(NOW, 3600), 70_000);
    }
}

#[test]
fn an_identical_repeat_gets_the_byte_identical_psbt() {
    for kind in [WalletKind::Wpkh, WalletKind::Tr] {
        let h = harness(kind, policy_with(""));
        let psbt = h.payment(&[h.utxo(0, 60_000)], elsewhere(1), 10_000);
        let first = match h.sign("replica-a", "payout-1", &psbt).unwrap() {
            SignOutcome::Signed { psbt, .. } => psbt,
            other => panic!("{other:?}"),
        };
        // Another replica, the same request: the stored signatures
        // (taproot signatures use fresh randomness, so only a replay can
        // make them identical).
        match h.sign("replica-b", "payout-1", &psbt).unwrap() {
            SignOutcome::Replayed { psbt, .. } => assert_eq!(psbt, first, "{kind}"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn the_same_intent_with_another_transaction_is_refused() {
    let h = harness(WalletKind::Wpkh, policy_with(""));
    let a = h.payment(&[h.utxo(0, 60_000)], elsewhere(1), 10_000);
    let b = h.payment(&[h.utxo(1, 80_000)], elsewhere(1), 10_000);
    signed(h.sign("replica-a", "payout-1", &a).unwrap());
    let detail = refused_with(
        h.sign("replica-b", "payout-1", &b).unwrap(),
        &tags::INTENT_CONFLICT,
    );
    assert!(detail.contains("live"), "{detail}");
    // The second transaction's input was not reserved by the refusal.
    assert_eq!(h.signer.ledger(&h.name).unwrap().reserved.len(), 1);
}

#[test]
fn an_input_of_a_live_intent_is_refused_to_another_until_released() {
    for release in [Release::Abandoned, Release::Confirmed] {
        let h = harness(WalletKind::Tr, policy_with(""));
        let shared = h.utxo(0, 60_000);
        let first = h.payment(std::slice::from_ref(&shared), elsewhere(1), 10_000);
        let second = h.payment(&[shared], elsewhere(2), 20_000);
        signed(h.sign("replica-a", "payout-1", &first).unwrap());
        let detail = refused_with(
            h.sign("replica-b", "payout-2", &second).unwrap(),
            &tags::INPUT_CONFLICT,
        );
        assert!(detail.contains("payout-1"), "{detail}");

        h.signer
            .release(&client("operator"), &h.name, &intent("payout-1"), release)
            .unwrap();
        assert!(h.signer.ledger(&h.name).unwrap().reserved.is_empty());
        signed(h.sign("replica-b", "payout-2", &second).unwrap());
    }
}

#[test]
fn a_confirmed_intent_is_never_paid_again_and_replays_its_transaction() {
    let h = harness(WalletKind::Wpkh, policy_with(""));
    let a = h.payment(&[h.utxo(0, 60_000)], elsewhere(1), 10_000);
    signed(h.sign("replica-a", "payout-1", &a).unwrap());
    let op = client("operator");
    h.signer
        .release(&op, &h.name, &intent("payout-1"), Release::Confirmed)
        .unwrap();
    // Idempotent, and a confirmed intent cannot be abandoned.
    h.signer
        .release(&op, &h.name, &intent("payout-1"), Release::Confirmed)
        .unwrap();
    assert!(matches!(
        h.signer
            .release(&op, &h.name, &intent("payout-1"), Release::Abandoned),
        Err(BitcoinError::InvalidRelease { .. })
    ));
    assert!(matches!(
        h.sign("replica-a", "payout-1", &a).unwrap(),
        SignOutcome::Replayed { .. }
    ));
    let b = h.payment(&[h.utxo(1, 60_000)], elsewhere(1), 10_000);
    refused_with(
        h.sign("replica-a", "payout-1", &b).unwrap(),
        &tags::INTENT_CONFLICT,
    );
    assert!(matches!(
        h.signer
            .release(&op, &h.name, &intent("never-signed"), Release::Confirmed),
        Err(BitcoinError::UnknownIntent(_))
    ));
}

#[test]
fn an_abandoned_intent_is_signed_again_only_by_a_double_spend() {
    let h = harness(WalletKind::Wpkh, policy_with(""));
    let old_input = h.utxo(0, 60_000);
    let old = h.payment(std::slice::from_ref(&old_input), elsewhere(1), 10_000);
    signed(h.sign("replica-a", "payout-1", &old).unwrap());
    h.signer
        .release(
            &client("operator"),
            &h.name,
            &intent("payout-1"),
            Release::Abandoned,
        )
        .unwrap();
    // The abandoned transaction's signatures are not released again.
    refused_with(
        h.sign("replica-a", "payout-1", &old).unwrap(),
        &tags::INTENT_RELEASED,
    );
    // A replacement that does not conflict with it could confirm beside it.
    let unrelated = h.payment(&[h.utxo(1, 70_000)], elsewhere(1), 10_000);
    let detail = refused_with(
        h.sign("replica-a", "payout-1", &unrelated).unwrap(),
        &tags::INTENT_CONFLICT,
    );
    assert!(detail.contains("abandoned"), "{detail}");
    // One that spends the abandoned input (and another) is signed.
    let second_input = h.utxo(2, 80_000);
    let pays = |inputs: &[(&Transaction, u32)], change: u64| {
        let mut b = PsbtBuilder::new(h.wallet());
        for (tx, index) in inputs {
            b = b.spend((*tx).clone(), Branch::Receive, *index);
        }
        b.pay(elsewhere(1), 10_000)
            .change(0, change)
            .unwrap()
            .build()
            .unwrap()
    };
    let replacement = pays(&[(&old_input, 0), (&second_input, 2)], 128_000);
    match h.sign("replica-a", "payout-1", &replacement).unwrap() {
        SignOutcome::Signed { intent, .. } => assert_eq!(intent.state.signings, 2),
        other => panic!("{other:?}"),
    }

    // Abandoned twice: a third transaction must double-spend BOTH earlier
    // ones. Spending only the second one's other input would let the
    // first and the third confirm together.
    h.signer
        .release(
            &client("operator"),
            &h.name,
            &intent("payout-1"),
            Release::Abandoned,
        )
        .unwrap();
    let only_second = pays(&[(&second_input, 2)], 69_000);
    refused_with(
        h.sign("replica-a", "payout-1", &only_second).unwrap(),
        &tags::INTENT_CONFLICT,
    );
    // An earlier abandoned transaction is not signed again either, though
    // it double-spends every abandoned one.
    refused_with(
        h.sign("replica-a", "payout-1", &replacement).unwrap(),
        &tags::INTENT_RELEASED,
    );
    let third = pays(&[(&old_input, 0)], 49_500);
    signed(h.sign("replica-a", "payout-1", &third).unwrap());
}

#[test]
fn nothing_is_released_when_the_commit_fails() {
    let h = harness(WalletKind::Tr, policy_with(""));
    let mut failing = WalletSigner::new(Arc::new(FullDisk(h.store.clone())), h.keys.clone());
    failing
        .add_wallet(
            h.name.clone(),
            WalletKind::Tr,
            Network::Testnet,
            policy_with(""),
        )
        .unwrap();
    let psbt = h.payment(&[h.utxo(0, 60_000)], elsewhere(1), 10_000);
    let request = SignRequest {
        wallet: h.name.clone(),
        intent: intent("p-1"),
        psbt: psbt.serialize(),
        payments: Vec::new(),
    };
    assert!(matches!(
        failing.sign_at(&client("a"), &request, NOW),
        Err(BitcoinError::Store(tidemark_core::StoreError::Full(_)))
    ));
    assert!(h.intents().is_empty());
    // The real store then signs it, once.
    signed(h.sign("a", "p-1", &psbt).unwrap());
}
