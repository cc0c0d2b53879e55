//! Listener behaviour at the stack level, driven by hand-made segments: backlog limits
//! and Linux's overflow rules.

use seqack::stack::{StackConfig, StackEvent};
use seqack::tcp::write_packet;
use seqack::wire::tcp::{Flags, Header, OptionLayout, Options};
use seqack::wire::{ip, tcp, Seq};
use seqack::{Config, Instant, Stack, State};
use std::net::SocketAddr;

const SERVER: &str = "10.0.0.2:80";

fn stack() -> Stack {
    let tcp = Config {
        timestamps: false,
        sack: false,
        wscale: None,
        ..Config::default()
    };
    let mut s = Stack::new(StackConfig {
        tcp,
        seed: 7,
        ..Default::default()
    });
    s.add_address("10.0.0.2".parse().unwrap());
    s
}

fn client(n: u16) -> SocketAddr {
    SocketAddr::new("10.0.0.1".parse().unwrap(), 50000 + n)
}

fn packet(from: SocketAddr, flags: Flags, seq: u32, ack: u32) -> Vec<u8> {
    let to: SocketAddr = SERVER.parse().unwrap();
    let hdr = Header {
        src_port: from.port(),
        dst_port: to.port(),
        seq: Seq(seq),
        ack: Seq(ack),
        flags,
        window: 65535,
        options: if flags.syn() {
            Options {
                mss: Some(1460),
                ..Default::default()
            }
        } else {
            Options::default()
        },
    };
    let mut buf = vec![0u8; 1500];
    let n = write_packet(
        &mut buf,
        from,
        to,
        &hdr,
        OptionLayout::Linux,
        (&[], &[]),
        64,
    )
    .unwrap();
    buf.truncate(n);
    buf
}

/// Everything the stack sends now, as (destination port, flags, seq, ack).
fn drain(s: &mut Stack, now: Instant) -> Vec<(u16, Flags, u32, u32)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1500];
    while let Some(n) = s.poll_transmit(now, &mut buf) {
        let p = ip::parse(&buf[..n]).unwrap();
        let t = tcp::parse(p.payload, p.src, p.dst, true).unwrap();
        out.push((t.dst_port, t.flags, t.seq.0, t.ack.0));
    }
    out
}

fn synack_seq(sent: &[(u16, Flags, u32, u32)], c: SocketAddr) -> u32 {
    sent.iter()
        .find(|x| x.0 == c.port() && x.1 == Flags::SYN | Flags::ACK)
        .expect("SYN-ACK")
        .2
}

#[test]
fn a_full_accept_queue_drops_the_final_ack_and_the_handshake_completes_later() {
    let mut s = stack();
    let t0 = Instant::ZERO;
    let l = s.listen(SERVER.parse().unwrap(), 2).unwrap();
    let (a, b, c) = (client(1), client(2), client(3));
    s.handle_packet(t0, &packet(a, Flags::SYN, 100, 0));
    s.handle_packet(t0, &packet(b, Flags::SYN, 200, 0));
    let sent = drain(&mut s, t0);
    let (ia, ib) = (synack_seq(&sent, a), synack_seq(&sent, b));
    s.handle_packet(t0, &packet(a, Flags::ACK, 101, ia + 1));
    s.handle_packet(t0, &packet(c, Flags::SYN, 300, 0));
    let ic = synack_seq(&drain(&mut s, t0), c);
    s.handle_packet(t0, &packet(b, Flags::ACK, 201, ib + 1));
    // The accept queue (backlog 2) now holds A and B: C's final ACK is dropped.
    s.handle_packet(t0, &packet(c, Flags::ACK, 301, ic + 1));
    assert_eq!(s.counters().listen_overflows, 1);
    assert_eq!(s.counters().listen_drops, 1);
    let states: Vec<State> = s.connections().map(|(_, x)| x.state()).collect();
    assert_eq!(
        states.iter().filter(|&&x| x == State::SynReceived).count(),
        1,
        "{states:?}"
    );
    // The application accepts A: room again. C's SYN-ACK is retransmitted after 1 s and
    // C's answering ACK completes the handshake.
    let first = s.accept(l).expect("A is ready");
    assert_eq!(s.conn(first).unwrap().remote(), a);
    let t1 = Instant::from_secs(1);
    s.handle_timeout(t1);
    let again = drain(&mut s, t1);
    assert!(
        again.contains(&(c.port(), Flags::SYN | Flags::ACK, ic, 301)),
        "{again:?}"
    );
    s.handle_packet(t1, &packet(c, Flags::ACK, 301, ic + 1));
    let mut incoming = 0;
    while let Some(ev) = s.poll_event() {
        if matches!(ev, StackEvent::Incoming(_)) {
            incoming += 1;
        }
    }
    assert!(incoming >= 1);
    let mut order = Vec::new();
    while let Some(id) = s.accept(l) {
        order.push(s.conn(id).unwrap().remote());
    }
    assert_eq!(order, vec![b, c]);
}

#[test]
fn syns_beyond_the_backlog_are_dropped_and_counted() {
    let mut s = stack();
    let t0 = Instant::ZERO;
    s.listen(SERVER.parse().unwrap(), 2).unwrap();
    for i in 1..=5 {
        s.handle_packet(t0, &packet(client(i), Flags::SYN, 1000 * u32::from(i), 0));
    }
    let synacks = drain(&mut s, t0)
        .iter()
        .filter(|x| x.1 == Flags::SYN | Flags::ACK)
        .count();
    assert_eq!(synacks, 2);
    assert_eq!(s.counters().listen_drops, 3);
    assert_eq!(
        s.counters().listen_overflows,
        0,
        "the accept queue never filled"
    );
}

#[test]
fn closing_a_listener_resets_connections_not_yet_accepted() {
    let mut s = stack();
    let t0 = Instant::ZERO;
    let l = s.listen(SERVER.parse().unwrap(), 4).unwrap();
    let (a, b) = (client(1), client(2));
    s.handle_packet(t0, &packet(a, Flags::SYN, 100, 0));
    s.handle_packet(t0, &packet(b, Flags::SYN, 200, 0));
    let sent = drain(&mut s, t0);
    let ia = synack_seq(&sent, a);
    s.handle_packet(t0, &packet(a, Flags::ACK, 101, ia + 1));
    s.close_listener(t0, l);
    let rsts: Vec<u16> = drain(&mut s, t0)
        .iter()
        .filter(|x| x.1.rst())
        .map(|x| x.0)
        .collect();
    assert_eq!(
        rsts.len(),
        2,
        "A (established, unaccepted) and B (half-open) are reset"
    );
    assert!(rsts.contains(&a.port()) && rsts.contains(&b.port()));
    assert_eq!(s.connection_count(), 0);
    // The port is closed now: a new SYN is refused with RST.
    s.handle_packet(t0, &packet(client(3), Flags::SYN, 300, 0));
    let r = drain(&mut s, t0);
    assert_eq!(r, vec![(client(3).port(), Flags::RST | Flags::ACK, 0, 301)]);
}
