//! `seqack demo` as a user runs it: every scenario, its exit status, and the files it
//! writes (state log, SVG, pcap read back by tshark when tshark is installed).

use std::path::{Path, PathBuf};
use std::process::Command;

const SCENARIOS: [&str; 10] = [
    "active-close",
    "passive-close",
    "three-way-close",
    "simultaneous-open",
    "simultaneous-close",
    "half-close",
    "lost-final-ack",
    "lost-fin",
    "rst-abort",
    "refused",
];

fn seqack(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_seqack"))
        .args(args)
        .output()
        .expect("run seqack")
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("seqack-demo-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// The state names of RFC 9293 in the log's underscore form.
const STATES: [&str; 11] = [
    "CLOSED",
    "LISTEN",
    "SYN_SENT",
    "SYN_RECEIVED",
    "ESTABLISHED",
    "FIN_WAIT_1",
    "FIN_WAIT_2",
    "CLOSE_WAIT",
    "CLOSING",
    "LAST_ACK",
    "TIME_WAIT",
];

fn check_state_log(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).expect("state log written");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect();
    assert!(!lines.is_empty());
    let mut last_t = 0;
    for v in &lines {
        let t = v["t_us"].as_u64().expect("t_us");
        assert!(t >= last_t, "t_us goes forward");
        last_t = t;
        assert!(matches!(v["side"].as_str(), Some("client" | "server")));
        for k in ["local", "remote"] {
            let a = v[k].as_str().expect(k);
            assert!(
                a.parse::<std::net::SocketAddr>().is_ok(),
                "{k} is ip:port, got {a}"
            );
        }
        for k in ["from", "to"] {
            assert!(STATES.contains(&v[k].as_str().expect(k)), "{k}: {}", v[k]);
        }
        assert!(!v["why"].as_str().expect("why").is_empty());
    }
    lines
}

#[test]
fn every_scenario_ends_as_expected_and_writes_its_files() {
    let tshark = Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !tshark {
        eprintln!(
            "tshark not installed: pcaps are checked for structure only (apt-get install tshark)"
        );
    }
    for sc in SCENARIOS {
        for family in ["v4", "v6"] {
            let log = tmp(&format!("{sc}-{family}.jsonl"));
            let svg = tmp(&format!("{sc}-{family}.svg"));
            let pcap = tmp(&format!("{sc}-{family}.pcap"));
            let mut args = vec!["demo", "--scenario", sc, "--no-color"];
            let (l, s, p) = (
                log.to_str().unwrap(),
                svg.to_str().unwrap(),
                pcap.to_str().unwrap(),
            );
            args.extend(["--state-log", l, "--svg", s, "--pcap", p]);
            if family == "v6" {
                args.push("--ipv6");
            }
            let out = seqack(&args);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{sc} {family}: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(stdout.contains("result: ok"));
            let lines = check_state_log(&log);
            // Every connection of the client ends CLOSED.
            let last_client = lines
                .iter()
                .rev()
                .find(|v| v["side"] == "client")
                .expect("client lines");
            assert_eq!(last_client["to"], "CLOSED", "{sc}");
            let svg_text = std::fs::read_to_string(&svg).expect("svg");
            assert!(svg_text.starts_with("<svg") || svg_text.starts_with("<?xml"));
            assert!(svg_text.trim_end().ends_with("</svg>"));
            let bytes = std::fs::read(&pcap).expect("pcap");
            assert_eq!(&bytes[..4], &[0xa1, 0xb2, 0xc3, 0xd4], "pcap magic");
            if tshark {
                let t = Command::new("tshark")
                    .args(["-r", p, "-o", "tcp.check_checksum:TRUE", "-Y"])
                    .arg("_ws.malformed || tcp.checksum.status == 0 || ip.checksum.status == 0")
                    .output()
                    .expect("tshark");
                assert!(
                    t.status.success(),
                    "tshark failed on {sc}: {}",
                    String::from_utf8_lossy(&t.stderr)
                );
                let bad = String::from_utf8_lossy(&t.stdout);
                assert!(
                    bad.trim().is_empty(),
                    "{sc} {family}: malformed or bad-checksum packets:\n{bad}"
                );
                let all = Command::new("tshark")
                    .args(["-r", p])
                    .output()
                    .expect("tshark");
                let n = String::from_utf8_lossy(&all.stdout).lines().count();
                assert!(n >= 2, "{sc}: tshark read {n} packets");
            }
        }
    }
}

#[test]
fn the_ladder_shows_textbook_rows() {
    let out = seqack(&["demo", "--no-color"]);
    let text = String::from_utf8_lossy(&out.stdout);
    // The handshake, the four-way close and TIME_WAIT, in that order.
    let order = [
        "SYN_SENT",
        "S.",
        "FIN_WAIT_1",
        "FIN_WAIT_2",
        "TIME_WAIT",
        "held it from",
    ];
    let mut at = 0;
    for w in order {
        let i = text[at..]
            .find(w)
            .unwrap_or_else(|| panic!("'{w}' missing after byte {at}:\n{text}"));
        at += i;
    }
    assert!(text.contains("60.000 s (2MSL = 60.000 s)"), "{text}");
}

#[test]
fn msl_is_configurable_and_seeds_reproduce() {
    let a = seqack(&[
        "demo",
        "--no-color",
        "--msl",
        "2",
        "--loss",
        "0.2",
        "--seed",
        "9",
    ]);
    let b = seqack(&[
        "demo",
        "--no-color",
        "--msl",
        "2",
        "--loss",
        "0.2",
        "--seed",
        "9",
    ]);
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout, "same seed, same run");
    assert!(String::from_utf8_lossy(&a.stdout).contains("(2MSL = 4.000 s)"));
}

#[test]
fn bad_arguments_and_failed_runs_exit_non_zero() {
    let bad = seqack(&["demo", "--scenario", "nope"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown scenario"));
    let bad = seqack(&["demo", "--loss", "1.5"]);
    assert!(!bad.status.success());
    // A link that loses nearly everything: the scenario cannot end as expected.
    let lossy = seqack(&["demo", "--loss", "0.999", "--no-color"]);
    assert_eq!(lossy.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&lossy.stderr).contains("FAILED"));
}

/// `--ss` shows each stack's sockets as `ss -tan -o` would at the asked virtual times,
/// including the client's compact TIME_WAIT record with its 2MSL timer; `--counters`
/// prints the nstat counters.
#[test]
fn ss_snapshots_and_counters() {
    let out = seqack(&[
        "demo",
        "--no-color",
        "--ss",
        "15",
        "--ss",
        "30100",
        "--counters",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let after = |marker: &str| -> String {
        let i = text
            .find(marker)
            .unwrap_or_else(|| panic!("no {marker} in {text}"));
        text[i..].lines().take(8).collect::<Vec<_>>().join("\n")
    };
    let early = after("ss -tan -o at 15.000 ms");
    assert!(early.contains("SYN-SENT"), "{early}");
    assert!(early.contains("SYN-RECV"), "{early}");
    assert!(early.contains("LISTEN"), "{early}");
    // The client closed first at about 60 ms and entered TIME_WAIT at 180 ms (the
    // server closes 100 ms after the client's FIN): 30.1 s later, 30 s of its 60 s
    // are left.
    let tw = after("ss -tan -o at 30100.000 ms");
    let line = tw.lines().find(|l| l.contains("TIME-WAIT")).expect(&tw);
    assert!(line.contains("10.0.0.1:40000"), "{line}");
    assert!(line.ends_with("timer:(timewait,30.0sec)"), "{line}");
    let counters = after("counters (nstat names)");
    assert!(counters.contains("TcpActiveOpens"), "{counters}");
    let bad = seqack(&["demo", "--ss", "soon"]);
    assert_eq!(bad.status.code(), Some(2));
}
