//! The receive buffer: in-order bytes waiting for the application, and out-of-order
//! segments held in place until the gap before them fills (RFC 9293 section 3.10.7.4).

use super::Config;
use crate::wire::checksum;

/// Most separate out-of-order ranges held at once; a segment that would open one more
/// is dropped (and counted by the caller), as Linux prunes its out-of-order queue.
pub const MAX_OOO_RANGES: usize = 32;

/// Smallest ring allocated at the first byte.
const MIN_RING: usize = 512;

/// Largest ring given back when the application empties it. Rings up to this size are
/// cheap to take again (the allocator's own free lists, no page faults); larger ones
/// belong to connections moving bulk data and are kept.
pub const KEEP_ABOVE: usize = 16 * 1024;

/// A ring of up to `cap` bytes. Offsets of out-of-order data are counted from RCV.NXT,
/// the end of the readable region; they land directly at their place in the ring.
///
/// The ring is allocated at the first byte, at the smallest power of two from 512 bytes up
/// that holds what arrived, and doubles (up to `cap`) when data lands beyond its end.
/// When the application empties a ring of at most [`KEEP_ABOVE`] bytes, the ring is
/// given back: many connections each moving a little hold nothing between their
/// exchanges. A larger ring is kept for the life of the connection: one that moves bulk
/// data does not pay for a fresh allocation and its page faults every time the
/// application empties it.
///
/// The out-of-order ranges live in a list of their own, taken when the first segment
/// lands beyond a gap and given back when the last gap closes: most connections never
/// see one, and pay 8 bytes for it instead of an empty `Vec`'s 24.
#[derive(Clone, Debug)]
pub struct RecvBuffer {
    buf: Box<[u8]>,
    // Sizes and positions in 32 bits: the capacity is at most `Config::MAX_BUFFER`
    // and the slack a sixteenth of it or 16 KiB.
    cap: u32,
    /// Bytes the ring takes beyond `cap`: what rounding the window up to the scale unit
    /// may have offered (see [`RecvBuffer::set_window_scale`]).
    slack: u32,
    head: u32,
    readable: u32,
    /// Sorted, disjoint, non-adjacent ranges `[start, end)` beyond RCV.NXT; `None`
    /// while there are none.
    #[allow(clippy::box_collection)] // 8 bytes in every connection, not a Vec's 24
    ooo: Option<Box<Vec<(u32, u32)>>>,
}

/// What happened to a segment's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    /// How far RCV.NXT advanced.
    pub advanced: usize,
    /// Bytes of the segment that fell inside the window.
    pub accepted: usize,
    /// The data landed beyond a gap.
    pub out_of_order: bool,
}

impl RecvBuffer {
    /// An empty buffer of `cap` bytes (at most [`Config::MAX_BUFFER`]: a larger one is
    /// taken as that); memory is taken on the first write.
    pub fn new(cap: usize) -> RecvBuffer {
        RecvBuffer {
            buf: Box::default(),
            cap: cap.min(Config::MAX_BUFFER) as u32,
            slack: 0,
            head: 0,
            readable: 0,
            ooo: None,
        }
    }

    /// The configured capacity.
    pub fn capacity(&self) -> usize {
        self.cap as usize
    }

    /// In-order bytes waiting to be read.
    pub fn readable(&self) -> usize {
        self.readable as usize
    }

    /// Room beyond RCV.NXT: the receive window this buffer can offer.
    pub fn window(&self) -> usize {
        self.capacity().saturating_sub(self.readable())
    }

    /// Bytes beyond RCV.NXT the ring can hold: [`RecvBuffer::window`] plus the slack.
    pub fn room(&self) -> usize {
        (self.capacity() + self.slack as usize).saturating_sub(self.readable())
    }

    /// Sets the slack for a window scale shift: bytes the ring takes beyond its
    /// capacity. With window scaling the window field counts units of 2^shift bytes,
    /// and keeping the right edge from moving left (RFC 9293 3.8.6.2.2) rounds the
    /// window up; while the application does not read, each ACK can push the edge up
    /// to a unit further past the free space (Linux lets its buffer grow for it). The
    /// slack, a sixteenth of the buffer and at least a unit, is what the edge may creep
    /// before it is rounded down instead (RFC 7323 appendix F); without scaling there
    /// is no rounding and no slack. The ring only grows into it when data arrives there.
    pub fn set_window_scale(&mut self, shift: u8) {
        self.slack = if shift == 0 {
            0
        } else {
            ((1u32 << shift.min(14)) - 1).max(self.cap / 16)
        };
    }

    /// True when out-of-order data is held.
    pub fn has_out_of_order(&self) -> bool {
        self.ooo.is_some()
    }

    /// The out-of-order ranges, as offsets from RCV.NXT.
    pub fn out_of_order(&self) -> &[(u32, u32)] {
        self.ooo.as_deref().map_or(&[], |v| v.as_slice())
    }

    /// The first part of `[off, off + len)` (offsets past RCV.NXT) that the buffer
    /// already holds out of order: a duplicate, for D-SACK (RFC 2883).
    pub fn held(&self, off: u32, len: u32) -> Option<(u32, u32)> {
        let end = off.saturating_add(len);
        self.out_of_order()
            .iter()
            .find(|&&(s, e)| s < end && off < e)
            .map(|&(s, e)| (s.max(off), e.min(end)))
    }

    /// Places `data`, which starts `off` bytes past RCV.NXT, into the buffer. Bytes past
    /// the window are cut off. Returns `None` when the segment would open more than
    /// [`MAX_OOO_RANGES`] gaps and was dropped.
    pub fn write_at(&mut self, off: usize, data: &[u8]) -> Option<Written> {
        self.write_placed(off, data, false)
    }

    /// Copies `data`, the payload of a segment that starts at RCV.NXT, to where
    /// [`RecvBuffer::write_at`]`(0, data)` would put it, and returns `sum` with `data`
    /// added ([`checksum::copy_accumulate_at`]): the arriving payload is checksummed as
    /// it is copied. Nothing becomes readable; the bytes lie in the free part of the
    /// ring, where they change nothing until [`RecvBuffer::write_placed`] takes them as
    /// placed. `None` (nothing done) unless that is certain to be harmless and useful:
    /// no out-of-order data is held (its bytes could be overwritten), and the ring is
    /// already allocated and large enough (staging never allocates).
    ///
    /// [`checksum::copy_accumulate_at`]: crate::wire::checksum::copy_accumulate_at
    pub fn stage(&mut self, data: &[u8], sum: u64) -> Option<u64> {
        let ring = self.buf.len();
        let len = data.len();
        if self.ooo.is_some() || len == 0 || self.readable() + len > ring {
            return None;
        }
        let (pos, first) = self.span(0, len);
        let (d0, d1) = data.split_at(first);
        let sum = checksum::copy_accumulate_at(sum, &mut self.buf[pos..pos + first], d0, false);
        if d1.is_empty() {
            // The usual case: the data does not wrap the ring.
            return Some(sum);
        }
        Some(checksum::copy_accumulate_at(
            sum,
            &mut self.buf[..len - first],
            d1,
            first % 2 == 1,
        ))
    }

    /// [`RecvBuffer::write_at`]; with `placed`, `data` has been [`RecvBuffer::stage`]d
    /// at RCV.NXT since the last change to the buffer, and is taken as it lies there
    /// instead of being copied again (when it lands in order at `off` 0; otherwise it
    /// is copied as usual).
    pub fn write_placed(&mut self, off: usize, data: &[u8], placed: bool) -> Option<Written> {
        let win = self.room();
        if off >= win || data.is_empty() {
            return Some(Written {
                advanced: 0,
                accepted: 0,
                out_of_order: off > 0,
            });
        }
        let len = data.len().min(win - off);
        let in_order = off == 0 && self.ooo.is_none();
        if !in_order {
            self.insert_range(off as u32, (off + len) as u32)?;
        }
        self.reserve(self.readable() + off + len);
        if !(placed && in_order) {
            let (pos, first) = self.span(off, len);
            self.buf[pos..pos + first].copy_from_slice(&data[..first]);
            self.buf[..len - first].copy_from_slice(&data[first..len]);
        }
        if in_order {
            // The common case: no range list to touch (and none to allocate).
            self.readable += len as u32;
            return Some(Written {
                advanced: len,
                accepted: len,
                out_of_order: false,
            });
        }
        let mut advanced = 0;
        if let Some(ooo) = self.ooo.as_deref_mut() {
            if let Some(&(0, e)) = ooo.first() {
                advanced = e as usize;
                ooo.remove(0);
                for r in ooo.iter_mut() {
                    r.0 -= e;
                    r.1 -= e;
                }
                self.readable += e;
            }
            if ooo.is_empty() {
                // The last gap closed: the list goes back.
                self.ooo = None;
            }
        }
        Some(Written {
            advanced,
            accepted: len,
            out_of_order: off > 0,
        })
    }

    /// Where `len` bytes at `off` past the readable data go in the ring: the position
    /// of the first, and how many fit before the ring's end (the rest wrap to 0).
    #[inline]
    fn span(&self, off: usize, len: usize) -> (usize, usize) {
        let ring = self.buf.len();
        let pos = super::ring::wrap(self.head as usize + self.readable() + off, ring);
        (pos, len.min(ring - pos))
    }

    /// Grows the ring (keeping its contents, unwrapped to start at 0) so that `end`
    /// bytes from the head fit; `end` never exceeds `cap`.
    fn reserve(&mut self, end: usize) {
        let old = self.buf.len();
        if end <= old {
            return;
        }
        let mut size = old.max(MIN_RING);
        while size < end {
            size *= 2;
        }
        let mut ring = super::ring::alloc(size.min(self.capacity() + self.slack as usize));
        let head = self.head as usize;
        let first = old - head;
        ring[..first].copy_from_slice(&self.buf[head..]);
        ring[first..old].copy_from_slice(&self.buf[..head]);
        super::ring::free(core::mem::replace(&mut self.buf, ring));
        self.head = 0;
    }

    /// Bytes of memory the ring holds now.
    pub fn allocated(&self) -> usize {
        self.buf.len()
    }

    /// Inserts `[s, e)` into the range list, merging; `None` if it would exceed the limit.
    fn insert_range(&mut self, s: u32, e: u32) -> Option<()> {
        let ooo = self.out_of_order();
        let i = ooo.partition_point(|r| r.1 < s);
        let mut j = i;
        let (mut ns, mut ne) = (s, e);
        while j < ooo.len() && ooo[j].0 <= e {
            ns = ns.min(ooo[j].0);
            ne = ne.max(ooo[j].1);
            j += 1;
        }
        if i == j && ooo.len() >= MAX_OOO_RANGES && s != 0 {
            return None;
        }
        let ooo = self.ooo.get_or_insert_with(Box::default);
        if i == j {
            ooo.insert(i, (ns, ne));
        } else {
            ooo.splice(i..j, [(ns, ne)]);
        }
        Some(())
    }

    /// Copies readable bytes into `out`, returning how many.
    pub fn read(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.readable());
        if n == 0 {
            return 0;
        }
        let head = self.head as usize;
        let first = n.min(self.buf.len() - head);
        out[..first].copy_from_slice(&self.buf[head..head + first]);
        out[first..n].copy_from_slice(&self.buf[..n - first]);
        self.discard(n);
        n
    }

    /// Drops `n` readable bytes without copying them.
    pub fn discard(&mut self, n: usize) {
        let n = n.min(self.readable());
        self.head = super::ring::wrap(self.head as usize + n, self.buf.len()) as u32;
        self.readable -= n as u32;
        if self.readable == 0 && self.ooo.is_none() && self.buf.len() <= KEEP_ABOVE {
            super::ring::free(core::mem::take(&mut self.buf));
            self.head = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_ring_grows_keeping_wrapped_and_out_of_order_data() {
        let mut b = RecvBuffer::new(40_000);
        let byte = |i: usize| (i % 251) as u8;
        let data: Vec<u8> = (0..200_000).map(byte).collect();
        assert_eq!(b.allocated(), 0, "nothing allocated before the first byte");
        // 3000 in order, read 2500 (the head moves), then wrap around the 4 KiB ring.
        b.write_at(0, &data[..3000]).unwrap();
        assert_eq!(b.allocated(), 4096);
        let mut out = vec![0u8; 2500];
        assert_eq!(b.read(&mut out), 2500);
        assert_eq!(out, &data[..2500]);
        b.write_at(0, &data[3000..6000]).unwrap();
        assert_eq!(b.allocated(), 4096, "3500 bytes fit the wrapped ring");
        // Out of order far beyond the ring: it grows, keeping both regions in place.
        b.write_at(20_000, &data[26_000..27_000]).unwrap();
        assert_eq!(b.allocated(), 32_768);
        let w = b.write_at(0, &data[6_000..26_000]).unwrap();
        assert_eq!(
            w.advanced, 21_000,
            "the gap filled up to the end of the held range"
        );
        let mut all = vec![0u8; 40_000];
        let n = b.read(&mut all);
        assert_eq!(&all[..n], &data[2500..27_000]);
        // Never beyond the capacity.
        b.write_at(0, &data[27_000..67_000]).unwrap();
        assert_eq!(b.allocated(), 40_000);
        assert_eq!(b.readable(), 40_000);
        let n = b.read(&mut all);
        assert_eq!(&all[..n], &data[27_000..67_000]);
        assert_eq!(b.allocated(), 40_000, "a large ring is kept once grown");
        // A small one is given back when emptied.
        let mut small = RecvBuffer::new(40_000);
        small.write_at(0, &data[..100]).unwrap();
        assert_eq!(small.allocated(), 512);
        assert_eq!(small.read(&mut all), 100);
        assert_eq!(small.allocated(), 0);
    }

    #[test]
    fn staged_data_is_summed_unreadable_until_placed_and_never_harms_held_data() {
        let mut b = RecvBuffer::new(40_000);
        let data: Vec<u8> = (0..6000).map(|i| (i * 7 % 253) as u8).collect();
        let sum_of = |d: &[u8]| checksum::fold(checksum::accumulate(5, d));
        // No ring yet: staging never allocates.
        assert_eq!(b.stage(&data[..100], 5), None);
        b.write_at(0, &data[..3001]).unwrap();
        let mut out = vec![0u8; 6000];
        assert_eq!(b.read(&mut out[..3000]), 3000);
        // One byte readable at offset 3000 of a 4 KiB ring: 2,000 bytes staged after
        // it split 1,095 / 905 at the ring's end, the second part at an odd offset.
        let seg = &data[3001..5001];
        let sum = b.stage(seg, 5).expect("fits the ring");
        assert_eq!(checksum::fold(sum), sum_of(seg));
        assert_eq!(b.readable(), 1, "staged bytes are not readable");
        let w = b.write_placed(0, seg, true).unwrap();
        assert_eq!((w.advanced, w.accepted), (2000, 2000));
        assert_eq!(b.read(&mut out), 2001);
        assert_eq!(&out[..2001], &data[3000..5001]);
        // Held out-of-order data: nothing is staged (it could be overwritten).
        b.write_at(10, &data[..10]).unwrap();
        assert_eq!(b.stage(&data[..100], 5), None);
        // Too large for the ring as allocated: nothing staged either.
        let mut c = RecvBuffer::new(40_000);
        c.write_at(0, b"x").unwrap();
        assert_eq!(c.stage(&data, 5), None);
    }

    #[test]
    fn in_order_data_is_readable() {
        let mut b = RecvBuffer::new(16);
        let w = b.write_at(0, b"hello").unwrap();
        assert_eq!(
            w,
            Written {
                advanced: 5,
                accepted: 5,
                out_of_order: false
            }
        );
        let mut out = [0u8; 16];
        assert_eq!(b.read(&mut out), 5);
        assert_eq!(&out[..5], b"hello");
    }

    #[test]
    fn out_of_order_fills_the_gap() {
        let mut b = RecvBuffer::new(16);
        assert_eq!(b.write_at(3, b"def").unwrap().advanced, 0);
        assert_eq!(b.out_of_order(), &[(3, 6)]);
        assert_eq!(b.write_at(0, b"abc").unwrap().advanced, 6);
        assert!(!b.has_out_of_order());
        let mut out = [0u8; 16];
        assert_eq!(b.read(&mut out), 6);
        assert_eq!(&out[..6], b"abcdef");
    }

    #[test]
    fn window_edge_cuts_and_wraps() {
        let mut b = RecvBuffer::new(8);
        b.write_at(0, b"abcdef").unwrap();
        let mut out = [0u8; 4];
        b.read(&mut out);
        // 2 readable, window 6; writing 10 bytes keeps 6, wrapping the ring.
        let w = b.write_at(0, b"ghijklmnop").unwrap();
        assert_eq!(w.accepted, 6);
        let mut all = [0u8; 8];
        assert_eq!(b.read(&mut all), 8);
        assert_eq!(&all, b"efghijkl");
        assert_eq!(b.write_at(8, b"x").unwrap().accepted, 0);
    }

    #[test]
    fn too_many_gaps_drop_the_segment() {
        let mut b = RecvBuffer::new(1024);
        for i in 0..MAX_OOO_RANGES {
            assert!(b.write_at(2 + i * 2, b"x").is_some());
        }
        assert!(b.write_at(900, b"y").is_none());
        // Data that closes gaps is always taken.
        assert!(b.write_at(0, &[b'z'; 100]).is_some());
        assert_eq!(b.readable(), 100);
    }

    proptest! {
        /// Any delivery order, with duplicates and overlaps, reassembles the original.
        #[test]
        fn reassembles_any_order(
            cuts in proptest::collection::vec(1usize..40, 1..30),
            order in proptest::collection::vec(any::<u16>(), 60),
        ) {
            let total: usize = cuts.iter().sum();
            let data: Vec<u8> = (0..total).map(|i| (i * 7 + 3) as u8).collect();
            let mut segs = Vec::new();
            let mut at = 0;
            for c in &cuts {
                segs.push((at, at + c));
                at += c;
            }
            // Deliver in a shuffled order, each segment twice, with an overlapping extra.
            let mut deliveries: Vec<(usize, usize)> = segs.iter().chain(segs.iter()).copied().collect();
            for i in 0..deliveries.len() {
                let j = usize::from(order[i % order.len()]) % deliveries.len();
                deliveries.swap(i, j);
            }
            let mut b = RecvBuffer::new(total.max(1));
            let mut rcv_nxt = 0usize;
            for (s, e) in deliveries {
                if e <= rcv_nxt {
                    continue;
                }
                let s2 = s.max(rcv_nxt);
                let w = b.write_at(s2 - rcv_nxt, &data[s2..e]).unwrap();
                rcv_nxt += w.advanced;
            }
            prop_assert_eq!(rcv_nxt, total);
            let mut out = vec![0u8; total];
            prop_assert_eq!(b.read(&mut out), total);
            prop_assert_eq!(out, data);
        }

        /// Arbitrary segments (any start, any length, overlapping and repeated, some
        /// past the window) written in any order with reads in between: RCV.NXT is
        /// always the end of the contiguous prefix received, the out-of-order list is
        /// exactly the runs received beyond it (so sorted, disjoint, non-adjacent and
        /// inside the window), and what is read is the original stream.
        #[test]
        fn matches_a_coverage_model(
            total in 1usize..600,
            cap in 1usize..700,
            segs in proptest::collection::vec((any::<u16>(), 1usize..120, any::<u8>()), 1..80),
        ) {
            let data: Vec<u8> = (0..total).map(|i| (i * 13 + 5) as u8).collect();
            let mut b = RecvBuffer::new(cap);
            let mut have = vec![false; total];
            let (mut rcv_nxt, mut read) = (0usize, 0usize);
            let mut out = Vec::new();
            let mut writes = segs.clone();
            // Finish with the whole stream in order so that every gap closes.
            writes.extend((0..total).step_by(50).map(|s| (s as u16, 50, 255)));
            for (start, len, rd) in writes {
                let start = usize::from(start) % total;
                let end = (start + len).min(total);
                if end > rcv_nxt {
                    let s2 = start.max(rcv_nxt);
                    let before = b.out_of_order().len();
                    match b.write_at(s2 - rcv_nxt, &data[s2..end]) {
                        Some(w) => {
                            let room = cap - b.readable() + w.advanced;
                            prop_assert_eq!(w.accepted, (end - s2).min(room.saturating_sub(s2 - rcv_nxt)));
                            for h in &mut have[s2..s2 + w.accepted] {
                                *h = true;
                            }
                            rcv_nxt += w.advanced;
                        }
                        None => prop_assert!(before >= MAX_OOO_RANGES && s2 > rcv_nxt),
                    }
                }
                // The model: RCV.NXT ends the received prefix; the rest are runs.
                let want_nxt = have.iter().position(|h| !h).unwrap_or(total);
                prop_assert_eq!(rcv_nxt, want_nxt);
                let mut runs = Vec::new();
                let mut i = want_nxt;
                while i < total {
                    if have[i] {
                        let j = have[i..].iter().position(|h| !h).map_or(total, |k| i + k);
                        runs.push(((i - rcv_nxt) as u32, (j - rcv_nxt) as u32));
                        i = j;
                    } else {
                        i += 1;
                    }
                }
                prop_assert_eq!(b.out_of_order(), &runs[..]);
                prop_assert!(runs.len() <= MAX_OOO_RANGES + 1);
                if let Some(&(_, e)) = runs.last() {
                    prop_assert!(e as usize <= b.window());
                }
                prop_assert_eq!(b.readable(), rcv_nxt - read);
                // Sometimes the application reads.
                let mut chunk = vec![0u8; usize::from(rd)];
                let n = b.read(&mut chunk);
                out.extend_from_slice(&chunk[..n]);
                read += n;
            }
            let mut rest = vec![0u8; cap];
            loop {
                let n = b.read(&mut rest);
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&rest[..n]);
            }
            prop_assert_eq!(&out[..], &data[..out.len()]);
        }
    }
}
