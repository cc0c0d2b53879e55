//! The core is sans-IO: no clock, no files, no sockets, no threads, no environment, no
//! printing. This test reads the crate's sources and fails on any such use, so the
//! boundary cannot erode unnoticed.

use std::path::Path;

const FORBIDDEN: [&str; 12] = [
    "std::time",
    "SystemTime",
    "std::fs",
    "std::env",
    "std::thread",
    "std::net::TcpStream",
    "std::net::UdpSocket",
    "std::process",
    "std::io::stdin",
    "println!",
    "eprintln!",
    "Instant::now",
];

fn scan(dir: &Path, hits: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            scan(&path, hits);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("read file");
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for f in FORBIDDEN {
                    if code.contains(f) {
                        hits.push(format!("{}:{}: {f}", path.display(), n + 1));
                    }
                }
            }
        }
    }
}

#[test]
fn the_core_does_no_io_and_reads_no_clock() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut hits = Vec::new();
    scan(&src, &mut hits);
    assert!(
        hits.is_empty(),
        "sans-IO boundary crossed:\n{}",
        hits.join("\n")
    );
}
