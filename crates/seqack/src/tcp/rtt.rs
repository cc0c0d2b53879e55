//! Round-trip estimation and the retransmission timeout (RFC 6298), with Linux's bounds.

use crate::time::Duration;

/// SRTT/RTTVAR estimator. Before the first sample the RTO is the configured initial one.
#[derive(Clone, Debug)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    rto: Duration,
    min: Duration,
    max: Duration,
}

impl RttEstimator {
    /// A fresh estimator (RFC 6298 section 2.1).
    pub fn new(initial: Duration, min: Duration, max: Duration) -> RttEstimator {
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            rto: initial.clamp(min, max),
            min,
            max,
        }
    }

    /// Feeds one RTT measurement (never from a retransmitted segment without timestamps:
    /// Karn's rule is the caller's job).
    pub fn sample(&mut self, r: Duration) {
        match self.srtt {
            None => {
                // RFC 6298 2.2
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(srtt) => {
                // RFC 6298 2.3, alpha = 1/8, beta = 1/4
                let delta = srtt.abs_diff(r);
                self.rttvar = (self.rttvar * 3 + delta) / 4;
                self.srtt = Some((srtt * 7 + r) / 8);
            }
        }
        // RTO = SRTT + max(G, 4 * RTTVAR). Linux uses its 200 ms minimum as G, so the
        // variance term never falls below it.
        let srtt = self.srtt.unwrap_or(r);
        self.rto = (srtt + (self.rttvar * 4).max(self.min)).clamp(self.min, self.max);
    }

    /// RFC 6298 5.7: the handshake gave no RTT sample (its SYN or SYN-ACK was
    /// retransmitted), so data transfer starts with an RTO of at least `rto` (3 s). A
    /// later sample recomputes it.
    pub fn fallback(&mut self, rto: Duration) {
        if self.srtt.is_none() {
            self.rto = self.rto.max(rto).clamp(self.min, self.max);
        }
    }

    /// The current RTO, before backoff.
    pub fn rto(&self) -> Duration {
        self.rto
    }

    /// The RTO after `backoff` doublings, capped at the maximum (RFC 6298 5.5).
    pub fn backed_off(&self, backoff: u32) -> Duration {
        let factor = 1u32 << backoff.min(16);
        (self.rto * factor).min(self.max)
    }

    /// The smoothed RTT, once measured.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// The RTT variation.
    pub fn rttvar(&self) -> Duration {
        self.rttvar
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est() -> RttEstimator {
        RttEstimator::new(
            Duration::from_secs(1),
            Duration::from_millis(200),
            Duration::from_secs(120),
        )
    }

    #[test]
    fn initial_rto_is_one_second_and_backs_off_to_the_cap() {
        let e = est();
        assert_eq!(e.rto(), Duration::from_secs(1));
        assert_eq!(e.backed_off(3), Duration::from_secs(8));
        assert_eq!(e.backed_off(10), Duration::from_secs(120));
    }

    #[test]
    fn first_sample_sets_srtt_and_variance() {
        let mut e = est();
        e.sample(Duration::from_millis(100));
        assert_eq!(e.srtt(), Some(Duration::from_millis(100)));
        assert_eq!(e.rttvar(), Duration::from_millis(50));
        assert_eq!(e.rto(), Duration::from_millis(300));
    }

    #[test]
    fn tiny_rtts_floor_at_the_minimum() {
        let mut e = est();
        for _ in 0..20 {
            e.sample(Duration::from_micros(50));
        }
        assert!(e.rto() >= Duration::from_millis(200));
        assert!(e.rto() < Duration::from_millis(201));
    }
}
