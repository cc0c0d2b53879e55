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
