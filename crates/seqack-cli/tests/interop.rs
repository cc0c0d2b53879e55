//! seqack against the Linux kernel's TCP over a TUN device, through `seqack serve` and
//! `seqack connect` exactly as a user runs them. Each test makes its own network
//! namespace (tests/interop/lab.rs) with the TUN device and every address inside it and
//! deletes it at the end; the kernel's side is tests/interop/peer.py, which reports the
//! kernel's own TCP states (TCP_INFO), and `ss -tan` shows the states after close.
//! Without root every test prints why it is skipped and passes.
//!
//! Every behaviour is checked in both directions: kernel client with seqack server,
//! and seqack client with kernel server.

#[path = "interop/lab.rs"]
mod lab;

use lab::*;
use pcap_file::pcap::PcapReader;
use seqack::wire::tcp::Flags;
use seqack::wire::{ip, tcp};
use serde_json::Value;
use std::net::IpAddr;
use std::time::Duration;

const MB: u64 = 1_000_000;
const LONG: Duration = Duration::from_secs(240);
const SHORT: Duration = Duration::from_secs(30);

/// Command-line words from one string (for arguments without spaces).
fn args(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

fn states(v: &[(String, String)]) -> Vec<&str> {
    v.iter().map(|(s, _)| s.as_str()).collect()
}

/// Stops `seqack serve` with SIGINT and checks that it exits cleanly with its stats.
fn stop_server(lab: &Lab, srv: Proc) -> Value {
    srv.interrupt();
    let done = srv.wait(SHORT);
    assert!(
        done.status.success(),
        "seqack serve exited with {}: {}",
        done.status,
        done.stderr
    );
    let stats = std::fs::read_to_string(lab.dir.join("stats.json")).expect("--stats written");
    serde_json::from_str(&stats).unwrap()
}

/// Runs `seqack connect` to completion and checks its exit status.
fn run_connect(lab: &mut Lab, to: &str, args: &[&str], ok: bool) -> Done {
    let done = lab.connect(to, args).wait(LONG);
    assert_eq!(
        done.status.success(),
        ok,
        "seqack connect exit {}\nstdout: {}\nstderr: {}",
        done.status,
        done.stdout,
        done.stderr
    );
    done
}

/// One TCP segment of a capture.
#[derive(Debug, Clone)]
struct Seg {
    t: Duration,
    src: IpAddr,
    flags: Flags,
    seq: u32,
    ack: u32,
    len: usize,
}

impl Seg {
    fn has(&self, f: Flags) -> bool {
        self.flags.contains(f)
    }
}

/// `seqack trace --json` of a capture `seqack serve` or `seqack connect` wrote: the
/// capture feeds straight into it. One object per connection.
fn trace(lab: &Lab, pcap: &str) -> Vec<Value> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_seqack"))
        .args(["trace", "--json", &lab.path(pcap)])
        .output()
        .expect("run seqack trace");
    assert!(
        out.status.success(),
        "seqack trace: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect()
}

/// The one connection of a capture, as `seqack trace` classified it: (open, close,
/// first closer's address, the addresses that held TIME_WAIT).
fn traced(lab: &Lab, pcap: &str) -> (String, String, String, Vec<String>) {
    let conns = trace(lab, pcap);
    assert_eq!(conns.len(), 1, "{conns:#?}");
    let c = &conns[0];
    let side = |v: &Value| {
        c[v.as_str().unwrap_or("none")]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let tw = c["time_wait"]
        .as_array()
        .map(|a| a.iter().map(side).collect())
        .unwrap_or_default();
    (
        c["open"].as_str().unwrap_or("").to_string(),
        c["close"].as_str().unwrap_or("").to_string(),
        side(&c["first_closer"]),
        tw,
    )
}

/// Every TCP segment of a pcap file written by seqack.
fn segments(lab: &Lab, file: &str) -> Vec<Seg> {
    let data = std::fs::read(lab.dir.join(file)).unwrap();
    let mut r = PcapReader::new(&data[..]).unwrap();
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.unwrap();
        let Ok(ipp) = ip::parse(&p.data) else {
            continue;
        };
        if ipp.protocol != 6 {
            continue;
        }
        let s = tcp::parse(ipp.payload, ipp.src, ipp.dst, true).expect("valid TCP segment");
        out.push(Seg {
            t: p.timestamp,
            src: ipp.src,
            flags: s.flags,
            seq: s.seq.0,
            ack: s.ack.0,
            len: s.payload.len(),
        });
    }
    out
}

fn kernel_ip() -> IpAddr {
    KERNEL.parse().unwrap()
}

fn seqack_ip() -> IpAddr {
    SEQACK.parse().unwrap()
}

/// The segments from the first FIN on, as (sender is seqack, FIN, ACK-only, data).
fn close_phase(segs: &[Seg]) -> Vec<&Seg> {
    let first = segs.iter().position(|s| s.has(Flags::FIN)).expect("a FIN");
    segs[first..].iter().collect()
}

// ----- handshake and 100 MB each way ------------------------------------------------

#[test]
fn bulk_100mb_each_way_kernel_client_seqack_server() {
    let Some(mut lab) = lab("bulk-ks", &[]) else {
        return;
    };
    let srv = lab.serve(7, "echo", &["--backlog", "16"]);
    let n = (100 * MB).to_string();
    let r = lab
        .peer(
            "client",
            &args(&format!(
                "client 10.0.0.2 7 --send {n} --shut-wr --read eof"
            )),
        )
        .wait(LONG)
        .json();
    assert_eq!(r["error"], Value::Null, "{r}");
    assert_eq!(r["states"]["connected"], "ESTABLISHED");
    assert_eq!(r["received"], 100 * MB);
    assert_eq!(
        r["sha256"],
        pattern_sha256(100 * MB),
        "the echo differs from what was sent"
    );
    // The kernel closed first (shutdown then FIN from seqack): its socket is in
    // TIME_WAIT, seqack's went CLOSE_WAIT -> LAST_ACK -> CLOSED.
    let local = r["local"].as_str().unwrap();
    assert_eq!(
        lab.kernel_state(local, "10.0.0.2:7").as_deref(),
        Some("TIME-WAIT")
    );
    let st = lab.seqack_states("serve.jsonl", KERNEL);
    assert_eq!(
        states(&st),
        args("SYN_RECEIVED ESTABLISHED CLOSE_WAIT LAST_ACK CLOSED")
    );
    let stats = stop_server(&lab, srv);
    assert_eq!(stats["TcpPassiveOpens"], 1);
    assert_eq!(stats["TcpEstabResets"], 0);
}

#[test]
fn bulk_100mb_each_way_seqack_client_kernel_server() {
    let Some(mut lab) = lab("bulk-sk", &[]) else {
        return;
    };
    let n = (100 * MB).to_string();
    let srv = lab.peer_server(9000, &args(&format!("--send {n} --read eof")));
    let done = run_connect(
        &mut lab,
        "10.0.0.1:9000",
        &args(&format!("--send {n} --expect {n}")),
        true,
    );
    assert_eq!(
        connect_received(&done.stdout),
        (100 * MB, pattern_sha256(100 * MB))
    );
    let r = srv.wait(SHORT).json();
    assert_eq!(r["error"], Value::Null, "{r}");
    assert_eq!(r["received"], 100 * MB);
    assert_eq!(r["sha256"], pattern_sha256(100 * MB));
    // seqack closed first: the kernel saw its FIN in ESTABLISHED.
    assert_eq!(r["states"]["after_eof"], "CLOSE_WAIT");
    let st = lab.seqack_states("connect.jsonl", KERNEL);
    assert_eq!(st.first().unwrap().0, "SYN_SENT");
    assert!(states(&st).ends_with(&["TIME_WAIT", "CLOSED"]), "{st:?}");
    assert!(st.iter().any(|(s, _)| s == "FIN_WAIT_1"));
}

// ----- the close variants ------------------------------------------------------------

#[test]
fn active_close_by_seqack_server() {
    let Some(mut lab) = lab("active-s", &[]) else {
        return;
    };
    let srv = lab.serve(19, "chargen:100000", &[]);
    let r = lab
        .peer(
            "client",
            &args("client 10.0.0.2 19 --read eof --sleep-before-close 0.2"),
        )
        .wait(SHORT)
        .json();
    assert_eq!(r["received"], 100_000);
    assert_eq!(r["sha256"], pattern_sha256(100_000));
    assert_eq!(r["states"]["after_eof"], "CLOSE_WAIT");
    assert_eq!(r["states"]["before_close"], "CLOSE_WAIT");
    stop_server(&lab, srv); // waits for TIME_WAIT to end
    let st = lab.seqack_states("serve.jsonl", KERNEL);
    assert_eq!(
        states(&st),
        args("SYN_RECEIVED ESTABLISHED FIN_WAIT_1 FIN_WAIT_2 TIME_WAIT CLOSED")
    );
    assert_eq!(st[5].1, "timer 2MSL");
}

#[test]
fn active_close_by_seqack_client() {
    let Some(mut lab) = lab("active-c", &[]) else {
        return;
    };
    let srv = lab.peer_server(9001, &args("--read eof --sleep-before-close 0.2"));
    run_connect(
        &mut lab,
        "10.0.0.1:9001",
        &args("--send 5000 --close active"),
        true,
    );
    let r = srv.wait(SHORT).json();
    assert_eq!(r["received"], 5000);
    assert_eq!(r["states"]["after_eof"], "CLOSE_WAIT");
    let st = lab.seqack_states("connect.jsonl", KERNEL);
    assert_eq!(
        states(&st),
        args("SYN_SENT ESTABLISHED FIN_WAIT_1 FIN_WAIT_2 TIME_WAIT CLOSED")
    );
}

#[test]
fn passive_close_by_seqack_server() {
    let Some(mut lab) = lab("passive-s", &[]) else {
        return;
    };
    let srv = lab.serve(9, "discard", &[]);
    let r = lab
        .peer("client", &args("client 10.0.0.2 9 --send 3000 --read none"))
        .wait(SHORT)
        .json();
    assert_eq!(r["error"], Value::Null);
    let local = r["local"].as_str().unwrap();
    assert_eq!(
        lab.kernel_state(local, "10.0.0.2:9").as_deref(),
        Some("TIME-WAIT")
    );
    let st = lab.seqack_states("serve.jsonl", KERNEL);
    assert_eq!(
        states(&st),
        args("SYN_RECEIVED ESTABLISHED CLOSE_WAIT LAST_ACK CLOSED")
    );
    stop_server(&lab, srv);
}

#[test]
fn passive_close_by_seqack_client() {
    let Some(mut lab) = lab("passive-c", &[]) else {
        return;
    };
    let srv = lab.peer_server(9002, &args("--send 70000 --read none"));
    let done = run_connect(&mut lab, "10.0.0.1:9002", &["--close", "passive"], true);
    assert_eq!(
        connect_received(&done.stdout),
        (70_000, pattern_sha256(70_000))
    );
    let r = srv.wait(SHORT).json();
    let (local, peer) = (r["local"].as_str().unwrap(), r["peer"].as_str().unwrap());
    assert_eq!(lab.kernel_state(local, peer).as_deref(), Some("TIME-WAIT"));
    let st = lab.seqack_states("connect.jsonl", KERNEL);
    assert_eq!(
        states(&st),
        args("SYN_SENT ESTABLISHED CLOSE_WAIT LAST_ACK CLOSED")
    );
}

/// The three-way close: the passive side's FIN carries the ACK of the active side's
/// FIN. Checked on the wire: the first segment that acknowledges the first FIN is the
/// other side's FIN (ACKs of earlier data may still cross), and one ACK answers it.
fn assert_three_way(segs: &[Seg], first_fin_from: IpAddr) {
    let c = close_phase(segs);
    let summary: Vec<String> = c
        .iter()
        .map(|s| {
            format!(
                "{} {:?} seq {} ack {} len {}",
                s.src, s.flags, s.seq, s.ack, s.len
            )
        })
        .collect();
    assert_eq!(c[0].src, first_fin_from);
    let fin_end = c[0].seq.wrapping_add(c[0].len as u32 + 1);
    let answer = c
        .iter()
        .find(|s| s.src != first_fin_from && s.ack == fin_end)
        .unwrap_or_else(|| panic!("the first FIN was never acknowledged: {summary:#?}"));
    assert!(
        answer.has(Flags::FIN),
        "the FIN was ACKed alone (four-way close): {summary:#?}"
    );
    let their_end = answer.seq.wrapping_add(answer.len as u32 + 1);
    let last: Vec<_> = c
        .iter()
        .filter(|s| s.src == first_fin_from && s.ack == their_end)
        .collect();
    assert_eq!(last.len(), 1, "{summary:#?}");
    assert!(!last[0].has(Flags::FIN));
}

#[test]
fn three_way_close_kernel_client_seqack_server() {
    let Some(mut lab) = lab_alone("3way-ks", &[]) else {
        return;
    };
    // seqack closes first (chargen); the kernel client closes as soon as it reads EOF,
    // inside its delayed-ACK time, so its FIN carries the ACK.
    let srv = lab.serve(19, "chargen:1000", &[]);
    let r = lab
        .peer("client", &args("client 10.0.0.2 19 --read eof"))
        .wait(SHORT)
        .json();
    assert_eq!(r["received"], 1000);
    let st = lab.seqack_states("serve.jsonl", KERNEL);
    assert_eq!(
        st.iter()
            .find(|(s, _)| s == "TIME_WAIT")
            .map(|(_, w)| w.as_str()),
        Some("rcv FIN+ACK of FIN"),
        "{st:?}"
    );
    assert!(!states(&st).contains(&"FIN_WAIT_2"), "{st:?}");
    stop_server(&lab, srv);
    assert_three_way(&segments(&lab, "serve.pcap"), seqack_ip());
    // seqack trace reads serve's capture and tells the same story.
    let (open, close, first, tw) = traced(&lab, "serve.pcap");
    assert_eq!((open.as_str(), close.as_str()), ("three-way", "three-way"));
    assert!(first.starts_with("10.0.0.2:"), "{first}");
    assert_eq!(tw.len(), 1);
    assert!(tw[0].starts_with("10.0.0.2:"), "{tw:?}");
}

#[test]
fn three_way_close_seqack_client_kernel_server() {
    let Some(mut lab) = lab_alone("3way-sk", &[]) else {
        return;
    };
    let srv = lab.peer_server(9003, &["--read", "eof"]);
    run_connect(
        &mut lab,
        "10.0.0.1:9003",
        &args("--send 1000 --close active"),
        true,
    );
    srv.wait(SHORT);
    let st = lab.seqack_states("connect.jsonl", KERNEL);
    assert_eq!(
        st.iter()
            .find(|(s, _)| s == "TIME_WAIT")
            .map(|(_, w)| w.as_str()),
        Some("rcv FIN+ACK of FIN"),
        "{st:?}"
    );
    assert_three_way(&segments(&lab, "connect.pcap"), seqack_ip());
}

#[test]
fn three_way_close_seqack_server_merges_its_fin_with_the_ack() {
    let Some(mut lab) = lab_alone("3way-ss", &[]) else {
        return;
    };
    // The kernel closes first; seqack delays the ACK of that FIN (as Linux does), the
    // discard app closes on EOF within the delay, and its FIN carries the ACK.
    let srv = lab.serve(9, "discard", &[]);
    let r = lab
        .peer(
            "client",
            &args("client 10.0.0.2 9 --send 1000 --read none --wait-acked"),
        )
        .wait(SHORT)
        .json();
    assert_eq!(r["error"], Value::Null);
    stop_server(&lab, srv);
    let st = lab.seqack_states("serve.jsonl", KERNEL);
    assert_eq!(
        states(&st),
        args("SYN_RECEIVED ESTABLISHED CLOSE_WAIT LAST_ACK CLOSED")
    );
    assert_three_way(&segments(&lab, "serve.pcap"), kernel_ip());
}

#[test]
fn three_way_close_seqack_client_merges_its_fin_with_the_ack() {
    let Some(mut lab) = lab_alone("3way-sc", &[]) else {
        return;
    };
    let srv = lab.peer_server(9012, &args("--send 1000 --read none --wait-acked"));
    run_connect(&mut lab, "10.0.0.1:9012", &["--close", "passive"], true);
    srv.wait(SHORT);
    let st = lab.seqack_states("connect.jsonl", KERNEL);
    assert_eq!(
        states(&st),
        args("SYN_SENT ESTABLISHED CLOSE_WAIT LAST_ACK CLOSED")
    );
    assert_three_way(&segments(&lab, "connect.pcap"), kernel_ip());
}

/// Both FINs in flight at once needs a slow link: seqack holds every packet from the
/// kernel 200 ms (`--rx-delay`, the same on the wire as netem delaying the kernel's
/// egress, which this machine's kernel lacks), so both sides go FIN_WAIT_1 -> CLOSING
/// -> TIME_WAIT.
const SLOW: [&str; 2] = ["--rx-delay", "200"];

fn assert_simultaneous(lab: &Lab, log: &str) {
    let st = lab.seqack_states(log, KERNEL);
    let s = states(&st);
    assert!(
        s.ends_with(&args("FIN_WAIT_1 CLOSING TIME_WAIT CLOSED")),
        "seqack did not close simultaneously: {st:?}"
    );
}

#[test]
fn simultaneous_close_kernel_client_seqack_server() {
    let Some(mut lab) = lab("simul-ks", &[]) else {
        return;
    };
    // seqack's server closes when the handshake's last ACK arrives (200 ms after the
    // kernel's connect() returned); the kernel closes 100 ms after connect(). Each FIN
    // leaves before the other arrives.
    let srv = lab.serve(19, "chargen:0", &SLOW);
    let r = lab
        .peer(
            "client",
            &args("client 10.0.0.2 19 --read none --sleep-before-close 0.1 --linger-after 1.0"),
        )
        .wait(SHORT)
        .json();
    assert_eq!(r["error"], Value::Null);
    // The kernel went through CLOSING too: it holds TIME_WAIT although the peer did.
    let local = r["local"].as_str().unwrap();
    assert_eq!(
        lab.kernel_state(local, "10.0.0.2:19").as_deref(),
        Some("TIME-WAIT")
    );
    stop_server(&lab, srv); // waits for seqack's TIME_WAIT to end
    assert_simultaneous(&lab, "serve.jsonl");
    let (_, close, _, tw) = traced(&lab, "serve.pcap");
    assert_eq!(close, "simultaneous");
    assert_eq!(tw.len(), 2, "both ends hold TIME_WAIT: {tw:?}");
}

#[test]
fn simultaneous_close_seqack_client_kernel_server() {
    let Some(mut lab) = lab("simul-sk", &[]) else {
        return;
    };
    // The kernel sends one byte and closes 100 ms later; seqack closes when the byte
    // arrives (200 ms after it left), before the kernel's FIN (300 ms) arrives.
    let srv = lab.peer_server(
        9004,
        &args("--send 1 --read none --sleep-before-close 0.1 --linger-after 1.0"),
    );
    run_connect(
        &mut lab,
        "10.0.0.1:9004",
        &["--expect", "1", "--close", "active", SLOW[0], SLOW[1]],
        true,
    );
    let r = srv.wait(SHORT).json();
    assert_eq!(r["error"], Value::Null);
    assert_simultaneous(&lab, "connect.jsonl");
    let (local, peer) = (r["local"].as_str().unwrap(), r["peer"].as_str().unwrap());
    assert_eq!(lab.kernel_state(local, peer).as_deref(), Some("TIME-WAIT"));
}

// ----- half-close ---------------------------------------------------------------------

/// Data segments sent by `from` after the first FIN of the other side.
fn data_after_peer_fin(segs: &[Seg], from: IpAddr) -> usize {
    let Some(fin) = segs.iter().position(|s| s.src != from && s.has(Flags::FIN)) else {
        return 0;
    };
    segs[fin..]
        .iter()
        .filter(|s| s.src == from && s.len > 0)
        .count()
}

#[test]
fn half_close_by_kernel_client_seqack_keeps_sending() {
    let Some(mut lab) = lab("half-ks", &[]) else {
        return;
    };
    let srv = lab.serve(7, "echo", &[]);
    let n = (2 * MB).to_string();
    let r = lab
        .peer(
            "client",
            &args(&format!(
                "client 10.0.0.2 7 --send {n} --shut-wr --read eof"
            )),
        )
        .wait(SHORT)
        .json();
    assert_eq!(r["received"], 2 * MB);
    assert_eq!(r["sha256"], pattern_sha256(2 * MB));
    assert!(r["received_after_shut_wr"].as_u64().unwrap() > 0, "{r}");
    let st = lab.seqack_states("serve.jsonl", KERNEL);
    assert_eq!(
        states(&st),
        args("SYN_RECEIVED ESTABLISHED CLOSE_WAIT LAST_ACK CLOSED")
    );
    stop_server(&lab, srv);
    let segs = segments(&lab, "serve.pcap");
    assert!(
        data_after_peer_fin(&segs, seqack_ip()) > 0,
        "seqack sent nothing in CLOSE_WAIT"
    );
    let (_, close, first, _) = traced(&lab, "serve.pcap");
    assert_eq!(close, "half-close");
    assert!(
        first.starts_with("10.0.0.1:"),
        "the kernel closed first: {first}"
    );
}

#[test]
fn half_close_by_seqack_client_kernel_keeps_sending() {
    let Some(mut lab) = lab("half-sk", &[]) else {
        return;
    };
    let srv = lab.peer_server(9005, &args("--read eof --then-send 300000"));
    let done = run_connect(
        &mut lab,
        "10.0.0.1:9005",
        &args("--send 100000 --close half"),
        true,
    );
    assert_eq!(
        connect_received(&done.stdout),
        (300_000, pattern_sha256(300_000))
    );
    let r = srv.wait(SHORT).json();
    assert_eq!(r["received"], 100_000);
    assert_eq!(r["sha256"], pattern_sha256(100_000));
    assert_eq!(r["states"]["after_eof"], "CLOSE_WAIT");
    let st = lab.seqack_states("connect.jsonl", KERNEL);
    assert_eq!(
        states(&st),
        args("SYN_SENT ESTABLISHED FIN_WAIT_1 FIN_WAIT_2 TIME_WAIT CLOSED")
    );
    assert_eq!(st[2].1, "shutdown(WR)");
    let segs = segments(&lab, "connect.pcap");
    assert!(
        data_after_peer_fin(&segs, kernel_ip()) > 10,
        "the kernel's data did not follow seqack's FIN"
    );
}

// ----- RST and refused ---------------------------------------------------------------

#[test]
fn rst_abort_by_seqack_client() {
    let Some(mut lab) = lab("rst-sk", &[]) else {
        return;
    };
    // The kernel's server greets with 10 bytes once it has accepted, and seqack
    // resets only after reading them: an RST that beat accept() would leave the
    // server a socket already closed (getpeername: ENOTCONN), not a reset to report.
    let srv = lab.peer_server(9006, &["--send", "10", "--read", "eof"]);
    run_connect(
        &mut lab,
        "10.0.0.1:9006",
        &args("--send 1000 --expect 10 --close rst"),
        true,
    );
    let r = srv.wait(SHORT).json();
    assert_eq!(r["error"], "ECONNRESET", "{r}");
    let st = lab.seqack_states("connect.jsonl", KERNEL);
    assert_eq!(
        st.last().unwrap(),
        &("CLOSED".to_string(), "abort: RST sent".to_string())
    );
    assert!(
        lab.ss().iter().all(|(_, l, _)| !l.ends_with(":9006")),
        "{:?}",
        lab.ss()
    );
}

#[test]
fn rst_abort_by_kernel_client() {
    let Some(mut lab) = lab("rst-ks", &[]) else {
        return;
    };
    let srv = lab.serve(9, "discard", &[]);
    let r = lab
        .peer(
            "client",
            &args("client 10.0.0.2 9 --send 1000 --read none --wait-acked --close rst"),
        )
        .wait(SHORT)
        .json();
    assert_eq!(r["error"], Value::Null);
    let st = lab.seqack_states("serve.jsonl", KERNEL);
    assert_eq!(
        st,
        [
            ("SYN_RECEIVED".into(), "rcv SYN".into()),
            ("ESTABLISHED".into(), "rcv ACK of SYN".into()),
            ("CLOSED".into(), "rcv RST".into())
        ]
    );
    let stats = stop_server(&lab, srv);
    assert_eq!(stats["TcpEstabResets"], 1);
}

#[test]
fn rst_abort_by_kernel_server_is_reported_by_seqack_client() {
    let Some(mut lab) = lab("rst-kc", &[]) else {
        return;
    };
    let srv = lab.peer_server(
        9007,
        &args("--send 500 --read none --wait-acked --sleep-before-close 0.2 --close rst"),
    );
    let done = run_connect(&mut lab, "10.0.0.1:9007", &["--close", "passive"], false);
    assert!(done.stderr.contains("reset"), "{}", done.stderr);
    assert_eq!(connect_received(&done.stdout).0, 500);
    srv.wait(SHORT);
    let st = lab.seqack_states("connect.jsonl", KERNEL);
    assert_eq!(
        st.last().unwrap(),
        &("CLOSED".to_string(), "rcv RST".to_string())
    );
}

#[test]
fn connection_refused_both_ways() {
    let Some(mut lab) = lab("refused", &[]) else {
        return;
    };
    // seqack -> a kernel port nobody listens on.
    let done = run_connect(&mut lab, "10.0.0.1:9999", &[], false);
    assert!(done.stderr.contains("refused"), "{}", done.stderr);
    let st = lab.seqack_states("connect.jsonl", KERNEL);
    assert_eq!(
        st,
        [
            ("SYN_SENT".into(), "connect()".into()),
            ("CLOSED".into(), "rcv RST".into())
        ]
    );
    // The kernel -> a seqack port nobody listens on (seqack serves another one).
    let srv = lab.serve(7, "echo", &[]);
    let r = lab
        .peer("client", &args("client 10.0.0.2 8"))
        .wait(SHORT)
        .json();
    assert_eq!(r["error"], "ECONNREFUSED", "{r}");
    let stats = stop_server(&lab, srv);
    assert_eq!(stats["TcpOutRsts"], 1);
}

// ----- the last ACK lost on the kernel's side ------------------------------------------

/// An nftables rule in the namespace that drops the first pure ACK (a 52-byte
/// IPv4 + TCP-with-timestamps segment) on the kernel's `hook`: output (the kernel's
/// last ACK towards seqack) or input (seqack's last ACK towards the kernel).
fn drop_first_pure_ack(hook: &str) -> String {
    let dir = if hook == "output" {
        "oifname"
    } else {
        "iifname"
    };
    format!(
        "nft add table inet lossy && nft add chain inet lossy c '{{ type filter hook {hook} priority 0; }}' && \
         nft add rule inet lossy c {dir} tun0 'tcp flags == ack' meta length 52 quota until 52 bytes counter drop"
    )
}

fn nft_drops(lab: &Lab) -> u64 {
    let out = lab.sh("nft list table inet lossy");
    let i = out.find("counter packets ").expect("the rule's counter");
    out[i + 16..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// seqack in LAST_ACK loses the kernel's last ACK: it retransmits its FIN on RTO, the
/// kernel's TIME_WAIT ACKs it again, and seqack reaches CLOSED.
fn assert_last_ack_retransmitted(lab: &Lab, log: &str, pcap: &str) {
    assert_eq!(nft_drops(lab), 1, "the kernel's last ACK was not dropped");
    let st = lab.seqack_states(log, KERNEL);
    assert!(
        states(&st).ends_with(&args("CLOSE_WAIT LAST_ACK CLOSED")),
        "{st:?}"
    );
    let segs = segments(lab, pcap);
    let fins: Vec<&Seg> = segs
        .iter()
        .filter(|s| s.src == seqack_ip() && s.has(Flags::FIN))
        .collect();
    assert_eq!(
        fins.len(),
        2,
        "seqack's FIN was not retransmitted exactly once: {fins:?}"
    );
    assert_eq!(fins[0].seq, fins[1].seq);
    assert!(
        fins[1].t - fins[0].t >= Duration::from_millis(190),
        "retransmitted before an RTO"
    );
}

#[test]
fn lost_last_ack_seqack_server_last_ack_retransmits_fin() {
    let Some(mut lab) = lab("lastack-s", &["nft"]) else {
        return;
    };
    let srv = lab.serve(9, "discard", &[]);
    let rule = drop_first_pure_ack("output");
    let r = lab
        .peer(
            "client",
            &[
                "client",
                SEQACK,
                "9",
                "--send",
                "1000",
                "--read",
                "none",
                "--wait-acked",
                "--sleep-before-close",
                "0.1",
                "--cmd-before-close",
                &rule,
                "--linger-after",
                "1.0",
            ],
        )
        .wait(SHORT)
        .json();
    assert_eq!(r["error"], Value::Null);
    stop_server(&lab, srv);
    assert_last_ack_retransmitted(&lab, "serve.jsonl", "serve.pcap");
}

#[test]
fn lost_last_ack_seqack_client_last_ack_retransmits_fin() {
    let Some(mut lab) = lab("lastack-c", &["nft"]) else {
        return;
    };
    let rule = drop_first_pure_ack("output");
    let srv = lab.peer_server(
        9008,
        &[
            "--send",
            "1000",
            "--read",
            "none",
            "--wait-acked",
            "--sleep-before-close",
            "0.1",
            "--cmd-before-close",
            &rule,
            "--linger-after",
            "1.0",
        ],
    );
    run_connect(&mut lab, "10.0.0.1:9008", &["--close", "passive"], true);
    srv.wait(SHORT);
    assert_last_ack_retransmitted(&lab, "connect.jsonl", "connect.pcap");
}

/// seqack in TIME_WAIT: its last ACK is dropped on the way into the kernel, the kernel's
/// LAST_ACK retransmits its FIN, seqack ACKs it again and restarts 2MSL (MSL 1 s here).
fn assert_time_wait_reacked(lab: &Lab, log: &str, pcap: &str) {
    assert_eq!(nft_drops(lab), 1, "seqack's last ACK was not dropped");
    let segs = segments(lab, pcap);
    let fins: Vec<&Seg> = segs
        .iter()
        .filter(|s| s.src == kernel_ip() && s.has(Flags::FIN))
        .collect();
    assert_eq!(
        fins.len(),
        2,
        "the kernel did not retransmit its FIN once: {fins:?}"
    );
    let fin_end = fins[0].seq.wrapping_add(fins[0].len as u32 + 1);
    let acks: Vec<&Seg> = segs
        .iter()
        .filter(|s| s.src == seqack_ip() && !s.has(Flags::FIN) && s.ack == fin_end)
        .collect();
    assert_eq!(acks.len(), 2, "seqack did not ACK both FINs: {acks:?}");
    assert!(acks[1].t >= fins[1].t);
    let log = lab.state_log(log);
    let t = |to: &str| {
        log.iter()
            .find(|v| v["to"] == to && v["remote"].as_str().unwrap().starts_with(KERNEL))
            .map(|v| v["t_us"].as_u64().unwrap())
            .unwrap_or_else(|| panic!("no {to} in {log:?}"))
    };
    let (tw, closed) = (t("TIME_WAIT"), t("CLOSED"));
    let gap = (fins[1].t - fins[0].t).as_micros() as u64;
    // TIME_WAIT lasted 2MSL counted from the retransmitted FIN, not from the first.
    assert!(
        closed - tw >= 2_000_000 + gap * 9 / 10,
        "TIME_WAIT {} us, FINs {gap} us apart",
        closed - tw
    );
}

#[test]
fn lost_last_ack_seqack_client_time_wait_reacks_fin() {
    let Some(mut lab) = lab("tw-c", &["nft"]) else {
        return;
    };
    let rule = drop_first_pure_ack("input");
    let srv = lab.peer_server(
        9009,
        &[
            "--send",
            "1000",
            "--read",
            "eof",
            "--wait-acked",
            "--cmd-before-close",
            &rule,
            "--linger-after",
            "1.0",
        ],
    );
    run_connect(
        &mut lab,
        "10.0.0.1:9009",
        &args("--expect 1000 --close active"),
        true,
    );
    srv.wait(SHORT);
    assert_time_wait_reacked(&lab, "connect.jsonl", "connect.pcap");
}

#[test]
fn lost_last_ack_seqack_server_time_wait_reacks_fin() {
    let Some(mut lab) = lab("tw-s", &["nft"]) else {
        return;
    };
    let srv = lab.serve(19, "chargen:1000", &[]);
    let rule = drop_first_pure_ack("input");
    lab.peer(
        "client",
        &[
            "client",
            SEQACK,
            "19",
            "--read",
            "eof",
            "--wait-acked",
            "--cmd-before-close",
            &rule,
            "--linger-after",
            "1.0",
        ],
    )
    .wait(SHORT);
    stop_server(&lab, srv);
    assert_time_wait_reacked(&lab, "serve.jsonl", "serve.pcap");
}

// ----- a lossy, slow kernel side ------------------------------------------------------

/// 5% loss and 20 ms delay on the kernel's side: `tc netem` where the kernel has it.
/// This project's CI kernel has no sch_netem, and an nftables drop on the kernel's own
/// output is not loss (TCP sees the local drop and just sends again). Then the loss
/// of the kernel's packets and the delay are seqack's `--rx-loss 0.05 --rx-delay 20`
/// (what netem does, seen from the wire), and the kernel also loses 5% of what seqack
/// sends (nftables on its input, which the sender cannot see). Returns the arguments
/// seqack needs.
fn impair_kernel_side(lab: &Lab) -> Vec<&'static str> {
    let netem = lab
        .cmd("tc")
        .args([
            "qdisc", "add", "dev", "tun0", "root", "netem", "loss", "5%", "delay", "20ms",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if netem {
        eprintln!("impairment: tc netem loss 5% delay 20ms");
        return Vec::new();
    }
    lab.sh("nft add table inet lossy && nft add chain inet lossy c '{ type filter hook input priority 0; }' && \
            nft add rule inet lossy c iifname tun0 numgen random mod 100 '<' 5 counter drop");
    eprintln!("impairment: no sch_netem: seqack --rx-loss 0.05 --rx-delay 20, nftables 5% loss on the kernel's input");
    vec!["--rx-loss", "0.05", "--rx-delay", "20"]
}

#[test]
fn lossy_20mb_kernel_client_seqack_server() {
    let Some(mut lab) = lab("lossy-ks", &["nft", "tc"]) else {
        return;
    };
    let extra = impair_kernel_side(&lab);
    let srv = lab.serve(7, "echo", &extra);
    let n = (20 * MB).to_string();
    let r = lab
        .peer(
            "client",
            &args(&format!(
                "client 10.0.0.2 7 --send {n} --shut-wr --read eof"
            )),
        )
        .wait(LONG)
        .json();
    assert_eq!(r["error"], Value::Null, "{r}");
    assert_eq!(r["received"], 20 * MB);
    assert_eq!(r["sha256"], pattern_sha256(20 * MB));
    assert!(
        r["total_retrans"].as_u64().unwrap() > 0,
        "5% loss and the kernel never retransmitted?"
    );
    let stats = stop_server(&lab, srv);
    assert!(
        stats["TcpRetransSegs"].as_u64().unwrap() > 0,
        "5% loss and seqack never retransmitted?"
    );
    let st = lab.seqack_states("serve.jsonl", KERNEL);
    assert!(
        states(&st).ends_with(&args("CLOSE_WAIT LAST_ACK CLOSED")),
        "{st:?}"
    );
}

#[test]
fn lossy_20mb_seqack_client_kernel_server() {
    let Some(mut lab) = lab("lossy-sk", &["nft", "tc"]) else {
        return;
    };
    let mut extra = impair_kernel_side(&lab);
    let n = (20 * MB).to_string();
    let srv = lab.peer_server(9010, &args(&format!("--send {n} --read eof")));
    extra.extend(["--send", &n, "--expect", &n]);
    let done = run_connect(&mut lab, "10.0.0.1:9010", &extra, true);
    assert_eq!(
        connect_received(&done.stdout),
        (20 * MB, pattern_sha256(20 * MB))
    );
    let r = srv.wait(SHORT).json();
    assert_eq!(r["received"], 20 * MB);
    assert_eq!(r["sha256"], pattern_sha256(20 * MB));
    assert!(
        r["total_retrans"].as_u64().unwrap() > 0,
        "5% loss and the kernel never retransmitted?"
    );
    let st = lab.seqack_states("connect.jsonl", KERNEL);
    assert!(states(&st).ends_with(&["TIME_WAIT", "CLOSED"]), "{st:?}");
}

// ----- curl, IPv6, and the capture through tshark --------------------------------------

#[test]
fn curl_fetches_pages_and_the_capture_is_clean_for_tshark() {
    let Some(mut lab) = lab("curl", &["curl", "tshark"]) else {
        return;
    };
    let srv = lab.serve(80, "http", &[]);
    let page = lab.sh("curl -sS --max-time 20 http://10.0.0.2/");
    assert!(page.contains("Served by seqack"), "{page}");
    let sum = lab.sh("curl -sS --max-time 20 http://10.0.0.2/bytes/3MB | sha256sum");
    assert!(sum.starts_with(&pattern_sha256(3 * MB)), "{sum}");
    let code =
        lab.sh("curl -s -o /dev/null -w '%{http_code}' --max-time 20 http://10.0.0.2/nothing");
    assert_eq!(code, "404");
    let stats = stop_server(&lab, srv);
    assert_eq!(stats["TcpPassiveOpens"], 3);
    // Every connection closed with FINs (which side first depends on whether curl
    // read the server's FIN with the last byte), none was reset.
    let log = lab.state_log("serve.jsonl");
    let closed = log
        .iter()
        .filter(|v| v["to"] == "CLOSED" && v["remote"] != "0.0.0.0:0");
    assert_eq!(closed.clone().count(), 3, "{log:#?}");
    assert!(
        closed
            .clone()
            .all(|v| v["why"] == "timer 2MSL" || v["why"] == "rcv ACK of FIN"),
        "{log:#?}"
    );
    let (n, bad) = lab.tshark_check("serve.pcap", SEQACK);
    assert!(n > 100, "only {n} packets captured");
    assert!(
        bad.is_empty(),
        "tshark flags {} packets: {bad:#?}",
        bad.len()
    );
}

#[test]
fn ipv6_transfer_and_close() {
    let Some(mut lab) = lab("ipv6", &["tshark"]) else {
        return;
    };
    let (sl, pcap, stats) = (
        lab.path("serve.jsonl"),
        lab.path("serve.pcap"),
        lab.path("stats.json"),
    );
    let srv = lab.seqack(
        "serve",
        &args(&format!("serve --tun tun0 --addr fd00::2/64 --port 7 --app echo --state-log {sl} --pcap {pcap} --stats {stats} --msl 1")),
    );
    wait_until(SHORT, || {
        std::fs::read_to_string(&sl).is_ok_and(|s| s.contains("LISTEN"))
    })
    .expect("serve started");
    let n = (5 * MB).to_string();
    let r = lab
        .peer(
            "client",
            &args(&format!("client fd00::2 7 --send {n} --shut-wr --read eof")),
        )
        .wait(LONG)
        .json();
    assert_eq!(r["error"], Value::Null, "{r}");
    assert_eq!(r["sha256"], pattern_sha256(5 * MB));
    let st = lab.seqack_states("serve.jsonl", KERNEL6);
    assert_eq!(
        states(&st),
        args("SYN_RECEIVED ESTABLISHED CLOSE_WAIT LAST_ACK CLOSED")
    );
    stop_server(&lab, srv);
    let (_, bad) = lab.tshark_check("serve.pcap", SEQACK6);
    assert!(bad.is_empty(), "{bad:#?}");
    // And seqack as the IPv6 client.
    let srv = lab.peer(
        "server6",
        &args("server fd00::1 9011 --send 200000 --read eof"),
    );
    wait_until(SHORT, || {
        std::fs::read_to_string(&srv.out).is_ok_and(|s| s.contains("listening"))
    })
    .unwrap();
    let (sl, pcap) = (lab.path("c6.jsonl"), lab.path("c6.pcap"));
    let done = lab
        .seqack(
            "connect6",
            &args(&format!("connect --tun tun0 --addr fd00::2/64 --to [fd00::1]:9011 --send 100000 --expect 200000 --state-log {sl} --pcap {pcap} --msl 1")),
        )
        .wait(LONG);
    assert!(done.status.success(), "{}", done.stderr);
    assert_eq!(
        connect_received(&done.stdout),
        (200_000, pattern_sha256(200_000))
    );
    assert_eq!(srv.wait(SHORT).json()["sha256"], pattern_sha256(100_000));
}

// ----- stopping the server ------------------------------------------------------------

#[test]
fn sigint_closes_open_connections_and_aborts_peers_that_stay() {
    let Some(mut lab) = lab("sigint", &[]) else {
        return;
    };
    let srv = lab.serve(7, "echo", &[]);
    // One client closes when seqack's FIN comes; the other never does.
    let polite = lab.peer("polite", &args("client 10.0.0.2 7 --read eof"));
    let stubborn = lab.peer(
        "stubborn",
        &args("client 10.0.0.2 7 --read eof --sleep-before-close 60"),
    );
    wait_until(SHORT, || {
        lab.seqack_states("serve.jsonl", KERNEL)
            .iter()
            .filter(|(s, _)| s == "ESTABLISHED")
            .count()
            == 2
    })
    .expect("both clients connected");
    let t0 = std::time::Instant::now();
    let stats = stop_server(&lab, srv);
    // 2MSL is 2 s here, so the grace is the 5 s minimum, then TIME_WAIT/LAST_ACK.
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "stopping took {:?}",
        t0.elapsed()
    );
    assert_eq!(stats["TcpPassiveOpens"], 2);
    let r = polite.wait(SHORT).json();
    assert_eq!(r["eof"], true);
    let log = lab.state_log("serve.jsonl");
    let ends: Vec<&str> = log
        .iter()
        .filter(|v| v["to"] == "CLOSED" && v["remote"] != "0.0.0.0:0")
        .map(|v| v["why"].as_str().unwrap())
        .collect();
    assert_eq!(ends.len(), 2, "{log:#?}");
    assert!(ends.contains(&"abort: RST sent"), "{ends:?}");
    assert!(
        ends.contains(&"timer 2MSL") || ends.contains(&"rcv ACK of FIN"),
        "{ends:?}"
    );
    drop(stubborn);
}
