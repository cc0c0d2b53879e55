//! Data transfer in ESTABLISHED: reassembly, window edges, the ACK policy (RFC 9293
//! 3.8.6.3, RFC 5681 4.2), zero windows (3.8.6.1) and Nagle (3.7.4).

mod common;

use common::*;
use seqack::tcp::{Config, Connection, Event, RecvError, State, Timer};
use seqack::wire::tcp::{Flags, SackBlock, Segment};
use seqack::wire::Seq;
use seqack::{Counters, Instant};
use std::sync::Arc;

/// Delayed ACKs from the first segment: no quick-ACK start.
fn no_quickack() -> Config {
    Config {
        quickack_segments: 0,
        ..plain_config()
    }
}

fn with_window(s: Segment<'_>, window: u16) -> Segment<'_> {
    Segment { window, ..s }
}

#[test]
fn in_order_data_is_acked_and_delivered_by_recv() {
    let mut f = conn_established();
    f.inject(&seg(Flags::ACK | Flags::PSH, irs(1), iss(1), b"hello"));
    let ack = f.expect_one();
    assert_eq!((ack.flags, ack.seq, ack.ack), (Flags::ACK, iss(1), irs(6)));
    assert_eq!(f.events(), vec![Event::Readable]);
    assert_eq!(f.conn.recv_queue(), 5);
    assert_eq!(f.read_all(), b"hello");
    let mut buf = [0u8; 8];
    assert_eq!(f.conn.recv(&mut buf), Err(RecvError::WouldBlock));
}

#[test]
fn in_order_data_takes_header_prediction_and_anything_else_the_full_path() {
    let mut f = conn_established_with(no_quickack());
    let window = seg(Flags::ACK, irs(1), iss(1), b"").window;
    // In-order data with the ACK and window already known: the fast path.
    f.inject(&seg(Flags::ACK, irs(1), iss(1), b"abc"));
    f.inject(&seg(Flags::ACK | Flags::PSH, irs(4), iss(1), b"def"));
    assert_eq!(f.cx.hp_hits, 2);
    // A new window, data out of order, a FIN: the full path, each with its effect.
    f.inject(&with_window(
        seg(Flags::ACK, irs(7), iss(1), b"ghi"),
        window - 1,
    ));
    assert_eq!(f.conn.snd_wnd(), u32::from(window - 1));
    f.inject(&seg(Flags::ACK, irs(13), iss(1), b"mno"));
    assert_eq!(f.cx.ofo_queue, 1);
    // In order again, with the window the last segment brought: the fast path, which
    // fills the hole as the full path would.
    f.inject(&seg(Flags::ACK, irs(10), iss(1), b"jkl"));
    assert_eq!(f.cx.hp_hits, 3);
    assert_eq!(f.conn.recv_queue(), 15);
    f.inject(&seg(Flags::ACK | Flags::FIN, irs(16), iss(1), b""));
    assert_eq!(f.conn.state(), State::CloseWait);
    assert_eq!(f.cx.hp_hits, 3);
    assert_eq!(f.read_all(), b"abcdefghijklmno");
}

#[test]
fn out_of_order_segment_is_acked_at_once_with_the_old_ack_and_held() {
    let mut f = conn_established_with(no_quickack());
    f.inject(&seg(Flags::ACK, irs(6), iss(1), b"world"));
    // RFC 5681 4.2: an out-of-order segment is acknowledged immediately (a duplicate
    // ACK telling the sender where the hole starts), even with delayed ACKs on.
    let dup = f.expect_one();
    assert_eq!((dup.flags, dup.ack), (Flags::ACK, irs(1)));
    assert_eq!(f.conn.recv_queue(), 0);
    assert_eq!(f.read_all(), b"");
    assert_eq!(f.cx.ofo_queue, 1);

    // The segment that fills the hole is also acknowledged at once, covering both.
    f.inject(&seg(Flags::ACK, irs(1), iss(1), b"hello"));
    let ack = f.expect_one();
    assert_eq!(ack.ack, irs(11));
    assert_eq!(f.read_all(), b"helloworld");
}

#[test]
fn segments_arriving_in_reverse_order_are_reassembled() {
    let mut f = conn_established();
    let text = b"abcdefghijkl";
    for i in (0..4u32).rev() {
        let chunk = &text[(i * 3) as usize..(i * 3 + 3) as usize];
        f.inject(&seg(Flags::ACK, irs(1 + i * 3), iss(1), chunk));
        let ack = f.expect_one();
        let want = if i == 0 { irs(13) } else { irs(1) };
        assert_eq!(ack.ack, want, "after the chunk at offset {}", i * 3);
    }
    assert_eq!(f.read_all(), text);
}

#[test]
fn duplicate_segment_is_acked_and_not_delivered_twice() {
    let mut f = conn_established_with(no_quickack());
    f.inject(&seg(Flags::ACK, irs(1), iss(1), b"hello"));
    f.transmit();
    f.inject(&seg(Flags::ACK, irs(1), iss(1), b"hello"));
    // RFC 9293 3.10.7.4 first check: wholly old, so not acceptable: send an ACK.
    let ack = f.expect_one();
    assert_eq!((ack.flags, ack.seq, ack.ack), (Flags::ACK, iss(1), irs(6)));
    assert_eq!(f.read_all(), b"hello");
}

#[test]
fn overlapping_segment_delivers_only_the_bytes_not_yet_received() {
    let mut f = conn_established();
    f.inject(&seg(Flags::ACK, irs(1), iss(1), b"hello"));
    f.transmit();
    // Starts two bytes back ("llo" again) and carries "wor" beyond RCV.NXT.
    f.inject(&seg(Flags::ACK, irs(3), iss(1), b"llowor"));
    assert_eq!(f.expect_one().ack, irs(9));
    assert_eq!(f.read_all(), b"hellowor");
}

#[test]
fn segment_reaching_past_the_window_is_trimmed_at_the_right_edge() {
    let mut f = conn_established_with(Config {
        recv_buffer: 100,
        ..plain_config()
    });
    let data: Vec<u8> = (0..150u8).collect();
    f.inject(&seg(Flags::ACK, irs(1), iss(1), &data));
    // Only the 100 bytes inside the window are taken; the window is then closed.
    let ack = f.expect_one();
    assert_eq!((ack.ack, ack.window), (irs(101), 0));
    assert_eq!(f.read_all(), &data[..100]);
}

#[test]
fn segment_wholly_beyond_the_window_is_dropped_and_acked() {
    let mut f = conn_established_with(Config {
        recv_buffer: 100,
        ..plain_config()
    });
    f.inject(&seg(Flags::ACK, irs(101), iss(1), b"late"));
    let ack = f.expect_one();
    assert_eq!((ack.flags, ack.ack), (Flags::ACK, irs(1)));
    assert_eq!(f.conn.recv_queue(), 0);
    f.inject(&seg(Flags::ACK, irs(1), iss(1), b"x"));
    f.transmit();
    assert_eq!(
        f.read_all(),
        b"x",
        "nothing of the dropped segment was kept"
    );
}

#[test]
fn zero_window_receiver_accepts_only_a_segment_at_rcv_nxt_without_data() {
    let mut f = conn_established_with(Config {
        recv_buffer: 10,
        ..plain_config()
    });
    f.inject(&seg(Flags::ACK, irs(1), iss(1), b"0123456789"));
    assert_eq!(f.expect_one().window, 0);
    // RFC 9293 3.10.7.4: with RCV.WND = 0, a segment with data is not acceptable (but
    // its ACK would be processed, here there is none to process) and is answered.
    f.inject(&seg(Flags::ACK, irs(11), iss(1), b"more"));
    let ack = f.expect_one();
    assert_eq!((ack.ack, ack.window), (irs(11), 0));
    assert_eq!(f.read_all(), b"0123456789");
}

#[test]
fn single_segment_is_acked_by_the_delayed_ack_timer_after_40ms() {
    let mut f = conn_established_with(no_quickack());
    let t0 = f.now;
    f.inject(&seg(Flags::ACK, irs(1), iss(1), b"hello"));
    f.expect_nothing();
    assert_eq!(f.timer(Timer::DelayedAck), t0 + ms(40));

    assert_eq!(f.fire_next(), t0 + ms(40));
    let ack = f.expect_one();
    assert_eq!((ack.flags, ack.ack), (Flags::ACK, irs(6)));
    assert_eq!(f.cx.delayed_acks, 1);
    assert_eq!(f.conn.timer(Timer::DelayedAck), None);
}

#[test]
fn quickack_mode_acknowledges_the_first_segments_at_once() {
    let cfg = Config {
        quickack_segments: 2,
        ..plain_config()
    };
    let mut f = conn_established_with(cfg);
    for (i, chunk) in [b"ab", b"cd"].iter().enumerate() {
        f.inject(&seg(Flags::ACK, irs(1 + 2 * i as u32), iss(1), *chunk));
        assert_eq!(f.expect_one().ack, irs(3 + 2 * i as u32));
    }
    // Quick-ACK budget used up: the third small segment waits for the timer.
    f.inject(&seg(Flags::ACK, irs(5), iss(1), b"ef"));
    f.expect_nothing();
    assert!(f.conn.timer(Timer::DelayedAck).is_some());
}

#[test]
fn every_second_full_sized_segment_is_acked_at_once() {
    let mut f = conn_established_with(no_quickack());
    let full = vec![7u8; 1460];
    f.inject(&seg(Flags::ACK, irs(1), iss(1), &full));
    f.expect_nothing();
    f.inject(&seg(Flags::ACK, irs(1461), iss(1), &full));
    // RFC 9293 3.8.6.3 / RFC 5681 4.2: an ACK for at least every second full segment.
    let ack = f.expect_one();
    assert_eq!(ack.ack, irs(2921));
    assert_eq!(
        f.conn.timer(Timer::DelayedAck),
        None,
        "the ACK covered everything"
    );
}

#[test]
fn small_segments_wait_for_the_timer_unless_every_second_segment_is_acked() {
    // Linux's rule (the default): two small segments are less than two full ones, so
    // both wait for the delayed-ACK timer.
    let mut f = conn_established_with(no_quickack());
    f.inject(&seg(Flags::ACK, irs(1), iss(1), b"a"));
    f.inject(&seg(Flags::ACK, irs(2), iss(1), b"bc"));
    f.expect_nothing();
    assert!(f.conn.timer(Timer::DelayedAck).is_some());

    // FreeBSD's: one delayed ACK at a time, so the second segment is ACKed at once,
    // and the count starts again after that ACK.
    let mut f = conn_established_with(Config {
        ack_every_second_segment: true,
        ..no_quickack()
    });
    f.inject(&seg(Flags::ACK, irs(1), iss(1), b"a"));
    f.expect_nothing();
    f.inject(&seg(Flags::ACK, irs(2), iss(1), b"bc"));
    assert_eq!(f.expect_one().ack, irs(4));
    assert_eq!(f.conn.timer(Timer::DelayedAck), None);
    f.inject(&seg(Flags::ACK, irs(4), iss(1), b"d"));
    f.expect_nothing();
    assert!(f.conn.timer(Timer::DelayedAck).is_some());
}

#[test]
fn zero_window_arms_the_persist_timer_and_the_probe_is_seq_snd_una_minus_one() {
    let mut f = conn_established();
    f.inject(&with_window(seg(Flags::ACK, irs(1), iss(1), b""), 0));
    assert_eq!(f.conn.snd_wnd(), 0);
    f.send(b"x");
    // Nothing may be sent into a zero window...
    f.expect_nothing();
    // ...but the persist timer must run (RFC 9293 3.8.6.1), at the RTO: the handshake
    // measured 100 ms, so RTO = SRTT + max(200 ms, 4 * RTTVAR) = 300 ms (RFC 6298 2.2).
    let t0 = f.now;
    assert_eq!(f.timer(Timer::Persist), t0 + ms(300));

    assert_eq!(f.fire_next(), t0 + ms(300));
    let probe = f.expect_one();
    // Linux's probe: an ACK one below SND.UNA, which forces the peer to answer.
    assert_eq!(
        (probe.flags, probe.seq, probe.ack),
        (Flags::ACK, ISS, irs(1))
    );
    assert!(probe.payload.is_empty());
    assert_eq!(f.cx.win_probes, 1);
    // The next probe backs off: twice the interval.
    assert_eq!(f.timer(Timer::Persist), t0 + ms(300 + 600));
}

#[test]
fn window_update_stops_the_persist_timer_and_releases_the_data() {
    let mut f = conn_established();
    f.inject(&with_window(seg(Flags::ACK, irs(1), iss(1), b""), 0));
    f.send(b"xyz");
    f.expect_nothing();
    f.fire_next();
    f.transmit(); // the probe
    f.advance(RTT);
    f.inject(&with_window(seg(Flags::ACK, irs(1), iss(1), b""), 1000));
    assert_eq!(f.conn.timer(Timer::Persist), None);
    let data = f.expect_one();
    assert_eq!((data.seq, &data.payload[..]), (iss(1), &b"xyz"[..]));
    assert!(f.conn.timer(Timer::Retransmit).is_some());
}

#[test]
fn send_is_limited_by_the_peers_window() {
    let mut f = conn_established();
    // Two full segments' worth (a window of less than one segment is a silly one, see
    // the SWS tests below).
    f.inject(&with_window(seg(Flags::ACK, irs(1), iss(1), b""), 2920));
    f.send(&[1u8; 3000]);
    let sent = f.transmit();
    let bytes: usize = sent.iter().map(|s| s.payload.len()).sum();
    assert_eq!(bytes, 2920, "exactly the offered window: {sent:?}");
    assert_eq!(sent[0].seq, iss(1));
}

#[test]
fn a_window_reopening_to_a_silly_size_waits_for_the_persist_probe() {
    // RFC 1122 4.2.3.4 / RFC 9293 3.8.6.2.1, sender side: the peer offered 64240 bytes
    // in its SYN-ACK, so a window of 128 bytes (less than a segment, less than half the
    // largest window) does not release queued data at once, even with nothing in
    // flight: the persist timer goes on and its probe carries what the window allows
    // (Linux: tcp_snd_wnd_test, tcp_ack_probe, tcp_write_wakeup).
    let mut f = conn_established();
    f.inject(&with_window(seg(Flags::ACK, irs(1), iss(1), b""), 0));
    f.send(&[5u8; 1000]);
    f.expect_nothing();
    assert_eq!(f.timer(Timer::Persist), f.now + ms(300));

    f.advance(RTT);
    f.inject(&with_window(seg(Flags::ACK, irs(1), iss(1), b""), 128));
    f.expect_nothing();
    // The update restarts the persist timer (backoff unchanged: none yet).
    let t = f.now + ms(300);
    assert_eq!(f.timer(Timer::Persist), t);

    assert_eq!(f.fire_next(), t);
    let probe = f.expect_one();
    assert_eq!(
        (probe.flags, probe.seq, probe.payload.len()),
        (Flags::ACK | Flags::PSH, iss(1), 128),
        "the probe is the data the window allows, pushed"
    );
    assert_eq!(
        f.cx.win_probes, 0,
        "not a zero-window probe (TcpExtTCPWinProbe)"
    );
    // Data in flight: the retransmission timer takes over, with no backoff.
    assert_eq!(f.conn.timer(Timer::Persist), None);
    assert_eq!(f.timer(Timer::Retransmit), t + ms(300));

    // The window opens for real: the rest goes at once.
    f.advance(RTT);
    f.inject(&seg(Flags::ACK, irs(1), iss(129), b""));
    let rest = f.expect_one();
    assert_eq!((rest.seq, rest.payload.len()), (iss(129), 872));
    assert!(rest.flags.psh());
}

#[test]
fn a_small_window_that_is_half_the_largest_one_offered_is_used_at_once() {
    // RFC 1122 4.2.3.4 (3): at least Fs = 1/2 of the largest window the peer offered is
    // not a silly window. Our peer's largest window here is its SYN-ACK's 64240 bytes,
    // so this takes a peer whose window has always been small.
    let mut f = conn_syn_sent();
    f.advance(RTT);
    let mut syn_ack = with_window(seg(Flags::SYN | Flags::ACK, IRS, iss(1), b""), 1000);
    syn_ack.options = peer_syn_options(&plain_config(), 0, 0);
    f.inject(&syn_ack);
    f.transmit();
    f.send(&[6u8; 3000]);
    let first = f.expect_one();
    assert_eq!(first.payload.len(), 1000);
    // The window stays at 1000: a whole window is never silly.
    f.advance(RTT);
    f.inject(&with_window(seg(Flags::ACK, irs(1), iss(1001), b""), 1000));
    assert_eq!(f.expect_one().payload.len(), 1000);
    // 600 of the 1000 in flight acknowledged: 600 bytes of room, more than half the
    // largest window, go at once.
    f.advance(RTT);
    f.inject(&with_window(seg(Flags::ACK, irs(1), iss(1601), b""), 1000));
    let s = f.expect_one();
    assert_eq!((s.seq, s.payload.len()), (iss(2001), 600));
    // 400 more acknowledged: 400 bytes of room is less than half, so they wait for the
    // ACKs of the data in flight, with no persist timer.
    f.inject(&with_window(seg(Flags::ACK, irs(1), iss(2001), b""), 1000));
    f.expect_nothing();
    assert_eq!(f.conn.timer(Timer::Persist), None);
    f.inject(&with_window(seg(Flags::ACK, irs(1), iss(2601), b""), 1000));
    let s = f.expect_one();
    assert_eq!((s.seq, s.payload.len()), (iss(2601), 400));
}

#[test]
fn full_sized_segments_are_sent_back_to_back_up_to_the_window() {
    let mut f = conn_established();
    f.send(&[9u8; 4 * 1460]);
    let sent = f.transmit();
    assert_eq!(sent.len(), 4);
    for (i, s) in sent.iter().enumerate() {
        assert_eq!((s.seq, s.payload.len()), (iss(1 + 1460 * i as u32), 1460));
        assert_eq!(s.ack, irs(1));
    }
    assert!(
        sent[3].flags.psh(),
        "PSH on the segment that empties the buffer"
    );
}

#[test]
fn nagle_holds_a_second_small_segment_while_one_is_unacknowledged() {
    let mut f = conn_established();
    f.send(b"a");
    let first = f.expect_one();
    assert_eq!((first.seq, &first.payload[..]), (iss(1), &b"a"[..]));
    f.send(b"b");
    // RFC 9293 3.7.4: no new small segment while unacknowledged data is outstanding.
    f.expect_nothing();

    f.advance(RTT);
    f.inject(&seg(Flags::ACK, irs(1), iss(2), b""));
    let second = f.expect_one();
    assert_eq!((second.seq, &second.payload[..]), (iss(2), &b"b"[..]));
}

#[test]
fn nagle_sends_the_tail_of_a_write_with_the_full_segments_before_it() {
    // Minshall's variant (Linux: tcp_nagle_check, tcp_minshall_check): full segments in
    // flight do not hold a short one, only an unacknowledged short one does. A 2000-byte
    // write leaves as 1460 + 540 at once, not 1460 now and 540 one RTT later.
    let mut f = conn_established();
    f.send(&[4u8; 2000]);
    let sent = f.transmit();
    let shape: Vec<_> = sent
        .iter()
        .map(|s| (s.seq, s.payload.len(), s.flags.psh()))
        .collect();
    assert_eq!(shape, vec![(iss(1), 1460, false), (iss(1461), 540, true)]);
}

#[test]
fn nagle_does_not_hold_a_small_segment_behind_a_full_one() {
    let mut f = conn_established();
    f.send(&[4u8; 1460]);
    assert_eq!(f.expect_one().payload.len(), 1460);
    f.send(b"tail");
    let s = f.expect_one();
    assert_eq!((s.seq, &s.payload[..]), (iss(1461), &b"tail"[..]));
}

#[test]
fn nagle_holds_a_small_write_until_the_short_segment_before_it_is_acked() {
    let mut f = conn_established();
    f.send(&[4u8; 2000]);
    assert_eq!(f.transmit().len(), 2);
    // The 540-byte segment is short and unacknowledged: the next short one waits.
    f.send(&[5u8; 100]);
    f.expect_nothing();
    // An ACK of the full segment alone does not release it...
    f.advance(RTT);
    f.inject(&seg(Flags::ACK, irs(1), iss(1461), b""));
    f.expect_nothing();
    // ...the ACK of the short one does.
    f.inject(&seg(Flags::ACK, irs(1), iss(2001), b""));
    let s = f.expect_one();
    assert_eq!((s.seq, s.payload.len()), (iss(2001), 100));
    assert!(s.flags.psh());
}

#[test]
fn nodelay_holds_no_short_segment() {
    let mut f = conn_established();
    f.conn.sockopts_mut().nodelay = true;
    f.send(&[4u8; 2000]);
    assert_eq!(f.transmit().len(), 2);
    for i in 0..3u32 {
        f.send(&[5u8; 100]);
        let s = f.expect_one();
        assert_eq!((s.seq, s.payload.len()), (iss(2001 + 100 * i), 100));
    }
}

#[test]
fn nagle_does_not_hold_a_full_sized_segment() {
    let mut f = conn_established();
    f.send(b"a");
    f.transmit();
    f.send(&[2u8; 1461]);
    // One full segment goes; the one-byte tail waits for the ACK.
    let sent = f.expect_one();
    assert_eq!((sent.seq, sent.payload.len()), (iss(2), 1460));
}

#[test]
fn nodelay_sends_a_second_small_segment_at_once() {
    let mut f = conn_established();
    f.conn.sockopts_mut().nodelay = true;
    f.send(b"a");
    f.transmit();
    f.send(b"b");
    let second = f.expect_one();
    assert_eq!((second.seq, &second.payload[..]), (iss(2), &b"b"[..]));
}

#[test]
fn ack_of_sent_data_frees_the_send_buffer() {
    let mut f = conn_established();
    f.send(b"0123456789");
    f.transmit();
    assert_eq!(f.conn.send_queue(), 10);
    f.advance(RTT);
    f.inject(&seg(Flags::ACK, irs(1), iss(5), b""));
    assert_eq!(f.conn.send_queue(), 6, "four bytes acknowledged");
    assert!(
        f.conn.timer(Timer::Retransmit).is_some(),
        "six still in flight"
    );
    f.inject(&seg(Flags::ACK, irs(1), iss(11), b""));
    assert_eq!(f.conn.send_queue(), 0);
    assert_eq!(
        f.conn.timer(Timer::Retransmit),
        None,
        "RFC 6298 5.2: all data acknowledged"
    );
}

#[test]
fn fin_beyond_a_gap_is_taken_only_when_the_gap_fills() {
    let mut f = conn_established();
    f.inject(&seg(Flags::ACK | Flags::FIN, irs(6), iss(1), b"world"));
    assert_eq!(f.expect_one().ack, irs(1));
    assert_eq!(
        f.conn.state(),
        State::Established,
        "RFC 9293 3.10.7.4 eighth: FIN not yet in order"
    );
    assert!(!f.conn.peer_closed());

    f.inject(&seg(Flags::ACK, irs(1), iss(1), b"hello"));
    // Data and the FIN behind it are acknowledged together: 10 bytes + FIN.
    assert_eq!(f.expect_one().ack, irs(12));
    assert_eq!(f.conn.state(), State::CloseWait);
    assert_eq!(f.read_all(), b"helloworld");
    let mut buf = [0u8; 4];
    assert_eq!(f.conn.recv(&mut buf), Ok(0), "end of stream");
}

#[test]
fn out_of_order_data_is_reported_in_a_sack_block() {
    let cfg = Config {
        sack: true,
        ..plain_config()
    };
    let mut f = conn_established_with(cfg);
    assert!(f.conn.negotiated().1);
    f.inject(&seg(Flags::ACK, irs(101), iss(1), &[0u8; 50]));
    let dup = f.expect_one();
    assert_eq!(dup.ack, irs(1));
    // RFC 2018 4: the block holds the out-of-order data just received.
    assert_eq!(
        dup.options.sack_blocks(),
        &[SackBlock {
            left: irs(101),
            right: irs(151)
        }]
    );
}

#[test]
fn a_partial_duplicate_reports_its_dsack_with_the_delayed_ack_or_at_once() {
    // The peer resends bytes 1-10 with 5 new ones behind them.
    let run = |at_once: bool| {
        let mut f = conn_established_with(Config {
            sack: true,
            ack_dsack_at_once: at_once,
            ..no_quickack()
        });
        f.inject(&seg(Flags::ACK, irs(1), iss(1), b"0123456789"));
        f.expect_nothing();
        f.fire_next();
        assert_eq!(f.expect_one().ack, irs(11));
        f.inject(&seg(Flags::ACK, irs(1), iss(1), b"0123456789abcde"));
        if !at_once {
            // Linux: the delayed ACK carries it.
            f.expect_nothing();
            f.fire_next();
        }
        let ack = f.expect_one();
        assert_eq!(ack.ack, irs(16));
        // RFC 2883 4: the D-SACK block is the repeated part.
        assert_eq!(
            ack.options.sack_blocks(),
            &[SackBlock {
                left: irs(1),
                right: irs(11)
            }]
        );
    };
    run(false);
    run(true);
}

#[test]
fn data_segments_carry_timestamps_echoing_the_peers_latest_tsval() {
    let mut f = conn_established_with(Config::default());
    f.advance(ms(5));
    let s = f.seg(Flags::ACK, irs(1), iss(1), b"hi");
    let peer_val = s.options.timestamps.unwrap().0;
    f.inject(&s);
    let ack = f.expect_one();
    // RFC 7323 4.3: TS.Recent is updated from an in-order segment and echoed.
    let (val, ecr) = ack.options.timestamps.expect("timestamps negotiated");
    assert_eq!(ecr, peer_val);
    assert_eq!(val, TS_OFFSET + f.now.total_millis() as u32);
}

#[test]
fn sequence_numbers_wrap_around_zero_in_both_directions() {
    let our_iss = Seq(u32::MAX - 2);
    let peer_iss = Seq(u32::MAX - 1);
    let mut cx = Counters::default();
    let conn = Connection::connect(
        Instant::ZERO,
        Arc::new(plain_config()),
        local(),
        remote(),
        our_iss,
        0,
        &mut cx,
    );
    let mut f = Fixture {
        conn,
        cx,
        now: Instant::ZERO,
        last_tsval: 0,
    };
    f.transmit();
    f.inject(&seg(Flags::SYN | Flags::ACK, peer_iss, our_iss + 1u32, b""));
    assert_eq!(f.expect_one().ack, Seq(u32::MAX));

    // 10 bytes each way, straddling 2^32.
    f.send(b"0123456789");
    let out = f.expect_one();
    assert_eq!(out.seq, Seq(u32::MAX - 1));
    f.inject(&seg(Flags::ACK, Seq(u32::MAX), Seq(8), b"abcdefghij"));
    assert_eq!(f.expect_one().ack, Seq(9));
    assert_eq!(f.read_all(), b"abcdefghij");
    assert_eq!(
        f.conn.send_queue(),
        0,
        "the ACK across the wrap acknowledged everything"
    );
    assert_eq!(f.conn.timer(Timer::Retransmit), None);
}

#[test]
fn pending_delayed_ack_rides_on_outgoing_data() {
    let mut f = conn_established_with(no_quickack());
    f.inject(&seg(Flags::ACK, irs(1), iss(1), b"ping"));
    f.expect_nothing();
    assert!(f.conn.timer(Timer::DelayedAck).is_some());
    f.send(b"pong");
    let s = f.expect_one();
    assert_eq!(
        (s.seq, s.ack, &s.payload[..]),
        (iss(1), irs(5), &b"pong"[..])
    );
    assert_eq!(
        f.conn.timer(Timer::DelayedAck),
        None,
        "the data segment carried the ACK"
    );
}

#[test]
fn window_update_is_sent_once_reading_opens_the_window_by_an_mss() {
    let mut f = conn_established_with(Config {
        recv_buffer: 4000,
        ..plain_config()
    });
    let data = vec![1u8; 4000];
    for (i, chunk) in data.chunks(1460).enumerate() {
        f.inject(&seg(Flags::ACK, irs(1 + 1460 * i as u32), iss(1), chunk));
    }
    assert_eq!(
        f.transmit().last().map(|s| (s.ack, s.window)),
        Some((irs(4001), 0))
    );

    // RFC 9293 3.8.6.2.2: announce the opening only once it reaches
    // min(RCV.BUFF / 2, MSS) = 1460 bytes, so the sender never sees a silly window.
    let mut buf = [0u8; 1000];
    assert_eq!(f.conn.recv(&mut buf), Ok(1000));
    f.expect_nothing();
    let mut buf = [0u8; 1500];
    assert_eq!(f.conn.recv(&mut buf), Ok(1500));
    let update = f.expect_one();
    assert_eq!(
        (update.flags, update.ack, update.window),
        (Flags::ACK, irs(4001), 2500)
    );
}

#[test]
fn a_segment_larger_than_our_mss_does_not_raise_the_window_update_threshold() {
    // The receiver's estimate of the peer's segment size (which sets how far the
    // window must open before an update is sent, and how much data a delayed ACK may
    // cover) stays within the MSS we advertised, as Linux's tcp_measure_rcv_mss keeps
    // it: a peer ignoring our MSS, or segments coalesced on the way, must not make us
    // hold back updates of a window the reader has opened by half.
    let mut f = conn_established_with(Config {
        recv_buffer: 64_000,
        ..plain_config()
    });
    f.inject(&seg(Flags::ACK, irs(1), iss(1), &vec![1u8; 30_000]));
    let ack = f.expect_one();
    assert_eq!((ack.ack, ack.window), (irs(30_001), 34_000));
    let mut buf = vec![0u8; 30_000];
    assert_eq!(f.conn.recv(&mut buf), Ok(30_000));
    let update = f.expect_one();
    assert_eq!((update.ack, update.window), (irs(30_001), 64_000));
}

#[test]
fn data_segments_shrink_by_the_sack_blocks_they_carry() {
    // RFC 9293 3.7.1 (and RFC 6691): the peer's MSS counts data only, so the sender
    // must take the TCP options it sends out of it, or the packet outgrows the MTU
    // (Linux: tcp_current_mss). SMSS already allows for timestamps; SACK blocks come
    // and go with holes in what we received.
    let mut f = conn_established_with(Config::default());
    let smss = f.conn.smss();
    assert_eq!(smss, u32::from(PEER_MSS) - 12);
    let mtu = usize::from(f.conn.config().mtu);
    for (holes, sack_len) in [(1u32, 12u32), (2, 20), (3, 28), (4, 28)] {
        // Out-of-order data from the peer: `holes` islands above a hole at RCV.NXT.
        let base = f.conn.sequence().4;
        for i in 0..holes {
            f.inject(&f.seg(Flags::ACK, base + (100 + 200 * i), iss(1), &[1u8; 10]));
            f.transmit();
        }
        let una = f.conn.sequence().1;
        f.send(&vec![7u8; 2 * smss as usize]);
        let sent = f.transmit();
        assert!(!sent.is_empty());
        for s in &sent {
            let blocks = s.options.sack_blocks().len() as u32;
            assert_eq!(blocks, holes.min(3), "{holes} holes");
            let opts = s.options.len(f.conn.config().option_layout);
            assert_eq!(opts as u32, 12 + sack_len);
            assert!(s.payload.len() as u32 <= smss - sack_len, "{holes} holes");
            assert!(40 + opts + s.payload.len() <= mtu, "{holes} holes: too big");
        }
        assert_eq!(sent[0].payload.len() as u32, smss - sack_len);
        // The peer fills every hole and acknowledges everything.
        let end = base + (110 + 200 * (holes - 1));
        let nxt = f.conn.sequence().2;
        f.inject(&f.seg(Flags::ACK, base, nxt, &vec![2u8; end.since(base) as usize]));
        f.transmit();
        assert_eq!(f.conn.sequence().4, end, "no hole left");
        assert_eq!(f.conn.sequence().1, nxt);
        assert!(nxt > una);
        f.read_all();
    }
    // No SACK blocks: full segments again.
    f.send(&vec![9u8; smss as usize]);
    let s = f.expect_one();
    assert_eq!(s.options.sack_blocks().len(), 0);
    assert_eq!(s.payload.len() as u32, smss);
}

#[test]
fn a_scaled_window_never_offers_more_than_the_ring_holds() {
    // Window scale 7 (units of 128 bytes) and an application that never reads. Keeping
    // the right edge from moving left rounds each new window up; the edge may creep
    // past the free space only as far as the ring's slack, and every byte offered is
    // taken. (Found behind TUN offload: the kernel filled the crept window and seqack
    // dropped its last bytes.)
    let cap = 16 * 1024;
    let mut f = conn_established_with(Config {
        recv_buffer: cap,
        wscale: Some(7),
        ..plain_config()
    });
    let mut last: Option<Sent> = None;
    let mut next = 1u32;
    let mut sent = Vec::new();
    for i in 0..2000u32 {
        let edge = match &last {
            Some(a) => a.ack + (u32::from(a.window) << 7),
            None => irs(1) + 64 * 128u32,
        };
        let room = edge.since(irs(next));
        if edge <= irs(next) || room == 0 {
            break;
        }
        let len = room.min(97 + i % 7);
        let data: Vec<u8> = (0..len).map(|k| ((next + k) % 251) as u8).collect();
        f.inject(&seg(Flags::ACK | Flags::PSH, irs(next), iss(1), &data));
        next += len;
        sent.extend_from_slice(&data);
        let mut out = f.transmit();
        if out.is_empty() {
            f.fire_next();
            out = f.transmit();
        }
        if let Some(a) = out.into_iter().rfind(|s| s.flags.ack()) {
            assert_eq!(
                a.ack,
                irs(next),
                "every byte inside the offered window is taken"
            );
            last = Some(a);
        }
    }
    let held = sent.len();
    assert!(held >= cap, "the buffer filled: {held}");
    assert!(
        held <= cap + cap / 16,
        "at most the slack beyond it: {held}"
    );
    assert_eq!(f.read_all(), sent);
}
