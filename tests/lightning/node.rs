//! Node operations over the wire, checked against LDK's `KeysManager` built
//! from the very seed in the signer's keystore, and the grants every
//! lightning call needs.

use std::time::Duration;

use secrecy::SecretString;
use tidemark_cli::embedded::{DEV_LIGHTNING_NODE, Embedded};
use tidemark_client::{ClientError, v1};
use tidemark_core::{AuditOutcome, StateStore as _};
use tidemark_keys::SoftwareKeystore;
use tidemark_lightning::bitcoin::constants::ChainHash;
use tidemark_lightning::bitcoin::hashes::{Hash as _, sha256d};
use tidemark_lightning::bitcoin::secp256k1::ecdh::SharedSecret;
use tidemark_lightning::bitcoin::secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use tidemark_lightning::bitcoin::secp256k1::{Message, PublicKey, Secp256k1, SecretKey};
use tidemark_lightning::bitcoin::{
    Amount, Network, ScriptBuf, Transaction, TxOut, Txid, WPubkeyHash,
};
use tidemark_lightning::channel::ChannelKind;
use tidemark_lightning::lightning::bolt11_invoice::{Currency, InvoiceBuilder, PaymentSecret};
use tidemark_lightning::lightning::chain::transaction::OutPoint as LdkOutPoint;
use tidemark_lightning::lightning::ln::inbound_payment::ExpandedKey;
use tidemark_lightning::lightning::ln::msgs::UnsignedChannelUpdate;
use tidemark_lightning::lightning::sign::{
    KeysManager, NodeSigner as _, Recipient, SignerProvider as _, SpendableOutputDescriptor,
};
use tidemark_lightning::lightning::util::message_signing;
use tidemark_lightning::lightning::util::ser::Writeable as _;

use super::{Chan, audited, open, support};

/// LDK's `KeysManager` over the seed in the signer's keystore.
fn keys_manager(signer: &Embedded) -> KeysManager {
    let text = std::fs::read_to_string(signer.layout.passphrase()).unwrap();
    let passphrase = SecretString::from(text.trim_end().to_owned());
    let keystore = SoftwareKeystore::open(signer.layout.keystore(), &passphrase).unwrap();
    keystore.with_seed_for_derivation(|seed| {
        let seed: &[u8; 32] = seed.try_into().expect("init makes a 32-byte seed");
        KeysManager::new(seed, 42, 7, true)
    })
}

/// The scripts LDK's `SignerProvider` gives every channel come from the
/// signer, equal to `KeysManager`'s for the keystore's seed, so the LDK
/// adapter needs neither in its config.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_node_scripts_are_the_keys_managers() {
    let signer = support::signer(1).await;
    let client = signer.client("replica-1").unwrap();
    let ldk = keys_manager(&signer);

    let scripts = client.node_scripts(DEV_LIGHTNING_NODE).await.unwrap();
    assert_eq!(
        scripts.destination_script,
        ldk.get_destination_script([0; 32]).unwrap()
    );
    assert_eq!(
        scripts.shutdown_script.into_inner(),
        ldk.get_shutdown_scriptpubkey().unwrap().into_inner()
    );
    // One script for every channel, as in `KeysManager`.
    assert_eq!(
        scripts.destination_script,
        ldk.get_destination_script([7; 32]).unwrap()
    );
    // An unknown node is NOT_FOUND.
    assert!(matches!(
        client.node_scripts("no-such-node").await,
        Err(ClientError::NotFound(_) | ClientError::PermissionDenied(_))
    ));
    signer.stop().await;
}

fn other_key(byte: u8) -> PublicKey {
    PublicKey::from_secret_key(
        &Secp256k1::new(),
        &SecretKey::from_slice(&[byte; 32]).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_node_is_the_keys_manager_of_the_keystore_seed() {
    let signer = support::signer(1).await;
    let client = signer.client("replica-1").unwrap();
    let ldk = keys_manager(&signer);
    let node = DEV_LIGHTNING_NODE;

    let node_id = client.node_id(node).await.unwrap();
    assert_eq!(node_id, ldk.get_node_id(Recipient::Node).unwrap());

    // ECDH, with and without a tweak.
    let tweak = [3u8; 32];
    for t in [None, Some(tweak)] {
        let ours = client
            .ecdh(v1::EcdhRequest {
                node: node.into(),
                other_key: other_key(5).serialize().to_vec(),
                tweak: t.map(|t| t.to_vec()),
            })
            .await
            .unwrap();
        let scalar =
            t.map(|t| tidemark_lightning::bitcoin::secp256k1::Scalar::from_be_bytes(t).unwrap());
        let theirs: SharedSecret = ldk
            .ecdh(Recipient::Node, &other_key(5), scalar.as_ref())
            .unwrap();
        assert_eq!(ours, theirs.secret_bytes());
    }

    // The node secrets an LDK node rebuilds its keys from.
    let material = client.expanded_key_material(node).await.unwrap();
    assert_eq!(ExpandedKey::new(*material), ldk.get_expanded_key());
    assert_eq!(
        *client.peer_storage_key(node).await.unwrap(),
        ldk.get_peer_storage_key().inner
    );
    assert_eq!(
        *client.receive_auth_key(node).await.unwrap(),
        ldk.get_receive_auth_key().0
    );

    // A BOLT 11 invoice, sent as LDK's `to_raw` parts: the signature
    // recovers the node id and equals KeysManager's.
    let raw = InvoiceBuilder::new(Currency::Regtest)
        .description("tidemark".to_owned())
        .payment_hash(tidemark_lightning::bitcoin::hashes::sha256::Hash::hash(
            b"preimage",
        ))
        .payment_secret(PaymentSecret([7; 32]))
        .duration_since_epoch(Duration::from_secs(1_750_000_000))
        .min_final_cltv_expiry_delta(144)
        .build_raw()
        .unwrap();
    let (hrp, data) = raw.to_raw();
    let signed = client
        .sign_invoice(v1::SignInvoiceRequest {
            node: node.into(),
            hrp,
            data: data.iter().map(|f| f.to_u8()).collect(),
        })
        .await
        .unwrap();
    let recoverable = RecoverableSignature::from_compact(
        &signed.signature,
        RecoveryId::from_i32(signed.recovery_id).unwrap(),
    )
    .unwrap();
    assert_eq!(
        recoverable,
        ldk.sign_invoice(&raw, Recipient::Node).unwrap()
    );
    let digest = Message::from_digest(raw.signable_hash());
    assert_eq!(
        Secp256k1::new()
            .recover_ecdsa(&digest, &recoverable)
            .unwrap(),
        node_id
    );

    // A channel update, in its wire form.
    let update = UnsignedChannelUpdate {
        chain_hash: ChainHash::using_genesis_block(Network::Regtest),
        short_channel_id: (42 << 40) | (1 << 16) | 1,
        timestamp: 1_750_000_000,
        message_flags: 1,
        channel_flags: 0,
        cltv_expiry_delta: 144,
        htlc_minimum_msat: 1000,
        htlc_maximum_msat: 100_000_000,
        fee_base_msat: 1000,
        fee_proportional_millionths: 100,
        excess_data: Vec::new(),
    };
    let signature = client
        .sign_gossip_message(v1::SignGossipMessageRequest {
            node: node.into(),
            message: Some(v1::sign_gossip_message_request::Message::ChannelUpdate(
                update.encode(),
            )),
        })
        .await
        .unwrap();
    let hash = sha256d::Hash::hash(&update.encode());
    Secp256k1::new()
        .verify_ecdsa(
            &Message::from_digest(hash.to_byte_array()),
            &signature,
            &node_id,
        )
        .unwrap();

    // A message, as `signmessage`.
    let zbase32 = client.sign_message(node, b"hello tidemark").await.unwrap();
    assert!(message_signing::verify(
        b"hello tidemark",
        &zbase32,
        &node_id
    ));
    assert_eq!(zbase32, ldk.sign_message(b"hello tidemark").unwrap());

    // Every operation was accounted for against the node's object.
    let records = audited(&signer, AuditOutcome::Signed, None, 8).await;
    assert!(
        records
            .iter()
            .filter(|r| r.entry.object == format!("lightning/regtest/{node}/node"))
            .count()
            >= 8
    );
    signer.stop().await;
}

fn static_output(script: ScriptBuf, sats: u64) -> Vec<u8> {
    SpendableOutputDescriptor::StaticOutput {
        outpoint: LdkOutPoint {
            txid: Txid::from_byte_array([1; 32]),
            index: 0,
        },
        output: TxOut {
            value: Amount::from_sat(sats),
            script_pubkey: script,
        },
        channel_keys_id: None,
    }
    .encode()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sweeps_pay_only_the_nodes_wallet() {
    let signer = support::signer(1).await;
    let client = signer.client("replica-1").unwrap();
    let node = signer.lightning().unwrap();
    let own = node.signer.node().destination_script().to_owned();
    let foreign = ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([0xee; 20]));
    let request = |change: ScriptBuf| v1::SpendSpendableOutputsRequest {
        node: DEV_LIGHTNING_NODE.into(),
        descriptors: vec![static_output(own.clone(), 50_000)],
        outputs: Vec::new(),
        change_destination_script: change.to_bytes(),
        feerate_sat_per_1000_weight: 253,
        locktime: None,
    };
    match client.spend_spendable_outputs(request(foreign)).await {
        Err(ClientError::Refused(r)) => {
            assert_eq!(r.tag, "policy-destination-not-allowed", "{r:?}");
            assert_eq!(
                r.object,
                format!("lightning/regtest/{DEV_LIGHTNING_NODE}/node")
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let bytes = client
        .spend_spendable_outputs(request(own.clone()))
        .await
        .unwrap();
    let tx: Transaction = tidemark_lightning::bitcoin::consensus::deserialize(&bytes).unwrap();
    assert_eq!(tx.output.len(), 1);
    assert_eq!(tx.output[0].script_pubkey, own);
    assert_eq!(tx.input[0].witness.len(), 2, "a P2WPKH witness");
    // Garbage descriptors are invalid, not refused.
    let mut garbage = request(own.clone());
    garbage.descriptors = vec![support::garbage(11, 80)];
    assert!(matches!(
        client.spend_spendable_outputs(garbage).await,
        Err(ClientError::InvalidArgument(_))
    ));
    signer.stop().await;
}

/// A signer whose `replica-2` has no lightning grant and whose `replica-3`
/// may use the lightning domain with another key only.
async fn restricted_signer(parent: &std::path::Path) -> Embedded {
    crate::support::signer_with_grants(
        parent,
        &[
            ("replica-2", "\"validator\", \"ln-node\"", "\"consensus\""),
            ("replica-3", "\"other-node\"", "\"lightning\""),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_without_the_lightning_grant_are_denied() {
    let tmp = tempfile::tempdir().unwrap();
    let signer = restricted_signer(tmp.path()).await;
    let one = signer.client("replica-1").unwrap();
    let chan: Chan = open(&signer, &one, ChannelKind::AnchorsZeroFeeHtlcTx, 1).await;
    let objects = signer.store.objects().unwrap();
    let node = DEV_LIGHTNING_NODE;
    let sign = tidemark_client::lightning::channel_request(
        node,
        &chan.id,
        &chan.sim.sign_counterparty_request(1).unwrap(),
        None,
    )
    .unwrap();

    let denied = |what: &str, r: Result<(), ClientError>| match r {
        Err(ClientError::PermissionDenied(_)) => {}
        other => panic!("{what}: expected PermissionDenied, got {other:?}"),
    };
    for identity in ["replica-2", "replica-3", "admin"] {
        let c = signer.client(identity).unwrap();
        denied("channel", c.channel(sign.clone()).await.map(|_| ()));
        denied("issue", c.issue_channel_keys_id(node, 5).await.map(|_| ()));
        denied(
            "public keys",
            c.channel_public_keys(node, &chan.id).await.map(|_| ()),
        );
        denied("node id", c.node_id(node).await.map(|_| ()));
        denied("node scripts", c.node_scripts(node).await.map(|_| ()));
        denied("sign message", c.sign_message(node, b"x").await.map(|_| ()));
        denied(
            "expanded key",
            c.expanded_key_material(node).await.map(|_| ()),
        );
        denied(
            "peer storage key",
            c.peer_storage_key(node).await.map(|_| ()),
        );
        denied(
            "receive auth key",
            c.receive_auth_key(node).await.map(|_| ()),
        );
    }
    let domain = audited(&signer, AuditOutcome::Denied, Some("denied-domain"), 18).await;
    assert!(domain.iter().any(|r| r.entry.client == "replica-2"));
    assert!(domain.iter().any(|r| r.entry.client == "admin"));
    let key = audited(&signer, AuditOutcome::Denied, Some("denied-key"), 9).await;
    assert!(key.iter().all(|r| r.entry.client == "replica-3"));
    for r in domain.iter().chain(&key) {
        assert_eq!(r.entry.object, format!("lightning/*/{node}/*"), "{r:?}");
    }
    // Nothing moved; the granted replica still signs.
    assert_eq!(signer.store.objects().unwrap(), objects);
    one.channel(sign).await.unwrap();
    signer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_blocking_client_makes_the_calls_of_ldks_synchronous_traits() {
    let signer = support::signer(1).await;
    let options = signer.client_options("replica-1").unwrap();
    let node = signer.lightning().unwrap();
    let expected_id = node.signer.node().node_id();
    let holder = node.clone();
    // LDK calls its signer traits from its own threads, outside any
    // runtime.
    tokio::task::spawn_blocking(move || {
        let client = tidemark_client::BlockingClient::connect_lazy(options).unwrap();
        assert_eq!(client.node_id(DEV_LIGHTNING_NODE).unwrap(), expected_id);
        let scripts = client.node_scripts(DEV_LIGHTNING_NODE).unwrap();
        assert_eq!(
            scripts.destination_script.as_script(),
            holder.signer.node().destination_script()
        );
        let id = client.issue_channel_keys_id(DEV_LIGHTNING_NODE, 1).unwrap();
        let sim = tidemark_lightning::fixtures::SimulatedChannel::new(
            holder.signer.node(),
            id,
            ChannelKind::AnchorsZeroFeeHtlcTx,
        );
        assert_eq!(
            client.channel_public_keys(DEV_LIGHTNING_NODE, &id).unwrap(),
            sim.setup.holder
        );
        for request in sim.opening_requests().unwrap() {
            let answer = client
                .channel_call(DEV_LIGHTNING_NODE, &id, &request, None)
                .unwrap();
            assert!(!answer.replayed);
        }
        // The same request again: replayed.
        let again = client
            .channel_call(
                DEV_LIGHTNING_NODE,
                &id,
                &sim.sign_counterparty_request(0).unwrap(),
                None,
            )
            .unwrap();
        assert!(again.replayed);
    })
    .await
    .unwrap();
    signer.stop().await;
}
