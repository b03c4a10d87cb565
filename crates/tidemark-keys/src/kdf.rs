//! Argon2id: from passphrase and salt to the 32-byte file key.
//!
//! The parameters come from the file header, which is authenticated only
//! *after* the key is derived, so a tampered header chooses how much work
//! and memory the derivation takes. [`KdfParams::new`] therefore bounds
//! them: a hostile file can cost at most [`KdfParams::MAX_M_COST_KIB`] of
//! memory, never an allocation failure.

use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::error::KeystoreError;

/// The length of a salt in a new keystore.
pub(crate) const SALT_LEN: usize = 16;
/// The shortest salt accepted from a file (Argon2's minimum).
pub(crate) const MIN_SALT_LEN: usize = 8;
/// The longest salt accepted from a file.
pub(crate) const MAX_SALT_LEN: usize = 64;

/// Argon2id cost parameters, stored in the keystore header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
}

impl KdfParams {
    /// The most memory a keystore may ask for: 1 GiB.
    pub const MAX_M_COST_KIB: u32 = 1024 * 1024;
    /// The most passes a keystore may ask for.
    pub const MAX_T_COST: u32 = 64;
    /// The most lanes a keystore may ask for.
    pub const MAX_P_COST: u32 = 16;

    /// Validated parameters: memory in KiB (at least `8 * p_cost`, at most
    /// [`Self::MAX_M_COST_KIB`]), passes (1 to [`Self::MAX_T_COST`]) and
    /// lanes (1 to [`Self::MAX_P_COST`]).
    pub fn new(m_cost_kib: u32, t_cost: u32, p_cost: u32) -> Result<Self, KeystoreError> {
        let bad = |what: String| Err(KeystoreError::InvalidKdfParams(what));
        if !(1..=Self::MAX_P_COST).contains(&p_cost) {
            return bad(format!(
                "p_cost {p_cost} is outside 1..={}",
                Self::MAX_P_COST
            ));
        }
        if !(1..=Self::MAX_T_COST).contains(&t_cost) {
            return bad(format!(
                "t_cost {t_cost} is outside 1..={}",
                Self::MAX_T_COST
            ));
        }
        let min_m = 8 * p_cost;
        if !(min_m..=Self::MAX_M_COST_KIB).contains(&m_cost_kib) {
            return bad(format!(
                "m_cost_kib {m_cost_kib} is outside {min_m}..={}",
                Self::MAX_M_COST_KIB
            ));
        }
        Ok(KdfParams {
            m_cost_kib,
            t_cost,
            p_cost,
        })
    }

    /// The cheapest parameters Argon2 allows (8 KiB, one pass, one lane).
    ///
    /// **For tests only**: a passphrase protected by these falls to a
    /// guessing attack at millions of guesses per second.
    pub fn insecure_for_tests() -> Self {
        KdfParams {
            m_cost_kib: 8,
            t_cost: 1,
            p_cost: 1,
        }
    }

    /// Memory in KiB.
    pub fn m_cost_kib(&self) -> u32 {
        self.m_cost_kib
    }

    /// Number of passes.
    pub fn t_cost(&self) -> u32 {
        self.t_cost
    }

    /// Number of lanes.
    pub fn p_cost(&self) -> u32 {
        self.p_cost
    }
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane: about a quarter of a second on a server
    /// core, well above the OWASP minimum for Argon2id.
    fn default() -> Self {
        KdfParams {
            m_cost_kib: 64 * 1024,
            t_cost: 3,
            p_cost: 1,
        }
    }
}

/// Derives the 32-byte file key from `passphrase` and `salt`.
pub(crate) fn derive_file_key(
    params: &KdfParams,
    salt: &[u8],
    passphrase: &SecretString,
) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    let argon_params = Params::new(params.m_cost_kib, params.t_cost, params.p_cost, Some(32))
        .map_err(|e| KeystoreError::InvalidKdfParams(e.to_string()))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.expose_secret().as_bytes(), salt, key.as_mut())
        .map_err(|e| KeystoreError::InvalidKdfParams(e.to_string()))?;
    Ok(key)
}
