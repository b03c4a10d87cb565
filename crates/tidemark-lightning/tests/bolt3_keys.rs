//! BOLT 3 Appendix D (per-commitment secret generation and compact
//! storage) and Appendix E (key derivation), through the LDK functions
//! Tidemark's keys and channel state use: `chan_utils::build_commitment_secret`,
//! `CounterpartyCommitmentSecrets`, `chan_utils::derive_private_key`,
//! `chan_utils::derive_private_revocation_key` and the `channel_keys`
//! types. The vectors are copied from `03-transactions.md` of
//! lightning/bolts; every case is here, including the storage cases that
//! must fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bitcoin::hashes::{Hash, sha256};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use lightning::ln::chan_utils::{
    CounterpartyCommitmentSecrets, build_commitment_secret, derive_private_key,
    derive_private_revocation_key,
};
use lightning::ln::channel_keys::{
    DelayedPaymentBasepoint, DelayedPaymentKey, HtlcBasepoint, HtlcKey, RevocationBasepoint,
    RevocationKey, add_public_key_tweak,
};
use tidemark_lightning::keys::MAX_COMMITMENT_INDEX;

fn bytes32(hex: &str) -> [u8; 32] {
    let v = hex::decode(hex).unwrap();
    v.try_into().unwrap()
}

fn pubkey(hex: &str) -> PublicKey {
    PublicKey::from_slice(&hex::decode(hex).unwrap()).unwrap()
}

fn secret(hex: &str) -> SecretKey {
    SecretKey::from_slice(&bytes32(hex)).unwrap()
}

// --- Appendix D: generation tests -----------------------------------------

struct Generation {
    name: &'static str,
    seed: &'static str,
    index: u64,
    output: &'static str,
}

const GENERATION: [Generation; 5] = [
    Generation {
        name: "generate_from_seed 0 final node",
        seed: "0000000000000000000000000000000000000000000000000000000000000000",
        index: 281474976710655,
        output: "02a40c85b6f28da08dfdbe0926c53fab2de6d28c10301f8f7c4073d5e42e3148",
    },
    Generation {
        name: "generate_from_seed FF final node",
        seed: "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
        index: 281474976710655,
        output: "7cc854b54e3e0dcdb010d7a3fee464a9687be6e8db3be6854c475621e007a5dc",
    },
    Generation {
        name: "generate_from_seed FF alternate bits 1",
        seed: "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
        // As printed in BOLT 3: 11 hex digits.
        index: 0xaaaaaaaaaaa,
        output: "56f4008fb007ca9acf0e15b054d5c9fd12ee06cea347914ddbaed70d1c13a528",
    },
    Generation {
        name: "generate_from_seed FF alternate bits 2",
        seed: "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
        index: 0x555555555555,
        output: "9015daaeb06dba4ccc05b91b2f73bd54405f2be9f217fbacd3c5ac2e62327d31",
    },
    Generation {
        name: "generate_from_seed 01 last nontrivial node",
        seed: "0101010101010101010101010101010101010101010101010101010101010101",
        index: 1,
        output: "915c75942a26bb3a433a8ce2cb0427c29ec6c1775cfc78328b57f6ba7bfeaa9c",
    },
];

#[test]
fn appendix_d_generation_vectors() {
    for case in &GENERATION {
        assert_eq!(
            build_commitment_secret(&bytes32(case.seed), case.index),
            bytes32(case.output),
            "{}",
            case.name
        );
    }
    assert_eq!(GENERATION[0].index, MAX_COMMITMENT_INDEX);
}

// --- Appendix D: storage tests ----------------------------------------------

// The secrets of seed 0xFF..FF at indexes 2^48-1 down to 2^48-8.
const S655: &str = "7cc854b54e3e0dcdb010d7a3fee464a9687be6e8db3be6854c475621e007a5dc";
const S654: &str = "c7518c8ae4660ed02894df8976fa1a3659c1a8b4b5bec0c4b872abeba4cb8964";
const S653: &str = "2273e227a5b7449b6e70f1fb4652864038b1cbf9cd7c043a7d6456b7fc275ad8";
const S652: &str = "27cddaa5624534cb6cb9d7da077cf2b22ab21e9b506fd4998a51d54502e99116";
const S651: &str = "c65716add7aa98ba7acb236352d665cab17345fe45b55fb879ff80e6bd0c41dd";
const S650: &str = "969660042a28f32d9be17344e09374b379962d03db1574df5a8a5a47e19ce3f2";
const S649: &str = "a5a64476122ca0925fb344bdc1854c1c0a59fc614298e50a33e331980a220f32";
const S648: &str = "05cde6323d949933f7f7b78776bcc1ea6d9b31447732e3802e1f7ac44b650e17";

// Incorrect entries (seeded with 0x00..00), as the vectors use them.
const BAD_655: &str = "02a40c85b6f28da08dfdbe0926c53fab2de6d28c10301f8f7c4073d5e42e3148";
const BAD_654: &str = "dddc3a8d14fddf2b68fa8c7fbad2748274937479dd0f8930d5ebb4ab6bd866a3";
const BAD_653: &str = "c51a18b13e8527e579ec56365482c62f180b7d5760b46e9477dae59e87ed423a";
const BAD_652: &str = "ba65d7b0ef55a3ba300d4e87af29868f394f8f138d78a7011669c79b37b936f4";
const BAD_651: &str = "631373ad5f9ef654bb3dade742d09504c567edd24320d2fcd68e3cc47e2ff6a6";
const BAD_650: &str = "b7e76a83668bde38b373970155c868a653304308f9896692f904a23731224bb1";
const BAD_649: &str = "e7971de736e01da8ed58b94c2fc216cb1dca9e326f3a96e7194fe8ea8af6c0a3";
const BAD_648: &str = "a7efbc61aac46d34f77778bac22c8a20c6a46ca460addc49009bda875ec88fa4";

const I655: u64 = 281474976710655;
const I654: u64 = 281474976710654;
const I653: u64 = 281474976710653;
const I652: u64 = 281474976710652;
const I651: u64 = 281474976710651;
const I650: u64 = 281474976710650;
const I649: u64 = 281474976710649;
const I648: u64 = 281474976710648;

const OK: bool = true;
const ERROR: bool = false;

struct Storage {
    name: &'static str,
    steps: &'static [(u64, &'static str, bool)],
}

const STORAGE: [Storage; 9] = [
    Storage {
        name: "insert_secret correct sequence",
        steps: &[
            (I655, S655, OK),
            (I654, S654, OK),
            (I653, S653, OK),
            (I652, S652, OK),
            (I651, S651, OK),
            (I650, S650, OK),
            (I649, S649, OK),
            (I648, S648, OK),
        ],
    },
    Storage {
        name: "insert_secret #1 incorrect",
        steps: &[(I655, BAD_655, OK), (I654, S654, ERROR)],
    },
    Storage {
        name: "insert_secret #2 incorrect (#1 derived from incorrect)",
        steps: &[
            (I655, BAD_655, OK),
            (I654, BAD_654, OK),
            (I653, S653, OK),
            (I652, S652, ERROR),
        ],
    },
    Storage {
        name: "insert_secret #3 incorrect",
        steps: &[
            (I655, S655, OK),
            (I654, S654, OK),
            (I653, BAD_653, OK),
            (I652, S652, ERROR),
        ],
    },
    Storage {
        name: "insert_secret #4 incorrect (1,2,3 derived from incorrect)",
        steps: &[
            (I655, BAD_655, OK),
            (I654, BAD_654, OK),
            (I653, BAD_653, OK),
            (I652, BAD_652, OK),
            (I651, S651, OK),
            (I650, S650, OK),
            (I649, S649, OK),
            (I648, S648, ERROR),
        ],
    },
    Storage {
        name: "insert_secret #5 incorrect",
        steps: &[
            (I655, S655, OK),
            (I654, S654, OK),
            (I653, S653, OK),
            (I652, S652, OK),
            (I651, BAD_651, OK),
            (I650, S650, ERROR),
        ],
    },
    Storage {
        name: "insert_secret #6 incorrect (5 derived from incorrect)",
        steps: &[
            (I655, S655, OK),
            (I654, S654, OK),
            (I653, S653, OK),
            (I652, S652, OK),
            (I651, BAD_651, OK),
            (I650, BAD_650, OK),
            (I649, S649, OK),
            (I648, S648, ERROR),
        ],
    },
    Storage {
        name: "insert_secret #7 incorrect",
        steps: &[
            (I655, S655, OK),
            (I654, S654, OK),
            (I653, S653, OK),
            (I652, S652, OK),
            (I651, S651, OK),
            (I650, S650, OK),
            (I649, BAD_649, OK),
            (I648, S648, ERROR),
        ],
    },
    Storage {
        name: "insert_secret #8 incorrect",
        steps: &[
            (I655, S655, OK),
            (I654, S654, OK),
            (I653, S653, OK),
            (I652, S652, OK),
            (I651, S651, OK),
            (I650, S650, OK),
            (I649, S649, OK),
            (I648, BAD_648, ERROR),
        ],
    },
];

/// The compact store under test: LDK's (`CounterpartyCommitmentSecrets`)
/// and Tidemark's own (`RevocationSecrets`, the one channel states keep).
trait SecretStore {
    fn provide(&mut self, index: u64, secret: [u8; 32]) -> bool;
    fn get(&self, index: u64) -> Option<[u8; 32]>;
    fn min_seen(&self) -> u64;
}

impl SecretStore for CounterpartyCommitmentSecrets {
    fn provide(&mut self, index: u64, secret: [u8; 32]) -> bool {
        self.provide_secret(index, secret).is_ok()
    }
    fn get(&self, index: u64) -> Option<[u8; 32]> {
        self.get_secret(index)
    }
    fn min_seen(&self) -> u64 {
        self.get_min_seen_secret()
    }
}

impl SecretStore for tidemark_lightning::channel::RevocationSecrets {
    fn provide(&mut self, index: u64, secret: [u8; 32]) -> bool {
        tidemark_lightning::channel::RevocationSecrets::provide(self, index, secret).is_ok()
    }
    fn get(&self, index: u64) -> Option<[u8; 32]> {
        tidemark_lightning::channel::RevocationSecrets::get(self, index)
    }
    fn min_seen(&self) -> u64 {
        tidemark_lightning::channel::RevocationSecrets::min_seen(self)
    }
}

/// Runs every storage case of Appendix D against a fresh `S`.
fn storage_vectors_accept_and_reject_as_listed<S: SecretStore>(new: impl Fn() -> S) {
    for case in &STORAGE {
        let mut store = new();
        let mut accepted: Vec<(u64, [u8; 32])> = Vec::new();
        for (step, &(index, hex, expected)) in case.steps.iter().enumerate() {
            let secret = bytes32(hex);
            let ok = store.provide(index, secret);
            assert_eq!(ok, expected, "{}: step {step} (I = {index})", case.name);
            if !ok {
                // A rejected secret leaves the store as it was.
                assert_eq!(store.min_seen(), accepted.last().unwrap().0);
                continue;
            }
            accepted.push((index, secret));
            // Every accepted secret can be read back, and nothing below
            // the newest index exists yet.
            for &(i, s) in &accepted {
                assert_eq!(store.get(i), Some(s), "{}: I = {i}", case.name);
            }
            assert_eq!(store.min_seen(), index, "{}", case.name);
            assert_eq!(store.get(index - 1), None, "{}", case.name);
        }
        // Every case ends as BOLT 3 says: the correct sequence accepts all
        // eight, each incorrect case rejects its last insertion.
        let last_ok = case.steps.last().unwrap().2;
        assert_eq!(last_ok, case.name == "insert_secret correct sequence");
    }
}

#[test]
fn appendix_d_storage_vectors_accept_and_reject_as_listed() {
    storage_vectors_accept_and_reject_as_listed(CounterpartyCommitmentSecrets::new);
}

/// The same vectors through the store Tidemark's channel state keeps.
#[test]
fn appendix_d_storage_vectors_through_tidemarks_own_store() {
    storage_vectors_accept_and_reject_as_listed(
        tidemark_lightning::channel::RevocationSecrets::new,
    );
}

#[test]
fn appendix_d_storage_secrets_are_the_generation_of_their_seeds() {
    let correct = [S655, S654, S653, S652, S651, S650, S649, S648];
    for (k, hex) in correct.iter().enumerate() {
        assert_eq!(
            build_commitment_secret(&[0xff; 32], I655 - k as u64),
            bytes32(hex)
        );
    }
    // "Incorrect entries are seeded with 0x000...00."
    let incorrect = [
        (I655, BAD_655),
        (I654, BAD_654),
        (I653, BAD_653),
        (I652, BAD_652),
        (I651, BAD_651),
        (I650, BAD_650),
        (I649, BAD_649),
        (I648, BAD_648),
    ];
    for (index, hex) in incorrect {
        assert_eq!(build_commitment_secret(&[0; 32], index), bytes32(hex));
    }
}

// --- Appendix E: key derivation -------------------------------------------

const BASE_SECRET: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const PER_COMMITMENT_SECRET: &str =
    "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";
const BASE_POINT: &str = "036d6caac248af96f6afa7f904f550253a0f3ef3f5aa2fe6838a95b216691468e2";
const PER_COMMITMENT_POINT: &str =
    "025f7117a78150fe2ef97db7cfc83bd57b2e2c0d0dd25eaf467a4a1c2a45ce1486";
// SHA256(per_commitment_point || basepoint), given in the vector's notes.
const TWEAK: &str = "cbcdd70fcfad15ea8e9e5c5a12365cf00912504f08ce01593689dd426bca9ff0";
const LOCALPUBKEY: &str = "0235f2dbfaa89b57ec7b055afe29849ef7ddfeb1cefdb9ebdc43f5494984db29e5";
const LOCALPRIVKEY: &str = "cbced912d3b21bf196a766651e436aff192362621ce317704ea2f75d87e7be0f";
const REVOCATIONPUBKEY: &str = "02916e326636d19c33f13e8c0c3a03dd157f332f3e99c317c141dd865eb01f8ff0";
const REVOCATIONPRIVKEY: &str = "d09ffff62ddb2297ab000cc85bcb4283fdeb6aa052affbc9dddcf33b61078110";

#[test]
fn appendix_e_points_of_the_given_secrets() {
    let secp = Secp256k1::new();
    assert_eq!(
        PublicKey::from_secret_key(&secp, &secret(BASE_SECRET)),
        pubkey(BASE_POINT)
    );
    assert_eq!(
        PublicKey::from_secret_key(&secp, &secret(PER_COMMITMENT_SECRET)),
        pubkey(PER_COMMITMENT_POINT)
    );
}

#[test]
fn appendix_e_derivation_of_pubkey_from_basepoint_and_per_commitment_point() {
    let secp = Secp256k1::new();
    let base = pubkey(BASE_POINT);
    let point = pubkey(PER_COMMITMENT_POINT);
    let expected = pubkey(LOCALPUBKEY);

    // The tweak, as the vector spells it out.
    let delayed_base = DelayedPaymentBasepoint::from(base);
    let tweak = delayed_base.derive_add_tweak(&point);
    assert_eq!(tweak.to_byte_array(), bytes32(TWEAK));
    let mut engine = sha256::Hash::engine();
    bitcoin::hashes::HashEngine::input(&mut engine, &point.serialize());
    bitcoin::hashes::HashEngine::input(&mut engine, &base.serialize());
    assert_eq!(sha256::Hash::from_engine(engine), tweak);
    assert_eq!(add_public_key_tweak(&secp, &base, &tweak), expected);

    // localpubkey, remotepubkey, local/remote_htlcpubkey and
    // local/remote_delayedpubkey all use this formula; LDK has one type
    // per role.
    assert_eq!(
        DelayedPaymentKey::from_basepoint(&secp, &delayed_base, &point).to_public_key(),
        expected
    );
    assert_eq!(
        HtlcKey::from_basepoint(&secp, &HtlcBasepoint::from(base), &point).to_public_key(),
        expected
    );
}

#[test]
fn appendix_e_derivation_of_private_key_from_basepoint_secret_and_per_commitment_secret() {
    let secp = Secp256k1::new();
    let point = pubkey(PER_COMMITMENT_POINT);
    let derived = derive_private_key(&secp, &point, &secret(BASE_SECRET));
    assert_eq!(derived.secret_bytes(), bytes32(LOCALPRIVKEY));
    assert_eq!(
        PublicKey::from_secret_key(&secp, &derived),
        pubkey(LOCALPUBKEY)
    );
}

#[test]
fn appendix_e_derivation_of_revocation_pubkey_from_basepoint_and_per_commitment_point() {
    let secp = Secp256k1::new();
    let key = RevocationKey::from_basepoint(
        &secp,
        &RevocationBasepoint::from(pubkey(BASE_POINT)),
        &pubkey(PER_COMMITMENT_POINT),
    );
    assert_eq!(key.to_public_key(), pubkey(REVOCATIONPUBKEY));
}

#[test]
fn appendix_e_derivation_of_revocation_secret_from_basepoint_secret_and_per_commitment_secret() {
    let secp = Secp256k1::new();
    let derived =
        derive_private_revocation_key(&secp, &secret(PER_COMMITMENT_SECRET), &secret(BASE_SECRET));
    assert_eq!(derived.secret_bytes(), bytes32(REVOCATIONPRIVKEY));
    assert_eq!(
        PublicKey::from_secret_key(&secp, &derived),
        pubkey(REVOCATIONPUBKEY)
    );
}
