//! A pcap tap: writes raw IP packets (LINKTYPE_RAW, IPv4 and IPv6) with the driver's
//! timestamps, readable by tcpdump, tshark and Wireshark.

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::DataLink;
use seqack::Instant;
use std::io::Write;

/// Largest packet captured whole.
pub const SNAPLEN: u32 = 262_144;

/// A pcap file being written.
pub struct PcapTap<W: Write> {
    writer: PcapWriter<W>,
}

impl<W: Write> PcapTap<W> {
    /// Writes the file header to `w`.
    pub fn new(w: W) -> std::io::Result<PcapTap<W>> {
        let header = PcapHeader {
            datalink: DataLink::RAW,
            snaplen: SNAPLEN,
            ..Default::default()
        };
        let writer = PcapWriter::with_header(w, header).map_err(to_io)?;
        Ok(PcapTap { writer })
    }

    /// Appends one IP packet seen at `t`.
    pub fn write(&mut self, t: Instant, packet: &[u8]) -> std::io::Result<()> {
        let ts = std::time::Duration::from_micros(t.total_micros());
        let keep = packet.len().min(SNAPLEN as usize);
        let p = PcapPacket::new(ts, packet.len() as u32, &packet[..keep]);
        self.writer.write_packet(&p).map_err(to_io)?;
        Ok(())
    }

    /// Finishes and returns the underlying writer.
    pub fn into_inner(self) -> W {
        self.writer.into_writer()
    }
}

fn to_io(e: pcap_file::PcapError) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcap::PcapReader;

    #[test]
    fn round_trips_through_a_reader() {
        let mut tap = PcapTap::new(Vec::new()).unwrap();
        tap.write(Instant::from_micros(1_500_000), &[0x45, 0, 0, 20])
            .unwrap();
        let bytes = tap.into_inner();
        let mut r = PcapReader::new(&bytes[..]).unwrap();
        assert_eq!(r.header().datalink, DataLink::RAW);
        let p = r.next_packet().unwrap().unwrap();
        assert_eq!(p.timestamp, std::time::Duration::from_micros(1_500_000));
        assert_eq!(&p.data[..], &[0x45, 0, 0, 20]);
    }
}
