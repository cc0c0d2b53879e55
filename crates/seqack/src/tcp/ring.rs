//! Memory for the send and receive rings, with a small per-thread cache of the smallest.
//!
//! A connection that carries one short request and one short response allocates a
//! small ring for each direction and frees it as soon as it is drained (an idle
//! connection holds no ring). glibc's per-thread cache keeps only seven chunks of each
//! size and `calloc` bypasses it, so a few dozen such connections in flight put every
//! ring allocation and free on the allocator's slow path. Rings whose size is a power
//! of two from [`MIN`] to [`MAX`] bytes are therefore kept here when freed, at most
//! [`PER_SIZE`] of each size per thread (about 130 KiB at worst), and handed out again
//! zeroed: to the caller, the same as a fresh allocation.

use std::cell::RefCell;

/// The smallest ring size kept.
const MIN: usize = 8;
/// The largest ring size kept.
const MAX: usize = 1024;
/// Sizes kept: `MIN`, 2 `MIN`, ... `MAX`.
const SIZES: usize = (MAX / MIN).trailing_zeros() as usize + 1;
/// Rings kept per size.
const PER_SIZE: usize = 64;

thread_local! {
    static SPARE: RefCell<[Vec<Box<[u8]>>; SIZES]> =
        const { RefCell::new([const { Vec::new() }; SIZES]) };
}

/// The cache slot for rings of `len` bytes, if they are kept.
fn size_class(len: usize) -> Option<usize> {
    (len.is_power_of_two() && (MIN..=MAX).contains(&len))
        .then(|| (len / MIN).trailing_zeros() as usize)
}

/// `pos % size` for a `pos` below `2 * size` (a position in the ring plus at most
/// the ring's length): one compare, where the remainder would be a division on every
/// segment.
#[inline(always)]
pub(super) fn wrap(pos: usize, size: usize) -> usize {
    debug_assert!(
        pos < 2 * size || pos == 0,
        "{pos} is more than one lap of {size}"
    );
    if pos >= size {
        pos - size
    } else {
        pos
    }
}

/// A zeroed ring of `len` bytes.
pub(super) fn alloc(len: usize) -> Box<[u8]> {
    if let Some(c) = size_class(len) {
        // `try_with`: during thread teardown the cache may be gone; allocate then.
        let spare = SPARE
            .try_with(|s| s.try_borrow_mut().ok().and_then(|mut s| s[c].pop()))
            .ok()
            .flatten();
        if let Some(mut ring) = spare {
            ring.fill(0);
            return ring;
        }
    }
    vec![0u8; len].into_boxed_slice()
}

/// Gives a ring back (an empty one is simply dropped). Inlined: most calls hand back
/// the empty ring of an idle direction, which costs nothing to drop.
#[inline]
pub(super) fn free(ring: Box<[u8]>) {
    match size_class(ring.len()) {
        Some(c) => keep(c, ring),
        None => drop(ring),
    }
}

#[inline(never)]
fn keep(c: usize, ring: Box<[u8]>) {
    let _ = SPARE.try_with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            if s[c].len() < PER_SIZE {
                s[c].push(ring);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_kept_are_the_powers_of_two_from_min_to_max() {
        assert_eq!(size_class(MIN), Some(0));
        assert_eq!(size_class(MAX), Some(SIZES - 1));
        assert_eq!(size_class(512), Some(6));
        for len in [0, 1, 4, MIN + 1, 600, MAX * 2, 4096] {
            assert_eq!(size_class(len), None, "{len}");
        }
    }

    #[test]
    fn a_reused_ring_comes_back_zeroed_and_the_cache_is_bounded() {
        // Fill the cache for 64-byte rings beyond its bound with dirty rings.
        for _ in 0..PER_SIZE + 5 {
            free(vec![0xAB; 64].into_boxed_slice());
        }
        let kept = SPARE.with_borrow(|s| s[size_class(64).unwrap()].len());
        assert_eq!(kept, PER_SIZE);
        for _ in 0..PER_SIZE + 5 {
            let r = alloc(64);
            assert_eq!(r.len(), 64);
            assert!(r.iter().all(|&b| b == 0));
        }
        assert_eq!(SPARE.with_borrow(|s| s[size_class(64).unwrap()].len()), 0);
        // Sizes outside the cache are plain allocations.
        free(vec![1; 600].into_boxed_slice());
        assert!(alloc(600).iter().all(|&b| b == 0));
    }
}
