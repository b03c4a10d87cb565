//! The decision model: what a policy answers for a request.
//!
//! A policy is a pure function `(current state, request) -> Decision`:
//!
//! - [`Decision::Sign`]: accept; the pipeline signs the [`SignInput`]s in
//!   memory, commits `new_state` durably and only then releases the
//!   signatures.
//! - [`Decision::Replay`]: the request is identical to the one that made
//!   the current state; the pipeline returns the stored signatures byte for
//!   byte (optionally signing `also_sign`, inputs that carry no safety
//!   duty, such as CometBFT vote extensions).
//! - [`Decision::Refuse`]: a [`Refusal`] with a stable [`Tag`].

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::ids::{KeyId, ObjectId};
use crate::mark::Mark;

/// A stable, machine-readable refusal reason: `policy-...` or `hwm-...`.
///
/// Tags are part of the API: clients match on them, dashboards count them.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Tag(Cow<'static, str>);

impl Tag {
    /// A tag from a constant. Debug builds check the prefix.
    pub const fn new(tag: &'static str) -> Self {
        Tag(Cow::Borrowed(tag))
    }

    /// A tag from a string read from the wire or a file; `None` unless it
    /// starts with `policy-` or `hwm-` and uses lower-case letters, digits
    /// and dashes.
    pub fn parse(tag: &str) -> Option<Self> {
        let well_formed = (tag.starts_with("policy-") || tag.starts_with("hwm-"))
            && tag.len() <= 64
            && tag
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        well_formed.then(|| Tag(Cow::Owned(tag.to_owned())))
    }

    /// The tag as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({})", self.0)
    }
}

/// Why a request was refused: the tag, the object, the current mark and a
/// human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The stable reason.
    pub tag: Tag,
    /// The object the request was about.
    pub object: ObjectId,
    /// The object's mark when it was refused.
    pub current: Mark,
    /// What exactly conflicted, for a human.
    pub detail: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refused {} on {} at {}: {}",
            self.tag, self.object, self.current, self.detail
        )
    }
}

/// An unhardened BIP32 derivation below a key: at most
/// [`ChildPath::MAX_DEPTH`] child numbers, each below 2^31.
///
/// Wallet keys are account keys (`m/84'/0'/0'`); an address is the child
/// `0/i` (receive) or `1/i` (change) below it, derived when signing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ChildPath(Vec<u32>);

impl ChildPath {
    /// The deepest path accepted.
    pub const MAX_DEPTH: usize = 8;

    /// Validates `children`: `None` if one is hardened or the path is
    /// deeper than [`ChildPath::MAX_DEPTH`].
    pub fn new(children: Vec<u32>) -> Option<ChildPath> {
        (children.len() <= Self::MAX_DEPTH && children.iter().all(|c| *c < (1 << 31)))
            .then_some(ChildPath(children))
    }

    /// The child numbers, outermost first.
    pub fn children(&self) -> &[u32] {
        &self.0
    }
}

impl fmt::Display for ChildPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&parts.join("/"))
    }
}

/// The bytes a key signs, in the form its scheme needs.
#[derive(Clone, PartialEq, Eq)]
pub enum SignMessage {
    /// Ed25519 over the whole message.
    Ed25519(Vec<u8>),
    /// ECDSA over secp256k1 of a 32-byte digest the domain computed.
    EcdsaDigest([u8; 32]),
    /// BIP340 Schnorr over secp256k1 of a 32-byte message.
    SchnorrDigest([u8; 32]),
    /// ECDSA by the BIP32 child of the key at `path` (a segwit v0 input of
    /// a wallet: the key is the account, `path` is `0/i` or `1/i`).
    ChildEcdsaDigest {
        /// The unhardened path below the key.
        path: ChildPath,
        /// The BIP143 sighash.
        digest: [u8; 32],
    },
    /// A BIP341 key-path spend: BIP340 Schnorr by the child of the key at
    /// `path`, tweaked with `TapTweak(internal key || merkle_root)` (no
    /// merkle root: a key-path-only output).
    TaprootKeySpend {
        /// The unhardened path below the key to the internal key.
        path: ChildPath,
        /// The script tree's merkle root, if the output has one.
        merkle_root: Option<[u8; 32]>,
        /// The BIP341 sighash.
        digest: [u8; 32],
    },
}

impl SignMessage {
    /// The canonical bytes that go into the payload digest: the message
    /// itself for the plain forms, and for the derived forms a tag byte,
    /// the path, the merkle root and the digest, so that two different
    /// requests never encode alike.
    pub fn bytes(&self) -> Cow<'_, [u8]> {
        match self {
            SignMessage::Ed25519(m) => Cow::Borrowed(m),
            SignMessage::EcdsaDigest(d) | SignMessage::SchnorrDigest(d) => Cow::Borrowed(d),
            SignMessage::ChildEcdsaDigest { path, digest } => {
                Cow::Owned(derived_encoding(0xe0, path, None, digest))
            }
            SignMessage::TaprootKeySpend {
                path,
                merkle_root,
                digest,
            } => Cow::Owned(derived_encoding(0xe1, path, merkle_root.as_ref(), digest)),
        }
    }

    /// The scheme-specific name of the signature asked for.
    pub fn kind(&self) -> &'static str {
        match self {
            SignMessage::Ed25519(_) => "ed25519",
            SignMessage::EcdsaDigest(_) => "ecdsa",
            SignMessage::SchnorrDigest(_) => "schnorr",
            SignMessage::ChildEcdsaDigest { .. } => "child ecdsa",
            SignMessage::TaprootKeySpend { .. } => "taproot key spend",
        }
    }
}

fn derived_encoding(
    tag: u8,
    path: &ChildPath,
    merkle_root: Option<&[u8; 32]>,
    digest: &[u8; 32],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + 4 * path.0.len() + 33 + 32);
    out.push(tag);
    // MAX_DEPTH fits in a byte.
    out.push(path.0.len() as u8);
    for child in &path.0 {
        out.extend_from_slice(&child.to_be_bytes());
    }
    match merkle_root {
        Some(root) => {
            out.push(1);
            out.extend_from_slice(root);
        }
        None => out.push(0),
    }
    out.extend_from_slice(digest);
    out
}

impl fmt::Debug for SignMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignMessage::Ed25519(m) => write!(f, "Ed25519({})", hex::encode(m)),
            SignMessage::EcdsaDigest(d) => write!(f, "EcdsaDigest({})", hex::encode(d)),
            SignMessage::SchnorrDigest(d) => write!(f, "SchnorrDigest({})", hex::encode(d)),
            SignMessage::ChildEcdsaDigest { path, digest } => {
                write!(f, "ChildEcdsaDigest({path}, {})", hex::encode(digest))
            }
            SignMessage::TaprootKeySpend {
                path,
                merkle_root,
                digest,
            } => write!(
                f,
                "TaprootKeySpend({path}, {:?}, {})",
                merkle_root.map(hex::encode),
                hex::encode(digest)
            ),
        }
    }
}

/// One thing to sign with one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInput {
    /// The key that signs.
    pub key: KeyId,
    /// What it signs.
    pub message: SignMessage,
}

/// A signature as the key backend produced it: 64 bytes for Ed25519,
/// compact `r || s` (low-s) for ECDSA, 64 bytes for BIP340.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Signature(#[serde(with = "crate::serde_hex::bytes")] pub Vec<u8>);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", hex::encode(&self.0))
    }
}

/// A SHA-256 digest of the canonical payload a state was signed for.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Digest(#[serde(with = "crate::serde_hex::array32")] pub [u8; 32]);

impl Digest {
    /// The digest of the messages to sign, in order, each length-prefixed
    /// so that two different lists never collide.
    pub fn of_inputs(inputs: &[SignInput]) -> Digest {
        let mut h = Sha256::new();
        for input in inputs {
            h.update(input.key.as_str().as_bytes());
            h.update([0u8]);
            let bytes = input.message.bytes();
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(&bytes);
        }
        Digest(h.finalize().into())
    }

    /// The all-zero digest, for states that record no payload.
    pub const ZERO: Digest = Digest([0u8; 32]);
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", hex::encode(self.0))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// What a policy decides for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<S> {
    /// Accept: sign `inputs`, make `new_state` durable, then release.
    Sign {
        /// The state to commit; it becomes the object's new mark.
        new_state: S,
        /// What to sign, in the order the signatures are returned.
        inputs: Vec<SignInput>,
    },
    /// Identical repeat: return the stored signatures.
    Replay {
        /// Extra inputs to sign afresh that carry no safety duty (their
        /// signatures follow the stored ones). Usually empty.
        also_sign: Vec<SignInput>,
    },
    /// Refuse, change nothing, release nothing.
    Refuse(Refusal),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_from_the_wire_must_be_well_formed() {
        assert!(Tag::parse("hwm-double-sign").is_some());
        assert!(Tag::parse("policy-commitment-retry-same").is_some());
        assert!(Tag::parse("double-sign").is_none());
        assert!(Tag::parse("hwm-Double").is_none());
    }

    #[test]
    fn digest_separates_message_boundaries() {
        let key = KeyId::new("k").unwrap();
        let one = [SignInput {
            key: key.clone(),
            message: SignMessage::Ed25519(b"ab".to_vec()),
        }];
        let two = [
            SignInput {
                key: key.clone(),
                message: SignMessage::Ed25519(b"a".to_vec()),
            },
            SignInput {
                key,
                message: SignMessage::Ed25519(b"b".to_vec()),
            },
        ];
        assert_ne!(Digest::of_inputs(&one), Digest::of_inputs(&two));
    }
}
