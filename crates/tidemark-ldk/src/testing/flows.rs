//! The steps every scenario takes: fund and open a channel, pay, claim,
//! count events.

use bitcoin::hashes::Hash as _;
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness,
    absolute::LockTime,
};
use lightning::events::Event;
use lightning::ln::channelmanager::{PaymentId, RecipientOnionFields, Retry};
use lightning::ln::types::ChannelId;
use lightning::routing::router::{PaymentParameters, RouteParameters};
use lightning::types::payment::PaymentHash;

use super::node::{Keys, Node, Pair};

/// The value of every channel [`open_channel`] opens.
pub const CHANNEL_SAT: u64 = 1_000_000;

/// A funding transaction paying `script` `value`, from a synthetic input
/// (LDK checks that inputs carry witnesses, not that they verify).
pub fn funding_transaction(value: Amount, script: ScriptBuf, salt: u8) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::new(Txid::from_byte_array([salt; 32]), 0),
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: Witness::from_slice(&[vec![0x30; 72], vec![0x02; 33]]),
        }],
        output: vec![TxOut {
            value,
            script_pubkey: script,
        }],
    }
}

/// A opens a channel to B, funds it, and both see it usable. Returns the
/// channel and its funding transaction.
pub fn open_channel<A: Keys, B: Keys>(p: &mut Pair<A, B>) -> (ChannelId, Transaction) {
    let before = p.a.broadcaster.all().len();
    let salt = u8::try_from(p.a.manager.list_channels().len() + 0x42).unwrap();
    p.a.manager
        .create_channel(p.b.id(), CHANNEL_SAT, 0, u128::from(salt), None, None)
        .unwrap();
    p.pump(
        |a, e| {
            if let Event::FundingGenerationReady {
                temporary_channel_id,
                counterparty_node_id,
                channel_value_satoshis,
                output_script,
                ..
            } = e
            {
                let tx = funding_transaction(
                    Amount::from_sat(*channel_value_satoshis),
                    output_script.clone(),
                    salt,
                );
                a.manager
                    .funding_transaction_generated(*temporary_channel_id, *counterparty_node_id, tx)
                    .unwrap();
            }
        },
        |b, e| {
            // B accepts by hand when its config asks it to (anchors).
            if let Event::OpenChannelRequest {
                temporary_channel_id,
                counterparty_node_id,
                ..
            } = e
            {
                b.manager
                    .accept_inbound_channel(temporary_channel_id, counterparty_node_id, 0, None)
                    .unwrap();
            }
        },
    );
    let broadcast = p.a.broadcaster.all();
    assert_eq!(broadcast.len(), before + 1, "A broadcasts the funding");
    let funding = broadcast[before].clone();
    p.mine(std::slice::from_ref(&funding), 6);
    let (events_a, events_b) = p.pump(|_, _| {}, |_, _| {});
    let ready = |events: &[Event]| {
        events.iter().find_map(|e| match e {
            Event::ChannelReady { channel_id, .. } => Some(*channel_id),
            _ => None,
        })
    };
    let id = ready(&events_a).expect("A sees the channel ready");
    assert_eq!(ready(&events_b), Some(id), "B sees the same channel ready");
    assert!(
        p.a.manager
            .list_usable_channels()
            .iter()
            .any(|c| c.channel_id == id)
    );
    (id, funding)
}

/// `from` starts paying `to` each amount (an invoice of `to` per amount);
/// nothing is delivered yet, so the HTLCs are in flight together.
pub fn send_payments<F: Keys, T: Keys>(
    from: &Node<F>,
    to: &Node<T>,
    amounts: &[u64],
) -> Vec<PaymentHash> {
    amounts
        .iter()
        .map(|&amount| {
            let (hash, secret) = to
                .manager
                .create_inbound_payment(Some(amount), 3600, None)
                .unwrap();
            let params = RouteParameters::from_payment_params_and_value(
                PaymentParameters::from_node_id(to.id(), 40),
                amount,
            );
            from.manager
                .send_payment(
                    hash,
                    RecipientOnionFields::secret_only(secret),
                    PaymentId(hash.0),
                    params,
                    Retry::Attempts(0),
                )
                .unwrap();
            hash
        })
        .collect()
}

/// Claims every claimable payment as it appears.
pub fn claim<K: Keys>(node: &Node<K>, event: &Event) {
    if let Event::PaymentClaimable { purpose, .. } = event {
        node.manager.claim_funds(
            purpose
                .preimage()
                .expect("inbound payments carry their preimage"),
        );
    }
}

pub fn count(events: &[Event], what: fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| what(e)).count()
}

pub fn sent(e: &Event) -> bool {
    matches!(e, Event::PaymentSent { .. })
}

pub fn claimed(e: &Event) -> bool {
    matches!(e, Event::PaymentClaimed { .. })
}
