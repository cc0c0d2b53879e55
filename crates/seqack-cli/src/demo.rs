//! `seqack demo`: a scripted client and server on the simulated link, shown as a ladder.

use crate::ladder::{self, Dir, Ladder, Row};
use seqack::stack::ss;
use seqack::tcp::Event;
use seqack::wire::{ip, tcp};
use seqack::{Duration, Instant, State};
use seqack_io::scenario::{self, Outcome, Scenario, Side};
use seqack_io::sim::{Cause, LinkConfig, Loss, TraceEntry};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// Options of `seqack demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Which lifecycle to run (see --list).
    #[arg(long, default_value = "active-close", value_parser = parse_scenario)]
    pub scenario: Scenario,
    /// Probability that any packet is lost (0.0 to 1.0), both directions.
    #[arg(long, default_value_t = 0.0, value_parser = parse_probability)]
    pub loss: f64,
    /// Seed of every random choice: the same seed gives the same run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// One-way delay of the link, in milliseconds.
    #[arg(long, default_value_t = 10)]
    pub delay_ms: u64,
    /// Random extra delay up to this many milliseconds (reorders packets).
    #[arg(long, default_value_t = 0)]
    pub jitter_ms: u64,
    /// Maximum segment lifetime in seconds (TIME_WAIT lasts 2MSL).
    #[arg(long, default_value_t = 30.0)]
    pub msl: f64,
    /// Use IPv6 (fd00::1 and fd00::2) instead of IPv4 (10.0.0.1 and 10.0.0.2).
    #[arg(long)]
    pub ipv6: bool,
    /// Bytes the client sends.
    #[arg(long, default_value_t = 1000)]
    pub request: usize,
    /// Bytes the server sends.
    #[arg(long, default_value_t = 3000)]
    pub response: usize,
    /// Write every packet to this pcap file (virtual timestamps).
    #[arg(long)]
    pub pcap: Option<PathBuf>,
    /// Write the ladder as an SVG picture to this file.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Write one JSON object per state change to this file.
    #[arg(long)]
    pub state_log: Option<PathBuf>,
    /// Print sequence numbers as on the wire instead of relative to each ISN.
    #[arg(long)]
    pub absolute: bool,
    /// No colours in the ladder.
    #[arg(long)]
    pub no_color: bool,
    /// Print an `ss -tan -o`-like snapshot of both stacks at this virtual time in
    /// milliseconds (repeatable: `--ss 15 --ss 30000`).
    #[arg(long = "ss", value_name = "MS", value_parser = parse_ms)]
    pub ss: Vec<f64>,
    /// Print both stacks' non-zero counters at the end, by their nstat names.
    #[arg(long)]
    pub counters: bool,
    /// List the scenarios and exit.
    #[arg(long)]
    pub list: bool,
}

fn parse_ms(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(ms) if (0.0..=3_600_000.0).contains(&ms) => Ok(ms),
        _ => Err(format!(
            "'{s}' is not a time in milliseconds (0 to 3600000)"
        )),
    }
}

fn parse_scenario(s: &str) -> Result<Scenario, String> {
    Scenario::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
        format!("unknown scenario '{s}'; one of: {}", names.join(", "))
    })
}

fn parse_probability(s: &str) -> Result<f64, String> {
    let p: f64 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if (0.0..1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{p} is not a probability below 1 (0.0 <= p < 1.0)"))
    }
}

/// Runs the demo and prints it; the exit status tells whether the scenario ended as
/// expected.
pub fn run(a: &DemoArgs) -> ExitCode {
    if a.list {
        for s in Scenario::ALL {
            println!("{:<20} {}", s.name(), s.about());
        }
        return ExitCode::SUCCESS;
    }
    if !(a.msl > 0.0 && a.msl <= 3600.0) {
        eprintln!("seqack demo: --msl must be between 0 and 3600 seconds");
        return ExitCode::from(2);
    }
    let mut o = scenario::Options::new(a.scenario);
    o.seed = a.seed;
    o.ipv6 = a.ipv6;
    o.msl = Duration::from_secs_f64(a.msl);
    o.request = a.request;
    o.response = a.response;
    o.pcap = a.pcap.clone();
    o.snapshots =
        a.ss.iter()
            .map(|&ms| Instant::from_micros((ms * 1000.0).round() as u64))
            .collect();
    o.link = LinkConfig {
        loss: a.loss,
        delay: Duration::from_millis(a.delay_ms),
        jitter: Duration::from_millis(a.jitter_ms),
        ..LinkConfig::default()
    };
    let out = scenario::run(&o);
    let lad = build_ladder(&out, a.absolute);
    let color = !a.no_color && std::io::IsTerminal::is_terminal(&std::io::stdout());
    print!("{}", ladder::render_text(&lad, color));
    println!();
    print!("{}", summary(&out));
    for snap in &out.snapshots {
        print!("{}", snapshot(snap));
    }
    if a.counters {
        print!("{}", counters(&out));
    }
    let mut ok = out.ok();
    let mut write = |what: &str, path: &PathBuf, body: String| {
        if let Err(e) = std::fs::write(path, body) {
            eprintln!("seqack demo: cannot write {what} {}: {e}", path.display());
            ok = false;
        }
    };
    if let Some(p) = &a.svg {
        write("SVG", p, ladder::render_svg(&lad));
    }
    if let Some(p) = &a.state_log {
        write("state log", p, state_log(&out));
    }
    if ok {
        println!("result: ok, the scenario ended as expected");
        ExitCode::SUCCESS
    } else {
        for f in &out.failures {
            eprintln!("seqack demo: {f}");
        }
        eprintln!("result: FAILED, the scenario did not end as expected");
        ExitCode::FAILURE
    }
}

/// One JSON object per state change.
pub fn state_log(out: &Outcome) -> String {
    let mut s = String::new();
    for c in &out.states {
        let line = StateLogLine {
            t_us: c.t.total_micros(),
            side: c.side.name(),
            local: c.local.to_string(),
            remote: c.remote.to_string(),
            from: c.from.name(),
            to: c.to.name(),
            why: c.why.as_str(),
        };
        if let Ok(j) = serde_json::to_string(&line) {
            let _ = writeln!(s, "{j}");
        }
    }
    s
}

/// One line of `--state-log` (of `demo`, `serve` and `connect`), fields in the
/// documented order.
#[derive(serde::Serialize)]
pub struct StateLogLine {
    pub t_us: u64,
    pub side: &'static str,
    pub local: String,
    pub remote: String,
    pub from: &'static str,
    pub to: &'static str,
    pub why: &'static str,
}

/// What each side's SYN told us: its ISN and window scale.
#[derive(Default, Clone, Copy)]
struct SideInfo {
    isn: Option<u32>,
    wscale: Option<u8>,
    highest: Option<u32>,
    sent_synack: bool,
}

/// Turns the recorded timeline into ladder rows with each side's state after each row.
pub fn build_ladder(out: &Outcome, absolute: bool) -> Ladder {
    let (client, server) = out.nodes;
    let mut info: HashMap<usize, SideInfo> = HashMap::new();
    let mut cur: HashMap<usize, State> = HashMap::new();
    cur.insert(client, State::Closed);
    // The server's endpoint starts as a listener, except when it opens actively and in
    // the refused scenario, where the SYN goes to a port with no socket at all.
    let server_listens = !matches!(
        out.options.scenario,
        Scenario::SimultaneousOpen | Scenario::Refused
    );
    cur.insert(
        server,
        if server_listens {
            State::Listen
        } else {
            State::Closed
        },
    );
    let mut rows: Vec<Row> = Vec::new();
    let mut row_of: HashMap<u64, usize> = HashMap::new();
    let mut pending_note: HashMap<usize, Vec<String>> = HashMap::new();
    for e in &out.trace {
        match e {
            TraceEntry::Sent {
                id,
                t,
                info: p,
                lost,
                bytes,
            } => {
                if !p.is_tcp {
                    continue;
                }
                let seg_opts = parse_options(bytes);
                let me = info.entry(p.from).or_default();
                if p.flags.syn() {
                    me.isn.get_or_insert(p.seq.0);
                    me.wscale = seg_opts.and_then(|o| o.wscale);
                }
                let my = *me;
                let peer = p.to.and_then(|n| info.get(&n).copied()).unwrap_or_default();
                let rel = |v: u32, base: Option<u32>| {
                    if absolute {
                        v
                    } else {
                        base.map_or(v, |b| v.wrapping_sub(b))
                    }
                };
                let end = p.seq.0.wrapping_add(
                    p.len as u32 + u32::from(p.flags.syn()) + u32::from(p.flags.fin()),
                );
                let mut notes = pending_note.remove(&p.from).unwrap_or_default();
                let occupies = p.len > 0 || p.flags.syn() || p.flags.fin();
                // The SYN-ACK of a simultaneous open repeats the SYN's sequence number
                // but is a new segment.
                let first_synack = p.flags.syn() && p.flags.ack() && !my.sent_synack;
                if occupies
                    && !first_synack
                    && my
                        .highest
                        .is_some_and(|h| (end.wrapping_sub(h) as i32) <= 0)
                {
                    notes.push("retransmission".into());
                }
                if first_synack {
                    info.entry(p.from).or_default().sent_synack = true;
                }
                if occupies {
                    let me = info.entry(p.from).or_default();
                    me.highest = Some(match me.highest {
                        Some(h) if (h.wrapping_sub(end) as i32) > 0 => h,
                        _ => end,
                    });
                }
                // The renderer marks every lost row; say why when it was not chance.
                match lost {
                    Some(Loss::Filter) => notes.push("dropped on purpose by the scenario".into()),
                    Some(Loss::NoRoute) => notes.push("no route".into()),
                    Some(Loss::TooBig) => notes.push("larger than the MTU".into()),
                    Some(Loss::Random) | None => {}
                }
                let scaled = match (p.flags.syn(), my.wscale, peer.wscale) {
                    (false, Some(ws), Some(_)) => u32::from(p.window) << ws.min(14),
                    _ => u32::from(p.window),
                };
                let dir = if p.from == client {
                    Dir::Right
                } else {
                    Dir::Left
                };
                rows.push(Row {
                    t: *t,
                    arrive: None,
                    dir,
                    flags: p.flags,
                    seq: rel(p.seq.0, my.isn),
                    ack: p.flags.ack().then(|| rel(p.ack.0, peer.isn)),
                    len: p.len as u32,
                    win: scaled,
                    options: seg_opts
                        .map(|o| short_options(&o, p.flags.syn(), peer.isn, absolute))
                        .unwrap_or_default(),
                    notes,
                    left_state: cur.get(&client).copied(),
                    right_state: cur.get(&server).copied(),
                    left_uncertain: false,
                    right_uncertain: false,
                });
                row_of.insert(*id, rows.len() - 1);
            }
            TraceEntry::Delivered {
                id, t, corrupted, ..
            } => {
                if let Some(&r) = row_of.get(id) {
                    let row = &mut rows[r];
                    if row.arrive.is_some() {
                        row.notes.push("duplicate".into());
                    } else {
                        row.arrive = Some(*t);
                    }
                    if *corrupted {
                        row.notes.push("corrupted copy dropped by checksum".into());
                    }
                    row.left_state = cur.get(&client).copied();
                    row.right_state = cur.get(&server).copied();
                }
            }
            TraceEntry::Event {
                node, event, cause, ..
            } => {
                // Listener changes (CLOSED -> LISTEN) are not rows of the ladder.
                let Some((_, _, Event::StateChange { to, why, .. })) = event.conn_event() else {
                    continue;
                };
                cur.insert(*node, to);
                match cause {
                    Cause::Packet(id) => {
                        if let Some(&r) = row_of.get(id) {
                            let row = &mut rows[r];
                            row.left_state = cur.get(&client).copied();
                            row.right_state = cur.get(&server).copied();
                        }
                    }
                    Cause::App | Cause::Timer | Cause::Send => {
                        let side = if *node == client { "client" } else { "server" };
                        pending_note
                            .entry(*node)
                            .or_default()
                            .push(format!("{side} {} -> {to}", why.as_str()));
                    }
                }
            }
        }
    }
    let (cl, sv) = out.addrs.map_or((String::new(), String::new()), |(c, s)| {
        (c.to_string(), s.to_string())
    });
    let o = &out.options;
    Ladder {
        title: format!(
            "seqack demo --scenario {} (seed {}, loss {}%, one-way delay {} ms)",
            o.scenario,
            o.seed,
            o.link.loss * 100.0,
            o.link.delay.as_millis()
        ),
        left: format!("client {cl}"),
        right: format!("server {sv}"),
        left_initial: Some(State::Closed),
        right_initial: Some(if server_listens {
            State::Listen
        } else {
            State::Closed
        }),
        rows,
    }
}

fn parse_options(bytes: &[u8]) -> Option<tcp::Options> {
    let p = ip::parse(bytes).ok()?;
    Some(tcp::parse(p.payload, p.src, p.dst, false).ok()?.options)
}

pub(crate) fn short_options(
    o: &tcp::Options,
    syn: bool,
    peer_isn: Option<u32>,
    absolute: bool,
) -> String {
    let mut v = Vec::new();
    if syn {
        if let Some(m) = o.mss {
            v.push(format!("mss {m}"));
        }
        if o.sack_permitted {
            v.push("sackOK".into());
        }
        if o.timestamps.is_some() {
            v.push("TS".into());
        }
        if let Some(w) = o.wscale {
            v.push(format!("wscale {w}"));
        }
    }
    for b in o.sack_blocks() {
        let base = if absolute { None } else { peer_isn };
        let r = |x: u32| base.map_or(x, |i| x.wrapping_sub(i));
        v.push(format!("sack {}:{}", r(b.left.0), r(b.right.0)));
    }
    v.join(",")
}

/// The text after the ladder: paths, data, segments, TIME_WAIT.
/// An `ss`-like snapshot of both stacks.
fn snapshot(snap: &scenario::Snapshot) -> String {
    let mut s = String::new();
    let ms = snap.t.total_micros() as f64 / 1000.0;
    let _ = writeln!(s, "\nss -tan -o at {ms:.3} ms (virtual)");
    for (name, sockets) in [("client", &snap.client), ("server", &snap.server)] {
        let _ = writeln!(s, "  {name}:");
        for line in ss::format_table(sockets).lines() {
            let _ = writeln!(s, "    {line}");
        }
    }
    s
}

/// Both stacks' non-zero counters side by side, by nstat name.
fn counters(out: &Outcome) -> String {
    let (c, v) = &out.counters;
    let mut s = String::from("\ncounters (nstat names)          client     server\n");
    for ((name, a), (_, b)) in c.iter().zip(v.iter()) {
        if a != 0 || b != 0 {
            let _ = writeln!(s, "  {name:<28} {a:>8}   {b:>8}");
        }
    }
    s
}

pub fn summary(out: &Outcome) -> String {
    let mut s = String::new();
    let o = &out.options;
    let _ = writeln!(s, "summary of {}: {}", o.scenario, o.scenario.about());
    let (cl, sv) = out
        .addrs
        .map_or(("?".to_string(), "?".to_string()), |(c, s)| {
            (c.to_string(), s.to_string())
        });
    for (side, addr) in [(Side::Client, cl), (Side::Server, sv)] {
        let path: Vec<&str> = out.path(side).iter().map(|s| s.name()).collect();
        let path = if path.is_empty() {
            "no socket on this port: CLOSED throughout".to_string()
        } else {
            path.join(" -> ")
        };
        let _ = writeln!(s, "  {:<6} {:<22} {}", side.name(), addr, path);
    }
    for (what, sent, got) in [
        ("client->server", &out.client_sent, &out.server_received),
        ("server->client", &out.server_sent, &out.client_received),
    ] {
        if sent.is_empty() && got.is_empty() {
            continue;
        }
        let verdict = if sent == got {
            "delivered once, in order, intact"
        } else if sent.starts_with(got) {
            "a prefix arrived (connection aborted)"
        } else {
            "CORRUPTED"
        };
        let _ = writeln!(
            s,
            "  data   {what}: {} of {} bytes, {verdict}",
            got.len(),
            sent.len()
        );
    }
    let (cc, sc) = &out.counters;
    let _ = writeln!(
        s,
        "  link   {} segments sent, {} lost, {} duplicated; retransmissions: client {}, server {}",
        out.link.sent, out.link.lost, out.link.duplicated, cc.retrans_segs, sc.retrans_segs
    );
    for side in [Side::Client, Side::Server] {
        if let Some((a, b)) = out.time_wait(side) {
            let _ = writeln!(
                s,
                "  TIME_WAIT {} held it from {:.3} s to {:.3} s: {:.3} s (2MSL = {:.3} s)",
                side.name(),
                a.total_micros() as f64 / 1e6,
                b.total_micros() as f64 / 1e6,
                (b - a).as_secs_f64(),
                (o.msl * 2).as_secs_f64()
            );
        }
    }
    for (side, e) in [
        (Side::Client, out.client_error),
        (Side::Server, out.server_error),
    ] {
        if let Some(e) = e {
            let _ = writeln!(s, "  error  {} saw: {e}", side.name());
        }
    }
    let _ = writeln!(
        s,
        "  ended  at {:.3} s virtual time",
        out.end.total_micros() as f64 / 1e6
    );
    s
}
