//! `seqack sim`: randomised deterministic simulation with invariants. A thin layer over
//! [`seqack_io::simtest`], which generates, runs and checks each seed.

use clap::Args;
use seqack_io::simtest::{run_seed, run_seed_traced, shrink, InjectedBug, SeedReport, SimConfig};
use std::process::ExitCode;

/// Options of `seqack sim`.
#[derive(Args, Debug)]
pub struct SimArgs {
    /// Run seeds 0..N.
    #[arg(long, default_value_t = 100, conflicts_with = "seed")]
    seeds: u64,
    /// Run this one seed only (replay).
    #[arg(long)]
    seed: Option<u64>,
    /// Most connections per scenario.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Most bytes each way per connection.
    #[arg(long, default_value_t = 20_000)]
    bytes: usize,
    /// Largest packet loss probability.
    #[arg(long, default_value_t = 0.05)]
    loss: f64,
    /// Largest probability that a packet is held back so later ones overtake it.
    #[arg(long, default_value_t = 0.05)]
    reorder: f64,
    /// Largest duplication probability.
    #[arg(long, default_value_t = 0.02)]
    dup: f64,
    /// Largest corruption probability.
    #[arg(long, default_value_t = 0.02)]
    corrupt: f64,
    /// Longest partition in milliseconds (0: none).
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    partition: u64,
    /// On failure, rerun the seed with smaller bounds and report the smallest failing.
    #[arg(long)]
    shrink: bool,
    /// Drive the stacks in batches (GSO-style output bursts, GRO-style input runs),
    /// as a batching device driver does; the packets must be those of a run without.
    #[arg(long)]
    batch: bool,
    /// Turn header prediction (the fast path for in-order data) off in every stack;
    /// the run must be exactly the same, only slower.
    #[arg(long)]
    no_header_prediction: bool,
    /// Print the timeline (every packet and event with its time) of each seed run.
    #[arg(long)]
    trace: bool,
    /// Print one JSON object per seed.
    #[arg(long)]
    json: bool,
    /// Testing the checker: make every run's applications lose one received byte.
    #[arg(long, hide = true)]
    inject_drop_byte: bool,
    /// Print each seed's scenario (on failure, or with --verbose for every seed).
    #[arg(short, long)]
    verbose: bool,
}

fn replay(seed: u64, c: &SimConfig) -> String {
    format!(
        "seqack sim --seed {seed} --connections {} --bytes {} --loss {} --reorder {} --dup {} --corrupt {} --partition {}",
        c.connections, c.bytes, c.loss, c.reorder, c.dup, c.corrupt, c.partition_ms
    )
}

fn json(r: &SeedReport, c: &SimConfig) -> serde_json::Value {
    serde_json::json!({
        "seed": r.seed,
        "passed": r.passed(),
        "failures": r.failures.iter().map(|f| serde_json::json!({
            "invariant": f.invariant.name(),
            "detail": f.detail,
        })).collect::<Vec<_>>(),
        "connections": r.connections,
        "virtual_ms": r.virtual_ms,
        "packets": r.packets,
        "digest": format!("{:016x}", r.digest),
        "wire_digest": format!("{:016x}", r.wire_digest),
        "scenario": r.scenario,
        "replay": replay(r.seed, c),
    })
}

/// Runs the seeds; prints a line per failing seed, then `N passed, M failed`.
pub fn run(a: &SimArgs) -> ExitCode {
    let cfg = SimConfig {
        connections: a.connections.max(1),
        bytes: a.bytes,
        loss: a.loss,
        reorder: a.reorder,
        dup: a.dup,
        corrupt: a.corrupt,
        partition_ms: a.partition,
        bug: a.inject_drop_byte.then_some(InjectedBug::DropReceivedByte),
        batch: a.batch,
        no_prediction: a.no_header_prediction,
    };
    let seeds: Vec<u64> = match a.seed {
        Some(s) => vec![s],
        None => (0..a.seeds).collect(),
    };
    let (mut passed, mut failed) = (0u64, 0u64);
    for seed in seeds {
        let r = if a.trace {
            run_seed_traced(seed, &cfg)
        } else {
            run_seed(seed, &cfg)
        };
        for l in &r.trace {
            println!("{l}");
        }
        if a.json {
            println!("{}", json(&r, &cfg));
        }
        if r.passed() {
            passed += 1;
            if a.verbose && !a.json {
                println!(
                    "ok seed {seed} ({} ms, {} packets): {}",
                    r.virtual_ms, r.packets, r.scenario
                );
            }
            continue;
        }
        failed += 1;
        if a.json {
            continue;
        }
        for f in &r.failures {
            println!(
                "FAIL seed {seed}: {}: {}; replay: {}",
                f.invariant.name(),
                f.detail,
                replay(seed, &cfg)
            );
        }
        if a.verbose || a.seed.is_some() {
            println!("  scenario: {}", r.scenario);
        }
        if a.shrink {
            if let Some((small, sr)) = shrink(seed, &cfg) {
                let f = &sr.failures[0];
                println!(
                    "  shrunk: {}: {}; replay: {}",
                    f.invariant.name(),
                    f.detail,
                    replay(seed, &small)
                );
            }
        }
    }
    if !a.json {
        println!("{passed} passed, {failed} failed");
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
