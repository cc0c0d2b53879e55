//! Pair tests: every demo scenario on the simulated link, clean and lossy.

use seqack_io::scenario::{run, Options, Scenario, Side};
use seqack_io::sim::LinkConfig;

fn show(o: &seqack_io::scenario::Outcome) -> String {
    let mut s = format!(
        "{} seed {} loss {}:\n",
        o.options.scenario, o.options.seed, o.options.link.loss
    );
    for c in &o.states {
        s += &format!(
            "  {:>12} {:?} {} -> {} ({})\n",
            c.t.to_string(),
            c.side,
            c.from,
            c.to,
            c.why
        );
    }
    for f in &o.failures {
        s += &format!("  FAIL {f}\n");
    }
    s
}

#[test]
fn every_scenario_follows_the_rfc_path_on_a_clean_link() {
    for sc in Scenario::ALL {
        for ipv6 in [false, true] {
            let mut o = Options::new(sc);
            o.ipv6 = ipv6;
            let out = run(&o);
            assert!(out.ok(), "{}", show(&out));
        }
    }
}

#[test]
fn time_wait_lasts_exactly_two_msl_on_a_clean_link() {
    let out = run(&Options::new(Scenario::ActiveClose));
    let (a, b) = out.time_wait(Side::Client).expect("client held TIME_WAIT");
    assert_eq!(b - a, seqack::Duration::from_secs(60), "{}", show(&out));
    assert!(out.time_wait(Side::Server).is_none());
}

/// Loss, reordering, duplication and corruption on many seeds: data intact, both ends
/// CLOSED, full TIME_WAIT. Seeds are drawn from the environment when SEQACK_SEEDS is
/// set (`SEQACK_SEEDS=200 cargo test ...`), so anyone can widen the sweep.
#[test]
fn every_scenario_survives_a_lossy_link() {
    let seeds: u64 = std::env::var("SEQACK_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    let base: u64 = std::env::var("SEQACK_SEED_BASE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xC0FFEE);
    let mut failed = Vec::new();
    for sc in Scenario::ALL {
        for i in 0..seeds {
            let seed = base.wrapping_add(i.wrapping_mul(0x9E37_79B9));
            let mut o = Options::new(sc);
            o.seed = seed;
            o.ipv6 = i % 2 == 1;
            o.link = LinkConfig {
                loss: [0.1, 0.2, 0.3][(i % 3) as usize],
                jitter: seqack::Duration::from_millis(if i % 4 == 0 { 15 } else { 0 }),
                duplicate: if i % 5 == 0 { 0.05 } else { 0.0 },
                corrupt: if i % 7 == 0 { 0.02 } else { 0.0 },
                ..LinkConfig::default()
            };
            o.request = 20_000;
            o.response = 50_000;
            let out = run(&o);
            if !out.ok() {
                failed.push(show(&out));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} runs failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}
