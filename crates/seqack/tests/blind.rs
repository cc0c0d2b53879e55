//! Defence against blind attacks (RFC 5961, RFC 9293 3.10.7.4, RFC 7323 PAWS, RFC 1337
//! and RFC 6191 in TIME_WAIT): an off-path attacker who knows the 4-tuple but not the
//! sequence numbers injects RSTs, SYNs, data and ACKs into a connection in every
//! synchronized state. Each attack's reply is checked to the bit (flags, SEQ, ACK), then
//! the connection must carry on: data received before stays intact, data after is
//! delivered in order, and the close completes.
//!
//! The connections here have history: the peer sent [`EARLY`] (still unread) and we
//! sent [`OUT`] (acknowledged) before the state was reached, so SND.UNA, SND.NXT and
//! RCV.NXT are not the fixtures' first values.

mod common;

use common::*;
use seqack::tcp::{Config, Shutdown, State};
use seqack::wire::tcp::Flags;
use seqack::wire::Seq;

/// Data the peer sent before the attack; nobody has read it.
const EARLY: &[u8] = b"early";
/// Data we sent and the peer acknowledged before the attack.
const OUT: &[u8] = b"out";
/// The attacker's payload.
const EVIL: &[u8] = b"EVIL!";
/// An offset from RCV.NXT far outside any window (but less than 2^31).
const FAR: u32 = 1 << 30;

/// The sequence variables a state was reached with, to check replies against.
#[derive(Copy, Clone, Debug)]
struct Case {
    state: State,
    snd_una: Seq,
    snd_nxt: Seq,
    rcv_nxt: Seq,
}

/// Drives a fresh connection (active open, `cfg`) to `state` through legitimate
/// traffic: EARLY in, OUT out and acknowledged, then the FINs the state needs.
fn reach(state: State, cfg: Config) -> (Fixture, Case) {
    let mut f = conn_established_with(cfg);
    let early = f.seg(Flags::ACK | Flags::PSH, irs(1), iss(1), EARLY);
    f.inject(&early);
    let a = f.expect_one();
    assert_eq!((a.flags, a.seq, a.ack), (Flags::ACK, iss(1), irs(6)));
    f.send(OUT);
    let d = f.expect_one();
    assert_eq!(
        (d.flags, d.seq, d.ack, &d.payload[..]),
        (Flags::ACK | Flags::PSH, iss(1), irs(6), OUT)
    );
    f.advance(RTT);
    let a = f.seg(Flags::ACK, irs(6), iss(4), b"");
    f.inject(&a);
    f.expect_nothing();
    // Our FIN is ISS+4, the peer's IRS+6.
    let our_fin = matches!(
        state,
        State::FinWait1 | State::FinWait2 | State::Closing | State::TimeWait
    );
    if our_fin {
        f.conn.shutdown(Shutdown::Write);
        let fin = f.expect_one();
        assert_eq!(
            (fin.flags, fin.seq, fin.ack),
            (Flags::FIN | Flags::ACK, iss(4), irs(6))
        );
    }
    if matches!(state, State::FinWait2 | State::TimeWait) {
        f.advance(RTT);
        let a = f.seg(Flags::ACK, irs(6), iss(5), b"");
        f.inject(&a);
        f.expect_nothing();
    }
    if matches!(
        state,
        State::CloseWait | State::LastAck | State::Closing | State::TimeWait
    ) {
        let ack = if state == State::TimeWait {
            iss(5)
        } else {
            iss(4)
        };
        f.advance(RTT);
        let fin = f.seg(Flags::FIN | Flags::ACK, irs(6), ack, b"");
        f.inject(&fin);
        let a = f.expect_one();
        let snd_nxt = if our_fin { iss(5) } else { iss(4) };
        assert_eq!((a.flags, a.seq, a.ack), (Flags::ACK, snd_nxt, irs(7)));
    }
    if state == State::LastAck {
        f.conn.shutdown(Shutdown::Write);
        let fin = f.expect_one();
        assert_eq!(
            (fin.flags, fin.seq, fin.ack),
            (Flags::FIN | Flags::ACK, iss(4), irs(7))
        );
    }
    // The peer's last segment was sent now: TS.Recent is the peer's clock now.
    assert_eq!(f.conn.state(), state);
    f.events();
    let fin_acked = matches!(state, State::FinWait2 | State::TimeWait);
    let case = Case {
        state,
        snd_una: if fin_acked { iss(5) } else { iss(4) },
        snd_nxt: if our_fin || state == State::LastAck {
            iss(5)
        } else {
            iss(4)
        },
        rcv_nxt: if state.can_receive() { irs(6) } else { irs(7) },
    };
    assert_eq!(
        f.conn.sequence(),
        (ISS, case.snd_una, case.snd_nxt, IRS, case.rcv_nxt),
        "{state:?}"
    );
    (f, case)
}

/// Asserts that exactly one bare ACK <SEQ=SND.NXT><ACK=RCV.NXT> was sent.
#[track_caller]
fn expect_ack(f: &mut Fixture, c: &Case, ctx: &str) -> Sent {
    let v = f.transmit();
    assert_eq!(v.len(), 1, "{ctx}: expected one ACK, got {v:#?}");
    let a = v.into_iter().next().unwrap();
    assert_eq!(
        (a.flags, a.seq, a.ack, a.payload.len()),
        (Flags::ACK, c.snd_nxt, c.rcv_nxt, 0),
        "{ctx}"
    );
    a
}

// ----- focused: SYNs outside the window, PAWS and the shared rate limit ------------

#[test]
fn out_of_window_syn_draws_a_counted_rate_limited_challenge_ack() {
    // RFC 5961 4.2: a SYN in a synchronized state is answered with a challenge ACK
    // "irrespective of the sequence number", under the challenge ACK rate limit.
    for seq in [irs(6) + FAR, irs(6) - 1000u32, IRS] {
        let (mut f, c) = reach(State::Established, plain_config());
        f.inject(&f.seg(Flags::SYN, seq, Seq(0), b""));
        expect_ack(&mut f, &c, "first SYN");
        assert_eq!((f.cx.syn_challenge, f.cx.challenge_acks), (1, 1));
        f.advance(ms(499));
        f.inject(&f.seg(Flags::SYN, seq, Seq(0), b""));
        f.expect_nothing();
        assert_eq!(
            (
                f.cx.syn_challenge,
                f.cx.challenge_acks,
                f.cx.ack_skipped_challenge
            ),
            (2, 1, 1)
        );
        f.advance(ms(1));
        f.inject(&f.seg(Flags::SYN, seq, Seq(0), b""));
        expect_ack(&mut f, &c, "500 ms later");
        assert_eq!((f.cx.syn_challenge, f.cx.challenge_acks), (3, 2));
        assert_eq!(f.conn.state(), c.state);
        assert!(f.events().is_empty());
    }
}

#[test]
fn syn_failing_paws_draws_a_challenge_ack() {
    let (mut f, c) = reach(State::Established, Config::default());
    f.advance(ms(10));
    let mut syn = f.seg(Flags::SYN, c.rcv_nxt + 100u32, Seq(0), b"");
    syn.options.timestamps = Some((f.peer_tsval() - 5000, 0));
    f.inject(&syn);
    expect_ack(&mut f, &c, "PAWS SYN");
    // Linux (tcp_validate_incoming): a SYN failing PAWS goes to syn_challenge, not to
    // the PAWS counter.
    assert_eq!(
        (
            f.cx.syn_challenge,
            f.cx.challenge_acks,
            f.cx.paws_estab_rejected
        ),
        (1, 1, 0)
    );
    assert_eq!(f.conn.state(), State::Established);
}

#[test]
fn paws_rejected_data_is_always_acked_but_pure_acks_are_rate_limited() {
    let (mut f, c) = reach(State::Established, Config::default());
    f.advance(ms(10));
    let stale = f.peer_tsval() - 5000;
    let with_ts = |f: &Fixture, payload: &'static [u8]| {
        let mut s = f.seg(Flags::ACK, c.rcv_nxt, c.snd_nxt, payload);
        s.options.timestamps = Some((stale, f.last_tsval));
        s
    };
    for i in 0..3 {
        f.inject(&with_ts(&f, EVIL));
        let a = expect_ack(&mut f, &c, &format!("data {i}"));
        // RFC 7323 5.3 R1: the ACK echoes TS.Recent, not the stale TSval.
        assert_eq!(a.options.timestamps.map(|t| t.1), Some(f.peer_tsval() - 10));
    }
    assert_eq!(f.conn.recv_queue(), EARLY.len(), "stale data is not taken");
    // A pure ACK failing PAWS: one reply, then the limit (Linux's TCPACKSkippedPAWS).
    f.inject(&with_ts(&f, b""));
    expect_ack(&mut f, &c, "pure ACK");
    f.inject(&with_ts(&f, b""));
    f.expect_nothing();
    assert_eq!((f.cx.paws_estab_rejected, f.cx.ack_skipped_paws), (5, 1));
    assert_eq!(f.cx.challenge_acks, 0);
}

#[test]
fn out_of_window_acks_and_challenge_acks_share_one_limit() {
    // Linux keeps one timestamp (last_oow_ack_time) for both kinds of reply.
    let (mut f, c) = reach(State::Established, plain_config());
    let t0 = f.now;
    f.inject(&f.seg(Flags::ACK, c.rcv_nxt + FAR, c.snd_nxt, b""));
    expect_ack(&mut f, &c, "out-of-window pure ACK");
    f.now = t0 + ms(100);
    f.inject(&f.seg(Flags::RST, c.rcv_nxt + 100u32, Seq(0), b""));
    f.expect_nothing();
    f.now = t0 + ms(200);
    f.inject(&f.seg(Flags::ACK, c.rcv_nxt - 1000u32, c.snd_nxt, b""));
    f.expect_nothing();
    // Data is answered regardless: it cannot be half of an ACK loop.
    f.now = t0 + ms(300);
    f.inject(&f.seg(Flags::ACK, c.rcv_nxt + FAR, c.snd_nxt, EVIL));
    expect_ack(&mut f, &c, "out-of-window data");
    assert_eq!(
        (
            f.cx.challenge_acks,
            f.cx.ack_skipped_challenge,
            f.cx.ack_skipped_seq
        ),
        (0, 1, 1)
    );
    f.now = t0 + ms(500);
    f.inject(&f.seg(Flags::RST, c.rcv_nxt + 100u32, Seq(0), b""));
    expect_ack(&mut f, &c, "challenge after the interval");
    assert_eq!(f.cx.challenge_acks, 1);
}
