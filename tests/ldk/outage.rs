//! The signer process is killed (SIGKILL) while node A pays: the channel
//! stalls without closing; when the signer is back on the same address,
//! the adapter's watcher calls `signer_unblocked` and the payment
//! completes. Then the signer is killed at random instants, calls in
//! flight included, while payments flow both ways: every payment
//! completes and nothing is refused (a signature committed but not
//! delivered is replayed to the retry).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::Rng as _;

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

#[test]
fn payments_complete_across_signer_kills_at_random_instants() {
    let mut world = World::start();
    let mut p = pair(&world, "replica-1");
    open_channel(&mut p);
    let keys_id = only_channel_keys_id(&p.a);
    // B gets a balance above its reserve, so it can pay too.
    for _ in 0..3 {
        send_payments(&p.a, &p.b, &[90_000_000]);
        let (events_a, _) = p.pump(|_, _| {}, claim);
        assert_eq!(count(&events_a, sent), 1);
    }
    world.kill();

    let stop = AtomicBool::new(false);
    let kills = AtomicUsize::new(0);
    let (mut sent_a, mut sent_b, mut claimed_a, mut claimed_b, mut failed) = (0, 0, 0, 0, 0);
    let payment_failed = |e: &Event| matches!(e, Event::PaymentFailed { .. });
    const ROUNDS: usize = 24;
    let last = std::thread::scope(|s| {
        let killer = s.spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let mut rng = rand::thread_rng();
            loop {
                let serve =
                    runtime.block_on(world.signer.restart(&world.addr, Duration::from_secs(60)));
                if stop.load(Ordering::SeqCst) {
                    return serve;
                }
                std::thread::sleep(Duration::from_millis(rng.gen_range(20..250)));
                drop(serve); // SIGKILL, whatever it was doing
                kills.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(rng.gen_range(0..100)));
            }
        });
        for round in 0..ROUNDS {
            if round % 3 == 2 {
                send_payments(&p.b, &p.a, &[6_000_000 + round as u64]);
            } else {
                send_payments(&p.a, &p.b, &[7_000_000 + round as u64]);
            }
            let (events_a, events_b) = p.pump(claim, claim);
            sent_a += count(&events_a, sent);
            sent_b += count(&events_b, sent);
            claimed_a += count(&events_a, claimed);
            claimed_b += count(&events_b, claimed);
            failed += count(&events_a, payment_failed) + count(&events_b, payment_failed);
            std::thread::sleep(Duration::from_millis(30));
        }
        stop.store(true, Ordering::SeqCst);
        killer.join().unwrap()
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let expected_from_b = ROUNDS / 3;
    let expected_from_a = ROUNDS - expected_from_b;
    while sent_a < expected_from_a || sent_b < expected_from_b {
        assert!(
            Instant::now() < deadline,
            "payments stuck: A sent {sent_a}/{expected_from_a}, B sent {sent_b}/{expected_from_b}"
        );
        std::thread::sleep(Duration::from_millis(50));
        let (events_a, events_b) = p.pump(claim, claim);
        sent_a += count(&events_a, sent);
        sent_b += count(&events_b, sent);
        claimed_a += count(&events_a, claimed);
        claimed_b += count(&events_b, claimed);
        failed += count(&events_a, payment_failed) + count(&events_b, payment_failed);
        assert_eq!(failed, 0, "a payment failed");
    }
    let kills = kills.load(Ordering::SeqCst);
    eprintln!("{kills} kills of the signer during {ROUNDS} payments");
    assert!(kills >= 3, "the signer was killed only {kills} times");
    assert_eq!((claimed_b, claimed_a), (expected_from_a, expected_from_b));
    assert_eq!(p.a.keys.refusals().total, 0, "{:?}", p.a.keys.refusals());
    assert_eq!(p.a.manager.list_usable_channels().len(), 1);
    assert!(world.mark(&keys_id, "counterparty_signed").unwrap() >= ROUNDS as u64);
    drop(last);
}
