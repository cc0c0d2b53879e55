//! TCP Fast Open, client side (RFC 7413): the connection's SYN with a cookie request or
//! a cookie and data, what it makes of the SYN-ACK, and the stack's cookie cache.

mod common;

use common::*;
use seqack::stack::StackConfig;
use seqack::tcp::{Config, Error, FastOpenOutcome, State};
use seqack::wire::tcp::{FastOpen, FastOpenCookie, Flags, Options};
use seqack::wire::{ip, tcp, Seq};
use seqack::{Duration, Instant, Stack};
use std::net::SocketAddr;

fn tfo_config() -> Config {
    Config {
        fast_open: true,
        ..plain_config()
    }
}

fn cookie(first: u8) -> FastOpenCookie {
    FastOpenCookie::new(&[first, 2, 3, 4, 5, 6, 7, 8]).unwrap()
}

/// The peer's SYN-ACK one RTT on, acknowledging up to `ack`, with its MSS and the Fast
/// Open option `fo`.
fn answer(f: &mut Fixture, ack: Seq, fo: Option<FastOpen>) {
    f.now += RTT;
    let mut s = f.seg(Flags::SYN | Flags::ACK, IRS, ack, b"");
    s.options = Options {
        mss: Some(PEER_MSS),
        fast_open: fo,
        ..Options::default()
    };
    f.inject(&s);
}

#[test]
fn the_cookie_is_parsed_and_written_as_rfc_7413_lays_it_out() {
    // Valid lengths: 4 to 16, even.
    for n in 0..=20 {
        let valid = (4..=16).contains(&n) && n % 2 == 0;
        assert_eq!(
            FastOpenCookie::new(&vec![9; n]).is_some(),
            valid,
            "{n} bytes"
        );
    }
    let c = cookie(1);
    assert_eq!(c.as_bytes(), &[1, 2, 3, 4, 5, 6, 7, 8]);
    // Kind 34: a request, a cookie, a cookie of a length the RFC does not allow (which
    // leaves the segment valid), and the experimental kind 254 with magic 0xF989.
    let cases: [(&[u8], FastOpen); 4] = [
        (&[34, 2, 0, 0], FastOpen::Request),
        (&[34, 10, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0], FastOpen::Cookie(c)),
        (&[34, 5, 1, 2, 3, 0], FastOpen::Invalid),
        (
            &[254, 12, 0xF9, 0x89, 1, 2, 3, 4, 5, 6, 7, 8],
            FastOpen::Cookie(c),
        ),
    ];
    for (raw, want) in cases {
        let o = Options::parse(raw).expect("a valid option list");
        assert_eq!(o.fast_open, Some(want), "{raw:?}");
    }
    // Another experiment under kind 254 is not Fast Open.
    let o = Options::parse(&[254, 4, 0x12, 0x34]).unwrap();
    assert_eq!(o.fast_open, None);
    // Written last; Linux pads with NOPs, FreeBSD ends the list with EOLs.
    let mut o = Options {
        mss: Some(1460),
        fast_open: Some(FastOpen::Request),
        ..Options::default()
    };
    let mut buf = [0u8; 40];
    let n = o.write(tcp::OptionLayout::Linux, &mut buf);
    assert_eq!(&buf[..n], &[2, 4, 5, 180, 34, 2, 1, 1]);
    let n = o.write(tcp::OptionLayout::FreeBsd, &mut buf);
    assert_eq!(&buf[..n], &[2, 4, 5, 180, 34, 2, 0, 0]);
    o.fast_open = Some(FastOpen::Cookie(c));
    let n = o.write(tcp::OptionLayout::Linux, &mut buf);
    assert_eq!(
        &buf[..n],
        &[2, 4, 5, 180, 34, 10, 1, 2, 3, 4, 5, 6, 7, 8, 1, 1]
    );
    assert_eq!(Options::parse(&buf[..n]).unwrap(), o);
}

#[test]
fn without_a_cookie_the_syn_asks_for_one_and_the_data_follows_the_handshake_with_its_ack() {
    let mut f = connecting(tfo_config());
    f.send(b"GET / HTTP/1.0\r\n\r\n");
    let syn = f.expect_one();
    assert_eq!(syn.flags, Flags::SYN);
    assert_eq!(syn.options.fast_open, Some(FastOpen::Request));
    assert!(syn.payload.is_empty(), "no data without a cookie");
    assert_eq!(f.conn.take_fast_open_outcome(), None, "no answer yet");

    answer(&mut f, iss(1), Some(FastOpen::Cookie(cookie(7))));
    assert_eq!(f.conn.state(), State::Established);
    // The data goes at once and carries the ACK: no bare ACK before it.
    let d = f.expect_one();
    assert_eq!(
        (d.flags, d.seq, d.ack),
        (Flags::PSH | Flags::ACK, iss(1), irs(1))
    );
    assert_eq!(d.payload, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(
        f.conn.take_fast_open_outcome(),
        Some(FastOpenOutcome::Cookie {
            cookie: cookie(7),
            mss: PEER_MSS
        })
    );
    assert_eq!(f.conn.take_fast_open_outcome(), None, "taken once");
    assert_eq!((f.cx.fastopen_active, f.cx.fastopen_active_fail), (0, 0));
}

#[test]
fn with_a_cookie_the_syn_carries_the_data_and_an_ack_of_it_keeps_the_cookie() {
    let mut f = connecting(tfo_config());
    assert!(f.conn.set_fast_open_cookie(cookie(1), 1460));
    f.send(b"hello");
    let syn = f.expect_one();
    assert_eq!((syn.flags, syn.seq), (Flags::SYN, ISS));
    assert_eq!(syn.options.fast_open, Some(FastOpen::Cookie(cookie(1))));
    assert_eq!(syn.payload, b"hello");
    assert_eq!(syn.seq_len(), 6, "SYN and five bytes");
    // Too late to change the SYN now.
    assert!(!f.conn.set_fast_open_cookie(cookie(2), 1460));
    assert!(!f.conn.disable_fast_open());

    answer(&mut f, iss(6), None);
    assert_eq!(f.conn.state(), State::Established);
    // Nothing to resend: the ACK goes alone.
    let ack = f.expect_one();
    assert!(ack.is_pure_ack());
    assert_eq!((ack.seq, ack.ack), (iss(6), irs(1)));
    assert_eq!(f.conn.take_fast_open_outcome(), Some(FastOpenOutcome::Keep));
    assert_eq!((f.cx.fastopen_active, f.cx.fastopen_active_fail), (1, 0));
    assert_eq!(
        f.conn.send_queue(),
        0,
        "the SYN's data is acknowledged and freed"
    );
    // The stream goes on after the SYN's data.
    f.send(b"!");
    let d = f.expect_one();
    assert_eq!((d.seq, d.payload.as_slice()), (iss(6), &b"!"[..]));
}

#[test]
fn data_the_syn_ack_does_not_acknowledge_is_sent_again_at_once_and_the_answer_is_negative() {
    let mut f = connecting(tfo_config());
    f.conn.set_fast_open_cookie(cookie(1), 1460);
    f.send(&[5; 300]);
    let syn = f.expect_one();
    assert_eq!(syn.payload.len(), 300);
    // The server rejected the cookie: it acknowledges the SYN only, and sends no new one.
    answer(&mut f, iss(1), Some(FastOpen::Invalid));
    let d = f.expect_one();
    assert_eq!(
        (d.flags, d.seq, d.ack),
        (Flags::PSH | Flags::ACK, iss(1), irs(1))
    );
    assert_eq!(d.payload, vec![5; 300]);
    assert_eq!(f.cx.retrans_segs, 1, "the SYN's data sent again");
    assert_eq!(
        f.conn.take_fast_open_outcome(),
        Some(FastOpenOutcome::Failed { at: f.now })
    );
    assert_eq!((f.cx.fastopen_active, f.cx.fastopen_active_fail), (0, 1));
    // A rejection that brings a new cookie hands that one over instead.
    let mut f = connecting(tfo_config());
    f.conn.set_fast_open_cookie(cookie(1), 1460);
    f.send(b"x");
    f.expect_one();
    answer(&mut f, iss(1), Some(FastOpen::Cookie(cookie(9))));
    assert_eq!(f.expect_one().payload, b"x");
    assert_eq!(
        f.conn.take_fast_open_outcome(),
        Some(FastOpenOutcome::Cookie {
            cookie: cookie(9),
            mss: PEER_MSS
        })
    );
}

#[test]
fn the_syn_carries_at_most_one_segment_of_the_cached_mss_less_its_options() {
    let mut f = connecting(tfo_config());
    f.conn.set_fast_open_cookie(cookie(1), 600);
    f.send(&[1; 5000]);
    let syn = f.expect_one();
    // 600 bytes of MSS, less the options: MSS (4) and the cookie (10, padded to 12).
    assert_eq!(syn.payload.len(), 600 - 16);
    answer(&mut f, iss(1 + 584), None);
    // The rest follows in full-sized segments of the SYN-ACK's MSS.
    let rest = f.transmit();
    assert_eq!(rest[0].seq, iss(585));
    assert_eq!(rest[0].payload.len(), usize::from(PEER_MSS));
}

#[test]
fn a_retransmitted_syn_keeps_the_cookie_but_not_the_data() {
    let mut f = connecting(tfo_config());
    f.conn.set_fast_open_cookie(cookie(1), 1460);
    f.send(b"data");
    assert_eq!(f.expect_one().payload, b"data");
    f.fire_next();
    let again = f.expect_one();
    assert_eq!((again.flags, again.seq), (Flags::SYN, ISS));
    assert_eq!(again.options.fast_open, Some(FastOpen::Cookie(cookie(1))));
    assert!(again.payload.is_empty());
    // The server got the first SYN after all and took its data.
    answer(&mut f, iss(5), None);
    assert!(f.expect_one().is_pure_ack());
    assert_eq!(f.conn.take_fast_open_outcome(), Some(FastOpenOutcome::Keep));
}

#[test]
fn a_syn_that_goes_unanswered_to_the_end_is_a_negative_answer() {
    let mut f = connecting(Config {
        syn_retries: 2,
        ..tfo_config()
    });
    f.expect_one();
    for _ in 0..2 {
        f.fire_next();
        f.expect_one();
    }
    f.fire_next();
    assert_eq!(f.conn.state(), State::Closed);
    assert_eq!(f.conn.error(), Some(Error::TimedOut));
    assert_eq!(
        f.conn.take_fast_open_outcome(),
        Some(FastOpenOutcome::Failed { at: f.now })
    );
}

#[test]
fn without_fast_open_the_syn_has_no_option_and_the_handshake_ack_goes_alone() {
    let mut f = connecting(plain_config());
    f.send(b"early");
    let syn = f.expect_one();
    assert_eq!(syn.options.fast_open, None);
    assert!(syn.payload.is_empty());
    assert!(!f.conn.uses_fast_open());
    assert!(!f.conn.set_fast_open_cookie(cookie(1), 1460));
    answer(&mut f, iss(1), Some(FastOpen::Cookie(cookie(1))));
    let out = f.transmit();
    assert!(out[0].is_pure_ack(), "{out:?}");
    assert_eq!(out[1].payload, b"early");
    assert_eq!(f.conn.take_fast_open_outcome(), None);
}

// ----- the stack's cookie cache ----------------------------------------------------

const SERVER: &str = "10.0.0.2:80";

fn client_stack(cfg: StackConfig) -> Stack {
    let mut s = Stack::new(StackConfig {
        tcp: tfo_config(),
        seed: 3,
        ..cfg
    });
    s.add_address("10.0.0.1".parse().unwrap());
    s
}

/// The segments the stack sends now, parsed: (source, flags, seq, ack, FO, payload).
type Out = (SocketAddr, Flags, u32, u32, Option<FastOpen>, Vec<u8>);

fn drain(s: &mut Stack, now: Instant) -> Vec<Out> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1500];
    while let Some(n) = s.poll_transmit(now, &mut buf) {
        let p = ip::parse(&buf[..n]).unwrap();
        let t = tcp::parse(p.payload, p.src, p.dst, true).unwrap();
        let from = SocketAddr::new(p.src, t.src_port);
        let fo = t.options.fast_open;
        out.push((from, t.flags, t.seq.0, t.ack.0, fo, t.payload.to_vec()));
    }
    out
}

/// One connection through the stack: connect and write `data`, the SYN (returned),
/// then the server's SYN-ACK acknowledging `acked` bytes of SYN data with `fo`, and
/// a reset to end it.
fn open(s: &mut Stack, now: Instant, data: &[u8], acked: u32, fo: Option<FastOpen>) -> Out {
    let server: SocketAddr = SERVER.parse().unwrap();
    let id = s.connect(now, None, server).unwrap();
    s.send(now, id, data).unwrap();
    let out = drain(s, now);
    assert_eq!(out.len(), 1, "{out:?}");
    let syn = out[0].clone();
    let options = Options {
        mss: Some(1460),
        fast_open: fo,
        ..Options::default()
    };
    let flags = Flags::SYN | Flags::ACK;
    let synack = common::ip_packet(server, syn.0, flags, 7000, syn.2 + 1 + acked, options, b"");
    s.handle_packet(now, &synack);
    assert_eq!(s.state(id), State::Established);
    drain(s, now);
    s.abort(now, id);
    drain(s, now);
    syn
}

#[test]
fn the_stack_asks_once_then_sends_the_cookie_and_turns_fast_open_off_after_a_refusal() {
    let mut s = client_stack(StackConfig::default());
    let t = Instant::ZERO;
    let (local, remote) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
    let syn = open(&mut s, t, b"one", 0, Some(FastOpen::Cookie(cookie(4))));
    assert_eq!((syn.4, syn.5.len()), (Some(FastOpen::Request), 0));
    assert_eq!(s.fast_open_cookie(local, remote), Some(cookie(4)));
    // The second connection sends the cookie and its data in the SYN, which the
    // server takes.
    let syn = open(&mut s, t, b"two", 3, None);
    assert_eq!(
        (syn.4, syn.5.as_slice()),
        (Some(FastOpen::Cookie(cookie(4))), &b"two"[..])
    );
    assert_eq!(s.counters().fastopen_active, 1);
    // The third finds the server no longer takes it.
    let syn = open(&mut s, t, b"three", 0, None);
    assert_eq!(syn.5, b"three");
    assert_eq!(s.counters().fastopen_active_fail, 1);
    assert_eq!(s.fast_open_cookie(local, remote), None);
    // From then on, for the disable period, no Fast Open at all towards it.
    let later = t + Duration::from_secs(899);
    let syn = open(&mut s, later, b"four", 0, None);
    assert_eq!((syn.4, syn.5.len()), (None, 0));
    // After it, a cookie request again.
    let after = t + Duration::from_secs(900);
    let syn = open(&mut s, after, b"five", 0, None);
    assert_eq!((syn.4, syn.5.len()), (Some(FastOpen::Request), 0));
    assert_eq!(s.fast_open_cache_len(), 1);
    s.clear_fast_open_cache();
    assert_eq!(s.fast_open_cache_len(), 0);
}

#[test]
fn a_server_that_answers_a_request_without_a_cookie_gets_no_second_request() {
    let cfg = StackConfig {
        fast_open_disable: Duration::from_secs(60),
        ..StackConfig::default()
    };
    let mut s = client_stack(cfg);
    let t = Instant::ZERO;
    let syn = open(&mut s, t, b"a", 0, None);
    assert_eq!(syn.4, Some(FastOpen::Request));
    let syn = open(&mut s, t + Duration::from_secs(59), b"b", 0, None);
    assert_eq!(syn.4, None);
    let syn = open(&mut s, t + Duration::from_secs(60), b"c", 0, None);
    assert_eq!(syn.4, Some(FastOpen::Request));
    // A connection opened without Fast Open neither asks nor uses the cache.
    let server: SocketAddr = SERVER.parse().unwrap();
    let id = s
        .connect_with(t, None, server, Some(plain_config()))
        .unwrap();
    let out = drain(&mut s, t);
    assert_eq!(out[0].4, None);
    assert!(!s.conn(id).unwrap().uses_fast_open());
}
