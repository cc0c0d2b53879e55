//! RST processing in every state (RFC 9293 3.10.7.4 second check, RFC 5961 section 3),
//! SYN in synchronized states (RFC 5961 4), ACK validation (RFC 5961 5, RFC 9293
//! fifth check), challenge ACK rate limiting, RFC 1337 in TIME_WAIT, and PAWS (RFC 7323).

mod common;

use common::*;
use seqack::tcp::{Config, Error, Event, Reason, RecvError, SendError, State, Timer};
use seqack::wire::tcp::Flags;
use seqack::wire::Seq;

/// A state, its fixture, and the connection's (SND.NXT, RCV.NXT) in it.
type StateCase = (State, fn() -> Fixture, Seq, Seq);

/// The synchronized states other than TIME_WAIT.
fn synchronized_states() -> Vec<StateCase> {
    vec![
        (
            State::Established,
            conn_established as fn() -> Fixture,
            iss(1),
            irs(1),
        ),
        (State::FinWait1, conn_fin_wait_1, iss(2), irs(1)),
        (State::FinWait2, conn_fin_wait_2, iss(2), irs(1)),
        (State::CloseWait, conn_close_wait, iss(1), irs(2)),
        (State::Closing, conn_closing, iss(2), irs(2)),
        (State::LastAck, conn_last_ack, iss(2), irs(2)),
    ]
}

#[track_caller]
fn assert_reset(f: &mut Fixture, from: State, err: Option<Error>) {
    let mut want = Vec::new();
    if let Some(e) = err {
        want.push(Event::Error(e));
    }
    want.push(Event::StateChange {
        from,
        to: State::Closed,
        why: Reason::RcvRst,
    });
    want.push(Event::Closed);
    assert_eq!(f.events(), want);
    assert!(f.conn.is_closed());
    assert_eq!(f.conn.error(), err);
    f.expect_nothing();
    assert_eq!(f.conn.poll_timeout(), None);
}

#[test]
fn rst_at_rcv_nxt_in_established_resets_the_connection() {
    let mut f = conn_established();
    f.inject(&seg(Flags::RST, irs(1), Seq(0), b""));
    assert_reset(&mut f, State::Established, Some(Error::Reset));
    assert_eq!(f.cx.estab_resets, 1);
    let mut buf = [0u8; 4];
    assert_eq!(f.conn.recv(&mut buf), Err(RecvError::Failed(Error::Reset)));
    assert_eq!(f.conn.send(b"x"), Err(SendError::Failed(Error::Reset)));
}

#[test]
fn rst_ack_at_rcv_nxt_in_established_resets_the_connection() {
    let mut f = conn_established();
    f.inject(&seg(Flags::RST | Flags::ACK, irs(1), iss(1), b""));
    assert_reset(&mut f, State::Established, Some(Error::Reset));
}

#[test]
fn rst_at_rcv_nxt_in_fin_wait_1_resets_the_connection() {
    let mut f = conn_fin_wait_1();
    f.inject(&seg(Flags::RST, irs(1), Seq(0), b""));
    assert_reset(&mut f, State::FinWait1, Some(Error::Reset));
}

#[test]
fn rst_at_rcv_nxt_in_fin_wait_2_resets_the_connection() {
    let mut f = conn_fin_wait_2();
    f.inject(&seg(Flags::RST, irs(1), Seq(0), b""));
    assert_reset(&mut f, State::FinWait2, Some(Error::Reset));
}

#[test]
fn rst_at_rcv_nxt_in_close_wait_resets_the_connection() {
    let mut f = conn_close_wait();
    // The peer's FIN took IRS+1: RCV.NXT is IRS+2.
    f.inject(&seg(Flags::RST, irs(2), Seq(0), b""));
    assert_reset(&mut f, State::CloseWait, Some(Error::Reset));
    assert_eq!(f.cx.estab_resets, 1);
}

#[test]
fn rst_at_rcv_nxt_in_closing_closes_and_reports_a_reset() {
    let mut f = conn_closing();
    f.inject(&seg(Flags::RST, irs(2), Seq(0), b""));
    // RFC 9293 (CLOSING, LAST-ACK): "enter the CLOSED state, delete the TCB, and
    // return", telling the user nothing; Linux's tcp_reset and FreeBSD report
    // ECONNRESET to an application still holding the socket.
    assert_reset(&mut f, State::Closing, Some(Error::Reset));
}

#[test]
fn rst_at_rcv_nxt_in_last_ack_closes_and_reports_a_reset() {
    // RFC 9293 tells the user nothing here; Linux's tcp_reset and FreeBSD report
    // ECONNRESET to an application still holding the socket.
    let mut f = conn_last_ack();
    f.inject(&seg(Flags::RST, irs(2), Seq(0), b""));
    assert_reset(&mut f, State::LastAck, Some(Error::Reset));
}

#[test]
fn rst_at_rcv_nxt_in_passive_syn_received_returns_to_listen() {
    let mut f = conn_syn_received();
    f.inject(&seg(Flags::RST, irs(1), Seq(0), b""));
    // RFC 9293: a passively opened connection returns to LISTEN; the user is not told.
    assert_eq!(
        f.events(),
        vec![
            Event::StateChange {
                from: State::SynReceived,
                to: State::Listen,
                why: Reason::RcvRst
            },
            Event::Closed
        ]
    );
    assert_eq!(f.conn.error(), None);
    f.expect_nothing();
    assert_eq!(
        f.conn.poll_timeout(),
        None,
        "no more SYN-ACK retransmissions"
    );
    assert_eq!(f.cx.attempt_fails, 1);
}

#[test]
fn rst_at_rcv_nxt_in_actively_opened_syn_received_refuses_the_connection() {
    // Simultaneous open: SYN_SENT, then the peer's bare SYN.
    let mut f = conn_syn_sent();
    f.inject(&seg(Flags::SYN, IRS, Seq(0), b""));
    f.transmit();
    f.events();
    f.inject(&seg(Flags::RST, irs(1), Seq(0), b""));
    // RFC 9293: "If this connection was initiated with an active OPEN ... the connection
    // was refused".
    assert_reset(&mut f, State::SynReceived, Some(Error::Refused));
}

#[test]
fn in_window_rst_not_at_rcv_nxt_gets_a_challenge_ack_in_every_synchronized_state() {
    for (state, fixture, snd_nxt, rcv_nxt) in synchronized_states() {
        let mut f = fixture();
        f.inject(&seg(Flags::RST, rcv_nxt + 100u32, Seq(0), b""));
        // RFC 5961 3.2: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, and nothing else changes.
        let ack = f.expect_one();
        assert_eq!(
            (ack.flags, ack.seq, ack.ack),
            (Flags::ACK, snd_nxt, rcv_nxt),
            "in {state:?}"
        );
        assert_eq!(f.conn.state(), state);
        assert!(f.events().is_empty(), "in {state:?}");
        assert_eq!(f.cx.challenge_acks, 1, "in {state:?}");
    }
}

#[test]
fn in_window_rst_not_at_rcv_nxt_gets_a_challenge_ack_in_syn_received() {
    let mut f = conn_syn_received();
    f.inject(&seg(Flags::RST, irs(50), Seq(0), b""));
    let ack = f.expect_one();
    assert_eq!((ack.flags, ack.seq, ack.ack), (Flags::ACK, iss(1), irs(1)));
    assert_eq!(f.conn.state(), State::SynReceived);
}

#[test]
fn rst_outside_the_window_is_dropped_silently_in_every_synchronized_state() {
    for (state, fixture, _, rcv_nxt) in synchronized_states() {
        for seq in [rcv_nxt - 1u32, rcv_nxt + 1_000_000u32] {
            let mut f = fixture();
            f.inject(&seg(Flags::RST, seq, Seq(0), b""));
            f.expect_nothing();
            assert_eq!(f.conn.state(), state);
            assert!(f.events().is_empty());
            assert_eq!(f.cx.challenge_acks, 0);
        }
    }
}

#[test]
fn rst_in_time_wait_is_ignored_by_default_rfc1337() {
    let mut f = conn_time_wait();
    assert!(f.conn.config().rfc1337, "seqack's default");
    f.inject(&seg(Flags::RST, irs(2), Seq(0), b""));
    f.expect_nothing();
    assert_eq!(f.conn.state(), State::TimeWait);
    assert!(f.events().is_empty());
    assert_eq!(f.cx.tw_rst_ignored, 1);
    assert!(f.conn.timer(Timer::TimeWait).is_some());
}

#[test]
fn rst_at_rcv_nxt_in_time_wait_closes_when_rfc1337_is_off() {
    let mut f = conn_time_wait_with(Config {
        rfc1337: false,
        ..plain_config()
    });
    f.inject(&seg(Flags::RST, irs(2), Seq(0), b""));
    assert_reset(&mut f, State::TimeWait, None);
}

#[test]
fn rst_not_at_rcv_nxt_in_time_wait_is_ignored_even_when_rfc1337_is_off() {
    let mut f = conn_time_wait_with(Config {
        rfc1337: false,
        ..plain_config()
    });
    f.inject(&seg(Flags::RST, irs(1), Seq(0), b""));
    assert_eq!(f.conn.state(), State::TimeWait);
    f.expect_nothing();
}

#[test]
fn syn_in_established_gets_a_challenge_ack() {
    let mut f = conn_established();
    f.inject(&seg(Flags::SYN, irs(1), Seq(0), b""));
    // RFC 5961 4.2: never reset on a SYN in a synchronized state; challenge instead.
    let ack = f.expect_one();
    assert_eq!((ack.flags, ack.seq, ack.ack), (Flags::ACK, iss(1), irs(1)));
    assert_eq!(f.conn.state(), State::Established);
    assert!(f.events().is_empty());
    assert_eq!((f.cx.syn_challenge, f.cx.challenge_acks), (1, 1));
}

#[test]
fn syn_in_every_synchronized_state_gets_an_ack_and_changes_nothing() {
    for (state, fixture, snd_nxt, rcv_nxt) in synchronized_states() {
        // In window and, RFC 5961 4.2 "irrespective of the sequence number", below it.
        for seq in [rcv_nxt, IRS] {
            let mut f = fixture();
            f.inject(&seg(Flags::SYN, seq, Seq(0), b""));
            let ack = f.expect_one();
            assert_eq!(
                (ack.flags, ack.seq, ack.ack),
                (Flags::ACK, snd_nxt, rcv_nxt),
                "{state:?} seq {seq}"
            );
            assert_eq!(f.conn.state(), state);
            assert!(f.events().is_empty());
        }
    }
}

#[test]
fn challenge_acks_are_rate_limited_to_one_per_half_second() {
    let mut f = conn_established();
    f.inject(&seg(Flags::RST, irs(10), Seq(0), b""));
    assert_eq!(f.transmit().len(), 1);
    f.advance(ms(100));
    f.inject(&seg(Flags::RST, irs(20), Seq(0), b""));
    f.inject(&seg(Flags::SYN, irs(1), Seq(0), b""));
    f.expect_nothing();
    assert_eq!(f.cx.ack_skipped_challenge, 2);
    f.advance(ms(400));
    f.inject(&seg(Flags::RST, irs(30), Seq(0), b""));
    assert_eq!(
        f.expect_one().ack,
        irs(1),
        "500 ms after the first, another may go"
    );
    assert_eq!(f.cx.challenge_acks, 2);
}

#[test]
fn challenge_ack_interval_follows_the_config() {
    let mut f = conn_established_with(Config {
        challenge_ack_interval: secs(2),
        ..plain_config()
    });
    f.inject(&seg(Flags::RST, irs(10), Seq(0), b""));
    f.transmit();
    f.advance(secs(1));
    f.inject(&seg(Flags::RST, irs(10), Seq(0), b""));
    f.expect_nothing();
    f.advance(secs(1));
    f.inject(&seg(Flags::RST, irs(10), Seq(0), b""));
    assert_eq!(f.transmit().len(), 1);
}

#[test]
fn ack_of_data_never_sent_is_answered_with_an_ack_and_the_segment_dropped() {
    let mut f = conn_established();
    f.inject(&seg(Flags::ACK | Flags::PSH, irs(1), iss(100), b"abc"));
    // RFC 9293 3.10.7.4 fifth: SEG.ACK > SND.NXT: send an ACK, drop the segment.
    let ack = f.expect_one();
    assert_eq!(
        (ack.flags, ack.seq, ack.ack),
        (Flags::ACK, iss(1), irs(1)),
        "the data was not taken"
    );
    assert_eq!(f.conn.recv_queue(), 0);
    assert_eq!(f.conn.state(), State::Established);
    assert_eq!(f.conn.sequence().1, iss(1), "SND.UNA unchanged");
}

#[test]
fn ack_far_below_snd_una_is_answered_and_the_segment_dropped() {
    let mut f = conn_established();
    // RFC 5961 5.2: acceptable ACKs lie in [SND.UNA - MAX.SND.WND, SND.NXT].
    f.inject(&seg(Flags::ACK, irs(1), ISS - 100_000u32, b"abc"));
    let ack = f.expect_one();
    assert_eq!((ack.flags, ack.ack), (Flags::ACK, irs(1)));
    assert_eq!(f.conn.recv_queue(), 0);
}

#[test]
fn old_but_acceptable_duplicate_ack_does_not_stop_the_data() {
    let mut f = conn_established();
    f.send(b"xyz");
    f.transmit();
    f.inject(&seg(Flags::ACK, irs(1), iss(4), b""));
    // A segment whose ACK field lags (SEG.ACK < SND.UNA) is still processed for text.
    f.inject(&seg(Flags::ACK | Flags::PSH, irs(1), iss(1), b"data"));
    assert_eq!(f.expect_one().ack, irs(5));
    assert_eq!(f.read_all(), b"data");
    assert_eq!(f.conn.sequence().1, iss(4), "SND.UNA never moves back");
}

#[test]
fn segment_without_ack_in_established_is_dropped() {
    let mut f = conn_established();
    f.inject(&seg(Flags::PSH, irs(1), Seq(0), b"noack"));
    // RFC 9293 3.10.7.4 fifth: "if the ACK bit is off, drop the segment and return".
    f.expect_nothing();
    assert_eq!(f.conn.recv_queue(), 0);
}

#[test]
fn paws_drops_a_segment_with_an_old_timestamp_and_acks() {
    let mut f = conn_established_with(Config::default());
    f.advance(ms(10));
    let fresh = f.seg(Flags::ACK, irs(1), iss(1), b"new");
    let recent = fresh.options.timestamps.unwrap().0;
    f.inject(&fresh);
    f.transmit();
    assert_eq!(f.read_all(), b"new");

    // A segment that passes the sequence test but carries an older TSval: an old
    // duplicate from a previous wrap of the sequence space.
    let mut stale = f.seg(Flags::ACK, irs(4), iss(1), b"old");
    stale.options.timestamps = Some((recent - 1, f.last_tsval));
    f.inject(&stale);
    // RFC 7323 5.3 R1: not acceptable: send an ACK (echoing TS.Recent), drop it.
    let ack = f.expect_one();
    assert_eq!((ack.flags, ack.ack), (Flags::ACK, irs(4)));
    assert_eq!(ack.options.timestamps.map(|t| t.1), Some(recent));
    assert_eq!(f.conn.recv_queue(), 0);
    assert_eq!(f.cx.paws_estab_rejected, 1);
}

#[test]
fn paws_does_not_apply_to_rst() {
    let mut f = conn_established_with(Config::default());
    let mut rst = f.seg(Flags::RST, irs(1), Seq(0), b"");
    rst.options.timestamps = Some((PEER_TS_BASE - 1000, 0));
    f.inject(&rst);
    assert_reset(&mut f, State::Established, Some(Error::Reset));
}

#[test]
fn segment_after_reset_finds_no_connection() {
    let mut f = conn_established();
    f.inject(&seg(Flags::RST, irs(1), Seq(0), b""));
    let d = f.inject(&seg(Flags::ACK, irs(1), iss(1), b"x"));
    assert_eq!(d, seqack::tcp::Disposition::NoConnection);
}
