//! Malformed and hostile input never panics (LDK's builders `expect` and
//! `assert!` on values the signer checks first), and racing replicas never
//! get two signatures for one counterparty commitment number.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod channel_support;

use std::collections::BTreeMap;

use bitcoin::hashes::Hash as _;
use bitcoin::{Amount, OutPoint, ScriptBuf, TxOut, Txid};
use channel_support::*;
use proptest::prelude::*;
use tidemark_lightning::channel::{
    AnchorSpend, ChannelKind, ChannelRequest, CommitmentData, CommitmentNumber, HolderCommitment,
    HolderHtlcSpend, Htlc, JusticeSpend, Output, SpendInput, SpendTx,
};

fn any_htlc() -> impl Strategy<Value = Htlc> {
    (any::<bool>(), any::<u64>(), any::<u32>(), any::<u8>()).prop_map(|(offered, msat, cltv, h)| {
        Htlc {
            offered,
            amount_msat: msat,
            cltv_expiry: cltv,
            payment_hash: [h; 32],
        }
    })
}

fn any_commitment() -> impl Strategy<Value = (u64, u64, u64, u32, Vec<Htlc>)> {
    (
        0u64..4,
        prop_oneof![any::<u64>(), 0u64..1_000_000],
        prop_oneof![any::<u64>(), 0u64..1_000_000],
        any::<u32>(),
        proptest::collection::vec(any_htlc(), 0..6),
    )
}

fn any_spend() -> impl Strategy<Value = (SpendTx, u32)> {
    (
        proptest::collection::vec((any::<u8>(), any::<u32>(), any::<u32>()), 0..3),
        proptest::collection::vec(any::<u64>(), 0..3),
        any::<i32>(),
        any::<u32>(),
        0u32..4,
    )
        .prop_map(|(inputs, outputs, version, lock_time, input)| {
            let tx = SpendTx {
                version,
                lock_time,
                inputs: inputs
                    .into_iter()
                    .map(|(t, vout, sequence)| SpendInput {
                        previous_output: OutPoint {
                            txid: Txid::from_byte_array([t; 32]),
                            vout,
                        },
                        sequence,
                    })
                    .collect(),
                outputs: outputs
                    .into_iter()
                    .map(|v| TxOut {
                        value: Amount::from_sat(v),
                        script_pubkey: ScriptBuf::new(),
                    })
                    .collect(),
            };
            (tx, input)
        })
}

fn downgraded(kind: ChannelKind) -> Channel {
    let mut c = Channel::open(kind);
    for tag in tidemark_lightning::tags::BUSINESS {
        c.policy.downgrade(tag.as_str()).unwrap();
    }
    c
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn hostile_commitments_never_panic(
        (number, to_b, to_c, feerate, htlcs) in any_commitment(),
        anchors in any::<bool>(),
    ) {
        let kind = if anchors { ChannelKind::AnchorsZeroFeeHtlcTx } else { ChannelKind::StaticRemoteKey };
        let mut c = downgraded(kind);
        let data = CommitmentData {
            number: CommitmentNumber::new(number).unwrap(),
            per_commitment_point: c.counterparty_point(number),
            to_broadcaster_sat: to_b,
            to_countersignatory_sat: to_c,
            feerate_per_kw: feerate,
            htlcs,
        };
        let _ = c.ask(ChannelRequest::SignCounterpartyCommitment(Box::new(data.clone())));
        let sig = c.holder_commitment(0).counterparty_signature;
        let holder = HolderCommitment {
            commitment: CommitmentData { per_commitment_point: c.holder_point(number), ..data },
            counterparty_signature: sig,
            counterparty_htlc_signatures: vec![sig; 2],
        };
        let _ = c.ask(ChannelRequest::ValidateHolderCommitment(Box::new(holder)));
    }

    #[test]
    fn hostile_spends_never_panic((tx, input) in any_spend(), index in any::<u32>(), secret in any::<[u8; 32]>()) {
        let mut c = downgraded(ChannelKind::AnchorsZeroFeeHtlcTx);
        c.wallet.push(ScriptBuf::new());
        c.advance(1);
        let _ = c.ask(ChannelRequest::SignHolderAnchor(Box::new(AnchorSpend { tx: tx.clone(), input })));
        let _ = c.ask(ChannelRequest::SignHolderHtlc(Box::new(HolderHtlcSpend {
            commitment: n(1), htlc_output_index: index, tx: tx.clone(), input,
        })));
        for (commitment, s) in [(None, secret), (Some(n(0)), c.counterparty_secret(0))] {
            let _ = c.ask(ChannelRequest::SignJustice(Box::new(JusticeSpend {
                commitment, per_commitment_secret: s, htlc: None, tx: tx.clone(), input, amount_sat: 1,
            })));
        }
        let _ = c.ask(ChannelRequest::ValidateCounterpartyRevocation {
            number: n(u64::from(index) % 4), secret,
        });
    }

    /// Two replicas with different views of the balances race through any
    /// interleaving of sign and revoke requests: each commitment number
    /// gets at most one signature, and the signer never holds more than
    /// two unrevoked counterparty commitments.
    #[test]
    fn racing_replicas_never_get_two_signatures_for_one_number(
        steps in proptest::collection::vec((any::<bool>(), 0u64..6, any::<bool>()), 1..40),
    ) {
        let mut c = Channel::open(ChannelKind::StaticRemoteKey);
        let mut released: BTreeMap<u64, Output> = BTreeMap::new();
        for (replica_b, number, revoke) in steps {
            if revoke {
                let _ = c.revoke_counterparty(number);
                continue;
            }
            let shift = if replica_b { 1_000 } else { 0 };
            c.holder_sat -= shift;
            c.counterparty_sat += shift;
            let data = c.counterparty_commitment(number);
            c.holder_sat += shift;
            c.counterparty_sat -= shift;
            let out = c.ask(ChannelRequest::SignCounterpartyCommitment(Box::new(data))).unwrap();
            let output = match out {
                Outcome::Signed { output, .. } => output,
                Outcome::Replayed(output) => output,
                Outcome::Refused { .. } => continue,
            };
            if let Some(before) = released.get(&number) {
                prop_assert_eq!(before, &output, "two signatures for commitment {}", number);
            }
            released.insert(number, output);
            let s = c.state();
            let newest = s.counterparty.newest().unwrap().number.get();
            prop_assert!(newest < s.counterparty.revoked + 2, "three unrevoked commitments");
        }
    }
}
