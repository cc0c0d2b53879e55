//! The in-memory link both stacks run on: two FIFO queues of whole IP packets, with the
//! packet buffers recycled so neither implementation pays for an allocation per packet.
//!
//! seqack writes each packet straight into a recycled buffer (`poll_transmit` into a
//! slice); smoltcp's `TxToken` hands out a recycled buffer of the length it asks for.
//! Either way one copy of the packet is made, by the sender, and the receiver parses it
//! in place. The link is perfect (no loss, no delay, unbounded queue): the bulk and
//! churn workloads measure the stacks, not a network.

use std::collections::VecDeque;
use std::ops::Deref;

/// One packet on the link: a whole buffer and how much of it the packet fills. The
/// buffer keeps its full length, so recycling it costs nothing (a `Vec` truncated to
/// the packet would have to be filled with zeros again before its next use: 64 KiB of
/// writes for every 52-byte ACK at MTU 65535).
pub struct Packet {
    buf: Vec<u8>,
    len: usize,
}

impl Packet {
    /// The first `len` bytes of `buf` as a packet.
    pub fn new(buf: Vec<u8>, len: usize) -> Packet {
        assert!(len <= buf.len(), "a packet longer than its buffer");
        Packet { buf, len }
    }
}

impl Deref for Packet {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// One direction's queue and a pool of spare buffers.
#[derive(Default)]
pub struct Queue {
    packets: VecDeque<Packet>,
    spare: Vec<Vec<u8>>,
    /// Buffers set aside for the next burst.
    burst: Vec<Vec<u8>>,
    capacity: usize,
    /// Packets pushed so far.
    pub pushed: u64,
    /// Bytes pushed so far.
    pub pushed_bytes: u64,
}

impl Queue {
    /// A queue whose buffers hold `mtu` bytes.
    pub fn new(mtu: usize) -> Queue {
        Queue {
            packets: VecDeque::new(),
            spare: Vec::new(),
            burst: Vec::new(),
            capacity: mtu,
            pushed: 0,
            pushed_bytes: 0,
        }
    }

    /// A buffer of `mtu` bytes to write one packet into (recycled when possible).
    pub fn buffer(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_else(|| vec![0; self.capacity])
    }

    /// Queues the first `len` bytes of `buf` (from [`Queue::buffer`]) as one packet.
    pub fn push(&mut self, buf: Vec<u8>, len: usize) {
        self.push_packet(Packet::new(buf, len));
    }

    /// Queues a packet taken from another queue.
    pub fn push_packet(&mut self, p: Packet) {
        self.pushed += 1;
        self.pushed_bytes += p.len as u64;
        self.packets.push_back(p);
    }

    /// Gives back a buffer that was not used for a packet.
    pub fn give_back(&mut self, buf: Vec<u8>) {
        if self.spare.len() < 4096 && buf.len() >= self.capacity {
            self.spare.push(buf);
        }
    }

    /// The oldest packet.
    pub fn pop(&mut self) -> Option<Packet> {
        self.packets.pop_front()
    }

    /// Returns a delivered packet's buffer to the pool.
    pub fn recycle(&mut self, p: Packet) {
        self.give_back(p.buf);
    }

    /// Packets waiting.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// No packet waiting.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }
}

/// The clock of an in-memory run: wall-clock time since the run began, plus whatever
/// idle time was skipped. When neither side has anything to do, the driver jumps to
/// the earliest timer instead of spinning until it is due (a delayed ACK would
/// otherwise cost 40 ms of busy waiting in the middle of a measurement).
pub struct Clock {
    start: std::time::Instant,
    skipped_us: u64,
}

impl Clock {
    /// Starts at zero now.
    pub fn new() -> Clock {
        Clock {
            start: std::time::Instant::now(),
            skipped_us: 0,
        }
    }

    /// Microseconds since the start, idle jumps included.
    pub fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64 + self.skipped_us
    }

    /// Moves the clock forward to `us` if it is in the future.
    pub fn jump_to(&mut self, us: u64) {
        let now = self.now_us();
        if us > now {
            self.skipped_us += us - now;
        }
    }

    /// Wall-clock seconds since the start (jumps not included).
    pub fn elapsed_secs(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::new()
    }
}

/// Packets a driver writes or reads per call, as a NIC driver's batch (NAPI's
/// budget is 64).
pub const BURST: usize = 64;

/// Moves every packet `from` has to send through `q` into `to`'s input; true when any
/// packet moved. Driven as a batching device driver drives a stack: `from` writes up
/// to [`BURST`] packets per call ([`seqack::Stack::poll_transmit_burst`]) and `to`
/// takes each burst in one call ([`seqack::Stack::handle_packets`]) before `from`
/// writes the next, as a NAPI poll hands over what one interrupt brought. The link
/// thus holds one burst at a time, and its buffers stay in cache (a whole 256 KiB
/// window queued first would not). The packets are the same as one at a time (the
/// stack promises it and the simulator's tests check it); only the per-call work is
/// shared.
pub fn pump(
    now: seqack::Instant,
    from: &mut seqack::Stack,
    to: &mut seqack::Stack,
    q: &mut Queue,
) -> bool {
    let mut bufs = std::mem::take(&mut q.burst);
    let mut lens = [0usize; BURST];
    let mut moved = false;
    loop {
        // The buffers the last burst used are replaced at the front, with the most
        // recently recycled ones first, as one packet at a time would take them: still
        // in cache (at MTU 65535 a burst's worth is 4 MiB). The unused ones stay where
        // they are, so a burst of one packet costs one buffer from the pool, not 64
        // taken out and put back.
        let missing = BURST - bufs.len();
        bufs.splice(0..0, std::iter::repeat_with(|| q.buffer()).take(missing));
        let n = from.poll_transmit_burst(now, &mut bufs, &mut lens);
        for (buf, &len) in bufs.drain(..n).zip(&lens) {
            q.push(buf, len);
        }
        if !q.packets.is_empty() {
            to.handle_packets(now, q.packets.iter().map(|p| &**p));
            while let Some(p) = q.pop() {
                q.recycle(p);
            }
            moved = true;
        }
        if n < BURST {
            break;
        }
    }
    q.burst = bufs;
    moved
}

/// As [`pump`], but hands packets over `batch` at a time, as a device driver reads
/// them: `to` takes each batch before `from` writes the next, so the link never holds
/// more than `batch` packets. With 100,000 connections sending at once, [`pump`] would
/// first queue every one of their segments (hundreds of megabytes of packet buffers,
/// touched for the first time) before the receiver saw any: the harness's cost, not
/// the stacks'.
pub fn pump_batched(
    now: seqack::Instant,
    from: &mut seqack::Stack,
    to: &mut seqack::Stack,
    q: &mut Queue,
    batch: usize,
) -> bool {
    let mut moved = false;
    loop {
        let mut n = 0;
        while n < batch {
            let mut buf = q.buffer();
            match from.poll_transmit(now, &mut buf) {
                Some(len) => {
                    q.push(buf, len);
                    n += 1;
                }
                None => {
                    q.give_back(buf);
                    break;
                }
            }
        }
        while let Some(p) = q.pop() {
            to.handle_packet(now, &p);
            q.recycle(p);
            moved = true;
        }
        if n < batch {
            return moved;
        }
    }
}

/// Nothing moved: jumps the clock to the earliest timer of either stack and fires what
/// is due.
pub fn idle(clock: &mut Clock, a: &mut seqack::Stack, b: &mut seqack::Stack) {
    let next = [a.poll_timeout(), b.poll_timeout()]
        .into_iter()
        .flatten()
        .min();
    if let Some(d) = next {
        clock.jump_to(d.total_micros());
    }
    let now = seqack::Instant::from_micros(clock.now_us());
    a.handle_timeout(now);
    b.handle_timeout(now);
}
