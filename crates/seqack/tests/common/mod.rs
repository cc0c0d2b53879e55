//! Shared fixtures for the connection-engine tests.
//!
//! In the style of smoltcp's socket tests: `conn_<state>()` builds a [`Connection`] in
//! the named RFC 9293 state by driving it with crafted segments through its public API,
//! checking each step on the way. A test then injects one segment (a [`Segment`] built
//! by hand), drains `poll_transmit` and parses what was sent back off the wire.
//!
//! Numbering: our ISS is [`ISS`], the peer's is [`IRS`]; `iss(n)` is ISS+n and `irs(n)`
//! is IRS+n, so "the ACK of our SYN" is `iss(1)` and "the peer's first data byte" is
//! `irs(1)`. The peer answers after [`RTT`], so the handshake gives one RTT sample.

#![allow(dead_code)]

use seqack::tcp::{
    Config, Connection, Disposition, Event, Reason, RecvError, Shutdown, State, Timer,
};
use seqack::wire::tcp::{self, Flags, Options, Segment};
use seqack::wire::{ip, Seq};
use seqack::{Counters, Duration, Instant};
use std::net::SocketAddr;
use std::sync::Arc;

/// Our initial sequence number.
pub const ISS: Seq = Seq(1_000_000);
/// The peer's initial sequence number.
pub const IRS: Seq = Seq(3_000_000_000);
/// Added to our millisecond clock to make TSval.
pub const TS_OFFSET: u32 = 70_000;
/// The peer's TSval at time zero (its clock also ticks in milliseconds).
pub const PEER_TS_BASE: u32 = 500_000;
/// Round-trip time of the simulated path.
pub const RTT: Duration = Duration::from_millis(100);
/// Window the peer advertises (unscaled field).
pub const PEER_WINDOW: u16 = 64240;
/// MSS the peer advertises.
pub const PEER_MSS: u16 = 1460;
/// Window scale shift the peer offers when we offer one.
pub const PEER_WSCALE: u8 = 2;
/// Our port.
pub const LOCAL_PORT: u16 = 40000;
/// The peer's port.
pub const REMOTE_PORT: u16 = 80;

/// ISS + n.
pub fn iss(n: u32) -> Seq {
    ISS + n
}

/// IRS + n.
pub fn irs(n: u32) -> Seq {
    IRS + n
}

pub fn local() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], LOCAL_PORT))
}

pub fn remote() -> SocketAddr {
    SocketAddr::from(([198, 51, 100, 7], REMOTE_PORT))
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Timestamps, SACK and window scaling off: headers carry nothing but the MSS on SYNs.
pub fn plain_config() -> Config {
    Config {
        timestamps: false,
        sack: false,
        wscale: None,
        ..Config::default()
    }
}

/// A bare segment from the peer, with the peer's window and no options.
pub fn seg(flags: Flags, seq: Seq, ack: Seq, payload: &[u8]) -> Segment<'_> {
    Segment {
        src_port: REMOTE_PORT,
        dst_port: LOCAL_PORT,
        seq,
        ack: if flags.ack() { ack } else { Seq(0) },
        flags,
        window: PEER_WINDOW,
        urgent: 0,
        options: Options::default(),
        payload,
    }
}

/// A segment the connection sent, parsed back from its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub flags: Flags,
    pub seq: Seq,
    pub ack: Seq,
    pub window: u16,
    pub options: Options,
    pub payload: Vec<u8>,
}

impl Sent {
    /// Sequence space the segment occupies.
    pub fn seq_len(&self) -> u32 {
        self.payload.len() as u32 + u32::from(self.flags.syn()) + u32::from(self.flags.fin())
    }

    /// True for an ACK carrying nothing else (no data, no SYN/FIN/RST).
    pub fn is_pure_ack(&self) -> bool {
        self.flags == Flags::ACK && self.payload.is_empty()
    }
}

/// One connection under test, its counters and the current virtual time.
pub struct Fixture {
    pub conn: Connection,
    pub cx: Counters,
    pub now: Instant,
    /// Our most recent TSval seen on the wire (the peer echoes it).
    pub last_tsval: u32,
}

impl Fixture {
    /// A fixture for `conn` at time zero.
    pub fn at_zero(conn: Connection, cx: Counters) -> Fixture {
        Fixture {
            conn,
            cx,
            now: Instant::ZERO,
            last_tsval: 0,
        }
    }

    /// The peer's timestamp clock.
    pub fn peer_tsval(&self) -> u32 {
        PEER_TS_BASE.wrapping_add(self.now.total_millis() as u32)
    }

    /// A segment from the peer: like [`seg`], plus a timestamp option when the
    /// connection negotiated timestamps (TSval from the peer's clock, echoing ours).
    pub fn seg<'a>(&self, flags: Flags, seq: Seq, ack: Seq, payload: &'a [u8]) -> Segment<'a> {
        let mut s = seg(flags, seq, ack, payload);
        if self.conn.negotiated().0 {
            s.options.timestamps = Some((self.peer_tsval(), self.last_tsval));
        }
        s
    }

    /// Hands `s` to the connection at the current time.
    pub fn inject(&mut self, s: &Segment<'_>) -> Disposition {
        self.conn.handle_segment(self.now, s, &mut self.cx)
    }

    /// Drains `poll_transmit` and parses every packet, checking addresses, ports and
    /// both checksums.
    pub fn transmit(&mut self) -> Vec<Sent> {
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        while let Some(n) = self.conn.poll_transmit(self.now, &mut buf, &mut self.cx) {
            assert!(out.len() < 1000, "poll_transmit never returned None");
            let pkt = ip::parse(&buf[..n]).expect("an IP packet");
            assert_eq!(
                (pkt.src, pkt.dst, pkt.protocol),
                (local().ip(), remote().ip(), ip::PROTO_TCP)
            );
            let s = tcp::parse(pkt.payload, pkt.src, pkt.dst, true)
                .expect("a TCP segment with a good checksum");
            assert_eq!((s.src_port, s.dst_port), (LOCAL_PORT, REMOTE_PORT));
            if let Some((val, _)) = s.options.timestamps {
                self.last_tsval = val;
            }
            out.push(Sent {
                flags: s.flags,
                seq: s.seq,
                ack: s.ack,
                window: s.window,
                options: s.options,
                payload: s.payload.to_vec(),
            });
        }
        out
    }

    /// Drains `poll_transmit`, asserting that exactly one segment was sent.
    #[track_caller]
    pub fn expect_one(&mut self) -> Sent {
        let mut v = self.transmit();
        assert_eq!(v.len(), 1, "expected exactly one segment, got {v:#?}");
        v.remove(0)
    }

    /// Drains `poll_transmit`, asserting that nothing was sent.
    #[track_caller]
    pub fn expect_nothing(&mut self) {
        let v = self.transmit();
        assert!(v.is_empty(), "expected no segment, got {v:#?}");
    }

    /// Drains the events.
    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.conn.poll_event()).collect()
    }

    /// Drains the events and keeps the state changes.
    pub fn state_changes(&mut self) -> Vec<(State, State, Reason)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::StateChange { from, to, why } => Some((from, to, why)),
                _ => None,
            })
            .collect()
    }

    /// Moves the clock forward without firing anything.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    /// Moves the clock to the next deadline of `poll_timeout` and fires it.
    /// Returns that deadline.
    #[track_caller]
    pub fn fire_next(&mut self) -> Instant {
        let t = self.conn.poll_timeout().expect("a timer is armed");
        assert!(
            t >= self.now,
            "poll_timeout {t:?} is in the past (now {:?})",
            self.now
        );
        self.now = t;
        self.conn.handle_timeout(t, &mut self.cx);
        t
    }

    /// Fires every deadline up to and including `t`, then sets the clock to `t`.
    pub fn run_until(&mut self, t: Instant) {
        while let Some(d) = self.conn.poll_timeout() {
            if d > t {
                break;
            }
            self.now = self.now.max(d);
            self.conn.handle_timeout(self.now, &mut self.cx);
        }
        self.now = self.now.max(t);
    }

    /// The deadline of timer `t`, which must be armed.
    #[track_caller]
    pub fn timer(&self, t: Timer) -> Instant {
        self.conn
            .timer(t)
            .unwrap_or_else(|| panic!("{t:?} timer is not armed"))
    }

    /// Reads everything readable.
    pub fn read_all(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match self.conn.recv(&mut buf) {
                Ok(0) | Err(RecvError::WouldBlock) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => panic!("recv failed: {e:?}"),
            }
        }
    }

    /// Queues `data` and asserts that all of it fit.
    #[track_caller]
    pub fn send(&mut self, data: &[u8]) {
        assert_eq!(self.conn.send(data), Ok(data.len()));
    }
}

/// The options our peer puts on its SYN or SYN-ACK: what `cfg` offers, mirrored.
pub fn peer_syn_options(cfg: &Config, tsval: u32, echo: u32) -> Options {
    Options {
        mss: Some(PEER_MSS),
        wscale: cfg.wscale.map(|_| PEER_WSCALE),
        sack_permitted: cfg.sack,
        timestamps: cfg.timestamps.then_some((tsval, echo)),
        ..Options::default()
    }
}

// ----- fixtures: one connection per RFC 9293 state ---------------------------------

/// Active open: `connect()` done, our SYN sent at time zero.
pub fn conn_syn_sent() -> Fixture {
    conn_syn_sent_with(plain_config())
}

pub fn conn_syn_sent_with(cfg: Config) -> Fixture {
    let mut f = connecting(cfg);
    let syn = f.expect_one();
    assert_eq!((syn.flags, syn.seq), (Flags::SYN, ISS));
    assert_eq!(f.conn.state(), State::SynSent);
    f.events();
    f
}

/// Active open completed: the peer's SYN-ACK arrived one RTT after our SYN and we
/// acknowledged it.
pub fn conn_established() -> Fixture {
    conn_established_with(plain_config())
}

pub fn conn_established_with(cfg: Config) -> Fixture {
    let mut f = conn_syn_sent_with(cfg.clone());
    f.advance(RTT);
    let mut syn_ack = seg(Flags::SYN | Flags::ACK, IRS, iss(1), b"");
    syn_ack.options = peer_syn_options(&cfg, f.peer_tsval(), f.last_tsval);
    f.inject(&syn_ack);
    let ack = f.expect_one();
    assert_eq!((ack.flags, ack.seq, ack.ack), (Flags::ACK, iss(1), irs(1)));
    assert_eq!(f.conn.state(), State::Established);
    f.events();
    f
}

/// Active open: `connect()` done at time zero, nothing sent yet.
pub fn connecting(cfg: Config) -> Fixture {
    let mut cx = Counters::default();
    let conn = Connection::connect(
        Instant::ZERO,
        Arc::new(cfg),
        local(),
        remote(),
        ISS,
        TS_OFFSET,
        &mut cx,
    );
    Fixture::at_zero(conn, cx)
}

/// A connection a listener made from the peer's `syn` at time zero (our ISN `ISS`),
/// before anything was sent or its events read.
pub fn accepted(cfg: Config, syn: &Segment<'_>) -> Fixture {
    let mut cx = Counters::default();
    let conn = Connection::accept_syn(
        Instant::ZERO,
        Arc::new(cfg),
        local(),
        remote(),
        syn,
        ISS,
        TS_OFFSET,
        &mut cx,
    );
    Fixture::at_zero(conn, cx)
}

/// Passive open: a listener handed over the peer's SYN; our SYN-ACK is sent.
pub fn conn_syn_received() -> Fixture {
    conn_syn_received_with(plain_config())
}

pub fn conn_syn_received_with(cfg: Config) -> Fixture {
    let mut syn = seg(Flags::SYN, IRS, Seq(0), b"");
    syn.options = peer_syn_options(&cfg, PEER_TS_BASE, 0);
    let mut f = accepted(cfg, &syn);
    let syn_ack = f.expect_one();
    assert_eq!(
        (syn_ack.flags, syn_ack.seq, syn_ack.ack),
        (Flags::SYN | Flags::ACK, ISS, irs(1))
    );
    assert_eq!(f.conn.state(), State::SynReceived);
    f.events();
    f
}

/// Passive open completed: the ACK of our SYN-ACK arrived one RTT later.
pub fn conn_established_passive() -> Fixture {
    let mut f = conn_syn_received();
    f.advance(RTT);
    let ack = f.seg(Flags::ACK, irs(1), iss(1), b"");
    f.inject(&ack);
    f.expect_nothing();
    assert_eq!(f.conn.state(), State::Established);
    f.events();
    f
}

/// ESTABLISHED, then `shutdown(Write)`: our FIN (seq ISS+1) is sent. The application
/// still holds the socket (not orphaned), so data can still be received.
pub fn conn_fin_wait_1() -> Fixture {
    conn_fin_wait_1_with(plain_config())
}

pub fn conn_fin_wait_1_with(cfg: Config) -> Fixture {
    let mut f = conn_established_with(cfg);
    f.conn.shutdown(Shutdown::Write);
    let fin = f.expect_one();
    assert_eq!(
        (fin.flags, fin.seq, fin.ack),
        (Flags::FIN | Flags::ACK, iss(1), irs(1))
    );
    assert_eq!(f.conn.state(), State::FinWait1);
    f.events();
    f
}

/// FIN_WAIT_1, then the peer acknowledged our FIN (ACK = ISS+2) one RTT later.
pub fn conn_fin_wait_2() -> Fixture {
    conn_fin_wait_2_with(plain_config())
}

pub fn conn_fin_wait_2_with(cfg: Config) -> Fixture {
    let mut f = conn_fin_wait_1_with(cfg);
    f.advance(RTT);
    let ack = f.seg(Flags::ACK, irs(1), iss(2), b"");
    f.inject(&ack);
    f.expect_nothing();
    assert_eq!(f.conn.state(), State::FinWait2);
    f.events();
    f
}

/// ESTABLISHED, then the peer's FIN (seq IRS+1) arrived and we acknowledged it. With
/// `delayed_fin_ack` (the default, Linux's) the ACK waits for the delayed-ACK timer, so
/// the clock ends `cfg.delayed_ack` after the FIN's arrival; without it the ACK is
/// immediate.
pub fn conn_close_wait() -> Fixture {
    conn_close_wait_with(plain_config())
}

pub fn conn_close_wait_with(cfg: Config) -> Fixture {
    let delayed = cfg.delayed_fin_ack.then_some(cfg.delayed_ack);
    let mut f = conn_established_with(cfg);
    let fin = f.seg(Flags::FIN | Flags::ACK, irs(1), iss(1), b"");
    f.inject(&fin);
    if let Some(d) = delayed {
        f.expect_nothing();
        let due = f.now + d;
        assert_eq!(f.fire_next(), due, "the delayed ACK of the FIN");
    }
    let ack = f.expect_one();
    assert_eq!((ack.flags, ack.seq, ack.ack), (Flags::ACK, iss(1), irs(2)));
    assert_eq!(f.conn.state(), State::CloseWait);
    f.events();
    f
}

/// CLOSE_WAIT, then `close()`: our FIN (seq ISS+1) is sent.
pub fn conn_last_ack() -> Fixture {
    conn_last_ack_with(plain_config())
}

pub fn conn_last_ack_with(cfg: Config) -> Fixture {
    let mut f = conn_close_wait_with(cfg);
    let now = f.now;
    f.conn.close(now, &mut f.cx);
    let fin = f.expect_one();
    assert_eq!(
        (fin.flags, fin.seq, fin.ack),
        (Flags::FIN | Flags::ACK, iss(1), irs(2))
    );
    assert_eq!(f.conn.state(), State::LastAck);
    f.events();
    f
}

/// FIN_WAIT_1, then the peer's FIN crossed ours (it does not acknowledge our FIN).
pub fn conn_closing() -> Fixture {
    conn_closing_with(plain_config())
}

pub fn conn_closing_with(cfg: Config) -> Fixture {
    let mut f = conn_fin_wait_1_with(cfg);
    let fin = f.seg(Flags::FIN | Flags::ACK, irs(1), iss(1), b"");
    f.inject(&fin);
    let ack = f.expect_one();
    assert_eq!((ack.flags, ack.seq, ack.ack), (Flags::ACK, iss(2), irs(2)));
    assert_eq!(f.conn.state(), State::Closing);
    f.events();
    f
}

/// FIN_WAIT_2, then the peer's FIN arrived and we sent the final ACK.
pub fn conn_time_wait() -> Fixture {
    conn_time_wait_with(plain_config())
}

pub fn conn_time_wait_with(cfg: Config) -> Fixture {
    let mut f = conn_fin_wait_2_with(cfg);
    let fin = f.seg(Flags::FIN | Flags::ACK, irs(1), iss(2), b"");
    f.inject(&fin);
    let ack = f.expect_one();
    assert_eq!((ack.flags, ack.seq, ack.ack), (Flags::ACK, iss(2), irs(2)));
    assert_eq!(f.conn.state(), State::TimeWait);
    f.events();
    f
}

/// One whole IP packet from `from` to `to` carrying a segment with these fields, the
/// window 65535, Linux's option order and TTL 64: what a stack-level test feeds to
/// `Stack::handle_packet`.
pub fn ip_packet(
    from: SocketAddr,
    to: SocketAddr,
    flags: Flags,
    seq: u32,
    ack: u32,
    options: Options,
    data: &[u8],
) -> Vec<u8> {
    let hdr = tcp::Header {
        src_port: from.port(),
        dst_port: to.port(),
        seq: Seq(seq),
        ack: Seq(ack),
        flags,
        window: 65535,
        options,
    };
    let mut buf = vec![0u8; 65_600];
    let n = seqack::tcp::write_packet(
        &mut buf,
        from,
        to,
        &hdr,
        tcp::OptionLayout::Linux,
        (data, &[]),
        64,
    )
    .expect("the packet fits");
    buf.truncate(n);
    buf
}
