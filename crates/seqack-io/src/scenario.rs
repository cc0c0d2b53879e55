//! Scripted applications on the simulated link: the connection lifecycles that
//! `seqack demo` shows and the pair tests check.
//!
//! Each scenario gives a client and a server a short script of socket calls (connect,
//! send, read, shutdown, close, abort, wait). [`run`] plays both scripts against two
//! stacks on a [`World`], records every state change, and checks the outcome: every
//! byte delivered once and in order, both ends CLOSED, TIME_WAIT held for its full
//! 2MSL, and, on a lossless link, the exact state path RFC 9293 prescribes.

use crate::sim::{Filter, LinkConfig, PacketInfo, TraceEntry, World};
use seqack::stack::ss::SocketInfo;
use seqack::stack::{ConnId, ListenerId, StackConfig, StackEvent};
use seqack::tcp::{Error, Event, RecvError, Shutdown};
use seqack::wire::tcp::Flags;
use seqack::{Duration, Instant, Stack, State};
use std::fmt;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};

/// The scenarios, by name.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Handshake, data both ways, the client closes first: four-way close, TIME_WAIT.
    ActiveClose,
    /// The server closes first and holds TIME_WAIT.
    PassiveClose,
    /// The server answers the client's FIN with FIN+ACK in one segment.
    ThreeWayClose,
    /// Both sides send SYN at once: SYN_SENT -> SYN_RECEIVED on both.
    SimultaneousOpen,
    /// Both sides close at once: FIN_WAIT_1 -> CLOSING -> TIME_WAIT on both.
    SimultaneousClose,
    /// The client shuts down writing and keeps receiving data after its FIN.
    HalfClose,
    /// The client's last ACK is lost: LAST_ACK retransmits its FIN, TIME_WAIT re-ACKs.
    LostFinalAck,
    /// The client's first FIN is lost and retransmitted.
    LostFin,
    /// The client aborts with RST (SO_LINGER 0).
    RstAbort,
    /// A SYN to a port nobody listens on is answered with RST.
    Refused,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Scenario; 10] = [
        Scenario::ActiveClose,
        Scenario::PassiveClose,
        Scenario::ThreeWayClose,
        Scenario::SimultaneousOpen,
        Scenario::SimultaneousClose,
        Scenario::HalfClose,
        Scenario::LostFinalAck,
        Scenario::LostFin,
        Scenario::RstAbort,
        Scenario::Refused,
    ];

    /// The command-line name.
    pub const fn name(self) -> &'static str {
        match self {
            Scenario::ActiveClose => "active-close",
            Scenario::PassiveClose => "passive-close",
            Scenario::ThreeWayClose => "three-way-close",
            Scenario::SimultaneousOpen => "simultaneous-open",
            Scenario::SimultaneousClose => "simultaneous-close",
            Scenario::HalfClose => "half-close",
            Scenario::LostFinalAck => "lost-final-ack",
            Scenario::LostFin => "lost-fin",
            Scenario::RstAbort => "rst-abort",
            Scenario::Refused => "refused",
        }
    }

    /// Looks a scenario up by its command-line name.
    pub fn from_name(s: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|x| x.name() == s)
    }

    /// One line on what the scenario shows.
    pub const fn about(self) -> &'static str {
        match self {
            Scenario::ActiveClose => "three-way handshake, data both ways, client closes first (four-way close), TIME_WAIT expires",
            Scenario::PassiveClose => "the server closes first and holds TIME_WAIT; the client goes CLOSE_WAIT -> LAST_ACK",
            Scenario::ThreeWayClose => "the server answers the client's FIN with one FIN+ACK: FIN_WAIT_1 -> TIME_WAIT directly",
            Scenario::SimultaneousOpen => "both ends send SYN at once: SYN_SENT -> SYN_RECEIVED -> ESTABLISHED on both",
            Scenario::SimultaneousClose => "both ends close at once: FIN_WAIT_1 -> CLOSING -> TIME_WAIT on both",
            Scenario::HalfClose => "client shuts down writing; the server keeps sending after the first FIN",
            Scenario::LostFinalAck => "the last ACK is lost: LAST_ACK retransmits its FIN and TIME_WAIT answers it again",
            Scenario::LostFin => "the client's FIN is lost and retransmitted after the RTO",
            Scenario::RstAbort => "the client aborts with SO_LINGER 0: RST, no TIME_WAIT",
            Scenario::Refused => "SYN to a closed port is answered with RST: connection refused",
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How to run a scenario.
#[derive(Clone, Debug)]
pub struct Options {
    /// Which scenario.
    pub scenario: Scenario,
    /// Seed of the link's randomness and of both stacks' secrets.
    pub seed: u64,
    /// Link impairments (loss, delay, ...).
    pub link: LinkConfig,
    /// Maximum segment lifetime (TIME_WAIT is twice this).
    pub msl: Duration,
    /// Use IPv6 addresses instead of IPv4.
    pub ipv6: bool,
    /// Bytes the client sends (the request).
    pub request: usize,
    /// Bytes the server sends (the response).
    pub response: usize,
    /// Record the timeline of every segment (for ladders).
    pub trace: bool,
    /// Write every packet to this pcap file.
    pub pcap: Option<std::path::PathBuf>,
    /// Virtual times at which to take an `ss`-like snapshot of both stacks.
    pub snapshots: Vec<Instant>,
}

impl Options {
    /// Defaults for `scenario`: 10 ms one-way delay, no loss, Linux's 30 s MSL.
    pub fn new(scenario: Scenario) -> Options {
        Options {
            scenario,
            seed: 1,
            link: LinkConfig::default(),
            msl: Duration::from_secs(30),
            ipv6: false,
            request: 1000,
            response: 3000,
            trace: true,
            pcap: None,
            snapshots: Vec::new(),
        }
    }
}

/// Which endpoint.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The active opener.
    Client,
    /// The passive opener (the listener's side).
    Server,
}

impl Side {
    /// "client" or "server".
    pub const fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// One state change, as written to `--state-log`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateChange {
    /// Virtual time.
    pub t: Instant,
    /// Which endpoint.
    pub side: Side,
    /// Local address.
    pub local: SocketAddr,
    /// Remote address (unspecified with port 0 for a listener).
    pub remote: SocketAddr,
    /// State before.
    pub from: State,
    /// State after.
    pub to: State,
    /// Why.
    pub why: seqack::Reason,
}

/// What happened in a run.
pub struct Outcome {
    /// The options of the run.
    pub options: Options,
    /// Every state change, in order.
    pub states: Vec<StateChange>,
    /// Every segment and event (when tracing).
    pub trace: Vec<TraceEntry>,
    /// The node ids of client and server in the trace.
    pub nodes: (usize, usize),
    /// The connections' addresses, (client, server), once known.
    pub addrs: Option<(SocketAddr, SocketAddr)>,
    /// Bytes each side's application wrote, and read.
    pub client_sent: Vec<u8>,
    /// Bytes the server application wrote.
    pub server_sent: Vec<u8>,
    /// Bytes the client application read.
    pub client_received: Vec<u8>,
    /// Bytes the server application read.
    pub server_received: Vec<u8>,
    /// Errors the applications saw.
    pub client_error: Option<Error>,
    /// Error the server application saw.
    pub server_error: Option<Error>,
    /// Virtual time at the end.
    pub end: Instant,
    /// Counters of both stacks.
    pub counters: (seqack::Counters, seqack::Counters),
    /// What the link did.
    pub link: crate::sim::LinkStats,
    /// Every check that failed; empty when the scenario ended as expected.
    pub failures: Vec<String>,
    /// The snapshots asked for in [`Options::snapshots`]: (time, client's sockets,
    /// server's sockets).
    pub snapshots: Vec<Snapshot>,
}

/// Both stacks' sockets at one instant.
pub struct Snapshot {
    /// When it was taken (virtual time).
    pub t: Instant,
    /// The client stack's sockets.
    pub client: Vec<SocketInfo>,
    /// The server stack's sockets.
    pub server: Vec<SocketInfo>,
}

impl Outcome {
    /// True when every check passed.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }

    /// The state path of one side's connection (listener changes excluded).
    pub fn path(&self, side: Side) -> Vec<State> {
        let mut p = Vec::new();
        for c in self
            .states
            .iter()
            .filter(|c| c.side == side && c.remote.port() != 0)
        {
            if p.is_empty() {
                p.push(c.from);
            }
            p.push(c.to);
        }
        p
    }

    /// Time spent in TIME_WAIT by one side: (entered, left), if it was there.
    pub fn time_wait(&self, side: Side) -> Option<(Instant, Instant)> {
        let mine = || {
            self.states
                .iter()
                .filter(|c| c.side == side && c.remote.port() != 0)
        };
        let enter = mine().find(|c| c.to == State::TimeWait)?.t;
        let leave = mine().find(|c| c.from == State::TimeWait)?.t;
        Some((enter, leave))
    }
}

/// One socket call (or wait) in a side's script.
#[derive(Clone, Debug)]
enum Step {
    Listen,
    Accept,
    Connect {
        local_port: Option<u16>,
        remote_port: u16,
    },
    Send(usize),
    /// Read until this many bytes have arrived in total.
    Recv(usize),
    /// Read until end of stream.
    Eof,
    Shutdown,
    Close,
    /// SO_LINGER 0 then close(): RST.
    Abort,
    /// Wait until this long after the previous step finished.
    Sleep(Duration),
    /// Wait until an absolute time.
    At(Instant),
    /// Wait for the connection to fail with this error.
    ExpectError(Error),
}

struct App {
    side: Side,
    node: usize,
    script: Vec<Step>,
    pc: usize,
    conn: Option<ConnId>,
    listener: Option<ListenerId>,
    pattern_salt: u8,
    sent: Vec<u8>,
    received: Vec<u8>,
    error: Option<Error>,
    wake: Option<Instant>,
    step_started: Instant,
}

const CLIENT_PORT: u16 = 40000;
const SERVER_PORT: u16 = 80;

/// How long the side that closes second waits after end-of-file before it closes, in
/// the scenarios that show the four-way close: longer than the delayed-ACK time
/// (40 ms), so the ACK of the peer's FIN, which Linux delays, goes out on its own
/// before our FIN. An application that closes sooner sends one FIN+ACK instead (the
/// three-way close, `three-way-close`).
const CLOSE_PAUSE: Duration = Duration::from_millis(100);

/// The deterministic byte stream each side writes: byte `i` of side `salt`.
fn pattern_byte(salt: u8, i: usize) -> u8 {
    ((i * 31 + usize::from(salt) * 7) % 251) as u8
}

fn scripts(o: &Options) -> (Vec<Step>, Vec<Step>) {
    use Step::*;
    let (req, resp) = (o.request, o.response);
    let connect = Connect {
        local_port: Some(CLIENT_PORT),
        remote_port: SERVER_PORT,
    };
    let think = Sleep(Duration::from_millis(20));
    let linger = Sleep(CLOSE_PAUSE);
    match o.scenario {
        Scenario::ActiveClose | Scenario::LostFinalAck | Scenario::LostFin => (
            vec![connect, Send(req), Recv(resp), Close],
            vec![Listen, Accept, Recv(req), Send(resp), Eof, linger, Close],
        ),
        Scenario::PassiveClose => (
            vec![connect, Send(req), Recv(resp), Eof, linger, Close],
            vec![Listen, Accept, Recv(req), Send(resp), Close],
        ),
        Scenario::ThreeWayClose => (
            vec![connect, Send(req), Recv(resp), Close],
            vec![Listen, Accept, Recv(req), Send(resp), Eof, Close],
        ),
        Scenario::SimultaneousOpen => (
            vec![connect, Send(req), Recv(resp), Close],
            vec![
                Connect {
                    local_port: Some(SERVER_PORT),
                    remote_port: CLIENT_PORT,
                },
                Recv(req),
                Send(resp),
                Eof,
                linger,
                Close,
            ],
        ),
        Scenario::SimultaneousClose => {
            let t = At(Instant::from_secs(1));
            (
                vec![connect, Send(req), Recv(resp), t.clone(), Close, Eof],
                vec![Listen, Accept, Recv(req), Send(resp), t, Close, Eof],
            )
        }
        Scenario::HalfClose => (
            vec![connect, Send(req), Shutdown, Recv(resp * 3), Eof, Close],
            vec![
                Listen,
                Accept,
                Recv(req),
                Eof,
                Send(resp),
                think.clone(),
                Send(resp),
                think,
                Send(resp),
                Close,
            ],
        ),
        Scenario::RstAbort => (
            vec![connect, Send(req), Recv(resp), Abort],
            vec![
                Listen,
                Accept,
                Recv(req),
                Send(resp),
                ExpectError(Error::Reset),
                Close,
            ],
        ),
        Scenario::Refused => (
            vec![
                Connect {
                    local_port: Some(CLIENT_PORT),
                    remote_port: SERVER_PORT + 1,
                },
                ExpectError(Error::Refused),
                Close,
            ],
            vec![Listen],
        ),
    }
}

fn addrs(ipv6: bool) -> (IpAddr, IpAddr) {
    if ipv6 {
        (
            "fd00::1".parse().expect("literal"),
            "fd00::2".parse().expect("literal"),
        )
    } else {
        (
            "10.0.0.1".parse().expect("literal"),
            "10.0.0.2".parse().expect("literal"),
        )
    }
}

/// A filter that drops the client's first pure ACK after the server's FIN: the last ACK
/// of the close.
fn drop_final_ack(client: usize, server: usize) -> Filter {
    let mut server_fin = false;
    let mut done = false;
    Box::new(move |p: &PacketInfo| {
        if p.from == server && p.flags.fin() {
            server_fin = true;
        }
        if !done && server_fin && p.from == client && p.is_pure_ack() {
            done = true;
            return Some(crate::sim::Action::Drop);
        }
        None
    })
}

/// Runs a scenario to its end (or to a virtual-time limit) and checks the outcome.
pub fn run(o: &Options) -> Outcome {
    let (cip, sip) = addrs(o.ipv6);
    let mut tcp = seqack::Config {
        msl: o.msl,
        ..Default::default()
    };
    if o.link.loss > 0.0 || o.link.corrupt > 0.0 {
        // A lossy demo tests recovery, not giving up: allow more retries than Linux.
        tcp.syn_retries = 30;
        tcp.synack_retries = 30;
        tcp.orphan_retries = 30;
        tcp.retries2 = 30;
    }
    let stack = |seed: u64, ip: IpAddr| {
        let mut s = Stack::new(StackConfig {
            tcp: tcp.clone(),
            seed,
            ..Default::default()
        });
        s.add_address(ip);
        s
    };
    let mut world = World::new(o.seed, o.link.clone());
    if o.trace {
        world.record_trace();
    }
    let mut failures = Vec::new();
    if let Some(path) = &o.pcap {
        let opened = std::fs::File::create(path)
            .and_then(|f| world.set_pcap(Box::new(std::io::BufWriter::new(f))));
        if let Err(e) = opened {
            failures.push(format!("cannot write pcap {}: {e}", path.display()));
        }
    }
    let client = world.add_node("client", stack(o.seed.wrapping_mul(2) + 1, cip));
    let server = world.add_node("server", stack(o.seed.wrapping_mul(2) + 2, sip));
    match o.scenario {
        Scenario::LostFinalAck => world.add_filter(drop_final_ack(client, server)),
        Scenario::LostFin => world.add_filter(crate::sim::nth_matching(
            Some(client),
            1,
            |p| p.flags.fin(),
            crate::sim::Action::Drop,
        )),
        _ => {}
    }
    let (cs, ss) = scripts(o);
    let mut apps = [
        App::new(Side::Client, client, cs, 1),
        App::new(Side::Server, server, ss, 2),
    ];
    let ips = [cip, sip];
    let mut states = Vec::new();
    let mut addr_pair = None;
    // Bound the run in virtual time and in steps: a stuck connection is a failure, not a
    // hang.
    let limit = Instant::from_secs(3600);
    let mut steps = 0u64;
    let mut pending: Vec<Instant> = o.snapshots.clone();
    pending.sort();
    pending.reverse();
    let mut snapshots = Vec::new();
    // When the scenario ended, if snapshots are taken after that.
    let mut ended = None;
    loop {
        for app in apps.iter_mut() {
            app.advance(&mut world, ips);
        }
        while let Some((t, node, ev)) = world.poll_event() {
            let side = if node == client {
                Side::Client
            } else {
                Side::Server
            };
            record_event(&mut states, t, side, &ev, &mut addr_pair);
            for app in apps.iter_mut().filter(|a| a.node == node) {
                app.on_event(&ev);
            }
        }
        for app in apps.iter_mut() {
            app.advance(&mut world, ips);
        }
        world.flush();
        let app_wake = apps.iter().filter_map(|a| a.wake).min();
        let next = match (world.next_deadline(), app_wake) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(&t) = pending.last() {
            if next.is_none_or(|n| t <= n) {
                if next.is_none() {
                    ended.get_or_insert(world.now());
                }
                // Nothing happens before t: move there and look.
                world.step_to(t.max(world.now()));
                let now = world.now();
                snapshots.push(Snapshot {
                    t: now,
                    client: world.stack(client).sockets(now),
                    server: world.stack(server).sockets(now),
                });
                pending.pop();
                continue;
            }
        }
        let Some(next) = next else { break };
        if next > limit || steps > 5_000_000 {
            failures.push(format!("still running at {} (virtual): stuck", world.now()));
            break;
        }
        world.step_to(next);
        steps += 1;
    }
    let [c, s] = apps;
    for app in [&c, &s] {
        if app.pc < app.script.len() {
            failures.push(format!(
                "{} script stopped at step {:?}",
                app.side.name(),
                app.script[app.pc]
            ));
        }
    }
    if let Some(mut w) = world.take_pcap() {
        if let Err(e) = w.flush() {
            failures.push(format!("cannot write pcap: {e}"));
        }
    }
    let trace = world.trace().to_vec();
    let mut out = Outcome {
        options: o.clone(),
        states,
        trace,
        nodes: (client, server),
        addrs: addr_pair,
        client_sent: c.sent,
        server_sent: s.sent,
        client_received: c.received,
        server_received: s.received,
        client_error: c.error,
        server_error: s.error,
        end: ended.unwrap_or(world.now()),
        counters: (
            world.stack(client).counters().clone(),
            world.stack(server).counters().clone(),
        ),
        link: world.stats().clone(),
        failures,
        snapshots,
    };
    check(&mut out, &world);
    out
}

fn record_event(
    states: &mut Vec<StateChange>,
    t: Instant,
    side: Side,
    ev: &StackEvent,
    pair: &mut Option<(SocketAddr, SocketAddr)>,
) {
    let (local, remote, event) = match *ev {
        StackEvent::Conn {
            local,
            remote,
            event,
            ..
        } => {
            if pair.is_none() {
                *pair = Some(match side {
                    Side::Client => (local, remote),
                    Side::Server => (remote, local),
                });
            }
            (local, remote, event)
        }
        StackEvent::Listener { local, event, .. } => {
            let any: IpAddr = if local.is_ipv4() {
                [0u8; 4].into()
            } else {
                [0u16; 8].into()
            };
            (local, SocketAddr::new(any, 0), event)
        }
        StackEvent::TimeWait {
            local,
            remote,
            event,
        } => (local, remote, event),
        StackEvent::Incoming(_) => return,
    };
    if let Event::StateChange { from, to, why } = event {
        states.push(StateChange {
            t,
            side,
            local,
            remote,
            from,
            to,
            why,
        });
    }
}

impl App {
    fn new(side: Side, node: usize, script: Vec<Step>, salt: u8) -> App {
        App {
            side,
            node,
            script,
            pc: 0,
            conn: None,
            listener: None,
            pattern_salt: salt,
            sent: Vec::new(),
            received: Vec::new(),
            error: None,
            wake: None,
            step_started: Instant::ZERO,
        }
    }

    fn on_event(&mut self, ev: &StackEvent) {
        if let StackEvent::Conn {
            id,
            event: Event::Error(e),
            ..
        } = *ev
        {
            if Some(id) == self.conn {
                self.error = Some(e);
            }
        }
    }

    /// Runs steps until one blocks.
    fn advance(&mut self, w: &mut World, ips: [IpAddr; 2]) {
        let me = ips[self.node];
        let peer = ips[1 - self.node];
        while self.pc < self.script.len() {
            if !self.try_step(w, me, peer) {
                return;
            }
            self.pc += 1;
            self.step_started = w.now();
            self.wake = None;
        }
    }

    fn try_step(&mut self, w: &mut World, me: IpAddr, peer: IpAddr) -> bool {
        let now = w.now();
        let step = self.script[self.pc].clone();
        let node = self.node;
        match step {
            Step::Listen => {
                let l = w.with_stack(node, |s, _| s.listen(SocketAddr::new(me, SERVER_PORT), 8));
                self.listener = l.ok();
                true
            }
            Step::Accept => {
                let Some(l) = self.listener else { return false };
                match w.with_stack(node, |s, _| s.accept(l)) {
                    Some(id) => {
                        self.conn = Some(id);
                        true
                    }
                    None => false,
                }
            }
            Step::Connect {
                local_port,
                remote_port,
            } => {
                let local = local_port.map(|p| SocketAddr::new(me, p));
                let r = w.with_stack(node, |s, now| {
                    s.connect(now, local, SocketAddr::new(peer, remote_port))
                });
                self.conn = r.ok();
                true
            }
            Step::Send(n) => {
                let Some(id) = self.conn else { return true };
                let at = self.sent.len();
                let left = n - self.queued_this_step(n);
                let chunk: Vec<u8> = (at..at + left)
                    .map(|i| pattern_byte(self.pattern_salt, i))
                    .collect();
                match w.with_stack(node, |s, now| s.send(now, id, &chunk)) {
                    Ok(k) => {
                        self.sent.extend_from_slice(&chunk[..k]);
                        k == left
                    }
                    // The connection failed: the error shows in a later read.
                    Err(_) => true,
                }
            }
            Step::Recv(total) => self.read_until(w, Some(total)),
            Step::Eof => self.read_until(w, None),
            Step::Shutdown => {
                if let Some(id) = self.conn {
                    w.with_stack(node, |s, now| s.shutdown(now, id, Shutdown::Write));
                }
                true
            }
            Step::Close => {
                if let Some(id) = self.conn {
                    w.with_stack(node, |s, now| s.close(now, id));
                }
                true
            }
            Step::Abort => {
                if let Some(id) = self.conn {
                    w.with_stack(node, |s, now| {
                        s.with_conn(now, id, |c, _, _| c.sockopts_mut().linger_zero = true);
                        s.close(now, id)
                    });
                }
                true
            }
            Step::Sleep(d) => {
                let at = self.step_started + d;
                self.wait_until(now, at)
            }
            Step::At(at) => self.wait_until(now, at),
            Step::ExpectError(e) => {
                // Reading surfaces the error, as a socket's read would.
                let _ = self.read_until(w, None);
                self.error == Some(e)
            }
        }
    }

    /// Bytes of the current Send(n) step already queued.
    fn queued_this_step(&self, n: usize) -> usize {
        let before: usize = self.script[..self.pc]
            .iter()
            .map(|s| if let Step::Send(k) = s { *k } else { 0 })
            .sum();
        (self.sent.len() - before).min(n)
    }

    fn wait_until(&mut self, now: Instant, at: Instant) -> bool {
        if now >= at {
            true
        } else {
            self.wake = Some(at);
            false
        }
    }

    /// Reads what is there; true once `total` bytes arrived (or, with `None`, at EOF or
    /// on an error).
    fn read_until(&mut self, w: &mut World, total: Option<usize>) -> bool {
        let Some(id) = self.conn else { return true };
        let mut buf = [0u8; 4096];
        loop {
            if total.is_some_and(|t| self.received.len() >= t) {
                return true;
            }
            match w.with_stack(self.node, |s, now| s.recv(now, id, &mut buf)) {
                Ok(0) => return true,
                Ok(n) => self.received.extend_from_slice(&buf[..n]),
                Err(RecvError::WouldBlock) => return false,
                Err(RecvError::Failed(e)) => {
                    self.error = Some(e);
                    return true;
                }
            }
        }
    }
}

/// The state paths RFC 9293 prescribes for each scenario on a lossless link.
fn expected_paths(s: Scenario) -> (Vec<State>, Vec<State>) {
    use State::*;
    let active = vec![
        Closed,
        SynSent,
        Established,
        FinWait1,
        FinWait2,
        TimeWait,
        Closed,
    ];
    let passive = vec![Listen, SynReceived, Established, CloseWait, LastAck, Closed];
    match s {
        Scenario::ActiveClose
        | Scenario::HalfClose
        | Scenario::LostFinalAck
        | Scenario::LostFin => (active, passive),
        Scenario::PassiveClose => (
            vec![Closed, SynSent, Established, CloseWait, LastAck, Closed],
            vec![
                Listen,
                SynReceived,
                Established,
                FinWait1,
                FinWait2,
                TimeWait,
                Closed,
            ],
        ),
        Scenario::ThreeWayClose => (
            vec![Closed, SynSent, Established, FinWait1, TimeWait, Closed],
            passive,
        ),
        Scenario::SimultaneousOpen => (
            vec![
                Closed,
                SynSent,
                SynReceived,
                Established,
                FinWait1,
                FinWait2,
                TimeWait,
                Closed,
            ],
            vec![
                Closed,
                SynSent,
                SynReceived,
                Established,
                CloseWait,
                LastAck,
                Closed,
            ],
        ),
        Scenario::SimultaneousClose => {
            let p = vec![
                Closed,
                SynSent,
                Established,
                FinWait1,
                Closing,
                TimeWait,
                Closed,
            ];
            let q = vec![
                Listen,
                SynReceived,
                Established,
                FinWait1,
                Closing,
                TimeWait,
                Closed,
            ];
            (p, q)
        }
        Scenario::RstAbort => (
            vec![Closed, SynSent, Established, Closed],
            vec![Listen, SynReceived, Established, Closed],
        ),
        Scenario::Refused => (vec![Closed, SynSent, Closed], vec![]),
    }
}

fn check(out: &mut Outcome, world: &World) {
    let o = out.options.clone();
    let mut failures = Vec::new();
    let mut fail = |m: String| failures.push(m);
    // Every state change is one RFC 9293 allows, for the reason given.
    for c in &out.states {
        if !seqack::tcp::rfc9293_allows(c.from, c.to, c.why) {
            fail(format!(
                "{} {} -> {} ({}) is not an RFC 9293 transition",
                c.side.name(),
                c.from,
                c.to,
                c.why
            ));
        }
    }
    // Data: every byte delivered once, in order, uncorrupted (aborts lose what was in
    // flight by design, so there only what arrived must be a prefix).
    let exact = !matches!(o.scenario, Scenario::RstAbort | Scenario::Refused);
    for (what, sent, got) in [
        ("client->server", &out.client_sent, &out.server_received),
        ("server->client", &out.server_sent, &out.client_received),
    ] {
        if exact && sent != got {
            fail(format!(
                "{what}: {} bytes written, {} read, or contents differ",
                sent.len(),
                got.len()
            ));
        } else if !sent.starts_with(got) {
            fail(format!("{what}: bytes read are not what was written"));
        }
    }
    // Both ends CLOSED: no connection left on either stack.
    for (name, node) in [("client", out.nodes.0), ("server", out.nodes.1)] {
        let live: Vec<String> = world
            .stack(node)
            .connections()
            .filter(|(_, c)| c.state() != State::Closed)
            .map(|(_, c)| format!("{} {}", c.remote(), c.state()))
            .collect();
        if !live.is_empty() {
            fail(format!("{name} still has connections: {}", live.join(", ")));
        }
        let tw = world.stack(node).time_wait().len();
        if tw > 0 {
            fail(format!("{name} still has {tw} TIME_WAIT records"));
        }
    }
    // TIME_WAIT lasted at least 2MSL, and only the active closer(s) had it.
    let two_msl = o.msl * 2;
    for side in [Side::Client, Side::Server] {
        let path = out.path(side);
        let entered = path.contains(&State::TimeWait);
        if let Some((a, b)) = out.time_wait(side) {
            if b - a < two_msl {
                fail(format!(
                    "{} left TIME_WAIT after {:?}, less than 2MSL {:?}",
                    side.name(),
                    b - a,
                    two_msl
                ));
            }
        } else if entered {
            fail(format!(
                "{} entered TIME_WAIT but never left it",
                side.name()
            ));
        }
        if entered && !path.contains(&State::FinWait1) {
            fail(format!(
                "{} reached TIME_WAIT without closing first",
                side.name()
            ));
        }
    }
    // Errors the applications must (not) have seen.
    let (ce, se) = match o.scenario {
        Scenario::RstAbort => (Some(Error::Aborted), Some(Error::Reset)),
        Scenario::Refused => (Some(Error::Refused), None),
        _ => (None, None),
    };
    if o.link.loss == 0.0 && o.link.corrupt == 0.0 {
        if out.client_error != ce || out.server_error != se {
            fail(format!(
                "errors seen: client {:?}, server {:?}; expected {:?}, {:?}",
                out.client_error, out.server_error, ce, se
            ));
        }
    } else if ce.is_none() && (out.client_error.is_some() || out.server_error.is_some()) {
        fail(format!(
            "errors seen: client {:?}, server {:?}",
            out.client_error, out.server_error
        ));
    }
    // On a clean link the path is exactly the one the RFC draws.
    let clean = o.link.loss == 0.0
        && o.link.corrupt == 0.0
        && o.link.duplicate == 0.0
        && o.link.jitter.is_zero();
    if clean {
        let (ec, es) = expected_paths(o.scenario);
        for (side, exp) in [(Side::Client, ec), (Side::Server, es)] {
            let got = out.path(side);
            if got != exp {
                fail(format!(
                    "{} went {}; RFC 9293 path is {}",
                    side.name(),
                    names(&got),
                    names(&exp)
                ));
            }
        }
    }
    out.failures.extend(failures);
    if clean {
        scenario_specific(out);
    }
}

/// Checks of what makes each lossy scenario what it is.
fn scenario_specific(out: &mut Outcome) {
    let (client, server) = out.nodes;
    let fins = |node: usize| {
        out.trace
            .iter()
            .filter(|e| matches!(e, TraceEntry::Sent { info, .. } if info.from == node && info.flags.fin()))
            .count()
    };
    // The segments from the first FIN on, as (sender, flags): the shape of the close.
    let close: Vec<(usize, Flags)> = out
        .trace
        .iter()
        .filter_map(|e| match e {
            TraceEntry::Sent { info, .. } => Some((info.from, info.flags)),
            _ => None,
        })
        .skip_while(|(_, f)| !f.fin())
        .collect();
    let (fin, ack) = (Flags::FIN | Flags::ACK, Flags::ACK);
    let mut msgs = Vec::new();
    match out.options.scenario {
        // Four-way: the server's ACK of the client's FIN goes before its own FIN (the
        // server closes after the delayed-ACK time).
        Scenario::ActiveClose if out.options.trace => {
            let want = [(client, fin), (server, ack), (server, fin), (client, ack)];
            if close != want {
                msgs.push(format!("not a four-way close: {close:?}"));
            }
        }
        // Three-way: the server's FIN carries the ACK of the client's FIN, and no pure
        // ACK goes before or after it.
        Scenario::ThreeWayClose if out.options.trace => {
            let want = [(client, fin), (server, fin), (client, ack)];
            if close != want {
                msgs.push(format!("not a three-way close: {close:?}"));
            }
        }
        Scenario::LostFinalAck if fins(server) < 2 => {
            msgs.push("server's FIN was not retransmitted".to_string())
        }
        Scenario::LostFin if fins(client) < 2 => {
            msgs.push("client's FIN was not retransmitted".to_string())
        }
        Scenario::HalfClose => {
            // Data must flow from the server after the client's FIN.
            let mut client_fin = false;
            let mut after = 0;
            for e in &out.trace {
                if let TraceEntry::Sent { info, .. } = e {
                    if info.from == client && info.flags.fin() {
                        client_fin = true;
                    } else if client_fin && info.from == server && info.len > 0 {
                        after += info.len;
                    }
                }
            }
            if after == 0 {
                msgs.push("no data flowed after the first FIN".to_string());
            }
        }
        _ => {}
    }
    out.failures.extend(msgs);
}

fn names(p: &[State]) -> String {
    p.iter().map(|s| s.name()).collect::<Vec<_>>().join(" -> ")
}
