//! What a connection reports to its driver: state changes with their reasons, and the
//! application-visible conditions (readable, writable, closed, errors).

use super::State;
use core::fmt;

/// Why a connection changed state. Printed in state logs as the `why` field.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum Reason {
    /// The application called connect().
    Connect,
    /// The application called listen().
    Listen,
    /// A SYN arrived (LISTEN -> SYN_RECEIVED, or SYN_SENT -> SYN_RECEIVED).
    RcvSyn,
    /// A SYN-ACK arrived in SYN_SENT.
    RcvSynAck,
    /// The ACK of our SYN arrived in SYN_RECEIVED.
    RcvAckOfSyn,
    /// A valid SYN cookie came back in an ACK.
    RcvCookieAck,
    /// The application called close().
    Close,
    /// The application called shutdown(Write).
    ShutdownWrite,
    /// The ACK of our FIN arrived.
    RcvAckOfFin,
    /// The peer's FIN arrived.
    RcvFin,
    /// The peer's FIN arrived together with the ACK of ours (the three-way close).
    RcvFinAckOfFin,
    /// An acceptable RST arrived.
    RcvRst,
    /// A SYN arrived in the window of a synchronized connection and, without RFC 5961,
    /// reset it (RFC 793).
    RcvSynInWindow,
    /// The 2MSL timer of TIME_WAIT expired.
    Timer2Msl,
    /// An orphaned connection's FIN_WAIT_2 timer expired.
    TimerFinWait2,
    /// Retransmissions ran out.
    TimerRetries,
    /// Keepalive probes went unanswered.
    TimerKeepalive,
    /// The handshake of an active open took longer than `Config::connect_timeout`.
    TimerConnect,
    /// The application aborted (SO_LINGER 0, or close() with unread data): RST sent.
    Abort,
    /// A new SYN reused the 4-tuple of a TIME_WAIT connection.
    TimeWaitRecycled,
    /// Our own connect() reused the 4-tuple of a TIME_WAIT connection (`tw_reuse`).
    TimeWaitReused,
    /// The TIME_WAIT table was full (`max_tw_buckets`): the connection closed without
    /// waiting 2MSL.
    TimeWaitOverflow,
    /// The listener was closed before the connection was accepted.
    ListenerClosed,
}

impl Reason {
    /// The short text of the reason.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Connect => "connect()",
            Reason::Listen => "listen()",
            Reason::RcvSyn => "rcv SYN",
            Reason::RcvSynAck => "rcv SYN-ACK",
            Reason::RcvAckOfSyn => "rcv ACK of SYN",
            Reason::RcvCookieAck => "rcv ACK with valid SYN cookie",
            Reason::Close => "close()",
            Reason::ShutdownWrite => "shutdown(WR)",
            Reason::RcvAckOfFin => "rcv ACK of FIN",
            Reason::RcvFin => "rcv FIN",
            Reason::RcvFinAckOfFin => "rcv FIN+ACK of FIN",
            Reason::RcvRst => "rcv RST",
            Reason::RcvSynInWindow => "rcv SYN in window: RST sent",
            Reason::Timer2Msl => "timer 2MSL",
            Reason::TimerFinWait2 => "timer FIN_WAIT_2",
            Reason::TimerRetries => "timer retransmissions exhausted",
            Reason::TimerKeepalive => "timer keepalive exhausted",
            Reason::TimerConnect => "timer connection establishment",
            Reason::Abort => "abort: RST sent",
            Reason::TimeWaitRecycled => "rcv SYN reusing TIME_WAIT 4-tuple",
            Reason::TimeWaitReused => "connect() reusing TIME_WAIT 4-tuple",
            Reason::TimeWaitOverflow => "TIME_WAIT table full",
            Reason::ListenerClosed => "listener closed",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error a connection reports to its application.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum Error {
    /// The peer answered our SYN with RST (ECONNREFUSED).
    Refused,
    /// The peer reset an established connection (ECONNRESET).
    Reset,
    /// Retransmissions or keepalive probes ran out (ETIMEDOUT).
    TimedOut,
    /// The application aborted the connection itself.
    Aborted,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Refused => "connection refused",
            Error::Reset => "connection reset by peer",
            Error::TimedOut => "connection timed out",
            Error::Aborted => "connection aborted",
        })
    }
}

impl std::error::Error for Error {}

/// Something the driver or application should know about.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Event {
    /// The connection moved from one state to another.
    StateChange {
        /// The state before.
        from: State,
        /// The state after.
        to: State,
        /// What caused it.
        why: Reason,
    },
    /// The handshake completed.
    Connected,
    /// New data (or the peer's FIN) can be read.
    Readable,
    /// Send buffer space became free.
    Writable,
    /// The connection failed; reads and writes now return this error.
    Error(Error),
    /// The connection reached CLOSED and holds no more state worth keeping.
    Closed,
}

/// Events in the connection itself before they spill to the heap.
const INLINE_EVENTS: usize = 5;

/// The connection's queue of events for its driver, first in first out. A driver drains
/// it after every call (the stack does), so it rarely holds more than a handful: the
/// first [`INLINE_EVENTS`] live in the connection, and only a longer backlog takes a
/// heap queue, given back once it is drained. (A `VecDeque` would cost 32 bytes in the
/// connection and a heap block that stays allocated for its whole life.)
#[derive(Clone, Debug)]
pub(super) struct EventQueue {
    inline: [Event; INLINE_EVENTS],
    /// Index of the oldest inline event (low four bits) and how many are held (high
    /// four bits): one byte, so that five events and their place fit in 16 bytes.
    pos: u8,
    /// Events newer than every inline one, while the inline ones do not suffice.
    #[allow(clippy::box_collection)] // 8 bytes in every connection, not a VecDeque's 32
    spill: Option<Box<std::collections::VecDeque<Event>>>,
}

impl Default for EventQueue {
    fn default() -> EventQueue {
        EventQueue {
            inline: [Event::Closed; INLINE_EVENTS],
            pos: 0,
            spill: None,
        }
    }
}

impl EventQueue {
    #[inline]
    fn head(&self) -> usize {
        usize::from(self.pos & 0xf)
    }

    #[inline]
    fn len(&self) -> usize {
        usize::from(self.pos >> 4)
    }

    /// No event waiting.
    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0 && self.spill.is_none()
    }

    #[inline]
    fn set(&mut self, head: usize, len: usize) {
        self.pos = (head as u8) | ((len as u8) << 4);
    }

    /// Appends `e`.
    #[inline]
    pub(super) fn push_back(&mut self, e: Event) {
        let (head, len) = (self.head(), self.len());
        if self.spill.is_none() && len < INLINE_EVENTS {
            self.inline[(head + len) % INLINE_EVENTS] = e;
            self.set(head, len + 1);
        } else {
            self.spill.get_or_insert_with(Box::default).push_back(e);
        }
    }

    /// Appends `Readable` or `Writable`, unless it is the newest event already: they
    /// say "look again", not "one more segment", and a driver that hands the
    /// connection a batch of segments before draining would otherwise queue one per
    /// segment (and spill to the heap).
    #[inline(always)]
    pub(super) fn push_again(&mut self, e: Event) {
        let (head, len) = (self.head(), self.len());
        let newest = match &self.spill {
            Some(q) => q.back(),
            None if len > 0 => Some(&self.inline[(head + len - 1) % INLINE_EVENTS]),
            None => None,
        };
        if newest != Some(&e) {
            self.push_back(e);
        }
    }

    /// Takes the oldest event.
    #[inline]
    pub(super) fn pop_front(&mut self) -> Option<Event> {
        let (head, len) = (self.head(), self.len());
        if len > 0 {
            let next = if head + 1 == INLINE_EVENTS {
                0
            } else {
                head + 1
            };
            self.set(next, len - 1);
            return Some(self.inline[head]);
        }
        let spill = self.spill.as_mut()?;
        let e = spill.pop_front();
        if spill.is_empty() {
            self.spill = None;
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_is_fifo_across_the_spill() {
        let ev = |i: u8| {
            if i % 2 == 0 {
                Event::Readable
            } else {
                Event::Writable
            }
        };
        let mut q = EventQueue::default();
        let mut model = std::collections::VecDeque::new();
        // Bursts of every length up to three times the inline room, partly drained.
        for round in 0..40u8 {
            for k in 0..(round % 16) {
                let e = if k % 5 == 4 {
                    Event::Error(Error::Reset)
                } else {
                    ev(k)
                };
                // A "look again" event right behind the same one adds nothing.
                let again = matches!(e, Event::Readable | Event::Writable);
                if again {
                    q.push_again(e);
                } else {
                    q.push_back(e);
                }
                if !(again && model.back() == Some(&e)) {
                    model.push_back(e);
                }
            }
            for _ in 0..(round % 7) {
                assert_eq!(q.pop_front(), model.pop_front());
            }
            if round % 3 == 0 {
                while let Some(e) = model.pop_front() {
                    assert_eq!(q.pop_front(), Some(e));
                }
                assert_eq!(q.pop_front(), None);
                assert!(q.spill.is_none(), "a drained queue holds no heap block");
            }
        }
        while let Some(e) = model.pop_front() {
            assert_eq!(q.pop_front(), Some(e));
        }
        assert_eq!(q.pop_front(), None);
    }

    #[test]
    fn a_batch_of_segments_queues_one_readable_and_no_heap_block() {
        let mut q = EventQueue::default();
        q.push_again(Event::Writable);
        for _ in 0..100 {
            q.push_again(Event::Readable);
        }
        assert!(q.spill.is_none());
        q.push_back(Event::Error(Error::Reset));
        q.push_back(Event::Error(Error::Reset));
        q.push_again(Event::Readable);
        let got: Vec<_> = std::iter::from_fn(|| q.pop_front()).collect();
        assert_eq!(
            got,
            [
                Event::Writable,
                Event::Readable,
                Event::Error(Error::Reset),
                Event::Error(Error::Reset),
                Event::Readable
            ]
        );
    }
}
