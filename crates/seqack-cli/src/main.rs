//! The `seqack` command.

mod bench;
mod connect;
mod demo;
mod ladder;
mod packetdrill;
mod realnet;
mod serve;
mod sim;
mod stack_bench;
mod trace;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// seqack: a userspace TCP/IP stack that makes TCP's lifecycle visible.
#[derive(Parser, Debug)]
#[command(name = "seqack", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a client and a server on the simulated link and draw the connection's
    /// lifecycle as a ladder diagram (virtual time: no root, no setup, deterministic).
    Demo(demo::DemoArgs),
    /// Run every performance workload on seqack and on its anchors (smoltcp on the same
    /// in-memory link, Linux over loopback) in one run, and print medians and
    /// seqack/anchor ratios as a table or JSON lines.
    Bench(bench::BenchArgs),
    /// Run the stack's scale workloads in virtual time (a SYN flood, 1,000,000
    /// connections through TIME_WAIT, 100,000 concurrent connections) and print their
    /// figures (memory per record and per connection, peak memory, success rate under
    /// flood, segments per CPU second) as JSON lines.
    StackBench(stack_bench::StackBenchArgs),
    /// Run packetdrill-syntax scripts, each against a fresh stack in virtual time:
    /// prints `ok FILE` or `FAIL FILE: line N: ...` per script, then `N passed, M failed`.
    Packetdrill(packetdrill::PacketdrillArgs),
    /// Serve TCP on a Linux TUN device (echo, discard, chargen:BYTES, http) until
    /// SIGINT or SIGTERM, then close every connection cleanly and write the counters.
    Serve(serve::ServeArgs),
    /// Open one TCP connection from a TUN device, send and receive a pattern, print
    /// the SHA-256 of what arrived, close it the chosen way and follow it to CLOSED.
    Connect(connect::ConnectArgs),
    /// Run random scenarios (one per seed) on the simulated link in virtual time and
    /// check invariants: data delivered exactly once, every connection closed or
    /// failed, sequence numbers within RFC 9293, no panic, no state left. Prints a line
    /// with a replay command per failing seed, then `N passed, M failed`.
    Sim(sim::SimArgs),
    /// Read a pcap or pcapng capture, split it into TCP connections and infer both
    /// endpoints' RFC 9293 states after every segment: a ladder and a summary per
    /// connection (how it opened and closed, TIME_WAIT, retransmissions, anomalies),
    /// or JSON, SVG and a self-contained HTML page.
    Trace(trace::TraceArgs),
}

fn main() -> ExitCode {
    // Output piped into `head` and the like ends the process quietly when the reader
    // goes away, as any Unix tool does; Rust's runtime ignores SIGPIPE, which turns
    // the failed write into a panic in `println!`. (Sockets are unaffected: std sends
    // with MSG_NOSIGNAL.)
    sigpipe::reset();
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(a) => demo::run(&a),
        Command::Bench(a) => bench::run(&a),
        Command::StackBench(a) => stack_bench::run(&a),
        Command::Packetdrill(a) => packetdrill::run(&a),
        Command::Serve(a) => serve::run(&a),
        Command::Connect(a) => connect::run(&a),
        Command::Sim(a) => sim::run(&a),
        Command::Trace(a) => trace::run(&a),
    }
}
