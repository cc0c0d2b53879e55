//! `seqack trace` as a user runs it, on captures the tests make: every `seqack demo`
//! scenario's pcap (classified, and each side's state path equal to the stack's own
//! state log), the same captures rewritten as pcapng and with Ethernet, VLAN, SLL and
//! SLL2 headers, `--conn`, `--svg`, bad input, and the `--html` page opened in headless
//! Chromium (skipped with a reason when Chromium is not installed).
//!
//! The row-by-row check of the inferred states against the stacks' states is a unit test
//! (`trace::tests` in the binary), where the simulation's event order is at hand.

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::{DataLink, TsResolution};
use serde_json::Value;
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn seqack(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seqack"))
        .args(args)
        .output()
        .expect("run seqack")
}

/// A fresh path for `name`: the tests run in parallel and several record the same
/// scenario, so every call gets a directory of its own (a shared `active-close.pcap`
/// could be read by one test while another was rewriting it).
fn tmp(name: &str) -> PathBuf {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir()
        .join(format!("seqack-trace-test-{}", std::process::id()))
        .join(n.to_string());
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Runs a demo scenario with a pcap and a state log; returns their paths.
fn demo(scenario: &str, extra: &[&str]) -> (PathBuf, PathBuf) {
    let tag = format!("{scenario}{}", extra.join(""));
    let pcap = tmp(&format!("{tag}.pcap"));
    let log = tmp(&format!("{tag}.log"));
    let mut args = vec![
        "demo",
        "--scenario",
        scenario,
        "--pcap",
        s(&pcap),
        "--state-log",
        s(&log),
    ];
    args.extend_from_slice(extra);
    let out = seqack(&args);
    assert!(out.status.success(), "demo {scenario} failed");
    (pcap, log)
}

/// `seqack trace FILE --json ...`: one JSON object per line.
fn trace_json(file: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["trace", s(file), "--json"];
    args.extend_from_slice(extra);
    let out = seqack(&args);
    assert!(
        out.status.success(),
        "trace failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

/// One side's state path in a state log, without the final 2MSL expiry (a timer: no
/// segment shows it).
fn log_path(log: &Path, side: &str) -> Vec<String> {
    let text = std::fs::read_to_string(log).expect("state log");
    let mut path: Vec<String> = Vec::new();
    let mut last_why = String::new();
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).expect("JSON line");
        if v["side"] != side || v["remote"].as_str().is_some_and(|r| r.ends_with(":0")) {
            continue;
        }
        if path.is_empty() {
            path.push(v["from"].as_str().unwrap().to_string());
        }
        path.push(v["to"].as_str().unwrap().to_string());
        last_why = v["why"].as_str().unwrap().to_string();
    }
    if last_why.contains("2MSL") {
        path.pop();
    }
    path
}

/// One side's path as `seqack trace` inferred it.
fn inferred_path(c: &Value, side: &str) -> Vec<String> {
    c["path"][side]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// (scenario, open, close, first closer, TIME_WAIT holders, anomaly kinds).
type Expect = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

const EXPECT: [Expect; 10] = [
    (
        "active-close",
        "three-way",
        "four-way",
        "left",
        &["left"],
        &[],
    ),
    (
        "passive-close",
        "three-way",
        "four-way",
        "right",
        &["right"],
        &[],
    ),
    (
        "three-way-close",
        "three-way",
        "three-way",
        "left",
        &["left"],
        &[],
    ),
    (
        "simultaneous-open",
        "simultaneous",
        "four-way",
        "left",
        &["left"],
        &[],
    ),
    (
        "simultaneous-close",
        "three-way",
        "simultaneous",
        "left",
        &["left", "right"],
        &[],
    ),
    (
        "half-close",
        "three-way",
        "half-close",
        "left",
        &["left"],
        &[],
    ),
    (
        "lost-final-ack",
        "three-way",
        "four-way",
        "left",
        &["left"],
        &["lost-final-ack", "fin-retransmitted"],
    ),
    (
        "lost-fin",
        "three-way",
        "four-way",
        "left",
        &["left"],
        &["lost", "fin-retransmitted"],
    ),
    ("rst-abort", "three-way", "rst", "left", &[], &[]),
    ("refused", "refused", "rst", "right", &[], &[]),
];

#[test]
fn every_demo_scenario_is_classified_and_follows_the_state_log() {
    for (sc, open, close, first, tw, anomalies) in EXPECT {
        for v6 in [false, true] {
            let extra: &[&str] = if v6 { &["--ipv6"] } else { &[] };
            let (pcap, log) = demo(sc, extra);
            let conns = trace_json(&pcap, &[]);
            assert_eq!(conns.len(), 1, "{sc}");
            let c = &conns[0];
            assert_eq!(c["open"], open, "{sc}");
            assert_eq!(c["close"], close, "{sc}");
            assert_eq!(c["first_closer"], first, "{sc}");
            let got_tw: Vec<&str> = c["time_wait"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(got_tw, tw, "{sc}");
            let kinds: Vec<&str> = c["anomalies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["kind"].as_str().unwrap())
                .collect();
            assert_eq!(kinds, anomalies, "{sc}");
            // The client is on the left.
            let client = if v6 {
                "[fd00::1]:40000"
            } else {
                "10.0.0.1:40000"
            };
            assert_eq!(c["left"], client, "{sc}");
            for (side, who) in [("left", "client"), ("right", "server")] {
                let want = log_path(&log, who);
                let want = if want.is_empty() {
                    vec!["CLOSED".to_string()]
                } else {
                    want
                };
                assert_eq!(inferred_path(c, side), want, "{sc} {who}");
            }
            // The demo's link is symmetric: the capture is on neither host.
            assert_eq!(c["vantage"]["side"], Value::Null, "{sc}");
            // Segments in the JSON are the pcap's TCP packets, in order.
            let mut r = PcapReader::new(std::fs::File::open(&pcap).unwrap()).unwrap();
            let mut n = 0;
            while let Some(p) = r.next_packet() {
                p.unwrap();
                n += 1;
            }
            assert_eq!(c["segments"].as_array().unwrap().len(), n, "{sc}");
        }
    }
}

/// Frames of `pcap` (LINKTYPE_RAW) with their timestamps.
fn raw_frames(pcap: &Path) -> Vec<(Duration, Vec<u8>)> {
    let mut r = PcapReader::new(std::fs::File::open(pcap).unwrap()).unwrap();
    let mut v = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.unwrap();
        v.push((p.timestamp, p.data.into_owned()));
    }
    v
}

fn ethertype(ip: &[u8]) -> [u8; 2] {
    if ip[0] >> 4 == 6 {
        [0x86, 0xdd]
    } else {
        [0x08, 0x00]
    }
}

/// The IP packet wrapped in a link-layer header of `link`.
fn wrap(link: DataLink, ip: &[u8]) -> Vec<u8> {
    let et = ethertype(ip);
    let mut f = Vec::new();
    match link {
        DataLink::ETHERNET => {
            f.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
            // One 802.1Q tag (VLAN 7), then the type.
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
            f.extend_from_slice(&et);
        }
        DataLink::LINUX_SLL => {
            f.extend_from_slice(&[0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
            f.extend_from_slice(&et);
        }
        DataLink::LINUX_SLL2 => {
            f.extend_from_slice(&et);
            f.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
        }
        _ => {}
    }
    f.extend_from_slice(ip);
    // Ethernet pads short frames to 60 bytes: the reader must go by the IP length.
    if link == DataLink::ETHERNET && f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

fn write_pcap(path: &Path, link: DataLink, nanos: bool, frames: &[(Duration, Vec<u8>)]) {
    let header = PcapHeader {
        datalink: link,
        ts_resolution: if nanos {
            TsResolution::NanoSecond
        } else {
            TsResolution::MicroSecond
        },
        ..Default::default()
    };
    let mut w = PcapWriter::with_header(std::fs::File::create(path).unwrap(), header).unwrap();
    for (t, ip) in frames {
        let f = wrap(link, ip);
        w.write_packet(&PcapPacket::new(*t, f.len() as u32, &f))
            .unwrap();
    }
}

/// pcapng with nanosecond timestamps (if_tsresol 9) and a second, unused interface.
fn write_pcapng(path: &Path, link: DataLink, frames: &[(Duration, Vec<u8>)]) {
    let mut w = PcapNgWriter::new(std::fs::File::create(path).unwrap()).unwrap();
    let mut idb = InterfaceDescriptionBlock::new(DataLink::ETHERNET, 65535);
    w.write_pcapng_block(idb.clone()).unwrap();
    idb.linktype = link;
    idb.options = vec![InterfaceDescriptionOption::IfTsResol(9)];
    w.write_pcapng_block(idb).unwrap();
    for (t, ip) in frames {
        let f = wrap(link, ip);
        let epb = EnhancedPacketBlock {
            interface_id: 1,
            // pcap-file writes this Duration's nanoseconds as the raw timestamp, which
            // is right for if_tsresol 9.
            timestamp: *t,
            original_len: f.len() as u32,
            data: Cow::Owned(f),
            options: vec![],
        };
        w.write_pcapng_block(epb).unwrap();
    }
}

/// The JSON minus nothing: the same capture in another container or link type must
/// give the same answer, timestamps included.
#[test]
fn pcapng_and_link_types_give_the_same_answer() {
    for (sc, v6) in [("simultaneous-close", false), ("lost-final-ack", true)] {
        let extra: &[&str] = if v6 { &["--ipv6"] } else { &[] };
        let (pcap, _) = demo(sc, extra);
        let want = trace_json(&pcap, &[]);
        let frames = raw_frames(&pcap);
        for link in [
            DataLink::RAW,
            DataLink::ETHERNET,
            DataLink::LINUX_SLL,
            DataLink::LINUX_SLL2,
        ] {
            let p = tmp(&format!("{sc}-{link:?}.pcap"));
            write_pcap(&p, link, link == DataLink::LINUX_SLL, &frames);
            assert_eq!(trace_json(&p, &[]), want, "{sc} pcap {link:?}");
            let p = tmp(&format!("{sc}-{link:?}.pcapng"));
            write_pcapng(&p, link, &frames);
            assert_eq!(trace_json(&p, &[]), want, "{sc} pcapng {link:?}");
            let text = seqack(&["trace", s(&p), "--no-color"]);
            let text = String::from_utf8_lossy(&text.stdout).into_owned();
            assert!(text.contains(": pcapng (link type "), "{text}");
        }
        // tshark's own pcapng, when tshark is installed.
        if Command::new("tshark").arg("--version").output().is_ok() {
            let p = tmp(&format!("{sc}-tshark.pcapng"));
            let st = Command::new("tshark")
                .args(["-r", s(&pcap), "-F", "pcapng", "-w", s(&p)])
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(st.success());
            assert_eq!(trace_json(&p, &[]), want, "{sc} tshark pcapng");
        } else {
            println!("tshark not installed: its pcapng not checked");
        }
    }
}

/// Several captures merged into one: lost-final-ack (IPv4), half-close (IPv6), then
/// active-close on lost-final-ack's 4-tuple one second later (reuse within 2MSL).
fn merged() -> PathBuf {
    let (a, _) = demo("lost-final-ack", &[]);
    let (b, _) = demo("half-close", &["--ipv6"]);
    let (c, _) = demo("active-close", &[]);
    let mut frames = raw_frames(&a);
    frames.extend(raw_frames(&b));
    let end = frames.iter().map(|f| f.0).max().unwrap();
    for (t, p) in raw_frames(&c) {
        frames.push((end + Duration::from_secs(1) + t, p));
    }
    frames.sort_by_key(|f| f.0);
    let p = tmp("merged.pcap");
    write_pcap(&p, DataLink::RAW, false, &frames);
    p
}

#[test]
fn several_connections_filters_svg_and_reuse() {
    let p = merged();
    let all = trace_json(&p, &[]);
    assert_eq!(all.len(), 3);
    let idx: Vec<u64> = all.iter().map(|c| c["index"].as_u64().unwrap()).collect();
    assert_eq!(idx, [1, 2, 3]);
    assert_eq!(all[2]["reuses"], 1);
    let kinds: Vec<&str> = all[2]["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"short-time-wait"), "{kinds:?}");
    assert_eq!(all[1]["close"], "half-close");
    // --conn by index, port, address, endpoint; repeatable.
    let pick = |f: &[&str]| -> Vec<u64> {
        let mut args = Vec::new();
        for x in f {
            args.push("--conn");
            args.push(*x);
        }
        trace_json(&p, &args)
            .iter()
            .map(|c| c["index"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(pick(&["#2"]), [2]);
    assert_eq!(pick(&["80"]), [1, 2, 3]);
    assert_eq!(pick(&["fd00::2"]), [2]);
    assert_eq!(pick(&["[fd00::1]:40000"]), [2]);
    assert_eq!(pick(&["10.0.0.2:80"]), [1, 3]);
    assert_eq!(pick(&["#1", "#3"]), [1, 3]);
    assert_eq!(pick(&["81"]), Vec::<u64>::new());
    let bad = seqack(&["trace", s(&p), "--conn", "nonsense"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not #N"));
    // --svg: one file per connection when several are shown.
    let svg = tmp("ladder.svg");
    let out = seqack(&["trace", s(&p), "--svg", s(&svg), "--no-color"]);
    assert!(out.status.success());
    for n in 1..=3 {
        let f = svg.with_file_name(format!("ladder-{n}.svg"));
        let body = std::fs::read_to_string(&f).expect("numbered SVG");
        assert!(body.starts_with("<svg ") && body.trim_end().ends_with("</svg>"));
        assert_eq!(
            body.matches(r#"<line class="seg""#).count(),
            all[n - 1]["segments"].as_array().unwrap().len()
        );
    }
    let one = tmp("one.svg");
    let out = seqack(&["trace", s(&p), "--conn", "#1", "--svg", s(&one)]);
    assert!(out.status.success());
    let body = std::fs::read_to_string(&one).unwrap();
    assert!(
        body.contains("lost (inferred)"),
        "the inferred loss is drawn"
    );
    // The text output: a ladder and a summary per connection.
    let text = String::from_utf8(seqack(&["trace", s(&p), "--no-color"]).stdout).unwrap();
    assert_eq!(text.matches("summary of connection #").count(), 3);
    assert!(text.contains("lost final ACK (inferred)"), "{text}");
    assert!(!text.contains('\x1b'));
}

#[test]
fn bad_input_is_a_clear_error() {
    let missing = tmp("missing.pcap");
    let out = seqack(&["trace", s(&missing)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
    let junk = tmp("junk.pcap");
    std::fs::write(&junk, b"this is not a capture at all").unwrap();
    let out = seqack(&["trace", s(&junk)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a pcap or pcapng file"));
    // A capture cut in the middle of a record: what came before is read.
    let (pcap, _) = demo("active-close", &[]);
    let mut bytes = std::fs::read(&pcap).unwrap();
    bytes.truncate(bytes.len() - 7);
    let cut = tmp("cut.pcap");
    std::fs::write(&cut, &bytes).unwrap();
    let out = seqack(&["trace", s(&cut), "--json"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cut short"));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["segments"].as_array().unwrap().len(), 10);
    // Every prefix of a capture and every corrupted byte: an answer or an error, never a
    // panic.
    let whole = std::fs::read(&pcap).unwrap();
    let f = tmp("fuzz.pcap");
    for (k, len) in (0..whole.len()).step_by(37).enumerate() {
        let mut b = whole[..len].to_vec();
        if k % 2 == 1 && len > 40 {
            b[len / 2] ^= 0xa5;
        }
        std::fs::write(&f, &b).unwrap();
        let out = seqack(&["trace", s(&f), "--json"]);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "prefix {len}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
}

/// Runs `cmd` for at most `limit`, killing it past that; returns its output.
fn bounded(mut cmd: Command, limit: Duration) -> Option<Output> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let start = Instant::now();
    loop {
        if child.try_wait().ok()?.is_some() {
            return child.wait_with_output().ok();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn html_page_opens_in_headless_chromium() {
    let p = merged();
    let html = tmp("trace.html");
    let out = seqack(&["trace", s(&p), "--html", s(&html), "--no-color"]);
    assert!(out.status.success());
    let page = std::fs::read_to_string(&html).unwrap();
    // Self-contained: no external scripts, styles, images or links.
    for bad in ["src=", "href=\"http", "@import", "url(http", "<link"] {
        assert!(!page.contains(bad), "{bad} in the page");
    }
    assert_eq!(page.matches("<svg ").count(), 3);
    assert_eq!(page.matches("<section id=\"conn-").count(), 3);
    assert!(page.contains("id=\"filter\""));
    let Some(chromium) = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok())
    else {
        println!("SKIP: chromium is not installed, the page was not opened in a browser");
        return;
    };
    let url = format!("file://{}", html.display());
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1280,2000",
    ];
    let mut cmd = Command::new(chromium);
    cmd.args(common).arg("--dump-dom").arg(&url);
    let out = bounded(cmd, Duration::from_secs(90)).expect("chromium --dump-dom in time");
    let dom = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    let console: Vec<&str> = err.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:?}");
    assert!(!err.contains("Uncaught"), "{err}");
    // The script ran and built the table: one row per connection.
    assert!(
        dom.contains("data-ready=\"3\""),
        "script did not finish:\n{dom}"
    );
    assert_eq!(dom.matches("<tr id=\"row-").count(), 3, "{dom}");
    assert!(dom.contains("3 of 3 connections"));
    assert!(dom.contains("short-time-wait"));
    // A screenshot, kept as an artefact.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("test-artefacts");
    std::fs::create_dir_all(&dir).unwrap();
    let shot = dir.join("trace-html.png");
    let _ = std::fs::remove_file(&shot);
    let mut cmd = Command::new(chromium);
    cmd.args(common)
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url);
    let out = bounded(cmd, Duration::from_secs(90)).expect("chromium --screenshot in time");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.lines().any(|l| l.contains(":CONSOLE")), "{err}");
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    println!("screenshot: {}", shot.display());
}
