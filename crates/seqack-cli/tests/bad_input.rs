//! Bad input over TUN: `seqack serve --app echo` takes malformed IP and TCP headers,
//! senseless flags, blind in-window RST/SYN/data on a live connection and a SYN flood
//! from spoofed addresses, all crafted with scapy (tests/interop/crafted.py) inside the
//! test's own network namespace, for IPv4 (tun0) and IPv6 (tun1) at once. Meanwhile a
//! kernel connection echoes the pattern through it all, and a second kernel client
//! connects during the flood. Nothing may crash, the live connection must deliver every
//! byte intact and close cleanly, the second client must succeed, and the counters
//! written at exit (--stats) must account for every crafted packet, class by class.
//!
//! Root only (the namespace, TUN devices and AF_PACKET); without root it prints why it
//! is skipped and passes. The namespace has no default route: the only routes are the
//! two TUN links, and the kernel does not forward, so seqack's answers to spoofed
//! addresses die in the namespace.

#[path = "interop/lab.rs"]
mod lab;

use lab::*;
use pcap_file::pcap::PcapReader;
use seqack::wire::{ip, tcp};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

const CRAFTED_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/crafted.py");
const PORT: u16 = 7;
/// Spoofed SYNs in the flood (IPv4).
const FLOOD: u64 = 2000;

/// Where each crafted class must be counted: (class, [counters it adds one to]).
/// Classes absent from an address family's run are listed in [`V4_ONLY`]/[`V6_ONLY`].
const CLASSES: &[(&str, &[&str])] = &[
    // IP: every drop below TCP is in IpExtInDrops and in exactly one reason.
    ("ip_short_header", &["IpExtInDrops", "IpInHdrErrors"]),
    ("ip_ihl_below_5", &["IpExtInDrops", "IpInHdrErrors"]),
    ("ip_ihl_past_end", &["IpExtInDrops", "IpInHdrErrors"]),
    ("ip_length_below_header", &["IpExtInDrops", "IpInHdrErrors"]),
    ("ip_bad_version", &["IpExtInDrops", "IpInHdrErrors"]),
    ("ip6_ext_past_end", &["IpExtInDrops", "IpInHdrErrors"]),
    (
        "ip_bad_checksum",
        &["IpExtInDrops", "IpInHdrErrors", "IpExtInCsumErrors"],
    ),
    (
        "ip_length_past_end",
        &["IpExtInDrops", "IpExtInTruncatedPkts"],
    ),
    ("ip_fragment", &["IpExtInDrops", "IpReasmFails"]),
    ("ip_not_ours", &["IpExtInDrops", "IpInAddrErrors"]),
    ("ip_not_tcp", &["IpExtInDrops", "IpInUnknownProtos"]),
    // TCP headers in error (all SYNs to the listener: none may open anything).
    ("tcp_short_header", &["TcpInSegs", "TcpInErrs"]),
    ("tcp_doff_below_5", &["TcpInSegs", "TcpInErrs"]),
    ("tcp_doff_past_end", &["TcpInSegs", "TcpInErrs"]),
    (
        "tcp_bad_checksum",
        &["TcpInSegs", "TcpInErrs", "TcpInCsumErrors"],
    ),
    ("tcp_option_len_0", &["TcpInSegs", "TcpInErrs"]),
    ("tcp_option_len_1", &["TcpInSegs", "TcpInErrs"]),
    ("tcp_option_past_end", &["TcpInSegs", "TcpInErrs"]),
    ("tcp_option_mss_len_3", &["TcpInSegs", "TcpInErrs"]),
    // Flags a listener has no use for: dropped silently, counted.
    ("listen_syn_fin", &["TcpInSegs", "TcpExtTCPFlagsDrop"]),
    ("listen_syn_rst", &["TcpInSegs", "TcpExtTCPFlagsDrop"]),
    ("listen_no_flags", &["TcpInSegs", "TcpExtTCPFlagsDrop"]),
    ("listen_all_flags", &["TcpInSegs", "TcpExtTCPFlagsDrop"]),
    ("listen_rst", &["TcpInSegs", "TcpExtTCPFlagsDrop"]),
    ("listen_fin", &["TcpInSegs", "TcpExtTCPFlagsDrop"]),
    // A valid SYN with 40 bytes of TCP options (and, IPv4, 40 of IP options): a SYN
    // at the listener like the flood's (checked with them).
    ("max_headers_syn", &["TcpInSegs", "ListenerSyns"]),
    // Blind attacks on the live connection (RFC 5961): an RST or SYN in the window
    // but not at RCV.NXT, and data with an ACK outside [SND.UNA - MAX.SND.WND,
    // SND.NXT], draw a challenge ACK (sent, or skipped by the rate limit).
    ("conn_rst_in_window", &["TcpInSegs", "Challenge"]),
    ("conn_syn_rst_in_window", &["TcpInSegs", "Challenge"]),
    ("conn_all_flags_in_window", &["TcpInSegs", "Challenge"]),
    (
        "conn_syn_in_window",
        &["TcpInSegs", "Challenge", "TcpExtTCPSYNChallenge"],
    ),
    (
        "conn_syn_fin_in_window",
        &["TcpInSegs", "Challenge", "TcpExtTCPSYNChallenge"],
    ),
    (
        "conn_syn_out_of_window",
        &["TcpInSegs", "Challenge", "TcpExtTCPSYNChallenge"],
    ),
    ("conn_data_old_ack", &["TcpInSegs", "Challenge"]),
    // In the window, at RCV.NXT even, but without ACK: dropped, counted.
    ("conn_data_no_ack", &["TcpInSegs", "TcpExtTCPFlagsDrop"]),
    ("conn_fin_no_ack", &["TcpInSegs", "TcpExtTCPFlagsDrop"]),
    ("flood_syn", &["TcpInSegs", "ListenerSyns"]),
];
const V4_ONLY: &[&str] = &[
    "ip_ihl_below_5",
    "ip_ihl_past_end",
    "ip_length_below_header",
    "ip_bad_checksum",
    "flood_syn",
];
const V6_ONLY: &[&str] = &["ip6_ext_past_end"];

/// The Python that has scapy: `python3` on PATH, else the system's.
fn scapy_python(lab: &Lab) -> &'static str {
    for py in ["python3", "/usr/bin/python3"] {
        let ok = lab
            .cmd(py)
            .args(["-c", "import scapy.all"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return py;
        }
    }
    panic!("no python3 with scapy: install python3-scapy (see .ci/run)");
}

/// One address family's setup: seqack's and the kernel's address, the device, a
/// prefix for spoofed hosts on the same link.
struct Side {
    tag: &'static str,
    dev: &'static str,
    seqack: &'static str,
    prefix_len: u8,
    kernel: &'static str,
    spoof: &'static str,
}

const V4: Side = Side {
    tag: "4",
    dev: "tun0",
    seqack: SEQACK,
    prefix_len: 24,
    kernel: KERNEL,
    spoof: "10.0.0.",
};
const V6: Side = Side {
    tag: "6",
    dev: "tun1",
    seqack: "fd01::2",
    prefix_len: 64,
    kernel: "fd01::1",
    spoof: "fd01::",
};

fn start_serve(lab: &mut Lab, s: &Side) -> Proc {
    let f = |n: &str, ext: &str| lab.path(&format!("{n}{}.{ext}", s.tag));
    let (log, pcap, stats) = (f("serve", "jsonl"), f("serve", "pcap"), f("stats", "json"));
    let addr = format!("{}/{}", s.seqack, s.prefix_len);
    let port = PORT.to_string();
    let p = lab.seqack(
        &format!("serve{}", s.tag),
        &[
            "serve",
            "--tun",
            s.dev,
            "--addr",
            &addr,
            "--port",
            &port,
            "--app",
            "echo",
            "--state-log",
            &log,
            "--pcap",
            &pcap,
            "--stats",
            &stats,
            "--msl",
            "1",
        ],
    );
    wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("\"LISTEN\""))
    })
    .unwrap_or_else(|| {
        panic!(
            "seqack serve on {} did not start: {}",
            s.dev,
            p.stderr_text()
        )
    });
    p
}

/// What seqack's capture shows it received, beyond the crafted packets.
struct Capture {
    /// Multicast packets from the kernel's own IPv6 machinery (MLD, router
    /// solicitations): not for seqack's address.
    multicast: u64,
    /// The kernel clients' SYNs to the listener port: distinct connections, and all
    /// (with retransmissions).
    kernel_syns: (u64, u64),
}

fn capture(lab: &Lab, s: &Side) -> Capture {
    let data = std::fs::read(lab.dir.join(format!("serve{}.pcap", s.tag))).unwrap();
    let mut r = PcapReader::new(&data[..]).unwrap();
    let kernel: IpAddr = s.kernel.parse().unwrap();
    let ours: IpAddr = s.seqack.parse().unwrap();
    let (mut multicast, mut all) = (0, 0);
    let mut ports = HashSet::new();
    while let Some(p) = r.next_packet() {
        let d = p.unwrap().data;
        let mc = match d.first().map(|b| b >> 4) {
            Some(4) => d.len() >= 20 && d[16] >= 224,
            Some(6) => d.len() >= 40 && d[24] == 0xff,
            _ => false,
        };
        if mc {
            multicast += 1;
            continue;
        }
        let Ok(ipp) = ip::parse(&d) else { continue };
        if ipp.src != kernel || ipp.dst != ours || ipp.protocol != 6 {
            continue;
        }
        let Ok(t) = tcp::parse(ipp.payload, ipp.src, ipp.dst, true) else {
            continue;
        };
        // The kernel's SYNs carry its MSS; the crafted ones from its address do not
        // (or have FIN or RST with it).
        let f = t.flags;
        let plain_syn = f.syn() && !f.ack() && !f.rst() && !f.fin();
        if t.dst_port == PORT && plain_syn && t.options.mss.is_some() {
            all += 1;
            ports.insert(t.src_port);
        }
    }
    Capture {
        multicast,
        kernel_syns: (ports.len() as u64, all),
    }
}

fn stop(p: Proc, lab: &Lab, s: &Side) -> Value {
    p.interrupt();
    let done = p.wait(Duration::from_secs(40));
    assert!(
        done.status.success(),
        "seqack serve on {} failed: {}",
        s.dev,
        done.stderr
    );
    let f = lab.dir.join(format!("stats{}.json", s.tag));
    serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap()
}

/// The live connection (or the client during the flood) echoed every byte back
/// intact and closed cleanly.
fn assert_echo(r: &Value, what: &str, min: u64) {
    assert!(r.get("error").is_none(), "{what}: {r}");
    let sent = r["sent"].as_u64().unwrap();
    assert!(sent >= min, "{what}: only {sent} bytes: {r}");
    assert_eq!(r["echoed"].as_u64(), Some(sent), "{what}: {r}");
    assert!(r["first_bad_byte"].is_null(), "{what} corrupted: {r}");
    assert_eq!(r["sha256"], r["expected_sha256"], "{what}: {r}");
    assert_eq!(r["extra_after_close"].as_u64(), Some(0), "{what}: {r}");
}

/// Checks one family's stats against what was sent, class by class.
fn assert_counted(s: &Side, stats: &Value, sent: &BTreeMap<String, u64>, cap: &Capture) {
    let got = |n: &str| {
        stats[n]
            .as_u64()
            .unwrap_or_else(|| panic!("no counter {n} in {stats}"))
    };
    // Every class of this family was sent, and nothing unknown.
    let want: Vec<&str> = CLASSES
        .iter()
        .map(|c| c.0)
        .filter(|c| match s.tag {
            "4" => !V6_ONLY.contains(c),
            _ => !V4_ONLY.contains(c),
        })
        .collect();
    let names: Vec<&str> = sent.keys().map(String::as_str).collect();
    let mut w = want.clone();
    w.sort();
    assert_eq!(names, w, "IPv{}: classes sent", s.tag);
    let mut expect: BTreeMap<&str, u64> = BTreeMap::new();
    for (class, counters) in CLASSES {
        let n = sent.get(*class).copied().unwrap_or(0);
        for c in *counters {
            *expect.entry(c).or_default() += n;
        }
    }
    // The kernel's own multicast (IPv6 housekeeping) is not for seqack either.
    *expect.entry("IpInAddrErrors").or_default() += cap.multicast;
    *expect.entry("IpExtInDrops").or_default() += cap.multicast;
    let exact = [
        "IpExtInDrops",
        "IpInHdrErrors",
        "IpExtInCsumErrors",
        "IpExtInTruncatedPkts",
        "IpReasmFails",
        "IpInAddrErrors",
        "IpInUnknownProtos",
        "TcpInErrs",
        "TcpInCsumErrors",
        "TcpExtTCPFlagsDrop",
        "TcpExtTCPSYNChallenge",
    ];
    let mut wrong = Vec::new();
    for c in exact {
        let e = expect.get(c).copied().unwrap_or(0);
        if got(c) != e {
            wrong.push(format!("{c}: {} (expected {e})", got(c)));
        }
    }
    assert!(
        wrong.is_empty(),
        "IPv{}: {}\n{stats}",
        s.tag,
        wrong.join(", ")
    );
    // Each challenge was answered or, within 500 ms of the last, rate-limited.
    let challenges = got("TcpExtTCPChallengeACK") + got("TcpExtTCPACKSkippedChallenge");
    assert_eq!(challenges, expect["Challenge"], "IPv{}: {stats}", s.tag);
    assert!(got("TcpExtTCPChallengeACK") >= 1, "IPv{}: {stats}", s.tag);
    // Every SYN at the listener either opened a half-open connection, drew a SYN
    // cookie, or was dropped (queue of replies full); a connection rebuilt from a
    // cookie counts as a passive open too, so its cookie is taken back out.
    let at_listener = got("TcpPassiveOpens") - got("TcpExtSyncookiesRecv")
        + got("TcpExtSyncookiesSent")
        + got("TcpExtListenDrops")
        - got("TcpExtListenOverflows");
    let crafted = expect["ListenerSyns"];
    let (lo, hi) = (crafted + cap.kernel_syns.0, crafted + cap.kernel_syns.1);
    assert!(
        (lo..=hi).contains(&at_listener),
        "IPv{}: {at_listener} SYNs at the listener, expected {lo}..={hi} \
         ({crafted} crafted, kernel {:?}): {stats}",
        s.tag,
        cap.kernel_syns
    );
    assert_eq!(got("TcpExtListenOverflows"), 0, "{stats}");
    assert_eq!(got("TcpExtSyncookiesFailed"), 0, "{stats}");
    // TcpInSegs counts the crafted segments that reached TCP and every real one.
    assert!(got("TcpInSegs") > expect["TcpInSegs"], "{stats}");
    // The live connection was never reset.
    assert_eq!(got("TcpEstabResets"), 0, "IPv{}: {stats}", s.tag);
}

#[test]
fn bad_input_is_dropped_counted_and_harmless() {
    let Some(mut lab) = lab("badin", &[]) else {
        return;
    };
    let py = scapy_python(&lab);
    // tun0 carries IPv4 only here; tun1 is IPv6's. Long device queues so that the
    // flood is not cut short before seqack reads it; no forwarding, no default route.
    lab.sh(
        "sysctl -qw net.ipv4.conf.all.forwarding=0 net.ipv6.conf.all.forwarding=0
         sysctl -qw net.ipv6.conf.tun0.disable_ipv6=1
         ip link set tun0 txqueuelen 10000
         ip tuntap add tun1 mode tun
         ip addr add fd01::1/64 dev tun1 nodad
         ip link set tun1 txqueuelen 10000 up",
    );
    let routes = lab.sh("ip route; ip -6 route");
    assert!(!routes.contains("default"), "a default route: {routes}");
    let mut servers = Vec::new();
    for s in [&V4, &V6] {
        servers.push(start_serve(&mut lab, s));
    }
    let port = PORT.to_string();
    let flood = FLOOD.to_string();
    let mut runs = Vec::new();
    for s in [&V4, &V6] {
        let mut c = lab.cmd(py);
        c.args([CRAFTED_PY, s.dev, s.seqack, s.kernel, &port, s.spoof]);
        if s.tag == "4" {
            c.args(["--flood", &flood]);
        }
        runs.push(lab.spawn(&format!("crafted{}", s.tag), c));
    }
    let reports: Vec<Value> = runs
        .into_iter()
        .map(|r| r.wait(Duration::from_secs(45)).json())
        .collect();
    for (s, r) in [&V4, &V6].into_iter().zip(&reports) {
        eprintln!("IPv{}: {r}", s.tag);
        assert!(r.get("error").is_none(), "IPv{}: {r}", s.tag);
        assert_echo(
            &r["live"],
            &format!("IPv{} live connection", s.tag),
            100_000,
        );
    }
    assert_echo(
        &reports[0]["flood_client"],
        "client during the flood",
        65_536,
    );
    // Nothing crafted was lost before seqack read it.
    for dev in ["tun0", "tun1"] {
        let dropped = lab.sh(&format!("cat /sys/class/net/{dev}/statistics/tx_dropped"));
        assert_eq!(dropped.trim(), "0", "{dev} dropped packets before seqack");
    }
    // The live connections closed normally: the kernel's FIN, then seqack's.
    for s in [&V4, &V6] {
        let kernel_side = if s.tag == "6" {
            format!("[{}]:", s.kernel)
        } else {
            format!("{}:", s.kernel)
        };
        let bad: Vec<Value> = lab
            .state_log(&format!("serve{}.jsonl", s.tag))
            .into_iter()
            .filter(|v| {
                v["remote"]
                    .as_str()
                    .is_some_and(|r| r.starts_with(&kernel_side))
                    && v["why"].as_str().is_some_and(|w| w.contains("RST"))
            })
            .collect();
        assert!(bad.is_empty(), "IPv{}: resets: {bad:?}", s.tag);
    }
    let stats: Vec<Value> = servers
        .into_iter()
        .zip([&V4, &V6])
        .map(|(p, s)| stop(p, &lab, s))
        .collect();
    for ((s, st), r) in [&V4, &V6].into_iter().zip(&stats).zip(&reports) {
        let sent: BTreeMap<String, u64> = serde_json::from_value(r["sent"].clone()).unwrap();
        let cap = capture(&lab, s);
        eprintln!(
            "IPv{}: kernel multicast {}, kernel SYNs {:?}: {st}",
            s.tag, cap.multicast, cap.kernel_syns
        );
        assert_counted(s, st, &sent, &cap);
    }
}
