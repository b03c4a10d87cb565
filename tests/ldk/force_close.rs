//! A force close with two HTLCs in flight: node A broadcasts its holder
//! commitment, claims the HTLC it has the preimage of with an HTLC-success
//! transaction, times the other out with an HTLC-timeout transaction and
//! sweeps the three delayed outputs to its wallet, every signature from
//! the signer process. Each
//! transaction is run through Bitcoin Core's script interpreter against
//! the outputs it spends.

use std::collections::HashSet;

use lightning::events::Event;
use lightning::sign::{OutputSpender as _, SignerProvider as _, SpendableOutputDescriptor};
use tidemark_lightning::bitcoin::secp256k1::Secp256k1;
use tidemark_lightning::bitcoin::{Amount, Transaction, Txid};

use crate::{World, claim, count, only_channel_keys_id, open_channel, pair, send_payments};

/// Runs every input of `tx` spending an output of `previous` through
/// libbitcoinconsensus (segwit v0 rules, every pre-taproot flag) and
/// panics on the first that fails. Inputs spending other transactions
/// are skipped: there must be at least one checked.
pub(crate) fn verify_spends(tx: &Transaction, previous: &[&Transaction]) {
    let bytes = tidemark_lightning::bitcoin::consensus::serialize(tx);
    let mut checked = 0;
    for (index, input) in tx.input.iter().enumerate() {
        let Some(prev) = previous
            .iter()
            .find(|p| p.compute_txid() == input.previous_output.txid)
        else {
            continue;
        };
        let spent = &prev.output[input.previous_output.vout as usize];
        bitcoinconsensus::verify_with_flags(
            spent.script_pubkey.as_bytes(),
            spent.value.to_sat(),
            &bytes,
            None,
            index,
            bitcoinconsensus::VERIFY_ALL_PRE_TAPROOT,
        )
        .unwrap_or_else(|e| {
            panic!(
                "input {index} of {} does not verify: {e:?}",
                tx.compute_txid()
            )
        });
        checked += 1;
    }
    assert!(
        checked > 0,
        "{} spends none of the given",
        tx.compute_txid()
    );
}

fn spends(tx: &Transaction, txid: Txid) -> bool {
    tx.input.iter().any(|i| i.previous_output.txid == txid)
}

#[test]
fn a_force_close_claims_and_times_out_htlcs_and_sweeps_to_the_wallet() {
    let world = World::start();
    let mut p = pair(&world, "replica-1");
    let (channel, funding) = open_channel(&mut p);
    let keys_id = only_channel_keys_id(&p.a);
    send_payments(&p.a, &p.b, &[100_000_000]);
    p.pump(|_, _| {}, claim);

    // An HTLC B never claims: in A's commitment when A closes.
    send_payments(&p.a, &p.b, &[40_000_000]);
    let (_, events_b) = p.pump(|_, _| {}, |_, _| {});
    let claimable = |e: &Event| matches!(e, Event::PaymentClaimable { .. });
    assert_eq!(count(&events_b, claimable), 1, "B holds the HTLC");
    // And one B pays A: A claims it just before closing, so only the
    // chain can settle it.
    send_payments(&p.b, &p.a, &[30_000_000]);
    let (events_a, _) = p.pump(|_, _| {}, |_, _| {});
    let preimage = events_a
        .iter()
        .find_map(|e| match e {
            Event::PaymentClaimable { purpose, .. } => purpose.preimage(),
            _ => None,
        })
        .expect("A holds B's HTLC");
    p.a.manager.claim_funds(preimage);

    let signed_before = world.mark(&keys_id, "counterparty_signed").unwrap();
    p.a.manager
        .force_close_broadcasting_latest_txn(&channel, &p.b.id(), "test force close".into())
        .unwrap();
    p.pump(|_, _| {}, |_, _| {});
    let commitment =
        p.a.broadcaster
            .all()
            .into_iter()
            .find(|t| spends(t, funding.compute_txid()))
            .expect("A broadcast its holder commitment");
    verify_spends(&commitment, &[&funding]);
    assert_eq!(
        commitment.output.len(),
        4,
        "to_local, to_remote and the two HTLCs"
    );

    // Mine A's commitment, then block by block whatever A broadcasts that
    // spends a mined transaction and is final, until the three delayed
    // outputs (the commitment's to_local, the HTLC-success's and the
    // HTLC-timeout's) are ours to sweep.
    let mut mined: Vec<Transaction> = vec![funding.clone(), commitment.clone()];
    p.mine(std::slice::from_ref(&commitment), 0);
    let mut descriptors: Vec<SpendableOutputDescriptor> = Vec::new();
    let mut failed = 0;
    for _ in 0..400 {
        let txids: HashSet<Txid> = mined.iter().map(Transaction::compute_txid).collect();
        let next_height = p.chain.height() + 1;
        let mut new: Vec<Transaction> = Vec::new();
        for tx in p.a.broadcaster.all() {
            let txid = tx.compute_txid();
            let ready = tx
                .input
                .iter()
                .all(|i| txids.contains(&i.previous_output.txid))
                && tx.lock_time.to_consensus_u32() <= next_height;
            if ready && !txids.contains(&txid) && !new.iter().any(|n| n.compute_txid() == txid) {
                let previous: Vec<&Transaction> = mined.iter().collect();
                verify_spends(&tx, &previous);
                new.push(tx);
            }
        }
        mined.extend(new.iter().cloned());
        p.mine(&new, 0);
        let (events_a, _) = p.pump(|_, _| {}, |_, _| {});
        for e in events_a {
            match e {
                Event::SpendableOutputs { outputs, .. } => descriptors.extend(outputs),
                Event::PaymentFailed { .. } => failed += 1,
                _ => {}
            }
        }
        if descriptors.len() >= 3 {
            break;
        }
    }
    let second_stage: Vec<&Transaction> = mined
        .iter()
        .filter(|t| spends(t, commitment.compute_txid()))
        .collect();
    assert_eq!(second_stage.len(), 2, "an HTLC-success and an HTLC-timeout");
    let preimage_of = |t: &Transaction| t.input[0].witness.nth(3).map(<[u8]>::len);
    let htlc_success = (*second_stage
        .iter()
        .find(|t| preimage_of(t) == Some(32))
        .expect("A claimed B's HTLC with its preimage"))
    .clone();
    let htlc_timeout = (*second_stage
        .iter()
        .find(|t| preimage_of(t) == Some(0))
        .expect("A timed its HTLC out"))
    .clone();
    for tx in [&htlc_success, &htlc_timeout] {
        assert_eq!(tx.input.len(), 1);
        assert_eq!(
            tx.input[0].witness.len(),
            5,
            "empty, both signatures, preimage (or empty), HTLC script"
        );
    }
    assert_eq!(failed, 1, "A's payment failed once the HTLC timed out");
    let delayed: Vec<_> = descriptors
        .iter()
        .filter_map(|d| match d {
            SpendableOutputDescriptor::DelayedPaymentOutput(d) => Some(d.outpoint.txid),
            _ => None,
        })
        .collect();
    assert!(
        delayed.contains(&commitment.compute_txid())
            && delayed.contains(&htlc_timeout.compute_txid()),
        "A can sweep the commitment's to_local and the HTLC-timeout's output: {descriptors:?}"
    );

    // The sweep, signed by the signer, pays the node's wallet.
    let wallet = p.a.keys.get_destination_script(keys_id).unwrap();
    let refs: Vec<&SpendableOutputDescriptor> = descriptors.iter().collect();
    let sweep =
        p.a.keys
            .spend_spendable_outputs(
                &refs,
                Vec::new(),
                wallet.clone(),
                1000,
                None,
                &Secp256k1::new(),
            )
            .expect("the signer signs the sweep");
    verify_spends(&sweep, &[&commitment, &htlc_success, &htlc_timeout]);
    assert_eq!(sweep.input.len(), 3);
    assert_eq!(sweep.output.len(), 1);
    assert_eq!(
        sweep.output[0].script_pubkey, wallet,
        "the sweep pays the wallet"
    );
    assert!(
        sweep.output[0].value > Amount::from_sat(880_000),
        "{sweep:?}"
    );

    assert_eq!(
        world.mark(&keys_id, "counterparty_signed").unwrap(),
        signed_before,
        "closing signs no counterparty commitment"
    );
    assert_eq!(p.a.keys.refusals().total, 0);
}
