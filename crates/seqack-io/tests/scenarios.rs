//! Pair tests: every demo scenario on the simulated link, clean and lossy.

use seqack_io::scenario::{run, Options, Scenario, Side};
use seqack_io::sim::LinkConfig;

fn show(o: &seqack_io::scenario::Outcome) -> String {
    let mut s = format!("{} seed {} loss {}:\n", o.options.scenario, o.options.seed, o.options.link.loss);
    for c in &o.states {
        s += &format!("  {:>12} {:?} {} -> {} ({})\n", c.t.to_string(), c.side, c.from, c.to, c.why);
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
