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

/// On a lossy link some receipts cannot be told from the capture (a lost pure ACK that
/// the next segment makes up for leaves no trace), so the states may differ there; the
/// inference must still get the great majority right.
#[test]
fn inferred_states_mostly_equal_the_stacks_states_under_loss() {
    let mut bad = Vec::new();
    let mut rows = 0;
    for sc in Scenario::ALL {
        for seed in 1..=10 {
            let (out, bytes) = run(sc, seed % 2 == 0, seed, 0.1);
            rows += truth(&out).len();
            bad.extend(
                compare(sc, &out, &bytes)
                    .into_iter()
                    .map(|b| format!("seed {seed} {b}")),
            );
        }
    }
    println!("{} of {rows} rows differ under 10% loss", bad.len());
    assert!(rows > 1000, "{rows}");
    assert!(
        bad.len() * 100 <= rows * 8,
        "{} of {rows} rows differ:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// Hand-built segment sequences
// ---------------------------------------------------------------------------------------

use super::infer::{Analysis, CloseKind, Conn, OpenKind};
use std::net::SocketAddr;

const CL: &str = "10.1.0.1:50000";
const SV: &str = "10.1.0.2:80";
/// Client and server ISNs.
const CI: u32 = 1000;
const SI: u32 = 5000;

/// A segment at `ms` from the client (`c == true`) or the server; `flags` in tcpdump
/// letters (`S`, `F`, `R`, `P`, `.` for ACK); `seq`/`ack` relative to the sender's and
/// receiver's ISN.
fn pk(us: u64, c: bool, flags: &str, seq: u32, ack: u32, len: u32) -> Packet {
    let mut f = Flags::empty();
    for ch in flags.chars() {
        f |= match ch {
            'S' => Flags::SYN,
            'F' => Flags::FIN,
            'R' => Flags::RST,
            'P' => Flags::PSH,
            '.' => Flags::ACK,
            _ => panic!("flag {ch}"),
        };
    }
    let (cl, sv): (SocketAddr, SocketAddr) = (CL.parse().unwrap(), SV.parse().unwrap());
    let (src, dst, sb, rb) = if c {
        (cl, sv, CI, SI)
    } else {
        (sv, cl, SI, CI)
    };
    Packet {
        t_us: us,
        src,
        dst,
        flags: f,
        seq: sb.wrapping_add(seq),
        ack: if f.ack() { rb.wrapping_add(ack) } else { 0 },
        win: 1000,
        options: Options::default(),
        len,
    }
}

fn ms(m: u64) -> u64 {
    m * 1000
}

fn go(p: &[Packet]) -> (Vec<Conn>, Vec<Analysis>) {
    let t = super::trace_capture(
        read::Capture {
            format: "pcap",
            packets: p.to_vec(),
            ..read::Capture::default()
        },
        30_000_000,
    );
    (t.conns, t.analyses)
}

fn one(p: &[Packet]) -> Analysis {
    let (c, mut a) = go(p);
    assert_eq!(c.len(), 1, "one connection");
    a.remove(0)
}

/// Both sides' states after each row, as names ("?" unknown, "x?" uncertain).
fn states(a: &Analysis) -> Vec<(String, String)> {
    let cell = |s: Option<State>, u: bool| match s {
        Some(s) if u => format!("{}?", s.name()),
        Some(s) => s.name().to_string(),
        None => "?".into(),
    };
    a.rows
        .iter()
        .map(|r| {
            (
                cell(r.states[0], r.uncertain[0]),
                cell(r.states[1], r.uncertain[1]),
            )
        })
        .collect()
}

fn kinds(a: &Analysis) -> Vec<&'static str> {
    a.anomalies.iter().map(|x| x.kind).collect()
}

/// The handshake, 10 ms one way, captured between the hosts (5 ms from each).
fn open3() -> Vec<Packet> {
    vec![
        pk(0, true, "S", 0, 0, 0),
        pk(ms(10), false, "S.", 0, 1, 0),
        pk(ms(20), true, ".", 1, 1, 0),
    ]
}

fn st(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

#[test]
fn three_way_open_and_four_way_close() {
    let mut p = open3();
    p.extend([
        pk(ms(20), true, "P.", 1, 1, 100),
        pk(ms(30), false, ".", 1, 101, 0),
        pk(ms(100), true, "F.", 101, 1, 0),
        pk(ms(110), false, ".", 1, 102, 0),
        pk(ms(200), false, "F.", 1, 102, 0),
        pk(ms(210), true, ".", 102, 2, 0),
    ]);
    let a = one(&p);
    assert_eq!(
        states(&a),
        [
            st("SYN_SENT", "SYN_RECEIVED"),
            st("ESTABLISHED", "SYN_RECEIVED"),
            st("ESTABLISHED", "ESTABLISHED"),
            st("ESTABLISHED", "ESTABLISHED"),
            st("ESTABLISHED", "ESTABLISHED"),
            st("FIN_WAIT_1", "CLOSE_WAIT"),
            st("FIN_WAIT_2", "CLOSE_WAIT"),
            st("TIME_WAIT", "LAST_ACK"),
            // Nothing of the server follows its last ACK: the CLOSED is unconfirmed.
            st("TIME_WAIT", "CLOSED?"),
        ]
    );
    assert_eq!(a.initial, [Some(State::Closed), Some(State::Listen)]);
    assert_eq!(a.open, OpenKind::ThreeWay);
    assert_eq!(a.close, CloseKind::FourWay);
    assert_eq!(a.first_closer, Some(0));
    assert_eq!(a.time_wait, [(0, 7)]);
    assert_eq!(a.phases.handshake_us, Some(ms(20)));
    assert_eq!(a.phases.closing_us, Some(ms(110)));
    assert!(a.anomalies.is_empty(), "{:?}", kinds(&a));
    assert_eq!(a.retransmissions, [0, 0]);
}

#[test]
fn three_way_close_with_merged_fin_ack() {
    let mut p = open3();
    p.extend([
        pk(ms(50), false, "F.", 1, 1, 0),
        pk(ms(60), true, "F.", 1, 2, 0),
        pk(ms(70), false, ".", 2, 2, 0),
    ]);
    let a = one(&p);
    let s = states(&a);
    assert_eq!(s[3], st("CLOSE_WAIT", "FIN_WAIT_1"));
    assert_eq!(s[4], st("LAST_ACK", "TIME_WAIT"));
    assert_eq!(s[5], st("CLOSED?", "TIME_WAIT"));
    assert_eq!(a.close, CloseKind::ThreeWay);
    assert_eq!(a.first_closer, Some(1));
    assert_eq!(a.time_wait, [(1, 4)]);
}

#[test]
fn simultaneous_close_crossing_fins() {
    let mut p = open3();
    p.extend([
        pk(ms(100), true, "F.", 1, 1, 0),
        pk(ms(101), false, "F.", 1, 1, 0),
        pk(ms(110), true, ".", 2, 2, 0),
        pk(ms(111), false, ".", 2, 2, 0),
    ]);
    let a = one(&p);
    let s = states(&a);
    // The server's FIN does not acknowledge the client's: it had not seen it yet.
    assert_eq!(s[3], st("FIN_WAIT_1", "CLOSING"));
    assert_eq!(s[4], st("CLOSING", "FIN_WAIT_1"));
    // The two ACKs cross too: each is sent from CLOSING.
    assert_eq!(s[5].0, "CLOSING");
    assert_eq!(s[6].1, "CLOSING");
    assert!(
        s[5].1.starts_with("TIME_WAIT") && s[6].0.starts_with("TIME_WAIT"),
        "{s:?}"
    );
    assert_eq!(a.close, CloseKind::Simultaneous);
    assert_eq!(a.time_wait.len(), 2);
}

#[test]
fn half_close_with_data_after_the_first_fin() {
    let mut p = open3();
    p.extend([
        pk(ms(20), true, "FP.", 1, 1, 10),
        pk(ms(30), false, "P.", 1, 12, 500),
        pk(ms(40), true, ".", 12, 501, 0),
        pk(ms(60), false, "P.", 501, 12, 500),
        pk(ms(70), true, ".", 12, 1001, 0),
        pk(ms(80), false, "F.", 1001, 12, 0),
        pk(ms(90), true, ".", 12, 1002, 0),
    ]);
    let a = one(&p);
    let s = states(&a);
    assert_eq!(s[3], st("FIN_WAIT_1", "CLOSE_WAIT"));
    assert_eq!(s[4], st("FIN_WAIT_2", "CLOSE_WAIT"));
    assert_eq!(s[8], st("TIME_WAIT", "LAST_ACK"));
    assert_eq!(a.close, CloseKind::HalfClose);
    assert_eq!(a.first_closer, Some(0));
    assert!(
        !kinds(&a).contains(&"data-after-fin"),
        "the peer's data is fine"
    );
}

#[test]
fn data_after_own_fin_is_an_anomaly() {
    let mut p = open3();
    p.extend([
        pk(ms(30), true, "F.", 1, 1, 0),
        pk(ms(40), true, "P.", 2, 1, 10),
    ]);
    let a = one(&p);
    assert!(kinds(&a).contains(&"data-after-fin"), "{:?}", kinds(&a));
}

#[test]
fn retransmitted_fin_answered_in_time_wait_lost_final_ack() {
    let mut p = open3();
    p.extend([
        pk(ms(100), true, "F.", 1, 1, 0),
        pk(ms(110), false, ".", 1, 2, 0),
        pk(ms(200), false, "F.", 1, 2, 0),
        pk(ms(210), true, ".", 2, 2, 0),
        // The final ACK was lost: the server's RTO fires, it sends its FIN again.
        pk(ms(420), false, "F.", 1, 2, 0),
        pk(ms(430), true, ".", 2, 2, 0),
    ]);
    let a = one(&p);
    let s = states(&a);
    assert_eq!(
        s[6],
        st("TIME_WAIT", "LAST_ACK"),
        "lost ACK: server still LAST_ACK"
    );
    assert_eq!(a.rows[6].received, Some(false));
    assert_eq!(s[7], st("TIME_WAIT", "LAST_ACK"));
    assert!(a.rows[7].retransmission);
    assert_eq!(s[8], st("TIME_WAIT", "CLOSED?"));
    let k = kinds(&a);
    assert!(
        k.contains(&"lost-final-ack") && k.contains(&"fin-retransmitted"),
        "{k:?}"
    );
    assert_eq!(a.retransmissions, [0, 1]);
}

#[test]
fn lost_fin_is_received_as_its_retransmission() {
    let mut p = open3();
    p.extend([
        pk(ms(100), true, "F.", 1, 1, 0),
        pk(ms(310), true, "F.", 1, 1, 0),
        pk(ms(320), false, ".", 1, 2, 0),
    ]);
    let a = one(&p);
    let s = states(&a);
    assert_eq!(s[3], st("FIN_WAIT_1", "ESTABLISHED"));
    assert_eq!(a.rows[3].received, Some(false));
    assert_eq!(s[4], st("FIN_WAIT_1", "CLOSE_WAIT"));
    // Nothing of the client follows the ACK: FIN_WAIT_2 is unconfirmed.
    assert_eq!(s[5].0, "FIN_WAIT_2?");
    assert!(kinds(&a).contains(&"fin-retransmitted"));
    assert!(kinds(&a).contains(&"left-in-close-wait") && kinds(&a).contains(&"left-in-fin-wait-2"));
}

#[test]
fn rst_in_each_state() {
    // Refused: RST answers the SYN; nobody listened.
    let a = one(&[pk(0, true, "S", 0, 0, 0), pk(ms(10), false, "R.", 0, 1, 0)]);
    assert_eq!(a.open, OpenKind::Refused);
    assert_eq!(a.initial[1], Some(State::Closed));
    assert_eq!(
        states(&a),
        [st("SYN_SENT", "CLOSED"), st("CLOSED", "CLOSED")]
    );
    assert_eq!(a.close, CloseKind::Rst);
    // RST in SYN_RECEIVED (the client gives up on the SYN-ACK).
    let a = one(&[
        pk(0, true, "S", 0, 0, 0),
        pk(ms(10), false, "S.", 0, 1, 0),
        pk(ms(20), true, "R", 1, 0, 0),
    ]);
    assert_eq!(states(&a)[2], st("CLOSED", "CLOSED"));
    // RST in ESTABLISHED.
    let mut p = open3();
    p.push(pk(ms(50), true, "R.", 1, 1, 0));
    let a = one(&p);
    assert_eq!(states(&a)[3], st("CLOSED", "CLOSED"));
    assert_eq!(a.close, CloseKind::Rst);
    assert_eq!(a.first_closer, Some(0));
    assert!(a.time_wait.is_empty());
    // RST in reply to FIN (FIN_WAIT_1 and CLOSE_WAIT).
    let mut p = open3();
    p.push(pk(ms(50), true, "F.", 1, 1, 0));
    p.push(pk(ms(60), false, "R.", 1, 2, 0));
    let a = one(&p);
    assert_eq!(states(&a)[4], st("CLOSED", "CLOSED"));
    assert!(kinds(&a).contains(&"rst-after-fin"), "{:?}", kinds(&a));
    assert_eq!(a.close, CloseKind::Rst);
    // RST in FIN_WAIT_2 / CLOSE_WAIT.
    let mut p = open3();
    p.push(pk(ms(50), true, "F.", 1, 1, 0));
    p.push(pk(ms(60), false, ".", 1, 2, 0));
    p.push(pk(ms(90), false, "R.", 1, 2, 0));
    let a = one(&p);
    assert_eq!(states(&a)[4], st("FIN_WAIT_2?", "CLOSE_WAIT"));
    assert_eq!(states(&a)[5], st("CLOSED", "CLOSED"));
    // RST in LAST_ACK and in TIME_WAIT.
    let mut p = open3();
    p.extend([
        pk(ms(50), true, "F.", 1, 1, 0),
        pk(ms(60), false, "F.", 1, 2, 0),
        pk(ms(70), true, "R", 2, 0, 0),
    ]);
    let a = one(&p);
    // The client never acknowledged the FIN (it reset instead): unconfirmed.
    assert_eq!(states(&a)[4], st("TIME_WAIT?", "LAST_ACK"));
    assert_eq!(states(&a)[5], st("CLOSED", "CLOSED"));
    // A RST reaching TIME_WAIT ends it (Linux's default, RFC 1337 not applied).
    let mut p = open3();
    p.extend([
        pk(ms(50), true, "F.", 1, 1, 0),
        pk(ms(60), false, "F.", 1, 2, 0),
        pk(ms(70), true, ".", 2, 2, 0),
        pk(ms(900), false, "R", 2, 0, 0),
    ]);
    let a = one(&p);
    assert_eq!(states(&a)[5], st("TIME_WAIT", "CLOSED"));
    assert_eq!(states(&a)[6], st("CLOSED", "CLOSED"));
}

#[test]
fn syn_without_answer() {
    let a = one(&[
        pk(0, true, "S", 0, 0, 0),
        pk(ms(1000), true, "S", 0, 0, 0),
        pk(ms(3000), true, "S", 0, 0, 0),
    ]);
    assert_eq!(a.open, OpenKind::Unanswered);
    assert_eq!(a.close, CloseKind::Never);
    let k = kinds(&a);
    assert!(k.contains(&"syn-unanswered"), "{k:?}");
    assert_eq!(k.iter().filter(|k| **k == "syn-retransmitted").count(), 2);
    assert!(a.rows.iter().all(|r| r.states[0] == Some(State::SynSent)));
    assert!(
        a.rows.iter().all(|r| r.states[1].is_none()),
        "the server is unknown"
    );
}

#[test]
fn simultaneous_open() {
    let a = one(&[
        pk(0, true, "S", 0, 0, 0),
        pk(0, false, "S", 0, 0, 0),
        pk(ms(10), true, "S.", 0, 1, 0),
        pk(ms(10), false, "S.", 0, 1, 0),
        pk(ms(20), true, ".", 1, 1, 0),
    ]);
    assert_eq!(a.open, OpenKind::Simultaneous);
    assert_eq!(a.initial, [Some(State::Closed), Some(State::Closed)]);
    let s = states(&a);
    assert_eq!(s[0], st("SYN_SENT", "SYN_RECEIVED"));
    assert_eq!(s[1], st("SYN_RECEIVED", "SYN_SENT"));
    assert_eq!(s[2], st("SYN_RECEIVED", "ESTABLISHED"));
    assert_eq!(s[3], st("ESTABLISHED", "SYN_RECEIVED"));
}

#[test]
fn four_tuple_reuse_within_2msl() {
    let mut p = open3();
    p.extend([
        pk(ms(100), true, "F.", 1, 1, 0),
        pk(ms(110), false, "F.", 1, 2, 0),
        pk(ms(120), true, ".", 2, 2, 0),
    ]);
    // A new SYN on the same 4-tuple 5 s later, with a new ISN.
    let mut n = pk(ms(5120), true, "S", 0, 0, 0);
    n.seq = 900_000;
    p.push(n);
    let mut sa = pk(ms(5130), false, "S.", 0, 0, 0);
    sa.seq = 77;
    sa.ack = 900_001;
    p.push(sa);
    let (c, a) = go(&p);
    assert_eq!(c.len(), 2, "the second SYN starts a second connection");
    assert_eq!(c[1].prev, Some(0));
    assert_eq!(a[0].time_wait, [(0, 4)]);
    let k = kinds(&a[1]);
    assert!(k.contains(&"short-time-wait"), "{k:?}");
    assert!(
        a[1].anomalies[0].text.contains("5.010 s"),
        "{}",
        a[1].anomalies[0].text
    );
    // After 61 s it is fine.
    let mut q = p.clone();
    q[6].t_us = ms(61_120);
    q[7].t_us = ms(61_130);
    let (_, a) = go(&q);
    assert!(!kinds(&a[1]).contains(&"short-time-wait"));
}

#[test]
fn capture_starting_mid_connection_is_uncertain_until_pinned() {
    let a = one(&[
        pk(0, true, "P.", 100, 300, 50),
        pk(ms(10), false, ".", 300, 150, 0),
        pk(ms(30), false, "F.", 300, 150, 0),
        pk(ms(40), true, ".", 150, 301, 0),
        pk(ms(50), true, "F.", 150, 301, 0),
        pk(ms(60), false, ".", 301, 151, 0),
    ]);
    assert_eq!(a.open, OpenKind::MidConnection);
    assert!(kinds(&a).contains(&"mid-connection"));
    let s = states(&a);
    assert_eq!(s[0], st("ESTABLISHED?", "ESTABLISHED?"));
    assert_eq!(s[1], st("ESTABLISHED?", "ESTABLISHED?"));
    // The server's FIN pins the server.
    assert_eq!(s[2], st("CLOSE_WAIT?", "FIN_WAIT_1"));
    // The client's FIN pins the client.
    assert_eq!(s[4], st("LAST_ACK", "TIME_WAIT"));
    assert_eq!(a.close, CloseKind::FourWay);
    assert_eq!(a.first_closer, Some(1));
}

#[test]
fn vantage_point_from_answer_times() {
    // Captured on the client: it answers the SYN-ACK in 30 us, the server takes 40 ms.
    let a = one(&[
        pk(0, true, "S", 0, 0, 0),
        pk(ms(40), false, "S.", 0, 1, 0),
        pk(ms(40) + 30, true, ".", 1, 1, 0),
        pk(ms(50), true, "F.", 1, 1, 0),
        pk(ms(90), false, "F.", 1, 2, 0),
        pk(ms(90) + 25, true, ".", 2, 2, 0),
    ]);
    assert_eq!(a.vantage.side, Some(0), "{}", a.vantage.text);
    assert_eq!(a.vantage.answer_us, [Some(25), Some(ms(40))]);
    // Captured on the server.
    let b = one(&[
        pk(0, true, "S", 0, 0, 0),
        pk(20, false, "S.", 0, 1, 0),
        pk(ms(40), true, ".", 1, 1, 0),
    ]);
    assert_eq!(b.vantage.side, Some(1), "{}", b.vantage.text);
    // Between: both take a while.
    let c = one(&open3());
    assert_eq!(c.vantage.side, None);
    assert!(c.vantage.text.contains("between"), "{}", c.vantage.text);
}

#[test]
fn crossing_segments_on_a_server_side_capture() {
    // Captured on the server, 40 ms round trip: the client's ACK of the server's FIN
    // and the client's own FIN. The client's FIN (captured 1 ms after the server's FIN
    // was sent) left before the server's FIN reached it: simultaneous close.
    let a = one(&[
        pk(0, true, "S", 0, 0, 0),
        pk(20, false, "S.", 0, 1, 0),
        pk(ms(40), true, ".", 1, 1, 0),
        pk(ms(100), false, "F.", 1, 1, 0),
        pk(ms(101), true, "F.", 1, 1, 0),
        pk(ms(101) + 20, false, ".", 2, 2, 0),
        pk(ms(140), true, ".", 2, 2, 0),
    ]);
    assert_eq!(a.close, CloseKind::Simultaneous);
    let s = states(&a);
    assert_eq!(s[4], st("FIN_WAIT_1", "CLOSING"));
}

#[test]
fn an_ack_sent_in_the_same_instant_as_the_fin_is_not_part_of_the_close() {
    // Captured on the server (seqack against the kernel over TUN): the client ACKs the
    // data and, in the same microsecond, sends its FIN, which acknowledges the server's.
    // Only queued data goes out after a close(); a bare ACK is not taken as sent after
    // one, so this is the three-way close it was, not a simultaneous one.
    let a = one(&[
        pk(0, true, "S", 0, 0, 0),
        pk(0, false, "S.", 0, 1, 0),
        pk(392, true, ".", 1, 1, 0),
        pk(768, false, "P.", 1, 1, 1000),
        pk(845, false, "F.", 1001, 1, 0),
        pk(967, true, ".", 1, 1001, 0),
        pk(967, true, "F.", 1, 1002, 0),
        pk(967, false, ".", 1002, 2, 0),
    ]);
    assert_eq!(a.close, CloseKind::ThreeWay);
    let s = states(&a);
    assert_eq!(s[5], st("ESTABLISHED", "FIN_WAIT_1"));
    assert_eq!(s[6], st("LAST_ACK", "TIME_WAIT"));
}

#[test]
fn zero_window_and_retransmitted_data() {
    let mut p = open3();
    p.push(pk(ms(30), true, "P.", 1, 1, 100));
    let mut z = pk(ms(40), false, ".", 1, 101, 0);
    z.win = 0;
    p.push(z);
    p.push(pk(ms(300), true, "P.", 1, 1, 100));
    let a = one(&p);
    assert!(kinds(&a).contains(&"zero-window"));
    assert_eq!(a.retransmissions, [1, 0]);
    assert!(a.rows[5].retransmission);
}

#[test]
fn grouping_by_four_tuple_and_sides() {
    // Two interleaved connections; the second starts mid-way, server port lower.
    let mut p = open3();
    let mut other = pk(ms(5), false, "P.", 10, 20, 5);
    other.src = "10.1.0.9:443".parse().unwrap();
    other.dst = "10.1.0.1:50001".parse().unwrap();
    p.insert(1, other);
    let (c, _) = go(&p);
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].left.to_string(), CL);
    assert_eq!(
        c[1].left.to_string(),
        "10.1.0.1:50001",
        "the ephemeral port is the left"
    );
    assert_eq!(c[1].segs[0].dir, Dir::Left);
    let _: &Seg = &c[0].segs[0];
    let _ = infer::group(&[]);
    let _ = Duration::ZERO;
}

#[test]
fn syn_sent_again_after_a_lost_rst_is_the_same_connection() {
    // The RST answering the first SYN is lost; the client's SYN comes again (same ISN)
    // and is refused again: one connection. A SYN with another ISN after the RST is a
    // new one.
    let mut p = vec![
        pk(0, true, "S", 0, 0, 0),
        pk(ms(10), false, "R.", 0, 1, 0),
        pk(ms(1000), true, "S", 0, 0, 0),
        pk(ms(1010), false, "R.", 0, 1, 0),
    ];
    let (c, a) = go(&p);
    assert_eq!(c.len(), 1);
    assert_eq!(a[0].open, OpenKind::Refused);
    assert!(kinds(&a[0]).contains(&"syn-retransmitted"));
    let mut n = pk(ms(2000), true, "S", 0, 0, 0);
    n.seq = 42;
    p.push(n);
    let (c, _) = go(&p);
    assert_eq!(c.len(), 2);
}
