//! The sender's SACK scoreboard (RFC 2018, RFC 6675): which bytes above SND.UNA the
//! peer has reported holding, and the loss-recovery arithmetic built on it.
//!
//! The board is a sorted list of disjoint, non-adjacent ranges `[left, right)` between
//! SND.UNA and SND.MAX. At most [`MAX_RANGES`] are kept; a block that would make one
//! more drops the highest range, so the information that decides what to retransmit
//! next (the lowest holes) is the last to go.

use crate::wire::Seq;

/// Most SACKed ranges remembered.
pub const MAX_RANGES: usize = 64;

/// RFC 6675's DupThresh.
pub const DUP_THRESH: u32 = 3;

/// The SACKed ranges above SND.UNA.
#[derive(Clone, Debug, Default)]
pub struct Scoreboard {
    ranges: Vec<(Seq, Seq)>,
}

impl Scoreboard {
    /// An empty board.
    pub const fn new() -> Scoreboard {
        Scoreboard { ranges: Vec::new() }
    }

    /// True when nothing is SACKed.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Forgets everything (RFC 2018 section 8: after a retransmission timeout the
    /// receiver may have reneged).
    pub fn clear(&mut self) {
        self.ranges.clear();
    }

    /// The ranges, lowest first.
    pub fn ranges(&self) -> &[(Seq, Seq)] {
        &self.ranges
    }

    /// Adds the block `[left, right)` clipped to `[una, max)`; returns how many bytes
    /// were not SACKed before. Blocks outside that span (a D-SACK of old data, a forged
    /// block beyond what was sent) add nothing.
    pub fn add(&mut self, left: Seq, right: Seq, una: Seq, max: Seq) -> u32 {
        let l = left.max(una);
        let r = right.min(max);
        if r <= l || left >= right {
            return 0;
        }
        let before = self.sacked_bytes();
        let i = self.ranges.partition_point(|&(_, e)| e < l);
        let mut j = i;
        let (mut nl, mut nr) = (l, r);
        while j < self.ranges.len() && self.ranges[j].0 <= r {
            nl = nl.min(self.ranges[j].0);
            nr = nr.max(self.ranges[j].1);
            j += 1;
        }
        self.ranges.splice(i..j, [(nl, nr)]);
        if self.ranges.len() > MAX_RANGES {
            self.ranges.pop();
        }
        self.sacked_bytes().saturating_sub(before)
    }

    /// SND.UNA moved to `una`: drops what lies below it.
    pub fn advance(&mut self, una: Seq) {
        let below = self.ranges.partition_point(|&(_, e)| e <= una);
        self.ranges.drain(..below);
        if let Some(first) = self.ranges.first_mut() {
            first.0 = first.0.max(una);
        }
    }

    /// Bytes SACKed.
    pub fn sacked_bytes(&self) -> u32 {
        self.ranges.iter().map(|&(l, r)| r.since(l)).sum()
    }

    /// The highest SACKed sequence number (the end of the highest range).
    pub fn highest(&self) -> Option<Seq> {
        self.ranges.last().map(|&(_, r)| r)
    }

    /// RFC 6675 IsLost for every byte of a hole starting at `seq`: at least DupThresh
    /// SACKed ranges lie above it, or more than (DupThresh - 1) * SMSS SACKed bytes.
    /// (Each of our ranges holds at least one of the peer's discontiguous blocks.)
    pub fn is_lost(&self, seq: Seq, mss: u32) -> bool {
        let mut count = 0;
        let mut bytes = 0u32;
        for &(l, r) in self.ranges.iter().rev() {
            if r <= seq {
                break;
            }
            count += 1;
            bytes = bytes.saturating_add(r.since(l.max(seq)));
            if count >= DUP_THRESH || bytes > (DUP_THRESH - 1) * mss {
                return true;
            }
        }
        false
    }

    /// The holes (bytes not SACKed) in `[from, highest SACKed)`, lowest first.
    pub fn holes(&self, from: Seq) -> impl Iterator<Item = (Seq, Seq)> + '_ {
        let mut pos = from;
        self.ranges.iter().filter_map(move |&(l, r)| {
            let hole = (l > pos).then_some((pos, l));
            pos = pos.max(r);
            hole
        })
    }

    /// The first hole at or above `from` whose bytes are lost (RFC 6675 NextSeg rule
    /// 1), as `[start, end)`.
    pub fn next_lost(&self, from: Seq, mss: u32) -> Option<(Seq, Seq)> {
        self.holes(from).find(|&(s, _)| self.is_lost(s, mss))
    }

    /// RFC 6675's pipe: the bytes of `[una, max)` presumed in the network. A byte
    /// counts once if it is neither SACKed nor lost, and once more if it has been
    /// retransmitted (it lies below `high_rxt`).
    pub fn pipe(&self, una: Seq, max: Seq, high_rxt: Seq, mss: u32) -> u32 {
        let mut pipe = 0u32;
        let mut count = |s: Seq, e: Seq, lost: bool| {
            if e <= s {
                return;
            }
            if !lost {
                pipe = pipe.saturating_add(e.since(s));
            }
            if high_rxt > s {
                pipe = pipe.saturating_add(high_rxt.min(e).since(s));
            }
        };
        let mut pos = una;
        for &(l, r) in &self.ranges {
            if l > pos {
                count(pos, l, self.is_lost(pos, mss));
            }
            pos = pos.max(r);
        }
        // Above the highest SACKed byte nothing is lost.
        count(pos, max, false);
        pipe
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(n: u32) -> Seq {
        Seq(n)
    }

    #[test]
    fn blocks_merge_and_clip() {
        let mut b = Scoreboard::default();
        assert_eq!(b.add(s(200), s(300), s(100), s(1000)), 100);
        assert_eq!(b.add(s(400), s(500), s(100), s(1000)), 100);
        // Bridges the two and overlaps both: only the gap is new.
        assert_eq!(b.add(s(250), s(450), s(100), s(1000)), 100);
        assert_eq!(b.ranges(), &[(s(200), s(500))]);
        // Below SND.UNA (a D-SACK) and beyond SND.MAX: clipped away.
        assert_eq!(b.add(s(50), s(100), s(100), s(1000)), 0);
        assert_eq!(b.add(s(900), s(2000), s(100), s(1000)), 100);
        assert_eq!(b.ranges(), &[(s(200), s(500)), (s(900), s(1000))]);
        b.advance(s(300));
        assert_eq!(b.ranges(), &[(s(300), s(500)), (s(900), s(1000))]);
        b.advance(s(950));
        assert_eq!(b.ranges(), &[(s(950), s(1000))]);
    }

    #[test]
    fn is_lost_after_three_segments_sacked_above() {
        let mss = 100;
        let mut b = Scoreboard::default();
        b.add(s(200), s(300), s(100), s(1000));
        assert!(!b.is_lost(s(100), mss));
        b.add(s(300), s(400), s(100), s(1000));
        assert!(
            !b.is_lost(s(100), mss),
            "200 bytes is not more than 2 * SMSS"
        );
        b.add(s(400), s(401), s(100), s(1000));
        assert!(b.is_lost(s(100), mss));
        // Three separate blocks of one byte each: three discontiguous SACKs.
        let mut c = Scoreboard::default();
        for x in [200, 300, 400] {
            c.add(s(x), s(x + 1), s(100), s(1000));
        }
        assert!(c.is_lost(s(100), mss));
        assert!(!c.is_lost(s(250), mss), "only two blocks above 250");
    }

    #[test]
    fn pipe_counts_unsacked_unlost_and_retransmitted() {
        let mss = 100;
        let mut b = Scoreboard::default();
        // 100..1100 sent; 200..500 SACKed: the hole 100..200 is lost (300 bytes above).
        b.add(s(200), s(500), s(100), s(1100));
        assert!(b.is_lost(s(100), mss));
        // Lost hole: 0; SACKed: 0; 500..1100 in flight: 600.
        assert_eq!(b.pipe(s(100), s(1100), s(100), mss), 600);
        // The hole retransmitted: it counts again.
        assert_eq!(b.pipe(s(100), s(1100), s(200), mss), 700);
        assert_eq!(b.next_lost(s(100), mss), Some((s(100), s(200))));
        assert_eq!(b.next_lost(s(200), mss), None);
    }

    #[test]
    fn the_board_is_bounded() {
        let mut b = Scoreboard::default();
        for i in 0..200u32 {
            b.add(s(1000 + i * 10), s(1005 + i * 10), s(0), s(10_000));
        }
        assert_eq!(b.ranges().len(), MAX_RANGES);
        assert_eq!(
            b.ranges()[0],
            (s(1000), s(1005)),
            "the lowest ranges are kept"
        );
    }

    proptest! {
        /// Against a byte-map model: the board holds exactly the union of the blocks
        /// clipped to [una, max) (while under its bound), sorted, disjoint and
        /// non-adjacent, and `add` reports the bytes it newly covers; pipe never
        /// exceeds twice the flight.
        #[test]
        fn matches_a_byte_model(
            base in any::<u32>(),
            blocks in proptest::collection::vec((0u32..600, 1u32..80), 0..40),
            advances in proptest::collection::vec(0u32..50, 0..5),
            high_rxt in 0u32..600,
        ) {
            let una0 = Seq(base);
            let max = una0 + 600u32;
            let mut una = una0;
            let mut model = vec![false; 600];
            let mut b = Scoreboard::default();
            for (i, &(off, len)) in blocks.iter().enumerate() {
                let (l, r) = (una0 + off, una0 + off + len);
                let mut fresh = 0;
                for k in off..(off + len).min(600) {
                    if una0 + k >= una && !model[k as usize] {
                        model[k as usize] = true;
                        fresh += 1;
                    }
                }
                prop_assert_eq!(b.add(l, r, una, max), fresh);
                if let Some(&step) = advances.get(i % 7) {
                    if i % 7 == 0 {
                        una += step;
                        for k in 0..una.since(una0).min(600) {
                            model[k as usize] = false;
                        }
                        b.advance(una);
                    }
                }
                let mut expect = Vec::new();
                let mut k = 0u32;
                while k < 600 {
                    if model[k as usize] {
                        let start = k;
                        while k < 600 && model[k as usize] {
                            k += 1;
                        }
                        expect.push((una0 + start, una0 + k));
                    } else {
                        k += 1;
                    }
                }
                prop_assert_eq!(b.ranges(), &expect[..]);
                let flight = max.since(una);
                prop_assert!(b.pipe(una, max, una0 + high_rxt, 10) <= 2 * flight);
            }
        }
    }
}
