//! Shared helpers of the end-to-end tests: an embedded signer over real
//! mutual TLS on 127.0.0.1 and request builders.
#![allow(dead_code, unreachable_pub, missing_docs)]

use tidemark_cli::embedded::{DEMO_CHAIN, Embedded, VALIDATOR_KEY};
use tidemark_client::v1;

/// Starts a signer with `replicas` client certificates in a temp dir.
pub async fn signer(replicas: u32) -> Embedded {
    Embedded::start_temp(replicas, None)
        .await
        .expect("embedded signer starts")
}

/// A vote request on the demo chain with the validator key.
pub fn vote(vote_type: v1::VoteType, height: i64, round: i32, block: Option<u8>, seconds: i64) -> v1::SignVoteRequest {
    v1::SignVoteRequest {
        chain_id: DEMO_CHAIN.into(),
        key_id: VALIDATOR_KEY.into(),
        vote: Some(v1::Vote {
            r#type: vote_type as i32,
            height,
            round,
            block_id: block.map(|b| v1::BlockId {
                hash: vec![b; 32],
                part_set_header: Some(v1::PartSetHeader {
                    total: 1,
                    hash: vec![b ^ 0xff; 32],
                }),
            }),
            timestamp: Some(v1::Timestamp { seconds, nanos: 0 }),
            extension: Vec::new(),
        }),
    }
}

/// True when running in CI, where a missing component must fail a test.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}
