//! The stack's event queue: what an application polling it sees.

use seqack::stack::{StackConfig, StackEvent};
use seqack::{Event, Instant, Stack};
use std::net::SocketAddr;

fn stack(addr: &str, seed: u64) -> Stack {
    let mut s = Stack::new(StackConfig {
        seed,
        ..StackConfig::default()
    });
    s.add_address(addr.parse().unwrap());
    s
}

/// Moves every packet `from` has into `to`; returns how many moved.
fn pump(now: Instant, from: &mut Stack, to: &mut Stack) -> usize {
    let mut packets = Vec::new();
    let mut buf = [0u8; 1500];
    while let Some(n) = from.poll_transmit(now, &mut buf) {
        packets.push(buf[..n].to_vec());
    }
    for p in &packets {
        to.handle_packet(now, p);
    }
    packets.len()
}

#[test]
fn a_burst_of_segments_queues_one_readable() {
    let now = Instant::ZERO;
    let (mut a, mut b) = (stack("10.0.0.1", 1), stack("10.0.0.2", 2));
    let server: SocketAddr = "10.0.0.2:80".parse().unwrap();
    let l = b.listen(server, 4).unwrap();
    let c = a.connect(now, None, server).unwrap();
    for _ in 0..4 {
        pump(now, &mut a, &mut b);
        pump(now, &mut b, &mut a);
    }
    let s = b.accept(l).expect("established");
    while a.poll_event().is_some() {}
    while b.poll_event().is_some() {}

    // Several full segments (within the initial window) arrive in one batch.
    let data = vec![7u8; 8 * 1024];
    assert_eq!(a.send(now, c, &data), Ok(data.len()));
    assert!(pump(now, &mut a, &mut b) >= 5);
    let readable: Vec<_> = std::iter::from_fn(|| b.poll_event())
        .filter(|e| {
            matches!(
                e,
                StackEvent::Conn {
                    event: Event::Readable,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(
        readable.len(),
        1,
        "one Readable for the burst: {readable:?}"
    );
    // All the data is there to read after the one event.
    let mut got = vec![0u8; data.len()];
    assert_eq!(b.recv(now, s, &mut got), Ok(data.len()));

    pump(now, &mut b, &mut a);
    while a.poll_event().is_some() {}

    // An event the application has taken is not a reason to drop the next one.
    assert_eq!(a.send(now, c, &data[..100]), Ok(100));
    pump(now, &mut a, &mut b);
    assert!(std::iter::from_fn(|| b.poll_event()).any(|e| matches!(
        e,
        StackEvent::Conn {
            event: Event::Readable,
            ..
        }
    )));
}

/// A whole lifecycle, listener included, as the application sees it: every event both
/// stacks queue, in order, each tagged with the side that queued it.
fn lifecycle_events(state_events: bool) -> Vec<(char, StackEvent)> {
    let cfg = StackConfig {
        tcp: seqack::Config {
            state_events,
            ..seqack::Config::default()
        },
        ..StackConfig::default()
    };
    let mk = |addr: &str, seed| {
        let mut s = Stack::new(StackConfig {
            seed,
            ..cfg.clone()
        });
        s.add_address(addr.parse().unwrap());
        s
    };
    let (mut a, mut b) = (mk("10.0.0.1", 1), mk("10.0.0.2", 2));
    let mut seen = Vec::new();
    let mut drain = |a: &mut Stack, b: &mut Stack| {
        seen.extend(std::iter::from_fn(|| a.poll_event()).map(|e| ('a', e)));
        seen.extend(std::iter::from_fn(|| b.poll_event()).map(|e| ('b', e)));
    };
    let now = Instant::ZERO;
    let server: SocketAddr = "10.0.0.2:80".parse().unwrap();
    let l = b.listen(server, 4).unwrap();
    let c = a.connect(now, None, server).unwrap();
    let exchange = |now, a: &mut Stack, b: &mut Stack| {
        for _ in 0..4 {
            pump(now, a, b);
            pump(now, b, a);
        }
    };
    exchange(now, &mut a, &mut b);
    drain(&mut a, &mut b);
    let s = b.accept(l).expect("established");
    assert_eq!(a.send(now, c, b"ping"), Ok(4));
    exchange(now, &mut a, &mut b);
    let mut buf = [0u8; 16];
    assert_eq!(b.recv(now, s, &mut buf), Ok(4));
    // The client closes first (TIME_WAIT, handed over to a compact record), then the
    // server (LAST_ACK, CLOSED).
    a.close(now, c);
    exchange(now, &mut a, &mut b);
    b.close(now, s);
    exchange(now, &mut a, &mut b);
    drain(&mut a, &mut b);
    assert_eq!(a.time_wait().len(), 1, "the client's connection waits 2MSL");
    let now = now + std::time::Duration::from_secs(61);
    a.handle_timeout(now);
    b.handle_timeout(now);
    assert_eq!(a.time_wait().len(), 0, "2MSL is over");
    b.close_listener(now, l);
    drain(&mut a, &mut b);
    seen
}

fn is_state_change(e: &StackEvent) -> bool {
    matches!(
        e,
        StackEvent::Conn {
            event: Event::StateChange { .. },
            ..
        } | StackEvent::Listener {
            event: Event::StateChange { .. },
            ..
        } | StackEvent::TimeWait {
            event: Event::StateChange { .. },
            ..
        }
    )
}

#[test]
fn without_state_events_exactly_the_state_changes_are_left_out() {
    let on = lifecycle_events(true);
    let off = lifecycle_events(false);
    // With them: the connection's, the listener's and the TIME_WAIT record's.
    let kinds = |f: fn(&StackEvent) -> bool| on.iter().filter(|(_, e)| f(e)).count();
    assert!(
        kinds(|e| matches!(
            e,
            StackEvent::Conn {
                event: Event::StateChange { .. },
                ..
            }
        )) >= 8
    );
    assert_eq!(kinds(|e| matches!(e, StackEvent::Listener { .. })), 2);
    assert_eq!(kinds(|e| matches!(e, StackEvent::TimeWait { .. })), 1);
    // Without them: none at all, and every other event as before, in the same order.
    assert!(!off.iter().any(|(_, e)| is_state_change(e)), "{off:?}");
    let rest: Vec<_> = on
        .into_iter()
        .filter(|(_, e)| !is_state_change(e))
        .collect();
    assert_eq!(off, rest);
    for ev in [Event::Connected, Event::Readable, Event::Closed] {
        assert!(
            off.iter()
                .any(|(_, e)| matches!(e, StackEvent::Conn { event, .. } if *event == ev)),
            "{ev:?} still comes: {off:?}"
        );
    }
}
