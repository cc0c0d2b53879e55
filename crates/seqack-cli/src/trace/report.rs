//! What `seqack trace` prints: the ladder of each connection (through the shared
//! renderer in [`crate::ladder`]), the summary text, and the JSON objects.

use super::infer::{Analysis, Conn};
use crate::ladder::{Ladder, Row};
use seqack::{Instant, State};
use serde::Serialize;
use std::fmt::Write as _;

/// "left" or "right".
pub fn side_name(side: usize) -> &'static str {
    if side == 0 {
        "left"
    } else {
        "right"
    }
}

fn rel(v: u32, base: Option<u32>) -> u32 {
    base.map_or(v, |b| v.wrapping_sub(b))
}

/// Endpoint labels as the ladder shows them.
pub fn endpoint_labels(c: &Conn, a: &Analysis) -> (String, String) {
    match a.opener {
        Some(0) => (format!("client {}", c.left), format!("server {}", c.right)),
        Some(_) => (format!("server {}", c.left), format!("client {}", c.right)),
        None => (c.left.to_string(), c.right.to_string()),
    }
}

/// The ladder of one connection; times are relative to `t0_us` (the capture's first
/// packet).
pub fn ladder(c: &Conn, a: &Analysis, t0_us: u64) -> Ladder {
    let mut rows = Vec::with_capacity(c.segs.len());
    for (i, (s, r)) in c.segs.iter().zip(&a.rows).enumerate() {
        let x = s.sender();
        let y = 1 - x;
        let t = Instant::from_micros(s.t_us.saturating_sub(t0_us));
        let mut notes = Vec::new();
        if r.retransmission {
            notes.push("retransmission".to_string());
        }
        for an in a.anomalies.iter().filter(|an| an.row == Some(i)) {
            match an.kind {
                "lost" | "syn-retransmitted" | "fin-retransmitted" | "mid-connection" => {}
                "lost-final-ack" => notes.push("lost final ACK (inferred)".into()),
                k if k.starts_with("left-in") => {}
                k => notes.push(k.to_string()),
            }
        }
        let lost = r.received == Some(false);
        if lost {
            notes.insert(0, "lost (inferred)".into());
        }
        let win = match (s.flags.syn(), a.wscale[x]) {
            (false, Some(ws)) => u32::from(s.win) << ws,
            _ => u32::from(s.win),
        };
        rows.push(Row {
            t,
            arrive: if lost { None } else { Some(t) },
            dir: s.dir,
            flags: s.flags,
            seq: rel(s.seq, a.base[x]),
            ack: s.flags.ack().then(|| rel(s.ack, a.base[y])),
            len: s.len,
            win,
            options: crate::demo::short_options(&s.options, s.flags.syn(), a.base[y], false),
            notes,
            left_state: r.states[0],
            right_state: r.states[1],
            left_uncertain: r.uncertain[0],
            right_uncertain: r.uncertain[1],
        });
    }
    let (left, right) = endpoint_labels(c, a);
    Ladder {
        title: format!(
            "connection #{}: {} <-> {} (open: {}, close: {})",
            c.index,
            c.left,
            c.right,
            a.open.name(),
            a.close.name()
        ),
        left,
        right,
        left_initial: a.initial[0],
        right_initial: a.initial[1],
        rows,
    }
}

fn ms(us: u64) -> String {
    format!("{:.3} ms", us as f64 / 1000.0)
}

fn state_text(s: Option<State>, uncertain: bool) -> String {
    match s {
        Some(s) if uncertain => format!("{}?", s.name()),
        Some(s) => s.name().to_string(),
        None => "?".into(),
    }
}

/// The summary under a ladder.
pub fn summary_text(c: &Conn, a: &Analysis) -> String {
    let mut s = String::new();
    let name = |side: usize| {
        if side == 0 {
            c.left.to_string()
        } else {
            c.right.to_string()
        }
    };
    let _ = writeln!(s, "summary of connection #{}:", c.index);
    let opened = match a.opener {
        Some(o) => format!("{} (by {})", a.open.name(), name(o)),
        None => a.open.name().to_string(),
    };
    let _ = writeln!(s, "  opened      {opened}");
    let closed = match a.first_closer {
        Some(f) => format!("{}, {} closed first", a.close.name(), name(f)),
        None => a.close.name().to_string(),
    };
    let _ = writeln!(s, "  closed      {closed}");
    if a.time_wait.is_empty() {
        let _ = writeln!(s, "  TIME_WAIT   nobody");
    }
    for &(side, row) in &a.time_wait {
        let _ = writeln!(
            s,
            "  TIME_WAIT   held by {} from row {} (seen for {} until the capture's last segment of this connection)",
            name(side),
            row + 1,
            ms(c.segs.last().map_or(0, |l| l.t_us) - c.segs[row].t_us)
        );
    }
    let last = a.rows.last();
    let fin = |side: usize| {
        last.map_or("?".to_string(), |r| {
            state_text(r.states[side], r.uncertain[side])
        })
    };
    let _ = writeln!(
        s,
        "  final       {} {}, {} {}",
        name(0),
        fin(0),
        name(1),
        fin(1)
    );
    for side in 0..2 {
        let path: Vec<&str> = a.paths[side].iter().map(|s| s.name()).collect();
        let _ = writeln!(
            s,
            "  path        {} {}",
            name(side),
            if path.is_empty() {
                "?".to_string()
            } else {
                path.join(" -> ")
            }
        );
    }
    let p = &a.phases;
    let mut phases = Vec::new();
    for (what, v) in [
        ("handshake", p.handshake_us),
        ("established", p.established_us),
        ("closing", p.closing_us),
        ("TIME_WAIT seen", p.time_wait_us),
    ] {
        if let Some(v) = v {
            phases.push(format!("{what} {}", ms(v)));
        }
    }
    phases.push(format!("total {}", ms(p.total_us)));
    let _ = writeln!(s, "  phases      {}", phases.join(", "));
    let _ = writeln!(
        s,
        "  retransmit  {} {}, {} {}",
        name(0),
        a.retransmissions[0],
        name(1),
        a.retransmissions[1]
    );
    let _ = writeln!(s, "  vantage     {}", a.vantage.text);
    if a.anomalies.is_empty() {
        let _ = writeln!(s, "  anomalies   none");
    }
    for an in &a.anomalies {
        let at = an
            .row
            .map(|r| format!(" (row {})", r + 1))
            .unwrap_or_default();
        let _ = writeln!(s, "  anomaly     {}: {}{at}", an.kind, an.text);
    }
    s
}

/// One connection as `--json` prints it (one object per line). Field names are stable
/// and documented in the README.
#[derive(Serialize)]
pub struct JsonConn {
    pub index: usize,
    pub left: String,
    pub right: String,
    pub opener: Option<&'static str>,
    pub reuses: Option<usize>,
    pub first_us: u64,
    pub last_us: u64,
    pub open: &'static str,
    pub close: &'static str,
    pub first_closer: Option<&'static str>,
    pub time_wait: Vec<&'static str>,
    pub initial_state: JsonPair,
    pub final_state: JsonPair,
    pub path: JsonPaths,
    pub phases: JsonPhases,
    pub retransmissions: JsonCounts,
    pub rtt_us: Option<u64>,
    pub vantage: JsonVantage,
    pub anomalies: Vec<JsonAnomaly>,
    pub segments: Vec<JsonSeg>,
}

#[derive(Serialize)]
pub struct JsonPair {
    pub left: Option<&'static str>,
    pub right: Option<&'static str>,
    pub left_uncertain: bool,
    pub right_uncertain: bool,
}

#[derive(Serialize)]
pub struct JsonPaths {
    pub left: Vec<&'static str>,
    pub right: Vec<&'static str>,
}

#[derive(Serialize)]
pub struct JsonPhases {
    pub handshake_us: Option<u64>,
    pub established_us: Option<u64>,
    pub closing_us: Option<u64>,
    pub time_wait_us: Option<u64>,
    pub total_us: u64,
}

#[derive(Serialize)]
pub struct JsonCounts {
    pub left: u32,
    pub right: u32,
}

#[derive(Serialize)]
pub struct JsonVantage {
    pub side: Option<&'static str>,
    pub left_answer_us: Option<u64>,
    pub right_answer_us: Option<u64>,
    pub text: String,
}

#[derive(Serialize)]
pub struct JsonAnomaly {
    pub kind: &'static str,
    pub row: Option<usize>,
    pub side: Option<&'static str>,
    pub text: String,
}

#[derive(Serialize)]
pub struct JsonSeg {
    pub row: usize,
    pub t_us: u64,
    pub from: &'static str,
    pub flags: String,
    pub seq: u32,
    pub ack: Option<u32>,
    pub len: u32,
    pub win: u32,
    pub options: String,
    pub left_state: Option<&'static str>,
    pub right_state: Option<&'static str>,
    pub left_uncertain: bool,
    pub right_uncertain: bool,
    pub received: Option<bool>,
    pub retransmission: bool,
}

/// The JSON object of one connection.
pub fn json(c: &Conn, a: &Analysis, l: &Ladder) -> JsonConn {
    let name = |s: Option<State>| s.map(State::name);
    let last = a.rows.last();
    JsonConn {
        index: c.index,
        left: c.left.to_string(),
        right: c.right.to_string(),
        opener: a.opener.map(side_name),
        reuses: c.prev.map(|p| p + 1),
        first_us: c.segs.first().map_or(0, |s| s.t_us),
        last_us: c.segs.last().map_or(0, |s| s.t_us),
        open: a.open.name(),
        close: a.close.name(),
        first_closer: a.first_closer.map(side_name),
        time_wait: a.time_wait.iter().map(|&(s, _)| side_name(s)).collect(),
        initial_state: JsonPair {
            left: name(a.initial[0]),
            right: name(a.initial[1]),
            left_uncertain: a.initial_uncertain[0],
            right_uncertain: a.initial_uncertain[1],
        },
        final_state: JsonPair {
            left: last.and_then(|r| name(r.states[0])),
            right: last.and_then(|r| name(r.states[1])),
            left_uncertain: last.is_some_and(|r| r.uncertain[0]),
            right_uncertain: last.is_some_and(|r| r.uncertain[1]),
        },
        path: JsonPaths {
            left: a.paths[0].iter().map(|s| s.name()).collect(),
            right: a.paths[1].iter().map(|s| s.name()).collect(),
        },
        phases: JsonPhases {
            handshake_us: a.phases.handshake_us,
            established_us: a.phases.established_us,
            closing_us: a.phases.closing_us,
            time_wait_us: a.phases.time_wait_us,
            total_us: a.phases.total_us,
        },
        retransmissions: JsonCounts {
            left: a.retransmissions[0],
            right: a.retransmissions[1],
        },
        rtt_us: a.rtt_us,
        vantage: JsonVantage {
            side: a.vantage.side.map(side_name),
            left_answer_us: a.vantage.answer_us[0],
            right_answer_us: a.vantage.answer_us[1],
            text: a.vantage.text.clone(),
        },
        anomalies: a
            .anomalies
            .iter()
            .map(|an| JsonAnomaly {
                kind: an.kind,
                row: an.row,
                side: an.side.map(side_name),
                text: an.text.clone(),
            })
            .collect(),
        segments: c
            .segs
            .iter()
            .zip(&a.rows)
            .zip(&l.rows)
            .enumerate()
            .map(|(i, ((s, r), lr))| JsonSeg {
                row: i,
                t_us: s.t_us,
                from: side_name(s.sender()),
                flags: s.flags.to_string(),
                seq: lr.seq,
                ack: lr.ack,
                len: s.len,
                win: lr.win,
                options: lr.options.clone(),
                left_state: name(r.states[0]),
                right_state: name(r.states[1]),
                left_uncertain: r.uncertain[0],
                right_uncertain: r.uncertain[1],
                received: r.received,
                retransmission: r.retransmission,
            })
            .collect(),
    }
}
