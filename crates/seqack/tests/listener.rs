//! Listener behaviour at the stack level, driven by hand-made segments: backlog limits
//! and Linux's overflow rules.

mod common;

use seqack::stack::{StackConfig, StackEvent, SynCookies, SynFin};
use seqack::tcp::write_packet;
use seqack::wire::tcp::{Flags, Header, OptionLayout, Options};
use seqack::wire::{ip, tcp, Seq};
use seqack::{Config, Instant, Stack, State};
use std::net::SocketAddr;

const SERVER: &str = "10.0.0.2:80";

fn stack() -> Stack {
    stack_with(SynCookies::Off)
}

fn stack_with(syncookies: SynCookies) -> Stack {
    stack_configured(syncookies, SynFin::default())
}

fn stack_configured(syncookies: SynCookies, syn_fin: SynFin) -> Stack {
    let tcp = Config {
        timestamps: false,
        sack: false,
        wscale: None,
        ..Config::default()
    };
    let mut s = Stack::new(StackConfig {
        tcp,
        seed: 7,
        syncookies,
        syn_fin,
        ..Default::default()
    });
    s.add_address("10.0.0.2".parse().unwrap());
    s
}

fn client(n: u16) -> SocketAddr {
    SocketAddr::new("10.0.0.1".parse().unwrap(), 50000 + n)
}

fn packet(from: SocketAddr, flags: Flags, seq: u32, ack: u32) -> Vec<u8> {
    let options = if flags.syn() {
        Options {
            mss: Some(1460),
            ..Default::default()
        }
    } else {
        Options::default()
    };
    packet_with(from, flags, seq, ack, options, b"")
}

fn packet_with(
    from: SocketAddr,
    flags: Flags,
    seq: u32,
    ack: u32,
    options: Options,
    data: &[u8],
) -> Vec<u8> {
    common::ip_packet(
        from,
        SERVER.parse().unwrap(),
        flags,
        seq,
        ack,
        options,
        data,
    )
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
fn without_cookies_syns_beyond_the_backlog_are_dropped_and_counted() {
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
fn closing_a_listener_resets_accepted_queue_and_forgets_half_open_connections() {
    let mut s = stack();
    let t0 = Instant::ZERO;
    let l = s.listen(SERVER.parse().unwrap(), 4).unwrap();
    let (a, b) = (client(1), client(2));
    s.handle_packet(t0, &packet(a, Flags::SYN, 100, 0));
    s.handle_packet(t0, &packet(b, Flags::SYN, 200, 0));
    let sent_b = drain(&mut s, t0);
    let ia = synack_seq(&sent_b, a);
    s.handle_packet(t0, &packet(a, Flags::ACK, 101, ia + 1));
    s.close_listener(t0, l);
    // Linux (inet_csk_listen_stop): A, established but not accepted, is reset; B,
    // half-open, is dropped without a word, and its final ACK then meets no socket.
    let sent = drain(&mut s, t0);
    let rsts: Vec<u16> = sent.iter().filter(|x| x.1.rst()).map(|x| x.0).collect();
    assert_eq!(rsts, vec![a.port()], "{sent:?}");
    assert_eq!(s.connection_count(), 0);
    let ib = synack_seq(&sent_b, b);
    s.handle_packet(t0, &packet(b, Flags::ACK, 201, ib + 1));
    assert_eq!(drain(&mut s, t0), vec![(b.port(), Flags::RST, ib + 1, 0)]);
    // The port is closed now: a new SYN is refused with RST.
    s.handle_packet(t0, &packet(client(3), Flags::SYN, 300, 0));
    let r = drain(&mut s, t0);
    assert_eq!(r, vec![(client(3).port(), Flags::RST | Flags::ACK, 0, 301)]);
}

/// Every segment the stack sends now, parsed, with its payload.
fn drain_full(s: &mut Stack, now: Instant) -> Vec<(u16, Flags, u32, u32, Options, Vec<u8>)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1500];
    while let Some(n) = s.poll_transmit(now, &mut buf) {
        let p = ip::parse(&buf[..n]).unwrap();
        let t = tcp::parse(p.payload, p.src, p.dst, true).unwrap();
        out.push((
            t.dst_port,
            t.flags,
            t.seq.0,
            t.ack.0,
            t.options,
            t.payload.to_vec(),
        ));
    }
    out
}

#[test]
fn a_full_syn_queue_answers_with_cookies_and_a_cookie_ack_makes_a_working_connection() {
    let mut s = stack_with(SynCookies::OnOverflow);
    let t0 = Instant::ZERO;
    let l = s.listen(SERVER.parse().unwrap(), 2).unwrap();
    for i in 1..=2 {
        s.handle_packet(t0, &packet(client(i), Flags::SYN, 1000 * u32::from(i), 0));
    }
    drain(&mut s, t0);
    assert_eq!(s.connection_count(), 2);
    // The third SYN finds the SYN queue full: a cookie, and no state kept for it.
    let c = client(3);
    s.handle_packet(t0, &packet(c, Flags::SYN, 5000, 0));
    let sent = drain(&mut s, t0);
    assert_eq!(sent.len(), 1);
    let (_, flags, cookie, ack) = sent[0];
    assert_eq!((flags, ack), (Flags::SYN | Flags::ACK, 5001));
    assert_eq!(s.counters().syncookies_sent, 1);
    assert_eq!(s.connection_count(), 2, "a cookie keeps no state");
    // The ACK comes back 100 ms later with data: the connection is rebuilt, ESTABLISHED,
    // its data readable, and it is acknowledged.
    let t1 = Instant::from_millis(100);
    s.handle_packet(
        t1,
        &packet_with(
            c,
            Flags::ACK | Flags::PSH,
            5001,
            cookie.wrapping_add(1),
            Options::default(),
            b"hello",
        ),
    );
    assert_eq!(s.counters().syncookies_recv, 1);
    let mut accepted = None;
    while let Some(id) = s.accept(l) {
        if s.conn(id).unwrap().remote() == c {
            accepted = Some(id);
        }
    }
    let id = accepted.expect("the cookie connection is in the accept queue");
    assert_eq!(s.state(id), State::Established);
    let mut buf = [0u8; 16];
    assert_eq!(s.recv(t1, id, &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"hello");
    s.send(t1, id, b"world").unwrap();
    let out = drain_full(&mut s, t1);
    let data = out
        .iter()
        .find(|x| x.0 == c.port() && !x.5.is_empty())
        .expect("reply data");
    assert_eq!(
        (data.2, data.3, &data.5[..]),
        (cookie.wrapping_add(1), 5006, &b"world"[..])
    );
}

#[test]
fn a_cookie_syn_ack_carries_no_mss_when_the_mss_option_is_off() {
    let mut s = Stack::new(StackConfig {
        tcp: Config {
            mss_option: false,
            timestamps: false,
            sack: false,
            wscale: None,
            ..Config::default()
        },
        seed: 7,
        syncookies: SynCookies::Always,
        ..Default::default()
    });
    s.add_address("10.0.0.2".parse().unwrap());
    let t0 = Instant::ZERO;
    s.listen(SERVER.parse().unwrap(), 8).unwrap();
    s.handle_packet(t0, &packet(client(1), Flags::SYN, 7000, 0));
    let sent = drain_full(&mut s, t0);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1, Flags::SYN | Flags::ACK);
    assert_eq!(
        sent[0].4,
        Options::default(),
        "a cookie SYN-ACK without options"
    );
    assert_eq!(s.counters().syncookies_sent, 1);
}

#[test]
fn a_forged_cookie_is_refused_with_rst_and_counted() {
    let mut s = stack_with(SynCookies::Always);
    let t0 = Instant::ZERO;
    s.listen(SERVER.parse().unwrap(), 8).unwrap();
    let c = client(1);
    s.handle_packet(t0, &packet(c, Flags::SYN, 7000, 0));
    let (_, _, cookie, _) = drain(&mut s, t0)[0];
    for wrong in [cookie ^ 1, cookie.wrapping_add(5), cookie ^ 0x0100_0000] {
        s.handle_packet(t0, &packet(c, Flags::ACK, 7001, wrong.wrapping_add(1)));
        let r = drain(&mut s, t0);
        assert_eq!(r, vec![(c.port(), Flags::RST, wrong.wrapping_add(1), 0)]);
    }
    assert_eq!(s.counters().syncookies_failed, 3);
    assert_eq!(s.connection_count(), 0);
    // A cookie from too long ago is refused too (RFC 4987: cookies expire).
    let late = Instant::from_secs(600);
    s.handle_packet(late, &packet(c, Flags::ACK, 7001, cookie.wrapping_add(1)));
    assert!(drain(&mut s, late).iter().all(|x| x.1.rst()));
    assert_eq!(s.connection_count(), 0);
}

#[test]
fn always_mode_keeps_no_state_for_any_syn() {
    let mut s = stack_with(SynCookies::Always);
    let t0 = Instant::ZERO;
    s.listen(SERVER.parse().unwrap(), 4).unwrap();
    for i in 1..=1500u16 {
        s.handle_packet(t0, &packet(client(i), Flags::SYN, u32::from(i), 0));
    }
    assert_eq!(s.connection_count(), 0, "no state per SYN");
    // Stateless replies wait in a bounded queue (1024 by default): a flood faster than
    // the device drains them cannot grow memory; the excess is not answered.
    assert_eq!(s.counters().syncookies_sent, 1024);
    assert_eq!(
        s.counters().listen_drops,
        1500 - 1024,
        "every unanswered SYN is counted"
    );
    let sent = drain(&mut s, t0);
    assert_eq!(sent.len(), 1024);
    assert!(sent.iter().all(|x| x.1 == Flags::SYN | Flags::ACK));
}

#[test]
fn cookies_carry_window_scale_and_sack_in_the_timestamp() {
    let tcp = Config::default(); // timestamps, SACK, wscale 7
    let mut s = Stack::new(StackConfig {
        tcp,
        seed: 3,
        syncookies: SynCookies::Always,
        ..Default::default()
    });
    s.add_address("10.0.0.2".parse().unwrap());
    let t0 = Instant::from_secs(5);
    let l = s.listen(SERVER.parse().unwrap(), 4).unwrap();
    let c = client(9);
    let syn_opts = Options {
        mss: Some(1400),
        wscale: Some(9),
        sack_permitted: true,
        timestamps: Some((4242, 0)),
        ..Default::default()
    };
    s.handle_packet(t0, &packet_with(c, Flags::SYN, 100, 0, syn_opts, b""));
    let sent = drain_full(&mut s, t0);
    let (_, _, cookie, _, o, _) = &sent[0];
    assert_eq!((o.wscale, o.sack_permitted), (Some(7), true));
    let (tsval, tsecr) = o.timestamps.expect("timestamps answered");
    assert_eq!(tsecr, 4242);
    let ack_opts = Options {
        timestamps: Some((4243, tsval)),
        ..Default::default()
    };
    s.handle_packet(
        t0,
        &packet_with(c, Flags::ACK, 101, cookie.wrapping_add(1), ack_opts, b""),
    );
    let id = s.accept(l).expect("established from the cookie");
    let (ts, sack, ws) = s.conn(id).unwrap().negotiated();
    assert!(ts && sack);
    assert_eq!(ws, Some((9, 7)));
    // MSS 1400 was rounded down to the table's 1300, less 12 bytes of timestamps.
    assert_eq!(s.conn(id).unwrap().smss(), 1300 - 12);
}

#[test]
fn ipv6_cookies_use_the_ipv6_mss_table() {
    let mut s = stack_with(SynCookies::Always);
    s.add_address("2001:db8::2".parse().unwrap());
    let server: SocketAddr = "[2001:db8::2]:80".parse().unwrap();
    let peer: SocketAddr = "[2001:db8::1]:50001".parse().unwrap();
    let l = s.listen(server, 4).unwrap();
    let t0 = Instant::from_secs(5);
    let send = |s: &mut Stack, flags: Flags, seq: u32, ack: u32, mss: Option<u16>| {
        let hdr = Header {
            src_port: peer.port(),
            dst_port: server.port(),
            seq: Seq(seq),
            ack: Seq(ack),
            flags,
            window: 65535,
            options: Options {
                mss,
                ..Default::default()
            },
        };
        let mut buf = vec![0u8; 200];
        let n = write_packet(
            &mut buf,
            peer,
            server,
            &hdr,
            OptionLayout::Linux,
            (&[], &[]),
            64,
        )
        .unwrap();
        s.handle_packet(t0, &buf[..n]);
    };
    // 1420 is an entry of Linux's IPv6 table (1480 - 60); IPv4's table would round it
    // down to 1300.
    send(&mut s, Flags::SYN, 100, 0, Some(1420));
    let sent = drain(&mut s, t0);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (port, flags, cookie, ack) = sent[0];
    assert_eq!((port, flags, ack), (50001, Flags::SYN | Flags::ACK, 101));
    assert_eq!(s.counters().syncookies_sent, 1);
    send(&mut s, Flags::ACK, 101, cookie.wrapping_add(1), None);
    assert_eq!(s.counters().syncookies_recv, 1);
    let id = s.accept(l).expect("established from the cookie");
    assert_eq!(s.conn(id).unwrap().remote(), peer);
    assert_eq!(s.conn(id).unwrap().smss(), 1420);
}

#[test]
fn a_new_syn_in_the_window_of_a_half_open_connection_resets_and_frees_it() {
    // Linux's tcp_check_req: RST, the request dropped, TcpAttemptFails. The SYN queue
    // slot is free again and the listener carries on.
    let mut s = stack();
    let t0 = Instant::ZERO;
    let l = s.listen(SERVER.parse().unwrap(), 1).unwrap();
    let a = client(1);
    s.handle_packet(t0, &packet(a, Flags::SYN, 100, 0));
    let isn = synack_seq(&drain(&mut s, t0), a);
    assert_eq!(s.connection_count(), 1);
    s.handle_packet(t0, &packet(a, Flags::SYN, 5000, 0));
    assert_eq!(
        drain(&mut s, t0),
        vec![(a.port(), Flags::RST | Flags::ACK, 0, 5001)]
    );
    assert_eq!(s.connection_count(), 0, "the half-open connection is gone");
    assert_eq!(s.counters().attempt_fails, 1);
    assert_eq!(s.counters().embryonic_rsts, 1);
    // Its final ACK now finds only the listener: RST (no cookies were sent).
    s.handle_packet(t0, &packet(a, Flags::ACK, 101, isn.wrapping_add(1)));
    assert_eq!(
        drain(&mut s, t0),
        vec![(a.port(), Flags::RST, isn.wrapping_add(1), 0)]
    );
    // The backlog-1 SYN queue has room: a new SYN from the peer is a new connection.
    s.handle_packet(t0, &packet(a, Flags::SYN, 9000, 0));
    let isn2 = synack_seq(&drain(&mut s, t0), a);
    s.handle_packet(t0, &packet(a, Flags::ACK, 9001, isn2.wrapping_add(1)));
    let id = s.accept(l).expect("the new connection");
    assert_eq!(s.state(id), State::Established);
}

#[test]
fn syn_fin_is_discarded_taken_as_a_syn_or_dropped_everywhere_as_configured() {
    let c = client(1);
    let t0 = Instant::ZERO;
    let synfin = Flags::SYN | Flags::FIN;
    let stack_for = |syn_fin| {
        let mut s = stack_configured(SynCookies::Off, syn_fin);
        s.listen(SERVER.parse().unwrap(), 8).unwrap();
        s
    };
    // Linux (the default): the listener discards it.
    let mut s = stack_for(SynFin::default());
    s.handle_packet(t0, &packet(c, synfin, 100, 0));
    assert_eq!(drain(&mut s, t0), vec![]);
    assert_eq!(s.counters().flags_drop, 1);
    // FreeBSD's drop_synfin = 0: a SYN, its FIN left out (the SYN-ACK acknowledges the
    // SYN alone and the connection is SYN_RECEIVED).
    let mut s = stack_for(SynFin::ListenAsSyn);
    s.handle_packet(t0, &packet(c, synfin, 100, 0));
    let sent = drain(&mut s, t0);
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].1, sent[0].3), (Flags::SYN | Flags::ACK, 101));
    let states: Vec<State> = s.connections().map(|(_, x)| x.state()).collect();
    assert_eq!(states, vec![State::SynReceived]);
    // FreeBSD's drop_synfin = 1: dropped before it reaches anything, a connection
    // included.
    let mut s = stack_for(SynFin::Drop);
    s.handle_packet(t0, &packet(c, Flags::SYN, 100, 0));
    let isn = synack_seq(&drain(&mut s, t0), c);
    s.handle_packet(t0, &packet(c, Flags::ACK, 101, isn + 1));
    assert_eq!(s.counters().flags_drop, 0);
    // In the window, it would otherwise draw a challenge ACK (RFC 5961 4.2).
    s.handle_packet(t0, &packet(c, synfin, 101, 0));
    assert_eq!(drain(&mut s, t0), vec![]);
    assert_eq!(s.counters().flags_drop, 1);
    let states: Vec<State> = s.connections().map(|(_, x)| x.state()).collect();
    assert_eq!(states, vec![State::Established]);
    // And a new one gets no answer either.
    s.handle_packet(t0, &packet(client(2), synfin, 500, 0));
    assert_eq!(drain(&mut s, t0), vec![]);
    assert_eq!(s.counters().flags_drop, 2);
}
