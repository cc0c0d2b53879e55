//! [`Word`]: a 32-bit field that is always read and written whole.
//!
//! A bit field in a plain `u32` (`self.bits |= BIT`) is compiled by LLVM into a one-byte
//! `or`/`and` on the byte that holds the bit. When the whole word is loaded soon after,
//! the 4-byte load cannot be forwarded from that 1-byte store and waits until the store
//! reaches the cache: a store-forwarding stall of a dozen cycles or more, on paths that
//! set a flag and test another right away (a connection's `set_ack_now` followed by
//! `fin_rcvd`; a slot's dirty bit cleared in `poll_transmit` and its listener read in
//! the bookkeeping that follows). A relaxed atomic load is never narrowed or merged,
//! so every access is the whole word. It compiles to a plain `mov`; the store goes
//! through `get_mut`, a plain 4-byte store (`&mut self`: no atomic instruction
//! anywhere). The value lives in one `AtomicU32`, the size and alignment of a `u32`.

use std::sync::atomic::{AtomicU32, Ordering};

/// A `u32` read and written whole (see the module documentation).
#[derive(Default, Debug)]
pub(crate) struct Word(AtomicU32);

impl Word {
    /// A word holding `v`.
    pub(crate) const fn new(v: u32) -> Word {
        Word(AtomicU32::new(v))
    }

    /// The value.
    #[inline]
    pub(crate) fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }

    /// Replaces the value.
    #[inline]
    pub(crate) fn set(&mut self, v: u32) {
        *self.0.get_mut() = v;
    }
}

#[cfg(test)]
mod tests {
    use super::Word;

    #[test]
    fn holds_what_was_set_in_four_bytes() {
        let mut w = Word::new(0x8000_0001);
        assert_eq!(w.get(), 0x8000_0001);
        w.set(w.get() & !0x8000_0000);
        assert_eq!(w.get(), 1);
        assert_eq!(std::mem::size_of::<Word>(), 4);
        assert_eq!(Word::default().get(), 0);
    }
}
