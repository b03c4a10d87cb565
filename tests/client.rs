//! The blocking client, used from a plain thread as a synchronous caller
//! (an LDK signer trait, a wallet worker) would: signs, replays identical
//! requests byte for byte, and returns refusals as typed values.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use tidemark_cli::embedded::Embedded;
use tidemark_client::{BlockingClient, ClientError, v1};

#[test]
fn the_blocking_client_signs_replays_and_reports_refusals() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let signer: Embedded = runtime.block_on(support::signer(1));
    let client = BlockingClient::connect_lazy(signer.client_options("replica-1").unwrap()).unwrap();

    let vote = |block| support::vote(v1::VoteType::Prevote, 7, 0, Some(block), 1_700_000_000);
    let first = client.sign_vote(vote(1)).unwrap();
    assert_eq!(first.outcome, v1::Outcome::Signed as i32);
    let again = client.sign_vote(vote(1)).unwrap();
    assert_eq!(again.outcome, v1::Outcome::Replayed as i32);
    assert_eq!(again.signature, first.signature);

    match client.sign_vote(vote(2)) {
        Err(ClientError::Refused(r)) => {
            assert_eq!(r.tag, "hwm-double-sign");
            assert_eq!(r.mark("height"), Some(7));
        }
        other => panic!("a conflicting vote must be refused, got {other:?}"),
    }
    // A replica has no admin grant.
    assert!(matches!(
        client.status(),
        Err(ClientError::PermissionDenied(_))
    ));

    drop(client);
    runtime.block_on(signer.stop());
}
