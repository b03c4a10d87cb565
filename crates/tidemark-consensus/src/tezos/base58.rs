//! Base58check encoding of Tezos chain ids.
//!
//! Invariant: `chain_id_b58(bytes)` is `base58(prefix || bytes ||
//! sha256(sha256(prefix || bytes))[..4])` with the Net prefix `[87, 82, 0]`,
//! so mainnet's `7a06a770` prints as `NetXdQprcVkpaWU`.

use sha2::{Digest as _, Sha256};

const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// The base58check prefix of chain ids ("Net").
pub const CHAIN_ID_PREFIX: [u8; 3] = [87, 82, 0];

/// Base58check of `payload` (checksum: the first four bytes of sha256d).
pub fn base58check(payload: &[u8]) -> String {
    let checksum = Sha256::digest(Sha256::digest(payload));
    let mut data = payload.to_vec();
    data.extend_from_slice(&checksum[..4]);

    // Repeated division of the big-endian number by 58.
    let zeros = data.iter().take_while(|b| **b == 0).count();
    let mut digits: Vec<u8> = Vec::with_capacity(data.len() * 138 / 100 + 1);
    for &byte in &data {
        let mut carry = u32::from(byte);
        for d in digits.iter_mut() {
            carry += u32::from(*d) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let mut out = String::with_capacity(zeros + digits.len());
    out.extend(std::iter::repeat_n('1', zeros));
    out.extend(
        digits
            .iter()
            .rev()
            .map(|d| char::from(ALPHABET[usize::from(*d)])),
    );
    out
}

/// The `Net...` form of a 4-byte chain id.
pub fn chain_id_b58(chain_id: [u8; 4]) -> String {
    let mut payload = CHAIN_ID_PREFIX.to_vec();
    payload.extend_from_slice(&chain_id);
    base58check(&payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mainnet_chain_id_encodes_to_its_well_known_name() {
        assert_eq!(chain_id_b58([0x7a, 0x06, 0xa7, 0x70]), "NetXdQprcVkpaWU");
    }

    #[test]
    fn leading_zero_bytes_become_ones() {
        assert!(base58check(&[0, 0, 1]).starts_with("11"));
    }
}
