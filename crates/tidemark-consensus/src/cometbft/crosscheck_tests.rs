//! Cross-check: our hand-written canonical encoding is byte-identical to
//! tendermint-rs's (`Vote::into_signable_vec`, `Proposal::into_signable_vec`)
//! and to prost's encoding of tendermint-proto's `CanonicalVoteExtension`.

use proptest::prelude::*;
use prost::Message as _;
use tendermint::{Hash, Time, account, block, chain, proposal, vote};
use tendermint_proto::v0_38::types::CanonicalVoteExtension as RawCanonicalVoteExtension;
use tidemark_core::ChainId;

use super::canonical::{self, decode};
use super::types::{BlockId, PartSetHeader, Proposal, SignedMsgType, Timestamp, Vote};

const CHAIN: &str = "cosmoshub-4";

fn tm_block_id(b: &BlockId) -> block::Id {
    block::Id {
        hash: Hash::Sha256(b.hash.clone().try_into().unwrap()),
        part_set_header: block::parts::Header::new(
            b.part_set_header.total,
            Hash::Sha256(b.part_set_header.hash.clone().try_into().unwrap()),
        )
        .unwrap(),
    }
}

fn tm_time(t: Timestamp) -> Time {
    Time::from_unix_timestamp(t.seconds, u32::try_from(t.nanos).unwrap()).unwrap()
}

fn tm_vote(v: &Vote) -> vote::Vote {
    vote::Vote {
        vote_type: match v.msg_type {
            SignedMsgType::Prevote => vote::Type::Prevote,
            SignedMsgType::Precommit => vote::Type::Precommit,
            SignedMsgType::Proposal => unreachable!("not a vote"),
        },
        height: block::Height::try_from(v.height).unwrap(),
        round: block::Round::try_from(v.round).unwrap(),
        block_id: v.block_id.as_ref().map(tm_block_id),
        timestamp: Some(tm_time(v.timestamp)),
        validator_address: account::Id::new([7; 20]),
        validator_index: vote::ValidatorIndex::try_from(3u32).unwrap(),
        signature: None,
        extension: v.extension.clone(),
        extension_signature: None,
    }
}

fn tm_proposal(p: &Proposal) -> proposal::Proposal {
    proposal::Proposal {
        msg_type: proposal::Type::Proposal,
        height: block::Height::try_from(p.height).unwrap(),
        round: block::Round::try_from(p.round).unwrap(),
        pol_round: (p.pol_round >= 0).then(|| block::Round::try_from(p.pol_round).unwrap()),
        block_id: Some(tm_block_id(&p.block_id)),
        timestamp: Some(tm_time(p.timestamp)),
        signature: None,
    }
}

fn ours_vs_tendermint_vote(v: &Vote) {
    v.validate().unwrap();
    let chain_id = ChainId::new(CHAIN).unwrap();
    let ours = canonical::vote_sign_bytes(&chain_id, v);
    let theirs = tm_vote(v).into_signable_vec(chain::Id::try_from(CHAIN).unwrap());
    assert_eq!(hex::encode(&ours), hex::encode(&theirs), "vote {v:?}");
    let summary = decode(&ours).unwrap();
    assert_eq!(summary.timestamp, v.timestamp);
    assert_eq!(
        (summary.height, summary.round),
        (v.height, i64::from(v.round))
    );

    let ext_ours = canonical::vote_extension_sign_bytes(&chain_id, v);
    let ext_theirs = RawCanonicalVoteExtension {
        extension: v.extension.clone(),
        height: v.height,
        round: i64::from(v.round),
        chain_id: CHAIN.to_owned(),
    }
    .encode_length_delimited_to_vec();
    assert_eq!(
        hex::encode(ext_ours),
        hex::encode(ext_theirs),
        "extension {v:?}"
    );
}

fn ours_vs_tendermint_proposal(p: &Proposal) {
    p.validate().unwrap();
    let chain_id = ChainId::new(CHAIN).unwrap();
    let ours = canonical::proposal_sign_bytes(&chain_id, p);
    let theirs = tm_proposal(p).into_signable_vec(chain::Id::try_from(CHAIN).unwrap());
    assert_eq!(hex::encode(&ours), hex::encode(&theirs), "proposal {p:?}");
    let summary = decode(&ours).unwrap();
    assert_eq!(summary.timestamp, p.timestamp);
    assert_eq!(summary.msg_type, SignedMsgType::Proposal);
    assert_eq!(summary.chain_id, CHAIN);
}

fn block(seed: u8) -> BlockId {
    BlockId {
        hash: vec![seed; 32],
        part_set_header: PartSetHeader {
            total: 1,
            hash: vec![seed.wrapping_add(1); 32],
        },
    }
}

fn vote(msg_type: SignedMsgType, block_id: Option<BlockId>, extension: &[u8]) -> Vote {
    Vote {
        msg_type,
        height: 12_345,
        round: 2,
        block_id,
        timestamp: Timestamp {
            seconds: 1_700_000_000,
            nanos: 123_456_789,
        },
        extension: extension.to_vec(),
    }
}

fn proposal(pol_round: i32) -> Proposal {
    Proposal {
        height: 12_345,
        round: 2,
        pol_round,
        block_id: block(9),
        timestamp: Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        },
    }
}

#[test]
fn prevote_with_block_matches_tendermint() {
    ours_vs_tendermint_vote(&vote(SignedMsgType::Prevote, Some(block(1)), b""));
}

#[test]
fn prevote_nil_matches_tendermint() {
    ours_vs_tendermint_vote(&vote(SignedMsgType::Prevote, None, b""));
}

#[test]
fn precommit_with_block_matches_tendermint() {
    ours_vs_tendermint_vote(&vote(SignedMsgType::Precommit, Some(block(2)), b""));
}

#[test]
fn precommit_nil_matches_tendermint() {
    ours_vs_tendermint_vote(&vote(SignedMsgType::Precommit, None, b""));
}

#[test]
fn precommit_with_extension_matches_tendermint() {
    ours_vs_tendermint_vote(&vote(
        SignedMsgType::Precommit,
        Some(block(3)),
        b"oracle prices",
    ));
}

#[test]
fn proposal_without_pol_round_matches_tendermint() {
    ours_vs_tendermint_proposal(&proposal(-1));
}

#[test]
fn proposal_with_pol_round_matches_tendermint() {
    ours_vs_tendermint_proposal(&proposal(1));
}

#[test]
fn round_zero_and_epoch_timestamp_are_omitted_like_tendermint() {
    let mut v = vote(SignedMsgType::Prevote, None, b"");
    v.round = 0;
    v.timestamp = Timestamp::default();
    ours_vs_tendermint_vote(&v);
    let mut p = proposal(-1);
    p.round = 0;
    p.timestamp = Timestamp {
        seconds: Timestamp::MIN_SECONDS,
        nanos: 0,
    };
    ours_vs_tendermint_proposal(&p);
}

fn arb_timestamp() -> impl Strategy<Value = Timestamp> {
    (
        Timestamp::MIN_SECONDS..=Timestamp::MAX_SECONDS,
        0i32..1_000_000_000,
    )
        .prop_map(|(seconds, nanos)| Timestamp { seconds, nanos })
}

fn arb_block_id() -> impl Strategy<Value = BlockId> {
    (any::<[u8; 32]>(), 1u32..=u32::MAX, any::<[u8; 32]>()).prop_map(|(hash, total, psh)| BlockId {
        hash: hash.to_vec(),
        part_set_header: PartSetHeader {
            total,
            hash: psh.to_vec(),
        },
    })
}

proptest! {
    #[test]
    fn random_votes_match_tendermint(
        height in 1i64..=i64::MAX,
        round in 0i32..=i32::MAX,
        precommit in any::<bool>(),
        block_id in proptest::option::of(arb_block_id()),
        timestamp in arb_timestamp(),
        extension in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let msg_type = if precommit { SignedMsgType::Precommit } else { SignedMsgType::Prevote };
        let extension = if precommit && block_id.is_some() { extension } else { Vec::new() };
        ours_vs_tendermint_vote(&Vote { msg_type, height, round, block_id, timestamp, extension });
    }

    #[test]
    fn random_proposals_match_tendermint(
        height in 1i64..=i64::MAX,
        round in 0i32..=i32::MAX,
        pol in any::<proptest::sample::Index>(),
        none in any::<bool>(),
        block_id in arb_block_id(),
        timestamp in arb_timestamp(),
    ) {
        let pol_round = if none { -1 } else { i32::try_from(pol.index(round as usize + 1)).unwrap() - 1 };
        ours_vs_tendermint_proposal(&Proposal { height, round, pol_round, block_id, timestamp });
    }
}
