//! Connection establishment: RFC 9293 section 3.5 and the SYN_SENT / SYN_RECEIVED
//! rules of section 3.10.7.3 and 3.10.7.4.

mod common;

use common::*;
use seqack::tcp::{Config, Disposition, Error, Event, Reason, State, Timer};
use seqack::wire::tcp::{Flags, Options};
use seqack::wire::Seq;
use seqack::Instant;

#[test]
fn active_open_sends_syn_with_seq_iss_and_only_mss_when_options_are_off() {
    let mut f = connecting(plain_config());
    assert_eq!(
        f.state_changes(),
        vec![(State::Closed, State::SynSent, Reason::Connect)]
    );
    assert_eq!(f.cx.active_opens, 1);

    let syn = f.expect_one();
    assert_eq!(syn.flags, Flags::SYN, "a bare SYN, no ACK");
    assert_eq!(syn.seq, ISS);
    assert_eq!(syn.ack, Seq(0), "the ACK field is zero when ACK is off");
    assert!(syn.payload.is_empty());
    assert_eq!(
        syn.options,
        Options {
            mss: Some(1460),
            ..Options::default()
        }
    );
    // A SYN's window is never scaled; Linux offers the largest MSS multiple below 64 KiB.
    assert_eq!(syn.window, 64240);
    // The SYN occupies ISS; SND.NXT = ISS+1 once it is sent.
    assert_eq!(f.conn.sequence().2, iss(1));
}

#[test]
fn active_open_arms_the_retransmission_timer_at_the_initial_rto_of_one_second() {
    let mut f = connecting(plain_config());
    f.transmit();
    // RFC 6298 2.1: RTO = 1 s until a round-trip time has been measured.
    assert_eq!(f.timer(Timer::Retransmit), Instant::from_secs(1));
    assert_eq!(f.conn.poll_timeout(), Some(Instant::from_secs(1)));
}

#[test]
fn active_open_syn_offers_mss_sack_timestamps_and_window_scale_by_default() {
    let mut f = connecting(Config::default());
    let syn = f.expect_one();
    assert_eq!(syn.options.mss, Some(1460));
    assert_eq!(syn.options.wscale, Some(7));
    assert!(syn.options.sack_permitted);
    // RFC 7323 3.2: TSecr is zero on a SYN; TSval is our clock (0 ms) plus the offset.
    assert_eq!(syn.options.timestamps, Some((TS_OFFSET, 0)));
}

#[test]
fn syn_ack_moves_syn_sent_to_established_and_acks_irs_plus_one() {
    let mut f = conn_syn_sent();
    f.advance(RTT);
    f.inject(&seg(Flags::SYN | Flags::ACK, IRS, iss(1), b""));

    assert_eq!(
        f.events(),
        vec![
            Event::StateChange {
                from: State::SynSent,
                to: State::Established,
                why: Reason::RcvSynAck
            },
            Event::Connected,
        ]
    );
    // The SYN consumed one sequence number on each side.
    let ack = f.expect_one();
    assert_eq!((ack.flags, ack.seq, ack.ack), (Flags::ACK, iss(1), irs(1)));
    assert_eq!(f.conn.sequence(), (ISS, iss(1), iss(1), IRS, irs(1)));
    assert_eq!(
        f.conn.timer(Timer::Retransmit),
        None,
        "nothing left to retransmit"
    );
    // The SYN was not retransmitted, so its round trip is a valid sample (RFC 6298 2.2).
    assert_eq!(f.conn.rtt().srtt(), Some(RTT));
    // The peer's window from the SYN-ACK (never scaled).
    assert_eq!(f.conn.snd_wnd(), u32::from(PEER_WINDOW));
}

#[test]
fn syn_ack_negotiates_timestamps_sack_and_window_scale_offered_by_both() {
    let f = conn_established_with(Config::default());
    assert_eq!(f.conn.negotiated(), (true, true, Some((PEER_WSCALE, 7))));
    // The peer's MSS less the 12 bytes of the timestamp option on every segment.
    assert_eq!(f.conn.smss(), u32::from(PEER_MSS) - 12);
}

#[test]
fn final_ack_of_the_handshake_echoes_the_peer_timestamp_and_scales_its_window() {
    let cfg = Config::default();
    let mut f = conn_syn_sent_with(cfg.clone());
    f.advance(RTT);
    let peer_val = f.peer_tsval();
    let mut syn_ack = seg(Flags::SYN | Flags::ACK, IRS, iss(1), b"");
    syn_ack.options = peer_syn_options(&cfg, peer_val, TS_OFFSET);
    f.inject(&syn_ack);
    let ack = f.expect_one();
    assert_eq!((ack.flags, ack.seq, ack.ack), (Flags::ACK, iss(1), irs(1)));
    // RFC 7323 4.3: TSecr echoes the peer's TSval; our TSval is 100 ms later.
    assert_eq!(ack.options.timestamps, Some((TS_OFFSET + 100, peer_val)));
    // RFC 7323 2.3: once scaling is in force, the field is the window shifted right by
    // our shift (7): a 256 KiB buffer is advertised as 2048.
    assert_eq!(u32::from(ack.window) << 7, cfg.recv_buffer as u32);
    assert!(
        ack.options.mss.is_none() && ack.options.wscale.is_none() && !ack.options.sack_permitted
    );
}

#[test]
fn syn_ack_with_timestamps_takes_its_rtt_sample_from_the_echo() {
    let f = conn_established_with(Config::default());
    assert_eq!(f.conn.rtt().srtt(), Some(RTT));
}

#[test]
fn passive_open_sends_syn_ack_and_the_ack_of_syn_establishes() {
    let syn = seg(Flags::SYN, IRS, Seq(0), b"");
    let mut f = accepted(plain_config(), &syn);
    assert_eq!(f.cx.passive_opens, 1);
    assert_eq!(
        f.state_changes(),
        vec![(State::Listen, State::SynReceived, Reason::RcvSyn)]
    );

    let syn_ack = f.expect_one();
    assert_eq!(syn_ack.flags, Flags::SYN | Flags::ACK);
    assert_eq!((syn_ack.seq, syn_ack.ack), (ISS, irs(1)));
    assert_eq!(syn_ack.options.mss, Some(1460));
    assert_eq!(f.timer(Timer::Retransmit), Instant::from_secs(1));

    f.advance(RTT);
    f.inject(&seg(Flags::ACK, irs(1), iss(1), b""));
    assert_eq!(
        f.events(),
        vec![
            Event::StateChange {
                from: State::SynReceived,
                to: State::Established,
                why: Reason::RcvAckOfSyn
            },
            Event::Connected,
        ]
    );
    f.expect_nothing();
    assert_eq!(f.conn.sequence(), (ISS, iss(1), iss(1), IRS, irs(1)));
    assert_eq!(f.conn.timer(Timer::Retransmit), None);
    assert_eq!(f.conn.rtt().srtt(), Some(RTT));
}

#[test]
fn syn_ack_offers_only_the_options_the_syn_carried() {
    // Everything enabled locally; the peer's SYN carries only an MSS.
    let mut syn = seg(Flags::SYN, IRS, Seq(0), b"");
    syn.options.mss = Some(1000);
    let mut f = accepted(Config::default(), &syn);
    let syn_ack = f.expect_one();
    assert_eq!(
        syn_ack.options,
        Options {
            mss: Some(1460),
            ..Options::default()
        }
    );
    assert_eq!(f.conn.negotiated(), (false, false, None));
    // We send at most the peer's MSS.
    assert_eq!(f.conn.smss(), 1000);
}

/// FreeBSD's TCP_NOOPT: no MSS, window scale, SACK or timestamps offered.
fn no_options() -> Config {
    Config {
        mss_option: false,
        timestamps: false,
        sack: false,
        wscale: None,
        ..Config::default()
    }
}

/// A peer's SYN options offering everything, with an MSS of 1000.
fn offer_everything() -> Options {
    Options {
        mss: Some(1000),
        wscale: Some(7),
        sack_permitted: true,
        timestamps: Some((4242, 0)),
        ..Options::default()
    }
}

#[test]
fn without_options_the_syn_is_bare_and_the_peers_mss_still_counts() {
    let mut f = connecting(no_options());
    let syn = f.expect_one();
    assert_eq!(syn.flags, Flags::SYN);
    assert_eq!(syn.options, Options::default(), "no option at all");
    // The peer offers everything; only its MSS is taken (nothing else was offered).
    let mut syn_ack = seg(Flags::SYN | Flags::ACK, IRS, iss(1), b"");
    syn_ack.options = offer_everything();
    f.inject(&syn_ack);
    let ack = f.expect_one();
    assert_eq!(ack.options, Options::default());
    assert_eq!(f.conn.state(), State::Established);
    assert_eq!(f.conn.negotiated(), (false, false, None));
    assert_eq!(f.conn.smss(), 1000);
}

#[test]
fn without_options_the_syn_ack_is_bare_whatever_the_syn_offered() {
    let mut syn = seg(Flags::SYN, IRS, Seq(0), b"");
    syn.options = offer_everything();
    let mut f = accepted(no_options(), &syn);
    let syn_ack = f.expect_one();
    assert_eq!(syn_ack.flags, Flags::SYN | Flags::ACK);
    assert_eq!(syn_ack.options, Options::default());
    assert_eq!(f.conn.negotiated(), (false, false, None));
    assert_eq!(f.conn.smss(), 1000);
    // And with the MSS option alone left on, the SYN-ACK carries just that.
    let mut f = accepted(
        Config {
            mss_option: true,
            ..no_options()
        },
        &syn,
    );
    let syn_ack = f.expect_one();
    assert_eq!(
        syn_ack.options,
        Options {
            mss: Some(1460),
            ..Options::default()
        }
    );
}

#[test]
fn syn_ack_echoes_the_timestamp_of_the_syn() {
    let mut syn = seg(Flags::SYN, IRS, Seq(0), b"");
    syn.options = Options {
        mss: Some(1460),
        timestamps: Some((4242, 0)),
        ..Options::default()
    };
    let mut f = accepted(Config::default(), &syn);
    let syn_ack = f.expect_one();
    assert_eq!(syn_ack.options.timestamps, Some((TS_OFFSET, 4242)));
    assert!(!syn_ack.options.sack_permitted && syn_ack.options.wscale.is_none());
}

#[test]
fn simultaneous_open_bare_syn_moves_syn_sent_to_syn_received_and_resends_syn_with_ack() {
    let mut f = conn_syn_sent();
    f.advance(ms(10));
    f.inject(&seg(Flags::SYN, IRS, Seq(0), b""));
    assert_eq!(
        f.state_changes(),
        vec![(State::SynSent, State::SynReceived, Reason::RcvSyn)]
    );

    // RFC 9293 3.10.7.3: <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>, the same ISS as before.
    let syn_ack = f.expect_one();
    assert_eq!(syn_ack.flags, Flags::SYN | Flags::ACK);
    assert_eq!((syn_ack.seq, syn_ack.ack), (ISS, irs(1)));

    f.advance(RTT);
    f.inject(&seg(Flags::ACK, irs(1), iss(1), b""));
    assert_eq!(
        f.events(),
        vec![
            Event::StateChange {
                from: State::SynReceived,
                to: State::Established,
                why: Reason::RcvAckOfSyn
            },
            Event::Connected,
        ]
    );
    assert_eq!(f.conn.sequence(), (ISS, iss(1), iss(1), IRS, irs(1)));
}

#[test]
fn data_on_a_syn_in_syn_sent_is_dropped_or_with_queue_syn_text_delivered_once_established() {
    for queue in [false, true] {
        let mut f = conn_syn_sent_with(Config {
            queue_syn_text: queue,
            ..plain_config()
        });
        f.advance(ms(10));
        f.inject(&seg(Flags::SYN, IRS, Seq(0), b"abc"));
        // Either way the SYN-ACK acknowledges the SYN alone: the data is not taken yet.
        let syn_ack = f.expect_one();
        assert_eq!(
            (syn_ack.flags, syn_ack.ack),
            (Flags::SYN | Flags::ACK, irs(1))
        );
        assert_eq!(f.conn.recv_queue(), 0, "nothing readable in SYN_RECEIVED");
        f.advance(RTT);
        // The peer's ACK comes after its data (it sent the data once, on its SYN).
        f.inject(&seg(Flags::ACK, irs(4), iss(1), b""));
        assert_eq!(f.conn.state(), State::Established);
        if queue {
            // RFC 9293 3.10.7.3: queued, and processed once ESTABLISHED.
            assert_eq!(f.read_all(), b"abc");
            assert_eq!(f.conn.sequence().4, irs(4));
        } else {
            // Linux: dropped; the peer has to send it again.
            assert_eq!(f.conn.recv_queue(), 0);
            assert_eq!(f.conn.sequence().4, irs(1));
        }
    }
}

#[test]
fn syn_sent_ack_above_snd_nxt_is_answered_with_rst_seq_seg_ack() {
    let mut f = conn_syn_sent();
    f.inject(&seg(Flags::ACK, irs(0), iss(500), b""));
    // RFC 9293 3.10.7.3 first: <SEQ=SEG.ACK><CTL=RST>.
    let rst = f.expect_one();
    assert_eq!((rst.flags, rst.seq), (Flags::RST, iss(500)));
    assert_eq!(f.conn.state(), State::SynSent);
    assert!(f.events().is_empty());
    assert_eq!(f.cx.out_rsts, 1);
}

#[test]
fn syn_sent_ack_of_iss_itself_is_unacceptable_and_gets_rst() {
    let mut f = conn_syn_sent();
    // SEG.ACK =< ISS: it acknowledges nothing we sent.
    f.inject(&seg(Flags::SYN | Flags::ACK, IRS, ISS, b""));
    let rst = f.expect_one();
    assert_eq!((rst.flags, rst.seq), (Flags::RST, ISS));
    assert_eq!(
        f.conn.state(),
        State::SynSent,
        "the SYN in that segment must not be taken"
    );
    assert_eq!(f.conn.sequence().3, Seq(0), "IRS not learned");
}

#[test]
fn syn_sent_rst_with_acceptable_ack_refuses_the_connection() {
    let mut f = conn_syn_sent();
    f.inject(&seg(Flags::RST | Flags::ACK, Seq(0), iss(1), b""));
    assert_eq!(
        f.events(),
        vec![
            Event::Error(Error::Refused),
            Event::StateChange {
                from: State::SynSent,
                to: State::Closed,
                why: Reason::RcvRst
            },
            Event::Closed,
        ]
    );
    assert_eq!(f.conn.error(), Some(Error::Refused));
    assert!(f.conn.is_closed());
    f.expect_nothing();
    assert_eq!(
        f.conn.poll_timeout(),
        None,
        "no SYN retransmission after the refusal"
    );
    assert_eq!(f.cx.attempt_fails, 1);
    // A closed connection does not take segments any more.
    assert_eq!(
        f.inject(&seg(Flags::ACK, irs(1), iss(1), b"")),
        Disposition::NoConnection
    );
}

#[test]
fn syn_sent_rst_without_ack_is_ignored() {
    let mut f = conn_syn_sent();
    f.inject(&seg(Flags::RST, IRS, Seq(0), b""));
    assert_eq!(f.conn.state(), State::SynSent);
    assert!(f.events().is_empty());
    f.expect_nothing();
    assert_eq!(
        f.timer(Timer::Retransmit),
        Instant::from_secs(1),
        "the SYN is still being retried"
    );
}

#[test]
fn syn_sent_rst_with_unacceptable_ack_is_dropped_without_reply() {
    let mut f = conn_syn_sent();
    f.inject(&seg(Flags::RST | Flags::ACK, Seq(0), iss(9), b""));
    // "send a reset (unless the RST bit is set ...)": never answer an RST with an RST.
    f.expect_nothing();
    assert_eq!(f.conn.state(), State::SynSent);
    assert!(f.events().is_empty());
}

#[test]
fn syn_sent_ack_without_syn_is_dropped() {
    let mut f = conn_syn_sent();
    f.inject(&seg(Flags::ACK, IRS, iss(1), b""));
    f.expect_nothing();
    assert_eq!(f.conn.state(), State::SynSent);
    assert!(f.events().is_empty());
}

#[test]
fn syn_received_retransmitted_syn_resends_syn_ack() {
    let mut f = conn_syn_received();
    f.advance(ms(300));
    f.inject(&seg(Flags::SYN, IRS, Seq(0), b""));
    let syn_ack = f.expect_one();
    assert_eq!(syn_ack.flags, Flags::SYN | Flags::ACK);
    assert_eq!((syn_ack.seq, syn_ack.ack), (ISS, irs(1)));
    assert_eq!(f.conn.state(), State::SynReceived);
    assert!(f.events().is_empty());
    assert_eq!(f.cx.retrans_segs, 1);
}

#[test]
fn syn_received_ack_that_acknowledges_nothing_sent_gets_rst_seq_seg_ack() {
    let mut f = conn_syn_received();
    f.inject(&seg(Flags::ACK, irs(1), iss(7), b""));
    // RFC 9293 3.10.7.4 fifth, SYN-RECEIVED: <SEQ=SEG.ACK><CTL=RST>.
    let rst = f.expect_one();
    assert_eq!((rst.flags, rst.seq), (Flags::RST, iss(7)));
    assert_eq!(f.conn.state(), State::SynReceived);
}

#[test]
fn data_written_in_syn_sent_is_sent_once_the_handshake_completes() {
    let mut f = conn_syn_sent();
    f.send(b"early");
    f.expect_nothing();
    f.advance(RTT);
    f.inject(&seg(Flags::SYN | Flags::ACK, IRS, iss(1), b""));
    let sent = f.transmit();
    assert!(sent.iter().all(|s| s.flags.ack() && s.ack == irs(1)));
    let data: Vec<_> = sent.iter().filter(|s| !s.payload.is_empty()).collect();
    assert_eq!(data.len(), 1);
    assert_eq!((data[0].seq, &data[0].payload[..]), (iss(1), &b"early"[..]));
}

#[test]
fn close_in_syn_sent_deletes_the_connection_without_sending() {
    let mut f = conn_syn_sent();
    let now = f.now;
    f.conn.close(now, &mut f.cx);
    // RFC 9293 3.10.4, SYN-SENT: delete the TCB.
    assert_eq!(
        f.state_changes(),
        vec![(State::SynSent, State::Closed, Reason::Close)]
    );
    f.expect_nothing();
    assert_eq!(f.conn.poll_timeout(), None);
}

#[test]
fn simultaneous_open_crossing_syn_ack_establishes() {
    // RFC 9293 figure 7: both sides sent SYN, both answered with SYN-ACK. The peer's
    // SYN-ACK repeats its SYN (already taken) and acknowledges ours (line 6).
    let mut f = conn_syn_sent();
    f.inject(&seg(Flags::SYN, IRS, Seq(0), b""));
    assert_eq!(f.expect_one().flags, Flags::SYN | Flags::ACK);
    f.events();
    f.advance(RTT);
    f.inject(&seg(Flags::SYN | Flags::ACK, IRS, iss(1), b""));
    assert_eq!(
        f.events(),
        vec![
            Event::StateChange {
                from: State::SynReceived,
                to: State::Established,
                why: Reason::RcvAckOfSyn
            },
            Event::Connected,
        ]
    );
    assert_eq!(f.conn.sequence(), (ISS, iss(1), iss(1), IRS, irs(1)));
    assert_eq!(f.conn.timer(Timer::Retransmit), None);
    // Nothing is owed: the SYN in it was a duplicate, which at most earns a bare ACK.
    for s in f.transmit() {
        assert!(
            s.is_pure_ack() && s.seq == iss(1) && s.ack == irs(1),
            "{s:?}"
        );
    }
}

#[test]
fn syn_ack_in_passive_syn_received_is_not_taken_as_an_ack_of_syn() {
    // Only an active opener can have a SYN-ACK crossing its own.
    let mut f = conn_syn_received();
    f.inject(&seg(Flags::SYN | Flags::ACK, IRS, iss(1), b""));
    assert_eq!(f.conn.state(), State::SynReceived);
}

#[test]
fn syn_ack_carrying_data_delivers_it_and_acks_past_it() {
    let mut f = conn_syn_sent();
    f.advance(RTT);
    f.inject(&seg(Flags::SYN | Flags::ACK, IRS, iss(1), b"early data"));
    assert_eq!(f.conn.state(), State::Established);
    // The data starts after the SYN: IRS+1 .. IRS+10.
    let sent = f.transmit();
    assert_eq!(sent.last().map(|s| s.ack), Some(irs(11)));
    assert_eq!(f.read_all(), b"early data");
}

#[test]
fn ack_of_syn_carrying_data_establishes_and_delivers_it() {
    let mut f = conn_syn_received();
    f.advance(RTT);
    f.inject(&seg(Flags::ACK | Flags::PSH, irs(1), iss(1), b"GET /"));
    assert_eq!(f.conn.state(), State::Established);
    assert_eq!(f.expect_one().ack, irs(6));
    assert_eq!(f.read_all(), b"GET /");
}

#[test]
fn shutdown_write_in_syn_received_sends_fin_and_the_rfc_table_allows_it() {
    // Found by the `stack` fuzz target: after a simultaneous open, shutdown(SHUT_WR) in
    // SYN_RECEIVED moves to FIN_WAIT_1 (RFC 9293 3.10.4 CLOSE in SYN-RECEIVED, and
    // Linux's tcp_shutdown -> tcp_close_state), which the RFC table refused.
    let mut f = conn_syn_sent();
    f.inject(&seg(Flags::SYN, IRS, Seq(0), b""));
    assert_eq!(f.expect_one().flags, Flags::SYN | Flags::ACK);
    f.events();
    f.conn.shutdown(seqack::tcp::Shutdown::Write);
    let changes = f.state_changes();
    assert_eq!(
        changes,
        vec![(State::SynReceived, State::FinWait1, Reason::ShutdownWrite)]
    );
    for &(from, to, why) in &changes {
        assert!(
            seqack::tcp::rfc9293_allows(from, to, why),
            "{from:?} -> {to:?} ({why:?})"
        );
    }
}
