//! The `seqack` command.

mod demo;
mod ladder;
mod packetdrill;

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
    /// Run packetdrill-syntax scripts, each against a fresh stack in virtual time:
    /// prints `ok FILE` or `FAIL FILE: line N: ...` per script, then `N passed, M failed`.
    Packetdrill(packetdrill::PacketdrillArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(a) => demo::run(&a),
        Command::Packetdrill(a) => packetdrill::run(&a),
    }
}
