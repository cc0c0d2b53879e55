//! Malformed and senseless packets at the stack's front door: each is dropped and
//! counted in exactly the counter that names its fault, and nothing else changes.

mod common;

use seqack::stack::StackConfig;
use seqack::tcp::{RecvError, Shutdown};
use seqack::wire::checksum;
use seqack::wire::tcp::{Flags, Options};
use seqack::wire::{ip, tcp};
use seqack::{Config, Counters, Duration, Instant, ListenerId, Stack, State};
use std::net::SocketAddr;

const SERVER: &str = "10.0.0.2:80";
const CLIENT: &str = "10.0.0.1:40000";

fn stack() -> (Stack, ListenerId) {
    let tcp = Config {
        timestamps: false,
        sack: false,
        wscale: None,
        ..Config::default()
    };
    let mut s = Stack::new(StackConfig {
        tcp,
        seed: 3,
        ..Default::default()
    });
    s.add_address("10.0.0.2".parse().unwrap());
    let l = s.listen(SERVER.parse().unwrap(), 8).unwrap();
    (s, l)
}

fn packet(from: &str, to: &str, flags: Flags, seq: u32, ack: u32, data: &[u8]) -> Vec<u8> {
    let (from, to): (SocketAddr, SocketAddr) = (from.parse().unwrap(), to.parse().unwrap());
    common::ip_packet(from, to, flags, seq, ack, Options::default(), data)
}

/// Sets the IPv4 header checksum right after an edit.
fn fix_ip_checksum(p: &mut [u8]) {
    let ihl = usize::from(p[0] & 0x0f) * 4;
    p[10..12].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&p[..ihl]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
}

/// The counters that changed between `a` and `b`, by nstat name.
fn delta(a: &Counters, b: &Counters) -> Vec<(&'static str, u64)> {
    a.iter()
        .zip(b.iter())
        .filter(|(x, y)| x.1 != y.1)
        .map(|(x, y)| (x.0, y.1 - x.1))
        .collect()
}

/// Feeds one packet and returns which counters it moved, sorted by name.
fn feed(s: &mut Stack, now: Instant, p: &[u8]) -> Vec<(&'static str, u64)> {
    let before = s.counters().clone();
    s.handle_packet(now, p);
    let mut d = delta(&before, s.counters());
    d.sort();
    d
}

#[test]
fn ip_header_faults_each_have_their_counter() {
    let (mut s, _) = stack();
    let t0 = Instant::ZERO;
    let good = packet(CLIENT, SERVER, Flags::SYN, 1000, 0, b"");
    let hdr = |extra: &[(&'static str, u64)]| {
        let mut v = vec![("IpExtInDrops", 1)];
        v.extend_from_slice(extra);
        v.sort();
        v
    };
    let mut check = |p: &[u8], want: Vec<(&'static str, u64)>, what: &str| {
        assert_eq!(feed(&mut s, t0, p), want, "{what}");
    };
    check(
        &good[..12],
        hdr(&[("IpInHdrErrors", 1)]),
        "header cut short",
    );
    let mut p = good.clone();
    p[0] = 0x44;
    fix_ip_checksum(&mut p);
    check(&p, hdr(&[("IpInHdrErrors", 1)]), "IHL 4");
    let mut p = good.clone();
    p[0] = 0x4f;
    check(&p, hdr(&[("IpInHdrErrors", 1)]), "IHL 15 past the end");
    let mut p = good.clone();
    p[2..4].copy_from_slice(&(good.len() as u16 + 1).to_be_bytes());
    fix_ip_checksum(&mut p);
    check(
        &p,
        hdr(&[("IpExtInTruncatedPkts", 1)]),
        "total length past the end",
    );
    let mut p = good.clone();
    p[2..4].copy_from_slice(&16u16.to_be_bytes());
    fix_ip_checksum(&mut p);
    check(&p, hdr(&[("IpInHdrErrors", 1)]), "total length below IHL");
    let mut p = good.clone();
    p[10] ^= 0x40;
    check(
        &p,
        hdr(&[("IpExtInCsumErrors", 1), ("IpInHdrErrors", 1)]),
        "IP checksum",
    );
    let mut p = good.clone();
    p[0] = 0x55;
    check(&p, hdr(&[("IpInHdrErrors", 1)]), "version 5");
    let mut p = good.clone();
    p[6] = 0x20; // MF
    fix_ip_checksum(&mut p);
    check(&p, hdr(&[("IpReasmFails", 1)]), "fragment");
    let p = packet(CLIENT, "10.0.0.3:80", Flags::SYN, 1000, 0, b"");
    check(&p, hdr(&[("IpInAddrErrors", 1)]), "not our address");
    let mut p = good.clone();
    p[9] = 17;
    fix_ip_checksum(&mut p);
    check(&p, hdr(&[("IpInUnknownProtos", 1)]), "UDP");
    // Nothing reached TCP, nothing was answered.
    assert_eq!(s.counters().in_segs, 0);
    let mut buf = [0u8; 1500];
    assert_eq!(s.poll_transmit(t0, &mut buf), None);
}

#[test]
fn a_batch_drops_and_counts_bad_packets_as_one_at_a_time_does() {
    let good = packet(CLIENT, SERVER, Flags::SYN, 1000, 0, b"");
    let mut batch = vec![good[..12].to_vec()];
    let mut p = good.clone();
    p[10] ^= 0x40;
    batch.push(p);
    let mut p = good.clone();
    p[6] = 0x20;
    fix_ip_checksum(&mut p);
    batch.push(p);
    batch.push(packet(CLIENT, "10.0.0.3:80", Flags::SYN, 1000, 0, b""));
    let mut p = packet(CLIENT, SERVER, Flags::ACK, 5, 7, b"data");
    let last = p.len() - 1;
    p[last] ^= 1; // the TCP checksum no longer holds
    batch.push(p);
    batch.push(good.clone());
    batch.push(good);
    let out = |s: &mut Stack| {
        let (mut v, mut buf) = (Vec::new(), [0u8; 1500]);
        while let Some(n) = s.poll_transmit(Instant::ZERO, &mut buf) {
            v.push(buf[..n].to_vec());
        }
        v
    };
    let (mut one, _) = stack();
    for p in &batch {
        one.handle_packet(Instant::ZERO, p);
    }
    let (mut all, _) = stack();
    all.handle_packets(Instant::ZERO, batch.iter().map(Vec::as_slice));
    assert_eq!(one.counters(), all.counters());
    assert_eq!(one.counters().ip_drops, 4);
    assert_eq!(one.counters().in_csum_errors, 1);
    // The good SYN (twice: the second is its retransmission) is answered alike.
    let answer = out(&mut one);
    assert!(!answer.is_empty());
    assert_eq!(answer, out(&mut all));
    // Burst output: no more packets than lengths to put them in, none without buffers.
    let (mut s, _) = stack();
    s.handle_packet(Instant::ZERO, &batch[5]);
    let mut none: [Vec<u8>; 0] = [];
    assert_eq!(
        s.poll_transmit_burst(Instant::ZERO, &mut none, &mut [0; 4]),
        0
    );
    let mut bufs = vec![vec![0u8; 1500]; 4];
    assert_eq!(s.poll_transmit_burst(Instant::ZERO, &mut bufs, &mut []), 0);
    let mut lens = [0usize; 4];
    assert_eq!(
        s.poll_transmit_burst(Instant::ZERO, &mut bufs, &mut lens),
        1
    );
    assert_eq!(bufs[0][..lens[0]], answer[0][..]);
}

#[test]
fn flags_that_mean_nothing_are_counted_drops() {
    let (mut s, l) = stack();
    let t0 = Instant::ZERO;
    let drop = vec![("TcpExtTCPFlagsDrop", 1), ("TcpInSegs", 1)];
    assert!(drop.is_sorted());
    // At the listener.
    for f in [
        Flags(0),
        Flags::RST,
        Flags::SYN | Flags::FIN,
        Flags::SYN | Flags::RST,
        Flags(0xff),
    ] {
        assert_eq!(
            feed(&mut s, t0, &packet(CLIENT, SERVER, f, 1000, 0, b"")),
            drop,
            "{f:?} at the listener"
        );
    }
    let mut buf = [0u8; 1500];
    assert_eq!(s.poll_transmit(t0, &mut buf), None, "no reply to any");
    // At an established connection: a segment in the window without ACK.
    s.handle_packet(t0, &packet(CLIENT, SERVER, Flags::SYN, 1000, 0, b""));
    let n = s.poll_transmit(t0, &mut buf).expect("SYN-ACK");
    let synack = {
        let p = ip::parse(&buf[..n]).unwrap();
        tcp::parse(p.payload, p.src, p.dst, true).unwrap().seq.0
    };
    s.handle_packet(
        t0,
        &packet(CLIENT, SERVER, Flags::ACK, 1001, synack + 1, b""),
    );
    let id = s.accept(l).expect("established");
    assert_eq!(s.state(id), State::Established);
    assert_eq!(
        feed(
            &mut s,
            t0,
            &packet(CLIENT, SERVER, Flags::PSH, 1001, 0, b"EVIL")
        ),
        drop,
        "data without ACK"
    );
    assert_eq!(s.poll_transmit(t0, &mut buf), None);
    let mut out = [0u8; 16];
    assert_eq!(s.recv(t0, id, &mut out), Err(RecvError::WouldBlock));
}

/// Buffers keep their sizes and positions in 32 bits (see `Config::MAX_BUFFER`): a
/// larger buffer is reported by `Config::check`, refused for one connection with a
/// clear error, and taken as the limit in a stack's defaults, without a panic.
#[test]
fn buffers_above_the_limit_are_refused_or_taken_as_the_limit() {
    use seqack::stack::StackError;
    use seqack::tcp::ConfigError;
    let big = Config::MAX_BUFFER + 1;
    let send = Config {
        send_buffer: big,
        ..Config::default()
    };
    let recv = Config {
        recv_buffer: usize::MAX,
        ..Config::default()
    };
    assert_eq!(send.check(), Err(ConfigError::SendBufferTooLarge(big)));
    assert_eq!(
        recv.check(),
        Err(ConfigError::RecvBufferTooLarge(usize::MAX))
    );
    assert_eq!(Config::default().check(), Ok(()));
    let msg = ConfigError::SendBufferTooLarge(big).to_string();
    assert!(
        msg.contains("send buffer") && msg.contains(&Config::MAX_BUFFER.to_string()),
        "{msg}"
    );

    let now = Instant::ZERO;
    let (mut s, _) = stack();
    let server: SocketAddr = SERVER.parse().unwrap();
    let r = s.connect_with(now, None, server, Some(send));
    assert_eq!(
        r,
        Err(StackError::InvalidConfig(ConfigError::SendBufferTooLarge(
            big
        )))
    );
    assert_eq!(s.connection_count(), 0, "nothing was created");

    // As a stack's defaults: taken as the limit.
    let mut c = Stack::new(StackConfig {
        tcp: Config {
            send_buffer: usize::MAX,
            recv_buffer: usize::MAX,
            ..Config::default()
        },
        seed: 4,
        ..Default::default()
    });
    c.add_address("10.0.0.1".parse().unwrap());
    let id = c.connect(now, None, server).unwrap();
    let conn = c.conn(id).unwrap();
    assert_eq!(conn.send_capacity(), Config::MAX_BUFFER);
    let mut buf = [0u8; 1500];
    let n = c.poll_transmit(now, &mut buf).expect("the SYN goes out");
    assert!(n > 40);
    assert_eq!(c.conn(id).unwrap().state(), State::SynSent);
}

/// Two stacks with timestamps and SACK (the default), the client connected to the
/// server's listener; no packet exchanged yet.
fn pair() -> (Stack, Stack, seqack::ConnId, ListenerId) {
    let stack = |addr: &str, seed| {
        let mut s = Stack::new(StackConfig {
            seed,
            ..Default::default()
        });
        s.add_address(addr.parse().unwrap());
        s
    };
    let (mut a, mut b) = (stack("10.0.0.1", 1), stack("10.0.0.2", 2));
    let l = b.listen(SERVER.parse().unwrap(), 8).unwrap();
    let c = a
        .connect(Instant::ZERO, None, SERVER.parse().unwrap())
        .unwrap();
    (a, b, c, l)
}

/// Moves everything `from` has to send into `to`, offering a `small`-byte buffer
/// before each MTU-sized one (none when `small` is 0); returns how many packets went
/// out in the small ones.
fn pump_offering(now: Instant, from: &mut Stack, to: &mut Stack, small: usize) -> usize {
    let (mut short, mut big) = (vec![0u8; small], vec![0u8; 1500]);
    let mut fitted = 0;
    for _ in 0..10_000 {
        if small > 0 {
            if let Some(n) = from.poll_transmit(now, &mut short) {
                to.handle_packet(now, &short[..n]);
                fitted += 1;
                continue;
            }
        }
        match from.poll_transmit(now, &mut big) {
            Some(n) => to.handle_packet(now, &big[..n]),
            None => return fitted,
        }
    }
    panic!("output never ran dry");
}

fn counter(s: &Stack, name: &str) -> u64 {
    s.counters().get(name).unwrap()
}

#[test]
fn a_buffer_too_small_for_the_next_packet_sends_nothing_and_changes_nothing() {
    let now = Instant::ZERO;
    let (mut a, mut b, c, l) = pair();
    // The SYN (60 bytes with its options) does not fit in 40: not sent, counted, and
    // still the next packet.
    let mut tiny = [0u8; 40];
    assert_eq!(a.poll_transmit(now, &mut tiny), None);
    assert_eq!(counter(&a, "SeqackOutBufTooSmall"), 1);
    assert_eq!(counter(&a, "TcpOutSegs"), 0);
    pump_offering(now, &mut a, &mut b, 0);
    // The SYN-ACK, refused twice first, goes out as the first transmission it is, not
    // as a retransmission.
    assert_eq!(b.poll_transmit(now, &mut tiny), None);
    assert_eq!(b.poll_transmit(now, &mut tiny), None);
    assert_eq!(counter(&b, "SeqackOutBufTooSmall"), 2);
    pump_offering(now, &mut b, &mut a, 0);
    assert_eq!(counter(&b, "TcpRetransSegs"), 0);
    assert_eq!(counter(&b, "TcpOutSegs"), 1);
    // 100 KiB, with a 100-byte buffer offered before every packet: the data segments
    // never fit in it, the bare ACKs (52 bytes) do. Nothing is lost, nothing waits
    // for a timer: the transfer ends at the instant it began.
    pump_offering(now, &mut a, &mut b, 100);
    let s = b.accept(l).expect("the handshake's ACK fits in 100 bytes");
    let ack_fitted = transfer(now, &mut a, &mut b, c, s, 100 * 1024, 100);
    assert!(ack_fitted > 0, "the server's ACKs fit in 100 bytes");
    assert!(counter(&a, "SeqackOutBufTooSmall") > 1);
    assert_eq!(counter(&a, "TcpRetransSegs"), 0);
    assert_eq!(a.state(c), State::Established);
}

#[test]
fn a_burst_stops_at_a_buffer_too_small_and_the_connection_keeps_its_place() {
    let now = Instant::ZERO;
    let (mut a, mut b, c, l) = pair();
    pump_offering(now, &mut a, &mut b, 0);
    pump_offering(now, &mut b, &mut a, 0);
    pump_offering(now, &mut a, &mut b, 0);
    let s = b.accept(l).unwrap();
    let data: Vec<u8> = (0..8 * 1448).map(|i| (i % 241) as u8).collect();
    assert_eq!(a.send(now, c, &data).unwrap(), data.len());
    // Five buffers, the third too small for a full segment: two packets, then a stop.
    let mut bufs = vec![
        vec![0u8; 1500],
        vec![0u8; 1500],
        vec![0u8; 600],
        vec![0u8; 1500],
    ];
    let mut lens = [0usize; 4];
    let before = counter(&a, "TcpOutSegs");
    assert_eq!(a.poll_transmit_burst(now, &mut bufs, &mut lens), 2);
    assert_eq!(counter(&a, "TcpOutSegs") - before, 2);
    assert_eq!(counter(&a, "SeqackOutBufTooSmall"), 1);
    for (p, &n) in bufs.iter().zip(&lens).take(2) {
        b.handle_packet(now, &p[..n]);
    }
    // The rest follows at once, in order, with no timer in between.
    pump_offering(now, &mut a, &mut b, 0);
    let mut got = vec![0u8; data.len() + 1];
    let mut n = 0;
    while let Ok(k) = b.recv(now, s, &mut got[n..]) {
        if k == 0 {
            break;
        }
        n += k;
    }
    assert!(
        got[..n] == data[..],
        "{n} of {} bytes arrived in order",
        data.len()
    );
    assert_eq!(counter(&a, "TcpRetransSegs"), 0);
}

/// The MSS option of a SYN or SYN-ACK `p` (an IPv4 packet).
fn syn_mss(p: &[u8]) -> Option<u16> {
    let ipp = ip::parse(p).unwrap();
    let seg = tcp::parse(ipp.payload, ipp.src, ipp.dst, true).unwrap();
    assert!(seg.flags.syn());
    seg.options.mss
}

/// An MTU below `Config::MIN_MTU` cannot carry a minimum-sized segment: reported by
/// `Config::check`, refused for one connection with a clear error, and taken as the
/// minimum in a stack's defaults, whose packets then fit in it.
#[test]
fn an_mtu_below_the_minimum_is_refused_or_taken_as_the_minimum() {
    use seqack::stack::StackError;
    use seqack::tcp::ConfigError;
    let small = Config {
        mtu: 100,
        ..Config::default()
    };
    assert_eq!(small.check(), Err(ConfigError::MtuTooSmall(100)));
    let msg = ConfigError::MtuTooSmall(100).to_string();
    assert!(
        msg.contains("100") && msg.contains(&Config::MIN_MTU.to_string()),
        "{msg}"
    );
    let now = Instant::ZERO;
    let server: SocketAddr = SERVER.parse().unwrap();
    let (mut s, _) = stack();
    assert_eq!(
        s.connect_with(now, None, server, Some(small.clone())),
        Err(StackError::InvalidConfig(ConfigError::MtuTooSmall(100)))
    );
    assert_eq!(s.connection_count(), 0, "nothing was created");

    let mut c = Stack::new(StackConfig {
        tcp: small,
        seed: 5,
        ..Default::default()
    });
    assert_eq!(c.config().mtu, Config::MIN_MTU);
    c.add_address("10.0.0.1".parse().unwrap());
    c.connect(now, None, server).unwrap();
    let mut buf = [0u8; 1500];
    let n = c.poll_transmit(now, &mut buf).expect("the SYN goes out");
    assert_eq!(syn_mss(&buf[..n]), Some(Config::MIN_MTU - 40));
}

/// A connection's own MTU is bounded by its stack's, as Linux bounds a socket's MSS
/// by its route: a client on a 1500-byte link asking for 9000 still advertises 1460,
/// and a server on a 9000-byte link therefore sends it segments that fit, while its
/// own segments, cut to the server's 8960, would not. A transfer each way completes
/// through 1500-byte buffers, none of them too small.
#[test]
fn a_connection_mtu_above_the_stack_mtu_is_bounded_by_it() {
    let now = Instant::ZERO;
    let jumbo = Config {
        mtu: 9000,
        ..Config::default()
    };
    let mut a = Stack::new(StackConfig {
        seed: 1,
        ..Default::default()
    });
    a.add_address("10.0.0.1".parse().unwrap());
    let mut b = Stack::new(StackConfig {
        tcp: jumbo.clone(),
        seed: 2,
        ..Default::default()
    });
    b.add_address("10.0.0.2".parse().unwrap());
    let l = b.listen(SERVER.parse().unwrap(), 8).unwrap();
    let c = a
        .connect_with(now, None, SERVER.parse().unwrap(), Some(jumbo))
        .unwrap();
    let mut buf = [0u8; 1500];
    let n = a.poll_transmit(now, &mut buf).expect("the SYN goes out");
    assert_eq!(syn_mss(&buf[..n]), Some(1460));
    b.handle_packet(now, &buf[..n]);
    pump_offering(now, &mut b, &mut a, 0);
    pump_offering(now, &mut a, &mut b, 0);
    let s = b.accept(l).expect("accepted");
    transfer(now, &mut a, &mut b, c, s, 64 * 1024, 0);
    transfer(now, &mut b, &mut a, s, c, 64 * 1024, 0);
    assert_eq!(counter(&a, "SeqackOutBufTooSmall"), 0);
    assert_eq!(counter(&b, "SeqackOutBufTooSmall"), 0);
}

/// Sends `len` bytes from `tx` on `from` to `rx` on `to`, offering a `small`-byte
/// buffer before each 1500-byte one (see [`pump_offering`]), and checks that all of
/// it arrives in order; returns how many of `to`'s packets fitted in the small ones.
fn transfer(
    now: Instant,
    from: &mut Stack,
    to: &mut Stack,
    tx: seqack::ConnId,
    rx: seqack::ConnId,
    len: usize,
    small: usize,
) -> usize {
    let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
    let mut sent = 0;
    let mut got = Vec::new();
    let mut out = vec![0u8; 64 * 1024];
    let mut fitted = 0;
    for _ in 0..1_000 {
        if sent < data.len() {
            sent += from.send(now, tx, &data[sent..]).unwrap_or(0);
        }
        pump_offering(now, from, to, small);
        while let Ok(k) = to.recv(now, rx, &mut out) {
            if k == 0 {
                break;
            }
            got.extend_from_slice(&out[..k]);
        }
        fitted += pump_offering(now, to, from, small);
        if got.len() == data.len() {
            break;
        }
    }
    assert!(got == data, "{} of {} bytes arrived", got.len(), data.len());
    fitted
}

/// The payload of an arriving in-order segment is checksummed as it is copied into
/// the receive ring (handle_packets, and handle_packet, which is handle_packets with
/// one packet: odd rounds hand the packets over one at a time): a corrupted one must
/// still be dropped and counted with nothing delivered, even when its bytes were
/// copied before its sum failed, and its good copy must then deliver exactly the data
/// sent. Rounds of varying sizes carry the stream across the ring's end many times
/// (segments split there at odd and even offsets), some with the segments reordered
/// so that the good copy lands out of order or fills a gap; the application reads
/// only part of what has arrived each time.
#[test]
fn a_corrupted_segment_copied_as_it_is_summed_changes_nothing() {
    corrupted_segments_change_nothing(false);
}

/// The same in FIN_WAIT_2: the receiver shut down writing first (a download after a
/// half-close), and its arriving data is staged as in ESTABLISHED.
#[test]
fn a_corrupted_segment_copied_as_it_is_summed_changes_nothing_after_a_half_close() {
    corrupted_segments_change_nothing(true);
}

fn corrupted_segments_change_nothing(half_closed: bool) {
    let mut now = Instant::ZERO;
    let (mut a, mut b, c, l) = pair();
    pump_offering(now, &mut a, &mut b, 0);
    pump_offering(now, &mut b, &mut a, 0);
    pump_offering(now, &mut a, &mut b, 0);
    let s = b.accept(l).expect("accepted");
    let receiving = if half_closed {
        b.shutdown(now, s, Shutdown::Write);
        pump_offering(now, &mut b, &mut a, 0);
        // The peer acknowledges the FIN when its delayed-ACK timer fires (Linux's way).
        now += Duration::from_millis(500);
        a.handle_timeout(now);
        pump_offering(now, &mut a, &mut b, 0);
        State::FinWait2
    } else {
        State::Established
    };
    assert_eq!(b.state(s), receiving);
    let (mut sent, mut got) = (Vec::new(), Vec::new());
    let mut corrupted = 0u64;
    let mut out = vec![0u8; 64 * 1024];
    for round in 0..200usize {
        let len = 1 + (round * 7919) % 9000;
        let chunk: Vec<u8> = (0..len).map(|i| (i * 31 + round) as u8).collect();
        assert_eq!(a.send(now, c, &chunk), Ok(len));
        sent.extend_from_slice(&chunk);
        // What the window, the congestion window and Nagle hold back goes out on the
        // ACKs of what went before: a few passes until all of it has arrived.
        for pass in 0..20 {
            let mut pkts = Vec::new();
            let mut buf = vec![0u8; 1500];
            while let Some(n) = a.poll_transmit(now, &mut buf) {
                pkts.push(buf[..n].to_vec());
            }
            let mut batch = Vec::new();
            for (i, p) in pkts.iter().enumerate() {
                let mut bad = p.clone();
                // One of the last bytes: payload, or for a short one its header.
                let last = bad.len() - 1 - (round + i) % 7;
                bad[last] ^= 0x10;
                batch.push(bad);
                batch.push(p.clone());
            }
            if (round + pass) % 3 == 1 && pkts.len() > 1 {
                // The second segment first: the first's good copy then fills the gap.
                batch.swap(0, 2);
                batch.swap(1, 3);
            }
            corrupted += pkts.len() as u64;
            let before = b.counters().in_csum_errors;
            if round % 2 == 0 {
                b.handle_packets(now, batch.iter().map(Vec::as_slice));
            } else {
                for p in &batch {
                    b.handle_packet(now, p);
                }
            }
            assert_eq!(b.counters().in_csum_errors - before, pkts.len() as u64);
            // The application reads a part: the rest stays, so the ring's start moves
            // round and arriving segments are split at its end.
            let want = 1 + (round * 13 + pass * 7919) % 6000;
            if let Ok(k) = b.recv(now, s, &mut out[..want]) {
                got.extend_from_slice(&out[..k]);
            }
            assert!(got.len() <= sent.len() && got[..] == sent[..got.len()]);
            // Time moves on: delayed ACKs go out (Nagle waits for them).
            now += Duration::from_millis(50);
            b.handle_timeout(now);
            a.handle_timeout(now);
            pump_offering(now, &mut b, &mut a, 0);
            if pkts.is_empty() {
                break;
            }
        }
    }
    for _ in 0..1_000 {
        match b.recv(now, s, &mut out) {
            Ok(k) if k > 0 => got.extend_from_slice(&out[..k]),
            _ => break,
        }
    }
    assert!(got == sent, "{} of {} bytes", got.len(), sent.len());
    assert_eq!(b.counters().in_csum_errors, corrupted);
    assert_eq!(b.state(s), receiving);
}
