//! Packets on the runner's side of the stack: building the script's inbound packets
//! byte for byte (options in the order written), and decoding what the stack sends
//! into a form that keeps the option order, for comparison with the script.

use crate::ast::TcpOption;
use core::net::{IpAddr, SocketAddr};
use seqack::wire::checksum;

/// The TCP/IP fields of a packet in either direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpPacket {
    /// Source address and port.
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
    /// The whole TOS / traffic class byte (the ECN codepoint is its two low bits).
    pub tos: u8,
    /// TTL or hop limit.
    pub ttl: u8,
    /// Control bits (byte 13).
    pub flags: u8,
    /// AE bit (byte 12, lowest bit).
    pub ae: bool,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Window.
    pub win: u16,
    /// Urgent pointer.
    pub urg: u16,
    /// Options, in order, including NOPs and EOLs.
    pub options: Vec<TcpOption>,
    /// Payload length in bytes.
    pub payload_len: usize,
}

/// Serialises a packet (payload of zero bytes) with correct checksums.
pub fn build(p: &TcpPacket) -> Vec<u8> {
    let mut opts = Vec::new();
    for o in &p.options {
        o.encode(&mut opts);
    }
    while opts.len() % 4 != 0 {
        opts.push(0);
    }
    let tcp_len = 20 + opts.len() + p.payload_len;
    let mut tcp = vec![0u8; tcp_len];
    tcp[0..2].copy_from_slice(&p.src.port().to_be_bytes());
    tcp[2..4].copy_from_slice(&p.dst.port().to_be_bytes());
    tcp[4..8].copy_from_slice(&p.seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&p.ack.to_be_bytes());
    tcp[12] = (((20 + opts.len()) / 4) as u8) << 4 | u8::from(p.ae);
    tcp[13] = p.flags;
    tcp[14..16].copy_from_slice(&p.win.to_be_bytes());
    tcp[18..20].copy_from_slice(&p.urg.to_be_bytes());
    tcp[20..20 + opts.len()].copy_from_slice(&opts);
    let sum = checksum::accumulate(
        checksum::pseudo_header(p.src.ip(), p.dst.ip(), 6, tcp_len as u32),
        &tcp,
    );
    let c = !checksum::fold(sum);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    let mut out = Vec::with_capacity(40 + tcp_len);
    match (p.src.ip(), p.dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = (20 + tcp_len) as u16;
            let mut h = [0u8; 20];
            h[0] = 0x45;
            h[1] = p.tos;
            h[2..4].copy_from_slice(&total.to_be_bytes());
            h[6] = 0x40; // DF
            h[8] = p.ttl;
            h[9] = 6;
            h[12..16].copy_from_slice(&s.octets());
            h[16..20].copy_from_slice(&d.octets());
            let c = checksum::checksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            out.extend_from_slice(&h);
        }
        (s, d) => {
            let v6 = |a: IpAddr| match a {
                IpAddr::V4(a) => a.to_ipv6_mapped(),
                IpAddr::V6(a) => a,
            };
            let mut h = [0u8; 40];
            h[0] = 0x60 | (p.tos >> 4);
            h[1] = p.tos << 4;
            h[4..6].copy_from_slice(&(tcp_len as u16).to_be_bytes());
            h[6] = 6;
            h[7] = p.ttl;
            h[8..24].copy_from_slice(&v6(s).octets());
            h[24..40].copy_from_slice(&v6(d).octets());
            out.extend_from_slice(&h);
        }
    }
    out.extend_from_slice(&tcp);
    out
}

/// Decodes a packet the stack sent. Checksums are verified: a bad one is an error.
pub fn decode(bytes: &[u8]) -> Result<TcpPacket, String> {
    let ip = seqack::wire::ip::parse(bytes).map_err(|e| format!("bad IP packet: {e}"))?;
    if ip.protocol != 6 {
        return Err(format!("not TCP (protocol {})", ip.protocol));
    }
    let tos = match bytes[0] >> 4 {
        4 => bytes[1],
        _ => (bytes[0] << 4) | (bytes[1] >> 4),
    };
    let t = ip.payload;
    if t.len() < 20 {
        return Err("truncated TCP header".into());
    }
    let sum = checksum::accumulate(
        checksum::pseudo_header(ip.src, ip.dst, 6, t.len() as u32),
        t,
    );
    if checksum::fold(sum) != 0xffff {
        return Err("bad outbound TCP checksum".into());
    }
    let off = usize::from(t[12] >> 4) * 4;
    if off < 20 || off > t.len() {
        return Err("bad TCP data offset".into());
    }
    let be16 = |i: usize| u16::from_be_bytes([t[i], t[i + 1]]);
    let be32 = |i: usize| u32::from_be_bytes([t[i], t[i + 1], t[i + 2], t[i + 3]]);
    Ok(TcpPacket {
        src: SocketAddr::new(ip.src, be16(0)),
        dst: SocketAddr::new(ip.dst, be16(2)),
        tos,
        ttl: ip.hop_limit,
        flags: t[13],
        ae: t[12] & 1 != 0,
        seq: be32(4),
        ack: be32(8),
        win: be16(14),
        urg: be16(18),
        options: TcpOption::decode_list(&t[20..off])?,
        payload_len: t.len() - off,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_v4_and_v6_keep_option_order() {
        for (s, d) in [
            ("192.0.2.1:40000", "192.168.0.1:8080"),
            ("[2001:db8::1]:40000", "[fd3d:fa7b:d17d::]:8080"),
        ] {
            let p = TcpPacket {
                src: s.parse().unwrap(),
                dst: d.parse().unwrap(),
                tos: 2,
                ttl: 64,
                flags: 0x12,
                ae: false,
                seq: 7,
                ack: 9,
                win: 32767,
                urg: 0,
                options: vec![
                    TcpOption::Mss(1460),
                    TcpOption::SackOk,
                    TcpOption::Eol,
                    TcpOption::Eol,
                ],
                payload_len: 10,
            };
            let b = build(&p);
            assert_eq!(decode(&b).unwrap(), p);
            // The stack accepts it too.
            let ip = seqack::wire::ip::parse(&b).unwrap();
            let seg = seqack::wire::tcp::parse(ip.payload, ip.src, ip.dst, true).unwrap();
            assert_eq!(seg.options.mss, Some(1460));
            assert_eq!(ip.ecn, 2);
        }
    }
}
