//! RACK (RFC 8985 section 6): time-based loss detection. A segment is lost when a
//! segment sent after it has been delivered (acknowledged or SACKed) and more than an
//! RTT plus a reordering window has passed since it was sent. Unlike RFC 6675's
//! counting of SACKed segments above a hole, this also finds a lost retransmission
//! (anything sent after it arrives) and a lost tail behind a tail loss probe.
//!
//! The state lives in a box the connection allocates at its first transmission with
//! SACK in use: a log of the data segments in flight in the order they were sent, and
//! RACK's variables.

use std::collections::VecDeque;

use super::sack::Scoreboard;
use crate::wire::Seq;

/// One transmission of `[start, end)` (data, or a FIN counted as one byte).
#[derive(Clone, Copy, Debug)]
struct Sent {
    start: Seq,
    end: Seq,
    /// When it was sent, µs.
    at: u64,
    retransmitted: bool,
}

/// RACK's state for one connection.
#[derive(Clone, Debug, Default)]
pub struct Rack {
    /// Transmissions not yet delivered or declared lost, oldest first.
    log: VecDeque<Sent>,
    /// The most recently sent segment known delivered: when it was sent and its end.
    xmit: u64,
    end: Seq,
    /// RTT of that segment, µs (0 before any delivery).
    rtt: u32,
    /// The smallest RTT seen, µs (`u32::MAX` before any).
    min_rtt: u32,
    /// Ranges declared lost and not yet sent again, lowest first.
    lost: Vec<(Seq, Seq)>,
}

/// What a detection pass found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Detection {
    /// Segments newly declared lost.
    pub lost: usize,
    /// When the next undelivered segment would be declared lost, if one is waiting
    /// on the reordering window (µs): the reorder timer's deadline.
    pub timer: Option<u64>,
}

impl Rack {
    /// A fresh state.
    pub fn new() -> Rack {
        Rack {
            min_rtt: u32::MAX,
            ..Rack::default()
        }
    }

    /// Records a transmission of `[start, end)` at `now_us`.
    #[inline]
    pub fn sent(&mut self, start: Seq, end: Seq, now_us: u64, retransmitted: bool) {
        if end <= start {
            return;
        }
        if retransmitted {
            self.unmark(start, end);
        }
        self.log.push_back(Sent {
            start,
            end,
            at: now_us,
            retransmitted,
        });
    }

    /// Drops lost marks for `[start, end)`, which is being sent again.
    fn unmark(&mut self, start: Seq, end: Seq) {
        let mut out = Vec::with_capacity(self.lost.len() + 1);
        for &(l, r) in &self.lost {
            if r <= start || l >= end {
                out.push((l, r));
            } else {
                if l < start {
                    out.push((l, start));
                }
                if r > end {
                    out.push((end, r));
                }
            }
        }
        self.lost = out;
    }

    /// The first range declared lost at or above `una` and not SACKed, at most `mss`
    /// bytes of it.
    pub fn next_lost(&self, una: Seq, board: &Scoreboard, mss: u32) -> Option<(Seq, Seq)> {
        for &(l, r) in &self.lost {
            let l = l.max(una);
            if r <= l {
                continue;
            }
            // The first part of [l, r) that the peer has not SACKed.
            let mut start = l;
            for &(sl, sr) in board.ranges() {
                if sr <= start {
                    continue;
                }
                if sl <= start {
                    start = sr;
                } else {
                    break;
                }
            }
            if start >= r {
                continue;
            }
            let stop = board
                .ranges()
                .iter()
                .map(|&(sl, _)| sl)
                .find(|&sl| sl > start)
                .map_or(r, |sl| sl.min(r));
            let len = stop.since(start).min(mss);
            return Some((start, start + len));
        }
        None
    }

    /// True when anything is declared lost and not yet sent again.
    pub fn has_lost(&self) -> bool {
        !self.lost.is_empty()
    }

    /// An ACK arrived: SND.UNA is `una` and the peer has SACKed `board`. Updates RACK
    /// from the delivered segments (RFC 8985 6.2 steps 1-3) and declares lost every
    /// segment sent before the most recent delivered one by more than its RTT plus the
    /// reordering window (step 5). `srtt_us` bounds that window.
    pub fn on_ack(&mut self, now_us: u64, una: Seq, board: &Scoreboard, srtt_us: u32) -> Detection {
        // One sweep each (`retain`), not a `remove` per entry: an ACK of a whole
        // window delivers a hundred entries or more at once.
        let mut log = core::mem::take(&mut self.log);
        log.retain(|s| {
            if !(s.end <= una || covered(board, s.start, s.end)) {
                return true;
            }
            let rtt = now_us.saturating_sub(s.at);
            // Step 2: a retransmission acknowledged sooner than the minimum RTT was
            // the original's delivery, not its own.
            let ambiguous = s.retransmitted && rtt < u64::from(self.min_rtt);
            if !ambiguous {
                let rtt = u32::try_from(rtt).unwrap_or(u32::MAX);
                if !s.retransmitted {
                    self.min_rtt = self.min_rtt.min(rtt.max(1));
                }
                if s.at > self.xmit || (s.at == self.xmit && s.end > self.end) {
                    self.xmit = s.at;
                    self.end = s.end;
                    self.rtt = rtt;
                }
            }
            false
        });
        self.lost.retain(|&(_, r)| r > una);
        if self.rtt == 0 && self.xmit == 0 {
            self.log = log;
            return Detection::default();
        }
        // Step 4: a quarter of the minimum RTT, at most SRTT.
        let min_rtt = if self.min_rtt == u32::MAX {
            self.rtt
        } else {
            self.min_rtt
        };
        let reo_wnd = u64::from((min_rtt / 4).min(srtt_us.max(1)));
        let mut d = Detection::default();
        log.retain(|s| {
            let before = s.at < self.xmit || (s.at == self.xmit && s.end < self.end);
            if !before {
                return true;
            }
            let due = s.at + u64::from(self.rtt) + reo_wnd;
            if now_us >= due {
                self.mark_lost(s.start.max(una), s.end);
                d.lost += 1;
                false
            } else {
                d.timer = Some(d.timer.map_or(due, |t: u64| t.max(due)));
                true
            }
        });
        self.log = log;
        d
    }

    fn mark_lost(&mut self, start: Seq, end: Seq) {
        if end <= start {
            return;
        }
        let i = self.lost.partition_point(|&(_, r)| r < start);
        let mut j = i;
        let (mut l, mut r) = (start, end);
        while j < self.lost.len() && self.lost[j].0 <= end {
            l = l.min(self.lost[j].0);
            r = r.max(self.lost[j].1);
            j += 1;
        }
        self.lost.splice(i..j, [(l, r)]);
    }

    /// Forgets the log and the lost marks (after an RTO, which resends from SND.UNA).
    pub fn reset(&mut self) {
        self.log.clear();
        self.lost.clear();
    }
}

/// Whether the board SACKs all of `[start, end)`.
fn covered(board: &Scoreboard, start: Seq, end: Seq) -> bool {
    board.ranges().iter().any(|&(l, r)| l <= start && end <= r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u32) -> Seq {
        Seq(n)
    }

    #[test]
    fn a_segment_sent_before_a_delivered_one_is_lost_after_rtt_and_reordering_window() {
        let mut r = Rack::new();
        let board = Scoreboard::default();
        // Segments 0..100, 100..200, 200..300 sent at 0, 10, 20 µs... in ms for clarity.
        r.sent(s(0), s(100), 0, false);
        r.sent(s(100), s(200), 1_000, false);
        r.sent(s(200), s(300), 2_000, false);
        // The first is acknowledged at 50 ms: RTT 50 ms, nothing sent before it.
        let d = r.on_ack(50_000, s(100), &board, 50_000);
        assert_eq!(d, Detection::default());
        // The third is SACKed at 52 ms: the second, sent before it, waits RTT (50 ms)
        // plus a quarter of the minimum RTT (12.5 ms) from its sending.
        let mut board = Scoreboard::default();
        board.add(s(200), s(300), s(100), s(300));
        let d = r.on_ack(52_000, s(100), &board, 50_000);
        assert_eq!(d.lost, 0);
        assert_eq!(d.timer, Some(1_000 + 50_000 + 12_500));
        let d = r.on_ack(63_500, s(100), &board, 50_000);
        assert_eq!(d.lost, 1);
        assert_eq!(r.next_lost(s(100), &board, 1000), Some((s(100), s(200))));
        // Sending it again clears the mark.
        r.sent(s(100), s(200), 63_500, true);
        assert!(!r.has_lost());
    }

    #[test]
    fn a_lost_retransmission_is_found_by_what_was_sent_after_it() {
        let mut r = Rack::new();
        let mut board = Scoreboard::default();
        r.sent(s(0), s(100), 0, false);
        let _ = r.on_ack(40_000, s(100), &board, 40_000);
        r.sent(s(100), s(200), 40_000, false);
        r.sent(s(200), s(300), 41_000, false);
        // 100..200 lost; 200..300 SACKed; RACK declares it lost after 40 + 10 ms.
        board.add(s(200), s(300), s(100), s(300));
        let d = r.on_ack(81_000, s(100), &board, 40_000);
        assert_eq!(d.lost, 0);
        let d = r.on_ack(90_000, s(100), &board, 40_000);
        assert_eq!(d.lost, 1);
        // Retransmitted at 90 ms, then new data at 91 ms; the retransmission is lost
        // too, and the new data is SACKed at 131 ms.
        r.sent(s(100), s(200), 90_000, true);
        r.sent(s(300), s(400), 91_000, false);
        board.add(s(300), s(400), s(100), s(400));
        let d = r.on_ack(131_000, s(100), &board, 40_000);
        assert_eq!(d.lost, 0, "not yet: the retransmission's RTT plus window");
        let d = r.on_ack(141_000, s(100), &board, 40_000);
        assert_eq!(d.lost, 1, "the retransmission was lost");
        assert_eq!(r.next_lost(s(100), &board, 1000), Some((s(100), s(200))));
    }

    #[test]
    fn sacked_parts_of_a_lost_range_are_not_resent() {
        let mut r = Rack::new();
        r.mark_lost(s(100), s(400));
        let mut board = Scoreboard::default();
        board.add(s(150), s(250), s(0), s(1000));
        assert_eq!(r.next_lost(s(0), &board, 1000), Some((s(100), s(150))));
        assert_eq!(r.next_lost(s(160), &board, 1000), Some((s(250), s(400))));
        assert_eq!(r.next_lost(s(0), &board, 20), Some((s(100), s(120))));
    }
}
