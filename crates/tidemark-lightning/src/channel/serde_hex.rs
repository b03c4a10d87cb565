//! Hex (de)serialization of the bitcoin and secp256k1 values a channel
//! state stores: keys, signatures, txids, scripts. A value that does not
//! decode makes the whole state unreadable (fail closed).

use bitcoin::secp256k1::PublicKey;
use bitcoin::secp256k1::ecdsa::Signature;
use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

fn bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(d)?;
    hex::decode(&text).map_err(D::Error::custom)
}

/// A compressed public key as 66 hex digits.
pub(crate) mod pubkey {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(k: &PublicKey, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(k.serialize()))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PublicKey, D::Error> {
        PublicKey::from_slice(&bytes(d)?).map_err(D::Error::custom)
    }
}

/// A compact (r || s) ECDSA signature as 128 hex digits.
pub(crate) mod signature {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(sig: &Signature, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(sig.serialize_compact()))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Signature, D::Error> {
        Signature::from_compact(&bytes(d)?).map_err(D::Error::custom)
    }
}

/// A list of compact signatures.
pub(crate) mod signatures {
    use super::*;
    use serde::ser::SerializeSeq as _;

    pub(crate) fn serialize<S: Serializer>(sigs: &[Signature], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(sigs.len()))?;
        for sig in sigs {
            seq.serialize_element(&hex::encode(sig.serialize_compact()))?;
        }
        seq.end()
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Signature>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| {
                let raw = hex::decode(text).map_err(D::Error::custom)?;
                Signature::from_compact(&raw).map_err(D::Error::custom)
            })
            .collect()
    }
}

/// 32 bytes as 64 hex digits.
pub(crate) mod array32 {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(b: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        bytes(d)?
            .try_into()
            .map_err(|_| D::Error::custom("expected 32 bytes"))
    }
}

/// Any bytes as hex.
pub(crate) mod vec {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        bytes(d)
    }
}

/// A txid in its usual (byte-reversed) hex form.
pub(crate) mod txid {
    use super::*;
    use bitcoin::Txid;
    use std::str::FromStr as _;

    pub(crate) fn serialize<S: Serializer>(t: &Txid, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_string())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Txid, D::Error> {
        Txid::from_str(&String::deserialize(d)?).map_err(D::Error::custom)
    }
}
