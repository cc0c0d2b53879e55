//! Loss recovery with SACK (RFC 6675, RFC 2018, RFC 2883) and CUBIC's window
//! arithmetic (RFC 9438) on a single connection.

mod common;

use common::*;
use seqack::tcp::congestion::Algorithm;
use seqack::tcp::{Config, Timer};
use seqack::wire::tcp::{Flags, SackBlock, Segment};
use seqack::Seq;

const MSS: u32 = 1460;

/// The plain fixture with SACK negotiated.
fn sack_config() -> Config {
    Config {
        sack: true,
        ..plain_config()
    }
}

/// Segment `n` (1-based) of a run of full segments: its first sequence number.
fn seg_no(n: u32) -> Seq {
    iss(1 + (n - 1) * MSS)
}

/// An ACK from the peer acknowledging `ack`, SACKing the given segments ranges
/// (inclusive, 1-based).
fn sack_ack(ack: Seq, blocks: &[(u32, u32)]) -> Segment<'static> {
    let mut s = seg(Flags::ACK, irs(1), ack, b"");
    for &(a, b) in blocks {
        assert!(s.options.push_sack(SackBlock {
            left: seg_no(a),
            right: seg_no(b + 1),
        }));
    }
    s
}

#[test]
fn sack_recovery_retransmits_every_lost_hole_in_one_round_trip() {
    let mut f = conn_established_with(sack_config());
    assert!(f.conn.negotiated().1, "SACK negotiated");
    f.send(&[7u8; 10 * MSS as usize]);
    assert_eq!(f.transmit().len(), 10);
    f.advance(RTT);
    // Segments 2, 5 and 8 were lost. Segment 1's ACK, then one duplicate ACK per
    // segment that arrived, each SACKing what the peer holds.
    f.inject(&sack_ack(seg_no(2), &[]));
    f.inject(&sack_ack(seg_no(2), &[(3, 3)]));
    f.inject(&sack_ack(seg_no(2), &[(3, 4)]));
    f.expect_nothing();
    f.inject(&sack_ack(seg_no(2), &[(6, 6), (3, 4)]));
    // Three SACKed segments above segment 2 make it lost (RFC 6675 IsLost): it goes at
    // once. There is no new data to send, so NextSeg's rule 3 sends the next hole,
    // segment 5, too (the pipe, 6 segments with the retransmission, leaves room in
    // cwnd = 0.7 x 11 segments).
    let sent: Vec<Seq> = f.transmit().iter().map(|s| s.seq).collect();
    assert_eq!(sent, vec![seg_no(2), seg_no(5)]);
    f.inject(&sack_ack(seg_no(2), &[(6, 7), (3, 4)]));
    // No hole above HighRxt below the highest SACKed byte, no new data: rule 4's one
    // rescue retransmission of the highest unSACKed segment (here it was not lost).
    assert_eq!(f.expect_one().seq, seg_no(10));
    // Segment 9 SACKed: segment 8 is a hole below the highest SACKed byte.
    f.inject(&sack_ack(seg_no(2), &[(9, 9), (6, 7), (3, 4)]));
    assert_eq!(f.expect_one().seq, seg_no(8));
    f.inject(&sack_ack(seg_no(2), &[(9, 10), (6, 7), (3, 4)]));
    // Every hole was repaired within this one round trip, not one per RTT as NewReno
    // does, and the rescue went once only.
    f.expect_nothing();
    assert_eq!((f.cx.sack_recovery, f.cx.reno_recovery), (1, 0));
    assert_eq!(f.cx.retrans_segs, 4);
    // The retransmissions arrive: everything is acknowledged and recovery ends with
    // cwnd at ssthresh: CUBIC's 0.7 of the 11-segment window at the loss (segment 1's
    // ACK had grown it from 10 in slow start).
    f.advance(RTT);
    f.inject(&sack_ack(seg_no(11), &[]));
    assert_eq!(f.conn.send_queue(), 0);
    assert_eq!(f.conn.cwnd(), (11.0 * f64::from(MSS) * 0.7) as u32);
}

#[test]
fn sack_recovery_sends_new_data_the_pipe_allows() {
    let mut f = conn_established_with(sack_config());
    f.send(&[7u8; 20 * MSS as usize]);
    assert_eq!(f.transmit().len(), 10, "initial window");
    f.advance(RTT);
    // Segment 1 lost, 2..=5 arrived.
    for n in 2..=5 {
        f.inject(&sack_ack(seg_no(1), &[(2, n)]));
    }
    let sent: Vec<Seq> = f.transmit().iter().map(|s| s.seq).collect();
    // cwnd = ssthresh = 7 segments; pipe after the retransmission: segments 6..=10 (5)
    // plus the retransmitted 1 = 6; one segment of room: new segment 11.
    assert_eq!(sent, vec![seg_no(1), seg_no(11)]);
}

#[test]
fn a_dsack_is_not_a_duplicate_ack_but_a_new_sack_is() {
    let mut f = conn_established_with(sack_config());
    f.send(&[7u8; 6 * MSS as usize]);
    f.transmit();
    f.advance(RTT);
    f.inject(&sack_ack(seg_no(2), &[]));
    // Three ACKs reporting only a duplicate below the ACK (RFC 2883), each with a new
    // window so RFC 5681 does not count them either: no loss is inferred.
    for i in 1..=3 {
        let mut s = seg(Flags::ACK, irs(1), seg_no(2), b"");
        s.window -= i;
        s.options.push_sack(SackBlock {
            left: seg_no(1),
            right: seg_no(2),
        });
        f.inject(&s);
    }
    f.expect_nothing();
    assert_eq!(f.cx.sack_recovery, 0);
    // Three ACKs that SACK new data are duplicate ACKs (RFC 6675) whatever the window.
    for (i, n) in (3..=5).enumerate() {
        let mut s = sack_ack(seg_no(2), &[(3, n)]);
        s.window -= 10 + i as u16;
        f.inject(&s);
    }
    assert_eq!(f.cx.sack_recovery, 1);
    assert_eq!(f.transmit().first().map(|s| s.seq), Some(seg_no(2)));
}

#[test]
fn a_lost_tail_gets_one_rescue_retransmission() {
    let mut f = conn_established_with(sack_config());
    f.send(&[7u8; 8 * MSS as usize]);
    f.transmit();
    f.advance(RTT);
    // Segment 1 and the tail (7, 8) lost: 2..=6 SACKed.
    for n in 2..=5 {
        f.inject(&sack_ack(seg_no(1), &[(2, n)]));
    }
    // Segment 1 is lost (rule 1); nothing new to send and no hole above it below the
    // highest SACKed byte, so rule 4 resends the highest unSACKed segment, once.
    let sent: Vec<Seq> = f.transmit().iter().map(|s| s.seq).collect();
    assert_eq!(sent, vec![seg_no(1), seg_no(8)]);
    f.inject(&sack_ack(seg_no(1), &[(2, 6)]));
    f.expect_nothing();
    assert_eq!(f.cx.retrans_segs, 2);
}

#[test]
fn rto_forgets_the_scoreboard_and_resends_sacked_data() {
    // (No tail loss probe and no RACK, so that the RTO is the next thing to fire.)
    let mut f = conn_established_with(Config {
        tail_loss_probe: false,
        rack: false,
        ..sack_config()
    });
    f.send(&[7u8; 4 * MSS as usize]);
    f.transmit();
    f.advance(RTT);
    // Segment 1 lost; 3 SACKed: not enough to call segment 1 lost yet.
    f.inject(&sack_ack(seg_no(1), &[(3, 3)]));
    f.expect_nothing();
    f.fire_next();
    // RFC 2018 section 8: after the timeout the SACKed bits are turned off: the resend
    // goes back to SND.UNA and will cover segment 3 again.
    assert_eq!(f.expect_one().seq, seg_no(1));
    f.advance(RTT);
    f.inject(&sack_ack(seg_no(2), &[(3, 3)]));
    let sent: Vec<Seq> = f.transmit().iter().map(|s| s.seq).collect();
    assert_eq!(sent.first(), Some(&seg_no(2)));
    assert!(
        sent.contains(&seg_no(3)),
        "the SACKed segment is sent again: {sent:?}"
    );
}

#[test]
fn newreno_without_sack_repairs_one_hole_per_round_trip() {
    // The same loss pattern as the first test, without SACK: RFC 6582 retransmits the
    // first hole, then one more per partial ACK.
    let mut f = conn_established_with(plain_config());
    f.send(&[7u8; 10 * MSS as usize]);
    f.transmit();
    f.advance(RTT);
    for _ in 0..4 {
        f.inject(&seg(Flags::ACK, irs(1), seg_no(2), b""));
    }
    assert_eq!(f.expect_one().seq, seg_no(2));
    for _ in 0..3 {
        f.inject(&seg(Flags::ACK, irs(1), seg_no(2), b""));
    }
    f.expect_nothing();
    assert_eq!((f.cx.sack_recovery, f.cx.reno_recovery), (0, 1));
    f.advance(RTT);
    f.inject(&seg(Flags::ACK, irs(1), seg_no(5), b""));
    assert_eq!(f.expect_one().seq, seg_no(5));
}

#[test]
fn cubic_cuts_the_window_to_seven_tenths_newreno_to_half_the_flight() {
    // Segment 1's ACK grows the window to 11 segments in slow start, leaving 9 in
    // flight when the duplicate ACKs arrive. CUBIC: ssthresh = 0.7 cwnd (RFC 9438 4.6);
    // NewReno: FlightSize / 2 (RFC 5681 equation 4).
    let cubic = (11.0 * f64::from(MSS) * 0.7) as u32;
    for (algorithm, ssthresh) in [(Algorithm::Cubic, cubic), (Algorithm::NewReno, 9 * MSS / 2)] {
        let mut f = conn_established_with(Config {
            congestion: algorithm,
            ..plain_config()
        });
        f.send(&[7u8; 10 * MSS as usize]);
        assert_eq!(f.transmit().len(), 10);
        f.advance(RTT);
        for _ in 0..4 {
            f.inject(&seg(Flags::ACK, irs(1), seg_no(2), b""));
        }
        f.transmit();
        // Without SACK, cwnd is ssthresh inflated by the three duplicate ACKs.
        assert_eq!(f.conn.cwnd(), ssthresh + 3 * MSS, "{algorithm:?}");
    }
}

#[test]
fn a_lost_last_segment_is_repaired_by_a_tail_loss_probe_before_the_rto() {
    let mut f = conn_established_with(sack_config());
    f.send(&[7u8; 3 * MSS as usize]);
    assert_eq!(f.transmit().len(), 3);
    f.advance(RTT);
    // Segments 1 and 2 arrive and are ACKed; segment 3, the tail, is lost: no ACK
    // follows, so nothing but a timer can notice.
    f.inject(&sack_ack(seg_no(3), &[]));
    f.expect_nothing();
    // The probe timer stands in for the RTO (RFC 8985 7.2, Linux's
    // tcp_schedule_loss_probe): 2 SRTT plus the worst-case delayed ACK with one segment
    // in flight, but never later than the RTO would have fired.
    let probe_at = f.timer(Timer::LossProbe);
    assert_eq!(f.conn.timer(Timer::Retransmit), None);
    assert_eq!(probe_at, f.now + (RTT * 2 + ms(200)).min(f.conn.rto()));
    assert_eq!(f.fire_next(), probe_at);
    let probe = f.expect_one();
    assert_eq!((probe.seq, probe.payload.len()), (seg_no(3), MSS as usize));
    assert_eq!((f.cx.loss_probes, f.cx.timeouts), (1, 0));
    assert!(
        f.conn.timer(Timer::Retransmit).is_some(),
        "the RTO is armed again"
    );
    // Its ACK: a loss was repaired, so the window is cut as fast recovery would.
    let before = f.conn.cwnd();
    f.advance(RTT);
    f.inject(&sack_ack(seg_no(4), &[]));
    assert_eq!(f.cx.loss_probe_recovery, 1);
    assert!(f.conn.cwnd() < before, "{} < {before}", f.conn.cwnd());
    assert_eq!(f.conn.timer(Timer::Retransmit), None);
}

#[test]
fn a_probe_reported_as_a_duplicate_costs_no_window() {
    let mut f = conn_established_with(sack_config());
    f.send(&[7u8; 3 * MSS as usize]);
    f.transmit();
    f.advance(RTT);
    f.inject(&sack_ack(seg_no(3), &[]));
    f.fire_next();
    assert_eq!(f.expect_one().seq, seg_no(3));
    // Segment 3 had only been delayed: the ACK of everything carries a D-SACK for the
    // probe's copy (RFC 2883).
    let before = f.conn.cwnd();
    let mut ack = seg(Flags::ACK, irs(1), seg_no(4), b"");
    ack.options.push_sack(SackBlock {
        left: seg_no(3),
        right: seg_no(4),
    });
    f.inject(&ack);
    assert_eq!(f.cx.loss_probe_recovery, 0);
    assert!(f.conn.cwnd() >= before);
}

#[test]
fn a_probe_sends_new_data_when_the_peer_window_allows() {
    let mut f = conn_established_with(sack_config());
    // More than the initial window: 10 segments go, the rest waits for ACKs.
    f.send(&[7u8; 14 * MSS as usize]);
    assert_eq!(f.transmit().len(), 10);
    f.advance(RTT);
    // The ACK of the first 2 opens room for 3 more (slow start).
    f.inject(&sack_ack(seg_no(3), &[]));
    let sent: Vec<Seq> = f.transmit().iter().map(|s| s.seq).collect();
    assert_eq!(sent.first(), Some(&seg_no(11)));
    // Then silence: the probe is the next new segment, whatever cwnd says.
    f.expect_nothing();
    f.fire_next();
    let probe = f.expect_one();
    assert_eq!(probe.seq, seg_no(11 + sent.len() as u32));
    assert_eq!(f.cx.loss_probes, 1);
    assert_eq!(f.cx.retrans_segs, 0, "new data, not a retransmission");
}

#[test]
fn no_probe_without_sack_or_when_disabled() {
    for cfg in [
        plain_config(),
        Config {
            tail_loss_probe: false,
            ..sack_config()
        },
    ] {
        let mut f = conn_established_with(cfg);
        f.send(&[7u8; 3 * MSS as usize]);
        f.transmit();
        assert_eq!(f.conn.timer(Timer::LossProbe), None);
        f.fire_next();
        assert_eq!(f.cx.timeouts, 1, "the RTO fires instead");
        assert_eq!(f.cx.loss_probes, 0);
    }
}

/// Every transmission of segment `n` so far.
fn times_sent(all: &[Sent], n: u32) -> usize {
    all.iter()
        .filter(|s| s.seq == seg_no(n) && !s.payload.is_empty())
        .count()
}

#[test]
fn rack_finds_a_lost_retransmission_without_waiting_for_the_rto() {
    let mut f = conn_established_with(sack_config());
    f.send(&[7u8; 20 * MSS as usize]);
    let mut all = f.transmit();
    assert_eq!(all.len(), 10);
    f.advance(RTT);
    // Segment 2 lost: segment 1's ACK, then SACKs for 3, 4, 5 start recovery and
    // segment 2 is sent again (with new data as the pipe allows).
    f.inject(&sack_ack(seg_no(2), &[]));
    for n in 3..=5 {
        f.inject(&sack_ack(seg_no(2), &[(3, n)]));
    }
    let sent = f.transmit();
    assert_eq!(times_sent(&sent, 2), 1, "{sent:?}");
    let newest = sent.iter().map(|s| s.seq.since(seg_no(1))).max().unwrap();
    all.extend(sent);
    // That retransmission is lost too. A round trip later the peer SACKs everything
    // else, including what was sent after it: RACK declares it lost once the
    // reordering window (a quarter of the RTT) has passed, with no RTO.
    f.advance(RTT);
    let last = newest / MSS + 1;
    f.inject(&sack_ack(seg_no(2), &[(3, last)]));
    all.extend(f.transmit());
    f.fire_next();
    all.extend(f.transmit());
    assert_eq!(times_sent(&all, 2), 3, "sent, resent, resent again");
    assert_eq!(f.cx.timeouts, 0);
    assert!(f.cx.rack_lost >= 1);
}

#[test]
fn rack_and_a_tail_loss_probe_repair_a_lost_tail_of_two_segments() {
    let mut f = conn_established_with(sack_config());
    f.send(&[7u8; 4 * MSS as usize]);
    f.transmit();
    f.advance(RTT);
    // 1 and 2 arrive; the tail, 3 and 4, is lost.
    f.inject(&sack_ack(seg_no(3), &[]));
    f.fire_next();
    let probe = f.expect_one();
    assert_eq!(probe.seq, seg_no(4), "the probe resends the last segment");
    // The probe arrives and is SACKed: segment 3, sent before it, is lost (RACK), and
    // goes again at once: recovery without an RTO.
    f.advance(RTT);
    f.inject(&sack_ack(seg_no(3), &[(4, 4)]));
    let sent = f.transmit();
    assert_eq!(times_sent(&sent, 3), 1, "{sent:?}");
    assert_eq!(f.cx.timeouts, 0);
    f.advance(RTT);
    f.inject(&sack_ack(seg_no(5), &[]));
    assert_eq!(f.conn.send_queue(), 0);
}

#[test]
fn reordering_inside_the_window_is_not_a_loss() {
    let mut f = conn_established_with(sack_config());
    f.send(&[7u8; 3 * MSS as usize]);
    f.transmit();
    f.advance(RTT);
    // Segment 2 arrives after 3: a SACK for 3, then, 10 ms later (inside the quarter
    // RTT window), the ACK of everything.
    f.inject(&sack_ack(seg_no(2), &[(3, 3)]));
    f.expect_nothing();
    f.advance(ms(10));
    f.inject(&sack_ack(seg_no(4), &[]));
    f.run_until(f.now + RTT * 5);
    f.expect_nothing();
    assert_eq!((f.cx.retrans_segs, f.cx.rack_lost), (0, 0));
}
