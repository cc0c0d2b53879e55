//! The send buffer: bytes the application wrote that the peer has not yet acknowledged.

use super::Config;

/// A bounded byte queue. Its front is the oldest unacknowledged byte; bytes are read
/// out by offset for (re)transmission and dropped from the front when acknowledged.
///
/// A ring of `len` bytes from `head`, 24 bytes in the connection: its capacity is the
/// connection's setting, passed to [`SendBuffer::write`] and [`SendBuffer::free`]
/// rather than kept here, and positions take 32 bits (the capacity is at most
/// [`Config::MAX_BUFFER`]).
#[derive(Clone, Debug, Default)]
pub struct SendBuffer {
    ring: Box<[u8]>,
    head: u32,
    len: u32,
}

/// Smallest ring allocated.
const MIN_RING: usize = 8;

impl SendBuffer {
    /// An empty buffer. Memory is taken as data arrives (the ring doubles, up to the
    /// capacity). Once everything is acknowledged a small ring (up to
    /// [`super::recv_buf::KEEP_ABOVE`]) is given back; a larger one is kept, so a bulk
    /// sender does not reallocate every time the peer acknowledges everything.
    pub fn new() -> SendBuffer {
        SendBuffer::default()
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room left in a buffer of `cap` bytes (taken as at most [`Config::MAX_BUFFER`]).
    pub fn free(&self, cap: usize) -> usize {
        cap.min(Config::MAX_BUFFER).saturating_sub(self.len())
    }

    /// Appends as much of `src` as a buffer of `cap` bytes has room for; returns how
    /// much.
    pub fn write(&mut self, src: &[u8], cap: usize) -> usize {
        let n = src.len().min(self.free(cap));
        if n == 0 {
            return 0;
        }
        let len = self.len();
        self.grow(len + n, cap.min(Config::MAX_BUFFER));
        let size = self.ring.len();
        let tail = super::ring::wrap(self.head as usize + len, size);
        let first = n.min(size - tail);
        self.ring[tail..tail + first].copy_from_slice(&src[..first]);
        self.ring[..n - first].copy_from_slice(&src[first..n]);
        self.len += n as u32;
        n
    }

    /// Makes the ring hold at least `need` bytes (at most `cap`, which is at least
    /// `need`), doubling it; the contents move to its start.
    fn grow(&mut self, need: usize, cap: usize) {
        let old = self.ring.len();
        if need <= old {
            return;
        }
        let mut size = old.max(MIN_RING);
        while size < need {
            size *= 2;
        }
        let mut ring = super::ring::alloc(size.min(cap).max(need));
        let (a, b) = self.slices(0, self.len());
        ring[..a.len()].copy_from_slice(a);
        ring[a.len()..a.len() + b.len()].copy_from_slice(b);
        super::ring::free(core::mem::replace(&mut self.ring, ring));
        self.head = 0;
    }

    /// The bytes at `[off, off + len)` as up to two slices (the ring may wrap).
    #[inline]
    pub fn slices(&self, off: usize, len: usize) -> (&[u8], &[u8]) {
        let held = self.len();
        let end = (off + len).min(held);
        let off = off.min(end);
        if end == off {
            return (&[], &[]);
        }
        let size = self.ring.len();
        let head = self.head as usize;
        // The held bytes are ring[head..] then ring[..wrap].
        let first_len = held.min(size - head);
        let (a, b) = (
            &self.ring[head..head + first_len],
            &self.ring[..held - first_len],
        );
        if end <= a.len() {
            (&a[off..end], &[])
        } else if off >= a.len() {
            (&b[off - a.len()..end - a.len()], &[])
        } else {
            (&a[off..], &b[..end - a.len()])
        }
    }

    /// Drops `n` acknowledged bytes from the front.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len());
        if n == 0 {
            return;
        }
        self.head = super::ring::wrap(self.head as usize + n, self.ring.len()) as u32;
        self.len -= n as u32;
        if self.len == 0 {
            self.head = 0;
            if self.ring.len() <= super::recv_buf::KEEP_ABOVE {
                super::ring::free(core::mem::take(&mut self.ring));
            }
        }
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        super::ring::free(core::mem::take(&mut self.ring));
        *self = SendBuffer::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Against a `VecDeque` model: any interleaving of writes, acknowledgments and
        /// reads at any offset gives the model's bytes; the ring never exceeds the
        /// capacity, and a small one is given back once everything is acknowledged.
        #[test]
        fn matches_a_queue_model(
            cap in 1usize..70_000,
            ops in proptest::collection::vec((0u8..3, 0usize..20_000, 0usize..20_000), 1..60),
        ) {
            let mut b = SendBuffer::new();
            let mut model = std::collections::VecDeque::new();
            let mut next = 0u32;
            for (op, x, y) in ops {
                match op {
                    0 => {
                        let data: Vec<u8> = (0..x).map(|i| (next as usize + i) as u8).collect();
                        let n = b.write(&data, cap);
                        prop_assert_eq!(n, x.min(cap - model.len()));
                        model.extend(&data[..n]);
                        next += n as u32;
                    }
                    1 => {
                        let n = x.min(model.len() + 1);
                        b.consume(n);
                        model.drain(..n.min(model.len()));
                    }
                    _ => {
                        let (p, q) = b.slices(x, y);
                        let got: Vec<u8> = p.iter().chain(q).copied().collect();
                        let want: Vec<u8> = model.iter().skip(x).take(y).copied().collect();
                        prop_assert_eq!(got, want);
                    }
                }
                prop_assert_eq!(b.len(), model.len());
                prop_assert_eq!(b.free(cap), cap - model.len());
                prop_assert!(b.ring.len() <= cap);
                if model.is_empty() && cap <= crate::tcp::recv_buf::KEEP_ABOVE {
                    prop_assert_eq!(b.ring.len(), 0);
                }
            }
        }
    }

    #[test]
    fn slices_across_the_wrap() {
        let mut b = SendBuffer::new();
        assert_eq!(b.write(b"abcdef", 8), 6);
        b.consume(4);
        assert_eq!(b.write(b"ghijklmn", 8), 6);
        assert_eq!(b.len(), 8);
        let (x, y) = b.slices(1, 5);
        let joined: Vec<u8> = x.iter().chain(y).copied().collect();
        assert_eq!(joined, b"fghij");
        let (x, y) = b.slices(6, 10);
        assert_eq!([x, y].concat(), b"kl");
        assert_eq!(b.free(8), 0);
        assert_eq!(b.write(b"z", 8), 0);
    }
}
