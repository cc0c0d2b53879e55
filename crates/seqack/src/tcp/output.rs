//! Segment generation: what to send next, written straight into the caller's buffer.

use super::congestion::CongestionControl;
use super::conn::{Connection, Control};
use super::timers::Timer;
use super::State;
use crate::counters::Counters;
use crate::time::Instant;
use crate::wire::checksum;
use crate::wire::ip::{self, PROTO_TCP};
use crate::wire::tcp::{self, Flags, Header, Options, SackBlock};
use crate::wire::Seq;

/// The packet of a burst that the next full-sized segments repeat: where it is, its IP
/// and TCP header lengths, and the part of the checksum every one of them shares (the
/// pseudo-header and the TCP header but its sequence number, [`tcp::repeat_base`]).
#[derive(Clone, Copy)]
struct Template {
    index: usize,
    ihl: usize,
    hlen: usize,
    base: u64,
}

/// Where a burst ([`Connection::poll_transmit_burst`]) stands between its packets.
#[derive(Clone, Copy, Default)]
pub(crate) struct Burst {
    /// The last packet written, when it was a full-sized segment of new data.
    template: Option<Template>,
    /// After a full-sized segment: the unsent data and the window's room it left, and
    /// its payload size. Nothing else [`Connection::next_is_full_segment`] looks at
    /// changes when such a segment is sent, so the next one is decided from these.
    left: Option<(u32, u32, u32)>,
    /// The last repeated segment left its timers as every further one of the burst
    /// would (more than one segment in flight): they need not be set again.
    timers_settled: bool,
}

impl Connection {
    /// Writes the next IP packet this connection wants to send into `buf` and returns its
    /// length, or `None` when there is nothing to send now. Call until it returns `None`.
    ///
    /// `buf` should hold a whole MTU. When the next packet is longer than `buf`, the
    /// result is `None` with nothing sent or changed: [`Connection::buffer_too_small`]
    /// says so, `out_buf_too_small` counts it, and the same packet is the next one due
    /// when a large enough buffer comes.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        cx: &mut Counters,
    ) -> Option<usize> {
        let n = self.next_segment(now, buf, cx);
        if n.is_none() && self.short_buffer() {
            cx.out_buf_too_small += 1;
        }
        self.tidy();
        n
    }

    /// Whether the last call for output stopped at a packet longer than the buffer it
    /// was given (and so sent nothing and changed nothing).
    pub fn buffer_too_small(&self) -> bool {
        self.short_buffer()
    }

    /// Writes up to `bufs.len()` packets, exactly as that many calls of
    /// [`Connection::poll_transmit`] would (stopping at the first with nothing to send):
    /// packet `i` into `bufs[i]`, its length into `lens[i]`. Returns how many.
    ///
    /// A run of full-sized segments of new data, the bulk of any transfer, is decided
    /// once: each segment after the run's first repeats that one's headers with its
    /// own sequence number (GSO-style, [`tcp::emit_repeat`]), so what is left per
    /// segment is the payload's copy and checksum and the bookkeeping of one more
    /// segment in flight.
    pub fn poll_transmit_burst<B: AsMut<[u8]>>(
        &mut self,
        now: Instant,
        bufs: &mut [B],
        lens: &mut [usize],
        cx: &mut Counters,
    ) -> usize {
        let max = bufs.len().min(lens.len());
        let mut burst = Burst::default();
        let mut n = 0;
        while n < max && self.burst_step(now, &mut bufs[..max], lens, n, &mut burst, cx) {
            n += 1;
        }
        n
    }

    /// Packet `n` of a burst, into `bufs[n]` (the earlier ones hold the burst's packets
    /// so far), its length into `lens[n]`: what the `n + 1`th call of
    /// [`Connection::poll_transmit`] would write. False when there is nothing to send.
    /// The stack calls this packet by packet to keep its timer wheel exactly as it
    /// would be after one `poll_transmit` at a time.
    pub(crate) fn burst_step<B: AsMut<[u8]>>(
        &mut self,
        now: Instant,
        bufs: &mut [B],
        lens: &mut [usize],
        n: usize,
        burst: &mut Burst,
        cx: &mut Counters,
    ) -> bool {
        let limits = match burst.left.take() {
            Some(left) => Some(left),
            None => self.next_is_full_segment(),
        };
        let full =
            limits.and_then(|(unsent, room, mss)| (unsent > mss && room >= mss).then_some(mss));
        let left = |mss: u32| limits.map(|(unsent, room, _)| (unsent - mss, room - mss, mss));
        if let (Some(mss), Some(t)) = (full, burst.template) {
            let (done, rest) = bufs.split_at_mut(n);
            let tpl = &done[t.index].as_mut()[..lens[t.index]];
            let buf = rest[0].as_mut();
            if let Some(len) = self.repeat_segment(now, tpl, &t, buf, mss, burst.timers_settled, cx)
            {
                lens[n] = len;
                burst.left = left(mss);
                burst.timers_settled = self.snd_max.since(self.snd_una) > self.smss;
                return true;
            }
        }
        let sent = self.next_segment(now, bufs[n].as_mut(), cx);
        self.tidy();
        let Some(len) = sent else {
            if self.short_buffer() {
                cx.out_buf_too_small += 1;
            }
            return false;
        };
        lens[n] = len;
        burst.left = full.and_then(left);
        burst.timers_settled = false;
        burst.template = full.map(|mss| {
            let ihl = ip::header_len(self.remote().ip());
            let tcp_len = len - ihl;
            let hlen = tcp_len - mss as usize;
            let pseudo = checksum::pseudo_header(
                self.local().ip(),
                self.remote().ip(),
                PROTO_TCP,
                tcp_len as u32,
            );
            Template {
                index: n,
                ihl,
                hlen,
                base: tcp::repeat_base(&bufs[n].as_mut()[ihl..len], hlen, pseudo),
            }
        });
        true
    }

    /// The limits of the next segment (unsent data, window room, payload of a full
    /// segment, as `send_limits` gives them) when [`Connection::next_segment`] is
    /// certain to go straight to new data with ACK alone and options the segment after
    /// it will repeat (no D-SACK block, which goes out once), with more data unsent
    /// than a segment holds; `None` otherwise. Its decisions in order, without their
    /// side effects. The segment is a full-sized one, not the last of the data (so no
    /// PSH or FIN), when the unsent data exceeds the payload and the room holds it.
    fn next_is_full_segment(&self) -> Option<(u32, u32, u32)> {
        // First what rules out most segments of a request/response exchange: no more
        // unsent data than one segment holds even with the most options beside
        // timestamps (the exact payload follows from `send_limits`).
        let data_end = self.buf_seq + self.send_buf.len();
        if data_end <= self.snd_nxt
            || data_end.since(self.snd_nxt) <= self.smss.saturating_sub(tcp::MAX_OPTIONS_LEN as u32)
        {
            return None;
        }
        if self.control().is_some()
            || self.dsack().is_some()
            || !self.state.sends_data()
            || self.snd_nxt == self.iss
            || self.snd_nxt != self.snd_max
            || self.handshake_ack()
            || self.probe_pending()
            || (self.keepalive() && !self.timers.is_set(Timer::Keepalive))
        {
            return None;
        }
        let rec = self.rec();
        if rec.sack_recovery || rec.rexmit_resume.is_some() {
            return None;
        }
        let (unsent, mss, room) = self.send_limits();
        Some((unsent, room, mss))
    }

    /// The segment after `tpl` (the last packet [`Connection::next_segment`] wrote, a
    /// full-sized segment of new data) in a burst, with what `transmit_data` and
    /// `emit` do for it: the same headers but for the sequence number, the next `mss`
    /// bytes, and the same bookkeeping. `None` (nothing changed) if `buf` is too small.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn repeat_segment(
        &mut self,
        now: Instant,
        tpl: &[u8],
        t: &Template,
        buf: &mut [u8],
        mss: u32,
        timers_settled: bool,
        cx: &mut Counters,
    ) -> Option<usize> {
        let seq = self.snd_nxt;
        let off = seq.since(self.buf_seq) as usize;
        let payload = self.send_buf.slices(off, mss as usize);
        if buf.len() < tpl.len() {
            return None;
        }
        let (ip_out, tcp_out) = buf.split_at_mut(t.ihl);
        ip_out.copy_from_slice(&tpl[..t.ihl]);
        let n = tcp::emit_repeat(tcp_out, &tpl[t.ihl..], t.hlen, seq, payload, t.base)?;
        cx.out_segs += 1;
        let seg_end = seq + mss;
        self.log_sent(now, seq, mss, false);
        self.after_ack_sent();
        self.set_challenge_due(false);
        if self.rtt_probe().is_none() && !self.ts_enabled() {
            self.set_rtt_probe(Some((seg_end, now)));
        }
        self.snd_nxt = seg_end;
        self.snd_max = self.snd_max.max(seg_end);
        // The RTO armed and then handed over to the loss probe, as after any new data.
        // Once more than a segment is in flight, doing it again at the same `now`
        // leaves both timers exactly as they are.
        if !timers_settled {
            if !self.timers.is_set(Timer::Retransmit) {
                self.timers.set(Timer::Retransmit, self.rto_deadline(now));
            }
            self.arm_loss_probe(now);
        }
        Some(t.ihl + n)
    }

    // Inlined into both of its callers (poll_transmit and burst_step), as is
    // transmit_data into it: out of line, the churn workload ran 1.3 % more
    // instructions (callgrind).
    #[inline(always)]
    fn next_segment(&mut self, now: Instant, buf: &mut [u8], cx: &mut Counters) -> Option<usize> {
        // A packet longer than `buf` is not sent and changes nothing: each step below
        // that clears a flag before it writes sets it again when the write comes back
        // short, and stops there, so that packet is the next one due.
        self.set_short_buffer(false);
        if let Some(c) = self.control() {
            let n = self.emit_control(c, buf, cx);
            if n.is_some() {
                self.set_control(None);
            }
            return n;
        }
        if matches!(self.state, State::Closed | State::Listen) {
            return None;
        }
        // SO_KEEPALIVE is on (from the Config at the handshake, or set since through
        // sockopts_mut) and no probe is scheduled: the idle time starts now, as Linux arms
        // the timer at connection setup and in setsockopt (RFC 9293 3.8.4). Arriving
        // segments push it back (on_synchronized).
        if self.keepalive()
            && self.state.is_synchronized()
            && self.state != State::TimeWait
            && !self.timers.is_set(Timer::Keepalive)
        {
            self.timers
                .set(Timer::Keepalive, now + self.keepalive_idle());
        }
        // Our SYN (or SYN-ACK) is unsent, or due for retransmission.
        if self.snd_nxt == self.iss && self.state != State::TimeWait {
            return self.emit_syn(now, buf, cx);
        }
        if self.state == State::SynSent {
            return None;
        }
        if self.handshake_ack() {
            self.set_handshake_ack(false);
            if self.ack_now() {
                let seq = self.ack_seq();
                let n = self.emit(now, buf, seq, Flags::ACK, 0, 0, false, cx);
                if self.short_buffer() {
                    self.set_handshake_ack(true);
                }
                return n;
            }
        }
        if self.take_probe_pending() {
            if let Some(n) = self.emit_loss_probe(now, buf, cx) {
                return Some(n);
            }
            if self.short_buffer() {
                self.set_probe_pending(true);
                return None;
            }
        }
        if let Some(n) = self.transmit_data(now, buf, cx) {
            return Some(n);
        }
        if self.short_buffer() {
            return None;
        }
        if self.probe_due() {
            // Zero-window and keepalive probes: an ACK one below SND.UNA, which the peer
            // must answer with an ACK carrying its window (Linux's tcp_xmit_probe_skb).
            self.set_probe_due(false);
            let n = self.emit(now, buf, self.snd_una - 1u32, Flags::ACK, 0, 0, false, cx);
            if self.short_buffer() {
                self.set_probe_due(true);
            }
            return n;
        }
        if self.ack_now() {
            if self.cfg.resend_fin_in_acks && !self.challenge_due() && self.fin_unacked_alone() {
                // FreeBSD: an ACK while our FIN is outstanding carries the FIN again.
                let seq = self.fin_seq();
                return self.emit(now, buf, seq, Flags::FIN | Flags::ACK, 0, 0, false, cx);
            }
            let seq = self.ack_seq();
            return self.emit(now, buf, seq, Flags::ACK, 0, 0, false, cx);
        }
        None
    }

    /// Our FIN has been sent and is the only thing unacknowledged, with nothing being
    /// retransmitted.
    fn fin_unacked_alone(&self) -> bool {
        self.fin_queued()
            && self.snd_nxt == self.snd_max
            && self.snd_max == self.fin_seq() + 1u32
            && self.snd_una == self.fin_seq()
    }

    /// The sequence number of a bare ACK (a challenge ACK included): the RFC's SND.NXT,
    /// which is our SND.MAX, since a retransmission moves `snd_nxt` back to SND.UNA while
    /// the peer may hold everything up to SND.MAX; an ACK below that would be outside
    /// the peer's window, and dropped with the acknowledgment it carries (two ends
    /// retransmitting at once then deadlock). If the peer's window has shrunk below
    /// SND.MAX, its right edge (Linux: tcp_acceptable_seq).
    pub(super) fn ack_seq(&self) -> Seq {
        let wnd_end = self.snd_una + self.snd_wnd;
        if self.snd_max <= wnd_end {
            self.snd_max
        } else {
            wnd_end
        }
    }

    fn emit_syn(&mut self, now: Instant, buf: &mut [u8], cx: &mut Counters) -> Option<usize> {
        let syn_ack = self.state != State::SynSent;
        let flags = if syn_ack {
            Flags::SYN | Flags::ACK
        } else {
            Flags::SYN
        };
        // A SYN-ACK after our own SYN (simultaneous open) is a new segment, not a
        // retransmission of the SYN.
        let retransmission = if syn_ack {
            self.synack_sent()
        } else {
            self.snd_max != self.iss
        };
        let mut opts = self.syn_options(now, syn_ack);
        let data = if syn_ack {
            0
        } else {
            self.fast_open_syn(&mut opts, retransmission)
        };
        let n = self.write_segment(now, buf, self.iss, flags, 0, data as usize, opts)?;
        self.set_synack_sent(self.synack_sent() | syn_ack);
        if retransmission {
            self.set_rtx_tsval(opts.timestamps.map(|(val, _)| val));
            self.syn_rtx += 1;
            cx.retrans_segs += 1;
        } else {
            cx.out_segs += 1;
            self.set_rtt_probe(Some((self.iss + 1u32, now)));
        }
        if self.syn_tsval().is_none() {
            self.set_syn_tsval(opts.timestamps.map(|(val, _)| val));
        }
        self.snd_nxt = self.iss + 1u32 + data;
        self.snd_max = self.snd_max.max(self.snd_nxt);
        if !self.timers.is_set(Timer::Retransmit) {
            self.timers.set(Timer::Retransmit, self.rto_deadline(now));
        }
        if syn_ack {
            self.after_ack_sent();
        }
        Some(n)
    }

    /// New data, retransmitted data, and FIN, within the peer's window and our
    /// congestion window, with Nagle (RFC 9293 3.7.4) and sender-side SWS avoidance.
    #[inline(always)]
    fn transmit_data(&mut self, now: Instant, buf: &mut [u8], cx: &mut Counters) -> Option<usize> {
        if !self.state.sends_data() {
            return None;
        }
        if self.rec().sack_recovery {
            if let Some(n) = self.retransmit_lost(now, buf, cx) {
                return Some(n);
            }
            if self.short_buffer() {
                return None;
            }
        }
        let data_end = self.buf_seq + self.send_buf.len();
        let end = data_end + u32::from(self.fin_queued());
        if self.snd_nxt >= end {
            return None;
        }
        let (unsent, mss, room) = self.send_limits();
        let len = unsent.min(mss).min(room);
        let retransmission = self.snd_nxt < self.snd_max;
        let in_flight = self.snd_max > self.snd_una;
        let mut probe = false;
        if !retransmission && self.window_too_small(unsent, mss, room) {
            // Sender SWS avoidance (RFC 1122 4.2.3.4, RFC 9293 3.8.6.2.1): the window
            // leaves room for less than a full segment and less than half the largest
            // window the peer offered. ACKs of the data in flight will open it; with
            // nothing in flight the persist timer's probe carries what the window
            // allows (Linux: tcp_snd_wnd_test holds the segment, tcp_write_wakeup sends
            // the probe).
            if len == 0 || !self.probe_due() || in_flight {
                self.maybe_arm_persist(now);
                return None;
            }
            probe = true;
        } else if len < mss && len == unsent && !retransmission && self.nagle_holds() {
            return None;
        }
        // The FIN takes one sequence number, so it needs room in the peer's window too.
        let fin = self.fin_queued() && self.snd_nxt + len == data_end && room > len;
        if len == 0 && !fin {
            self.maybe_arm_persist(now);
            return None;
        }
        let mut flags = Flags::ACK;
        if probe || (len > 0 && self.snd_nxt + len == data_end) {
            flags |= Flags::PSH;
        }
        if fin {
            flags |= Flags::FIN;
        }
        let seq = self.snd_nxt;
        let off = seq.since(self.buf_seq) as usize;
        let n = self.emit(now, buf, seq, flags, off, len as usize, retransmission, cx)?;
        let seg_end = seq + len + u32::from(fin);
        if !retransmission && self.rtt_probe().is_none() && !self.ts_enabled() {
            self.set_rtt_probe(Some((seg_end, now)));
        }
        if !retransmission && len < mss {
            // Linux: tcp_minshall_update.
            self.snd_sml = seg_end;
        }
        if probe {
            // Data is in flight now: the retransmission timer takes over from the
            // persist timer, with the backoff started over (Linux: tcp_send_probe0).
            self.set_probe_due(false);
            self.timers.stop(Timer::Persist);
            self.backoff = 0;
            self.probes = 0;
        }
        self.snd_nxt = seg_end;
        if let Some(resume) = self.rec_if().and_then(|r| r.rexmit_resume.take()) {
            self.snd_nxt = self.snd_nxt.max(resume);
        }
        self.snd_max = self.snd_max.max(seg_end);
        if !self.timers.is_set(Timer::Retransmit) {
            self.timers.set(Timer::Retransmit, self.rto_deadline(now));
        }
        if !retransmission {
            // New data: the probe timer counts from the latest transmission.
            self.arm_loss_probe(now);
        }
        Some(n)
    }

    /// RFC 6675 NextSeg in SACK-based recovery, rules 1, 3 and 4 (rule 2, new data, is
    /// the ordinary path after this): the first lost hole above HighRxt; or, when there
    /// is no new data to send, the first hole above HighRxt at all; or else, once per
    /// recovery, a rescue retransmission of the highest unSACKed segment. One segment
    /// at most, and only if the pipe leaves a segment's room in the congestion window
    /// (the entry's first retransmission goes regardless).
    fn retransmit_lost(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        cx: &mut Counters,
    ) -> Option<usize> {
        let mss = self.smss.saturating_sub(self.sack_option_len()).max(1);
        // (Called only in SACK-based recovery, which holds the recovery state.)
        let rec = self.recovery.as_deref()?;
        let first = rec.rexmit_first;
        let mut rescue = false;
        let hole = if first {
            let end = rec.board.ranges().first().map_or(self.snd_max, |r| r.0);
            Some((self.snd_una, end))
        } else {
            let pipe = rec
                .board
                .pipe(self.snd_una, self.snd_max, rec.high_rxt, self.smss);
            if self.cc.cwnd() < pipe.saturating_add(mss) {
                return None;
            }
            let from = rec.high_rxt.max(self.snd_una);
            // RACK's losses first (they include lost retransmissions below HighRxt),
            // then RFC 6675's.
            let rack = self
                .rack
                .as_ref()
                .and_then(|r| r.next_lost(self.snd_una, &rec.board, mss));
            rack.or_else(|| rec.board.next_lost(from, self.smss))
                .or_else(|| {
                    // NextSeg rule 3: with no new data to send, the first hole above
                    // HighRxt below the highest SACKed byte goes even if not yet lost.
                    let (unsent, seg, room) = self.send_limits();
                    let new_data = unsent > 0 && room >= unsent.min(seg);
                    let fin_unsent = self.fin_queued() && self.snd_max == self.fin_seq();
                    if new_data || fin_unsent {
                        return None;
                    }
                    rec.board.holes(from).next().or_else(|| {
                        // Rule 4: one rescue retransmission per recovery, of the segment
                        // holding the highest unSACKed byte, when nothing else is left
                        // (a lost tail would otherwise wait for the RTO).
                        let top = rec.board.highest().unwrap_or(self.snd_una).max(from);
                        let due = rec.rescue_rxt.is_none_or(|r| self.snd_una > r);
                        if due && top < self.snd_max {
                            rescue = true;
                            let start = (self.snd_max - seg).max(top);
                            Some((start, self.snd_max))
                        } else {
                            None
                        }
                    })
                })
        };
        let (start, end) = hole?;
        let end = end.min(self.snd_max);
        if end <= start {
            self.rec_mut().rexmit_first = false;
            return None;
        }
        let data_end = self.buf_seq + self.send_buf.len();
        let len = if start < data_end {
            end.min(data_end).since(start).min(mss)
        } else {
            0
        };
        // The FIN, if it is in the hole and the segment reaches it.
        let fin = self.fin_queued() && start + len == data_end && end > data_end;
        if len == 0 && !fin {
            self.rec_mut().rexmit_first = false;
            return None;
        }
        let mut flags = Flags::ACK;
        if fin {
            flags |= Flags::FIN;
        }
        let off = start.since(self.buf_seq) as usize;
        let n = self.emit(now, buf, start, flags, off, len as usize, true, cx)?;
        let r = self.rec_mut();
        r.rexmit_first = false;
        if rescue {
            r.rescue_rxt = r.recover;
        } else {
            // (RFC 6675: the rescue retransmission leaves HighRxt alone.)
            r.high_rxt = r.high_rxt.max(start + len + u32::from(fin));
        }
        if !self.timers.is_set(Timer::Retransmit) {
            self.timers.set(Timer::Retransmit, self.rto_deadline(now));
        }
        Some(n)
    }

    /// The tail loss probe (RFC 8985 7.3): a segment of new data if the peer's window
    /// allows one, whatever the congestion window says; otherwise the last segment sent
    /// (or the FIN) again.
    fn emit_loss_probe(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        cx: &mut Counters,
    ) -> Option<usize> {
        let data_end = self.buf_seq + self.send_buf.len();
        let mss = self.smss.saturating_sub(self.sack_option_len()).max(1);
        let wnd_right = self.snd_una + self.snd_wnd;
        if self.snd_nxt == self.snd_max && self.snd_nxt < data_end && wnd_right > self.snd_nxt {
            let seq = self.snd_nxt;
            let room = wnd_right.since(seq);
            let len = data_end.since(seq).min(mss).min(room);
            let fin = self.fin_queued() && seq + len == data_end && room > len;
            let mut flags = Flags::ACK | Flags::PSH;
            if fin {
                flags |= Flags::FIN;
            }
            let off = seq.since(self.buf_seq) as usize;
            let n = self.emit(now, buf, seq, flags, off, len as usize, false, cx)?;
            self.snd_nxt = seq + len + u32::from(fin);
            self.snd_max = self.snd_max.max(self.snd_nxt);
            let snd_max = self.snd_max;
            let r = self.rec_mut();
            r.tlp_end = Some(snd_max);
            r.tlp_rexmit = None;
            return Some(n);
        }
        let end = self.snd_max;
        let fin_sent = self.fin_queued() && end == data_end + 1u32;
        let data_last = if fin_sent { data_end } else { end };
        let start = if data_last.since(self.snd_una) > mss {
            data_last - mss
        } else {
            self.snd_una.min(data_last)
        };
        let len = data_last.since(start);
        let mut flags = Flags::ACK;
        if fin_sent {
            flags |= Flags::FIN;
        }
        if len == 0 && !fin_sent {
            return None;
        }
        let off = start.since(self.buf_seq) as usize;
        let n = self.emit(now, buf, start, flags, off, len as usize, true, cx)?;
        let snd_max = self.snd_max;
        let r = self.rec_mut();
        r.tlp_end = Some(snd_max);
        r.tlp_rexmit = Some((start, end, false));
        Some(n)
    }

    /// What limits the next segment: (data not yet sent, the payload of a full segment,
    /// the room the peer's window and the congestion window leave past SND.NXT). In
    /// SACK-based recovery the congestion window bounds the pipe, not SND.NXT - SND.UNA
    /// (RFC 6675 5 step (C)).
    pub(super) fn send_limits(&self) -> (u32, u32, u32) {
        let data_end = self.buf_seq + self.send_buf.len();
        // RFC 9293 3.7.1: the data shrinks by the options the segment carries beyond
        // those SMSS already allows for (timestamps), so the packet stays within the
        // MTU the peer's MSS stands for (Linux: tcp_current_mss).
        let mss = self.smss.saturating_sub(self.sack_option_len()).max(1);
        let unsent = if self.snd_nxt < data_end {
            data_end.since(self.snd_nxt)
        } else {
            0
        };
        let rec = self.rec();
        let right = if rec.sack_recovery {
            self.snd_una + self.snd_wnd
        } else {
            self.snd_una + self.snd_wnd.min(self.cc.cwnd())
        };
        let mut room = if right > self.snd_nxt {
            right.since(self.snd_nxt)
        } else {
            0
        };
        if rec.sack_recovery {
            let pipe = rec
                .board
                .pipe(self.snd_una, self.snd_max, rec.high_rxt, self.smss);
            room = room.min(self.cc.cwnd().saturating_sub(pipe));
        }
        (unsent, mss, room)
    }

    /// Sender-side silly window avoidance (RFC 1122 4.2.3.4, RFC 9293 3.8.6.2.1): the
    /// next segment would be cut short by the window (less than a full segment and less
    /// than all the data queued) to less than half the largest window the peer has
    /// offered (Fs = 1/2), so it waits.
    pub(super) fn window_too_small(&self, unsent: u32, mss: u32, room: u32) -> bool {
        let want = unsent.min(mss);
        let len = want.min(room);
        len < want && (len == 0 || len < self.max_snd_wnd / 2)
    }

    /// Nagle's algorithm (RFC 9293 3.7.4) in Minshall's variant, as Linux runs it
    /// (tcp_nagle_check, tcp_minshall_check): a short segment waits only while an
    /// earlier short segment is unacknowledged, so the tail of a write goes out with
    /// the full segments before it instead of one round trip later. TCP_NODELAY turns
    /// it off, and a queued FIN pushes everything out (Linux sends the rest with
    /// TCP_NAGLE_OFF once the FIN is queued).
    fn nagle_holds(&self) -> bool {
        !self.nodelay()
            && !self.fin_queued()
            && self.snd_una < self.snd_sml
            && self.snd_sml <= self.snd_max
    }

    /// Arms the persist timer when the peer's window stops us and nothing is in flight
    /// to bring a window update back.
    fn maybe_arm_persist(&mut self, now: Instant) {
        if self.snd_max == self.snd_una
            && !self.timers.is_set(Timer::Persist)
            && !self.timers.is_set(Timer::Retransmit)
        {
            self.timers.set(Timer::Persist, self.rto_deadline(now));
        }
    }

    /// Writes a segment with ACK and this connection's window and options, with `len`
    /// bytes of payload from offset `off` of the send buffer, and counts it.
    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        seq: Seq,
        flags: Flags,
        off: usize,
        len: usize,
        retransmission: bool,
        cx: &mut Counters,
    ) -> Option<usize> {
        let mut opts = Options::default();
        if self.ts_enabled() {
            opts.timestamps = Some((self.ts_val(now), self.ts.recent));
        }
        if self.sack_ok() {
            self.fill_sack(&mut opts);
        }
        let n = self.write_segment(now, buf, seq, flags, off, len, opts)?;
        if retransmission {
            self.set_rtx_tsval(opts.timestamps.map(|(val, _)| val));
            cx.retrans_segs += 1;
        } else {
            cx.out_segs += 1;
        }
        let seg_len = len as u32 + u32::from(flags.fin());
        self.log_sent(now, seq, seg_len, retransmission);
        if flags.ack() {
            self.after_ack_sent();
        }
        self.set_challenge_due(false);
        Some(n)
    }

    /// Enters `seg_len` sequence numbers from `seq` in RACK's log. A segment alone in
    /// flight needs no RACK: nothing sent after it can be delivered first. The log
    /// starts with the second one (what was already in flight is entered as sent now:
    /// later, never early), so a request/response exchange never allocates it.
    #[inline(always)]
    fn log_sent(&mut self, now: Instant, seq: Seq, seg_len: u32, retransmission: bool) {
        let rack_on = seg_len > 0 && self.sack_ok() && self.cfg.rack;
        if rack_on && (self.rack.is_some() || self.snd_max != self.snd_una) {
            let now_us = now.total_micros();
            let (una, max) = (self.snd_una, self.snd_max);
            let r = self.rack.get_or_insert_with(|| {
                let mut r = super::rack::Rack::new();
                r.sent(una, max, now_us, false);
                Box::new(r)
            });
            r.sent(seq, seq + seg_len, now_us, retransmission);
        }
    }

    /// Bookkeeping after any segment that carried our current ACK and window.
    fn after_ack_sent(&mut self) {
        self.last_ack_sent = self.rcv_nxt;
        self.set_dsack(None);
        self.set_ack_now(false);
        self.unacked_bytes = 0;
        self.timers.stop(Timer::DelayedAck);
    }

    /// The bytes the SACK blocks of our next segment add to its options.
    fn sack_option_len(&self) -> u32 {
        if !self.sack_ok() || (!self.recv_buf.has_out_of_order() && self.dsack().is_none()) {
            return 0;
        }
        let mut base = Options::default();
        if self.ts_enabled() {
            base.timestamps = Some((0, 0));
        }
        let mut with = base;
        self.fill_sack(&mut with);
        let layout = self.cfg.option_layout;
        (with.len(layout) - base.len(layout)) as u32
    }

    /// SACK blocks (RFC 2018 section 4): the block holding the latest out-of-order
    /// segment first, then the other blocks in the order they last changed, then any
    /// older ones from the lowest, as many as fit.
    fn fill_sack(&self, opts: &mut Options) {
        if let Some((left, right)) = self.dsack() {
            // RFC 2883 4: a duplicate segment is reported first, once.
            opts.push_sack(SackBlock { left, right });
        }
        let ranges = self.recv_buf.out_of_order();
        if ranges.is_empty() {
            return;
        }
        let block = |&(s, e): &(u32, u32)| SackBlock {
            left: self.rcv_nxt + s,
            right: self.rcv_nxt + e,
        };
        let mut used = [false; 64];
        let recent = self.sack_recent().iter().flatten().filter_map(|&q| {
            ranges
                .iter()
                .position(|&(s, e)| q.in_range(self.rcv_nxt + s, self.rcv_nxt + e))
        });
        let order = recent.chain(0..ranges.len());
        for i in order {
            if used.get(i).copied().unwrap_or(false) {
                continue;
            }
            if let Some(u) = used.get_mut(i) {
                *u = true;
            }
            if !opts.push_sack(block(&ranges[i])) {
                break;
            }
        }
    }

    /// The window offered in a SYN or SYN-ACK (never scaled, RFC 7323 2.2).
    pub(super) fn syn_window(&self) -> u32 {
        (self.recv_buf.window() as u32)
            .min(self.cfg.initial_window_cap)
            .min(65535)
    }

    /// The window field to send, scaled, never moving the right edge left (RFC 9293
    /// 3.8.6.2.2) and with receiver-side SWS avoidance.
    fn window_field(&mut self, syn: bool) -> u16 {
        if syn {
            let w = self.syn_window();
            self.rcv_adv = self.rcv_nxt + w;
            return w as u16;
        }
        let free = self.recv_buf.window() as u32;
        let ws = self.rcv_wscale;
        let current = self.rcv_adv.diff(self.rcv_nxt).max(0) as u32;
        let max = (self.recv_buf.capacity() as u32).min(65535 << ws);
        let mut wnd = free.min(max);
        if self.cfg.advertise_free_space {
            // FreeBSD: all free space, a silly one (under min(MSS, buffer/4)) as zero,
            // never less than what was already offered.
            if wnd < (self.recv_buf.capacity() as u32 / 4).min(self.smss) {
                wnd = 0;
            }
            return self.window_to_field(wnd.max(current), current);
        }
        let threshold = (self.recv_buf.capacity() as u32 / 2).min(self.rcv_mss);
        // Hold the right edge for a small opening, unless the window is now as large
        // as it can be (the whole buffer, or all the field can carry): a maximal
        // window is never a silly one.
        if wnd > current && wnd - current < threshold && wnd < max {
            wnd = current;
        }
        self.window_to_field(wnd.max(current), current)
    }

    /// The window field for `wnd` bytes, recording the new right edge. Rounded up so
    /// the right edge never moves left (as Linux does), as long as the ring can hold
    /// what that offers: its capacity plus its slack
    /// ([`super::recv_buf::RecvBuffer::set_window_scale`]). Past that it is rounded down, the
    /// edge retracting by less than a unit (RFC 7323 appendix F): rounding up on every
    /// ACK while the application does not read would otherwise let the edge creep
    /// beyond the buffer, and the bytes the peer sends up to it be dropped.
    fn window_to_field(&mut self, wnd: u32, current: u32) -> u16 {
        let ws = self.rcv_wscale;
        let mut field = wnd >> ws;
        if field << ws < current {
            field += 1;
        }
        let room = u32::try_from(self.recv_buf.room()).unwrap_or(u32::MAX);
        if u64::from(field) << ws > u64::from(room) {
            field = room >> ws;
        }
        let field = field.min(65535);
        let edge = self.rcv_nxt + (field << ws);
        if edge > self.rcv_adv {
            self.rcv_adv = edge;
        }
        field as u16
    }

    #[allow(clippy::too_many_arguments)]
    fn write_segment(
        &mut self,
        _now: Instant,
        buf: &mut [u8],
        seq: Seq,
        flags: Flags,
        off: usize,
        len: usize,
        options: Options,
    ) -> Option<usize> {
        let adv = self.rcv_adv;
        let window = self.window_field(flags.syn());
        let (local, remote) = (self.local(), self.remote());
        let hdr = Header {
            src_port: local.port(),
            dst_port: remote.port(),
            seq,
            ack: if flags.ack() { self.rcv_nxt } else { Seq(0) },
            flags,
            window,
            options,
        };
        let payload = self.send_buf.slices(off, len);
        let n = write_packet(
            buf,
            local,
            remote,
            &hdr,
            self.cfg.option_layout,
            payload,
            self.cfg.hop_limit,
        );
        if n.is_none() {
            // Not sent: the window it would have offered was not offered.
            self.rcv_adv = adv;
            self.set_short_buffer(true);
        }
        n
    }

    fn emit_control(&mut self, c: Control, buf: &mut [u8], cx: &mut Counters) -> Option<usize> {
        let (local, remote) = (self.local(), self.remote());
        let mut flags = if c.rst { Flags::RST } else { Flags::empty() };
        if c.ack.is_some() {
            flags |= Flags::ACK;
        }
        let hdr = Header {
            src_port: local.port(),
            dst_port: remote.port(),
            seq: c.seq,
            ack: c.ack.unwrap_or(Seq(0)),
            flags,
            window: 0,
            options: Options::default(),
        };
        let n = write_packet(
            buf,
            local,
            remote,
            &hdr,
            self.cfg.option_layout,
            (&[], &[]),
            self.cfg.hop_limit,
        );
        let Some(n) = n else {
            self.set_short_buffer(true);
            return None;
        };
        cx.out_segs += 1;
        if c.rst {
            cx.out_rsts += 1;
        }
        Some(n)
    }
}

/// Writes an IP packet holding one TCP segment. Returns `None` if `buf` is too small.
pub fn write_packet(
    buf: &mut [u8],
    local: core::net::SocketAddr,
    remote: core::net::SocketAddr,
    hdr: &Header,
    layout: tcp::OptionLayout,
    payload: (&[u8], &[u8]),
    hop_limit: u8,
) -> Option<usize> {
    // The addresses once: each `SocketAddr::ip()` is a match and a 17-byte copy.
    let (src, dst) = (local.ip(), remote.ip());
    let ihl = ip::header_len(dst);
    if buf.len() < ihl {
        return None;
    }
    let (head, rest) = buf.split_at_mut(ihl);
    let tlen = tcp::emit(rest, hdr, layout, payload, src, dst)?;
    ip::emit(head, src, dst, PROTO_TCP, hop_limit, tlen);
    Some(ihl + tlen)
}
