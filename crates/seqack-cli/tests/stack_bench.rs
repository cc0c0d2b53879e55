//! `seqack stack-bench` as a user runs it: every line of its output is a JSON figure
//! with the expected keys, and the figures are sane. No timing is asserted.

use serde_json::Value;
use std::collections::HashMap;
use std::process::Command;

const BENCHES: [&str; 3] = ["syn-flood", "time-wait", "connections"];

/// Runs `seqack stack-bench` with `args`; returns its figures by (bench, metric).
fn run(args: &[&str]) -> HashMap<(String, String), Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_seqack"))
        .arg("stack-bench")
        .args(args)
        .output()
        .expect("run seqack");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stack-bench failed: {stderr}");
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 output");
    let mut figures = HashMap::new();
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let o = v
            .as_object()
            .unwrap_or_else(|| panic!("not an object: {line}"));
        for k in o.keys() {
            let known = ["bench", "metric", "value", "unit", "note"].contains(&k.as_str());
            assert!(known, "unexpected key {k}: {line}");
        }
        let text = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
        let (Some(bench), Some(metric), Some(unit)) = (text("bench"), text("metric"), text("unit"))
        else {
            panic!("bench, metric and unit must be strings: {line}");
        };
        assert!(BENCHES.contains(&bench.as_str()), "unknown bench: {line}");
        assert!(!unit.is_empty(), "{line}");
        if let Some(note) = o.get("note") {
            assert!(note.as_str().is_some_and(|n| !n.is_empty()), "{line}");
        }
        let value = o.get("value").cloned().unwrap_or(Value::Null);
        let x = value
            .as_f64()
            .unwrap_or_else(|| panic!("value not a number: {line}"));
        assert!(x.is_finite() && x >= 0.0, "{line}");
        let dup = figures.insert((bench, metric), value);
        assert!(dup.is_none(), "figure printed twice: {line}");
    }
    figures
}

fn get(f: &HashMap<(String, String), Value>, bench: &str, metric: &str) -> f64 {
    f.get(&(bench.to_string(), metric.to_string()))
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no figure {bench} {metric}"))
}

#[test]
fn quick_run_prints_sane_json_figures() {
    let f = run(&["--quick"]);
    for b in BENCHES {
        assert!(get(&f, b, "segments") > 0.0);
        assert!(get(&f, b, "cpu_seconds") > 0.0);
        assert!(get(&f, b, "segments_per_cpu_second") > 0.0);
        assert!(get(&f, b, "peak_memory") > 0.0);
    }
    // The flood: every legitimate client served, the server's state bounded.
    assert_eq!(get(&f, "syn-flood", "legit_success_rate"), 1.0);
    assert_eq!(get(&f, "syn-flood", "spoofed_syns"), 20_000.0);
    assert_eq!(get(&f, "syn-flood", "legit_clients"), 100.0);
    let backlog = get(&f, "syn-flood", "backlog");
    let peak = get(&f, "syn-flood", "server_peak_connections");
    assert!(peak <= 2.0 * backlog + 100.0, "peak {peak}");
    assert!(get(&f, "syn-flood", "syncookies_sent") > 0.0);
    // TIME_WAIT: every record held at once and expired on time; compact records.
    let n = get(&f, "time-wait", "connections");
    assert_eq!(n, 5_000.0);
    assert_eq!(get(&f, "time-wait", "peak_records"), n);
    assert_eq!(get(&f, "time-wait", "expired_on_time"), n);
    assert!(get(&f, "time-wait", "bytes_per_record") > 0.0);
    let v4 = get(&f, "time-wait", "record_size_v4");
    let v6 = get(&f, "time-wait", "record_size_v6");
    assert!(v4 > 0.0 && v4 <= 64.0 && v6 > v4, "record sizes {v4} {v6}");
    // Connections: all at once; per-connection memory excludes the 16 KiB buffers.
    assert_eq!(get(&f, "connections", "connections"), 2_000.0);
    assert_eq!(get(&f, "connections", "server_peak_connections"), 2_000.0);
    let per_conn = get(&f, "connections", "bytes_per_connection");
    assert!(per_conn > 0.0 && per_conn < 16_384.0, "{per_conn} B");
}

#[test]
fn sizes_override_quick() {
    let f = run(&[
        "--quick",
        "--syns",
        "300",
        "--clients",
        "7",
        "--tw",
        "40",
        "--conns",
        "30",
    ]);
    assert_eq!(get(&f, "syn-flood", "spoofed_syns"), 300.0);
    assert_eq!(get(&f, "syn-flood", "legit_clients"), 7.0);
    assert_eq!(get(&f, "syn-flood", "legit_success_rate"), 1.0);
    assert_eq!(get(&f, "time-wait", "connections"), 40.0);
    assert_eq!(get(&f, "time-wait", "peak_records"), 40.0);
    assert_eq!(get(&f, "connections", "connections"), 30.0);
}
