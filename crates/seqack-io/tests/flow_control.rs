//! Flow control on the simulated link: a small receive buffer and a slow reader force
//! zero windows; persist probes and window updates keep the transfer going, with and
//! without loss.

use seqack::stack::{StackConfig, StackEvent};
use seqack::tcp::{Event, RecvError};
use seqack::{Duration, Instant, Stack, State};
use seqack_io::sim::{LinkConfig, TraceEntry, World};
use std::net::SocketAddr;

struct Run {
    received: Vec<u8>,
    sent: Vec<u8>,
    zero_windows: usize,
    probes: u64,
    client_state: State,
}

fn run(seed: u64, loss: f64, total: usize) -> Run {
    let mut world = World::new(
        seed,
        LinkConfig {
            loss,
            ..LinkConfig::default()
        },
    );
    world.record_trace();
    let mut small = seqack::Config {
        recv_buffer: 4096,
        msl: Duration::from_secs(1),
        ..Default::default()
    };
    small.retries2 = 40;
    small.orphan_retries = 40;
    let mk = |ip: &str, seed: u64| {
        let mut s = Stack::new(StackConfig {
            tcp: small.clone(),
            seed,
            ..Default::default()
        });
        s.add_address(ip.parse().unwrap());
        s
    };
    let c = world.add_node("client", mk("10.0.0.1", seed + 1));
    let s = world.add_node("server", mk("10.0.0.2", seed + 2));
    let server_addr: SocketAddr = "10.0.0.2:80".parse().unwrap();
    let l = world
        .with_stack(s, |st, _| st.listen(server_addr, 4))
        .unwrap();
    let cid = world
        .with_stack(c, |st, now| st.connect(now, None, server_addr))
        .unwrap();
    let data: Vec<u8> = (0..total).map(|i| (i % 253) as u8).collect();
    let mut written = 0;
    let mut sid = None;
    let mut received = Vec::new();
    let mut closed = false;
    let mut next_read = Instant::ZERO;
    let limit = Instant::from_secs(3000);
    while world.now() < limit {
        while let Some((_, node, ev)) = world.poll_event() {
            if let (true, StackEvent::Incoming(_)) = (node == s, ev) {
                sid = world.with_stack(s, |st, _| st.accept(l));
            }
            if let StackEvent::Conn {
                event: Event::Error(e),
                ..
            } = ev
            {
                panic!("seed {seed}: connection failed: {e}");
            }
        }
        if written < total {
            let n = world
                .with_stack(c, |st, now| st.send(now, cid, &data[written..]))
                .unwrap_or(0);
            written += n;
        } else if !closed {
            world.with_stack(c, |st, now| st.close(now, cid));
            closed = true;
        }
        // The reader takes 100 bytes every 50 ms: far slower than the link.
        if let Some(id) = sid {
            if world.now() >= next_read {
                let mut buf = [0u8; 100];
                match world.with_stack(s, |st, now| st.recv(now, id, &mut buf)) {
                    Ok(0) => {
                        world.with_stack(s, |st, now| st.close(now, id));
                        sid = None;
                    }
                    Ok(n) => received.extend_from_slice(&buf[..n]),
                    Err(RecvError::WouldBlock) => {}
                    Err(RecvError::Failed(e)) => panic!("seed {seed}: read failed: {e}"),
                }
                next_read = world.now() + Duration::from_millis(50);
            }
        }
        world.flush();
        let wake = sid.map(|_| next_read);
        let next = match (world.next_deadline(), wake) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => break,
        };
        world.step_to(next);
    }
    let zero_windows = world
        .trace()
        .iter()
        .filter(|e| matches!(e, TraceEntry::Sent { info, .. } if info.from == s && info.window == 0 && !info.flags.rst()))
        .count();
    Run {
        received,
        sent: data,
        zero_windows,
        probes: world.stack(c).counters().win_probes,
        client_state: world.stack(c).state(cid),
    }
}

#[test]
fn slow_reader_gets_every_byte_through_zero_windows() {
    let r = run(1, 0.0, 40_000);
    assert_eq!(r.received.len(), r.sent.len());
    assert!(r.received == r.sent, "data corrupted");
    assert!(r.zero_windows > 0, "the receiver never closed its window");
    assert!(r.probes > 0, "no zero-window probe was sent");
    assert_eq!(r.client_state, State::Closed);
}

#[test]
fn zero_windows_survive_loss() {
    for seed in 0..6 {
        let r = run(100 + seed, 0.15, 20_000);
        assert!(
            r.received == r.sent,
            "seed {seed}: {} of {} bytes",
            r.received.len(),
            r.sent.len()
        );
        assert_eq!(r.client_state, State::Closed, "seed {seed}");
    }
}
