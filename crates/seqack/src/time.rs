//! Time as the core sees it: a value passed in by the caller, never read from a clock.
//!
//! [`Instant`] counts microseconds from an origin the driver chooses (virtual time on the
//! simulated link, a monotonic clock on a real device). The core only compares and adds.

use core::fmt;
use core::ops::{Add, AddAssign, Sub};
pub use core::time::Duration;

/// A point in time, in microseconds since the driver's origin.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The driver's origin.
    pub const ZERO: Instant = Instant(0);

    /// An instant `us` microseconds after the origin.
    pub const fn from_micros(us: u64) -> Instant {
        Instant(us)
    }

    /// An instant `ms` milliseconds after the origin.
    pub const fn from_millis(ms: u64) -> Instant {
        Instant(ms * 1000)
    }

    /// An instant `s` seconds after the origin.
    pub const fn from_secs(s: u64) -> Instant {
        Instant(s * 1_000_000)
    }

    /// Microseconds since the origin.
    pub const fn total_micros(self) -> u64 {
        self.0
    }

    /// Milliseconds since the origin (truncated).
    pub const fn total_millis(self) -> u64 {
        self.0 / 1000
    }

    /// `us` microseconds later (saturating): the core's own timer arithmetic, which
    /// keeps its durations as whole microseconds rather than converting through
    /// [`Duration`].
    #[inline]
    pub(crate) const fn plus_micros(self, us: u64) -> Instant {
        Instant(self.0.saturating_add(us))
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.micros_since(earlier))
    }

    /// [`Instant::saturating_since`] in whole microseconds.
    #[inline]
    pub(crate) const fn micros_since(self, earlier: Instant) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    #[inline]
    fn add(self, d: Duration) -> Instant {
        self.plus_micros(micros(d))
    }
}

/// A duration in whole microseconds, saturating at `u64::MAX` (in 64-bit arithmetic:
/// `Duration::as_micros` goes through `u128`).
#[inline]
pub(crate) const fn micros(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000)
        .saturating_add(d.subsec_micros() as u64)
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturating difference: an earlier minus a later instant is zero.
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_since(rhs)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let a = Instant::from_millis(5);
        assert_eq!(a + Duration::from_millis(2), Instant::from_millis(7));
        assert_eq!(Instant::from_millis(7) - a, Duration::from_millis(2));
        assert_eq!(a - Instant::from_millis(7), Duration::ZERO);
        assert_eq!(
            Instant::from_micros(u64::MAX - 1) + Duration::MAX,
            Instant::from_micros(u64::MAX)
        );
        // Whole microseconds, truncated as `Duration::as_micros` truncates.
        assert_eq!(a + Duration::from_nanos(1_999), Instant::from_micros(5_001));
        assert_eq!(micros(Duration::new(3, 7_654_321)), 3_007_654);
        assert_eq!(micros(Duration::MAX), u64::MAX);
        assert_eq!(a.plus_micros(u64::MAX), Instant::from_micros(u64::MAX));
    }
}
