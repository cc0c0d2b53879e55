//! TIME_WAIT at scale and at the edge of the ephemeral range, in virtual time.
//!
//! `a_million_connections_through_time_wait`: short connections from one client stack,
//! each leaving a compact TIME_WAIT record on the client, all within a few seconds, so
//! that the client holds them all at once (`SEQACK_TW_CONNS` sets the number; the
//! default is the 1,000,000).
//!
//! `exhausted_ephemeral_range_then_tw_reuse`: every ephemeral port towards one server
//! port in TIME_WAIT; connect() fails until `tw_reuse` lets it take a record of a second
//! or more, whose new SYN the server accepts.

use seqack::stack::{StackConfig, StackError, StackEvent};
use seqack::{Event, Reason, Stack, State};
use seqack_io::sim::{LinkConfig, World};
use seqack_io::workload::{self, size_from_env, TimeWaitConfig};
use std::net::SocketAddr;

#[test]
fn a_million_connections_through_time_wait() {
    let cfg = TimeWaitConfig {
        conns: size_from_env("SEQACK_TW_CONNS", 1_000_000),
        ..TimeWaitConfig::default()
    };
    let r = workload::time_wait(&cfg, &mut |_, _| {});
    eprintln!(
        "time-wait: {} connections, peak {} records ({} expected) entered over {:?}, \
         {} B per record at the peak ({} B table), {} segments, ended at {}; the server \
         still lists {} connections",
        r.conns,
        r.peak_records,
        r.expected_peak,
        r.enter_span,
        r.memory_at_peak / r.peak_records.max(1),
        r.memory_at_peak,
        r.segments,
        r.end,
        r.final_server_listed,
    );
    assert!(r.failures.is_empty(), "{}", r.failures);
    let n = cfg.conns;
    assert_eq!(r.conns, n);
    assert_eq!(r.served, n, "every client read its answer");
    assert_eq!(
        r.server_closed, n,
        "every server side closed on end of stream"
    );
    assert_eq!(r.entered, n, "every client connection entered TIME_WAIT");
    assert_eq!(
        r.expired_on_time, n,
        "every record ended by its 2MSL timer, 2MSL after entering"
    );
    assert_eq!(r.peak_records, r.expected_peak);
    assert_eq!(r.client.tw_overflow, 0);
    assert_eq!(r.client.tw_recycled, 0);
    assert_eq!(r.final_records, 0);
    assert_eq!(r.final_client_connections, 0);
    assert_eq!(r.final_server_connections, 0);
    // A connection closed from LAST_ACK frees its slot too (it once did not).
    assert_eq!(r.final_server_listed, 0);
}

const SERVER: &str = "10.0.0.2:80";
/// A small ephemeral range, so that TIME_WAIT can hold all of it.
const PORTS: (u16, u16) = (40_000, 40_099);

/// A client and a server; the client's ephemeral range is [`PORTS`].
fn world(tw_reuse: bool) -> (World, usize, usize) {
    let mut world = World::new(5, LinkConfig::default());
    let mut c = Stack::new(StackConfig {
        seed: 1,
        ephemeral_ports: PORTS,
        tw_reuse,
        ..Default::default()
    });
    c.add_address("10.0.0.1".parse().unwrap());
    let mut s = Stack::new(StackConfig {
        seed: 2,
        ..Default::default()
    });
    s.add_address("10.0.0.2".parse().unwrap());
    let client = world.add_node("client", c);
    let server = world.add_node("server", s);
    world
        .with_stack(server, |s, _| s.listen(SERVER.parse().unwrap(), 256))
        .unwrap();
    (world, client, server)
}

/// `count` connections at once: each client sends one byte, the server echoes it and
/// closes after the client's FIN; the client closes first, so the client holds
/// TIME_WAIT. Returns the clients' local addresses once all are in TIME_WAIT, and the
/// reasons of the client's TIME_WAIT records that ended meanwhile.
fn exchange(
    world: &mut World,
    client: usize,
    server: usize,
    count: usize,
) -> (Vec<SocketAddr>, Vec<Reason>) {
    let remote: SocketAddr = SERVER.parse().unwrap();
    let mut open = Vec::new();
    let mut locals = Vec::new();
    for i in 0..count {
        let id = world
            .with_stack(client, |s, now| s.connect(now, None, remote))
            .expect("a free port");
        world
            .with_stack(client, |s, now| s.send(now, id, &[i as u8]))
            .unwrap();
        locals.push(world.stack(client).conn(id).unwrap().local());
        open.push((id, i as u8));
    }
    let mut server_conns = Vec::new();
    let mut ended = Vec::new();
    let mut buf = [0u8; 8];
    loop {
        while let Some((_, node, ev)) = world.poll_event() {
            match ev {
                StackEvent::Incoming(l) if node == server => {
                    while let Some(sid) = world.with_stack(server, |s, _| s.accept(l)) {
                        server_conns.push(sid);
                    }
                }
                StackEvent::TimeWait {
                    event: Event::StateChange { to, why, .. },
                    ..
                } if node == client => {
                    assert_eq!(to, State::Closed);
                    ended.push(why);
                }
                _ => {}
            }
        }
        server_conns.retain(|&sid| {
            match world.with_stack(server, |s, now| s.recv(now, sid, &mut buf)) {
                Ok(0) => {
                    world.with_stack(server, |s, now| s.close(now, sid));
                    return false;
                }
                Ok(n) => {
                    assert_eq!(n, 1, "a 1-byte request");
                    let echo = buf[0];
                    world
                        .with_stack(server, |s, now| s.send(now, sid, &[echo]))
                        .unwrap();
                }
                Err(_) => {}
            }
            true
        });
        open.retain(|&(id, byte)| {
            match world.with_stack(client, |s, now| s.recv(now, id, &mut buf)) {
                Ok(n) => {
                    assert_eq!(&buf[..n], &[byte], "the client got its echo");
                    world.with_stack(client, |s, now| s.close(now, id));
                    false
                }
                Err(_) => true,
            }
        });
        let tw = world.stack(client).time_wait();
        if open.is_empty() && locals.iter().all(|&l| tw.contains(l, remote)) {
            return (locals, ended);
        }
        assert!(world.step(), "the exchange stalled");
    }
}

/// Fills the ephemeral range with TIME_WAIT records towards one server port, all
/// within a few round trips.
fn fill_range(world: &mut World, client: usize, server: usize) {
    let n = usize::from(PORTS.1 - PORTS.0) + 1;
    let (locals, ended) = exchange(world, client, server, n);
    let distinct: std::collections::HashSet<_> = locals.iter().collect();
    assert_eq!(distinct.len(), n, "every port of the range, once");
    assert!(ended.is_empty());
    assert_eq!(world.stack(client).time_wait().len(), n);
    assert_eq!(world.stack(client).connection_count(), 0);
}

#[test]
fn exhausted_ephemeral_range_then_tw_reuse() {
    let remote: SocketAddr = SERVER.parse().unwrap();
    // Without tw_reuse: no port left until the records expire.
    let (mut w, client, server) = world(false);
    fill_range(&mut w, client, server);
    let r = w.with_stack(client, |s, now| s.connect(now, None, remote));
    assert_eq!(r, Err(StackError::NoPortAvailable));
    w.run_until(w.now() + seqack::Duration::from_secs(2));
    let r = w.with_stack(client, |s, now| s.connect(now, None, remote));
    assert_eq!(r, Err(StackError::NoPortAvailable), "2 s later, still none");

    // With tw_reuse (timestamps are on by default): refused while every record is
    // younger than 1 s, then the oldest reusable record is taken.
    let (mut w, client, server) = world(true);
    assert!(w.stack(client).config().timestamps);
    fill_range(&mut w, client, server);
    let filled = w.now();
    let r = w.with_stack(client, |s, now| s.connect(now, None, remote));
    assert_eq!(
        r,
        Err(StackError::NoPortAvailable),
        "the newest records are less than 1 s old"
    );
    let before = w.stack(client).time_wait().len();
    w.run_until(filled + seqack::Duration::from_secs(1));
    let (locals, ended) = exchange(&mut w, client, server, 1);
    assert_eq!(
        ended,
        [Reason::TimeWaitReused],
        "connect() took over a record"
    );
    assert_eq!(w.stack(client).counters().tw_recycled, 1);
    // The new connection went through and left its own record on the same 4-tuple.
    assert_eq!(w.stack(client).time_wait().len(), before);
    assert!(w.stack(client).time_wait().contains(locals[0], remote));
    let n = u64::from(PORTS.1 - PORTS.0) + 1;
    assert_eq!(w.stack(server).counters().passive_opens, n + 1);
}
