//! Round-trip estimation and the retransmission timeout (RFC 6298), with Linux's bounds.

use crate::time::{micros, Duration};

/// SRTT/RTTVAR estimator. Before the first sample the RTO is the configured initial one.
///
/// Times are kept as whole microseconds in `u32`s (up to 71 minutes, far above the
/// 120 s RTO cap; longer samples saturate): 12 bytes a connection instead of the 48 of
/// three `Duration`s. The RTO's bounds are the connection's settings, passed in as
/// [`RtoBounds`] rather than copied into every estimator.
#[derive(Clone, Debug)]
pub struct RttEstimator {
    /// `NONE` until the first sample.
    srtt: u32,
    rttvar: u32,
    rto: u32,
}

/// The RTO's lower and upper bounds (Linux: 200 ms and 120 s), in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtoBounds {
    min: u32,
    max: u32,
}

impl RtoBounds {
    /// Bounds of `min` and `max` (a `max` below `min` is taken as `min`).
    #[inline]
    pub fn new(min: Duration, max: Duration) -> RtoBounds {
        RtoBounds {
            min: us(min),
            max: us(max).max(us(min)),
        }
    }
}

const NONE: u32 = u32::MAX;

#[inline]
fn us(d: Duration) -> u32 {
    micros(d).min(u64::from(NONE - 1)) as u32
}

fn dur(us: u32) -> Duration {
    Duration::from_micros(u64::from(us))
}

impl RttEstimator {
    /// A fresh estimator (RFC 6298 section 2.1).
    pub fn new(initial: Duration, b: RtoBounds) -> RttEstimator {
        RttEstimator {
            srtt: NONE,
            rttvar: 0,
            rto: us(initial).clamp(b.min, b.max),
        }
    }

    /// Feeds one RTT measurement (never from a retransmitted segment without timestamps:
    /// Karn's rule is the caller's job).
    pub fn sample(&mut self, r: Duration, b: RtoBounds) {
        self.sample_us(micros(r), b);
    }

    /// [`RttEstimator::sample`] of a measurement in microseconds (saturating).
    #[inline]
    pub(crate) fn sample_us(&mut self, r: u64, b: RtoBounds) {
        let r = r.min(u64::from(NONE - 1)) as u32;
        if self.srtt == NONE {
            // RFC 6298 2.2
            self.srtt = r;
            self.rttvar = r / 2;
        } else {
            // RFC 6298 2.3, alpha = 1/8, beta = 1/4 (in u64: no overflow).
            let (srtt, var) = (u64::from(self.srtt), u64::from(self.rttvar));
            let delta = srtt.abs_diff(u64::from(r));
            self.rttvar = ((var * 3 + delta) / 4) as u32;
            self.srtt = ((srtt * 7 + u64::from(r)) / 8) as u32;
        }
        // RTO = SRTT + max(G, 4 * RTTVAR). Linux uses its 200 ms minimum as G, so the
        // variance term never falls below it.
        let rto = u64::from(self.srtt) + (u64::from(self.rttvar) * 4).max(u64::from(b.min));
        self.rto = rto.clamp(u64::from(b.min), u64::from(b.max)) as u32;
    }

    /// RFC 6298 5.7: the handshake gave no RTT sample (its SYN or SYN-ACK was
    /// retransmitted), so data transfer starts with an RTO of at least `rto` (3 s). A
    /// later sample recomputes it.
    pub fn fallback(&mut self, rto: Duration, b: RtoBounds) {
        if self.srtt == NONE {
            self.rto = self.rto.max(us(rto)).clamp(b.min, b.max);
        }
    }

    /// The current RTO, before backoff.
    pub fn rto(&self) -> Duration {
        dur(self.rto)
    }

    /// The RTO after `backoff` doublings, capped at the maximum (RFC 6298 5.5).
    pub fn backed_off(&self, backoff: u32, b: RtoBounds) -> Duration {
        Duration::from_micros(self.backed_off_us(backoff, b))
    }

    /// [`RttEstimator::backed_off`] in microseconds.
    #[inline]
    pub(crate) fn backed_off_us(&self, backoff: u32, b: RtoBounds) -> u64 {
        let factor = 1u64 << backoff.min(16);
        (u64::from(self.rto) * factor).min(u64::from(b.max))
    }

    /// The smoothed RTT, once measured.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt_us().map(dur)
    }

    /// [`RttEstimator::srtt`] in microseconds.
    #[inline]
    pub(crate) fn srtt_us(&self) -> Option<u32> {
        (self.srtt != NONE).then_some(self.srtt)
    }

    /// The RTT variation.
    pub fn rttvar(&self) -> Duration {
        dur(self.rttvar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds() -> RtoBounds {
        RtoBounds::new(Duration::from_millis(200), Duration::from_secs(120))
    }

    fn est() -> RttEstimator {
        RttEstimator::new(Duration::from_secs(1), bounds())
    }

    #[test]
    fn initial_rto_is_one_second_and_backs_off_to_the_cap() {
        let e = est();
        assert_eq!(e.rto(), Duration::from_secs(1));
        assert_eq!(e.backed_off(3, bounds()), Duration::from_secs(8));
        assert_eq!(e.backed_off(10, bounds()), Duration::from_secs(120));
    }

    #[test]
    fn first_sample_sets_srtt_and_variance() {
        let mut e = est();
        e.sample(Duration::from_millis(100), bounds());
        assert_eq!(e.srtt(), Some(Duration::from_millis(100)));
        assert_eq!(e.rttvar(), Duration::from_millis(50));
        assert_eq!(e.rto(), Duration::from_millis(300));
    }

    #[test]
    fn tiny_rtts_floor_at_the_minimum() {
        let mut e = est();
        for _ in 0..20 {
            e.sample(Duration::from_micros(50), bounds());
        }
        assert!(e.rto() >= Duration::from_millis(200));
        assert!(e.rto() < Duration::from_millis(201));
    }
}
