//! The node-level operations: decode the input (LDK's encodings, checked
//! by `tidemark_lightning::node::wire`), sign or derive with the node
//! secret, account for it (audit record and metric).
//!
//! Nothing here touches the store's state: these operations have no
//! high-water mark. Their safety rules are the node's own (a BOLT 12
//! invoice must name the node id, gossip must be the node's, a sweep pays
//! only the node's or allowlisted scripts).

use std::time::Instant;

use tidemark_core::{AuditOutcome, ClientId};
use tidemark_lightning::bitcoin::consensus::encode::serialize;
use tidemark_lightning::bitcoin::secp256k1::Scalar;
use tidemark_lightning::bitcoin::{ScriptBuf, TxOut, absolute};
use tidemark_lightning::lightning::sign::{Recipient, SpendableOutputDescriptor};
use tidemark_lightning::node::{SWEEP_DESTINATION_TAG, SweepError, SweepRequest, wire};
use tidemark_proto::v1;
use tonic::Status;

use super::convert::{self, FieldError};
use super::{LightningNode, LightningService};
use crate::status;

/// The most descriptors one sweep may spend.
const MAX_DESCRIPTORS: usize = 1_000;

fn field(field: &str, e: impl std::fmt::Display) -> FieldError {
    FieldError {
        field: field.to_owned(),
        message: e.to_string(),
    }
}

pub(super) fn ecdh(
    service: &LightningService,
    client: &ClientId,
    node: &LightningNode,
    req: v1::EcdhRequest,
) -> Result<v1::EcdhResponse, Status> {
    let started = Instant::now();
    let other = convert::point("other_key", &req.other_key)
        .map_err(|e| service.invalid(client, node, e))?;
    let tweak = req
        .tweak
        .map(|t| {
            let bytes = convert::bytes32("tweak", &t)?;
            Scalar::from_be_bytes(bytes).map_err(|e| field("tweak", e))
        })
        .transpose()
        .map_err(|e| service.invalid(client, node, e))?;
    let secret = node
        .signer
        .node()
        .ecdh(Recipient::Node, &other, tweak.as_ref())
        .map_err(|e| service.audited(client, node, status::node_error(&e)))?;
    service.account(client, node, "ecdh", AuditOutcome::Signed, None, started);
    Ok(v1::EcdhResponse {
        shared_secret: secret.secret_bytes().to_vec(),
    })
}

pub(super) fn sign_invoice(
    service: &LightningService,
    client: &ClientId,
    node: &LightningNode,
    req: v1::SignInvoiceRequest,
) -> Result<v1::SignInvoiceResponse, Status> {
    let started = Instant::now();
    let invoice =
        wire::raw_invoice(&req.hrp, &req.data).map_err(|e| service.invalid(client, node, e))?;
    let signature = node
        .signer
        .node()
        .sign_invoice(&invoice, Recipient::Node)
        .map_err(|e| service.audited(client, node, status::node_error(&e)))?;
    service.account(
        client,
        node,
        "sign-invoice",
        AuditOutcome::Signed,
        None,
        started,
    );
    let (recovery_id, compact) = signature.serialize_compact();
    Ok(v1::SignInvoiceResponse {
        signature: compact.to_vec(),
        recovery_id: recovery_id.to_i32(),
    })
}

pub(super) fn sign_bolt12_invoice(
    service: &LightningService,
    client: &ClientId,
    node: &LightningNode,
    req: v1::SignBolt12InvoiceRequest,
) -> Result<v1::SignBolt12InvoiceResponse, Status> {
    let started = Instant::now();
    let invoice =
        wire::bolt12_invoice(&req.invoice).map_err(|e| service.invalid(client, node, e))?;
    let signature = node
        .signer
        .node()
        .sign_bolt12_invoice(&invoice)
        .map_err(|e| service.audited(client, node, status::node_error(&e)))?;
    service.account(
        client,
        node,
        "sign-bolt12-invoice",
        AuditOutcome::Signed,
        None,
        started,
    );
    Ok(v1::SignBolt12InvoiceResponse {
        signature: signature.serialize().to_vec(),
    })
}

pub(super) fn sign_gossip_message(
    service: &LightningService,
    client: &ClientId,
    node: &LightningNode,
    req: v1::SignGossipMessageRequest,
) -> Result<v1::SignGossipMessageResponse, Status> {
    use v1::sign_gossip_message_request::Message;
    let started = Instant::now();
    let message = match req.message {
        Some(Message::NodeAnnouncement(b)) => wire::node_announcement(&b),
        Some(Message::ChannelAnnouncement(b)) => wire::channel_announcement(&b),
        Some(Message::ChannelUpdate(b)) => wire::channel_update(&b),
        None => {
            return Err(service.invalid(client, node, field("message", "missing")));
        }
    }
    .map_err(|e| service.invalid(client, node, e))?;
    let signature = node
        .signer
        .node()
        .sign_gossip_message(message.as_unsigned())
        .map_err(|e| service.audited(client, node, status::node_error(&e)))?;
    service.account(
        client,
        node,
        "sign-gossip-message",
        AuditOutcome::Signed,
        None,
        started,
    );
    Ok(v1::SignGossipMessageResponse {
        signature: signature.serialize_compact().to_vec(),
    })
}

pub(super) fn sign_message(
    service: &LightningService,
    client: &ClientId,
    node: &LightningNode,
    req: v1::SignMessageRequest,
) -> Result<v1::SignMessageResponse, Status> {
    let started = Instant::now();
    let signature = node
        .signer
        .node()
        .sign_message(&req.message)
        .map_err(|e| service.audited(client, node, status::node_error(&e)))?;
    service.account(
        client,
        node,
        "sign-message",
        AuditOutcome::Signed,
        None,
        started,
    );
    Ok(v1::SignMessageResponse { signature })
}

/// The sweep's parts, decoded.
struct Sweep {
    descriptors: Vec<SpendableOutputDescriptor>,
    outputs: Vec<TxOut>,
    change: ScriptBuf,
    feerate: u32,
    locktime: Option<absolute::LockTime>,
}

fn sweep_parts(req: v1::SpendSpendableOutputsRequest) -> Result<Sweep, FieldError> {
    if req.descriptors.len() > MAX_DESCRIPTORS {
        return Err(field(
            "descriptors",
            format!(
                "{} descriptors is above {MAX_DESCRIPTORS}",
                req.descriptors.len()
            ),
        ));
    }
    if req.outputs.len() > convert::MAX_WIRE_TX_PARTS {
        return Err(field(
            "outputs",
            format!(
                "{} outputs is above {}",
                req.outputs.len(),
                convert::MAX_WIRE_TX_PARTS
            ),
        ));
    }
    let descriptors = req
        .descriptors
        .iter()
        .enumerate()
        .map(|(i, d)| wire::spendable_output(d).map_err(|e| field(&format!("descriptors[{i}]"), e)))
        .collect::<Result<_, _>>()?;
    let outputs = req
        .outputs
        .into_iter()
        .enumerate()
        .map(|(i, o)| convert::tx_out(&format!("outputs[{i}]"), o))
        .collect::<Result<_, _>>()?;
    if req.change_destination_script.len() > convert::MAX_SCRIPT_BYTES {
        return Err(field("change_destination_script", "too long"));
    }
    Ok(Sweep {
        descriptors,
        outputs,
        change: ScriptBuf::from_bytes(req.change_destination_script),
        feerate: req.feerate_sat_per_1000_weight,
        locktime: req.locktime.map(absolute::LockTime::from_consensus),
    })
}

pub(super) fn spend_spendable_outputs(
    service: &LightningService,
    client: &ClientId,
    node: &LightningNode,
    req: v1::SpendSpendableOutputsRequest,
) -> Result<v1::SpendSpendableOutputsResponse, Status> {
    const OPERATION: &str = "spend-spendable-outputs";
    let started = Instant::now();
    let sweep = sweep_parts(req).map_err(|e| service.invalid(client, node, e))?;
    let descriptors: Vec<&SpendableOutputDescriptor> = sweep.descriptors.iter().collect();
    let allowlist = &node.signer.policy().allowlist;
    let result = node.signer.node().spend_spendable_outputs(
        SweepRequest {
            descriptors: &descriptors,
            outputs: sweep.outputs,
            change_destination_script: sweep.change,
            feerate_sat_per_1000_weight: sweep.feerate,
            locktime: sweep.locktime,
        },
        &|script| allowlist.contains(script),
    );
    match result {
        Ok(tx) => {
            service.account(client, node, OPERATION, AuditOutcome::Signed, None, started);
            Ok(v1::SpendSpendableOutputsResponse {
                transaction: serialize(&tx),
            })
        }
        Err(e @ SweepError::DestinationNotAllowed { .. }) => Err(service.refuse(
            client,
            node,
            OPERATION,
            SWEEP_DESTINATION_TAG,
            e.to_string(),
            started,
        )),
        Err(e) => Err(service.audited(client, node, status::sweep_error(&e))),
    }
}
