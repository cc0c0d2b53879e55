//! Congestion control (RFC 5681 with the NewReno recovery of RFC 6582).
//!
//! Algorithms implement [`CongestionControl`]; the connection owns loss detection
//! (duplicate ACKs, the recovery point, RTO) and asks the algorithm only for window math.

/// The window arithmetic of a congestion control algorithm. All sizes in bytes.
pub trait CongestionControl {
    /// The congestion window.
    fn cwnd(&self) -> u32;
    /// The slow-start threshold.
    fn ssthresh(&self) -> u32;
    /// New data was acknowledged outside recovery.
    fn on_ack(&mut self, acked: u32, mss: u32);
    /// Fast retransmit: three duplicate ACKs with `flight` bytes outstanding.
    fn on_fast_retransmit(&mut self, flight: u32, mss: u32);
    /// A duplicate ACK arrived during fast recovery (window inflation).
    fn on_dupack_in_recovery(&mut self, mss: u32);
    /// A partial ACK acknowledged `acked` bytes during recovery (RFC 6582 3.2 step 3).
    fn on_partial_ack(&mut self, acked: u32, mss: u32);
    /// Recovery ended: the recovery point was acknowledged.
    fn on_recovery_exit(&mut self, flight: u32, mss: u32);
    /// The retransmission timer expired with `flight` bytes outstanding.
    fn on_rto(&mut self, flight: u32, mss: u32);
}

/// NewReno: slow start, congestion avoidance, fast retransmit and fast recovery.
#[derive(Clone, Debug)]
pub struct NewReno {
    cwnd: u32,
    ssthresh: u32,
    /// Bytes acknowledged since cwnd last grew in congestion avoidance.
    acked_in_ca: u32,
}

impl NewReno {
    /// A window of `initial_segments` segments of `mss` bytes (RFC 6928), no threshold.
    pub fn new(initial_segments: u32, mss: u32) -> NewReno {
        NewReno {
            cwnd: initial_segments.max(1) * mss,
            ssthresh: u32::MAX,
            acked_in_ca: 0,
        }
    }
}

impl CongestionControl for NewReno {
    fn cwnd(&self) -> u32 {
        self.cwnd
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    fn on_ack(&mut self, acked: u32, mss: u32) {
        if self.cwnd < self.ssthresh {
            // RFC 5681 3.1: slow start, at most one MSS per ACK (with ABC, L = 1).
            self.cwnd = self.cwnd.saturating_add(acked.min(mss));
        } else {
            // Congestion avoidance: one MSS per window of acknowledged data.
            self.acked_in_ca = self.acked_in_ca.saturating_add(acked);
            if self.acked_in_ca >= self.cwnd {
                self.acked_in_ca -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(mss);
            }
        }
    }

    fn on_fast_retransmit(&mut self, flight: u32, mss: u32) {
        self.ssthresh = (flight / 2).max(2 * mss);
        self.cwnd = self.ssthresh + 3 * mss;
    }

    fn on_dupack_in_recovery(&mut self, mss: u32) {
        self.cwnd = self.cwnd.saturating_add(mss);
    }

    fn on_partial_ack(&mut self, acked: u32, mss: u32) {
        self.cwnd = self.cwnd.saturating_sub(acked).saturating_add(mss).max(mss);
    }

    fn on_recovery_exit(&mut self, flight: u32, mss: u32) {
        // RFC 6582 3.2 step 4, option (1): min(ssthresh, max(FlightSize, SMSS) + SMSS), so
        // a full ACK that empties the pipe leaves two segments, not one.
        self.cwnd = self.ssthresh.min(flight.max(mss).saturating_add(mss));
        self.acked_in_ca = 0;
    }

    fn on_rto(&mut self, flight: u32, mss: u32) {
        // RFC 5681 3.1 equation 4, and a loss window of one segment.
        self.ssthresh = (flight / 2).max(2 * mss);
        self.cwnd = mss;
        self.acked_in_ca = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_start_then_avoidance() {
        let mss = 1000;
        let mut c = NewReno::new(10, mss);
        assert_eq!(c.cwnd(), 10_000);
        c.on_ack(1000, mss);
        assert_eq!(c.cwnd(), 11_000);
        c.on_rto(20_000, mss);
        assert_eq!((c.cwnd(), c.ssthresh()), (1000, 10_000));
        for _ in 0..9 {
            c.on_ack(1000, mss);
        }
        assert_eq!(c.cwnd(), 10_000);
        // Now in avoidance: a whole window of ACKs adds one MSS.
        for _ in 0..10 {
            c.on_ack(1000, mss);
        }
        assert_eq!(c.cwnd(), 11_000);
    }

    #[test]
    fn fast_recovery_inflates_and_deflates() {
        let mss = 1000;
        let mut c = NewReno::new(10, mss);
        c.on_fast_retransmit(10_000, mss);
        assert_eq!((c.ssthresh(), c.cwnd()), (5000, 8000));
        c.on_dupack_in_recovery(mss);
        assert_eq!(c.cwnd(), 9000);
        c.on_recovery_exit(4000, mss);
        assert_eq!(c.cwnd(), 5000);
    }
}
