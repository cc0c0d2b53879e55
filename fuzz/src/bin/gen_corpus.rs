//! Writes the seed corpus: `cargo run --bin gen-corpus` in `fuzz/`.
//!
//! - `corpus/wire/`: real packets a seqack stack sends (SYN, SYN-ACK, data, FIN, over
//!   IPv4 and IPv6), captured by running two stacks against each other.
//! - `corpus/stack/`: byte strings that decode to short operation sequences (the
//!   `arbitrary` decoding takes any bytes; these are just varied starting points).
//! - `corpus/packetdrill/`: copied from `tests/packetdrill/basics`.

use seqack::{Instant, Stack, StackConfig};
use std::fs;
use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let wire = root.join("corpus/wire");
    fs::create_dir_all(&wire).unwrap();
    for (v, (a, b)) in [
        ("v4", ("10.0.0.1", "10.0.0.2")),
        ("v6", ("fd00::1", "fd00::2")),
    ] {
        let mut pkts = exchange(a.parse().unwrap(), b.parse().unwrap());
        pkts.dedup();
        for (i, p) in pkts.iter().take(8).enumerate() {
            fs::write(wire.join(format!("seed-{v}-{i:02}")), p).unwrap();
        }
    }
    let stack = root.join("corpus/stack");
    fs::create_dir_all(&stack).unwrap();
    let mut x: u64 = 1;
    for i in 0..8 {
        let len = 64 << (i % 4);
        let data: Vec<u8> = (0..len)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 33) as u8
            })
            .collect();
        fs::write(stack.join(format!("seed-random-{i}")), data).unwrap();
    }
    let pd = root.join("corpus/packetdrill");
    fs::create_dir_all(&pd).unwrap();
    let basics = root.join("../tests/packetdrill/basics");
    for e in fs::read_dir(basics).unwrap().flatten() {
        let name = e.file_name().into_string().unwrap();
        if name.ends_with(".pkt") {
            fs::copy(e.path(), pd.join(format!("seed-{name}"))).unwrap();
        }
    }
}

/// Two stacks connect, exchange some data both ways and close; returns every packet.
fn exchange(a: std::net::IpAddr, b: std::net::IpAddr) -> Vec<Vec<u8>> {
    let mut sa = Stack::new(StackConfig::default());
    sa.add_address(a);
    let mut sb = Stack::new(StackConfig {
        seed: 1,
        ..StackConfig::default()
    });
    sb.add_address(b);
    let l = sb.listen(std::net::SocketAddr::new(b, 80), 4).unwrap();
    let mut now = Instant::from_secs(1);
    let ca = sa
        .connect(now, None, std::net::SocketAddr::new(b, 80))
        .unwrap();
    let mut cb = None;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    for round in 0..40 {
        while let Some(n) = sa.poll_transmit(now, &mut buf) {
            out.push(buf[..n].to_vec());
            sb.handle_packet(now, &buf[..n]);
        }
        while let Some(n) = sb.poll_transmit(now, &mut buf) {
            out.push(buf[..n].to_vec());
            sa.handle_packet(now, &buf[..n]);
        }
        while sa.poll_event().is_some() {}
        while sb.poll_event().is_some() {}
        if cb.is_none() {
            cb = sb.accept(l);
        }
        match round {
            3 => {
                let _ = sa.send(now, ca, b"GET / HTTP/1.0\r\n\r\n");
            }
            6 => {
                if let Some(c) = cb {
                    let mut r = [0u8; 100];
                    let _ = sb.recv(now, c, &mut r);
                    let _ = sb.send(now, c, &[b'x'; 3000]);
                    sb.close(now, c);
                }
            }
            10 => {
                let mut r = [0u8; 4000];
                let _ = sa.recv(now, ca, &mut r);
                sa.close(now, ca);
            }
            _ => {}
        }
        now += seqack::Duration::from_micros(50_000);
        sa.handle_timeout(now);
        sb.handle_timeout(now);
    }
    out
}
