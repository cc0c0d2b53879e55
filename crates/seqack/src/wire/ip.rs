//! IPv4 (RFC 791) and IPv6 (RFC 8200) headers: parsed in place, emitted into caller buffers.

use super::checksum;
use super::WireError;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// Length of an IPv4 header without options.
pub const IPV4_HEADER_LEN: usize = 20;
/// Length of the fixed IPv6 header.
pub const IPV6_HEADER_LEN: usize = 40;

/// A parsed IP packet: addresses, protocol, and the payload borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPacket<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Upper-layer protocol (after any IPv6 extension headers).
    pub protocol: u8,
    /// TTL or hop limit.
    pub hop_limit: u8,
    /// The two ECN bits of the traffic class.
    pub ecn: u8,
    /// The upper-layer payload.
    pub payload: &'a [u8],
}

/// Parses an IPv4 or IPv6 packet. Fragments are refused (`WireError::Fragment`): the
/// stack does not reassemble IP, and a TCP segment that needs it is dropped and counted.
#[inline]
pub fn parse(buf: &[u8]) -> Result<IpPacket<'_>, WireError> {
    match buf.first().map(|b| b >> 4) {
        Some(4) => parse_v4(buf),
        Some(6) => parse_v6(buf),
        Some(_) => Err(WireError::BadVersion),
        None => Err(WireError::Truncated),
    }
}

fn parse_v4(buf: &[u8]) -> Result<IpPacket<'_>, WireError> {
    // Linux's order (ip_rcv_core): header length, header present, checksum, then the
    // total length against the packet and the header.
    if buf.len() < IPV4_HEADER_LEN {
        return Err(WireError::Truncated);
    }
    let ihl = usize::from(buf[0] & 0x0f) * 4;
    if ihl < IPV4_HEADER_LEN {
        return Err(WireError::BadHeaderLen);
    }
    if buf.len() < ihl {
        return Err(WireError::Truncated);
    }
    if !checksum::header_ok(&buf[..ihl]) {
        return Err(WireError::BadChecksum);
    }
    let total = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    if buf.len() < total {
        return Err(WireError::LengthPastEnd);
    }
    if total < ihl {
        return Err(WireError::BadHeaderLen);
    }
    let frag = u16::from_be_bytes([buf[6], buf[7]]);
    if frag & 0x3fff != 0 {
        return Err(WireError::Fragment);
    }
    Ok(IpPacket {
        src: IpAddr::V4(Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15])),
        dst: IpAddr::V4(Ipv4Addr::new(buf[16], buf[17], buf[18], buf[19])),
        protocol: buf[9],
        hop_limit: buf[8],
        ecn: buf[1] & 3,
        payload: &buf[ihl..total],
    })
}

fn parse_v6(buf: &[u8]) -> Result<IpPacket<'_>, WireError> {
    if buf.len() < IPV6_HEADER_LEN {
        return Err(WireError::Truncated);
    }
    let payload_len = usize::from(u16::from_be_bytes([buf[4], buf[5]]));
    let end = IPV6_HEADER_LEN + payload_len;
    if buf.len() < end {
        return Err(WireError::LengthPastEnd);
    }
    let mut src = [0u8; 16];
    src.copy_from_slice(&buf[8..24]);
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&buf[24..40]);
    // Skip the extension headers that may precede TCP in an unfragmented packet.
    let mut next = buf[6];
    let mut off = IPV6_HEADER_LEN;
    loop {
        match next {
            0 | 43 | 60 => {
                if end < off + 8 {
                    return Err(WireError::Truncated);
                }
                let len = (usize::from(buf[off + 1]) + 1) * 8;
                if end < off + len {
                    return Err(WireError::Truncated);
                }
                next = buf[off];
                off += len;
            }
            44 => return Err(WireError::Fragment),
            _ => break,
        }
    }
    Ok(IpPacket {
        src: IpAddr::V6(Ipv6Addr::from(src)),
        dst: IpAddr::V6(Ipv6Addr::from(dst)),
        protocol: next,
        hop_limit: buf[7],
        ecn: (buf[1] >> 4) & 3,
        payload: &buf[off..end],
    })
}

/// The length of the IP header [`emit`] writes for this pair of addresses.
pub fn header_len(dst: IpAddr) -> usize {
    match dst {
        IpAddr::V4(_) => IPV4_HEADER_LEN,
        IpAddr::V6(_) => IPV6_HEADER_LEN,
    }
}

/// Writes an IP header for `payload_len` bytes of `protocol` into the front of `buf`,
/// returning its length. `buf` must hold at least [`header_len`] bytes. Mixed address
/// families are a caller bug and are written as IPv6 with mapped addresses.
pub fn emit(
    buf: &mut [u8],
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    hop_limit: u8,
    payload_len: usize,
) -> usize {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let h = &mut buf[..IPV4_HEADER_LEN];
            let total = (IPV4_HEADER_LEN + payload_len) as u16;
            h[0] = 0x45;
            h[1] = 0;
            h[2..4].copy_from_slice(&total.to_be_bytes());
            h[4..6].copy_from_slice(&[0, 0]); // identification: DF set, so unused
            h[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // DF
            h[8] = hop_limit;
            h[9] = protocol;
            h[10..12].copy_from_slice(&[0, 0]);
            h[12..16].copy_from_slice(&s.octets());
            h[16..20].copy_from_slice(&d.octets());
            // The header's 16-bit words summed from the values just written (the
            // checksum field as zero), as the pseudo-header's sum is: no pass over
            // the bytes, no general loop for 20 of them on every packet.
            let words = |x: u32| (x >> 16) + (x & 0xffff);
            let mut sum = 0x4500
                + u32::from(total)
                + 0x4000
                + (u32::from(hop_limit) << 8 | u32::from(protocol))
                + words(s.to_bits())
                + words(d.to_bits());
            sum = (sum & 0xffff) + (sum >> 16);
            sum = (sum & 0xffff) + (sum >> 16);
            h[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
            IPV4_HEADER_LEN
        }
        (s, d) => {
            let h = &mut buf[..IPV6_HEADER_LEN];
            h[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
            h[4..6].copy_from_slice(&(payload_len as u16).to_be_bytes());
            h[6] = protocol;
            h[7] = hop_limit;
            h[8..24].copy_from_slice(&v6(s).octets());
            h[24..40].copy_from_slice(&v6(d).octets());
            IPV6_HEADER_LEN
        }
    }
}

fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_round_trip() {
        let mut buf = [0u8; 64];
        let src: IpAddr = "10.0.0.1".parse().unwrap();
        let dst: IpAddr = "10.0.0.2".parse().unwrap();
        let n = emit(&mut buf, src, dst, PROTO_TCP, 64, 4);
        buf[n..n + 4].copy_from_slice(b"abcd");
        let p = parse(&buf[..n + 4]).unwrap();
        assert_eq!(
            (p.src, p.dst, p.protocol, p.payload),
            (src, dst, PROTO_TCP, &b"abcd"[..])
        );
    }

    proptest::proptest! {
        /// The header checksum computed from the field values equals RFC 1071's sum
        /// over the bytes written: the whole header then sums to zero.
        #[test]
        fn v4_header_checksum_matches_its_bytes(
            s in proptest::num::u32::ANY,
            d in proptest::num::u32::ANY,
            ttl in proptest::num::u8::ANY,
            proto in proptest::num::u8::ANY,
            len in 0usize..65515,
        ) {
            let mut buf = [0u8; IPV4_HEADER_LEN];
            let src = IpAddr::from(s.to_be_bytes());
            let dst = IpAddr::from(d.to_be_bytes());
            emit(&mut buf, src, dst, proto, ttl, len);
            proptest::prop_assert_eq!(checksum::checksum(&buf), 0);
        }
    }

    #[test]
    fn v6_round_trip() {
        let mut buf = [0u8; 64];
        let src: IpAddr = "fd00::1".parse().unwrap();
        let dst: IpAddr = "fd00::2".parse().unwrap();
        let n = emit(&mut buf, src, dst, PROTO_TCP, 64, 3);
        buf[n..n + 3].copy_from_slice(b"xyz");
        let p = parse(&buf[..n + 3]).unwrap();
        assert_eq!(
            (p.src, p.dst, p.protocol, p.payload),
            (src, dst, PROTO_TCP, &b"xyz"[..])
        );
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(parse(&[]), Err(WireError::Truncated));
        assert_eq!(parse(&[0x45; 10]), Err(WireError::Truncated));
        assert_eq!(parse(&[0x75; 40]), Err(WireError::BadVersion));
        let mut buf = [0u8; 40];
        let n = emit(
            &mut buf,
            "1.2.3.4".parse().unwrap(),
            "5.6.7.8".parse().unwrap(),
            6,
            64,
            0,
        );
        let mut bad = buf;
        bad[15] ^= 1;
        assert_eq!(parse(&bad[..n]), Err(WireError::BadChecksum));
        let mut short = buf;
        short[0] = 0x44;
        assert_eq!(parse(&short[..n]), Err(WireError::BadHeaderLen));
        let mut frag = buf;
        frag[6] = 0x20; // MF
        frag[10] = 0;
        frag[11] = 0;
        let c = checksum::checksum(&frag[..20]);
        frag[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(parse(&frag[..n]), Err(WireError::Fragment));
    }

    /// A v4 header with `f` applied and its checksum made right again.
    fn v4_with(f: impl Fn(&mut [u8])) -> [u8; 40] {
        let mut buf = [0u8; 40];
        emit(
            &mut buf,
            "1.2.3.4".parse().unwrap(),
            "5.6.7.8".parse().unwrap(),
            6,
            64,
            20,
        );
        f(&mut buf);
        buf[10..12].copy_from_slice(&[0, 0]);
        let ihl = (usize::from(buf[0] & 0x0f) * 4).clamp(20, 40);
        let c = checksum::checksum(&buf[..ihl]);
        buf[10..12].copy_from_slice(&c.to_be_bytes());
        buf
    }

    #[test]
    fn length_fields_against_the_packet() {
        // The total length past the end of the packet is its own error (Linux's
        // IpExtInTruncatedPkts); below the header length, a header error.
        let long = v4_with(|b| b[2..4].copy_from_slice(&41u16.to_be_bytes()));
        assert_eq!(parse(&long), Err(WireError::LengthPastEnd));
        let short = v4_with(|b| b[2..4].copy_from_slice(&19u16.to_be_bytes()));
        assert_eq!(parse(&short), Err(WireError::BadHeaderLen));
        // IHL 15 (60 bytes) in a 40-byte packet: the header itself is cut off.
        let ihl = v4_with(|b| b[0] = 0x4f);
        assert_eq!(parse(&ihl), Err(WireError::Truncated));
        // IHL 6 with a total length of 40: valid, the payload starts after 24 bytes.
        let opt = v4_with(|b| b[0] = 0x46);
        assert_eq!(parse(&opt).map(|p| p.payload.len()), Ok(16));
        // IPv6: a payload length past the end.
        let mut v6 = [0u8; 60];
        let n = emit(
            &mut v6,
            "fd00::1".parse().unwrap(),
            "fd00::2".parse().unwrap(),
            6,
            64,
            20,
        );
        assert_eq!(parse(&v6[..n + 19]), Err(WireError::LengthPastEnd));
        assert_eq!(parse(&v6[..39]), Err(WireError::Truncated));
    }
}
