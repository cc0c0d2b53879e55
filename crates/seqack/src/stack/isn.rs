//! Initial sequence numbers per RFC 6528 and per-connection timestamp offsets.
//!
//! ISN = M + F(localip, localport, remoteip, remoteport, secretkey), where M is a clock
//! ticking every 4 microseconds and F is SipHash-2-4 under a secret key, so that an
//! off-path attacker cannot predict the ISN of another connection.

use crate::time::Instant;
use crate::wire::Seq;
use core::hash::Hasher;
use core::net::SocketAddr;
use siphasher::sip::SipHasher24;

/// A keyed generator of ISNs and timestamp offsets.
#[derive(Clone, Debug)]
pub struct IsnGenerator {
    key: [u8; 16],
}

impl IsnGenerator {
    /// A generator keyed with `key` (the stack draws it from its seeded RNG).
    pub fn new(key: [u8; 16]) -> IsnGenerator {
        IsnGenerator { key }
    }

    fn hash(&self, domain: u8, local: SocketAddr, remote: SocketAddr) -> u64 {
        let mut h = SipHasher24::new_with_key(&self.key);
        // The message assembled first and fed in one call: the same byte stream as
        // `write_u8` and `write_addr` twice, in one pass of SipHash's word loop
        // instead of five partial-word writes.
        let mut m = [0u8; 1 + 2 * 18];
        m[0] = domain;
        let mut n = 1;
        for a in [local, remote] {
            n += put_addr(&mut m[n..], a);
        }
        h.write(&m[..n]);
        h.finish()
    }

    /// The ISN for a connection opened at `now` (RFC 6528 section 3) and the offset of
    /// its timestamp clock (as Linux's `secure_tcp_ts_off`, so TSvals reveal nothing
    /// across connections): the low and the high half of one SipHash of the 4-tuple.
    /// The halves of a PRF's output are independent PRFs, so a peer that sees the
    /// offset in our TSvals learns nothing of the ISN's secret part; one hash instead
    /// of two on every connection (they were 5 % of a churn profile).
    pub fn isn_and_ts_offset(
        &self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> (Seq, u32) {
        let m = (now.total_micros() / 4) as u32;
        let h = self.hash(0, local, remote);
        (Seq(m.wrapping_add(h as u32)), (h >> 32) as u32)
    }

    /// The ISN alone (see [`IsnGenerator::isn_and_ts_offset`]).
    pub fn isn(&self, now: Instant, local: SocketAddr, remote: SocketAddr) -> Seq {
        self.isn_and_ts_offset(now, local, remote).0
    }

    /// The timestamp offset alone (see [`IsnGenerator::isn_and_ts_offset`]): the same
    /// for every connection of a 4-tuple, so a reused TIME_WAIT tuple's new timestamps,
    /// on a later clock, are newer than the old ones.
    pub fn ts_offset(&self, local: SocketAddr, remote: SocketAddr) -> u32 {
        (self.hash(0, local, remote) >> 32) as u32
    }

    /// An offset for ephemeral port selection (RFC 6056 algorithm 3's F).
    pub fn port_offset(&self, local_ip: core::net::IpAddr, remote: SocketAddr) -> u32 {
        self.hash(2, SocketAddr::new(local_ip, 0), remote) as u32
    }

    /// A keyed hash of arbitrary data under this generator's key (for SYN cookies).
    pub fn keyed(&self, domain: u8, local: SocketAddr, remote: SocketAddr, extra: u64) -> u64 {
        let mut h = SipHasher24::new_with_key(&self.key);
        h.write_u8(domain);
        write_addr(&mut h, local);
        write_addr(&mut h, remote);
        h.write_u64(extra);
        h.finish()
    }
}

/// Writes the address's octets and then its port (little-endian, as `write_u16` feeds
/// it) into `m`; returns how many bytes.
fn put_addr(m: &mut [u8], a: SocketAddr) -> usize {
    let port = a.port().to_le_bytes();
    match a {
        SocketAddr::V4(v4) => {
            m[..4].copy_from_slice(&v4.ip().octets());
            m[4..6].copy_from_slice(&port);
            6
        }
        SocketAddr::V6(v6) => {
            m[..16].copy_from_slice(&v6.ip().octets());
            m[16..18].copy_from_slice(&port);
            18
        }
    }
}

/// Feeds the address's octets and then its port. The octets go in as little-endian
/// words: SipHash reads its input as a byte stream, so `write_u32(from_le_bytes(o))`
/// hashes exactly what `write(&o)` would, without the slice path's tail handling.
fn write_addr(h: &mut SipHasher24, a: SocketAddr) {
    match a {
        SocketAddr::V4(v4) => h.write_u32(u32::from_le_bytes(v4.ip().octets())),
        SocketAddr::V6(v6) => {
            let o = v6.ip().octets();
            h.write_u64(u64::from_le_bytes(o[..8].try_into().expect("8 bytes")));
            h.write_u64(u64::from_le_bytes(o[8..].try_into().expect("8 bytes")));
        }
    }
    h.write_u16(a.port());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_assembled_message_hashes_as_the_fields_fed_one_by_one() {
        let g = IsnGenerator::new([5; 16]);
        for (a, b) in [
            ("10.1.2.3:40000", "10.9.8.7:80"),
            ("[2001:db8::1]:443", "[2001:db8::2]:50000"),
        ] {
            let (a, b): (SocketAddr, SocketAddr) = (a.parse().unwrap(), b.parse().unwrap());
            let mut h = SipHasher24::new_with_key(&[5; 16]);
            h.write_u8(3);
            write_addr(&mut h, a);
            write_addr(&mut h, b);
            assert_eq!(g.hash(3, a, b), h.finish(), "{a} {b}");
        }
    }

    #[test]
    fn addresses_hash_as_their_octets() {
        // The word-at-a-time feed must hash the same byte stream as the octets would.
        for a in ["10.1.2.3:40000", "[2001:db8::1:2:3]:443"] {
            let a: SocketAddr = a.parse().unwrap();
            let key = [9u8; 16];
            let mut words = SipHasher24::new_with_key(&key);
            write_addr(&mut words, a);
            let mut bytes = SipHasher24::new_with_key(&key);
            match a {
                SocketAddr::V4(v4) => bytes.write(&v4.ip().octets()),
                SocketAddr::V6(v6) => bytes.write(&v6.ip().octets()),
            }
            bytes.write(&a.port().to_le_bytes());
            assert_eq!(words.finish(), bytes.finish(), "{a}");
        }
    }

    #[test]
    fn isn_depends_on_tuple_key_and_clock() {
        let a: SocketAddr = "10.0.0.1:40000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:80".parse().unwrap();
        let c: SocketAddr = "10.0.0.2:81".parse().unwrap();
        let g = IsnGenerator::new([7; 16]);
        let t0 = Instant::ZERO;
        assert_ne!(g.isn(t0, a, b), g.isn(t0, a, c));
        assert_ne!(g.isn(t0, a, b), IsnGenerator::new([8; 16]).isn(t0, a, b));
        // M ticks every 4 us.
        assert_eq!(
            g.isn(Instant::from_micros(400), a, b),
            g.isn(t0, a, b) + 100u32
        );
        // The timestamp offset: per 4-tuple, independent of the clock, the same from
        // either call, and not the ISN's secret part.
        let (isn, ts) = g.isn_and_ts_offset(Instant::from_micros(400), a, b);
        assert_eq!(isn, g.isn(Instant::from_micros(400), a, b));
        assert_eq!(ts, g.ts_offset(a, b));
        assert_ne!(ts, g.ts_offset(a, c));
        assert_ne!(ts, g.isn(t0, a, b).0);
    }
}
