//! Compact TIME_WAIT records: what is left of a connection once the application has
//! closed it and it waits out 2MSL.
//!
//! A busy client holds tens of thousands of 4-tuples in TIME_WAIT (60 s of them at
//! Linux's length); a full [`Connection`](crate::tcp::Connection) with its buffers for
//! each would cost kilobytes apiece. Linux turns the socket into an
//! `inet_timewait_sock` of about 256 bytes; seqack keeps a record of **40 bytes (IPv4)
//! or 52 bytes (IPv6)**, plus about 5 to 11 bytes of hash index per record, holding only
//! what TIME_WAIT's rules ([`time_wait_segment`]) and its ACKs need:
//!
//! | field | bytes | why |
//! |---|---|---|
//! | remote address | 4 / 16 | the 4-tuple |
//! | local address | 2 | index into a small table of the stack's own addresses |
//! | ports | 4 | the 4-tuple |
//! | window | 2 | the (scaled) window field of our ACKs |
//! | RCV.NXT, SND.NXT | 8 | the acceptability test, the ACK's numbers, RFC 6191 |
//! | TS.Recent | 4 | PAWS, RFC 6191's timestamp rule, the ACK's TSecr |
//! | deadline | 4 | milliseconds, wrapping (2MSL is far below 2^31 ms) |
//! | wheel link | 4 | the timing-wheel slot list, or the free list |
//! | last ACK | 4 | rate limit of ACKs to out-of-window segments |
//! | flags, 2MSL class | 2 | timestamps on, RFC 1337, list membership; which 2MSL |
//!
//! Our TSval is not stored: it is recomputed from the 4-tuple by the stack's keyed
//! RFC 6528 offset, as the connection computed it. TS.Recent's age is not stored
//! either: a record lives 2MSL (minutes), far below PAWS's 24-day idle limit.
//!
//! # Structure
//!
//! Records of each address family live in a chunked slab (4096 records a chunk, so the
//! slab never holds more than one partly used chunk and never copies on growth), found
//! by 4-tuple through a `hashbrown::HashTable` of `u32` slab indices hashed with foldhash
//! keyed by a secret from the stack's seed (remote addresses and ports are chosen by
//! peers; a keyed hash keeps an attacker from aiming many tuples at one bucket). A full
//! index is rebuilt at twice the live records by reading the slab in order, not grown
//! by hashbrown, whose rehash would read every entry's record at random.
//!
//! Their 2MSL timers are a hashed timing wheel of [`SLOTS`] slots of [`GRANULARITY_MS`]
//! ms (a 65.5 s revolution) whose slot lists are threaded through the records
//! themselves, one `u32` link each, with an occupancy bitmap to find the next occupied
//! slot. Arming is a push onto a slot list: O(1). Expiry pops a slot's list: records
//! due are freed, records due in a later revolution (2MSL above 65.5 s) or whose 2MSL
//! was restarted by a retransmitted FIN are linked again into the slot of their
//! deadline: O(1) per record per revolution. A record removed early (a SYN reusing the
//! 4-tuple, an RST with RFC 1337 off) leaves the index at once and stays on its slot
//! list as a tombstone until the wheel passes it, which keeps the lists singly linked.
//! Expiry is exact to the millisecond and never early: a deadline is rounded up to the
//! next millisecond.

use crate::tcp::time_wait::{time_wait_segment, TimeWaitAction, TimeWaitState};
use crate::time::{Duration, Instant};
use crate::wire::tcp::{Flags, Header, Options, Segment};
use crate::wire::Seq;
use core::hash::Hasher;
use core::net::{IpAddr, SocketAddr};
use foldhash::fast::FixedState;
use hashbrown::HashTable;
use std::hash::BuildHasher;

/// Width of a wheel slot, milliseconds.
pub const GRANULARITY_MS: u32 = 4;
/// Slots of the wheel. `GRANULARITY_MS * SLOTS` divides 2^32, so a slot computed from a
/// wrapped 32-bit millisecond deadline is the slot of the true deadline.
pub const SLOTS: usize = 1 << 14;
/// Records per slab chunk.
const CHUNK: usize = 1 << 12;
const NIL: u32 = u32::MAX;
/// Most distinct 2MSL lengths one table holds (a stack normally has one).
const MAX_DURATIONS: usize = 16;

const LIVE: u8 = 1;
const TS: u8 = 4;
const RFC1337: u8 = 8;
const ACKED: u8 = 16;
const ACK_REQUIRED: u8 = 32;

/// An address family's address as stored in a record.
trait Addr: Copy + Default + Eq {
    fn from_ip(ip: IpAddr) -> Option<Self>;
    fn to_ip(self) -> IpAddr;
    fn bytes(&self) -> &[u8];
}

impl Addr for [u8; 4] {
    fn from_ip(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V4(a) => Some(a.octets()),
            IpAddr::V6(_) => None,
        }
    }
    fn to_ip(self) -> IpAddr {
        IpAddr::from(self)
    }
    fn bytes(&self) -> &[u8] {
        self
    }
}

impl Addr for [u8; 16] {
    fn from_ip(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V6(a) => Some(a.octets()),
            IpAddr::V4(_) => None,
        }
    }
    fn to_ip(self) -> IpAddr {
        IpAddr::from(self)
    }
    fn bytes(&self) -> &[u8] {
        self
    }
}

/// One TIME_WAIT record. See the module documentation for the layout.
#[derive(Copy, Clone, Default)]
struct Record<A> {
    remote: A,
    local: u16,
    lport: u16,
    rport: u16,
    window: u16,
    rcv_nxt: u32,
    snd_nxt: u32,
    ts_recent: u32,
    /// Milliseconds since `Instant::ZERO`, wrapping.
    deadline: u32,
    /// Next record of the same wheel slot (or of the free list).
    next: u32,
    /// When we last sent a rate-limited ACK, milliseconds, wrapping.
    last_ack: u32,
    flags: u8,
    /// Index into the table's 2MSL lengths.
    duration: u8,
}

/// A 4-tuple in one family's form.
#[derive(Copy, Clone)]
struct Key<A> {
    local: A,
    lport: u16,
    remote: A,
    rport: u16,
}

/// What happened to a segment that hit a TIME_WAIT record.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// What TIME_WAIT's rules decided.
    pub action: TimeWaitAction,
    /// The ACK to send, if any (its TSval still to be filled in by the caller when
    /// `options.timestamps` is set: the record does not know the stack's clock offset).
    pub reply: Option<Header>,
    /// For [`TimeWaitAction::Recycle`]: the old connection's SND.NXT, so that the new
    /// connection's ISN can be placed above it.
    pub old_snd_nxt: Seq,
    /// True when a pure ACK was not answered because of the rate limit.
    pub ack_skipped: bool,
}

/// A record as seen from outside: for `ss`-like snapshots and port reuse.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TimeWaitInfo {
    /// Local address and port.
    pub local: SocketAddr,
    /// Remote address and port.
    pub remote: SocketAddr,
    /// When 2MSL ends.
    pub deadline: Instant,
    /// When the record entered (or last restarted) TIME_WAIT.
    pub since: Instant,
    /// Our SND.NXT.
    pub snd_nxt: Seq,
    /// Whether timestamps were in use.
    pub timestamps: bool,
}

/// The records of one address family.
struct Family<A> {
    /// The index's keyed hash.
    key: FixedState,
    chunks: Vec<Box<[Record<A>]>>,
    /// Slab slots handed out so far (the high-water mark).
    allocated: u32,
    /// Head of the free list.
    free: u32,
    index: HashTable<u32>,
    /// The local addresses records refer to by index.
    locals: Vec<A>,
    /// `locals`' positions by address, once there are more than [`LOCAL_SCAN`] of them
    /// (a stack with many local addresses would otherwise scan them all on every
    /// insert).
    local_ids: HashTable<u16>,
    /// Wheel slot heads (empty until the first record arrives).
    heads: Vec<u32>,
    /// One bit per wheel slot: non-empty.
    occupied: Vec<u64>,
    live: usize,
    tombstones: usize,
}

/// Up to this many local addresses, [`Family::local_index`] scans them.
const LOCAL_SCAN: usize = 8;

fn hash_addr<A: Addr>(key: &FixedState, a: &A) -> u64 {
    let mut h = key.build_hasher();
    h.write(a.bytes());
    h.finish()
}

fn hash_key<A: Addr>(key: &FixedState, k: &Key<A>) -> u64 {
    let mut h = key.build_hasher();
    h.write(k.local.bytes());
    h.write(k.remote.bytes());
    h.write_u16(k.lport);
    h.write_u16(k.rport);
    h.finish()
}

/// The index hash of the record in slab slot `j` (the index's rehash function).
fn record_hash<A: Addr>(
    key: &FixedState,
    chunks: &[Box<[Record<A>]>],
    locals: &[A],
    j: u32,
) -> u64 {
    hash_key(
        key,
        &record_key(locals, &chunks[j as usize / CHUNK][j as usize % CHUNK]),
    )
}

/// A record's 4-tuple, its local address looked up in `locals`.
fn record_key<A: Addr>(locals: &[A], r: &Record<A>) -> Key<A> {
    Key {
        local: locals[r.local as usize],
        lport: r.lport,
        remote: r.remote,
        rport: r.rport,
    }
}

/// Turns a wrapped 32-bit millisecond time into an absolute one, given an absolute
/// reference within 2^31 ms of it.
fn unwrap_ms(wrapped: u32, reference: u64) -> u64 {
    let delta = wrapped.wrapping_sub(reference as u32) as i32 as i64;
    (reference as i64 + delta).max(0) as u64
}

impl<A: Addr> Family<A> {
    fn new(key: [u8; 16]) -> Self {
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&key[..8]);
        Family {
            key: FixedState::with_seed(u64::from_le_bytes(seed)),
            chunks: Vec::new(),
            allocated: 0,
            free: NIL,
            index: HashTable::new(),
            locals: Vec::new(),
            local_ids: HashTable::new(),
            heads: Vec::new(),
            occupied: Vec::new(),
            live: 0,
            tombstones: 0,
        }
    }

    fn rec(&self, i: u32) -> &Record<A> {
        &self.chunks[i as usize / CHUNK][i as usize % CHUNK]
    }

    fn rec_mut(&mut self, i: u32) -> &mut Record<A> {
        &mut self.chunks[i as usize / CHUNK][i as usize % CHUNK]
    }

    fn key_of(&self, r: &Record<A>) -> Key<A> {
        record_key(&self.locals, r)
    }

    fn key(local: SocketAddr, remote: SocketAddr) -> Option<Key<A>> {
        Some(Key {
            local: A::from_ip(local.ip())?,
            lport: local.port(),
            remote: A::from_ip(remote.ip())?,
            rport: remote.port(),
        })
    }

    fn find(&self, k: &Key<A>) -> Option<(u32, u64)> {
        let hash = hash_key(&self.key, k);
        Some((self.find_hashed(k, hash)?, hash))
    }

    /// As [`Family::find`], with `k`'s hash already computed.
    fn find_hashed(&self, k: &Key<A>, hash: u64) -> Option<u32> {
        self.index
            .find(hash, |&i| {
                let r = self.rec(i);
                r.lport == k.lport
                    && r.rport == k.rport
                    && r.remote == k.remote
                    && self.locals[r.local as usize] == k.local
            })
            .copied()
    }

    fn alloc(&mut self) -> Option<u32> {
        if self.free != NIL {
            let i = self.free;
            self.free = self.rec(i).next;
            return Some(i);
        }
        if self.allocated == NIL {
            return None;
        }
        if self.allocated as usize == self.chunks.len() * CHUNK {
            self.chunks
                .push(vec![Record::default(); CHUNK].into_boxed_slice());
        }
        self.allocated += 1;
        Some(self.allocated - 1)
    }

    fn free_slot(&mut self, i: u32) {
        let head = self.free;
        let r = self.rec_mut(i);
        r.flags = 0;
        r.next = head;
        self.free = i;
    }

    fn local_index(&mut self, a: A) -> Option<u16> {
        let locals = &self.locals;
        if locals.len() <= LOCAL_SCAN {
            if let Some(p) = locals.iter().position(|&x| x == a) {
                return Some(p as u16);
            }
        } else if let Some(&p) = self
            .local_ids
            .find(hash_addr(&self.key, &a), |&i| locals[usize::from(i)] == a)
        {
            return Some(p);
        }
        if locals.len() >= usize::from(u16::MAX) {
            return None;
        }
        self.locals.push(a);
        let n = self.locals.len();
        if n > LOCAL_SCAN {
            // The first time past the scan limit, every address goes in; then each new one.
            let (key, locals) = (&self.key, &self.locals);
            for i in if n == LOCAL_SCAN + 1 { 0..n } else { n - 1..n } {
                self.local_ids
                    .insert_unique(hash_addr(key, &locals[i]), i as u16, |&j| {
                        hash_addr(key, &locals[usize::from(j)])
                    });
            }
        }
        Some((n - 1) as u16)
    }

    fn link(&mut self, i: u32, slot: usize) {
        if self.heads.is_empty() {
            self.heads = vec![NIL; SLOTS];
            self.occupied = vec![0; SLOTS / 64];
        }
        let head = self.heads[slot];
        self.rec_mut(i).next = head;
        self.heads[slot] = i;
        self.occupied[slot / 64] |= 1 << (slot % 64);
    }

    /// Takes a live record out of the index. Unless `freed` (the wheel is freeing it),
    /// it stays on its slot list as a tombstone until the wheel passes it.
    fn unindex(&mut self, hash: u64, i: u32) {
        if let Ok(e) = self.index.find_entry(hash, |&j| j == i) {
            e.remove();
        }
        self.rec_mut(i).flags &= !LIVE;
        self.live -= 1;
        self.tombstones += 1;
    }

    fn insert(&mut self, local: A, remote: A, mut rec: Record<A>, slot: usize) -> bool {
        let Some(local_ix) = self.local_index(local) else {
            return false;
        };
        rec.local = local_ix;
        rec.remote = remote;
        let k = self.key_of(&rec);
        // A record already holding the tuple (the stack removes it before a connection
        // takes the tuple, so this is only defence) is replaced.
        let hash = hash_key(&self.key, &k);
        if let Some(old) = self.find_hashed(&k, hash) {
            self.unindex(hash, old);
        }
        if self.index.len() == self.index.capacity() {
            self.regrow();
        }
        let Some(i) = self.alloc() else {
            return false;
        };
        *self.rec_mut(i) = rec;
        let Family {
            key,
            index,
            chunks,
            locals,
            ..
        } = self;
        index.insert_unique(hash, i, |&j| record_hash(key, chunks, locals, j));
        self.live += 1;
        self.link(i, slot);
        true
    }

    /// Replaces a full index with one of room for twice the live records, built by
    /// reading the slab in order. hashbrown's own growth would visit the entries bucket
    /// by bucket and read each one's record at random to hash its 4-tuple: a cache miss
    /// per record once the slab outgrows the cache (this halved the time-wait bench's
    /// insert at 1,000,000 records). An index full of removed entries' tombstones is
    /// rebuilt the same way.
    fn regrow(&mut self) {
        let Family {
            key,
            index,
            chunks,
            locals,
            allocated,
            live,
            ..
        } = self;
        let hash_of = |j: u32| record_hash(key, chunks, locals, j);
        let mut grown = HashTable::with_capacity((2 * *live).max(16));
        for j in 0..*allocated {
            if chunks[j as usize / CHUNK][j as usize % CHUNK].flags & LIVE != 0 {
                grown.insert_unique(hash_of(j), j, |&x| hash_of(x));
            }
        }
        *index = grown;
    }

    fn info(&self, r: &Record<A>, reference_ms: u64, durations: &[u32]) -> TimeWaitInfo {
        let k = self.key_of(r);
        let deadline_ms = unwrap_ms(r.deadline, reference_ms);
        let dur = u64::from(durations[r.duration as usize]);
        TimeWaitInfo {
            local: SocketAddr::new(k.local.to_ip(), k.lport),
            remote: SocketAddr::new(k.remote.to_ip(), k.rport),
            deadline: Instant::from_micros(deadline_ms * 1000),
            since: Instant::from_micros(deadline_ms.saturating_sub(dur) * 1000),
            snd_nxt: Seq(r.snd_nxt),
            timestamps: r.flags & TS != 0,
        }
    }

    fn get(&self, local: SocketAddr, remote: SocketAddr) -> Option<&Record<A>> {
        let (i, _) = self.find(&Self::key(local, remote)?)?;
        Some(self.rec(i))
    }

    fn remove(&mut self, local: SocketAddr, remote: SocketAddr) -> bool {
        let Some(k) = Self::key(local, remote) else {
            return false;
        };
        let Some((i, hash)) = self.find(&k) else {
            return false;
        };
        self.unindex(hash, i);
        true
    }

    /// TIME_WAIT's rules on the record of a 4-tuple.
    fn segment(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &Segment<'_>,
        now_ms: u64,
        ack_interval: Duration,
        durations: &[u32],
    ) -> Option<Hit> {
        let (i, hash) = self.find(&Self::key(local, remote)?)?;
        let r = *self.rec(i);
        let ts_on = r.flags & TS != 0;
        // PAWS (RFC 7323 5.3); RSTs are exempt.
        let paws_reject = ts_on
            && !seg.flags.rst()
            && seg
                .options
                .timestamps
                .is_some_and(|(val, _)| (val.wrapping_sub(r.ts_recent) as i32) < 0);
        let action = time_wait_segment(
            seg,
            Seq(r.rcv_nxt),
            ts_on.then_some(r.ts_recent),
            paws_reject,
            r.flags & RFC1337 != 0,
            r.flags & ACK_REQUIRED != 0,
        );
        let mut hit = Hit {
            action,
            reply: None,
            old_snd_nxt: Seq(r.snd_nxt),
            ack_skipped: false,
        };
        let mut ack = Header {
            src_port: r.lport,
            dst_port: r.rport,
            seq: Seq(r.snd_nxt),
            ack: Seq(r.rcv_nxt),
            flags: Flags::ACK,
            window: r.window,
            options: Options::default(),
        };
        match action {
            TimeWaitAction::Nothing | TimeWaitAction::RstIgnored => {}
            TimeWaitAction::Close | TimeWaitAction::Recycle => self.unindex(hash, i),
            TimeWaitAction::AckAndRestart => {
                // The peer's FIN again: our last ACK was lost. ACK it and wait 2MSL anew;
                // the record moves to its new slot when the wheel reaches the old one.
                let rec = self.rec_mut(i);
                if let (true, Some((val, _))) = (ts_on, seg.options.timestamps) {
                    if (val.wrapping_sub(rec.ts_recent) as i32) >= 0 {
                        rec.ts_recent = val;
                    }
                }
                rec.deadline = (now_ms as u32).wrapping_add(durations[rec.duration as usize]);
                ack.options.timestamps = ts_on.then_some((0, rec.ts_recent));
                hit.reply = Some(ack);
            }
            TimeWaitAction::Ack => {
                // Linux's tcp_oow_rate_limited: a segment occupying sequence space
                // (data, FIN) without SYN is always answered, as it cannot be one side
                // of an ACK loop; pure ACKs and SYNs are rate-limited.
                let limited = seg.flags.syn() || seg.seq_len() == 0;
                let rec = self.rec_mut(i);
                let since = u64::from((now_ms as u32).wrapping_sub(rec.last_ack));
                if limited && rec.flags & ACKED != 0 && u128::from(since) < ack_interval.as_millis()
                {
                    hit.ack_skipped = true;
                } else {
                    if limited {
                        rec.last_ack = now_ms as u32;
                        rec.flags |= ACKED;
                    }
                    ack.options.timestamps = ts_on.then_some((0, rec.ts_recent));
                    hit.reply = Some(ack);
                }
            }
        }
        Some(hit)
    }

    /// A lower bound of the next deadline: exact for records due within the cursor's
    /// tick, otherwise the start of the next occupied slot.
    fn next_deadline(&self, cursor: u64) -> Option<u64> {
        if self.heads.is_empty() || self.live + self.tombstones == 0 {
            return None;
        }
        let g = u64::from(GRANULARITY_MS);
        let cur_slot = (cursor % SLOTS as u64) as usize;
        let base = cursor * g;
        let mut best: Option<u64> = None;
        let mut i = self.heads[cur_slot];
        while i != NIL {
            let r = self.rec(i);
            let d = if r.flags & LIVE != 0 {
                unwrap_ms(r.deadline, base)
            } else {
                // A tombstone: the next expire() frees it.
                base
            };
            if d / g <= cursor {
                best = Some(best.map_or(d, |b| b.min(d)));
            }
            i = r.next;
        }
        if best.is_some() {
            return best;
        }
        // The first occupied slot after the cursor's, found word by word.
        let mut dist = 1u64;
        while dist < SLOTS as u64 {
            let s = ((cursor + dist) % SLOTS as u64) as usize;
            let word = self.occupied[s / 64] >> (s % 64);
            if word == 0 {
                dist += 64 - (s % 64) as u64;
                continue;
            }
            dist += u64::from(word.trailing_zeros());
            return Some((cursor + dist.min(SLOTS as u64)) * g);
        }
        // Only the cursor's slot is occupied, by records of a later revolution.
        (self.heads[cur_slot] != NIL).then_some((cursor + SLOTS as u64) * g)
    }

    /// Processes the occupied slots at distances `0..=span` from `cursor`.
    fn expire(
        &mut self,
        cursor: u64,
        span: u64,
        now_ms: u64,
        out: &mut Vec<(SocketAddr, SocketAddr)>,
    ) {
        if self.heads.is_empty() {
            return;
        }
        let g = u64::from(GRANULARITY_MS);
        let mut dist = 0u64;
        while dist <= span {
            let s = ((cursor + dist) % SLOTS as u64) as usize;
            let word = self.occupied[s / 64] >> (s % 64);
            if word == 0 {
                dist += 64 - (s % 64) as u64;
                continue;
            }
            let skip = u64::from(word.trailing_zeros());
            if skip > 0 {
                dist += skip;
                continue;
            }
            let base = (cursor + dist) * g;
            let mut i = core::mem::replace(&mut self.heads[s], NIL);
            self.occupied[s / 64] &= !(1 << (s % 64));
            while i != NIL {
                let r = *self.rec(i);
                let next = r.next;
                let deadline = unwrap_ms(r.deadline, base);
                if r.flags & LIVE == 0 {
                    self.tombstones -= 1;
                    self.free_slot(i);
                } else if deadline <= now_ms {
                    let k = self.key_of(&r);
                    out.push((
                        SocketAddr::new(k.local.to_ip(), k.lport),
                        SocketAddr::new(k.remote.to_ip(), k.rport),
                    ));
                    let hash = hash_key(&self.key, &k);
                    self.unindex(hash, i);
                    self.tombstones -= 1;
                    self.free_slot(i);
                } else {
                    // A later revolution, or a restarted 2MSL: into its deadline's slot.
                    let slot = ((deadline / g).max(cursor) % SLOTS as u64) as usize;
                    self.link(i, slot);
                }
                i = next;
            }
            dist += 1;
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Record<A>> + '_ {
        (0..self.allocated)
            .map(move |i| self.rec(i))
            .filter(|r| r.flags & LIVE != 0)
    }

    fn memory(&self) -> usize {
        self.chunks.len() * CHUNK * core::mem::size_of::<Record<A>>()
            + self.chunks.capacity() * core::mem::size_of::<Box<[Record<A>]>>()
            + self.index.allocation_size()
            + self.locals.capacity() * core::mem::size_of::<A>()
            + self.local_ids.allocation_size()
            + self.heads.capacity() * 4
            + self.occupied.capacity() * 8
    }
}

/// The stack's TIME_WAIT records, both address families, with their timing wheel.
pub struct TimeWaitTable {
    v4: Family<[u8; 4]>,
    v6: Family<[u8; 16]>,
    limit: usize,
    /// The distinct 2MSL lengths of the records, in milliseconds.
    durations: Vec<u32>,
    /// The last wheel tick processed (absolute, in `GRANULARITY_MS` units).
    cursor: u64,
    /// A lower bound of the next deadline in ms, when known.
    next: Option<u64>,
}

/// Why [`TimeWaitTable::insert`] refused a record.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum InsertError {
    /// The table holds its limit of records (`tcp_max_tw_buckets`).
    Full,
    /// The record cannot be represented compactly (more than 16 distinct 2MSL lengths,
    /// a 2MSL of 2^31 ms or more, or more than 65535 local addresses): the caller keeps
    /// the full connection instead.
    Unrepresentable,
}

/// Dispatches on the address family of a 4-tuple.
macro_rules! family {
    ($self:ident, $local:expr, $remote:expr, |$f:ident| $body:expr, $mixed:expr) => {
        match ($local.ip(), $remote.ip()) {
            (IpAddr::V4(_), IpAddr::V4(_)) => {
                let $f = &mut $self.v4;
                $body
            }
            (IpAddr::V6(_), IpAddr::V6(_)) => {
                let $f = &mut $self.v6;
                $body
            }
            _ => $mixed,
        }
    };
}

impl TimeWaitTable {
    /// An empty table holding at most `limit` records; `key` keys its hash.
    pub fn new(key: [u8; 16], limit: usize) -> TimeWaitTable {
        TimeWaitTable {
            v4: Family::new(key),
            v6: Family::new(key),
            limit,
            durations: Vec::new(),
            cursor: 0,
            next: None,
        }
    }

    /// Size of one IPv4 record in bytes.
    pub const fn record_size_v4() -> usize {
        core::mem::size_of::<Record<[u8; 4]>>()
    }

    /// Size of one IPv6 record in bytes.
    pub const fn record_size_v6() -> usize {
        core::mem::size_of::<Record<[u8; 16]>>()
    }

    /// Records in TIME_WAIT.
    pub fn len(&self) -> usize {
        self.v4.live + self.v6.live
    }

    /// True when no record is in TIME_WAIT.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most records the table holds.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes the table has allocated: slabs, hash indexes, wheels.
    pub fn memory_bytes(&self) -> usize {
        self.v4.memory() + self.v6.memory() + self.durations.capacity() * 4
    }

    /// Adds the record of a connection in TIME_WAIT.
    pub fn insert(&mut self, s: &TimeWaitState) -> Result<(), InsertError> {
        if self.len() >= self.limit {
            return Err(InsertError::Full);
        }
        // Whole milliseconds, rounded up, of the whole microseconds: in 64 bits (a
        // 128-bit division is a library call, on every connection's way out).
        let d = s.duration;
        let dur = d
            .as_secs()
            .saturating_mul(1000)
            .saturating_add(u64::from(d.subsec_micros().div_ceil(1000)));
        if dur >= 1 << 31 {
            return Err(InsertError::Unrepresentable);
        }
        let dur = dur as u32;
        let class = match self.durations.iter().position(|&d| d == dur) {
            Some(p) => p,
            None if self.durations.len() < MAX_DURATIONS => {
                self.durations.push(dur);
                self.durations.len() - 1
            }
            None => return Err(InsertError::Unrepresentable),
        };
        // Rounded up: TIME_WAIT never ends early.
        let deadline = s.deadline.total_micros().div_ceil(1000);
        if self.v4.live + self.v4.tombstones + self.v6.live + self.v6.tombstones == 0 {
            // The wheel may have been idle for long: bring it to the present, which keeps
            // every stored (wrapped) deadline within 2^31 ms of the cursor.
            let entered = deadline.saturating_sub(u64::from(dur));
            self.cursor = self.cursor.max(entered / u64::from(GRANULARITY_MS));
        }
        let tick = (deadline / u64::from(GRANULARITY_MS)).max(self.cursor);
        let slot = (tick % SLOTS as u64) as usize;
        let mut flags = LIVE;
        if s.ts_recent.is_some() {
            flags |= TS;
        }
        if s.rfc1337 {
            flags |= RFC1337;
        }
        if s.ack_required {
            flags |= ACK_REQUIRED;
        }
        fn record<A: Addr>(s: &TimeWaitState, deadline: u64, flags: u8, class: usize) -> Record<A> {
            Record {
                remote: A::default(),
                local: 0,
                lport: s.local.port(),
                rport: s.remote.port(),
                window: s.window,
                rcv_nxt: s.rcv_nxt.0,
                snd_nxt: s.snd_nxt.0,
                ts_recent: s.ts_recent.unwrap_or(0),
                deadline: deadline as u32,
                next: NIL,
                last_ack: 0,
                flags,
                duration: class as u8,
            }
        }
        let ok = match (s.local.ip(), s.remote.ip()) {
            (IpAddr::V4(l), IpAddr::V4(r)) => {
                let rec = record(s, deadline, flags, class);
                self.v4.insert(l.octets(), r.octets(), rec, slot)
            }
            (IpAddr::V6(l), IpAddr::V6(r)) => {
                let rec = record(s, deadline, flags, class);
                self.v6.insert(l.octets(), r.octets(), rec, slot)
            }
            _ => false,
        };
        if !ok {
            return Err(InsertError::Unrepresentable);
        }
        self.next = Some(self.next.map_or(deadline, |n| n.min(deadline)));
        Ok(())
    }

    /// True when `local`-`remote` is in TIME_WAIT.
    pub fn contains(&self, local: SocketAddr, remote: SocketAddr) -> bool {
        self.get(local, remote).is_some()
    }

    /// The record of a 4-tuple.
    pub fn get(&self, local: SocketAddr, remote: SocketAddr) -> Option<TimeWaitInfo> {
        let reference = self.cursor * u64::from(GRANULARITY_MS);
        match (local.ip(), remote.ip()) {
            (IpAddr::V4(_), IpAddr::V4(_)) => {
                let r = self.v4.get(local, remote)?;
                Some(self.v4.info(r, reference, &self.durations))
            }
            (IpAddr::V6(_), IpAddr::V6(_)) => {
                let r = self.v6.get(local, remote)?;
                Some(self.v6.info(r, reference, &self.durations))
            }
            _ => None,
        }
    }

    /// Removes the record of a 4-tuple (to reuse it for a new connection).
    pub fn remove(&mut self, local: SocketAddr, remote: SocketAddr) -> Option<TimeWaitInfo> {
        let info = self.get(local, remote)?;
        family!(self, local, remote, |f| f.remove(local, remote), false);
        Some(info)
    }

    /// Applies TIME_WAIT's rules to a segment for `local` from `remote`; `None` when no
    /// record holds the 4-tuple. `ack_interval` is the least time between ACKs sent in
    /// answer to out-of-window pure ACKs.
    pub fn segment(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &Segment<'_>,
        ack_interval: Duration,
    ) -> Option<Hit> {
        // Rounded up: a 2MSL restarted now ends no earlier than a full 2MSL from now
        // (records keep milliseconds; rounding down ended it up to 1 ms early).
        let now_ms = now.total_micros().div_ceil(1000);
        let durations = &self.durations;
        // A restarted 2MSL only moves a deadline later, so the cached lower bound of
        // the next deadline stays valid.
        family!(
            self,
            local,
            remote,
            |f| f.segment(local, remote, seg, now_ms, ack_interval, durations),
            None
        )
    }

    /// A lower bound of the earliest deadline, exact once the wheel has reached its
    /// slot (so a driver waking at it wakes at most once early per occupied slot).
    pub fn next_deadline(&mut self) -> Option<Instant> {
        if self.v4.live + self.v4.tombstones + self.v6.live + self.v6.tombstones == 0 {
            return None;
        }
        if self.next.is_none() {
            let a = self.v4.next_deadline(self.cursor);
            let b = self.v6.next_deadline(self.cursor);
            self.next = match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        self.next.map(|ms| Instant::from_micros(ms * 1000))
    }

    /// Ends every record whose 2MSL is over at `now`, pushing their 4-tuples to `out`.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<(SocketAddr, SocketAddr)>) {
        let now_ms = now.total_millis();
        if self.next.is_some_and(|n| n > now_ms) {
            return;
        }
        let now_tick = now_ms / u64::from(GRANULARITY_MS);
        if now_tick < self.cursor {
            return;
        }
        let span = (now_tick - self.cursor).min(SLOTS as u64 - 1);
        self.v4.expire(self.cursor, span, now_ms, out);
        self.v6.expire(self.cursor, span, now_ms, out);
        self.cursor = now_tick;
        self.next = None;
    }

    /// Every record, for `ss`-like snapshots.
    pub fn iter(&self) -> impl Iterator<Item = TimeWaitInfo> + '_ {
        let reference = self.cursor * u64::from(GRANULARITY_MS);
        let d = &self.durations;
        let v4 = self.v4.iter().map(move |r| self.v4.info(r, reference, d));
        let v6 = self.v6.iter().map(move |r| self.v6.info(r, reference, d));
        v4.chain(v6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn tuple(i: u8) -> (SocketAddr, SocketAddr) {
        if i % 2 == 0 {
            (
                SocketAddr::new([10, 0, 0, 1].into(), 40000 + u16::from(i)),
                SocketAddr::new([10, 0, 0, 2 + i % 3].into(), 80),
            )
        } else {
            let l: IpAddr = "fd00::1".parse().unwrap();
            let r: IpAddr = format!("fd00::{:x}", 2 + i % 3).parse().unwrap();
            (
                SocketAddr::new(l, 40000 + u16::from(i)),
                SocketAddr::new(r, 80),
            )
        }
    }

    /// 2MSL lengths: Linux's, a short one, one longer than a wheel revolution.
    const DURATIONS_MS: [u64; 3] = [60_000, 2_000, 200_000];

    fn state(i: u8, now: Instant, class: usize) -> TimeWaitState {
        let (local, remote) = tuple(i);
        let duration = Duration::from_millis(DURATIONS_MS[class]);
        TimeWaitState {
            local,
            remote,
            snd_nxt: Seq(5000),
            rcv_nxt: Seq(9000),
            ts_recent: None,
            window: 100,
            deadline: now + duration,
            duration,
            rfc1337: true,
            ack_required: false,
        }
    }

    /// The peer's FIN again (our last ACK was lost).
    fn fin(i: u8) -> Segment<'static> {
        let (local, remote) = tuple(i);
        Segment {
            src_port: remote.port(),
            dst_port: local.port(),
            seq: Seq(8999),
            ack: Seq(5000),
            flags: Flags::FIN | Flags::ACK,
            window: 1000,
            urgent: 0,
            options: Options::default(),
            payload: &[],
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u8, usize),
        Restart(u8),
        Remove(u8),
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..40, 0usize..3).prop_map(|(i, c)| Op::Insert(i, c)),
            1 => (0u8..40).prop_map(Op::Restart),
            1 => (0u8..40).prop_map(Op::Remove),
            4 => (0u64..90_000_000).prop_map(Op::Advance),
        ]
    }

    proptest! {
        /// Against a model (a map of deadlines): a driver that wakes whenever
        /// `next_deadline` asks sees every record expire at its exact deadline (rounded
        /// up to the millisecond): never early, never after a wake-up at which it was
        /// already due; and the table holds exactly the model's records.
        #[test]
        fn expires_exactly_like_the_model(ops in proptest::collection::vec(op(), 1..120)) {
            let mut t = TimeWaitTable::new([7; 16], usize::MAX);
            // Deadline (ms) and 2MSL class of every record.
            let mut model: HashMap<(SocketAddr, SocketAddr), (u64, usize)> = HashMap::new();
            let mut now = Instant::from_millis(12_345) + Duration::from_micros(321);
            let mut last_wake = now;
            let mut out = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(i, class) => {
                        let s = state(i, now, class);
                        prop_assert_eq!(t.insert(&s), Ok(()));
                        model.insert(tuple(i), (s.deadline.total_micros().div_ceil(1000), class));
                    }
                    Op::Restart(i) => {
                        let (local, remote) = tuple(i);
                        let hit = t.segment(now, local, remote, &fin(i), Duration::ZERO);
                        prop_assert_eq!(hit.is_some(), model.contains_key(&(local, remote)));
                        if let Some(hit) = hit {
                            prop_assert_eq!(hit.action, TimeWaitAction::AckAndRestart);
                            let entry = model.get_mut(&(local, remote)).unwrap();
                            // A full 2MSL from now, in milliseconds rounded up.
                            entry.0 = now.total_micros().div_ceil(1000) + DURATIONS_MS[entry.1];
                        }
                    }
                    Op::Remove(i) => {
                        let (local, remote) = tuple(i);
                        let r = t.remove(local, remote);
                        prop_assert_eq!(r.is_some(), model.remove(&(local, remote)).is_some());
                    }
                    Op::Advance(us) => {
                        let target = now + Duration::from_micros(us);
                        let mut wakes = 0;
                        loop {
                            let wake = match t.next_deadline() {
                                Some(w) if w <= target => w.max(now),
                                _ => target,
                            };
                            t.expire(wake, &mut out);
                            for tuple in out.drain(..) {
                                let (d, _) = model.remove(&tuple).expect("expired a record the model has");
                                prop_assert!(d <= wake.total_millis(), "early: {} at {}", d, wake);
                                prop_assert!(d * 1000 > last_wake.total_micros(), "late: {} after wake {}", d, last_wake);
                            }
                            last_wake = wake;
                            now = wake;
                            wakes += 1;
                            prop_assert!(wakes < 100_000, "the wheel does not progress");
                            if wake == target {
                                break;
                            }
                        }
                    }
                }
                prop_assert_eq!(t.len(), model.len());
                for (l, r) in model.keys() {
                    prop_assert!(t.contains(*l, *r));
                }
            }
        }
    }

    #[test]
    fn many_local_addresses_each_keep_their_records() {
        // Past LOCAL_SCAN local addresses the table finds them through its map: every
        // record must still come back under its own local address, in both families.
        let mut t = TimeWaitTable::new([3; 16], usize::MAX);
        let local = |i: u16, v6: bool| -> SocketAddr {
            let ip: IpAddr = if v6 {
                format!("fd00::1:{i:x}").parse().unwrap()
            } else {
                [10, 1, (i >> 8) as u8, i as u8].into()
            };
            SocketAddr::new(ip, 30000 + i)
        };
        let remote = SocketAddr::new([192, 0, 2, 9].into(), 443);
        let remote6 = SocketAddr::new("fd00::9".parse().unwrap(), 443);
        for round in 0..2 {
            for i in 0..300u16 {
                for v6 in [false, true] {
                    let mut s = state(0, Instant::ZERO, 0);
                    s.local = local(i, v6);
                    s.remote = if v6 { remote6 } else { remote };
                    s.snd_nxt = Seq(u32::from(i) * 7 + round);
                    assert_eq!(t.insert(&s), Ok(()));
                }
            }
        }
        assert_eq!(t.len(), 600);
        for i in 0..300u16 {
            for v6 in [false, true] {
                let r = if v6 { remote6 } else { remote };
                let got = t.get(local(i, v6), r).expect("record kept");
                assert_eq!(got.snd_nxt, Seq(u32::from(i) * 7 + 1));
                // Another local address never answers for this one's tuple.
                let other = SocketAddr::new(local(i + 1, v6).ip(), local(i, v6).port());
                assert!(t.get(other, r).is_none());
            }
        }
    }

    #[test]
    fn index_rebuilds_keep_exactly_the_live_records() {
        // Many index rebuilds (growth, and tombstones from removals), with the slab's
        // free list reused out of order after an expiry: every live record is found,
        // no removed one is.
        let mut t = TimeWaitTable::new([5; 16], usize::MAX);
        let key = |i: u32| {
            (
                SocketAddr::new([10, 2, (i >> 16) as u8, 1].into(), i as u16),
                SocketAddr::new([192, 0, 2, (i % 7) as u8].into(), 443),
            )
        };
        let at = |i: u32, now: Instant| {
            let mut s = state(0, now, 1);
            (s.local, s.remote) = key(i);
            s.snd_nxt = Seq(i);
            s
        };
        let mut live = std::collections::BTreeSet::new();
        let check = |t: &TimeWaitTable, live: &std::collections::BTreeSet<u32>, n: u32| {
            assert_eq!(t.len(), live.len());
            for i in 0..n {
                let (l, r) = key(i);
                match t.get(l, r) {
                    Some(got) => {
                        assert!(live.contains(&i), "{i} was removed");
                        assert_eq!(got.snd_nxt, Seq(i));
                    }
                    None => assert!(!live.contains(&i), "{i} lost"),
                }
            }
        };
        for i in 0..6_000 {
            assert_eq!(t.insert(&at(i, Instant::ZERO)), Ok(()));
            live.insert(i);
            if i % 3 == 2 {
                let (l, r) = key(i - 1);
                assert!(t.remove(l, r).is_some());
                live.remove(&(i - 1));
            }
        }
        check(&t, &live, 6_000);
        // All expire (2 s class): the slots go back to the free list, which hands them
        // out again in another order than the slab's.
        let mut out = Vec::new();
        t.expire(Instant::from_millis(3_000), &mut out);
        live.clear();
        check(&t, &live, 6_000);
        for i in 6_000..14_000 {
            assert_eq!(t.insert(&at(i, Instant::from_millis(3_000))), Ok(()));
            live.insert(i);
            if i % 5 == 0 {
                let (l, r) = key(i);
                assert!(t.remove(l, r).is_some());
                live.remove(&i);
            }
        }
        check(&t, &live, 14_000);
    }

    #[test]
    fn records_are_compact() {
        assert_eq!(TimeWaitTable::record_size_v4(), 40);
        assert_eq!(TimeWaitTable::record_size_v6(), 52);
    }

    #[test]
    fn the_limit_is_a_limit() {
        let mut t = TimeWaitTable::new([1; 16], 3);
        for i in 0..3 {
            assert_eq!(t.insert(&state(i, Instant::ZERO, 0)), Ok(()));
        }
        assert_eq!(
            t.insert(&state(3, Instant::ZERO, 0)),
            Err(InsertError::Full)
        );
        let (l, r) = tuple(0);
        assert!(t.remove(l, r).is_some());
        assert_eq!(t.insert(&state(3, Instant::ZERO, 0)), Ok(()));
    }
}
