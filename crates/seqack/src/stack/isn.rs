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
        h.write_u8(domain);
        write_addr(&mut h, local);
        write_addr(&mut h, remote);
        h.finish()
    }

    /// The ISN for a connection opened at `now` (RFC 6528 section 3).
    pub fn isn(&self, now: Instant, local: SocketAddr, remote: SocketAddr) -> Seq {
        let m = (now.total_micros() / 4) as u32;
        Seq(m.wrapping_add(self.hash(0, local, remote) as u32))
    }

    /// The offset added to this connection's timestamp clock (as Linux's
    /// `secure_tcp_ts_off`), so TSvals reveal nothing across connections.
    pub fn ts_offset(&self, local: SocketAddr, remote: SocketAddr) -> u32 {
        self.hash(1, local, remote) as u32
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
    }
}
