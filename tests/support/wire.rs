//! The test checkers' own conversion of wire messages into the consensus
//! crate's types, to rebuild the bytes the signer should have signed.
//! Deliberately separate from the server's conversion, so a bug there
//! cannot hide itself from the checkers.

use tidemark_client::v1;
use tidemark_consensus::{BlockId, PartSetHeader, SignedMsgType, Timestamp, Vote};

/// A wire timestamp (absent: the epoch).
pub fn timestamp(t: Option<v1::Timestamp>) -> Timestamp {
    let t = t.unwrap_or_default();
    Timestamp {
        seconds: t.seconds,
        nanos: t.nanos,
    }
}

/// A wire block id.
pub fn block_id(b: &v1::BlockId) -> BlockId {
    let psh = b.part_set_header.clone().unwrap_or_default();
    BlockId {
        hash: b.hash.clone(),
        part_set_header: PartSetHeader {
            total: psh.total,
            hash: psh.hash,
        },
    }
}

/// A wire vote, signed at `timestamp`.
pub fn vote(v: &v1::Vote, timestamp: Timestamp) -> Vote {
    Vote {
        msg_type: if v.r#type == v1::VoteType::Prevote as i32 {
            SignedMsgType::Prevote
        } else {
            SignedMsgType::Precommit
        },
        height: v.height,
        round: v.round,
        block_id: v.block_id.as_ref().map(block_id),
        timestamp,
        extension: v.extension.clone(),
    }
}
