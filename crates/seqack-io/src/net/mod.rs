//! The real-time driver and the socket APIs over it.
//!
//! A [`NetStack`] owns a [`Stack`] and a [`Device`] and runs the driver loop on a
//! thread of its own: it reads packets in batches, feeds them and the clock to the
//! stack, sends what the stack has to send, and sleeps in `poll(2)` on the device and
//! on a wake-up descriptor until the next packet or the stack's next deadline. It never
//! spins.
//!
//! Sockets ([`TcpListener`], [`TcpStream`], and with the `tokio` feature their async
//! twins in `seqack_io::net::tokio`) share the stack behind one mutex. A socket
//! call locks it, runs its command at the current time, sends the resulting segments
//! itself (no hand-off to the driver thread), and wakes the driver only when the
//! stack's next deadline moved earlier than the one the driver sleeps towards. Blocked
//! calls wait on a condition variable that the stack's events signal; async calls
//! register wakers that the same events wake.

mod stream;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use stream::{TcpListener, TcpStream};

use crate::device::Device;
use crate::offload::{self, GsoBatch, VnetHdr, F_DATA_VALID, F_NEEDS_CSUM, GSO_NONE, VNET_HDR_LEN};
use crate::pcap::PcapTap;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use rustix::event::{eventfd, poll, EventfdFlags, PollFd, PollFlags, Timespec};
use seqack::stack::{ConnId, ListenerId, Stack, StackConfig, StackEvent};
use seqack::tcp::Error as TcpError;
use seqack::{Counters, Instant};
use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Waker;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Packets read from the device per batch, before the stack's lock is taken.
const RX_BATCH: usize = 64;

/// A callback that sees every stack event, with the time it happened.
pub type EventHook = Box<dyn FnMut(Instant, &StackEvent) + Send>;

/// Settings of a [`NetStack`].
pub struct NetConfig {
    /// The stack's settings. Its `seed` is replaced by real entropy unless
    /// `deterministic_seed` is set.
    pub stack: StackConfig,
    /// The stack's own addresses.
    pub addrs: Vec<IpAddr>,
    /// Keep `stack.seed` as given (for tests that want reproducible ISNs).
    pub deterministic_seed: bool,
    /// Fault injection: hold every packet read from the device this long before the
    /// stack sees it, as a link with that one-way delay would (zero: none). For tests
    /// on machines whose kernel has no `sch_netem`.
    pub rx_delay: Duration,
    /// Fault injection: drop each packet read from the device with this probability
    /// (0.0 to 1.0) before the stack sees it, as a lossy link would; the sender is not
    /// told (unlike an nftables drop on the kernel's own output).
    pub rx_loss: f64,
    /// Write every packet sent and received to this pcap file from the first one on
    /// (raw IP, as [`NetStack::set_pcap`] does, which only starts once the driver may
    /// have taken a few).
    pub pcap: Option<Box<dyn Write + Send>>,
    /// With a device that has offload ([`Device::vnet_hdr`]): cut each TCP
    /// super-packet the kernel hands over into the MSS-sized segments it stands for
    /// before the stack sees them. Off (the default), the stack gets the super-packet
    /// as one large segment, its checksum completed, as Linux's TCP gets a GRO packet.
    pub rx_split: bool,
    /// With a device that has offload: coalesce the segments the stack sends in one
    /// burst into TCP super-packets, one write each (default on). Off, every segment
    /// is written alone.
    pub tx_coalesce: bool,
}

impl NetConfig {
    /// Linux-like defaults with these addresses.
    pub fn new(addrs: Vec<IpAddr>) -> NetConfig {
        NetConfig {
            stack: StackConfig::default(),
            addrs,
            deterministic_seed: false,
            rx_delay: Duration::ZERO,
            rx_loss: 0.0,
            pcap: None,
            rx_split: false,
            tx_coalesce: true,
        }
    }
}

/// A seqack stack running on a device in real time.
///
/// Dropping it stops the driver thread; sockets still open then fail with
/// `io::ErrorKind::NotConnected`.
pub struct NetStack {
    shared: Arc<Shared>,
    driver: Option<JoinHandle<()>>,
}

pub(crate) struct Shared {
    pub(crate) inner: Mutex<Inner>,
    pub(crate) cond: Condvar,
    wake: OwnedFd,
}

pub(crate) struct Inner {
    pub(crate) stack: Stack,
    origin: std::time::Instant,
    /// Microseconds since the Unix epoch at `origin`, for pcap timestamps.
    epoch_us: u64,
    dev: Arc<dyn Device>,
    tx: Vec<u8>,
    pcap: Option<(PcapTap<SharedWriter>, SharedWriter)>,
    hooks: Vec<EventHook>,
    pub(crate) conn_wakers: HashMap<ConnId, Vec<Waker>>,
    pub(crate) listener_wakers: HashMap<ListenerId, Vec<Waker>>,
    /// The deadline the driver sleeps towards; `None` while it sleeps without one.
    driver_wake_at: Option<Instant>,
    pub(crate) stopped: bool,
    /// Threads blocked in [`Shared::block`] on the condition variable. A notify is a
    /// `futex` system call even with nobody waiting, so it is made only when some
    /// thread is (both sides hold the lock, so none is missed).
    waiters: usize,
    device_errors: u64,
    /// Room for the virtio-net header before each packet in `tx` (0 without offload).
    hdr_room: usize,
    /// Coalesces sent segments (offload with `tx_coalesce`).
    gso: Option<GsoBatch>,
    rx_split: bool,
    split_scratch: Vec<u8>,
    offload_stats: OffloadStats,
}

/// What TUN offload did (all zero on a device without it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OffloadStats {
    /// Frames read from the device.
    pub rx_frames: u64,
    /// Of those, TCP super-packets (GSO).
    pub rx_super: u64,
    /// Payload bytes in the super-packets.
    pub rx_super_bytes: u64,
    /// Frames dropped as malformed (bad header, checksum offsets, unsplittable).
    pub rx_bad_frames: u64,
    /// Frames written to the device.
    pub tx_frames: u64,
    /// Segments in those frames (more than `tx_frames` when segments were coalesced).
    pub tx_segments: u64,
}

impl Inner {
    /// The current time on the stack's clock.
    pub(crate) fn now(&self) -> Instant {
        Instant::from_micros(self.origin.elapsed().as_micros() as u64)
    }

    /// Sends everything the stack has to send and hands out its events. Returns
    /// whether there were events (blocked callers should look again).
    pub(crate) fn pump(&mut self, now: Instant) -> bool {
        let room = self.hdr_room;
        while let Some(n) = self.stack.poll_transmit(now, &mut self.tx[room..]) {
            let packet = &self.tx[room..room + n];
            if let Some((p, _)) = self.pcap.as_mut() {
                let _ = p.write(
                    Instant::from_micros(self.epoch_us + now.total_micros()),
                    packet,
                );
            }
            match self.gso.as_mut() {
                Some(g) => {
                    if !g.push(packet) {
                        flush_batch(
                            g,
                            &*self.dev,
                            &mut self.device_errors,
                            &mut self.offload_stats,
                        );
                        g.push(packet);
                    }
                }
                // Without coalescing, the header room in front stays zero: a header
                // with no GSO and no checksum to finish (offload without tx_coalesce).
                None => send_frame(
                    &*self.dev,
                    &self.tx[..room + n],
                    1,
                    &mut self.device_errors,
                    &mut self.offload_stats,
                ),
            }
        }
        if let Some(g) = self.gso.as_mut() {
            flush_batch(
                g,
                &*self.dev,
                &mut self.device_errors,
                &mut self.offload_stats,
            );
        }
        let mut any = false;
        while let Some(ev) = self.stack.poll_event() {
            any = true;
            for h in &mut self.hooks {
                h(now, &ev);
            }
            match ev {
                StackEvent::Conn { id, .. } => {
                    if let Some(ws) = self.conn_wakers.remove(&id) {
                        ws.into_iter().for_each(Waker::wake);
                    }
                }
                StackEvent::Incoming(l) | StackEvent::Listener { id: l, .. } => {
                    if let Some(ws) = self.listener_wakers.remove(&l) {
                        ws.into_iter().for_each(Waker::wake);
                    }
                }
                StackEvent::TimeWait { .. } => {}
            }
        }
        any
    }

    /// One packet from the device into the stack (and the pcap file); its TCP
    /// checksum verified unless the kernel vouched for it (`verify` false).
    fn input(&mut self, now: Instant, ts: Instant, packet: &[u8], verify: bool) {
        if let Some((p, _)) = self.pcap.as_mut() {
            let _ = p.write(ts, packet);
        }
        if verify {
            self.stack.handle_packet(now, packet);
        } else {
            self.stack.handle_packet_unverified(now, packet);
        }
    }

    /// One frame read from the device into the stack: a packet, or with offload a
    /// virtio-net header and a packet, a super-packet given whole or split.
    ///
    /// Checksums: a packet the kernel marks `F_NEEDS_CSUM` (its own data, checksum
    /// left partial for the device to finish) or `F_DATA_VALID` (verified already) is
    /// given to the stack unverified, as the kernel's own TCP takes such packets; its
    /// checksum is completed only for the pcap file. Split segments get whole
    /// checksums and are verified. Any other packet is verified as without offload.
    fn input_frame(&mut self, now: Instant, ts: Instant, frame: &mut [u8]) {
        if self.hdr_room == 0 {
            self.input(now, ts, frame, true);
            return;
        }
        self.offload_stats.rx_frames += 1;
        let hdr = match VnetHdr::parse(frame) {
            Ok(h) => h,
            Err(_) => {
                self.offload_stats.rx_bad_frames += 1;
                return;
            }
        };
        let packet = &mut frame[VNET_HDR_LEN..];
        let partial = hdr.flags & F_NEEDS_CSUM != 0;
        let (start, offset) = (usize::from(hdr.csum_start), usize::from(hdr.csum_offset));
        if partial && !offload::checksum_offsets_ok(packet, start, offset) {
            self.offload_stats.rx_bad_frames += 1;
            return;
        }
        // A super-packet of another protocol goes to the stack whole, which drops and
        // counts it as it would its segments.
        let super_tcp = hdr.gso_type != GSO_NONE && hdr.is_tcp_gso();
        if super_tcp {
            self.offload_stats.rx_super += 1;
            self.offload_stats.rx_super_bytes +=
                packet.len().saturating_sub(usize::from(hdr.hdr_len)) as u64;
            if self.rx_split {
                let mut scratch = std::mem::take(&mut self.split_scratch);
                let r =
                    offload::gso_split(packet, usize::from(hdr.gso_size), &mut scratch, |seg| {
                        self.input(now, ts, seg, true)
                    });
                self.split_scratch = scratch;
                if r.is_err() {
                    self.offload_stats.rx_bad_frames += 1;
                }
                return;
            }
        }
        if partial && self.pcap.is_some() {
            // Offsets checked above: this cannot fail.
            let _ = offload::complete_checksum(packet, start, offset);
        }
        let vouched = hdr.flags & (F_NEEDS_CSUM | F_DATA_VALID) != 0;
        self.input(now, ts, packet, !vouched);
    }

    fn wake_all(&mut self) {
        for (_, ws) in self.conn_wakers.drain() {
            ws.into_iter().for_each(Waker::wake);
        }
        for (_, ws) in self.listener_wakers.drain() {
            ws.into_iter().for_each(Waker::wake);
        }
    }
}

/// Writes one frame to the device, counting it.
/// Writes the batch's super-packet, if it holds any segment, and empties it.
fn flush_batch(g: &mut GsoBatch, dev: &dyn Device, errors: &mut u64, stats: &mut OffloadStats) {
    let segs = g.segments() as u64;
    if let Some(frame) = g.take() {
        send_frame(dev, frame, segs, errors, stats);
    }
}

fn send_frame(
    dev: &dyn Device,
    frame: &[u8],
    segments: u64,
    errors: &mut u64,
    stats: &mut OffloadStats,
) {
    if dev.send(frame).is_err() {
        *errors += 1;
    }
    if dev.vnet_hdr() {
        stats.tx_frames += 1;
        stats.tx_segments += segments;
    }
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a command on the stack at the current time, sends its output, signals its
    /// events, and wakes the driver if the stack now needs it sooner.
    pub(crate) fn op<R>(&self, f: impl FnOnce(&mut Inner, Instant) -> R) -> R {
        let mut g = self.lock();
        let now = g.now();
        let r = f(&mut g, now);
        self.after_op(&mut g, now);
        r
    }

    pub(crate) fn after_op(&self, g: &mut Inner, now: Instant) {
        if g.pump(now) {
            self.wake_waiters(g);
        }
        let due = g.stack.poll_timeout();
        if let Some(due) = due {
            if g.driver_wake_at.is_none_or(|at| due < at) {
                g.driver_wake_at = Some(due);
                let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
            }
        }
    }

    /// Wakes the threads blocked in [`Shared::block`], if any; `g` is the lock's guard.
    pub(crate) fn wake_waiters(&self, g: &Inner) {
        if g.waiters > 0 {
            self.cond.notify_all();
        }
    }

    /// Calls `f` until it returns `Some`, waiting for stack events in between, up to
    /// `deadline`. `f` runs with the lock held; its output is sent before waiting.
    pub(crate) fn block<R>(
        &self,
        deadline: Option<std::time::Instant>,
        nonblocking: bool,
        mut f: impl FnMut(&mut Inner, Instant) -> Option<io::Result<R>>,
    ) -> io::Result<R> {
        let mut g = self.lock();
        loop {
            if g.stopped {
                return Err(stopped());
            }
            let now = g.now();
            let r = f(&mut g, now);
            self.after_op(&mut g, now);
            if let Some(r) = r {
                return r;
            }
            if nonblocking {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let left = match deadline {
                None => None,
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Err(io::ErrorKind::WouldBlock.into());
                    }
                    Some(left)
                }
            };
            g.waiters += 1;
            g = match left {
                None => self.cond.wait(g).unwrap_or_else(|e| e.into_inner()),
                Some(left) => {
                    self.cond
                        .wait_timeout(g, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            g.waiters -= 1;
        }
    }
}

pub(crate) fn stopped() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the seqack stack has stopped")
}

/// The `io::ErrorKind` a std user expects for a connection's error.
pub(crate) fn io_error(e: TcpError) -> io::Error {
    let kind = match e {
        TcpError::Refused => io::ErrorKind::ConnectionRefused,
        TcpError::Reset => io::ErrorKind::ConnectionReset,
        TcpError::TimedOut => io::ErrorKind::TimedOut,
        TcpError::Aborted => io::ErrorKind::ConnectionAborted,
    };
    io::Error::new(kind, e)
}

impl NetStack {
    /// Starts a stack on `dev` with its driver thread.
    pub fn new(dev: impl Device, cfg: NetConfig) -> io::Result<NetStack> {
        NetStack::with_device(Arc::new(dev), cfg)
    }

    /// [`NetStack::new`] with a shared device.
    pub fn with_device(dev: Arc<dyn Device>, cfg: NetConfig) -> io::Result<NetStack> {
        let mut sc = cfg.stack;
        if !cfg.deterministic_seed {
            sc.seed = entropy();
        }
        let mut stack = Stack::new(sc);
        for a in cfg.addrs {
            stack.add_address(a);
        }
        let epoch_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let pcap = match cfg.pcap {
            Some(w) => {
                let w = SharedWriter(Arc::new(Mutex::new(w)));
                Some((PcapTap::new(w.clone())?, w))
            }
            None => None,
        };
        let hdr_room = if dev.vnet_hdr() { VNET_HDR_LEN } else { 0 };
        let inner = Inner {
            stack,
            origin: std::time::Instant::now(),
            epoch_us,
            tx: vec![0; hdr_room + dev.mtu().max(1280)],
            hdr_room,
            gso: (dev.vnet_hdr() && cfg.tx_coalesce).then(GsoBatch::new),
            rx_split: cfg.rx_split,
            split_scratch: Vec::new(),
            offload_stats: OffloadStats::default(),
            dev: dev.clone(),
            pcap,
            hooks: Vec::new(),
            conn_wakers: HashMap::new(),
            listener_wakers: HashMap::new(),
            driver_wake_at: None,
            stopped: false,
            waiters: 0,
            device_errors: 0,
        };
        let wake = eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC)?;
        let shared = Arc::new(Shared {
            inner: Mutex::new(inner),
            cond: Condvar::new(),
            wake,
        });
        let s2 = shared.clone();
        let faults = Faults {
            delay: cfg.rx_delay,
            loss: cfg.rx_loss.clamp(0.0, 1.0),
            rng: ChaCha8Rng::seed_from_u64(entropy()),
        };
        let driver = std::thread::Builder::new()
            .name("seqack-driver".into())
            .spawn(move || drive(&s2, &*dev, faults))?;
        Ok(NetStack {
            shared,
            driver: Some(driver),
        })
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Writes every packet sent and received from now on to a pcap file (raw IP,
    /// timestamps of the driver's clock as wall-clock time).
    pub fn set_pcap(&self, w: impl Write + Send + 'static) -> io::Result<()> {
        let w = SharedWriter(Arc::new(Mutex::new(Box::new(w))));
        let tap = PcapTap::new(w.clone())?;
        self.shared.lock().pcap = Some((tap, w));
        Ok(())
    }

    /// Calls `hook` for every stack event from now on (state changes of connections,
    /// listeners and TIME_WAIT records), with the driver's time: microseconds since
    /// the stack started.
    pub fn on_event(&self, hook: impl FnMut(Instant, &StackEvent) + Send + 'static) {
        self.shared.lock().hooks.push(Box::new(hook));
    }

    /// The stack's counters now.
    pub fn counters(&self) -> Counters {
        self.shared.lock().stack.counters().clone()
    }

    /// Writes that the device refused (an error other than a full queue).
    pub fn device_errors(&self) -> u64 {
        self.shared.lock().device_errors
    }

    /// What TUN offload did so far (zeros on a device without it).
    pub fn offload_stats(&self) -> OffloadStats {
        self.shared.lock().offload_stats
    }

    /// Runs `f` on the stack (for snapshots: `ss`, TIME_WAIT records, counters).
    pub fn with_stack<R>(&self, f: impl FnOnce(&Stack, Instant) -> R) -> R {
        let g = self.shared.lock();
        f(&g.stack, g.now())
    }

    /// Waits until the stack has no connections and no TIME_WAIT records left, or
    /// `timeout` passed. Returns whether it is idle.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let r = self.shared.block(Some(deadline), false, |g, _| {
            let idle = g.stack.connection_count() == 0 && g.stack.time_wait().is_empty();
            idle.then_some(Ok(()))
        });
        r.is_ok()
    }

    /// Stops the driver, flushes the pcap file and returns the final counters.
    pub fn stop(mut self) -> Counters {
        self.stop_driver();
        self.counters()
    }

    fn stop_driver(&mut self) {
        {
            let mut g = self.shared.lock();
            g.stopped = true;
            g.wake_all();
            if let Some((_, w)) = g.pcap.as_mut() {
                let _ = w.flush();
            }
        }
        self.shared.cond.notify_all();
        let _ = rustix::io::write(&self.shared.wake, &1u64.to_ne_bytes());
        if let Some(d) = self.driver.take() {
            let _ = d.join();
        }
    }
}

impl Drop for NetStack {
    fn drop(&mut self) {
        self.stop_driver();
    }
}

/// The driver loop: read a batch, run the stack, send, sleep until the device is
/// readable, a socket call needs an earlier deadline, the stack's deadline comes, or
/// (with `rx_delay`) a held packet is due.
fn drive(shared: &Shared, dev: &dyn Device, mut faults: Faults) {
    let rx_delay = faults.delay;
    let size = if dev.vnet_hdr() {
        VNET_HDR_LEN + offload::MAX_PACKET
    } else {
        dev.mtu().max(1280) + 64
    };
    let mut bufs: Vec<Vec<u8>> = (0..RX_BATCH).map(|_| vec![0; size]).collect();
    let mut lens = [0usize; RX_BATCH];
    // Packets held back by `rx_delay`, with the time the stack may see them.
    let mut held: VecDeque<(std::time::Instant, Vec<u8>)> = VecDeque::new();
    let mut last_flush = std::time::Instant::now();
    loop {
        let mut n = 0;
        while n < RX_BATCH {
            match dev.recv(&mut bufs[n]) {
                Ok(_) if faults.lose() => {}
                Ok(len) => {
                    lens[n] = len;
                    n += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let batch_full = n == RX_BATCH;
        if !rx_delay.is_zero() {
            let due = std::time::Instant::now() + rx_delay;
            for (buf, &len) in bufs.iter().zip(&lens).take(n) {
                held.push_back((due, buf[..len].to_vec()));
            }
            n = 0;
        }
        let mut drain = [0u8; 8];
        let _ = rustix::io::read(&shared.wake, &mut drain);
        let timeout = {
            let mut g = shared.lock();
            if g.stopped {
                return;
            }
            let now = g.now();
            let ts = Instant::from_micros(g.epoch_us + now.total_micros());
            let real_now = std::time::Instant::now();
            while held.front().is_some_and(|(t, _)| *t <= real_now) {
                if let Some((_, mut frame)) = held.pop_front() {
                    g.input_frame(now, ts, &mut frame);
                }
            }
            if g.hdr_room == 0 {
                // Plain packets: into the capture one by one, then to the stack as one
                // batch (a run for one connection is handled GRO-style).
                if let Some((p, _)) = g.pcap.as_mut() {
                    for (buf, &len) in bufs.iter().zip(&lens).take(n) {
                        let _ = p.write(ts, &buf[..len]);
                    }
                }
                let packets = bufs.iter().zip(&lens).take(n).map(|(b, &len)| &b[..len]);
                g.stack.handle_packets(now, packets);
            } else {
                for (buf, &len) in bufs.iter_mut().zip(&lens).take(n) {
                    g.input_frame(now, ts, &mut buf[..len]);
                }
            }
            if g.stack.poll_timeout().is_some_and(|t| t <= now) {
                g.stack.handle_timeout(now);
            }
            if g.pump(now) {
                shared.wake_waiters(&g);
            }
            let due = g.stack.poll_timeout();
            g.driver_wake_at = due;
            if last_flush.elapsed() >= Duration::from_millis(100) {
                if let Some((_, w)) = g.pcap.as_mut() {
                    let _ = w.flush();
                }
                last_flush = std::time::Instant::now();
            }
            let stack_wait = due.map(|t| t.saturating_since(now));
            let held_wait = held
                .front()
                .map(|(t, _)| t.saturating_duration_since(real_now));
            if batch_full {
                Some(Duration::ZERO)
            } else {
                match (stack_wait, held_wait) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
        };
        if timeout == Some(Duration::ZERO) {
            continue;
        }
        let mut fds = [
            PollFd::from_borrowed_fd(dev.fd(), PollFlags::IN),
            PollFd::from_borrowed_fd(shared.wake.as_fd(), PollFlags::IN),
        ];
        let ts = timeout.map(|d| {
            // Round up to the next microsecond so the deadline has passed on waking.
            let d = d + Duration::from_micros(1);
            Timespec {
                tv_sec: d.as_secs() as _,
                tv_nsec: d.subsec_nanos() as _,
            }
        });
        let _ = poll(&mut fds, ts.as_ref());
    }
}

/// Impairments of the receive path (fault injection for tests).
struct Faults {
    delay: Duration,
    loss: f64,
    rng: ChaCha8Rng,
}

impl Faults {
    /// Whether the next packet is lost.
    fn lose(&mut self) -> bool {
        // 53 random bits as a uniform number in [0, 1).
        let uniform = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        self.loss > 0.0 && uniform < self.loss
    }
}

/// A writer shared between the pcap tap and the driver, which flushes it.
#[derive(Clone)]
struct SharedWriter(Arc<Mutex<Box<dyn Write + Send>>>);

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).flush()
    }
}

/// 64 bits of entropy for the stack's secrets (ISN key, port offsets), from the
/// kernel's random source through std's hasher keys.
fn entropy() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}
