//! Unit tests of the configuration.

use super::*;
use tidemark_lightning::RemoteKeyDerivation;

const GOOD: &str = r#"
[server]
listen = "127.0.0.1:7443"
[tls]
ca_cert = "tls/ca.pem"
server_cert = "tls/server.pem"
server_key = "tls/server-key.pem"
[store]
path = "state.db"
[keystore]
path = "keystore.json"
[[clients]]
identity = "replica-1"
keys = ["validator"]
domains = ["consensus"]
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(
        text,
        Path::new("/etc/tidemark/tidemark.toml"),
        Path::new("/etc/tidemark"),
    )
}

#[test]
fn a_good_config_parses_and_resolves_paths() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.store.path, Path::new("/etc/tidemark/state.db"));
    assert_eq!(c.server.max_in_flight, 1024);
    let grants = c.grants();
    assert_eq!(grants.len(), 1);
    assert!(grants[0].1.domains.contains(&Domain::Consensus));
}

#[test]
fn an_unknown_field_is_rejected_by_name_and_file() {
    let text = GOOD.replace("[store]\n", "[store]\nsynchronous = \"off\"\n");
    let e = parse(&text).unwrap_err().to_string();
    assert!(e.contains("synchronous"), "{e}");
    assert!(e.contains("/etc/tidemark/tidemark.toml"), "{e}");
}

#[test]
fn a_bad_value_names_its_field() {
    let text = GOOD.replace(
        "domains = [\"consensus\"]",
        "domains = [\"consensus\", \"dogecoin\"]",
    );
    let e = parse(&text).unwrap_err().to_string();
    assert!(e.contains("clients[0].domains[1]"), "{e}");
    let text = GOOD.replace("keys = [\"validator\"]", "keys = [\"a/b\"]");
    assert!(
        parse(&text)
            .unwrap_err()
            .to_string()
            .contains("clients[0].keys[0]")
    );
}

#[test]
fn the_shipped_consensus_policy_file_is_a_valid_config_section() {
    let policy = include_str!("../../../../policies/consensus-default.toml");
    let c = parse(&format!("{GOOD}\n{policy}")).unwrap();
    assert!(c.consensus.tezos_allowed_magic.is_empty());
}

const WALLET: &str = r#"
[[bitcoin.wallets]]
name = "payouts"
kind = "wpkh"
network = "regtest"
policy = "policies/bitcoin-wallet.toml"
"#;

#[test]
fn a_wallet_section_parses_resolves_its_policy_and_loads_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(
        dir.path().join("policies/bitcoin-wallet.toml"),
        include_str!("../../../../policies/bitcoin-wallet.toml"),
    )
    .unwrap();
    let c = Config::parse(
        &format!("{GOOD}{WALLET}"),
        &dir.path().join("tidemark.toml"),
        dir.path(),
    )
    .unwrap();
    assert_eq!(
        c.bitcoin.wallets[0].policy,
        dir.path().join("policies/bitcoin-wallet.toml")
    );
    let wallets = c.wallets().unwrap();
    assert_eq!(wallets[0].name.as_str(), "payouts");
    assert_eq!(wallets[0].kind, WalletKind::Wpkh);
    assert_eq!(wallets[0].network, Network::Regtest);
    assert_eq!(wallets[0].policy.max_fee_sat, 100_000);
    assert!(c.wallet_named("payouts").unwrap().is_some());
    assert!(c.wallet_named("other").unwrap().is_none());
}

#[test]
fn a_bad_wallet_field_is_named() {
    let cases = [
        ("kind = \"wpkh\"", "kind = \"p2sh\"", "p2sh"),
        (
            "network = \"regtest\"",
            "network = \"mainnet\"",
            "bitcoin.wallets[0].network",
        ),
        (
            "name = \"payouts\"",
            "name = \"a/b\"",
            "bitcoin.wallets[0].name",
        ),
        ("policy = ", "color = \"red\"\npolicy = ", "color"),
    ];
    for (from, to, named) in cases {
        let text = format!("{GOOD}{}", WALLET.replace(from, to));
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains(named), "{to}: {e}");
    }
    let twice = format!("{GOOD}{WALLET}{WALLET}");
    let e = parse(&twice).unwrap_err().to_string();
    assert!(e.contains("bitcoin.wallets[1].name"), "{e}");
}

#[test]
fn an_unreadable_or_invalid_policy_names_its_field() {
    let c = parse(&format!("{GOOD}{WALLET}")).unwrap();
    let e = c.wallets().unwrap_err().to_string();
    assert!(e.contains("bitcoin.wallets[0].policy"), "{e}");
    assert!(e.contains("cannot read"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(
        dir.path().join("policies/bitcoin-wallet.toml"),
        "[fees]\nmax_fee_sat = 1\n",
    )
    .unwrap();
    let c = Config::parse(
        &format!("{GOOD}{WALLET}"),
        &dir.path().join("tidemark.toml"),
        dir.path(),
    )
    .unwrap();
    let e = c.wallets().unwrap_err().to_string();
    assert!(e.contains("bitcoin.wallets[0].policy"), "{e}");
    assert!(e.contains("tidemark.toml"), "{e}");
}

#[test]
fn a_duplicate_identity_is_rejected() {
    let text = format!("{GOOD}\n[[clients]]\nidentity = \"replica-1\"\n");
    assert!(
        parse(&text)
            .unwrap_err()
            .to_string()
            .contains("clients[1].identity")
    );
}

const LIGHTNING: &str = r#"
[lightning]
node = "ln-node"
network = "regtest"
policy = "policies/lightning-default.toml"
remote_key_derivation = "v2"
"#;

fn with_lightning_policy(text: &str) -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(
        dir.path().join("policies/lightning-default.toml"),
        include_str!("../../../../policies/lightning-default.toml"),
    )
    .unwrap();
    let c = Config::parse(text, &dir.path().join("tidemark.toml"), dir.path()).unwrap();
    (dir, c)
}

#[test]
fn a_lightning_section_parses_resolves_its_policy_and_loads_it() {
    let (dir, c) = with_lightning_policy(&format!("{GOOD}{LIGHTNING}"));
    let section = c.lightning.as_ref().unwrap();
    assert_eq!(
        section.policy,
        dir.path().join("policies/lightning-default.toml")
    );
    let l = c.lightning().unwrap().unwrap();
    assert_eq!(l.node.as_str(), "ln-node");
    assert_eq!(l.network, Network::Regtest);
    assert_eq!(l.chain.as_str(), "regtest");
    assert_eq!(l.remote_key_derivation, RemoteKeyDerivation::V2);
    assert_eq!(l.policy, tidemark_lightning::LightningPolicy::default());
    // No section, no node.
    assert!(parse(GOOD).unwrap().lightning().unwrap().is_none());
}

#[test]
fn a_bad_lightning_field_is_named() {
    let cases = [
        ("node = \"ln-node\"", "node = \"a/b\"", "lightning.node"),
        (
            "network = \"regtest\"",
            "network = \"mainnet\"",
            "lightning.network",
        ),
        (
            "remote_key_derivation = \"v2\"",
            "remote_key_derivation = \"v3\"",
            "v3",
        ),
        ("policy = ", "seed = \"00\"\npolicy = ", "seed"),
    ];
    for (from, to, named) in cases {
        let text = format!("{GOOD}{}", LIGHTNING.replace(from, to));
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains(named), "{to}: {e}");
    }
    // The derivation is required: a node moving from LDK must say which.
    let text = format!(
        "{GOOD}{}",
        LIGHTNING.replace("remote_key_derivation = \"v2\"\n", "")
    );
    let e = parse(&text).unwrap_err().to_string();
    assert!(e.contains("remote_key_derivation"), "{e}");
    // An unreadable policy names its field.
    let e = parse(&format!("{GOOD}{LIGHTNING}"))
        .unwrap()
        .lightning()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("lightning.policy") && e.contains("cannot read"),
        "{e}"
    );
}

#[test]
fn a_lightning_policy_that_downgrades_a_safety_rule_names_the_tag() {
    let (dir, _) = with_lightning_policy(&format!("{GOOD}{LIGHTNING}"));
    let path = dir.path().join("policies/lightning-default.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("tags = []", "tags = [\"policy-commitment-retry-same\"]");
    std::fs::write(&path, text).unwrap();
    let c = Config::parse(
        &format!("{GOOD}{LIGHTNING}"),
        &dir.path().join("tidemark.toml"),
        dir.path(),
    )
    .unwrap();
    let e = c.lightning().unwrap_err().to_string();
    assert!(e.contains("lightning.policy"), "{e}");
    assert!(e.contains("policy-commitment-retry-same"), "{e}");
}

#[test]
fn the_node_seed_must_be_32_bytes_and_the_error_says_why() {
    let (_dir, c) = with_lightning_policy(&format!("{GOOD}{LIGHTNING}"));
    let l = c.lightning().unwrap().unwrap();
    let keys = l.node_keys(&[7; 32]).unwrap();
    assert_eq!(keys.remote_key_derivation(), RemoteKeyDerivation::V2);
    for len in [16, 31, 33, 64] {
        let e = l.node_keys(&vec![7; len]).unwrap_err().to_string();
        assert!(e.contains(&format!("is {len} bytes")), "{e}");
        assert!(e.contains("exactly 32 bytes"), "{e}");
        assert!(e.contains("KeysManager"), "{e}");
        assert!(e.contains("tidemark.toml"), "{e}");
    }
}
