//! Packet devices for the real-time driver: a Linux TUN device, and a pair of devices
//! joined by a Unix datagram socket (two stacks in one process, no privileges needed).
//!
//! A device moves whole IP packets. Both directions take `&self` so that the driver
//! thread can read while an application thread, holding the stack's lock, writes.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixDatagram;

/// A source and sink of raw IP packets (IPv4 and IPv6, no link header).
pub trait Device: Send + Sync + 'static {
    /// Reads one packet without blocking: `Err(WouldBlock)` when none is waiting.
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes one packet.
    fn send(&self, packet: &[u8]) -> io::Result<()>;
    /// The descriptor that polls readable when a packet is waiting.
    fn fd(&self) -> BorrowedFd<'_>;
    /// The device's MTU: the largest packet it carries.
    fn mtu(&self) -> usize;
    /// Whether every packet read and written starts with a virtio-net header
    /// ([`crate::offload::VnetHdr`]): a TUN device with offload, which reads TCP
    /// super-packets of up to 64 KiB and takes them.
    fn vnet_hdr(&self) -> bool {
        false
    }
}

/// How to open a TUN device.
#[derive(Clone, Debug)]
pub struct TunOptions {
    /// The interface name (`tun0`).
    pub name: String,
    /// The address and prefix length the kernel's side of the device gets when seqack
    /// creates it. A device that exists already is attached to and left as configured.
    pub kernel_addr: Option<(IpAddr, u8)>,
    /// MTU to set on a device seqack creates.
    pub mtu: u16,
    /// TUN offload: open the device with `IFF_VNET_HDR` and turn on checksum offload
    /// and TSO for IPv4 and IPv6 (`TUNSETOFFLOAD`), so that the kernel hands over and
    /// takes TCP super-packets of up to 64 KiB, one per read or write, with the
    /// virtio-net header in front (see [`crate::offload`]). The setting is the
    /// device's: it applies to an attached device too.
    pub offload: bool,
}

impl TunOptions {
    /// Options for seqack at `addr` on a link of prefix length `prefix`: a device that
    /// has to be created gets the first host address of the prefix other than `addr`
    /// on the kernel's side, and MTU 1500.
    pub fn for_address(name: &str, addr: IpAddr, prefix: u8) -> TunOptions {
        TunOptions {
            name: name.to_string(),
            kernel_addr: Some((default_kernel_addr(addr, prefix), prefix)),
            mtu: 1500,
            offload: false,
        }
    }
}

/// Parses `IP[/PREFIX]` (the prefix defaults to 24 for IPv4 and 64 for IPv6).
pub fn parse_cidr(s: &str) -> Result<(IpAddr, u8), String> {
    let (ip, prefix) = match s.split_once('/') {
        Some((ip, p)) => (ip, Some(p)),
        None => (s, None),
    };
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("'{ip}' is not an IPv4 or IPv6 address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) => match p.parse::<u8>() {
            Ok(p) if p < max - 1 => p,
            _ => {
                return Err(format!(
                    "'/{p}' is not a prefix length with room for two hosts (0 to {})",
                    max - 2
                ))
            }
        },
        None if ip.is_ipv4() => 24,
        None => 64,
    };
    Ok((ip, prefix))
}

/// The first host address of `addr`'s prefix that is not `addr` itself: the kernel's
/// side of a device seqack creates.
pub fn default_kernel_addr(addr: IpAddr, prefix: u8) -> IpAddr {
    fn pick(bits: u128, width: u32, prefix: u8) -> u128 {
        let host_bits = width - u32::from(prefix).min(width);
        let mask = if host_bits >= width {
            0
        } else {
            (u128::MAX >> (128 - width)) & !((1u128 << host_bits) - 1)
        };
        let first = (bits & mask).wrapping_add(1);
        if first == bits {
            first.wrapping_add(1)
        } else {
            first
        }
    }
    match addr {
        IpAddr::V4(a) => IpAddr::V4((pick(u128::from(u32::from(a)), 32, prefix) as u32).into()),
        IpAddr::V6(a) => IpAddr::V6(pick(u128::from(a), 128, prefix).into()),
    }
}

/// A Linux TUN device (`/dev/net/tun`, IFF_TUN | IFF_NO_PI), opened by name.
pub struct TunDevice {
    dev: tun_rs::SyncDevice,
    name: String,
    mtu: usize,
    created: bool,
    vnet_hdr: bool,
}

impl TunDevice {
    /// Attaches to the interface `opts.name` if it exists (a persistent device made by
    /// `ip tuntap add NAME mode tun`), or creates it. A created device is brought up
    /// and given `opts.kernel_addr`; an attached one is only brought up if it is down.
    pub fn open(opts: &TunOptions) -> io::Result<TunDevice> {
        let existed = interface_exists(&opts.name);
        let mut b = tun_rs::DeviceBuilder::new()
            .name(opts.name.clone())
            .offload(opts.offload);
        if !existed {
            b = b.mtu(opts.mtu).enable(true);
            match opts.kernel_addr {
                Some((IpAddr::V4(a), prefix)) => b = b.ipv4(a, prefix, None),
                Some((IpAddr::V6(a), prefix)) => b = b.ipv6(a, prefix),
                None => {}
            }
        }
        let dev = b.build_sync().map_err(|e| {
            io::Error::new(e.kind(), format!("opening TUN device {}: {e}", opts.name))
        })?;
        dev.set_nonblocking(true)?;
        if existed {
            dev.enabled(true)?;
        }
        let mtu = dev.mtu().map(usize::from).unwrap_or(usize::from(opts.mtu));
        let vnet_hdr = dev.tcp_gso();
        if opts.offload && !vnet_hdr {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "TUN offload (IFF_VNET_HDR) is not available on {}",
                    opts.name
                ),
            ));
        }
        Ok(TunDevice {
            dev,
            name: opts.name.clone(),
            mtu,
            created: !existed,
            vnet_hdr,
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether seqack created the interface (it then disappears when the device is
    /// dropped) rather than attaching to one that existed.
    pub fn created(&self) -> bool {
        self.created
    }
}

impl Device for TunDevice {
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.dev.recv(buf)
    }

    fn send(&self, packet: &[u8]) -> io::Result<()> {
        match self.dev.send(packet) {
            Ok(_) => Ok(()),
            // The kernel's queue towards the device is full (a non-blocking write):
            // the packet is lost like on a congested link, and TCP recovers it.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.dev.as_fd()
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn vnet_hdr(&self) -> bool {
        self.vnet_hdr
    }
}

/// Whether a network interface of this name exists in the current namespace.
fn interface_exists(name: &str) -> bool {
    use rustix::net::{socket, AddressFamily, SocketType};
    let Ok(s) = socket(AddressFamily::INET, SocketType::DGRAM, None) else {
        return false;
    };
    rustix::net::netdevice::name_to_index(&s, name).is_ok()
}

/// One end of an in-process point-to-point link: whatever one end sends, the other
/// receives, as datagrams of a Unix socket pair. Real time, no privileges.
pub struct PairDevice {
    sock: UnixDatagram,
    mtu: usize,
}

impl PairDevice {
    /// Two devices joined to each other, each with this MTU.
    pub fn pair(mtu: usize) -> io::Result<(PairDevice, PairDevice)> {
        let (a, b) = UnixDatagram::pair()?;
        for s in [&a, &b] {
            s.set_nonblocking(true)?;
        }
        Ok((PairDevice { sock: a, mtu }, PairDevice { sock: b, mtu }))
    }
}

impl Device for PairDevice {
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.recv(buf)
    }

    fn send(&self, packet: &[u8]) -> io::Result<()> {
        match self.sock.send(packet) {
            Ok(_) => Ok(()),
            // The peer's socket buffer is full: dropped, as a full queue drops.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    fn mtu(&self) -> usize {
        self.mtu
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_and_kernel_address() {
        let k = |s| {
            let (ip, p) = parse_cidr(s).unwrap();
            (p, default_kernel_addr(ip, p).to_string())
        };
        assert_eq!(k("10.0.0.2/24"), (24, "10.0.0.1".into()));
        assert_eq!(k("10.0.0.1/24"), (24, "10.0.0.2".into()));
        assert_eq!(k("10.0.0.1"), (24, "10.0.0.2".into()));
        assert_eq!(k("192.168.7.9/16"), (16, "192.168.0.1".into()));
        assert_eq!(k("fd00::2"), (64, "fd00::1".into()));
        assert_eq!(k("fd00::1/120"), (120, "fd00::2".into()));
        assert!(parse_cidr("10.0.0.1/31").is_err());
        assert!(parse_cidr("10.0.0.1/x").is_err());
        assert!(parse_cidr("nonsense").is_err());
    }
}
