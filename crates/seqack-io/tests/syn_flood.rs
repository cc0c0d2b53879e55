//! A SYN flood from spoofed sources against a listener with backlog 128, interleaved
//! with legitimate clients, in virtual time: every legitimate client connects and
//! exchanges data through SYN cookies, and the server's state stays bounded.
//! It runs at the full size (1,000,000 SYNs, 1,000 clients: about a second);
//! `SEQACK_FLOOD_SYNS` and `SEQACK_FLOOD_CLIENTS` change it. The workload itself is
//! `seqack_io::workload::syn_flood`, which `seqack stack-bench` runs too.

use seqack_io::workload::{size_from_env, syn_flood, FloodConfig};

#[test]
fn legitimate_clients_connect_through_a_syn_flood() {
    let defaults = FloodConfig::default();
    let cfg = FloodConfig {
        syns: size_from_env("SEQACK_FLOOD_SYNS", defaults.syns),
        clients: size_from_env("SEQACK_FLOOD_CLIENTS", defaults.clients),
        ..defaults
    };
    let r = syn_flood(&cfg, &mut |_, _| {});
    let c = &r.server;
    eprintln!(
        "flood: {} SYNs, {} clients, {} served; server peak {} connections; \
         cookies sent {}, valid {}, failed {}; listen drops {}",
        r.syns_sent,
        r.clients,
        r.served,
        r.server_peak_connections,
        c.syncookies_sent,
        c.syncookies_recv,
        c.syncookies_failed,
        c.listen_drops
    );
    assert!(r.failures.is_empty(), "{}", r.failures);
    assert_eq!(r.syns_sent, cfg.syns);
    assert_eq!(
        r.served, cfg.clients,
        "every legitimate client connected and got its answer"
    );
    assert!(c.syncookies_sent > 0, "the flood filled the SYN queue");
    assert!(
        c.syncookies_recv > 0,
        "legitimate clients came in through cookies"
    );
    // State is bounded by the backlog (SYN queue and accept queue) plus the live
    // legitimate connections, whatever the flood's size.
    let peak = r.server_peak_connections;
    assert!(
        peak <= 2 * cfg.backlog + cfg.clients,
        "peak {peak} connections"
    );
}
