//! `seqack sim`: a few hundred random scenarios pass, a seed replays identically, and
//! a failing seed prints its replay command.

use std::process::Command;

fn sim(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_seqack"))
        .arg("sim")
        .args(args)
        .output()
        .expect("run seqack sim");
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    (out.status.success(), stdout)
}

const SMALL: [&str; 14] = [
    "--connections",
    "4",
    "--bytes",
    "20000",
    "--loss",
    "0.1",
    "--reorder",
    "0.1",
    "--dup",
    "0.05",
    "--corrupt",
    "0.05",
    "--partition",
    "3000",
];

#[test]
fn two_hundred_seeds_pass() {
    let mut args = vec!["--seeds", "200"];
    args.extend(SMALL);
    let (ok, out) = sim(&args);
    assert!(ok, "{out}");
    assert_eq!(out.lines().last(), Some("200 passed, 0 failed"), "{out}");
}

#[test]
fn a_seed_replays_byte_for_byte() {
    let mut args = vec!["--seed", "42", "--json"];
    args.extend(SMALL);
    let (ok1, a) = sim(&args);
    let (ok2, b) = sim(&args);
    assert!(ok1 && ok2, "{a}");
    let v: serde_json::Value = serde_json::from_str(a.trim()).expect("one JSON object");
    assert_eq!(v["seed"], 42);
    assert_eq!(v["passed"], true);
    assert!(v["digest"].as_str().is_some_and(|d| d.len() == 16));
    assert_eq!(a, b, "same seed, same digest and report");
    let mut args = vec!["--seed", "43", "--json"];
    args.extend(SMALL);
    let (_, c) = sim(&args);
    assert_ne!(a, c);
}

#[test]
fn json_prints_one_object_per_seed() {
    let (ok, out) = sim(&["--seeds", "5", "--json", "--bytes", "1000"]);
    assert!(ok, "{out}");
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    for (i, l) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(l).expect("JSON");
        assert_eq!(v["seed"], i as u64);
        assert!(v["replay"]
            .as_str()
            .unwrap()
            .starts_with("seqack sim --seed "));
    }
}

#[test]
fn an_injected_bug_fails_with_a_replay_command() {
    let (ok, out) = sim(&["--seeds", "10", "--bytes", "2000", "--inject-drop-byte"]);
    assert!(!ok, "{out}");
    let fail = out
        .lines()
        .find(|l| l.starts_with("FAIL seed ") && l.contains(": DATA: "))
        .unwrap_or_else(|| panic!("no DATA failure: {out}"));
    assert!(fail.contains("; replay: seqack sim --seed "), "{fail}");
    let last = out.lines().last().unwrap();
    assert!(
        last.ends_with(" failed") && !last.ends_with(" 0 failed"),
        "{last}"
    );
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    // `seqack sim --json | head -1`: the write after the reader has gone ends the
    // process as SIGPIPE does any Unix tool, not with a panic message.
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_seqack"))
        .args(["sim", "--seeds", "100000", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run seqack sim");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("one line");
    assert!(first.starts_with("{\"seed\":0"), "{first}");
    // The reader is dropped here; the child's next writes fail.
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        out.status.signal(),
        Some(13),
        "ended by SIGPIPE: {:?}",
        out.status
    );
}
