//! Validated identifiers.
//!
//! Every identifier is checked once, at construction, so that the rest of
//! the code can put it in a file name, a database key, a log line or a
//! metric label without escaping. An [`ObjectId`] has one canonical string
//! form, `domain/chain/key/kind`, which is what the store keys on.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An identifier failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The identifier is empty or longer than allowed.
    #[error("{what} must be 1 to {max} bytes long, got {len}")]
    Length {
        /// Which identifier.
        what: &'static str,
        /// The maximum length.
        max: usize,
        /// The length given.
        len: usize,
    },
    /// The identifier contains a character outside its alphabet.
    #[error("{what} contains a forbidden character {found:?} (allowed: {allowed})")]
    Character {
        /// Which identifier.
        what: &'static str,
        /// The offending character.
        found: char,
        /// The allowed alphabet, described.
        allowed: &'static str,
    },
    /// An object id string is not `domain/chain/key/kind`.
    #[error("object id {0:?} is not of the form domain/chain/key/kind")]
    ObjectShape(String),
    /// The domain name is unknown.
    #[error("unknown domain {0:?} (expected consensus, lightning or bitcoin)")]
    UnknownDomain(String),
}

fn check(
    what: &'static str,
    s: &str,
    max: usize,
    allowed: &'static str,
    ok: impl Fn(char) -> bool,
) -> Result<(), IdError> {
    if s.is_empty() || s.len() > max {
        return Err(IdError::Length {
            what,
            max,
            len: s.len(),
        });
    }
    match s.chars().find(|c| !ok(*c)) {
        Some(found) => Err(IdError::Character {
            what,
            found,
            allowed,
        }),
        None => Ok(()),
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:expr, $allowed:literal, $ok:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps `s`.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                check($what, &s, $max, $allowed, $ok)?;
                Ok(Self(s))
            }

            /// The identifier as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_id!(
    /// The name of a key in a key backend, e.g. `validator-1`.
    KeyId, "key id", 64, "ASCII letters, digits, '.', '_', '-'", is_name_char
);

string_id!(
    /// A chain identifier: a CometBFT chain id (at most 50 bytes) or a
    /// Tezos chain id, or any name for a plain-height chain.
    ChainId, "chain id", 50, "printable ASCII except '/' and whitespace",
    |c: char| c.is_ascii_graphic() && c != '/'
);

string_id!(
    /// The authenticated identity of a client (a replica), taken from its
    /// certificate, or a name chosen by an in-process caller.
    ClientId, "client id", 128, "printable ASCII except '/' and whitespace",
    |c: char| c.is_ascii_graphic() && c != '/'
);

/// The protocol family an object belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Domain {
    /// Validator blocks and votes.
    Consensus,
    /// Lightning channels and the node.
    Lightning,
    /// On-chain wallet intents.
    Bitcoin,
}

impl Domain {
    /// The lower-case name used in object ids, metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Domain::Consensus => "consensus",
            Domain::Lightning => "lightning",
            Domain::Bitcoin => "bitcoin",
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Domain {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        match s {
            "consensus" => Ok(Domain::Consensus),
            "lightning" => Ok(Domain::Lightning),
            "bitcoin" => Ok(Domain::Bitcoin),
            other => Err(IdError::UnknownDomain(other.to_owned())),
        }
    }
}

/// The protocol object a high-water mark belongs to: (domain, chain, key,
/// kind). Requests for the same object are serialized; requests for
/// different objects run in parallel.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId {
    domain: Domain,
    chain: ChainId,
    key: KeyId,
    kind: String,
}

impl ObjectId {
    /// Builds an object id. `kind` uses the key-id alphabet
    /// (e.g. `cometbft`, `attestation`, `height`, a channel id in hex).
    pub fn new(domain: Domain, chain: ChainId, key: KeyId, kind: &str) -> Result<Self, IdError> {
        check(
            "object kind",
            kind,
            80,
            "ASCII letters, digits, '.', '_', '-'",
            is_name_char,
        )?;
        Ok(Self {
            domain,
            chain,
            key,
            kind: kind.to_owned(),
        })
    }

    /// The domain.
    pub fn domain(&self) -> Domain {
        self.domain
    }

    /// The chain.
    pub fn chain(&self) -> &ChainId {
        &self.chain
    }

    /// The key that signs for this object.
    pub fn key(&self) -> &KeyId {
        &self.key
    }

    /// The kind within (domain, chain, key).
    pub fn kind(&self) -> &str {
        &self.kind
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.domain, self.chain, self.key, self.kind
        )
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

impl FromStr for ObjectId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let parts: Vec<&str> = s.split('/').collect();
        let [domain, chain, key, kind] = parts.as_slice() else {
            return Err(IdError::ObjectShape(s.to_owned()));
        };
        ObjectId::new(
            domain.parse()?,
            ChainId::new(*chain)?,
            KeyId::new(*key)?,
            kind,
        )
    }
}

impl Serialize for ObjectId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ObjectId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_id_round_trips_through_its_string_form() {
        let id = ObjectId::new(
            Domain::Consensus,
            ChainId::new("cosmoshub-4").unwrap(),
            KeyId::new("val-1").unwrap(),
            "cometbft",
        )
        .unwrap();
        assert_eq!(id.to_string(), "consensus/cosmoshub-4/val-1/cometbft");
        assert_eq!(id.to_string().parse::<ObjectId>().unwrap(), id);
    }

    #[test]
    fn identifiers_reject_separators_and_empty_strings() {
        assert!(KeyId::new("").is_err());
        assert!(KeyId::new("a/b").is_err());
        assert!(KeyId::new("a b").is_err());
        assert!(ChainId::new("x".repeat(51)).is_err());
        assert!(ChainId::new("chain/1").is_err());
        assert!("consensus/a/b".parse::<ObjectId>().is_err());
        assert!("nope/a/b/c".parse::<ObjectId>().is_err());
    }
}
