//! No allocation per segment in steady state: once a bulk transfer is under way (rings
//! allocated, the RACK log and the queues at their working size), moving more data
//! between two stacks allocates nothing, whether they are driven one packet at a time
//! or in bursts, at a 1,500-byte MTU or at 65,535.
//!
//! Allocations are counted per thread by a wrapper around the system allocator, so the
//! other tests of this binary, on their own threads, do not disturb the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use seqack::stack::{ConnId, ListenerId, Stack, StackConfig, StackEvent};
use seqack::{Config, Event, Instant};

struct Counting;

thread_local! {
    /// Allocations (and reallocations) made by this thread. A const-initialised `Cell`
    /// has no destructor and needs no allocation of its own, so the allocator may use it.
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: during the thread's teardown the slot may be gone; nothing to count then.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds GlobalAlloc's
// contract; the only addition is a counter in a thread-local `Cell`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn allocations() -> u64 {
    ALLOCS.with(Cell::get)
}

const BURST: usize = 64;
const BUFFER: usize = 256 * 1024;

/// Two stacks, a connection between them, and every buffer the driver uses, made up
/// front so that the driver itself allocates nothing while it runs.
struct Pair {
    a: Stack,
    b: Stack,
    client: ConnId,
    server: Option<ConnId>,
    listener: ListenerId,
    bufs: Vec<Vec<u8>>,
    lens: [usize; BURST],
    data: Vec<u8>,
    sink: Vec<u8>,
    now: Instant,
    sent: u64,
    got: u64,
    segments: u64,
}

impl Pair {
    fn new(mtu: u16) -> Pair {
        let stack = |ip: Ipv4Addr, seed: u64| {
            let mut s = Stack::new(StackConfig {
                tcp: Config {
                    mtu,
                    send_buffer: BUFFER,
                    recv_buffer: BUFFER,
                    ..Config::default()
                },
                seed,
                ..StackConfig::default()
            });
            s.add_address(IpAddr::V4(ip));
            s
        };
        let mut a = stack(Ipv4Addr::new(10, 0, 0, 1), 1);
        let mut b = stack(Ipv4Addr::new(10, 0, 0, 2), 2);
        let server = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 5001);
        let now = Instant::from_micros(1_000_000);
        let listener = b.listen(server, 16).expect("listen");
        let client = a.connect(now, None, server).expect("connect");
        Pair {
            a,
            b,
            client,
            server: None,
            listener,
            bufs: (0..BURST).map(|_| vec![0u8; usize::from(mtu)]).collect(),
            lens: [0; BURST],
            data: (0..64 * 1024).map(|i| (i % 251) as u8).collect(),
            sink: vec![0u8; 64 * 1024],
            now,
            sent: 0,
            got: 0,
            segments: 0,
        }
    }

    /// Moves every packet `from` has into `to`, one at a time or in bursts.
    fn pump(
        now: Instant,
        from: &mut Stack,
        to: &mut Stack,
        bufs: &mut [Vec<u8>],
        lens: &mut [usize; BURST],
        burst: bool,
    ) -> u64 {
        let mut moved = 0;
        if burst {
            loop {
                let n = from.poll_transmit_burst(now, bufs, lens);
                to.handle_packets(
                    now,
                    bufs.iter().zip(lens.iter()).take(n).map(|(b, &l)| &b[..l]),
                );
                moved += n as u64;
                if n < BURST {
                    return moved;
                }
            }
        }
        while let Some(n) = from.poll_transmit(now, &mut bufs[0]) {
            to.handle_packet(now, &bufs[0][..n]);
            moved += 1;
        }
        moved
    }

    /// Transfers until `total` bytes have been read in all; the clock moves only when
    /// nothing else can (a timer is then due).
    fn transfer(&mut self, total: u64, burst: bool) {
        let mut rounds = 0u32;
        while self.got < total {
            rounds += 1;
            assert!(rounds < 10_000_000, "the transfer made no progress");
            let mut progress = false;
            while self.sent < total {
                let off = (self.sent % self.data.len() as u64) as usize;
                let want = (self.data.len() - off).min((total - self.sent) as usize);
                match self
                    .a
                    .send(self.now, self.client, &self.data[off..off + want])
                {
                    Ok(n) if n > 0 => {
                        self.sent += n as u64;
                        progress = true;
                    }
                    _ => break,
                }
            }
            let moved = Self::pump(
                self.now,
                &mut self.a,
                &mut self.b,
                &mut self.bufs,
                &mut self.lens,
                burst,
            );
            self.segments += moved;
            progress |= moved > 0;
            if self.server.is_none() {
                self.server = self.b.accept(self.listener);
            }
            if let Some(s) = self.server {
                while let Ok(n) = self.b.recv(self.now, s, &mut self.sink) {
                    if n == 0 {
                        break;
                    }
                    self.got += n as u64;
                    progress = true;
                }
            }
            progress |= Self::pump(
                self.now,
                &mut self.b,
                &mut self.a,
                &mut self.bufs,
                &mut self.lens,
                burst,
            ) > 0;
            for s in [&mut self.a, &mut self.b] {
                while let Some(e) = s.poll_event() {
                    if let StackEvent::Conn {
                        event: Event::Error(err),
                        ..
                    } = e
                    {
                        panic!("the transfer failed: {err:?}");
                    }
                }
            }
            if !progress {
                let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                    .into_iter()
                    .flatten()
                    .min()
                    .expect("a stalled transfer has a timer pending");
                self.now = self.now.max(next);
                self.a.handle_timeout(self.now);
                self.b.handle_timeout(self.now);
            }
        }
    }
}

/// Warms a transfer up, then moves 32 MiB more and counts what that allocated.
///
/// The warm-up is what it takes the structures that grow with the window to reach
/// their working size: the receive ring and RACK's log of segments in flight double
/// as the congestion window opens, which without loss (CUBIC's concave growth up to
/// the 256 KiB receive window) takes some 12 MiB at a 1,500-byte MTU and less than 2
/// at 65,535. Their last doubling came at about 12 MiB when this test was written;
/// nothing allocated over the next 44.
fn allocations_in_steady_state(mtu: u16, burst: bool) -> (u64, u64) {
    let mut p = Pair::new(mtu);
    p.transfer(16 << 20, burst);
    let (before, segments) = (allocations(), p.segments);
    p.transfer(48 << 20, burst);
    (allocations() - before, p.segments - segments)
}

#[test]
fn a_bulk_transfer_allocates_nothing_per_segment_once_under_way() {
    for mtu in [1500, 65535] {
        for burst in [false, true] {
            let (allocs, segments) = allocations_in_steady_state(mtu, burst);
            // The data segments alone: 32 MiB in segments of at most the MTU.
            assert!(
                segments >= (32 << 20) / u64::from(mtu),
                "MTU {mtu}, burst {burst}: only {segments} segments moved"
            );
            assert_eq!(
                allocs, 0,
                "MTU {mtu}, burst {burst}: {allocs} allocations over {segments} segments"
            );
        }
    }
}

/// The counter sees the allocations of this thread: without that the test above could
/// not fail.
#[test]
fn the_counter_counts_this_threads_allocations() {
    let before = allocations();
    let v: Vec<u8> = std::hint::black_box(Vec::with_capacity(100));
    assert_eq!(allocations() - before, 1);
    drop(v);
}
