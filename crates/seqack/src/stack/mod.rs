//! The stack: many connections and listeners behind one packet interface.
//!
//! It demultiplexes arriving segments by 4-tuple in O(1), answers segments that reach
//! no connection with RST (RFC 9293 3.10.7.1), runs listeners (RFC 9293 3.10.7.2),
//! draws ISNs (RFC 6528) and ephemeral ports (RFC 6056), and keeps the nstat counters.
//! Like the connection, it is sans-IO: the same calling order applies (inputs
//! `handle_packet` / `handle_timeout`, commands, outputs `poll_transmit` /
//! `poll_timeout` / `poll_event`).

pub mod cookies;
pub mod fast_open;
pub mod isn;
pub mod ss;
pub mod time_wait;
pub mod wheel;

use crate::counters::Counters;
use crate::tcp::time_wait::{TimeWaitAction, TimeWaitState};
use crate::tcp::{
    write_packet, Burst, Config, Connection, CookieOpen, Disposition, Event, Reason, RecvError,
    SendError, Shutdown, State,
};
use crate::time::{Duration, Instant};
use crate::wire::checksum;
use crate::wire::ip::{self, PROTO_TCP};
use crate::wire::tcp::{self as wtcp, Flags, Header, Options, Segment};
use crate::wire::{Seq, WireError};
use crate::word::Word;
use cookies::{CookieJar, CookieOptions};
use core::net::{IpAddr, SocketAddr};
use fast_open::{FastOpenCache, FastOpenUse};
use isn::IsnGenerator;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{HashMap, HashSet, VecDeque};

use core::hash::BuildHasher;
use foldhash::fast::FixedState;
use std::sync::Arc;
use time_wait::{InsertError, TimeWaitTable};
use wheel::{TimerHandle, TimerWheel};

/// Settings of a stack.
#[derive(Clone, Debug)]
pub struct StackConfig {
    /// Defaults for every connection.
    pub tcp: Config,
    /// Seed of the stack's secrets (ISN key, port offsets). Drivers pass real entropy;
    /// simulations pass a seed to be reproducible.
    pub seed: u64,
    /// Ephemeral port range, inclusive (Linux: 32768-60999).
    pub ephemeral_ports: (u16, u16),
    /// Most stateless replies (RSTs, SYN-cookie SYN-ACKs) waiting to be sent; more are
    /// dropped under a flood.
    pub max_pending_replies: usize,
    /// When listeners answer SYNs with SYN cookies (Linux's `tcp_syncookies`).
    pub syncookies: SynCookies,
    /// Most TIME_WAIT records at once (Linux's `tcp_max_tw_buckets`, 262144 on a
    /// typical machine). A connection that would exceed it closes without TIME_WAIT,
    /// counted as TcpExtTCPTimeWaitOverflow.
    pub max_tw_buckets: usize,
    /// Let connect() take an ephemeral 4-tuple that is in TIME_WAIT when no free one is
    /// left, if the old connection used timestamps and entered TIME_WAIT at least one
    /// second ago (Linux's `tcp_tw_reuse = 1`; the new connection's timestamps are then
    /// newer, so the peer accepts its SYN under RFC 6191). Off by default.
    pub tw_reuse: bool,
    /// Most servers the TCP Fast Open cookie cache remembers (RFC 7413 4.1.3), each a
    /// cookie or a negative answer; past it the entry added longest ago goes. Only
    /// connections with [`Config::fast_open`] use the cache. 0: none kept, every Fast
    /// Open SYN asks for a cookie. FreeBSD: 2,048 buckets of 16.
    pub fast_open_cache: usize,
    /// How long a negative Fast Open answer from a server (no cookie, SYN data not
    /// acknowledged, no SYN-ACK) keeps Fast Open off towards it (RFC 7413 4.1.3.1).
    /// FreeBSD's `net.inet.tcp.fastopen.path_disable_time`: 900 s.
    pub fast_open_disable: Duration,
    /// What becomes of a segment with both SYN and FIN set.
    pub syn_fin: SynFin,
}

/// What becomes of a segment with both SYN and FIN set (a combination no TCP sends,
/// but port scanners do, to tell stacks apart).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum SynFin {
    /// Listeners discard it, as Linux does (tcp_rcv_state_process); connections apply
    /// RFC 9293 to it.
    #[default]
    ListenDiscard,
    /// Listeners take it as a SYN, its FIN and data left out, as FreeBSD does with
    /// `net.inet.tcp.drop_synfin` = 0; connections apply RFC 9293 to it.
    ListenAsSyn,
    /// Dropped whatever it reaches, before any processing (FreeBSD's
    /// `net.inet.tcp.drop_synfin` = 1), and counted as TcpExtTCPFlagsDrop.
    Drop,
}

/// When a listener answers a SYN with a SYN cookie instead of keeping state for it
/// (RFC 4987 3.6). Linux's `tcp_syncookies` = 0, 1 (its default), 2.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum SynCookies {
    /// Never: a SYN that finds the SYN queue full is dropped.
    Off,
    /// Only when the SYN queue is full.
    #[default]
    OnOverflow,
    /// For every SYN: listeners keep no state for half-open connections at all.
    Always,
}

impl Default for StackConfig {
    fn default() -> StackConfig {
        StackConfig {
            tcp: Config::default(),
            seed: 0,
            ephemeral_ports: (32768, 60999),
            max_pending_replies: 1024,
            syncookies: SynCookies::OnOverflow,
            max_tw_buckets: 262_144,
            tw_reuse: false,
            fast_open_cache: 4096,
            fast_open_disable: Duration::from_secs(900),
            syn_fin: SynFin::ListenDiscard,
        }
    }
}

/// A handle to a connection of a stack. Stale handles (of freed connections) are
/// detected by a generation count.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct ConnId {
    index: u32,
    generation: u32,
}

impl ConnId {
    /// The connection's slot number: dense (slots are reused after a connection is
    /// freed) and stable while it lives, so a driver can keep its own per-connection
    /// state in a `Vec` indexed by it instead of a map.
    pub fn slot(self) -> usize {
        self.index as usize
    }
}

/// A handle to a listener.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct ListenerId(u32);

/// A connection's 4-tuple as the demultiplexing key: (local, remote). Its hash feeds
/// the hasher one 128-bit word for IPv4 (both addresses and both ports: foldhash
/// makes it one folded multiply), and for IPv6 a word per address and one for the
/// ports, rather than the eight writes `(SocketAddr, SocketAddr)`'s derived `Hash`
/// makes.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
struct Tuple(SocketAddr, SocketAddr);

impl core::hash::Hash for Tuple {
    #[inline]
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        if let (SocketAddr::V4(l), SocketAddr::V4(r)) = (self.0, self.1) {
            h.write_u128(
                u128::from(l.ip().to_bits()) << 96
                    | u128::from(r.ip().to_bits()) << 64
                    | u128::from(l.port()) << 16
                    | u128::from(r.port()),
            );
            return;
        }
        fn word(a: SocketAddr) -> u128 {
            let ip = match a.ip() {
                IpAddr::V4(v4) => u128::from(v4.to_bits()),
                IpAddr::V6(v6) => v6.to_bits(),
            };
            // IPv6 addresses fill all 128 bits: the port goes in a word of its own.
            ip ^ (u128::from(a.is_ipv6()) << 127)
        }
        h.write_u128(word(self.0));
        h.write_u128(word(self.1));
        h.write_u32(u32::from(self.0.port()) << 16 | u32::from(self.1.port()));
    }
}

/// What a stack reports to its driver.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum StackEvent {
    /// Something happened on a connection.
    Conn {
        /// Which connection.
        id: ConnId,
        /// Its local address.
        local: SocketAddr,
        /// Its remote address.
        remote: SocketAddr,
        /// What happened.
        event: Event,
    },
    /// A listener changed state (CLOSED -> LISTEN, LISTEN -> CLOSED); with
    /// [`Config::state_events`] only.
    Listener {
        /// Which listener.
        id: ListenerId,
        /// Its address.
        local: SocketAddr,
        /// The state change.
        event: Event,
    },
    /// A listener has a connection ready for [`Stack::accept`].
    Incoming(ListenerId),
    /// A connection that the application had closed and that lives on as a compact
    /// TIME_WAIT record (its [`ConnId`] no longer valid) changed state: TIME_WAIT ->
    /// CLOSED when 2MSL ended, an RST ended it (RFC 1337 off), or a new SYN reused
    /// its 4-tuple. With [`Config::state_events`] only.
    TimeWait {
        /// Its local address.
        local: SocketAddr,
        /// Its remote address.
        remote: SocketAddr,
        /// The state change.
        event: Event,
    },
}

impl StackEvent {
    /// The 4-tuple and event of a connection's event (of a live connection or of a
    /// TIME_WAIT record); `None` for listener events.
    pub fn conn_event(&self) -> Option<(SocketAddr, SocketAddr, Event)> {
        match *self {
            StackEvent::Conn {
                local,
                remote,
                event,
                ..
            }
            | StackEvent::TimeWait {
                local,
                remote,
                event,
            } => Some((local, remote, event)),
            StackEvent::Listener { .. } | StackEvent::Incoming(_) => None,
        }
    }
}

/// Why a stack command failed.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum StackError {
    /// The handle does not name a live connection or listener.
    InvalidHandle,
    /// The address is already bound (EADDRINUSE).
    AddrInUse,
    /// No ephemeral port is free for this destination (EADDRNOTAVAIL).
    NoPortAvailable,
    /// The local address is not one of the stack's.
    AddrNotAvailable,
    /// A per-connection [`Config`] out of range (see [`Config::check`]).
    InvalidConfig(crate::tcp::ConfigError),
}

impl core::fmt::Display for StackError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            StackError::InvalidHandle => "no such connection or listener",
            StackError::AddrInUse => "address already in use",
            StackError::NoPortAvailable => "no ephemeral port available",
            StackError::AddrNotAvailable => "address not available",
            StackError::InvalidConfig(e) => return write!(f, "invalid configuration: {e}"),
        })
    }
}

impl std::error::Error for StackError {}

/// One connection's place in the slab. The bookkeeping beside the TCB is packed into
/// 24 bytes (an `Option` each would take 40): it is paid once per connection.
struct Slot {
    generation: u32,
    conn: Option<Connection>,
    /// The listener that created it, until the application accepts it, in the low 31
    /// bits ([`Slot::NO_LISTENER`]: none); the top bit says the connection is queued in
    /// `Stack::dirty` for output.
    meta: Word,
    /// The deadline this connection has in the timer wheel, in microseconds
    /// ([`Slot::UNSCHEDULED`]: none), and its handle there.
    scheduled: u64,
    timer: TimerHandle,
}

impl Slot {
    const NO_LISTENER: u32 = 0x7fff_ffff;
    const DIRTY: u32 = 0x8000_0000;
    const UNSCHEDULED: u64 = u64::MAX;

    fn listener(&self) -> Option<ListenerId> {
        let l = self.meta.get() & !Slot::DIRTY;
        (l != Slot::NO_LISTENER).then_some(ListenerId(l))
    }

    fn set_listener(&mut self, l: Option<ListenerId>) {
        let l = l.map_or(Slot::NO_LISTENER, |l| l.0 & !Slot::DIRTY);
        let m = self.meta.get();
        self.meta.set((m & Slot::DIRTY) | l);
    }

    fn dirty(&self) -> bool {
        self.meta.get() & Slot::DIRTY != 0
    }

    fn set_dirty(&mut self, on: bool) {
        let m = self.meta.get();
        self.meta.set(if on {
            m | Slot::DIRTY
        } else {
            m & !Slot::DIRTY
        });
    }

    /// The deadline of the wheel entry. (`Timers` never yields `u64::MAX` as a
    /// deadline: the sentinel cannot collide.)
    fn scheduled(&self) -> Option<Instant> {
        (self.scheduled != Slot::UNSCHEDULED).then(|| Instant::from_micros(self.scheduled))
    }

    fn set_scheduled(&mut self, at: Option<Instant>) {
        self.scheduled = at.map_or(Slot::UNSCHEDULED, |t| {
            t.total_micros().min(Slot::UNSCHEDULED - 1)
        });
    }
}

struct Listener {
    local: SocketAddr,
    backlog: usize,
    /// Half-open connections (SYN_RECEIVED).
    syn_queue: HashSet<ConnId, FixedState>,
    /// Established connections waiting for accept().
    accept_queue: VecDeque<ConnId>,
}

/// A segment sent without a connection: an RST, or a SYN-ACK carrying a cookie.
#[derive(Copy, Clone, Debug)]
struct Reply {
    local: SocketAddr,
    remote: SocketAddr,
    hdr: Header,
}

/// A TCP stack.
pub struct Stack {
    cfg: StackConfig,
    tcp: Arc<Config>,
    addrs: Vec<IpAddr>,
    /// The same addresses as a set, for stacks with many (a client stack given a
    /// range of source addresses): every packet's destination is checked against them.
    addr_set: HashSet<IpAddr, FixedState>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Slot numbers of live connections, hashed by their 4-tuple (read from the slot:
    /// 4 bytes an entry instead of a copy of the 64-byte key).
    demux: hashbrown::HashTable<u32>,
    /// The keyed hash of the 4-tuple index.
    tuple_hash: FixedState,
    listeners: Vec<Option<Listener>>,
    listen_map: HashMap<SocketAddr, ListenerId, FixedState>,
    /// Every connection's next deadline, in one hierarchical timing wheel: O(1) to arm
    /// and cancel however many connections there are.
    wheel: TimerWheel<ConnId>,
    /// Connections the application closed that wait out 2MSL, as compact records.
    time_wait: TimeWaitTable,
    /// Scratch space for expired TIME_WAIT records.
    tw_expired: Vec<(SocketAddr, SocketAddr)>,
    /// Scratch space for expired timers, kept to avoid an allocation per expiry.
    expired: Vec<(Instant, ConnId)>,
    dirty: VecDeque<ConnId>,
    replies: VecDeque<Reply>,
    events: VecDeque<StackEvent>,
    isn: IsnGenerator,
    cookies: CookieJar,
    /// When the cookie key was last replaced (it rotates every two counter periods).
    cookies_rotated: Instant,
    /// When a cookie was last sent: only then are ACKs to a listener checked for one.
    last_cookie: Option<Instant>,
    fast_open: FastOpenCache,
    rng: ChaCha8Rng,
    port_counter: u32,
    counters: Counters,
}

/// What a Fast Open handshake of `conn` taught, into the cookie cache (out of line:
/// one connection in many has it).
#[cold]
#[inline(never)]
fn learn_fast_open(cache: &mut FastOpenCache, conn: &mut Connection) {
    if let Some(o) = conn.take_fast_open_outcome() {
        cache.learn(conn.local().ip(), conn.remote().ip(), o);
    }
}

/// A run of segments for one ESTABLISHED connection in [`Stack::handle_packets`]: the
/// 4-tuple it was found under, and the connection, whose bookkeeping is still to do.
#[derive(Clone, Copy)]
struct Run {
    local: SocketAddr,
    remote: SocketAddr,
    id: ConnId,
}

impl Stack {
    /// A stack with no addresses, connections or listeners. A `cfg.tcp` that
    /// [`Config::check`] rejects is taken as the nearest it allows (see
    /// [`Config::MAX_BUFFER`] and [`Config::MIN_MTU`]); [`Stack::connect_with`]
    /// refuses such a per-connection one.
    pub fn new(cfg: StackConfig) -> Stack {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let mut key = [0u8; 16];
        rng.fill_bytes(&mut key);
        let mut cookie_key = [0u8; 16];
        rng.fill_bytes(&mut cookie_key);
        let mut tw_key = [0u8; 16];
        rng.fill_bytes(&mut tw_key);
        let time_wait = TimeWaitTable::new(tw_key, cfg.max_tw_buckets);
        // The 4-tuple index is keyed with a secret from the seed: peers choose remote
        // addresses and ports, and must not be able to aim them all at one bucket.
        // (From a stream of its own, so the main stream's draws stay as they were.)
        let mut hash_rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        hash_rng.set_stream(1);
        let tuple_hash = FixedState::with_seed(hash_rng.next_u64());
        let fast_open = FastOpenCache::new(cfg.fast_open_cache, cfg.fast_open_disable);
        Stack {
            tcp: Arc::new(Config {
                mtu: cfg.tcp.mtu.max(Config::MIN_MTU),
                ..cfg.tcp.clone()
            }),
            cfg,
            addrs: Vec::new(),
            addr_set: HashSet::default(),
            slots: Vec::new(),
            free: Vec::new(),
            demux: hashbrown::HashTable::new(),
            tuple_hash: tuple_hash.clone(),
            listeners: Vec::new(),
            listen_map: HashMap::with_hasher(tuple_hash),
            // 1,024 us ticks: a tick is then a shift, where 1 ms would take a division
            // on every arm. The wheel fires at the exact deadline either way.
            wheel: TimerWheel::new(Instant::ZERO, Duration::from_micros(1024)),
            time_wait,
            tw_expired: Vec::new(),
            expired: Vec::new(),
            dirty: VecDeque::new(),
            replies: VecDeque::new(),
            events: VecDeque::new(),
            isn: IsnGenerator::new(key),
            cookies: CookieJar::new(cookie_key),
            cookies_rotated: Instant::ZERO,
            last_cookie: None,
            fast_open,
            port_counter: rng.next_u32(),
            rng,
            counters: Counters::default(),
        }
    }

    /// Adds a local address: packets to it are ours.
    pub fn add_address(&mut self, a: IpAddr) {
        if self.addr_set.insert(a) {
            self.addrs.push(a);
        }
    }

    /// Whether `a` is one of our addresses: a scan of a few, a set lookup beyond.
    #[inline]
    fn is_local(&self, a: &IpAddr) -> bool {
        if self.addrs.len() <= 8 {
            self.addrs.contains(a)
        } else {
            self.addr_set.contains(a)
        }
    }

    /// The local addresses.
    pub fn addresses(&self) -> &[IpAddr] {
        &self.addrs
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The stack's default connection settings.
    pub fn config(&self) -> &Config {
        &self.tcp
    }

    // ----- listeners ------------------------------------------------------------------

    /// Opens a listener on `local` (an unspecified IP listens on every address) with
    /// room for `backlog` connections in its SYN queue and in its accept queue.
    pub fn listen(&mut self, local: SocketAddr, backlog: usize) -> Result<ListenerId, StackError> {
        if self.listen_map.contains_key(&local) {
            return Err(StackError::AddrInUse);
        }
        if !local.ip().is_unspecified() && !self.is_local(&local.ip()) {
            return Err(StackError::AddrNotAvailable);
        }
        let id = ListenerId(self.listeners.len() as u32);
        self.listeners.push(Some(Listener {
            local,
            backlog: backlog.max(1),
            syn_queue: HashSet::with_hasher(FixedState::default()),
            accept_queue: VecDeque::new(),
        }));
        self.listen_map.insert(local, id);
        if self.tcp.state_events {
            self.events.push_back(StackEvent::Listener {
                id,
                local,
                event: Event::StateChange {
                    from: State::Closed,
                    to: State::Listen,
                    why: Reason::Listen,
                },
            });
        }
        Ok(id)
    }

    /// Takes an established connection from a listener's accept queue.
    pub fn accept(&mut self, l: ListenerId) -> Option<ConnId> {
        let lst = self.listener_mut(l)?;
        let id = lst.accept_queue.pop_front()?;
        if let Some(slot) = self.slot_mut(id) {
            slot.set_listener(None);
        }
        Some(id)
    }

    /// Closes a listener, as Linux does: established connections not accepted yet are
    /// reset, half-open ones dropped silently.
    pub fn close_listener(&mut self, now: Instant, l: ListenerId) {
        let Some(lst) = self.listeners.get_mut(l.0 as usize).and_then(Option::take) else {
            return;
        };
        self.listen_map.remove(&lst.local);
        if self.tcp.state_events {
            self.events.push_back(StackEvent::Listener {
                id: l,
                local: lst.local,
                event: Event::StateChange {
                    from: State::Listen,
                    to: State::Closed,
                    why: Reason::Close,
                },
            });
        }
        // Linux's inet_csk_listen_stop: established connections nobody accepted are
        // reset; half-open ones are dropped silently (the peer's final ACK then finds no
        // socket and draws an RST).
        for &id in &lst.syn_queue {
            self.with_conn(now, id, |c, _, _| c.forget(Reason::ListenerClosed));
        }
        for &id in &lst.accept_queue {
            self.with_conn(now, id, |c, now, cx| c.abort(now, cx));
        }
    }

    /// The address a listener is bound to.
    pub fn listener_addr(&self, l: ListenerId) -> Option<SocketAddr> {
        Some(self.listener(l)?.local)
    }

    // ----- connections ----------------------------------------------------------------

    /// Opens a connection to `remote` (active open). With `local` `None`, the first
    /// address of the remote's family and an ephemeral port are chosen.
    pub fn connect(
        &mut self,
        now: Instant,
        local: Option<SocketAddr>,
        remote: SocketAddr,
    ) -> Result<ConnId, StackError> {
        self.connect_with(now, local, remote, None)
    }

    /// [`Stack::connect`] with per-connection settings. Their MTU is bounded by the
    /// stack's (as Linux bounds a socket's MSS by its route's MTU): the stack's
    /// driver reads and writes packets of that size.
    pub fn connect_with(
        &mut self,
        now: Instant,
        local: Option<SocketAddr>,
        remote: SocketAddr,
        cfg: Option<Config>,
    ) -> Result<ConnId, StackError> {
        if let Some(c) = &cfg {
            c.check().map_err(StackError::InvalidConfig)?;
        }
        // `in_tw`: the 4-tuple chosen is held by a TIME_WAIT record (to be reused).
        let (local, in_tw) = match local {
            Some(l) if l.port() != 0 => {
                let in_tw = self.time_wait.contains(l, remote);
                if self.demux_get(l, remote).is_some()
                    || (in_tw && !self.tw_reusable(now, l, remote))
                {
                    return Err(StackError::AddrInUse);
                }
                (l, in_tw)
            }
            Some(l) => {
                let (port, in_tw) = self.ephemeral_port(now, l.ip(), remote)?;
                (SocketAddr::new(l.ip(), port), in_tw)
            }
            None => {
                let ip = self
                    .addrs
                    .iter()
                    .copied()
                    .find(|a| a.is_ipv4() == remote.is_ipv4())
                    .ok_or(StackError::AddrNotAvailable)?;
                let (port, in_tw) = self.ephemeral_port(now, ip, remote)?;
                (SocketAddr::new(ip, port), in_tw)
            }
        };
        if !self.is_local(&local.ip()) {
            return Err(StackError::AddrNotAvailable);
        }
        let (mut iss, ts) = self.isn.isn_and_ts_offset(now, local, remote);
        if let Some(old) = in_tw
            .then(|| self.time_wait.remove(local, remote))
            .flatten()
        {
            // Linux's tcp_tw_reuse: the new connection starts above the old one's
            // sequence space, and its timestamps (same offset, later clock) are newer.
            self.counters.tw_recycled += 1;
            iss = above(iss, old.snd_nxt);
            self.time_wait_event(local, remote, Reason::TimeWaitReused);
        }
        let cfg = match cfg {
            Some(mut c) => {
                c.mtu = c.mtu.min(self.tcp.mtu);
                Arc::new(c)
            }
            None => self.tcp.clone(),
        };
        let mut conn = Connection::connect(now, cfg, local, remote, iss, ts, &mut self.counters);
        if conn.uses_fast_open() {
            match self.fast_open.lookup(now, local.ip(), remote.ip()) {
                FastOpenUse::Cookie(cookie, mss) => {
                    conn.set_fast_open_cookie(cookie, mss);
                }
                FastOpenUse::Request => {}
                FastOpenUse::Off => {
                    conn.disable_fast_open();
                }
            }
        }
        let id = self.insert(conn, None);
        self.after_touch(id);
        Ok(id)
    }

    /// RFC 6056 algorithm 3: a keyed offset per destination plus a global counter, the
    /// first port whose 4-tuple is free; and whether that port's 4-tuple is a TIME_WAIT
    /// record being reused. A 4-tuple in TIME_WAIT is not free; with
    /// `tw_reuse` one may be taken when no free port is left (see [`Stack::tw_reusable`]).
    fn ephemeral_port(
        &mut self,
        now: Instant,
        ip: IpAddr,
        remote: SocketAddr,
    ) -> Result<(u16, bool), StackError> {
        let (lo, hi) = self.cfg.ephemeral_ports;
        if hi < lo {
            return Err(StackError::NoPortAvailable);
        }
        let n = u32::from(hi - lo) + 1;
        let offset = self.isn.port_offset(ip, remote);
        let mut reusable = None;
        for _ in 0..n {
            let port = lo + ((offset.wrapping_add(self.port_counter)) % n) as u16;
            self.port_counter = self.port_counter.wrapping_add(1);
            let l = SocketAddr::new(ip, port);
            if self.demux_get(l, remote).is_some() || self.listen_map.contains_key(&l) {
                continue;
            }
            if self.time_wait.contains(l, remote) {
                if reusable.is_none() && self.tw_reusable(now, l, remote) {
                    reusable = Some(port);
                }
                continue;
            }
            return Ok((port, false));
        }
        reusable
            .map(|p| (p, true))
            .ok_or(StackError::NoPortAvailable)
    }

    /// Whether our own connect() may take a 4-tuple in TIME_WAIT (Linux's
    /// `tcp_tw_reuse = 1`): only with `tw_reuse` on, when the old connection used
    /// timestamps, and one second or more after it entered TIME_WAIT. The new SYN then
    /// carries a newer timestamp and a higher sequence number, which the peer's
    /// TIME_WAIT accepts (RFC 6191).
    fn tw_reusable(&self, now: Instant, local: SocketAddr, remote: SocketAddr) -> bool {
        self.cfg.tw_reuse
            && self.time_wait.get(local, remote).is_some_and(|tw| {
                tw.timestamps && now.saturating_since(tw.since) >= Duration::from_secs(1)
            })
    }

    /// The connection behind a handle.
    pub fn conn(&self, id: ConnId) -> Option<&Connection> {
        self.slot(id)?.conn.as_ref()
    }

    /// The state of a connection (CLOSED for a stale handle).
    pub fn state(&self, id: ConnId) -> State {
        self.conn(id).map_or(State::Closed, Connection::state)
    }

    /// Every live connection, for `ss`-like snapshots.
    pub fn connections(&self) -> impl Iterator<Item = (ConnId, &Connection)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            let c = s.conn.as_ref()?;
            Some((
                ConnId {
                    index: i as u32,
                    generation: s.generation,
                },
                c,
            ))
        })
    }

    /// Number of live connections (compact TIME_WAIT records not included).
    pub fn connection_count(&self) -> usize {
        self.demux.len()
    }

    /// The compact TIME_WAIT records.
    pub fn time_wait(&self) -> &TimeWaitTable {
        &self.time_wait
    }

    /// The TCP Fast Open cookie held for connections from `local` to `remote`
    /// ([`Config::fast_open`]).
    pub fn fast_open_cookie(&self, local: IpAddr, remote: IpAddr) -> Option<wtcp::FastOpenCookie> {
        self.fast_open.cookie(local, remote)
    }

    /// Servers the Fast Open cookie cache holds an entry for (a cookie or a negative
    /// answer).
    pub fn fast_open_cache_len(&self) -> usize {
        self.fast_open.len()
    }

    /// Forgets every Fast Open cookie and negative answer (FreeBSD does this when
    /// `net.inet.tcp.fastopen.client_enable` is turned off).
    pub fn clear_fast_open_cache(&mut self) {
        self.fast_open.clear();
    }

    /// Every listener, connection and TIME_WAIT record at `now`, like `ss -tan -o`
    /// (print them with [`ss::format_table`]).
    pub fn sockets(&self, now: Instant) -> Vec<ss::SocketInfo> {
        let left = |t: Instant| t.saturating_since(now);
        let mut out = Vec::new();
        for (i, l) in self.listeners.iter().enumerate() {
            let Some(l) = l else { continue };
            out.push(ss::SocketInfo {
                kind: ss::SocketKind::Listener(ListenerId(i as u32)),
                state: State::Listen,
                recv_q: l.accept_queue.len(),
                send_q: l.backlog,
                local: l.local,
                remote: None,
                timer: None,
            });
        }
        for (id, c) in self.connections() {
            if c.state() == State::Closed {
                continue;
            }
            out.push(ss::SocketInfo {
                kind: ss::SocketKind::Conn(id),
                state: c.state(),
                recv_q: c.recv_queue(),
                send_q: c.send_queue(),
                local: c.local(),
                remote: Some(c.remote()),
                timer: c.next_timer().map(|(t, at)| (t.name(), left(at))),
            });
        }
        for tw in self.time_wait.iter() {
            out.push(ss::SocketInfo {
                kind: ss::SocketKind::TimeWait,
                state: State::TimeWait,
                recv_q: 0,
                send_q: 0,
                local: tw.local,
                remote: Some(tw.remote),
                timer: Some(("timewait", left(tw.deadline))),
            });
        }
        out
    }

    /// Queues data on a connection.
    pub fn send(&mut self, now: Instant, id: ConnId, data: &[u8]) -> Result<usize, SendError> {
        let r = self.with_conn(now, id, |c, _, _| c.send(data));
        r.unwrap_or(Err(SendError::Shutdown))
    }

    /// Reads from a connection. `Ok(0)` is end of stream.
    pub fn recv(&mut self, now: Instant, id: ConnId, out: &mut [u8]) -> Result<usize, RecvError> {
        // Only a read that took bytes can open the window enough to announce
        // (`Connection::recv` sets nothing else); a read that found nothing leaves no
        // output due, so the connection is not queued for a transmit pass that would
        // find nothing to send.
        let r = self.touch_conn(
            now,
            id,
            |c, _, _| c.recv(out),
            |r| matches!(r, Ok(n) if *n > 0),
        );
        r.unwrap_or(Ok(0))
    }

    /// Shuts down one or both halves of a connection.
    pub fn shutdown(&mut self, now: Instant, id: ConnId, how: Shutdown) {
        self.with_conn(now, id, |c, _, _| c.shutdown(how));
    }

    /// Closes a connection (close(2)); the handle becomes invalid once it has closed.
    pub fn close(&mut self, now: Instant, id: ConnId) {
        self.with_conn(now, id, |c, now, cx| c.close(now, cx));
    }

    /// Aborts a connection with RST.
    pub fn abort(&mut self, now: Instant, id: ConnId) {
        self.with_conn(now, id, |c, now, cx| c.abort(now, cx));
    }

    /// Runs `f` on a live connection and then does the bookkeeping every touch needs.
    pub fn with_conn<R>(
        &mut self,
        now: Instant,
        id: ConnId,
        f: impl FnOnce(&mut Connection, Instant, &mut Counters) -> R,
    ) -> Option<R> {
        self.touch_conn(now, id, f, |_| true)
    }

    /// [`Stack::with_conn`], marking the connection for output only when `may_send`
    /// says the result can have made some due.
    #[inline]
    fn touch_conn<R>(
        &mut self,
        now: Instant,
        id: ConnId,
        f: impl FnOnce(&mut Connection, Instant, &mut Counters) -> R,
        may_send: impl FnOnce(&R) -> bool,
    ) -> Option<R> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let conn = slot.conn.as_mut()?;
        let r = f(conn, now, &mut self.counters);
        if may_send(&r) {
            self.after_touch(id);
        } else {
            self.after_touch_quiet(id);
        }
        Some(r)
    }

    // ----- packets in ---------------------------------------------------------------

    /// Processes one arriving IP packet. Malformed or foreign packets are dropped and
    /// counted; nothing here panics on any input. It is [`Stack::handle_packets`] with
    /// one packet, so the next in-order data of a connection that takes data is summed
    /// as it is copied into the receive ring here too.
    pub fn handle_packet(&mut self, now: Instant, packet: &[u8]) {
        self.handle_packets(now, core::iter::once(packet));
    }

    /// [`Stack::handle_packet`] without verifying the TCP checksum, for a packet whose
    /// data the driver vouches for: one that never crossed a wire, such as a segment a
    /// TUN device with checksum offload hands over from the local kernel with its
    /// checksum left partial (the kernel itself skips the check for such packets).
    /// The IP header checksum is still verified; everything else is as
    /// `handle_packet`.
    pub fn handle_packet_unverified(&mut self, now: Instant, packet: &[u8]) {
        let mut seg = Segment::default();
        if let Some((local, remote)) = self.parse_packet_unverified(packet, &mut seg) {
            self.handle_segment(now, local, remote, &seg);
        }
    }

    /// Processes arriving IP packets in order, exactly as that many calls of
    /// [`Stack::handle_packet`] would, for a driver that reads its device in batches.
    ///
    /// A run of consecutive segments for the same ESTABLISHED connection (a window's
    /// worth of data arriving together) is handled GRO-style: each segment is still
    /// parsed, verified and processed by the connection on its own, but the 4-tuple is
    /// looked up once and the stack's bookkeeping (output scheduling, events) is done
    /// once, after the run's last segment. The next in-order data of a connection that
    /// takes data (ESTABLISHED, or FIN_WAIT_1/2 after a half-close) has its payload
    /// checksummed as it is copied into the receive ring, and is processed only if the
    /// sum holds (see [`Connection::stage_payload`]).
    pub fn handle_packets<'p>(
        &mut self,
        now: Instant,
        packets: impl IntoIterator<Item = &'p [u8]>,
    ) {
        let mut run = None;
        let mut seg = Segment::default();
        for p in packets {
            if let Some((local, remote, sum)) = self.parse_packet_deferred(p, &mut seg) {
                self.segment_in_run(now, local, remote, &seg, sum, &mut run);
            }
        }
        self.end_run(&mut run);
    }

    /// Parses an arriving packet into `seg` as [`Stack::parse_packet_unverified`] does,
    /// and returns with its ends the running TCP checksum of all but the payload
    /// ([`wtcp::parse_into_deferred`]), which [`Stack::verified`] completes and checks.
    #[inline(always)]
    fn parse_packet_deferred<'a>(
        &mut self,
        packet: &'a [u8],
        seg: &mut Segment<'a>,
    ) -> Option<(SocketAddr, SocketAddr, u64)> {
        let mut sum = 0;
        let ends = self.parse_with(packet, seg, |payload, src, dst, seg| {
            sum = wtcp::parse_into_deferred(payload, src, dst, seg)?;
            Ok(())
        })?;
        Some((ends.0, ends.1, sum))
    }

    /// Completes the checksum of a segment parsed by [`Stack::parse_packet_deferred`]
    /// (`sum`), and counts a bad one (`in_errs`, `in_csum_errors`). When `id` is the
    /// connection the segment goes to and it can take the payload in order, the payload
    /// is summed as it is copied into place ([`Connection::stage_payload`] decides);
    /// `Some(true)` then says the segment must be handed over with
    /// [`Connection::handle_staged_segment`]. `None`: the checksum failed, drop it.
    #[inline(always)]
    fn verified(&mut self, id: Option<ConnId>, seg: &Segment<'_>, sum: u64) -> Option<bool> {
        // A segment without payload (an ACK, a SYN, a FIN alone) has nothing to stage.
        let staged = id
            .filter(|_| !seg.payload.is_empty())
            .and_then(|id| self.slots.get_mut(id.index as usize))
            .and_then(|s| s.conn.as_mut())
            .and_then(|c| c.stage_payload(seg, sum));
        let ok = match staged {
            Some(total) => checksum::fold(total) == 0xffff,
            None => wtcp::sum_ok(sum, seg.payload),
        };
        if !ok {
            self.counters.in_errs += 1;
            self.counters.in_csum_errors += 1;
            return None;
        }
        Some(staged.is_some())
    }

    /// Parses an arriving packet into `seg` without verifying its TCP checksum and
    /// returns its local and remote ends, or drops it (counted) when it is malformed or
    /// not ours.
    #[inline(always)]
    fn parse_packet_unverified<'a>(
        &mut self,
        packet: &'a [u8],
        seg: &mut Segment<'a>,
    ) -> Option<(SocketAddr, SocketAddr)> {
        self.parse_with(packet, seg, |payload, src, dst, seg| {
            wtcp::parse_into(payload, src, dst, false, seg)
        })
    }

    /// The IP layer of the packet parsers, with `parse_tcp` for the TCP one.
    #[inline(always)]
    fn parse_with<'a>(
        &mut self,
        packet: &'a [u8],
        seg: &mut Segment<'a>,
        parse_tcp: impl FnOnce(&'a [u8], IpAddr, IpAddr, &mut Segment<'a>) -> Result<(), WireError>,
    ) -> Option<(SocketAddr, SocketAddr)> {
        let ipp = match ip::parse(packet) {
            Ok(p) => p,
            Err(e) => {
                let c = &mut self.counters;
                c.ip_drops += 1;
                match e {
                    WireError::LengthPastEnd => c.ip_in_truncated += 1,
                    WireError::Fragment => c.ip_reasm_fails += 1,
                    WireError::BadChecksum => {
                        c.ip_in_csum_errors += 1;
                        c.ip_in_hdr_errors += 1;
                    }
                    _ => c.ip_in_hdr_errors += 1,
                }
                return None;
            }
        };
        // As Linux decides: the destination first (routing), then the protocol.
        if !self.is_local(&ipp.dst) {
            self.counters.ip_drops += 1;
            self.counters.ip_in_addr_errors += 1;
            return None;
        }
        if ipp.protocol != PROTO_TCP {
            self.counters.ip_drops += 1;
            self.counters.ip_in_unknown_protos += 1;
            return None;
        }
        self.counters.in_segs += 1;
        if let Err(e) = parse_tcp(ipp.payload, ipp.src, ipp.dst, seg) {
            self.counters.in_errs += 1;
            if e == WireError::BadChecksum {
                self.counters.in_csum_errors += 1;
            }
            return None;
        }
        if seg.flags.contains(Flags::SYN | Flags::FIN) && self.cfg.syn_fin == SynFin::Drop {
            self.counters.flags_drop += 1;
            return None;
        }
        let local = SocketAddr::new(ipp.dst, seg.dst_port);
        let remote = SocketAddr::new(ipp.src, seg.src_port);
        Some((local, remote))
    }

    /// Ends a run of segments: the bookkeeping its segments put off.
    fn end_run(&mut self, run: &mut Option<Run>) {
        if let Some(r) = run.take() {
            self.after_touch(r.id);
        }
    }

    /// One segment of a batch, possibly the next of `run` (see
    /// [`Stack::handle_packets`]). A packet dropped before it reaches a connection
    /// leaves the run open: it touched nothing.
    ///
    /// The segment's checksum is completed here (`sum`, see
    /// [`Stack::parse_packet_deferred`]) once its connection is known, before anything
    /// changes: a bad one is dropped and counted ([`Stack::verified`]).
    #[inline(always)]
    fn segment_in_run(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &Segment<'_>,
        sum: u64,
        run: &mut Option<Run>,
    ) {
        if let Some(r) = *run {
            if r.local == local && r.remote == remote {
                let Some(staged) = self.verified(Some(r.id), seg, sum) else {
                    return;
                };
                self.sync_run(r.id);
                if !self.run_segment(now, r.id, seg, staged) {
                    *run = None;
                }
                return;
            }
        }
        let found = self.demux_get(local, remote);
        // The connection decides whether it can take the payload staged (in order, in
        // a state that receives data); only an ESTABLISHED one starts a run.
        let Some(staged) = self.verified(found, seg, sum) else {
            return;
        };
        self.end_run(run);
        let established = found.filter(|&id| {
            self.slot(id)
                .and_then(|s| s.conn.as_ref())
                .is_some_and(|c| c.state() == State::Established)
        });
        if let Some(id) = established {
            if self.run_segment(now, id, seg, staged) {
                *run = Some(Run { local, remote, id });
            }
            return;
        }
        self.handle_segment_found(now, local, remote, seg, found, staged);
    }

    /// Hands `seg` to `id`, an ESTABLISHED connection, leaving the stack's bookkeeping
    /// for the end of the run; true while the connection stays ESTABLISHED (the run
    /// goes on), otherwise the bookkeeping is done now. In ESTABLISHED a segment is
    /// always the connection's to consume, and one that leaves it there raises no
    /// event but "look again" ones and frees nothing, so scheduling output and passing
    /// events on once for the whole run is doing it after each segment.
    /// `staged`: its payload was staged by [`Stack::verified`] just before.
    #[inline(always)]
    fn run_segment(&mut self, now: Instant, id: ConnId, seg: &Segment<'_>, staged: bool) -> bool {
        let slot = &mut self.slots[id.index as usize];
        let Some(c) = slot.conn.as_mut() else {
            return false;
        };
        hand_over(c, now, seg, staged, &mut self.counters);
        if c.state() == State::Established {
            return true;
        }
        self.after_touch(id);
        false
    }

    /// The timer of a run's connection after its last segment, before the run's next
    /// one: synced segment by segment, as after_touch would, since the wheel moves an
    /// entry only to an earlier deadline and skipping a segment's deadline could leave
    /// it later than one at a time would. (The run's end syncs the last segment's.)
    fn sync_run(&mut self, id: ConnId) {
        let slot = &mut self.slots[id.index as usize];
        let deadline = slot.conn.as_ref().and_then(Connection::poll_timeout);
        sync_timer(&mut self.wheel, slot, id, deadline);
    }

    /// Processes one parsed segment for `local` from `remote`.
    pub fn handle_segment(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &Segment<'_>,
    ) {
        let found = self.demux_get(local, remote);
        self.handle_segment_found(now, local, remote, seg, found, false);
    }

    /// [`Stack::handle_segment`] with the 4-tuple already looked up.
    #[inline(always)]
    fn handle_segment_found(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &Segment<'_>,
        found: Option<ConnId>,
        staged: bool,
    ) {
        // The old SND.NXT when a SYN reopens a 4-tuple in TIME_WAIT (RFC 6191).
        let mut recycled = None;
        if let Some(id) = found {
            if seg.flags.ack()
                && !seg.flags.rst()
                && !seg.flags.syn()
                && self.accept_queue_full_for(id)
            {
                // Linux (tcp_check_req with tcp_abort_on_overflow = 0): the ACK that would
                // complete the handshake is dropped while the accept queue is full; the
                // connection stays in SYN_RECEIVED and its SYN-ACK retransmission draws
                // the ACK again later.
                self.counters.listen_overflows += 1;
                self.counters.listen_drops += 1;
                return;
            }
            let disp = self.with_conn(now, id, |c, now, cx| hand_over(c, now, seg, staged, cx));
            match disp {
                Some(Disposition::Consumed) => return,
                Some(Disposition::Recycle) => {
                    self.counters.tw_recycled += 1;
                    let old = self.with_conn(now, id, |c, _, _| {
                        let (_, _, snd_nxt, _, _) = c.sequence();
                        c.recycle_time_wait();
                        snd_nxt
                    });
                    recycled = old;
                }
                Some(Disposition::NoConnection) | None => {}
            }
            // A connection that is gone no longer owns the 4-tuple.
            self.unmap(Tuple(local, remote), id);
        } else if let Some(hit) =
            self.time_wait
                .segment(now, local, remote, seg, self.tcp.challenge_ack_interval)
        {
            self.on_time_wait_hit(now, local, remote, &hit);
            if hit.action != TimeWaitAction::Recycle {
                return;
            }
            recycled = Some(hit.old_snd_nxt);
        }
        let lid = self
            .listen_map
            .get(&local)
            .or_else(|| {
                self.listen_map
                    .get(&SocketAddr::new(unspecified(local.ip()), local.port()))
            })
            .copied();
        match lid {
            Some(l) => self.on_listen(now, l, local, remote, seg, recycled),
            None => {
                self.counters.no_port += 1;
                self.reply_rst(local, remote, seg);
            }
        }
    }

    /// A segment hit a compact TIME_WAIT record: count, answer, report.
    fn on_time_wait_hit(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        hit: &time_wait::Hit,
    ) {
        match hit.action {
            TimeWaitAction::RstIgnored => self.counters.tw_rst_ignored += 1,
            TimeWaitAction::Close => self.time_wait_event(local, remote, Reason::RcvRst),
            TimeWaitAction::Recycle => {
                self.counters.tw_recycled += 1;
                self.time_wait_event(local, remote, Reason::TimeWaitRecycled);
            }
            TimeWaitAction::Nothing | TimeWaitAction::AckAndRestart | TimeWaitAction::Ack => {}
        }
        if hit.ack_skipped {
            self.counters.ack_skipped_time_wait += 1;
        }
        if let Some(mut hdr) = hit.reply {
            if let Some((_, ecr)) = hdr.options.timestamps {
                let val =
                    (now.total_millis() as u32).wrapping_add(self.isn.ts_offset(local, remote));
                hdr.options.timestamps = Some((val, ecr));
            }
            self.queue_reply(Reply { local, remote, hdr });
        }
    }

    /// Reports the end of a compact TIME_WAIT record.
    fn time_wait_event(&mut self, local: SocketAddr, remote: SocketAddr, why: Reason) {
        if !self.tcp.state_events {
            return;
        }
        self.events.push_back(StackEvent::TimeWait {
            local,
            remote,
            event: Event::StateChange {
                from: State::TimeWait,
                to: State::Closed,
                why,
            },
        });
    }

    /// True for a half-open connection whose listener's accept queue is full.
    fn accept_queue_full_for(&self, id: ConnId) -> bool {
        let Some(slot) = self.slot(id) else {
            return false;
        };
        let (Some(l), Some(c)) = (slot.listener(), slot.conn.as_ref()) else {
            return false;
        };
        c.state() == State::SynReceived
            && self
                .listener(l)
                .is_some_and(|lst| lst.accept_queue.len() >= lst.backlog)
    }

    /// RFC 9293 3.10.7.2: a segment for a listener.
    fn on_listen(
        &mut self,
        now: Instant,
        l: ListenerId,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &Segment<'_>,
        recycled: Option<Seq>,
    ) {
        let f = seg.flags;
        if f.rst() {
            self.counters.flags_drop += 1;
            return;
        }
        if f.ack() {
            if !self.try_cookie_ack(now, l, local, remote, seg) {
                self.reply_rst(local, remote, seg);
            }
            return;
        }
        // SYN+FIN is discarded, as Linux does, unless configured to be taken as a SYN
        // (FreeBSD); a segment without SYN or ACK is discarded.
        if !f.syn() || (f.fin() && self.cfg.syn_fin != SynFin::ListenAsSyn) {
            self.counters.flags_drop += 1;
            return;
        }
        let Some(lst) = self.listener(l) else {
            return;
        };
        // Linux's tcp_conn_request: a full accept queue drops the SYN, cookies or not;
        // a full SYN queue answers with a cookie when cookies are on.
        if lst.accept_queue.len() >= lst.backlog {
            self.counters.listen_overflows += 1;
            self.counters.listen_drops += 1;
            return;
        }
        let syn_queue_full = lst.syn_queue.len() >= lst.backlog;
        let cookie = match self.cfg.syncookies {
            SynCookies::Always => true,
            SynCookies::OnOverflow => syn_queue_full,
            SynCookies::Off => false,
        };
        if cookie {
            self.send_cookie(now, local, remote, seg);
            return;
        }
        if syn_queue_full {
            self.counters.listen_drops += 1;
            return;
        }
        let (mut iss, ts) = self.isn.isn_and_ts_offset(now, local, remote);
        if let Some(old) = recycled {
            // RFC 6191 / Linux: the new incarnation's sequence space starts above the
            // old one's, so no old duplicate can be taken for new data.
            iss = above(iss, old);
        }
        let conn = Connection::accept_syn(
            now,
            self.tcp.clone(),
            local,
            remote,
            seg,
            iss,
            ts,
            &mut self.counters,
        );
        let id = self.insert_half_open(conn, l);
        self.after_touch(id);
    }

    /// RFC 9293 3.10.7.1: the reply to a segment that reaches no connection.
    fn reply_rst(&mut self, local: SocketAddr, remote: SocketAddr, seg: &Segment<'_>) {
        if seg.flags.rst() {
            return;
        }
        let (seq, ack) = if seg.flags.ack() {
            (seg.ack, None)
        } else {
            (Seq(0), Some(seg.seq + seg.seq_len()))
        };
        let mut flags = Flags::RST;
        if ack.is_some() {
            flags |= Flags::ACK;
        }
        let hdr = Header {
            src_port: local.port(),
            dst_port: remote.port(),
            seq,
            ack: ack.unwrap_or(Seq(0)),
            flags,
            window: 0,
            options: Options::default(),
        };
        self.queue_reply(Reply { local, remote, hdr });
    }

    fn queue_reply(&mut self, r: Reply) -> bool {
        if self.replies.len() >= self.cfg.max_pending_replies {
            return false;
        }
        self.replies.push_back(r);
        true
    }

    /// Answers a SYN with a SYN cookie and keeps nothing (RFC 4987 3.6). Options the
    /// peer offered travel in the low bits of our TSval when it sent timestamps;
    /// without them only the MSS survives, so no scaling and no SACK are offered.
    fn send_cookie(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        syn: &Segment<'_>,
    ) {
        if now.saturating_since(self.cookies_rotated) >= cookies::COUNTER_PERIOD * 2 {
            let mut k = [0u8; 16];
            self.rng.fill_bytes(&mut k);
            self.cookies.rotate(k);
            self.cookies_rotated = now;
        }
        let cfg = &self.tcp;
        let peer_mss = syn.options.mss.unwrap_or(cfg.default_peer_mss);
        let (cookie, _) = self.cookies.encode(now, local, remote, syn.seq, peer_mss);
        let mut o = Options {
            mss: Some(cfg.mss(remote.is_ipv6())).filter(|_| cfg.mss_option),
            ..Default::default()
        };
        if let (true, Some((val, _))) = (cfg.timestamps, syn.options.timestamps) {
            let carried = CookieOptions {
                wscale: syn
                    .options
                    .wscale
                    .filter(|_| cfg.offered_wscale().is_some()),
                sack_ok: cfg.sack && syn.options.sack_permitted,
                ecn: false,
            };
            o.wscale = carried.wscale.and(cfg.offered_wscale());
            o.sack_permitted = carried.sack_ok;
            let ts_now =
                (now.total_millis() as u32).wrapping_add(self.isn.ts_offset(local, remote));
            o.timestamps = Some((cookies::encode_ts(ts_now, carried), val));
        }
        let window = (cfg.recv_buffer.min(Config::MAX_BUFFER) as u32)
            .min(cfg.initial_window_cap)
            .min(65535) as u16;
        let hdr = Header {
            src_port: local.port(),
            dst_port: remote.port(),
            seq: cookie,
            ack: syn.seq + 1u32,
            flags: Flags::SYN | Flags::ACK,
            window,
            options: o,
        };
        if self.queue_reply(Reply { local, remote, hdr }) {
            self.counters.syncookies_sent += 1;
            self.last_cookie = Some(now);
        } else {
            // More SYNs than the device drains: this one goes unanswered.
            self.counters.listen_drops += 1;
        }
    }

    /// An ACK reached a listener: if it carries a valid cookie, the connection it stands
    /// for is rebuilt, ESTABLISHED, and queued for accept(). Returns false when it does
    /// not (the caller answers with RST, as Linux does).
    fn try_cookie_ack(
        &mut self,
        now: Instant,
        l: ListenerId,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &Segment<'_>,
    ) -> bool {
        let recent = self.cfg.syncookies == SynCookies::Always
            || self.last_cookie.is_some_and(|t| {
                now.saturating_since(t) <= cookies::COUNTER_PERIOD * (cookies::MAX_AGE + 1)
            });
        if !recent || seg.flags.syn() || seg.flags.rst() {
            return false;
        }
        let Some(mss) = self
            .cookies
            .decode(now, local, remote, seg.seq - 1u32, seg.ack - 1u32)
        else {
            self.counters.syncookies_failed += 1;
            return false;
        };
        self.counters.syncookies_recv += 1;
        let Some(lst) = self.listener(l) else {
            return true;
        };
        if lst.accept_queue.len() >= lst.backlog {
            self.counters.listen_overflows += 1;
            self.counters.listen_drops += 1;
            return true;
        }
        let carried = seg
            .options
            .timestamps
            .and_then(|(_, ecr)| cookies::decode_ts(ecr));
        let open = CookieOpen {
            iss: seg.ack - 1u32,
            mss,
            wscale: carried.and_then(|c| c.wscale),
            sack_ok: carried.is_some_and(|c| c.sack_ok),
            ts_offset: self.isn.ts_offset(local, remote),
        };
        let conn = Connection::accept_cookie(
            now,
            self.tcp.clone(),
            local,
            remote,
            seg,
            open,
            &mut self.counters,
        );
        let id = self.insert_half_open(conn, l);
        // The ACK may carry data (and FIN): the new connection takes it as usual.
        self.with_conn(now, id, |c, now, cx| c.handle_segment(now, seg, cx));
        true
    }

    // ----- time -----------------------------------------------------------------------

    /// The earliest deadline at which [`Stack::handle_timeout`] must be called.
    /// It is never later than the true earliest deadline (after a cancellation it may be
    /// earlier, and a call to `handle_timeout` then makes it exact again).
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        match (self.wheel.next_deadline(), self.time_wait.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fires every connection timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut expired = std::mem::take(&mut self.expired);
        self.wheel.expire(now, &mut expired);
        for (t, id) in expired.drain(..) {
            let valid = self.slot_mut(id).is_some_and(|s| {
                let ok = s.scheduled() == Some(t);
                if ok {
                    s.set_scheduled(None);
                    s.timer = TimerHandle::DANGLING;
                }
                ok
            });
            if valid {
                self.with_conn(now, id, |c, now, cx| c.handle_timeout(now, cx));
            }
        }
        self.expired = expired;
        let mut ended = std::mem::take(&mut self.tw_expired);
        self.time_wait.expire(now, &mut ended);
        for (local, remote) in ended.drain(..) {
            self.time_wait_event(local, remote, Reason::Timer2Msl);
        }
        self.tw_expired = ended;
    }

    // ----- packets out ----------------------------------------------------------------

    /// Writes the next packet to send into `buf`; `None` when there is nothing to send.
    ///
    /// `buf` should hold the MTU. A packet longer than `buf` is not written: the call
    /// returns `None` with nothing sent or changed, counts `SeqackOutBufTooSmall`, and
    /// the same packet is the next one due when a large enough buffer comes.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if let Some(r) = self.replies.front().copied() {
            let Some(n) = write_packet(
                buf,
                r.local,
                r.remote,
                &r.hdr,
                self.tcp.option_layout,
                (&[], &[]),
                self.tcp.hop_limit,
            ) else {
                self.counters.out_buf_too_small += 1;
                return None;
            };
            self.replies.pop_front();
            self.counters.out_segs += 1;
            if r.hdr.flags.rst() {
                self.counters.out_rsts += 1;
            }
            return Some(n);
        }
        while let Some(&id) = self.dirty.front() {
            let Some(slot) = self.slots.get_mut(id.index as usize) else {
                self.dirty.pop_front();
                continue;
            };
            let sent = match slot.conn.as_mut() {
                Some(c) if slot.generation == id.generation => {
                    let sent = c.poll_transmit(now, buf, &mut self.counters);
                    debug_assert!(!c.has_events(), "output raised an event");
                    if sent.is_none() && c.buffer_too_small() {
                        // Its next packet waits for a buffer that holds it: the
                        // connection keeps its place at the head of the queue.
                        let deadline = c.poll_timeout();
                        sync_timer(&mut self.wheel, slot, id, deadline);
                        return None;
                    }
                    sent.map(|n| (n, c.poll_timeout()))
                }
                _ => None,
            };
            match sent {
                Some((n, deadline)) => {
                    // Sending raises no event and frees nothing (the connection still
                    // has output pending): only a timer it armed needs the wheel now.
                    // The whole bookkeeping follows when its output runs dry (below).
                    sync_timer(&mut self.wheel, slot, id, deadline);
                    return Some(n);
                }
                None => {
                    self.dirty.pop_front();
                    if let Some(s) = self.slot_mut(id) {
                        s.set_dirty(false);
                    }
                    self.after_touch_quiet(id);
                }
            }
        }
        None
    }

    /// Writes up to `bufs.len()` packets, exactly as that many calls of
    /// [`Stack::poll_transmit`] would (stopping when there is nothing left to send):
    /// packet `i` into `bufs[i]` (each should hold a whole MTU), its length into
    /// `lens[i]`. Returns how many were written.
    ///
    /// For a driver that hands packets to its device in batches: the connection whose
    /// turn it is fills as many buffers as it has segments for at once, and a run of
    /// full-sized data segments is written GSO-style, each repeating the headers of the
    /// one before with its own sequence number and checksum
    /// ([`Connection::poll_transmit_burst`]).
    pub fn poll_transmit_burst<B: AsMut<[u8]>>(
        &mut self,
        now: Instant,
        bufs: &mut [B],
        lens: &mut [usize],
    ) -> usize {
        let max = bufs.len().min(lens.len());
        let mut n = 0;
        while n < max {
            if !self.replies.is_empty() {
                match self.poll_transmit(now, bufs[n].as_mut()) {
                    Some(len) => {
                        lens[n] = len;
                        n += 1;
                        continue;
                    }
                    None => break,
                }
            }
            let Some(&id) = self.dirty.front() else {
                break;
            };
            let Some(slot) = self.slots.get_mut(id.index as usize) else {
                self.dirty.pop_front();
                continue;
            };
            let mut burst = Burst::default();
            let mut filled = false;
            while slot.generation == id.generation {
                let Some(c) = slot.conn.as_mut() else {
                    break;
                };
                let counters = &mut self.counters;
                if !c.burst_step(now, &mut bufs[..max], lens, n, &mut burst, counters) {
                    if c.buffer_too_small() {
                        // As poll_transmit: the packet waits, the connection keeps its
                        // place.
                        let deadline = c.poll_timeout();
                        sync_timer(&mut self.wheel, slot, id, deadline);
                        return n;
                    }
                    break;
                }
                debug_assert!(!c.has_events(), "output raised an event");
                // As after each packet of poll_transmit: only a timer it armed needs
                // the wheel while the connection still has output pending.
                let deadline = c.poll_timeout();
                sync_timer(&mut self.wheel, slot, id, deadline);
                n += 1;
                if n == max {
                    filled = true;
                    break;
                }
            }
            if filled {
                break;
            }
            // Ran dry before the buffers did: as poll_transmit's None for it.
            self.dirty.pop_front();
            if let Some(s) = self.slot_mut(id) {
                s.set_dirty(false);
            }
            self.after_touch_quiet(id);
        }
        n
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<StackEvent> {
        let e = self.events.pop_front();
        if e.is_none() {
            // Drained: the next events start at the front of the ring again, in lines
            // still in cache, rather than wherever the last one ended.
            self.events.clear();
        }
        e
    }

    // ----- bookkeeping ----------------------------------------------------------------

    fn listener(&self, l: ListenerId) -> Option<&Listener> {
        self.listeners.get(l.0 as usize).and_then(Option::as_ref)
    }

    fn listener_mut(&mut self, l: ListenerId) -> Option<&mut Listener> {
        self.listeners
            .get_mut(l.0 as usize)
            .and_then(Option::as_mut)
    }

    /// Adds a passively opened connection and counts it in its listener's SYN queue
    /// until it is ESTABLISHED and moves to the accept queue.
    fn insert_half_open(&mut self, conn: Connection, l: ListenerId) -> ConnId {
        let id = self.insert(conn, Some(l));
        if let Some(lst) = self.listener_mut(l) {
            lst.syn_queue.insert(id);
        }
        id
    }

    fn slot(&self, id: ConnId) -> Option<&Slot> {
        self.slots
            .get(id.index as usize)
            .filter(|s| s.generation == id.generation)
    }

    fn slot_mut(&mut self, id: ConnId) -> Option<&mut Slot> {
        self.slots
            .get_mut(id.index as usize)
            .filter(|s| s.generation == id.generation)
    }

    fn insert(&mut self, conn: Connection, listener: Option<ListenerId>) -> ConnId {
        let key = Tuple(conn.local(), conn.remote());
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                if self.slots.len() == self.slots.capacity() {
                    // Grow by an eighth (at least 64 slots), not by doubling: a slot
                    // holds a whole TCB, and doubling would leave up to half of them
                    // allocated and unused. Copying stays amortised O(1) per slot.
                    let more = (self.slots.len() / 8).max(64);
                    self.slots.reserve_exact(more);
                }
                self.slots.push(Slot {
                    generation: 0,
                    conn: None,
                    meta: Word::new(Slot::NO_LISTENER),
                    scheduled: Slot::UNSCHEDULED,
                    timer: TimerHandle::DANGLING,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.conn = Some(conn);
        slot.meta.set(Slot::NO_LISTENER);
        slot.set_listener(listener);
        slot.set_scheduled(None);
        slot.timer = TimerHandle::DANGLING;
        let id = ConnId {
            index,
            generation: slot.generation,
        };
        let (slots, hs) = (&self.slots, &self.tuple_hash);
        self.demux
            .insert_unique(hs.hash_one(key), index, |&i| slot_hash(hs, slots, i));
        id
    }

    /// After anything touched a connection: schedule output, timers and events.
    fn after_touch(&mut self, id: ConnId) {
        if let Some(slot) = self.slot_mut(id) {
            if !slot.dirty() {
                slot.set_dirty(true);
                self.dirty.push_back(id);
            }
        }
        self.after_touch_quiet(id);
    }

    /// Reschedules the timer and drains events, without marking for output.
    #[inline]
    fn after_touch_quiet(&mut self, id: ConnId) {
        let Some(slot) = self.slots.get_mut(id.index as usize) else {
            return;
        };
        if slot.generation != id.generation {
            return;
        }
        let Some(conn) = slot.conn.as_ref() else {
            return;
        };
        // Most touches (a segment in or out of an open connection) raise no event and
        // leave a state with nothing to hand over or free: only the timer needs the
        // wheel. The rest, out of line, keeps this path small.
        if !conn.has_events() && !matches!(conn.state(), State::TimeWait | State::Closed) {
            let deadline = conn.poll_timeout();
            sync_timer(&mut self.wheel, slot, id, deadline);
            return;
        }
        self.after_touch_events(id);
    }

    /// [`Stack::after_touch_quiet`] for a connection with events, or in TIME_WAIT or
    /// CLOSED: passes the events on, moves it to its listener's accept queue, takes it
    /// out of the index, hands it over to the TIME_WAIT table, or frees it.
    #[inline(never)]
    fn after_touch_events(&mut self, id: ConnId) {
        let Some(slot) = self.slots.get_mut(id.index as usize) else {
            return;
        };
        let pending_output = slot.dirty();
        let accepted = slot.listener().is_none();
        let Some(conn) = slot.conn.as_mut() else {
            return;
        };
        let mut closed = false;
        let mut connected = false;
        // The endpoints are built for an event only: most touches have none.
        let mut endpoints = None;
        while let Some(ev) = conn.poll_event() {
            match ev {
                Event::Closed => closed = true,
                Event::Connected => connected = true,
                Event::Readable | Event::Writable => {
                    // Readable and Writable say "look again", not "one more segment":
                    // a second one right behind the first for the same connection,
                    // not yet taken by the application, adds nothing (a window's worth
                    // of segments would otherwise queue a window's worth of events).
                    if let Some(StackEvent::Conn {
                        id: last_id,
                        event: last,
                        ..
                    }) = self.events.back()
                    {
                        if *last_id == id && *last == ev {
                            continue;
                        }
                    }
                }
                _ => {}
            }
            let &mut (local, remote) =
                endpoints.get_or_insert_with(|| (conn.local(), conn.remote()));
            self.events.push_back(StackEvent::Conn {
                id,
                local,
                remote,
                event: ev,
            });
        }
        if (connected || closed) && conn.uses_fast_open() {
            learn_fast_open(&mut self.fast_open, conn);
        }
        let deadline = conn.poll_timeout();
        let is_closed = conn.state() == State::Closed;
        let orphaned = conn.is_orphaned();
        // An orphan in TIME_WAIT whose last ACK has gone out becomes a compact record.
        let time_wait = if orphaned && !pending_output && accepted {
            conn.time_wait_state()
        } else {
            None
        };
        sync_timer(&mut self.wheel, slot, id, deadline);
        let listener = slot.listener();
        if connected {
            if let Some(l) = listener {
                self.move_to_accept_queue(l, id);
            }
        }
        // Closed came as an event, so the endpoints were built for it.
        if let (true, Some((local, remote))) = (closed, endpoints) {
            self.unmap(Tuple(local, remote), id);
            if let Some(l) = listener {
                if let Some(lst) = self.listener_mut(l) {
                    lst.syn_queue.remove(&id);
                    lst.accept_queue.retain(|&x| x != id);
                }
            }
        }
        // An orphan (or a connection nobody accepted) is freed once it is CLOSED and its
        // last segment (an RST, say) has gone out: decided on the state, not on the
        // one-off Closed event, since output is usually still pending when that event
        // comes and the release then happens on the pass that finds none.
        if is_closed && (orphaned || listener.is_some()) && !pending_output {
            // Out of the index already when the Closed event came in this touch.
            self.release(id, !(closed && endpoints.is_some()));
        }
        if let Some(tw) = time_wait {
            self.hand_over_to_time_wait(id, &tw);
        }
    }

    /// Hands an orphaned connection in TIME_WAIT over to the compact table and frees it.
    fn hand_over_to_time_wait(&mut self, id: ConnId, tw: &TimeWaitState) {
        match self.time_wait.insert(tw) {
            Ok(()) => self.release(id, true),
            Err(InsertError::Full) => {
                // Linux (tcp_time_wait without a bucket): the connection closes at once.
                self.counters.tw_overflow += 1;
                if let Some(c) = self.slot_mut(id).and_then(|s| s.conn.as_mut()) {
                    c.end_time_wait(Reason::TimeWaitOverflow);
                }
                self.after_touch_quiet(id);
            }
            // Kept as a full connection: its own timer ends TIME_WAIT.
            Err(InsertError::Unrepresentable) => {}
        }
    }

    fn move_to_accept_queue(&mut self, l: ListenerId, id: ConnId) {
        if let Some(lst) = self.listener_mut(l) {
            if lst.syn_queue.remove(&id) {
                lst.accept_queue.push_back(id);
                self.events.push_back(StackEvent::Incoming(l));
            }
        }
    }

    /// Removes `key` from the 4-tuple index if it still maps to `id` (one lookup).
    fn unmap(&mut self, key: Tuple, id: ConnId) {
        let h = self.tuple_hash.hash_one(key);
        if let Ok(e) = self.demux.find_entry(h, |&i| i == id.index) {
            e.remove();
        }
    }

    /// The live connection of a 4-tuple.
    fn demux_get(&self, local: SocketAddr, remote: SocketAddr) -> Option<ConnId> {
        let h = self.tuple_hash.hash_one(Tuple(local, remote));
        let slots = &self.slots;
        self.demux
            .find(h, |&i| {
                slots[i as usize]
                    .conn
                    .as_ref()
                    .is_some_and(|c| c.has_endpoints(local, remote))
            })
            .map(|&i| ConnId {
                index: i,
                generation: slots[i as usize].generation,
            })
    }

    /// Frees a connection's slot; `unmap`: take it out of the 4-tuple index first (the
    /// index reads each entry's tuple from its slot, so none may point to an empty one),
    /// unless the caller has just done so.
    fn release(&mut self, id: ConnId, unmap: bool) {
        let key = self
            .slot(id)
            .and_then(|s| s.conn.as_ref())
            .filter(|_| unmap)
            .map(|c| Tuple(c.local(), c.remote()));
        if let Some(key) = key {
            self.unmap(key, id);
        }
        let slot = self
            .slots
            .get_mut(id.index as usize)
            .filter(|s| s.generation == id.generation);
        if let Some(slot) = slot {
            slot.conn = None;
            slot.set_listener(None);
            slot.set_scheduled(None);
            self.wheel
                .cancel(std::mem::replace(&mut slot.timer, TimerHandle::DANGLING));
            slot.generation = slot.generation.wrapping_add(1);
            self.free.push(id.index);
        }
    }
}

/// Brings a connection's timer wheel entry in line with its earliest `deadline`.
///
/// The entry moves only when the deadline comes earlier (or the timers stop). A later
/// deadline (the retransmission timer restarted by every ACK) leaves the earlier entry
/// in place: when it fires, the connection finds nothing due and the entry is re-armed
/// at the real deadline. One spurious wake-up per timer period instead of a wheel
/// update per segment; `poll_timeout` stays never later than the true deadline.
/// Hands `seg` to its connection: with [`Connection::handle_staged_segment`] when its
/// payload was staged ([`Stack::verified`]), else [`Connection::handle_segment`].
#[inline(always)]
fn hand_over(
    c: &mut Connection,
    now: Instant,
    seg: &Segment<'_>,
    staged: bool,
    cx: &mut Counters,
) -> Disposition {
    if staged {
        c.handle_staged_segment(now, seg, cx)
    } else {
        c.handle_segment(now, seg, cx)
    }
}

/// Keeps the wheel's entry for `slot` in step with the connection's next deadline.
/// Most calls find it in step (a later deadline leaves the entry where it is: it
/// fires early and is re-armed), so the test is inlined and the move is not.
#[inline]
fn sync_timer(
    wheel: &mut TimerWheel<ConnId>,
    slot: &mut Slot,
    id: ConnId,
    deadline: Option<Instant>,
) {
    let move_entry = match (deadline, slot.scheduled()) {
        (Some(d), Some(s)) => d < s,
        (a, b) => a != b,
    };
    if move_entry {
        move_timer(wheel, slot, id, deadline);
    }
}

#[inline(never)]
fn move_timer(
    wheel: &mut TimerWheel<ConnId>,
    slot: &mut Slot,
    id: ConnId,
    deadline: Option<Instant>,
) {
    slot.set_scheduled(deadline);
    slot.timer = match deadline {
        Some(t) if slot.timer != TimerHandle::DANGLING => wheel.reschedule(slot.timer, t),
        Some(t) => wheel.insert(t, id),
        None => {
            wheel.cancel(slot.timer);
            TimerHandle::DANGLING
        }
    };
}

/// The 4-tuple hash of the connection in slot `i` (every slot in the index holds one).
fn slot_hash(hs: &FixedState, slots: &[Slot], i: u32) -> u64 {
    let c = slots[i as usize]
        .conn
        .as_ref()
        .expect("an indexed slot holds its connection");
    hs.hash_one(Tuple(c.local(), c.remote()))
}

/// `iss` if it lies above `old` + 65536 (the old connection's largest possible window
/// past its last sequence number), else that bound: Linux's `tw_snd_nxt + 65535 + 2`.
fn above(iss: Seq, old: Seq) -> Seq {
    let floor = old + 65537u32;
    if iss > floor {
        iss
    } else {
        floor
    }
}

fn unspecified(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(core::net::Ipv6Addr::UNSPECIFIED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a connection costs in the slab: its TCB (whose own budget is guarded in
    /// `tcp::conn`) and 24 bytes of bookkeeping. With the slab's growth by an eighth,
    /// the 4-tuple index and the timer wheel this is the `concurrent-memory` figure
    /// (466 bytes per connection end at 424 here; issue 7's target is 512): a field
    /// added to `Slot` is paid by every connection.
    #[test]
    fn a_slot_is_the_tcb_and_24_bytes() {
        let (slot, tcb) = (
            core::mem::size_of::<Slot>(),
            core::mem::size_of::<Connection>(),
        );
        assert!(slot <= tcb + 24, "Slot is {slot} bytes, the TCB {tcb}");
        assert!(slot <= 424, "Slot is {slot} bytes, its budget 424");
    }

    #[test]
    fn local_addresses_are_found_whether_few_or_many() {
        let mut s = Stack::new(StackConfig::default());
        let addr = |i: u8| IpAddr::from([10, 1, i, 1]);
        for n in [1u8, 8, 9, 200] {
            while s.addresses().len() < usize::from(n) {
                s.add_address(addr(s.addresses().len() as u8));
            }
            // Adding one again changes nothing.
            s.add_address(addr(0));
            assert_eq!(s.addresses().len(), usize::from(n));
            for i in 0..n {
                assert!(s.is_local(&addr(i)), "{i} of {n}");
            }
            assert!(!s.is_local(&addr(n)), "{n} of {n}");
            assert!(!s.is_local(&IpAddr::from([10, 1, 0, 2])));
        }
    }
}
