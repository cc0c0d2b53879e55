//! TUN offload: the virtio-net header of a TUN device opened with `IFF_VNET_HDR` and
//! `TUNSETOFFLOAD` (TSO and checksum offload), and the two conversions the driver
//! needs around it. Pure functions on byte slices, no I/O.
//!
//! With offload on, every read from and write to the device starts with a 10-byte
//! [`VnetHdr`]. The kernel then hands seqack TCP "super-packets" of up to 64 KiB that
//! its TSO would have cut into MSS-sized segments, with the TCP checksum left partial
//! ([`F_NEEDS_CSUM`]: the checksum field holds the pseudo-header sum, the rest is for
//! the device to add); and it takes such super-packets from seqack and receives them
//! as one.
//!
//! - Receive: [`complete_checksum`] finishes a partial checksum, so that the core's
//!   verifier sees an ordinary, correct checksum; [`gso_split`] cuts a super-packet
//!   into the segments it stands for (each with its own full checksum), for a driver
//!   that feeds the stack MSS-sized segments only.
//! - Send: [`GsoBatch`] coalesces consecutive segments of one flow, as the stack
//!   emitted them, into one super-packet with a GSO header (`gso_size` = MSS, partial
//!   checksum), or passes a segment that cannot be coalesced through unchanged.
//!
//! The header is in native byte order: the TUN driver's legacy (non-virtio-1.0) format,
//! which is little-endian on little-endian hosts, the only ones it is used on here.

use seqack::wire::checksum::{accumulate, fold, pseudo_header};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Length of `struct virtio_net_hdr`.
pub const VNET_HDR_LEN: usize = 10;
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum from `csum_start` on is partial.
pub const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum was verified already.
pub const F_DATA_VALID: u8 = 2;
/// `VIRTIO_NET_HDR_GSO_NONE`: a single packet.
pub const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`: a TCP over IPv4 super-packet.
pub const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_TCPV6`: a TCP over IPv6 super-packet.
pub const GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_ECN`: the super-packet's first segment carries CWR.
pub const GSO_ECN: u8 = 0x80;

/// The largest IP packet a frame can hold: 65535 bytes of IPv4 total length, or the
/// fixed IPv6 header and 65535 bytes of payload.
pub const MAX_PACKET: usize = 40 + 65535;

const PROTO_TCP: u8 = 6;
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const CWR: u8 = 0x80;

/// `struct virtio_net_hdr` (include/uapi/linux/virtio_net.h).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHdr {
    /// [`F_NEEDS_CSUM`], [`F_DATA_VALID`].
    pub flags: u8,
    /// [`GSO_NONE`], [`GSO_TCPV4`], [`GSO_TCPV6`], possibly with [`GSO_ECN`].
    pub gso_type: u8,
    /// Length of the IP and TCP headers of a super-packet.
    pub hdr_len: u16,
    /// Payload bytes per segment of a super-packet (the MSS).
    pub gso_size: u16,
    /// Where the checksummed part starts (the TCP header).
    pub csum_start: u16,
    /// Where, from `csum_start`, the checksum field is (16 for TCP).
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Reads a header from the first [`VNET_HDR_LEN`] bytes of `b`.
    pub fn parse(b: &[u8]) -> Result<VnetHdr, FrameError> {
        if b.len() < VNET_HDR_LEN {
            return Err(FrameError::Short);
        }
        let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Ok(VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        })
    }

    /// Writes the header into the first [`VNET_HDR_LEN`] bytes of `out`.
    pub fn write(&self, out: &mut [u8]) {
        out[0] = self.flags;
        out[1] = self.gso_type;
        out[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        out[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        out[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        out[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
    }

    /// A super-packet of TCP segments (ECN bit aside).
    pub fn is_tcp_gso(&self) -> bool {
        matches!(self.gso_type & !GSO_ECN, GSO_TCPV4 | GSO_TCPV6)
    }
}

/// Why a frame from the device could not be turned into segments (the driver counts
/// it and drops it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Shorter than its headers say.
    Short,
    /// `csum_start` and `csum_offset` point outside the packet.
    BadChecksumOffsets,
    /// A super-packet that is not TCP over IPv4 or IPv6 without extension headers.
    NotTcp,
    /// A super-packet whose headers do not parse.
    BadHeader,
    /// A super-packet of an unknown GSO type, or with a `gso_size` of zero.
    BadGso,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FrameError::Short => "frame shorter than its headers",
            FrameError::BadChecksumOffsets => "checksum offsets outside the packet",
            FrameError::NotTcp => "super-packet is not plain TCP over IP",
            FrameError::BadHeader => "super-packet headers do not parse",
            FrameError::BadGso => "unknown GSO type or zero gso_size",
        })
    }
}

impl std::error::Error for FrameError {}

/// Finishes a partial checksum (`F_NEEDS_CSUM`): the field at `start + offset` holds
/// the pseudo-header's sum; the one's-complement sum of everything from `start` to
/// the end of `packet`, that field included, complemented, is the checksum.
pub fn complete_checksum(packet: &mut [u8], start: usize, offset: usize) -> Result<(), FrameError> {
    if !checksum_offsets_ok(packet, start, offset) {
        return Err(FrameError::BadChecksumOffsets);
    }
    let at = start + offset;
    let c = !fold(accumulate(0, &packet[start..]));
    packet[at..at + 2].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// Whether a partial checksum at `start + offset` fits in `packet`, `start` even
/// (the sum is taken on 16-bit words, and every IP header is a whole number of them).
pub fn checksum_offsets_ok(packet: &[u8], start: usize, offset: usize) -> bool {
    start % 2 == 0
        && start
            .checked_add(offset)
            .and_then(|at| at.checked_add(2))
            .is_some_and(|end| end <= packet.len())
}

/// Where the headers of a TCP/IP packet end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    v6: bool,
    /// IP header length (IPv4 with options, IPv6 without extension headers).
    ip_hl: usize,
    /// TCP header length, options included.
    tcp_hl: usize,
    /// The end of the packet as its IP header says.
    end: usize,
}

impl Layout {
    fn parse(p: &[u8]) -> Result<Layout, FrameError> {
        let (v6, ip_hl, end) = match p.first().map(|b| b >> 4) {
            Some(4) => {
                if p.len() < 20 {
                    return Err(FrameError::Short);
                }
                let ihl = usize::from(p[0] & 0x0f) * 4;
                let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
                let frag = u16::from_be_bytes([p[6], p[7]]) & 0x3fff;
                if ihl < 20 || total < ihl || frag != 0 {
                    return Err(FrameError::BadHeader);
                }
                if p[9] != PROTO_TCP {
                    return Err(FrameError::NotTcp);
                }
                (false, ihl, total)
            }
            Some(6) => {
                if p.len() < 40 {
                    return Err(FrameError::Short);
                }
                if p[6] != PROTO_TCP {
                    return Err(FrameError::NotTcp);
                }
                (true, 40, 40 + usize::from(u16::from_be_bytes([p[4], p[5]])))
            }
            _ => return Err(FrameError::BadHeader),
        };
        if p.len() < end || end < ip_hl + 20 {
            return Err(FrameError::Short);
        }
        let tcp_hl = usize::from(p[ip_hl + 12] >> 4) * 4;
        if tcp_hl < 20 || ip_hl + tcp_hl > end {
            return Err(FrameError::BadHeader);
        }
        Ok(Layout {
            v6,
            ip_hl,
            tcp_hl,
            end,
        })
    }

    fn hdr(&self) -> usize {
        self.ip_hl + self.tcp_hl
    }

    fn addrs(&self, p: &[u8]) -> (IpAddr, IpAddr) {
        if self.v6 {
            let a = |i: usize| {
                let mut o = [0u8; 16];
                o.copy_from_slice(&p[i..i + 16]);
                IpAddr::V6(Ipv6Addr::from(o))
            };
            (a(8), a(24))
        } else {
            let a = |i: usize| IpAddr::V4(Ipv4Addr::new(p[i], p[i + 1], p[i + 2], p[i + 3]));
            (a(12), a(16))
        }
    }
}

fn put_u16(p: &mut [u8], at: usize, v: u16) {
    p[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

fn ipv4_header_checksum(p: &mut [u8], ihl: usize) {
    put_u16(p, 10, 0);
    let c = !fold(accumulate(0, &p[..ihl]));
    put_u16(p, 10, c);
}

/// Cuts a TCP super-packet into segments of `gso_size` payload bytes (the last may be
/// shorter), as the kernel's TSO would have (tcp_gso_segment): sequence numbers
/// advance, IPv4 identifiers count up from the super-packet's, FIN and PSH stay on the
/// last segment only and CWR on the first only, and each segment gets its lengths and
/// full IP and TCP checksums. The super-packet's own TCP checksum is not looked at
/// (the kernel leaves it partial). Calls `emit` once per segment with a slice of
/// `scratch`; returns the number of segments.
pub fn gso_split(
    packet: &[u8],
    gso_size: usize,
    scratch: &mut Vec<u8>,
    mut emit: impl FnMut(&[u8]),
) -> Result<usize, FrameError> {
    if gso_size == 0 {
        return Err(FrameError::BadGso);
    }
    let l = Layout::parse(packet)?;
    let hdr = l.hdr();
    let payload = &packet[hdr..l.end];
    let (src, dst) = l.addrs(packet);
    let seq0 = u32::from_be_bytes([
        packet[l.ip_hl + 4],
        packet[l.ip_hl + 5],
        packet[l.ip_hl + 6],
        packet[l.ip_hl + 7],
    ]);
    let flags = packet[l.ip_hl + 13];
    let id0 = u16::from_be_bytes([packet[4], packet[5]]);
    let count = payload.len().div_ceil(gso_size).max(1);
    for i in 0..count {
        let chunk =
            &payload[(i * gso_size).min(payload.len())..((i + 1) * gso_size).min(payload.len())];
        scratch.clear();
        scratch.extend_from_slice(&packet[..hdr]);
        scratch.extend_from_slice(chunk);
        let s = &mut scratch[..];
        let tcp_len = l.tcp_hl + chunk.len();
        if l.v6 {
            put_u16(s, 4, tcp_len as u16);
        } else {
            put_u16(s, 2, (hdr + chunk.len()) as u16);
            put_u16(s, 4, id0.wrapping_add(i as u16));
            ipv4_header_checksum(s, l.ip_hl);
        }
        let t = l.ip_hl;
        let seq = seq0.wrapping_add((i * gso_size) as u32);
        s[t + 4..t + 8].copy_from_slice(&seq.to_be_bytes());
        let mut f = flags;
        if i + 1 < count {
            f &= !(FIN | PSH);
        }
        if i > 0 {
            f &= !CWR;
        }
        s[t + 13] = f;
        put_u16(s, t + 16, 0);
        let sum = accumulate(pseudo_header(src, dst, PROTO_TCP, tcp_len as u32), &s[t..]);
        put_u16(s, t + 16, !fold(sum));
        emit(s);
    }
    Ok(count)
}

/// Coalesces the segments the stack emits, one after another, into frames for a TUN
/// device with offload: a run of segments of one flow with consecutive sequence
/// numbers, equal headers (acknowledgment, window, options, IP fields), only ACK set
/// (PSH allowed on the last), all of one payload size but the last, becomes one TCP
/// super-packet with a GSO header; anything else goes out alone with an empty header.
///
/// Use: [`GsoBatch::push`] each segment; when it refuses one, send [`GsoBatch::take`]
/// and push the segment again (an empty batch takes anything). Send `take` at the end
/// of the burst too.
pub struct GsoBatch {
    /// The frame being built: header, then the first segment, then the payload of
    /// the others.
    buf: Vec<u8>,
    segments: usize,
    layout: Layout,
    gso_size: usize,
    next_seq: u32,
    last_flags: u8,
    /// No segment can be appended (not coalescable, PSH seen, or a short segment).
    sealed: bool,
}

impl Default for GsoBatch {
    fn default() -> Self {
        GsoBatch::new()
    }
}

impl GsoBatch {
    /// An empty batch.
    pub fn new() -> GsoBatch {
        GsoBatch {
            buf: Vec::with_capacity(VNET_HDR_LEN + MAX_PACKET),
            segments: 0,
            layout: Layout {
                v6: false,
                ip_hl: 0,
                tcp_hl: 0,
                end: 0,
            },
            gso_size: 0,
            next_seq: 0,
            last_flags: 0,
            sealed: true,
        }
    }

    /// Segments in the batch.
    pub fn segments(&self) -> usize {
        self.segments
    }

    /// Whether the batch holds nothing.
    pub fn is_empty(&self) -> bool {
        self.segments == 0
    }

    /// Adds one IP packet. Returns false, leaving the batch as it was, when it cannot
    /// join the segments in the batch; an empty batch takes any packet.
    pub fn push(&mut self, packet: &[u8]) -> bool {
        if self.segments == 0 {
            self.start(packet);
            return true;
        }
        if self.sealed {
            return false;
        }
        let Ok(l) = Layout::parse(packet) else {
            return false;
        };
        let cur = self.layout;
        if l.v6 != cur.v6 || l.ip_hl != cur.ip_hl || l.tcp_hl != cur.tcp_hl {
            return false;
        }
        let first = &self.buf[VNET_HDR_LEN..VNET_HDR_LEN + cur.hdr()];
        let same = |a: usize, b: usize| first[a..b] == packet[a..b];
        let t = cur.ip_hl;
        // Everything but lengths, identifier and checksums in the IP header, and
        // everything but sequence number, flags and checksum in the TCP header.
        let ip_same = if cur.v6 {
            same(0, 4) && same(6, 40)
        } else {
            same(0, 2) && same(6, 10) && same(12, t)
        };
        let tcp_same = same(t, t + 4)
            && same(t + 8, t + 13)
            && same(t + 14, t + 16)
            && same(t + 18, cur.hdr());
        if !ip_same || !tcp_same {
            return false;
        }
        let seq = u32::from_be_bytes([packet[t + 4], packet[t + 5], packet[t + 6], packet[t + 7]]);
        let flags = packet[t + 13];
        let len = l.end - l.hdr();
        if seq != self.next_seq
            || (flags != ACK && flags != ACK | PSH)
            || len == 0
            || len > self.gso_size
        {
            return false;
        }
        let room = if cur.v6 {
            65535 - (self.buf.len() - VNET_HDR_LEN - 40)
        } else {
            65535 - (self.buf.len() - VNET_HDR_LEN)
        };
        if len > room {
            return false;
        }
        self.buf.extend_from_slice(&packet[l.hdr()..l.end]);
        self.segments += 1;
        self.next_seq = seq.wrapping_add(len as u32);
        self.last_flags = flags;
        self.sealed = flags & PSH != 0 || len < self.gso_size;
        true
    }

    fn start(&mut self, packet: &[u8]) {
        self.buf.clear();
        self.buf.resize(VNET_HDR_LEN, 0);
        self.segments = 1;
        self.sealed = true;
        let Ok(l) = Layout::parse(packet) else {
            self.buf.extend_from_slice(packet);
            return;
        };
        // Only the IP packet proper: bytes past its length are not part of it.
        self.buf.extend_from_slice(&packet[..l.end]);
        let t = l.ip_hl;
        let flags = packet[t + 13];
        let len = l.end - l.hdr();
        self.layout = l;
        self.gso_size = len;
        self.next_seq =
            u32::from_be_bytes([packet[t + 4], packet[t + 5], packet[t + 6], packet[t + 7]])
                .wrapping_add(len as u32);
        self.last_flags = flags;
        self.sealed = len == 0 || flags != ACK || flags & (FIN | SYN | RST) != 0;
    }

    /// The batch as one frame (header and packet), ready to write to the device, and
    /// the batch emptied; `None` when it was empty. The slice stays valid until the
    /// next push.
    pub fn take(&mut self) -> Option<&[u8]> {
        if self.segments == 0 {
            return None;
        }
        let n = self.segments;
        self.segments = 0;
        if n == 1 {
            // A lone packet: its checksums are whole already.
            VnetHdr::default().write(&mut self.buf);
            return Some(&self.buf);
        }
        let l = self.layout;
        let p = &mut self.buf[VNET_HDR_LEN..];
        let total = p.len();
        let tcp_len = total - l.ip_hl;
        if l.v6 {
            put_u16(p, 4, tcp_len as u16);
        } else {
            put_u16(p, 2, total as u16);
            ipv4_header_checksum(p, l.ip_hl);
        }
        p[l.ip_hl + 13] = self.last_flags;
        let (src, dst) = l.addrs(p);
        // The partial checksum: the pseudo-header's sum, folded, not complemented; the
        // kernel adds the rest (or never needs to, on local delivery).
        let psum = fold(pseudo_header(src, dst, PROTO_TCP, tcp_len as u32));
        put_u16(p, l.ip_hl + 16, psum);
        VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: if l.v6 { GSO_TCPV6 } else { GSO_TCPV4 },
            hdr_len: l.hdr() as u16,
            gso_size: self.gso_size as u16,
            csum_start: l.ip_hl as u16,
            csum_offset: 16,
        }
        .write(&mut self.buf);
        Some(&self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seqack::wire::{ip, tcp};

    const V4: (IpAddr, IpAddr) = (
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
    );

    fn v6() -> (IpAddr, IpAddr) {
        ("fd00::2".parse().unwrap(), "fd00::1".parse().unwrap())
    }

    /// A TCP segment with the timestamp option, built by hand with whole checksums.
    #[allow(clippy::too_many_arguments)]
    fn segment(
        addrs: (IpAddr, IpAddr),
        id: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        dport: u16,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut t = vec![0u8; 32];
        t[0..2].copy_from_slice(&40000u16.to_be_bytes());
        t[2..4].copy_from_slice(&dport.to_be_bytes());
        t[4..8].copy_from_slice(&seq.to_be_bytes());
        t[8..12].copy_from_slice(&ack.to_be_bytes());
        t[12] = 8 << 4;
        t[13] = flags;
        t[14..16].copy_from_slice(&502u16.to_be_bytes());
        t[20..32].copy_from_slice(&[1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78]);
        t.extend_from_slice(payload);
        let sum = accumulate(pseudo_header(addrs.0, addrs.1, 6, t.len() as u32), &t);
        t[16..18].copy_from_slice(&(!fold(sum)).to_be_bytes());
        let mut p = Vec::new();
        match addrs {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                p.extend_from_slice(&[0x45, 0]);
                p.extend_from_slice(&((20 + t.len()) as u16).to_be_bytes());
                p.extend_from_slice(&id.to_be_bytes());
                p.extend_from_slice(&[0x40, 0, 64, 6, 0, 0]);
                p.extend_from_slice(&s.octets());
                p.extend_from_slice(&d.octets());
                ipv4_header_checksum(&mut p, 20);
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                p.extend_from_slice(&[0x60, 0, 0, 0]);
                p.extend_from_slice(&(t.len() as u16).to_be_bytes());
                p.extend_from_slice(&[6, 64]);
                p.extend_from_slice(&s.octets());
                p.extend_from_slice(&d.octets());
            }
            _ => unreachable!(),
        }
        p.extend_from_slice(&t);
        p
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    /// The payload of a packet that the core's parser accepts, checksums verified.
    fn verified_payload(p: &[u8]) -> (tcp::Flags, u32, Vec<u8>) {
        let ipp = ip::parse(p).expect("IP header parses, checksum good");
        let seg = tcp::parse(ipp.payload, ipp.src, ipp.dst, true).expect("TCP checksum good");
        (seg.flags, seg.seq.0, seg.payload.to_vec())
    }

    /// Five full segments and a short one with PSH: one frame, whose packet, once its
    /// partial checksum is completed as the kernel would, is a valid TCP segment with
    /// all the data; and splitting it gives back the very segments pushed, byte for
    /// byte.
    fn burst_round_trip(addrs: (IpAddr, IpAddr)) {
        let bytes = data(5 * 1448 + 700);
        let segs: Vec<Vec<u8>> = bytes
            .chunks(1448)
            .enumerate()
            .map(|(i, c)| {
                let flags = if c.len() < 1448 { ACK | PSH } else { ACK };
                segment(
                    addrs,
                    100 + i as u16,
                    5000 + (i * 1448) as u32,
                    77,
                    flags,
                    5001,
                    c,
                )
            })
            .collect();
        let mut b = GsoBatch::new();
        for s in &segs {
            assert!(b.push(s));
        }
        assert_eq!(b.segments(), 6);
        let frame = b.take().unwrap().to_vec();
        assert!(b.is_empty());
        let h = VnetHdr::parse(&frame).unwrap();
        let ip_hl = if addrs.0.is_ipv6() { 40 } else { 20 };
        assert_eq!(
            h,
            VnetHdr {
                flags: F_NEEDS_CSUM,
                gso_type: if addrs.0.is_ipv6() {
                    GSO_TCPV6
                } else {
                    GSO_TCPV4
                },
                hdr_len: (ip_hl + 32) as u16,
                gso_size: 1448,
                csum_start: ip_hl as u16,
                csum_offset: 16,
            }
        );
        let packet = &frame[VNET_HDR_LEN..];
        assert_eq!(packet.len(), ip_hl + 32 + bytes.len());
        // The partial checksum alone does not verify; completed, it does.
        let ipp = ip::parse(packet).unwrap();
        assert!(tcp::parse(ipp.payload, ipp.src, ipp.dst, true).is_err());
        let mut done = packet.to_vec();
        complete_checksum(&mut done, ip_hl, 16).unwrap();
        let (flags, seq, payload) = verified_payload(&done);
        assert_eq!((flags.0, seq), (ACK | PSH, 5000));
        assert_eq!(payload, bytes);
        // Split (from the partial or the completed form alike): the original segments.
        let mut scratch = Vec::new();
        for p in [packet, &done[..]] {
            let mut out = Vec::new();
            let n = gso_split(p, 1448, &mut scratch, |s| out.push(s.to_vec())).unwrap();
            assert_eq!(n, 6);
            assert_eq!(out, segs);
        }
    }

    #[test]
    fn ipv4_burst_coalesces_and_splits_back() {
        burst_round_trip(V4);
    }

    #[test]
    fn ipv6_burst_coalesces_and_splits_back() {
        burst_round_trip(v6());
    }

    #[test]
    fn a_lone_segment_goes_out_unchanged_with_an_empty_header() {
        let s = segment(V4, 1, 9, 77, ACK | PSH, 5001, &data(300));
        let mut b = GsoBatch::new();
        assert!(b.push(&s));
        let frame = b.take().unwrap();
        assert_eq!(VnetHdr::parse(frame).unwrap(), VnetHdr::default());
        assert_eq!(&frame[VNET_HDR_LEN..], &s[..]);
        assert!(b.take().is_none());
    }

    #[test]
    fn segments_that_cannot_join_are_refused() {
        let full = data(1448);
        let first = segment(V4, 1, 1000, 77, ACK, 5001, &full);
        let next = 1000 + 1448;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("a gap", segment(V4, 2, next + 1, 77, ACK, 5001, &full)),
            (
                "another ACK number",
                segment(V4, 2, next, 78, ACK, 5001, &full),
            ),
            ("another flow", segment(V4, 2, next, 77, ACK, 5002, &full)),
            (
                "another family",
                segment(v6(), 2, next, 77, ACK, 5001, &full),
            ),
            (
                "a larger segment",
                segment(V4, 2, next, 77, ACK, 5001, &data(1449)),
            ),
            ("FIN", segment(V4, 2, next, 77, ACK | FIN, 5001, &full)),
            ("no payload", segment(V4, 2, next, 77, ACK, 5001, &[])),
            ("RST", segment(V4, 2, next, 77, ACK | RST, 5001, &full)),
            ("garbage", vec![0x45, 1, 2]),
        ];
        for (what, s) in cases {
            let mut b = GsoBatch::new();
            assert!(b.push(&first));
            assert!(!b.push(&s), "{what} was coalesced");
            assert_eq!(b.segments(), 1, "{what}");
            // The batch still gives the first segment alone, unchanged.
            assert_eq!(&b.take().unwrap()[VNET_HDR_LEN..], &first[..], "{what}");
            // And an empty batch takes the refused one.
            assert!(b.push(&s));
        }
        // After PSH, after a short segment, and after a SYN or a pure ACK, nothing joins.
        for head in [
            segment(V4, 1, 1000, 77, ACK | PSH, 5001, &full),
            segment(V4, 1, 1000, 77, ACK, 5001, &data(1000)),
            segment(V4, 1, 1000, 77, SYN | ACK, 5001, &[]),
            segment(V4, 1, 1000, 77, ACK, 5001, &[]),
        ] {
            let mut b = GsoBatch::new();
            assert!(b.push(&head));
            let l = Layout::parse(&head).unwrap();
            let s = segment(V4, 2, 1000 + (l.end - l.hdr()) as u32, 77, ACK, 5001, &full);
            assert!(!b.push(&s));
        }
    }

    #[test]
    fn super_packets_stay_within_64k_and_lose_nothing() {
        let n = 100;
        let bytes = data(n * 1448);
        let mut b = GsoBatch::new();
        let mut frames = Vec::new();
        for (i, c) in bytes.chunks(1448).enumerate() {
            let s = segment(V4, i as u16, (i * 1448) as u32, 77, ACK, 5001, c);
            if !b.push(&s) {
                frames.push(b.take().unwrap().to_vec());
                assert!(b.push(&s));
            }
        }
        frames.push(b.take().unwrap().to_vec());
        // 45 segments of 1448 fit under 65535 with 52 header bytes; 100 make 3 frames.
        assert_eq!(frames.len(), 3);
        let mut got = Vec::new();
        for f in &frames {
            let mut p = f[VNET_HDR_LEN..].to_vec();
            assert!(p.len() <= 65535);
            complete_checksum(&mut p, 20, 16).unwrap();
            let (_, seq, payload) = verified_payload(&p);
            assert_eq!(seq as usize, got.len());
            got.extend_from_slice(&payload);
        }
        assert_eq!(got, bytes);
    }

    #[test]
    fn a_partial_checksum_is_completed_and_bad_offsets_refused() {
        let mut s = segment(V4, 1, 9, 77, ACK | PSH, 5001, &data(1001));
        // Make it partial as the kernel hands it: the pseudo-header sum in the field.
        let psum = fold(pseudo_header(V4.0, V4.1, 6, (s.len() - 20) as u32));
        s[36..38].copy_from_slice(&psum.to_be_bytes());
        assert!(tcp::parse(&s[20..], V4.0, V4.1, true).is_err());
        let mut ok = s.clone();
        complete_checksum(&mut ok, 20, 16).unwrap();
        assert_eq!(verified_payload(&ok).2, data(1001));
        let len = s.len();
        for (start, off) in [
            (len, 0),
            (len - 1, 0),
            (20, len),
            (usize::MAX, 16),
            (21, 16),
        ] {
            let mut p = s.clone();
            assert_eq!(
                complete_checksum(&mut p, start, off),
                Err(FrameError::BadChecksumOffsets)
            );
            assert_eq!(p, s, "a refused frame is left alone");
        }
    }

    #[test]
    fn split_keeps_fin_and_psh_on_the_last_segment_and_cwr_on_the_first() {
        let mut p = segment(V4, 7, 1, 77, ACK | PSH | FIN | CWR, 5001, &data(3000));
        let mut scratch = Vec::new();
        let mut out = Vec::new();
        assert_eq!(
            gso_split(&p, 1000, &mut scratch, |s| out.push(s.to_vec())),
            Ok(3)
        );
        let flags: Vec<u8> = out.iter().map(|s| verified_payload(s).0 .0).collect();
        assert_eq!(flags, [ACK | CWR, ACK, ACK | PSH | FIN]);
        let ids: Vec<u16> = out
            .iter()
            .map(|s| u16::from_be_bytes([s[4], s[5]]))
            .collect();
        assert_eq!(ids, [7, 8, 9]);
        // A super-packet without payload (a bare FIN) is one segment.
        p = segment(V4, 7, 1, 77, ACK | FIN, 5001, &[]);
        out.clear();
        assert_eq!(
            gso_split(&p, 1000, &mut scratch, |s| out.push(s.to_vec())),
            Ok(1)
        );
        assert_eq!(out[0], p);
    }

    #[test]
    fn split_refuses_malformed_super_packets_without_panicking() {
        let p = segment(V4, 7, 1, 77, ACK, 5001, &data(3000));
        let mut scratch = Vec::new();
        assert_eq!(
            gso_split(&p, 0, &mut scratch, |_| {}),
            Err(FrameError::BadGso)
        );
        // Every truncation: an error, never a panic, never a segment.
        for n in 0..p.len() {
            let mut segs = 0;
            assert!(gso_split(&p[..n], 1000, &mut scratch, |_| segs += 1).is_err());
            assert_eq!(segs, 0);
        }
        // Not TCP; a fragment; a header length past the end.
        let mut udp = p.clone();
        udp[9] = 17;
        assert_eq!(
            gso_split(&udp, 1000, &mut scratch, |_| {}),
            Err(FrameError::NotTcp)
        );
        let mut frag = p.clone();
        frag[6] = 0x20;
        assert_eq!(
            gso_split(&frag, 1000, &mut scratch, |_| {}),
            Err(FrameError::BadHeader)
        );
        let mut doff = p.clone();
        doff[32] = 4 << 4;
        assert_eq!(
            gso_split(&doff, 1000, &mut scratch, |_| {}),
            Err(FrameError::BadHeader)
        );
        // Every byte value in every header position: no panic.
        for i in 0..52 {
            for v in [0u8, 1, 0x0f, 0x45, 0x60, 0xf0, 0xff] {
                let mut q = p.clone();
                q[i] = v;
                let _ = gso_split(&q, 1448, &mut scratch, |_| {});
                let mut b = GsoBatch::new();
                b.push(&p[..20 + 32 + 1448]);
                let _ = b.push(&q);
                let _ = b.take();
            }
        }
    }

    #[test]
    fn vnet_header_round_trips() {
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV6 | GSO_ECN,
            hdr_len: 72,
            gso_size: 1428,
            csum_start: 40,
            csum_offset: 16,
        };
        let mut b = [0u8; VNET_HDR_LEN];
        h.write(&mut b);
        assert_eq!(VnetHdr::parse(&b), Ok(h));
        assert!(h.is_tcp_gso());
        assert_eq!(VnetHdr::parse(&b[..9]), Err(FrameError::Short));
    }
}
