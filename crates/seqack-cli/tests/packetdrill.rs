//! `seqack packetdrill` as a user runs it: one line per script, the totals last, and
//! the exit status.

use std::path::PathBuf;
use std::process::Command;

fn scripts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/packetdrill/basics")
}

#[test]
fn passing_and_failing_scripts() {
    let dir = std::env::temp_dir().join(format!("seqack-pd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.pkt");
    std::fs::write(
        &bad,
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 close(3) = 0\n+0 close(3) = 0\n",
    )
    .unwrap();
    let good = scripts().join("passive-open.pkt");
    let out = Command::new(env!("CARGO_BIN_EXE_seqack"))
        .arg("packetdrill")
        .arg(&good)
        .arg(&bad)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(lines[0], format!("ok {}", good.display()));
    assert_eq!(
        lines[1],
        format!(
            "FAIL {}: line 3: expected close(3) = 0, got -1 EBADF",
            bad.display()
        )
    );
    assert_eq!(lines[2], "1 passed, 1 failed");
    assert!(!out.status.success());

    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn all_own_scripts_pass_from_the_command_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_seqack"))
        .arg("packetdrill")
        .arg(scripts())
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    assert!(stdout
        .lines()
        .last()
        .unwrap()
        .ends_with(" passed, 0 failed"));
}

#[test]
fn the_tolerance_is_taken_in_both_spellings() {
    let dir = std::env::temp_dir().join(format!("seqack-pd-tol-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The SYN-ACK goes out at once; the script expects it 50 ms later.
    let late = dir.join("late.pkt");
    std::fs::write(
        &late,
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
         +0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n\
         +0 < S 0:0(0) win 65535 <mss 1460>\n\
         +.05 > S. 0:0(0) ack 1 <...>\n",
    )
    .unwrap();
    let run = |flag: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_seqack"));
        c.arg("packetdrill");
        c.args(flag);
        let out = c.arg(&late).output().unwrap();
        (out.status.success(), String::from_utf8(out.stdout).unwrap())
    };
    let (ok, stdout) = run(None);
    assert!(!ok && stdout.contains("timing error"), "{stdout}");
    for flag in ["--tolerance-usecs=100000", "--tolerance_usecs=100000"] {
        let (ok, stdout) = run(Some(flag));
        assert!(ok, "{flag}: {stdout}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
