//! TIME_WAIT at the stack level: a connection the application closed lives on as a
//! compact record, and the record answers every segment exactly as the full connection
//! would (both apply `tcp::time_wait::time_wait_segment`; these tests check the whole
//! path, packets included). RFC 9293 3.10.7.4, RFC 1337, RFC 6191, RFC 7323.

use seqack::stack::{StackConfig, StackEvent};
use seqack::tcp::{write_packet, Shutdown};
use seqack::wire::tcp::{Flags, Header, OptionLayout, Options};
use seqack::wire::{ip, tcp, Seq};
use seqack::{Config, ConnId, Duration, Event, Instant, ListenerId, Reason, Stack, State};
use std::net::SocketAddr;

const SERVER: &str = "10.0.0.2:80";
const PEER: &str = "10.0.0.1:50000";
const PEER_ISN: u32 = 1000;

/// A segment the stack sent, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Out {
    flags: Flags,
    seq: u32,
    ack: u32,
    window: u16,
    ts: Option<(u32, u32)>,
    len: usize,
}

/// One stack (the server, which closes first) and a scripted peer.
struct Harness {
    stack: Stack,
    now: Instant,
    /// The stack's ISS, learnt from its SYN-ACK.
    iss: u32,
    /// The peer's TSval clock.
    peer_ts: u32,
    /// The last TSval the stack sent.
    last_ts: u32,
    timestamps: bool,
    events: Vec<StackEvent>,
    listener: ListenerId,
}

impl Harness {
    fn new(cfg: StackConfig) -> Harness {
        let timestamps = cfg.tcp.timestamps;
        let mut stack = Stack::new(cfg);
        stack.add_address("10.0.0.2".parse().unwrap());
        let listener = stack.listen(SERVER.parse().unwrap(), 16).unwrap();
        Harness {
            stack,
            now: Instant::from_millis(1000),
            iss: 0,
            peer_ts: 5000,
            last_ts: 0,
            timestamps,
            events: Vec::new(),
            listener,
        }
    }

    fn send(&mut self, flags: Flags, seq: u32, ack: u32, data: &[u8]) -> Vec<Out> {
        self.peer_ts += 1;
        let ts = self.timestamps.then_some((self.peer_ts, self.last_ts));
        self.send_ts(flags, seq, ack, data, ts)
    }

    fn send_ts(
        &mut self,
        flags: Flags,
        seq: u32,
        ack: u32,
        data: &[u8],
        ts: Option<(u32, u32)>,
    ) -> Vec<Out> {
        let options = Options {
            mss: flags.syn().then_some(1460),
            timestamps: ts,
            ..Default::default()
        };
        let hdr = Header {
            src_port: 50000,
            dst_port: 80,
            seq: Seq(seq),
            ack: Seq(ack),
            flags,
            window: 65535,
            options,
        };
        let (from, to): (SocketAddr, SocketAddr) = (PEER.parse().unwrap(), SERVER.parse().unwrap());
        let mut buf = vec![0u8; 1600];
        let n = write_packet(
            &mut buf,
            from,
            to,
            &hdr,
            OptionLayout::Linux,
            (data, &[]),
            64,
        )
        .unwrap();
        self.stack.handle_packet(self.now, &buf[..n]);
        self.drain()
    }

    fn drain(&mut self) -> Vec<Out> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 1600];
        while let Some(n) = self.stack.poll_transmit(self.now, &mut buf) {
            let p = ip::parse(&buf[..n]).unwrap();
            let s = tcp::parse(p.payload, p.src, p.dst, true).unwrap();
            if let Some((val, _)) = s.options.timestamps {
                self.last_ts = val;
            }
            out.push(Out {
                flags: s.flags,
                seq: s.seq.0,
                ack: s.ack.0,
                window: s.window,
                ts: s.options.timestamps,
                len: s.payload.len(),
            });
        }
        while let Some(e) = self.stack.poll_event() {
            self.events.push(e);
        }
        out
    }

    /// Runs timers until `until`, waking at every deadline the stack asks for.
    fn run_until(&mut self, until: Instant) -> Vec<Out> {
        let mut out = Vec::new();
        for _ in 0..100_000 {
            match self.stack.poll_timeout() {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    self.stack.handle_timeout(self.now);
                    out.extend(self.drain());
                }
                _ => break,
            }
        }
        self.now = until;
        self.stack.handle_timeout(until);
        out.extend(self.drain());
        out
    }

    /// Handshake, then the application closes (`orphan`) or shuts down its sending
    /// half, the peer ACKs our FIN and sends its own: TIME_WAIT, final ACK sent.
    fn reach_time_wait(&mut self, orphan: bool) -> ConnId {
        let out = self.send(Flags::SYN, PEER_ISN, 0, b"");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].flags, Flags::SYN | Flags::ACK);
        self.iss = out[0].seq;
        self.now += Duration::from_millis(10);
        self.send(Flags::ACK, PEER_ISN + 1, self.iss + 1, b"");
        let id = self.stack.accept(self.listener).expect("accepted");
        self.now += Duration::from_millis(10);
        if orphan {
            self.stack.close(self.now, id);
        } else {
            self.stack.shutdown(self.now, id, Shutdown::Write);
        }
        let fin = self.drain();
        assert_eq!(fin.len(), 1);
        assert!(fin[0].flags.fin());
        self.now += Duration::from_millis(10);
        self.send(Flags::ACK, PEER_ISN + 1, self.iss + 2, b"");
        self.now += Duration::from_millis(10);
        let last = self.send(Flags::FIN | Flags::ACK, PEER_ISN + 1, self.iss + 2, b"");
        assert_eq!(last.len(), 1, "{last:?}");
        assert_eq!((last[0].seq, last[0].ack), (self.iss + 2, PEER_ISN + 2));
        id
    }

    fn entered_time_wait_at(&self) -> Instant {
        self.now
    }

    fn ended(&self) -> Vec<Reason> {
        self.events
            .iter()
            .filter_map(|e| match e.conn_event()? {
                (
                    _,
                    _,
                    Event::StateChange {
                        from: State::TimeWait,
                        to: State::Closed,
                        why,
                    },
                ) => Some(why),
                _ => None,
            })
            .collect()
    }
}

fn config(timestamps: bool, rfc1337: bool) -> StackConfig {
    StackConfig {
        tcp: Config {
            timestamps,
            rfc1337,
            ..Config::default()
        },
        seed: 11,
        ..Default::default()
    }
}

#[test]
fn a_closed_connection_in_time_wait_becomes_a_compact_record() {
    let mut h = Harness::new(config(true, true));
    let id = h.reach_time_wait(true);
    assert_eq!(h.stack.connection_count(), 0);
    assert_eq!(h.stack.time_wait().len(), 1);
    assert!(h.stack.conn(id).is_none(), "the handle is released");
    let rec = h
        .stack
        .time_wait()
        .get(SERVER.parse().unwrap(), PEER.parse().unwrap())
        .unwrap();
    assert_eq!(rec.deadline, h.now + Duration::from_secs(60));
    assert!(rec.timestamps);
    assert!(seqack::stack::time_wait::TimeWaitTable::record_size_v4() <= 64);
    assert!(seqack::stack::time_wait::TimeWaitTable::record_size_v6() <= 64);
}

#[test]
fn a_connection_not_closed_by_its_application_keeps_its_full_state() {
    let mut h = Harness::new(config(true, true));
    let id = h.reach_time_wait(false);
    assert_eq!(h.stack.state(id), State::TimeWait);
    assert_eq!(h.stack.time_wait().len(), 0);
    // close() now hands it over, with the rest of its 2MSL.
    h.now += Duration::from_secs(20);
    h.stack.close(h.now, id);
    h.drain();
    assert_eq!(h.stack.time_wait().len(), 1);
    assert_eq!(h.stack.connection_count(), 0);
    let rec = h
        .stack
        .time_wait()
        .get(SERVER.parse().unwrap(), PEER.parse().unwrap())
        .unwrap();
    assert_eq!(rec.deadline, h.now + Duration::from_secs(40));
}

/// The attacks and stray segments of TIME_WAIT, sent to a full connection in
/// TIME_WAIT and to a record: every reply is identical, byte for byte.
#[test]
fn a_record_answers_every_segment_exactly_as_the_full_connection() {
    for timestamps in [false, true] {
        for rfc1337 in [true, false] {
            let mut full = Harness::new(config(timestamps, rfc1337));
            let mut rec = Harness::new(config(timestamps, rfc1337));
            full.reach_time_wait(false);
            rec.reach_time_wait(true);
            assert_eq!(
                (full.stack.time_wait().len(), rec.stack.time_wait().len()),
                (0, 1)
            );
            let iss = rec.iss;
            assert_eq!(full.iss, iss, "same seed, same ISN");
            let rcv_nxt = PEER_ISN + 2;
            type Case = (&'static str, Flags, u32, u32, &'static [u8]);
            let cases: [Case; 8] = [
                ("old duplicate ACK", Flags::ACK, PEER_ISN + 1, iss + 2, b""),
                (
                    "second one, rate-limited",
                    Flags::ACK,
                    PEER_ISN + 1,
                    iss + 2,
                    b"",
                ),
                ("in-window bare ACK", Flags::ACK, rcv_nxt, iss + 2, b""),
                (
                    "retransmitted FIN",
                    Flags::FIN | Flags::ACK,
                    PEER_ISN + 1,
                    iss + 2,
                    b"",
                ),
                (
                    "old data",
                    Flags::ACK | Flags::PSH,
                    PEER_ISN - 10,
                    iss + 2,
                    b"abc",
                ),
                (
                    "data after the FIN",
                    Flags::ACK | Flags::PSH,
                    rcv_nxt,
                    iss + 2,
                    b"xyz",
                ),
                ("old SYN", Flags::SYN, PEER_ISN, 0, b""),
                ("RST out of window", Flags::RST, rcv_nxt + 1_000_000, 0, b""),
            ];
            for (what, flags, seq, ack, data) in cases {
                full.now += Duration::from_millis(100);
                rec.now += Duration::from_millis(100);
                let (a, b) = if flags.syn() && timestamps {
                    // An old duplicate SYN has an old timestamp (a newer one would
                    // reopen the 4-tuple: see the RFC 6191 tests below).
                    let old = Some((1, 0));
                    (
                        full.send_ts(flags, seq, ack, data, old),
                        rec.send_ts(flags, seq, ack, data, old),
                    )
                } else {
                    (
                        full.send(flags, seq, ack, data),
                        rec.send(flags, seq, ack, data),
                    )
                };
                assert_eq!(a, b, "{what} (timestamps {timestamps}, rfc1337 {rfc1337})");
                assert_eq!(full.stack.counters(), rec.stack.counters(), "{what}");
                assert_eq!(rec.stack.time_wait().len(), 1, "{what}");
            }
            // The exact-sequence RST: ignored under RFC 1337, else it ends TIME_WAIT.
            let a = full.send(Flags::RST, rcv_nxt, 0, b"");
            let b = rec.send(Flags::RST, rcv_nxt, 0, b"");
            assert_eq!(
                (a.len(), b.len()),
                (0, 0),
                "{a:?} {b:?} ts {timestamps} rfc1337 {rfc1337}"
            );
            let expected_left = usize::from(rfc1337);
            assert_eq!(rec.stack.time_wait().len(), expected_left);
            if rfc1337 {
                // The out-of-window RST above and this one.
                assert_eq!(rec.stack.counters().tw_rst_ignored, 2);
                assert_eq!(full.stack.counters().tw_rst_ignored, 2);
            } else {
                assert_eq!(rec.ended(), vec![Reason::RcvRst]);
                assert_eq!(full.ended(), vec![Reason::RcvRst]);
            }
        }
    }
}

#[test]
fn stray_acks_are_answered_at_most_once_per_rate_limit_interval() {
    let mut h = Harness::new(config(false, true));
    h.reach_time_wait(true);
    let old = PEER_ISN + 1;
    let first = h.send(Flags::ACK, old, h.iss + 2, b"");
    assert_eq!(first.len(), 1);
    assert_eq!((first[0].seq, first[0].ack), (h.iss + 2, PEER_ISN + 2));
    for _ in 0..10 {
        h.now += Duration::from_millis(40);
        assert!(h.send(Flags::ACK, old, h.iss + 2, b"").is_empty());
    }
    assert_eq!(h.stack.counters().ack_skipped_time_wait, 10);
    h.now += Duration::from_millis(200);
    assert_eq!(h.send(Flags::ACK, old, h.iss + 2, b"").len(), 1);
    // Data is always answered: it cannot start an ACK loop.
    assert_eq!(h.send(Flags::ACK, old, h.iss + 2, b"x").len(), 1);
}

#[test]
fn the_record_expires_exactly_after_2msl_and_a_retransmitted_fin_restarts_it() {
    let mut h = Harness::new(config(true, true));
    h.reach_time_wait(true);
    let entered = h.entered_time_wait_at();
    // A retransmitted FIN 10 s in: ACKed again, 2MSL starts over.
    h.run_until(entered + Duration::from_secs(10));
    let again = h.send(Flags::FIN | Flags::ACK, PEER_ISN + 1, h.iss + 2, b"");
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].flags, again[0].ack), (Flags::ACK, PEER_ISN + 2));
    let restarted = h.now;
    h.run_until(entered + Duration::from_secs(60) + Duration::from_millis(500));
    assert_eq!(h.stack.time_wait().len(), 1, "not at the old deadline");
    h.run_until(Instant::from_micros(
        (restarted + Duration::from_secs(60)).total_micros() - 1,
    ));
    assert_eq!(h.stack.time_wait().len(), 1, "never early");
    h.run_until(restarted + Duration::from_secs(60));
    assert_eq!(h.stack.time_wait().len(), 0);
    assert_eq!(h.ended(), vec![Reason::Timer2Msl]);
    assert_eq!(h.stack.poll_timeout(), None);
}

#[test]
fn a_2msl_longer_than_a_wheel_revolution_still_expires_on_time() {
    let mut cfg = config(false, true);
    cfg.tcp.msl = Duration::from_secs(100);
    let mut h = Harness::new(cfg);
    h.reach_time_wait(true);
    let entered = h.entered_time_wait_at();
    h.run_until(entered + Duration::from_secs(199));
    assert_eq!(h.stack.time_wait().len(), 1);
    h.run_until(entered + Duration::from_secs(200));
    assert_eq!(h.stack.time_wait().len(), 0);
    assert_eq!(h.ended(), vec![Reason::Timer2Msl]);
}

#[test]
fn a_new_syn_above_rcv_nxt_reopens_the_tuple_with_an_isn_above_the_old_one() {
    let mut h = Harness::new(config(false, true));
    h.reach_time_wait(true);
    h.now += Duration::from_secs(1);
    let out = h.send(Flags::SYN, PEER_ISN + 100_000, 0, b"");
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].flags, Flags::SYN | Flags::ACK);
    assert_eq!(out[0].ack, PEER_ISN + 100_001);
    let old_snd_nxt = Seq(h.iss + 2);
    assert!(
        Seq(out[0].seq) >= old_snd_nxt + 65537u32,
        "new ISN above the old space"
    );
    assert_eq!(h.stack.counters().tw_recycled, 1);
    assert_eq!(h.stack.time_wait().len(), 0);
    assert_eq!(h.ended(), vec![Reason::TimeWaitRecycled]);
    assert_eq!(h.stack.connection_count(), 1);
}

#[test]
fn a_syn_with_a_newer_timestamp_reopens_the_tuple_even_below_rcv_nxt() {
    let mut h = Harness::new(config(true, true));
    h.reach_time_wait(true);
    h.now += Duration::from_secs(1);
    let newer = Some((h.peer_ts + 1000, 0));
    let out = h.send_ts(Flags::SYN, PEER_ISN.wrapping_sub(5000), 0, b"", newer);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, Flags::SYN | Flags::ACK);
    assert_eq!(h.stack.counters().tw_recycled, 1);
    // An old timestamp and an old sequence number: TIME_WAIT stays and ACKs.
    let mut h = Harness::new(config(true, true));
    h.reach_time_wait(true);
    let older = Some((h.peer_ts - 1000, 0));
    let out = h.send_ts(Flags::SYN, PEER_ISN.wrapping_sub(5000), 0, b"", older);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, Flags::ACK);
    assert_eq!(h.stack.time_wait().len(), 1);
}

#[test]
fn a_full_table_closes_the_connection_without_time_wait() {
    let mut cfg = config(false, true);
    cfg.max_tw_buckets = 0;
    let mut h = Harness::new(cfg);
    h.reach_time_wait(true);
    assert_eq!(h.stack.time_wait().len(), 0);
    assert_eq!(h.stack.connection_count(), 0);
    assert_eq!(h.stack.counters().tw_overflow, 1);
    assert_eq!(h.ended(), vec![Reason::TimeWaitOverflow]);
    // The tuple is free again: a retransmitted FIN now meets a listener, which resets.
    let out = h.send(Flags::FIN | Flags::ACK, PEER_ISN + 1, h.iss + 2, b"");
    assert_eq!(out.len(), 1);
    assert!(out[0].flags.rst());
}

/// The passive closer's connection is freed once LAST_ACK ends: it is not listed among
/// the stack's connections any more (it once lingered there, CLOSED, for ever).
#[test]
fn a_connection_closed_from_last_ack_is_freed() {
    let mut h = Harness::new(config(false, true));
    let out = h.send(Flags::SYN, PEER_ISN, 0, b"");
    h.iss = out[0].seq;
    h.send(Flags::ACK, PEER_ISN + 1, h.iss + 1, b"");
    let id = h.stack.accept(h.listener).expect("accepted");
    // The peer closes first; the application then closes: LAST_ACK. The ACK of the
    // peer's FIN is delayed (Linux), so our FIN carries it: the three-way close.
    let ack = h.send(Flags::FIN | Flags::ACK, PEER_ISN + 1, h.iss + 1, b"");
    assert!(ack.is_empty(), "the ACK of the FIN waits: {ack:?}");
    h.stack.close(h.now, id);
    let fin = h.drain();
    assert_eq!(fin.len(), 1);
    assert_eq!(
        (fin[0].flags, fin[0].ack),
        (Flags::FIN | Flags::ACK, PEER_ISN + 2)
    );
    assert_eq!(h.stack.state(id), State::LastAck);
    h.send(Flags::ACK, PEER_ISN + 2, h.iss + 2, b"");
    assert_eq!(h.stack.connection_count(), 0);
    assert_eq!(h.stack.connections().count(), 0, "the slot is released");
    assert!(h.stack.conn(id).is_none());
}
