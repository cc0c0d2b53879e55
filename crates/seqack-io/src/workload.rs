//! Workloads at scale on the simulated link, shared by the tests and by
//! `seqack stack-bench`: a SYN flood against a small backlog with legitimate clients in
//! it ([`syn_flood`]), a million short connections from one client through TIME_WAIT
//! ([`time_wait`]), and a hundred thousand concurrent connections on one server
//! ([`many_connections`]).
//!
//! Each runs in virtual time, checks what it must as it goes (bytes intact, TIME_WAIT's
//! length, the port-reuse rule) and returns a report: the tests assert on it, the
//! benchmark prints figures from it. Each calls an observer at its milestones
//! ([`Milestone`]), where the benchmark reads its allocator. Nothing here records a
//! trace: the timeline of a million connections would not fit in memory.

use crate::sim::{LinkConfig, NodeId, World};
use seqack::stack::{ConnId, ListenerId, StackConfig, StackEvent};
use seqack::tcp::{write_packet, RecvError};
use seqack::wire::tcp::{Flags, Header, OptionLayout, Options};
use seqack::wire::Seq;
use seqack::{Counters, Duration, Event, Instant, Reason, Stack, State};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// A point in a workload at which its observer is called.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Milestone {
    /// The world is built, the listeners are open and the driver's own bookkeeping is
    /// allocated; no connection exists yet.
    Ready,
    /// Every connection is established on both ends and no data has moved yet (only
    /// [`many_connections`] has this milestone).
    Established,
    /// The workload is over.
    Done,
}

/// What a workload calls at each [`Milestone`].
pub type Observer<'a> = &'a mut dyn FnMut(Milestone, &World);

/// Checks that failed during a run: how many, and the first few in words.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Failures {
    /// Failed checks.
    pub count: usize,
    /// The first [`Failures::KEPT`] of them.
    pub first: Vec<String>,
}

impl Failures {
    /// How many failures are kept in words.
    pub const KEPT: usize = 10;

    /// True when every check passed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn add(&mut self, what: impl FnOnce() -> String) {
        self.count += 1;
        if self.first.len() < Self::KEPT {
            self.first.push(what());
        }
    }
}

impl fmt::Display for Failures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed checks", self.count)?;
        for w in &self.first {
            write!(f, "\n  {w}")?;
        }
        Ok(())
    }
}

/// A workload size from the environment variable `name` (as the load tests let a
/// developer scale them), or `default` when it is unset or not a number.
pub fn size_from_env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Segments received and sent by every stack of a world (TcpInSegs + TcpOutSegs).
pub fn segments(world: &World, nodes: &[NodeId]) -> u64 {
    nodes
        .iter()
        .map(|&n| {
            let c = world.stack(n).counters();
            c.in_segs + c.out_segs
        })
        .sum()
}

fn stack(ip: IpAddr, cfg: StackConfig) -> Stack {
    let mut s = Stack::new(cfg);
    s.add_address(ip);
    s
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("a literal address")
}

/// An application on top of a world's stacks, driven by [`drive`].
trait App {
    /// One stack event, at time `t` on `node`; the application may issue commands.
    fn event(&mut self, world: &mut World, t: Instant, node: NodeId, ev: StackEvent);
    /// After the events of a step: start new work. False stops the drive.
    fn step(&mut self, world: &mut World) -> bool;
    /// After the stacks sent what they had (samples are taken here).
    fn sent(&mut self, _world: &World) {}
    /// A time the application wants to run at, besides the world's own deadlines.
    fn wake(&self) -> Option<Instant> {
        None
    }
}

/// Runs the world from deadline to deadline, letting `app` react to every event at the
/// instant it happens (its replies share segments with the stacks' own, as in
/// [`World::step_to`]). Returns when `app` says stop or nothing is left to happen.
fn drive(world: &mut World, app: &mut impl App) {
    loop {
        while let Some((t, node, ev)) = world.poll_event() {
            app.event(world, t, node, ev);
        }
        if !app.step(world) {
            return;
        }
        while let Some((t, node, ev)) = world.poll_event() {
            app.event(world, t, node, ev);
        }
        world.flush();
        app.sent(world);
        let next = match (world.next_deadline(), app.wake()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match next {
            Some(t) => world.step_to(t),
            None => return,
        }
    }
}

/// Reads everything readable on a connection into `scratch`, handing each chunk to
/// `got`. Returns `Some(true)` at end of stream, `Some(false)` when nothing more is
/// readable now, `None` when the connection failed.
fn read_all(
    world: &mut World,
    node: NodeId,
    id: ConnId,
    scratch: &mut [u8],
    mut got: impl FnMut(&[u8]),
) -> Option<bool> {
    loop {
        match world.with_stack(node, |s, now| s.recv(now, id, scratch)) {
            Ok(0) => return Some(true),
            Ok(n) => got(&scratch[..n]),
            Err(RecvError::WouldBlock) => return Some(false),
            Err(RecvError::Failed(_)) => return None,
        }
    }
}

/// The byte at `offset` of the stream that `key` names: every stream of a workload has
/// its own, so a byte delivered to the wrong connection or offset is caught.
fn pattern(key: u64, offset: usize) -> u8 {
    let x = (key ^ offset as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (x >> 56) as u8
}

/// The key of the stream from `from` to `to`.
fn stream_key(from: SocketAddr, to: SocketAddr) -> u64 {
    let fold = |a: SocketAddr| match a.ip() {
        IpAddr::V4(v) => u64::from(u32::from(v)) << 16 | u64::from(a.port()),
        IpAddr::V6(v) => (u128::from(v) as u64) << 16 | u64::from(a.port()),
    };
    fold(from).wrapping_mul(0x1000_0000_01b3) ^ fold(to)
}

// ----- SYN flood ---------------------------------------------------------------------

/// The SYN flood: spoofed SYNs from random sources against one listener, with
/// legitimate clients starting among them. Both are spread evenly over
/// [`FloodConfig::spread`] of virtual time.
#[derive(Clone, Debug)]
pub struct FloodConfig {
    /// Spoofed SYNs.
    pub syns: usize,
    /// Legitimate clients, each exchanging `request` bytes each way.
    pub clients: usize,
    /// The listener's backlog.
    pub backlog: usize,
    /// Bytes each client sends and receives.
    pub request: usize,
    /// Time over which the SYNs and the clients are spread.
    pub spread: Duration,
    /// Seed of the world.
    pub seed: u64,
}

impl Default for FloodConfig {
    /// The size: 1,000,000 SYNs, 1,000 clients, backlog 128, over 10 s.
    fn default() -> FloodConfig {
        FloodConfig {
            syns: 1_000_000,
            clients: 1_000,
            backlog: 128,
            request: 100,
            spread: Duration::from_secs(10),
            seed: 42,
        }
    }
}

/// What a [`syn_flood`] run did.
#[derive(Clone, Debug)]
pub struct FloodReport {
    /// Spoofed SYNs sent.
    pub syns_sent: usize,
    /// Legitimate clients started.
    pub clients: usize,
    /// Clients that connected, sent their request and read the whole answer.
    pub served: usize,
    /// The most connections the server held at once.
    pub server_peak_connections: usize,
    /// The server's counters at the end.
    pub server: Counters,
    /// Segments received and sent by all stacks.
    pub segments: u64,
    /// Virtual time at the end.
    pub end: Instant,
    /// Checks that failed.
    pub failures: Failures,
}

impl FloodReport {
    /// Fraction of legitimate clients served.
    pub fn success_rate(&self) -> f64 {
        if self.clients == 0 {
            1.0
        } else {
            self.served as f64 / self.clients as f64
        }
    }
}

/// Runs the SYN flood. Jitter on the link breaks the lockstep of the periodic schedule
/// (where each client's final ACK would free a SYN-queue slot just as its next SYN
/// arrives), so legitimate SYNs meet a SYN queue the flood keeps full and come in
/// through SYN cookies, as on a real network.
pub fn syn_flood(cfg: &FloodConfig, observe: Observer<'_>) -> FloodReport {
    let link = LinkConfig {
        delay: Duration::from_millis(5),
        jitter: Duration::from_millis(3),
        ..LinkConfig::default()
    };
    let mut world = World::new(cfg.seed, link);
    let node = |world: &mut World, name, addr, seed| {
        let cfg = StackConfig {
            seed,
            ..Default::default()
        };
        world.add_node(name, stack(ip(addr), cfg))
    };
    let server = node(&mut world, "server", "10.0.0.2", 2);
    let client = node(&mut world, "client", "10.0.0.1", 1);
    let attacker = node(&mut world, "attacker", "10.9.9.9", 3);
    let target = SocketAddr::new(ip("10.0.0.2"), 80);
    let listener = world
        .with_stack(server, |s, _| s.listen(target, cfg.backlog))
        .expect("listen");
    let mut app = Flood {
        cfg: cfg.clone(),
        server,
        client,
        attacker,
        target,
        listener,
        ticks: (cfg.spread.as_millis() as u64).max(1),
        tick: 0,
        rng: 0x2545_f491_4f6c_dd1d,
        syns_sent: 0,
        started: 0,
        served: 0,
        given_up: 0,
        clients: HashMap::new(),
        requests: HashMap::new(),
        peak: 0,
        scratch: vec![0; 4096],
        failures: Failures::default(),
    };
    observe(Milestone::Ready, &world);
    drive(&mut world, &mut app);
    if app.served + app.given_up < cfg.clients {
        let (served, clients) = (app.served, cfg.clients);
        app.failures
            .add(|| format!("only {served} of {clients} clients finished"));
    }
    observe(Milestone::Done, &world);
    FloodReport {
        syns_sent: app.syns_sent,
        clients: app.started,
        served: app.served,
        server_peak_connections: app.peak,
        server: world.stack(server).counters().clone(),
        segments: segments(&world, &[server, client, attacker]),
        end: world.now(),
        failures: app.failures,
    }
}

struct Flood {
    cfg: FloodConfig,
    server: NodeId,
    client: NodeId,
    attacker: NodeId,
    target: SocketAddr,
    listener: ListenerId,
    /// Milliseconds of the spread.
    ticks: u64,
    /// The next millisecond at which SYNs and clients start.
    tick: u64,
    rng: u64,
    syns_sent: usize,
    started: usize,
    served: usize,
    given_up: usize,
    /// Client connections, with the bytes of the answer read so far.
    clients: HashMap<ConnId, usize>,
    /// Server connections, with the bytes of the request read so far.
    requests: HashMap<ConnId, usize>,
    peak: usize,
    scratch: Vec<u8>,
    failures: Failures,
}

impl Flood {
    /// How many of `total` are due by the end of millisecond `tick` (an even spread).
    fn due(&self, total: usize, tick: u64) -> usize {
        ((tick + 1) * total as u64 / self.ticks) as usize
    }

    fn next_rng(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn on_client(&mut self, world: &mut World, id: ConnId, local: SocketAddr, ev: Event) {
        let Some(&read) = self.clients.get(&id) else {
            return;
        };
        match ev {
            Event::Connected => {
                let key = stream_key(local, self.target);
                let req: Vec<u8> = (0..self.cfg.request).map(|i| pattern(key, i)).collect();
                let sent = world.with_stack(self.client, |s, now| s.send(now, id, &req));
                if sent != Ok(req.len()) {
                    self.failures
                        .add(|| format!("client {local}: send returned {sent:?}"));
                }
            }
            Event::Readable => {
                let key = stream_key(self.target, local);
                let mut n = read;
                let mut bad = false;
                let end = read_all(world, self.client, id, &mut self.scratch, |b| {
                    bad |= b.iter().enumerate().any(|(i, &x)| x != pattern(key, n + i));
                    n += b.len();
                });
                if bad || n > self.cfg.request {
                    self.failures
                        .add(|| format!("client {local}: answer corrupted or too long"));
                }
                self.clients.insert(id, n);
                match end {
                    Some(true) if n == self.cfg.request => {
                        world.with_stack(self.client, |s, now| s.close(now, id));
                        self.clients.remove(&id);
                        self.served += 1;
                    }
                    Some(true) => {
                        self.failures
                            .add(|| format!("client {local}: end of stream after {n} bytes"));
                        world.with_stack(self.client, |s, now| s.close(now, id));
                        self.clients.remove(&id);
                        self.given_up += 1;
                    }
                    Some(false) => {}
                    None => self.client_failed(id),
                }
            }
            Event::Error(e) => {
                self.failures.add(|| format!("client {local}: {e}"));
                self.client_failed(id);
            }
            _ => {}
        }
    }

    fn client_failed(&mut self, id: ConnId) {
        if self.clients.remove(&id).is_some() {
            self.given_up += 1;
        }
    }

    fn on_server(&mut self, world: &mut World, id: ConnId, remote: SocketAddr, ev: Event) {
        let Some(&read) = self.requests.get(&id) else {
            return;
        };
        if ev != Event::Readable {
            return;
        }
        let key = stream_key(remote, self.target);
        let mut n = read;
        let mut bad = false;
        let end = read_all(world, self.server, id, &mut self.scratch, |b| {
            bad |= b.iter().enumerate().any(|(i, &x)| x != pattern(key, n + i));
            n += b.len();
        });
        if bad || n > self.cfg.request {
            self.failures
                .add(|| format!("server, from {remote}: request corrupted or too long"));
        }
        self.requests.insert(id, n);
        if n == self.cfg.request {
            // The whole request: answer and close.
            let key = stream_key(self.target, remote);
            let ans: Vec<u8> = (0..self.cfg.request).map(|i| pattern(key, i)).collect();
            world.with_stack(self.server, |s, now| {
                let _ = s.send(now, id, &ans);
                s.close(now, id);
            });
            self.requests.remove(&id);
        } else if end != Some(false) {
            self.failures
                .add(|| format!("server, from {remote}: request cut at {n} bytes"));
            world.with_stack(self.server, |s, now| s.close(now, id));
            self.requests.remove(&id);
        }
    }
}

impl App for Flood {
    fn event(&mut self, world: &mut World, _t: Instant, node: NodeId, ev: StackEvent) {
        match ev {
            StackEvent::Incoming(l) if node == self.server && l == self.listener => {
                while let Some(id) = world.with_stack(self.server, |s, _| s.accept(l)) {
                    self.requests.insert(id, 0);
                    // Data may have come with the handshake's last ACK, before accept().
                    let remote = world
                        .stack(self.server)
                        .conn(id)
                        .expect("accepted")
                        .remote();
                    self.on_server(world, id, remote, Event::Readable);
                }
            }
            StackEvent::Conn {
                id,
                local,
                remote,
                event,
            } => {
                if node == self.client {
                    self.on_client(world, id, local, event);
                } else if node == self.server {
                    self.on_server(world, id, remote, event);
                }
            }
            _ => {}
        }
    }

    fn step(&mut self, world: &mut World) -> bool {
        // Start what is due by the current millisecond.
        while self.tick < self.ticks && Instant::from_millis(self.tick) <= world.now() {
            let syns = self.due(self.cfg.syns, self.tick);
            while self.syns_sent < syns {
                let r = self.next_rng();
                let src = SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::from((r >> 16) as u32 | 0x0100_0000)),
                    (r as u16) | 1024,
                );
                world.inject(self.attacker, syn(src, self.target, Seq(r as u32)));
                self.syns_sent += 1;
            }
            let clients = self.due(self.cfg.clients, self.tick);
            while self.started < clients {
                let target = self.target;
                match world.with_stack(self.client, |s, now| s.connect(now, None, target)) {
                    Ok(id) => {
                        self.clients.insert(id, 0);
                    }
                    Err(e) => {
                        self.failures.add(|| format!("connect: {e}"));
                        self.given_up += 1;
                    }
                }
                self.started += 1;
            }
            self.tick += 1;
        }
        self.tick < self.ticks || self.served + self.given_up < self.cfg.clients
    }

    fn sent(&mut self, world: &World) {
        self.peak = self.peak.max(world.stack(self.server).connection_count());
    }

    fn wake(&self) -> Option<Instant> {
        (self.tick < self.ticks).then(|| Instant::from_millis(self.tick))
    }
}

/// A bare SYN from `src` (spoofed) to `dst`.
fn syn(src: SocketAddr, dst: SocketAddr, isn: Seq) -> Vec<u8> {
    let hdr = Header {
        src_port: src.port(),
        dst_port: dst.port(),
        seq: isn,
        flags: Flags::SYN,
        window: 64240,
        options: Options {
            mss: Some(1460),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut b = vec![0u8; 80];
    let n = write_packet(&mut b, src, dst, &hdr, OptionLayout::Linux, (&[], &[]), 64)
        .expect("a SYN fits in 80 bytes");
    b.truncate(n);
    b
}

// ----- TIME_WAIT ---------------------------------------------------------------------

/// Short connections from one client stack, each through TIME_WAIT on the client.
#[derive(Clone, Debug)]
pub struct TimeWaitConfig {
    /// Connections, in all.
    pub conns: usize,
    /// Most connections open at once (started and not yet in TIME_WAIT).
    pub in_flight: usize,
    /// Server ports the connections are spread over (the ephemeral range holds 28,232
    /// 4-tuples per server port, so 1,000,000 TIME_WAIT records need 36 or more).
    pub server_ports: u16,
    /// Seed of the world.
    pub seed: u64,
}

impl Default for TimeWaitConfig {
    /// The size: 1,000,000 connections, 2,000 at a time, over 64 server ports.
    fn default() -> TimeWaitConfig {
        TimeWaitConfig {
            conns: 1_000_000,
            in_flight: 2_000,
            server_ports: 64,
            seed: 7,
        }
    }
}

/// What a [`time_wait`] run did.
#[derive(Clone, Debug)]
pub struct TimeWaitReport {
    /// Connections started.
    pub conns: usize,
    /// Clients that read the right 1-byte answer and closed.
    pub served: usize,
    /// Server connections that read the right 1-byte request, answered, closed on end
    /// of stream and reached CLOSED.
    pub server_closed: usize,
    /// Client connections that entered TIME_WAIT.
    pub entered: usize,
    /// TIME_WAIT records that ended by the 2MSL timer, 2MSL (to the next millisecond)
    /// after their connection entered TIME_WAIT.
    pub expired_on_time: usize,
    /// The most TIME_WAIT records the client held at once.
    pub peak_records: usize,
    /// The most connections that entered TIME_WAIT within 2MSL of each other: what
    /// `peak_records` must be.
    pub expected_peak: usize,
    /// The client's TIME_WAIT table's `memory_bytes()` when it held `peak_records`.
    pub memory_at_peak: usize,
    /// From the first connection entering TIME_WAIT to the last.
    pub enter_span: Duration,
    /// TIME_WAIT records left at the end.
    pub final_records: usize,
    /// Client connections left at the end.
    pub final_client_connections: usize,
    /// Server connections left at the end.
    pub final_server_connections: usize,
    /// Connections the server still lists in `Stack::connections()` at the end, CLOSED
    /// ones included: more than `final_server_connections` when closed connections
    /// keep their slot.
    pub final_server_listed: usize,
    /// The client's counters at the end.
    pub client: Counters,
    /// Segments received and sent by both stacks.
    pub segments: u64,
    /// Virtual time at the end.
    pub end: Instant,
    /// Checks that failed.
    pub failures: Failures,
}

/// Base of the server ports of [`time_wait`] and [`many_connections`].
const SERVER_PORT: u16 = 10_000;

/// Runs `cfg.conns` short connections from one client: connect, a 1-byte request, a
/// 1-byte answer, the client closes first (and so holds TIME_WAIT), the server closes
/// on end of stream. A new connection starts whenever one enters TIME_WAIT. Checked
/// on the way: the bytes; every record ends by its 2MSL timer exactly 2MSL after its
/// connection entered TIME_WAIT (rounded up to the millisecond, never earlier); no
/// connect() ever gets a 4-tuple that is in TIME_WAIT.
pub fn time_wait(cfg: &TimeWaitConfig, observe: Observer<'_>) -> TimeWaitReport {
    let link = LinkConfig {
        delay: Duration::from_millis(1),
        jitter: Duration::from_micros(500),
        ..LinkConfig::default()
    };
    let mut world = World::new(cfg.seed, link);
    let stack_cfg = |seed| StackConfig {
        seed,
        max_tw_buckets: cfg.conns.max(StackConfig::default().max_tw_buckets),
        ..Default::default()
    };
    let client = world.add_node("client", stack(ip("10.0.0.1"), stack_cfg(1)));
    let server = world.add_node("server", stack(ip("10.0.0.2"), stack_cfg(2)));
    let ports = cfg.server_ports.max(1);
    let mut listeners = Vec::new();
    for p in 0..ports {
        let addr = SocketAddr::new(ip("10.0.0.2"), SERVER_PORT + p);
        listeners.push(world.with_stack(server, |s, _| s.listen(addr, 1024).expect("listen")));
    }
    let (lo, hi) = stack_cfg(1).ephemeral_ports;
    let time_wait_len = world.stack(client).config().time_wait_len();
    let mut app = TimeWait {
        cfg: cfg.clone(),
        client,
        server,
        listeners,
        ephemeral: (lo, hi),
        time_wait_len,
        entered_at: vec![NOT_IN_TIME_WAIT; usize::from(ports) * (usize::from(hi - lo) + 1)],
        enters: Vec::with_capacity(cfg.conns),
        started: 0,
        finished: 0,
        served: 0,
        server_closed: 0,
        expired_on_time: 0,
        clients: HashSet::new(),
        servers: HashMap::new(),
        peak: 0,
        memory_at_peak: 0,
        scratch: [0; 16],
        failures: Failures::default(),
    };
    observe(Milestone::Ready, &world);
    drive(&mut world, &mut app);
    observe(Milestone::Done, &world);
    let a = app;
    TimeWaitReport {
        conns: a.started,
        served: a.served,
        server_closed: a.server_closed,
        entered: a.enters.len(),
        expired_on_time: a.expired_on_time,
        peak_records: a.peak,
        expected_peak: most_within(&a.enters, a.time_wait_len),
        memory_at_peak: a.memory_at_peak,
        enter_span: match (a.enters.first(), a.enters.last()) {
            (Some(&f), Some(&l)) => l - f,
            _ => Duration::ZERO,
        },
        final_records: world.stack(client).time_wait().len(),
        final_client_connections: world.stack(client).connection_count(),
        final_server_connections: world.stack(server).connection_count(),
        final_server_listed: world.stack(server).connections().count(),
        client: world.stack(client).counters().clone(),
        segments: segments(&world, &[client, server]),
        end: world.now(),
        failures: a.failures,
    }
}

/// The largest number of `times` (sorted) that lie within less than `window` of each
/// other: how many records of length `window` that started at those times coexist at
/// most.
fn most_within(times: &[Instant], window: Duration) -> usize {
    let mut first = 0;
    let mut most = 0;
    for (j, &t) in times.iter().enumerate() {
        while t - times[first] >= window {
            first += 1;
        }
        most = most.max(j + 1 - first);
    }
    most
}

const NOT_IN_TIME_WAIT: Instant = Instant::from_micros(u64::MAX);

struct TimeWait {
    cfg: TimeWaitConfig,
    client: NodeId,
    server: NodeId,
    listeners: Vec<ListenerId>,
    ephemeral: (u16, u16),
    time_wait_len: Duration,
    /// When each 4-tuple (server port, client port) entered TIME_WAIT, for those in it:
    /// the driver's own view, independent of the stack's table.
    entered_at: Vec<Instant>,
    /// When each connection entered TIME_WAIT, in order.
    enters: Vec<Instant>,
    started: usize,
    /// Connections that entered TIME_WAIT or failed.
    finished: usize,
    served: usize,
    server_closed: usize,
    expired_on_time: usize,
    /// Client connections waiting for their answer.
    clients: HashSet<ConnId>,
    /// Server connections, with whether their request has arrived.
    servers: HashMap<ConnId, bool>,
    peak: usize,
    memory_at_peak: usize,
    scratch: [u8; 16],
    failures: Failures,
}

impl TimeWait {
    /// Index of a client-side 4-tuple in `entered_at`, if it is one of this workload's.
    fn tuple(&self, local: SocketAddr, remote: SocketAddr) -> Option<usize> {
        let (lo, hi) = self.ephemeral;
        let sp = remote.port().checked_sub(SERVER_PORT)?;
        if sp >= self.cfg.server_ports.max(1) || !(lo..=hi).contains(&local.port()) {
            return None;
        }
        Some(usize::from(sp) * (usize::from(hi - lo) + 1) + usize::from(local.port() - lo))
    }

    fn request(client: SocketAddr, server: SocketAddr) -> u8 {
        pattern(stream_key(client, server), 0)
    }

    fn on_client(&mut self, world: &mut World, t: Instant, ev: StackEvent) {
        let Some((local, remote, event)) = ev.conn_event() else {
            return;
        };
        match (ev, event) {
            (StackEvent::Conn { id, .. }, Event::Connected) if self.clients.contains(&id) => {
                let req = [Self::request(local, remote)];
                let sent = world.with_stack(self.client, |s, now| s.send(now, id, &req));
                if sent != Ok(1) {
                    self.failures
                        .add(|| format!("client {local}: send returned {sent:?}"));
                }
            }
            (StackEvent::Conn { id, .. }, Event::Readable) if self.clients.contains(&id) => {
                let mut answer = Vec::new();
                let end = read_all(world, self.client, id, &mut self.scratch, |b| {
                    answer.extend_from_slice(b)
                });
                let want = !Self::request(local, remote);
                if answer.is_empty() && end == Some(false) {
                    return;
                }
                if answer == [want] && end.is_some() {
                    self.served += 1;
                } else {
                    self.failures
                        .add(|| format!("client {local}: answer {answer:?}, end {end:?}"));
                }
                // The client closes first.
                world.with_stack(self.client, |s, now| s.close(now, id));
                self.clients.remove(&id);
            }
            (
                StackEvent::Conn { id, .. },
                Event::StateChange {
                    to: State::TimeWait,
                    ..
                },
            ) => {
                self.finished += 1;
                self.clients.remove(&id);
                self.enters.push(t);
                match self.tuple(local, remote) {
                    Some(i) if self.entered_at[i] == NOT_IN_TIME_WAIT => self.entered_at[i] = t,
                    _ => self
                        .failures
                        .add(|| format!("{local}-{remote} entered TIME_WAIT twice")),
                }
            }
            (
                StackEvent::Conn { .. },
                Event::StateChange {
                    from: State::TimeWait,
                    ..
                },
            ) => self
                .failures
                .add(|| format!("{local}-{remote}: TIME_WAIT held as a full connection")),
            (StackEvent::Conn { id, .. }, Event::Error(e)) => {
                self.failures.add(|| format!("client {local}: {e}"));
                if self.clients.remove(&id) {
                    self.finished += 1;
                }
            }
            (StackEvent::TimeWait { .. }, Event::StateChange { why, .. }) => {
                let Some(i) = self.tuple(local, remote) else {
                    return;
                };
                let entered = std::mem::replace(&mut self.entered_at[i], NOT_IN_TIME_WAIT);
                let held = t - entered;
                let len = self.time_wait_len;
                let on_time = entered != NOT_IN_TIME_WAIT
                    && why == Reason::Timer2Msl
                    && held >= len
                    && held <= len + Duration::from_millis(1);
                if on_time {
                    self.expired_on_time += 1;
                } else {
                    self.failures.add(|| {
                        format!("{local}-{remote}: TIME_WAIT ended by {why} after {held:?}")
                    });
                }
            }
            _ => {}
        }
    }

    fn on_server(&mut self, world: &mut World, ev: StackEvent) {
        match ev {
            StackEvent::Incoming(l) => {
                while let Some(id) = world.with_stack(self.server, |s, _| s.accept(l)) {
                    self.servers.insert(id, false);
                    // The request may have come before accept().
                    let c = world.stack(self.server).conn(id).expect("accepted");
                    let (local, remote) = (c.local(), c.remote());
                    self.on_server_readable(world, id, local, remote);
                }
            }
            StackEvent::Conn {
                id,
                local,
                remote,
                event: Event::Readable,
            } => self.on_server_readable(world, id, local, remote),
            StackEvent::Conn {
                event:
                    Event::StateChange {
                        to: State::Closed,
                        why,
                        ..
                    },
                remote,
                ..
            } => {
                if why == Reason::RcvAckOfFin {
                    self.server_closed += 1;
                } else {
                    self.failures
                        .add(|| format!("server, from {remote}: closed by {why}"));
                }
            }
            _ => {}
        }
    }

    fn on_server_readable(
        &mut self,
        world: &mut World,
        id: ConnId,
        local: SocketAddr,
        remote: SocketAddr,
    ) {
        let Some(&seen) = self.servers.get(&id) else {
            return;
        };
        let mut req = Vec::new();
        let end = read_all(world, self.server, id, &mut self.scratch, |b| {
            req.extend_from_slice(b)
        });
        let want = Self::request(remote, local);
        if !req.is_empty() {
            if seen || req != [want] {
                self.failures
                    .add(|| format!("server, from {remote}: request {req:?}"));
            }
            world.with_stack(self.server, |s, now| s.send(now, id, &[!want]).ok());
            self.servers.insert(id, true);
        }
        match end {
            Some(false) => {}
            Some(true) => {
                if !seen && req.is_empty() {
                    self.failures
                        .add(|| format!("server, from {remote}: no request"));
                }
                world.with_stack(self.server, |s, now| s.close(now, id));
                self.servers.remove(&id);
            }
            None => {
                self.failures
                    .add(|| format!("server, from {remote}: connection failed"));
                self.servers.remove(&id);
            }
        }
    }
}

impl App for TimeWait {
    fn event(&mut self, world: &mut World, t: Instant, node: NodeId, ev: StackEvent) {
        if node == self.client {
            self.on_client(world, t, ev);
        } else {
            self.on_server(world, ev);
        }
    }

    fn step(&mut self, world: &mut World) -> bool {
        let ports = usize::from(self.cfg.server_ports.max(1));
        while self.started < self.cfg.conns && self.started - self.finished < self.cfg.in_flight {
            let listener = self.listeners[self.started % ports];
            let remote = world
                .stack(self.server)
                .listener_addr(listener)
                .expect("open listener");
            let r = world.with_stack(self.client, |s, now| {
                let id = s.connect(now, None, remote)?;
                Ok::<_, seqack::stack::StackError>((id, s.conn(id).expect("new").local()))
            });
            self.started += 1;
            match r {
                Ok((id, local)) => {
                    self.clients.insert(id);
                    // The port-reuse rule, checked against the driver's own record.
                    if let Some(i) = self.tuple(local, remote) {
                        if self.entered_at[i] != NOT_IN_TIME_WAIT {
                            self.failures
                                .add(|| format!("connect() picked {local}-{remote}, in TIME_WAIT"));
                        }
                    }
                }
                Err(e) => {
                    self.finished += 1;
                    self.failures.add(|| format!("connect() to {remote}: {e}"));
                }
            }
        }
        true
    }

    fn sent(&mut self, world: &World) {
        let tw = world.stack(self.client).time_wait();
        if tw.len() > self.peak {
            self.peak = tw.len();
            self.memory_at_peak = tw.memory_bytes();
        }
    }
}

// ----- many connections --------------------------------------------------------------

/// Many connections open at once on one server, each moving data both ways.
#[derive(Clone, Debug)]
pub struct ManyConfig {
    /// Connections, all open at once.
    pub conns: usize,
    /// Client stacks (10.0.1.1, 10.0.1.2, ...), used in turn.
    pub clients: usize,
    /// Server ports, used in turn.
    pub server_ports: u16,
    /// Bytes each connection moves each way.
    pub bytes: usize,
    /// Most handshakes in progress at once (also the listeners' backlog, so that no
    /// SYN cookie is needed).
    pub handshakes: usize,
    /// Send and receive buffer of every connection, in bytes. The default Linux-like
    /// 256 KiB would be 2 x 100,000 x 256 KiB = 51 GB if every receive buffer were in
    /// use at once (a receive buffer takes its full size at its first byte).
    pub buffer: usize,
    /// Seed of the world.
    pub seed: u64,
}

impl Default for ManyConfig {
    /// The size: 100,000 connections, 4 KiB each way, from 4 client stacks to 4
    /// server ports, 1,000 handshakes at a time, 16 KiB buffers.
    fn default() -> ManyConfig {
        ManyConfig {
            conns: 100_000,
            clients: 4,
            server_ports: 4,
            bytes: 4096,
            handshakes: 1_000,
            buffer: 16 * 1024,
            seed: 11,
        }
    }
}

/// What a [`many_connections`] run did.
#[derive(Clone, Debug)]
pub struct ManyReport {
    /// Connections started.
    pub conns: usize,
    /// Connections the server accepted.
    pub accepted: usize,
    /// The server's `connection_count()` once every connection was established.
    pub server_connections_established: usize,
    /// The client stacks' `connection_count()`s, added, at the same moment.
    pub client_connections_established: usize,
    /// Connection ends (server and client) holding queued bytes, to send or to read, at
    /// that moment: none, since data only moves afterwards.
    pub queued_at_established: usize,
    /// The most connections the server held at once.
    pub server_peak_connections: usize,
    /// Connections whose bytes arrived intact both ways.
    pub exchanged: usize,
    /// Payload bytes delivered intact, both directions.
    pub bytes_delivered: u64,
    /// Server connections that read end of stream, closed and reached CLOSED.
    pub server_closed: usize,
    /// Client connections that entered TIME_WAIT.
    pub client_time_wait: usize,
    /// TIME_WAIT records that ended by the 2MSL timer.
    pub time_wait_expired: usize,
    /// Connections left on the server at the end.
    pub final_server_connections: usize,
    /// Connections the server still lists in `Stack::connections()` at the end, CLOSED
    /// ones included: more than `final_server_connections` when closed connections
    /// keep their slot.
    pub final_server_listed: usize,
    /// Connections left on the clients at the end.
    pub final_client_connections: usize,
    /// TIME_WAIT records left on the clients at the end.
    pub final_records: usize,
    /// Segments received and sent by all stacks.
    pub segments: u64,
    /// Virtual time at the end.
    pub end: Instant,
    /// Checks that failed.
    pub failures: Failures,
}

/// Runs `cfg.conns` connections in three phases: open them all (at most
/// `cfg.handshakes` handshakes at a time; the server accepts each), then every client
/// sends `cfg.bytes` and every server answers with as many once it has the request,
/// then, once every exchange is over, every client closes and every server closes on
/// end of stream; the run ends when the last TIME_WAIT record has expired.
pub fn many_connections(cfg: &ManyConfig, observe: Observer<'_>) -> ManyReport {
    let link = LinkConfig {
        delay: Duration::from_millis(1),
        jitter: Duration::from_millis(1),
        ..LinkConfig::default()
    };
    let mut world = World::new(cfg.seed, link);
    let stack_cfg = |seed| {
        let mut c = StackConfig {
            seed,
            ..Default::default()
        };
        c.tcp.send_buffer = cfg.buffer;
        c.tcp.recv_buffer = cfg.buffer;
        c
    };
    let server_ip = ip("10.0.0.2");
    let server = world.add_node("server", stack(server_ip, stack_cfg(2)));
    let clients: Vec<NodeId> = (0..cfg.clients.max(1))
        .map(|i| {
            let a = IpAddr::V4(Ipv4Addr::new(
                10,
                0,
                1 + (i / 250) as u8,
                1 + (i % 250) as u8,
            ));
            world.add_node(&format!("client{i}"), stack(a, stack_cfg(100 + i as u64)))
        })
        .collect();
    let ports: Vec<SocketAddr> = (0..cfg.server_ports.max(1))
        .map(|p| SocketAddr::new(server_ip, SERVER_PORT + p))
        .collect();
    for &p in &ports {
        world.with_stack(server, |s, _| {
            s.listen(p, cfg.handshakes.max(1)).expect("listen")
        });
    }
    let mut app = Many {
        cfg: cfg.clone(),
        server,
        clients: clients.clone(),
        ports,
        phase: Phase::Connect,
        started: 0,
        accepted: 0,
        exchanged: 0,
        bytes_delivered: 0,
        server_closed: 0,
        client_time_wait: 0,
        time_wait_expired: 0,
        // Sized up front, so that the driver allocates nothing per connection while
        // the benchmark measures the stacks' memory.
        flows: HashMap::with_capacity(2 * cfg.conns),
        client_conns: 0,
        peak: 0,
        scratch: vec![0; cfg.buffer.max(cfg.bytes).max(1)],
        failures: Failures::default(),
    };
    let mut nodes = clients.clone();
    nodes.push(server);
    observe(Milestone::Ready, &world);

    drive(&mut world, &mut app);
    let server_established = world.stack(server).connection_count();
    let client_established = clients
        .iter()
        .map(|&c| world.stack(c).connection_count())
        .sum();
    let queued_at_established = nodes
        .iter()
        .flat_map(|&n| world.stack(n).connections())
        .filter(|(_, c)| c.send_queue() + c.recv_queue() > 0)
        .count();
    observe(Milestone::Established, &world);

    app.phase = Phase::Exchange;
    for (node, id) in app.client_ends() {
        app.send_more(&mut world, node, id, true);
    }
    drive(&mut world, &mut app);

    app.phase = Phase::Close;
    for (node, id) in app.client_ends() {
        world.with_stack(node, |s, now| s.close(now, id));
        app.flows.remove(&(node, id));
    }
    drive(&mut world, &mut app);
    observe(Milestone::Done, &world);

    let per_client =
        |f: fn(&Stack) -> usize| -> usize { clients.iter().map(|&c| f(world.stack(c))).sum() };
    ManyReport {
        conns: app.started,
        accepted: app.accepted,
        server_connections_established: server_established,
        client_connections_established: client_established,
        queued_at_established,
        server_peak_connections: app.peak,
        exchanged: app.exchanged,
        bytes_delivered: app.bytes_delivered,
        server_closed: app.server_closed,
        client_time_wait: app.client_time_wait,
        time_wait_expired: app.time_wait_expired,
        final_server_connections: world.stack(server).connection_count(),
        final_server_listed: world.stack(server).connections().count(),
        final_client_connections: per_client(Stack::connection_count),
        final_records: per_client(|s| s.time_wait().len()),
        segments: segments(&world, &nodes),
        end: world.now(),
        failures: app.failures,
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Phase {
    Connect,
    Exchange,
    Close,
}

/// One direction's progress on one connection, at one end.
struct Flow {
    /// Key of the stream this end sends.
    out_key: u64,
    /// Key of the stream this end receives.
    in_key: u64,
    sent: usize,
    received: usize,
}

impl Flow {
    /// The end at `local` of a connection with `remote`.
    fn new(local: SocketAddr, remote: SocketAddr) -> Flow {
        Flow {
            out_key: stream_key(local, remote),
            in_key: stream_key(remote, local),
            sent: 0,
            received: 0,
        }
    }
}

struct Many {
    cfg: ManyConfig,
    server: NodeId,
    clients: Vec<NodeId>,
    ports: Vec<SocketAddr>,
    phase: Phase,
    started: usize,
    accepted: usize,
    exchanged: usize,
    bytes_delivered: u64,
    server_closed: usize,
    client_time_wait: usize,
    time_wait_expired: usize,
    /// Every end of every connection, by node and handle.
    flows: HashMap<(NodeId, ConnId), Flow>,
    /// Client ends opened.
    client_conns: usize,
    peak: usize,
    scratch: Vec<u8>,
    failures: Failures,
}

impl Many {
    /// The client ends of every connection.
    fn client_ends(&self) -> Vec<(NodeId, ConnId)> {
        let server = self.server;
        self.flows
            .keys()
            .filter(|k| k.0 != server)
            .copied()
            .collect()
    }

    /// Sends as much of a flow's remaining bytes as the send buffer takes. The server
    /// answers only once the whole request is in (`may_start`).
    fn send_more(&mut self, world: &mut World, node: NodeId, id: ConnId, may_start: bool) {
        let total = self.cfg.bytes;
        let Some(f) = self.flows.get(&(node, id)) else {
            return;
        };
        if f.sent >= total || !(may_start || f.sent > 0) {
            return;
        }
        let (key, from) = (f.out_key, f.sent);
        let chunk = &mut self.scratch[..total - from];
        for (i, b) in chunk.iter_mut().enumerate() {
            *b = pattern(key, from + i);
        }
        match world.with_stack(node, |s, now| s.send(now, id, chunk)) {
            Ok(n) => {
                if let Some(f) = self.flows.get_mut(&(node, id)) {
                    f.sent += n;
                }
            }
            Err(e) => self.failures.add(|| format!("send: {e:?}")),
        }
    }

    fn on_readable(&mut self, world: &mut World, node: NodeId, id: ConnId, who: SocketAddr) {
        let total = self.cfg.bytes;
        let Some(f) = self.flows.get(&(node, id)) else {
            return;
        };
        let (key, mut n) = (f.in_key, f.received);
        let mut bad = false;
        let mut scratch = std::mem::take(&mut self.scratch);
        let end = read_all(world, node, id, &mut scratch, |b| {
            bad |= b.iter().enumerate().any(|(i, &x)| x != pattern(key, n + i));
            n += b.len();
        });
        self.scratch = scratch;
        let before = self.flows.get(&(node, id)).map_or(0, |f| f.received);
        if bad || n > total {
            self.failures
                .add(|| format!("{who}: bytes corrupted or too many ({n})"));
        } else {
            self.bytes_delivered += (n - before) as u64;
        }
        if let Some(f) = self.flows.get_mut(&(node, id)) {
            f.received = n;
        }
        let is_server = node == self.server;
        if n == total && before < total {
            if is_server {
                // The whole request is in: answer.
                self.send_more(world, node, id, true);
            } else {
                self.exchanged += 1;
            }
        }
        match end {
            Some(true) if is_server && self.phase == Phase::Close && n == total => {
                world.with_stack(node, |s, now| s.close(now, id));
                self.flows.remove(&(node, id));
            }
            Some(true) => {
                self.failures
                    .add(|| format!("{who}: end of stream after {n} bytes"));
                self.flows.remove(&(node, id));
            }
            Some(false) => {}
            None => {
                self.failures.add(|| format!("{who}: connection failed"));
                self.flows.remove(&(node, id));
            }
        }
    }
}

impl App for Many {
    fn event(&mut self, world: &mut World, _t: Instant, node: NodeId, ev: StackEvent) {
        match ev {
            StackEvent::Incoming(l) => {
                while let Some(id) = world.with_stack(node, |s, _| s.accept(l)) {
                    let c = world.stack(node).conn(id).expect("accepted");
                    let (local, remote) = (c.local(), c.remote());
                    self.flows.insert((node, id), Flow::new(local, remote));
                    self.accepted += 1;
                    // Data may have come with the handshake's last ACK, before accept().
                    self.on_readable(world, node, id, remote);
                }
            }
            StackEvent::Conn {
                id,
                local,
                remote,
                event,
            } => match event {
                Event::Readable => self.on_readable(world, node, id, remote),
                Event::Writable => self.send_more(world, node, id, false),
                Event::Error(e) => self.failures.add(|| format!("{local}-{remote}: {e}")),
                Event::StateChange {
                    to: State::TimeWait,
                    ..
                } if node != self.server => self.client_time_wait += 1,
                Event::StateChange {
                    to: State::Closed,
                    why,
                    ..
                } if node == self.server => {
                    if why == Reason::RcvAckOfFin {
                        self.server_closed += 1;
                    } else {
                        self.failures
                            .add(|| format!("server {local}-{remote}: closed by {why}"));
                    }
                }
                _ => {}
            },
            StackEvent::TimeWait {
                local,
                remote,
                event: Event::StateChange { why, .. },
            } => {
                if why == Reason::Timer2Msl {
                    self.time_wait_expired += 1;
                } else {
                    self.failures
                        .add(|| format!("{local}-{remote}: TIME_WAIT ended by {why}"));
                }
            }
            _ => {}
        }
    }

    fn step(&mut self, world: &mut World) -> bool {
        match self.phase {
            Phase::Connect => {
                let n = self.cfg.conns;
                while self.started < n && self.started - self.accepted < self.cfg.handshakes {
                    let node = self.clients[self.started % self.clients.len()];
                    let remote = self.ports[(self.started / self.clients.len()) % self.ports.len()];
                    match world.with_stack(node, |s, now| s.connect(now, None, remote)) {
                        Ok(id) => {
                            let local = world.stack(node).conn(id).expect("new").local();
                            self.flows.insert((node, id), Flow::new(local, remote));
                            self.client_conns += 1;
                        }
                        Err(e) => {
                            self.failures.add(|| format!("connect() to {remote}: {e}"));
                            self.accepted += 1;
                        }
                    }
                    self.started += 1;
                }
                self.accepted < n
            }
            Phase::Exchange => self.exchanged < self.client_conns,
            Phase::Close => true,
        }
    }

    fn sent(&mut self, world: &World) {
        self.peak = self.peak.max(world.stack(self.server).connection_count());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_within_counts_overlapping_windows() {
        let t = |s| Instant::from_secs(s);
        let w = Duration::from_secs(60);
        assert_eq!(most_within(&[], w), 0);
        assert_eq!(most_within(&[t(0), t(1), t(2)], w), 3);
        // 60 s apart: the first has ended when the second starts.
        assert_eq!(most_within(&[t(0), t(60)], w), 1);
        assert_eq!(most_within(&[t(0), t(30), t(59), t(61), t(62)], w), 4);
    }
}
