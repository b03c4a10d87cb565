//! The wire conversion: every structured request a replica can make
//! survives the round trip to the wire and back unchanged, and no bytes
//! make the conversion panic (property tests over arbitrary messages and
//! arbitrary encodings).

use proptest::prelude::*;
use prost::Message as _;
use tidemark_client::lightning::channel_request as to_wire;
use tidemark_lightning::bitcoin::hashes::Hash as _;
use tidemark_lightning::bitcoin::{Amount, OutPoint, ScriptBuf, TxOut, Txid};
use tidemark_lightning::channel::{
    AnchorSpend, Announcement, ChannelKind, ChannelRequest, ClosingProposal, CommitmentNumber,
    CounterpartyHtlcSpend, HolderHtlcSpend, JusticeSpend, SpendInput, SpendTx,
};
use tidemark_lightning::fixtures::{BEST_BLOCK_HEIGHT, SimulatedChannel, htlc};
use tidemark_lightning::lightning::util::ser::Writeable as _;
use tidemark_lightning::{NodeKeys, RemoteKeyDerivation};
use tidemark_proto::v1;

use super::convert::{self, channel_request};

fn node() -> NodeKeys {
    NodeKeys::with_entropy_start(&[5; 32], RemoteKeyDerivation::V2, 1, 0).unwrap()
}

fn spend() -> SpendTx {
    SpendTx {
        version: 2,
        lock_time: 800_000,
        inputs: vec![SpendInput {
            previous_output: OutPoint {
                txid: Txid::from_byte_array([3; 32]),
                vout: 1,
            },
            sequence: 0xffff_fffd,
        }],
        outputs: vec![TxOut {
            value: Amount::from_sat(1_000),
            script_pubkey: ScriptBuf::from_bytes(vec![0x51]),
        }],
    }
}

/// One request of every kind, built from a simulated channel.
fn every_request() -> Vec<ChannelRequest> {
    let keys = node();
    let mut c = SimulatedChannel::new(&keys, [9; 32], ChannelKind::AnchorsZeroFeeHtlcTx);
    c.offer_htlcs(2, 20_000, BEST_BLOCK_HEIGHT + 10, 4).unwrap();
    let n = |v| CommitmentNumber::new(v).unwrap();
    vec![
        c.setup_request(),
        ChannelRequest::PerCommitmentPoint(n(3)),
        c.release_holder_request(2).unwrap(),
        c.validate_holder_request(4).unwrap(),
        c.revocation_request(1).unwrap(),
        c.sign_counterparty_request(5).unwrap(),
        ChannelRequest::SignHolderCommitment(n(6)),
        ChannelRequest::SignHolderHtlc(Box::new(HolderHtlcSpend {
            commitment: n(4),
            htlc_output_index: 2,
            tx: spend(),
            input: 0,
        })),
        ChannelRequest::SignCounterpartyHtlc(Box::new(CounterpartyHtlcSpend {
            per_commitment_point: c.counterparty_point(5).unwrap(),
            htlc: htlc(true, 20_000, 800_100, 1),
            tx: spend(),
            input: 0,
            amount_sat: 20_000,
        })),
        ChannelRequest::SignJustice(Box::new(JusticeSpend {
            commitment: Some(n(1)),
            per_commitment_secret: c.counterparty_secret(1).unwrap(),
            htlc: Some(htlc(false, 20_000, 800_100, 2)),
            tx: spend(),
            input: 0,
            amount_sat: 20_000,
        })),
        ChannelRequest::SignJustice(Box::new(JusticeSpend {
            commitment: None,
            per_commitment_secret: [8; 32],
            htlc: None,
            tx: spend(),
            input: 0,
            amount_sat: 9,
        })),
        ChannelRequest::SignHolderAnchor(Box::new(AnchorSpend {
            tx: spend(),
            input: 0,
        })),
        ChannelRequest::SignClosing(Box::new(ClosingProposal {
            to_holder_sat: 600_000,
            to_counterparty_sat: 300_000,
            holder_script: keys.destination_script().to_owned(),
            counterparty_script: ScriptBuf::from_bytes(vec![0x00, 0x14, 7, 7]),
        })),
        ChannelRequest::SignChannelAnnouncement(Box::new(Announcement {
            features: vec![1, 2],
            chain_hash: [6; 32],
            short_channel_id: 42,
            node_id_1: keys.node_id(),
            node_id_2: c.counterparty_point(0).unwrap(),
            bitcoin_key_1: c.setup.holder.funding_pubkey,
            bitcoin_key_2: c.setup.counterparty.funding_pubkey,
            excess_data: vec![9],
        })),
    ]
}

#[test]
fn every_request_survives_the_round_trip_through_the_wire() {
    let id = [9; 32];
    for request in every_request() {
        for height in [None, Some(BEST_BLOCK_HEIGHT)] {
            let wire = to_wire("ln-node", &id, &request, height).unwrap();
            // Through the bytes, as the server receives it.
            let decoded = v1::ChannelRequest::decode(wire.encode_to_vec().as_slice()).unwrap();
            let call = channel_request(decoded).unwrap();
            assert_eq!(call.request, request, "{}", request.kind());
            assert_eq!(call.channel_keys_id, id);
            assert_eq!(call.best_block_height, height);
        }
    }
}

#[test]
fn a_setup_takes_the_channel_keys_id_of_the_envelope() {
    let keys = node();
    let c = SimulatedChannel::new(&keys, [9; 32], ChannelKind::StaticRemoteKey);
    let wire = to_wire("ln-node", &[1; 32], &c.setup_request(), None).unwrap();
    let call = channel_request(wire).unwrap();
    let ChannelRequest::Setup(setup) = call.request else {
        panic!("not a setup");
    };
    assert_eq!(setup.channel_keys_id, [1; 32]);
}

#[test]
fn malformed_fields_are_named() {
    let id = [9; 32];
    let requests = every_request();
    let wire = |i: usize| to_wire("ln-node", &id, &requests[i], None).unwrap();
    use v1::channel_request::Request as W;
    let cases: Vec<(v1::ChannelRequest, &str)> = vec![
        (
            v1::ChannelRequest {
                request: None,
                ..wire(0)
            },
            "request",
        ),
        (
            v1::ChannelRequest {
                channel_keys_id: vec![0; 33],
                ..wire(0)
            },
            "channel_keys_id",
        ),
        (
            {
                let mut r = wire(0);
                if let Some(W::Setup(s)) = r.request.as_mut() {
                    s.counterparty.as_mut().unwrap().htlc_basepoint = vec![0; 33];
                }
                r
            },
            "request.setup.counterparty.htlc_basepoint",
        ),
        (
            {
                let mut r = wire(0);
                if let Some(W::Setup(s)) = r.request.as_mut() {
                    s.funding_outpoint.as_mut().unwrap().vout = 65_536;
                }
                r
            },
            "request.setup.funding_outpoint.vout",
        ),
        (
            {
                let mut r = wire(3);
                if let Some(W::ValidateHolderCommitment(h)) = r.request.as_mut() {
                    h.counterparty_htlc_signatures[1] = vec![0xff; 64];
                }
                r
            },
            "request.validate_holder_commitment.counterparty_htlc_signatures[1]",
        ),
        (
            {
                let mut r = wire(5);
                if let Some(W::SignCounterpartyCommitment(c)) = r.request.as_mut() {
                    c.htlcs[1].payment_hash = vec![1; 31];
                }
                r
            },
            "request.sign_counterparty_commitment.htlcs[1].payment_hash",
        ),
        (
            v1::ChannelRequest {
                request: Some(W::ReleaseHolderSecret(1 << 48)),
                ..wire(0)
            },
            "request.release_holder_secret",
        ),
        (
            {
                let mut r = wire(7);
                if let Some(W::SignHolderHtlc(s)) = r.request.as_mut() {
                    s.tx.as_mut().unwrap().inputs[0].previous_output = None;
                }
                r
            },
            "request.sign_holder_htlc.tx.inputs[0].previous_output",
        ),
        (
            {
                let mut r = wire(12);
                if let Some(W::SignClosing(c)) = r.request.as_mut() {
                    c.holder_script = vec![0; convert::MAX_SCRIPT_BYTES + 1];
                }
                r
            },
            "request.sign_closing.holder_script",
        ),
    ];
    for (request, field) in cases {
        let e = channel_request(request).unwrap_err();
        assert_eq!(e.field, field, "{e}");
    }
}

fn any_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..max),
        // Lengths that pass the length checks, with arbitrary content.
        proptest::collection::vec(any::<u8>(), 32..=32),
        proptest::collection::vec(any::<u8>(), 33..=33),
        proptest::collection::vec(any::<u8>(), 64..=64),
    ]
}

fn any_htlc() -> impl Strategy<Value = v1::Htlc> {
    (any::<bool>(), any::<u64>(), any::<u32>(), any_bytes(40)).prop_map(
        |(offered, amount_msat, cltv_expiry, payment_hash)| v1::Htlc {
            offered,
            amount_msat,
            cltv_expiry,
            payment_hash,
        },
    )
}

fn any_commitment() -> impl Strategy<Value = v1::Commitment> {
    (
        any::<u64>(),
        any_bytes(40),
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        proptest::collection::vec(any_htlc(), 0..4),
    )
        .prop_map(|(number, point, b, c, feerate, htlcs)| v1::Commitment {
            number,
            per_commitment_point: point,
            to_broadcaster_sat: b,
            to_countersignatory_sat: c,
            feerate_per_kw: feerate,
            htlcs,
        })
}

fn any_spend_tx() -> impl Strategy<Value = Option<v1::SpendTx>> {
    proptest::option::of(
        (
            any::<i32>(),
            any::<u32>(),
            proptest::collection::vec(
                (
                    proptest::option::of(("[0-9a-f]{0,66}", any::<u32>())),
                    any::<u32>(),
                ),
                0..3,
            ),
            proptest::collection::vec((any::<u64>(), any_bytes(40)), 0..3),
        )
            .prop_map(|(version, lock_time, inputs, outputs)| v1::SpendTx {
                version,
                lock_time,
                inputs: inputs
                    .into_iter()
                    .map(|(o, sequence)| v1::SpendInput {
                        previous_output: o.map(|(txid, vout)| v1::OutPoint { txid, vout }),
                        sequence,
                    })
                    .collect(),
                outputs: outputs
                    .into_iter()
                    .map(|(value_sat, script_pubkey)| v1::TxOut {
                        value_sat,
                        script_pubkey,
                    })
                    .collect(),
            }),
    )
}

fn any_request() -> impl Strategy<Value = Option<v1::channel_request::Request>> {
    use v1::channel_request::Request as W;
    proptest::option::of(prop_oneof![
        any::<u64>().prop_map(W::PerCommitmentPoint),
        any::<u64>().prop_map(W::ReleaseHolderSecret),
        any::<u64>().prop_map(W::SignHolderCommitment),
        any_commitment().prop_map(W::SignCounterpartyCommitment),
        (
            proptest::option::of(any_commitment()),
            any_bytes(70),
            proptest::collection::vec(any_bytes(70), 0..3)
        )
            .prop_map(|(commitment, sig, sigs)| W::ValidateHolderCommitment(
                v1::HolderCommitment {
                    commitment,
                    counterparty_signature: sig,
                    counterparty_htlc_signatures: sigs,
                }
            )),
        (any::<u64>(), any_bytes(40)).prop_map(|(number, s)| W::ValidateCounterpartyRevocation(
            v1::CounterpartyRevocation {
                number,
                per_commitment_secret: s,
            }
        )),
        (any::<u64>(), any::<u32>(), any_spend_tx(), any::<u32>()).prop_map(
            |(commitment, index, tx, input)| W::SignHolderHtlc(v1::HolderHtlcSpend {
                commitment,
                htlc_output_index: index,
                tx,
                input,
            })
        ),
        (
            proptest::option::of(any::<u64>()),
            any_bytes(40),
            proptest::option::of(any_htlc()),
            any_spend_tx()
        )
            .prop_map(
                |(commitment, secret, htlc, tx)| W::SignJustice(v1::JusticeSpend {
                    commitment,
                    per_commitment_secret: secret,
                    htlc,
                    tx,
                    input: 0,
                    amount_sat: 1,
                })
            ),
        (any::<u64>(), any::<u64>(), any_bytes(40), any_bytes(40)).prop_map(|(a, b, h, c)| {
            W::SignClosing(v1::ClosingProposal {
                to_holder_sat: a,
                to_counterparty_sat: b,
                holder_script: h,
                counterparty_script: c,
            })
        }),
        (any_bytes(40), any_bytes(40), any_bytes(40)).prop_map(|(a, b, c)| {
            W::SignChannelAnnouncement(v1::ChannelAnnouncement {
                features: a,
                chain_hash: b,
                short_channel_id: 1,
                node_id_1: c.clone(),
                node_id_2: c.clone(),
                bitcoin_key_1: c.clone(),
                bitcoin_key_2: c,
                excess_data: Vec::new(),
            })
        }),
        (
            any_bytes(40),
            any::<u32>(),
            "[0-9a-f]{0,66}",
            any::<u32>(),
            any_bytes(16)
        )
            .prop_map(|(key, delay, txid, vout, channel_type)| W::Setup(
                v1::ChannelSetup {
                    holder: Some(v1::ChannelPublicKeys {
                        funding_pubkey: key.clone(),
                        revocation_basepoint: key.clone(),
                        payment_point: key.clone(),
                        delayed_payment_basepoint: key.clone(),
                        htlc_basepoint: key.clone(),
                    }),
                    counterparty: None,
                    holder_selected_contest_delay: delay,
                    counterparty_selected_contest_delay: delay,
                    funding_outpoint: Some(v1::OutPoint { txid, vout }),
                    channel_type,
                    channel_value_sat: 1,
                    is_outbound: true,
                }
            )),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Structured garbage: every field arbitrary. Never a panic; a request
    /// that converts has in-range numbers.
    #[test]
    fn arbitrary_messages_never_panic(id in any_bytes(40), request in any_request(), height in proptest::option::of(any::<u32>())) {
        let wire = v1::ChannelRequest {
            node: "ln-node".into(),
            channel_keys_id: id,
            best_block_height: height,
            request,
        };
        if let Ok(call) = channel_request(wire) {
            prop_assert_eq!(call.best_block_height, height);
        }
    }

    /// Arbitrary bytes and mutated encodings of valid requests: whatever
    /// prost decodes converts or fails, never panics.
    #[test]
    fn arbitrary_encodings_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400), which in 0usize..14, flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6)) {
        if let Ok(r) = v1::ChannelRequest::decode(bytes.as_slice()) {
            let _ = channel_request(r);
        }
        let requests = every_request();
        let mut encoded = to_wire("ln-node", &[9; 32], &requests[which % requests.len()], None)
            .unwrap()
            .encode_to_vec();
        for (at, byte) in flips {
            let i = at.index(encoded.len());
            encoded[i] ^= byte;
        }
        if let Ok(r) = v1::ChannelRequest::decode(encoded.as_slice()) {
            let _ = channel_request(r);
        }
    }

    /// The node operations' decoders over mutated valid encodings.
    #[test]
    fn mutated_node_inputs_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        use tidemark_lightning::node::wire;
        let keys = node();
        let descriptor = tidemark_lightning::lightning::sign::SpendableOutputDescriptor::StaticOutput {
            outpoint: tidemark_lightning::lightning::chain::transaction::OutPoint {
                txid: Txid::from_byte_array([1; 32]),
                index: 0,
            },
            output: TxOut {
                value: Amount::from_sat(5_000),
                script_pubkey: keys.destination_script().to_owned(),
            },
            channel_keys_id: Some([4; 32]),
        }
        .encode();
        let mut mutated = descriptor.clone();
        for (at, byte) in &flips {
            let i = at.index(mutated.len());
            mutated[i] ^= byte;
        }
        let _ = wire::spendable_output(&mutated);
        let _ = wire::channel_update(&mutated);
        let _ = wire::node_announcement(&mutated);
        let _ = wire::channel_announcement(&mutated);
        prop_assert!(wire::spendable_output(&descriptor).is_ok());
    }
}
