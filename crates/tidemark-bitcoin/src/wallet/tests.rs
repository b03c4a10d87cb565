//! BIP 84 and BIP 86 vectors, descriptors, and recognition by derivation.

use secrecy::{SecretSlice, SecretString};
use tidemark_core::KeyBackend as _;
use tidemark_keys::{KdfParams, SoftwareKeystore};

use super::*;

/// The seed of BIP 39's "abandon abandon ... about" with no passphrase,
/// the one BIP 84 and BIP 86 use for their vectors.
const ABANDON_SEED: &str = "5eb00bbddcf069084889a8ab9155568165f5c453ccb85e70811aaed6f6da5fc19a5ac40b389cd370d086206dec8aa6c43daea6690f20ad3d8d48b2d2ce9e38e4";

fn wallet(kind: WalletKind, path: &str, network: Network) -> Wallet {
    let dir = tempfile::tempdir().unwrap();
    let mut ks = SoftwareKeystore::create_from_seed(
        dir.path().join("k.json"),
        &SecretString::from("pw"),
        SecretSlice::from(hex::decode(ABANDON_SEED).unwrap()),
        KdfParams::insecure_for_tests(),
    )
    .unwrap();
    let name = KeyId::new("w").unwrap();
    ks.add_secp256k1(name.clone(), &path.parse().unwrap())
        .unwrap();
    let xpub = ks.extended_public_key(&name).unwrap();
    Wallet::new(name, kind, network, &xpub).unwrap()
}

#[test]
fn bip84_vectors() {
    let w = wallet(WalletKind::Wpkh, "m/84'/0'/0'", Network::Bitcoin);
    assert_eq!(
        w.address_at(Branch::Receive, 0).unwrap().to_string(),
        "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"
    );
    assert_eq!(
        w.address_at(Branch::Receive, 1).unwrap().to_string(),
        "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"
    );
    assert_eq!(
        w.address_at(Branch::Change, 0).unwrap().to_string(),
        "bc1q8c6fshw2dlwun7ekn9qwf37cu2rn755upcp6el"
    );
}

#[test]
fn bip86_vectors() {
    let w = wallet(WalletKind::Tr, "m/86'/0'/0'", Network::Bitcoin);
    assert_eq!(
        w.xpub().to_string(),
        "xpub6BgBgsespWvERF3LHQu6CnqdvfEvtMcQjYrcRzx53QJjSxarj2afYWcLteoGVky7D3UKDP9QyrLprQ3VCECoY49yfdDEHGCtMMj92pReUsQ"
    );
    assert_eq!(
        w.address_at(Branch::Receive, 0).unwrap().to_string(),
        "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr"
    );
    assert_eq!(
        w.address_at(Branch::Receive, 1).unwrap().to_string(),
        "bc1p4qhjn9zdvkux4e44uhx8tc55attvtyu358kutcqkudyccelu0was9fqzwh"
    );
    assert_eq!(
        w.address_at(Branch::Change, 0).unwrap().to_string(),
        "bc1p3qkhfews2uk44qtvauqyr2ttdsw7svhkl9nkm9s9c3x4ax5h60wqwruhk7"
    );
}

#[test]
fn descriptors_carry_origin_and_checksum_and_derive_the_same_scripts() {
    for (kind, path) in [
        (WalletKind::Wpkh, "m/84'/1'/0'"),
        (WalletKind::Tr, "m/86'/1'/0'"),
    ] {
        let w = wallet(kind, path, Network::Testnet);
        for branch in [Branch::Receive, Branch::Change] {
            let text = w.descriptor(branch);
            assert!(text.starts_with(&format!("{kind}([73c5da0a/")), "{text}");
            assert!(text.contains("tpub"), "{text}");
            let (_, checksum) = text.split_once('#').unwrap();
            assert_eq!(checksum.len(), 8, "{text}");
            let parsed = Descriptor::<DescriptorPublicKey>::from_str(&text).unwrap();
            for index in [0, 5, 1000] {
                assert_eq!(
                    parsed.at_derivation_index(index).unwrap().script_pubkey(),
                    w.script_at(branch, index).unwrap()
                );
            }
        }
    }
}

#[test]
fn scripts_are_recognised_by_derivation_not_by_claim() {
    let w = wallet(WalletKind::Wpkh, "m/84'/1'/0'", Network::Testnet);
    let mine = w.script_at(Branch::Change, 3).unwrap();
    let origin = w.origin(Branch::Change, 3);
    assert_eq!(
        w.recognise(&mine, [&origin].into_iter()),
        Ownership::Ours(ChildPath::new(vec![1, 3]).unwrap())
    );
    // The right origin on another script: a disguise.
    let other = w.script_at(Branch::Change, 4).unwrap();
    assert_eq!(w.recognise(&other, [&origin].into_iter()), Ownership::Lie);
    // No origin, or another seed's: not the wallet's.
    assert_eq!(w.recognise(&mine, std::iter::empty()), Ownership::Foreign);
    let foreign = (Fingerprint::from([1, 2, 3, 4]), origin.1.clone());
    assert_eq!(
        w.recognise(&mine, [&foreign].into_iter()),
        Ownership::Foreign
    );
    // Branches other than 0 and 1, or hardened children, are not the
    // wallet's descriptors.
    let odd = w.origin(Branch::Change, 3);
    let branch_two = (
        odd.0,
        w.account_path.extend([
            ChildNumber::Normal { index: 2 },
            ChildNumber::Normal { index: 3 },
        ]),
    );
    assert_eq!(
        w.recognise(&mine, [&branch_two].into_iter()),
        Ownership::Foreign
    );
    let hardened = (
        odd.0,
        w.account_path.extend([
            ChildNumber::Normal { index: 1 },
            ChildNumber::Hardened { index: 3 },
        ]),
    );
    assert_eq!(
        w.recognise(&mine, [&hardened].into_iter()),
        Ownership::Foreign
    );
}
