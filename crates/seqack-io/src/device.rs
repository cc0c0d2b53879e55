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
}

/// A Linux TUN device (`/dev/net/tun`, IFF_TUN | IFF_NO_PI), opened by name.
pub struct TunDevice {
    dev: tun_rs::SyncDevice,
    name: String,
    mtu: usize,
    created: bool,
}

impl TunDevice {
    /// Attaches to the interface `opts.name` if it exists (a persistent device made by
    /// `ip tuntap add NAME mode tun`), or creates it. A created device is brought up
    /// and given `opts.kernel_addr`; an attached one is only brought up if it is down.
    pub fn open(opts: &TunOptions) -> io::Result<TunDevice> {
        let existed = interface_exists(&opts.name);
        let mut b = tun_rs::DeviceBuilder::new().name(opts.name.clone());
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
        Ok(TunDevice {
            dev,
            name: opts.name.clone(),
            mtu,
            created: !existed,
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
