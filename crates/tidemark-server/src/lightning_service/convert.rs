//! Wire to domain and back for the lightning service.
//!
//! Every field is checked here, before the pipeline sees the request:
//! lengths, points on the curve, signatures in compact form, commitment
//! numbers within 2^48 - 1, `u16` fields within range, a oneof that is
//! set. A failure names the field (`request.sign_counterparty_commitment.
//! htlcs[2].payment_hash`) and becomes `INVALID_ARGUMENT`; nothing here
//! panics, whatever the bytes (see the property tests).

use std::fmt;
use std::str::FromStr as _;

use tidemark_lightning::bitcoin::secp256k1::PublicKey;
use tidemark_lightning::bitcoin::secp256k1::ecdsa::Signature;
use tidemark_lightning::bitcoin::{Amount, OutPoint, ScriptBuf, TxOut, Txid};
use tidemark_lightning::channel::{
    AnchorSpend, Announcement, ChannelImport, ChannelKeys, ChannelRequest, ChannelSetup,
    ClosingProposal, CommitmentData, CommitmentNumber, CommitmentSignatures, CounterpartyHtlcSpend,
    FundingOutpoint, HolderCommitment, HolderHtlcSpend, Htlc, ImportedCommitment, ImportedSecret,
    JusticeSpend, Output, SpendInput, SpendTx, Warning,
};
use tidemark_lightning::lightning::ln::chan_utils::ChannelPublicKeys;
use tidemark_proto::v1;
use v1::channel_request::Request as Wire;

/// The most HTLCs one commitment may carry on the wire (BOLT 2 allows 483
/// per direction); the policy's own limit applies after.
pub(crate) const MAX_WIRE_HTLCS: usize = 2 * 483;
/// The most inputs or outputs of a spend on the wire.
pub(crate) const MAX_WIRE_TX_PARTS: usize = 1_000;
/// The most counterparty commitments an import carries (the policy allows
/// two; more is refused by it, not here).
pub(crate) const MAX_WIRE_IMPORTED_COMMITMENTS: usize = 4;
/// The most revocation secrets an import carries (the BOLT 3 compact
/// store holds at most 49).
pub(crate) const MAX_WIRE_IMPORTED_SECRETS: usize = 49;
/// The longest script accepted (Bitcoin's consensus limit).
pub(crate) const MAX_SCRIPT_BYTES: usize = 10_000;

/// A field that is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    /// The field, dotted from the request.
    pub(crate) field: String,
    /// What is wrong with it.
    pub(crate) message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

type Result<T> = std::result::Result<T, FieldError>;

fn error<T>(field: &str, message: impl Into<String>) -> Result<T> {
    Err(FieldError {
        field: field.to_owned(),
        message: message.into(),
    })
}

fn at(field: &str, sub: &str) -> String {
    format!("{field}.{sub}")
}

fn required<T>(field: &str, value: Option<T>) -> Result<T> {
    value.map_or_else(|| error(field, "missing"), Ok)
}

/// A 32-byte array.
pub(crate) fn bytes32(field: &str, bytes: &[u8]) -> Result<[u8; 32]> {
    bytes
        .try_into()
        .or_else(|_| error(field, format!("must be 32 bytes, got {}", bytes.len())))
}

/// A compressed secp256k1 point.
pub(crate) fn point(field: &str, bytes: &[u8]) -> Result<PublicKey> {
    if bytes.len() != 33 {
        return error(
            field,
            format!(
                "must be a 33-byte compressed point, got {} bytes",
                bytes.len()
            ),
        );
    }
    PublicKey::from_slice(bytes).or_else(|e| error(field, e.to_string()))
}

/// A 64-byte compact ECDSA signature.
pub(crate) fn signature(field: &str, bytes: &[u8]) -> Result<Signature> {
    if bytes.len() != 64 {
        return error(
            field,
            format!(
                "must be a 64-byte compact signature, got {} bytes",
                bytes.len()
            ),
        );
    }
    Signature::from_compact(bytes).or_else(|e| error(field, e.to_string()))
}

fn number(field: &str, n: u64) -> Result<CommitmentNumber> {
    CommitmentNumber::new(n).map_or_else(
        || error(field, format!("commitment number {n} is above 2^48 - 1")),
        Ok,
    )
}

fn u16_of(field: &str, n: u32) -> Result<u16> {
    u16::try_from(n).or_else(|_| error(field, format!("{n} is above 65535")))
}

fn txid(field: &str, text: &str) -> Result<Txid> {
    Txid::from_str(text).or_else(|e| error(field, format!("{text:?} is not a txid: {e}")))
}

fn outpoint(field: &str, o: Option<v1::OutPoint>) -> Result<OutPoint> {
    let o = required(field, o)?;
    Ok(OutPoint {
        txid: txid(&at(field, "txid"), &o.txid)?,
        vout: o.vout,
    })
}

fn script(field: &str, bytes: Vec<u8>) -> Result<ScriptBuf> {
    if bytes.len() > MAX_SCRIPT_BYTES {
        return error(
            field,
            format!("{} bytes is above {MAX_SCRIPT_BYTES}", bytes.len()),
        );
    }
    Ok(ScriptBuf::from_bytes(bytes))
}

/// A transaction output.
pub(crate) fn tx_out(field: &str, o: v1::TxOut) -> Result<TxOut> {
    Ok(TxOut {
        value: Amount::from_sat(o.value_sat),
        script_pubkey: script(&at(field, "script_pubkey"), o.script_pubkey)?,
    })
}

fn bounded<T>(field: &str, items: Vec<T>, max: usize) -> Result<Vec<T>> {
    if items.len() > max {
        return error(field, format!("{} entries is above {max}", items.len()));
    }
    Ok(items)
}

/// Channel public keys from the wire.
pub(crate) fn channel_keys(field: &str, k: Option<v1::ChannelPublicKeys>) -> Result<ChannelKeys> {
    let k = required(field, k)?;
    Ok(ChannelKeys {
        funding_pubkey: point(&at(field, "funding_pubkey"), &k.funding_pubkey)?,
        revocation_basepoint: point(&at(field, "revocation_basepoint"), &k.revocation_basepoint)?,
        payment_point: point(&at(field, "payment_point"), &k.payment_point)?,
        delayed_payment_basepoint: point(
            &at(field, "delayed_payment_basepoint"),
            &k.delayed_payment_basepoint,
        )?,
        htlc_basepoint: point(&at(field, "htlc_basepoint"), &k.htlc_basepoint)?,
    })
}

/// Channel public keys to the wire.
pub(crate) fn channel_keys_to_proto(keys: &ChannelPublicKeys) -> v1::ChannelPublicKeys {
    let k = ChannelKeys::from_ldk(keys);
    v1::ChannelPublicKeys {
        funding_pubkey: k.funding_pubkey.serialize().to_vec(),
        revocation_basepoint: k.revocation_basepoint.serialize().to_vec(),
        payment_point: k.payment_point.serialize().to_vec(),
        delayed_payment_basepoint: k.delayed_payment_basepoint.serialize().to_vec(),
        htlc_basepoint: k.htlc_basepoint.serialize().to_vec(),
    }
}

fn setup(field: &str, channel_keys_id: [u8; 32], s: v1::ChannelSetup) -> Result<ChannelSetup> {
    let funding = outpoint(&at(field, "funding_outpoint"), s.funding_outpoint)?;
    Ok(ChannelSetup {
        channel_keys_id,
        holder: channel_keys(&at(field, "holder"), s.holder)?,
        counterparty: channel_keys(&at(field, "counterparty"), s.counterparty)?,
        holder_selected_contest_delay: u16_of(
            &at(field, "holder_selected_contest_delay"),
            s.holder_selected_contest_delay,
        )?,
        counterparty_selected_contest_delay: u16_of(
            &at(field, "counterparty_selected_contest_delay"),
            s.counterparty_selected_contest_delay,
        )?,
        funding_outpoint: FundingOutpoint {
            txid: funding.txid,
            vout: u16_of(&at(field, "funding_outpoint.vout"), funding.vout)?,
        },
        channel_type: bounded(&at(field, "channel_type"), s.channel_type, 64)?,
        channel_value_sat: s.channel_value_sat,
        is_outbound: s.is_outbound,
    })
}

fn htlc(field: &str, h: Option<v1::Htlc>) -> Result<Htlc> {
    let h = required(field, h)?;
    Ok(Htlc {
        offered: h.offered,
        amount_msat: h.amount_msat,
        cltv_expiry: h.cltv_expiry,
        payment_hash: bytes32(&at(field, "payment_hash"), &h.payment_hash)?,
    })
}

fn commitment(field: &str, c: Option<v1::Commitment>) -> Result<CommitmentData> {
    let c = required(field, c)?;
    let htlcs = bounded(&at(field, "htlcs"), c.htlcs, MAX_WIRE_HTLCS)?;
    Ok(CommitmentData {
        number: number(&at(field, "number"), c.number)?,
        per_commitment_point: point(&at(field, "per_commitment_point"), &c.per_commitment_point)?,
        to_broadcaster_sat: c.to_broadcaster_sat,
        to_countersignatory_sat: c.to_countersignatory_sat,
        feerate_per_kw: c.feerate_per_kw,
        htlcs: htlcs
            .into_iter()
            .enumerate()
            .map(|(i, h)| htlc(&format!("{field}.htlcs[{i}]"), Some(h)))
            .collect::<Result<_>>()?,
    })
}

fn holder_commitment(field: &str, h: v1::HolderCommitment) -> Result<HolderCommitment> {
    let sigs = bounded(
        &at(field, "counterparty_htlc_signatures"),
        h.counterparty_htlc_signatures,
        MAX_WIRE_HTLCS,
    )?;
    Ok(HolderCommitment {
        commitment: commitment(&at(field, "commitment"), h.commitment)?,
        counterparty_signature: signature(
            &at(field, "counterparty_signature"),
            &h.counterparty_signature,
        )?,
        counterparty_htlc_signatures: sigs
            .iter()
            .enumerate()
            .map(|(i, s)| signature(&format!("{field}.counterparty_htlc_signatures[{i}]"), s))
            .collect::<Result<_>>()?,
    })
}

fn signatures(field: &str, s: v1::CommitmentSignatures) -> Result<CommitmentSignatures> {
    let htlc = bounded(
        &at(field, "htlc_signatures"),
        s.htlc_signatures,
        MAX_WIRE_HTLCS,
    )?;
    Ok(CommitmentSignatures {
        signature: signature(&at(field, "signature"), &s.signature)?,
        htlc_signatures: htlc
            .iter()
            .enumerate()
            .map(|(i, s)| signature(&format!("{field}.htlc_signatures[{i}]"), s))
            .collect::<Result<_>>()?,
    })
}

fn import(field: &str, channel_keys_id: [u8; 32], i: v1::ChannelImport) -> Result<ChannelImport> {
    let signed = bounded(
        &at(field, "counterparty_signed"),
        i.counterparty_signed,
        MAX_WIRE_IMPORTED_COMMITMENTS,
    )?;
    let secrets = bounded(
        &at(field, "counterparty_secrets"),
        i.counterparty_secrets,
        MAX_WIRE_IMPORTED_SECRETS,
    )?;
    Ok(ChannelImport {
        setup: setup(
            &at(field, "setup"),
            channel_keys_id,
            required(&at(field, "setup"), i.setup)?,
        )?,
        counterparty_signed: signed
            .into_iter()
            .enumerate()
            .map(|(k, c)| {
                let f = format!("{field}.counterparty_signed[{k}]");
                Ok(ImportedCommitment {
                    commitment: commitment(&at(&f, "commitment"), c.commitment)?,
                    signatures: c
                        .signatures
                        .map(|s| signatures(&at(&f, "signatures"), s))
                        .transpose()?,
                })
            })
            .collect::<Result<_>>()?,
        counterparty_revoked: number(&at(field, "counterparty_revoked"), i.counterparty_revoked)?
            .get(),
        counterparty_secrets: secrets
            .into_iter()
            .enumerate()
            .map(|(k, s)| {
                let f = format!("{field}.counterparty_secrets[{k}]");
                Ok(ImportedSecret {
                    number: number(&at(&f, "number"), s.number)?,
                    secret: bytes32(&at(&f, "secret"), &s.secret)?,
                })
            })
            .collect::<Result<_>>()?,
        holder: holder_commitment(
            &at(field, "holder"),
            required(&at(field, "holder"), i.holder)?,
        )?,
        holder_revoked_through: i
            .holder_revoked_through
            .map(|n| number(&at(field, "holder_revoked_through"), n))
            .transpose()?,
    })
}

fn spend_tx(field: &str, tx: Option<v1::SpendTx>) -> Result<SpendTx> {
    let tx = required(field, tx)?;
    let inputs = bounded(&at(field, "inputs"), tx.inputs, MAX_WIRE_TX_PARTS)?;
    let outputs = bounded(&at(field, "outputs"), tx.outputs, MAX_WIRE_TX_PARTS)?;
    Ok(SpendTx {
        version: tx.version,
        lock_time: tx.lock_time,
        inputs: inputs
            .into_iter()
            .enumerate()
            .map(|(i, input)| {
                Ok(SpendInput {
                    previous_output: outpoint(
                        &format!("{field}.inputs[{i}].previous_output"),
                        input.previous_output,
                    )?,
                    sequence: input.sequence,
                })
            })
            .collect::<Result<_>>()?,
        outputs: outputs
            .into_iter()
            .enumerate()
            .map(|(i, o)| tx_out(&format!("{field}.outputs[{i}]"), o))
            .collect::<Result<_>>()?,
    })
}

fn announcement(field: &str, a: v1::ChannelAnnouncement) -> Result<Announcement> {
    Ok(Announcement {
        features: bounded(&at(field, "features"), a.features, 1024)?,
        chain_hash: bytes32(&at(field, "chain_hash"), &a.chain_hash)?,
        short_channel_id: a.short_channel_id,
        node_id_1: point(&at(field, "node_id_1"), &a.node_id_1)?,
        node_id_2: point(&at(field, "node_id_2"), &a.node_id_2)?,
        bitcoin_key_1: point(&at(field, "bitcoin_key_1"), &a.bitcoin_key_1)?,
        bitcoin_key_2: point(&at(field, "bitcoin_key_2"), &a.bitcoin_key_2)?,
        excess_data: bounded(&at(field, "excess_data"), a.excess_data, 65_535)?,
    })
}

/// A channel request, checked: the channel keys id, the request and the
/// caller's best block height.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChannelCall {
    pub(crate) channel_keys_id: [u8; 32],
    pub(crate) request: ChannelRequest,
    pub(crate) best_block_height: Option<u32>,
}

/// The domain form of a `ChannelRequest` (its `node` is checked by the
/// caller).
pub(crate) fn channel_request(r: v1::ChannelRequest) -> Result<ChannelCall> {
    let channel_keys_id = bytes32("channel_keys_id", &r.channel_keys_id)?;
    let request = match required("request", r.request)? {
        Wire::Setup(s) => {
            ChannelRequest::Setup(Box::new(setup("request.setup", channel_keys_id, s)?))
        }
        Wire::Import(i) => {
            ChannelRequest::Import(Box::new(import("request.import", channel_keys_id, i)?))
        }
        Wire::PerCommitmentPoint(n) => {
            ChannelRequest::PerCommitmentPoint(number("request.per_commitment_point", n)?)
        }
        Wire::ReleaseHolderSecret(n) => {
            ChannelRequest::ReleaseHolderSecret(number("request.release_holder_secret", n)?)
        }
        Wire::ValidateHolderCommitment(h) => ChannelRequest::ValidateHolderCommitment(Box::new(
            holder_commitment("request.validate_holder_commitment", h)?,
        )),
        Wire::ValidateCounterpartyRevocation(r) => {
            const F: &str = "request.validate_counterparty_revocation";
            ChannelRequest::ValidateCounterpartyRevocation {
                number: number(&at(F, "number"), r.number)?,
                secret: bytes32(&at(F, "per_commitment_secret"), &r.per_commitment_secret)?,
            }
        }
        Wire::SignCounterpartyCommitment(c) => ChannelRequest::SignCounterpartyCommitment(
            Box::new(commitment("request.sign_counterparty_commitment", Some(c))?),
        ),
        Wire::SignHolderCommitment(n) => {
            ChannelRequest::SignHolderCommitment(number("request.sign_holder_commitment", n)?)
        }
        Wire::SignHolderHtlc(s) => {
            const F: &str = "request.sign_holder_htlc";
            ChannelRequest::SignHolderHtlc(Box::new(HolderHtlcSpend {
                commitment: number(&at(F, "commitment"), s.commitment)?,
                htlc_output_index: s.htlc_output_index,
                tx: spend_tx(&at(F, "tx"), s.tx)?,
                input: s.input,
            }))
        }
        Wire::SignCounterpartyHtlc(s) => {
            const F: &str = "request.sign_counterparty_htlc";
            ChannelRequest::SignCounterpartyHtlc(Box::new(CounterpartyHtlcSpend {
                per_commitment_point: point(
                    &at(F, "per_commitment_point"),
                    &s.per_commitment_point,
                )?,
                htlc: htlc(&at(F, "htlc"), s.htlc)?,
                tx: spend_tx(&at(F, "tx"), s.tx)?,
                input: s.input,
                amount_sat: s.amount_sat,
            }))
        }
        Wire::SignJustice(s) => {
            const F: &str = "request.sign_justice";
            ChannelRequest::SignJustice(Box::new(JusticeSpend {
                commitment: s
                    .commitment
                    .map(|n| number(&at(F, "commitment"), n))
                    .transpose()?,
                per_commitment_secret: bytes32(
                    &at(F, "per_commitment_secret"),
                    &s.per_commitment_secret,
                )?,
                htlc: s.htlc.map(|h| htlc(&at(F, "htlc"), Some(h))).transpose()?,
                tx: spend_tx(&at(F, "tx"), s.tx)?,
                input: s.input,
                amount_sat: s.amount_sat,
            }))
        }
        Wire::SignHolderAnchor(s) => ChannelRequest::SignHolderAnchor(Box::new(AnchorSpend {
            tx: spend_tx("request.sign_holder_anchor.tx", s.tx)?,
            input: s.input,
        })),
        Wire::SignClosing(c) => {
            const F: &str = "request.sign_closing";
            ChannelRequest::SignClosing(Box::new(ClosingProposal {
                to_holder_sat: c.to_holder_sat,
                to_counterparty_sat: c.to_counterparty_sat,
                holder_script: script(&at(F, "holder_script"), c.holder_script)?,
                counterparty_script: script(&at(F, "counterparty_script"), c.counterparty_script)?,
            }))
        }
        Wire::SignChannelAnnouncement(a) => ChannelRequest::SignChannelAnnouncement(Box::new(
            announcement("request.sign_channel_announcement", a)?,
        )),
    };
    Ok(ChannelCall {
        channel_keys_id,
        request,
        best_block_height: r.best_block_height,
    })
}

/// The wire form of a channel answer.
pub(crate) fn channel_response(
    outcome: v1::ChannelOutcome,
    output: &Output,
    warnings: &[Warning],
) -> v1::ChannelResponse {
    use v1::channel_response::Output as W;
    let output = match output {
        Output::PerCommitmentPoint(p) => W::PerCommitmentPoint(p.serialize().to_vec()),
        Output::HolderSecret(s) => W::HolderSecret(s.0.to_vec()),
        Output::Commitment {
            signature,
            htlc_signatures,
        } => W::Commitment(v1::CommitmentSignatures {
            signature: signature.serialize_compact().to_vec(),
            htlc_signatures: htlc_signatures
                .iter()
                .map(|s| s.serialize_compact().to_vec())
                .collect(),
        }),
        Output::Signature(s) => W::Signature(s.serialize_compact().to_vec()),
        // `Done` and any later kind of acknowledgement.
        _ => W::Acknowledged(v1::Acknowledged {}),
    };
    v1::ChannelResponse {
        outcome: outcome as i32,
        output: Some(output),
        warnings: warnings
            .iter()
            .map(|w| v1::Warning {
                tag: w.tag.to_string(),
                detail: w.detail.clone(),
            })
            .collect(),
    }
}

/// A `u128` from 16 big-endian bytes.
pub(crate) fn user_channel_id(bytes: &[u8]) -> Result<u128> {
    let array: [u8; 16] = bytes.try_into().or_else(|_| {
        error(
            "user_channel_id",
            format!("must be 16 bytes, got {}", bytes.len()),
        )
    })?;
    Ok(u128::from_be_bytes(array))
}
