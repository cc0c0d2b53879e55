//! `seqack connect`: one connection from a TUN device, closed the way the user says,
//! followed until it reached CLOSED.

use crate::realnet::{self, parse_bytes, send_pattern, Change, NetArgs};
use seqack::{Reason, State};
use seqack_io::net::TcpStream;
use sha2::{Digest, Sha256};
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

/// How the connection ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CloseMode {
    /// close() once the data is sent and --expect bytes arrived: seqack closes first
    /// (FIN_WAIT_1, FIN_WAIT_2, TIME_WAIT).
    Active,
    /// shutdown(Write) once the data is sent, then read until the peer's FIN, then
    /// close(): a half-close, the peer may go on sending after seqack's FIN.
    Half,
    /// Read until the peer's FIN, then close(): the peer closes first (CLOSE_WAIT,
    /// LAST_ACK).
    Passive,
    /// Abort with RST (SO_LINGER 0) once the data is sent and --expect bytes arrived.
    Rst,
}

/// Options of `seqack connect`.
#[derive(clap::Args, Debug)]
#[command(after_long_help = CONNECT_HELP)]
pub struct ConnectArgs {
    #[command(flatten)]
    pub net: NetArgs,
    /// The server to connect to.
    #[arg(long, value_name = "IP:PORT")]
    pub to: SocketAddr,
    /// Bytes to send: the pattern `byte i = i mod 251` (in Python:
    /// `bytes(i % 251 for i in range(n))`). Units K, M, G (1024) or KB, MB, GB (1000).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, default_value = "0")]
    pub send: u64,
    /// Read until this many bytes arrived (or the peer's FIN, whichever is first).
    /// Without it, active and rst read nothing, half and passive read until the FIN.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub expect: Option<u64>,
    /// How to close.
    #[arg(long, value_enum, default_value = "active")]
    pub close: CloseMode,
}

const CONNECT_HELP: &str = "\
Prints `received N bytes sha256 HEX` on stdout (the SHA-256 of every byte received),
and on stderr the connection's states from SYN_SENT to CLOSED. It stays until the
connection has reached CLOSED, TIME_WAIT included (2*MSL, shorten with --msl).

Exit status 0 on a clean lifecycle: connected, every byte sent, --expect bytes
received, closed the way --close says (rst: by our RST; otherwise with FINs, no RST
and no timeout on either side), and CLOSED at the end. Non-zero with a message
otherwise (refused, reset, timed out, fewer bytes than --expect, ...).

Example, inside a network namespace of your own:
  ip tuntap add tun0 mode tun && ip addr add 10.0.0.1/24 dev tun0 && ip link set tun0 up
  python3 -m http.server 8080 --bind 10.0.0.1 &
  seqack connect --tun tun0 --addr 10.0.0.2/24 --to 10.0.0.1:8080 --close passive --msl 1";

pub fn run(a: &ConnectArgs) -> ExitCode {
    match connect(a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seqack connect: {e}");
            ExitCode::FAILURE
        }
    }
}

fn connect(a: &ConnectArgs) -> Result<(), String> {
    let run = realnet::start(&a.net, "client")?;
    let net = &run.net;
    let msl = Duration::from_secs_f64(a.net.msl);
    let s = match TcpStream::connect(net, a.to) {
        Ok(s) => s,
        Err(e) => {
            net.wait_idle(Duration::from_secs(5));
            return Err(format!("connect to {}: {e}", a.to));
        }
    };
    let (local, remote) = (s.local_addr().map_err(str_err)?, a.to);
    eprintln!("seqack connect: connected {local} -> {remote}");

    let mut problems = Vec::new();
    let writer = {
        let mut w = s.try_clone().map_err(str_err)?;
        let (n, half) = (a.send, a.close == CloseMode::Half);
        std::thread::spawn(move || -> io::Result<()> {
            send_pattern(&mut w, n)?;
            if half {
                w.shutdown(Shutdown::Write)?;
            }
            Ok(())
        })
    };
    let limit = match a.close {
        CloseMode::Active | CloseMode::Rst => Some(a.expect.unwrap_or(0)),
        CloseMode::Half | CloseMode::Passive => None,
    };
    let (received, hash, eof, read_err) = receive(&s, limit);
    println!("received {received} bytes sha256 {hash}");
    if let Some(e) = read_err {
        problems.push(format!("read: {e}"));
    }
    match writer.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => problems.push(format!("write: {e}")),
        Err(_) => problems.push("writer thread panicked".into()),
    }
    if let Some(x) = a.expect {
        if received < x {
            problems.push(format!(
                "expected {x} bytes, received {received} before {}",
                if eof { "the peer's FIN" } else { "an error" }
            ));
        }
    }
    if a.close == CloseMode::Rst {
        s.abort();
    }
    drop(s);
    if !net.wait_idle(msl * 2 + Duration::from_secs(60)) {
        problems.push("the connection had not reached CLOSED after 2MSL + 60 s".into());
    }
    let changes: Vec<Change> = run
        .changes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|c| c.local == local && c.remote == remote)
        .cloned()
        .collect();
    let path: Vec<&str> = std::iter::once(changes.first().map_or("CLOSED", |c| c.from.name()))
        .chain(changes.iter().map(|c| c.to.name()))
        .collect();
    eprintln!("seqack connect: states: {}", path.join(" -> "));
    problems.extend(lifecycle_problems(&changes, a.close));
    run.net.stop();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn str_err(e: io::Error) -> String {
    e.to_string()
}

/// Reads until `limit` bytes (all of them to the FIN with `None`), hashing them.
/// Returns the count, the hex SHA-256, whether the FIN came, and a read error.
fn receive(s: &TcpStream, limit: Option<u64>) -> (u64, String, bool, Option<io::Error>) {
    let mut h = Sha256::new();
    let mut n = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    let mut eof = false;
    let mut err = None;
    while limit.is_none_or(|l| n < l) {
        let want = limit.map_or(buf.len(), |l| (l - n).min(buf.len() as u64) as usize);
        match (&*s).read(&mut buf[..want]) {
            Ok(0) => {
                eof = true;
                break;
            }
            Ok(k) => {
                h.update(&buf[..k]);
                n += k as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let hash = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    (n, hash, eof, err)
}

/// What was not clean about the lifecycle, judged from the connection's state changes.
fn lifecycle_problems(changes: &[Change], mode: CloseMode) -> Vec<String> {
    let mut p = Vec::new();
    match changes.last() {
        Some(c) if c.to == State::Closed => {}
        Some(c) => p.push(format!("ended in {}, not CLOSED", c.to.name())),
        None => p.push("no state changes seen".into()),
    }
    for c in changes {
        let bad = match c.why {
            Reason::RcvRst => Some("the peer reset the connection"),
            Reason::TimerRetries => Some("retransmissions ran out"),
            Reason::TimerKeepalive => Some("keepalive probes ran out"),
            Reason::TimerConnect => Some("the handshake took too long"),
            Reason::TimeWaitOverflow => Some("TIME_WAIT was cut short (table full)"),
            Reason::Abort if mode != CloseMode::Rst => {
                Some("seqack aborted with RST (data left unread at close)")
            }
            _ => None,
        };
        if let Some(b) = bad {
            p.push(format!("{b} in {}", c.from.name()));
        }
    }
    let went = |s: State| changes.iter().any(|c| c.to == s);
    match mode {
        CloseMode::Rst if !changes.iter().any(|c| c.why == Reason::Abort) => {
            p.push("no RST abort happened".into())
        }
        CloseMode::Passive if !went(State::CloseWait) => {
            p.push("the peer did not close first (no CLOSE_WAIT)".into())
        }
        CloseMode::Active | CloseMode::Half if went(State::CloseWait) => {
            eprintln!(
                "seqack connect: note: the peer's FIN came first, so seqack closed passively"
            );
        }
        _ => {}
    }
    p
}
