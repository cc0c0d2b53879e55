//! The simulated link: stacks exchanging packets in virtual time.
//!
//! A [`World`] holds several [`Stack`]s and the link between them. Time jumps straight
//! to the next deadline (a packet's arrival or a stack's timer), so a 60 s TIME_WAIT
//! costs microseconds of CPU. Everything random (loss, delay jitter, duplication,
//! corruption) comes from one seeded generator: the same seed gives the same run, byte
//! for byte. Every packet and every stack event is recorded on one timeline, in the
//! order it happened, for ladder diagrams and state logs.
//!
//! ```
//! use seqack::{Instant, Stack, StackConfig, State};
//! use seqack_io::sim::{LinkConfig, World};
//!
//! let stack = |ip: &str, seed| {
//!     let mut s = Stack::new(StackConfig { seed, ..Default::default() });
//!     s.add_address(ip.parse().unwrap());
//!     s
//! };
//! let mut world = World::new(1, LinkConfig::default()); // 10 ms one way
//! let client = world.add_node("client", stack("10.0.0.1", 1));
//! let server = world.add_node("server", stack("10.0.0.2", 2));
//! let addr = "10.0.0.2:80".parse().unwrap();
//! world.with_stack(server, |s, _| s.listen(addr, 8)).unwrap();
//! let id = world.with_stack(client, |s, now| s.connect(now, None, addr)).unwrap();
//! world.run_until(Instant::from_millis(25));
//! // SYN out at 0 ms, SYN-ACK back at 20 ms: the client is ESTABLISHED.
//! assert_eq!(world.stack(client).state(id), State::Established);
//! ```

use crate::pcap::PcapTap;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seqack::stack::StackEvent;
use seqack::wire::tcp::Flags;
use seqack::wire::{ip, tcp, Seq};
use seqack::{Duration, Instant, Stack};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::Write;

/// Index of a node (a stack) in a [`World`].
pub type NodeId = usize;

/// Random impairments of the link, applied to every packet in both directions.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkConfig {
    /// One-way propagation delay.
    pub delay: Duration,
    /// Extra delay drawn uniformly from `[0, jitter)`; packets may overtake each other.
    pub jitter: Duration,
    /// Probability that a packet is lost.
    pub loss: f64,
    /// Probability that a packet arrives twice.
    pub duplicate: f64,
    /// Probability that one byte of a packet is flipped (the checksum catches it).
    pub corrupt: f64,
    /// Bottleneck rate in bytes per second per direction; `None` for no limit.
    pub rate: Option<u64>,
    /// Largest packet the link carries; larger ones are dropped.
    pub mtu: usize,
}

impl Default for LinkConfig {
    fn default() -> LinkConfig {
        LinkConfig {
            delay: Duration::from_millis(10),
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            corrupt: 0.0,
            rate: None,
            mtu: 1500,
        }
    }
}

/// The TCP view of a packet, given to filters and kept on the timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketInfo {
    /// Sending node.
    pub from: NodeId,
    /// Receiving node (`None` when no node owns the destination address).
    pub to: Option<NodeId>,
    /// TCP flags (empty if the packet is not TCP).
    pub flags: Flags,
    /// Sequence number.
    pub seq: Seq,
    /// Acknowledgment number.
    pub ack: Seq,
    /// Payload length.
    pub len: usize,
    /// Window field, unscaled.
    pub window: u16,
    /// Source and destination ports.
    pub ports: (u16, u16),
    /// Whether the packet parsed as TCP at all.
    pub is_tcp: bool,
}

impl PacketInfo {
    fn parse(from: NodeId, to: Option<NodeId>, pkt: &[u8]) -> PacketInfo {
        let mut info = PacketInfo {
            from,
            to,
            flags: Flags(0),
            seq: Seq(0),
            ack: Seq(0),
            len: 0,
            window: 0,
            ports: (0, 0),
            is_tcp: false,
        };
        if let Ok(p) = ip::parse(pkt) {
            if let Ok(s) = tcp::parse(p.payload, p.src, p.dst, false) {
                info.flags = s.flags;
                info.seq = s.seq;
                info.ack = s.ack;
                info.len = s.payload.len();
                info.window = s.window;
                info.ports = (s.src_port, s.dst_port);
                info.is_tcp = true;
            }
        }
        info
    }

    /// An ACK with no data, SYN, FIN or RST.
    pub fn is_pure_ack(&self) -> bool {
        self.flags.ack()
            && self.len == 0
            && !self.flags.syn()
            && !self.flags.fin()
            && !self.flags.rst()
    }
}

/// What a filter decides for one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Lose it.
    Drop,
    /// Add this much delay.
    Delay(Duration),
}

/// A rule consulted for every packet sent, before the random impairments.
pub type Filter = Box<dyn FnMut(&PacketInfo) -> Option<Action>>;

/// A filter that applies `action` to the `nth` (1-based) packet from `from` that
/// `matches` accepts: for example, "drop the third pure ACK from the client".
pub fn nth_matching(
    from: Option<NodeId>,
    nth: usize,
    matches: impl Fn(&PacketInfo) -> bool + 'static,
    action: Action,
) -> Filter {
    let mut seen = 0;
    Box::new(move |p: &PacketInfo| {
        if from.is_some_and(|f| f != p.from) || !matches(p) {
            return None;
        }
        seen += 1;
        (seen == nth).then_some(action)
    })
}

/// Why a packet never arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Random loss.
    Random,
    /// A filter dropped it.
    Filter,
    /// No node owns the destination address.
    NoRoute,
    /// Larger than the link's MTU.
    TooBig,
}

/// One entry of the timeline.
#[derive(Clone, Debug)]
pub enum TraceEntry {
    /// A packet left a node. `id` pairs it with its [`TraceEntry::Delivered`] entries.
    Sent {
        /// Packet number, unique in the run.
        id: u64,
        /// When it was sent.
        t: Instant,
        /// TCP view.
        info: PacketInfo,
        /// `Some` when it will never arrive.
        lost: Option<Loss>,
        /// The bytes as sent.
        bytes: Vec<u8>,
    },
    /// A packet reached its node (twice when duplicated).
    Delivered {
        /// Packet number.
        id: u64,
        /// Arrival time.
        t: Instant,
        /// Receiving node.
        to: NodeId,
        /// The copy arrived with a flipped byte.
        corrupted: bool,
    },
    /// A stack reported an event.
    Event {
        /// When.
        t: Instant,
        /// Which node.
        node: NodeId,
        /// What.
        event: StackEvent,
        /// What made it happen.
        cause: Cause,
    },
}

/// What made a stack event happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The arrival of this packet (by trace id).
    Packet(u64),
    /// A timer.
    Timer,
    /// An application command (through [`World::with_stack`]).
    App,
    /// Sending (a stack may report events while it transmits).
    Send,
}

/// Counts of what the link did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets sent.
    pub sent: u64,
    /// Packets delivered (duplicates count twice).
    pub delivered: u64,
    /// Packets lost, by any cause.
    pub lost: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
    /// Copies delivered corrupted.
    pub corrupted: u64,
}

struct Node {
    name: String,
    stack: Stack,
    /// When the link from this node is next free (for the rate limit).
    tx_free_at: Instant,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Instant,
    order: u64,
    id: u64,
    to: NodeId,
    corrupt_at: Option<usize>,
    bytes: Vec<u8>,
}

/// Stacks on a simulated link, in virtual time.
pub struct World {
    now: Instant,
    nodes: Vec<Node>,
    link: LinkConfig,
    rng: ChaCha8Rng,
    in_flight: BinaryHeap<Reverse<InFlight>>,
    filters: Vec<Filter>,
    trace: Option<Vec<TraceEntry>>,
    pcap: Option<PcapTap<Box<dyn Write>>>,
    events: VecDeque<(Instant, NodeId, StackEvent)>,
    buf: Vec<u8>,
    /// Batched input and output ([`World::set_batching`]): the buffers of one burst.
    burst: Option<Vec<Vec<u8>>>,
    next_id: u64,
    order: u64,
    stats: LinkStats,
}

impl World {
    /// An empty world at time zero whose randomness comes from `seed`.
    pub fn new(seed: u64, link: LinkConfig) -> World {
        World {
            now: Instant::ZERO,
            nodes: Vec::new(),
            buf: vec![0; link.mtu.max(1500) + 128],
            burst: None,
            link,
            rng: ChaCha8Rng::seed_from_u64(seed),
            in_flight: BinaryHeap::new(),
            filters: Vec::new(),
            trace: None,
            pcap: None,
            events: VecDeque::new(),
            next_id: 0,
            order: 0,
            stats: LinkStats::default(),
        }
    }

    /// Adds a stack; packets to any of its addresses are delivered to it.
    pub fn add_node(&mut self, name: &str, stack: Stack) -> NodeId {
        self.nodes.push(Node {
            name: name.to_string(),
            stack,
            tx_free_at: Instant::ZERO,
        });
        self.nodes.len() - 1
    }

    /// Drives the stacks as a driver that reads and writes its device in batches:
    /// [`Stack::poll_transmit_burst`] to send, and [`Stack::handle_packets`] for
    /// consecutive packets due at the same time to the same node. The packets on the
    /// link must be exactly those of one at a time (the stacks promise it, and
    /// `simtest` checks it seed by seed); only the timeline's attribution of events to
    /// packets differs (an event is put down to the last packet of its batch).
    pub fn set_batching(&mut self, on: bool) {
        self.burst = on.then(|| vec![vec![0; self.buf.len()]; 8]);
    }

    /// Starts recording the timeline (see [`World::trace`]).
    pub fn record_trace(&mut self) {
        self.trace.get_or_insert_with(Vec::new);
    }

    /// The timeline recorded so far.
    pub fn trace(&self) -> &[TraceEntry] {
        self.trace.as_deref().unwrap_or(&[])
    }

    /// Writes every packet, as it is sent, to a pcap file.
    pub fn set_pcap(&mut self, w: Box<dyn Write>) -> std::io::Result<()> {
        self.pcap = Some(PcapTap::new(w)?);
        Ok(())
    }

    /// Finishes the pcap file, returning its writer.
    pub fn take_pcap(&mut self) -> Option<Box<dyn Write>> {
        self.pcap.take().map(PcapTap::into_inner)
    }

    /// Adds a filter consulted for every packet sent.
    pub fn add_filter(&mut self, f: Filter) {
        self.filters.push(f);
    }

    /// Changes the link's impairments from now on.
    pub fn set_link(&mut self, link: LinkConfig) {
        self.link = link;
    }

    /// The link's impairments.
    pub fn link(&self) -> &LinkConfig {
        &self.link
    }

    /// Virtual time now.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// What the link did so far.
    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    /// A node's name.
    pub fn name(&self, n: NodeId) -> &str {
        &self.nodes[n].name
    }

    /// A node's stack, to read.
    pub fn stack(&self, n: NodeId) -> &Stack {
        &self.nodes[n].stack
    }

    /// Runs application commands on a node's stack at the current time. Its events are
    /// recorded, and what it wants to send goes out at the next [`World::step`].
    pub fn with_stack<R>(&mut self, n: NodeId, f: impl FnOnce(&mut Stack, Instant) -> R) -> R {
        let now = self.now;
        let r = f(&mut self.nodes[n].stack, now);
        self.drain_events(n, Cause::App);
        r
    }

    /// The next recorded stack event, with its time and node.
    pub fn poll_event(&mut self) -> Option<(Instant, NodeId, StackEvent)> {
        self.events.pop_front()
    }

    /// Sends what every stack has to send at the current time.
    pub fn flush(&mut self) {
        if let Some(mut bufs) = self.burst.take() {
            self.flush_bursts(&mut bufs);
            self.burst = Some(bufs);
            return;
        }
        for n in 0..self.nodes.len() {
            loop {
                let now = self.now;
                let Some(len) = self.nodes[n].stack.poll_transmit(now, &mut self.buf) else {
                    break;
                };
                let pkt = self.buf[..len].to_vec();
                self.drain_events(n, Cause::Send);
                self.send(n, pkt);
            }
            self.drain_events(n, Cause::Send);
        }
    }

    fn flush_bursts(&mut self, bufs: &mut [Vec<u8>]) {
        let mut lens = [0usize; 8];
        for n in 0..self.nodes.len() {
            loop {
                let now = self.now;
                let k = self.nodes[n]
                    .stack
                    .poll_transmit_burst(now, bufs, &mut lens);
                for (b, &len) in bufs.iter().zip(&lens).take(k) {
                    let pkt = b[..len].to_vec();
                    self.drain_events(n, Cause::Send);
                    self.send(n, pkt);
                }
                if k < bufs.len() {
                    break;
                }
            }
            self.drain_events(n, Cause::Send);
        }
    }

    /// Sends a raw packet from node `from` now, through the link's filters and
    /// impairments: crafted or spoofed traffic (floods, blind attacks). Replies to
    /// addresses no node owns are lost as `Loss::NoRoute`.
    pub fn inject(&mut self, from: NodeId, packet: Vec<u8>) {
        self.send(from, packet);
    }

    /// The next time anything happens: an arrival or a timer.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        let arrival = self.in_flight.peek().map(|p| p.0.at);
        let timers = self
            .nodes
            .iter_mut()
            .filter_map(|n| n.stack.poll_timeout())
            .min();
        match (arrival, timers) {
            (Some(a), Some(t)) => Some(a.min(t)),
            (a, t) => a.or(t),
        }
    }

    /// Advances to the next deadline and processes everything due then. Returns false
    /// when nothing is left to happen (no packet in flight, no timer armed).
    pub fn step(&mut self) -> bool {
        self.flush();
        let Some(t) = self.next_deadline() else {
            return false;
        };
        self.step_to(t);
        true
    }

    /// Moves the clock to `t` and processes everything due then: arrivals, then timers.
    /// Nothing is sent afterwards, so applications can react at the same instant (their
    /// replies then share segments with the stack's own, as on a real host); the next
    /// [`World::flush`] or [`World::step`] sends.
    pub fn step_to(&mut self, t: Instant) {
        self.now = self.now.max(t);
        self.process_due();
    }

    /// Steps until `until` (virtual time), stopping early when idle.
    pub fn run_until(&mut self, until: Instant) {
        loop {
            self.flush();
            match self.next_deadline() {
                Some(t) if t <= until => self.step_to(t),
                _ => break,
            }
        }
        self.now = self.now.max(until);
    }

    fn process_due(&mut self) {
        let now = self.now;
        let mut batch: Vec<Vec<u8>> = Vec::new();
        while self.in_flight.peek().is_some_and(|p| p.0.at <= now) {
            let Reverse(mut p) = self.in_flight.pop().expect("peeked");
            let corrupted = p.corrupt_at.is_some();
            if let Some(i) = p.corrupt_at {
                p.bytes[i] ^= 0x5a;
                self.stats.corrupted += 1;
            }
            self.stats.delivered += 1;
            self.record(TraceEntry::Delivered {
                id: p.id,
                t: now,
                to: p.to,
                corrupted,
            });
            if self.burst.is_none() {
                self.nodes[p.to].stack.handle_packet(now, &p.bytes);
                self.drain_events(p.to, Cause::Packet(p.id));
                continue;
            }
            batch.push(p.bytes);
            let next_same = self
                .in_flight
                .peek()
                .is_some_and(|q| q.0.at <= now && q.0.to == p.to);
            if !next_same {
                let packets = batch.iter().map(Vec::as_slice);
                self.nodes[p.to].stack.handle_packets(now, packets);
                self.drain_events(p.to, Cause::Packet(p.id));
                batch.clear();
            }
        }
        for n in 0..self.nodes.len() {
            if self.nodes[n].stack.poll_timeout().is_some_and(|t| t <= now) {
                self.nodes[n].stack.handle_timeout(now);
                self.drain_events(n, Cause::Timer);
            }
        }
    }

    fn drain_events(&mut self, n: NodeId, cause: Cause) {
        while let Some(ev) = self.nodes[n].stack.poll_event() {
            self.record(TraceEntry::Event {
                t: self.now,
                node: n,
                event: ev,
                cause,
            });
            self.events.push_back((self.now, n, ev));
        }
    }

    fn record(&mut self, e: TraceEntry) {
        if let Some(t) = self.trace.as_mut() {
            t.push(e);
        }
    }

    fn route(&self, pkt: &[u8]) -> Option<NodeId> {
        let dst = ip::parse(pkt).ok()?.dst;
        self.nodes
            .iter()
            .position(|n| n.stack.addresses().contains(&dst))
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.rng.next_u64() as f64 / u64::MAX as f64) < p
    }

    fn send(&mut self, from: NodeId, pkt: Vec<u8>) {
        let now = self.now;
        let id = self.next_id;
        self.next_id += 1;
        self.stats.sent += 1;
        if let Some(tap) = self.pcap.as_mut() {
            // A capture that fails to write must not change the simulation.
            let _ = tap.write(now, &pkt);
        }
        let to = self.route(&pkt);
        let info = PacketInfo::parse(from, to, &pkt);
        let mut extra = Duration::ZERO;
        let mut lost = None;
        for f in &mut self.filters {
            match f(&info) {
                Some(Action::Drop) => lost = Some(Loss::Filter),
                Some(Action::Delay(d)) => extra += d,
                None => {}
            }
        }
        if to.is_none() {
            lost = Some(Loss::NoRoute);
        } else if pkt.len() > self.link.mtu {
            lost = Some(Loss::TooBig);
        }
        if lost.is_none() && self.chance(self.link.loss) {
            lost = Some(Loss::Random);
        }
        // Serialisation at the bottleneck: packets queue behind each other.
        let mut depart = now;
        if let Some(rate) = self.link.rate.filter(|&r| r > 0) {
            let node = &mut self.nodes[from];
            let start = node.tx_free_at.max(now);
            let tx = Duration::from_nanos((pkt.len() as u64 * 1_000_000_000) / rate);
            node.tx_free_at = start + tx;
            depart = start + tx;
        }
        let bytes_for_trace = if self.trace.is_some() {
            pkt.clone()
        } else {
            Vec::new()
        };
        self.record(TraceEntry::Sent {
            id,
            t: now,
            info,
            lost,
            bytes: bytes_for_trace,
        });
        let (Some(to), None) = (to, lost) else {
            self.stats.lost += 1;
            return;
        };
        let copies = if self.chance(self.link.duplicate) {
            2
        } else {
            1
        };
        for copy in 0..copies {
            let jitter = self.jitter();
            let at = depart + self.link.delay + jitter + extra;
            let corrupt_at = if self.chance(self.link.corrupt) && !pkt.is_empty() {
                Some((self.rng.next_u64() % pkt.len() as u64) as usize)
            } else {
                None
            };
            if copy == 1 {
                self.stats.duplicated += 1;
            }
            self.order += 1;
            self.in_flight.push(Reverse(InFlight {
                at,
                order: self.order,
                id,
                to,
                corrupt_at,
                bytes: pkt.clone(),
            }));
        }
    }

    fn jitter(&mut self) -> Duration {
        let j = self.link.jitter.as_micros() as u64;
        if j == 0 {
            Duration::ZERO
        } else {
            Duration::from_micros(self.rng.next_u64() % j)
        }
    }
}
