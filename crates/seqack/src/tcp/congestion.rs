//! Congestion control: NewReno (RFC 5681, RFC 6582) and CUBIC (RFC 9438, the default,
//! as on Linux), behind one trait.
//!
//! The connection owns loss detection (duplicate ACKs, the SACK scoreboard of RFC 6675,
//! the recovery point, the RTO) and asks the algorithm only for window arithmetic.
//! [`Congestion`] is the closed set of algorithms a connection can run: an enum rather
//! than a trait object, so a connection holds it inline with no allocation.

use crate::time::{Duration, Instant};

/// Which algorithm a connection runs ([`crate::Config::congestion`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// RFC 5681 with RFC 6582's recovery.
    NewReno,
    /// RFC 9438. Linux's default.
    #[default]
    Cubic,
}

/// The window arithmetic of a congestion control algorithm. All sizes in bytes.
pub trait CongestionControl {
    /// The congestion window.
    fn cwnd(&self) -> u32;
    /// The slow-start threshold.
    fn ssthresh(&self) -> u32;
    /// `acked` bytes of new data were acknowledged outside loss recovery, at `now`,
    /// with the smoothed RTT `srtt` (if measured).
    fn on_ack(&mut self, now: Instant, acked: u32, mss: u32, srtt: Option<Duration>);
    /// A loss was detected (three duplicate ACKs, or SACK): the multiplicative
    /// decrease; on return `cwnd() == ssthresh()`. `flight`: bytes outstanding.
    fn on_loss(&mut self, now: Instant, flight: u32, mss: u32);
    /// NewReno's window inflation during fast recovery without SACK (RFC 5681 3.2).
    fn inflate(&mut self, bytes: u32);
    /// A partial ACK acknowledged `acked` bytes during NewReno recovery (RFC 6582 3.2
    /// step 3): deflate by that much, add back one segment.
    fn on_partial_ack(&mut self, acked: u32, mss: u32);
    /// Recovery ended: the recovery point was acknowledged, `flight` bytes remain.
    fn on_recovery_exit(&mut self, flight: u32, mss: u32);
    /// The retransmission timer expired with `flight` bytes outstanding.
    fn on_rto(&mut self, now: Instant, flight: u32, mss: u32);
}

/// Slow start as both algorithms run it: at most one SMSS per ACK (RFC 5681 3.1, with
/// RFC 3465's L = 1).
fn slow_start(cwnd: &mut u32, acked: u32, mss: u32) {
    *cwnd = cwnd.saturating_add(acked.min(mss));
}

/// RFC 6582 3.2 step 3: a partial ACK deflates the window by what it acknowledged and
/// adds back one segment.
fn deflate(cwnd: u32, acked: u32, mss: u32) -> u32 {
    cwnd.saturating_sub(acked).saturating_add(mss).max(mss)
}

/// RFC 6582 3.2 step 4, option (1): min(ssthresh, max(FlightSize, SMSS) + SMSS), so
/// a full ACK that empties the pipe leaves two segments, not one.
fn recovery_exit(ssthresh: u32, flight: u32, mss: u32) -> u32 {
    ssthresh.min(flight.max(mss).saturating_add(mss))
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

    fn on_ack(&mut self, _now: Instant, acked: u32, mss: u32, _srtt: Option<Duration>) {
        if self.cwnd < self.ssthresh {
            slow_start(&mut self.cwnd, acked, mss);
        } else {
            // Congestion avoidance: one MSS per window of acknowledged data.
            self.acked_in_ca = self.acked_in_ca.saturating_add(acked);
            if self.acked_in_ca >= self.cwnd {
                self.acked_in_ca -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(mss);
            }
        }
    }

    fn on_loss(&mut self, _now: Instant, flight: u32, mss: u32) {
        // RFC 5681 3.2 equation 4.
        self.ssthresh = (flight / 2).max(2 * mss);
        self.cwnd = self.ssthresh;
        self.acked_in_ca = 0;
    }

    fn inflate(&mut self, bytes: u32) {
        self.cwnd = self.cwnd.saturating_add(bytes);
    }

    fn on_partial_ack(&mut self, acked: u32, mss: u32) {
        self.cwnd = deflate(self.cwnd, acked, mss);
    }

    fn on_recovery_exit(&mut self, flight: u32, mss: u32) {
        self.cwnd = recovery_exit(self.ssthresh, flight, mss);
        self.acked_in_ca = 0;
    }

    fn on_rto(&mut self, _now: Instant, flight: u32, mss: u32) {
        // RFC 5681 3.1 equation 4, and a loss window of one segment.
        self.ssthresh = (flight / 2).max(2 * mss);
        self.cwnd = mss;
        self.acked_in_ca = 0;
    }
}

/// RFC 9438's constants.
const C: f64 = 0.4;
const BETA: f64 = 0.7;
/// RFC 9438 4.3: the Reno-friendly region's additive increase, 3(1 - beta)/(1 + beta).
const ALPHA: f64 = 3.0 * (1.0 - BETA) / (1.0 + BETA);

/// CUBIC (RFC 9438): after a loss the window follows W(t) = C (t - K)^3 + W_max, a
/// concave climb back to the window where the loss happened and a convex probe
/// beyond it, never slower than the Reno-friendly estimate. Windows in the formula
/// are in segments, times in seconds.
///
/// The curve's variables matter only after the first reduction (until then the window
/// only slow-starts: the threshold is infinite), so they are held out of line and taken
/// then: 16 bytes in every connection instead of 64.
#[derive(Clone, Debug)]
pub struct Cubic {
    cwnd: u32,
    ssthresh: u32,
    /// The curve, from the first reduction on (`None`: every variable zero, none).
    curve: Option<Box<Curve>>,
}

/// CUBIC's curve: where the last reduction happened and the current epoch on it.
#[derive(Clone, Debug, Default)]
struct Curve {
    /// The window just before the last reduction (segments).
    w_max: f64,
    /// Start of the current congestion-avoidance epoch.
    epoch: Option<Instant>,
    /// K: the time W(t) takes to get back to the origin (seconds).
    k: f64,
    /// The plateau W(t) is centred on (segments).
    origin: f64,
    /// The Reno-friendly estimate (segments).
    w_est: f64,
    /// Growth owed but not yet a whole byte.
    frac: f64,
}

impl Cubic {
    /// A window of `initial_segments` segments of `mss` bytes (RFC 6928), no threshold.
    pub fn new(initial_segments: u32, mss: u32) -> Cubic {
        Cubic {
            cwnd: initial_segments.max(1) * mss,
            ssthresh: u32::MAX,
            curve: None,
        }
    }

    /// RFC 9438 4.6 and 4.7: remember where the loss happened (with fast convergence:
    /// lower when the window did not get back to the previous W_max), and set the
    /// threshold to beta times the window.
    fn reduce(&mut self, mss: u32) {
        let seg = f64::from(mss.max(1));
        let cw = f64::from(self.cwnd) / seg;
        let c = self.curve.get_or_insert_with(Box::default);
        c.w_max = if cw < c.w_max {
            cw * (1.0 + BETA) / 2.0
        } else {
            cw
        };
        self.ssthresh = ((f64::from(self.cwnd) * BETA) as u32).max(2 * mss);
        c.epoch = None;
        c.frac = 0.0;
    }
}

impl CongestionControl for Cubic {
    fn cwnd(&self) -> u32 {
        self.cwnd
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    fn on_ack(&mut self, now: Instant, acked: u32, mss: u32, srtt: Option<Duration>) {
        if self.cwnd < self.ssthresh {
            slow_start(&mut self.cwnd, acked, mss);
            return;
        }
        let seg = f64::from(mss.max(1));
        let cw = f64::from(self.cwnd) / seg;
        // (Taken by the first reduction; only a window grown to u32::MAX gets here
        // without one, and finds the all-zero curve it had before.)
        let c = self.curve.get_or_insert_with(Box::default);
        let epoch = match c.epoch {
            Some(e) => e,
            None => {
                // RFC 9438 4.2: a new epoch starts at the first ACK in avoidance.
                if cw < c.w_max {
                    c.k = ((c.w_max - cw) / C).cbrt();
                    c.origin = c.w_max;
                } else {
                    c.k = 0.0;
                    c.origin = cw;
                }
                c.w_est = cw;
                c.epoch = Some(now);
                now
            }
        };
        let rtt = srtt.map_or(0.0, |d| d.as_secs_f64());
        let t = (now - epoch).as_secs_f64() + rtt;
        // The target one RTT ahead, limited to 1.5 times the window (RFC 9438 4.2).
        let target = (c.origin + C * (t - c.k).powi(3)).clamp(cw, 1.5 * cw);
        let segs = f64::from(acked) / seg;
        c.w_est += ALPHA * segs / cw;
        let grow_segments = if target < c.w_est {
            // Reno-friendly region (RFC 9438 4.3).
            c.w_est - cw
        } else {
            // Concave and convex regions (4.4, 4.5): (target - cwnd) / cwnd per segment.
            (target - cw) / cw * segs
        };
        c.frac += grow_segments.max(0.0) * seg;
        let whole = c.frac.floor();
        c.frac -= whole;
        self.cwnd = self
            .cwnd
            .saturating_add(whole.min(f64::from(u32::MAX)) as u32);
    }

    fn on_loss(&mut self, _now: Instant, _flight: u32, mss: u32) {
        self.reduce(mss);
        self.cwnd = self.ssthresh;
    }

    fn inflate(&mut self, bytes: u32) {
        self.cwnd = self.cwnd.saturating_add(bytes);
    }

    fn on_partial_ack(&mut self, acked: u32, mss: u32) {
        self.cwnd = deflate(self.cwnd, acked, mss);
    }

    fn on_recovery_exit(&mut self, flight: u32, mss: u32) {
        self.cwnd = recovery_exit(self.ssthresh, flight, mss);
    }

    fn on_rto(&mut self, _now: Instant, _flight: u32, mss: u32) {
        // RFC 9438 4.8: the same reduction of W_max and ssthresh, and a loss window.
        self.reduce(mss);
        self.cwnd = mss;
    }
}

/// The algorithm a connection runs, held inline (24 bytes: CUBIC's curve is out of
/// line).
#[derive(Clone, Debug)]
pub enum Congestion {
    /// NewReno.
    NewReno(NewReno),
    /// CUBIC.
    Cubic(Cubic),
}

impl Congestion {
    /// `algorithm` with an initial window of `initial_segments` segments of `mss`.
    pub fn new(algorithm: Algorithm, initial_segments: u32, mss: u32) -> Congestion {
        match algorithm {
            Algorithm::NewReno => Congestion::NewReno(NewReno::new(initial_segments, mss)),
            Algorithm::Cubic => Congestion::Cubic(Cubic::new(initial_segments, mss)),
        }
    }

    fn get(&self) -> &dyn CongestionControl {
        match self {
            Congestion::NewReno(c) => c,
            Congestion::Cubic(c) => c,
        }
    }

    fn get_mut(&mut self) -> &mut dyn CongestionControl {
        match self {
            Congestion::NewReno(c) => c,
            Congestion::Cubic(c) => c,
        }
    }
}

impl CongestionControl for Congestion {
    fn cwnd(&self) -> u32 {
        self.get().cwnd()
    }
    fn ssthresh(&self) -> u32 {
        self.get().ssthresh()
    }
    fn on_ack(&mut self, now: Instant, acked: u32, mss: u32, srtt: Option<Duration>) {
        self.get_mut().on_ack(now, acked, mss, srtt)
    }
    fn on_loss(&mut self, now: Instant, flight: u32, mss: u32) {
        self.get_mut().on_loss(now, flight, mss)
    }
    fn inflate(&mut self, bytes: u32) {
        self.get_mut().inflate(bytes)
    }
    fn on_partial_ack(&mut self, acked: u32, mss: u32) {
        self.get_mut().on_partial_ack(acked, mss)
    }
    fn on_recovery_exit(&mut self, flight: u32, mss: u32) {
        self.get_mut().on_recovery_exit(flight, mss)
    }
    fn on_rto(&mut self, now: Instant, flight: u32, mss: u32) {
        self.get_mut().on_rto(now, flight, mss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Instant = Instant::ZERO;

    #[test]
    fn slow_start_then_avoidance() {
        let mss = 1000;
        let mut c = NewReno::new(10, mss);
        assert_eq!(c.cwnd(), 10_000);
        c.on_ack(T0, 1000, mss, None);
        assert_eq!(c.cwnd(), 11_000);
        c.on_rto(T0, 20_000, mss);
        assert_eq!((c.cwnd(), c.ssthresh()), (1000, 10_000));
        for _ in 0..9 {
            c.on_ack(T0, 1000, mss, None);
        }
        assert_eq!(c.cwnd(), 10_000);
        // Now in avoidance: a whole window of ACKs adds one MSS.
        for _ in 0..10 {
            c.on_ack(T0, 1000, mss, None);
        }
        assert_eq!(c.cwnd(), 11_000);
    }

    #[test]
    fn fast_recovery_inflates_and_deflates() {
        let mss = 1000;
        let mut c = NewReno::new(10, mss);
        c.on_loss(T0, 10_000, mss);
        c.inflate(3 * mss);
        assert_eq!((c.ssthresh(), c.cwnd()), (5000, 8000));
        c.inflate(mss);
        assert_eq!(c.cwnd(), 9000);
        c.on_recovery_exit(4000, mss);
        assert_eq!(c.cwnd(), 5000);
    }

    /// Feeds a window's worth of ACKs, one per segment, over one RTT.
    fn one_rtt(c: &mut Cubic, now: &mut Instant, rtt: Duration, mss: u32) {
        let segs = (c.cwnd() / mss).max(1);
        for _ in 0..segs {
            c.on_ack(*now, mss, mss, Some(rtt));
        }
        *now += rtt;
    }

    #[test]
    fn cubic_reduces_by_beta_and_climbs_back_to_w_max_in_k_seconds() {
        let mss = 1000;
        let rtt = Duration::from_millis(100);
        let mut c = Cubic::new(10, mss);
        // Slow start to 100 segments, then a loss.
        while c.cwnd() < 100 * mss {
            c.on_ack(T0, mss, mss, Some(rtt));
        }
        c.on_loss(T0, 100 * mss, mss);
        assert_eq!(c.cwnd(), 70 * mss, "beta = 0.7");
        assert_eq!(c.ssthresh(), 70 * mss);
        // K = cbrt(W_max (1 - beta) / C) = cbrt(100 * 0.3 / 0.4) = 4.22 s.
        let k = (100.0f64 * 0.3 / 0.4).cbrt();
        let mut now = T0;
        let mut at_k = 0;
        while now.total_micros() < 8_000_000 {
            one_rtt(&mut c, &mut now, rtt, mss);
            if at_k == 0 && now.total_micros() as f64 / 1e6 >= k {
                at_k = c.cwnd();
            }
        }
        // Concave: near W_max at K (the RTT look-ahead puts it slightly past).
        let w = f64::from(at_k) / f64::from(mss);
        assert!((99.0..=106.0).contains(&w), "cwnd at K: {w} segments");
        // Convex beyond: clearly above W_max by 8 s (C (8 - 4.22)^3 = 21.6 segments).
        let w8 = f64::from(c.cwnd()) / f64::from(mss);
        assert!(w8 > 115.0, "cwnd at 8 s: {w8} segments");
    }

    #[test]
    fn cubic_fast_convergence_lowers_w_max_after_a_loss_below_it() {
        let mss = 1000;
        let mut c = Cubic::new(100, mss);
        c.ssthresh = 0;
        c.on_loss(T0, 0, mss); // W_max = 100, cwnd 70.
        c.on_loss(T0, 0, mss); // 70 < 100: W_max = 70 * 1.7 / 2 = 59.5, cwnd 49.
        assert_eq!(c.cwnd(), 49_000);
        let w_max = c.curve.as_ref().map(|c| c.w_max);
        assert!(w_max.is_some_and(|w| (w - 59.5).abs() < 1e-9), "{w_max:?}");
    }

    #[test]
    fn cubic_is_never_slower_than_reno_friendly() {
        // With a tiny window and a long RTT the cubic term grows slower than Reno's one
        // segment per RTT; the Reno-friendly estimate (alpha = 0.53 per RTT) sets the pace.
        let mss = 1000;
        let rtt = Duration::from_millis(500);
        let mut c = Cubic::new(4, mss);
        c.on_loss(T0, 0, mss);
        let start = c.cwnd();
        let mut now = T0;
        for _ in 0..10 {
            one_rtt(&mut c, &mut now, rtt, mss);
        }
        assert!(c.cwnd() >= start + 4 * mss, "{} from {}", c.cwnd(), start);
    }

    #[test]
    fn cubic_rto_collapses_to_one_segment() {
        let mss = 1000;
        let mut c = Cubic::new(40, mss);
        c.on_rto(T0, 40_000, mss);
        assert_eq!((c.cwnd(), c.ssthresh()), (1000, 28_000));
    }
}
