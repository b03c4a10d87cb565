//! Serde helpers: bytes as lower-case hex strings (either case accepted on
//! input), for `#[serde(with = "tidemark_core::serde_hex::bytes")]`.

/// `Vec<u8>` as hex.
pub mod bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `v` as hex.
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    /// Reads hex into bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

/// `[u8; 32]` as hex (exactly 64 hex digits).
pub mod array32 {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `v` as hex.
    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    /// Reads 64 hex digits.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}
