//! One TCP connection: the transmission control block of RFC 9293 section 3.3.1 and the
//! application's commands on it (section 3.10.1 to 3.10.6).
//!
//! # Calling order
//!
//! A `Connection` is sans-IO. Its methods come in four kinds, as in quinn-proto:
//! - getters ([`Connection::state`], [`Connection::send_queue`], ...);
//! - inputs: [`Connection::handle_segment`] for each arriving segment and
//!   [`Connection::handle_timeout`] when [`Connection::poll_timeout`]'s deadline passes;
//! - application commands: [`Connection::send`], [`Connection::recv`],
//!   [`Connection::shutdown`], [`Connection::close`], [`Connection::abort`];
//! - outputs: [`Connection::poll_transmit`] until it returns `None`,
//!   [`Connection::poll_timeout`], and [`Connection::poll_event`].
//!
//! After any input or command, drain the outputs. Every time-dependent method takes
//! `now`; nothing here reads a clock or touches a device.

use super::congestion::{Congestion, CongestionControl};
use super::event::{Error, Event, EventQueue, Reason};
use super::recovery::{self, Recovery};
use super::recv_buf::RecvBuffer;
use super::rtt::{RtoBounds, RttEstimator};
use super::sack::Scoreboard;
use super::send_buf::SendBuffer;
use super::timers::{Timer, Timers};
use super::{Config, State};
use crate::counters::Counters;
use crate::time::{Duration, Instant};
use crate::wire::tcp::{Options, Segment};
use crate::wire::Seq;
use crate::word::Word;
use core::net::{Ipv4Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::Arc;

/// Which half of a connection to shut down.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Shutdown {
    /// Stop reading: buffered and future data is discarded.
    Read,
    /// Stop writing: a FIN follows the buffered data.
    Write,
    /// Both.
    Both,
}

/// Why [`Connection::send`] took nothing.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum SendError {
    /// The write side was shut down or the connection closed (EPIPE).
    Shutdown,
    /// The connection failed with this error.
    Failed(Error),
}

/// Why [`Connection::recv`] returned no data.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum RecvError {
    /// Nothing to read yet (EAGAIN).
    WouldBlock,
    /// The connection failed with this error.
    Failed(Error),
}

/// Options an application may change on one connection (the socket options).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SockOpts {
    /// `TCP_NODELAY`.
    pub nodelay: bool,
    /// `SO_KEEPALIVE`.
    pub keepalive: bool,
    /// `TCP_KEEPIDLE`.
    pub keepalive_idle: Duration,
    /// `TCP_KEEPINTVL`.
    pub keepalive_interval: Duration,
    /// `TCP_KEEPCNT`.
    pub keepalive_count: u32,
    /// `SO_LINGER` {on, 0}: close() aborts with RST.
    pub linger_zero: bool,
    /// `TCP_LINGER2`: FIN_WAIT_2 timeout of an orphaned connection.
    pub fin_wait2_timeout: Duration,
}

impl SockOpts {
    /// The options a connection starts with: the Config's.
    pub fn from_config(c: &Config) -> SockOpts {
        SockOpts {
            nodelay: c.nodelay,
            keepalive: c.keepalive,
            keepalive_idle: c.keepalive_idle,
            keepalive_interval: c.keepalive_interval,
            keepalive_count: c.keepalive_count,
            linger_zero: c.linger_zero,
            fin_wait2_timeout: c.fin_wait2_timeout,
        }
    }
}

/// What the SACK blocks we send report beyond the out-of-order ranges themselves
/// (RFC 2018 section 4, RFC 2883): held while out-of-order data is, or a duplicate
/// waits to be reported (8 bytes in the connection instead of 44).
#[derive(Clone, Debug)]
pub(super) struct SackOut {
    /// A sequence number inside each of the most recently changed out-of-order blocks,
    /// most recent first: the order of our SACK blocks. Cleared when the last gap
    /// closes: every one of them then lies below RCV.NXT, in no block.
    recent: [Option<Seq>; 4],
    /// A duplicate segment to report in the first SACK block of the next ACK (D-SACK,
    /// RFC 2883 section 4), once.
    dsack: Option<(Seq, Seq)>,
}

/// Replies to segments outside the normal flow: an RST owed (RFC 9293's resets, to
/// be sent before anything else), and when the last reply that is rate-limited per
/// connection went (challenge ACKs and duplicate ACKs to unacceptable segments, RFC
/// 5961 section 7). Held while either is set (8 bytes in the connection instead of
/// 16); a connection that has sent such a reply keeps the time for its rate limit.
#[derive(Clone, Debug, Default)]
pub(super) struct OffFlow {
    control: Option<Control>,
    last_challenge: Option<Instant>,
    pub(super) fast_open: Option<super::fast_open::FastOpenClient>,
    /// Data that came on a SYN in SYN_SENT, held until ESTABLISHED
    /// (`Config::queue_syn_text`).
    syn_text: Option<Box<[u8]>>,
}

/// A connection's two endpoints: 16 bytes instead of two `SocketAddr`s' 64. An IPv4
/// pair (nearly every connection) is held in place in 12; an IPv6 pair, with its flow
/// information and scope, in a box of 56 (72 bytes in all, 8 more than before), and a
/// pair of mixed families, which only a caller of the core itself can make, in one of
/// 64.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Endpoints {
    V4 {
        local: [u8; 4],
        remote: [u8; 4],
        local_port: u16,
        remote_port: u16,
    },
    V6(Box<(SocketAddrV6, SocketAddrV6)>),
    Mixed(Box<(SocketAddr, SocketAddr)>),
}

impl Endpoints {
    pub(super) fn new(local: SocketAddr, remote: SocketAddr) -> Endpoints {
        match (local, remote) {
            (SocketAddr::V4(l), SocketAddr::V4(r)) => Endpoints::V4 {
                local: l.ip().octets(),
                remote: r.ip().octets(),
                local_port: l.port(),
                remote_port: r.port(),
            },
            (SocketAddr::V6(l), SocketAddr::V6(r)) => Endpoints::V6(Box::new((l, r))),
            _ => Endpoints::Mixed(Box::new((local, remote))),
        }
    }

    #[inline]
    pub(super) fn local(&self) -> SocketAddr {
        match self {
            Endpoints::V4 {
                local, local_port, ..
            } => SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(*local), *local_port)),
            Endpoints::V6(b) => SocketAddr::V6(b.0),
            Endpoints::Mixed(b) => b.0,
        }
    }

    /// Whether these are `local` and `remote`, compared in place (the demultiplexer's
    /// test, made for every arriving segment).
    #[inline]
    pub(super) fn are(&self, local: SocketAddr, remote: SocketAddr) -> bool {
        match (self, local, remote) {
            (
                Endpoints::V4 {
                    local: l,
                    remote: r,
                    local_port,
                    remote_port,
                },
                SocketAddr::V4(a),
                SocketAddr::V4(b),
            ) => {
                *local_port == a.port()
                    && *remote_port == b.port()
                    && *l == a.ip().octets()
                    && *r == b.ip().octets()
            }
            (Endpoints::V6(x), SocketAddr::V6(a), SocketAddr::V6(b)) => x.0 == a && x.1 == b,
            (Endpoints::Mixed(x), ..) => x.0 == local && x.1 == remote,
            _ => false,
        }
    }

    #[inline]
    pub(super) fn remote(&self) -> SocketAddr {
        match self {
            Endpoints::V4 {
                remote,
                remote_port,
                ..
            } => SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(*remote), *remote_port)),
            Endpoints::V6(b) => SocketAddr::V6(b.1),
            Endpoints::Mixed(b) => b.1,
        }
    }
}

/// What a valid SYN cookie gives back to [`Connection::accept_cookie`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CookieOpen {
    /// Our ISN: the cookie.
    pub iss: Seq,
    /// The peer's MSS, as the cookie encoded it.
    pub mss: u16,
    /// The peer's window scale, from the cookie's timestamp bits.
    pub wscale: Option<u8>,
    /// SACK permitted, from the cookie's timestamp bits.
    pub sack_ok: bool,
    /// Our timestamp offset for this 4-tuple.
    pub ts_offset: u32,
}

/// What the caller should do with a segment after [`Connection::handle_segment`].
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Disposition {
    /// The connection took it (accepted, answered or dropped it).
    Consumed,
    /// The connection is CLOSED: treat the segment as if no connection existed (RST).
    NoConnection,
    /// A SYN may reopen this TIME_WAIT 4-tuple (RFC 6191): end the connection and hand
    /// the SYN to the listener.
    Recycle,
}

/// An RST or ACK the connection owes outside the normal flow.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub(super) struct Control {
    pub seq: Seq,
    pub ack: Option<Seq>,
    pub rst: bool,
}

/// Timestamp state (RFC 7323).
#[derive(Copy, Clone, Debug, Default)]
pub(super) struct TsState {
    /// TS.Recent: the peer's latest TSval worth echoing.
    pub recent: u32,
    /// When TS.Recent was last updated, for PAWS's 24-day rule.
    pub recent_age: Instant,
    /// Added to our millisecond clock to make TSval (a per-connection random offset).
    pub offset: u32,
}

/// A TCP connection.
pub struct Connection {
    pub(super) cfg: Arc<Config>,
    /// The socket options once the application changed one (`None`: the Config's, as
    /// for nearly every connection; 8 bytes here instead of 56).
    pub(super) opts: Option<Box<SockOpts>>,
    /// Our address and port and the peer's.
    pub(super) ends: Endpoints,
    pub(super) state: State,
    /// One-bit state, see the `flags!` list below (a [`Word`]: always accessed whole).
    pub(super) flags: Word,

    // Send sequence space (RFC 9293 3.3.1).
    pub(super) iss: Seq,
    pub(super) snd_una: Seq,
    pub(super) snd_nxt: Seq,
    /// Highest sequence number sent: SND.NXT moves back on retransmission, this does not.
    pub(super) snd_max: Seq,
    pub(super) snd_wnd: u32,
    pub(super) snd_wl1: Seq,
    pub(super) snd_wl2: Seq,
    pub(super) max_snd_wnd: u32,
    /// Shift applied to the peer's window field.
    pub(super) snd_wscale: u8,
    pub(super) send_buf: SendBuffer,
    /// Sequence number of the first byte in `send_buf`.
    pub(super) buf_seq: Seq,
    /// End of the last short (less than a full segment) segment of new data sent: while
    /// it is unacknowledged, Nagle holds the next short one (Minshall's variant, Linux's
    /// `snd_sml`).
    pub(super) snd_sml: Seq,

    // Receive sequence space.
    pub(super) irs: Seq,
    pub(super) rcv_nxt: Seq,
    /// Right edge of the window last advertised (RCV.NXT + RCV.WND then).
    pub(super) rcv_adv: Seq,
    /// Shift applied to the windows we advertise.
    pub(super) rcv_wscale: u8,
    pub(super) recv_buf: RecvBuffer,
    /// Sequence number of the peer's FIN, once seen (possibly beyond a gap): see
    /// [`Connection::rcv_fin`].
    pub(super) rcv_fin_seq: Seq,
    pub(super) last_ack_sent: Seq,
    /// Largest segment seen from the peer, for the every-second-segment ACK rule.
    pub(super) rcv_mss: u32,
    /// Bytes received since we last sent an ACK.
    pub(super) unacked_bytes: u32,
    /// What our SACK blocks report beyond the out-of-order ranges, held only while
    /// there is something (see [`SackOut`]).
    pub(super) sack_out: Option<Box<SackOut>>,

    // Options.
    /// Payload bytes per segment we send (the peer's MSS less our option overhead).
    pub(super) smss: u32,
    pub(super) ts: TsState,

    // Timers and retransmission.
    pub(super) timers: Timers,
    pub(super) rtt: RttEstimator,
    pub(super) backoff: u32,
    pub(super) retries: u32,
    /// The segment being timed for an RTT sample: its end sequence and send time
    /// (see [`Connection::rtt_probe`]).
    pub(super) rtt_probe_end: Seq,
    pub(super) rtt_probe_sent: Instant,
    /// TSval of our latest retransmission, while an ACK echoing an older TSval may come
    /// (see [`Connection::rtx_tsval`]).
    pub(super) rtx_tsval_val: u32,
    pub(super) probes: u32,
    pub(super) last_recv: Instant,

    // Acknowledgment policy.
    /// Retransmissions of our SYN or SYN-ACK (Linux's `total_retrans` when the
    /// handshake completes), whatever caused them.
    pub(super) syn_rtx: u32,
    /// TSval of our first SYN or SYN-ACK: an ACK echoing it shows that the timeout was
    /// spurious (Linux: `retrans_stamp`, `tcp_try_undo_spurious_syn`). See
    /// [`Connection::syn_tsval`].
    pub(super) syn_tsval_val: u32,
    pub(super) quickack: u32,

    // Congestion control and fast recovery.
    pub(super) cc: Congestion,
    /// Loss recovery, taken only when needed (see [`super::recovery`]).
    pub(super) recovery: Option<Box<Recovery>>,
    /// RACK's log and variables (RFC 8985), from the first transmission with SACK.
    pub(super) rack: Option<Box<super::rack::Rack>>,

    // Application side.
    pub(super) error: Option<Error>,
    /// Replies to segments outside the normal flow, held only while there is one to
    /// remember (see [`OffFlow`]).
    pub(super) off_flow: Option<Box<OffFlow>>,
    pub(super) events: EventQueue,
}

impl Connection {
    fn new(
        cfg: Arc<Config>,
        local: SocketAddr,
        remote: SocketAddr,
        iss: Seq,
        ts_offset: u32,
        now: Instant,
    ) -> Connection {
        let mss = u32::from(cfg.default_peer_mss);
        Connection {
            opts: None,
            ends: Endpoints::new(local, remote),
            state: State::Closed,
            flags: Word::default(),
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            snd_wnd: 0,
            snd_wl1: Seq(0),
            snd_wl2: iss,
            max_snd_wnd: 0,
            snd_wscale: 0,
            send_buf: SendBuffer::new(),
            buf_seq: iss + 1u32,
            snd_sml: iss,
            irs: Seq(0),
            rcv_nxt: Seq(0),
            rcv_adv: Seq(0),
            rcv_wscale: 0,
            recv_buf: RecvBuffer::new(cfg.recv_buffer),
            rcv_fin_seq: Seq(0),
            last_ack_sent: Seq(0),
            rcv_mss: mss,
            unacked_bytes: 0,
            sack_out: None,
            smss: mss,
            ts: TsState {
                recent: 0,
                recent_age: now,
                offset: ts_offset,
            },
            timers: Timers::default(),
            rtt: RttEstimator::new(cfg.rto_initial, RtoBounds::new(cfg.rto_min, cfg.rto_max)),
            backoff: 0,
            retries: 0,
            rtt_probe_end: Seq(0),
            rtt_probe_sent: Instant::ZERO,
            rtx_tsval_val: 0,
            probes: 0,
            last_recv: now,
            syn_rtx: 0,
            syn_tsval_val: 0,
            quickack: cfg.quickack_segments,
            cc: Congestion::new(cfg.congestion, cfg.initial_cwnd, mss),
            recovery: None,
            rack: None,
            error: None,
            off_flow: None,
            events: EventQueue::default(),
            cfg,
        }
    }

    /// Active open (connect()): a connection in SYN_SENT whose SYN is ready to send.
    /// `iss` and `ts_offset` come from the stack's RFC 6528 generator.
    pub fn connect(
        now: Instant,
        cfg: Arc<Config>,
        local: SocketAddr,
        remote: SocketAddr,
        iss: Seq,
        ts_offset: u32,
        cx: &mut Counters,
    ) -> Connection {
        let mut c = Connection::new(cfg, local, remote, iss, ts_offset, now);
        cx.active_opens += 1;
        if c.cfg.fast_open {
            c.start_fast_open();
        }
        // The keepalive timer times the handshake, as FreeBSD's keep timer does for
        // TCP_KEEPINIT; it is idle until ESTABLISHED anyway.
        if let Some(t) = c.cfg.connect_timeout {
            c.timers.set(Timer::Keepalive, now + t);
        }
        c.set_state(State::SynSent, Reason::Connect);
        c
    }

    /// Passive open: a listener received `syn` and hands it over. The connection is in
    /// SYN_RECEIVED with its SYN-ACK ready to send.
    #[allow(clippy::too_many_arguments)] // each is one of the RFC's inputs to a passive open
    pub fn accept_syn(
        now: Instant,
        cfg: Arc<Config>,
        local: SocketAddr,
        remote: SocketAddr,
        syn: &Segment<'_>,
        iss: Seq,
        ts_offset: u32,
        cx: &mut Counters,
    ) -> Connection {
        let mut c = Connection::new(cfg, local, remote, iss, ts_offset, now);
        c.set_passive(true);
        c.state = State::Listen;
        cx.passive_opens += 1;
        c.take_syn(now, syn);
        c.set_state(State::SynReceived, Reason::RcvSyn);
        c
    }

    /// Passive open from a SYN cookie (RFC 4987 3.6): the listener kept no state for the
    /// SYN, and `ack` carries a valid cookie. The connection is rebuilt from the cookie
    /// (`c.iss`, the peer's MSS) and the options the cookie's timestamp carried, and is
    /// ESTABLISHED. The state log shows LISTEN -> SYN_RECEIVED -> ESTABLISHED, the
    /// SYN_RECEIVED the cookie stood for. Feed `ack` to [`Connection::handle_segment`]
    /// afterwards for any data it carries.
    pub fn accept_cookie(
        now: Instant,
        cfg: Arc<Config>,
        local: SocketAddr,
        remote: SocketAddr,
        ack: &Segment<'_>,
        c: CookieOpen,
        cx: &mut Counters,
    ) -> Connection {
        let mut conn = Connection::new(cfg, local, remote, c.iss, c.ts_offset, now);
        conn.set_passive(true);
        conn.state = State::Listen;
        cx.passive_opens += 1;
        conn.irs = ack.seq - 1u32;
        conn.rcv_nxt = ack.seq;
        conn.last_ack_sent = ack.seq;
        conn.snd_una = c.iss + 1u32;
        conn.snd_nxt = conn.snd_una;
        conn.snd_max = conn.snd_una;
        conn.buf_seq = conn.snd_una;
        conn.set_synack_sent(true);
        let ts = ack.options.timestamps.filter(|_| conn.cfg.timestamps);
        conn.set_ts_enabled(ts.is_some());
        if let Some((val, _)) = ts {
            conn.ts.recent = val;
            conn.ts.recent_age = now;
        }
        // Without timestamps the cookie could carry no options: no scaling, no SACK.
        conn.set_ws_ok(
            conn.ts_enabled() && c.wscale.is_some() && conn.cfg.offered_wscale().is_some(),
        );
        conn.snd_wscale = if conn.ws_ok() {
            c.wscale.unwrap_or(0).min(14)
        } else {
            0
        };
        conn.rcv_wscale = if conn.ws_ok() {
            conn.cfg.offered_wscale().unwrap_or(0)
        } else {
            0
        };
        conn.recv_buf.set_window_scale(conn.rcv_wscale);
        conn.set_sack_ok(conn.ts_enabled() && c.sack_ok && conn.cfg.sack);
        let overhead = if conn.ts_enabled() { 12 } else { 0 };
        let ours = u32::from(conn.cfg.mss(remote.is_ipv6()));
        conn.smss = (u32::from(c.mss).min(ours).saturating_sub(overhead)).max(64);
        conn.cc = Congestion::new(conn.cfg.congestion, conn.cfg.initial_cwnd, conn.smss);
        conn.snd_wnd = u32::from(ack.window) << conn.snd_wscale;
        conn.max_snd_wnd = conn.snd_wnd;
        conn.snd_wl1 = ack.seq;
        conn.snd_wl2 = ack.ack;
        conn.rcv_adv = conn.rcv_nxt + conn.syn_window();
        conn.last_recv = now;
        conn.set_state(State::SynReceived, Reason::RcvCookieAck);
        conn.set_state(State::Established, Reason::RcvCookieAck);
        conn.events.push_back(Event::Connected);
        conn
    }

    // ----- getters -------------------------------------------------------------------

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Our address and port.
    pub fn local(&self) -> SocketAddr {
        self.ends.local()
    }

    /// The peer's address and port.
    pub fn remote(&self) -> SocketAddr {
        self.ends.remote()
    }

    /// Whether this connection's endpoints are `local` and `remote`: the same as
    /// comparing [`Connection::local`] and [`Connection::remote`], without building them.
    #[inline]
    pub(crate) fn has_endpoints(&self, local: SocketAddr, remote: SocketAddr) -> bool {
        self.ends.are(local, remote)
    }

    /// The configuration this connection was made with.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The socket options in force.
    pub fn sockopts(&self) -> SockOpts {
        match &self.opts {
            Some(o) => **o,
            None => SockOpts::from_config(&self.cfg),
        }
    }

    /// Mutable socket options (`setsockopt`). The connection keeps its own copy of the
    /// options from then on.
    pub fn sockopts_mut(&mut self) -> &mut SockOpts {
        let cfg = &self.cfg;
        self.opts
            .get_or_insert_with(|| Box::new(SockOpts::from_config(cfg)))
    }

    /// Changes the socket options with `f`; a connection whose options are the
    /// Config's again gives its copy back.
    fn change_sockopts(&mut self, f: impl FnOnce(&mut SockOpts)) {
        f(self.sockopts_mut());
        if self.opts.as_deref() == Some(&SockOpts::from_config(&self.cfg)) {
            self.opts = None;
        }
    }

    /// `TCP_NODELAY` in force.
    #[inline]
    pub(super) fn nodelay(&self) -> bool {
        self.opts.as_ref().map_or(self.cfg.nodelay, |o| o.nodelay)
    }

    /// `SO_KEEPALIVE` in force.
    #[inline]
    pub(super) fn keepalive(&self) -> bool {
        self.opts
            .as_ref()
            .map_or(self.cfg.keepalive, |o| o.keepalive)
    }

    /// `TCP_KEEPIDLE` in force.
    pub(super) fn keepalive_idle(&self) -> Duration {
        self.opts
            .as_ref()
            .map_or(self.cfg.keepalive_idle, |o| o.keepalive_idle)
    }

    /// `TCP_KEEPINTVL` in force.
    pub(super) fn keepalive_interval(&self) -> Duration {
        self.opts
            .as_ref()
            .map_or(self.cfg.keepalive_interval, |o| o.keepalive_interval)
    }

    /// `TCP_KEEPCNT` in force.
    pub(super) fn keepalive_count(&self) -> u32 {
        self.opts
            .as_ref()
            .map_or(self.cfg.keepalive_count, |o| o.keepalive_count)
    }

    /// `SO_LINGER` {on, 0} in force.
    fn linger_zero(&self) -> bool {
        self.opts
            .as_ref()
            .map_or(self.cfg.linger_zero, |o| o.linger_zero)
    }

    /// `TCP_LINGER2` in force.
    fn fin_wait2_timeout(&self) -> Duration {
        self.opts
            .as_ref()
            .map_or(self.cfg.fin_wait2_timeout, |o| o.fin_wait2_timeout)
    }

    /// `SO_KEEPALIVE` on or off. Turning it on starts the idle time now, off stops the
    /// timer (Linux: tcp_set_keepalive).
    pub fn set_keepalive(&mut self, now: Instant, on: bool) {
        self.change_sockopts(|o| o.keepalive = on);
        if on && self.state.is_synchronized() && self.state != State::TimeWait {
            self.timers
                .set(Timer::Keepalive, now + self.keepalive_idle());
        } else if !self.handshake_timed() {
            self.timers.stop(Timer::Keepalive);
        }
    }

    /// True while the keepalive timer times an active open's handshake
    /// (`Config::connect_timeout`): keepalive leaves it alone until ESTABLISHED.
    pub(super) fn handshake_timed(&self) -> bool {
        self.cfg.connect_timeout.is_some()
            && !self.passive()
            && matches!(self.state, State::SynSent | State::SynReceived)
    }

    /// `TCP_KEEPIDLE`. With keepalive on, the timer moves to the new idle time counted
    /// from the last segment received, or fires now if that has passed (Linux:
    /// tcp_sock_set_keepidle_locked).
    pub fn set_keepalive_idle(&mut self, now: Instant, idle: Duration) {
        self.change_sockopts(|o| o.keepalive_idle = idle);
        if self.keepalive() && self.state.is_synchronized() && self.state != State::TimeWait {
            let at = self.last_recv + idle;
            self.timers
                .set(Timer::Keepalive, if at > now { at } else { now });
        }
    }

    /// Bytes written but not yet acknowledged (`ss`'s Send-Q).
    pub fn send_queue(&self) -> usize {
        self.send_buf.len()
    }

    /// Bytes received in order and not yet read (`ss`'s Recv-Q).
    pub fn recv_queue(&self) -> usize {
        self.recv_buf.readable()
    }

    /// Free space in the send buffer.
    pub fn send_capacity(&self) -> usize {
        if self.fin_queued() {
            0
        } else {
            self.send_buf.free(self.cfg.send_buffer)
        }
    }

    /// The error the connection failed with, if it did.
    pub fn error(&self) -> Option<Error> {
        self.error
    }

    /// True once the connection reached CLOSED.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// What a connection in TIME_WAIT hands over to become a compact record; `None` in
    /// any other state or when no 2MSL timer is armed.
    pub fn time_wait_state(&self) -> Option<super::time_wait::TimeWaitState> {
        if self.state != State::TimeWait {
            return None;
        }
        let wnd = self.rcv_adv.diff(self.rcv_nxt).max(0) as u32;
        Some(super::time_wait::TimeWaitState {
            local: self.local(),
            remote: self.remote(),
            snd_nxt: self.snd_nxt,
            rcv_nxt: self.rcv_nxt,
            ts_recent: self.ts_enabled().then_some(self.ts.recent),
            window: (wnd >> self.rcv_wscale).min(65535) as u16,
            deadline: self.timers.get(Timer::TimeWait)?,
            duration: self.cfg.time_wait_len(),
            rfc1337: self.cfg.rfc1337,
            ack_required: self.cfg.tw_ack_required,
        })
    }

    /// True when the application has closed the connection (it is an orphan).
    pub fn is_orphaned(&self) -> bool {
        self.orphaned()
    }

    /// True when the peer's FIN has been received in order.
    pub fn peer_closed(&self) -> bool {
        self.fin_rcvd()
    }

    /// The sequence variables: (ISS, SND.UNA, SND.NXT, IRS, RCV.NXT).
    pub fn sequence(&self) -> (Seq, Seq, Seq, Seq, Seq) {
        (self.iss, self.snd_una, self.snd_nxt, self.irs, self.rcv_nxt)
    }

    /// The peer's window in bytes (SND.WND), after scaling.
    pub fn snd_wnd(&self) -> u32 {
        self.snd_wnd
    }

    /// The congestion window in bytes.
    pub fn cwnd(&self) -> u32 {
        self.cc.cwnd()
    }

    /// The payload size of a full segment we send.
    pub fn smss(&self) -> u32 {
        self.smss
    }

    /// The current retransmission timeout, with backoff.
    pub fn rto(&self) -> Duration {
        self.backed_off_rto()
    }

    /// The RTO's bounds, from the Config.
    #[inline]
    pub(super) fn rto_bounds(&self) -> RtoBounds {
        RtoBounds::new(self.cfg.rto_min, self.cfg.rto_max)
    }

    /// The RTO with the current backoff.
    #[inline]
    pub(super) fn backed_off_rto(&self) -> Duration {
        self.rtt.backed_off(self.backoff, self.rto_bounds())
    }

    /// When a retransmission (or persist) timer started `now` fires: `now` plus the RTO
    /// with the current backoff, in microseconds throughout.
    #[inline]
    pub(super) fn rto_deadline(&self, now: Instant) -> Instant {
        now.plus_micros(self.rtt.backed_off_us(self.backoff, self.rto_bounds()))
    }

    /// Feeds an RTT measurement, in microseconds, to the estimator.
    #[inline]
    pub(super) fn rtt_sample_us(&mut self, r: u64) {
        let b = self.rto_bounds();
        self.rtt.sample_us(r, b);
    }

    /// The RTT estimator.
    pub fn rtt(&self) -> &RttEstimator {
        &self.rtt
    }

    /// Whether timestamps, SACK and window scaling were negotiated, and the shifts.
    pub fn negotiated(&self) -> (bool, bool, Option<(u8, u8)>) {
        let ws = self.ws_ok().then_some((self.snd_wscale, self.rcv_wscale));
        (self.ts_enabled(), self.sack_ok(), ws)
    }

    /// The earliest armed timer and its deadline (for `ss -o`-like snapshots).
    pub fn next_timer(&self) -> Option<(Timer, Instant)> {
        self.timers.next_timer()
    }

    /// The deadline of one timer.
    pub fn timer(&self, t: Timer) -> Option<Instant> {
        self.timers.get(t)
    }

    // ----- application commands ----------------------------------------------------

    /// Queues data for sending (RFC 9293 3.10.2). Returns how much fit, possibly 0.
    /// Data written in SYN_SENT or SYN_RECEIVED goes out once the handshake completes.
    pub fn send(&mut self, data: &[u8]) -> Result<usize, SendError> {
        if let Some(e) = self.error {
            return Err(SendError::Failed(e));
        }
        let open = matches!(
            self.state,
            State::SynSent | State::SynReceived | State::Established | State::CloseWait
        );
        if self.fin_queued() || !open {
            return Err(SendError::Shutdown);
        }
        let n = self.send_buf.write(data, self.cfg.send_buffer);
        if n < data.len() {
            self.set_write_blocked(true);
        }
        Ok(n)
    }

    /// Reads received data (RFC 9293 3.10.3). `Ok(0)` means the peer sent FIN and every
    /// byte before it has been read (end of stream).
    pub fn recv(&mut self, out: &mut [u8]) -> Result<usize, RecvError> {
        let n = self.recv_buf.read(out);
        if n > 0 {
            self.after_read();
            return Ok(n);
        }
        if out.is_empty() {
            return Ok(0);
        }
        if self.fin_rcvd() || self.rd_shut() {
            return Ok(0);
        }
        match self.error {
            Some(e) => Err(RecvError::Failed(e)),
            None if self.state == State::Closed => Ok(0),
            None => Err(RecvError::WouldBlock),
        }
    }

    /// After the application read data: announce a window that opened enough to matter
    /// (receiver-side silly window avoidance, RFC 9293 3.8.6.2.2).
    fn after_read(&mut self) {
        if !self.state.can_receive() && self.state != State::SynReceived {
            return;
        }
        let advertised = self.rcv_adv.diff(self.rcv_nxt).max(0) as u32;
        let now_open = self.recv_buf.window() as u32;
        let threshold = (self.recv_buf.capacity() as u32 / 2).min(self.rcv_mss);
        let opened = now_open.saturating_sub(advertised);
        if (advertised < self.rcv_mss && now_open >= self.rcv_mss) || opened >= threshold.max(1) * 2
        {
            self.set_ack_now(true);
        }
    }

    /// Shuts down one or both halves (like shutdown(2)).
    pub fn shutdown(&mut self, how: Shutdown) {
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.set_rd_shut(true);
            let n = self.recv_buf.readable();
            self.recv_buf.discard(n);
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            self.queue_fin(Reason::ShutdownWrite);
        }
    }

    /// The application is done with the connection (close(2)). As on Linux: with
    /// SO_LINGER 0, or with received data still unread, the connection is aborted with
    /// RST (RFC 2525 section 2.17); otherwise a FIN follows the buffered data and the
    /// connection finishes closing on its own (an orphan).
    pub fn close(&mut self, now: Instant, cx: &mut Counters) {
        if self.orphaned() {
            return;
        }
        self.set_orphaned(true);
        self.set_rd_shut(true);
        if self.linger_zero() && self.state != State::Closed {
            cx.abort_on_linger += 1;
            self.abort(now, cx);
            return;
        }
        if self.recv_buf.readable() > 0 {
            cx.abort_on_close += 1;
            self.abort(now, cx);
            return;
        }
        match self.state {
            // RFC 9293 3.10.4: with nothing queued, SYN_SENT just deletes the TCB. Data
            // the application queued before the handshake completed is not thrown
            // away: the FIN follows it once the connection is established.
            State::SynSent if self.send_buf.is_empty() => self.enter_closed(Reason::Close, None),
            State::FinWait2 => self.arm_fin_wait2(now),
            _ => self.queue_fin(Reason::Close),
        }
    }

    /// Aborts the connection (RFC 9293 3.10.5): RST to the peer where Linux sends one
    /// (ESTABLISHED, CLOSE_WAIT, FIN_WAIT_1/2, SYN_RECEIVED), buffers dropped, CLOSED.
    pub fn abort(&mut self, _now: Instant, cx: &mut Counters) {
        self.set_orphaned(true);
        if matches!(
            self.state,
            State::SynReceived
                | State::Established
                | State::CloseWait
                | State::FinWait1
                | State::FinWait2
        ) {
            self.queue_rst(cx);
        }
        if self.state != State::Closed {
            self.enter_closed(Reason::Abort, Some(Error::Aborted));
        }
    }

    /// Queues the RST that tears this connection down (SEQ=SND.NXT, ACK=RCV.NXT),
    /// counted as TcpEstabResets from ESTABLISHED and CLOSE_WAIT.
    pub(super) fn queue_rst(&mut self, cx: &mut Counters) {
        self.set_control(Some(Control {
            seq: self.ack_seq(),
            ack: Some(self.rcv_nxt),
            rst: true,
        }));
        if matches!(self.state, State::Established | State::CloseWait) {
            cx.estab_resets += 1;
        }
    }

    /// Drops the connection without a word to the peer: what Linux does to a closed
    /// listener's half-open connections.
    pub fn forget(&mut self, why: Reason) {
        self.set_orphaned(true);
        self.set_control(None);
        if self.state != State::Closed {
            self.enter_closed(why, None);
        }
    }

    /// Marks the sending half closed and moves to the closing state the RFC names.
    fn queue_fin(&mut self, why: Reason) {
        if self.fin_queued() {
            return;
        }
        match self.state {
            State::SynReceived | State::Established => {
                self.set_fin_queued(true);
                self.set_state(State::FinWait1, why);
            }
            State::CloseWait => {
                self.set_fin_queued(true);
                self.set_state(State::LastAck, why);
            }
            // RFC 9293 3.10.4: in SYN_SENT the FIN waits until the handshake completes.
            State::SynSent => self.set_fin_queued(true),
            _ => {}
        }
    }

    pub(super) fn arm_fin_wait2(&mut self, now: Instant) {
        if self.orphaned() && self.state == State::FinWait2 {
            self.timers
                .set(Timer::FinWait2, now + self.fin_wait2_timeout());
        }
    }

    // ----- outputs -----------------------------------------------------------------

    /// True when an event waits for [`Connection::poll_event`].
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest deadline at which [`Connection::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    // ----- state bookkeeping -----------------------------------------------------

    pub(super) fn set_state(&mut self, to: State, why: Reason) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        if self.cfg.state_events {
            self.events.push_back(Event::StateChange { from, to, why });
        }
    }

    /// Moves to CLOSED, drops everything that could still send or fire, and records
    /// `err` for the application.
    pub(super) fn enter_closed(&mut self, why: Reason, err: Option<Error>) {
        if let Some(e) = err {
            if self.error.is_none() {
                self.error = Some(e);
                self.events.push_back(Event::Error(e));
            }
        }
        let back_to_listen = matches!(why, Reason::RcvRst | Reason::RcvSyn);
        let to = if self.passive() && self.state == State::SynReceived && back_to_listen {
            // RFC 9293 3.10.7.4: a passively opened connection returns to LISTEN.
            State::Listen
        } else {
            State::Closed
        };
        self.set_state(to, why);
        self.state = State::Closed;
        self.timers.stop_all();
        self.set_ack_now(false);
        self.set_probe_due(false);
        self.send_buf.clear();
        self.events.push_back(Event::Closed);
    }

    /// The SYN's sequence number and options: IRS, RCV.NXT, and what both sides offered.
    pub(super) fn take_syn(&mut self, now: Instant, syn: &Segment<'_>) {
        self.irs = syn.seq;
        self.rcv_nxt = syn.seq + 1u32;
        self.last_ack_sent = self.rcv_nxt;
        // The window our SYN offered is relative to RCV.NXT, unknown until now: an active
        // opener's right edge was computed from RCV.NXT = 0 and must be placed here
        // (RFC 9293 3.3.1: the window spans RCV.NXT to RCV.NXT + RCV.WND - 1).
        self.rcv_adv = self.rcv_nxt + self.syn_window();
        let o = &syn.options;
        let cfg = &self.cfg;
        // RFC 7323 2.2: scaling is on only when both SYNs carry the option; a shift
        // above 14 is taken as 14.
        let ws_ok = o.wscale.is_some() && cfg.offered_wscale().is_some();
        self.snd_wscale = if ws_ok {
            o.wscale.unwrap_or(0).min(14)
        } else {
            0
        };
        self.rcv_wscale = if ws_ok {
            cfg.offered_wscale().unwrap_or(0)
        } else {
            0
        };
        self.recv_buf.set_window_scale(self.rcv_wscale);
        let sack_ok = cfg.sack && o.sack_permitted;
        let ts = o.timestamps.filter(|_| cfg.timestamps);
        if let Some((val, _)) = ts {
            self.ts.recent = val;
            self.ts.recent_age = now;
        }
        let peer_mss = u32::from(o.mss.unwrap_or(cfg.default_peer_mss));
        let overhead = if ts.is_some() { 12 } else { 0 };
        let ours = u32::from(cfg.mss(self.ends.remote().is_ipv6()));
        self.smss = (peer_mss.min(ours).saturating_sub(overhead)).max(64);
        self.cc = Congestion::new(cfg.congestion, cfg.initial_cwnd, self.smss);
        self.set_ws_ok(ws_ok);
        self.set_sack_ok(sack_ok);
        self.set_ts_enabled(ts.is_some());
        // The window in a SYN is never scaled (RFC 7323 2.2).
        self.snd_wnd = u32::from(syn.window);
        self.max_snd_wnd = self.snd_wnd;
        self.snd_wl1 = syn.seq;
        self.last_recv = now;
    }

    /// The options of our SYN or SYN-ACK. A SYN-ACK offers only what the peer's SYN did.
    pub(super) fn syn_options(&self, now: Instant, syn_ack: bool) -> Options {
        let cfg = &self.cfg;
        let mut o = Options {
            mss: Some(cfg.mss(self.ends.remote().is_ipv6())).filter(|_| cfg.mss_option),
            ..Default::default()
        };
        if syn_ack {
            o.wscale = if self.ws_ok() {
                cfg.offered_wscale()
            } else {
                None
            };
            o.sack_permitted = self.sack_ok();
            if self.ts_enabled() {
                o.timestamps = Some((self.ts_val(now), self.ts.recent));
            }
        } else {
            o.wscale = cfg.offered_wscale();
            o.sack_permitted = cfg.sack;
            if cfg.timestamps {
                o.timestamps = Some((self.ts_val(now), 0));
            }
        }
        o
    }

    /// Our timestamp clock: milliseconds plus the per-connection offset.
    pub(super) fn ts_val(&self, now: Instant) -> u32 {
        (now.total_millis() as u32).wrapping_add(self.ts.offset)
    }

    // ----- loss-recovery state, out of line -------------------------------------------

    /// The loss-recovery variables (all at rest when the connection holds none).
    #[inline]
    pub(super) fn rec(&self) -> &Recovery {
        self.recovery.as_deref().unwrap_or(&recovery::IDLE)
    }

    /// The loss-recovery variables, to change: taken now if the connection held none.
    #[inline]
    pub(super) fn rec_mut(&mut self) -> &mut Recovery {
        self.recovery.get_or_insert_with(Box::default)
    }

    /// The loss-recovery variables if the connection holds them: for putting them back
    /// at rest, which a connection without them already is.
    #[inline]
    pub(super) fn rec_if(&mut self) -> Option<&mut Recovery> {
        self.recovery.as_deref_mut()
    }

    /// Clears the pending tail loss probe, returning whether one was pending.
    pub(super) fn take_probe_pending(&mut self) -> bool {
        let p = self.probe_pending();
        self.set_probe_pending(false);
        p
    }

    /// Gives the loss-recovery state back once it is at rest, and the SACK block order
    /// once no out-of-order data is held. Called at the end of every input and output
    /// call, so a connection holds them only while it needs them.
    #[inline]
    pub(super) fn tidy(&mut self) {
        if self.recovery.as_ref().is_some_and(|r| r.is_idle()) {
            self.recovery = None;
        }
        if let Some(o) = self.sack_out.as_deref_mut() {
            if !self.recv_buf.has_out_of_order() {
                // Every block these pointed into is filled: they lie below RCV.NXT.
                o.recent = [None; 4];
                if o.dsack.is_none() {
                    self.sack_out = None;
                }
            }
        }
    }
}

/// The scoreboard of a connection's loss-recovery state (empty without one), borrowed
/// apart from the rest of the connection.
pub(super) fn board_of(rec: &Option<Box<Recovery>>) -> &Scoreboard {
    &rec.as_deref().unwrap_or(&recovery::IDLE).board
}

/// Declares the one-bit state of a connection, kept in `Connection::flags` (a `bool`
/// field each would take a byte apiece, 17 of them): a getter and a setter per bit.
macro_rules! flags {
    ($($(#[$doc:meta])* $bit:literal $get:ident $set:ident;)*) => {
        impl Connection {
            $(
                $(#[$doc])*
                #[inline]
                pub(super) fn $get(&self) -> bool {
                    self.flags.get() & (1 << $bit) != 0
                }

                #[inline]
                pub(super) fn $set(&mut self, on: bool) {
                    let f = self.flags.get();
                    self.flags.set(if on { f | (1 << $bit) } else { f & !(1 << $bit) });
                }
            )*
        }
    };
}

flags! {
    /// Created by a listener from a SYN (RST in SYN_RECEIVED returns to LISTEN).
    0 passive set_passive;
    /// The application closed its sending half: FIN follows the buffered data.
    1 fin_queued set_fin_queued;
    /// Both SYNs carried the window scale option.
    2 ws_ok set_ws_ok;
    /// The peer's FIN has been received in order.
    3 fin_rcvd set_fin_rcvd;
    /// The ACK due is a challenge ACK (RFC 5961), which never carries a resent FIN.
    4 challenge_due set_challenge_due;
    /// TCP_DEFER_ACCEPT: the peer's bare ACK of our SYN came and was dropped, waiting
    /// for data.
    5 defer_acked set_defer_acked;
    /// SACK is in use: both SYNs offered it (RFC 2018).
    6 sack_ok set_sack_ok;
    /// A zero-window or keepalive probe is due.
    7 probe_due set_probe_due;
    /// An ACK is due now, not at the delayed-ACK timer.
    8 ack_now set_ack_now;
    /// The ACK that completes an active open goes out on its own, before any data, as
    /// Linux sends it from tcp_rcv_synsent_state_process().
    9 handshake_ack set_handshake_ack;
    /// A SYN-ACK has been sent (later ones are retransmissions).
    10 synack_sent set_synack_sent;
    /// Our SYN or SYN-ACK timed out at least once (Linux sets `undo_marker` then).
    11 syn_timed_out set_syn_timed_out;
    /// A tail loss probe is due to be sent (the probe timer fired).
    12 probe_pending set_probe_pending;
    /// The application has closed the connection: it is an orphan.
    13 orphaned set_orphaned;
    /// The reading half is shut down: arriving data is acknowledged and dropped.
    14 rd_shut set_rd_shut;
    /// A send() took less than it was given: Writable follows when room frees.
    15 write_blocked set_write_blocked;
    /// Timestamps are in use (RFC 7323: both SYNs carried the option).
    16 ts_enabled set_ts_enabled;
    // Which of the optional values below are present.
    17 has_rcv_fin set_has_rcv_fin;
    18 has_rtx_tsval set_has_rtx_tsval;
    19 has_syn_tsval set_has_syn_tsval;
    20 has_rtt_probe set_has_rtt_probe;
    /// The last call for output stopped at a packet longer than the buffer it was
    /// given: nothing was changed, and that packet is still the next one due.
    21 short_buffer set_short_buffer;
    /// The payload of the segment being handled already lies at RCV.NXT in the
    /// receive ring (see [`Connection::handle_staged_segment`]).
    22 payload_staged set_payload_staged;
}

/// The optional values, each a plain field and a presence bit in `flags` (an
/// `Option` would add 4 to 8 bytes of tag and padding apiece).
impl Connection {
    /// Sequence number of the peer's FIN, once seen (possibly beyond a gap).
    pub(super) fn rcv_fin(&self) -> Option<Seq> {
        self.has_rcv_fin().then_some(self.rcv_fin_seq)
    }

    pub(super) fn set_rcv_fin(&mut self, v: Option<Seq>) {
        self.set_has_rcv_fin(v.is_some());
        self.rcv_fin_seq = v.unwrap_or(Seq(0));
    }

    /// TSval of our latest retransmission, while an ACK echoing an older TSval may come.
    pub(super) fn rtx_tsval(&self) -> Option<u32> {
        self.has_rtx_tsval().then_some(self.rtx_tsval_val)
    }

    pub(super) fn set_rtx_tsval(&mut self, v: Option<u32>) {
        self.set_has_rtx_tsval(v.is_some());
        self.rtx_tsval_val = v.unwrap_or(0);
    }

    /// TSval of our first SYN or SYN-ACK.
    pub(super) fn syn_tsval(&self) -> Option<u32> {
        self.has_syn_tsval().then_some(self.syn_tsval_val)
    }

    pub(super) fn set_syn_tsval(&mut self, v: Option<u32>) {
        self.set_has_syn_tsval(v.is_some());
        self.syn_tsval_val = v.unwrap_or(0);
    }

    /// The duplicate to report in the next ACK's first SACK block (D-SACK).
    pub(super) fn dsack(&self) -> Option<(Seq, Seq)> {
        self.sack_out.as_ref().and_then(|o| o.dsack)
    }

    pub(super) fn set_dsack(&mut self, v: Option<(Seq, Seq)>) {
        match (self.sack_out.as_deref_mut(), v) {
            (Some(o), v) => o.dsack = v,
            (None, Some(_)) => {
                self.sack_out = Some(Box::new(SackOut {
                    recent: [None; 4],
                    dsack: v,
                }))
            }
            (None, None) => {}
        }
    }

    /// The SACK block order: a sequence number in each of the most recently changed
    /// out-of-order blocks, most recent first.
    pub(super) fn sack_recent(&self) -> &[Option<Seq>] {
        self.sack_out.as_ref().map_or(&[], |o| &o.recent[..])
    }

    pub(super) fn set_sack_recent(&mut self, recent: [Option<Seq>; 4]) {
        match self.sack_out.as_deref_mut() {
            Some(o) => o.recent = recent,
            None => {
                self.sack_out = Some(Box::new(SackOut {
                    recent,
                    dsack: None,
                }))
            }
        }
    }

    /// The RST or ACK owed outside the normal flow.
    pub(super) fn control(&self) -> Option<Control> {
        self.off_flow.as_ref().and_then(|o| o.control)
    }

    pub(super) fn set_control(&mut self, v: Option<Control>) {
        self.off_flow_mut(v.is_some(), |o| o.control = v);
    }

    /// The segment being timed for an RTT sample: (its end sequence, send time).
    pub(super) fn rtt_probe(&self) -> Option<(Seq, Instant)> {
        self.has_rtt_probe()
            .then_some((self.rtt_probe_end, self.rtt_probe_sent))
    }

    pub(super) fn set_rtt_probe(&mut self, v: Option<(Seq, Instant)>) {
        self.set_has_rtt_probe(v.is_some());
        (self.rtt_probe_end, self.rtt_probe_sent) = v.unwrap_or((Seq(0), Instant::ZERO));
    }

    /// Takes the RTT probe, leaving none.
    pub(super) fn take_rtt_probe(&mut self) -> Option<(Seq, Instant)> {
        let p = self.rtt_probe();
        self.set_rtt_probe(None);
        p
    }

    /// When the last challenge ACK or rate-limited duplicate ACK went.
    pub(super) fn last_challenge(&self) -> Option<Instant> {
        self.off_flow.as_ref().and_then(|o| o.last_challenge)
    }

    pub(super) fn set_last_challenge(&mut self, v: Option<Instant>) {
        self.off_flow_mut(v.is_some(), |o| o.last_challenge = v);
    }

    /// The Fast Open handshake of an active open that uses it.
    pub(super) fn fast_open_client(&self) -> Option<super::fast_open::FastOpenClient> {
        self.off_flow.as_ref().and_then(|o| o.fast_open)
    }

    pub(super) fn set_fast_open_client(&mut self, v: Option<super::fast_open::FastOpenClient>) {
        self.off_flow_mut(v.is_some(), |o| o.fast_open = v);
    }

    /// Holds `text` (data on a SYN in SYN_SENT) until ESTABLISHED.
    pub(super) fn hold_syn_text(&mut self, text: &[u8]) {
        let b: Box<[u8]> = text.into();
        self.off_flow_mut(true, |o| o.syn_text = Some(b));
    }

    /// Takes the data held by [`Connection::hold_syn_text`].
    pub(super) fn take_syn_text(&mut self) -> Option<Box<[u8]>> {
        let mut t = None;
        if self.off_flow.is_some() {
            self.off_flow_mut(false, |o| t = o.syn_text.take());
        }
        t
    }

    /// Applies `f` to the off-flow state, taking it first if `take` (a value is being
    /// stored), and gives it back once it holds nothing.
    fn off_flow_mut(&mut self, take: bool, f: impl FnOnce(&mut OffFlow)) {
        if take && self.off_flow.is_none() {
            self.off_flow = Some(Box::default());
        }
        if let Some(o) = self.off_flow.as_deref_mut() {
            f(o);
            if o.control.is_none()
                && o.last_challenge.is_none()
                && o.fast_open.is_none()
                && o.syn_text.is_none()
            {
                self.off_flow = None;
            }
        }
    }
}

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("local", &self.local())
            .field("remote", &self.remote())
            .field("state", &self.state)
            .field("snd_una", &self.snd_una)
            .field("snd_nxt", &self.snd_nxt)
            .field("snd_max", &self.snd_max)
            .field("rcv_nxt", &self.rcv_nxt)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_give_back_exactly_what_they_were_given() {
        let v4 = |s: &str| s.parse::<SocketAddr>().unwrap();
        let v6 = SocketAddr::V6(SocketAddrV6::new(
            "fe80::1".parse().unwrap(),
            443,
            0x12345,
            7,
        ));
        let v6b = SocketAddr::V6(SocketAddrV6::new(
            "2001:db8::2".parse().unwrap(),
            50000,
            0,
            0,
        ));
        for (l, r) in [
            (v4("10.0.0.1:1"), v4("192.168.7.9:65535")),
            (v4("0.0.0.0:0"), v4("255.255.255.255:80")),
            (v6, v6b),
            (v6b, v6),
            (v4("10.0.0.1:1"), v6),
            (v6, v4("10.0.0.1:1")),
        ] {
            let e = Endpoints::new(l, r);
            assert_eq!((e.local(), e.remote()), (l, r));
            assert_eq!(
                matches!(e, Endpoints::V4 { .. }),
                l.is_ipv4() && r.is_ipv4()
            );
        }
        assert_eq!(core::mem::size_of::<Endpoints>(), 16);
    }

    /// The TCB's size, which issue 7's per-connection memory target rests on: every
    /// byte here is paid by every connection, established and idle, in the stack's slab
    /// (the `concurrent-memory` benchmark: 466 bytes per connection end at 400 here,
    /// against a target of 512). Rare state lives behind boxes taken when needed:
    /// whoever adds a field, or lets one grow, should find another one's bytes or move
    /// cold state out of line, and then lower this bound.
    #[test]
    fn the_tcb_stays_within_its_memory_budget() {
        let size = core::mem::size_of::<Connection>();
        assert!(size <= 400, "Connection is {size} bytes, its budget 400");
    }

    /// One transfer through a link that drops and reorders segments: the loss-recovery
    /// state, the out-of-order list and the SACK block order are taken while they are
    /// needed, and both ends hold none of them once everything has arrived.
    #[test]
    fn out_of_line_state_is_taken_for_loss_and_given_back_after() {
        use crate::stack::{ConnId, Stack, StackConfig, StackEvent};
        use crate::wire::ip;
        const TOTAL: usize = 300_000;
        let stack = |seed, ip: &str| {
            let mut s = Stack::new(StackConfig {
                seed,
                ..StackConfig::default()
            });
            s.add_address(ip.parse().unwrap());
            s
        };
        let mut a = stack(1, "10.0.0.1");
        let mut b = stack(2, "10.0.0.2");
        let server: SocketAddr = "10.0.0.2:80".parse().unwrap();
        let l = b.listen(server, 8).unwrap();
        let mut now = Instant::ZERO;
        let ca = a.connect(now, None, server).unwrap();
        let mut cb: Option<ConnId> = None;
        // (deliver at, to b, packet)
        let mut link: Vec<(Instant, bool, Vec<u8>)> = Vec::new();
        let data: Vec<u8> = (0..TOTAL).map(|i| (i % 253) as u8).collect();
        let (mut sent, mut got) = (0usize, Vec::new());
        let (mut data_pkts, mut saw_recovery, mut saw_ooo, mut saw_sack_out) =
            (0u32, false, false, false);
        let mut buf = [0u8; 1600];
        let mut quiet_since = None;
        for _ in 0..200_000 {
            if let Some(id) = cb {
                let mut out = [0u8; 8192];
                while let Ok(n) = b.recv(now, id, &mut out) {
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&out[..n]);
                }
            }
            if sent < TOTAL {
                if let Ok(n) = a.send(now, ca, &data[sent..]) {
                    sent += n;
                }
            }
            for (from_a, s) in [(true, &mut a), (false, &mut b)] {
                while let Some(n) = s.poll_transmit(now, &mut buf) {
                    let mut at = now + Duration::from_millis(5);
                    let has_data = ip::parse(&buf[..n]).is_ok_and(|p| p.payload.len() > 32);
                    if from_a && has_data && got.len() < TOTAL {
                        data_pkts += 1;
                        if data_pkts % 11 == 5 {
                            continue; // dropped
                        }
                        if data_pkts % 7 == 3 {
                            at += Duration::from_millis(3); // overtaken
                        }
                    }
                    link.push((at, from_a, buf[..n].to_vec()));
                }
            }
            while let Some(StackEvent::Incoming(_)) | Some(StackEvent::Conn { .. }) = b.poll_event()
            {
                if cb.is_none() {
                    cb = b.accept(l);
                }
            }
            while a.poll_event().is_some() {}
            let ra = a.conn(ca).unwrap();
            saw_recovery |= ra.recovery.is_some();
            if let Some(rb) = cb.and_then(|id| b.conn(id)) {
                saw_ooo |= rb.recv_buf.has_out_of_order();
                saw_sack_out |= rb.sack_out.is_some();
            }
            if got.len() == TOTAL && link.is_empty() && ra.send_queue() == 0 {
                // Done: give the delayed ACK and the timers a second to settle.
                let since = *quiet_since.get_or_insert(now);
                if now - since > Duration::from_secs(1) {
                    break;
                }
            }
            let next_pkt = link.iter().map(|p| p.0).min();
            let next = [next_pkt, a.poll_timeout(), b.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(now + Duration::from_millis(100));
            now = next.max(now).min(now + Duration::from_millis(100));
            let (due, rest): (Vec<_>, Vec<_>) = link.into_iter().partition(|p| p.0 <= now);
            link = rest;
            for (_, to_b, p) in due {
                if to_b {
                    b.handle_packet(now, &p);
                } else {
                    a.handle_packet(now, &p);
                }
            }
            a.handle_timeout(now);
            b.handle_timeout(now);
        }
        assert_eq!(got, data, "everything arrived, in order");
        assert!(saw_recovery, "the sender recovered from losses");
        assert!(
            saw_ooo && saw_sack_out,
            "the receiver held out-of-order data"
        );
        let (ra, rb) = (a.conn(ca).unwrap(), b.conn(cb.unwrap()).unwrap());
        for c in [ra, rb] {
            assert!(c.recovery.is_none(), "{c:?} keeps its recovery state");
            assert!(c.sack_out.is_none(), "{c:?} keeps its SACK block order");
            assert!(!c.recv_buf.has_out_of_order());
            assert!(c.off_flow.is_none());
            assert!(c.opts.is_none());
        }
    }
}
