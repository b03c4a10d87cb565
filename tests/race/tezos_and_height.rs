//! Races of Tezos bakers and of plain-height replicas: one payload per
//! position, whatever the interleaving.

use tidemark_consensus::TezosRequest;
use tidemark_core::KeyId;

use super::*;

/// Mainnet's chain id bytes and base58check name.
const TEZOS_MAINNET: [u8; 4] = [0x7a, 0x06, 0xa7, 0x70];
const TEZOS_MAINNET_B58: &str = "NetXdQprcVkpaWU";

/// A Tenderbake (pre)attestation: magic, chain id, branch, content tag,
/// slot, level, round, block payload hash.
fn tezos_consensus(magic: u8, level: i32, round: i32, payload: u8) -> Vec<u8> {
    let tag = if magic == 0x12 { 20 } else { 21 };
    let mut b = vec![magic];
    b.extend_from_slice(&TEZOS_MAINNET);
    b.extend_from_slice(&[5; 32]);
    b.push(tag);
    b.extend_from_slice(&7u16.to_be_bytes());
    b.extend_from_slice(&level.to_be_bytes());
    b.extend_from_slice(&round.to_be_bytes());
    b.extend_from_slice(&[payload; 32]);
    b
}

/// One request of a generic position race: the message the signer signs
/// for it (Tezos: the digest; heights: the payload) and its answer.
struct Raced {
    stale: Option<&'static str>,
    signed_message: Vec<u8>,
    result: Result<(i32, Vec<u8>), ClientError>,
}

/// Checks one position: one payload released, every signature valid and
/// identical, one new signature, losers refused as double signs with a mark
/// at least `position` in field `mark_field`, stale requests refused with
/// their tag.
fn check_position(key: &VerifyingKey, mark_field: &str, position: u64, raced: &[Raced]) -> usize {
    let mut refused = 0;
    for r in raced.iter().filter(|r| r.stale.is_some()) {
        let e = r.result.as_ref().expect_err("a stale request is refused");
        let refusal = refusal(e);
        assert_eq!(Some(refusal.tag.as_str()), r.stale, "{refusal:?}");
        assert!(refusal.mark(mark_field).unwrap() > position - 2);
    }
    let contending: Vec<&Raced> = raced.iter().filter(|r| r.stale.is_none()).collect();
    let ok: Vec<(&Raced, &(i32, Vec<u8>))> = contending
        .iter()
        .filter_map(|r| r.result.as_ref().ok().map(|a| (*r, a)))
        .collect();
    assert!(!ok.is_empty(), "nothing signed at {position}");
    let payloads: BTreeSet<&Vec<u8>> = ok.iter().map(|(r, _)| &r.signed_message).collect();
    assert_eq!(payloads.len(), 1, "two payloads signed at {position}");
    let winner = payloads.into_iter().next().unwrap();
    let signatures: BTreeSet<&Vec<u8>> = ok.iter().map(|(_, (_, s))| s).collect();
    assert_eq!(
        signatures.len(),
        1,
        "identical repeats get identical signatures"
    );
    for (r, (_, signature)) in &ok {
        assert!(
            verifies(key, &r.signed_message, signature),
            "invalid signature"
        );
    }
    assert_eq!(ok.iter().filter(|(_, (o, _))| *o == SIGNED).count(), 1);
    assert!(ok.iter().all(|(_, (o, _))| *o == SIGNED || *o == REPLAYED));
    for r in &contending {
        let Err(e) = &r.result else { continue };
        let refusal = refusal(e);
        assert_eq!(refusal.tag, DOUBLE_SIGN, "{refusal:?}");
        assert!(refusal.mark(mark_field).unwrap() >= position);
        assert_ne!(&r.signed_message, winner, "the winning payload was refused");
        refused += 1;
    }
    refused
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_tezos_bakers_get_one_operation_signed_per_level_and_round() {
    let signer = support::signer(REPLICAS).await;
    let clients = connect_replicas(&signer);
    let key = verifying_key(&signer);
    let (chain, key_id) = (
        ChainId::new(TEZOS_MAINNET_B58).unwrap(),
        KeyId::new(VALIDATOR_KEY).unwrap(),
    );
    let mut double_signs = 0;
    let mut positions = 0;
    for level in 1..=12i32 {
        for magic in [0x12u8, 0x13] {
            let rounds: &[i32] = if level % 3 == 0 { &[0, 1, 2] } else { &[0] };
            for &round in rounds {
                // (replica, bytes, stale tag)
                let mut plan: Vec<(usize, Vec<u8>, Option<&'static str>)> = Vec::new();
                for i in 0..REPLICAS as usize {
                    let bytes = tezos_consensus(magic, level, round, (i % 2) as u8 + 1);
                    if i % 4 == 0 {
                        plan.push((i, bytes.clone(), None));
                    }
                    plan.push((i, bytes, None));
                }
                if level > 2 {
                    plan.push((
                        7,
                        tezos_consensus(magic, level - 2, 0, 9),
                        Some("hwm-level-regression"),
                    ));
                }
                // Round 0 is strictly below the mark only once round 1 was
                // signed, before this phase started.
                if round == 2 {
                    plan.push((
                        6,
                        tezos_consensus(magic, level, 0, 9),
                        Some("hwm-round-regression"),
                    ));
                }
                let tasks: Vec<_> = plan
                    .into_iter()
                    .map(|(i, bytes, stale)| {
                        let client = clients[i].clone();
                        let request = v1::SignTezosRequest {
                            chain_id: TEZOS_MAINNET_B58.into(),
                            key_id: VALIDATOR_KEY.into(),
                            operation: bytes.clone(),
                        };
                        (
                            bytes,
                            stale,
                            tokio::spawn(async move { client.sign_tezos(request).await }),
                        )
                    })
                    .collect();
                let mut raced = Vec::new();
                for (bytes, stale, task) in tasks {
                    let result = task.await.unwrap();
                    if let Ok(r) = &result {
                        assert_eq!((r.level, r.round), (level as u32, round as u32));
                    }
                    let digest = TezosRequest::new(chain.clone(), key_id.clone(), bytes)
                        .unwrap()
                        .digest();
                    raced.push(Raced {
                        stale,
                        signed_message: digest.to_vec(),
                        result: result.map(|r| (r.outcome, r.signature)),
                    });
                }
                // The Tezos mark is (level, round); check on the level.
                double_signs += check_position(&key, "level", level as u64, &raced);
                positions += 1;
            }
        }
    }
    assert!(double_signs > 0);
    let signed = signer
        .store
        .audit_records(1, 100_000)
        .unwrap()
        .iter()
        .filter(|r| r.entry.outcome == AuditOutcome::Signed)
        .count();
    assert_eq!(signed, positions, "one signature per (kind, level, round)");
    signer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_replicas_get_one_payload_signed_per_plain_height() {
    let signer = support::signer(REPLICAS).await;
    let clients = connect_replicas(&signer);
    let key = verifying_key(&signer);
    let mut double_signs = 0;
    for height in 1..=30u64 {
        let mut plan: Vec<(usize, Vec<u8>, u64, Option<&'static str>)> = Vec::new();
        for i in 0..REPLICAS as usize {
            let payload = format!("block {height} from group {}", i % 3).into_bytes();
            if i % 4 == 0 {
                plan.push((i, payload.clone(), height, None));
            }
            plan.push((i, payload, height, None));
        }
        if height > 2 {
            plan.push((
                7,
                b"stale".to_vec(),
                height - 2,
                Some("hwm-height-regression"),
            ));
        }
        let tasks: Vec<_> = plan
            .into_iter()
            .map(|(i, payload, h, stale)| {
                let client = clients[i].clone();
                let request = v1::SignHeightRequest {
                    chain_id: "plain-chain-1".into(),
                    key_id: VALIDATOR_KEY.into(),
                    height: h,
                    round: None,
                    payload: payload.clone(),
                };
                (
                    payload,
                    stale,
                    tokio::spawn(async move { client.sign_height(request).await }),
                )
            })
            .collect();
        let mut raced = Vec::new();
        for (payload, stale, task) in tasks {
            raced.push(Raced {
                stale,
                signed_message: payload,
                result: task.await.unwrap().map(|r| (r.outcome, r.signature)),
            });
        }
        double_signs += check_position(&key, "height", height, &raced);
    }
    assert!(double_signs > 0);
    let objects = signer.store.objects().unwrap();
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0].1.mark.get("height"), Some(30));
    signer.stop().await;
}
