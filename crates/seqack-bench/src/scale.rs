//! `concurrent` and `time-wait`: seqack's per-connection and per-record costs.
//!
//! Heap figures come from the caller (the `seqack` binary installs a counting global
//! allocator and passes a function reading the bytes in use); CPU time from the
//! thread's scheduler statistics ([`crate::cpu_time`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use seqack::stack::time_wait::TimeWaitTable;
use seqack::tcp::time_wait::TimeWaitState;
use seqack::{Duration, Instant, Seq};

/// What [`concurrent`] measured.
#[derive(Clone, Debug)]
pub struct ConcurrentSample {
    /// Connections, all open at once.
    pub conns: usize,
    /// Segments (TcpInSegs + TcpOutSegs of both stacks) per CPU second while every
    /// connection moved its data.
    pub segments_per_sec: f64,
    /// Heap bytes per connection end once all were established, before any data
    /// (so no buffer is allocated): slab slot, index entry, timer entry.
    pub bytes_per_conn: f64,
    /// CPU nanoseconds per payload byte delivered while the data moved.
    pub ns_per_byte: f64,
    /// What went wrong (`None`: every byte arrived intact).
    pub failures: Option<String>,
}

/// Bytes each connection moves each way.
pub const CONCURRENT_BYTES: usize = 4096;

fn request_byte(i: usize) -> u8 {
    (i * 7 % 251) as u8
}

/// `conns` connections between two stacks on the in-memory link (the bulk workload's
/// link and driver), all established before any data moves (1,000 handshakes at a
/// time); then each client sends 4 KiB and its server answers with 4 KiB, all at once,
/// `rounds` times over (the next request when the reply is in). The figures are taken
/// over that data phase, from the thread's CPU time. `concurrent(100_000, 1)` is the
/// benchmark; `concurrent(1, N)` the same exchanges on one connection, for comparison.
pub fn concurrent(conns: usize, rounds: u32, heap_in_use: &dyn Fn() -> usize) -> ConcurrentSample {
    use crate::link::{idle, pump_batched};
    // Packets per hand-over, as the TUN driver reads them (`RX_BATCH`).
    const BATCH: usize = 64;
    let pump = |now, from: &mut Stack, to: &mut Stack, q: &mut crate::link::Queue| {
        pump_batched(now, from, to, q, BATCH)
    };
    use seqack::stack::{Stack, StackConfig, StackEvent};
    use seqack::{Config, Event};

    const CLIENT_ADDRS: u32 = 8;
    const PORTS: u16 = 4;
    let tcp = Config {
        send_buffer: 16 * 1024,
        recv_buffer: 16 * 1024,
        ..Config::default()
    };
    let cfg = StackConfig {
        tcp,
        max_tw_buckets: usize::MAX,
        ..StackConfig::default()
    };
    let mut client = Stack::new(StackConfig {
        seed: 21,
        ..cfg.clone()
    });
    let caddr = |i: u32| IpAddr::V4(Ipv4Addr::new(10, 2, (i % CLIENT_ADDRS) as u8, 1));
    for i in 0..CLIENT_ADDRS {
        client.add_address(caddr(i));
    }
    let mut server = Stack::new(StackConfig { seed: 22, ..cfg });
    let sip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    server.add_address(sip);
    for p in 0..PORTS {
        server
            .listen(SocketAddr::new(sip, 5000 + p), 1024)
            .expect("listen");
    }
    let mut ab = crate::link::Queue::new(1500);
    let mut ba = crate::link::Queue::new(1500);
    let mut clock = crate::link::Clock::new();
    // The driver's own per-connection state, allocated before the baseline (slots
    // are dense: at most one per connection end on each stack).
    let mut client_ids = Vec::with_capacity(conns);
    let mut client_got = vec![0u32; 2 * conns + 16];
    let mut server_got = vec![0u32; 2 * conns + 16];
    let mut client_rounds = vec![0u32; 2 * conns + 16];
    let mut buf = vec![0u8; CONCURRENT_BYTES];
    let request: Vec<u8> = (0..CONCURRENT_BYTES).map(request_byte).collect();
    let reply: Vec<u8> = (0..CONCURRENT_BYTES).map(|k| (k % 251) as u8).collect();
    let mut failures = Vec::new();
    let ready = heap_in_use();
    // Phase 1: open everything.
    let (mut started, mut connected, mut accepted) = (0usize, 0usize, 0usize);
    let mut guard = 0u64;
    while connected < conns || accepted < conns {
        guard += 1;
        if guard > 100_000_000 {
            failures.push("handshakes made no progress".to_string());
            break;
        }
        let now = Instant::from_micros(clock.now_us());
        while started < conns && started - connected.min(started) < 1000 {
            let i = started as u32;
            let remote = SocketAddr::new(sip, 5000 + (i % u32::from(PORTS)) as u16);
            match client.connect(now, Some(SocketAddr::new(caddr(i), 0)), remote) {
                Ok(id) => client_ids.push(id),
                Err(e) => {
                    failures.push(format!("connect {i}: {e:?}"));
                    break;
                }
            }
            started += 1;
        }
        let moved = pump(now, &mut client, &mut server, &mut ab)
            | pump(now, &mut server, &mut client, &mut ba);
        while let Some(e) = server.poll_event() {
            if let StackEvent::Incoming(l) = e {
                while server.accept(l).is_some() {
                    accepted += 1;
                }
            }
        }
        while let Some(e) = client.poll_event() {
            if let StackEvent::Conn {
                event: Event::Connected,
                ..
            } = e
            {
                connected += 1;
            }
        }
        if !moved {
            idle(&mut clock, &mut client, &mut server);
        }
        if !failures.is_empty() {
            break;
        }
    }
    let established = heap_in_use();
    // Phase 2: the data, timed.
    let segs = |c: &Stack, s: &Stack| {
        let (a, b) = (c.counters(), s.counters());
        a.in_segs + a.out_segs + b.in_segs + b.out_segs
    };
    let segs0 = segs(&client, &server);
    let cpu0 = crate::cpu_time();
    let now = Instant::from_micros(clock.now_us());
    for (i, &id) in client_ids.iter().enumerate() {
        if client.send(now, id, &request) != Ok(CONCURRENT_BYTES) {
            failures.push(format!("client {i}: send buffer refused 4 KiB"));
        }
    }
    let (mut clients_done, mut delivered) = (0usize, 0u64);
    guard = 0;
    while clients_done < client_ids.len() && failures.is_empty() {
        guard += 1;
        if guard > 100_000_000 {
            failures.push("data made no progress".to_string());
            break;
        }
        let now = Instant::from_micros(clock.now_us());
        let mut moved = pump(now, &mut client, &mut server, &mut ab);
        while let Some(e) = server.poll_event() {
            if let StackEvent::Conn {
                id,
                event: Event::Readable,
                ..
            } = e
            {
                let got = &mut server_got[id.slot()];
                while let Ok(n) = server.recv(now, id, &mut buf) {
                    if n == 0 {
                        break;
                    }
                    let off = *got as usize;
                    if (0..n).any(|k| buf[k] != request_byte(off + k)) {
                        failures.push("a request arrived corrupted".to_string());
                    }
                    *got += n as u32;
                    delivered += n as u64;
                    if *got as usize == CONCURRENT_BYTES {
                        *got = 0;
                        if server.send(now, id, &reply) != Ok(CONCURRENT_BYTES) {
                            failures.push("server send buffer refused 4 KiB".to_string());
                        }
                    }
                }
            }
        }
        moved |= pump(now, &mut server, &mut client, &mut ba);
        while let Some(e) = client.poll_event() {
            if let StackEvent::Conn {
                id,
                event: Event::Readable,
                ..
            } = e
            {
                let slot = id.slot();
                while let Ok(n) = client.recv(now, id, &mut buf) {
                    let got = &mut client_got[slot];
                    if n == 0 {
                        break;
                    }
                    let off = *got as usize;
                    if (0..n).any(|k| buf[k] != reply[off + k]) {
                        failures.push("a reply arrived corrupted".to_string());
                    }
                    *got += n as u32;
                    delivered += n as u64;
                    if *got as usize == CONCURRENT_BYTES {
                        *got = 0;
                        client_rounds[slot] += 1;
                        if client_rounds[slot] == rounds {
                            clients_done += 1;
                        } else if client.send(now, id, &request) != Ok(CONCURRENT_BYTES) {
                            failures.push("client send buffer refused 4 KiB".to_string());
                        }
                    }
                }
            }
        }
        if !moved {
            idle(&mut clock, &mut client, &mut server);
        }
    }
    let cpu = (crate::cpu_time() - cpu0).max(1e-9);
    let segments = segs(&client, &server) - segs0;
    if delivered != 2 * CONCURRENT_BYTES as u64 * client_ids.len() as u64 * u64::from(rounds) {
        failures.push(format!("{delivered} bytes delivered"));
    }
    ConcurrentSample {
        conns: client_ids.len(),
        segments_per_sec: segments as f64 / cpu,
        bytes_per_conn: established.saturating_sub(ready) as f64 / (2 * conns.max(1)) as f64,
        ns_per_byte: cpu * 1e9 / delivered.max(1) as f64,
        failures: (!failures.is_empty()).then(|| failures.join("; ")),
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
        // 60,000 ports per local address: every 4-tuple distinct.
        let local = SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(10, 1, (n / 60_000) as u8, 1)),
            1024 + (n % 60_000) as u16,
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
    assert_eq!(held, records, "one record per connection");
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
