//! Decoding the node-level inputs a remote replica sends in LDK's own
//! encodings: BOLT 11 invoice parts, BOLT 12 invoice TLV streams, BOLT 7
//! gossip messages and LDK's `SpendableOutputDescriptor`s.
//!
//! These are messages, not transactions: each decodes into LDK's
//! structured type, which the node operations then check and sign. Every
//! decoder takes untrusted bytes, never panics, and refuses trailing bytes
//! or encodings that do not re-encode to the same bytes (so the hash the
//! signer signs is the hash of what the caller sent).

use bech32::Fe32;
use lightning::bolt11_invoice::RawBolt11Invoice;
use lightning::ln::msgs::{
    UnsignedChannelAnnouncement, UnsignedChannelUpdate, UnsignedGossipMessage,
    UnsignedNodeAnnouncement,
};
use lightning::offers::invoice::UnsignedBolt12Invoice;
use lightning::sign::SpendableOutputDescriptor;
use lightning::util::ser::{LengthReadable, Readable, Writeable};

/// The most bytes any one input may have (a gossip message or an invoice
/// is at most 65 535 bytes on the wire).
pub const MAX_INPUT_BYTES: usize = 65_535;

/// Why an input does not decode. Nothing was signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The input is longer than [`MAX_INPUT_BYTES`].
    #[error("{what} is {len} bytes, more than {MAX_INPUT_BYTES}")]
    TooLong {
        /// What was decoded.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// The input does not decode as `what`.
    #[error("{what} does not decode: {reason}")]
    Malformed {
        /// What was decoded.
        what: &'static str,
        /// The decoder's reason.
        reason: String,
    },
    /// The input decodes but leaves bytes unread, or does not re-encode to
    /// the same bytes.
    #[error("{what} is not in its canonical encoding")]
    NotCanonical {
        /// What was decoded.
        what: &'static str,
    },
}

fn malformed(what: &'static str, reason: impl std::fmt::Debug) -> WireError {
    WireError::Malformed {
        what,
        reason: format!("{reason:?}"),
    }
}

fn bounded(what: &'static str, len: usize) -> Result<(), WireError> {
    if len > MAX_INPUT_BYTES {
        return Err(WireError::TooLong { what, len });
    }
    Ok(())
}

/// A BOLT 11 invoice without its signature, from its human-readable part
/// (e.g. `lnbcrt10u`) and its data part as 5-bit values, one per byte:
/// the two halves of LDK's `RawBolt11Invoice::to_raw`, decoded with
/// `RawBolt11Invoice::from_raw`.
pub fn raw_invoice(hrp: &str, data: &[u8]) -> Result<RawBolt11Invoice, WireError> {
    const WHAT: &str = "the bolt 11 invoice";
    bounded(WHAT, hrp.len().saturating_add(data.len()))?;
    let words = data
        .iter()
        .map(|b| Fe32::try_from(*b))
        .collect::<Result<Vec<Fe32>, _>>()
        .map_err(|e| malformed("the invoice's data part", e))?;
    let invoice = RawBolt11Invoice::from_raw(hrp, &words).map_err(|e| malformed(WHAT, e))?;
    // The signature covers the re-encoded parts: they must be the input.
    let (hrp_again, words_again) = invoice.to_raw();
    if hrp_again != hrp || words_again != words {
        return Err(WireError::NotCanonical { what: WHAT });
    }
    Ok(invoice)
}

/// An unsigned BOLT 12 invoice from its TLV stream.
pub fn bolt12_invoice(bytes: &[u8]) -> Result<UnsignedBolt12Invoice, WireError> {
    const WHAT: &str = "the bolt 12 invoice";
    bounded(WHAT, bytes.len())?;
    UnsignedBolt12Invoice::try_from(bytes.to_vec()).map_err(|e| malformed(WHAT, e))
}

/// A gossip message to sign, decoded (own the message; lend it with
/// [`GossipMessage::as_unsigned`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GossipMessage {
    /// A `node_announcement`.
    NodeAnnouncement(UnsignedNodeAnnouncement),
    /// A `channel_announcement`.
    ChannelAnnouncement(UnsignedChannelAnnouncement),
    /// A `channel_update`.
    ChannelUpdate(UnsignedChannelUpdate),
}

impl GossipMessage {
    /// The form `NodeKeys::sign_gossip_message` takes.
    pub fn as_unsigned(&self) -> UnsignedGossipMessage<'_> {
        match self {
            GossipMessage::NodeAnnouncement(m) => UnsignedGossipMessage::NodeAnnouncement(m),
            GossipMessage::ChannelAnnouncement(m) => UnsignedGossipMessage::ChannelAnnouncement(m),
            GossipMessage::ChannelUpdate(m) => UnsignedGossipMessage::ChannelUpdate(m),
        }
    }
}

fn gossip<T: LengthReadable + Writeable>(what: &'static str, bytes: &[u8]) -> Result<T, WireError> {
    bounded(what, bytes.len())?;
    let mut reader = bytes;
    let message = T::read_from_fixed_length_buffer(&mut reader).map_err(|e| malformed(what, e))?;
    // Fields after the known ones are kept as excess data, so a decoded
    // message re-encodes to the input unless a field was not minimal.
    if message.encode() != bytes {
        return Err(WireError::NotCanonical { what });
    }
    Ok(message)
}

/// A `node_announcement` without its signature, in BOLT 7 wire form.
pub fn node_announcement(bytes: &[u8]) -> Result<GossipMessage, WireError> {
    gossip("the node announcement", bytes).map(GossipMessage::NodeAnnouncement)
}

/// A `channel_announcement` without its signatures, in BOLT 7 wire form.
pub fn channel_announcement(bytes: &[u8]) -> Result<GossipMessage, WireError> {
    gossip("the channel announcement", bytes).map(GossipMessage::ChannelAnnouncement)
}

/// A `channel_update` without its signature, in BOLT 7 wire form.
pub fn channel_update(bytes: &[u8]) -> Result<GossipMessage, WireError> {
    gossip("the channel update", bytes).map(GossipMessage::ChannelUpdate)
}

/// A spendable output descriptor as LDK's `Writeable` writes it.
pub fn spendable_output(bytes: &[u8]) -> Result<SpendableOutputDescriptor, WireError> {
    const WHAT: &str = "the spendable output descriptor";
    bounded(WHAT, bytes.len())?;
    let mut reader = bytes;
    let descriptor =
        SpendableOutputDescriptor::read(&mut reader).map_err(|e| malformed(WHAT, e))?;
    if !reader.is_empty() {
        return Err(WireError::NotCanonical { what: WHAT });
    }
    Ok(descriptor)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn no_bytes_make_a_decoder_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), hrp in "[a-z0-9]{0,12}") {
            let _ = raw_invoice(&hrp, &bytes);
            let _ = raw_invoice("lnbcrt", &bytes.iter().map(|b| b & 31).collect::<Vec<u8>>());
            let _ = bolt12_invoice(&bytes);
            let _ = node_announcement(&bytes);
            let _ = channel_announcement(&bytes);
            let _ = channel_update(&bytes);
            let _ = spendable_output(&bytes);
        }
    }

    #[test]
    fn oversized_inputs_are_refused_before_decoding() {
        let big = vec![0u8; MAX_INPUT_BYTES + 1];
        assert!(matches!(
            spendable_output(&big),
            Err(WireError::TooLong { .. })
        ));
        assert!(matches!(
            channel_update(&big),
            Err(WireError::TooLong { .. })
        ));
    }
}
