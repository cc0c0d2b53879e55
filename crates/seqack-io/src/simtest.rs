//! Randomised deterministic simulation with invariants: the engine of `seqack sim`.
//!
//! [`run_seed`] turns a seed into a scenario (nodes, connections opened at random times,
//! each with its own application behaviour, socket options and close style; link
//! impairments and partitions within the bounds of a [`SimConfig`]), runs it on a
//! [`World`] in virtual time and checks the invariants listed in [`Invariant`]. Every
//! random choice comes from a ChaCha8 generator seeded with the seed, so the same seed
//! and bounds give the same run, byte for byte ([`SeedReport::digest`] hashes the whole
//! timeline: every packet with its bytes and every stack event, with their times).
//!
//! Definitions used by the checks:
//! - An endpoint *failed* when its application saw an error on the connection (a
//!   [`seqack::Event::Error`]: refused, reset, timed out, aborted) or aborted it
//!   itself. Errors reported after the application closed its socket count too.
//! - DATA: for each direction, the bytes the receiving application read are always a
//!   prefix of what the sending application wrote (each byte is checked against a
//!   deterministic pattern at its offset: in order, uncorrupted, never twice). They are
//!   the whole of it unless the writer or the reader aborted, or both endpoints failed.
//! - CLOSE: every endpoint's connection reaches CLOSED. TIME_WAIT, when entered,
//!   lasts its full 2MSL and ends by its timer. An application that finished without an
//!   error must have finished its plan (read everything the peer wrote, and its EOF
//!   when the plan waits for it). An application that waits with no progress for
//!   [`APP_PATIENCE`] gives up (aborts); that is a STUCK failure unless its peer failed.
//! - SEQ: observed on every packet sent (a World filter): a segment's ACK field never
//!   acknowledges more than the peer has sent (SEG.ACK <= peer's SND.MAX, and > the
//!   peer's ISS); data and FIN lie in [ISS+1, ...] and start at or below the sender's
//!   SND.MAX so far (no gap); a pure ACK or RST carries SEQ in [ISS, SND.MAX]; the
//!   ACK field a direction sends never moves back (RCV.NXT is monotonic). RST
//!   without ACK in reply to a non-ACK segment (SEQ 0) is exempt from the SEQ check.
//! - PANIC: the run (generator, stacks, driver) must not panic (caught with
//!   `catch_unwind`).
//! - MEMORY: proxy: at the end every stack has `connection_count() == 0` and an empty
//!   TIME_WAIT table (no live connection or record left behind).
//! - STUCK: the run ends (nothing left to happen) before [`HORIZON`] of virtual time.

use crate::sim::{Action, LinkConfig, NodeId, PacketInfo, TraceEntry, World};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seqack::stack::SynCookies;
use seqack::tcp::{RecvError, SendError, Shutdown};
use seqack::wire::Seq;
use seqack::{Config, ConnId, Duration, Error, Event, Instant, ListenerId, Reason, Stack};
use seqack::{StackConfig, State};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;

/// Maximum segment lifetime of every simulated stack (TIME_WAIT lasts twice this).
pub const MSL: Duration = Duration::from_secs(1);
/// How long an application waits with no progress before it gives up and aborts.
pub const APP_PATIENCE: Duration = Duration::from_secs(120);
/// Virtual time by which every run must have ended.
pub const HORIZON: Instant = Instant::from_secs(1800);

/// Bounds of the random scenarios.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Most connections per scenario (at least one).
    pub connections: usize,
    /// Most bytes each way per connection.
    pub bytes: usize,
    /// Largest packet loss probability.
    pub loss: f64,
    /// Largest probability that a packet is held back (1 to 3 one-way delays more),
    /// so that later packets overtake it.
    pub reorder: f64,
    /// Largest duplication probability.
    pub dup: f64,
    /// Largest corruption probability (one flipped byte; the checksum must catch it).
    pub corrupt: f64,
    /// Longest partition in milliseconds (0: none).
    pub partition_ms: u64,
    /// Test-only fault injection, to prove the invariants can fail.
    pub bug: Option<InjectedBug>,
    /// Drive the stacks in batches ([`World::set_batching`]): the packets on the link
    /// must be exactly those of a run without (same [`SeedReport::wire_digest`]).
    pub batch: bool,
    /// Turn header prediction off in every stack: the run must be exactly the same
    /// (same [`SeedReport::digest`]).
    pub no_prediction: bool,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            connections: 4,
            bytes: 20_000,
            loss: 0.05,
            reorder: 0.05,
            dup: 0.02,
            corrupt: 0.02,
            partition_ms: 2000,
            bug: None,
            batch: false,
            no_prediction: false,
        }
    }
}

/// A deliberate fault in the simulated applications, for testing the checker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectedBug {
    /// The first read that returns two bytes or more loses its first byte.
    DropReceivedByte,
}

/// The invariants, as printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invariant {
    /// Bytes delivered exactly once, in order, uncorrupted.
    Data,
    /// Connections end CLOSED (full 2MSL TIME_WAIT) or with an error.
    Close,
    /// An application waited forever.
    Stuck,
    /// Sequence and acknowledgment numbers within what RFC 9293 allows.
    Seq,
    /// Nothing panicked.
    Panic,
    /// Stacks end with no connection and no TIME_WAIT record.
    Memory,
}

impl Invariant {
    /// Upper-case name.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::Data => "DATA",
            Invariant::Close => "CLOSE",
            Invariant::Stuck => "STUCK",
            Invariant::Seq => "SEQ",
            Invariant::Panic => "PANIC",
            Invariant::Memory => "MEMORY",
        }
    }
}

/// One broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Which.
    pub invariant: Invariant,
    /// What was seen.
    pub detail: String,
}

/// The outcome of one seed.
#[derive(Clone, Debug)]
pub struct SeedReport {
    /// The seed.
    pub seed: u64,
    /// Broken invariants (empty: passed).
    pub failures: Vec<Failure>,
    /// One-line description of the generated scenario.
    pub scenario: String,
    /// Connections opened.
    pub connections: usize,
    /// Virtual time at the end, in milliseconds.
    pub virtual_ms: u64,
    /// Packets sent on the link.
    pub packets: u64,
    /// FNV-1a 64 digest of the whole timeline (packets with bytes, events, times).
    pub digest: u64,
    /// FNV-1a 64 digest of the packets alone (with their bytes, times and fates).
    pub wire_digest: u64,
    /// The timeline, one line per packet or event (only from [`run_seed_traced`]).
    pub trace: Vec<String>,
}

impl SeedReport {
    /// True when no invariant broke.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

// ----- randomness ------------------------------------------------------------------

struct Rng(ChaCha8Rng);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.0.next_u64() % n
        }
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }
    fn unit(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }
}

/// The byte at `offset` of direction `dir` of connection `conn`.
fn pattern(conn: usize, dir: usize, offset: usize) -> u8 {
    let x = (offset as u64 ^ ((conn as u64) << 40) ^ ((dir as u64) << 56))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> 31) as u8
}

// ----- scenario ------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CloseStyle {
    /// The client closes once it wrote all and read all the server sends.
    ClientActive,
    /// The server closes first.
    ServerActive,
    /// Both close at the same virtual time once both are ready.
    Simultaneous,
    /// The client shuts down writing; the server then writes its data and closes.
    HalfClose,
    /// One side aborts with RST at a random time.
    Abort,
    /// The server closes its listener before accepting.
    ListenerClosed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadStyle {
    Prompt,
    /// Every `every` ms, at most `chunk` bytes.
    Slow {
        every: u64,
        chunk: usize,
    },
    /// Nothing until `after` ms past the connection's start, then promptly.
    Late {
        after: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plan {
    /// Close once all written and all expected bytes read.
    CloseAfterIo,
    /// Close after EOF (and all written).
    CloseAfterEof,
    /// Close together with the peer once both are ready.
    SimClose,
    /// Write all, shutdown(WR); close after EOF.
    ShutdownFirst,
    /// Read until EOF, then write all, then close.
    WriteAfterEof,
    /// Abort at this time (after behaving as `CloseAfterEof` until then).
    AbortAt(Instant),
}

#[derive(Clone, Debug)]
struct Endpoint {
    conn: usize,
    dir_out: usize,
    node: NodeId,
    id: Option<ConnId>,
    tuple: Option<(SocketAddr, SocketAddr)>,
    plan: Plan,
    read: ReadStyle,
    nodelay: bool,
    keepalive: Option<(u64, u64, u32)>,
    to_write: usize,
    written: usize,
    expect_in: usize,
    got: usize,
    bad_at: Option<usize>,
    eof: bool,
    shut: bool,
    closed: bool,
    aborted: bool,
    gave_up: bool,
    error: Option<Error>,
    last_progress: Instant,
    next_read: Instant,
    start: Instant,
}

impl Endpoint {
    fn failed(&self) -> bool {
        self.error.is_some() || self.aborted
    }
    fn finished(&self) -> bool {
        self.closed || self.aborted
    }
}

struct ConnPlan {
    client: NodeId,
    server: NodeId,
    port: u16,
    start: Instant,
    style: CloseStyle,
    listener_close: Option<Instant>,
}

struct Scenario {
    nodes: usize,
    link: LinkConfig,
    reorder: f64,
    partition: Option<(Instant, Option<Instant>)>,
    conns: Vec<ConnPlan>,
    eps: Vec<Endpoint>,
    describe: String,
}

fn ip(node: NodeId) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, node as u8 + 1))
}

fn generate(seed: u64, cfg: &SimConfig, rng: &mut Rng) -> Scenario {
    let nodes = rng.range(2, 3) as usize;
    let link = LinkConfig {
        delay: Duration::from_millis(rng.range(1, 30)),
        jitter: Duration::ZERO,
        loss: rng.unit() * cfg.loss,
        duplicate: rng.unit() * cfg.dup,
        corrupt: rng.unit() * cfg.corrupt,
        rate: None,
        mtu: 1500,
    };
    let reorder = rng.unit() * cfg.reorder;
    let partition = if cfg.partition_ms > 0 && rng.chance(0.4) {
        let start = Instant::from_millis(rng.range(0, 4000));
        let heals = !rng.chance(0.15);
        let end = heals.then(|| start + Duration::from_millis(rng.range(1, cfg.partition_ms)));
        Some((start, end))
    } else {
        None
    };
    let never_heals = matches!(partition, Some((_, None)));
    let n = rng.range(1, cfg.connections.max(1) as u64) as usize;
    let mut conns = Vec::new();
    let mut eps = Vec::new();
    for k in 0..n {
        let client = rng.below(nodes as u64) as usize;
        let server = (client + 1 + rng.below(nodes as u64 - 1) as usize) % nodes;
        let start = Instant::from_millis(rng.range(0, 3000));
        let style = match rng.below(6) {
            0 => CloseStyle::ClientActive,
            1 => CloseStyle::ServerActive,
            2 => CloseStyle::Simultaneous,
            3 => CloseStyle::HalfClose,
            4 => CloseStyle::Abort,
            _ => CloseStyle::ListenerClosed,
        };
        let mut c2s = rng.range(0, cfg.bytes as u64) as usize;
        let mut s2c = rng.range(0, cfg.bytes as u64) as usize;
        let listener_close = (style == CloseStyle::ListenerClosed)
            .then(|| start + Duration::from_millis(rng.range(0, 300)));
        if style == CloseStyle::ListenerClosed {
            // The client must send something to learn that nobody is there.
            c2s = c2s.max(1);
            s2c = 0;
        }
        let abort_at = start + Duration::from_millis(rng.range(0, 2000));
        let abort_client = rng.chance(0.5);
        let (cp, sp) = match style {
            CloseStyle::ClientActive => (Plan::CloseAfterIo, Plan::CloseAfterEof),
            CloseStyle::ServerActive => (Plan::CloseAfterEof, Plan::CloseAfterIo),
            CloseStyle::Simultaneous => (Plan::SimClose, Plan::SimClose),
            CloseStyle::HalfClose => (Plan::ShutdownFirst, Plan::WriteAfterEof),
            CloseStyle::Abort if abort_client => (Plan::AbortAt(abort_at), Plan::CloseAfterEof),
            CloseStyle::Abort => (Plan::CloseAfterEof, Plan::AbortAt(abort_at)),
            CloseStyle::ListenerClosed => (Plan::CloseAfterEof, Plan::CloseAfterEof),
        };
        for (dir, node, plan, out, inn) in [(0, client, cp, c2s, s2c), (1, server, sp, s2c, c2s)] {
            let read = match rng.below(3) {
                0 => ReadStyle::Prompt,
                1 => ReadStyle::Slow {
                    every: rng.range(5, 200),
                    chunk: rng.range(256, 4000) as usize,
                },
                _ => ReadStyle::Late {
                    after: rng.range(100, 5000),
                },
            };
            let keepalive = (never_heals || rng.chance(0.3)).then(|| {
                (
                    rng.range(500, 5000),
                    rng.range(200, 2000),
                    rng.range(1, 5) as u32,
                )
            });
            eps.push(Endpoint {
                conn: k,
                dir_out: dir,
                node,
                id: None,
                tuple: None,
                plan,
                read,
                nodelay: rng.chance(0.5),
                keepalive,
                to_write: out,
                written: 0,
                expect_in: inn,
                got: 0,
                bad_at: None,
                eof: false,
                shut: false,
                closed: false,
                aborted: false,
                gave_up: false,
                error: None,
                last_progress: start,
                next_read: start,
                start,
            });
        }
        conns.push(ConnPlan {
            client,
            server,
            port: 1000 + k as u16,
            start,
            style,
            listener_close,
        });
    }
    let mut describe = format!(
        "seed {seed}: {nodes} nodes, delay {:?}, loss {:.3}, reorder {:.3}, dup {:.3}, corrupt {:.3}",
        link.delay, link.loss, reorder, link.duplicate, link.corrupt
    );
    if let Some((s, e)) = partition {
        let _ = write!(describe, ", partition at {} ms ", s.total_millis());
        match e {
            Some(e) => {
                let _ = write!(describe, "healing at {} ms", e.total_millis());
            }
            None => describe.push_str("never healing"),
        }
    }
    for (k, c) in conns.iter().enumerate() {
        let (a, b) = (&eps[2 * k], &eps[2 * k + 1]);
        let _ = write!(
            describe,
            "; conn {k}: node {}->{} at {} ms {:?} c2s {} s2c {} read {:?}/{:?}",
            c.client,
            c.server,
            c.start.total_millis(),
            c.style,
            a.to_write,
            b.to_write,
            a.read,
            b.read
        );
    }
    Scenario {
        nodes,
        link,
        reorder,
        partition,
        conns,
        eps,
        describe,
    }
}

/// A node's settings: short MSL and retries so runs end quickly, small buffers so
/// windows fill, and TCP options (SACK, timestamps, window scaling, the delayed ACK of
/// a FIN) drawn at random per node.
fn stack_config(seed: u64, rng: &mut Rng, prediction: bool) -> StackConfig {
    let tcp = Config {
        header_prediction: prediction,
        sack: rng.chance(0.8),
        timestamps: rng.chance(0.8),
        wscale: if rng.chance(0.8) {
            Some(rng.range(0, 7) as u8)
        } else {
            None
        },
        delayed_fin_ack: rng.chance(0.5),
        // FreeBSD's behaviours, each at random.
        advertise_free_space: rng.chance(0.3),
        accept_to_buffer_space: rng.chance(0.3),
        resend_fin_in_acks: rng.chance(0.3),
        tw_ack_required: rng.chance(0.3),
        rfc5961_rst: rng.chance(0.8),
        rfc5961_syn: rng.chance(0.8),
        send_buffer: 1024 * rng.range(4, 64) as usize,
        recv_buffer: 1024 * rng.range(4, 64) as usize,
        msl: MSL,
        fin_wait2_timeout: Duration::from_secs(10),
        rto_max: Duration::from_secs(4),
        syn_retries: 4,
        synack_retries: 4,
        retries2: 6,
        orphan_retries: 5,
        ..Config::default()
    };
    let syncookies = match rng.below(4) {
        0 => SynCookies::Always,
        _ => SynCookies::OnOverflow,
    };
    StackConfig {
        tcp,
        seed,
        syncookies,
        ..StackConfig::default()
    }
}

// ----- the SEQ checker ---------------------------------------------------------------

#[derive(Default)]
struct Dir {
    iss: Option<Seq>,
    snd_max: Seq,
    /// Highest ACK this direction has sent (RCV.NXT never moves back).
    ack_max: Option<Seq>,
    /// Where this direction's FIN sits, once sent: FIN_WAIT_1, CLOSING, LAST_ACK and
    /// TIME_WAIT send nothing past it.
    fin: Option<Seq>,
    /// This direction sent an RST with ACK: the connection is gone and sends no more
    /// data.
    reset: bool,
}

#[derive(Default)]
struct SeqChecker {
    dirs: HashMap<(u32, u16, u32, u16), Dir>,
    failures: Vec<String>,
}

impl SeqChecker {
    fn check(&mut self, p: &PacketInfo, src: u32, dst: u32) {
        if !p.is_tcp {
            return;
        }
        let me = (src, p.ports.0, dst, p.ports.1);
        let peer = (dst, p.ports.1, src, p.ports.0);
        let f = p.flags;
        let mut bad = Vec::new();
        if f.syn() {
            let d = self.dirs.entry(me).or_default();
            if d.iss != Some(p.seq) {
                // A new incarnation of this 4-tuple.
                d.iss = Some(p.seq);
                d.snd_max = p.seq + 1u32;
                d.ack_max = None;
                d.fin = None;
                d.reset = false;
                if !f.ack() {
                    self.dirs.remove(&peer);
                }
            }
        }
        if f.ack() {
            match self
                .dirs
                .get(&peer)
                .and_then(|d| d.iss.map(|i| (i, d.snd_max)))
            {
                Some((iss, max)) => {
                    let a = p.ack.since(iss);
                    if a == 0 || a > max.since(iss) {
                        bad.push(format!(
                            "ACK {} outside (peer ISS {}, peer SND.MAX {}]",
                            p.ack.0, iss.0, max.0
                        ));
                    }
                }
                None if !f.rst() => bad.push(format!(
                    "ACK {} for a direction that never sent a SYN",
                    p.ack.0
                )),
                None => {}
            }
        }
        if f.ack() && !f.rst() {
            if let Some(d) = self.dirs.get_mut(&me) {
                match d.ack_max {
                    Some(m) if p.ack.diff(m) < 0 => bad.push(format!(
                        "ACK {} went back below an ACK {} sent before",
                        p.ack.0, m.0
                    )),
                    _ => d.ack_max = Some(p.ack),
                }
            }
        }
        if f.syn() && f.ack() {
            // A SYN-ACK acknowledges exactly the peer's SYN (RFC 9293 3.5).
            if let Some(iss) = self.dirs.get(&peer).and_then(|d| d.iss) {
                if p.ack != iss + 1u32 {
                    bad.push(format!(
                        "SYN-ACK acknowledges {} but the peer's SYN was {}",
                        p.ack.0, iss.0
                    ));
                }
            }
        }
        if !f.syn() && !f.rst() && !f.ack() && self.dirs.contains_key(&me) {
            // Past SYN_SENT every segment carries an ACK (RFC 9293 3.10.7.4 fifth).
            bad.push("a segment without ACK after the SYN".to_string());
        }
        if let Some(d) = self.dirs.get(&me) {
            let seg_len = p.len as u32 + u32::from(f.fin());
            if !f.syn() && !f.rst() && seg_len > 0 {
                if d.reset {
                    bad.push("data or FIN after this side sent an RST".to_string());
                }
                if let Some(fin) = d.fin {
                    let data_end = p.seq + p.len as u32;
                    if data_end > fin || (f.fin() && data_end != fin) {
                        bad.push(format!(
                            "data or FIN (SEQ {} len {}) beyond the FIN already sent at {}",
                            p.seq.0, p.len, fin.0
                        ));
                    }
                }
            }
        }
        let exempt_rst = f.rst() && f.ack();
        if let Some(d) = self.dirs.get_mut(&me) {
            if let Some(iss) = d.iss {
                let off = p.seq.since(iss);
                let max = d.snd_max.since(iss);
                let seg_len = p.len as u32 + u32::from(f.fin());
                if !f.syn() && seg_len > 0 && (off == 0 || off > max) {
                    bad.push(format!(
                        "data/FIN SEQ {} len {} outside [ISS+1 {}, SND.MAX {}]",
                        p.seq.0,
                        seg_len,
                        (iss + 1u32).0,
                        d.snd_max.0
                    ));
                } else if !f.syn() && seg_len == 0 && !exempt_rst && off > max {
                    bad.push(format!(
                        "SEQ {} beyond SND.MAX {} (ISS {})",
                        p.seq.0, d.snd_max.0, iss.0
                    ));
                }
                if !f.syn() && off <= max {
                    let end = p.seq + seg_len;
                    if end.since(iss) > max {
                        d.snd_max = end;
                    }
                }
                if f.fin() && !f.syn() && d.fin.is_none() {
                    d.fin = Some(p.seq + p.len as u32);
                }
                if f.rst() && f.ack() {
                    // A connection's own reset (abort, or a reply in a synchronized
                    // state). An RST without ACK answers a segment for which there was
                    // no connection (RFC 9293 3.10.7.1, a listener's reply to an ACK
                    // it cannot match, a SYN cookie that did not decode): a connection
                    // for the 4-tuple may still come into being after it, as when a
                    // reordered cookie ACK arrives after the data behind it.
                    d.reset = true;
                }
            }
        }
        for b in bad {
            if self.failures.len() < 5 {
                self.failures.push(format!(
                    "node {} {}:{} -> {}:{} flags {:?}: {b}",
                    p.from,
                    Ipv4Addr::from(src),
                    p.ports.0,
                    Ipv4Addr::from(dst),
                    p.ports.1,
                    f
                ));
            }
        }
    }
}

// ----- digest -------------------------------------------------------------------------

struct Fnv(u64);

impl Fnv {
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(0x100_0000_01b3);
        }
    }
}

impl std::fmt::Write for Fnv {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.bytes(s.as_bytes());
        Ok(())
    }
}

/// The digest of the timeline: its packets, and with `all` its deliveries and events.
fn digest(trace: &[TraceEntry], all: bool) -> u64 {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    for e in trace {
        match e {
            TraceEntry::Sent {
                id,
                t,
                info,
                lost,
                bytes,
            } => {
                let _ = write!(h, "S{id} {} {info:?} {lost:?}", t.total_micros());
                h.bytes(bytes);
            }
            other if all => {
                let _ = write!(h, "{other:?}");
            }
            _ => {}
        }
    }
    h.0
}

fn trace_lines(trace: &[TraceEntry]) -> Vec<String> {
    trace
        .iter()
        .map(|e| match e {
            TraceEntry::Sent {
                id, t, info, lost, ..
            } => format!(
                "{:>10.3} ms  #{id} node {} -> {:?} {}->{} {:?} seq {} ack {} len {} win {}{}",
                t.total_micros() as f64 / 1000.0,
                info.from,
                info.to,
                info.ports.0,
                info.ports.1,
                info.flags,
                info.seq.0,
                info.ack.0,
                info.len,
                info.window,
                lost.map(|l| format!(" LOST {l:?}")).unwrap_or_default()
            ),
            TraceEntry::Delivered {
                id,
                t,
                to,
                corrupted,
            } => format!(
                "{:>10.3} ms  #{id} delivered to node {to}{}",
                t.total_micros() as f64 / 1000.0,
                if *corrupted { " CORRUPTED" } else { "" }
            ),
            TraceEntry::Event {
                t,
                node,
                event,
                cause,
            } => format!(
                "{:>10.3} ms  node {node}: {event:?} ({cause:?})",
                t.total_micros() as f64 / 1000.0
            ),
        })
        .collect()
}

// ----- the run ------------------------------------------------------------------------

/// Runs one seed and checks the invariants. Never panics: a panic inside the run is
/// reported as a PANIC failure.
pub fn run_seed(seed: u64, cfg: &SimConfig) -> SeedReport {
    run_catching(seed, cfg, false)
}

/// [`run_seed`], keeping the timeline as text in [`SeedReport::trace`].
pub fn run_seed_traced(seed: u64, cfg: &SimConfig) -> SeedReport {
    run_catching(seed, cfg, true)
}

fn run_catching(seed: u64, cfg: &SimConfig, keep: bool) -> SeedReport {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_inner(seed, cfg, keep)));
    r.unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into());
        SeedReport {
            seed,
            failures: vec![Failure {
                invariant: Invariant::Panic,
                detail: msg,
            }],
            scenario: String::new(),
            connections: 0,
            virtual_ms: 0,
            packets: 0,
            digest: 0,
            wire_digest: 0,
            trace: Vec::new(),
        }
    })
}

/// On failure, reruns the seed with fewer connections, then fewer bytes, keeping the
/// smallest bounds that still fail (each rerun is a different, smaller scenario from
/// the same seed). Returns those bounds and their report.
pub fn shrink(seed: u64, cfg: &SimConfig) -> Option<(SimConfig, SeedReport)> {
    let mut best: Option<(SimConfig, SeedReport)> = None;
    let mut cur = cfg.clone();
    let mut c = 1;
    while c < cur.connections {
        let try_cfg = SimConfig {
            connections: c,
            ..cur.clone()
        };
        let r = run_seed(seed, &try_cfg);
        if !r.passed() {
            cur = try_cfg.clone();
            best = Some((try_cfg, r));
            break;
        }
        c += 1;
    }
    while cur.bytes > 1 {
        let try_cfg = SimConfig {
            bytes: cur.bytes / 2,
            ..cur.clone()
        };
        let r = run_seed(seed, &try_cfg);
        if r.passed() {
            break;
        }
        cur = try_cfg.clone();
        best = Some((try_cfg, r));
    }
    best
}

struct Driver {
    world: World,
    eps: Vec<Endpoint>,
    conns: Vec<ConnPlan>,
    listeners: Vec<Option<ListenerId>>,
    /// Events by (node, local, remote): time and event.
    log: HashMap<(NodeId, SocketAddr, SocketAddr), Vec<(Instant, Event)>>,
    bug_armed: bool,
    failures: Vec<Failure>,
}

fn run_inner(seed: u64, cfg: &SimConfig, keep: bool) -> SeedReport {
    let mut rng = Rng(ChaCha8Rng::seed_from_u64(seed));
    let sc = generate(seed, cfg, &mut rng);
    let mut world = World::new(rng.0.next_u64(), sc.link.clone());
    world.record_trace();
    world.set_batching(cfg.batch);
    for n in 0..sc.nodes {
        let node_seed = seed.wrapping_mul(31).wrapping_add(n as u64);
        let mut s = Stack::new(stack_config(node_seed, &mut rng, !cfg.no_prediction));
        s.add_address(ip(n));
        world.add_node(&format!("node{n}"), s);
    }
    let checker = Rc::new(RefCell::new(SeqChecker::default()));
    let partitioned = Rc::new(Cell::new(false));
    {
        // The SEQ checker sees every packet sent; the partition drops everything.
        let checker = checker.clone();
        let partitioned = partitioned.clone();
        let mut reorder_rng = Rng(ChaCha8Rng::seed_from_u64(rng.0.next_u64()));
        let reorder = sc.reorder;
        let delay = sc.link.delay;
        world.add_filter(Box::new(move |p: &PacketInfo| {
            if let Some(to) = p.to {
                let (src, dst) = (p.from as u32 + 0x0a00_0001, to as u32 + 0x0a00_0001);
                checker.borrow_mut().check(p, src, dst);
            }
            if partitioned.get() {
                return Some(Action::Drop);
            }
            if reorder_rng.chance(reorder) {
                return Some(Action::Delay(delay * reorder_rng.range(1, 3) as u32));
            }
            None
        }));
    }
    let mut d = Driver {
        world,
        listeners: Vec::new(),
        eps: sc.eps,
        conns: sc.conns,
        log: HashMap::new(),
        bug_armed: cfg.bug == Some(InjectedBug::DropReceivedByte),
        failures: Vec::new(),
    };
    for k in 0..d.conns.len() {
        let addr = SocketAddr::new(ip(d.conns[k].server), d.conns[k].port);
        let l = d
            .world
            .with_stack(d.conns[k].server, |s, _| s.listen(addr, 4))
            .ok();
        d.listeners.push(l);
    }
    let mut stuck = None;
    loop {
        d.apps(&partitioned, sc.partition);
        d.world.flush();
        d.collect_events();
        if d.eps.iter().all(Endpoint::finished)
            && (0..sc.nodes).all(|n| {
                d.world.stack(n).connection_count() == 0 && d.world.stack(n).time_wait().is_empty()
            })
        {
            break;
        }
        let next = [d.world.next_deadline(), d.next_app_time(sc.partition)]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(t) if t <= HORIZON => d.world.step_to(t),
            Some(t) => {
                stuck = Some(format!("still busy at the horizon (next deadline {t:?})"));
                break;
            }
            None => {
                break;
            }
        }
    }
    d.collect_events();
    if let Some(s) = stuck {
        d.fail(Invariant::Stuck, s);
    }
    d.check_end(sc.nodes);
    for f in checker.borrow().failures.iter() {
        d.fail(Invariant::Seq, f.clone());
    }
    let trace = d.world.trace();
    SeedReport {
        seed,
        failures: d.failures,
        scenario: sc.describe,
        connections: d.conns.len(),
        virtual_ms: d.world.now().total_millis(),
        packets: d.world.stats().sent,
        digest: digest(trace, true),
        wire_digest: digest(trace, false),
        trace: if keep { trace_lines(trace) } else { Vec::new() },
    }
}

impl Driver {
    fn fail(&mut self, invariant: Invariant, detail: String) {
        self.failures.push(Failure { invariant, detail });
    }

    fn collect_events(&mut self) {
        while let Some((t, node, ev)) = self.world.poll_event() {
            if let Some((local, remote, event)) = ev.conn_event() {
                self.log
                    .entry((node, local, remote))
                    .or_default()
                    .push((t, event));
                if let Event::Error(e) = event {
                    if let Some(ep) = self
                        .eps
                        .iter_mut()
                        .find(|ep| ep.node == node && ep.tuple == Some((local, remote)))
                    {
                        ep.error.get_or_insert(e);
                    }
                }
            }
        }
    }

    /// The next time an application wants to act on its own.
    fn next_app_time(&self, partition: Option<(Instant, Option<Instant>)>) -> Option<Instant> {
        let now = self.world.now();
        let mut ts = Vec::new();
        if let Some((s, e)) = partition {
            ts.push(s);
            ts.extend(e);
        }
        for c in &self.conns {
            ts.push(c.start);
            ts.extend(c.listener_close);
        }
        for ep in &self.eps {
            if ep.finished() {
                continue;
            }
            ts.push(ep.last_progress + APP_PATIENCE);
            if let Plan::AbortAt(t) = ep.plan {
                ts.push(t);
            }
            match ep.read {
                ReadStyle::Slow { .. } => ts.push(ep.next_read),
                ReadStyle::Late { after } => ts.push(ep.start + Duration::from_millis(after)),
                ReadStyle::Prompt => {}
            }
        }
        ts.into_iter().filter(|&t| t > now).min()
    }

    fn apps(&mut self, part: &Cell<bool>, partition: Option<(Instant, Option<Instant>)>) {
        let now = self.world.now();
        if let Some((s, e)) = partition {
            part.set(now >= s && e.is_none_or(|e| now < e));
        }
        for k in 0..self.conns.len() {
            let c = &self.conns[k];
            let (client, server) = (2 * k, 2 * k + 1);
            if self.eps[client].id.is_none() && now >= c.start {
                let remote = SocketAddr::new(ip(c.server), c.port);
                let node = c.client;
                match self
                    .world
                    .with_stack(node, |s, now| s.connect(now, None, remote))
                {
                    Ok(id) => {
                        let local = self.world.stack(node).conn(id).map(|c| c.local());
                        self.eps[client].tuple = local.map(|l| (l, remote));
                        self.eps[client].id = Some(id);
                        self.setup(client);
                    }
                    Err(e) => {
                        self.fail(Invariant::Close, format!("conn {k}: connect failed: {e}"));
                        self.eps[client].closed = true;
                        self.eps[server].closed = true;
                    }
                }
            }
            let c = &self.conns[k];
            if let (Some(at), Some(l)) = (c.listener_close, self.listeners[k]) {
                if now >= at {
                    self.world
                        .with_stack(c.server, |s, now| s.close_listener(now, l));
                    self.listeners[k] = None;
                    // The server application never gets this connection; the stack
                    // aborts it if it was established (the RST may be lost, and a
                    // client with nothing left to send then waits until it gives up).
                    self.eps[server].aborted = true;
                }
            }
            let c = &self.conns[k];
            if c.style != CloseStyle::ListenerClosed && self.eps[server].id.is_none() {
                if let Some(l) = self.listeners[k] {
                    if let Some(id) = self.world.with_stack(c.server, |s, _| s.accept(l)) {
                        let node = c.server;
                        let tuple = self
                            .world
                            .stack(node)
                            .conn(id)
                            .map(|c| (c.local(), c.remote()));
                        self.eps[server].tuple = tuple;
                        self.eps[server].id = Some(id);
                        self.eps[server].last_progress = now;
                        self.world.with_stack(node, |s, _| s.close_listener(now, l));
                        self.listeners[k] = None;
                        self.setup(server);
                        // Errors reported before accept belong to this endpoint too.
                        if let Some(t) = tuple {
                            let err = self.log.get(&(node, t.0, t.1)).and_then(|v| {
                                v.iter().find_map(|(_, e)| match e {
                                    Event::Error(e) => Some(*e),
                                    _ => None,
                                })
                            });
                            if let Some(e) = err {
                                self.eps[server].error.get_or_insert(e);
                            }
                        }
                    }
                }
            }
        }
        for i in 0..self.eps.len() {
            self.app(i);
        }
        // Simultaneous close: both endpoints close at the same instant once both are ready.
        for k in 0..self.conns.len() {
            let (a, b) = (2 * k, 2 * k + 1);
            if self.eps[a].plan == Plan::SimClose
                && !self.eps[a].finished()
                && !self.eps[b].finished()
                && self.ready_io(a)
                && self.ready_io(b)
            {
                self.close(a);
                self.close(b);
            }
        }
    }

    fn setup(&mut self, i: usize) {
        let ep = &self.eps[i];
        let (Some(id), nodelay, ka) = (ep.id, ep.nodelay, ep.keepalive) else {
            return;
        };
        self.world.with_stack(ep.node, |s, now| {
            s.with_conn(now, id, |c, now, _| {
                let o = c.sockopts_mut();
                o.nodelay = nodelay;
                if let Some((idle, intvl, cnt)) = ka {
                    o.keepalive_idle = Duration::from_millis(idle);
                    o.keepalive_interval = Duration::from_millis(intvl);
                    o.keepalive_count = cnt;
                    c.set_keepalive(now, true);
                }
            })
        });
    }

    /// All written and everything the peer will send read.
    fn ready_io(&self, i: usize) -> bool {
        let ep = &self.eps[i];
        ep.written == ep.to_write && ep.got >= ep.expect_in
    }

    fn close(&mut self, i: usize) {
        let ep = &mut self.eps[i];
        if let Some(id) = ep.id {
            ep.closed = true;
            self.world.with_stack(ep.node, |s, now| s.close(now, id));
        }
    }

    fn app(&mut self, i: usize) {
        let now = self.world.now();
        let ep = &self.eps[i];
        let Some(id) = ep.id else { return };
        if ep.finished() {
            return;
        }
        let node = ep.node;
        if let Plan::AbortAt(t) = ep.plan {
            if now >= t {
                self.eps[i].aborted = true;
                self.world.with_stack(node, |s, now| s.abort(now, id));
                return;
            }
        }
        // Write.
        let may_write = !matches!(ep.plan, Plan::WriteAfterEof) || ep.eof;
        if may_write && ep.written < ep.to_write && !ep.shut {
            let (conn, dir, from, to) = (ep.conn, ep.dir_out, ep.written, ep.to_write);
            let chunk: Vec<u8> = (from..to.min(from + 8192))
                .map(|o| pattern(conn, dir, o))
                .collect();
            match self
                .world
                .with_stack(node, |s, now| s.send(now, id, &chunk))
            {
                Ok(n) => {
                    if n > 0 {
                        self.eps[i].written += n;
                        self.eps[i].last_progress = now;
                    }
                }
                Err(SendError::Failed(e)) => {
                    self.eps[i].error.get_or_insert(e);
                }
                Err(SendError::Shutdown) => {}
            }
        }
        // Read.
        let ep = &self.eps[i];
        let errored = ep.error.is_some();
        let budget = match ep.read {
            _ if errored => usize::MAX,
            ReadStyle::Prompt => usize::MAX,
            ReadStyle::Slow { every, chunk } => {
                if now >= ep.next_read {
                    self.eps[i].next_read = now + Duration::from_millis(every);
                    chunk
                } else {
                    0
                }
            }
            ReadStyle::Late { after } => {
                if now >= ep.start + Duration::from_millis(after) {
                    usize::MAX
                } else {
                    0
                }
            }
        };
        let mut left = budget;
        let mut buf = [0u8; 4096];
        while left > 0 && !self.eps[i].eof {
            let want = left.min(buf.len());
            match self
                .world
                .with_stack(node, |s, now| s.recv(now, id, &mut buf[..want]))
            {
                Ok(0) => {
                    self.eps[i].eof = true;
                    self.eps[i].last_progress = now;
                }
                Ok(mut n) => {
                    let mut data = &buf[..n];
                    if self.bug_armed && n >= 2 {
                        self.bug_armed = false;
                        data = &buf[1..n];
                        n -= 1;
                    }
                    let ep = &mut self.eps[i];
                    let dir_in = 1 - ep.dir_out;
                    for (j, &b) in data.iter().enumerate() {
                        let off = ep.got + j;
                        if ep.bad_at.is_none()
                            && (off >= ep.expect_in || b != pattern(ep.conn, dir_in, off))
                        {
                            ep.bad_at = Some(off);
                        }
                    }
                    ep.got += n;
                    ep.last_progress = now;
                    left = left.saturating_sub(want);
                }
                Err(RecvError::WouldBlock) => break,
                Err(RecvError::Failed(e)) => {
                    self.eps[i].error.get_or_insert(e);
                    break;
                }
            }
        }
        // Plan.
        let ep = &self.eps[i];
        let all_written = ep.written == ep.to_write;
        if ep.error.is_some() {
            // Read what was left (above), then close.
            self.close(i);
            return;
        }
        match ep.plan {
            Plan::CloseAfterIo if all_written && ep.got >= ep.expect_in => self.close(i),
            Plan::CloseAfterEof | Plan::WriteAfterEof | Plan::AbortAt(_)
                if all_written && ep.eof =>
            {
                // An AbortAt endpoint that finished before its abort time closes normally.
                self.close(i)
            }
            Plan::ShutdownFirst if all_written && !ep.shut => {
                self.eps[i].shut = true;
                self.world
                    .with_stack(node, |s, now| s.shutdown(now, id, Shutdown::Write));
                if self.eps[i].eof {
                    self.close(i);
                }
            }
            Plan::ShutdownFirst if ep.shut && ep.eof => self.close(i),
            Plan::SimClose if ep.eof && all_written => {
                // The peer closed before we were ready to close together.
                self.close(i)
            }
            _ => {}
        }
        let ep = &self.eps[i];
        if !ep.finished() && now >= ep.last_progress + APP_PATIENCE {
            self.eps[i].gave_up = true;
            self.eps[i].aborted = true;
            self.world.with_stack(node, |s, now| s.abort(now, id));
        }
    }

    /// A server endpoint whose application never accepted its connection: whether the
    /// stack's half of it failed or was dropped (a half-open connection whose SYN-ACKs
    /// ran out, say) - the client may then wait forever, as on any TCP.
    fn unaccepted_failed(&self, i: usize) -> bool {
        let ep = &self.eps[i];
        let Some((local, remote)) = self.eps[i ^ 1].tuple else {
            return false;
        };
        ep.id.is_none()
            && self.log.get(&(ep.node, remote, local)).is_some_and(|v| {
                v.iter().any(|(_, e)| {
                    matches!(
                        e,
                        Event::Error(_)
                            | Event::StateChange {
                                to: State::Closed,
                                ..
                            }
                    )
                })
            })
    }

    fn check_end(&mut self, nodes: usize) {
        let mut fails = Vec::new();
        for k in 0..self.conns.len() {
            let style = self.conns[k].style;
            for (me, peer) in [(2 * k, 2 * k + 1), (2 * k + 1, 2 * k)] {
                let (w, r) = (&self.eps[me], &self.eps[peer]);
                let side = if w.dir_out == 0 { "c2s" } else { "s2c" };
                if let Some(off) = r.bad_at {
                    fails.push((
                        Invariant::Data,
                        format!("conn {k} {side}: wrong byte or extra byte at offset {off}"),
                    ));
                }
                let exempt = w.aborted || r.aborted || (w.failed() && r.failed()) || r.id.is_none();
                if !exempt && r.got != w.written {
                    fails.push((
                        Invariant::Data,
                        format!(
                            "conn {k} {side}: {} bytes written, {} read (writer error {:?}, reader error {:?})",
                            w.written, r.got, w.error, r.error
                        ),
                    ));
                }
            }
            for i in [2 * k, 2 * k + 1] {
                let ep = &self.eps[i];
                let who = if ep.dir_out == 0 { "client" } else { "server" };
                let peer = &self.eps[i ^ 1];
                if ep.gave_up && !peer.failed() && !self.unaccepted_failed(i ^ 1) {
                    fails.push((
                        Invariant::Stuck,
                        format!(
                            "conn {k} {who}: no progress for {:?} (wrote {}/{}, read {}/{}, eof {})",
                            APP_PATIENCE, ep.written, ep.to_write, ep.got, ep.expect_in, ep.eof
                        ),
                    ));
                }
                if style == CloseStyle::ListenerClosed
                    && i == 2 * k
                    && ep.error.is_none()
                    && !ep.gave_up
                {
                    fails.push((
                        Invariant::Close,
                        format!("conn {k}: listener closed, yet the client saw no error"),
                    ));
                }
                let Some((local, remote)) = ep.tuple else {
                    continue;
                };
                if !ep.finished() {
                    fails.push((
                        Invariant::Stuck,
                        format!("conn {k} {who}: application never finished"),
                    ));
                }
                if !ep.failed()
                    && !ep.eof
                    && ep.plan != Plan::CloseAfterIo
                    && ep.plan != Plan::SimClose
                {
                    fails.push((
                        Invariant::Close,
                        format!("conn {k} {who}: closed without error and without EOF"),
                    ));
                }
                let log = self
                    .log
                    .get(&(ep.node, local, remote))
                    .cloned()
                    .unwrap_or_default();
                let mut tw_since = None;
                let mut closed = false;
                for (t, e) in &log {
                    if let Event::StateChange { from, to, why } = *e {
                        if to == State::TimeWait {
                            tw_since = Some(*t);
                        }
                        if from == State::TimeWait {
                            let since = tw_since.unwrap_or(Instant::ZERO);
                            let lasted = t.saturating_since(since);
                            if why != Reason::Timer2Msl || lasted < MSL * 2 {
                                fails.push((
                                    Invariant::Close,
                                    format!(
                                        "conn {k} {who}: TIME_WAIT ended after {lasted:?} by {why}"
                                    ),
                                ));
                            }
                        }
                        if to == State::Closed {
                            closed = true;
                        }
                    }
                }
                if !closed {
                    fails.push((
                        Invariant::Close,
                        format!("conn {k} {who}: never reached CLOSED"),
                    ));
                }
            }
        }
        for n in 0..nodes {
            let s = self.world.stack(n);
            if s.connection_count() != 0 || !s.time_wait().is_empty() {
                let now = self.world.now();
                let ss: Vec<String> = s
                    .sockets(now)
                    .iter()
                    .filter(|i| i.state != State::Listen)
                    .map(|i| format!("{:?} {} -> {:?}", i.state, i.local, i.remote))
                    .collect();
                fails.push((
                    Invariant::Memory,
                    format!(
                        "node {n}: {} connections, {} TIME_WAIT records left: {}",
                        s.connection_count(),
                        s.time_wait().len(),
                        ss.join(", ")
                    ),
                ));
            }
        }
        for (i, d) in fails {
            self.fail(i, d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SimConfig {
        SimConfig {
            connections: 3,
            bytes: 3000,
            ..SimConfig::default()
        }
    }

    #[test]
    fn same_seed_same_run() {
        let a = run_seed(7, &small());
        let b = run_seed(7, &small());
        assert_eq!(a.digest, b.digest);
        assert_eq!(a.scenario, b.scenario);
        assert_ne!(a.digest, run_seed(8, &small()).digest);
    }

    /// Runs default, heavy-impairment and bulk seeds twice, as `cfg` and as `variant`
    /// makes it, and hands each pair (both passing) to `same`.
    fn both_ways(variant: fn(SimConfig) -> SimConfig, same: fn(&str, &SeedReport, &SeedReport)) {
        let heavy = SimConfig {
            loss: 0.2,
            reorder: 0.2,
            dup: 0.1,
            corrupt: 0.1,
            ..SimConfig::default()
        };
        let bulk = SimConfig {
            connections: 2,
            bytes: 300_000,
            ..SimConfig::default()
        };
        for (name, cfg, seeds) in [
            ("default", SimConfig::default(), 0..60),
            ("heavy", heavy, 0..40),
            ("bulk", bulk, 0..20),
        ] {
            for seed in seeds {
                let a = run_seed(seed, &cfg);
                let b = run_seed(seed, &variant(cfg.clone()));
                let at = format!("{name} seed {seed}: {}", a.scenario);
                assert!(
                    a.passed() && b.passed(),
                    "{at}: {:?} {:?}",
                    a.failures,
                    b.failures
                );
                same(&at, &a, &b);
            }
        }
    }

    #[test]
    fn batched_drivers_put_the_same_packets_on_the_link() {
        // Batched output (GSO-style bursts) and input (GRO-style runs) are promised to
        // be exactly one packet at a time, only cheaper: the same bytes at the same
        // times, whatever loss, reordering, duplication and corruption do.
        both_ways(
            |c| SimConfig { batch: true, ..c },
            |at, one, batched| {
                assert_eq!(one.packets, batched.packets, "{at}");
                assert_eq!(one.wire_digest, batched.wire_digest, "{at}");
            },
        );
    }

    #[test]
    fn header_prediction_changes_nothing_but_the_cost() {
        // The fast path for in-order data promises exactly the full path's effects:
        // with it off in every stack, every packet, event and time is the same.
        both_ways(
            |c| SimConfig {
                no_prediction: true,
                ..c
            },
            |at, on, off| assert_eq!(on.digest, off.digest, "{at}"),
        );
    }

    #[test]
    fn seeds_pass() {
        for seed in 0..30 {
            let r = run_seed(seed, &small());
            assert!(r.passed(), "{}: {:?}", r.scenario, r.failures);
        }
    }

    #[test]
    fn injected_bug_is_caught() {
        let cfg = SimConfig {
            bug: Some(InjectedBug::DropReceivedByte),
            ..small()
        };
        let caught = (0..20)
            .map(|s| run_seed(s, &cfg))
            .filter(|r| r.failures.iter().any(|f| f.invariant == Invariant::Data))
            .count();
        assert!(caught > 0);
    }

    #[test]
    fn shrink_finds_smaller_failing_bounds() {
        let cfg = SimConfig {
            connections: 4,
            bytes: 4000,
            bug: Some(InjectedBug::DropReceivedByte),
            ..SimConfig::default()
        };
        let seed = (0..50)
            .find(|&s| !run_seed(s, &cfg).passed())
            .expect("a failing seed");
        let (small, r) = shrink(seed, &cfg).expect("shrinks");
        assert!(!r.passed());
        assert!(small.connections <= cfg.connections && small.bytes <= cfg.bytes);
        assert!(small.connections < cfg.connections || small.bytes < cfg.bytes);
    }

    #[test]
    fn seq_checker_flags_an_ack_beyond_snd_max() {
        let mut c = SeqChecker::default();
        let info = |flags: u8, seq: u32, ack: u32, len: usize, ports| PacketInfo {
            from: 0,
            to: Some(1),
            flags: seqack::wire::tcp::Flags(flags),
            seq: Seq(seq),
            ack: Seq(ack),
            len,
            window: 1000,
            ports,
            is_tcp: true,
        };
        let syn = seqack::wire::tcp::Flags::SYN.0;
        let ack = seqack::wire::tcp::Flags::ACK.0;
        c.check(&info(syn, 100, 0, 0, (1, 2)), 1, 2);
        c.check(&info(syn | ack, 500, 101, 0, (2, 1)), 2, 1);
        c.check(&info(ack, 101, 501, 10, (1, 2)), 1, 2);
        assert!(c.failures.is_empty(), "{:?}", c.failures);
        // The server acknowledges 20 bytes when only 10 were sent.
        c.check(&info(ack, 501, 121, 0, (2, 1)), 2, 1);
        assert_eq!(c.failures.len(), 1);
        // Data starting past SND.MAX (a gap).
        c.check(&info(ack, 200, 501, 10, (1, 2)), 1, 2);
        assert_eq!(c.failures.len(), 2);
    }

    #[test]
    fn seq_checker_flags_what_a_state_forbids() {
        use seqack::wire::tcp::Flags;
        let mut c = SeqChecker::default();
        let info = |flags: Flags, seq: u32, ack: u32, len: usize, ports| PacketInfo {
            from: 0,
            to: Some(1),
            flags,
            seq: Seq(seq),
            ack: Seq(ack),
            len,
            window: 1000,
            ports,
            is_tcp: true,
        };
        let (a, b) = ((1, 2), (2, 1));
        // Checks one packet; returns the new failures' text.
        let check = |c: &mut SeqChecker, p: PacketInfo, src, dst| {
            let before = c.failures.len();
            c.check(&p, src, dst);
            c.failures[before..].join("; ")
        };
        assert_eq!(check(&mut c, info(Flags::SYN, 100, 0, 0, a), 1, 2), "");
        // A SYN-ACK acknowledging the wrong ISS.
        let f = check(&mut c, info(Flags::SYN | Flags::ACK, 500, 105, 0, b), 2, 1);
        assert!(f.contains("SYN-ACK acknowledges 105"), "{f}");
        assert_eq!(check(&mut c, info(Flags::ACK, 101, 501, 10, a), 1, 2), "");
        // Data without ACK in ESTABLISHED.
        let f = check(&mut c, info(Flags::PSH, 111, 0, 5, a), 1, 2);
        assert!(f.contains("without ACK"), "{f}");
        // FIN at 116 (after 15 bytes), retransmitted with the data before it: fine.
        let fin = Flags::FIN | Flags::ACK;
        assert_eq!(check(&mut c, info(fin, 116, 501, 0, a), 1, 2), "");
        assert_eq!(check(&mut c, info(fin, 111, 501, 5, a), 1, 2), "");
        // Data past the FIN (FIN_WAIT_1 sending new data).
        let f = check(&mut c, info(Flags::ACK, 116, 501, 3, a), 1, 2);
        assert!(f.contains("beyond the FIN"), "{f}");
        // The server resets, then sends data on the dead connection.
        let rst = Flags::RST | Flags::ACK;
        assert_eq!(check(&mut c, info(rst, 501, 117, 0, b), 2, 1), "");
        let f = check(&mut c, info(Flags::ACK, 501, 117, 4, b), 2, 1);
        assert!(f.contains("after this side sent an RST"), "{f}");
    }
}
