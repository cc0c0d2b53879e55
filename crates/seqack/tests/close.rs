//! Connection termination: RFC 9293 section 3.6 and the CLOSE call (3.10.4), the FIN
//! rules of 3.10.7.4 (eighth), TIME_WAIT, and Linux's orphan and abort behaviour.

mod common;

use common::*;
use seqack::tcp::{Config, Disposition, Error, Event, Reason, SendError, Shutdown, State, Timer};
use seqack::wire::checksum;
use seqack::wire::tcp::Flags;
use seqack::wire::Seq;

fn close(f: &mut Fixture) {
    let now = f.now;
    f.conn.close(now, &mut f.cx);
}

#[test]
fn active_close_goes_through_fin_wait_1_fin_wait_2_and_time_wait_to_closed_after_2msl() {
    let mut f = conn_established();
    close(&mut f);
    assert_eq!(
        f.state_changes(),
        vec![(State::Established, State::FinWait1, Reason::Close)]
    );
    let fin = f.expect_one();
    assert_eq!(
        (fin.flags, fin.seq, fin.ack),
        (Flags::FIN | Flags::ACK, iss(1), irs(1))
    );

    f.advance(RTT);
    f.inject(&seg(Flags::ACK, irs(1), iss(2), b""));
    assert_eq!(
        f.state_changes(),
        vec![(State::FinWait1, State::FinWait2, Reason::RcvAckOfFin)]
    );
    f.expect_nothing();

    f.advance(ms(500));
    f.inject(&seg(Flags::FIN | Flags::ACK, irs(1), iss(2), b""));
    assert_eq!(
        f.state_changes(),
        vec![(State::FinWait2, State::TimeWait, Reason::RcvFin)]
    );
    let ack = f.expect_one();
    assert_eq!((ack.flags, ack.seq, ack.ack), (Flags::ACK, iss(2), irs(2)));
    assert_eq!(f.cx.tw, 1);

    // TIME_WAIT lasts 2 * MSL = 60 s with Linux's MSL, and only the 2MSL timer runs.
    let entered = f.now;
    assert_eq!(f.conn.poll_timeout(), Some(entered + secs(60)));
    assert_eq!(f.conn.timer(Timer::FinWait2), None);
    f.run_until(entered + (secs(60) - ms(1)));
    assert_eq!(f.conn.state(), State::TimeWait);
    f.run_until(entered + secs(60));
    assert_eq!(
        f.events(),
        vec![
            Event::StateChange {
                from: State::TimeWait,
                to: State::Closed,
                why: Reason::Timer2Msl
            },
            Event::Closed
        ]
    );
    assert_eq!(f.conn.error(), None);
    f.expect_nothing();
}

#[test]
fn time_wait_lasts_twice_the_configured_msl() {
    let mut f = conn_time_wait_with(Config {
        msl: secs(5),
        ..plain_config()
    });
    let entered = f.now;
    assert_eq!(f.fire_next(), entered + secs(10));
    assert!(f.conn.is_closed());
}

#[test]
fn fin_takes_one_sequence_number_so_only_an_ack_of_iss_plus_2_acknowledges_it() {
    let mut f = conn_fin_wait_1();
    // ACK = ISS+1 acknowledges the SYN only; our FIN occupies ISS+1.
    f.inject(&seg(Flags::ACK, irs(1), iss(1), b""));
    assert_eq!(f.conn.state(), State::FinWait1);
    f.inject(&seg(Flags::ACK, irs(1), iss(2), b""));
    assert_eq!(f.conn.state(), State::FinWait2);
}

#[test]
fn ack_beyond_our_fin_is_answered_and_dropped() {
    let mut f = conn_fin_wait_1();
    f.inject(&seg(Flags::ACK, irs(1), iss(3), b""));
    // RFC 9293 3.10.7.4 fifth: SEG.ACK > SND.NXT: send an ACK, drop the segment.
    let ack = f.expect_one();
    assert_eq!((ack.flags, ack.seq, ack.ack), (Flags::ACK, iss(2), irs(1)));
    assert_eq!(f.conn.state(), State::FinWait1);
}

#[test]
fn passive_close_goes_through_close_wait_and_last_ack_to_closed() {
    let mut f = conn_established();
    f.inject(&seg(Flags::FIN | Flags::ACK, irs(1), iss(1), b""));
    assert_eq!(
        f.events(),
        vec![
            Event::Readable,
            Event::StateChange {
                from: State::Established,
                to: State::CloseWait,
                why: Reason::RcvFin
            },
        ]
    );
    // The peer's FIN takes one sequence number: ACK = IRS+2, delayed as Linux delays
    // it (an application that closed now would send it with its FIN).
    f.expect_nothing();
    let delack = f.now + f.conn.config().delayed_ack;
    assert_eq!(f.fire_next(), delack);
    let ack = f.expect_one();
    assert_eq!((ack.flags, ack.seq, ack.ack), (Flags::ACK, iss(1), irs(2)));
    let mut buf = [0u8; 8];
    assert_eq!(f.conn.recv(&mut buf), Ok(0), "end of stream");
    assert!(f.conn.peer_closed());

    close(&mut f);
    assert_eq!(
        f.state_changes(),
        vec![(State::CloseWait, State::LastAck, Reason::Close)]
    );
    let fin = f.expect_one();
    assert_eq!(
        (fin.flags, fin.seq, fin.ack),
        (Flags::FIN | Flags::ACK, iss(1), irs(2))
    );

    f.advance(RTT);
    f.inject(&seg(Flags::ACK, irs(2), iss(2), b""));
    assert_eq!(
        f.events(),
        vec![
            Event::StateChange {
                from: State::LastAck,
                to: State::Closed,
                why: Reason::RcvAckOfFin
            },
            Event::Closed
        ]
    );
    f.expect_nothing();
    assert_eq!(
        f.conn.poll_timeout(),
        None,
        "the passive closer has no TIME_WAIT"
    );
    assert_eq!(f.cx.tw, 0);
}

#[test]
fn close_wait_can_still_send_and_the_fin_follows_the_data() {
    let mut f = conn_close_wait();
    f.send(b"bye");
    close(&mut f);
    let sent = f.transmit();
    let data_end = iss(4);
    assert!(sent.iter().any(|s| s.seq == iss(1) && s.payload == b"bye"));
    let fin = sent.iter().find(|s| s.flags.fin()).expect("a FIN");
    assert_eq!(
        fin.seq + fin.payload.len() as u32,
        data_end,
        "FIN takes the number after the last byte"
    );
    f.advance(RTT);
    f.inject(&seg(Flags::ACK, irs(2), iss(5), b""));
    assert!(f.conn.is_closed());
}

#[test]
fn retransmitted_fin_in_close_wait_is_acked_again() {
    let mut f = conn_close_wait();
    f.inject(&seg(Flags::FIN | Flags::ACK, irs(1), iss(1), b""));
    let ack = f.expect_one();
    assert_eq!((ack.flags, ack.ack), (Flags::ACK, irs(2)));
    assert_eq!(f.conn.state(), State::CloseWait);
    assert!(f.state_changes().is_empty());
}

#[test]
fn fin_with_the_ack_of_our_fin_in_fin_wait_1_goes_straight_to_time_wait() {
    let mut f = conn_fin_wait_1();
    f.advance(RTT);
    f.inject(&seg(Flags::FIN | Flags::ACK, irs(1), iss(2), b""));
    // One transition, named for the merged FIN+ACK; no FIN_WAIT_2 in between.
    assert_eq!(
        f.state_changes(),
        vec![(State::FinWait1, State::TimeWait, Reason::RcvFinAckOfFin)]
    );
    let ack = f.expect_one();
    assert_eq!((ack.flags, ack.seq, ack.ack), (Flags::ACK, iss(2), irs(2)));
    assert_eq!(f.timer(Timer::TimeWait), f.now + secs(60));
    assert_eq!(
        f.conn.timer(Timer::Retransmit),
        None,
        "our FIN is acknowledged"
    );
}

#[test]
fn simultaneous_close_goes_through_closing_to_time_wait() {
    let mut f = conn_fin_wait_1();
    // The peer's FIN crossed ours: it does not acknowledge our FIN.
    f.inject(&seg(Flags::FIN | Flags::ACK, irs(1), iss(1), b""));
    assert_eq!(
        f.state_changes(),
        vec![(State::FinWait1, State::Closing, Reason::RcvFin)]
    );
    let ack = f.expect_one();
    assert_eq!((ack.flags, ack.seq, ack.ack), (Flags::ACK, iss(2), irs(2)));
    assert!(
        f.conn.timer(Timer::Retransmit).is_some(),
        "our FIN is still unacknowledged"
    );

    f.advance(RTT);
    f.inject(&seg(Flags::ACK, irs(2), iss(2), b""));
    assert_eq!(
        f.state_changes(),
        vec![(State::Closing, State::TimeWait, Reason::RcvAckOfFin)]
    );
    f.expect_nothing();
    assert_eq!(f.timer(Timer::TimeWait), f.now + secs(60));
    assert_eq!(f.conn.timer(Timer::Retransmit), None);
}

#[test]
fn half_closed_connection_still_receives_data_in_fin_wait_1() {
    let mut f = conn_fin_wait_1();
    f.inject(&seg(Flags::ACK | Flags::PSH, irs(1), iss(1), b"abc"));
    let ack = f.expect_one();
    assert_eq!((ack.seq, ack.ack), (iss(2), irs(4)));
    assert_eq!(f.read_all(), b"abc");
    assert_eq!(f.conn.state(), State::FinWait1);
}

#[test]
fn half_closed_connection_still_receives_data_in_fin_wait_2() {
    let mut f = conn_fin_wait_2();
    f.inject(&seg(Flags::ACK | Flags::PSH, irs(1), iss(2), b"more data"));
    assert_eq!(f.expect_one().ack, irs(10));
    assert_eq!(f.read_all(), b"more data");
    f.inject(&seg(Flags::FIN | Flags::ACK, irs(10), iss(2), b""));
    assert_eq!(f.expect_one().ack, irs(11));
    assert_eq!(f.conn.state(), State::TimeWait);
}

/// A download after `shutdown(Write)`: in FIN_WAIT_1 and FIN_WAIT_2 the next in-order
/// data is staged (summed as it is copied into the ring, for a driver that defers the
/// payload's checksum) as in ESTABLISHED, and delivered in place; once the application
/// has closed (new data is then answered with RST) or the peer's FIN is in, it is not.
#[test]
fn a_half_closed_connection_stages_arriving_data_as_established_does() {
    for (mut f, ack) in [(conn_fin_wait_1(), iss(1)), (conn_fin_wait_2(), iss(2))] {
        let state = f.conn.state();
        // The first data allocates the ring (staging never allocates) and stays unread.
        f.inject(&seg(Flags::ACK | Flags::PSH, irs(1), ack, b"hello"));
        let s = seg(Flags::ACK | Flags::PSH, irs(6), ack, b"world");
        assert_eq!(
            f.conn.stage_payload(&s, 0),
            Some(checksum::accumulate(0, b"world")),
            "{state:?}"
        );
        f.conn.handle_staged_segment(f.now, &s, &mut f.cx);
        assert_eq!(f.read_all(), b"helloworld", "{state:?}");
        assert_eq!(f.conn.state(), state);
    }
    // A ring above 16 KiB outlives its draining, so only the way the application let
    // go of the connection differs between these two.
    let big = vec![7u8; 20_000];
    for closed in [false, true] {
        let mut f = conn_established();
        f.inject(&seg(Flags::ACK | Flags::PSH, irs(1), iss(1), &big));
        assert_eq!(f.read_all(), big);
        if closed {
            f.conn.close(f.now, &mut f.cx);
        } else {
            f.conn.shutdown(Shutdown::Write);
        }
        assert_eq!(f.conn.state(), State::FinWait1);
        let s = seg(Flags::ACK | Flags::PSH, irs(20_001), iss(1), b"world");
        assert_eq!(
            f.conn.stage_payload(&s, 0).is_some(),
            !closed,
            "closed {closed}"
        );
    }
    let mut f = conn_close_wait();
    let s = seg(Flags::ACK | Flags::PSH, irs(2), iss(1), b"world");
    assert_eq!(f.conn.stage_payload(&s, 0), None, "CLOSE_WAIT");
}

#[test]
fn send_after_shutdown_write_fails() {
    let mut f = conn_fin_wait_1();
    assert_eq!(f.conn.send(b"x"), Err(SendError::Shutdown));
    f.expect_nothing();
}

#[test]
fn fin_wait_1_retransmits_its_fin_on_rto() {
    let mut f = conn_fin_wait_1();
    let sent_at = f.now;
    assert_eq!(f.fire_next(), sent_at + ms(300));
    let fin = f.expect_one();
    assert_eq!(
        (fin.flags, fin.seq, fin.ack),
        (Flags::FIN | Flags::ACK, iss(1), irs(1))
    );
    assert_eq!(f.cx.retrans_segs, 1);
}

#[test]
fn last_ack_retransmits_its_fin_on_rto_with_backoff() {
    let mut f = conn_last_ack();
    let sent_at = f.now;
    assert_eq!(f.fire_next(), sent_at + ms(300));
    let fin = f.expect_one();
    assert_eq!(
        (fin.flags, fin.seq, fin.ack),
        (Flags::FIN | Flags::ACK, iss(1), irs(2))
    );
    assert_eq!(f.fire_next(), sent_at + ms(300 + 600));
    assert_eq!(f.expect_one().seq, iss(1));
    assert_eq!(f.conn.state(), State::LastAck);
}

#[test]
fn orphaned_last_ack_gives_up_after_orphan_retries() {
    let mut f = conn_last_ack_with(Config {
        orphan_retries: 2,
        ..plain_config()
    });
    let sent_at = f.now;
    for _ in 0..2 {
        f.fire_next();
        assert_eq!(f.expect_one().seq, iss(1));
    }
    assert_eq!(f.fire_next(), sent_at + ms(300 + 600 + 1200));
    assert!(f.conn.is_closed());
    assert!(f
        .state_changes()
        .contains(&(State::LastAck, State::Closed, Reason::TimerRetries)));
}

#[test]
fn time_wait_reacks_a_retransmitted_fin_and_restarts_2msl() {
    let mut f = conn_time_wait();
    f.advance(secs(10));
    // Our last ACK was lost; the peer sends its FIN again.
    assert_eq!(
        f.inject(&seg(Flags::FIN | Flags::ACK, irs(1), iss(2), b"")),
        Disposition::Consumed
    );
    let ack = f.expect_one();
    assert_eq!((ack.flags, ack.seq, ack.ack), (Flags::ACK, iss(2), irs(2)));
    // RFC 9293 3.10.7.4 eighth, TIME-WAIT: "Restart the 2 MSL time-out."
    assert_eq!(f.timer(Timer::TimeWait), f.now + secs(60));
    assert_eq!(f.conn.state(), State::TimeWait);
}

#[test]
fn time_wait_ignores_a_duplicate_bare_ack() {
    let mut f = conn_time_wait();
    f.advance(secs(1));
    f.inject(&seg(Flags::ACK, irs(2), iss(2), b""));
    // No reply (an ACK for an ACK would loop) and no state change. Whether the 2MSL
    // timer restarts is not asserted: RFC 9293 does not, Linux does.
    f.expect_nothing();
    assert_eq!(f.conn.state(), State::TimeWait);
    assert!(f.events().is_empty());
}

#[test]
fn time_wait_answers_an_out_of_window_segment_with_an_ack() {
    let mut f = conn_time_wait();
    f.inject(&seg(Flags::ACK | Flags::PSH, irs(5000), iss(2), b"stray"));
    let ack = f.expect_one();
    assert_eq!((ack.flags, ack.seq, ack.ack), (Flags::ACK, iss(2), irs(2)));
    assert_eq!(f.conn.state(), State::TimeWait);
}

#[test]
fn time_wait_syn_above_rcv_nxt_may_reopen_the_four_tuple() {
    let mut f = conn_time_wait();
    // RFC 6191 / RFC 9293 3.10.7.4 note: a new SYN with a higher sequence number.
    assert_eq!(
        f.inject(&seg(Flags::SYN, irs(100_000), Seq(0), b"")),
        Disposition::Recycle
    );
    f.expect_nothing();
    assert_eq!(
        f.conn.state(),
        State::TimeWait,
        "the stack decides; the connection waits"
    );
    f.conn.recycle_time_wait();
    assert_eq!(
        f.events(),
        vec![
            Event::StateChange {
                from: State::TimeWait,
                to: State::Closed,
                why: Reason::TimeWaitRecycled
            },
            Event::Closed,
        ]
    );
}

#[test]
fn time_wait_old_syn_is_not_recycled_but_acked() {
    let mut f = conn_time_wait();
    assert_eq!(
        f.inject(&seg(Flags::SYN, irs(0), Seq(0), b"")),
        Disposition::Consumed
    );
    let ack = f.expect_one();
    assert_eq!((ack.flags, ack.seq, ack.ack), (Flags::ACK, iss(2), irs(2)));
    assert_eq!(f.conn.state(), State::TimeWait);
}

#[test]
fn orphaned_fin_wait_2_times_out_after_fin_wait2_timeout() {
    let mut f = conn_fin_wait_2();
    close(&mut f);
    // close() in FIN_WAIT_2: the FIN is already out; only the orphan timer starts.
    f.expect_nothing();
    let closed_at = f.now;
    assert_eq!(f.timer(Timer::FinWait2), closed_at + secs(60));
    assert_eq!(f.fire_next(), closed_at + secs(60));
    assert_eq!(
        f.events(),
        vec![
            Event::StateChange {
                from: State::FinWait2,
                to: State::Closed,
                why: Reason::TimerFinWait2
            },
            Event::Closed
        ]
    );
    f.expect_nothing();
}

#[test]
fn orphaned_fin_wait_2_timeout_follows_the_tcp_linger2_sockopt() {
    let mut f = conn_established();
    f.conn.sockopts_mut().fin_wait2_timeout = secs(5);
    close(&mut f);
    f.transmit();
    f.advance(RTT);
    f.inject(&seg(Flags::ACK, irs(1), iss(2), b""));
    assert_eq!(f.conn.state(), State::FinWait2);
    // The timer starts when FIN_WAIT_2 is entered.
    assert_eq!(f.timer(Timer::FinWait2), f.now + secs(5));
    f.fire_next();
    assert!(f
        .state_changes()
        .contains(&(State::FinWait2, State::Closed, Reason::TimerFinWait2)));
}

#[test]
fn orphaned_fin_wait_2_timeout_follows_config_fin_wait2_timeout() {
    let mut f = conn_fin_wait_2_with(Config {
        fin_wait2_timeout: secs(7),
        ..plain_config()
    });
    close(&mut f);
    assert_eq!(f.timer(Timer::FinWait2), f.now + secs(7));
}

#[test]
fn fin_wait_2_after_shutdown_write_only_waits_for_the_peer_indefinitely() {
    let mut f = conn_fin_wait_2();
    assert_eq!(f.conn.timer(Timer::FinWait2), None);
    assert_eq!(f.conn.poll_timeout(), None);
    f.run_until(f.now + secs(24 * 3600));
    assert_eq!(f.conn.state(), State::FinWait2);
}

#[test]
fn close_with_unread_received_data_aborts_with_rst() {
    let mut f = conn_established();
    f.inject(&seg(Flags::ACK | Flags::PSH, irs(1), iss(1), b"unread"));
    f.transmit();
    f.events();
    close(&mut f);
    // RFC 2525 2.17 and Linux: data would be lost silently, so reset instead of FIN.
    let rst = f.expect_one();
    assert_eq!(
        (rst.flags, rst.seq, rst.ack),
        (Flags::RST | Flags::ACK, iss(1), irs(7))
    );
    assert!(f
        .state_changes()
        .contains(&(State::Established, State::Closed, Reason::Abort)));
    assert!(f.conn.is_closed());
    assert_eq!((f.cx.abort_on_close, f.cx.out_rsts, f.cx.tw), (1, 1, 0));
    assert_eq!(f.conn.poll_timeout(), None);
}

#[test]
fn close_with_linger_zero_sends_rst_and_skips_time_wait() {
    let mut f = conn_established();
    f.conn.sockopts_mut().linger_zero = true;
    close(&mut f);
    let rst = f.expect_one();
    assert!(rst.flags.rst() && !rst.flags.fin());
    assert_eq!(rst.seq, iss(1), "RFC 9293 3.10.5: <SEQ=SND.NXT><CTL=RST>");
    assert!(f
        .state_changes()
        .contains(&(State::Established, State::Closed, Reason::Abort)));
    assert_eq!((f.cx.abort_on_linger, f.cx.tw), (1, 0));
    assert_eq!(f.conn.poll_timeout(), None);
}

#[test]
fn data_arriving_after_close_is_answered_with_rst() {
    let mut f = conn_established();
    close(&mut f);
    f.transmit(); // our FIN, SND.NXT = ISS+2
    f.events();
    // The peer had not seen our FIN yet and sends more data.
    f.inject(&seg(Flags::ACK | Flags::PSH, irs(1), iss(1), b"late"));
    // Nobody will read it (Linux: TCPAbortOnData).
    let rst = f.expect_one();
    assert!(rst.flags.rst());
    // Linux answers from the segment (tcp_v4_send_reset): <SEQ=SEG.ACK><CTL=RST>.
    // SEG.ACK is the peer's RCV.NXT, so RFC 5961 lets this RST through at once; one at
    // SND.NXT (past our unacknowledged FIN) would only draw a challenge ACK.
    assert_eq!(rst.seq, iss(1));
    assert!(!rst.flags.ack());
    assert!(f.conn.is_closed());
    assert!(f
        .state_changes()
        .contains(&(State::FinWait1, State::Closed, Reason::Abort)));
    assert_eq!(f.cx.abort_on_data, 1);
}

#[test]
fn data_arriving_in_orphaned_fin_wait_2_is_answered_with_rst() {
    let mut f = conn_fin_wait_2();
    close(&mut f);
    f.inject(&seg(Flags::ACK, irs(1), iss(2), b"late"));
    let rst = f.expect_one();
    assert!(rst.flags.rst());
    // <SEQ=SEG.ACK><CTL=RST>, as Linux answers (our FIN was acknowledged: ISS+2).
    assert_eq!(rst.seq, iss(2));
    assert!(!rst.flags.ack());
    assert!(f.conn.is_closed());
}

#[test]
fn abort_in_established_sends_rst_and_reports_aborted() {
    let mut f = conn_established();
    let now = f.now;
    f.conn.abort(now, &mut f.cx);
    let rst = f.expect_one();
    assert!(rst.flags.rst());
    assert_eq!(rst.seq, iss(1));
    assert_eq!(f.conn.error(), Some(Error::Aborted));
    assert_eq!(
        f.inject(&seg(Flags::ACK, irs(1), iss(1), b"")),
        Disposition::NoConnection
    );
}

/// An abort while a retransmission timeout has moved SND.NXT back to SND.UNA: the RST
/// carries the highest sequence number sent, which the peer (holding everything up to
/// it) finds at its RCV.NXT; one at the rewound SND.NXT would be below its window and
/// ignored (Linux: tcp_acceptable_seq).
#[test]
fn abort_during_go_back_n_resets_at_the_highest_sequence_number_sent() {
    let mut f = conn_established();
    f.send(&[7u8; 3000]);
    let sent = f.transmit();
    let last = sent.last().expect("data sent");
    let snd_max = last.seq + last.payload.len() as u32;
    assert!(snd_max > iss(1) + 1000u32);
    f.fire_next(); // RTO: back to SND.UNA, one segment resent
    let resent = f.transmit();
    assert_eq!(resent[0].seq, iss(1), "go-back-N from SND.UNA");
    let now = f.now;
    f.conn.abort(now, &mut f.cx);
    let rst = f.expect_one();
    assert!(rst.flags.rst());
    assert_eq!(rst.seq, snd_max);
}

#[test]
fn shutdown_write_before_the_handshake_sends_the_fin_after_it() {
    let mut f = conn_syn_sent();
    f.conn.shutdown(Shutdown::Write);
    f.expect_nothing();
    f.advance(RTT);
    f.inject(&seg(Flags::SYN | Flags::ACK, IRS, iss(1), b""));
    let changes = f.state_changes();
    assert_eq!(
        changes.last(),
        Some(&(State::Established, State::FinWait1, Reason::ShutdownWrite))
    );
    let sent = f.transmit();
    let fin = sent
        .iter()
        .find(|s| s.flags.fin())
        .expect("FIN after the handshake");
    assert_eq!(fin.seq, iss(1));
    assert!(sent.iter().all(|s| s.ack == irs(1)));
}

#[test]
fn time_wait_syn_exactly_at_rcv_nxt_is_not_recycled() {
    // Linux reopens only for a SYN strictly after RCV.NXT (tcp_timewait_state_process).
    let mut f = conn_time_wait();
    assert_eq!(
        f.inject(&seg(Flags::SYN, irs(2), Seq(0), b"")),
        Disposition::Consumed
    );
    assert_eq!(f.expect_one().ack, irs(2));
    assert_eq!(
        f.inject(&seg(Flags::SYN, irs(3), Seq(0), b"")),
        Disposition::Recycle
    );
}

#[test]
fn time_wait_syn_with_a_newer_timestamp_may_reopen_even_with_an_old_sequence_number() {
    // RFC 6191: with timestamps, a newer TSval identifies a new incarnation.
    let mut f = conn_time_wait_with(Config::default());
    f.advance(secs(1));
    let mut syn = seg(Flags::SYN, irs(0), Seq(0), b"");
    syn.options.timestamps = Some((f.peer_tsval(), 0));
    assert_eq!(f.inject(&syn), Disposition::Recycle);
}

#[test]
fn time_wait_syn_with_an_old_timestamp_and_old_sequence_number_is_not_recycled() {
    let mut f = conn_time_wait_with(Config::default());
    let mut syn = seg(Flags::SYN, irs(0), Seq(0), b"");
    syn.options.timestamps = Some((PEER_TS_BASE - 10_000, 0));
    assert_eq!(f.inject(&syn), Disposition::Consumed);
    assert_eq!(f.conn.state(), State::TimeWait);
}

// ----- the ACK of a FIN that moves to CLOSE_WAIT (Config::delayed_fin_ack) -----------
//
// Linux's tcp_fin() schedules that ACK and enters pingpong mode: it waits for the
// delayed-ACK timer (40 ms), so an application that closes at once on end-of-file
// sends its FIN with it (FIN, FIN+ACK, ACK: the three-way close of Linux captures).
// FIN_WAIT_1 and FIN_WAIT_2 ACK a FIN at once; FreeBSD ACKs every FIN at once.

/// ESTABLISHED with Linux's defaults (timestamps on), the peer's FIN (IRS+1) just in.
fn fin_arrived() -> Fixture {
    let mut f = conn_established_with(Config::default());
    f.advance(ms(5));
    f.inject(&f.seg(Flags::FIN | Flags::ACK, irs(1), iss(1), b""));
    assert_eq!(
        f.state_changes(),
        vec![(State::Established, State::CloseWait, Reason::RcvFin)]
    );
    f
}

#[test]
fn fin_in_established_is_acked_by_the_fin_of_an_application_that_closes_at_once() {
    let mut f = fin_arrived();
    let t0 = f.now;
    f.expect_nothing();
    assert_eq!(f.timer(Timer::DelayedAck), t0 + ms(40));
    // The application reads end-of-file and closes 10 ms later: reading sends nothing.
    f.advance(ms(10));
    assert!(f.read_all().is_empty());
    assert!(f.conn.peer_closed());
    f.expect_nothing();
    close(&mut f);
    // One FIN+ACK that acknowledges the peer's FIN; the delayed ACK is cancelled.
    let fin = f.expect_one();
    assert_eq!(
        (fin.flags, fin.seq, fin.ack, fin.payload.len()),
        (Flags::FIN | Flags::ACK, iss(1), irs(2), 0)
    );
    assert_eq!(f.conn.state(), State::LastAck);
    assert_eq!(f.conn.timer(Timer::DelayedAck), None);
    // Past the old deadline the only timer guards our FIN (the tail loss probe, which
    // stands in for the retransmission timer, as on Linux): no pure ACK.
    f.run_until(t0 + ms(100));
    f.expect_nothing();
    assert_eq!(f.conn.timer(Timer::Retransmit), None);
    assert_eq!(f.conn.poll_timeout(), f.conn.timer(Timer::LossProbe));
    // The peer's ACK of our FIN ends it: three segments in all.
    f.inject(&f.seg(Flags::ACK, irs(2), iss(2), b""));
    assert_eq!(f.conn.state(), State::Closed);
    f.expect_nothing();
    assert_eq!(f.cx.delayed_acks, 0);
}

#[test]
fn shutdown_write_within_the_delay_also_carries_the_ack_of_the_fin() {
    let mut f = fin_arrived();
    f.expect_nothing();
    f.advance(ms(39));
    f.conn.shutdown(Shutdown::Write);
    let fin = f.expect_one();
    assert_eq!(
        (fin.flags, fin.seq, fin.ack),
        (Flags::FIN | Flags::ACK, iss(1), irs(2))
    );
    assert_eq!(f.conn.timer(Timer::DelayedAck), None);
    assert_eq!(f.conn.state(), State::LastAck);
}

#[test]
fn data_sent_within_the_delay_carries_the_ack_of_the_fin() {
    let mut f = fin_arrived();
    f.expect_nothing();
    f.advance(ms(20));
    f.send(b"last words");
    let d = f.expect_one();
    assert_eq!(
        (d.seq, d.ack, &d.payload[..]),
        (iss(1), irs(2), &b"last words"[..])
    );
    assert_eq!(f.conn.timer(Timer::DelayedAck), None);
    f.run_until(f.now + ms(50));
    f.expect_nothing();
}

#[test]
fn fin_in_established_unanswered_is_acked_once_at_the_delayed_ack_deadline() {
    let mut f = fin_arrived();
    let t0 = f.now;
    f.expect_nothing();
    // Reading end-of-file and shutting down reading do not hurry the ACK.
    f.advance(ms(10));
    assert!(f.read_all().is_empty());
    f.conn.shutdown(Shutdown::Read);
    f.expect_nothing();
    f.run_until(t0 + ms(39));
    f.expect_nothing();
    assert_eq!(f.fire_next(), t0 + ms(40));
    let ack = f.expect_one();
    assert!(ack.is_pure_ack());
    assert_eq!((ack.seq, ack.ack), (iss(1), irs(2)));
    assert_eq!(f.cx.delayed_acks, 1);
    // Nothing else is due: the application holds CLOSE_WAIT as long as it likes.
    assert_eq!(f.conn.poll_timeout(), None);
    f.advance(secs(5));
    f.expect_nothing();
    // Its close() later sends the FIN alone: the four-way close.
    close(&mut f);
    let fin = f.expect_one();
    assert_eq!(
        (fin.flags, fin.seq, fin.ack),
        (Flags::FIN | Flags::ACK, iss(1), irs(2))
    );
}

#[test]
fn without_delayed_fin_ack_a_fin_in_established_is_acked_at_once() {
    let mut f = conn_established_with(Config {
        delayed_fin_ack: false,
        ..Config::default()
    });
    f.inject(&f.seg(Flags::FIN | Flags::ACK, irs(1), iss(1), b""));
    let ack = f.expect_one();
    assert!(ack.is_pure_ack());
    assert_eq!((ack.seq, ack.ack), (iss(1), irs(2)));
    assert_eq!(f.conn.state(), State::CloseWait);
    assert_eq!(f.conn.timer(Timer::DelayedAck), None);
    // close() at once then sends the FIN on its own: four segments, as FreeBSD does.
    close(&mut f);
    let fin = f.expect_one();
    assert_eq!(
        (fin.flags, fin.seq, fin.ack),
        (Flags::FIN | Flags::ACK, iss(1), irs(2))
    );
}

#[test]
fn fin_in_syn_received_is_acked_after_the_delay_too() {
    // The ACK that completes a passive open carries the peer's FIN: SYN_RECEIVED ->
    // ESTABLISHED -> CLOSE_WAIT, and the FIN's ACK waits as in ESTABLISHED.
    let mut f = conn_syn_received_with(Config::default());
    f.advance(RTT);
    f.inject(&f.seg(Flags::FIN | Flags::ACK, irs(1), iss(1), b""));
    assert_eq!(f.conn.state(), State::CloseWait);
    f.expect_nothing();
    let due = f.now + ms(40);
    assert_eq!(f.fire_next(), due);
    let ack = f.expect_one();
    assert_eq!((ack.flags, ack.ack), (Flags::ACK, irs(2)));
}

#[test]
fn fin_in_fin_wait_2_is_acked_at_once_by_default() {
    let mut f = conn_fin_wait_2_with(Config::default());
    f.inject(&f.seg(Flags::FIN | Flags::ACK, irs(1), iss(2), b""));
    let ack = f.expect_one();
    assert!(ack.is_pure_ack());
    assert_eq!((ack.seq, ack.ack), (iss(2), irs(2)));
    assert_eq!(f.conn.state(), State::TimeWait);
}

#[test]
fn fin_in_fin_wait_1_is_acked_at_once_by_default() {
    // Simultaneous close: the peer's FIN does not acknowledge ours (-> CLOSING).
    let mut f = conn_fin_wait_1_with(Config::default());
    f.inject(&f.seg(Flags::FIN | Flags::ACK, irs(1), iss(1), b""));
    let ack = f.expect_one();
    assert!(ack.is_pure_ack());
    assert_eq!((ack.seq, ack.ack), (iss(2), irs(2)));
    assert_eq!(f.conn.state(), State::Closing);
    // The peer's FIN with the ACK of ours (-> TIME_WAIT directly).
    let mut f = conn_fin_wait_1_with(Config::default());
    f.advance(RTT);
    f.inject(&f.seg(Flags::FIN | Flags::ACK, irs(1), iss(2), b""));
    let ack = f.expect_one();
    assert!(ack.is_pure_ack());
    assert_eq!((ack.seq, ack.ack), (iss(2), irs(2)));
    assert_eq!(f.conn.state(), State::TimeWait);
}

#[test]
fn a_retransmitted_fin_is_acked_at_once_even_while_the_first_ack_waits() {
    let mut f = fin_arrived();
    f.expect_nothing();
    f.advance(ms(20));
    f.inject(&f.seg(Flags::FIN | Flags::ACK, irs(1), iss(1), b""));
    let ack = f.expect_one();
    assert_eq!((ack.flags, ack.ack), (Flags::ACK, irs(2)));
    assert_eq!(f.conn.timer(Timer::DelayedAck), None);
}

#[test]
fn data_and_fin_in_one_segment_wait_even_in_quick_ack_mode() {
    // A fresh connection ACKs data at once (quick-ACK mode), but a FIN in the same
    // segment enters pingpong mode first, as in Linux: the ACK waits, and a reply
    // plus close() within the delay carries it.
    let mut f = conn_established_with(Config::default());
    f.inject(&f.seg(
        Flags::FIN | Flags::ACK | Flags::PSH,
        irs(1),
        iss(1),
        b"request",
    ));
    assert_eq!(f.conn.state(), State::CloseWait);
    f.expect_nothing();
    assert_eq!(f.read_all(), b"request");
    f.send(b"response");
    close(&mut f);
    let out = f.expect_one();
    assert_eq!(
        (out.flags, out.seq, out.ack, &out.payload[..]),
        (
            Flags::FIN | Flags::ACK | Flags::PSH,
            iss(1),
            irs(9),
            &b"response"[..]
        )
    );
    assert_eq!(f.conn.timer(Timer::DelayedAck), None);
}

#[test]
fn data_of_a_full_segment_and_fin_are_acked_at_once() {
    // More than one full segment unacknowledged, the FIN included (Linux's
    // __tcp_ack_snd_check): the ACK goes at once.
    let mut f = conn_established_with(Config::default());
    let data = [7u8; 1460];
    f.inject(&f.seg(Flags::FIN | Flags::ACK, irs(1), iss(1), &data));
    let ack = f.expect_one();
    assert!(ack.is_pure_ack());
    assert_eq!(ack.ack, irs(1462));
    assert_eq!(f.conn.state(), State::CloseWait);
}

#[test]
fn a_fin_that_closes_a_hole_is_acked_at_once() {
    // The FIN arrives beyond a gap (ACKed at once as out of order); the segment that
    // fills the gap delivers it, and filling a hole is ACKed at once (RFC 5681 4.2).
    let mut f = conn_established_with(Config::default());
    f.inject(&f.seg(Flags::FIN | Flags::ACK, irs(6), iss(1), b"world"));
    let dup = f.expect_one();
    assert_eq!(dup.ack, irs(1));
    assert_eq!(f.conn.state(), State::Established);
    f.inject(&f.seg(Flags::ACK, irs(1), iss(1), b"hello"));
    assert_eq!(f.conn.state(), State::CloseWait);
    let ack = f.expect_one();
    assert_eq!((ack.flags, ack.ack), (Flags::ACK, irs(12)));
}

#[test]
fn a_fin_does_not_push_back_a_delayed_ack_already_running() {
    // Data is waiting for its delayed ACK (quick-ACK mode over); the FIN 30 ms later
    // keeps that deadline, and one ACK covers both.
    let mut f = conn_established_with(Config {
        quickack_segments: 0,
        ..Config::default()
    });
    let t0 = f.now;
    f.inject(&f.seg(Flags::ACK | Flags::PSH, irs(1), iss(1), b"data"));
    f.expect_nothing();
    assert_eq!(f.timer(Timer::DelayedAck), t0 + ms(40));
    f.advance(ms(30));
    f.inject(&f.seg(Flags::FIN | Flags::ACK, irs(5), iss(1), b""));
    f.expect_nothing();
    assert_eq!(f.timer(Timer::DelayedAck), t0 + ms(40));
    assert_eq!(f.fire_next(), t0 + ms(40));
    let ack = f.expect_one();
    assert_eq!((ack.flags, ack.ack), (Flags::ACK, irs(6)));
    assert_eq!(f.cx.delayed_acks, 1);
}
