//! `concurrent` and `time-wait`: seqack's per-connection and per-record costs.
//!
//! Heap figures come from the caller (the `seqack` binary installs a counting global
//! allocator and passes a function reading the bytes in use); CPU time from the
//! thread's scheduler statistics ([`crate::cpu_time`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use seqack::stack::time_wait::TimeWaitTable;
use seqack::tcp::time_wait::TimeWaitState;
use seqack::{Duration, Instant, Seq};
use seqack_io::workload::{self, ManyConfig, Milestone};

/// What [`concurrent`] measured.
#[derive(Clone, Debug)]
pub struct ConcurrentSample {
    /// Connections, all open at once.
    pub conns: usize,
    /// TcpInSegs + TcpOutSegs of every stack, per CPU second, over the whole run
    /// (handshakes, data, closes).
    pub segments_per_sec: f64,
    /// Heap bytes per connection end once all were established, before any data
    /// (so no buffer is allocated): slab slot, index entry, timer entry.
    pub bytes_per_conn: f64,
    /// CPU nanoseconds per payload byte delivered, over the whole run.
    pub ns_per_byte: f64,
    /// Checks of the workload that failed (`None`: every byte arrived intact, every
    /// connection closed).
    pub failures: Option<String>,
}

/// `conns` connections on one server, each moving 4 KiB each way, on the simulated
/// link in virtual time (`seqack_io::workload::many_connections`).
pub fn concurrent(conns: usize, heap_in_use: &dyn Fn() -> usize) -> ConcurrentSample {
    let cfg = ManyConfig {
        conns,
        ..ManyConfig::default()
    };
    let mut ready = 0;
    let mut established = 0;
    let cpu0 = crate::cpu_time();
    let r = workload::many_connections(&cfg, &mut |m, _| match m {
        Milestone::Ready => ready = heap_in_use(),
        Milestone::Established => established = heap_in_use(),
        Milestone::Done => {}
    });
    let cpu = (crate::cpu_time() - cpu0).max(1e-9);
    let ends = r.server_connections_established + r.client_connections_established;
    ConcurrentSample {
        conns: r.conns,
        segments_per_sec: r.segments as f64 / cpu,
        bytes_per_conn: established.saturating_sub(ready) as f64 / ends.max(1) as f64,
        ns_per_byte: cpu * 1e9 / r.bytes_delivered.max(1) as f64,
        failures: (!r.failures.is_empty()).then(|| r.failures.to_string()),
    }
}

/// What [`time_wait`] measured.
#[derive(Clone, Copy, Debug)]
pub struct TimeWaitSample {
    /// Records held at once.
    pub records: usize,
    /// `TimeWaitTable::memory_bytes()` per record at the peak, and the heap the table
    /// grew by, per record.
    pub table_bytes_per_record: f64,
    /// Heap growth per record (from the counting allocator).
    pub heap_bytes_per_record: f64,
    /// CPU nanoseconds per insertion.
    pub ns_per_insert: f64,
    /// CPU nanoseconds per expiry (the 2MSL timer ending a record).
    pub ns_per_expiry: f64,
}

/// Fills a TIME_WAIT table with `records` records (IPv4, distinct 4-tuples, deadlines
/// spread over one second of a 60 s 2MSL), then expires them all.
pub fn time_wait(records: usize, heap_in_use: &dyn Fn() -> usize) -> TimeWaitSample {
    let heap0 = heap_in_use();
    let mut table = TimeWaitTable::new([7; 16], records);
    let two_msl = Duration::from_secs(60);
    let cpu0 = crate::cpu_time();
    for i in 0..records {
        let now = Instant::from_micros((i as u64 * 1_000_000) / records.max(1) as u64);
        let n = i as u32;
        let local = SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(10, 1, (n >> 16) as u8, 1)),
            (n & 0xffff) as u16 | 1,
        );
        let remote = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80);
        table
            .insert(&TimeWaitState {
                local,
                remote,
                snd_nxt: Seq(n),
                rcv_nxt: Seq(!n),
                ts_recent: Some(n),
                window: 502,
                deadline: now + two_msl,
                duration: two_msl,
                rfc1337: true,
                ack_required: false,
            })
            .expect("room for every record");
    }
    let cpu1 = crate::cpu_time();
    let held = table.len();
    let table_bytes = table.memory_bytes();
    let heap = heap_in_use().saturating_sub(heap0);
    let mut out = Vec::with_capacity(records);
    table.expire(Instant::from_secs(62), &mut out);
    let cpu2 = crate::cpu_time();
    assert_eq!(out.len(), held, "every record expired");
    TimeWaitSample {
        records: held,
        table_bytes_per_record: table_bytes as f64 / held.max(1) as f64,
        heap_bytes_per_record: heap as f64 / held.max(1) as f64,
        ns_per_insert: (cpu1 - cpu0) * 1e9 / held.max(1) as f64,
        ns_per_expiry: (cpu2 - cpu1) * 1e9 / held.max(1) as f64,
    }
}

/// smoltcp's TCP socket without its buffers, in bytes (the anchor of the
/// per-connection memory figure).
pub fn smoltcp_socket_bytes() -> usize {
    std::mem::size_of::<smoltcp::socket::tcp::Socket<'static>>()
}
