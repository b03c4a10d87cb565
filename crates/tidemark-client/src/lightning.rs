//! The lightning service from the client's side: the calls an LDK
//! adapter makes, and the conversions between Tidemark's structured
//! channel requests ([`ChannelRequest`]) and their wire form.
//!
//! A replica never sends a transaction to sign: [`channel_request`] turns
//! the structured request (commitment number, per-commitment point,
//! balances, fee rate, HTLCs, spend parts) into the wire message, and the
//! signer rebuilds what it signs from its stored channel parameters.

use tidemark_lightning::bitcoin::secp256k1::PublicKey;
use tidemark_lightning::bitcoin::secp256k1::ecdsa::Signature;
use tidemark_lightning::bitcoin::{OutPoint, ScriptBuf, TxOut};
use tidemark_lightning::channel::{
    ChannelImport, ChannelKeys, ChannelRequest, ChannelSetup, CommitmentData, HolderCommitment,
    HolderSecret, Htlc, Output, SpendTx,
};
use tidemark_lightning::lightning::ln::script::ShutdownScript;
use tidemark_proto::v1;
use v1::channel_request::Request as Wire;
use zeroize::Zeroizing;

use crate::client::Client;
use crate::error::ClientError;

fn outpoint(o: &OutPoint) -> v1::OutPoint {
    v1::OutPoint {
        txid: o.txid.to_string(),
        vout: o.vout,
    }
}

fn point(p: &PublicKey) -> Vec<u8> {
    p.serialize().to_vec()
}

fn signature(s: &Signature) -> Vec<u8> {
    s.serialize_compact().to_vec()
}

/// The wire form of one side's channel keys.
pub fn channel_keys(k: &ChannelKeys) -> v1::ChannelPublicKeys {
    v1::ChannelPublicKeys {
        funding_pubkey: point(&k.funding_pubkey),
        revocation_basepoint: point(&k.revocation_basepoint),
        payment_point: point(&k.payment_point),
        delayed_payment_basepoint: point(&k.delayed_payment_basepoint),
        htlc_basepoint: point(&k.htlc_basepoint),
    }
}

fn htlc(h: &Htlc) -> v1::Htlc {
    v1::Htlc {
        offered: h.offered,
        amount_msat: h.amount_msat,
        cltv_expiry: h.cltv_expiry,
        payment_hash: h.payment_hash.to_vec(),
    }
}

fn commitment(c: &CommitmentData) -> v1::Commitment {
    v1::Commitment {
        number: c.number.get(),
        per_commitment_point: point(&c.per_commitment_point),
        to_broadcaster_sat: c.to_broadcaster_sat,
        to_countersignatory_sat: c.to_countersignatory_sat,
        feerate_per_kw: c.feerate_per_kw,
        htlcs: c.htlcs.iter().map(htlc).collect(),
    }
}

fn setup(s: &ChannelSetup) -> v1::ChannelSetup {
    v1::ChannelSetup {
        holder: Some(channel_keys(&s.holder)),
        counterparty: Some(channel_keys(&s.counterparty)),
        holder_selected_contest_delay: u32::from(s.holder_selected_contest_delay),
        counterparty_selected_contest_delay: u32::from(s.counterparty_selected_contest_delay),
        funding_outpoint: Some(v1::OutPoint {
            txid: s.funding_outpoint.txid.to_string(),
            vout: u32::from(s.funding_outpoint.vout),
        }),
        channel_type: s.channel_type.clone(),
        channel_value_sat: s.channel_value_sat,
        is_outbound: s.is_outbound,
    }
}

fn holder_commitment(h: &HolderCommitment) -> v1::HolderCommitment {
    v1::HolderCommitment {
        commitment: Some(commitment(&h.commitment)),
        counterparty_signature: signature(&h.counterparty_signature),
        counterparty_htlc_signatures: h
            .counterparty_htlc_signatures
            .iter()
            .map(signature)
            .collect(),
    }
}

fn import(i: &ChannelImport) -> v1::ChannelImport {
    v1::ChannelImport {
        setup: Some(setup(&i.setup)),
        counterparty_signed: i
            .counterparty_signed
            .iter()
            .map(|c| v1::ImportedCommitment {
                commitment: Some(commitment(&c.commitment)),
                signatures: c.signatures.as_ref().map(|s| v1::CommitmentSignatures {
                    signature: signature(&s.signature),
                    htlc_signatures: s.htlc_signatures.iter().map(signature).collect(),
                }),
            })
            .collect(),
        counterparty_revoked: i.counterparty_revoked,
        counterparty_secrets: i
            .counterparty_secrets
            .iter()
            .map(|s| v1::ImportedSecret {
                number: s.number.get(),
                secret: s.secret.to_vec(),
            })
            .collect(),
        holder: Some(holder_commitment(&i.holder)),
        holder_revoked_through: i.holder_revoked_through.map(|n| n.get()),
    }
}

fn tx_out(o: &TxOut) -> v1::TxOut {
    v1::TxOut {
        value_sat: o.value.to_sat(),
        script_pubkey: o.script_pubkey.to_bytes(),
    }
}

fn spend_tx(tx: &SpendTx) -> v1::SpendTx {
    v1::SpendTx {
        version: tx.version,
        lock_time: tx.lock_time,
        inputs: tx
            .inputs
            .iter()
            .map(|i| v1::SpendInput {
                previous_output: Some(outpoint(&i.previous_output)),
                sequence: i.sequence,
            })
            .collect(),
        outputs: tx.outputs.iter().map(tx_out).collect(),
    }
}

/// The wire request of `request` about the channel of `channel_keys_id`
/// of `node`. `None` for a kind of request this version of the wire does
/// not carry (none today; the domain enum is non-exhaustive).
pub fn channel_request(
    node: &str,
    channel_keys_id: &[u8; 32],
    request: &ChannelRequest,
    best_block_height: Option<u32>,
) -> Option<v1::ChannelRequest> {
    let wire = match request {
        ChannelRequest::Setup(s) => Wire::Setup(setup(s)),
        ChannelRequest::Import(i) => Wire::Import(import(i)),
        ChannelRequest::PerCommitmentPoint(n) => Wire::PerCommitmentPoint(n.get()),
        ChannelRequest::ReleaseHolderSecret(n) => Wire::ReleaseHolderSecret(n.get()),
        ChannelRequest::ValidateHolderCommitment(h) => {
            Wire::ValidateHolderCommitment(holder_commitment(h))
        }
        ChannelRequest::ValidateCounterpartyRevocation { number, secret } => {
            Wire::ValidateCounterpartyRevocation(v1::CounterpartyRevocation {
                number: number.get(),
                per_commitment_secret: secret.to_vec(),
            })
        }
        ChannelRequest::SignCounterpartyCommitment(c) => {
            Wire::SignCounterpartyCommitment(commitment(c))
        }
        ChannelRequest::SignHolderCommitment(n) => Wire::SignHolderCommitment(n.get()),
        ChannelRequest::SignHolderHtlc(s) => Wire::SignHolderHtlc(v1::HolderHtlcSpend {
            commitment: s.commitment.get(),
            htlc_output_index: s.htlc_output_index,
            tx: Some(spend_tx(&s.tx)),
            input: s.input,
        }),
        ChannelRequest::SignCounterpartyHtlc(s) => {
            Wire::SignCounterpartyHtlc(v1::CounterpartyHtlcSpend {
                per_commitment_point: point(&s.per_commitment_point),
                htlc: Some(htlc(&s.htlc)),
                tx: Some(spend_tx(&s.tx)),
                input: s.input,
                amount_sat: s.amount_sat,
            })
        }
        ChannelRequest::SignJustice(s) => Wire::SignJustice(v1::JusticeSpend {
            commitment: s.commitment.map(|n| n.get()),
            per_commitment_secret: s.per_commitment_secret.to_vec(),
            htlc: s.htlc.as_ref().map(htlc),
            tx: Some(spend_tx(&s.tx)),
            input: s.input,
            amount_sat: s.amount_sat,
        }),
        ChannelRequest::SignHolderAnchor(s) => Wire::SignHolderAnchor(v1::AnchorSpend {
            tx: Some(spend_tx(&s.tx)),
            input: s.input,
        }),
        ChannelRequest::SignClosing(c) => Wire::SignClosing(v1::ClosingProposal {
            to_holder_sat: c.to_holder_sat,
            to_counterparty_sat: c.to_counterparty_sat,
            holder_script: c.holder_script.to_bytes(),
            counterparty_script: c.counterparty_script.to_bytes(),
        }),
        ChannelRequest::SignChannelAnnouncement(a) => {
            Wire::SignChannelAnnouncement(v1::ChannelAnnouncement {
                features: a.features.clone(),
                chain_hash: a.chain_hash.to_vec(),
                short_channel_id: a.short_channel_id,
                node_id_1: point(&a.node_id_1),
                node_id_2: point(&a.node_id_2),
                bitcoin_key_1: point(&a.bitcoin_key_1),
                bitcoin_key_2: point(&a.bitcoin_key_2),
                excess_data: a.excess_data.clone(),
            })
        }
        _ => return None,
    };
    Some(v1::ChannelRequest {
        node: node.to_owned(),
        channel_keys_id: channel_keys_id.to_vec(),
        best_block_height,
        request: Some(wire),
    })
}

/// What the signer answered for a channel request, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelAnswer {
    /// True for an identical repeat of a decided request (the stored
    /// answer, byte for byte).
    pub replayed: bool,
    /// The output.
    pub output: Output,
    /// Downgraded business rules that failed, as `(tag, detail)`.
    pub warnings: Vec<(String, String)>,
}

fn malformed(what: &str) -> ClientError {
    ClientError::Other {
        code: tonic::Code::Internal,
        message: format!("the signer answered a malformed {what}"),
    }
}

fn decode_point(bytes: &[u8]) -> Result<PublicKey, ClientError> {
    PublicKey::from_slice(bytes).map_err(|_| malformed("point"))
}

fn decode_signature(bytes: &[u8]) -> Result<Signature, ClientError> {
    Signature::from_compact(bytes).map_err(|_| malformed("signature"))
}

/// The node's scripts, as [`Client::node_scripts`] returns them.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeScripts {
    /// The script claimable balances are swept to.
    pub destination_script: ScriptBuf,
    /// The cooperative-close script.
    pub shutdown_script: ShutdownScript,
}

impl std::fmt::Debug for NodeScripts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `ShutdownScript` has no `Debug`; its `Display` is the script.
        f.debug_struct("NodeScripts")
            .field("destination_script", &self.destination_script)
            .field("shutdown_script", &format_args!("{}", self.shutdown_script))
            .finish()
    }
}

/// The decoded answer of a `ChannelResponse`.
pub fn channel_answer(response: v1::ChannelResponse) -> Result<ChannelAnswer, ClientError> {
    use v1::channel_response::Output as W;
    let replayed = match v1::ChannelOutcome::try_from(response.outcome) {
        Ok(v1::ChannelOutcome::Done) => false,
        Ok(v1::ChannelOutcome::Replayed) => true,
        _ => return Err(malformed("outcome")),
    };
    let output = match response.output.ok_or_else(|| malformed("output"))? {
        W::Acknowledged(_) => Output::Done,
        W::PerCommitmentPoint(p) => Output::PerCommitmentPoint(decode_point(&p)?),
        W::HolderSecret(s) => {
            let secret: [u8; 32] = s.as_slice().try_into().map_err(|_| malformed("secret"))?;
            Output::HolderSecret(HolderSecret(Zeroizing::new(secret)))
        }
        W::Commitment(c) => Output::Commitment {
            signature: decode_signature(&c.signature)?,
            htlc_signatures: c
                .htlc_signatures
                .iter()
                .map(|s| decode_signature(s))
                .collect::<Result<_, _>>()?,
        },
        W::Signature(s) => Output::Signature(decode_signature(&s)?),
    };
    Ok(ChannelAnswer {
        replayed,
        output,
        warnings: response
            .warnings
            .into_iter()
            .map(|w| (w.tag, w.detail))
            .collect(),
    })
}

impl Client {
    /// A new channel keys id from the signer's durable counter
    /// (`SignerProvider::generate_channel_keys_id`).
    pub async fn issue_channel_keys_id(
        &self,
        node: &str,
        user_channel_id: u128,
    ) -> Result<[u8; 32], ClientError> {
        let r = self.request(v1::IssueChannelKeysIdRequest {
            node: node.to_owned(),
            user_channel_id: user_channel_id.to_be_bytes().to_vec(),
        });
        let id = self
            .lightning_client()
            .issue_channel_keys_id(r)
            .await?
            .into_inner()
            .channel_keys_id;
        id.as_slice()
            .try_into()
            .map_err(|_| malformed("channel keys id"))
    }

    /// The holder's channel public keys of `channel_keys_id`
    /// (`ChannelSigner::pubkeys`).
    pub async fn channel_public_keys(
        &self,
        node: &str,
        channel_keys_id: &[u8; 32],
    ) -> Result<ChannelKeys, ClientError> {
        let r = self.request(v1::GetChannelPublicKeysRequest {
            node: node.to_owned(),
            channel_keys_id: channel_keys_id.to_vec(),
        });
        let keys = self
            .lightning_client()
            .get_channel_public_keys(r)
            .await?
            .into_inner()
            .keys
            .ok_or_else(|| malformed("channel keys"))?;
        Ok(ChannelKeys {
            funding_pubkey: decode_point(&keys.funding_pubkey)?,
            revocation_basepoint: decode_point(&keys.revocation_basepoint)?,
            payment_point: decode_point(&keys.payment_point)?,
            delayed_payment_basepoint: decode_point(&keys.delayed_payment_basepoint)?,
            htlc_basepoint: decode_point(&keys.htlc_basepoint)?,
        })
    }

    /// One channel operation, as a wire request. A refusal is
    /// [`ClientError::Refused`] whose mark carries the channel's numbers
    /// (`counterparty_signed`, `counterparty_revoked`, `holder_validated`,
    /// `holder_revoked_through`, `closed`).
    pub async fn channel(
        &self,
        request: v1::ChannelRequest,
    ) -> Result<v1::ChannelResponse, ClientError> {
        let r = self.request(request);
        Ok(self.lightning_client().channel(r).await?.into_inner())
    }

    /// One structured channel operation: converted to the wire, sent, and
    /// the answer decoded.
    pub async fn channel_call(
        &self,
        node: &str,
        channel_keys_id: &[u8; 32],
        request: &ChannelRequest,
        best_block_height: Option<u32>,
    ) -> Result<ChannelAnswer, ClientError> {
        let wire = channel_request(node, channel_keys_id, request, best_block_height).ok_or_else(
            || {
                ClientError::InvalidArgument(format!(
                    "the wire carries no {} request",
                    request.kind()
                ))
            },
        )?;
        channel_answer(self.channel(wire).await?)
    }

    /// The node id (`NodeSigner::get_node_id`).
    pub async fn node_id(&self, node: &str) -> Result<PublicKey, ClientError> {
        let r = self.request(v1::GetNodeIdRequest {
            node: node.to_owned(),
        });
        decode_point(
            &self
                .lightning_client()
                .get_node_id(r)
                .await?
                .into_inner()
                .node_id,
        )
    }

    /// The node's destination and shutdown scripts
    /// (`SignerProvider::get_destination_script`,
    /// `SignerProvider::get_shutdown_scriptpubkey`).
    pub async fn node_scripts(&self, node: &str) -> Result<NodeScripts, ClientError> {
        let r = self.request(v1::GetNodeScriptsRequest {
            node: node.to_owned(),
        });
        let response = self
            .lightning_client()
            .get_node_scripts(r)
            .await?
            .into_inner();
        let shutdown_script =
            ShutdownScript::try_from(ScriptBuf::from_bytes(response.shutdown_script))
                .map_err(|_| malformed("shutdown script"))?;
        Ok(NodeScripts {
            destination_script: ScriptBuf::from_bytes(response.destination_script),
            shutdown_script,
        })
    }

    /// ECDH with the node secret (`NodeSigner::ecdh`).
    pub async fn ecdh(&self, request: v1::EcdhRequest) -> Result<[u8; 32], ClientError> {
        let r = self.request(request);
        let secret = self
            .lightning_client()
            .ecdh(r)
            .await?
            .into_inner()
            .shared_secret;
        secret
            .as_slice()
            .try_into()
            .map_err(|_| malformed("shared secret"))
    }

    /// Signs a BOLT 11 invoice (`NodeSigner::sign_invoice`).
    pub async fn sign_invoice(
        &self,
        request: v1::SignInvoiceRequest,
    ) -> Result<v1::SignInvoiceResponse, ClientError> {
        let r = self.request(request);
        Ok(self.lightning_client().sign_invoice(r).await?.into_inner())
    }

    /// Signs a BOLT 12 invoice (`NodeSigner::sign_bolt12_invoice`).
    pub async fn sign_bolt12_invoice(
        &self,
        request: v1::SignBolt12InvoiceRequest,
    ) -> Result<v1::SignBolt12InvoiceResponse, ClientError> {
        let r = self.request(request);
        Ok(self
            .lightning_client()
            .sign_bolt12_invoice(r)
            .await?
            .into_inner())
    }

    /// Signs a gossip message (`NodeSigner::sign_gossip_message`).
    pub async fn sign_gossip_message(
        &self,
        request: v1::SignGossipMessageRequest,
    ) -> Result<Signature, ClientError> {
        let r = self.request(request);
        decode_signature(
            &self
                .lightning_client()
                .sign_gossip_message(r)
                .await?
                .into_inner()
                .signature,
        )
    }

    /// Signs a message (`NodeSigner::sign_message`): zbase32.
    pub async fn sign_message(&self, node: &str, message: &[u8]) -> Result<String, ClientError> {
        let r = self.request(v1::SignMessageRequest {
            node: node.to_owned(),
            message: message.to_vec(),
        });
        Ok(self
            .lightning_client()
            .sign_message(r)
            .await?
            .into_inner()
            .signature)
    }

    /// The inbound payment key material (`NodeSigner::get_expanded_key`;
    /// `ExpandedKey::new` of it). A node secret.
    pub async fn expanded_key_material(
        &self,
        node: &str,
    ) -> Result<Zeroizing<[u8; 32]>, ClientError> {
        let r = self.request(v1::GetExpandedKeyRequest {
            node: node.to_owned(),
        });
        let key = Zeroizing::new(
            self.lightning_client()
                .get_expanded_key(r)
                .await?
                .into_inner()
                .key_material,
        );
        secret32(&key)
    }

    /// The peer storage key (`NodeSigner::get_peer_storage_key`). A node
    /// secret.
    pub async fn peer_storage_key(&self, node: &str) -> Result<Zeroizing<[u8; 32]>, ClientError> {
        let r = self.request(v1::GetPeerStorageKeyRequest {
            node: node.to_owned(),
        });
        let key = Zeroizing::new(
            self.lightning_client()
                .get_peer_storage_key(r)
                .await?
                .into_inner()
                .key,
        );
        secret32(&key)
    }

    /// The receive auth key (`NodeSigner::get_receive_auth_key`). A node
    /// secret.
    pub async fn receive_auth_key(&self, node: &str) -> Result<Zeroizing<[u8; 32]>, ClientError> {
        let r = self.request(v1::GetReceiveAuthKeyRequest {
            node: node.to_owned(),
        });
        let key = Zeroizing::new(
            self.lightning_client()
                .get_receive_auth_key(r)
                .await?
                .into_inner()
                .key,
        );
        secret32(&key)
    }

    /// Sweeps spendable outputs (`OutputSpender::spend_spendable_outputs`):
    /// the signed transaction, consensus-encoded.
    pub async fn spend_spendable_outputs(
        &self,
        request: v1::SpendSpendableOutputsRequest,
    ) -> Result<Vec<u8>, ClientError> {
        let r = self.request(request);
        Ok(self
            .lightning_client()
            .spend_spendable_outputs(r)
            .await?
            .into_inner()
            .transaction)
    }
}

fn secret32(bytes: &[u8]) -> Result<Zeroizing<[u8; 32]>, ClientError> {
    let array: [u8; 32] = bytes.try_into().map_err(|_| malformed("key"))?;
    Ok(Zeroizing::new(array))
}
