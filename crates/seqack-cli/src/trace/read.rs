//! Reading TCP segments out of pcap and pcapng files.
//!
//! The container formats are `pcap-file`'s; the link-layer headers (Ethernet with VLAN
//! tags, Linux cooked SLL and SLL2, BSD loopback) are a few bytes each and stripped here;
//! IP and TCP are parsed by the core's own [`seqack::wire`] module, the same code the
//! stack runs on, with the TCP checksum left unchecked (captures taken on a sending host
//! see the checksum before the NIC fills it in).

use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use seqack::wire::{ip, tcp};
use std::net::SocketAddr;

/// One TCP segment as captured, with everything the inference needs, owned.
#[derive(Clone, Debug)]
pub struct Packet {
    /// Capture time in microseconds since the Unix epoch (or since the simulation's
    /// start for `seqack demo --pcap`).
    pub t_us: u64,
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// Control bits.
    pub flags: tcp::Flags,
    /// Sequence number as on the wire.
    pub seq: u32,
    /// Acknowledgment number as on the wire (meaningful when ACK is set).
    pub ack: u32,
    /// Window field, unscaled.
    pub win: u16,
    /// Options.
    pub options: tcp::Options,
    /// Payload length in bytes (from the IP length, so right even when the capture cut
    /// the packet short).
    pub len: u32,
}

/// What was read from one capture file.
#[derive(Debug, Default)]
pub struct Capture {
    /// `pcap` or `pcapng`.
    pub format: &'static str,
    /// Link types seen (LINKTYPE_ numbers).
    pub linktypes: Vec<u32>,
    /// The TCP segments, in file order.
    pub packets: Vec<Packet>,
    /// Frames read in all.
    pub frames: u64,
    /// Frames that were not IPv4/IPv6 TCP (ARP, UDP, ICMP, ...).
    pub not_tcp: u64,
    /// Frames that could not be parsed (unknown link type, bad header, IP fragment).
    pub malformed: u64,
    /// Set when the file ended in the middle of a record (a capture cut short).
    pub truncated_tail: bool,
}

/// Reads `path` as pcap or pcapng (told apart by the magic number).
pub fn read_file(path: &std::path::Path) -> Result<Capture, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    read_bytes(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads a whole capture held in memory.
pub fn read_bytes(bytes: &[u8]) -> Result<Capture, String> {
    if bytes.len() < 4 {
        return Err("not a pcap or pcapng file (too short)".into());
    }
    match &bytes[..4] {
        [0x0a, 0x0d, 0x0d, 0x0a] => read_pcapng(bytes),
        [0xa1, 0xb2, 0xc3, 0xd4]
        | [0xd4, 0xc3, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0x3c, 0x4d]
        | [0x4d, 0x3c, 0xb2, 0xa1] => read_pcap(bytes),
        _ => Err("not a pcap or pcapng file (unknown magic number)".into()),
    }
}

fn read_pcap(bytes: &[u8]) -> Result<Capture, String> {
    let mut r = PcapReader::new(bytes).map_err(|e| format!("bad pcap header: {e}"))?;
    let link = u32::from(r.header().datalink);
    let mut cap = Capture {
        format: "pcap",
        linktypes: vec![link],
        ..Capture::default()
    };
    while let Some(p) = r.next_packet() {
        match p {
            Ok(p) => {
                let t_us = p.timestamp.as_micros() as u64;
                cap.frame(link, t_us, &p.data, p.orig_len);
            }
            Err(_) => {
                cap.truncated_tail = true;
                break;
            }
        }
    }
    Ok(cap)
}

/// One pcapng interface: link type and timestamp units.
struct Iface {
    link: u32,
    /// Timestamp units per second.
    units: u64,
    /// Seconds added to every timestamp (if_tsoffset).
    offset_s: u64,
}

/// A raw pcapng timestamp in `iface`'s units, as microseconds.
fn to_us(raw: u128, iface: &Iface) -> u64 {
    let units = u128::from(iface.units);
    let us = raw / units * 1_000_000 + raw % units * 1_000_000 / units;
    u64::try_from(us)
        .unwrap_or(u64::MAX)
        .saturating_add(iface.offset_s.saturating_mul(1_000_000))
}

fn read_pcapng(bytes: &[u8]) -> Result<Capture, String> {
    let mut r = PcapNgReader::new(bytes).map_err(|e| format!("bad pcapng header: {e}"))?;
    let mut cap = Capture {
        format: "pcapng",
        ..Capture::default()
    };
    let mut ifaces: Vec<Iface> = Vec::new();
    let mut last_t = 0u64;
    while let Some(b) = r.next_block() {
        let b = match b {
            Ok(b) => b,
            Err(_) => {
                cap.truncated_tail = true;
                break;
            }
        };
        match b {
            // A new section starts a new list of interfaces.
            Block::SectionHeader(_) => ifaces.clear(),
            Block::InterfaceDescription(idb) => {
                let mut iface = Iface {
                    link: u32::from(idb.linktype),
                    units: 1_000_000,
                    offset_s: 0,
                };
                for o in &idb.options {
                    match o {
                        InterfaceDescriptionOption::IfTsResol(res) => {
                            // High bit: a power of two; else a power of ten.
                            let (base, exp) = if res & 0x80 != 0 {
                                (2u64, u32::from(res & 0x7f))
                            } else {
                                (10u64, u32::from(*res))
                            };
                            iface.units = base.checked_pow(exp).unwrap_or(0).max(1);
                        }
                        InterfaceDescriptionOption::IfTsOffset(s) => iface.offset_s = *s,
                        _ => {}
                    }
                }
                if !cap.linktypes.contains(&iface.link) {
                    cap.linktypes.push(iface.link);
                }
                ifaces.push(iface);
            }
            Block::EnhancedPacket(epb) => {
                let Some(iface) = ifaces.get(epb.interface_id as usize) else {
                    cap.frames += 1;
                    cap.malformed += 1;
                    continue;
                };
                // pcap-file 2 hands the raw 64-bit timestamp over as if it counted
                // nanoseconds; it counts the interface's units (microseconds unless
                // if_tsresol says otherwise).
                let t_us = to_us(epb.timestamp.as_nanos(), iface);
                last_t = t_us;
                let link = iface.link;
                cap.frame(link, t_us, &epb.data, epb.original_len);
            }
            Block::SimplePacket(spb) => {
                // No timestamp and always interface 0.
                let Some(link) = ifaces.first().map(|i| i.link) else {
                    cap.frames += 1;
                    cap.malformed += 1;
                    continue;
                };
                cap.frame(link, last_t, &spb.data, spb.original_len);
            }
            Block::Packet(pb) => {
                let Some(iface) = ifaces.get(usize::from(pb.interface_id)) else {
                    cap.frames += 1;
                    cap.malformed += 1;
                    continue;
                };
                let link = iface.link;
                let t_us = to_us(u128::from(pb.timestamp), iface);
                last_t = t_us;
                cap.frame(link, t_us, &pb.data, pb.original_len);
            }
            _ => {}
        }
    }
    Ok(cap)
}

/// Why a frame is not a TCP segment.
#[derive(Debug, PartialEq, Eq)]
enum Skip {
    NotTcp,
    Malformed,
}

impl Capture {
    fn frame(&mut self, link: u32, t_us: u64, data: &[u8], orig_len: u32) {
        self.frames += 1;
        match parse_frame(link, t_us, data, orig_len) {
            Ok(p) => self.packets.push(p),
            Err(Skip::NotTcp) => self.not_tcp += 1,
            Err(Skip::Malformed) => self.malformed += 1,
        }
    }
}

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;

/// The IP packet inside a frame of link type `link`, or why there is none.
fn strip_link(link: u32, data: &[u8]) -> Result<&[u8], Skip> {
    let be16 = |d: &[u8], at: usize| -> Result<u16, Skip> {
        d.get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or(Skip::Malformed)
    };
    fn by_type(ty: u16, rest: &[u8]) -> Result<&[u8], Skip> {
        match ty {
            ETH_IPV4 | ETH_IPV6 => Ok(rest),
            _ => Err(Skip::NotTcp),
        }
    }
    match link {
        // LINKTYPE_RAW (and its old numbers 12 and 14), LINKTYPE_IPV4, LINKTYPE_IPV6.
        101 | 12 | 14 | 228 | 229 => Ok(data),
        // Ethernet: 14 bytes, then any number of 802.1Q / 802.1ad tags of 4 bytes.
        1 => {
            let mut off = 12;
            let mut ty = be16(data, off)?;
            let mut tags = 0;
            while matches!(ty, 0x8100 | 0x88a8 | 0x9100) && tags < 8 {
                off += 4;
                ty = be16(data, off)?;
                tags += 1;
            }
            by_type(ty, data.get(off + 2..).ok_or(Skip::Malformed)?)
        }
        // Linux cooked capture v1: 16 bytes, protocol in the last two.
        113 => by_type(be16(data, 14)?, data.get(16..).ok_or(Skip::Malformed)?),
        // Linux cooked capture v2: 20 bytes, protocol in the first two.
        276 => by_type(be16(data, 0)?, data.get(20..).ok_or(Skip::Malformed)?),
        // BSD loopback: a 4-byte address family, host order (NULL) or network order (LOOP).
        0 | 108 => {
            let fam = data.get(..4).ok_or(Skip::Malformed)?;
            let f = if link == 108 {
                u32::from_be_bytes([fam[0], fam[1], fam[2], fam[3]])
            } else if fam[0] != 0 {
                u32::from_le_bytes([fam[0], fam[1], fam[2], fam[3]])
            } else {
                u32::from_be_bytes([fam[0], fam[1], fam[2], fam[3]])
            };
            match f {
                2 | 24 | 28 | 30 => Ok(&data[4..]),
                _ => Err(Skip::NotTcp),
            }
        }
        _ => Err(Skip::Malformed),
    }
}

fn parse_frame(link: u32, t_us: u64, data: &[u8], orig_len: u32) -> Result<Packet, Skip> {
    let ipb = strip_link(link, data)?;
    // A capture with a short snap length cuts packets: pad the missing tail with zeros
    // so that the IP length still parses (the headers are what matter here).
    let cut = (orig_len as usize).saturating_sub(data.len());
    let padded;
    let ipb = if cut > 0 && cut <= 65_535 {
        let mut v = ipb.to_vec();
        v.resize(ipb.len() + cut, 0);
        padded = v;
        &padded[..]
    } else {
        ipb
    };
    let p = match ip::parse(ipb) {
        Ok(p) => p,
        Err(seqack::wire::WireError::BadVersion) => return Err(Skip::NotTcp),
        Err(_) => return Err(Skip::Malformed),
    };
    if p.protocol != ip::PROTO_TCP {
        return Err(Skip::NotTcp);
    }
    let s = tcp::parse(p.payload, p.src, p.dst, false).map_err(|_| Skip::Malformed)?;
    Ok(Packet {
        t_us,
        src: SocketAddr::new(p.src, s.src_port),
        dst: SocketAddr::new(p.dst, s.dst_port),
        flags: s.flags,
        seq: s.seq.0,
        ack: s.ack.0,
        win: s.window,
        options: s.options,
        len: s.payload.len() as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use seqack::wire::tcp::Flags;

    /// A minimal IPv4 TCP SYN from 10.0.0.1:1000 to 10.0.0.2:80 with 3 payload bytes.
    fn ipv4_syn() -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 43, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let sum = seqack::wire::checksum::checksum(&p);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        p.extend_from_slice(&[
            0x03, 0xe8, 0, 80, 0, 0, 0, 7, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff,
        ]);
        p.extend_from_slice(&[0, 0, 0, 0, b'a', b'b', b'c']);
        p
    }

    #[test]
    fn link_types_are_stripped() {
        let ip = ipv4_syn();
        let mut null = vec![2, 0, 0, 0];
        null.extend_from_slice(&ip);
        let mut lo = vec![0, 0, 0, 2];
        lo.extend_from_slice(&ip);
        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&[0x88, 0xa8, 0, 1, 0x81, 0, 0, 2, 0x08, 0x00]);
        eth.extend_from_slice(&ip);
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(&ip);
        for (link, frame) in [(0, &null), (108, &lo), (1, &eth), (113, &sll), (101, &ip)] {
            let p = parse_frame(link, 5, frame, frame.len() as u32)
                .unwrap_or_else(|e| panic!("link {link}: {e:?}"));
            assert_eq!(p.src.to_string(), "10.0.0.1:1000");
            assert_eq!(p.dst.to_string(), "10.0.0.2:80");
            assert_eq!(p.flags, Flags::SYN);
            assert_eq!((p.seq, p.len, p.t_us), (7, 3, 5));
        }
    }

    #[test]
    fn short_snap_length_keeps_the_headers() {
        let ip = ipv4_syn();
        // Cut after the TCP header: the payload length still comes from the IP header.
        let p = parse_frame(101, 0, &ip[..40], ip.len() as u32).unwrap();
        assert_eq!(p.len, 3);
    }

    #[test]
    fn other_frames_are_counted_not_parsed() {
        let mut arp = vec![0u8; 12];
        arp.extend_from_slice(&[0x08, 0x06, 0, 1]);
        assert_eq!(parse_frame(1, 0, &arp, 16).unwrap_err(), Skip::NotTcp);
        let mut udp = ipv4_syn();
        udp[9] = 17;
        udp[10] = 0;
        udp[11] = 0;
        let sum = seqack::wire::checksum::checksum(&udp[..20]);
        udp[10..12].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(parse_frame(101, 0, &udp, 43).unwrap_err(), Skip::NotTcp);
        assert_eq!(
            parse_frame(1, 0, &[1, 2, 3], 3).unwrap_err(),
            Skip::Malformed
        );
        assert_eq!(
            parse_frame(147, 0, &ipv4_syn(), 43).unwrap_err(),
            Skip::Malformed
        );
        let mut bad = ipv4_syn();
        bad[12 + 20] = 0x10; // TCP data offset below 5 words
        assert_eq!(parse_frame(101, 0, &bad, 43).unwrap_err(), Skip::Malformed);
        assert!(read_bytes(b"no").is_err());
        assert!(read_bytes(b"nope, not a capture").is_err());
    }
}
