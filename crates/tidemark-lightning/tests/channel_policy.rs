//! The policy file: the shipped default, unknown fields, ranges, and the
//! downgrade list (business rules may become warnings; funds-safety rules
//! never).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bitcoin::Network;
use tidemark_lightning::channel::{ChannelError, ChannelKind};
use tidemark_lightning::policy::LightningPolicy;
use tidemark_lightning::tags;

const DEFAULT: &str = include_str!("../../../policies/lightning-default.toml");

fn load(text: &str) -> Result<LightningPolicy, ChannelError> {
    LightningPolicy::from_toml(text, Network::Bitcoin)
}

fn message(text: &str) -> String {
    match load(text) {
        Err(ChannelError::Config(m)) => m,
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn the_shipped_file_is_the_default_policy() {
    assert_eq!(load(DEFAULT).unwrap(), LightningPolicy::default());
}

#[test]
fn unknown_fields_are_rejected_by_name() {
    let text = DEFAULT.replace("max_htlcs = 483", "max_htlcs = 483\nmax_htlc = 1");
    let m = message(&text);
    assert!(m.contains("max_htlc`"), "{m}");
    let m = message(&format!("{DEFAULT}\n[extra]\nx = 1\n"));
    assert!(m.contains("extra"), "{m}");
}

#[test]
fn inverted_ranges_and_unknown_types_name_the_field() {
    let m = message(&DEFAULT.replace("min_feerate_per_kw = 253", "min_feerate_per_kw = 200000"));
    assert!(m.contains("commitment.min_feerate_per_kw"), "{m}");
    let m = message(&DEFAULT.replace("min_contest_delay = 144", "min_contest_delay = 3000"));
    assert!(m.contains("channel.min_contest_delay"), "{m}");
    let m = message(&DEFAULT.replace("\"static-remote-key\", ", "\"legacy\", "));
    assert!(m.contains("channel.allowed_types[0]"), "{m}");
    let m = message(&DEFAULT.replace(
        "addresses = []",
        "addresses = [\"tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx\"]",
    ));
    assert!(m.contains("destinations.addresses[0]"), "{m}");
    let m = message(&DEFAULT.replace("scripts = []", "scripts = [\"zz\"]"));
    assert!(m.contains("destinations.scripts[0]"), "{m}");
}

#[test]
fn allowlist_and_types_load() {
    let text = DEFAULT
        .replace(
            "addresses = []",
            "addresses = [\"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4\"]",
        )
        .replace(
            "scripts = []",
            "scripts = [\"0014751e76e8199196d454941c45d1b3a323f1433bd6\"]",
        )
        .replace("\"static-remote-key\", ", "");
    let policy = load(&text).unwrap();
    // The address and the script are the same output.
    assert_eq!(policy.allowlist.len(), 1);
    assert_eq!(
        policy.allowed_types.iter().copied().collect::<Vec<_>>(),
        [ChannelKind::AnchorsZeroFeeHtlcTx]
    );
}

#[test]
fn business_rules_may_be_downgraded() {
    for tag in tags::BUSINESS {
        let text = DEFAULT.replace("tags = []", &format!("tags = [\"{tag}\"]"));
        let policy = load(&text).unwrap();
        assert!(policy.is_downgraded(tag), "{tag}");
        assert_eq!(policy.downgraded().count(), 1);
    }
}

#[test]
fn funds_safety_rules_can_never_be_downgraded() {
    for tag in tags::SAFETY {
        let text = DEFAULT.replace("tags = []", &format!("tags = [\"{tag}\"]"));
        let m = message(&text);
        assert!(m.contains(tag.as_str()), "{m}");
        assert!(m.contains("funds-safety"), "{m}");
        assert!(m.contains("downgrade.tags[0]"), "{m}");
        let mut policy = LightningPolicy::default();
        assert!(policy.downgrade(tag.as_str()).is_err());
        assert!(!policy.is_downgraded(tag));
    }
    let m = message(&DEFAULT.replace("tags = []", "tags = [\"policy-no-such-rule\"]"));
    assert!(m.contains("policy-no-such-rule"), "{m}");
    let m = message(&DEFAULT.replace("tags = []", "tags = [\"hwm-double-sign\"]"));
    assert!(m.contains("hwm-double-sign"), "{m}");
}
