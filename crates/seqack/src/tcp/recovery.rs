//! Loss-recovery state kept out of line: the SACK scoreboard, fast recovery (RFC 5681,
//! RFC 6582, RFC 6675) and the tail loss probe's episode (RFC 8985 section 7).
//!
//! A connection that sees no SACK block, no duplicate ACK, no timeout and sends no
//! probe never needs any of it, so it lives behind an `Option<Box<Recovery>>` (8 bytes
//! in the connection instead of about 80): taken when the first of these happens, and
//! given back once everything in it is at rest again ([`Recovery::is_idle`]).

use super::sack::Scoreboard;
use crate::wire::Seq;

/// The loss-recovery variables of one connection.
#[derive(Clone, Debug, Default)]
pub(super) struct Recovery {
    /// Duplicate ACKs in a row.
    pub dupacks: u32,
    /// What the peer has SACKed above SND.UNA (RFC 6675's scoreboard).
    pub board: Scoreboard,
    /// Fast recovery is SACK-based (RFC 6675): retransmissions are chosen from the
    /// scoreboard's lost holes and the pipe, not by going back to SND.UNA.
    pub sack_recovery: bool,
    /// RFC 6675 HighRxt: the highest byte retransmitted in this recovery (exclusive).
    /// Meaningful only in SACK-based recovery, whose entry sets it.
    pub high_rxt: Seq,
    /// The segment at SND.UNA is to be retransmitted at once (RFC 6675 entry). Read
    /// only in SACK-based recovery, whose entry sets it.
    pub rexmit_first: bool,
    /// RFC 6675 RescueRxt: the recovery point when the rescue retransmission went. Read
    /// only in SACK-based recovery, whose entry clears it.
    pub rescue_rxt: Option<Seq>,
    /// RFC 8985 TLP.end_seq: SND.MAX when the last probe went, until that is ACKed.
    pub tlp_end: Option<Seq>,
    /// The last probe was a retransmission: the range it resent, and whether a D-SACK
    /// has since reported it a duplicate (then nothing had been lost).
    pub tlp_rexmit: Option<(Seq, Seq, bool)>,
    /// The recovery point (RFC 6582): SND.MAX when fast recovery or the last
    /// retransmission timeout began, until it is acknowledged.
    pub recover: Option<Seq>,
    /// In fast recovery (entered on three duplicate ACKs). After a timeout `recover` is
    /// set too, but only to stop a spurious fast retransmit (RFC 6582 section 4).
    pub fast_recovery: bool,
    /// Where SND.NXT resumes after the one segment a fast retransmit or a partial ACK
    /// resends from SND.UNA.
    pub rexmit_resume: Option<Seq>,
}

/// What a connection without a [`Recovery`] reads: every variable at rest.
pub(super) static IDLE: Recovery = Recovery {
    dupacks: 0,
    board: Scoreboard::new(),
    sack_recovery: false,
    high_rxt: Seq(0),
    rexmit_first: false,
    rescue_rxt: None,
    tlp_end: None,
    tlp_rexmit: None,
    recover: None,
    fast_recovery: false,
    rexmit_resume: None,
};

impl Recovery {
    /// True when dropping this state changes nothing: every variable that is read
    /// outside SACK-based recovery is at rest, and there is no SACK-based recovery.
    /// (`high_rxt`, `rexmit_first` and `rescue_rxt` are read only during SACK-based
    /// recovery, and its entry sets all three before any read.)
    pub fn is_idle(&self) -> bool {
        self.dupacks == 0
            && self.board.is_empty()
            && !self.sack_recovery
            && !self.fast_recovery
            && self.recover.is_none()
            && self.rexmit_resume.is_none()
            && self.tlp_end.is_none()
            && self.tlp_rexmit.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idle_state_is_the_default_and_any_live_variable_keeps_the_box() {
        assert!(IDLE.is_idle());
        assert!(Recovery::default().is_idle());
        let live: [fn(&mut Recovery); 8] = [
            |r| r.dupacks = 1,
            |r| {
                r.board.add(Seq(10), Seq(20), Seq(0), Seq(100));
            },
            |r| r.sack_recovery = true,
            |r| r.fast_recovery = true,
            |r| r.recover = Some(Seq(0)),
            |r| r.rexmit_resume = Some(Seq(0)),
            |r| r.tlp_end = Some(Seq(0)),
            |r| r.tlp_rexmit = Some((Seq(0), Seq(1), false)),
        ];
        for set in live {
            let mut r = Recovery::default();
            set(&mut r);
            assert!(!r.is_idle(), "{r:?}");
        }
        // The SACK-recovery-only variables left behind do not keep it.
        let r = Recovery {
            high_rxt: Seq(5),
            rexmit_first: true,
            rescue_rxt: Some(Seq(5)),
            ..Recovery::default()
        };
        assert!(r.is_idle());
    }
}
