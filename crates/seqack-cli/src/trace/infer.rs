//! Grouping captured segments into connections and inferring both endpoints' RFC 9293
//! states after every segment.
//!
//! # What "the state after a segment" means
//!
//! For the segment in row `i`, sent by X to Y:
//!
//! * X's state is its state right after it emitted the segment (so a FIN row shows
//!   FIN_WAIT_1 or LAST_ACK on the sender's side);
//! * Y's state is its state right after it processed the segment, or, when the segment
//!   is inferred not to have been received (lost), Y's state at the point where it would
//!   have processed it.
//!
//! The capture is taken at one point (on either host or on the path), so the order of
//! the rows is the order of the capture, not necessarily the order in which each host
//! saw things. Each endpoint therefore gets a timeline of its own: its sends, at their
//! rows, and its receipts, each placed at the earliest point that its own later segments
//! allow:
//!
//! * a segment carrying SYN or FIN is processed before the first later segment of the
//!   receiver that acknowledges it, and after every later segment of the receiver that
//!   does not (a receiver that sends a FIN not acknowledging the peer's FIN had not seen
//!   it yet: simultaneous close). Among retransmitted copies the last one sent before the
//!   acknowledgment is the one taken as received; earlier ones are taken as lost;
//! * any other segment is processed right after it was captured, unless it acknowledges
//!   a SYN or FIN of the receiver that the receiver sends again afterwards: if that copy
//!   follows within one round trip the two crossed (processed after the copy), if later
//!   the segment was lost (the receiver's retransmission timer fired) — the lost final
//!   ACK of a close.
//!
//! A receipt that nothing later confirms (the capture ends, or the receiver sends nothing
//! more) is marked uncertain, and so is every state of an endpoint whose opening the
//! capture did not see, until its own SYN, FIN or RST, or a RST it receives, pins it.

use super::read::Packet;
use crate::ladder::Dir;
use seqack::wire::tcp::{Flags, Options};
use seqack::State;
use std::collections::HashMap;
use std::net::SocketAddr;

/// `a >= b` in sequence space.
fn seq_ge(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) >= 0
}

/// One captured segment of a connection.
#[derive(Clone, Debug)]
pub struct Seg {
    /// Capture time, microseconds.
    pub t_us: u64,
    /// [`Dir::Right`]: sent by the left endpoint.
    pub dir: Dir,
    /// Control bits.
    pub flags: Flags,
    /// Sequence number as on the wire.
    pub seq: u32,
    /// Acknowledgment number as on the wire.
    pub ack: u32,
    /// Payload bytes.
    pub len: u32,
    /// Window field, unscaled.
    pub win: u16,
    /// Options.
    pub options: Options,
}

impl Seg {
    /// 0 for the left endpoint, 1 for the right.
    pub fn sender(&self) -> usize {
        match self.dir {
            Dir::Right => 0,
            Dir::Left => 1,
        }
    }
    /// Sequence space the segment occupies.
    pub fn seq_len(&self) -> u32 {
        self.len + u32::from(self.flags.syn()) + u32::from(self.flags.fin())
    }
    /// First sequence number after the segment.
    pub fn end(&self) -> u32 {
        self.seq.wrapping_add(self.seq_len())
    }
    /// Carries SYN or FIN.
    fn control(&self) -> bool {
        (self.flags.syn() || self.flags.fin()) && !self.flags.rst()
    }
    /// Same SYN or FIN position as `o`, from the same sender (with or without ACK).
    fn same_position(&self, o: &Seg) -> bool {
        self.dir == o.dir
            && ((self.flags.syn() && o.flags.syn() && self.seq == o.seq)
                || (self.flags.fin() && o.flags.fin() && self.end() == o.end()))
    }
    /// ACK flag set and the acknowledgment covers `end`.
    fn covers(&self, end: u32) -> bool {
        self.flags.ack() && seq_ge(self.ack, end)
    }
    /// Same SYN or FIN as `o` (a retransmitted copy): same sender, same control at the
    /// same sequence position, ACK flag alike.
    fn same_control(&self, o: &Seg) -> bool {
        self.dir == o.dir
            && self.flags.ack() == o.flags.ack()
            && ((self.flags.syn() && o.flags.syn() && self.seq == o.seq)
                || (self.flags.fin() && o.flags.fin() && self.end() == o.end()))
    }
}

/// One TCP connection: one incarnation of a 4-tuple.
#[derive(Clone, Debug)]
pub struct Conn {
    /// 1-based number, in order of first segment.
    pub index: usize,
    /// The left endpoint: the one that sent the first SYN, else the one with the higher
    /// (ephemeral-looking) port.
    pub left: SocketAddr,
    /// The right endpoint.
    pub right: SocketAddr,
    /// Segments in capture order.
    pub segs: Vec<Seg>,
    /// The connection that used the same 4-tuple before this one, if any.
    pub prev: Option<usize>,
}

impl Conn {
    fn isn(&self, side: usize) -> Option<u32> {
        self.segs
            .iter()
            .find(|s| s.sender() == side && s.flags.syn())
            .map(|s| s.seq)
    }

    /// Whether a SYN without ACK from `side` with `seq` starts a new incarnation.
    fn starts_new(&self, side: usize, seq: u32) -> bool {
        // Once both sides sent FIN no SYN belongs to this connection any more, even
        // with the same ISN (as a program restarted with the same seed may pick).
        let fin = |x: usize| {
            self.segs
                .iter()
                .any(|s| s.sender() == x && s.flags.fin() && !s.flags.rst())
        };
        if fin(0) && fin(1) {
            return true;
        }
        // The same ISN is a retransmitted SYN (also after a RST that answered the
        // first copy and was lost); another ISN is a new connection.
        if let Some(isn) = self.isn(side) {
            return isn != seq;
        }
        if self.segs.iter().any(|s| s.flags.rst()) {
            return true;
        }
        // This side never sent a SYN here: the same connection only while the other side
        // opens and nothing has been acknowledged yet (simultaneous open).
        let other_syn = self.isn(1 - side).is_some();
        !(other_syn && self.segs.iter().all(|s| !s.flags.ack()))
    }
}

/// Splits packets into connections (by 4-tuple, a new SYN starting a new incarnation).
pub fn group(packets: &[Packet]) -> Vec<Conn> {
    let mut conns: Vec<Conn> = Vec::new();
    let mut by_tuple: HashMap<(SocketAddr, SocketAddr), usize> = HashMap::new();
    for p in packets {
        let key = if p.src <= p.dst {
            (p.src, p.dst)
        } else {
            (p.dst, p.src)
        };
        let bare_syn = p.flags.syn() && !p.flags.ack() && !p.flags.rst();
        let mut cur = by_tuple.get(&key).copied();
        if let Some(ci) = cur {
            let c = &conns[ci];
            let side = usize::from(p.src != c.left);
            if bare_syn && c.starts_new(side, p.seq) {
                cur = None;
            }
        }
        let ci = match cur {
            Some(ci) => ci,
            None => {
                let (left, right) = if p.flags.syn() && p.flags.ack() {
                    (p.dst, p.src)
                } else if p.flags.syn() || p.src.port() >= p.dst.port() {
                    (p.src, p.dst)
                } else {
                    (p.dst, p.src)
                };
                let prev = by_tuple.get(&key).copied();
                conns.push(Conn {
                    index: conns.len() + 1,
                    left,
                    right,
                    segs: Vec::new(),
                    prev,
                });
                by_tuple.insert(key, conns.len() - 1);
                conns.len() - 1
            }
        };
        let c = &mut conns[ci];
        c.segs.push(Seg {
            t_us: p.t_us,
            dir: if p.src == c.left {
                Dir::Right
            } else {
                Dir::Left
            },
            flags: p.flags,
            seq: p.seq,
            ack: p.ack,
            len: p.len,
            win: p.win,
            options: p.options,
        });
    }
    conns
}

/// What the inference says about one row.
#[derive(Clone, Debug, Default)]
pub struct RowInfo {
    /// Each endpoint's state after the row (see the module doc); `None` if unknown.
    pub states: [Option<State>; 2],
    /// Whether each state is an uncertain inference.
    pub uncertain: [bool; 2],
    /// Whether the receiver processed the segment: `Some(false)` when inferred lost.
    pub received: Option<bool>,
    /// The segment repeats sequence space its sender had sent before.
    pub retransmission: bool,
}

/// How a connection opened.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OpenKind {
    /// SYN, SYN-ACK, ACK.
    ThreeWay,
    /// Both sides sent a SYN before seeing the other's.
    Simultaneous,
    /// The SYN was answered with RST.
    Refused,
    /// The SYN was never answered in the capture.
    Unanswered,
    /// SYN and SYN-ACK but no final ACK seen.
    Incomplete,
    /// The capture began after the opening.
    MidConnection,
}

impl OpenKind {
    /// Name used in text and JSON.
    pub fn name(self) -> &'static str {
        match self {
            OpenKind::ThreeWay => "three-way",
            OpenKind::Simultaneous => "simultaneous",
            OpenKind::Refused => "refused",
            OpenKind::Unanswered => "unanswered",
            OpenKind::Incomplete => "incomplete",
            OpenKind::MidConnection => "mid-connection",
        }
    }
}

/// How a connection closed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CloseKind {
    /// FIN, ACK, FIN, ACK.
    FourWay,
    /// FIN, FIN+ACK, ACK.
    ThreeWay,
    /// Both sides sent FIN before seeing the other's.
    Simultaneous,
    /// The side that did not close first kept sending data after the first FIN.
    HalfClose,
    /// Ended by RST.
    Rst,
    /// Only one FIN by the end of the capture.
    Incomplete,
    /// Neither FIN nor RST in the capture.
    Never,
}

impl CloseKind {
    /// Name used in text and JSON.
    pub fn name(self) -> &'static str {
        match self {
            CloseKind::FourWay => "four-way",
            CloseKind::ThreeWay => "three-way",
            CloseKind::Simultaneous => "simultaneous",
            CloseKind::HalfClose => "half-close",
            CloseKind::Rst => "rst",
            CloseKind::Incomplete => "incomplete",
            CloseKind::Never => "never",
        }
    }
}

/// Something worth a second look.
#[derive(Clone, Debug)]
pub struct Anomaly {
    /// Stable kind name (documented in the README).
    pub kind: &'static str,
    /// Row (0-based) where it shows, if one row.
    pub row: Option<usize>,
    /// Which endpoint it concerns (0 left, 1 right).
    pub side: Option<usize>,
    /// Human text.
    pub text: String,
}

/// Where the capture was taken, as far as the timing tells.
#[derive(Clone, Debug)]
pub struct Vantage {
    /// The endpoint whose host the capture was taken on, when that is clear.
    pub side: Option<usize>,
    /// Shortest time each endpoint took to answer a SYN or FIN of the other (µs).
    pub answer_us: [Option<u64>; 2],
    /// One sentence.
    pub text: String,
}

/// Everything inferred about one connection.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// One entry per segment.
    pub rows: Vec<RowInfo>,
    /// States before the first row.
    pub initial: [Option<State>; 2],
    /// Whether the initial states are assumptions.
    pub initial_uncertain: [bool; 2],
    /// Relative-number base per endpoint: its ISN, else the first sequence number seen.
    pub base: [Option<u32>; 2],
    /// Window shift per endpoint when both SYNs carried window scale, else `None`.
    pub wscale: [Option<u8>; 2],
    /// Who opened: 0, 1, or `None` (both, or not seen).
    pub opener: Option<usize>,
    /// How it opened.
    pub open: OpenKind,
    /// How it closed.
    pub close: CloseKind,
    /// Who sent the first FIN (or the RST that ended it).
    pub first_closer: Option<usize>,
    /// Endpoints that went through TIME_WAIT, with the row where each entered it.
    pub time_wait: Vec<(usize, usize)>,
    /// Phase durations in µs: handshake, established, closing.
    pub phases: Phases,
    /// Retransmitted segments per endpoint.
    pub retransmissions: [u32; 2],
    /// Anomalies, in row order.
    pub anomalies: Vec<Anomaly>,
    /// Capture vantage point.
    pub vantage: Vantage,
    /// Round-trip estimate: the longer of the two shortest answer times (µs).
    pub rtt_us: Option<u64>,
    /// Each endpoint's states in the order it went through them (its own timeline,
    /// which is not the order of the rows when segments cross).
    pub paths: [Vec<State>; 2],
}

/// Phase durations, microseconds of capture time.
#[derive(Clone, Debug, Default)]
pub struct Phases {
    /// First SYN to both endpoints ESTABLISHED.
    pub handshake_us: Option<u64>,
    /// Both ESTABLISHED to the first FIN or RST.
    pub established_us: Option<u64>,
    /// First FIN to both endpoints in CLOSED or TIME_WAIT.
    pub closing_us: Option<u64>,
    /// TIME_WAIT seen from its start to the connection's last segment (a lower bound).
    pub time_wait_us: Option<u64>,
    /// First to last segment.
    pub total_us: u64,
}

/// One endpoint's event in its own timeline.
#[derive(Clone, Copy, Debug)]
enum Ev {
    Send(usize),
    Recv(usize),
    /// Where an unreceived segment would have been processed: records the state only.
    Probe(usize),
}

/// Per-endpoint state machine.
#[derive(Clone, Debug)]
struct Machine {
    state: Option<State>,
    /// Started from an assumption (capture began mid-connection).
    assumed: bool,
    isn: Option<u32>,
    fin_end: Option<u32>,
}

impl Machine {
    fn send(&mut self, s: &Seg) {
        let st = self.state;
        if s.flags.rst() {
            self.state = Some(State::Closed);
            self.assumed = false;
            return;
        }
        if s.flags.syn() {
            self.isn.get_or_insert(s.seq);
            self.assumed = false;
            self.state = Some(match (s.flags.ack(), st) {
                (false, Some(State::SynReceived)) => State::SynReceived,
                (false, _) => State::SynSent,
                (true, None | Some(State::Listen | State::Closed | State::SynSent)) => {
                    State::SynReceived
                }
                (true, Some(other)) => other,
            });
        }
        if s.flags.fin() {
            self.fin_end.get_or_insert(s.end());
            self.assumed = false;
            self.state = Some(match self.state {
                Some(State::Established | State::SynReceived) | None => State::FinWait1,
                Some(State::CloseWait) => State::LastAck,
                Some(other) => other,
            });
        }
    }

    /// The application closes: the state the FIN will be sent in.
    fn close(&mut self) {
        self.state = match self.state {
            Some(State::Established | State::SynReceived) => Some(State::FinWait1),
            Some(State::CloseWait) => Some(State::LastAck),
            other => other,
        };
    }

    fn recv(&mut self, s: &Seg) {
        let Some(st) = self.state else {
            return;
        };
        if s.flags.rst() {
            if st != State::Listen {
                self.state = Some(State::Closed);
                self.assumed = false;
            }
            return;
        }
        let acks_syn = self.isn.is_some_and(|i| s.covers(i.wrapping_add(1)));
        let acks_fin = self.fin_end.is_some_and(|e| s.covers(e));
        let mut st = st;
        if s.flags.syn() {
            st = match (st, s.flags.ack()) {
                (State::Listen | State::SynSent, false) => State::SynReceived,
                (State::SynSent | State::SynReceived, true) if acks_syn => State::Established,
                (other, _) => other,
            };
        } else if st == State::SynReceived && acks_syn {
            st = State::Established;
        }
        let fin = s.flags.fin();
        st = match st {
            State::Established if fin => State::CloseWait,
            State::FinWait1 if acks_fin && fin => State::TimeWait,
            State::FinWait1 if acks_fin => State::FinWait2,
            State::FinWait1 if fin => State::Closing,
            State::FinWait2 if fin => State::TimeWait,
            State::Closing if acks_fin => State::TimeWait,
            State::LastAck if acks_fin => State::Closed,
            other => other,
        };
        self.state = Some(st);
    }
}

/// Analyses one connection; `msl_us` is the maximum segment lifetime TIME_WAIT is held
/// to (twice it).
pub fn analyze(c: &Conn) -> Analysis {
    let segs = &c.segs;
    let n = segs.len();
    let mut rows: Vec<RowInfo> = vec![RowInfo::default(); n];

    // Bases, window scale, retransmissions.
    let mut base: [Option<u32>; 2] = [c.isn(0), c.isn(1)];
    for s in segs {
        base[s.sender()].get_or_insert(s.seq);
    }
    let syn_ws = |side: usize| {
        segs.iter()
            .find(|s| s.sender() == side && s.flags.syn())
            .map(|s| s.options.wscale)
    };
    let wscale = match (syn_ws(0), syn_ws(1)) {
        (Some(Some(a)), Some(Some(b))) => [Some(a.min(14)), Some(b.min(14))],
        _ => [None, None],
    };
    let mut retransmissions = [0u32; 2];
    {
        let mut high: [Option<u32>; 2] = [None, None];
        let mut bare_syn = [false; 2];
        let mut synack = [false; 2];
        for (i, s) in segs.iter().enumerate() {
            let x = s.sender();
            if s.seq_len() == 0 || s.flags.rst() {
                continue;
            }
            // The SYN-ACK of a simultaneous open repeats the SYN's sequence number but
            // is a new segment.
            let fresh_synack = s.flags.syn() && s.flags.ack() && bare_syn[x] && !synack[x];
            if s.flags.syn() {
                if s.flags.ack() {
                    synack[x] = true;
                } else {
                    bare_syn[x] = true;
                }
            }
            if !fresh_synack && high[x].is_some_and(|h| seq_ge(h, s.end())) {
                rows[i].retransmission = true;
                retransmissions[x] += 1;
            }
            high[x] = Some(match high[x] {
                Some(h) if seq_ge(h, s.end()) => h,
                _ => s.end(),
            });
        }
    }

    // Answer times: for each SYN/FIN, the first segment of the peer acknowledging it.
    let mut answer_us: [Option<u64>; 2] = [None, None];
    for (i, s) in segs.iter().enumerate() {
        // Only the first segment carrying each SYN or FIN: a later copy (or the
        // SYN-ACK of a simultaneous open) may find its acknowledgment already sent.
        if !s.control() || (0..i).any(|k| segs[k].same_position(s)) {
            continue;
        }
        let y = 1 - s.sender();
        if let Some(j) = (i + 1..n).find(|&j| segs[j].sender() == y && segs[j].covers(s.end())) {
            // Measured from the last copy sent before the answer.
            let from = (i..j).rev().find(|&k| segs[k].same_control(s)).unwrap_or(i);
            let gap = segs[j].t_us.saturating_sub(segs[from].t_us);
            answer_us[y] = Some(answer_us[y].map_or(gap, |g| g.min(gap)));
        }
    }
    let rtt_us = match answer_us {
        [Some(a), Some(b)] => Some(a.max(b)),
        [a, b] => a.or(b),
    };
    let vantage = vantage(answer_us);
    // Receipt positions (doubled indices: a send of row i is at 2i, a receipt after it
    // at 2i+1), or None for a segment taken as lost.
    //
    // Timing first: an endpoint never answered a SYN or FIN faster than answer_us, so a
    // segment it sent less than that after another was captured was on its way before
    // that other one arrived.
    let reach = |x: usize| answer_us[x].unwrap_or(0);
    let mut recv_pos: Vec<Option<usize>> = vec![None; n];
    let mut recv_sure: Vec<bool> = vec![true; n];
    let mut last_pos: [usize; 2] = [0, 0];
    for i in 0..n {
        let s = &segs[i];
        let y = s.sender();
        let x = 1 - y;
        let later_x = || (i + 1..n).filter(move |&j| segs[j].sender() == x);
        // The last send of x that left before s can have reached it.
        let too_soon = |from: usize| {
            (from + 1..n)
                .filter(|&j| segs[j].sender() == x)
                .take_while(|&j| segs[j].t_us.saturating_sub(segs[from].t_us) < reach(x))
                .last()
                .unwrap_or(from)
        };
        let mut pos: Option<usize> = Some(2 * too_soon(i) + 1);
        // A SYN or FIN the receiver has not processed in an earlier copy.
        let new_control =
            s.control() && !(0..i).any(|k| recv_pos[k].is_some() && segs[k].same_position(s));
        if new_control {
            match later_x().find(|&j| segs[j].covers(s.end())) {
                Some(j) => {
                    let latest = (i..j).rev().find(|&k| segs[k].same_control(s)).unwrap_or(i);
                    if latest != i {
                        pos = None;
                    } else {
                        // Every segment of x before the acknowledgment did not have it.
                        let m = (i + 1..j)
                            .rev()
                            .find(|&k| segs[k].sender() == x && !segs[k].flags.rst())
                            .unwrap_or(i);
                        pos = Some(2 * m.max(too_soon(i)).min(j - 1) + 1);
                    }
                }
                None => {
                    recv_sure[i] = false;
                    // A later copy may still be the one that arrives.
                    let later_copy = (i + 1..n).any(|k| segs[k].same_control(s));
                    let x_spoke = later_x().any(|j| {
                        !segs[j].flags.rst() && segs[j].t_us.saturating_sub(s.t_us) >= reach(x)
                    });
                    if later_copy || x_spoke {
                        pos = None;
                    }
                }
            }
        } else if !s.flags.rst() && s.flags.ack() {
            // The receiver sends again, after it could have seen this segment, a SYN or
            // FIN this segment acknowledges: the segment was lost (or came too late).
            let after = pos.map_or(i, |p| p / 2);
            let again = (after + 1..n).find(|&j| {
                let r = &segs[j];
                r.sender() == x && r.control() && s.covers(r.end())
            });
            if let Some(first) = again {
                pos = None;
                let reacked = (first + 1..n)
                    .any(|k| segs[k].sender() == y && segs[k].covers(segs[first].end()));
                if !reacked {
                    recv_sure[i] = false;
                }
            }
        }
        if let Some(p) = pos {
            let p = p.max(last_pos[x]);
            last_pos[x] = p;
            recv_pos[i] = Some(p);
        }
        // Nothing of the receiver follows: the receipt is unconfirmed.
        if recv_pos[i].is_some() && later_x().next().is_none() && !s.flags.rst() {
            recv_sure[i] = false;
        }
    }

    // Initial states.
    let first_bare_syn = |side: usize| {
        segs.iter()
            .position(|s| s.sender() == side && s.flags.syn() && !s.flags.ack())
    };
    let mut initial: [Option<State>; 2] = [None, None];
    let mut initial_uncertain = [false; 2];
    let opener = match (first_bare_syn(0), first_bare_syn(1)) {
        (Some(_), Some(_)) => None,
        (Some(_), None) => Some(0),
        (None, Some(_)) => Some(1),
        (None, None) => None,
    };
    for side in 0..2 {
        let mine = || segs.iter().filter(|s| s.sender() == side);
        initial[side] = if first_bare_syn(side).is_some() {
            Some(State::Closed)
        } else if first_bare_syn(1 - side).is_some() {
            // The peer opened: a listener if we answer with SYN-ACK, no socket if RST.
            match mine().next() {
                Some(s) if s.flags.syn() => Some(State::Listen),
                Some(s) if s.flags.rst() => Some(State::Closed),
                Some(_) => {
                    initial_uncertain[side] = true;
                    Some(State::Listen)
                }
                None => None,
            }
        } else if mine().next().is_some_and(|s| s.flags.syn()) {
            // SYN-ACK without the SYN captured.
            initial_uncertain[side] = true;
            Some(State::Listen)
        } else {
            initial_uncertain[side] = true;
            Some(State::Established)
        };
    }

    // Run both machines over their own timelines.
    let mut paths: [Vec<State>; 2] = [Vec::new(), Vec::new()];
    for side in 0..2 {
        let mut evs: Vec<(usize, usize, Ev)> = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            if s.sender() == side {
                evs.push((2 * i, i, Ev::Send(i)));
            } else if let Some(p) = recv_pos[i] {
                evs.push((p, i, Ev::Recv(i)));
            } else {
                evs.push((2 * i + 1, i, Ev::Probe(i)));
            }
        }
        evs.sort_by_key(|e| (e.0, e.1));
        let mut m = Machine {
            state: initial[side],
            assumed: initial_uncertain[side],
            isn: None,
            fin_end: None,
        };
        // The application's close comes before its FIN reaches the wire: data queued
        // ahead of the FIN goes out after it. Segments sent in the same instant as the
        // FIN, just before it, are taken as sent after the close (uncertain).
        let burst = close_burst(segs, side, &rows);
        let mut path: Vec<State> = initial[side].into_iter().collect();
        for (k, &(_, _, ev)) in evs.iter().enumerate() {
            if let Some(st) = m.state {
                if path.last() != Some(&st) {
                    path.push(st);
                }
            }
            match ev {
                Ev::Send(i) => {
                    let early = burst.is_some_and(|(b, f)| b <= i && i < f);
                    if early {
                        m.close();
                    }
                    m.send(&segs[i]);
                    rows[i].states[side] = m.state;
                    rows[i].uncertain[side] = m.assumed || early;
                }
                Ev::Recv(i) => {
                    let before = m.state;
                    m.recv(&segs[i]);
                    // A close queued before the handshake ended (shutdown() right after
                    // a non-blocking connect()) takes effect as the SYN-ACK arrives, when
                    // the burst ending in the FIN follows at once.
                    let pending = before == Some(State::SynSent)
                        && m.state == Some(State::Established)
                        && matches!(
                            (burst, evs.get(k + 1)),
                            (Some((b, f)), Some(&(_, _, Ev::Send(j)))) if j == b && b < f
                        );
                    if pending {
                        path.extend(m.state.filter(|&st| path.last() != Some(&st)));
                        m.close();
                    }
                    rows[i].states[side] = m.state;
                    rows[i].uncertain[side] = m.assumed || !recv_sure[i] || pending;
                    rows[i].received = Some(true);
                }
                Ev::Probe(i) => {
                    rows[i].states[side] = m.state;
                    rows[i].uncertain[side] = m.assumed || !recv_sure[i];
                    rows[i].received = Some(false);
                }
            }
        }
        if let Some(st) = m.state {
            if path.last() != Some(&st) {
                path.push(st);
            }
        }
        paths[side] = path;
    }
    for (i, r) in rows.iter_mut().enumerate() {
        if !recv_sure[i] && r.received == Some(true) {
            r.received = None;
        }
    }

    let mut a = Analysis {
        rows,
        initial,
        initial_uncertain,
        base,
        wscale,
        opener,
        open: OpenKind::MidConnection,
        close: CloseKind::Never,
        first_closer: None,
        time_wait: Vec::new(),
        phases: Phases::default(),
        retransmissions,
        anomalies: Vec::new(),
        vantage,
        rtt_us,
        paths,
    };
    summarize(c, &mut a);
    a
}

/// The first FIN of `side` (row `f`) and the first row `b` of the run of that side's
/// segments sent in the same instant just before it, when there is such a run. The run
/// holds only segments with the FIN's acknowledgment number: one that acknowledges less
/// was sent before something more arrived, the peer's FIN perhaps, and taking it as sent
/// after the close would put that FIN's receipt after the close and before ours: CLOSING,
/// a three-way close traced as simultaneous.
fn close_burst(segs: &[Seg], side: usize, rows: &[RowInfo]) -> Option<(usize, usize)> {
    let f = segs
        .iter()
        .position(|s| s.sender() == side && s.flags.fin() && !s.flags.rst())?;
    let t = segs[f].t_us;
    let mut b = f;
    for k in (0..f).rev() {
        if segs[k].sender() != side {
            continue;
        }
        if segs[k].t_us != t
            || rows[k].retransmission
            || segs[k].flags.syn()
            || segs[k].ack != segs[f].ack
        {
            break;
        }
        b = k;
    }
    (b < f).then_some((b, f))
}

fn vantage(answer_us: [Option<u64>; 2]) -> Vantage {
    let ms = |us: u64| format!("{:.3} ms", us as f64 / 1000.0);
    let (side, text) = match answer_us {
        [Some(a), Some(b)] => {
            let (lo, hi) = (a.min(b), a.max(b));
            if hi < 1000 {
                (
                    None,
                    format!(
                        "both endpoints answer within {}: one host, or a capture next to both; the vantage point cannot be told",
                        ms(hi)
                    ),
                )
            } else if lo * 10 <= hi {
                let s = usize::from(b < a);
                (
                    Some(s),
                    format!(
                        "captured on the {} endpoint's host: it answers in {}, the other in {} (a round trip)",
                        ["left", "right"][s],
                        ms(lo),
                        ms(hi)
                    ),
                )
            } else {
                (
                    None,
                    format!(
                        "captured between the hosts: the left endpoint answers in {}, the right in {}",
                        ms(a),
                        ms(b)
                    ),
                )
            }
        }
        _ => (
            None,
            "not enough answered SYNs or FINs to tell where the capture was taken".to_string(),
        ),
    };
    Vantage {
        side,
        answer_us,
        text,
    }
}

fn summarize(c: &Conn, a: &mut Analysis) {
    let segs = &c.segs;
    let n = segs.len();
    let name = |side: usize| {
        if side == 0 {
            c.left.to_string()
        } else {
            c.right.to_string()
        }
    };
    let t0 = segs.first().map_or(0, |s| s.t_us);
    let t_end = segs.last().map_or(0, |s| s.t_us);
    a.phases.total_us = t_end - t0;
    let bare_syn = |side: usize| {
        segs.iter()
            .position(|s| s.sender() == side && s.flags.syn() && !s.flags.ack())
    };

    // Opening.
    a.open = match (bare_syn(0), bare_syn(1)) {
        (Some(_), Some(_)) => OpenKind::Simultaneous,
        (Some(i), None) | (None, Some(i)) => {
            let x = 1 - segs[i].sender();
            let answer = segs[i + 1..].iter().find(|s| s.sender() == x);
            match answer {
                None => OpenKind::Unanswered,
                Some(s) if s.flags.rst() => OpenKind::Refused,
                Some(_) => {
                    if a.rows
                        .iter()
                        .any(|r| r.states.iter().all(|s| *s == Some(State::Established)))
                        || segs.iter().any(|s| s.flags.fin())
                    {
                        OpenKind::ThreeWay
                    } else {
                        OpenKind::Incomplete
                    }
                }
            }
        }
        (None, None) => {
            if segs.iter().any(|s| s.flags.syn()) {
                OpenKind::Incomplete
            } else {
                OpenKind::MidConnection
            }
        }
    };
    if a.open == OpenKind::MidConnection {
        a.anomalies.push(Anomaly {
            kind: "mid-connection",
            row: Some(0),
            side: None,
            text: "the capture began after the opening: states are assumed (marked ?) until a SYN, FIN or RST pins them".into(),
        });
    }
    if a.open == OpenKind::Unanswered {
        let i = bare_syn(0).or(bare_syn(1)).unwrap_or(0);
        a.anomalies.push(Anomaly {
            kind: "syn-unanswered",
            row: Some(i),
            side: Some(segs[i].sender()),
            text: format!(
                "SYN from {} never answered ({} SYN segments sent)",
                name(segs[i].sender()),
                segs.iter().filter(|s| s.flags.syn()).count()
            ),
        });
    }

    // Phases.
    let first_syn = segs.iter().position(|s| s.flags.syn());
    let both =
        |st: &[State], r: &RowInfo| r.states.iter().all(|s| s.is_some_and(|s| st.contains(&s)));
    let est_row = a.rows.iter().position(|r| {
        r.states
            .iter()
            .all(|s| s.is_some_and(|s| s.is_synchronized()))
    });
    let first_fin = segs.iter().position(|s| s.flags.fin() && !s.flags.rst());
    let first_rst = segs.iter().position(|s| s.flags.rst());
    let end_row = first_fin
        .or(first_rst)
        .map(|f| match (first_fin, first_rst) {
            (Some(a), Some(b)) => a.min(b),
            _ => f,
        });
    if let (Some(s), Some(e)) = (first_syn, est_row) {
        a.phases.handshake_us = Some(segs[e].t_us - segs[s].t_us);
    }
    if let (Some(e), Some(f)) = (est_row, end_row) {
        if f >= e {
            a.phases.established_us = Some(segs[f].t_us - segs[e].t_us);
        }
    }
    if let Some(f) = first_fin {
        let done = (f..n).find(|&i| both(&[State::Closed, State::TimeWait], &a.rows[i]));
        if let Some(d) = done {
            a.phases.closing_us = Some(segs[d].t_us - segs[f].t_us);
        }
    }

    // TIME_WAIT.
    for side in 0..2 {
        if let Some(i) = a
            .rows
            .iter()
            .position(|r| r.states[side] == Some(State::TimeWait))
        {
            a.time_wait.push((side, i));
            let us = t_end - segs[i].t_us;
            a.phases.time_wait_us = Some(a.phases.time_wait_us.map_or(us, |v: u64| v.max(us)));
        }
    }

    // Closing.
    let fin_row = |side: usize| {
        segs.iter()
            .position(|s| s.sender() == side && s.flags.fin() && !s.flags.rst())
    };
    let fins = [fin_row(0), fin_row(1)];
    let rst_closed = first_rst.is_some_and(|r| {
        // A RST that came before both FINs were acknowledged ended the connection.
        !(0..2).all(|side| {
            fins[side].is_some_and(|f| {
                let end = segs[f].end();
                segs[..r]
                    .iter()
                    .any(|s| s.sender() != side && s.covers(end))
            })
        })
    });
    let first = match fins {
        [Some(a), Some(b)] => Some(if a <= b { 0 } else { 1 }),
        [Some(_), None] => Some(0),
        [None, Some(_)] => Some(1),
        [None, None] => None,
    };
    let data_after_first_fin = first.is_some_and(|f| {
        let fr = fins[f].unwrap_or(0);
        segs[fr + 1..]
            .iter()
            .enumerate()
            .any(|(k, s)| s.sender() != f && s.len > 0 && !a.rows[fr + 1 + k].retransmission)
    });
    if rst_closed {
        a.close = CloseKind::Rst;
        a.first_closer = match (first, first_rst) {
            (Some(f), Some(r)) if fins[f].is_some_and(|fr| fr < r) => Some(f),
            (_, Some(r)) => Some(segs[r].sender()),
            _ => None,
        };
    } else if let (Some(f), [Some(_), Some(_)]) = (first, fins) {
        a.first_closer = Some(f);
        let second = 1 - f;
        let first_fin_end = segs[fins[f].unwrap_or(0)].end();
        let sfr = fins[second].unwrap_or(0);
        let closing = a
            .rows
            .iter()
            .any(|r| r.states.contains(&Some(State::Closing)));
        let separate_ack = segs[..sfr]
            .iter()
            .any(|s| s.sender() == second && s.covers(first_fin_end));
        a.close = if closing || !segs[sfr].covers(first_fin_end) {
            CloseKind::Simultaneous
        } else if data_after_first_fin {
            CloseKind::HalfClose
        } else if separate_ack {
            CloseKind::FourWay
        } else {
            CloseKind::ThreeWay
        };
    } else if let Some(f) = first {
        a.first_closer = Some(f);
        a.close = CloseKind::Incomplete;
    }

    // Anomalies, row by row.
    let mut zero_win: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
    for (i, s) in segs.iter().enumerate() {
        let x = s.sender();
        let r = &a.rows[i];
        if s.flags.syn() && r.retransmission {
            a.anomalies.push(Anomaly {
                kind: "syn-retransmitted",
                row: Some(i),
                side: Some(x),
                text: format!("{} sent its SYN again", name(x)),
            });
        }
        if s.flags.fin() && r.retransmission {
            a.anomalies.push(Anomaly {
                kind: "fin-retransmitted",
                row: Some(i),
                side: Some(x),
                text: format!("{} sent its FIN again", name(x)),
            });
        }
        if s.win == 0 && !s.flags.rst() {
            zero_win[x].push(i);
        }
        // Data beyond the sender's own FIN.
        if s.len > 0 && !s.flags.fin() {
            if let Some(f) = fins[x].filter(|&f| f < i) {
                if seq_ge(s.seq, segs[f].end().wrapping_sub(1)) {
                    a.anomalies.push(Anomaly {
                        kind: "data-after-fin",
                        row: Some(i),
                        side: Some(x),
                        text: format!("{} sent {} bytes after its own FIN", name(x), s.len),
                    });
                }
            }
        }
        if s.flags.rst() {
            if let Some(prev) = segs[..i].iter().rposition(|p| p.sender() != x) {
                if segs[prev].flags.fin() {
                    a.anomalies.push(Anomaly {
                        kind: "rst-after-fin",
                        row: Some(i),
                        side: Some(x),
                        text: format!("{} answered the FIN of {} with RST", name(x), name(1 - x)),
                    });
                }
            }
        }
        if r.received == Some(false) && !r.retransmission {
            let y = 1 - x;
            let last_ack = i > 0
                && matches!(r.states[y], Some(State::LastAck | State::Closing))
                && s.seq_len() == 0;
            a.anomalies.push(Anomaly {
                kind: if last_ack { "lost-final-ack" } else { "lost" },
                row: Some(i),
                side: Some(x),
                text: if last_ack {
                    format!(
                        "the final ACK from {} did not arrive: {} sent its FIN again",
                        name(x),
                        name(y)
                    )
                } else {
                    format!("segment from {} inferred lost (sent again later)", name(x))
                },
            });
        }
    }
    for (side, rows) in zero_win.iter().enumerate() {
        if let Some(&first) = rows.first() {
            a.anomalies.push(Anomaly {
                kind: "zero-window",
                row: Some(first),
                side: Some(side),
                text: format!(
                    "{} advertised a zero window in {} segment(s)",
                    name(side),
                    rows.len()
                ),
            });
        }
    }
    if let Some(last) = a.rows.last() {
        for side in 0..2 {
            let (kind, what) = match last.states[side] {
                Some(State::CloseWait) => ("left-in-close-wait", "CLOSE_WAIT"),
                Some(State::FinWait2) => ("left-in-fin-wait-2", "FIN_WAIT_2"),
                _ => continue,
            };
            a.anomalies.push(Anomaly {
                kind,
                row: Some(n - 1),
                side: Some(side),
                text: format!(
                    "{} was still in {what} at the end of the capture",
                    name(side)
                ),
            });
        }
    }
    a.anomalies.sort_by_key(|x| x.row.unwrap_or(usize::MAX));
}

/// Adds the anomalies that need two connections: a 4-tuple reused while an endpoint
/// could still have been in TIME_WAIT for less than 2MSL.
pub fn cross_check(conns: &[Conn], analyses: &mut [Analysis], msl_us: u64) {
    for k in 0..conns.len() {
        let Some(p) = conns[k].prev else { continue };
        let Some(syn) = conns[k].segs.first() else {
            continue;
        };
        let prev = &conns[p];
        let tws: Vec<(usize, usize)> = analyses[p].time_wait.clone();
        for (side, row) in tws {
            let entered = prev.segs[row].t_us;
            let held = syn.t_us.saturating_sub(entered);
            if held < 2 * msl_us {
                let who = if side == 0 { prev.left } else { prev.right };
                analyses[k].anomalies.insert(
                    0,
                    Anomaly {
                        kind: "short-time-wait",
                        row: Some(0),
                        side: None,
                        text: format!(
                            "4-tuple reused {:.3} s after {who} entered TIME_WAIT in connection #{}: shorter than 2MSL ({:.0} s)",
                            held as f64 / 1e6,
                            prev.index,
                            2.0 * msl_us as f64 / 1e6
                        ),
                    },
                );
            }
        }
    }
}
