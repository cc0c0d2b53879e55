//! `seqack stack-bench`: the stack's scale workloads (`seqack_io::workload`) in virtual
//! time, with their figures printed as JSON lines, one figure a line:
//!
//! ```json
//! {"bench":"time-wait","metric":"bytes_per_record","value":50.7,"unit":"B","note":"..."}
//! ```
//!
//! Memory is measured by a counting global allocator installed in the `seqack` binary
//! (this module's [`Counting`]): it wraps the system allocator and keeps the bytes in
//! use and their peak. CPU time is the thread's own, from the kernel's scheduler
//! statistics; where those are missing, wall-clock time stands in and the unit says so.

use clap::Args;
use seqack::stack::time_wait::TimeWaitTable;
use seqack_io::workload::{self, Failures, FloodConfig, ManyConfig, Milestone, TimeWaitConfig};
use serde::Serialize;
use serde_json::{json, Value};
use std::alloc::{GlobalAlloc, Layout, System};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The system allocator, counting the bytes in use and their peak.
pub struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

impl Counting {
    fn grew(by: usize) {
        let now = IN_USE.fetch_add(by, Relaxed) + by;
        PEAK.fetch_max(now, Relaxed);
    }

    fn shrank(by: usize) {
        IN_USE.fetch_sub(by, Relaxed);
    }

    /// Heap bytes in use now.
    pub fn in_use() -> usize {
        IN_USE.load(Relaxed)
    }

    /// The most heap bytes in use since the last [`Counting::reset_peak`].
    pub fn peak() -> usize {
        PEAK.load(Relaxed)
    }

    /// Starts a new peak from the bytes in use now, and returns them.
    pub fn reset_peak() -> usize {
        let now = Self::in_use();
        PEAK.store(now, Relaxed);
        now
    }
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds GlobalAlloc's
// contract; the counters are only arithmetic on the sizes of successful calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            Self::grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            Self::grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) };
        Self::shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            Self::shrank(layout.size());
            Self::grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Options of `seqack stack-bench`.
#[derive(Args, Debug)]
pub struct StackBenchArgs {
    /// Smoke-test sizes (20,000 SYNs, 100 clients, 5,000 TIME_WAIT connections, 2,000
    /// concurrent connections); the options below still override them.
    #[arg(long)]
    pub quick: bool,
    /// Spoofed SYNs of the flood (default 1,000,000).
    #[arg(long, value_name = "N")]
    pub syns: Option<usize>,
    /// Legitimate clients among the flood (default 1,000).
    #[arg(long, value_name = "N")]
    pub clients: Option<usize>,
    /// Short connections through TIME_WAIT (default 1,000,000).
    #[arg(long, value_name = "N")]
    pub tw: Option<usize>,
    /// Concurrent established connections (default 100,000).
    #[arg(long, value_name = "N")]
    pub conns: Option<usize>,
}

/// One figure: one line of output.
#[derive(Serialize)]
struct Figure<'a> {
    bench: &'a str,
    metric: &'a str,
    value: Value,
    unit: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
}

fn print(bench: &str, metric: &str, value: Value, unit: &str, note: Option<&str>) {
    let f = Figure {
        bench,
        metric,
        value,
        unit,
        note,
    };
    println!(
        "{}",
        serde_json::to_string(&f).expect("a figure serialises")
    );
}

const PEAK_NOTE: &str = "most heap bytes in use during the workload above those in use at \
    its start, from the counting global allocator: the stacks, the simulated link's packets \
    in flight and the driver's own bookkeeping";

/// CPU time of this thread (the workloads run on it), and whether it is that (true) or
/// wall-clock time standing in for it.
fn cpu_time() -> (std::time::Duration, bool) {
    // The first field of schedstat is the time the thread spent on a CPU, in ns.
    let ns = std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok());
    match ns {
        Some(ns) => (std::time::Duration::from_nanos(ns), true),
        None => (wall_clock_origin().elapsed(), false),
    }
}

fn wall_clock_origin() -> std::time::Instant {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(std::time::Instant::now)
}

/// What [`measure`] measured of one workload.
struct Measured {
    segments: u64,
    seconds: f64,
    /// `seconds` is the thread's CPU time (else wall-clock time).
    is_cpu: bool,
    peak: usize,
}

/// Runs one workload, measuring its peak heap and its CPU time; `segments` reads the
/// segments its stacks processed from its report.
fn measure<R>(run: impl FnOnce() -> R, segments: impl Fn(&R) -> u64) -> (R, Measured) {
    let start = Counting::reset_peak();
    let (cpu0, is_cpu) = cpu_time();
    let r = run();
    let (cpu1, _) = cpu_time();
    let m = Measured {
        segments: segments(&r),
        seconds: (cpu1 - cpu0).as_secs_f64().max(1e-9),
        is_cpu,
        peak: Counting::peak().saturating_sub(start),
    };
    (r, m)
}

/// Prints the figures every workload has: segments, CPU time, segments per CPU second,
/// peak memory.
fn print_measured(bench: &str, m: &Measured) {
    let (unit, note) = if m.is_cpu {
        (
            "segments/s",
            "TcpInSegs + TcpOutSegs of every stack, per second of this thread's CPU time \
             (/proc/thread-self/schedstat); the simulated link's work is included",
        )
    } else {
        (
            "segments/s (wall clock)",
            "TcpInSegs + TcpOutSegs of every stack, per second of wall-clock time: the \
             thread's CPU time was not readable here",
        )
    };
    print(bench, "segments", json!(m.segments), "segments", None);
    let secs_unit = if m.is_cpu { "s" } else { "s (wall clock)" };
    print(bench, "cpu_seconds", json!(m.seconds), secs_unit, None);
    let rate = m.segments as f64 / m.seconds;
    print(
        bench,
        "segments_per_cpu_second",
        json!(rate),
        unit,
        Some(note),
    );
    print(bench, "peak_memory", json!(m.peak), "B", Some(PEAK_NOTE));
}

fn report_failures(bench: &str, f: &Failures) -> bool {
    if !f.is_empty() {
        eprintln!("seqack stack-bench: {bench}: {f}");
    }
    f.is_empty()
}

fn syn_flood(syns: usize, clients: usize) -> bool {
    let cfg = FloodConfig {
        syns,
        clients,
        ..FloodConfig::default()
    };
    let b = "syn-flood";
    let (r, m) = measure(|| workload::syn_flood(&cfg, &mut |_, _| {}), |r| r.segments);
    print(b, "spoofed_syns", json!(r.syns_sent), "SYNs", None);
    print(b, "backlog", json!(cfg.backlog), "connections", None);
    print(b, "legit_clients", json!(r.clients), "clients", None);
    print(
        b,
        "legit_success_rate",
        json!(r.success_rate()),
        "ratio",
        Some("legitimate clients that connected, sent 100 bytes and read the 100-byte answer"),
    );
    print(
        b,
        "server_peak_connections",
        json!(r.server_peak_connections),
        "connections",
        Some("the flood's half-open connections are bounded by the backlog; beyond it the listener answers with SYN cookies and keeps nothing"),
    );
    print(
        b,
        "syncookies_sent",
        json!(r.server.syncookies_sent),
        "SYN-ACKs",
        None,
    );
    print_measured(b, &m);
    report_failures(b, &r.failures)
}

fn time_wait(conns: usize) -> bool {
    let cfg = TimeWaitConfig {
        conns,
        ..TimeWaitConfig::default()
    };
    let b = "time-wait";
    let (r, m) = measure(|| workload::time_wait(&cfg, &mut |_, _| {}), |r| r.segments);
    print(b, "connections", json!(r.conns), "connections", None);
    print(
        b,
        "peak_records",
        json!(r.peak_records),
        "records",
        Some("TIME_WAIT records the client held at once"),
    );
    print(
        b,
        "bytes_per_record",
        json!(r.memory_at_peak as f64 / r.peak_records.max(1) as f64),
        "B",
        Some("TimeWaitTable::memory_bytes() / records, at the peak: the record slab, the hash index and the timing wheel"),
    );
    print(
        b,
        "record_size_v4",
        json!(TimeWaitTable::record_size_v4()),
        "B",
        None,
    );
    print(
        b,
        "record_size_v6",
        json!(TimeWaitTable::record_size_v6()),
        "B",
        None,
    );
    print(
        b,
        "expired_on_time",
        json!(r.expired_on_time),
        "records",
        Some("records that ended by the 2MSL timer exactly 2MSL after their connection entered TIME_WAIT"),
    );
    print_measured(b, &m);
    report_failures(b, &r.failures)
}

const CONN_NOTE: &str = "heap bytes in use once every connection was established, less \
    those in use before the first connect(), divided by the connections of all stacks \
    (server and client ends both count). Taken before any data moved: a connection \
    allocates its receive buffer at its first byte and its send buffer at its first \
    write, so no buffer is held, and the figure excludes buffers. It includes the slab \
    slot, the 4-tuple index, the timer-wheel entry and the amortised growth of those \
    tables; the driver's own per-connection state is allocated before the baseline";

fn many_connections(conns: usize) -> bool {
    let cfg = ManyConfig {
        conns,
        ..ManyConfig::default()
    };
    let b = "connections";
    let mut ready = 0;
    let mut established = None;
    let (r, m) = measure(
        || {
            workload::many_connections(&cfg, &mut |m, _| match m {
                Milestone::Ready => ready = Counting::in_use(),
                Milestone::Established => established = Some(Counting::in_use()),
                Milestone::Done => {}
            })
        },
        |r| r.segments,
    );
    print(b, "connections", json!(r.conns), "connections", None);
    print(
        b,
        "server_peak_connections",
        json!(r.server_peak_connections),
        "connections",
        None,
    );
    print(
        b,
        "bytes_each_way",
        json!(cfg.bytes),
        "B",
        Some("per connection, with send and receive buffers of ManyConfig::buffer bytes"),
    );
    let mut ok = true;
    if let Some(bytes) = established {
        // The figure excludes buffers only if no data was queued anywhere.
        ok &= r.queued_at_established == 0;
        let ends = r.server_connections_established + r.client_connections_established;
        print(
            b,
            "bytes_per_connection",
            json!(bytes.saturating_sub(ready) as f64 / ends.max(1) as f64),
            "B",
            Some(CONN_NOTE),
        );
    }
    print_measured(b, &m);
    ok &= report_failures(b, &r.failures);
    ok
}

/// Runs the three workloads and prints their figures; the exit status is non-zero when
/// any of their checks failed.
pub fn run(a: &StackBenchArgs) -> ExitCode {
    let (syns, clients, tw, conns) = if a.quick {
        (20_000, 100, 5_000, 2_000)
    } else {
        (1_000_000, 1_000, 1_000_000, 100_000)
    };
    wall_clock_origin();
    let mut ok = syn_flood(a.syns.unwrap_or(syns), a.clients.unwrap_or(clients));
    ok &= time_wait(a.tw.unwrap_or(tw));
    ok &= many_connections(a.conns.unwrap_or(conns));
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
