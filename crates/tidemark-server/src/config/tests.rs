//! Unit tests of the configuration.

use super::*;

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
