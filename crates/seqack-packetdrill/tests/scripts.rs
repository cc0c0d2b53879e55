//! The project's own corpus (tests/packetdrill/**/*.pkt at the repository root) passes,
//! every script saying first what it checks; deliberately wrong expectations fail, on
//! the right line, saying what was expected and what happened.

use seqack_packetdrill::{run_script, Profile, RunOptions};
use std::path::Path;

fn run(src: &str) -> seqack_packetdrill::Report {
    run_script(src, &RunOptions::default())
}

/// Runs `src` and returns (line, message) of its failure.
fn failure(src: &str) -> (u32, String) {
    let r = run(src);
    let f = r.result.expect_err("the script should fail");
    (f.line, f.msg)
}

/// Every `.pkt` file under `dir`, sorted.
fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "pkt") {
            out.push(p);
        }
    }
}

fn corpus_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/packetdrill")
}

#[test]
fn own_scripts_pass() {
    let mut files = Vec::new();
    collect(&corpus_dir(), &mut files);
    assert!(files.len() >= 7, "scripts: {files:?}");
    let mut failed = Vec::new();
    for f in &files {
        let src = std::fs::read_to_string(f).expect("read");
        // Each script opens with a comment naming the RFC section or Linux behaviour
        // it checks.
        let first = src.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        assert!(
            first.trim_start().starts_with("//"),
            "{}: the first line must be a comment naming what the script checks",
            f.display()
        );
        let r = run(&src);
        assert!(
            r.skipped.is_empty(),
            "{}: skipped {:?}",
            f.display(),
            r.skipped
        );
        if let Err(e) = r.result {
            failed.push(format!("{}: {e}", f.display()));
        }
    }
    assert!(failed.is_empty(), "failed:\n{}", failed.join("\n"));
}

/// A passive open, the base of the wrong-expectation tests below (lines 1-7).
const OPEN: &str = "\
0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    bind(3, ..., ...) = 0
+0    listen(3, 1) = 0
+0    < S 0:0(0) win 65535 <mss 1460,nop,wscale 7>
+0    > S. 0:0(0) ack 1 win 64240 <mss 1460,nop,wscale 7>
+.1   < . 1:1(0) ack 1 win 512
+0    accept(3, ..., ...) = 4
";

#[test]
fn the_base_passes() {
    assert_eq!(run(OPEN).result, Ok(()));
}

#[test]
fn wrong_window_fails_on_its_line() {
    let (line, msg) = failure(&format!(
        "{OPEN}+0 close(4) = 0\n+0 > F. 1:1(0) ack 1 win 9999\n"
    ));
    assert_eq!(line, 9);
    assert!(msg.contains("win: expected 9999, got 2048"), "{msg}");
    assert!(msg.contains("\"> F. 1:1(0) ack 1 win 2048\""), "{msg}");
}

#[test]
fn wrong_flags_and_sequence_fail() {
    let (line, msg) = failure(&format!("{OPEN}+0 close(4) = 0\n+0 > R. 5:5(0) ack 1\n"));
    assert_eq!(line, 9);
    assert!(msg.contains("flags: expected R., got F."), "{msg}");
    assert!(msg.contains("seq: expected 5, got 1"), "{msg}");
}

#[test]
fn wrong_options_fail() {
    let src = OPEN.replace(
        "> S. 0:0(0) ack 1 win 64240 <mss 1460,nop,wscale 7>",
        "> S. 0:0(0) ack 1 win 64240 <mss 1400,nop,wscale 7>",
    );
    let (line, msg) = failure(&src);
    assert_eq!(line, 5);
    assert!(
        msg.contains("options: expected <mss 1400,nop,wscale 7>"),
        "{msg}"
    );
    // The same script passes when options are not checked.
    let any = OPEN.replace("win 64240 <mss 1460,nop,wscale 7>", "win 64240 <...>");
    assert_eq!(run(&any).result, Ok(()));
}

#[test]
fn loose_options_ignore_order_and_wscale() {
    let src = OPEN.replace(
        "<mss 1460,nop,wscale 7>\n+.1",
        "<nop,wscale 2,mss 1460>\n+.1",
    );
    assert!(run(&src).result.is_err());
    let opts = RunOptions {
        loose_options: true,
        ..RunOptions::default()
    };
    assert_eq!(run_script(&src, &opts).result, Ok(()));
}

#[test]
fn ignore_win_skips_the_window() {
    let src = OPEN.replace("win 64240", "win 1");
    assert!(run(&src).result.is_err());
    let opts = RunOptions {
        ignore_win: true,
        ..RunOptions::default()
    };
    assert_eq!(run_script(&src, &opts).result, Ok(()));
}

#[test]
fn a_missing_packet_fails() {
    // Nothing provokes a FIN: the stack sends nothing.
    let (line, msg) = failure(&format!("{OPEN}+0 > F. 1:1(0) ack 1 win 2048\n"));
    assert_eq!(line, 8);
    assert!(msg.contains("got nothing"), "{msg}");
}

#[test]
fn an_unexpected_packet_before_the_expected_one_fails() {
    // close() sends a FIN the script does not mention; the next expected packet (an
    // ACK of data) finds the FIN first.
    let src = format!(
        "{OPEN}+0 close(4) = 0\n+.1 < P. 1:11(10) ack 1 win 512\n+0 > . 1:1(0) ack 11 win 2048\n"
    );
    let (line, msg) = failure(&src);
    assert_eq!(line, 10);
    assert!(msg.contains("got \"> F. 1:1(0) ack 1"), "{msg}");
}

#[test]
fn a_late_packet_is_a_timing_error() {
    let src = OPEN.replace("+0    > S. 0:0(0)", "+.5   > S. 0:0(0)");
    let (line, msg) = failure(&src);
    assert_eq!(line, 5);
    assert!(msg.contains("timing error"), "{msg}");
    // Within a range it is fine.
    let ok = OPEN.replace("+0    > S. 0:0(0)", "+0~+.5 > S. 0:0(0)");
    assert_eq!(run(&ok).result, Ok(()));
}

#[test]
fn wrong_syscall_results_fail() {
    let (line, msg) = failure(&format!("{OPEN}+0 close(9) = 0\n"));
    assert_eq!(line, 8);
    assert_eq!(msg, "expected close(9) = 0, got -1 EBADF");
    let (line, msg) = failure(&format!("{OPEN}+0 read(4, ..., 10) = 0\n"));
    assert_eq!(line, 8);
    assert!(msg.contains("read() blocks"), "{msg}");
    let (line, msg) = failure(&format!(
        "{OPEN}+0 fcntl(4, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n+0 read(4, ..., 10) = 0\n"
    ));
    assert_eq!(line, 9);
    assert_eq!(msg, "expected read(4, ..., 10) = 0, got -1 EAGAIN");
}

#[test]
fn state_checks_fail_with_the_state() {
    let (line, msg) = failure(&format!(
        "{OPEN}+0 %{{ assert tcpi_state == TCP_CLOSE_WAIT }}%\n"
    ));
    assert_eq!(line, 8);
    assert!(msg.contains("ESTABLISHED"), "{msg}");
    let opts = RunOptions {
        profile: Profile::FreeBsd,
        ..RunOptions::default()
    };
    let src = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
               +0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n\
               +0 `sockstat -4 -P tcp -s | grep packetdril | grep -c LISTEN | grep 1`\n\
               +0 `sockstat -4 -P tcp -s | grep packetdril | grep -c TIME_WAIT | grep 1`\n";
    let f = run_script(src, &opts)
        .result
        .expect_err("no TIME_WAIT socket");
    assert_eq!(f.line, 5);
}

#[test]
fn the_freebsd_profile_acks_a_fin_at_once() {
    // FreeBSD ACKs the FIN that moves to CLOSE_WAIT at once (TF_ACKNOW); Linux (the
    // default profile, passive-close.pkt) delays that ACK by 40 ms.
    let src = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
               +0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n\
               +0 < S 0:0(0) win 65535 <mss 1460,nop,wscale 7>\n\
               +0 > S. 0:0(0) ack 1 win 65535 <mss 1460,nop,wscale 6>\n\
               +.1 < . 1:1(0) ack 1 win 512\n+0 accept(3, ..., ...) = 4\n\
               +.1 < F. 1:1(0) ack 1 win 512\n\
               +0 > . 1:1(0) ack 2 win 1026\n\
               +.01 close(4) = 0\n\
               +0 > F. 1:1(0) ack 2 win 1026\n";
    let freebsd = RunOptions {
        profile: Profile::FreeBsd,
        ..RunOptions::default()
    };
    assert_eq!(run_script(src, &freebsd).result, Ok(()));
    let linux = RunOptions {
        ignore_win: true,
        loose_options: true,
        ..RunOptions::default()
    };
    let f = run_script(src, &linux)
        .result
        .expect_err("Linux delays the ACK of the FIN");
    assert_eq!(f.line, 9);
    assert!(f.msg.contains("got nothing"), "{}", f.msg);
}

#[test]
fn unknown_commands_and_code_are_skipped_not_passed_silently() {
    let r = run("0 `echo hello`\n+0 %{ print(tcpi_rto) }%\n+0 `sysctl -w net.ipv4.tcp_sack=1`\n");
    assert_eq!(r.result, Ok(()));
    let lines: Vec<u32> = r.skipped.iter().map(|s| s.line).collect();
    assert_eq!(lines, vec![1, 2]);
}

#[test]
fn syntax_errors_are_failures_with_lines() {
    let (line, msg) = failure("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < S 0:0(0)\n");
    assert_eq!(line, 2);
    assert!(msg.contains("window must be specified"), "{msg}");
}

#[test]
fn blocking_calls_return_at_their_scripted_time() {
    let ok = format!("{OPEN}+0...0.2 read(4, ..., 10) = 10\n+.2 < P. 1:11(10) ack 1 win 512\n");
    assert_eq!(run(&ok).result, Ok(()));
    let late = format!("{OPEN}+0...0.1 read(4, ..., 10) = 10\n+.2 < P. 1:11(10) ack 1 win 512\n");
    let (line, msg) = failure(&late);
    assert_eq!(line, 8);
    assert!(msg.contains("system call return"), "{msg}");
}

#[test]
fn poll_readv_writev_and_ioctl() {
    let src = format!(
        "{OPEN}\
+0 fcntl(4, F_SETFL, O_RDWR|O_NONBLOCK) = 0
+0 poll([{{fd=4, events=POLLIN, revents=0}}], 1, 0) = 0
+0...0.05 poll([{{fd=4, events=POLLIN}}], 1, 50) = 0
+.05...0.15 poll([{{fd=4, events=POLLIN, revents=POLLIN}}], 1, 1000) = 1
+.1 < P. 1:31(30) ack 1 win 512
+0 > . 1:1(0) ack 31 win 2047
+0 poll([{{fd=4, events=POLLIN|POLLOUT, revents=POLLIN|POLLOUT}}], 1, 0) = 1
+0 ioctl(4, FIONREAD, [30]) = 0
+0 readv(4, [{{..., 10}}, {{..., 5}}], 2) = 15
+0 recv(4, ..., 100, MSG_PEEK) = 15
+0 read(4, ..., 100) = 15
+0 writev(4, [{{..., 10}}, {{..., 20}}], 2) = 30
+0 > P. 1:31(30) ack 31 win 2048
"
    );
    let r = run(&src);
    assert_eq!(r.result, Ok(()), "{src}");
}
