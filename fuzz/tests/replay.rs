//! Replays every file of the seed corpus (and anything found later and committed under
//! `corpus/<target>/` or `regressions/<target>/`) through the fuzz targets' bodies, on
//! stable Rust and without libFuzzer: `cargo test` in `fuzz/`.
//!
//! `SEQACK_FUZZ_RANDOM=N` also runs N pseudo-random inputs per target (a crude
//! stable-Rust fuzzer for when cargo-fuzz is unavailable).

use std::fs;
use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(rd) = fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        let mut paths: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            let data = fs::read(&p).expect("readable corpus file");
            eprintln!("{target}: {}", p.display());
            f(&data);
            n += 1;
        }
    }
    assert!(n > 0, "no corpus for {target}");
    let random: u64 = std::env::var("SEQACK_FUZZ_RANDOM")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..random {
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let len = (next() % 4096) as usize;
        let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if i % 1000 == 0 {
            eprintln!("{target}: random input {i}");
        }
        f(&data);
    }
}

#[test]
fn wire_corpus() {
    replay("wire", seqack_fuzz::wire);
}

#[test]
fn stack_corpus() {
    replay("stack", seqack_fuzz::stack);
}

#[test]
fn packetdrill_corpus() {
    replay("packetdrill", seqack_fuzz::packetdrill);
}
