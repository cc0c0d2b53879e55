//! `seqack bench`: every performance workload on seqack and on its anchors (smoltcp on
//! the same in-memory link, Linux over loopback), interleaved run by run in one
//! process, with medians and seqack/anchor ratios; a table, or JSON lines.
//!
//! The workloads themselves are in the `seqack-bench` crate. Nothing here asserts a
//! speed: the figures are printed, and only ratios measured in one run mean anything.

use std::process::ExitCode;

use clap::Args;
use seqack_bench::bulk::{self, BulkConfig};
use seqack_bench::tun::{self, Direction, TunConfig, TunLab};
use seqack_bench::{churn, lossy, scale};
use serde_json::json;

use crate::stack_bench::Counting;

/// Options of `seqack bench`.
#[derive(Args, Debug)]
#[command(after_help = "\
Benchmarks (--only takes these names, or a prefix such as `bulk` or `lossy`):
  bulk-1500   1 GiB one way, MTU 1500, 256 KiB buffers, checksums on: Gbit/s (seqack, smoltcp)
  bulk-64k    the same at MTU 65535 (seqack, smoltcp, Linux over lo)
  churn       connect, 1-byte request and response, active close, TIME_WAIT kept:
              connections per CPU second (seqack, 64 in flight; Linux over lo, 8 clients)
  concurrent  100,000 connections established at once on the in-memory link, then each
              moving 4 KiB each way: segments per CPU second and CPU ns per byte over the
              data phase (concurrent-cost), against seqack-1conn, the same 100,000
              exchanges one after another on a single connection; and concurrent-memory
              (heap per connection end once established, before any buffer exists;
              smoltcp's socket size)
  time-wait   1,000,000 TIME_WAIT records: bytes per record, CPU ns per insert and expiry
  lossy-0, lossy-0.1, lossy-1
              100 Mbit/s, 40 ms RTT, BDP drop-tail queue, 0 / 0.1 / 1 % random loss, 30 s:
              goodput as a fraction of the bottleneck (seqack, smoltcp with CUBIC)
  tun-tx, tun-rx
              root only (skipped with a message otherwise): 1 GiB (32 MiB with --quick)
              between seqack on a TUN device (MTU 1500, 1 MiB buffers) and the kernel's
              TCP in a network namespace of its own; tun-tx: seqack sends, tun-rx: the
              kernel sends. Gbit/s for seqack (plain TUN), seqack-offload (TUN offload:
              virtio-net header, TSO super-packets read, segments coalesced into GSO
              writes), and linux-veth (the kernel to itself over a veth pair, MTU 1500,
              between that namespace and a second one); every kernel socket uses CUBIC,
              whatever the host's default congestion control is

Each run interleaves the implementations, in an order rotated run by run; the figure is
the median of --runs runs.
`--json` prints one object per figure: {\"bench\",\"impl\",\"value\",\"unit\",\"runs\"},
and one per ratio: {\"bench\",\"impl\",\"ratio_vs\",\"ratio\"} (impl's value / ratio_vs's;
impl is seqack except for the tun benchmarks' seqack-offload).

Example: seqack bench --quick --only bulk --json")]
pub struct BenchArgs {
    /// Small sizes, for a smoke test (16 MiB transfers, 2,000 connections, 2 s lossy
    /// runs, one run each).
    #[arg(long)]
    pub quick: bool,
    /// JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Run only these benchmarks (names or prefixes; repeat or separate with commas).
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Runs of each benchmark (default 5, 1 with --quick).
    #[arg(long, value_name = "N")]
    pub runs: Option<usize>,
}

/// The median of one implementation's runs of one benchmark.
struct Figure {
    bench: String,
    imp: &'static str,
    value: f64,
    unit: &'static str,
    runs: usize,
}

struct Report {
    json: bool,
    figures: Vec<Figure>,
    /// The ratios asked for: (bench, impl, anchor).
    ratios: Vec<(String, &'static str, &'static str)>,
    ok: bool,
}

impl Report {
    fn figure(&mut self, bench: &str, imp: &'static str, unit: &'static str, samples: &[f64]) {
        let f = Figure {
            bench: bench.to_string(),
            imp,
            value: median(samples),
            unit,
            runs: samples.len(),
        };
        if self.json {
            println!(
                "{}",
                json!({"bench": f.bench, "impl": f.imp, "value": round(f.value), "unit": f.unit, "runs": f.runs})
            );
        }
        self.figures.push(f);
    }

    fn ratio(&mut self, bench: &str, anchor: &'static str) {
        self.ratio_of(bench, "seqack", anchor);
    }

    /// `imp`'s figure over `anchor`'s on `bench`.
    fn ratio_of(&mut self, bench: &str, imp: &'static str, anchor: &'static str) {
        let find = |imp: &str| {
            self.figures
                .iter()
                .find(|f| f.bench == bench && f.imp == imp)
                .map(|f| f.value)
        };
        if let (Some(s), Some(a)) = (find(imp), find(anchor)) {
            if a > 0.0 && self.json {
                println!(
                    "{}",
                    json!({"bench": bench, "impl": imp, "ratio_vs": anchor, "ratio": round(s / a)})
                );
            }
            self.ratios.push((bench.to_string(), imp, anchor));
        }
    }

    fn failed(&mut self, bench: &str, why: &str) {
        self.ok = false;
        eprintln!("seqack bench: {bench}: {why}");
    }

    fn table(&self) {
        println!(
            "{:<18} {:<14} {:>14} {:<16} {:>4}  ratio",
            "bench", "impl", "median", "unit", "runs"
        );
        for f in &self.figures {
            let ratios: Vec<String> = self
                .ratios
                .iter()
                .filter(|(b, imp, _)| *b == f.bench && *imp == f.imp)
                .filter_map(|(_, _, anchor)| {
                    self.figures
                        .iter()
                        .find(|a| a.bench == f.bench && a.imp == *anchor && a.value > 0.0)
                })
                .map(|a| format!("{:.2}x {}", f.value / a.value, a.imp))
                .collect();
            println!(
                "{:<18} {:<14} {:>14} {:<16} {:>4}  {}",
                f.bench,
                f.imp,
                format_value(f.value),
                f.unit,
                f.runs,
                ratios.join(", ")
            );
        }
    }
}

fn format_value(v: f64) -> String {
    if v >= 1000.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// Six significant digits: enough that a ratio recomputed from the printed figures
/// agrees with the printed ratio.
fn round(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let scale = 10f64.powi(5 - v.abs().log10().floor() as i32);
    (v * scale).round() / scale
}

fn median(samples: &[f64]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// The order in which run `run` measures `n` implementations: rotated one place each
/// run, so that none always comes right after the same one (a Linux run leaves the
/// kernel's deferred work and cold caches to whatever follows it).
fn rotation(run: usize, n: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |k| (run + k) % n)
}

fn selected(only: &[String], name: &str) -> bool {
    only.is_empty() || only.iter().any(|o| name.starts_with(o.as_str()))
}

/// Runs the selected benchmarks and prints their figures.
pub fn run(a: &BenchArgs) -> ExitCode {
    let runs = a.runs.unwrap_or(if a.quick { 1 } else { 5 }).max(1);
    let known = [
        "bulk-1500",
        "bulk-64k",
        "churn",
        "concurrent",
        "time-wait",
        "lossy-0",
        "lossy-0.1",
        "lossy-1",
        "tun-tx",
        "tun-rx",
    ];
    for o in &a.only {
        if !known.iter().any(|k| k.starts_with(o.as_str())) {
            eprintln!("seqack bench: no benchmark named {o:?}; see --help");
            return ExitCode::from(2);
        }
    }
    let mut r = Report {
        json: a.json,
        figures: Vec::new(),
        ratios: Vec::new(),
        ok: true,
    };
    let gib: u64 = if a.quick { 16 << 20 } else { 1 << 30 };
    for (name, mtu) in [("bulk-1500", 1500u16), ("bulk-64k", 65535)] {
        if !selected(&a.only, name) {
            continue;
        }
        let cfg = BulkConfig {
            mtu,
            bytes: gib,
            buffer: 256 * 1024,
        };
        let (mut s, mut m, mut l) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..runs {
            for k in rotation(run, 3) {
                match k {
                    0 => s.push(bulk::seqack(&cfg).gbps()),
                    1 => m.push(bulk::smoltcp(&cfg).gbps()),
                    _ if mtu == 65535 => match bulk::linux(&cfg) {
                        Ok(x) => l.push(x.gbps()),
                        Err(e) => r.failed(name, &format!("Linux over lo: {e}")),
                    },
                    _ => {}
                }
            }
        }
        r.figure(name, "seqack", "Gbit/s", &s);
        r.figure(name, "smoltcp", "Gbit/s", &m);
        r.ratio(name, "smoltcp");
        if !l.is_empty() {
            r.figure(name, "linux", "Gbit/s", &l);
            r.ratio(name, "linux");
        }
    }
    if selected(&a.only, "churn") {
        let (n, nl) = if a.quick {
            (2_000, 500)
        } else {
            (200_000, 20_000)
        };
        let (mut s, mut l) = (Vec::new(), Vec::new());
        for run in 0..runs {
            for k in rotation(run, 2) {
                if k == 0 {
                    let x = churn::seqack(n, 64);
                    if x.time_wait as u64 != n {
                        r.failed(
                            "churn",
                            &format!("{} TIME_WAIT records, not {n}", x.time_wait),
                        );
                    }
                    s.push(x.rate());
                } else {
                    match churn::linux(nl, 8) {
                        Ok(x) => l.push(x.rate()),
                        Err(e) => r.failed("churn", &format!("Linux over lo: {e}")),
                    }
                }
            }
        }
        r.figure("churn", "seqack", "conn/s", &s);
        if !l.is_empty() {
            r.figure("churn", "linux", "conn/s", &l);
            r.ratio("churn", "linux");
        }
    }
    if selected(&a.only, "concurrent") {
        let n = if a.quick { 2_000 } else { 100_000 };
        // The same exchanges on one connection, as many in all: what concurrency costs.
        let rounds = n as u32;
        let (mut segs, mut mem, mut nspb) = (Vec::new(), Vec::new(), Vec::new());
        let (mut one_segs, mut one_nspb) = (Vec::new(), Vec::new());
        for run in 0..runs {
            for k in rotation(run, 2) {
                let x = if k == 0 {
                    scale::concurrent(n, 1, &Counting::in_use)
                } else {
                    scale::concurrent(1, rounds, &Counting::in_use)
                };
                if let Some(f) = &x.failures {
                    r.failed("concurrent", f);
                }
                if k == 0 {
                    segs.push(x.segments_per_sec);
                    mem.push(x.bytes_per_conn);
                    nspb.push(x.ns_per_byte);
                } else {
                    one_segs.push(x.segments_per_sec);
                    one_nspb.push(x.ns_per_byte);
                }
            }
        }
        r.figure("concurrent", "seqack", "segments/s", &segs);
        r.figure("concurrent", "seqack-1conn", "segments/s", &one_segs);
        r.ratio("concurrent", "seqack-1conn");
        r.figure("concurrent-cost", "seqack", "ns/byte", &nspb);
        r.figure("concurrent-cost", "seqack-1conn", "ns/byte", &one_nspb);
        r.ratio("concurrent-cost", "seqack-1conn");
        r.figure("concurrent-memory", "seqack", "B/conn", &mem);
        let smol = scale::smoltcp_socket_bytes() as f64;
        r.figure("concurrent-memory", "smoltcp", "B/conn", &[smol]);
        r.ratio("concurrent-memory", "smoltcp");
    }
    if selected(&a.only, "time-wait") {
        let n = if a.quick { 5_000 } else { 1_000_000 };
        let (mut b, mut h, mut ins, mut exp) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let x = scale::time_wait(n, &Counting::in_use);
            b.push(x.table_bytes_per_record);
            h.push(x.heap_bytes_per_record);
            ins.push(x.ns_per_insert);
            exp.push(x.ns_per_expiry);
        }
        r.figure("time-wait-memory", "seqack", "B/record", &b);
        r.figure("time-wait-heap", "seqack", "B/record", &h);
        r.figure("time-wait-insert", "seqack", "ns/record", &ins);
        r.figure("time-wait-expiry", "seqack", "ns/record", &exp);
    }
    for (name, loss) in [("lossy-0", 0.0), ("lossy-0.1", 0.001), ("lossy-1", 0.01)] {
        if !selected(&a.only, name) || (name == "lossy-0" && a.only.iter().any(|o| o == "lossy-0."))
        {
            continue;
        }
        let (mut s, mut m) = (Vec::new(), Vec::new());
        for run in 0..runs {
            let mut cfg = lossy::LossyConfig::standard(loss, 1 + run as u64);
            if a.quick {
                cfg.seconds = 2;
            }
            s.push(lossy::seqack(&cfg).fraction);
            m.push(lossy::smoltcp(&cfg).fraction);
        }
        r.figure(name, "seqack", "of 100 Mbit/s", &s);
        r.figure(name, "smoltcp", "of 100 Mbit/s", &m);
        r.ratio(name, "smoltcp");
    }
    if selected(&a.only, "tun-tx") || selected(&a.only, "tun-rx") {
        run_tun(a, runs, &mut r);
    }
    if !a.json {
        r.table();
    }
    if r.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `tun-tx` and `tun-rx`, or the line saying why they are skipped.
fn run_tun(a: &BenchArgs, runs: usize, r: &mut Report) {
    if let Some(why) = tun::unavailable() {
        eprintln!("seqack bench: tun-tx, tun-rx skipped: {why}");
        return;
    }
    let lab = match TunLab::new() {
        Ok(l) => l,
        Err(e) => return r.failed("tun", &format!("setting up the namespaces: {e}")),
    };
    let bytes: u64 = if a.quick { 32 << 20 } else { 1 << 30 };
    for (name, direction) in [
        ("tun-tx", Direction::SeqackToKernel),
        ("tun-rx", Direction::KernelToSeqack),
    ] {
        if !selected(&a.only, name) {
            continue;
        }
        let (mut plain, mut off, mut veth) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..runs {
            for k in rotation(run, 3) {
                if k == 2 {
                    match lab.linux_veth(direction, bytes) {
                        Ok(x) => veth.push(x.gbps()),
                        Err(e) => r.failed(name, &format!("Linux over veth: {e}")),
                    }
                    continue;
                }
                let offload = k == 1;
                let cfg = TunConfig {
                    direction,
                    offload,
                    bytes,
                    buffer: tun::BUFFER,
                };
                let v = if offload { &mut off } else { &mut plain };
                match lab.seqack(&cfg) {
                    Ok(x) => v.push(x.gbps()),
                    Err(e) => r.failed(name, &format!("seqack (offload {offload}): {e}")),
                }
            }
        }
        for (imp, v) in [
            ("seqack", &plain),
            ("seqack-offload", &off),
            ("linux-veth", &veth),
        ] {
            if !v.is_empty() {
                r.figure(name, imp, "Gbit/s", v);
            }
        }
        r.ratio_of(name, "seqack-offload", "seqack");
        r.ratio_of(name, "seqack", "linux-veth");
        r.ratio_of(name, "seqack-offload", "linux-veth");
    }
}
