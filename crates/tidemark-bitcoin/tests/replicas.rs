//! Replicas racing and interleaving: whatever they do, a payout is never
//! paid twice.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

#[test]
fn racing_replicas_pay_an_intent_once() {
    // Eight replicas (each its own pipeline, sharing only the store), all
    // paying payout-1 with different inputs, and all paying different
    // payouts with one shared input.
    let h = harness(WalletKind::Wpkh, policy_with(""));
    let shared = h.utxo(100, 500_000);
    let same_intent: Vec<Psbt> = (0..8u32)
        .map(|i| h.payment(&[h.utxo(i, 60_000)], elsewhere(1), 10_000))
        .collect();
    let same_input: Vec<Psbt> = (0..8u32)
        .map(|i| {
            h.payment(
                std::slice::from_ref(&shared),
                elsewhere(2),
                10_000 + u64::from(i),
            )
        })
        .collect();
    // Two replicas of the pipeline (two servers sharing one store): only
    // the store's compare-and-swap stands between them.
    let store: Arc<dyn StateStore> = h.store.clone();
    let keys: Arc<dyn KeyBackend> = h.keys.clone();
    let replicas: Vec<WalletSigner> = (0..2)
        .map(|_| {
            let mut r = WalletSigner::new(store.clone(), keys.clone());
            r.add_wallet(
                h.name.clone(),
                WalletKind::Wpkh,
                Network::Testnet,
                policy_with(""),
            )
            .unwrap();
            r
        })
        .collect();
    let outcomes: Vec<(usize, SignOutcome)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let replica = &replicas[i % 2];
                let (id, psbt) = if i < 8 {
                    ("payout-1".to_owned(), same_intent[i].clone())
                } else {
                    (format!("payout-{}", i + 10), same_input[i - 8].clone())
                };
                let request = SignRequest {
                    wallet: h.name.clone(),
                    intent: intent(&id),
                    psbt: psbt.serialize(),
                    payments: Vec::new(),
                };
                s.spawn(move || {
                    (
                        i,
                        replica
                            .sign_at(&client(&format!("replica-{i}")), &request, NOW)
                            .unwrap(),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let count = |range: std::ops::Range<usize>, tag: Option<&Tag>| {
        outcomes
            .iter()
            .filter(|(i, o)| {
                range.contains(i)
                    && match (o, tag) {
                        (SignOutcome::Signed { .. }, None) => true,
                        (SignOutcome::Refused(r), Some(t)) => &r.tag == t,
                        _ => false,
                    }
            })
            .count()
    };
    assert_eq!(count(0..8, None), 1, "payout-1 signed exactly once");
    assert_eq!(count(0..8, Some(&tags::INTENT_CONFLICT)), 7);
    assert_eq!(
        count(8..16, None),
        1,
        "the shared input signed exactly once"
    );
    assert_eq!(count(8..16, Some(&tags::INPUT_CONFLICT)), 7);
    let ledger = h.signer.ledger(&h.name).unwrap();
    assert_eq!(ledger.reserved.len(), 2);
}

#[derive(Debug, Clone)]
enum Op {
    /// A replica signs `intent` spending the UTXOs in `inputs` (a bit mask).
    Sign {
        replica: usize,
        intent: u8,
        inputs: u8,
        amount: u8,
    },
    /// The operator releases `intent`.
    Release { intent: u8, abandon: bool },
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        4 => (0..2usize, 0..3u8, 1..32u8, 0..3u8).prop_map(|(replica, intent, inputs, amount)| Op::Sign {
            replica,
            intent,
            inputs,
            amount
        }),
        1 => (0..3u8, any::<bool>()).prop_map(|(intent, abandon)| Op::Release { intent, abandon }),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config { cases: 256, ..Default::default() })]

    /// Any sequence of signing requests from two replicas and releases by
    /// the operator: every two transactions ever signed for one intent
    /// spend a common input, so at most one of them can confirm and no
    /// payout is paid twice. And the ledger reserves exactly the wallet
    /// inputs of the live intents.
    #[test]
    fn no_sequence_of_requests_pays_an_intent_twice(ops in proptest::collection::vec(op(), 1..28)) {
        let h = harness(WalletKind::Wpkh, policy_with(""));
        let utxos: Vec<Transaction> = (0..5).map(|i| h.utxo(i, 200_000)).collect();
        let second = {
            let mut r = WalletSigner::new(h.store.clone(), h.keys.clone());
            r.add_wallet(h.name.clone(), WalletKind::Wpkh, Network::Testnet, policy_with("")).unwrap();
            r
        };
        let mut signed: std::collections::BTreeMap<u8, Vec<(bitcoin::Txid, Vec<bitcoin::OutPoint>)>> =
            Default::default();
        for op in ops {
            match op {
                Op::Sign { replica, intent: i, inputs, amount } => {
                    let chosen: Vec<Transaction> = (0..5)
                        .filter(|b| inputs & (1 << b) != 0)
                        .map(|b| utxos[b].clone())
                        .collect();
                    let psbt = h.payment(&chosen, elsewhere(1), 10_000 + u64::from(amount));
                    let request = SignRequest {
                        wallet: h.name.clone(),
                        intent: intent(&format!("payout-{i}")),
                        psbt: psbt.serialize(),
                        payments: Vec::new(),
                    };
                    let signer = if replica == 0 { &h.signer } else { &second };
                    if let SignOutcome::Signed { .. } = signer.sign_at(&client("r"), &request, NOW).unwrap() {
                        let tx = &psbt.unsigned_tx;
                        let spent = tx.input.iter().map(|i| i.previous_output).collect();
                        signed.entry(i).or_default().push((tx.compute_txid(), spent));
                    }
                }
                Op::Release { intent: i, abandon } => {
                    let how = if abandon { Release::Abandoned } else { Release::Confirmed };
                    // Unknown intents and confirmed -> abandoned are errors.
                    let _ = h.signer.release(&client("op"), &h.name, &intent(&format!("payout-{i}")), how);
                }
            }
        }
        for (i, txs) in &signed {
            for (a, (txid_a, ins_a)) in txs.iter().enumerate() {
                for (txid_b, ins_b) in &txs[a + 1..] {
                    proptest::prop_assert!(txid_a != txid_b, "payout-{i} signed {txid_a} twice as new");
                    proptest::prop_assert!(
                        ins_a.iter().any(|o| ins_b.contains(o)),
                        "payout-{i}: {txid_a} and {txid_b} could both confirm"
                    );
                }
            }
        }
        let live: std::collections::BTreeMap<String, IntentId> = h
            .signer
            .intents(&h.name)
            .unwrap()
            .into_iter()
            .filter(|r| r.state.status == IntentStatus::Live)
            .flat_map(|r| {
                let id = r.state.intent.clone();
                r.state.wallet_inputs.into_iter().map(move |o| (o, id.clone()))
            })
            .collect();
        proptest::prop_assert_eq!(h.signer.ledger(&h.name).unwrap().reserved, live);
    }
}
