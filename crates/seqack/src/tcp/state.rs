//! The eleven states of RFC 9293 section 3.3.2.

use core::fmt;

/// A connection's state, named as in RFC 9293.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum State {
    /// No connection.
    Closed,
    /// Waiting for a SYN (listeners only).
    Listen,
    /// SYN sent, waiting for a matching SYN.
    SynSent,
    /// SYN received and SYN sent, waiting for the ACK of our SYN.
    SynReceived,
    /// Open: data flows both ways.
    Established,
    /// We sent FIN; waiting for its ACK or the peer's FIN.
    FinWait1,
    /// Our FIN is acknowledged; waiting for the peer's FIN.
    FinWait2,
    /// The peer sent FIN; waiting for the application to close.
    CloseWait,
    /// Both sides sent FIN, ours not yet acknowledged (simultaneous close).
    Closing,
    /// The peer closed first and we sent our FIN; waiting for its ACK.
    LastAck,
    /// Active closer, both FINs acknowledged: waiting 2MSL.
    TimeWait,
}

impl State {
    /// Every state, in RFC order.
    pub const ALL: [State; 11] = [
        State::Closed,
        State::Listen,
        State::SynSent,
        State::SynReceived,
        State::Established,
        State::FinWait1,
        State::FinWait2,
        State::CloseWait,
        State::Closing,
        State::LastAck,
        State::TimeWait,
    ];

    /// The RFC name with underscores, as in netstat and seqack's state logs.
    pub const fn name(self) -> &'static str {
        match self {
            State::Closed => "CLOSED",
            State::Listen => "LISTEN",
            State::SynSent => "SYN_SENT",
            State::SynReceived => "SYN_RECEIVED",
            State::Established => "ESTABLISHED",
            State::FinWait1 => "FIN_WAIT_1",
            State::FinWait2 => "FIN_WAIT_2",
            State::CloseWait => "CLOSE_WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST_ACK",
            State::TimeWait => "TIME_WAIT",
        }
    }

    /// The name `ss` prints.
    pub const fn ss_name(self) -> &'static str {
        match self {
            State::Closed => "CLOSED",
            State::Listen => "LISTEN",
            State::SynSent => "SYN-SENT",
            State::SynReceived => "SYN-RECV",
            State::Established => "ESTAB",
            State::FinWait1 => "FIN-WAIT-1",
            State::FinWait2 => "FIN-WAIT-2",
            State::CloseWait => "CLOSE-WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST-ACK",
            State::TimeWait => "TIME-WAIT",
        }
    }

    /// Parses an RFC (underscore), `ss` (dash) or FreeBSD (`SYN_RCVD`) state name.
    pub fn from_name(s: &str) -> Option<State> {
        let norm: String = s.trim().to_ascii_uppercase().replace('-', "_");
        let st = match norm.as_str() {
            "SYN_RCVD" | "SYN_RECV" => State::SynReceived,
            "ESTAB" => State::Established,
            _ => return State::ALL.into_iter().find(|st| st.name() == norm),
        };
        Some(st)
    }

    /// States in which data and our FIN are sent and resent: the synchronized states
    /// but FIN_WAIT_2 and TIME_WAIT (whose FIN has been acknowledged).
    pub const fn sends_data(self) -> bool {
        matches!(
            self,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::Closing
                | State::LastAck
        )
    }

    /// Both SYNs seen: the states after the handshake, where RFC 5961's rules apply.
    pub const fn is_synchronized(self) -> bool {
        !matches!(
            self,
            State::Closed | State::Listen | State::SynSent | State::SynReceived
        )
    }

    /// States where we may still send new data.
    pub const fn can_send(self) -> bool {
        matches!(self, State::Established | State::CloseWait)
    }

    /// States where data from the peer is still accepted (its FIN not yet received).
    pub const fn can_receive(self) -> bool {
        matches!(
            self,
            State::SynReceived | State::Established | State::FinWait1 | State::FinWait2
        )
    }
}

/// Whether RFC 9293 (section 3.3.2, figure 5, and the RST, abort and timeout rules of
/// section 3.10) lets a connection move from `from` to `to` for reason `why`. Linux's
/// additions that seqack follows are allowed too: the FIN_WAIT_2 timer of an orphan,
/// and a TIME_WAIT 4-tuple reused by a new SYN (RFC 6191).
///
/// State logs are checked against this table; it is written from the RFC, not from the
/// engine, so a wrong transition in the engine shows up as a failure.
pub fn rfc9293_allows(from: State, to: State, why: super::Reason) -> bool {
    use super::Reason as R;
    use State::*;
    // Ways out of any connection state into CLOSED: reset, abort, giving up.
    let dies = matches!(
        why,
        R::RcvRst | R::Abort | R::TimerRetries | R::TimerKeepalive | R::ListenerClosed
    );
    match (from, to) {
        (Closed, Listen) => why == R::Listen,
        (Closed, SynSent) => why == R::Connect,
        // A SYN cookie's ACK rebuilds the SYN_RECEIVED the cookie stood for.
        (Listen, SynReceived) => matches!(why, R::RcvSyn | R::RcvCookieAck),
        (Listen, Closed) => why == R::Close,
        (SynSent, SynReceived) => why == R::RcvSyn,
        (SynSent, Established) => why == R::RcvSynAck,
        (SynSent, Closed) => why == R::Close || dies,
        (SynReceived, Established) => matches!(why, R::RcvAckOfSyn | R::RcvCookieAck),
        (SynReceived, FinWait1) => matches!(why, R::Close | R::ShutdownWrite),
        // RFC 9293 3.10.7.4 second (RST) and fourth (SYN in the window) checks.
        (SynReceived, Listen) => matches!(why, R::RcvRst | R::RcvSyn),
        (SynReceived, Closed) => dies,
        (Established, FinWait1) => matches!(why, R::Close | R::ShutdownWrite),
        (Established, CloseWait) => why == R::RcvFin,
        (Established, Closed) => dies,
        (FinWait1, FinWait2) => why == R::RcvAckOfFin,
        (FinWait1, Closing) => why == R::RcvFin,
        (FinWait1, TimeWait) => why == R::RcvFinAckOfFin,
        (FinWait1, Closed) => dies,
        (FinWait2, TimeWait) => why == R::RcvFin,
        (FinWait2, Closed) => dies || why == R::TimerFinWait2,
        (CloseWait, LastAck) => matches!(why, R::Close | R::ShutdownWrite),
        (CloseWait, Closed) => dies,
        (Closing, TimeWait) => why == R::RcvAckOfFin,
        (Closing, Closed) => dies,
        (LastAck, Closed) => why == R::RcvAckOfFin || dies,
        // Besides RFC 9293's 2MSL timeout and RST: RFC 6191's reuse by a new SYN, the
        // same by our own connect() (Linux's tcp_tw_reuse), and a full TIME_WAIT table
        // (Linux's tcp_max_tw_buckets) ending it at once.
        (TimeWait, Closed) => matches!(
            why,
            R::Timer2Msl
                | R::RcvRst
                | R::TimeWaitRecycled
                | R::TimeWaitReused
                | R::TimeWaitOverflow
        ),
        _ => false,
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_table_refuses_shortcuts() {
        use crate::tcp::Reason as R;
        assert!(rfc9293_allows(
            State::FinWait1,
            State::TimeWait,
            R::RcvFinAckOfFin
        ));
        assert!(!rfc9293_allows(State::FinWait1, State::TimeWait, R::RcvFin));
        assert!(!rfc9293_allows(
            State::Established,
            State::TimeWait,
            R::RcvFin
        ));
        assert!(!rfc9293_allows(State::CloseWait, State::TimeWait, R::Close));
        assert!(!rfc9293_allows(
            State::TimeWait,
            State::Closed,
            R::RcvAckOfFin
        ));
        assert!(!rfc9293_allows(
            State::Listen,
            State::Established,
            R::RcvAckOfSyn
        ));
    }

    #[test]
    fn names_round_trip() {
        for s in State::ALL {
            assert_eq!(State::from_name(s.name()), Some(s));
            assert_eq!(State::from_name(s.ss_name()), Some(s));
        }
        assert_eq!(State::from_name("SYN_RCVD"), Some(State::SynReceived));
        assert_eq!(State::from_name("bogus"), None);
    }
}
