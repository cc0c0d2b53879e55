//! `seqack packetdrill`: runs packetdrill-syntax scripts against a fresh stack each, in
//! virtual time. A thin layer over the `seqack-packetdrill` crate.

use clap::{Args, ValueEnum};
use seqack_packetdrill::{run_script, Profile, RunOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Options of `seqack packetdrill`.
#[derive(Args, Debug)]
pub struct PacketdrillArgs {
    /// Scripts to run (a directory stands for every *.pkt file under it).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Do not compare the window of outbound packets.
    #[arg(long)]
    ignore_win: bool,
    /// Compare outbound TCP options as a set of kinds: order, padding and the values of
    /// window scale and timestamps are not checked.
    #[arg(long)]
    loose_options: bool,
    /// Whose defaults the scripts expect: linux, or freebsd (initial window 65535,
    /// window scale 6, FreeBSD's SYN option order, 64 KiB receive buffer, delayed ACKs
    /// without a quick-ACK phase and one at a time, every FIN ACKed at once).
    #[arg(long, value_enum, default_value_t = ProfileArg::Linux)]
    profile: ProfileArg,
    /// Define a symbol for the scripts (NAME=VALUE, or NAME alone for #ifdef).
    #[arg(short = 'D', long = "define", value_name = "NAME=VALUE")]
    defines: Vec<String>,
    /// Timing tolerance in microseconds, overriding the scripts' --tolerance_usecs
    /// (packetdrill's own spelling, `--tolerance_usecs`, is taken too).
    #[arg(long, alias = "tolerance_usecs", value_name = "USECS")]
    tolerance_usecs: Option<i64>,
    /// Do not list skipped lines on stderr (they are still counted there).
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum ProfileArg {
    Linux,
    Freebsd,
}

fn collect(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        entries.sort();
        for e in entries {
            if e.is_dir() || e.extension().is_some_and(|x| x == "pkt") {
                collect(&e, out);
            }
        }
    } else {
        out.push(p.to_path_buf());
    }
}

/// Runs the scripts; prints `ok PATH` or `FAIL PATH: line N: ...` per script and
/// `N passed, M failed` last. Exit status 0 iff every script passed.
pub fn run(a: &PacketdrillArgs) -> ExitCode {
    let mut opts = RunOptions {
        profile: match a.profile {
            ProfileArg::Linux => Profile::Linux,
            ProfileArg::Freebsd => Profile::FreeBsd,
        },
        ignore_win: a.ignore_win,
        loose_options: a.loose_options,
        tolerance_usecs: a.tolerance_usecs,
        ..RunOptions::default()
    };
    for d in &a.defines {
        let (k, v) = d.split_once('=').unwrap_or((d, ""));
        opts.defines.insert(k.to_string(), v.to_string());
    }
    let mut files = Vec::new();
    for f in &a.files {
        collect(f, &mut files);
    }
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for f in &files {
        let path = f.display();
        let src = match std::fs::read(f) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => {
                println!("FAIL {path}: cannot read: {e}");
                failed += 1;
                continue;
            }
        };
        let report = run_script(&src, &opts);
        for s in &report.skipped {
            skipped += 1;
            if !a.quiet {
                eprintln!("skipped {path}: line {}: {}", s.line, s.what);
            }
        }
        match report.result {
            Ok(()) => {
                println!("ok {path}");
                passed += 1;
            }
            Err(e) => {
                println!("FAIL {path}: line {}: {}", e.line, e.msg);
                failed += 1;
            }
        }
    }
    if skipped > 0 {
        eprintln!("{skipped} line(s) skipped (shell commands or code the runner cannot carry out)");
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
