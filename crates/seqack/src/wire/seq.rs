//! TCP sequence numbers: 32-bit values compared modulo 2^32 (RFC 9293 section 3.4).

use core::cmp::Ordering;
use core::fmt;
use core::ops::{Add, AddAssign, Sub};

/// A sequence number. Ordering is the RFC's wrapping comparison: `a < b` when `b` is
/// less than 2^31 ahead of `a`. It is only meaningful for numbers within 2^31 of each
/// other, which the window rules guarantee for every comparison the engine makes.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default)]
pub struct Seq(pub u32);

impl Seq {
    /// The distance from `earlier` to `self`, as an unsigned count. Use only when
    /// `earlier <= self` is known.
    pub fn since(self, earlier: Seq) -> u32 {
        self.0.wrapping_sub(earlier.0)
    }

    /// The signed distance `self - other`.
    pub fn diff(self, other: Seq) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// The larger of two sequence numbers under wrapping order.
    pub fn max(self, other: Seq) -> Seq {
        if self >= other {
            self
        } else {
            other
        }
    }

    /// The smaller of two sequence numbers under wrapping order.
    pub fn min(self, other: Seq) -> Seq {
        if self <= other {
            self
        } else {
            other
        }
    }

    /// `lo <= self < hi`, in wrapping order (an empty range holds nothing).
    pub fn in_range(self, lo: Seq, hi: Seq) -> bool {
        lo <= self && self < hi
    }
}

impl PartialOrd for Seq {
    fn partial_cmp(&self, other: &Seq) -> Option<Ordering> {
        Some(self.diff(*other).cmp(&0))
    }
}

impl Add<u32> for Seq {
    type Output = Seq;
    fn add(self, n: u32) -> Seq {
        Seq(self.0.wrapping_add(n))
    }
}

impl Add<usize> for Seq {
    type Output = Seq;
    fn add(self, n: usize) -> Seq {
        Seq(self.0.wrapping_add(n as u32))
    }
}

impl AddAssign<u32> for Seq {
    fn add_assign(&mut self, n: u32) {
        self.0 = self.0.wrapping_add(n);
    }
}

impl AddAssign<usize> for Seq {
    fn add_assign(&mut self, n: usize) {
        self.0 = self.0.wrapping_add(n as u32);
    }
}

impl Sub<u32> for Seq {
    type Output = Seq;
    fn sub(self, n: u32) -> Seq {
        Seq(self.0.wrapping_sub(n))
    }
}

impl fmt::Debug for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wraps_around_zero() {
        let a = Seq(u32::MAX - 1);
        let b = a + 3u32;
        assert_eq!(b, Seq(1));
        assert!(a < b);
        assert!(b > a);
        assert_eq!(b.since(a), 3);
        assert_eq!(a.diff(b), -3);
        assert!(Seq(0).in_range(a, b));
        assert!(!b.in_range(a, b));
    }

    proptest! {
        #[test]
        fn order_matches_distance(x: u32, d in 1u32..(1 << 31)) {
            let a = Seq(x);
            let b = a + d;
            prop_assert!(a < b);
            prop_assert!(b > a);
            prop_assert_eq!(b.since(a), d);
            prop_assert_eq!(a.max(b), b);
            prop_assert_eq!(a.min(b), a);
            prop_assert_eq!(b - d, a);
        }

        /// `in_range` is "offset from `lo` below the range's length", across the wrap.
        #[test]
        fn in_range_is_an_offset_test(lo: u32, len in 0u32..(1 << 31), off: u32) {
            let x = Seq(lo) + off;
            prop_assert_eq!(x.in_range(Seq(lo), Seq(lo) + len), off < len);
        }

        /// `diff` is the signed wrapping distance: antisymmetric, consistent with `<`,
        /// and inverse to adding.
        #[test]
        fn diff_is_signed_distance(x: u32, y: u32, d in -(1i32 << 30)..(1 << 30)) {
            let (a, b) = (Seq(x), Seq(y));
            prop_assert_eq!((a + d as u32).diff(a), d);
            if a.diff(b) != i32::MIN {
                prop_assert_eq!(a.diff(b), -b.diff(a));
                // Exactly one of <, ==, > holds.
                let n = [a < b, a == b, a > b].iter().filter(|&&t| t).count();
                prop_assert_eq!(n, 1);
                prop_assert_eq!(a < b, a.diff(b) < 0);
            }
            prop_assert_eq!(b.since(a), y.wrapping_sub(x));
            prop_assert_eq!(a + b.since(a), b);
        }
    }
}
