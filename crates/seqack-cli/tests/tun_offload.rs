//! TUN offload (`--tun-offload`) against the Linux kernel: 64 MiB each way through
//! `seqack serve` and `seqack connect`, in a network namespace of the test's own
//! (tests/interop/lab.rs), the data checked with SHA-256; a capture on the kernel's
//! side of the device shows that super-packets really crossed it both ways, and
//! tshark finds seqack's own capture (received super-packets with their checksums
//! completed, sent segments) clean. Without root every test prints why it is skipped.

#[path = "interop/lab.rs"]
mod lab;

use lab::*;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const MIB: u64 = 1 << 20;
const LONG: Duration = Duration::from_secs(240);
const SHORT: Duration = Duration::from_secs(30);

fn args(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

/// Starts tcpdump on tun0 (headers only) and waits until it captures.
fn capture(lab: &mut Lab, file: &str) -> Proc {
    let path = lab.path(file);
    let mut c = lab.cmd("tcpdump");
    c.args(["-i", "tun0", "-s", "128", "-U", "-w", &path]);
    let p = lab.spawn("tcpdump", c);
    wait_until(SHORT, || {
        std::fs::read_to_string(&p.err).is_ok_and(|s| s.contains("listening on"))
    })
    .expect("tcpdump did not start");
    p
}

/// Stops tcpdump and returns tshark's count of packets matching `filter`.
fn count(lab: &Lab, tcpdump: Proc, file: &str, filter: &str) -> usize {
    tcpdump.interrupt();
    tcpdump.wait(SHORT);
    tshark_count(lab, file, filter)
}

fn tshark_count(lab: &Lab, file: &str, filter: &str) -> usize {
    let o = Command::new("tshark")
        .args([
            "-r",
            &lab.path(file),
            "-Y",
            filter,
            "-T",
            "fields",
            "-e",
            "frame.number",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).lines().count()
}

/// Checks the kernel-side capture: TSO super-packets (IP length past the MTU) went
/// from the kernel to seqack and coalesced ones from seqack to the kernel, and none
/// is malformed.
fn assert_super_packets_both_ways(lab: &Lab, file: &str, kernel: &str, seqack: &str) {
    let (fam, len) = if kernel.contains(':') {
        ("ipv6", "ipv6.plen > 1460")
    } else {
        ("ip", "ip.len > 1500")
    };
    let from_kernel = tshark_count(lab, file, &format!("{fam}.src == {kernel} && {len}"));
    let from_seqack = tshark_count(lab, file, &format!("{fam}.src == {seqack} && {len}"));
    assert!(from_kernel > 0, "no super-packet from the kernel to seqack");
    assert!(
        from_seqack > 0,
        "no coalesced super-packet from seqack to the kernel"
    );
    assert_eq!(tshark_count(lab, file, "_ws.malformed"), 0);
}

/// tshark on seqack's own capture: the kernel's packets as the stack got them (partial
/// checksums completed by the driver, for the capture) and seqack's segments, every
/// checksum good.
fn assert_seqack_capture_clean(lab: &Lab, file: &str) {
    let o = Command::new("tshark")
        .args([
            "-r",
            &lab.path(file),
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
            "-Y",
            "_ws.malformed || ip.checksum.status == \"Bad\" || tcp.checksum.status == \"Bad\"",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bad = String::from_utf8_lossy(&o.stdout);
    assert!(bad.trim().is_empty(), "bad packets in {file}:\n{bad}");
}

#[test]
fn offload_64mib_each_way_kernel_client_seqack_server() {
    let Some(mut lab) = lab("offl-ks", &["tshark", "tcpdump"]) else {
        return;
    };
    let dump = capture(&mut lab, "kernel.pcap");
    let srv = lab.serve(7, "echo", &["--tun-offload"]);
    let n = (64 * MIB).to_string();
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
    assert_eq!(r["received"], 64 * MIB);
    assert_eq!(
        r["sha256"],
        pattern_sha256(64 * MIB),
        "the echo differs from what was sent"
    );
    srv.interrupt();
    let done = srv.wait(SHORT);
    assert!(done.status.success(), "{}", done.stderr);
    let stats: Value =
        serde_json::from_str(&std::fs::read_to_string(lab.dir.join("stats.json")).unwrap())
            .unwrap();
    assert_eq!(stats["TcpEstabResets"], 0);
    assert_eq!(stats["TcpInCsumErrors"], 0);
    // Fewer segments in than 64 MiB of MSS-sized ones: super-packets were taken whole.
    let in_segs = stats["TcpInSegs"].as_u64().unwrap();
    assert!(
        in_segs < 64 * MIB / 1448,
        "{in_segs} segments in: no super-packets"
    );
    count(&lab, dump, "kernel.pcap", "ip");
    assert_super_packets_both_ways(&lab, "kernel.pcap", KERNEL, SEQACK);
    assert_seqack_capture_clean(&lab, "serve.pcap");
}

#[test]
fn offload_64mib_each_way_seqack_client_kernel_server_and_ipv6() {
    let Some(mut lab) = lab("offl-sk", &["tshark", "tcpdump"]) else {
        return;
    };
    let dump = capture(&mut lab, "kernel.pcap");
    let n = (64 * MIB).to_string();
    let srv = lab.peer_server(9000, &args(&format!("--send {n} --read eof")));
    let done = lab
        .connect(
            "10.0.0.1:9000",
            &args(&format!("--send {n} --expect {n} --tun-offload")),
        )
        .wait(LONG);
    assert!(done.status.success(), "{}\n{}", done.stdout, done.stderr);
    assert_eq!(
        connect_received(&done.stdout),
        (64 * MIB, pattern_sha256(64 * MIB))
    );
    let r = srv.wait(SHORT).json();
    assert_eq!(r["error"], Value::Null, "{r}");
    assert_eq!(r["received"], 64 * MIB);
    assert_eq!(r["sha256"], pattern_sha256(64 * MIB));
    assert_seqack_capture_clean(&lab, "connect.pcap");

    // The same over IPv6 (GSO type TCPV6), 16 MiB each way.
    let m = (16 * MIB).to_string();
    let srv = lab.peer(
        "server6",
        &args(&format!("server fd00::1 9001 --send {m} --read eof")),
    );
    wait_until(SHORT, || {
        std::fs::read_to_string(&srv.out).is_ok_and(|s| s.contains("listening"))
    })
    .expect("the IPv6 server did not start");
    let pcap6 = lab.path("c6.pcap");
    let done = lab
        .seqack(
            "connect6",
            &args(&format!(
                "connect --tun tun0 --addr fd00::2/64 --to [fd00::1]:9001 --send {m} \
                 --expect {m} --tun-offload --pcap {pcap6} --msl 1"
            )),
        )
        .wait(LONG);
    assert!(done.status.success(), "{}\n{}", done.stdout, done.stderr);
    assert_eq!(
        connect_received(&done.stdout),
        (16 * MIB, pattern_sha256(16 * MIB))
    );
    let r = srv.wait(SHORT).json();
    assert_eq!(r["sha256"], pattern_sha256(16 * MIB), "{r}");
    assert_seqack_capture_clean(&lab, "c6.pcap");

    count(&lab, dump, "kernel.pcap", "ip");
    assert_super_packets_both_ways(&lab, "kernel.pcap", KERNEL, SEQACK);
    assert_super_packets_both_ways(&lab, "kernel.pcap", KERNEL6, SEQACK6);
}
