//! TIME_WAIT's rules for an arriving segment, as one pure function shared by a full
//! connection in TIME_WAIT and by the stack's compact TIME_WAIT records, so that both
//! behave identically (RFC 9293 3.10.7.4, RFC 1337, RFC 6191, RFC 7323 PAWS).

use crate::wire::tcp::Segment;
use crate::wire::Seq;

/// What TIME_WAIT does with a segment.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TimeWaitAction {
    /// Nothing: an in-window bare ACK.
    Nothing,
    /// An RST ignored by RFC 1337 (counted as TcpExtTWRstIgnored).
    RstIgnored,
    /// An acceptable RST with RFC 1337 off: the connection ends.
    Close,
    /// The peer's retransmitted FIN (our final ACK was lost): ACK it again and restart
    /// the 2MSL timer.
    AckAndRestart,
    /// Anything else: an ACK (rate-limited for pure ACKs, as for any out-of-window
    /// segment).
    Ack,
    /// A new SYN that may reopen the 4-tuple: end TIME_WAIT, hand the SYN to the
    /// listener (RFC 6191 and Linux's tcp_timewait_state_process).
    Recycle,
}

/// Decides what TIME_WAIT does with `seg`. `rcv_nxt` is RCV.NXT (one past the peer's
/// FIN); `ts_recent` is TS.Recent when timestamps are in use; `paws_reject` tells
/// whether PAWS (RFC 7323 5.3) rejects the segment.
pub fn time_wait_segment(
    seg: &Segment<'_>,
    rcv_nxt: Seq,
    ts_recent: Option<u32>,
    paws_reject: bool,
    rfc1337: bool,
    ack_required: bool,
) -> TimeWaitAction {
    let f = seg.flags;
    if f.rst() {
        if rfc1337 {
            // RFC 1337: TIME_WAIT assassination is refused.
            return TimeWaitAction::RstIgnored;
        }
        if seg.seq == rcv_nxt && !paws_reject {
            return TimeWaitAction::Close;
        }
        return TimeWaitAction::Nothing;
    }
    // A new SYN above the old sequence space, or with a newer timestamp, may reopen the
    // 4-tuple (RFC 6191).
    if f.syn() && !f.ack() && !paws_reject {
        let newer_ts = match (ts_recent, seg.options.timestamps) {
            (Some(recent), Some((val, _))) => (val.wrapping_sub(recent) as i32) > 0,
            _ => false,
        };
        if seg.seq > rcv_nxt || newer_ts {
            return TimeWaitAction::Recycle;
        }
    }
    // RFC 9293 3.10.7.4, fifth: a segment without ACK is dropped (FreeBSD's tcp_twcheck;
    // Linux answers it like any other, which is the default).
    if ack_required && !f.ack() {
        return TimeWaitAction::Nothing;
    }
    if !paws_reject && seg.seq == rcv_nxt && seg.seq_len() == 0 {
        return TimeWaitAction::Nothing;
    }
    // RFC 9293 3.10.7.4, eighth, TIME-WAIT: the only thing that can arrive is a
    // retransmission of the remote FIN; acknowledge it and restart the 2MSL timeout.
    if f.fin() && seg.seq + seg.seq_len() == rcv_nxt {
        return TimeWaitAction::AckAndRestart;
    }
    TimeWaitAction::Ack
}

/// What a connection in TIME_WAIT hands over when it becomes a compact record: exactly
/// what [`time_wait_segment`] and the ACKs of TIME_WAIT need, nothing else.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TimeWaitState {
    /// Local address and port.
    pub local: core::net::SocketAddr,
    /// Remote address and port.
    pub remote: core::net::SocketAddr,
    /// SND.NXT: one past our FIN, the sequence number of every ACK we send.
    pub snd_nxt: Seq,
    /// RCV.NXT: one past the peer's FIN.
    pub rcv_nxt: Seq,
    /// TS.Recent when timestamps are in use.
    pub ts_recent: Option<u32>,
    /// The window field (already scaled) of TIME_WAIT's ACKs.
    pub window: u16,
    /// When 2MSL ends.
    pub deadline: crate::time::Instant,
    /// 2MSL, for restarts.
    pub duration: crate::time::Duration,
    /// Whether RFC 1337 protection is on (RST ignored).
    pub rfc1337: bool,
    /// Whether segments without ACK are dropped rather than answered
    /// ([`crate::Config::tw_ack_required`]).
    pub ack_required: bool,
}
