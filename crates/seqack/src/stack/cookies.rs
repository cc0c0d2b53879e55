//! SYN cookies (RFC 4987 section 3.6), in the manner of Linux, as a pure codec.
//!
//! Under a SYN flood a listener can answer a SYN without keeping any state: the ISN of
//! its SYN-ACK (the *cookie*) encodes what it needs to rebuild the connection, under a
//! keyed hash, and the handshake's final ACK brings it back as `ack - 1`. This module
//! only computes and checks cookies; when to use them (a full SYN queue), counting,
//! and building the connection are the stack's job. There is no clock: time comes in
//! as an [`Instant`].
//!
//! # The cookie
//!
//! ```text
//! cookie = M + (T << 24) + ((H & 0x00ff_fffc) | i)                    (mod 2^32)
//!
//! M = SipHash-2-4(key; local, remote, peer ISN)                 32 bits, no counter
//! T = counter = (Instant since the driver's origin) / 64 s      only T mod 256 is kept
//! i = MSS index, 2 bits, into the family's table: MSS_TABLE = [536, 1300, 1440, 1460]
//!     for IPv4, MSS_TABLE_V6 = [1220, 1420, 1440, 8940] for IPv6
//! H = SipHash-2-4(key; local, remote, peer ISN, T (all 32 bits), i)
//!
//! cookie - M:   31        24 23                              2 1   0
//!              | T mod 256  |       H bits 2..23 (22 bits)   |  i  |
//! ```
//!
//! Linux (`net/ipv4/syncookies.c`) has the same shape: a counter-free hash masks the
//! whole value so that ISNs stay unpredictable (RFC 6528) and do not reveal the
//! counter, the top 8 bits carry the counter, the low 24 bits a counter-dependent hash
//! plus the MSS index. Two deliberate differences:
//!
//! - the peer's ISN is hashed (Linux adds it), so a cookie is bound to the exact SYN;
//! - the MSS index sits in the two low bits *and* is an input of `H`, so every bit of
//!   the cookie is authenticated. In Linux the index is added to the hash, so a valid
//!   cookie plus one is another valid cookie with the next MSS; here it is rejected.
//!
//! The price is two bits of hash (22 instead of 24), and the same false-accept rate as
//! Linux's "hash + index < 4" test (see below).
//!
//! # The counter and the age window
//!
//! `T` ticks every [`COUNTER_PERIOD`] = 64 s (a power of two of seconds, as the
//! original Linux `tcp_cookie_time` did with `tv_sec >> 6`; current Linux uses 60 s of
//! jiffies). A cookie is accepted while `now_counter - T` is 0, 1 or 2 ([`MAX_AGE`]):
//! "now and up to two counters back". A cookie is therefore valid for at least
//! 2 × 64 = 128 s and at most 192 s after it was issued. (Linux's `MAX_SYNCOOKIE_AGE`
//! is also 2 but exclusive, which guarantees only 60 s; accepting one more counter
//! makes "valid two minutes later" hold for every cookie, at 1.5 times the false-accept
//! rate.) A counter from the future (a difference of 255 mod 256) is rejected; a
//! cookie 256 or more counters old has the right low bits but `H` is computed over the
//! full 32-bit counter, so it fails the hash.
//!
//! # Keys and rotation
//!
//! [`CookieJar`] holds the current 128-bit key and, after [`CookieJar::rotate`], the
//! previous one. New cookies use the current key; [`CookieJar::decode`] accepts a
//! cookie under either key (each still within the age window). So a cookie survives
//! one rotation and dies at the second. Policy: the stack rotates with a fresh key
//! from its RNG at a fixed period P (two minutes is the intended value); every cookie
//! then stays valid for at least min(P, 128 s) — a cookie only has to survive one
//! round trip — and a leaked key is useless after 2P. Do not rotate more often than
//! the longest round trip you want to accept.
//!
//! # False accepts
//!
//! For a fixed 4-tuple, ACK sequence number and time, exactly 12 of the 2^32 possible
//! cookies pass one key's check: one per counter in the window (3) and MSS index (4),
//! since the 22 hash bits are then fixed. A random 32-bit acknowledgment number
//! therefore passes with p = 12 / 2^32 = 3 / 2^30 ≈ 2.8 × 10^-9; with the previous key
//! still held, at most 24 values pass, ≈ 5.6 × 10^-9. A blind attacker needs about 1.8 × 10^8
//! forged ACKs per accepted one on average (Linux's layout: 2 × 4 / 2^32, ≈ 1.9 ×
//! 10^-9 per key). Each ACK sequence number selects a different mask `M`, so varying
//! it does not help. The stack should, like Linux, only check cookies on a listener
//! that has recently sent some.
//!
//! # What is lost
//!
//! The cookie keeps the peer's ISN (the ACK's `seq - 1`) and an MSS rounded down to the
//! table. Everything else in the SYN is forgotten: window scale, SACK-permitted,
//! timestamps, ECN, the SYN's own receive window. When the SYN carried timestamps,
//! Linux's trick (`cookie_init_timestamp`) keeps three of them in the low 6 bits of the
//! SYN-ACK's TSval, which the ACK echoes in its TSecr: see [`encode_ts`] and
//! [`decode_ts`]. Without timestamps, the connection runs with no window scaling and
//! no SACK. MSS values below the table's first entry are announced as that entry (536
//! over IPv4, 1220 over IPv6, as Linux does); values between table entries lose the
//! difference. Data the peer sends on the ACK that completes
//! the handshake is fine, but if that first segment is lost and a later one arrives
//! first, its `seq - 1` is not the ISN and the cookie fails, as in Linux. Our own
//! window scale for the connection must be recomputed the same way as for the SYN-ACK
//! (it depends only on configuration).

use crate::time::{Duration, Instant};
use crate::wire::Seq;
use core::fmt;
use core::hash::Hasher;
use core::net::SocketAddr;
use siphasher::sip::SipHasher24;

/// MSS values a cookie can carry over IPv4 (Linux's `msstab` in
/// `net/ipv4/syncookies.c`), in increasing order. 536 is the IPv4 default, 1300 covers
/// tunnels, 1440 PPPoE and 1460 Ethernet.
pub const MSS_TABLE: [u16; 4] = [536, 1300, 1440, 1460];

/// MSS values a cookie can carry over IPv6 (Linux's `msstab` in
/// `net/ipv6/syncookies.c`): the IPv6 minimum MTU, a tunnel inside Ethernet, Ethernet
/// and jumbo frames, each less 60 bytes of IPv6 and TCP headers (1280, 1480, 1500 and
/// 9000 - 60). IPv4's 536 would waste most of every IPv6 path: IPv6 guarantees 1280.
pub const MSS_TABLE_V6: [u16; 4] = [1220, 1420, 1440, 8940];

/// The MSS table of the address family (`ipv6`, or IPv4).
pub const fn mss_table(ipv6: bool) -> &'static [u16; 4] {
    if ipv6 {
        &MSS_TABLE_V6
    } else {
        &MSS_TABLE
    }
}

/// How often the cookie counter ticks.
pub const COUNTER_PERIOD: Duration = Duration::from_secs(64);

/// How many counters back a cookie is still accepted (inclusive): a cookie issued at
/// counter `T` is valid while the current counter is `T`, `T + 1` or `T + 2`.
pub const MAX_AGE: u32 = 2;

const PERIOD_MICROS: u64 = 64_000_000;
const COUNTER_SHIFT: u32 = 24;
const LOW_MASK: u32 = (1 << COUNTER_SHIFT) - 1;
const INDEX_MASK: u32 = 0b11;
const HASH_BITS: u32 = LOW_MASK & !INDEX_MASK;

/// Domain separation of the two hashes (distinct from `isn.rs`'s domains 0-2, in
/// case a caller passes the same key to both).
const DOMAIN_MASK: u8 = 0xc0;
const DOMAIN_CHECK: u8 = 0xc1;

/// Issues and checks SYN cookies under a secret key, keeping the previous key after a
/// rotation. See the module documentation for the layout and the policy.
#[derive(Clone)]
pub struct CookieJar {
    current: [u8; 16],
    previous: Option<[u8; 16]>,
}

impl fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieJar")
            .field("keys", &if self.previous.is_some() { 2 } else { 1 })
            .finish_non_exhaustive()
    }
}

impl CookieJar {
    /// A jar keyed with `key` (the stack draws it from its seeded RNG; use a key of
    /// its own rather than the ISN generator's).
    pub fn new(key: [u8; 16]) -> CookieJar {
        CookieJar {
            current: key,
            previous: None,
        }
    }

    /// Makes `new_key` the key of new cookies; the current key becomes the previous
    /// one and still validates the cookies it issued (within [`MAX_AGE`]). The key
    /// before that is forgotten, so a cookie survives one rotation, not two.
    pub fn rotate(&mut self, new_key: [u8; 16]) {
        self.previous = Some(core::mem::replace(&mut self.current, new_key));
    }

    /// The cookie (our ISN for the SYN-ACK) for a SYN from `remote` to `local` with
    /// sequence number `peer_isn` announcing `mss`, and the MSS the cookie carries:
    /// the largest entry of the family's table ([`MSS_TABLE`] for IPv4,
    /// [`MSS_TABLE_V6`] for IPv6, chosen by `remote`) not above `mss`, or the table's
    /// smallest entry when `mss` is below them all (536 for IPv4, 1220 for IPv6: the
    /// IPv6 minimum MTU guarantees it; Linux does the same).
    pub fn encode(
        &self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        peer_isn: Seq,
        mss: u16,
    ) -> (Seq, u16) {
        let table = mss_table(remote.is_ipv6());
        let index = mss_index(table, mss);
        let count = counter(now);
        let key = &self.current;
        let low = (check_hash(key, local, remote, peer_isn, count, index) & HASH_BITS) | index;
        let cookie = mask_hash(key, local, remote, peer_isn)
            .wrapping_add(count << COUNTER_SHIFT)
            .wrapping_add(low);
        (Seq(cookie), table[index as usize & 3])
    }

    /// Checks the cookie of a handshake's final ACK from `remote` to `local`:
    /// `peer_isn` is the ACK's `seq - 1` and `cookie` its `ack - 1`. Returns the MSS
    /// the cookie carries, or `None` when the cookie is forged, older than
    /// [`MAX_AGE`] counters, from a future counter, or issued under a key that has
    /// since been rotated out twice.
    pub fn decode(
        &self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        peer_isn: Seq,
        cookie: Seq,
    ) -> Option<u16> {
        let now_count = counter(now);
        core::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .find_map(|key| check(key, now_count, local, remote, peer_isn, cookie.0))
    }
}

/// The cookie counter at `now`: whole [`COUNTER_PERIOD`]s since the driver's origin
/// (truncated to 32 bits; all arithmetic on it wraps).
fn counter(now: Instant) -> u32 {
    (now.total_micros() / PERIOD_MICROS) as u32
}

/// Index of the largest entry of `table` not above `mss` (0 when `mss` is below them
/// all).
fn mss_index(table: &[u16; 4], mss: u16) -> u32 {
    table
        .iter()
        .rposition(|&m| m <= mss)
        .map_or(0, |i| i as u32)
}

fn check(
    key: &[u8; 16],
    now_count: u32,
    local: SocketAddr,
    remote: SocketAddr,
    peer_isn: Seq,
    cookie: u32,
) -> Option<u16> {
    let c = cookie.wrapping_sub(mask_hash(key, local, remote, peer_isn));
    let age = now_count.wrapping_sub(c >> COUNTER_SHIFT) & 0xff;
    if age > MAX_AGE {
        return None;
    }
    let count = now_count.wrapping_sub(age);
    let index = c & INDEX_MASK;
    let want = (check_hash(key, local, remote, peer_isn, count, index) & HASH_BITS) | index;
    if c & LOW_MASK == want {
        mss_table(remote.is_ipv6()).get(index as usize).copied()
    } else {
        None
    }
}

fn mask_hash(key: &[u8; 16], local: SocketAddr, remote: SocketAddr, peer_isn: Seq) -> u32 {
    hasher(key, DOMAIN_MASK, local, remote, peer_isn).finish() as u32
}

fn check_hash(
    key: &[u8; 16],
    local: SocketAddr,
    remote: SocketAddr,
    peer_isn: Seq,
    count: u32,
    index: u32,
) -> u32 {
    let mut h = hasher(key, DOMAIN_CHECK, local, remote, peer_isn);
    h.write(&count.to_be_bytes());
    h.write(&[index as u8]);
    h.finish() as u32
}

/// A SipHash-2-4 state over the domain, the tuple and the peer's ISN. Everything is
/// written as explicit big-endian bytes, so cookies do not depend on the platform.
fn hasher(
    key: &[u8; 16],
    domain: u8,
    local: SocketAddr,
    remote: SocketAddr,
    peer_isn: Seq,
) -> SipHasher24 {
    let mut h = SipHasher24::new_with_key(key);
    h.write(&[domain]);
    write_addr(&mut h, local);
    write_addr(&mut h, remote);
    h.write(&peer_isn.0.to_be_bytes());
    h
}

fn write_addr(h: &mut SipHasher24, a: SocketAddr) {
    match a {
        SocketAddr::V4(v4) => {
            h.write(&[4]);
            h.write(&v4.ip().octets());
        }
        SocketAddr::V6(v6) => {
            h.write(&[6]);
            h.write(&v6.ip().octets());
        }
    }
    h.write(&a.port().to_be_bytes());
}

// ----- options in the timestamp ---------------------------------------------------

/// Bits at the bottom of the SYN-ACK's TSval that carry [`CookieOptions`].
pub const TS_OPTION_BITS: u32 = 6;
const TS_OPTION_MASK: u32 = (1 << TS_OPTION_BITS) - 1;
const TS_WSCALE_MASK: u32 = 0xf;
const TS_SACK: u32 = 1 << 4;
const TS_ECN: u32 = 1 << 5;
/// Largest shift RFC 7323 section 2.3 allows.
const MAX_WSCALE: u8 = 14;

/// The SYN options a cookie SYN-ACK keeps in its TSval when the SYN carried
/// timestamps (Linux's `cookie_init_timestamp` layout):
///
/// ```text
///  31                      6   5     4     3..0
/// | timestamp clock         | ECN | SACK | wscale (0xf: none) |
/// ```
///
/// Timestamps themselves need no bit: the ACK carries them or not.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub struct CookieOptions {
    /// The peer's window scale shift (`None`: the SYN had no window scale option).
    /// Shifts above 14 are sent as 14 (RFC 7323 section 2.3).
    pub wscale: Option<u8>,
    /// The SYN carried SACK-permitted.
    pub sack_ok: bool,
    /// The SYN asked for ECN (ECE and CWR set).
    pub ecn: bool,
}

impl CookieOptions {
    fn bits(self) -> u32 {
        let mut bits = match self.wscale {
            Some(w) => u32::from(w.min(MAX_WSCALE)),
            None => TS_WSCALE_MASK,
        };
        if self.sack_ok {
            bits |= TS_SACK;
        }
        if self.ecn {
            bits |= TS_ECN;
        }
        bits
    }
}

/// The TSval to send in a cookie SYN-ACK: `ts_now` (the value as it goes on the wire,
/// offset included) with its low 6 bits replaced by `o`. If that would be later than
/// `ts_now`, 64 is subtracted, so the result is 0 to 63 ticks before `ts_now` (in
/// wrapping terms) and later TSvals of the connection never go backwards.
pub fn encode_ts(ts_now: u32, o: CookieOptions) -> u32 {
    let ts = (ts_now & !TS_OPTION_MASK) | o.bits();
    if ts > ts_now {
        ts.wrapping_sub(1 << TS_OPTION_BITS)
    } else {
        ts
    }
}

/// The options a cookie SYN-ACK put into its TSval, from the TSecr of the ACK that
/// completes the handshake (exactly as received; a stack that encodes before adding
/// its timestamp offset must subtract it first). Only call this for an ACK that
/// carries timestamps: without them the options are simply lost.
///
/// Every 6-bit pattern is a valid encoding (shifts 0 to 14, 15 for "none", two flags),
/// so this currently always returns `Some`; the `Option` leaves room for a layout
/// with reserved codes. The TSecr bits are not covered by the cookie's hash: a peer
/// that tampers with them only changes the options of its own connection.
pub fn decode_ts(tsecr: u32) -> Option<CookieOptions> {
    let wscale = match tsecr & TS_WSCALE_MASK {
        TS_WSCALE_MASK => None,
        // 0..=14: the mask keeps 4 bits, and 15 is handled above.
        w => Some(w as u8),
    };
    Some(CookieOptions {
        wscale,
        sack_ok: tsecr & TS_SACK != 0,
        ecn: tsecr & TS_ECN != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::IpAddr;
    use proptest::prelude::*;
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const KEY: [u8; 16] = *b"0123456789abcdef";

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn random_tuple(rng: &mut ChaCha8Rng, v6: bool) -> (SocketAddr, SocketAddr) {
        let addr = |rng: &mut ChaCha8Rng| {
            let port = rng.next_u32() as u16;
            if v6 {
                let mut o = [0u8; 16];
                rng.fill_bytes(&mut o);
                SocketAddr::new(IpAddr::from(o), port)
            } else {
                SocketAddr::new(IpAddr::from(rng.next_u32().to_be_bytes()), port)
            }
        };
        (addr(rng), addr(rng))
    }

    /// An instant `n` whole counters after the origin (plus `us`).
    fn at(n: u64, us: u64) -> Instant {
        Instant::from_micros(n * PERIOD_MICROS + us)
    }

    #[test]
    fn round_trip_every_table_entry_many_tuples() {
        let jar = CookieJar::new(KEY);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for i in 0..500 {
            let (local, remote) = random_tuple(&mut rng, i % 2 == 1);
            let isn = Seq(rng.next_u32());
            let now = Instant::from_micros(rng.next_u64() >> 8);
            for &mss in mss_table(i % 2 == 1) {
                let (cookie, got) = jar.encode(now, local, remote, isn, mss);
                assert_eq!(got, mss);
                assert_eq!(jar.decode(now, local, remote, isn, cookie), Some(mss));
            }
        }
        // Fixed tuples, including the extremes of the address spaces.
        for (l, r) in [
            ("10.0.0.1:80", "10.0.0.2:40000"),
            ("0.0.0.0:0", "255.255.255.255:65535"),
            ("[::1]:443", "[fe80::1]:1"),
            ("[::]:0", "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
        ] {
            for &mss in mss_table(sa(r).is_ipv6()) {
                let (c, _) = jar.encode(Instant::ZERO, sa(l), sa(r), Seq(0), mss);
                assert_eq!(
                    jar.decode(Instant::ZERO, sa(l), sa(r), Seq(0), c),
                    Some(mss)
                );
            }
        }
    }

    #[test]
    fn mss_is_rounded_down_to_the_table() {
        let jar = CookieJar::new(KEY);
        let (l, r) = (sa("10.0.0.1:80"), sa("10.0.0.2:40000"));
        for (mss, want) in [
            (1400, 1300),
            (9000, 1460),
            (100, 536),
            (0, 536),
            (535, 536),
            (536, 536),
            (1299, 536),
            (1300, 1300),
            (1439, 1300),
            (1440, 1440),
            (1459, 1440),
            (1460, 1460),
            (1461, 1460),
            (u16::MAX, 1460),
        ] {
            let (c, got) = jar.encode(Instant::ZERO, l, r, Seq(7), mss);
            assert_eq!(got, want, "mss {mss}");
            assert_eq!(jar.decode(Instant::ZERO, l, r, Seq(7), c), Some(want));
        }
    }

    #[test]
    fn ipv6_uses_linux_ipv6_table() {
        // net/ipv6/syncookies.c: IPv6 minimum MTU, 1480, Ethernet and 9000 byte jumbo
        // frames, each less 60 bytes of headers.
        assert_eq!(MSS_TABLE_V6, [1280 - 60, 1480 - 60, 1500 - 60, 9000 - 60]);
        assert_eq!(mss_table(true), &MSS_TABLE_V6);
        assert_eq!(mss_table(false), &MSS_TABLE);
        let jar = CookieJar::new(KEY);
        let (l, r) = (sa("[2001:db8::1]:443"), sa("[2001:db8::2]:50000"));
        for (mss, want) in [
            (0, 1220),
            (536, 1220),
            (1219, 1220),
            (1220, 1220),
            (1300, 1220),
            (1419, 1220),
            (1420, 1420),
            (1439, 1420),
            (1440, 1440),
            (1460, 1440),
            (8939, 1440),
            (8940, 8940),
            (9000, 8940),
            (u16::MAX, 8940),
        ] {
            let (c, got) = jar.encode(Instant::ZERO, l, r, Seq(7), mss);
            assert_eq!(got, want, "mss {mss}");
            assert_eq!(jar.decode(Instant::ZERO, l, r, Seq(7), c), Some(want));
        }
    }

    #[test]
    fn the_family_picks_the_table() {
        // The same peer MSS rounds differently over IPv4 and IPv6, and each family's
        // cookie decodes to its own table's entry.
        let jar = CookieJar::new(KEY);
        let v4 = (sa("192.0.2.1:80"), sa("198.51.100.7:40000"));
        let v6 = (sa("[2001:db8::1]:80"), sa("[2001:db8::7]:40000"));
        for (mss, want4, want6) in [
            (536, 536, 1220),
            (1300, 1300, 1220),
            (1420, 1300, 1420),
            (1460, 1460, 1440),
            (9000, 1460, 8940),
        ] {
            let (c4, got4) = jar.encode(Instant::ZERO, v4.0, v4.1, Seq(1), mss);
            let (c6, got6) = jar.encode(Instant::ZERO, v6.0, v6.1, Seq(1), mss);
            assert_eq!((got4, got6), (want4, want6), "mss {mss}");
            assert_eq!(
                jar.decode(Instant::ZERO, v4.0, v4.1, Seq(1), c4),
                Some(want4)
            );
            assert_eq!(
                jar.decode(Instant::ZERO, v6.0, v6.1, Seq(1), c6),
                Some(want6)
            );
        }
        // Every index round-trips in both families, and the entry never exceeds the MSS
        // that selected it.
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for v6 in [false, true] {
            let table = mss_table(v6);
            for i in 0..200 {
                let (l, r) = random_tuple(&mut rng, v6);
                let mss = table[i % 4] + (rng.next_u32() % 16) as u16;
                let (c, got) = jar.encode(Instant::ZERO, l, r, Seq(i as u32), mss);
                assert_eq!(got, table[i % 4], "v6 {v6} mss {mss}");
                assert!(got <= mss);
                assert_eq!(jar.decode(Instant::ZERO, l, r, Seq(i as u32), c), Some(got));
            }
        }
    }

    #[test]
    fn wrong_tuple_isn_or_bits_are_rejected() {
        let jar = CookieJar::new(KEY);
        let now = Instant::from_secs(1000);
        for (l, r) in [
            ("10.0.0.1:80", "10.0.0.2:40000"),
            ("[2001:db8::1]:80", "[2001:db8::2]:40000"),
        ] {
            let (l, r) = (sa(l), sa(r));
            let isn = Seq(0xdead_beef);
            let (c, mss) = jar.encode(now, l, r, isn, 1460);
            assert_eq!(mss, if r.is_ipv6() { 1440 } else { 1460 });
            assert_eq!(jar.decode(now, l, r, isn, c), Some(mss));
            let bump_ip = |a: SocketAddr| match a.ip() {
                IpAddr::V4(v4) => SocketAddr::new(
                    IpAddr::from(core::net::Ipv4Addr::from(u32::from(v4) ^ 1)),
                    a.port(),
                ),
                IpAddr::V6(v6) => SocketAddr::new(
                    IpAddr::from(core::net::Ipv6Addr::from(u128::from(v6) ^ 1)),
                    a.port(),
                ),
            };
            let bump_port = |a: SocketAddr| SocketAddr::new(a.ip(), a.port() ^ 1);
            for (l2, r2) in [
                (bump_ip(l), r),
                (bump_port(l), r),
                (l, bump_ip(r)),
                (l, bump_port(r)),
                (r, l),
            ] {
                assert_eq!(jar.decode(now, l2, r2, isn, c), None);
            }
            for isn2 in [isn + 1u32, Seq(isn.0.wrapping_sub(1)), Seq(0), Seq(!isn.0)] {
                assert_eq!(jar.decode(now, l, r, isn2, c), None);
            }
            for bit in 0..32 {
                assert_eq!(jar.decode(now, l, r, isn, Seq(c.0 ^ (1 << bit))), None);
            }
            // Linux's additive layout accepts cookie + 1 with another MSS; this does not.
            let (c, _) = jar.encode(now, l, r, isn, 536);
            for d in 1..4u32 {
                assert_eq!(jar.decode(now, l, r, isn, c + d), None);
            }
            assert_eq!(CookieJar::new([9; 16]).decode(now, l, r, isn, c), None);
        }
        // Single-bit flips over many cookies.
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for i in 0..1000 {
            let (l, r) = random_tuple(&mut rng, i % 2 == 0);
            let isn = Seq(rng.next_u32());
            let mss = rng.next_u32() as u16;
            let (c, _) = jar.encode(now, l, r, isn, mss);
            for bit in 0..32 {
                assert_eq!(jar.decode(now, l, r, isn, Seq(c.0 ^ (1 << bit))), None);
            }
        }
    }

    #[test]
    fn age_window() {
        let jar = CookieJar::new(KEY);
        let (l, r) = (sa("192.0.2.1:80"), sa("198.51.100.7:51000"));
        let isn = Seq(42);
        let check = |issued: Instant, now: Instant| {
            let (c, mss) = jar.encode(issued, l, r, isn, 1440);
            assert_eq!(mss, 1440);
            jar.decode(now, l, r, isn, c)
        };
        let minute = Duration::from_secs(60);
        for t0 in [
            Instant::ZERO,
            Instant::from_secs(1000),
            at(100, 0),
            at(100, PERIOD_MICROS - 1),
            at(255, 5),
            at(u64::from(u32::MAX), 0),
        ] {
            assert_eq!(check(t0, t0), Some(1440), "{t0}");
            assert_eq!(check(t0, t0 + minute), Some(1440), "{t0}");
            assert_eq!(check(t0, t0 + 2 * minute), Some(1440), "{t0}");
            assert_eq!(check(t0, t0 + Duration::from_secs(128)), Some(1440));
            assert_eq!(check(t0, t0 + 4 * minute), None, "{t0}");
            assert_eq!(check(t0, t0 + 10 * minute), None, "{t0}");
        }
        // Exactly at the boundary: valid through counter T + 2, not at T + 3.
        assert_eq!(check(at(50, 0), at(52, PERIOD_MICROS - 1)), Some(1440));
        assert_eq!(check(at(50, 0), at(53, 0)), None);
        assert_eq!(check(at(50, PERIOD_MICROS - 1), at(53, 0)), None);
        // 256 counters later the counter byte matches again, the hash does not.
        for k in 0..=MAX_AGE {
            let k = u64::from(k);
            assert_eq!(check(at(50, 0), at(50 + 256 + k, 0)), None);
            assert_eq!(check(at(50, 0), at(50 + 512 + k, 0)), None);
        }
        // A counter from the future.
        assert_eq!(check(at(50, 0), at(49, PERIOD_MICROS - 1)), None);
        assert_eq!(check(at(50, 0), at(48, 0)), None);
        assert_eq!(check(at(0, 0), Instant::ZERO), Some(1440));
        // Extreme instants do not panic.
        let end = Instant::from_micros(u64::MAX);
        assert_eq!(check(end, end), Some(1440));
        assert_eq!(check(Instant::ZERO, end), None);
    }

    #[test]
    fn rotation_keeps_one_previous_key() {
        let mut jar = CookieJar::new(KEY);
        let (l, r) = (sa("[2001:db8::10]:443"), sa("[2001:db8::20]:33333"));
        let now = Instant::from_secs(5000);
        // IPv6: 1420 and 1440 are entries of its table.
        let (old, _) = jar.encode(now, l, r, Seq(1), 1420);
        jar.rotate([1; 16]);
        assert_eq!(jar.decode(now, l, r, Seq(1), old), Some(1420));
        let (mid, _) = jar.encode(now, l, r, Seq(1), 1440);
        assert_ne!(mid, old);
        assert_eq!(jar.decode(now, l, r, Seq(1), mid), Some(1440));
        // The previous key is still bound by the age window.
        let later = now + Duration::from_secs(4 * 64);
        assert_eq!(jar.decode(later, l, r, Seq(1), old), None);
        jar.rotate([2; 16]);
        assert_eq!(jar.decode(now, l, r, Seq(1), old), None);
        assert_eq!(jar.decode(now, l, r, Seq(1), mid), Some(1440));
        jar.rotate([3; 16]);
        assert_eq!(jar.decode(now, l, r, Seq(1), mid), None);
        assert!(
            !format!("{jar:?}").contains('3'),
            "Debug must not show keys"
        );
    }

    #[test]
    fn random_cookies_are_rejected() {
        // p = 3 / 2^30 per key and cookie; 100k cookies: expected 2.8e-4 (one key),
        // 5.6e-4 (two); P(more than 2) ~ 3e-11. The generator is seeded: expect 0.
        let (l, r) = (sa("10.1.2.3:8080"), sa("10.9.8.7:50505"));
        let mut jar = CookieJar::new(KEY);
        let now = Instant::from_secs(7777);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for rotated in [false, true] {
            if rotated {
                jar.rotate([0x55; 16]);
            }
            let isn = Seq(rng.next_u32());
            let fixed = (0..100_000)
                .filter(|_| jar.decode(now, l, r, isn, Seq(rng.next_u32())).is_some())
                .count();
            let both = (0..100_000)
                .filter(|_| {
                    let (isn, c) = (Seq(rng.next_u32()), Seq(rng.next_u32()));
                    jar.decode(now, l, r, isn, c).is_some()
                })
                .count();
            assert!(fixed <= 2 && both <= 2, "{fixed} {both}");
            assert_eq!((fixed, both), (0, 0));
        }
    }

    #[test]
    fn ts_options_round_trip() {
        let mut all = Vec::new();
        for wscale in core::iter::once(None).chain((0..=14).map(Some)) {
            for sack_ok in [false, true] {
                for ecn in [false, true] {
                    all.push(CookieOptions {
                        wscale,
                        sack_ok,
                        ecn,
                    });
                }
            }
        }
        assert_eq!(all.len(), 64);
        for ts_now in [
            0,
            1,
            5,
            63,
            64,
            65,
            127,
            1000,
            0x1234_5678,
            u32::MAX - 1,
            u32::MAX,
        ] {
            for &o in &all {
                let ts = encode_ts(ts_now, o);
                assert_eq!(decode_ts(ts), Some(o), "{ts_now} {o:?}");
                let behind = ts_now.wrapping_sub(ts);
                assert!(behind < 64, "{ts_now} {o:?} -> {ts}");
                assert_eq!(ts & TS_OPTION_MASK, o.bits());
            }
        }
        // Distinct options use distinct codes.
        let mut codes: Vec<u32> = all.iter().map(|&o| encode_ts(0, o) & 63).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), 64);
        // Linux's layout: wscale low nibble, SACK bit 4, ECN bit 5.
        let o = CookieOptions {
            wscale: Some(7),
            sack_ok: true,
            ecn: false,
        };
        assert_eq!(encode_ts(0x1000_003f, o), 0x1000_0017);
        assert_eq!(encode_ts(0x1000_0000, o), 0x0fff_ffd7);
        assert_eq!(encode_ts(0, CookieOptions::default()), 0xffff_ffcf);
    }

    #[test]
    fn ts_out_of_range_values() {
        // RFC 7323 2.3: shifts above 14 are used as 14.
        for w in [15, 16, 200, u8::MAX] {
            let o = CookieOptions {
                wscale: Some(w),
                sack_ok: false,
                ecn: true,
            };
            let got = decode_ts(encode_ts(1 << 20, o)).unwrap();
            assert_eq!(got.wscale, Some(14));
            assert!(got.ecn && !got.sack_ok);
        }
        // Field value 15 is "no window scaling", whatever the upper bits.
        assert_eq!(decode_ts(0xffff_ffcf).unwrap().wscale, None);
        assert_eq!(decode_ts(0x0000_000e).unwrap().wscale, Some(14));
        // No 6-bit pattern is invalid: each decodes and re-encodes to itself.
        for bits in 0..64u32 {
            let o = decode_ts(0xabcd_ef00 | bits).unwrap();
            assert_eq!(o.bits(), bits);
        }
    }

    fn v4() -> impl Strategy<Value = SocketAddr> {
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::new(IpAddr::from(ip), p))
    }

    fn v6() -> impl Strategy<Value = SocketAddr> {
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::new(IpAddr::from(ip), p))
    }

    fn tuple() -> impl Strategy<Value = (SocketAddr, SocketAddr)> {
        prop_oneof![(v4(), v4()), (v6(), v6())]
    }

    proptest! {
        #[test]
        fn prop_round_trip(
            key in any::<[u8; 16]>(),
            (local, remote) in tuple(),
            isn in any::<u32>(),
            mss in any::<u16>(),
            t in any::<u64>(),
            age in 0..2 * PERIOD_MICROS,
            forged in any::<u32>(),
        ) {
            let jar = CookieJar::new(key);
            let now = Instant::from_micros(t);
            let (c, enc) = jar.encode(now, local, remote, Seq(isn), mss);
            let table = mss_table(remote.is_ipv6());
            prop_assert!(table.contains(&enc));
            // The largest entry not above the peer's MSS; the smallest below them all.
            prop_assert!(enc <= mss || enc == table[0]);
            prop_assert!(table.iter().all(|&m| m <= enc || m > mss));
            let later = now + Duration::from_micros(age);
            prop_assert_eq!(jar.decode(later, local, remote, Seq(isn), c), Some(enc));
            // A random value is accepted with p <= 2.8e-9 (see the module docs), so
            // this fails about once in 10^6 runs of 256 cases.
            if forged != c.0 {
                prop_assert_eq!(jar.decode(later, local, remote, Seq(isn), Seq(forged)), None);
            }
        }

        /// Outside the validity window (more than MAX_AGE counters later, or from an
        /// earlier counter), for another 4-tuple or another peer ISN, a cookie is
        /// refused. (Ages wrap modulo 256 counters, 4.5 hours, as Linux's do.)
        #[test]
        fn prop_rejects_stale_future_and_foreign(
            key in any::<[u8; 16]>(),
            (local, remote) in tuple(),
            (other_local, other_remote) in tuple(),
            isn in any::<u32>(),
            other_isn in any::<u32>(),
            mss in any::<u16>(),
            t in (1u64 << 40)..(1u64 << 50),
            periods in prop_oneof![(u64::from(MAX_AGE) + 1)..250, 1u64..250],
            late in any::<bool>(),
        ) {
            let jar = CookieJar::new(key);
            let now = Instant::from_micros(t);
            let (c, _) = jar.encode(now, local, remote, Seq(isn), mss);
            let base = t / PERIOD_MICROS;
            let when = if late {
                Instant::from_micros((base + periods.max(u64::from(MAX_AGE) + 1)) * PERIOD_MICROS)
            } else {
                Instant::from_micros((base - periods) * PERIOD_MICROS + PERIOD_MICROS - 1)
            };
            prop_assert_eq!(jar.decode(when, local, remote, Seq(isn), c), None);
            // Within the window but for someone else (p <= 2.8e-9 of a false accept).
            if (other_local, other_remote) != (local, remote) {
                prop_assert_eq!(jar.decode(now, other_local, other_remote, Seq(isn), c), None);
            }
            if other_isn != isn {
                prop_assert_eq!(jar.decode(now, local, remote, Seq(other_isn), c), None);
            }
            // And under another key.
            let mut k2 = key;
            k2[0] ^= 1;
            prop_assert_eq!(CookieJar::new(k2).decode(now, local, remote, Seq(isn), c), None);
        }

        #[test]
        fn prop_ts_round_trip(
            ts_now in any::<u32>(),
            wscale in proptest::option::of(0u8..=14),
            sack_ok in any::<bool>(),
            ecn in any::<bool>(),
        ) {
            let o = CookieOptions { wscale, sack_ok, ecn };
            let ts = encode_ts(ts_now, o);
            prop_assert!(ts_now.wrapping_sub(ts) < 64);
            prop_assert_eq!(decode_ts(ts), Some(o));
        }
    }
}
