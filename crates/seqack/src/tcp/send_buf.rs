//! The send buffer: bytes the application wrote that the peer has not yet acknowledged.

use std::collections::VecDeque;

/// A bounded byte queue. Its front is the oldest unacknowledged byte; bytes are read
/// out by offset for (re)transmission and dropped from the front when acknowledged.
#[derive(Clone, Debug)]
pub struct SendBuffer {
    data: VecDeque<u8>,
    cap: usize,
}

impl SendBuffer {
    /// An empty buffer holding at most `cap` bytes. Memory is taken as data arrives
    /// (growing by doubling). Once everything is acknowledged a small allocation (up to
    /// [`super::recv_buf::KEEP_ABOVE`]) is given back; a larger one is kept, so a bulk
    /// sender does not reallocate every time the peer acknowledges everything.
    pub fn new(cap: usize) -> SendBuffer {
        SendBuffer {
            data: VecDeque::new(),
            cap,
        }
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Room left.
    pub fn free(&self) -> usize {
        self.cap - self.data.len()
    }

    /// The configured capacity.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Appends as much of `src` as fits; returns how much.
    pub fn write(&mut self, src: &[u8]) -> usize {
        let n = src.len().min(self.free());
        self.data.extend(&src[..n]);
        n
    }

    /// The bytes at `[off, off + len)` as up to two slices (the ring may wrap).
    pub fn slices(&self, off: usize, len: usize) -> (&[u8], &[u8]) {
        let (a, b) = self.data.as_slices();
        let end = (off + len).min(self.data.len());
        let off = off.min(end);
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
        let n = n.min(self.data.len());
        self.data.drain(..n);
        if self.data.is_empty() && self.data.capacity() <= super::recv_buf::KEEP_ABOVE {
            self.data = VecDeque::new();
        }
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.data = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_across_the_wrap() {
        let mut b = SendBuffer::new(8);
        assert_eq!(b.write(b"abcdef"), 6);
        b.consume(4);
        assert_eq!(b.write(b"ghijklmn"), 6);
        assert_eq!(b.len(), 8);
        let (x, y) = b.slices(1, 5);
        let joined: Vec<u8> = x.iter().chain(y).copied().collect();
        assert_eq!(joined, b"fghij");
        let (x, y) = b.slices(6, 10);
        assert_eq!([x, y].concat(), b"kl");
        assert_eq!(b.free(), 0);
        assert_eq!(b.write(b"z"), 0);
    }
}
