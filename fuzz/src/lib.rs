//! The bodies of seqack's fuzz targets, shared by the cargo-fuzz binaries
//! (`fuzz_targets/*.rs`) and the stable replay test (`tests/replay.rs`).
//!
//! - [`wire`]: IP then TCP parsing of arbitrary bytes, with and without checksum
//!   verification, and emit/parse round trips of whatever parsed.
//! - [`stack`]: a [`Stack`] with a listener and an active connection driven by an
//!   arbitrary sequence of operations: raw packets, well-formed segments (valid
//!   checksums, addressed to live 4-tuples, sequence numbers near the connection's),
//!   time and timers, and every application call. Every packet the stack emits must
//!   parse back with valid checksums from one of its addresses, every state change must
//!   be one RFC 9293 allows, and draining must terminate.
//! - [`packetdrill`]: the packetdrill-script parser on arbitrary UTF-8.

use arbitrary::{Arbitrary, Unstructured};
use seqack::stack::StackEvent;
use seqack::tcp::{rfc9293_allows, Shutdown};
use seqack::wire::tcp::{self as wtcp, Flags, Header, OptionLayout, Options, SackBlock};
use seqack::wire::{ip, Seq};
use seqack::{ConnId, Duration, Event, Instant, ListenerId, Stack, StackConfig};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

// ----- wire ----------------------------------------------------------------------------

/// Parses `data` as an IP packet and its payload as TCP (checksum verified and not), and
/// re-emits what parsed: the re-emitted segment must parse back to the same fields.
pub fn wire(data: &[u8]) {
    // The bytes as a whole IP packet.
    if let Ok(p) = ip::parse(data) {
        assert!(p.payload.len() <= data.len());
        for verify in [true, false] {
            if let Ok(seg) = wtcp::parse(p.payload, p.src, p.dst, verify) {
                round_trip_tcp(&seg, p.src, p.dst);
            }
        }
        round_trip_ip(p.src, p.dst, p.protocol, p.hop_limit, p.payload);
    }
    // The bytes as a bare TCP segment, under both address families.
    let pairs: [(IpAddr, IpAddr); 2] = [
        ([192, 0, 2, 1].into(), [192, 0, 2, 2].into()),
        (
            "2001:db8::1".parse().expect("v6"),
            "2001:db8::2".parse().expect("v6"),
        ),
    ];
    for (s, d) in pairs {
        let checked = wtcp::parse(data, s, d, true);
        let unchecked = wtcp::parse(data, s, d, false);
        match (&checked, &unchecked) {
            // Verification only ever adds BadChecksum; a verified parse equals the other.
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Ok(_), Err(e)) => panic!("verified parse succeeded, unverified failed: {e:?}"),
            (Err(_), _) => {}
        }
        if let Ok(seg) = unchecked {
            round_trip_tcp(&seg, s, d);
            assert!(seg.payload.len() + wtcp::HEADER_LEN <= data.len());
        }
    }
    // The options parser alone, on the whole input.
    if let Ok(o) = Options::parse(data) {
        for layout in [OptionLayout::Linux, OptionLayout::FreeBsd] {
            let mut out = [0u8; wtcp::MAX_OPTIONS_LEN];
            let n = o.write(layout, &mut out);
            assert!(
                n <= wtcp::MAX_OPTIONS_LEN && n % 4 == 0,
                "options length {n}"
            );
            assert_eq!(n, o.len(layout));
        }
    }
}

fn round_trip_ip(src: IpAddr, dst: IpAddr, proto: u8, hop: u8, payload: &[u8]) {
    let mut buf = vec![0u8; ip::IPV6_HEADER_LEN + payload.len()];
    let n = ip::emit(&mut buf, src, dst, proto, hop, payload.len());
    assert_eq!(n, ip::header_len(dst));
    buf.truncate(n + payload.len());
    buf[n..].copy_from_slice(payload);
    if payload.len() + n > usize::from(u16::MAX) {
        return; // a length field cannot say it
    }
    let p = ip::parse(&buf).expect("an emitted IP header parses");
    assert_eq!((p.src, p.dst, p.hop_limit, p.ecn), (src, dst, hop, 0));
    if ![0, 43, 60, 44].contains(&proto) || src.is_ipv4() {
        assert_eq!(p.protocol, proto);
        assert_eq!(p.payload, payload);
    }
}

fn round_trip_tcp(seg: &wtcp::Segment<'_>, src: IpAddr, dst: IpAddr) {
    let hdr = Header {
        src_port: seg.src_port,
        dst_port: seg.dst_port,
        seq: seg.seq,
        ack: seg.ack,
        flags: seg.flags,
        window: seg.window,
        options: seg.options,
    };
    for layout in [OptionLayout::Linux, OptionLayout::FreeBsd] {
        let mut buf = vec![0u8; wtcp::HEADER_LEN + wtcp::MAX_OPTIONS_LEN + seg.payload.len()];
        let n = wtcp::emit(&mut buf, &hdr, layout, (seg.payload, &[]), src, dst)
            .expect("buffer sized for the largest header");
        let back = wtcp::parse(&buf[..n], src, dst, true).expect("an emitted segment parses");
        assert_eq!(back.src_port, seg.src_port);
        assert_eq!(back.dst_port, seg.dst_port);
        assert_eq!(back.seq, seg.seq);
        if seg.flags.ack() {
            assert_eq!(back.ack, seg.ack);
        }
        assert_eq!(back.flags, seg.flags);
        assert_eq!(back.window, seg.window);
        assert_eq!(back.payload, seg.payload);
        // Options that fit the 40 bytes come back as written (the writer drops SACK
        // blocks that do not fit; everything else always fits).
        assert_eq!(back.options.mss, seg.options.mss);
        assert_eq!(back.options.wscale, seg.options.wscale);
        assert_eq!(back.options.sack_permitted, seg.options.sack_permitted);
        assert_eq!(back.options.timestamps, seg.options.timestamps);
        let kept = usize::from(back.options.sack_len);
        assert!(kept <= usize::from(seg.options.sack_len));
        assert_eq!(
            back.options.sack_blocks(),
            &seg.options.sack_blocks()[..kept]
        );
    }
}

// ----- packetdrill ---------------------------------------------------------------------

/// Lexes and parses `data` (when UTF-8) as a packetdrill script. Only the parser: the
/// runner would execute the script's shell commands.
pub fn packetdrill(data: &[u8]) {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let mut defines = HashMap::new();
    defines.insert("FOO".to_string(), "1".to_string());
    let _ = seqack_packetdrill::parser::parse(src, &defines);
    for word in src.split_whitespace().take(16) {
        let _ = seqack_packetdrill::parser::parse_c_integer(word);
        let _ = seqack_packetdrill::parser::time_to_usecs(word);
    }
}

// ----- stack ---------------------------------------------------------------------------

const LOCAL4: [u8; 4] = [10, 0, 0, 1];
const PEER4: [u8; 4] = [10, 0, 0, 2];
const LOCAL6: &str = "fd00::1";
const PEER6: &str = "fd00::2";
const LISTEN_PORT: u16 = 80;
const PEER_PORT: u16 = 8080;
/// Most bytes one application call moves.
const MAX_IO: usize = 70_000;
/// Most packets one drain may produce before it counts as a livelock.
const MAX_DRAIN: usize = 20_000;

/// Where a crafted segment goes.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Target {
    /// One of the connections the harness holds (accepted or connected).
    Conn(u8),
    /// Any connection the stack has, including orphans the application closed.
    Any(u8),
    /// A TIME_WAIT record.
    TimeWait(u8),
    /// The listener, from a small set of remote ports (one of which the active
    /// connection's peer also uses, on the other side).
    Listener { v6: bool, port: u8 },
    /// An arbitrary 4-tuple on the stack's addresses.
    Free {
        v6: bool,
        local_port: u16,
        remote_port: u16,
    },
}

/// A sequence or acknowledgement number: absolute or relative to the connection's.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Num {
    Abs(u32),
    /// RCV.NXT (for seq) or SND.NXT (for ack) plus a small offset.
    Next(i16),
    /// IRS (for seq) or SND.UNA (for ack) plus an offset.
    Base(i32),
}

#[derive(Arbitrary, Debug, Clone)]
struct CraftedOptions {
    mss: Option<u16>,
    wscale: Option<u8>,
    sack_permitted: bool,
    timestamps: Option<(u32, u32)>,
    /// SACK blocks relative to SND.UNA.
    sack: Vec<(i32, u16)>,
}

#[derive(Arbitrary, Debug, Clone)]
struct Crafted {
    target: Target,
    seq: Num,
    ack: Num,
    flags: u8,
    window: u16,
    options: CraftedOptions,
    payload_len: u16,
    v6_layout: bool,
}

#[derive(Arbitrary, Debug, Clone)]
enum Op {
    /// Arbitrary bytes as an IP packet.
    RawIp(Vec<u8>),
    /// Arbitrary bytes as a TCP segment, wrapped in a valid IP header for a 4-tuple and
    /// with the TCP checksum fixed up, so malformed headers and options get past the
    /// checksum.
    RawTcp {
        target: Target,
        bytes: Vec<u8>,
        fix_checksum: bool,
    },
    /// A well-formed segment.
    Segment(Crafted),
    /// Time passes by some microseconds, then timers run.
    AdvanceMicros(u32),
    /// Time passes by some seconds (reaches keepalive, TIME_WAIT, FIN_WAIT_2 ends).
    AdvanceSecs(u16),
    /// Time jumps to the next timer deadline, which runs.
    NextTimer,
    Send {
        conn: u8,
        len: u32,
    },
    Recv {
        conn: u8,
        len: u32,
    },
    Shutdown {
        conn: u8,
        how: u8,
    },
    Close(u8),
    Abort(u8),
    Accept,
    Connect {
        v6: bool,
        port: Option<u16>,
    },
    Listen {
        v6: bool,
        port: u16,
        backlog: u8,
    },
    CloseListener(u8),
    Keepalive {
        conn: u8,
        on: bool,
    },
}

#[derive(Arbitrary, Debug)]
struct Setup {
    syncookies: u8,
    seed: u64,
    sack: bool,
    timestamps: bool,
    wscale: bool,
    small_buffers: bool,
    freebsd_layout: bool,
    backlog: u8,
}

struct Harness {
    stack: Stack,
    now: Instant,
    conns: Vec<ConnId>,
    listeners: Vec<ListenerId>,
    buf: Vec<u8>,
    pattern: Vec<u8>,
    /// Drive the stack as a batching driver does (from the setup's seed, so that the
    /// seed corpus decodes as before): packets handed over in batches of up to
    /// `batch` through `handle_packets`, output taken through `poll_transmit_burst`
    /// into `batch` buffers. 0: one at a time.
    batch: usize,
    /// Packets waiting for the next `handle_packets`.
    pending: Vec<Vec<u8>>,
    bufs: Vec<Vec<u8>>,
}

/// Runs the operations decoded from `data` against a stack.
pub fn stack(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(setup) = Setup::arbitrary(&mut u) else {
        return;
    };
    let mut h = Harness::new(&setup);
    while !u.is_empty() {
        let Ok(op) = Op::arbitrary(&mut u) else {
            break;
        };
        h.step(op);
        if h.pending.is_empty() {
            h.drain();
        }
    }
    h.flush();
    h.drain();
    // Let the stack run out its timers: every connection ends, nothing loops.
    for _ in 0..200 {
        let Some(t) = h.stack.poll_timeout() else {
            break;
        };
        h.now = h.now.max(t);
        h.stack.handle_timeout(h.now);
        h.drain();
    }
}

impl Harness {
    fn new(s: &Setup) -> Harness {
        let mut cfg = StackConfig {
            seed: s.seed,
            ..StackConfig::default()
        };
        cfg.syncookies = match s.syncookies % 3 {
            0 => seqack::stack::SynCookies::Off,
            1 => seqack::stack::SynCookies::OnOverflow,
            _ => seqack::stack::SynCookies::Always,
        };
        cfg.tcp.sack = s.sack;
        cfg.tcp.timestamps = s.timestamps;
        if !s.wscale {
            cfg.tcp.wscale = None;
        }
        if s.freebsd_layout {
            cfg.tcp.option_layout = OptionLayout::FreeBsd;
        }
        if s.small_buffers {
            cfg.tcp.send_buffer = 4096;
            cfg.tcp.recv_buffer = 4096;
        }
        let mut stack = Stack::new(cfg);
        stack.add_address(LOCAL4.into());
        stack.add_address(LOCAL6.parse().expect("v6"));
        let now = Instant::from_secs(1);
        let mut listeners = Vec::new();
        let backlog = usize::from(s.backlog % 8) + 1;
        if let Ok(l) = stack.listen(SocketAddr::new(LOCAL4.into(), LISTEN_PORT), backlog) {
            listeners.push(l);
        }
        let mut conns = Vec::new();
        if let Ok(c) = stack.connect(now, None, SocketAddr::new(PEER4.into(), PEER_PORT)) {
            conns.push(c);
        }
        let mut h = Harness {
            stack,
            now,
            conns,
            listeners,
            buf: vec![0u8; 1 << 17],
            pattern: (0..MAX_IO).map(|i| (i * 31 + 7) as u8).collect(),
            batch: [0, 0, 1, 2, 3, 5, 8, 16][(s.seed % 8) as usize],
            pending: Vec::new(),
            bufs: Vec::new(),
        };
        h.bufs = vec![vec![0u8; 1 << 17]; h.batch];
        h.drain();
        h
    }

    fn conn(&self, i: u8) -> Option<ConnId> {
        if self.conns.is_empty() {
            None
        } else {
            Some(self.conns[usize::from(i) % self.conns.len()])
        }
    }

    /// One arriving packet: at once, or into the pending batch (handed over when full).
    fn input(&mut self, pkt: Vec<u8>) {
        if self.batch == 0 {
            self.stack.handle_packet(self.now, &pkt);
            return;
        }
        self.pending.push(pkt);
        if self.pending.len() >= self.batch {
            self.flush();
        }
    }

    /// Hands the pending batch to the stack.
    fn flush(&mut self) {
        if !self.pending.is_empty() {
            let now = self.now;
            self.stack
                .handle_packets(now, self.pending.iter().map(Vec::as_slice));
            self.pending.clear();
        }
    }

    fn step(&mut self, op: Op) {
        let now = self.now;
        if !matches!(op, Op::RawIp(_) | Op::RawTcp { .. } | Op::Segment(_)) {
            // Anything else sees the stack after the packets before it.
            self.flush();
            self.drain();
        }
        match op {
            Op::RawIp(bytes) => self.input(bytes),
            Op::RawTcp {
                target,
                mut bytes,
                fix_checksum,
            } => {
                let (local, remote, _) = self.resolve(target);
                if fix_checksum && bytes.len() >= wtcp::HEADER_LEN {
                    bytes[16..18].copy_from_slice(&[0, 0]);
                    let sum = seqack::wire::checksum::accumulate(
                        seqack::wire::checksum::pseudo_header(
                            remote.ip(),
                            local.ip(),
                            ip::PROTO_TCP,
                            bytes.len() as u32,
                        ),
                        &bytes,
                    );
                    let c = !seqack::wire::checksum::fold(sum);
                    bytes[16..18].copy_from_slice(&c.to_be_bytes());
                }
                let pkt = wrap_ip(remote.ip(), local.ip(), &bytes);
                self.input(pkt);
            }
            Op::Segment(c) => {
                if let Some(pkt) = self.craft(&c) {
                    self.input(pkt);
                }
            }
            Op::AdvanceMicros(us) => {
                self.now += Duration::from_micros(u64::from(us));
                self.stack.handle_timeout(self.now);
            }
            Op::AdvanceSecs(s) => {
                self.now += Duration::from_micros(u64::from(s) * 1_000_000);
                self.stack.handle_timeout(self.now);
            }
            Op::NextTimer => {
                if let Some(t) = self.stack.poll_timeout() {
                    self.now = self.now.max(t);
                    self.stack.handle_timeout(self.now);
                }
            }
            Op::Send { conn, len } => {
                if let Some(id) = self.conn(conn) {
                    let n = (len as usize) % (MAX_IO + 1);
                    if let Ok(sent) = self.stack.send(now, id, &self.pattern[..n]) {
                        assert!(sent <= n);
                    }
                }
            }
            Op::Recv { conn, len } => {
                if let Some(id) = self.conn(conn) {
                    let n = (len as usize) % (MAX_IO + 1);
                    let mut out = vec![0u8; n];
                    if let Ok(got) = self.stack.recv(now, id, &mut out) {
                        assert!(got <= n);
                    }
                }
            }
            Op::Shutdown { conn, how } => {
                if let Some(id) = self.conn(conn) {
                    let how = match how % 3 {
                        0 => Shutdown::Read,
                        1 => Shutdown::Write,
                        _ => Shutdown::Both,
                    };
                    self.stack.shutdown(now, id, how);
                }
            }
            Op::Close(i) => {
                if let Some(id) = self.conn(i) {
                    self.stack.close(now, id);
                    self.conns.retain(|&c| c != id);
                }
            }
            Op::Abort(i) => {
                if let Some(id) = self.conn(i) {
                    self.stack.abort(now, id);
                    self.conns.retain(|&c| c != id);
                }
            }
            Op::Accept => {
                for &l in &self.listeners {
                    if let Some(id) = self.stack.accept(l) {
                        self.conns.push(id);
                        break;
                    }
                }
            }
            Op::Connect { v6, port } => {
                let (lip, rip) = addrs(v6);
                let local = port.map(|p| SocketAddr::new(lip, p));
                if let Ok(id) = self
                    .stack
                    .connect(now, local, SocketAddr::new(rip, PEER_PORT))
                {
                    self.conns.push(id);
                }
            }
            Op::Listen { v6, port, backlog } => {
                let (lip, _) = addrs(v6);
                let backlog = usize::from(backlog % 8) + 1;
                if let Ok(l) = self.stack.listen(SocketAddr::new(lip, port), backlog) {
                    self.listeners.push(l);
                }
            }
            Op::CloseListener(i) => {
                if !self.listeners.is_empty() {
                    let l = self.listeners.remove(usize::from(i) % self.listeners.len());
                    self.stack.close_listener(now, l);
                }
            }
            Op::Keepalive { conn, on } => {
                if let Some(id) = self.conn(conn) {
                    self.stack
                        .with_conn(now, id, |c, now, _| c.set_keepalive(now, on));
                }
            }
        }
    }

    /// The 4-tuple a target names, as (local, remote), with the connection's sequence
    /// variables (ISS, SND.UNA, SND.NXT, IRS, RCV.NXT) when there is one.
    fn resolve(&self, t: Target) -> (SocketAddr, SocketAddr, Option<[Seq; 5]>) {
        let from_conn = |id: ConnId| {
            self.stack.conn(id).map(|c| {
                let (a, b, cc, d, e) = c.sequence();
                (c.local(), c.remote(), Some([a, b, cc, d, e]))
            })
        };
        let fallback = || {
            (
                SocketAddr::new(LOCAL4.into(), LISTEN_PORT),
                SocketAddr::new(PEER4.into(), 40000),
                None,
            )
        };
        match t {
            Target::Conn(i) => self.conn(i).and_then(from_conn).unwrap_or_else(fallback),
            Target::Any(i) => {
                let ids: Vec<ConnId> = self.stack.connections().map(|(id, _)| id).collect();
                if ids.is_empty() {
                    fallback()
                } else {
                    from_conn(ids[usize::from(i) % ids.len()]).unwrap_or_else(fallback)
                }
            }
            Target::TimeWait(i) => {
                let tws: Vec<(SocketAddr, SocketAddr)> = self
                    .stack
                    .sockets(self.now)
                    .into_iter()
                    .filter(|s| s.state == seqack::State::TimeWait)
                    .filter_map(|s| Some((s.local, s.remote?)))
                    .collect();
                if tws.is_empty() {
                    fallback()
                } else {
                    let (l, r) = tws[usize::from(i) % tws.len()];
                    match self.stack.time_wait().get(l, r) {
                        Some(info) => (
                            l,
                            r,
                            Some([info.snd_nxt, info.snd_nxt, info.snd_nxt, Seq(0), Seq(0)]),
                        ),
                        None => (l, r, None),
                    }
                }
            }
            Target::Listener { v6, port } => {
                let (lip, rip) = addrs(v6);
                (
                    SocketAddr::new(lip, LISTEN_PORT),
                    SocketAddr::new(rip, 40000 + u16::from(port % 4)),
                    None,
                )
            }
            Target::Free {
                v6,
                local_port,
                remote_port,
            } => {
                let (lip, rip) = addrs(v6);
                (
                    SocketAddr::new(lip, local_port),
                    SocketAddr::new(rip, remote_port),
                    None,
                )
            }
        }
    }

    fn craft(&self, c: &Crafted) -> Option<Vec<u8>> {
        let (local, remote, seqs) = self.resolve(c.target);
        let [_, snd_una, snd_nxt, irs, rcv_nxt] = seqs.unwrap_or([Seq(0); 5]);
        let seq = match c.seq {
            Num::Abs(n) => Seq(n),
            Num::Next(d) => Seq(rcv_nxt.0.wrapping_add(d as i32 as u32)),
            Num::Base(d) => Seq(irs.0.wrapping_add(d as u32)),
        };
        let ack = match c.ack {
            Num::Abs(n) => Seq(n),
            Num::Next(d) => Seq(snd_nxt.0.wrapping_add(d as i32 as u32)),
            Num::Base(d) => Seq(snd_una.0.wrapping_add(d as u32)),
        };
        let mut options = Options {
            mss: c.options.mss,
            wscale: c.options.wscale,
            sack_permitted: c.options.sack_permitted,
            timestamps: c.options.timestamps,
            ..Options::default()
        };
        for &(off, len) in c.options.sack.iter().take(4) {
            let left = Seq(snd_una.0.wrapping_add(off as u32));
            options.push_sack(SackBlock {
                left,
                right: Seq(left.0.wrapping_add(u32::from(len))),
            });
        }
        let hdr = Header {
            src_port: remote.port(),
            dst_port: local.port(),
            seq,
            ack,
            flags: Flags(c.flags),
            window: c.window,
            options,
        };
        let plen = usize::from(c.payload_len) % 3000;
        let payload = &self.pattern[..plen];
        let layout = if c.v6_layout {
            OptionLayout::FreeBsd
        } else {
            OptionLayout::Linux
        };
        let mut tcp = vec![0u8; wtcp::HEADER_LEN + wtcp::MAX_OPTIONS_LEN + plen];
        let n = wtcp::emit(
            &mut tcp,
            &hdr,
            layout,
            (payload, &[]),
            remote.ip(),
            local.ip(),
        )?;
        tcp.truncate(n);
        Some(wrap_ip(remote.ip(), local.ip(), &tcp))
    }

    /// Sends everything the stack has and checks it; reads every event and checks it.
    fn drain(&mut self) {
        let mut n = 0;
        let mut lens = vec![0usize; self.batch];
        loop {
            // One packet at a time, or a burst (which must fill buffers in order and
            // stop only when nothing is left).
            let got = if self.batch == 0 {
                match self.stack.poll_transmit(self.now, &mut self.buf) {
                    Some(len) => {
                        lens = vec![len];
                        1
                    }
                    None => 0,
                }
            } else {
                self.stack
                    .poll_transmit_burst(self.now, &mut self.bufs, &mut lens)
            };
            for i in 0..got {
                let buf = if self.batch == 0 {
                    &self.buf
                } else {
                    &self.bufs[i]
                };
                n += 1;
                assert!(n <= MAX_DRAIN, "poll_transmit does not run dry");
                check_emitted(&self.stack, buf, lens[i]);
            }
            if got == 0 || (self.batch > 0 && got < self.batch) {
                break;
            }
        }
        let mut m = 0;
        while let Some(ev) = self.stack.poll_event() {
            m += 1;
            assert!(m <= MAX_DRAIN, "poll_event does not run dry");
            let e = match ev {
                StackEvent::Conn { event, .. } => event,
                StackEvent::Listener { event, .. } => event,
                StackEvent::TimeWait { event, .. } => event,
                StackEvent::Incoming(_) => continue,
            };
            if let Event::StateChange { from, to, why } = e {
                assert!(
                    rfc9293_allows(from, to, why),
                    "state change RFC 9293 does not allow: {from:?} -> {to:?} ({why:?})"
                );
            }
        }
        // Handles of connections that are gone are dropped.
        self.conns.retain(|&id| self.stack.conn(id).is_some());
    }
}

/// What every emitted packet must be: IP from one of our addresses, TCP with a valid
/// checksum, never SYN with RST.
fn check_emitted(stack: &Stack, buf: &[u8], len: usize) {
    assert!(len <= buf.len());
    let pkt = &buf[..len];
    let p = ip::parse(pkt).expect("an emitted packet parses as IP");
    assert_eq!(p.protocol, ip::PROTO_TCP);
    assert!(
        stack.addresses().contains(&p.src),
        "sent from {} which is not ours",
        p.src
    );
    let seg = wtcp::parse(p.payload, p.src, p.dst, true)
        .expect("an emitted segment parses with a valid checksum");
    assert!(
        !(seg.flags.syn() && seg.flags.rst()),
        "SYN and RST together: {seg:?}"
    );
    assert!(seg.payload.len() <= 65535);
}

fn addrs(v6: bool) -> (IpAddr, IpAddr) {
    if v6 {
        (LOCAL6.parse().expect("v6"), PEER6.parse().expect("v6"))
    } else {
        (LOCAL4.into(), PEER4.into())
    }
}

fn wrap_ip(src: IpAddr, dst: IpAddr, tcp: &[u8]) -> Vec<u8> {
    let mut pkt = vec![0u8; ip::header_len(dst) + tcp.len()];
    let n = ip::emit(&mut pkt, src, dst, ip::PROTO_TCP, 64, tcp.len());
    pkt[n..].copy_from_slice(tcp);
    pkt
}
