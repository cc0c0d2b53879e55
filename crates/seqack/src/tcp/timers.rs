//! The connection's timers: several may be armed at once, each with its own deadline.

use crate::time::Instant;

/// The kinds of timer a connection runs.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
pub enum Timer {
    /// Retransmission of SYN, SYN-ACK, data or FIN (RFC 6298).
    Retransmit,
    /// A delayed ACK is due.
    DelayedAck,
    /// Zero-window probe (RFC 9293 section 3.8.6.1).
    Persist,
    /// Keepalive probe (RFC 9293 section 3.8.4, RFC 1122 4.2.3.6).
    Keepalive,
    /// An orphaned connection has waited long enough in FIN_WAIT_2.
    FinWait2,
    /// TIME_WAIT's 2MSL has passed.
    TimeWait,
    /// Tail loss probe (RFC 8985 section 7): the last segments may have been lost.
    LossProbe,
    /// RACK's reordering window has passed for a segment sent before one that was
    /// delivered (RFC 8985 6.3).
    Reorder,
}

impl Timer {
    /// Every kind, in the order expiries are handled when several fall due at once.
    pub const ALL: [Timer; 8] = [
        Timer::TimeWait,
        Timer::FinWait2,
        Timer::Retransmit,
        Timer::LossProbe,
        Timer::Reorder,
        Timer::Persist,
        Timer::Keepalive,
        Timer::DelayedAck,
    ];

    const fn index(self) -> usize {
        match self {
            Timer::Retransmit => 0,
            Timer::DelayedAck => 1,
            Timer::Persist => 2,
            Timer::Keepalive => 3,
            Timer::FinWait2 => 4,
            Timer::TimeWait => 5,
            Timer::LossProbe => 6,
            Timer::Reorder => 7,
        }
    }

    /// The short name shown by `ss`-like snapshots.
    pub const fn name(self) -> &'static str {
        match self {
            Timer::Retransmit => "on",
            Timer::DelayedAck => "delack",
            Timer::Persist => "persist",
            Timer::Keepalive => "keepalive",
            Timer::FinWait2 => "fin_wait2",
            Timer::TimeWait => "timewait",
            Timer::LossProbe => "probe",
            Timer::Reorder => "reorder",
        }
    }
}

/// A small table of deadlines, one per [`Timer`]: microseconds, `u64::MAX` for a timer
/// that is not armed (8 bytes a timer rather than an `Option<Instant>`'s 16).
#[derive(Clone, Debug)]
pub struct Timers {
    deadlines: [u64; 8],
}

const UNARMED: u64 = u64::MAX;

impl Default for Timers {
    fn default() -> Timers {
        Timers {
            deadlines: [UNARMED; 8],
        }
    }
}

impl Timers {
    /// Arms `t` to fire at `at`, replacing any earlier deadline.
    pub fn set(&mut self, t: Timer, at: Instant) {
        self.deadlines[t.index()] = at.total_micros().min(UNARMED - 1);
    }

    /// Disarms `t`.
    pub fn stop(&mut self, t: Timer) {
        self.deadlines[t.index()] = UNARMED;
    }

    /// Disarms every timer.
    pub fn stop_all(&mut self) {
        self.deadlines = [UNARMED; 8];
    }

    /// The deadline of `t`, if armed.
    pub fn get(&self, t: Timer) -> Option<Instant> {
        let d = self.deadlines[t.index()];
        (d != UNARMED).then(|| Instant::from_micros(d))
    }

    /// True when `t` is armed.
    pub fn is_set(&self, t: Timer) -> bool {
        self.deadlines[t.index()] != UNARMED
    }

    /// The earliest armed deadline.
    pub fn next(&self) -> Option<Instant> {
        let d = self.deadlines.iter().copied().min().unwrap_or(UNARMED);
        (d != UNARMED).then(|| Instant::from_micros(d))
    }

    /// The earliest armed timer and its deadline.
    pub fn next_timer(&self) -> Option<(Timer, Instant)> {
        Timer::ALL
            .into_iter()
            .filter_map(|t| self.get(t).map(|d| (t, d)))
            .min_by_key(|&(_, d)| d)
    }

    /// Disarms and returns the first timer (in [`Timer::ALL`] order) due at `now`.
    pub fn take_expired(&mut self, now: Instant) -> Option<Timer> {
        let now = now.total_micros();
        let t = Timer::ALL
            .into_iter()
            .find(|&t| self.deadlines[t.index()] <= now)?;
        self.stop(t);
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_timers_armed_at_once() {
        let mut t = Timers::default();
        t.set(Timer::Retransmit, Instant::from_millis(300));
        t.set(Timer::DelayedAck, Instant::from_millis(40));
        t.set(Timer::Keepalive, Instant::from_secs(7200));
        assert_eq!(t.next(), Some(Instant::from_millis(40)));
        assert_eq!(t.take_expired(Instant::from_millis(10)), None);
        assert_eq!(
            t.take_expired(Instant::from_millis(400)),
            Some(Timer::Retransmit)
        );
        assert_eq!(
            t.take_expired(Instant::from_millis(400)),
            Some(Timer::DelayedAck)
        );
        assert_eq!(t.take_expired(Instant::from_millis(400)), None);
        assert_eq!(
            t.next_timer(),
            Some((Timer::Keepalive, Instant::from_secs(7200)))
        );
        t.stop_all();
        assert_eq!(t.next(), None);
    }
}
