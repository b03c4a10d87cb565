//! Transaction plumbing for the BOLT 3 checks: parsing the appendices'
//! hex, reading their witnesses, assembling funding witnesses, HTLC
//! sighashes, and Bitcoin Core's verdict on a spend.

use bitcoin::consensus::encode::{deserialize, serialize};
use bitcoin::hashes::Hash as _;
use bitcoin::secp256k1::Message;
use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{Amount, Script, Transaction, TxOut, Witness};
use bitcoinconsensus::VERIFY_ALL_PRE_TAPROOT;
use lightning::ln::chan_utils::HTLCOutputInCommitment;

pub(crate) fn transaction(hex: &str) -> Transaction {
    deserialize(&hex::decode(hex).unwrap()).unwrap()
}

pub(crate) fn tx_hex(tx: &Transaction) -> String {
    hex::encode(serialize(tx))
}

pub(crate) fn der_hex(sig: &Signature) -> String {
    hex::encode(sig.serialize_der())
}

/// `tx` without its witnesses: what a signer builds before signing.
pub(crate) fn unsigned(tx: &Transaction) -> Transaction {
    let mut tx = tx.clone();
    for input in &mut tx.input {
        input.witness = Witness::new();
    }
    tx
}

/// What `grind_signatures` grinds for: the first byte of R below 0x80,
/// so that the DER encoding is at most 71 bytes.
pub(crate) fn is_low_r(sig: &Signature) -> bool {
    sig.serialize_compact()[0] < 0x80
}

/// Witness element `index` of the first input, parsed as a signature
/// followed by its sighash byte, which must be `sighash_type`.
pub(crate) fn witness_signature(
    tx: &Transaction,
    index: usize,
    sighash_type: EcdsaSighashType,
    what: &str,
) -> Signature {
    let element = tx.input[0].witness.nth(index).unwrap();
    let sig = bitcoin::ecdsa::Signature::from_slice(element).unwrap();
    assert_eq!(sig.sighash_type, sighash_type, "{what}: sighash type");
    sig.signature
}

/// `tx` with the 2-of-2 funding witness (`0 <sig1> <sig2> <script>`): the
/// signature for the lesser funding pubkey first.
pub(crate) fn with_funding_witness(
    tx: &Transaction,
    local_sig: &Signature,
    remote_sig: &Signature,
    local_first: bool,
    funding_script: &Script,
) -> Transaction {
    let mut tx = tx.clone();
    let (first, second) = if local_first {
        (local_sig, remote_sig)
    } else {
        (remote_sig, local_sig)
    };
    let witness = &mut tx.input[0].witness;
    witness.push(Vec::new());
    witness.push_ecdsa_signature(&bitcoin::ecdsa::Signature::sighash_all(*first));
    witness.push_ecdsa_signature(&bitcoin::ecdsa::Signature::sighash_all(*second));
    witness.push(funding_script.as_bytes());
    tx
}

/// The sighash of input 0 of `htlc_tx`, spending `htlc`'s P2WSH output.
pub(crate) fn htlc_sighash(
    htlc_tx: &Transaction,
    script: &Script,
    htlc: &HTLCOutputInCommitment,
    sighash_type: EcdsaSighashType,
) -> Message {
    let hash = SighashCache::new(htlc_tx)
        .p2wsh_signature_hash(0, script, htlc.to_bitcoin_amount(), sighash_type)
        .unwrap();
    Message::from_digest(hash.to_byte_array())
}

/// Bitcoin Core's script interpreter (libbitcoinconsensus, every
/// pre-taproot flag) accepts input 0 of `tx` as a spend of `spent`, and
/// refuses the same transaction with one output value changed, so the
/// check can fail.
pub(crate) fn assert_spends(tx: &Transaction, spent: &TxOut, what: &str) {
    let verify = |tx: &Transaction| {
        bitcoinconsensus::verify_with_flags(
            spent.script_pubkey.as_bytes(),
            spent.value.to_sat(),
            &serialize(tx),
            None,
            0,
            VERIFY_ALL_PRE_TAPROOT,
        )
    };
    if let Err(e) = verify(tx) {
        panic!("{what}: libbitcoinconsensus refuses the spend: {e:?}");
    }
    let mut tampered = tx.clone();
    tampered.output[0].value += Amount::from_sat(1);
    assert!(
        verify(&tampered).is_err(),
        "{what}: a tampered copy verifies"
    );
}
