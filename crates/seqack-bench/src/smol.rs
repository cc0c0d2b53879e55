//! smoltcp on the same in-memory link: two interfaces (medium IP, checksums computed and
//! verified, as smoltcp does by default), each with its own socket set, joined by the
//! [`Queue`]s of [`crate::link`].

use std::cell::RefCell;
use std::rc::Rc;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, Ipv4Address};

use crate::link::{Packet, Queue, BURST};

/// One end of the link as a smoltcp device.
pub struct End {
    pub(crate) rx: Rc<RefCell<Queue>>,
    pub(crate) tx: Rc<RefCell<Queue>>,
    mtu: usize,
    /// Packets the transmit queue may hold before `transmit` refuses a token, as a
    /// NIC's transmit ring fills: the peer must take them first. `usize::MAX` when a
    /// link model drains the queue on its own schedule.
    ring: usize,
}

/// Receive token: one packet from the queue.
pub struct Rx {
    buf: Packet,
    queue: Rc<RefCell<Queue>>,
}

/// Transmit token: a recycled buffer on the other end's queue.
pub struct Tx {
    queue: Rc<RefCell<Queue>>,
}

impl smoltcp::phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let r = f(&self.buf);
        self.queue.borrow_mut().recycle(self.buf);
        r
    }
}

impl smoltcp::phy::TxToken for Tx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut q = self.queue.borrow_mut();
        let mut buf = q.buffer();
        if buf.len() < len {
            buf.resize(len, 0);
        }
        let r = f(&mut buf[..len]);
        q.push(buf, len);
        r
    }
}

impl Device for End {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx;

    fn receive(&mut self, _t: Instant) -> Option<(Rx, Tx)> {
        let buf = self.rx.borrow_mut().pop()?;
        Some((
            Rx {
                buf,
                queue: self.rx.clone(),
            },
            Tx {
                queue: self.tx.clone(),
            },
        ))
    }

    fn transmit(&mut self, _t: Instant) -> Option<Tx> {
        if self.tx.borrow().len() >= self.ring {
            return None;
        }
        Some(Tx {
            queue: self.tx.clone(),
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ip;
        c.max_transmission_unit = self.mtu;
        c
    }
}

/// One smoltcp host: interface, device end and sockets.
pub struct Host {
    /// The interface.
    pub iface: Interface,
    /// Its device.
    pub dev: End,
    /// Its sockets.
    pub sockets: SocketSet<'static>,
}

impl Host {
    fn new(dev: End, addr: Ipv4Address) -> Host {
        let mut dev = dev;
        let mut iface = Interface::new(
            Config::new(HardwareAddress::Ip),
            &mut dev,
            Instant::from_micros(0),
        );
        iface.update_ip_addrs(|a| {
            a.push(IpCidr::new(IpAddress::Ipv4(addr), 24))
                .expect("one address");
        });
        Host {
            iface,
            dev,
            sockets: SocketSet::new(Vec::new()),
        }
    }

    /// Polls the interface; true when a socket's state changed.
    pub fn poll(&mut self, now_us: u64) -> bool {
        let r = self.iface.poll(
            Instant::from_micros(now_us as i64),
            &mut self.dev,
            &mut self.sockets,
        );
        r == smoltcp::iface::PollResult::SocketStateChanged
    }

    /// A new TCP socket with `buffer`-byte buffers.
    pub fn socket(&mut self, buffer: usize) -> SocketHandle {
        let s = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; buffer]),
            tcp::SocketBuffer::new(vec![0; buffer]),
        );
        self.sockets.add(s)
    }

    /// The next time the interface needs polling, in µs.
    pub fn deadline(&mut self, now_us: u64) -> Option<u64> {
        self.iface
            .poll_at(Instant::from_micros(now_us as i64), &self.sockets)
            .map(|t| t.total_micros().max(0) as u64)
    }
}

/// Two hosts, 10.0.0.1 (`a`, the client side) and 10.0.0.2 (`b`), on one link.
pub struct Pair {
    /// The client host.
    pub a: Host,
    /// The server host.
    pub b: Host,
    buffer: usize,
}

impl Pair {
    /// A link of `mtu` and sockets with `buffer`-byte buffers: what one host sends is
    /// at once in the other's receive queue. A host sends at most [`BURST`] packets
    /// before its peer takes them (its transmit ring is full until then), as seqack's
    /// [`crate::link::pump`] hands them over a burst at a time.
    pub fn new(mtu: usize, buffer: usize) -> Pair {
        let ab = Rc::new(RefCell::new(Queue::new(mtu)));
        let ba = Rc::new(RefCell::new(Queue::new(mtu)));
        Pair::with_queues(mtu, buffer, [ba.clone(), ab.clone(), ab, ba], BURST)
    }

    /// Hosts whose transmit and receive queues are four separate queues; the caller
    /// moves packets from each `dev.tx` to the other's `dev.rx` (through a link model).
    pub fn separate(mtu: usize, buffer: usize) -> Pair {
        let q = || Rc::new(RefCell::new(Queue::new(mtu)));
        Pair::with_queues(mtu, buffer, [q(), q(), q(), q()], usize::MAX)
    }

    /// `[a.rx, a.tx, b.rx, b.tx]`.
    fn with_queues(mtu: usize, buffer: usize, q: [Rc<RefCell<Queue>>; 4], ring: usize) -> Pair {
        let [arx, atx, brx, btx] = q;
        let a = End {
            rx: arx,
            tx: atx,
            mtu,
            ring,
        };
        let b = End {
            rx: brx,
            tx: btx,
            mtu,
            ring,
        };
        Pair {
            a: Host::new(a, Ipv4Address::new(10, 0, 0, 1)),
            b: Host::new(b, Ipv4Address::new(10, 0, 0, 2)),
            buffer,
        }
    }

    /// A socket on the server host.
    pub fn server_socket(&mut self) -> SocketHandle {
        self.b.socket(self.buffer)
    }

    /// A socket on the client host.
    pub fn client_socket(&mut self) -> SocketHandle {
        self.a.socket(self.buffer)
    }

    /// Listens on the server host.
    pub fn listen(&mut self, h: SocketHandle, port: u16) {
        self.b
            .sockets
            .get_mut::<tcp::Socket>(h)
            .listen(port)
            .expect("smoltcp listen");
    }

    /// Connects from the client host, from local port `local`.
    pub fn connect(&mut self, h: SocketHandle, to: std::net::Ipv4Addr, port: u16, local: u16) {
        let cx = self.a.iface.context();
        self.a
            .sockets
            .get_mut::<tcp::Socket>(h)
            .connect(cx, (IpAddress::Ipv4(to), port), local)
            .expect("smoltcp connect");
    }

    /// Polls both hosts until neither has packets left to exchange; true when any
    /// socket changed state or any packet moved.
    pub fn poll(&mut self, now_us: u64) -> bool {
        let mut any = false;
        for _ in 0..1_000_000 {
            let moved = self.a.poll(now_us) | self.b.poll(now_us);
            let queued = !self.a.dev.rx.borrow().is_empty() || !self.b.dev.rx.borrow().is_empty();
            any |= moved;
            if !queued {
                break;
            }
            any = true;
        }
        any
    }

    /// The earliest time either host needs polling.
    pub fn next_deadline(&mut self, now_us: u64) -> Option<u64> {
        [self.a.deadline(now_us), self.b.deadline(now_us)]
            .into_iter()
            .flatten()
            .min()
    }

    /// A client-side socket.
    pub fn a_socket<T: smoltcp::socket::AnySocket<'static>>(&mut self, h: SocketHandle) -> &mut T {
        self.a.sockets.get_mut::<T>(h)
    }

    /// A server-side socket.
    pub fn b_socket<T: smoltcp::socket::AnySocket<'static>>(&mut self, h: SocketHandle) -> &mut T {
        self.b.sockets.get_mut::<T>(h)
    }
}
