//! Retransmission (RFC 6298, RFC 9293 3.8.1 and 3.8.3), fast retransmit (RFC 5681 3.2)
//! and keepalive (RFC 9293 3.8.4) timers.

mod common;

use common::*;
use seqack::tcp::congestion::Algorithm;
use seqack::tcp::{Config, Error, Event, Reason, State, Timer};
use seqack::wire::tcp::{Flags, Segment};
use seqack::{Duration, Instant, Seq};

/// Fires timers until the connection closes (or `limit` expiries), recording when each
/// segment went out.
fn run_to_close(f: &mut Fixture, limit: usize) -> Vec<(Instant, Sent)> {
    let mut log = Vec::new();
    for _ in 0..limit {
        if f.conn.is_closed() {
            break;
        }
        f.fire_next();
        for s in f.transmit() {
            log.push((f.now, s));
        }
    }
    assert!(
        f.conn.is_closed(),
        "still {:?} after {limit} timer expiries",
        f.conn.state()
    );
    log
}

fn times(log: &[(Instant, Sent)]) -> Vec<u64> {
    log.iter().map(|(t, _)| t.total_millis()).collect()
}

#[test]
fn syn_is_retried_six_times_with_doubling_timeouts_then_connect_times_out_at_127s() {
    let mut f = conn_syn_sent();
    let log = run_to_close(&mut f, 20);
    // RTO 1 s (RFC 6298 2.1), doubled on each expiry (5.5): retransmissions at 1, 3, 7,
    // 15, 31 and 63 s; the seventh expiry, 64 s later, exhausts tcp_syn_retries = 6.
    assert_eq!(
        times(&log),
        vec![1_000, 3_000, 7_000, 15_000, 31_000, 63_000]
    );
    assert!(log
        .iter()
        .all(|(_, s)| s.flags == Flags::SYN && s.seq == ISS));
    assert_eq!(f.now, Instant::from_secs(127));
    assert_eq!(
        f.events(),
        vec![
            Event::Error(Error::TimedOut),
            Event::StateChange {
                from: State::SynSent,
                to: State::Closed,
                why: Reason::TimerRetries
            },
            Event::Closed,
        ]
    );
    assert_eq!(
        (f.cx.retrans_segs, f.cx.timeouts, f.cx.attempt_fails),
        (6, 6, 1)
    );
    assert_eq!(f.conn.poll_timeout(), None);
}

#[test]
fn syn_retries_follow_config_syn_retries() {
    let mut f = conn_syn_sent_with(Config {
        syn_retries: 2,
        ..plain_config()
    });
    let log = run_to_close(&mut f, 10);
    assert_eq!(times(&log), vec![1_000, 3_000]);
    assert_eq!(f.now, Instant::from_secs(7));
    assert_eq!(f.conn.error(), Some(Error::TimedOut));
}

#[test]
fn syn_ack_is_retried_five_times_then_the_half_open_connection_is_dropped() {
    let mut f = conn_syn_received();
    let log = run_to_close(&mut f, 20);
    assert_eq!(times(&log), vec![1_000, 3_000, 7_000, 15_000, 31_000]);
    assert!(log
        .iter()
        .all(|(_, s)| s.flags == Flags::SYN | Flags::ACK && s.seq == ISS && s.ack == irs(1)));
    assert_eq!(f.now, Instant::from_secs(63));
    assert!(f
        .state_changes()
        .contains(&(State::SynReceived, State::Closed, Reason::TimerRetries)));
}

#[test]
fn data_rto_after_a_100ms_handshake_is_300ms() {
    let mut f = conn_established();
    f.send(b"data");
    f.transmit();
    // RFC 6298 2.2: SRTT = 100 ms, RTTVAR = 50 ms; RTO = SRTT + max(G, 4 * RTTVAR) with
    // Linux's 200 ms floor standing in for G: 100 + 200 = 300 ms.
    assert_eq!(f.conn.rto(), ms(300));
    assert_eq!(f.timer(Timer::Retransmit), f.now + ms(300));
}

#[test]
fn data_retransmission_timeout_doubles_on_each_expiry() {
    let mut f = conn_established();
    f.send(b"data");
    f.transmit();
    let t0 = f.now;
    let mut expected = t0;
    for (i, rto) in [300u64, 600, 1200, 2400].into_iter().enumerate() {
        expected += ms(rto);
        assert_eq!(f.fire_next(), expected, "expiry {}", i + 1);
        let s = f.expect_one();
        assert_eq!(
            (s.seq, &s.payload[..]),
            (iss(1), &b"data"[..]),
            "the same bytes again"
        );
        assert_eq!(f.conn.rto(), ms(rto * 2));
    }
    assert_eq!(f.cx.retrans_segs, 4);
}

#[test]
fn data_retransmission_gives_up_after_retries2_with_timed_out() {
    let mut f = conn_established_with(Config {
        retries2: 3,
        ..plain_config()
    });
    f.send(b"data");
    f.transmit();
    let t0 = f.now.total_millis();
    let log = run_to_close(&mut f, 10);
    assert_eq!(times(&log), vec![t0 + 300, t0 + 900, t0 + 2_100]);
    assert_eq!(f.now.total_millis(), t0 + 4_500);
    assert_eq!(
        f.events(),
        vec![
            Event::Error(Error::TimedOut),
            Event::StateChange {
                from: State::Established,
                to: State::Closed,
                why: Reason::TimerRetries
            },
            Event::Closed,
        ]
    );
    assert_eq!(f.cx.abort_on_timeout, 1);
}

#[test]
fn rto_resends_from_snd_una_one_segment_at_a_time() {
    let mut f = conn_established();
    f.send(&[5u8; 4 * 1460]);
    assert_eq!(f.transmit().len(), 4);
    f.fire_next();
    // RFC 5681 3.1: after a timeout cwnd is one segment (the loss window).
    let s = f.expect_one();
    assert_eq!((s.seq, s.payload.len()), (iss(1), 1460));
    assert_eq!(f.conn.cwnd(), f.conn.smss());
}

#[test]
fn ack_of_a_retransmitted_segment_gives_no_rtt_sample_and_keeps_the_backoff() {
    // Karn's algorithm (RFC 6298 3 and 5): no sample from a retransmitted segment, and
    // the backed-off RTO stays until a valid sample collapses it.
    let mut f = conn_established();
    f.send(b"one");
    f.transmit();
    f.fire_next();
    f.transmit(); // retransmission; RTO now 600 ms
    f.advance(ms(250));
    f.inject(&seg(Flags::ACK, irs(1), iss(4), b""));
    assert_eq!(
        f.conn.rtt().srtt(),
        Some(RTT),
        "no sample from the ambiguous ACK"
    );
    assert_eq!(
        f.conn.rto(),
        ms(600),
        "backed-off RTO kept without a new sample"
    );

    f.send(b"two");
    f.transmit();
    assert_eq!(f.timer(Timer::Retransmit), f.now + ms(600));
    // A segment sent once and acknowledged is a valid sample: RTO collapses back.
    f.advance(RTT);
    f.inject(&seg(Flags::ACK, irs(1), iss(7), b""));
    assert_eq!(f.conn.rto(), ms(300));
}

#[test]
fn syn_retransmitted_before_the_syn_ack_gives_no_sample_and_data_rto_falls_back_to_3s() {
    let mut f = conn_syn_sent();
    f.fire_next();
    f.transmit(); // SYN again at 1 s
    f.advance(ms(50));
    f.inject(&seg(Flags::SYN | Flags::ACK, IRS, iss(1), b""));
    f.transmit();
    assert_eq!(f.conn.state(), State::Established);
    assert_eq!(
        f.conn.rtt().srtt(),
        None,
        "Karn: the SYN-ACK may answer either SYN"
    );
    // RFC 6298 5.7: the SYN timed out with RTO < 3 s, so data starts with RTO = 3 s.
    f.send(b"x");
    f.transmit();
    assert_eq!(f.timer(Timer::Retransmit), f.now + Duration::from_secs(3));
}

/// A SYN-ACK for an active open after our SYN was sent `sends` times (retransmitted
/// on timeout), echoing `echo` when timestamps are on; then 20000 bytes are written.
/// Returns the number of data segments sent before the first ACK.
fn segments_after_syn_sent(cfg: Config, sends: u32, echo: impl Fn(&Fixture) -> u32) -> usize {
    let mut f = conn_syn_sent_with(cfg.clone());
    for _ in 1..sends {
        f.fire_next();
        assert_eq!(f.expect_one().flags, Flags::SYN);
    }
    f.advance(ms(50));
    let mut syn_ack = seg(Flags::SYN | Flags::ACK, IRS, iss(1), b"");
    syn_ack.options = peer_syn_options(&cfg, f.peer_tsval(), echo(&f));
    f.inject(&syn_ack);
    f.transmit();
    assert_eq!(f.conn.state(), State::Established);
    f.send(&[1u8; 20_000]);
    f.transmit().len()
}

#[test]
fn syn_retransmitted_twice_starts_data_with_a_one_segment_window() {
    // RFC 5681 3.1: "if the SYN or SYN/ACK is lost, the initial window used by a sender
    // after a correctly transmitted SYN MUST be one segment", which Linux applies after
    // more than one SYN retransmission (tcp_init_transfer).
    assert_eq!(segments_after_syn_sent(plain_config(), 3, |_| 0), 1);
    // A single retransmission is the likely spurious one of a 1 s initial RTO: the
    // usual initial window of 10 segments.
    assert_eq!(segments_after_syn_sent(plain_config(), 2, |_| 0), 10);
    assert_eq!(segments_after_syn_sent(plain_config(), 1, |_| 0), 10);
}

#[test]
fn one_segment_window_grows_by_slow_start() {
    let mut f = conn_syn_sent();
    f.fire_next();
    f.transmit();
    f.fire_next();
    f.transmit();
    f.advance(ms(50));
    let mut syn_ack = seg(Flags::SYN | Flags::ACK, IRS, iss(1), b"");
    syn_ack.options = peer_syn_options(&plain_config(), 0, 0);
    f.inject(&syn_ack);
    f.transmit();
    assert_eq!(f.conn.cwnd(), f.conn.smss());
    f.send(&[1u8; 10_000]);
    assert_eq!(f.transmit().len(), 1);
    f.advance(RTT);
    f.inject(&seg(Flags::ACK, irs(1), iss(1461), b""));
    let sent = f.transmit();
    assert_eq!(sent.len(), 2, "cwnd 2 segments after one ACK: {sent:?}");
}

#[test]
fn syn_ack_echoing_our_first_syn_shows_the_timeouts_were_spurious() {
    // Linux's tcp_try_undo_spurious_syn: a SYN-ACK whose timestamp echo is the TSval
    // of our first SYN answers that SYN, so nothing was lost and the initial window
    // stays; one echoing a retransmission leaves the window at one segment.
    let cfg = Config::default();
    assert_eq!(segments_after_syn_sent(cfg.clone(), 3, |_| TS_OFFSET), 10);
    assert_eq!(segments_after_syn_sent(cfg, 3, |f| f.last_tsval), 1);
}

#[test]
fn syn_ack_retransmitted_twice_starts_data_with_a_one_segment_window() {
    for (sends, want) in [(3, 1), (2, 10)] {
        let mut f = conn_syn_received();
        for _ in 1..sends {
            f.fire_next();
            assert_eq!(f.expect_one().flags, Flags::SYN | Flags::ACK);
        }
        f.advance(ms(50));
        f.inject(&seg(Flags::ACK, irs(1), iss(1), b""));
        assert_eq!(f.conn.state(), State::Established);
        assert_eq!(f.conn.cwnd(), want * f.conn.smss(), "{sends} SYN-ACKs");
        f.send(&[1u8; 20_000]);
        assert_eq!(f.transmit().len(), want as usize, "{sends} SYN-ACKs");
    }
}

/// The plain fixture's settings with NewReno, whose window arithmetic these tests
/// check (RFC 5681, RFC 6582); CUBIC's is in `recovery.rs`.
fn newreno() -> Config {
    Config {
        congestion: Algorithm::NewReno,
        ..plain_config()
    }
}

#[test]
fn three_duplicate_acks_fast_retransmit_only_the_first_unacknowledged_segment() {
    let mut f = conn_established_with(newreno());
    f.send(&[3u8; 5 * 1460]);
    assert_eq!(f.transmit().len(), 5);
    f.advance(RTT);
    // The first segment arrived; the second was lost; 3, 4 and 5 each trigger a dup ACK.
    f.inject(&seg(Flags::ACK, irs(1), iss(1461), b""));
    f.expect_nothing();
    for _ in 0..2 {
        f.inject(&seg(Flags::ACK, irs(1), iss(1461), b""));
        f.expect_nothing();
    }
    f.inject(&seg(Flags::ACK, irs(1), iss(1461), b""));
    // RFC 5681 3.2 step 2: the lost segment starting at SND.UNA is retransmitted; the
    // segments the dup ACKs reported as received are not.
    let s = f.expect_one();
    assert_eq!((s.seq, s.payload.len()), (iss(1461), 1460));
    assert_eq!((f.cx.fast_retrans, f.cx.retrans_segs), (1, 1));
    // ssthresh = max(FlightSize / 2, 2 * SMSS) = 2920; cwnd = ssthresh + 3 * SMSS.
    assert_eq!(f.conn.cwnd(), 2920 + 3 * 1460);
}

#[test]
fn partial_ack_in_fast_recovery_retransmits_only_the_next_hole() {
    let mut f = conn_established();
    f.send(&[3u8; 5 * 1460]);
    f.transmit();
    f.advance(RTT);
    // Segments 2 and 4 were lost: one new ACK, then three duplicates.
    for _ in 0..4 {
        f.inject(&seg(Flags::ACK, irs(1), iss(1461), b""));
    }
    assert_eq!(f.expect_one().seq, iss(1461));
    f.advance(RTT);
    // The retransmitted segment 2 filled the first hole: ACK up to segment 4.
    f.inject(&seg(Flags::ACK, irs(1), iss(1 + 3 * 1460), b""));
    // RFC 6582 3.2 step 3: retransmit the first unacknowledged segment, and only it.
    let s = f.expect_one();
    assert_eq!((s.seq, s.payload.len()), (iss(1 + 3 * 1460), 1460));
    assert_eq!(f.cx.retrans_segs, 2);
}

#[test]
fn ack_after_fast_retransmit_covering_everything_ends_recovery() {
    let mut f = conn_established_with(newreno());
    f.send(&[3u8; 5 * 1460]);
    f.transmit();
    f.advance(RTT);
    for _ in 0..4 {
        f.inject(&seg(Flags::ACK, irs(1), iss(1461), b""));
    }
    f.transmit();
    f.advance(RTT);
    f.inject(&seg(Flags::ACK, irs(1), iss(1 + 5 * 1460), b""));
    f.expect_nothing();
    assert_eq!(f.conn.send_queue(), 0);
    assert_eq!(f.conn.timer(Timer::Retransmit), None);
    // RFC 6582 3.2 step 4: cwnd deflates to min(ssthresh, FlightSize + SMSS).
    assert_eq!(f.conn.cwnd(), 2920);
}

#[test]
fn two_duplicate_acks_do_not_retransmit() {
    let mut f = conn_established();
    f.send(&[3u8; 3 * 1460]);
    f.transmit();
    f.inject(&seg(Flags::ACK, irs(1), iss(1461), b""));
    f.inject(&seg(Flags::ACK, irs(1), iss(1461), b""));
    f.inject(&seg(Flags::ACK, irs(1), iss(1461), b""));
    f.expect_nothing();
    assert_eq!(f.cx.fast_retrans, 0);
}

fn keepalive_fixture() -> Fixture {
    let mut f = conn_established();
    let o = f.conn.sockopts_mut();
    o.keepalive = true;
    o.keepalive_idle = Duration::from_secs(10);
    o.keepalive_interval = Duration::from_secs(2);
    o.keepalive_count = 3;
    // Socket options take effect once the outputs are drained (the calling order).
    f.expect_nothing();
    f
}

#[test]
fn keepalive_is_off_by_default() {
    let mut f = conn_established();
    f.expect_nothing();
    assert_eq!(f.conn.timer(Timer::Keepalive), None);
    assert_eq!(
        f.conn.poll_timeout(),
        None,
        "an idle connection runs no timer at all"
    );
}

#[test]
fn keepalive_probes_an_idle_connection_after_the_idle_time() {
    let mut f = keepalive_fixture();
    let idle_since = f.now;
    assert_eq!(f.timer(Timer::Keepalive), idle_since + secs(10));
    f.fire_next();
    let probe = f.expect_one();
    // RFC 9293 3.8.4 / RFC 1122 4.2.3.6: a segment with SEG.SEQ = SND.NXT - 1.
    assert_eq!(
        (probe.flags, probe.seq, probe.ack),
        (Flags::ACK, ISS, irs(1))
    );
    assert!(probe.payload.is_empty());
    assert_eq!(f.cx.keepalive_probes, 1);
    assert_eq!(f.timer(Timer::Keepalive), idle_since + secs(12));
}

#[test]
fn keepalive_enabled_in_the_config_runs_from_the_end_of_the_handshake() {
    let cfg = Config {
        keepalive: true,
        ..plain_config()
    };
    let mut f = conn_established_with(cfg);
    f.expect_nothing();
    // Linux's default idle time: 7200 s after the last segment received (the SYN-ACK).
    assert_eq!(f.timer(Timer::Keepalive), f.now + secs(7200));
}

#[test]
fn keepalive_gives_up_after_count_unanswered_probes() {
    let mut f = keepalive_fixture();
    let idle_since = f.now;
    let log = run_to_close(&mut f, 10);
    let at: Vec<u64> = log
        .iter()
        .map(|(t, _)| t.saturating_since(idle_since).as_secs())
        .collect();
    // Three probes (ACKs one below SND.UNA), then, as Linux's tcp_keepalive_timer
    // does, an RST to the silent peer when the count is exhausted.
    assert_eq!(at, vec![10, 12, 14, 16]);
    for (_, p) in &log[..3] {
        assert!(p.flags.ack() && !p.flags.rst() && p.seq == iss(0));
    }
    let (_, rst) = &log[3];
    assert!(rst.flags.rst() && rst.flags.ack());
    assert_eq!((rst.seq, rst.ack), (iss(1), irs(1)));
    assert_eq!(f.now, idle_since + secs(16));
    assert_eq!(
        f.events(),
        vec![
            Event::Error(Error::TimedOut),
            Event::StateChange {
                from: State::Established,
                to: State::Closed,
                why: Reason::TimerKeepalive
            },
            Event::Closed,
        ]
    );
}

#[test]
fn keepalive_answer_restarts_the_idle_time() {
    let mut f = keepalive_fixture();
    f.fire_next();
    f.transmit();
    f.fire_next();
    f.transmit(); // two probes out
    f.advance(RTT);
    // The peer answers the probe with an ACK of SND.NXT.
    f.inject(&seg(Flags::ACK, irs(1), iss(1), b""));
    assert_eq!(f.timer(Timer::Keepalive), f.now + secs(10));
    // The count starts over: three more probes before giving up.
    let answered = f.now;
    let log = run_to_close(&mut f, 10);
    // Three probes and the final RST.
    assert_eq!(log.len(), 4);
    assert!(log[..3].iter().all(|(_, p)| !p.flags.rst()));
    assert!(log[3].1.flags.rst());
    assert_eq!(f.now, answered + secs(16));
}

#[test]
fn keepalive_does_not_probe_while_data_is_in_flight() {
    let mut f = keepalive_fixture();
    f.send(b"x");
    f.transmit();
    // The retransmission timer watches the peer; keepalive stays quiet.
    let rto = f.timer(Timer::Retransmit);
    assert!(rto < f.timer(Timer::Keepalive));
    f.fire_next();
    let s = f.expect_one();
    assert_eq!((s.seq, &s.payload[..]), (iss(1), &b"x"[..]));
    assert_eq!(f.cx.keepalive_probes, 0);
}

#[test]
fn syn_ack_retransmitted_before_the_ack_leaves_data_rto_at_3s() {
    let mut f = conn_syn_received();
    f.fire_next();
    f.transmit(); // SYN-ACK again at 1 s
    f.advance(ms(50));
    f.inject(&seg(Flags::ACK, irs(1), iss(1), b""));
    assert_eq!(f.conn.state(), State::Established);
    assert_eq!(f.conn.rtt().srtt(), None);
    f.send(b"x");
    f.transmit();
    // RFC 6298 5.7, and the handshake's backoff does not carry over into data.
    assert_eq!(f.timer(Timer::Retransmit), f.now + Duration::from_secs(3));
}

#[test]
fn zero_window_probes_go_on_while_the_peer_answers_them() {
    let mut f = conn_established_with(Config {
        retries2: 2,
        ..plain_config()
    });
    f.inject(&Segment {
        window: 0,
        ..seg(Flags::ACK, irs(1), iss(1), b"")
    });
    f.send(b"x");
    f.expect_nothing();
    for _ in 0..5 {
        f.fire_next();
        assert_eq!(f.expect_one().seq, ISS, "a probe");
        f.advance(RTT);
        // RFC 9293 3.8.6.1: as long as the receiver answers, the sender must not give up.
        f.inject(&Segment {
            window: 0,
            ..seg(Flags::ACK, irs(1), iss(1), b"")
        });
        f.expect_nothing();
    }
    assert_eq!(f.conn.state(), State::Established);
    assert_eq!(f.cx.win_probes, 5);
}

#[test]
fn unanswered_zero_window_probes_time_out_after_retries2() {
    let mut f = conn_established_with(Config {
        retries2: 2,
        ..plain_config()
    });
    f.inject(&Segment {
        window: 0,
        ..seg(Flags::ACK, irs(1), iss(1), b"")
    });
    f.send(b"x");
    f.expect_nothing();
    let log = run_to_close(&mut f, 10);
    assert_eq!(log.len(), 2, "two probes, then the third expiry gives up");
    assert_eq!(f.conn.error(), Some(Error::TimedOut));
}

#[test]
fn keepalive_probe_from_the_peer_is_answered_with_an_ack() {
    let mut f = conn_established();
    // The peer's probe: SEG.SEQ = RCV.NXT - 1, no data.
    f.inject(&seg(Flags::ACK, irs(0), iss(1), b""));
    let ack = f.expect_one();
    assert_eq!((ack.flags, ack.seq, ack.ack), (Flags::ACK, iss(1), irs(1)));
}

#[test]
fn after_an_rto_each_ack_grows_cwnd_in_slow_start() {
    let mut f = conn_established();
    f.send(&[5u8; 6 * 1460]);
    assert_eq!(f.transmit().len(), 6);
    f.fire_next();
    assert_eq!(f.expect_one().seq, iss(1), "loss window: one segment");
    f.advance(RTT);
    f.inject(&seg(Flags::ACK, irs(1), iss(1461), b""));
    // RFC 5681 3.1: after a timeout the sender slow-starts from one segment; the ACK of
    // the resent segment adds one SMSS, and the go-back-N resend goes on two at a time.
    assert_eq!(f.conn.cwnd(), 2 * 1460);
    let sent = f.transmit();
    let seqs: Vec<_> = sent.iter().map(|s| s.seq).collect();
    assert_eq!(seqs, vec![iss(1461), iss(2921)]);
}

#[test]
fn duplicate_acks_after_an_rto_do_not_start_fast_retransmit() {
    let mut f = conn_established();
    f.send(&[5u8; 4 * 1460]);
    f.transmit();
    f.fire_next();
    f.transmit();
    // RFC 6582 section 4: duplicates of data sent before the timeout are no signal.
    for _ in 0..3 {
        f.inject(&seg(Flags::ACK, irs(1), iss(1), b""));
    }
    f.expect_nothing();
    assert_eq!(f.cx.fast_retrans, 0);
}

#[test]
fn acks_sent_while_resending_carry_the_highest_sequence_number_sent() {
    // After an RTO SND.NXT goes back to SND.UNA to resend, but the peer may hold
    // everything up to SND.MAX: an ACK numbered below that falls outside its window and
    // is dropped, acknowledgment and all (RFC 9293 3.10.7.4 first check). When both
    // ends resend at once neither ever learns what the other has. Linux numbers its
    // ACKs with the highest sequence number sent (tcp_acceptable_seq).
    let mut f = conn_established();
    f.send(&[1u8; 2920]);
    assert_eq!(f.transmit().len(), 2);
    let max = iss(2921);
    f.fire_next();
    let r = f.expect_one();
    assert_eq!((r.seq, r.payload.len()), (iss(1), 1460), "go-back-N resend");
    assert_eq!(f.conn.sequence().2, iss(1461), "SND.NXT moved back");
    // The peer's data, acknowledging none of ours: the ACK for it says SND.MAX.
    f.inject(&seg(Flags::ACK | Flags::PSH, irs(1), iss(1), b"ping"));
    let a = f.expect_one();
    assert_eq!((a.flags, a.seq, a.ack), (Flags::ACK, max, irs(5)));
    // So does a challenge ACK (RFC 5961's SND.NXT is the highest number sent).
    f.advance(ms(10));
    f.inject(&seg(Flags::RST, irs(100), Seq(0), b""));
    let c = f.expect_one();
    assert_eq!((c.flags, c.seq, c.ack), (Flags::ACK, max, irs(5)));
}

#[test]
fn an_ack_into_a_window_the_peer_shrank_to_zero_is_numbered_at_its_edge() {
    // Linux's tcp_acceptable_seq: with SND.MAX beyond SND.UNA + SND.WND, the ACK
    // carries the window's right edge, the one number a zero window accepts.
    let mut f = conn_established();
    f.send(&[1u8; 1000]);
    f.transmit();
    let mut zero = seg(Flags::ACK, irs(1), iss(1), b"");
    zero.window = 0;
    f.inject(&zero);
    f.expect_nothing();
    let mut ping = seg(Flags::ACK | Flags::PSH, irs(1), iss(1), b"ping");
    ping.window = 0;
    f.inject(&ping);
    assert_eq!(f.conn.snd_wnd(), 0);
    let a = f.expect_one();
    assert_eq!((a.flags, a.seq, a.ack), (Flags::ACK, iss(1), irs(5)));
}

#[test]
fn connect_timeout_ends_a_handshake_that_takes_too_long_and_then_leaves_the_timer() {
    // FreeBSD's TCP_KEEPINIT: five seconds for the handshake, whatever SYN
    // retransmissions are left (SYNs at 0, 1 and 3 s; the next would go at 7 s).
    let cfg = Config {
        connect_timeout: Some(secs(5)),
        syn_retries: 10,
        ..plain_config()
    };
    let mut f = conn_syn_sent_with(cfg.clone());
    // Turning keepalive off during the handshake leaves the handshake's limit alone.
    f.conn.set_keepalive(f.now, false);
    for at in [1, 3] {
        assert_eq!(f.fire_next(), Instant::ZERO + secs(at));
        assert_eq!(f.expect_one().flags, Flags::SYN);
    }
    assert_eq!(f.fire_next(), Instant::ZERO + secs(5));
    assert_eq!(f.conn.state(), State::Closed);
    assert_eq!(f.conn.error(), Some(Error::TimedOut));
    assert!(f
        .state_changes()
        .contains(&(State::SynSent, State::Closed, Reason::TimerConnect)));
    f.expect_nothing();
    assert_eq!(f.cx.attempt_fails, 1);

    // A handshake done in time: the timer is gone with it, and keepalive (off here)
    // sends nothing when it would have fired.
    let mut f = conn_established_with(cfg.clone());
    f.run_until(Instant::ZERO + secs(60));
    assert_eq!(f.conn.state(), State::Established);
    f.expect_nothing();
    // With keepalive on, its first probe comes after the idle time, not at 5 s.
    let mut f = conn_established_with(Config {
        keepalive: true,
        keepalive_idle: secs(20),
        ..cfg
    });
    f.expect_nothing();
    let t = f.fire_next();
    assert_eq!(t, Instant::ZERO + RTT + secs(20));
    assert!(f.expect_one().is_pure_ack());
}

#[test]
fn without_connect_timeout_keepalive_in_a_simultaneous_open_never_ends_the_handshake() {
    // The keepalive timer a segment arms in SYN_RECEIVED (keepalive on, idle 2 s)
    // fires there without effect; only Config::connect_timeout ends a handshake.
    let mut f = conn_syn_sent_with(Config {
        keepalive: true,
        keepalive_idle: secs(2),
        synack_retries: 10,
        syn_retries: 10,
        ..plain_config()
    });
    f.inject(&seg(Flags::SYN, IRS, Seq(0), b""));
    assert_eq!(f.conn.state(), State::SynReceived);
    // A segment in the window without ACK: taken as a sign of life, then dropped.
    f.inject(&seg(Flags::empty(), irs(1), Seq(0), b"x"));
    f.run_until(Instant::ZERO + secs(10));
    assert_eq!(f.conn.state(), State::SynReceived);
    assert_eq!(f.conn.error(), None);
}
