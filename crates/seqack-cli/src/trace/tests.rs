//! The inference against the truth: every demo scenario runs on the simulated link with
//! a pcap tap, the capture is read back and traced, and each row's inferred states must
//! equal the states the two stacks actually had (from their own events): the sender's
//! right after it emitted the segment, the receiver's right after it processed it (or,
//! for a segment the link dropped, at the moment it was sent).

use super::infer::{self, Seg};
use super::read::{self, Packet};
use crate::ladder::Dir;
use seqack::wire::tcp::{Flags, Options};
use seqack::{Duration, State};
use seqack_io::scenario::{self, Scenario};
use seqack_io::sim::{Cause, LinkConfig, TraceEntry};
use std::collections::HashMap;

/// Per TCP segment sent: (sender node, sender's state after sending, receiver's state
/// after processing it or when it was sent if it never arrived).
fn truth(out: &scenario::Outcome) -> Vec<(usize, State, State)> {
    let (client, server) = out.nodes;
    let server_listens = !matches!(
        out.options.scenario,
        Scenario::SimultaneousOpen | Scenario::Refused
    );
    let mut cur: HashMap<usize, State> = HashMap::new();
    cur.insert(client, State::Closed);
    cur.insert(
        server,
        if server_listens {
            State::Listen
        } else {
            State::Closed
        },
    );
    let mut rows: Vec<(usize, State, State)> = Vec::new();
    let mut row_of: HashMap<u64, (usize, usize)> = HashMap::new();
    let mut delivered: HashMap<u64, bool> = HashMap::new();
    for e in &out.trace {
        match e {
            TraceEntry::Sent { id, info, .. } => {
                if !info.is_tcp {
                    continue;
                }
                let to = if info.from == client { server } else { client };
                rows.push((info.from, cur[&info.from], cur[&to]));
                row_of.insert(*id, (rows.len() - 1, to));
            }
            TraceEntry::Delivered { id, .. } => {
                if let Some(&(r, to)) = row_of.get(id) {
                    if !delivered.contains_key(id) {
                        delivered.insert(*id, true);
                        rows[r].2 = cur[&to];
                    }
                }
            }
            TraceEntry::Event {
                node, event, cause, ..
            } => {
                let Some((_, _, seqack::tcp::Event::StateChange { to, .. })) = event.conn_event()
                else {
                    continue;
                };
                cur.insert(*node, to);
                if let Cause::Packet(id) = cause {
                    if let Some(&(r, rto)) = row_of.get(id) {
                        if rto == *node {
                            rows[r].2 = to;
                        }
                    }
                }
            }
        }
    }
    rows
}

fn run(sc: Scenario, ipv6: bool, seed: u64, loss: f64) -> (scenario::Outcome, Vec<u8>) {
    let dir = std::env::temp_dir().join(format!("seqack-trace-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{sc}-{ipv6}-{seed}-{loss}.pcap"));
    let mut o = scenario::Options::new(sc);
    o.ipv6 = ipv6;
    o.seed = seed;
    o.link = LinkConfig {
        loss,
        ..LinkConfig::default()
    };
    o.pcap = Some(path.clone());
    let out = scenario::run(&o);
    let bytes = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    (out, bytes)
}

/// Compares inference and truth; returns the mismatches as text.
fn compare(sc: Scenario, out: &scenario::Outcome, bytes: &[u8]) -> Vec<String> {
    let cap = read::read_bytes(bytes).unwrap();
    assert_eq!(cap.format, "pcap");
    let t = super::trace_capture(cap, 30_000_000);
    let want = truth(out);
    assert_eq!(t.conns.len(), 1, "{sc}: one connection");
    let (c, a) = (&t.conns[0], &t.analyses[0]);
    let (caddr, _) = out.addrs.expect("addresses");
    assert_eq!(c.left, caddr, "{sc}: the client is on the left");
    assert_eq!(c.segs.len(), want.len(), "{sc}: one row per segment sent");
    let (client, _) = out.nodes;
    let mut bad = Vec::new();
    for (i, ((s, r), (from, st_sender, st_recv))) in
        c.segs.iter().zip(&a.rows).zip(&want).enumerate()
    {
        let x = s.sender();
        assert_eq!(x == 0, *from == client, "{sc} row {i}: direction");
        let got = (r.states[x], r.states[1 - x]);
        if got != (Some(*st_sender), Some(*st_recv)) {
            bad.push(format!(
                "{sc} row {i} {} seq {} ack {}: inferred sender {:?} receiver {:?}, stacks had {st_sender:?} {st_recv:?}",
                s.flags, s.seq, s.ack, got.0, got.1
            ));
        }
    }
    bad
}

#[test]
fn inferred_states_equal_the_stacks_states_in_every_demo_scenario() {
    let mut bad = Vec::new();
    let mut rows = 0;
    for sc in Scenario::ALL {
        for ipv6 in [false, true] {
            let (out, bytes) = run(sc, ipv6, 1, 0.0);
            assert!(out.ok(), "{sc}: {:?}", out.failures);
            rows += truth(&out).len();
            bad.extend(compare(sc, &out, &bytes));
        }
    }
    assert!(rows > 150, "{rows} rows checked");
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}
