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
use seqack::tcp::{
    rfc9293_allows, Config, Disposition, Error, Event, Reason, RecvError, Shutdown, State, Timer,
};
use seqack::wire::tcp::{Flags, Segment};
use seqack::wire::Seq;
use seqack::{Counters, Duration, Instant};

/// Data the peer sent before the attack; nobody has read it.
const EARLY: &[u8] = b"early";
/// Data we sent and the peer acknowledged before the attack.
const OUT: &[u8] = b"out";
/// Data the peer sends after the attack.
const LATER: &[u8] = b"later";
/// Data we send after the attack.
const REPLY: &[u8] = b"reply";
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
    /// TS.Recent: the TSval of the peer's last legitimate segment (with timestamps).
    ts_recent: u32,
}

/// The synchronized states, in RFC order.
const STATES: [State; 7] = [
    State::Established,
    State::FinWait1,
    State::FinWait2,
    State::CloseWait,
    State::Closing,
    State::LastAck,
    State::TimeWait,
];

/// Drives a fresh connection (active open, `cfg`) to `state` through legitimate
/// traffic: EARLY in, OUT out and acknowledged, then the FINs the state needs.
fn reach(state: State, cfg: Config) -> (Fixture, Case) {
    let mut f = conn_established_with(cfg);
    let mut ts_recent = None;
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
        ts_recent = Some(f.peer_tsval());
        // Linux delays the ACK of a FIN that moves to CLOSE_WAIT: LAST_ACK is then
        // reached by the three-way close (our FIN below carries that ACK), CLOSE_WAIT
        // once the delayed ACK has gone.
        let delayed = !our_fin && f.conn.config().delayed_fin_ack;
        if delayed {
            f.expect_nothing();
            if state == State::CloseWait {
                let due = f.now + f.conn.config().delayed_ack;
                assert_eq!(f.fire_next(), due);
            }
        }
        if !(delayed && state == State::LastAck) {
            let a = f.expect_one();
            let snd_nxt = if our_fin { iss(5) } else { iss(4) };
            assert_eq!((a.flags, a.seq, a.ack), (Flags::ACK, snd_nxt, irs(7)));
        }
    }
    if state == State::LastAck {
        f.conn.shutdown(Shutdown::Write);
        let fin = f.expect_one();
        assert_eq!(
            (fin.flags, fin.seq, fin.ack),
            (Flags::FIN | Flags::ACK, iss(4), irs(7))
        );
    }
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
        // The peer's last segment was its FIN, or the ACK sent now.
        ts_recent: ts_recent.unwrap_or_else(|| f.peer_tsval()),
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

/// The counters an attack may move, as a tuple to compare in one assertion.
fn attack_counters(cx: &Counters) -> [u64; 8] {
    [
        cx.challenge_acks,
        cx.syn_challenge,
        cx.ack_skipped_challenge,
        cx.ack_skipped_seq,
        cx.ack_skipped_paws,
        cx.ack_skipped_time_wait,
        cx.paws_estab_rejected,
        cx.tw_rst_ignored,
    ]
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

// ----- the matrix: every attack in every synchronized state --------------------------

/// What a blind attacker injects. SEQ is relative to RCV.NXT, ACK to SND.UNA/SND.NXT.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Attack {
    /// RST with SEQ = RCV.NXT: the one value RFC 5961 3.2 lets reset.
    RstAtRcvNxt,
    /// RST inside the window but not at RCV.NXT.
    RstInWindow,
    /// RST just below the window (RCV.NXT - 1).
    RstBelow,
    /// RST far above the window.
    RstAbove,
    /// SYN inside the window.
    SynInWindow,
    /// SYN below the window.
    SynBelow,
    /// SYN far above the window.
    SynAbove,
    /// Data wholly below RCV.NXT (an old duplicate), with a valid ACK.
    DataBelow,
    /// Data far above the window, with a valid ACK.
    DataAbove,
    /// Data at RCV.NXT acknowledging data never sent (SEG.ACK > SND.NXT).
    AckUnsent,
    /// Data at RCV.NXT with SEG.ACK < SND.UNA - MAX.SND.WND (RFC 5961 5.2).
    AckTooOld,
    /// Data at RCV.NXT with a valid ACK but a TSval older than TS.Recent (RFC 7323).
    Paws,
}

const ATTACKS: [Attack; 12] = [
    Attack::RstAtRcvNxt,
    Attack::RstInWindow,
    Attack::RstBelow,
    Attack::RstAbove,
    Attack::SynInWindow,
    Attack::SynBelow,
    Attack::SynAbove,
    Attack::DataBelow,
    Attack::DataAbove,
    Attack::AckUnsent,
    Attack::AckTooOld,
    Attack::Paws,
];

impl Attack {
    fn segment(self, f: &Fixture, c: &Case) -> Segment<'static> {
        let (r, s) = (c.rcv_nxt, c.snd_nxt);
        let data = Flags::ACK | Flags::PSH;
        let mut seg = match self {
            Attack::RstAtRcvNxt => f.seg(Flags::RST, r, Seq(0), b""),
            Attack::RstInWindow => f.seg(Flags::RST, r + 100u32, Seq(0), b""),
            Attack::RstBelow => f.seg(Flags::RST, r - 1u32, Seq(0), b""),
            Attack::RstAbove => f.seg(Flags::RST, r + FAR, Seq(0), b""),
            Attack::SynInWindow => f.seg(Flags::SYN, r + 100u32, Seq(0), b""),
            Attack::SynBelow => f.seg(Flags::SYN, r - 1000u32, Seq(0), b""),
            Attack::SynAbove => f.seg(Flags::SYN, r + FAR, Seq(0), b""),
            Attack::DataBelow => f.seg(data, r - 100u32, s, EVIL),
            Attack::DataAbove => f.seg(data, r + FAR, s, EVIL),
            Attack::AckUnsent => f.seg(data, r, s + 1000u32, EVIL),
            Attack::AckTooOld => f.seg(data, r, c.snd_una - (1u32 << 20), EVIL),
            Attack::Paws => f.seg(data, r, s, EVIL),
        };
        if self == Attack::Paws {
            let ts = seg.options.timestamps.as_mut().expect("timestamps are on");
            ts.0 -= 5000;
        }
        seg
    }

    fn is_syn(self) -> bool {
        matches!(
            self,
            Attack::SynInWindow | Attack::SynBelow | Attack::SynAbove
        )
    }

    fn is_rst(self) -> bool {
        matches!(
            self,
            Attack::RstAtRcvNxt | Attack::RstInWindow | Attack::RstBelow | Attack::RstAbove
        )
    }
}

/// What the connection must do with an attack.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Outcome {
    /// The connection is reset; the application sees this error.
    Reset(Option<Error>),
    /// A challenge ACK <SEQ=SND.NXT><ACK=RCV.NXT> (counted as one).
    Challenge,
    /// The duplicate ACK that answers an unacceptable segment (not a challenge).
    Ack,
    /// Nothing is sent and nothing changes.
    Silent,
    /// TIME_WAIT hands the 4-tuple to a new SYN (RFC 6191).
    Recycle,
}

/// The rules, written from the RFCs (and Linux where they leave a choice).
fn expected(a: Attack, state: State, cfg: &Config) -> Outcome {
    use Attack::*;
    use Outcome::*;
    if state == State::TimeWait {
        return match a {
            // RFC 1337 ignores every RST; without it only an exact one closes (RFC 5961
            // 3.2), and TIME_WAIT sends no challenge ACK (Linux: silently dropped).
            RstAtRcvNxt if !cfg.rfc1337 => Reset(None),
            RstAtRcvNxt | RstInWindow | RstBelow | RstAbove => Silent,
            // RFC 6191: a SYN above RCV.NXT, or (timestamps on) with a newer TSval, may
            // open a new incarnation; anything else is answered with an ACK.
            SynInWindow | SynAbove => Recycle,
            SynBelow if cfg.timestamps => Recycle,
            SynBelow => Ack,
            DataBelow | DataAbove | AckUnsent | AckTooOld | Paws => Ack,
        };
    }
    match a {
        RstAtRcvNxt => Reset(match state {
            // RFC 9293 3.10.7.4 second tells the user in the first four states only;
            // Linux (tcp_reset) and FreeBSD report the reset in CLOSING and LAST_ACK too.
            State::Established
            | State::FinWait1
            | State::FinWait2
            | State::CloseWait
            | State::Closing
            | State::LastAck => Some(Error::Reset),
            _ => None,
        }),
        RstInWindow => Challenge,
        RstBelow | RstAbove => Silent,
        SynInWindow | SynBelow | SynAbove => Challenge,
        // RFC 9293 3.10.7.4 first check (RFC 7323 5.3 for PAWS): ACK and drop.
        DataBelow | DataAbove | Paws => Ack,
        // RFC 5961 5.2: outside [SND.UNA - MAX.SND.WND, SND.NXT]: challenge ACK, drop.
        AckUnsent | AckTooOld => Challenge,
    }
}

/// Legitimate traffic after the attack: the peer's data (if it may still send), ours
/// (if we may), both FINs and the end of TIME_WAIT. Checks every segment, the state
/// path to CLOSED, and that the application reads exactly the bytes the peer sent.
fn finish(f: &mut Fixture, c: &Case, ctx: &str) {
    let (mut nxt, mut rcv) = (c.snd_nxt, c.rcv_nxt);
    let mut stream = EARLY.to_vec();
    f.advance(ms(1));
    if c.state.can_receive() {
        f.inject(&f.seg(Flags::ACK | Flags::PSH, rcv, c.snd_una, LATER));
        rcv += LATER.len();
        let a = f.expect_one();
        assert_eq!((a.flags, a.seq, a.ack), (Flags::ACK, nxt, rcv), "{ctx}");
        stream.extend_from_slice(LATER);
    }
    if c.state.can_send() {
        f.send(REPLY);
        let d = f.expect_one();
        assert_eq!(
            (d.flags, d.seq, d.ack, &d.payload[..]),
            (Flags::ACK | Flags::PSH, nxt, rcv, REPLY),
            "{ctx}"
        );
        nxt += REPLY.len();
        f.inject(&f.seg(Flags::ACK, rcv, nxt, b""));
        f.expect_nothing();
        f.conn.shutdown(Shutdown::Write);
        let fin = f.expect_one();
        assert_eq!(
            (fin.flags, fin.seq, fin.ack),
            (Flags::FIN | Flags::ACK, nxt, rcv),
            "{ctx}"
        );
        nxt += 1u32;
    }
    match f.conn.state() {
        State::FinWait1 | State::FinWait2 => {
            f.inject(&f.seg(Flags::FIN | Flags::ACK, rcv, nxt, b""));
            rcv += 1u32;
            let a = f.expect_one();
            assert_eq!((a.flags, a.seq, a.ack), (Flags::ACK, nxt, rcv), "{ctx}");
        }
        State::Closing | State::LastAck => {
            f.inject(&f.seg(Flags::ACK, rcv, nxt, b""));
            f.expect_nothing();
        }
        _ => {}
    }
    if f.conn.state() == State::TimeWait {
        f.fire_next();
        f.expect_nothing();
    }
    use Reason::*;
    use State::*;
    let path: &[(State, State, Reason)] = match c.state {
        Established => &[
            (Established, FinWait1, ShutdownWrite),
            (FinWait1, TimeWait, RcvFinAckOfFin),
            (TimeWait, Closed, Timer2Msl),
        ],
        FinWait1 => &[
            (FinWait1, TimeWait, RcvFinAckOfFin),
            (TimeWait, Closed, Timer2Msl),
        ],
        FinWait2 => &[(FinWait2, TimeWait, RcvFin), (TimeWait, Closed, Timer2Msl)],
        CloseWait => &[
            (CloseWait, LastAck, ShutdownWrite),
            (LastAck, Closed, RcvAckOfFin),
        ],
        Closing => &[
            (Closing, TimeWait, RcvAckOfFin),
            (TimeWait, Closed, Timer2Msl),
        ],
        LastAck => &[(LastAck, Closed, RcvAckOfFin)],
        TimeWait => &[(TimeWait, Closed, Timer2Msl)],
        s => panic!("not a synchronized state: {s:?}"),
    };
    assert_eq!(f.state_changes(), path, "{ctx}");
    assert_eq!(f.conn.error(), None, "{ctx}");
    assert_eq!(f.read_all(), stream, "{ctx}: the byte stream");
    let mut buf = [0u8; 8];
    assert_eq!(f.conn.recv(&mut buf), Ok(0), "{ctx}: end of stream");
}

/// Injects `attack` into a fresh connection in `state` and checks the outcome and
/// that the connection carries on.
fn run(attack: Attack, state: State, cfg: &Config) {
    let (mut f, c) = reach(state, cfg.clone());
    let ctx = format!(
        "{attack:?} in {state:?} (timestamps {}, rfc1337 {})",
        cfg.timestamps, cfg.rfc1337
    );
    // The attack comes a little later than the last legitimate segment (so a SYN's
    // timestamp is newer than TS.Recent, and a PAWS victim is 5 s older).
    f.advance(ms(10));
    let before = attack_counters(&f.cx);
    let resets_before = f.cx.estab_resets;
    let disp = f.inject(&attack.segment(&f, &c));
    let want = expected(attack, state, cfg);
    match want {
        Outcome::Reset(err) => {
            assert_eq!(disp, Disposition::Consumed, "{ctx}");
            let mut events = Vec::new();
            events.extend(err.map(Event::Error));
            events.push(Event::StateChange {
                from: state,
                to: State::Closed,
                why: Reason::RcvRst,
            });
            events.push(Event::Closed);
            assert_eq!(f.events(), events, "{ctx}");
            f.expect_nothing();
            assert_eq!(f.conn.poll_timeout(), None, "{ctx}: no timer survives");
            assert_eq!(f.conn.error(), err, "{ctx}");
            let estab = matches!(state, State::Established | State::CloseWait);
            assert_eq!(f.cx.estab_resets - resets_before, u64::from(estab), "{ctx}");
            if let Some(e) = err {
                // Unread data is still there to read; after it the error.
                let mut buf = [0u8; 64];
                assert_eq!(f.conn.recv(&mut buf), Ok(EARLY.len()), "{ctx}");
                assert_eq!(&buf[..EARLY.len()], EARLY, "{ctx}");
                // Then the error; but once the peer's FIN is in (CLOSE_WAIT, CLOSING,
                // LAST_ACK), end of stream comes first, as on Linux (SOCK_DONE before
                // sk_err).
                let fin_in = matches!(state, State::CloseWait | State::Closing | State::LastAck);
                let end = if fin_in {
                    Ok(0)
                } else {
                    Err(RecvError::Failed(e))
                };
                assert_eq!(f.conn.recv(&mut buf), end, "{ctx}");
            }
            let later = f.seg(Flags::ACK, c.rcv_nxt, c.snd_nxt, LATER);
            assert_eq!(f.inject(&later), Disposition::NoConnection, "{ctx}");
            return;
        }
        Outcome::Recycle => {
            assert_eq!(disp, Disposition::Recycle, "{ctx}");
            f.expect_nothing();
            assert_eq!(f.conn.state(), State::TimeWait, "{ctx}");
            f.conn.recycle_time_wait();
            assert_eq!(
                f.state_changes(),
                [(State::TimeWait, State::Closed, Reason::TimeWaitRecycled)],
                "{ctx}"
            );
            return;
        }
        Outcome::Challenge | Outcome::Ack => {
            assert_eq!(disp, Disposition::Consumed, "{ctx}");
            let a = expect_ack(&mut f, &c, &ctx);
            if attack == Attack::Paws {
                // RFC 7323 5.3 R1: the ACK echoes TS.Recent, not the stale TSval.
                let recent = c.ts_recent;
                assert_eq!(a.options.timestamps.map(|t| t.1), Some(recent), "{ctx}");
            }
        }
        Outcome::Silent => {
            assert_eq!(disp, Disposition::Consumed, "{ctx}");
            f.expect_nothing();
        }
    }
    let tw = state == State::TimeWait;
    let challenge = u64::from(want == Outcome::Challenge);
    let delta = [
        challenge,
        u64::from(attack.is_syn() && !tw),
        0,
        0,
        0,
        0,
        // TIME_WAIT does not count its PAWS rejections (Linux does; left to the
        // TIME_WAIT rework, which owns that code).
        u64::from(attack == Attack::Paws && !tw),
        u64::from(tw && attack.is_rst() && cfg.rfc1337),
    ];
    let after = attack_counters(&f.cx);
    let moved: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    assert_eq!(moved, delta, "{ctx}: counters");
    assert_eq!(f.conn.state(), state, "{ctx}");
    assert!(f.events().is_empty(), "{ctx}");
    assert_eq!(
        f.conn.sequence(),
        (ISS, c.snd_una, c.snd_nxt, IRS, c.rcv_nxt),
        "{ctx}: sequence variables"
    );
    assert_eq!(f.conn.recv_queue(), EARLY.len(), "{ctx}: nothing injected");
    finish(&mut f, &c, &ctx);
}

#[test]
fn the_fixture_history_and_the_legitimate_close_work_in_every_state() {
    // The baseline the attacks are measured against: no attack, same traffic.
    for cfg in [plain_config(), Config::default()] {
        for state in STATES {
            let (mut f, c) = reach(state, cfg.clone());
            finish(&mut f, &c, &format!("{state:?}"));
            assert_eq!(attack_counters(&f.cx), [0; 8]);
        }
    }
}

#[test]
fn blind_attacks_in_every_synchronized_state() {
    let cfg = plain_config();
    assert!(cfg.rfc1337, "seqack's default");
    for state in STATES {
        for attack in ATTACKS.into_iter().filter(|&a| a != Attack::Paws) {
            run(attack, state, &cfg);
        }
    }
}

#[test]
fn blind_attacks_in_every_synchronized_state_with_timestamps() {
    let cfg = Config::default();
    for state in STATES {
        for attack in ATTACKS {
            run(attack, state, &cfg);
        }
    }
}

#[test]
fn blind_attacks_with_rfc1337_off() {
    // Linux's default (tcp_rfc1337 = 0): an RST at RCV.NXT ends TIME_WAIT; the other
    // states do not depend on the setting.
    for base in [plain_config(), Config::default()] {
        let cfg = Config {
            rfc1337: false,
            ..base
        };
        for state in STATES {
            for attack in ATTACKS {
                if attack != Attack::Paws || cfg.timestamps {
                    run(attack, state, &cfg);
                }
            }
        }
    }
}

// ----- SYN_RECEIVED: Linux's tcp_check_req for a passive open, RFC 9293 for an active

/// Asserts a SYN-ACK retransmission <SEQ=ISS><ACK=IRS+1><CTL=SYN,ACK>.
#[track_caller]
fn expect_syn_ack(f: &mut Fixture) {
    let s = f.expect_one();
    assert_eq!(
        (s.flags, s.seq, s.ack, s.payload.len()),
        (Flags::SYN | Flags::ACK, ISS, irs(1), 0)
    );
}

/// The handshake's final ACK still completes a half-open connection.
#[track_caller]
fn complete_handshake(f: &mut Fixture) {
    f.inject(&f.seg(Flags::ACK | Flags::PSH, irs(1), iss(1), b"hello"));
    let a = f.expect_one();
    assert_eq!((a.flags, a.seq, a.ack), (Flags::ACK, iss(1), irs(6)));
    assert_eq!(f.conn.state(), State::Established);
    assert_eq!(f.read_all(), b"hello");
}

#[test]
fn passive_syn_received_resends_its_syn_ack_for_the_peers_syn_rate_limited() {
    let mut f = conn_syn_received();
    assert_eq!(f.timer(Timer::Retransmit), Instant::ZERO + secs(1));
    f.advance(ms(300));
    f.inject(&seg(Flags::SYN, IRS, Seq(0), b""));
    expect_syn_ack(&mut f);
    assert_eq!(f.cx.retrans_segs, 1);
    // Linux restarts the SYN-ACK timer after this retransmission.
    assert_eq!(f.timer(Timer::Retransmit), Instant::ZERO + ms(1300));
    // More copies of the SYN within the interval: one SYN-ACK per interval.
    for _ in 0..4 {
        f.advance(ms(100));
        f.inject(&seg(Flags::SYN, IRS, Seq(0), b""));
        f.expect_nothing();
    }
    assert_eq!(f.cx.ack_skipped_syn_recv, 4);
    f.advance(ms(100));
    f.inject(&seg(Flags::SYN, IRS, Seq(0), b""));
    expect_syn_ack(&mut f);
    assert_eq!(f.cx.retrans_segs, 2);
    assert!(f.events().is_empty());
    complete_handshake(&mut f);
}

#[test]
fn passive_syn_received_resets_and_drops_for_a_new_syn_in_the_window() {
    // Linux's tcp_check_req: a SYN in the window that is not the peer's ISN ends the
    // half-open connection with an RST (RFC 9293 3.10.7.4 fourth: back to LISTEN).
    for (flags, ack, rst) in [
        // No ACK: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK> (RFC 9293 3.10.7.1).
        (
            Flags::SYN,
            Seq(0),
            (Flags::RST | Flags::ACK, Seq(0), irs(101)),
        ),
        // With the right ACK: <SEQ=SEG.ACK><CTL=RST>.
        (
            Flags::SYN | Flags::ACK,
            iss(1),
            (Flags::RST, iss(1), Seq(0)),
        ),
    ] {
        let mut f = conn_syn_received();
        f.advance(ms(50));
        f.inject(&seg(flags, irs(100), ack, b""));
        let r = f.expect_one();
        assert_eq!((r.flags, r.seq, r.ack), rst, "{flags}");
        assert_eq!(
            f.events(),
            [
                Event::StateChange {
                    from: State::SynReceived,
                    to: State::Listen,
                    why: Reason::RcvSyn
                },
                Event::Closed
            ]
        );
        assert!(rfc9293_allows(
            State::SynReceived,
            State::Listen,
            Reason::RcvSyn
        ));
        assert_eq!(f.conn.error(), None, "the application never saw it");
        assert_eq!(f.conn.poll_timeout(), None, "no more SYN-ACKs");
        assert_eq!((f.cx.attempt_fails, f.cx.embryonic_rsts), (1, 1));
        assert_eq!(f.cx.challenge_acks, 0);
        let ack = f.seg(Flags::ACK, irs(1), iss(1), b"");
        assert_eq!(f.inject(&ack), Disposition::NoConnection);
    }
}

#[test]
fn passive_syn_received_answers_a_syn_outside_the_window_with_a_rate_limited_ack() {
    for seq in [irs(1) + FAR, IRS - 1000u32] {
        let mut f = conn_syn_received();
        f.advance(ms(50));
        f.inject(&seg(Flags::SYN, seq, Seq(0), b""));
        let a = f.expect_one();
        assert_eq!(
            (a.flags, a.seq, a.ack),
            (Flags::ACK, iss(1), irs(1)),
            "{seq}"
        );
        f.advance(ms(100));
        f.inject(&seg(Flags::SYN, seq, Seq(0), b""));
        f.expect_nothing();
        assert_eq!(f.cx.ack_skipped_syn_recv, 1);
        assert_eq!((f.cx.attempt_fails, f.cx.challenge_acks), (0, 0));
        assert_eq!(f.conn.state(), State::SynReceived);
        assert!(f.events().is_empty());
        complete_handshake(&mut f);
    }
}

#[test]
fn passive_syn_received_answers_a_syn_ack_of_something_else_with_rst() {
    // An unacceptable ACK in SYN_RECEIVED: <SEQ=SEG.ACK><CTL=RST>, and the half-open
    // connection stays (Linux answers from the listener and keeps the request).
    let mut f = conn_syn_received();
    f.inject(&seg(Flags::SYN | Flags::ACK, irs(100), iss(77), b""));
    let r = f.expect_one();
    assert_eq!((r.flags, r.seq, r.ack), (Flags::RST, iss(77), Seq(0)));
    assert_eq!(f.conn.state(), State::SynReceived);
    assert!(f.events().is_empty());
    assert_eq!(f.cx.attempt_fails, 0);
    complete_handshake(&mut f);
}

#[test]
fn passive_syn_received_a_stale_copy_of_the_syn_fails_paws_and_gets_an_ack() {
    let mut f = conn_syn_received_with(Config::default());
    f.advance(ms(50));
    let mut syn = seg(Flags::SYN, IRS, Seq(0), b"");
    syn.options = peer_syn_options(&Config::default(), PEER_TS_BASE - 1, 0);
    f.inject(&syn);
    let a = f.expect_one();
    assert_eq!((a.flags, a.seq, a.ack), (Flags::ACK, iss(1), irs(1)));
    assert_eq!(f.cx.paws_estab_rejected, 1);
    assert_eq!(f.cx.retrans_segs, 0, "not taken for a retransmission");
    assert_eq!(f.conn.state(), State::SynReceived);
}

#[test]
fn passive_syn_received_syn_with_the_peers_isn_and_data_is_truncated_not_reset() {
    // Linux truncates a SYN at the peer's ISN ("it is out of window starting at
    // rcv_isn + 1") and processes the rest: with the ACK of our SYN and data, that
    // completes the handshake.
    let mut f = conn_syn_received();
    f.advance(RTT);
    f.inject(&seg(Flags::SYN | Flags::ACK, IRS, iss(1), b"hi"));
    assert_eq!(f.conn.state(), State::Established);
    assert_eq!(f.read_all(), b"hi");
    assert_eq!(f.cx.attempt_fails, 0);
}

/// A simultaneous open: our SYN crossed the peer's, which we answered with SYN-ACK.
fn simultaneous_syn_received() -> Fixture {
    let mut f = conn_syn_sent();
    f.advance(ms(10));
    f.inject(&seg(Flags::SYN, IRS, Seq(0), b""));
    expect_syn_ack(&mut f);
    assert_eq!(f.conn.state(), State::SynReceived);
    f.events();
    f
}

#[test]
fn active_syn_received_keeps_rfc_9293_rules_for_a_syn() {
    // A SYN not at the peer's ISN, in or outside the window: RFC 9293 3.10.7.4 fourth
    // sends an actively opened SYN_RECEIVED to the synchronized states' rule, RFC 5961
    // 4.2: a challenge ACK, and nothing else changes.
    for seq in [irs(100), irs(1) + FAR, IRS - 1000u32] {
        let mut f = simultaneous_syn_received();
        f.inject(&seg(Flags::SYN, seq, Seq(0), b""));
        let a = f.expect_one();
        assert_eq!(
            (a.flags, a.seq, a.ack),
            (Flags::ACK, iss(1), irs(1)),
            "{seq}"
        );
        assert_eq!((f.cx.syn_challenge, f.cx.challenge_acks), (1, 1));
        f.inject(&seg(Flags::SYN, seq, Seq(0), b""));
        f.expect_nothing();
        assert_eq!(f.cx.ack_skipped_challenge, 1);
        assert_eq!(f.conn.state(), State::SynReceived);
        assert!(f.events().is_empty());
        assert_eq!(f.cx.attempt_fails, 0);
        // The peer's SYN-ACK still completes the handshake.
        f.inject(&seg(Flags::SYN | Flags::ACK, IRS, iss(1), b""));
        assert_eq!(f.conn.state(), State::Established);
    }
}

#[test]
fn active_syn_received_resends_its_syn_ack_for_the_peers_syn() {
    let mut f = simultaneous_syn_received();
    f.advance(ms(200));
    f.inject(&seg(Flags::SYN, IRS, Seq(0), b""));
    expect_syn_ack(&mut f);
    assert_eq!(f.cx.challenge_acks, 0);
    assert_eq!(f.conn.state(), State::SynReceived);
}

// ----- challenge ACK rate limiting (RFC 5961 section 7) -------------------------------

/// Attacks answered with a challenge ACK in every synchronized state but TIME_WAIT.
const CHALLENGED: [Attack; 6] = [
    Attack::RstInWindow,
    Attack::SynInWindow,
    Attack::SynBelow,
    Attack::SynAbove,
    Attack::AckUnsent,
    Attack::AckTooOld,
];

#[test]
fn challenge_acks_are_limited_to_one_per_interval_in_every_state() {
    for state in STATES.into_iter().filter(|&s| s != State::TimeWait) {
        let (mut f, c) = reach(state, plain_config());
        f.advance(ms(10));
        let t0 = f.now;
        // 60 challengeable segments within one interval, 8 ms apart (t0 .. t0+472 ms).
        let mut replies = Vec::new();
        for i in 0..60u32 {
            f.now = t0 + ms(8 * u64::from(i));
            let a = CHALLENGED[i as usize % CHALLENGED.len()];
            f.inject(&a.segment(&f, &c));
            replies.extend(f.transmit().into_iter().map(|s| (f.now, s)));
        }
        assert_eq!(replies.len(), 1, "{state:?}: {replies:#?}");
        let (at, a) = &replies[0];
        assert_eq!(*at, t0, "{state:?}: the first one is answered");
        assert_eq!((a.flags, a.seq, a.ack), (Flags::ACK, c.snd_nxt, c.rcv_nxt));
        assert_eq!(
            (
                f.cx.challenge_acks,
                f.cx.ack_skipped_challenge,
                f.cx.syn_challenge
            ),
            (1, 59, 30),
            "{state:?}"
        );
        // One interval after the first, another may go.
        f.now = t0 + ms(499);
        f.inject(&Attack::RstInWindow.segment(&f, &c));
        f.expect_nothing();
        f.now = t0 + ms(500);
        f.inject(&Attack::SynAbove.segment(&f, &c));
        expect_ack(&mut f, &c, &format!("{state:?} after the interval"));
        assert_eq!((f.cx.challenge_acks, f.cx.ack_skipped_challenge), (2, 60));
        // None of it touched the connection.
        assert_eq!(f.conn.state(), state);
        assert!(f.events().is_empty());
        assert_eq!(
            f.conn.sequence(),
            (ISS, c.snd_una, c.snd_nxt, IRS, c.rcv_nxt)
        );
        finish(&mut f, &c, &format!("{state:?} after the flood"));
    }
}

#[test]
fn challenge_ack_interval_comes_from_the_config() {
    for (interval, want) in [
        (secs(2), vec![0, 2000, 4000, 6000, 8000]),
        (ms(500), (0..20).map(|i| i * 500).collect()),
        (Duration::ZERO, (0..100).map(|i| i * 100).collect()),
    ] {
        let cfg = Config {
            challenge_ack_interval: interval,
            ..plain_config()
        };
        let (mut f, c) = reach(State::Established, cfg);
        let t0 = f.now;
        let mut at = Vec::new();
        // An attack every 100 ms for 10 s.
        for i in 0..100u64 {
            f.now = t0 + ms(100 * i);
            let a = CHALLENGED[i as usize % CHALLENGED.len()];
            f.inject(&a.segment(&f, &c));
            for s in f.transmit() {
                assert_eq!((s.flags, s.seq, s.ack), (Flags::ACK, c.snd_nxt, c.rcv_nxt));
                at.push((f.now - t0).as_millis() as u64);
            }
        }
        assert_eq!(at, want, "interval {interval:?}");
        assert_eq!(f.cx.challenge_acks, want.len() as u64);
        assert_eq!(f.cx.ack_skipped_challenge, 100 - want.len() as u64);
        // The bound the pair-level test relies on: elapsed / interval + 1.
        if interval > Duration::ZERO {
            let bound = (ms(9900).as_micros() / interval.as_micros()) as u64 + 1;
            assert!(f.cx.challenge_acks <= bound);
        }
        finish(&mut f, &c, "after the attacks");
    }
}

#[test]
fn time_wait_acks_for_pure_acks_and_syns_are_rate_limited_but_data_is_answered() {
    let (mut f, c) = reach(State::TimeWait, plain_config());
    let t0 = f.now;
    let deadline = f.timer(Timer::TimeWait);
    // An old bare ACK: answered once per interval.
    f.inject(&f.seg(Flags::ACK, c.rcv_nxt - 1000u32, c.snd_nxt, b""));
    expect_ack(&mut f, &c, "first ACK");
    f.now = t0 + ms(100);
    f.inject(&f.seg(Flags::ACK, c.rcv_nxt - 1000u32, c.snd_nxt, b""));
    f.expect_nothing();
    // An old SYN (not above RCV.NXT, so no new incarnation) shares the limit.
    f.now = t0 + ms(200);
    f.inject(&f.seg(Flags::SYN, c.rcv_nxt - 1000u32, Seq(0), b""));
    f.expect_nothing();
    assert_eq!(f.cx.ack_skipped_time_wait, 2);
    // Data is always answered.
    f.now = t0 + ms(300);
    f.inject(&f.seg(Flags::ACK, c.rcv_nxt + FAR, c.snd_nxt, EVIL));
    expect_ack(&mut f, &c, "data");
    f.now = t0 + ms(500);
    f.inject(&f.seg(Flags::ACK, c.rcv_nxt - 1000u32, c.snd_nxt, b""));
    expect_ack(&mut f, &c, "after the interval");
    assert_eq!(f.cx.ack_skipped_time_wait, 2);
    assert_eq!(f.cx.challenge_acks, 0, "TIME_WAIT sends no challenge ACKs");
    assert_eq!(f.timer(Timer::TimeWait), deadline, "2MSL is not restarted");
    assert_eq!(f.conn.state(), State::TimeWait);
    finish(&mut f, &c, "TIME_WAIT after the attacks");
}

// ----- the edges of the window and of the acceptable ACKs -----------------------------

#[test]
fn window_edges_decide_between_acceptance_and_an_ack() {
    let (mut f, c) = reach(State::Established, plain_config());
    let r = c.rcv_nxt;
    // Learn the window we advertise from a duplicate ACK (no scaling in this config).
    f.inject(&f.seg(Flags::ACK | Flags::PSH, r + FAR, c.snd_nxt, EVIL));
    let w = u32::from(expect_ack(&mut f, &c, "probe").window);
    assert!(w > 1000, "window {w}");
    f.advance(secs(1));
    // RST: the last sequence number in the window draws a challenge, the next is silent.
    f.inject(&f.seg(Flags::RST, r + (w - 1), Seq(0), b""));
    expect_ack(&mut f, &c, "RST at RCV.NXT+RCV.WND-1");
    assert_eq!(f.cx.challenge_acks, 1);
    f.advance(secs(1));
    f.inject(&f.seg(Flags::RST, r + w, Seq(0), b""));
    f.expect_nothing();
    assert_eq!(f.cx.challenge_acks, 1);
    // Data: one byte at the right edge is dropped with an ACK...
    f.inject(&f.seg(Flags::ACK, r + w, c.snd_nxt, b"x"));
    expect_ack(&mut f, &c, "data at RCV.NXT+RCV.WND");
    // ...one byte just inside is kept out of order (and ACKed at once).
    f.inject(&f.seg(Flags::ACK, r + (w - 1), c.snd_nxt, b"y"));
    expect_ack(&mut f, &c, "data at RCV.NXT+RCV.WND-1");
    assert_eq!(f.cx.ofo_queue, 1);
    assert_eq!(f.conn.recv_queue(), EARLY.len());
    // A segment that ends exactly at RCV.NXT is an old duplicate; one byte over is not.
    f.inject(&f.seg(Flags::ACK, r - 3u32, c.snd_nxt, b"rly"));
    expect_ack(&mut f, &c, "old duplicate");
    f.inject(&f.seg(Flags::ACK, r - 3u32, c.snd_nxt, b"rly!"));
    let a = f.expect_one();
    assert_eq!((a.flags, a.ack), (Flags::ACK, r + 1u32));
    assert_eq!(f.read_all(), b"early!");
}

#[test]
fn acceptable_acks_span_snd_una_minus_max_snd_wnd_to_snd_nxt() {
    // RFC 5961 5.2: (SND.UNA - MAX.SND.WND) <= SEG.ACK <= SND.NXT. The peer advertised
    // PEER_WINDOW (unscaled in this config) and nothing larger.
    let max_wnd = u32::from(PEER_WINDOW);
    for (ack, taken) in [
        (iss(4), true),
        (iss(4) + 1u32, false),
        (iss(4) - max_wnd, true),
        (iss(4) - (max_wnd + 1), false),
    ] {
        let (mut f, c) = reach(State::Established, plain_config());
        f.inject(&f.seg(Flags::ACK | Flags::PSH, c.rcv_nxt, ack, b"data"));
        let a = f.expect_one();
        let want_ack = if taken { c.rcv_nxt + 4u32 } else { c.rcv_nxt };
        assert_eq!(
            (a.flags, a.seq, a.ack),
            (Flags::ACK, iss(4), want_ack),
            "{ack}"
        );
        assert_eq!(f.cx.challenge_acks, u64::from(!taken), "{ack}");
        let want: &[u8] = if taken { b"earlydata" } else { EARLY };
        assert_eq!(f.read_all(), want, "{ack}");
        assert_eq!(f.conn.sequence().1, iss(4), "SND.UNA never moves back");
    }
}

#[test]
fn time_wait_syn_above_rcv_nxt_with_a_stale_timestamp_does_not_reopen() {
    // RFC 6191 with timestamps: the TSval decides; PAWS rejects the old one first, so
    // a blind SYN with a guessed-low TSval cannot end TIME_WAIT (Linux: paws_reject).
    let (mut f, c) = reach(State::TimeWait, Config::default());
    f.advance(ms(10));
    let mut syn = f.seg(Flags::SYN, c.rcv_nxt + FAR, Seq(0), b"");
    syn.options.timestamps = Some((f.peer_tsval() - 5000, 0));
    assert_eq!(f.inject(&syn), Disposition::Consumed);
    expect_ack(&mut f, &c, "stale SYN");
    assert_eq!(f.conn.state(), State::TimeWait);
    // With a newer TSval it is a new incarnation, whatever its sequence number.
    let syn = f.seg(Flags::SYN, c.rcv_nxt - 1000u32, Seq(0), b"");
    assert_eq!(f.inject(&syn), Disposition::Recycle);
    f.expect_nothing();
}

// ----- timestamps a blind segment must not plant ---------------------------------------

#[test]
fn a_forged_ack_cannot_plant_a_timestamp_that_locks_out_the_peer() {
    // An in-window segment whose ACK fails RFC 5961 5.2 is dropped; its TSval must not
    // become TS.Recent, or PAWS would reject every later segment of the real peer
    // (Linux records TS.Recent only once tcp_ack has accepted the ACK). The attacker
    // needs the exact RCV.NXT here, as for an RST, and picks a TSval far ahead.
    for attack in [Attack::AckUnsent, Attack::AckTooOld] {
        let (mut f, c) = reach(State::Established, Config::default());
        f.advance(ms(10));
        let mut forged = attack.segment(&f, &c);
        let ts = forged.options.timestamps.as_mut().unwrap();
        ts.0 = ts.0.wrapping_add(1 << 30);
        f.inject(&forged);
        let a = expect_ack(&mut f, &c, "challenge");
        assert_eq!(
            a.options.timestamps.map(|t| t.1),
            Some(f.peer_tsval() - 10),
            "{attack:?}: the challenge ACK echoes the peer's real TSval"
        );
        // The real peer goes on with its own clock.
        finish(&mut f, &c, &format!("{attack:?} with a planted TSval"));
        assert_eq!(f.cx.paws_estab_rejected, 0, "{attack:?}");
    }
}

#[test]
fn an_old_duplicate_with_a_forged_ack_does_not_refresh_ts_recent() {
    // The one unacceptable segment that refreshes TS.Recent is a retransmission ending
    // exactly at our last ACK (Linux accepts it against rcv_wup); with an ACK outside
    // RFC 5961's range it is a forgery and must not.
    let (mut f, c) = reach(State::Established, Config::default());
    f.advance(ms(10));
    let mut forged = f.seg(Flags::ACK, c.rcv_nxt - 5u32, c.snd_nxt + 1000u32, EARLY);
    let ts = forged.options.timestamps.as_mut().unwrap();
    ts.0 = ts.0.wrapping_add(1 << 30);
    f.inject(&forged);
    let a = expect_ack(&mut f, &c, "duplicate");
    assert_eq!(a.options.timestamps.map(|t| t.1), Some(f.peer_tsval() - 10));
    finish(&mut f, &c, "after the forged duplicate");
    assert_eq!(f.cx.paws_estab_rejected, 0);
}
