//! Node-level operations: what LDK's `NodeSigner`, `EntropySource` and
//! `OutputSpender` (lightning 0.2.7) ask of a signer, over [`NodeKeys`].
//!
//! | LDK 0.2.7                              | here                                  |
//! |----------------------------------------|---------------------------------------|
//! | `NodeSigner::get_node_id`              | [`NodeKeys::node_id_for`]             |
//! | `NodeSigner::ecdh`                     | [`NodeKeys::ecdh`]                    |
//! | `NodeSigner::sign_invoice`             | [`NodeKeys::sign_invoice`]            |
//! | `NodeSigner::sign_bolt12_invoice`      | [`NodeKeys::sign_bolt12_invoice`]     |
//! | `NodeSigner::sign_gossip_message`      | [`NodeKeys::sign_gossip_message`]     |
//! | `NodeSigner::sign_message`             | [`NodeKeys::sign_message`]            |
//! | `NodeSigner::get_expanded_key`         | [`NodeKeys::expanded_key`], [`NodeKeys::inbound_payment_key_material`] |
//! | `NodeSigner::get_peer_storage_key`     | [`NodeKeys::peer_storage_key`]        |
//! | `NodeSigner::get_receive_auth_key`     | [`NodeKeys::receive_auth_key`]        |
//! | `EntropySource::get_secure_random_bytes` | [`NodeKeys::secure_random_bytes`]   |
//! | `OutputSpender::spend_spendable_outputs` | [`NodeKeys::spend_spendable_outputs`] |
//!
//! [`wire`] decodes the inputs of these operations from the encodings a
//! remote replica sends (BOLT 11 parts, BOLT 12 TLV, BOLT 7 gossip, LDK's
//! descriptors).
//!
//! In 0.2.7 BOLT 12 *invoices* are signed through the node signer; invoice
//! requests and invoices for offers built with derived signing keys are
//! signed by LDK itself with keys derived from the expanded key, so they
//! never reach a signer.
//!
//! # Invariants
//!
//! - Results are byte-identical to `KeysManager`'s for the same seed where
//!   `KeysManager` is deterministic (node id, ECDH, BOLT 11 invoice, gossip
//!   and message signatures: RFC 6979 nonces, no grinding); BOLT 12
//!   signatures use fresh auxiliary randomness in both and verify under
//!   the same key.
//! - Phantom nodes (`Recipient::PhantomNode`) are not supported: a typed
//!   refusal, never a signature with another key.
//! - Nothing here signs for another node: a BOLT 12 invoice must name the
//!   node id as its signing key, a node announcement must be the node's own
//!   and a channel announcement must have the node as one of its two ends.
//! - A sweep pays only the node's own scripts or scripts the caller's
//!   policy allows ([`sweep`]).

pub mod sweep;
pub mod wire;

#[cfg(test)]
mod tests;

use bitcoin::secp256k1::ecdh::SharedSecret;
use bitcoin::secp256k1::ecdsa::{RecoverableSignature, Signature};
use bitcoin::secp256k1::{PublicKey, Scalar, schnorr};
use lightning::bolt11_invoice::RawBolt11Invoice;
use lightning::ln::inbound_payment::ExpandedKey;
use lightning::ln::msgs::UnsignedGossipMessage;
use lightning::offers::invoice::UnsignedBolt12Invoice;
use lightning::routing::gossip::NodeId;
use lightning::sign::{EntropySource, NodeSigner, PeerStorageKey, ReceiveAuthKey, Recipient};

use zeroize::Zeroizing;

use crate::keys::NodeKeys;

pub use sweep::{SWEEP_DESTINATION_TAG, SweepError, SweepRequest};

/// Why a node-level operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// A phantom-node recipient was asked for; Tidemark holds no phantom
    /// secret.
    #[error("phantom node payments are not supported ({operation})")]
    PhantomNotSupported {
        /// The operation asked for.
        operation: &'static str,
    },
    /// The ECDH tweak is zero (or otherwise leaves no valid key).
    #[error("the ecdh tweak does not give a valid secret key")]
    InvalidTweak,
    /// A BOLT 12 invoice names a signing key that is not the node id.
    #[error("the bolt 12 invoice's signing key {signing_pubkey} is not the node id")]
    ForeignSigningKey {
        /// The invoice's signing key.
        signing_pubkey: PublicKey,
    },
    /// A gossip message announces another node, or a channel this node is
    /// not an end of.
    #[error("the {message} does not belong to this node")]
    ForeignGossip {
        /// Which message.
        message: &'static str,
    },
    /// LDK's `KeysManager` refused where lightning 0.2.7 never does.
    #[error("ldk's KeysManager unexpectedly refused to {operation}")]
    Unexpected {
        /// The operation.
        operation: &'static str,
    },
}

fn node_only(recipient: Recipient, operation: &'static str) -> Result<(), NodeError> {
    match recipient {
        Recipient::Node => Ok(()),
        Recipient::PhantomNode => Err(NodeError::PhantomNotSupported { operation }),
    }
}

impl NodeKeys {
    /// The node id for `recipient` (`NodeSigner::get_node_id`).
    pub fn node_id_for(&self, recipient: Recipient) -> Result<PublicKey, NodeError> {
        node_only(recipient, "node id")?;
        Ok(self.node_id())
    }

    /// The ECDH shared secret of the node secret (times `tweak`, if given)
    /// and `other_key` (`NodeSigner::ecdh`): onion and peer-transport keys.
    pub fn ecdh(
        &self,
        recipient: Recipient,
        other_key: &PublicKey,
        tweak: Option<&Scalar>,
    ) -> Result<SharedSecret, NodeError> {
        node_only(recipient, "ecdh")?;
        // KeysManager fails only when multiplying by the tweak fails (a
        // zero tweak), with the recipient checked above.
        self.manager()
            .ecdh(Recipient::Node, other_key, tweak)
            .map_err(|()| NodeError::InvalidTweak)
    }

    /// Signs a BOLT 11 invoice with the node secret
    /// (`NodeSigner::sign_invoice`): a recoverable signature over the
    /// invoice's signable hash.
    pub fn sign_invoice(
        &self,
        invoice: &RawBolt11Invoice,
        recipient: Recipient,
    ) -> Result<RecoverableSignature, NodeError> {
        node_only(recipient, "sign invoice")?;
        self.manager()
            .sign_invoice(invoice, Recipient::Node)
            .map_err(|()| NodeError::Unexpected {
                operation: "sign a bolt 11 invoice",
            })
    }

    /// Signs a BOLT 12 invoice's tagged hash with the node secret
    /// (`NodeSigner::sign_bolt12_invoice`, BIP 340 with auxiliary
    /// randomness). Refuses an invoice whose signing key is not the node id:
    /// its signature would not verify, and it is not this node's to sign.
    pub fn sign_bolt12_invoice(
        &self,
        invoice: &UnsignedBolt12Invoice,
    ) -> Result<schnorr::Signature, NodeError> {
        let signing_pubkey = invoice.signing_pubkey();
        if signing_pubkey != self.node_id() {
            return Err(NodeError::ForeignSigningKey { signing_pubkey });
        }
        self.manager()
            .sign_bolt12_invoice(invoice)
            .map_err(|()| NodeError::Unexpected {
                operation: "sign a bolt 12 invoice",
            })
    }

    /// Signs a gossip message with the node secret
    /// (`NodeSigner::sign_gossip_message`): ECDSA over the double SHA-256 of
    /// the message. A node announcement must announce this node and a
    /// channel announcement must have it as `node_id_1` or `node_id_2`;
    /// channel updates carry no node id and are signed as given.
    pub fn sign_gossip_message(
        &self,
        message: UnsignedGossipMessage<'_>,
    ) -> Result<Signature, NodeError> {
        let ours = NodeId::from_pubkey(&self.node_id());
        let foreign = |message| NodeError::ForeignGossip { message };
        match &message {
            UnsignedGossipMessage::NodeAnnouncement(a) if a.node_id != ours => {
                return Err(foreign("node announcement"));
            }
            UnsignedGossipMessage::ChannelAnnouncement(a)
                if a.node_id_1 != ours && a.node_id_2 != ours =>
            {
                return Err(foreign("channel announcement"));
            }
            _ => {}
        }
        self.manager()
            .sign_gossip_message(message)
            .map_err(|()| NodeError::Unexpected {
                operation: "sign a gossip message",
            })
    }

    /// Signs `message` as `lightning-cli signmessage` does
    /// (`NodeSigner::sign_message`): a recoverable signature over
    /// `"Lightning Signed Message:" || message`, zbase32-encoded.
    pub fn sign_message(&self, message: &[u8]) -> Result<String, NodeError> {
        self.manager()
            .sign_message(message)
            .map_err(|()| NodeError::Unexpected {
                operation: "sign a message",
            })
    }

    /// The inbound payment (expanded) key, `m/5'` expanded
    /// (`NodeSigner::get_expanded_key`): payment secrets, payment hash
    /// authentication and BOLT 12 offer metadata.
    pub fn expanded_key(&self) -> ExpandedKey {
        self.manager().get_expanded_key()
    }

    /// The 32 bytes [`NodeKeys::expanded_key`] expands (the secret key at
    /// `m/5'`): what a remote node needs to rebuild the same `ExpandedKey`
    /// with `ExpandedKey::new`. A node secret: it leaves only to the node's
    /// own replicas.
    pub fn inbound_payment_key_material(&self) -> Zeroizing<[u8; 32]> {
        self.inbound_payment_key().clone()
    }

    /// The peer storage encryption key, `m/6'`
    /// (`NodeSigner::get_peer_storage_key`).
    pub fn peer_storage_key(&self) -> PeerStorageKey {
        self.manager().get_peer_storage_key()
    }

    /// The key that authenticates contexts of blinded message paths this
    /// node built, `m/7'` (`NodeSigner::get_receive_auth_key`, new in 0.2).
    pub fn receive_auth_key(&self) -> ReceiveAuthKey {
        self.manager().get_receive_auth_key()
    }

    /// 32 fresh random bytes (`EntropySource::get_secure_random_bytes`):
    /// the `KeysManager` ChaCha20 stream, seeded from the node seed and
    /// the entropy start.
    pub fn secure_random_bytes(&self) -> [u8; 32] {
        self.manager().get_secure_random_bytes()
    }
}
