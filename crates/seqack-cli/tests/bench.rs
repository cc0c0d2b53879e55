//! `seqack bench --quick` as a user runs it: every workload runs on seqack and on its
//! anchors, every line of `--json` is a figure or a ratio with the documented keys, and
//! the figures are sane. No speed is asserted: only that each implementation did the
//! work (positive, finite figures, the ratio lines agreeing with them).

use serde_json::Value;
use std::process::Command;

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_seqack"))
        .arg("bench")
        .args(args)
        .output()
        .expect("run seqack");
    (
        out.status.success(),
        String::from_utf8(out.stdout).expect("UTF-8"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

struct Figure {
    bench: String,
    imp: String,
    value: f64,
    runs: u64,
}

#[test]
fn quick_json_has_every_workload_on_every_implementation() {
    let (ok, stdout, stderr) = run(&["--quick", "--json"]);
    assert!(ok, "seqack bench failed: {stderr}");
    let mut figures = Vec::new();
    let mut ratios = Vec::new();
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let o = v.as_object().expect("an object");
        let s = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
        if let Some(vs) = s("ratio_vs") {
            let keys: Vec<&str> = o.keys().map(String::as_str).collect();
            assert_eq!(keys, ["bench", "impl", "ratio_vs", "ratio"], "{line}");
            let r = o["ratio"].as_f64().expect("ratio is a number");
            ratios.push((s("bench").expect("bench"), s("impl").expect("impl"), vs, r));
            continue;
        }
        for k in o.keys() {
            assert!(
                ["bench", "impl", "value", "unit", "runs"].contains(&k.as_str()),
                "unexpected key {k}: {line}"
            );
        }
        assert!(s("unit").is_some_and(|u| !u.is_empty()), "{line}");
        let f = Figure {
            bench: s("bench").expect("bench"),
            imp: s("impl").expect("impl"),
            value: o["value"].as_f64().expect("value is a number"),
            runs: o["runs"].as_u64().expect("runs is a count"),
        };
        assert!(f.value.is_finite() && f.value > 0.0, "{line}");
        assert!(f.runs >= 1, "{line}");
        figures.push(f);
    }
    let has = |bench: &str, imp: &str| figures.iter().any(|f| f.bench == bench && f.imp == imp);
    for bench in ["bulk-1500", "bulk-64k", "lossy-0", "lossy-0.1", "lossy-1"] {
        assert!(
            has(bench, "seqack") && has(bench, "smoltcp"),
            "{bench}: {stdout}"
        );
    }
    assert!(has("bulk-64k", "linux"), "{stdout}");
    assert!(has("churn", "seqack") && has("churn", "linux"), "{stdout}");
    for bench in [
        "concurrent",
        "concurrent-cost",
        "concurrent-memory",
        "time-wait-memory",
        "time-wait-insert",
        "time-wait-expiry",
    ] {
        assert!(has(bench, "seqack"), "{bench}: {stdout}");
    }
    // Each ratio is its implementation's value over the anchor's, as printed.
    for (bench, imp, vs, r) in &ratios {
        let value = |imp: &str| {
            figures
                .iter()
                .find(|f| &f.bench == bench && f.imp == imp)
                .map(|f| f.value)
                .unwrap_or_else(|| panic!("ratio without figures: {bench} {vs}"))
        };
        let expect = value(imp) / value(vs);
        assert!(
            (r - expect).abs() <= 0.01 * expect.max(1.0),
            "{bench} vs {vs}: {r} != {expect}"
        );
    }
    assert!(ratios
        .iter()
        .any(|(b, _, vs, _)| b == "bulk-64k" && vs == "linux"));
    assert!(ratios
        .iter()
        .any(|(b, _, vs, _)| b == "churn" && vs == "linux"));
}

#[test]
fn only_selects_and_unknown_names_are_refused() {
    let (ok, stdout, _) = run(&["--quick", "--json", "--only", "time-wait"]);
    assert!(ok);
    assert!(stdout.lines().count() >= 3);
    assert!(
        stdout.lines().all(|l| l.contains("\"time-wait")),
        "{stdout}"
    );
    let (ok, _, stderr) = run(&["--only", "no-such-bench"]);
    assert!(!ok);
    assert!(stderr.contains("no benchmark named"), "{stderr}");
}
