//! The spend policy and input validation: every tag triggered beside the
//! legitimate path, and the attacks of the issue (fee inflation, disguised
//! change, a mainnet address for a testnet wallet, velocity).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

#[test]
fn change_disguised_with_a_wallet_key_origin_is_refused() {
    let h = harness(WalletKind::Wpkh, policy_with(""));
    let mut psbt = h.payment(&[h.utxo(0, 60_000)], elsewhere(1), 10_000);
    // The change output now pays a foreign script but keeps its origin.
    psbt.unsigned_tx.output[1].script_pubkey = elsewhere(9);
    refused_with(
        h.sign("replica-a", "payout-1", &psbt).unwrap(),
        &tags::CHANGE_NOT_WALLET,
    );
    assert!(h.intents().is_empty());
}

#[test]
fn declared_payments_must_match_and_be_of_the_wallet_network() {
    let h = harness(WalletKind::Wpkh, policy_with(""));
    let to = bitcoin::Address::from_script(&elsewhere(1), Network::Testnet).unwrap();
    let mainnet = bitcoin::Address::from_script(&elsewhere(1), Network::Bitcoin).unwrap();
    let psbt = h.payment(&[h.utxo(0, 60_000)], elsewhere(1), 10_000);
    let pay = |a: &bitcoin::Address, sat| vec![Payment::new(&a.to_string(), sat).unwrap()];

    refused_with(
        h.sign_with("a", "payout-1", &psbt, pay(&mainnet, 10_000), NOW)
            .unwrap(),
        &tags::NETWORK_MISMATCH,
    );
    refused_with(
        h.sign_with("a", "payout-1", &psbt, pay(&to, 9_999), NOW)
            .unwrap(),
        &tags::INTENT_MISMATCH,
    );
    let extra = [pay(&to, 10_000), pay(&to, 1)].concat();
    refused_with(
        h.sign_with("a", "payout-1", &psbt, extra, NOW).unwrap(),
        &tags::INTENT_MISMATCH,
    );
    signed(
        h.sign_with("a", "payout-1", &psbt, pay(&to, 10_000), NOW)
            .unwrap(),
    );
    assert!(matches!(
        Payment::new("not-an-address", 1),
        Err(BitcoinError::InvalidAddress { .. })
    ));
}

#[test]
fn a_mainnet_address_is_refused_in_a_testnet_allowlist() {
    let mainnet = bitcoin::Address::from_script(&elsewhere(1), Network::Bitcoin).unwrap();
    let text = DEFAULT_POLICY.replace("addresses = []", &format!("addresses = [\"{mainnet}\"]"));
    let err = SpendPolicy::from_toml(&text, Network::Testnet).unwrap_err();
    assert!(
        err.to_string().contains("destinations.addresses[0]"),
        "{err}"
    );
}

#[test]
fn destinations_outside_the_allowlist_are_refused() {
    let allowed = bitcoin::Address::from_script(&elsewhere(1), Network::Testnet).unwrap();
    // A descriptor allowlist: a cold wallet's receive branch.
    let secp = Secp256k1::new();
    let cold_key = bitcoin::bip32::Xpub::from_priv(
        &secp,
        &bitcoin::bip32::Xpriv::new_master(Network::Testnet, &[9u8; 32]).unwrap(),
    );
    let cold = format!("wpkh({cold_key}/0/*)");
    let miniscript_script = {
        use std::str::FromStr as _;
        miniscript::Descriptor::<miniscript::DescriptorPublicKey>::from_str(&cold)
            .unwrap()
            .at_derivation_index(17)
            .unwrap()
            .script_pubkey()
    };
    let policy = policy_with(&format!(
        "[destinations]\naddresses = [\"{allowed}\"]\ndescriptors = [\"{cold}\"]\ndescriptor_range = 100\n"
    ));
    let h = harness(WalletKind::Tr, policy);
    let bad = h.payment(&[h.utxo(0, 60_000)], elsewhere(2), 10_000);
    refused_with(
        h.sign("a", "payout-1", &bad).unwrap(),
        &tags::DESTINATION_NOT_ALLOWED,
    );
    let good = h.payment(&[h.utxo(1, 60_000)], elsewhere(1), 10_000);
    signed(h.sign("a", "payout-2", &good).unwrap());
    let cold_payment = h.payment(&[h.utxo(2, 60_000)], miniscript_script, 10_000);
    signed(h.sign("a", "payout-3", &cold_payment).unwrap());
}

#[test]
fn fees_above_the_caps_are_refused() {
    let policy = policy_with("[fees]\nmax_fee_sat = 5000\nmax_fee_rate_sat_per_vb = 20\n");
    let h = harness(WalletKind::Wpkh, policy);
    let utxo = h.utxo(0, 100_000);
    let with_fee = |fee: u64| {
        PsbtBuilder::new(h.wallet())
            .spend(utxo.clone(), Branch::Receive, 0)
            .pay(elsewhere(1), 10_000)
            .change(0, 90_000 - fee)
            .unwrap()
            .build()
            .unwrap()
    };
    // One P2WPKH input, two outputs: about 141 vB, so 20 sat/vB is ~2820.
    refused_with(
        h.sign("a", "p-1", &with_fee(6_000)).unwrap(),
        &tags::FEE_ABOVE_MAX,
    );
    refused_with(
        h.sign("a", "p-2", &with_fee(4_000)).unwrap(),
        &tags::FEE_RATE_ABOVE_MAX,
    );
    signed(h.sign("a", "p-3", &with_fee(2_000)).unwrap());
}

#[test]
fn velocity_over_the_window_is_refused_until_it_slides() {
    let policy = policy_with("[velocity]\nlimit_sat = 100000\nwindow_secs = 3600\n");
    let h = harness(WalletKind::Tr, policy);
    let pay = |i: u32, sat: u64| h.payment(&[h.utxo(i, 200_000)], elsewhere(1), sat);
    signed(
        h.sign_with("a", "p-1", &pay(0, 60_000), vec![], NOW)
            .unwrap(),
    );
    // Change does not count: 60k sent so far, 50k more would be 110k.
    refused_with(
        h.sign_with("a", "p-2", &pay(1, 50_000), vec![], NOW + 60)
            .unwrap(),
        &tags::VELOCITY_EXCEEDED,
    );
    signed(
        h.sign_with("a", "p-3", &pay(2, 40_000), vec![], NOW + 60)
            .unwrap(),
    );
    // An hour and two minutes later the first two payments left the window.
    signed(
        h.sign_with("a", "p-2", &pay(1, 50_000), vec![], NOW + 3720)
            .unwrap(),
    );
}

#[test]
fn fee_inflation_by_wrong_or_missing_amounts_is_an_error_and_changes_nothing() {
    let h = harness(WalletKind::Wpkh, policy_with(""));
    let psbt = h.payment(&[h.utxo(0, 60_000)], elsewhere(1), 10_000);

    // witness_utxo claims less than the previous transaction pays.
    let mut lie = psbt.clone();
    lie.inputs[0].witness_utxo.as_mut().unwrap().value = Amount::from_sat(59_000);
    assert!(matches!(
        h.sign("a", "p-1", &lie),
        Err(BitcoinError::UtxoMismatch { index: 0, .. })
    ));

    // A previous transaction that is not the one spent.
    let mut wrong_tx = psbt.clone();
    wrong_tx.inputs[0].non_witness_utxo = Some(h.utxo(0, 60_000));
    assert!(matches!(
        h.sign("a", "p-1", &wrong_tx),
        Err(BitcoinError::UtxoMismatch { .. })
    ));

    // No previous transaction where the policy requires it.
    let mut only_witness = psbt.clone();
    only_witness.inputs[0].non_witness_utxo = None;
    assert!(matches!(
        h.sign("a", "p-1", &only_witness),
        Err(BitcoinError::MissingUtxo { .. })
    ));

    // No UTXO at all.
    let mut none = only_witness.clone();
    none.inputs[0].witness_utxo = None;
    assert!(matches!(
        h.sign("a", "p-1", &none),
        Err(BitcoinError::MissingUtxo { .. })
    ));

    assert!(h.intents().is_empty());
    assert!(h.signer.ledger(&h.name).unwrap().reserved.is_empty());

    // With the requirement off, witness_utxo alone is enough.
    let relaxed = harness(
        WalletKind::Wpkh,
        policy_with("[inputs]\nrequire_previous_tx_for_segwit_v0 = false\n"),
    );
    let mut psbt = relaxed.payment(&[relaxed.utxo(0, 60_000)], elsewhere(1), 10_000);
    psbt.inputs[0].non_witness_utxo = None;
    signed(relaxed.sign("a", "p-1", &psbt).unwrap());
}

#[test]
fn sighash_types_other_than_all_are_errors() {
    use bitcoin::psbt::PsbtSighashType;
    for (kind, bad) in [
        (
            WalletKind::Wpkh,
            PsbtSighashType::from(EcdsaSighashType::None),
        ),
        (
            WalletKind::Wpkh,
            PsbtSighashType::from(EcdsaSighashType::AllPlusAnyoneCanPay),
        ),
        (
            WalletKind::Tr,
            PsbtSighashType::from(TapSighashType::Single),
        ),
        (WalletKind::Tr, PsbtSighashType::from_u32(0x55)),
    ] {
        let h = harness(kind, policy_with(""));
        let mut psbt = h.payment(&[h.utxo(0, 60_000)], elsewhere(1), 10_000);
        psbt.inputs[0].sighash_type = Some(bad);
        assert!(
            matches!(
                h.sign("a", "p-1", &psbt),
                Err(BitcoinError::UnsupportedSighash { index: 0, .. })
            ),
            "{kind} {bad}"
        );
        assert!(h.intents().is_empty());
    }
}

#[test]
fn foreign_inputs_are_left_alone() {
    let h = harness(WalletKind::Wpkh, policy_with(""));
    let other = harness(WalletKind::Tr, policy_with(""));
    let ours = h.utxo(0, 60_000);
    let theirs = other.utxo(0, 40_000);
    let mut psbt = h.payment(&[ours], elsewhere(1), 10_000);
    // A second input, the other wallet's (its own origin, its script).
    let foreign = other.payment(&[theirs], elsewhere(1), 1_000);
    psbt.unsigned_tx
        .input
        .push(foreign.unsigned_tx.input[0].clone());
    psbt.inputs.push(foreign.inputs[0].clone());
    let out = signed(h.sign("a", "p-1", &psbt).unwrap());
    assert_eq!(out.inputs[0].partial_sigs.len(), 1);
    assert!(out.inputs[1].partial_sigs.is_empty());
    assert!(out.inputs[1].tap_key_sig.is_none());
    assert_eq!(h.signer.ledger(&h.name).unwrap().reserved.len(), 1);

    // A PSBT with no input of the wallet is an error.
    let only_theirs = other.payment(&[other.utxo(1, 40_000)], elsewhere(1), 1_000);
    assert!(matches!(
        h.sign("a", "p-2", &only_theirs),
        Err(BitcoinError::NoWalletInputs(_))
    ));
}

#[test]
fn malformed_input_is_a_typed_error_and_never_panics() {
    let h = harness(WalletKind::Tr, policy_with(""));
    let good = h
        .payment(&[h.utxo(0, 60_000)], elsewhere(1), 10_000)
        .serialize();
    let request = |bytes: Vec<u8>| SignRequest {
        wallet: h.name.clone(),
        intent: intent("p-1"),
        psbt: bytes,
        payments: Vec::new(),
    };
    assert!(matches!(
        h.signer
            .sign_at(&client("a"), &request(b"garbage".to_vec()), NOW),
        Err(BitcoinError::MalformedPsbt(_))
    ));
    // Every truncation and a spread of single-byte flips: an error or (a
    // flip in a field that still decodes) any outcome, never a panic.
    for cut in 0..good.len() {
        let _ = h
            .signer
            .sign_at(&client("a"), &request(good[..cut].to_vec()), NOW);
    }
    for i in (0..good.len()).step_by(3) {
        let mut bytes = good.clone();
        bytes[i] ^= 0x41;
        let _ = h.signer.sign_at(&client("a"), &request(bytes), NOW);
    }
    let mut spending_more = h.payment(&[h.utxo(1, 60_000)], elsewhere(1), 10_000);
    spending_more.unsigned_tx.output[0].value = Amount::from_sat(70_000);
    assert!(matches!(
        h.sign("a", "p-9", &spending_more),
        Err(BitcoinError::OutputsExceedInputs { .. })
    ));
    assert!(matches!(
        IntentId::new("a/b"),
        Err(BitcoinError::InvalidIntent(_))
    ));
    assert!(matches!(
        IntentId::new(""),
        Err(BitcoinError::InvalidIntent(_))
    ));
    assert!(matches!(
        IntentId::new("x".repeat(65)),
        Err(BitcoinError::InvalidIntent(_))
    ));
}

#[test]
fn the_default_policy_file_loads_and_bad_files_name_their_field() {
    for network in [
        Network::Bitcoin,
        Network::Testnet,
        Network::Signet,
        Network::Regtest,
    ] {
        SpendPolicy::from_toml(DEFAULT_POLICY, network).unwrap();
    }
    let unknown = format!("{DEFAULT_POLICY}\n[extra]\nx = 1\n");
    let err = SpendPolicy::from_toml(&unknown, Network::Testnet).unwrap_err();
    assert!(err.to_string().contains("extra"), "{err}");
    let bad_descriptor =
        DEFAULT_POLICY.replace("descriptors = []", "descriptors = [\"wpkh(nope)\"]");
    let err = SpendPolicy::from_toml(&bad_descriptor, Network::Testnet).unwrap_err();
    assert!(
        err.to_string().contains("destinations.descriptors[0]"),
        "{err}"
    );
    let zero_window = DEFAULT_POLICY.replace("window_secs = 86_400", "window_secs = 0");
    assert!(SpendPolicy::from_toml(&zero_window, Network::Testnet).is_err());
}
