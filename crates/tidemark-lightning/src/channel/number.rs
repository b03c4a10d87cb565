//! Commitment numbers.
//!
//! Tidemark stores and speaks **BOLT 3 commitment numbers**: they count UP
//! from 0 (the commitment signed at funding) to 2^48-1. LDK counts the same
//! commitments DOWN from `INITIAL_COMMITMENT_NUMBER` (2^48-1), and so do
//! the BOLT 3 per-commitment secret indexes: commitment `n` has LDK index
//! and secret index `2^48-1 - n`. [`CommitmentNumber::from_ldk_index`] and
//! [`CommitmentNumber::ldk_index`] convert at the LDK boundary.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The highest commitment number (and LDK's initial commitment index).
pub const MAX_COMMITMENT_NUMBER: u64 = (1 << 48) - 1;

/// A BOLT 3 commitment number (counting up from 0), at most 2^48-1.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CommitmentNumber(u64);

impl CommitmentNumber {
    /// The first commitment of a channel.
    pub const FIRST: CommitmentNumber = CommitmentNumber(0);

    /// `None` above 2^48-1.
    pub const fn new(number: u64) -> Option<CommitmentNumber> {
        if number <= MAX_COMMITMENT_NUMBER {
            Some(CommitmentNumber(number))
        } else {
            None
        }
    }

    /// From LDK's counting-down index; `None` above 2^48-1.
    pub const fn from_ldk_index(index: u64) -> Option<CommitmentNumber> {
        if index <= MAX_COMMITMENT_NUMBER {
            Some(CommitmentNumber(MAX_COMMITMENT_NUMBER - index))
        } else {
            None
        }
    }

    /// The number as an integer.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// LDK's counting-down index, which is also the BOLT 3 per-commitment
    /// secret index.
    pub const fn ldk_index(self) -> u64 {
        MAX_COMMITMENT_NUMBER - self.0
    }
}

impl fmt::Display for CommitmentNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for CommitmentNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CommitmentNumber({})", self.0)
    }
}

impl Serialize for CommitmentNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for CommitmentNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(d)?;
        CommitmentNumber::new(n).ok_or_else(|| {
            serde::de::Error::custom(format!("commitment number {n} is above 2^48-1"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_convert_to_and_from_ldk_indexes() {
        assert_eq!(CommitmentNumber::FIRST.ldk_index(), MAX_COMMITMENT_NUMBER);
        let n = CommitmentNumber::new(5).unwrap();
        assert_eq!(CommitmentNumber::from_ldk_index(n.ldk_index()), Some(n));
        assert_eq!(CommitmentNumber::new(MAX_COMMITMENT_NUMBER + 1), None);
        assert_eq!(CommitmentNumber::from_ldk_index(u64::MAX), None);
    }
}
