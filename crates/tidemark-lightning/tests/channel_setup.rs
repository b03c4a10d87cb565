//! Setup: a channel is set up once, its funding outpoint never changes,
//! its type and contest delays are checked, and its holder keys must be
//! those of its channel keys id.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod channel_support;

use bitcoin::Txid;
use bitcoin::hashes::Hash as _;
use channel_support::*;
use lightning::types::features::ChannelTypeFeatures;
use tidemark_lightning::channel::{ChannelError, ChannelKeys, ChannelKind, ChannelRequest, Output};
use tidemark_lightning::tags;

fn setup(c: &Channel) -> ChannelRequest {
    ChannelRequest::Setup(Box::new(c.setup.clone()))
}

#[test]
fn channel_unknown_nothing_but_points_before_setup() {
    let mut c = Channel::new(ChannelKind::StaticRemoteKey);
    c.sign_counterparty(0).refused(&tags::CHANNEL_UNKNOWN);
    c.release_holder(0).refused(&tags::CHANNEL_UNKNOWN);
    // The first point goes into open_channel, before any setup.
    let point = c
        .ask(ChannelRequest::PerCommitmentPoint(n(0)))
        .unwrap()
        .signed();
    assert_eq!(point, Output::PerCommitmentPoint(c.holder_point(0)));
    assert!(c.state.is_none());
    c.ask(setup(&c)).unwrap().signed();
    c.sign_counterparty(0).signed();
}

#[test]
fn channel_already_setup_and_funding_outpoint_changed() {
    let mut c = Channel::new(ChannelKind::AnchorsZeroFeeHtlcTx);
    c.ask(setup(&c)).unwrap().signed();
    assert_eq!(c.ask(setup(&c)).unwrap().replayed(), Output::Done);
    let mut moved = c.setup.clone();
    moved.funding_outpoint.txid = Txid::from_byte_array([0x43; 32]);
    let detail = c
        .ask(ChannelRequest::Setup(Box::new(moved)))
        .unwrap()
        .refused(&tags::FUNDING_OUTPOINT_CHANGED);
    assert!(detail.contains("4343"), "{detail}");
    let mut other = c.setup.clone();
    other.holder_selected_contest_delay += 1;
    c.ask(ChannelRequest::Setup(Box::new(other)))
        .unwrap()
        .refused(&tags::CHANNEL_ALREADY_SETUP);
    assert_eq!(c.state().setup, c.setup);
}

#[test]
fn channel_type_only_allowed_rebuildable_types() {
    let mut c = Channel::new(ChannelKind::AnchorsZeroFeeHtlcTx);
    c.policy
        .allowed_types
        .remove(&ChannelKind::AnchorsZeroFeeHtlcTx);
    c.ask(setup(&c)).unwrap().refused(&tags::CHANNEL_TYPE);
    let mut zero_fee = c.setup.clone();
    zero_fee.channel_type = ChannelTypeFeatures::anchors_zero_fee_commitments()
        .le_flags()
        .to_vec();
    c.ask(ChannelRequest::Setup(Box::new(zero_fee)))
        .unwrap()
        .refused(&tags::CHANNEL_TYPE);
    // Legacy (no static remote key) cannot be rebuilt either.
    let mut legacy = c.setup.clone();
    legacy.channel_type = Vec::new();
    c.ask(ChannelRequest::Setup(Box::new(legacy)))
        .unwrap()
        .refused(&tags::CHANNEL_TYPE);
    // scid_privacy and zero_conf change no transaction.
    let mut c = Channel::new(ChannelKind::StaticRemoteKey);
    let mut features = ChannelTypeFeatures::only_static_remote_key();
    features.set_scid_privacy_required();
    features.set_zero_conf_required();
    c.setup.channel_type = features.le_flags().to_vec();
    c.ask(setup(&c)).unwrap().signed();
}

#[test]
fn contest_delay_range_refused_then_downgraded() {
    let mut c = Channel::new(ChannelKind::StaticRemoteKey);
    c.setup.counterparty_selected_contest_delay = 5_000;
    let detail = c
        .ask(setup(&c))
        .unwrap()
        .refused(&tags::CONTEST_DELAY_RANGE);
    assert!(detail.contains("counterparty"), "{detail}");
    c.policy.downgrade("policy-contest-delay-range").unwrap();
    let out = c.ask(setup(&c)).unwrap();
    assert_eq!(out.warnings().len(), 1);
    out.signed();
}

#[test]
fn holder_keys_of_another_channel_are_an_error_and_store_nothing() {
    let mut c = Channel::new(ChannelKind::StaticRemoteKey);
    c.setup.holder = ChannelKeys {
        funding_pubkey: c.setup.counterparty.funding_pubkey,
        ..c.setup.holder
    };
    let err = c.ask(setup(&c)).unwrap_err();
    assert!(matches!(err, ChannelError::HolderKeysMismatch(_)), "{err}");
    assert!(c.state.is_none());
    let mut c = Channel::new(ChannelKind::StaticRemoteKey);
    c.setup.channel_value_sat = 0;
    assert!(matches!(
        c.ask(setup(&c)),
        Err(ChannelError::InvalidRequest(_))
    ));
}
