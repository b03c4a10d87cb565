//! The counterparty's revocation secrets in BOLT 3 compact form
//! ("Efficient Per-commitment Secret Storage"): at most 49 secrets from
//! which every secret revealed so far can be derived.
//!
//! The same scheme as LDK's `CounterpartyCommitmentSecrets`, kept here so
//! that the state is plain JSON and a corrupt state can never reach an
//! `assert!`: every lookup returns `None` instead.

use bitcoin::hashes::{Hash as _, sha256};
use serde::{Deserialize, Serialize};

use crate::channel::serde_hex;

/// One stored secret and its (counting-down) index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    index: u64,
    #[serde(with = "serde_hex::array32")]
    secret: [u8; 32],
}

/// The counterparty's revealed per-commitment secrets, indexed as BOLT 3
/// does: secret index = 2^48-1 - commitment number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RevocationSecrets {
    /// Sorted by position (the index's trailing zero bits, 0 to 48).
    entries: Vec<Entry>,
}

const NO_INDEX: u64 = 1 << 48;

/// A secret that the secrets received before do not derive from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the secret of index {index} contradicts the secrets received before")]
pub struct SecretMismatch {
    /// The index provided.
    pub index: u64,
}

fn position(index: u64) -> u32 {
    index.trailing_zeros().min(48)
}

/// Derives the secret of `index` from a secret whose index shares all bits
/// above `bits` (BOLT 3 `derive_secret`).
fn derive(mut secret: [u8; 32], bits: u32, index: u64) -> [u8; 32] {
    for bit in (0..bits).rev() {
        if index & (1 << bit) != 0 {
            secret[(bit / 8) as usize] ^= 1 << (bit & 7);
            secret = sha256::Hash::hash(&secret).to_byte_array();
        }
    }
    secret
}

impl RevocationSecrets {
    /// No secret yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn at(&self, pos: u32) -> Option<&Entry> {
        self.entries.iter().find(|e| position(e.index) == pos)
    }

    /// The lowest index stored (2^48 when empty): every index from there
    /// up to 2^48-1 has been revealed.
    pub fn min_seen(&self) -> u64 {
        self.entries
            .iter()
            .map(|e| e.index)
            .min()
            .unwrap_or(NO_INDEX)
    }

    /// Inserts the secret of `index`. `Err` if it is inconsistent with the
    /// secrets stored before (it was not generated from the same seed), or
    /// the index is above 2^48-1.
    pub fn provide(&mut self, index: u64, secret: [u8; 32]) -> Result<(), SecretMismatch> {
        if index >= NO_INDEX {
            return Err(SecretMismatch { index });
        }
        let pos = position(index);
        for lower in 0..pos {
            if let Some(old) = self.at(lower)
                && derive(secret, pos, old.index) != old.secret
            {
                return Err(SecretMismatch { index });
            }
        }
        if self.min_seen() <= index {
            return Ok(());
        }
        self.entries.retain(|e| position(e.index) != pos);
        self.entries.push(Entry { index, secret });
        self.entries.sort_by_key(|e| position(e.index));
        Ok(())
    }

    /// The commitment numbers whose secrets a store holds after receiving,
    /// in order, the secrets of every commitment below `revoked`: for each
    /// position, the newest number at it. Ascending (the order to
    /// [`provide`](Self::provide) them in). Empty for 0; `None` above 2^48.
    pub fn compact_numbers(revoked: u64) -> Option<Vec<u64>> {
        if revoked > NO_INDEX {
            return None;
        }
        if revoked == 0 {
            return Some(Vec::new());
        }
        // The lowest index revealed: every index from here up is.
        let lowest = NO_INDEX - revoked;
        let mut indexes = Vec::new();
        for pos in 0..48u32 {
            // The lowest index at `pos` (an odd multiple of 2^pos) that is
            // not below `lowest`.
            let mut k = lowest.div_ceil(1 << pos);
            if k.is_multiple_of(2) {
                k += 1;
            }
            let index = k << pos;
            if index < NO_INDEX {
                indexes.push(index);
            }
        }
        if lowest == 0 {
            indexes.push(0);
        }
        let mut numbers: Vec<u64> = indexes.into_iter().map(|i| NO_INDEX - 1 - i).collect();
        numbers.sort_unstable();
        Some(numbers)
    }

    /// The secret of `index`, if it was revealed.
    pub fn get(&self, index: u64) -> Option<[u8; 32]> {
        if index >= NO_INDEX {
            return None;
        }
        self.entries.iter().find_map(|e| {
            let pos = position(e.index);
            let mask = !((1u64 << pos) - 1);
            (index & mask == e.index).then(|| derive(e.secret, pos, index))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lightning::ln::chan_utils::{CounterpartyCommitmentSecrets, build_commitment_secret};

    const MAX: u64 = (1 << 48) - 1;

    #[test]
    fn agrees_with_ldk_over_a_thousand_revocations() {
        let seed = [0x5a; 32];
        let mut ours = RevocationSecrets::new();
        let mut ldk = CounterpartyCommitmentSecrets::new();
        for n in 0..1000u64 {
            let index = MAX - n;
            let secret = build_commitment_secret(&seed, index);
            ours.provide(index, secret).unwrap();
            ldk.provide_secret(index, secret).unwrap();
            assert_eq!(ours.min_seen(), ldk.get_min_seen_secret());
            for back in [0, 1, n / 2, n] {
                let i = MAX - n.saturating_sub(back);
                assert_eq!(ours.get(i), ldk.get_secret(i));
                assert_eq!(ours.get(i), Some(build_commitment_secret(&seed, i)));
            }
        }
        assert!(ours.entries.len() <= 49);
        assert_eq!(ours.get(MAX - 1000), None);
    }

    #[test]
    fn compact_numbers_are_the_entries_a_store_keeps() {
        let seed = [0x77; 32];
        let mut ours = RevocationSecrets::new();
        assert_eq!(RevocationSecrets::compact_numbers(0), Some(vec![]));
        for revoked in 1..300u64 {
            let index = MAX - (revoked - 1);
            ours.provide(index, build_commitment_secret(&seed, index))
                .unwrap();
            let mut kept: Vec<u64> = ours.entries.iter().map(|e| MAX - e.index).collect();
            kept.sort_unstable();
            assert_eq!(
                RevocationSecrets::compact_numbers(revoked),
                Some(kept),
                "{revoked}"
            );
        }
        let all = RevocationSecrets::compact_numbers(NO_INDEX).unwrap();
        assert_eq!(all.len(), 49);
        assert_eq!(all.last(), Some(&MAX));
        assert_eq!(RevocationSecrets::compact_numbers(NO_INDEX + 1), None);
    }

    #[test]
    fn a_secret_from_another_seed_is_refused() {
        let mut ours = RevocationSecrets::new();
        ours.provide(MAX, build_commitment_secret(&[1; 32], MAX))
            .unwrap();
        // Index MAX-1 sits at a higher position and must derive MAX.
        assert!(
            ours.provide(MAX - 1, build_commitment_secret(&[2; 32], MAX - 1))
                .is_err()
        );
        assert!(ours.provide(NO_INDEX, [0; 32]).is_err());
    }

    #[test]
    fn round_trips_through_json() {
        let mut ours = RevocationSecrets::new();
        for n in 0..10 {
            ours.provide(MAX - n, build_commitment_secret(&[3; 32], MAX - n))
                .unwrap();
        }
        let json = serde_json::to_string(&ours).unwrap();
        assert_eq!(
            serde_json::from_str::<RevocationSecrets>(&json).unwrap(),
            ours
        );
    }
}
