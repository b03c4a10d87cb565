//! The signer process is killed (SIGKILL) while node A pays: the channel
//! stalls without closing; when the signer is back on the same address,
//! the adapter's watcher calls `signer_unblocked` and the payment
//! completes.

use std::time::{Duration, Instant};

use lightning::events::Event;

use crate::{
    World, claim, claimed, count, only_channel_keys_id, open_channel, pair, send_payments, sent,
};

#[test]
fn a_payment_started_while_the_signer_is_down_completes_when_it_is_back() {
    let mut world = World::start();
    let mut p = pair(&world, "replica-1");
    open_channel(&mut p);
    let keys_id = only_channel_keys_id(&p.a);
    send_payments(&p.a, &p.b, &[10_000_000]);
    p.pump(|_, _| {}, claim);
    let signed = world.mark(&keys_id, "counterparty_signed").unwrap();

    world.kill();
    send_payments(&p.a, &p.b, &[25_000_000]);
    let (events_a, events_b) = p.pump(|_, _| {}, claim);
    let closed = |e: &Event| matches!(e, Event::ChannelClosed { .. });
    assert_eq!(count(&events_a, closed) + count(&events_b, closed), 0);
    assert_eq!(
        count(&events_a, sent),
        0,
        "nothing moves without the signer"
    );
    assert_eq!(
        p.a.manager.list_channels().len(),
        1,
        "the channel stays open"
    );
    assert_eq!(p.a.keys.refusals().total, 0, "an outage is not a refusal");

    // Back on the same address: the watcher notices and LDK retries.
    world.restart();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut sent_a, mut claimed_b) = (0, 0);
    while sent_a == 0 {
        assert!(Instant::now() < deadline, "the payment never completed");
        std::thread::sleep(Duration::from_millis(50));
        let (events_a, events_b) = p.pump(|_, _| {}, claim);
        sent_a += count(&events_a, sent);
        claimed_b += count(&events_b, claimed);
    }
    assert_eq!((sent_a, claimed_b), (1, 1));
    assert!(world.mark(&keys_id, "counterparty_signed").unwrap() >= signed + 2);
    assert_eq!(p.a.keys.refusals().total, 0);
    assert_eq!(p.a.manager.list_usable_channels().len(), 1);
}
