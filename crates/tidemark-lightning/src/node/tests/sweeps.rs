//! Sweeps: the destination rule, the checks that keep LDK from panicking,
//! and parity with `KeysManager::spend_spendable_outputs`.

use std::panic::{AssertUnwindSafe, catch_unwind};

use bitcoin::secp256k1::ecdsa;
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{Amount, Script, ScriptBuf, Transaction, TxOut, WPubkeyHash};
use lightning::chain::transaction::OutPoint as LdkOutPoint;
use lightning::sign::{OutputSpender, SpendableOutputDescriptor};

use super::*;

fn static_output(script: &Script, sats: u64, vout: u16) -> SpendableOutputDescriptor {
    SpendableOutputDescriptor::StaticOutput {
        outpoint: LdkOutPoint {
            txid: txid(1),
            index: vout,
        },
        output: TxOut {
            value: Amount::from_sat(sats),
            script_pubkey: script.to_owned(),
        },
        channel_keys_id: None,
    }
}

fn foreign_script(byte: u8) -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([byte; 20]))
}

fn request<'a>(
    descriptors: &'a [&'a SpendableOutputDescriptor],
    outputs: Vec<TxOut>,
    change: ScriptBuf,
) -> SweepRequest<'a> {
    SweepRequest {
        descriptors,
        outputs,
        change_destination_script: change,
        feerate_sat_per_1000_weight: 253,
        locktime: None,
    }
}

fn nothing_allowed(_: &Script) -> bool {
    false
}

/// Checks input `i`'s P2WPKH witness against the script it spends.
fn assert_p2wpkh_spend(tx: &Transaction, i: usize, spent: &TxOut) {
    let secp = Secp256k1::verification_only();
    let witness = &tx.input[i].witness;
    let (sig, key) = (witness.nth(0).unwrap(), witness.nth(1).unwrap());
    let key = PublicKey::from_slice(key).unwrap();
    assert_eq!(
        ScriptBuf::new_p2wpkh(&bitcoin::CompressedPublicKey(key).wpubkey_hash()),
        spent.script_pubkey
    );
    assert_eq!(*sig.last().unwrap(), EcdsaSighashType::All as u8);
    let sighash = SighashCache::new(tx)
        .p2wpkh_signature_hash(i, &spent.script_pubkey, spent.value, EcdsaSighashType::All)
        .unwrap();
    let sig = ecdsa::Signature::from_der(&sig[..sig.len() - 1]).unwrap();
    secp.verify_ecdsa(&Message::from(sighash), &sig, &key)
        .unwrap();
}

#[test]
fn sweeping_own_outputs_to_the_own_script_signs_like_keys_manager() {
    for seed in &SEEDS {
        let (ours, ldk) = pair(seed);
        let to_destination = static_output(ours.destination_script(), 100_000, 0);
        let to_shutdown = static_output(&ours.shutdown_script().into_inner(), 50_000, 1);
        let descriptors = [&to_destination, &to_shutdown];
        let change = ours.destination_script().to_owned();
        let tx = ours
            .spend_spendable_outputs(
                request(&descriptors, Vec::new(), change.clone()),
                &nothing_allowed,
            )
            .unwrap();
        assert_eq!(tx.input.len(), 2);
        assert_eq!(tx.output.len(), 1);
        assert_eq!(tx.output[0].script_pubkey, change);
        assert!(tx.output[0].value < Amount::from_sat(150_000));
        for (i, d) in descriptors.iter().enumerate() {
            let SpendableOutputDescriptor::StaticOutput { output, .. } = d else {
                unreachable!()
            };
            assert_p2wpkh_spend(&tx, i, output);
        }
        let theirs = ldk
            .spend_spendable_outputs(
                &descriptors,
                Vec::new(),
                change,
                253,
                None,
                &Secp256k1::new(),
            )
            .unwrap();
        // The txid commits to everything but the witnesses (whose nonces
        // come from each side's entropy stream).
        assert_eq!(tx.compute_txid(), theirs.compute_txid());
    }
}

#[test]
fn a_change_script_outside_the_policy_is_refused_with_the_destination_tag() {
    let (ours, _) = pair(&SEEDS[0]);
    let d = static_output(ours.destination_script(), 100_000, 0);
    let err = ours
        .spend_spendable_outputs(
            request(&[&d], Vec::new(), foreign_script(9)),
            &nothing_allowed,
        )
        .unwrap_err();
    assert_eq!(
        err,
        SweepError::DestinationNotAllowed {
            output: None,
            script: foreign_script(9)
        }
    );
    assert_eq!(err.tag(), Some("policy-destination-not-allowed"));
}

#[test]
fn an_output_outside_the_policy_is_refused() {
    let (ours, _) = pair(&SEEDS[0]);
    let d = static_output(ours.destination_script(), 100_000, 0);
    let outputs = vec![TxOut {
        value: Amount::from_sat(10_000),
        script_pubkey: foreign_script(9),
    }];
    let only_eight = |s: &Script| s == foreign_script(8).as_script();
    let err = ours
        .spend_spendable_outputs(
            request(&[&d], outputs, ours.destination_script().to_owned()),
            &only_eight,
        )
        .unwrap_err();
    assert!(matches!(
        err,
        SweepError::DestinationNotAllowed {
            output: Some(0),
            ..
        }
    ));
    assert_eq!(err.tag(), Some(SWEEP_DESTINATION_TAG));
}

#[test]
fn scripts_the_policy_allows_are_paid() {
    let (ours, _) = pair(&SEEDS[1]);
    let d = static_output(ours.destination_script(), 100_000, 0);
    let wallet = foreign_script(7);
    let outputs = vec![TxOut {
        value: Amount::from_sat(40_000),
        script_pubkey: foreign_script(8),
    }];
    let allowed = |s: &Script| s == wallet.as_script() || s == foreign_script(8).as_script();
    let tx = ours
        .spend_spendable_outputs(request(&[&d], outputs, wallet.clone()), &allowed)
        .unwrap();
    assert_eq!(tx.output.len(), 2);
    assert!(tx.output.iter().any(|o| o.script_pubkey == wallet));
}

#[test]
fn malformed_sweeps_are_refused_before_ldk_sees_them() {
    let (ours, _) = pair(&SEEDS[2]);
    let own = ours.destination_script().to_owned();
    assert_eq!(
        ours.spend_spendable_outputs(request(&[], Vec::new(), own.clone()), &nothing_allowed),
        Err(SweepError::NoDescriptors)
    );

    let d = static_output(&own, 100_000, 0);
    let twice = static_output(&own, 100_000, 0);
    assert!(matches!(
        ours.spend_spendable_outputs(
            request(&[&d, &twice], Vec::new(), own.clone()),
            &nothing_allowed
        ),
        Err(SweepError::DuplicateOutpoint { .. })
    ));

    let huge = static_output(&own, u64::MAX, 1);
    assert!(matches!(
        ours.spend_spendable_outputs(
            request(&[&d, &huge], Vec::new(), own.clone()),
            &nothing_allowed
        ),
        Err(SweepError::ValueOutOfRange {
            what: "descriptor",
            index: 1,
            ..
        })
    ));

    let outputs = vec![
        TxOut {
            value: Amount::from_sat(1),
            script_pubkey: own.clone(),
        },
        TxOut {
            value: Amount::MAX,
            script_pubkey: own.clone(),
        },
    ];
    assert!(matches!(
        ours.spend_spendable_outputs(request(&[&d], outputs, own.clone()), &nothing_allowed),
        Err(SweepError::ValueOutOfRange {
            what: "output",
            index: 1,
            ..
        })
    ));

    let many = vec![
        TxOut {
            value: Amount::from_sat(1),
            script_pubkey: own.clone(),
        };
        4000
    ];
    assert!(matches!(
        ours.spend_spendable_outputs(request(&[&d], many, own), &nothing_allowed),
        Err(SweepError::TooHeavy { .. })
    ));
}

#[test]
fn keys_manager_panics_on_the_values_that_are_refused_here() {
    // Why the value checks exist: LDK sums output values with Amount's
    // panicking `+`.
    let (ours, ldk) = pair(&SEEDS[2]);
    let own = ours.destination_script().to_owned();
    let d = static_output(&own, 100_000, 0);
    let outputs = vec![
        TxOut {
            value: Amount::from_sat(1),
            script_pubkey: own.clone(),
        },
        TxOut {
            value: Amount::MAX,
            script_pubkey: own.clone(),
        },
    ];
    let result = catch_unwind(AssertUnwindSafe(|| {
        ldk.spend_spendable_outputs(&[&d], outputs, own, 253, None, &Secp256k1::new())
    }));
    assert!(
        result.is_err(),
        "KeysManager no longer panics: revisit the check"
    );
}

#[test]
fn outputs_that_are_not_the_nodes_or_do_not_cover_the_fee_are_not_spendable() {
    let (ours, _) = pair(&SEEDS[0]);
    let own = ours.destination_script().to_owned();
    let not_ours = static_output(&foreign_script(3), 100_000, 0);
    assert_eq!(
        ours.spend_spendable_outputs(
            request(&[&not_ours], Vec::new(), own.clone()),
            &nothing_allowed
        ),
        Err(SweepError::NotSpendable)
    );
    let dust = static_output(&own, 10, 0);
    assert_eq!(
        ours.spend_spendable_outputs(request(&[&dust], Vec::new(), own), &nothing_allowed),
        Err(SweepError::NotSpendable)
    );
}
