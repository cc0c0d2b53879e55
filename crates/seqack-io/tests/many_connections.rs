//! 100,000 connections established at once on one server stack, in virtual time: each
//! moves 4 KiB each way while all are open, then all close, the clients first.
//! `SEQACK_MANY_CONNS` sets the number (the default is the 100,000).

use seqack_io::workload::{self, size_from_env, ManyConfig};

#[test]
fn a_hundred_thousand_concurrent_connections() {
    let cfg = ManyConfig {
        conns: size_from_env("SEQACK_MANY_CONNS", 100_000),
        ..ManyConfig::default()
    };
    let r = workload::many_connections(&cfg, &mut |_, _| {});
    eprintln!(
        "many connections: {} connections from {} clients, server peak {}, {} bytes \
         delivered, {} segments, ended at {}; the server still lists {} connections",
        r.conns,
        cfg.clients,
        r.server_peak_connections,
        r.bytes_delivered,
        r.segments,
        r.end,
        r.final_server_listed,
    );
    assert!(r.failures.is_empty(), "{}", r.failures);
    let n = cfg.conns;
    assert_eq!(r.conns, n);
    assert_eq!(r.accepted, n);
    // All open at once, before any data moves.
    assert_eq!(r.server_connections_established, n);
    assert_eq!(r.client_connections_established, n);
    assert_eq!(r.queued_at_established, 0);
    assert_eq!(r.server_peak_connections, n);
    assert_eq!(r.exchanged, n, "every connection's bytes arrived both ways");
    assert_eq!(r.bytes_delivered, 2 * (n * cfg.bytes) as u64);
    // Clean close: every server end through LAST_ACK, every client end through
    // TIME_WAIT to its 2MSL expiry.
    assert_eq!(r.server_closed, n);
    assert_eq!(r.client_time_wait, n);
    assert_eq!(r.time_wait_expired, n);
    assert_eq!(r.final_server_connections, 0);
    // A connection closed from LAST_ACK frees its slot too (it once did not).
    assert_eq!(r.final_server_listed, 0);
    assert_eq!(r.final_client_connections, 0);
    assert_eq!(r.final_records, 0);
}
