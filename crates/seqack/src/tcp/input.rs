//! Segment arrival: RFC 9293 section 3.10.7, step by step, with RFC 5961's defences
//! against blind attacks, PAWS (RFC 7323 section 5) and RFC 1337 in TIME_WAIT.

use super::congestion::{Congestion, CongestionControl};
use super::conn::{Connection, Control, Disposition};
use super::event::{Error, Event, Reason};
use super::time_wait::{time_wait_segment, TimeWaitAction};
use super::timers::Timer;
use super::State;
use crate::counters::Counters;
use crate::time::{Duration, Instant};
use crate::wire::tcp::{Flags, Segment};
use crate::wire::Seq;

/// PAWS does not reject against a TS.Recent older than this (RFC 7323 5.5).
const PAWS_IDLE: Duration = Duration::from_secs(24 * 24 * 3600);

/// RTO for data after a handshake that gave no RTT sample (RFC 6298 5.7; Linux's
/// TCP_TIMEOUT_FALLBACK).
const RTO_FALLBACK: Duration = Duration::from_secs(3);

impl Connection {
    /// Processes one arriving segment addressed to this connection.
    pub fn handle_segment(
        &mut self,
        now: Instant,
        seg: &Segment<'_>,
        cx: &mut Counters,
    ) -> Disposition {
        let d = self.on_segment(now, seg, cx);
        self.tidy();
        d
    }

    /// For a driver that sums arriving payloads as it copies them
    /// ([`wire::tcp::parse_into_deferred`]): copies the payload of `seg`, a segment
    /// whose checksum is not yet verified, into the free part of the receive ring at
    /// RCV.NXT, and returns `sum` (the pseudo-header and header sum) with the payload
    /// added. Nothing else changes: until [`Connection::handle_staged_segment`] takes
    /// the segment, the bytes lie where no data is. `None` (nothing done) unless the
    /// segment is the next in-order data of a connection that still takes data from its
    /// peer (ESTABLISHED, or FIN_WAIT_1 and FIN_WAIT_2 after `shutdown(Write)`: a
    /// download after a half-close) whose application has not shut down reading
    /// (`close()` does that too), and the ring has the room already
    /// ([`RecvBuffer::stage`]): the caller then sums the payload itself and hands the
    /// segment to [`Connection::handle_segment`].
    ///
    /// [`wire::tcp::parse_into_deferred`]: crate::wire::tcp::parse_into_deferred
    /// [`RecvBuffer::stage`]: super::recv_buf::RecvBuffer::stage
    pub fn stage_payload(&mut self, seg: &Segment<'_>, sum: u64) -> Option<u64> {
        if !matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2
        ) || seg.flags.syn()
            || seg.seq != self.rcv_nxt
            || self.rd_shut()
        {
            return None;
        }
        self.recv_buf.stage(seg.payload, sum)
    }

    /// [`Connection::handle_segment`] for a segment whose checksum held and whose
    /// payload [`Connection::stage_payload`] placed, with no call on this connection
    /// in between: the data it accepts in order is taken where it lies, not copied
    /// again.
    pub fn handle_staged_segment(
        &mut self,
        now: Instant,
        seg: &Segment<'_>,
        cx: &mut Counters,
    ) -> Disposition {
        self.set_payload_staged(true);
        let d = self.handle_segment(now, seg, cx);
        self.set_payload_staged(false);
        d
    }

    fn on_segment(&mut self, now: Instant, seg: &Segment<'_>, cx: &mut Counters) -> Disposition {
        match self.state {
            State::Closed | State::Listen => return Disposition::NoConnection,
            State::SynSent => {
                self.on_syn_sent(now, seg, cx);
                return Disposition::Consumed;
            }
            State::TimeWait => return self.on_time_wait(now, seg, cx),
            _ => {}
        }
        if !self.predicted(now, seg, cx) {
            self.on_synchronized(now, seg, cx);
        }
        Disposition::Consumed
    }

    /// Header prediction (as Linux's `tcp_rcv_established` fast path): the next
    /// in-order data segment of a connection that is only receiving, ESTABLISHED, with
    /// nothing of ours in flight or queued, and the ACK, window and options the last
    /// segment brought. It is processed here with exactly the effects the full path
    /// ([`Connection::on_synchronized`]) has on such a segment, in the same order, and
    /// nothing of what cannot apply to it: no RST, SYN or FIN, no new or duplicate
    /// ACK, no SACK, no recovery, no window change. False (nothing done) for any
    /// other segment.
    fn predicted(&mut self, now: Instant, seg: &Segment<'_>, cx: &mut Counters) -> bool {
        let f = seg.flags.0 & !Flags::PSH.0;
        let window = u32::from(seg.window) << self.snd_wscale;
        if self.state != State::Established
            || !self.cfg.header_prediction
            || f != Flags::ACK.0
            || seg.payload.is_empty()
            || seg.ack != self.snd_una
            || self.snd_una != self.snd_max
            || window != self.snd_wnd
            || window == 0
            || !seg.options.sack_blocks().is_empty()
            || !self.send_buf.is_empty()
            || self.fin_queued()
            || self.orphaned()
            || self.rcv_fin().is_some()
            || self.timers.is_set(Timer::Persist)
            || self.paws_rejects(now, seg)
            || !self.acceptable(seg)
        {
            return false;
        }
        cx.hp_hits += 1;
        // As on_synchronized, after the sequence and PAWS tests:
        self.last_recv = now;
        self.probes = 0;
        if self.keepalive() {
            self.timers
                .set(Timer::Keepalive, now + self.keepalive_idle());
        }
        // the ACK is in range (it is SND.UNA), so TS.Recent;
        self.update_ts_recent(now, seg);
        // process_ack: no SACK blocks, nothing new and nothing in flight, so of its
        // steps RACK's check and the window-update rule (the window is the same);
        self.rack_detect(now, cx);
        if self.snd_wl1 < seg.seq || (self.snd_wl1 == seg.seq && self.snd_wl2 <= seg.ack) {
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = seg.ack;
        }
        // accept_text_and_fin without a FIN, held or arriving.
        if self.accept_text(now, seg.seq, seg.payload, cx) {
            self.quickack -= 1;
            self.set_ack_now(true);
        }
        true
    }

    /// RFC 9293 3.10.7.3: SYN_SENT.
    fn on_syn_sent(&mut self, now: Instant, seg: &Segment<'_>, cx: &mut Counters) {
        let f = seg.flags;
        // First: the ACK must acknowledge our SYN and nothing beyond.
        if f.ack() && (seg.ack <= self.iss || seg.ack > self.snd_max) {
            if !f.rst() {
                self.set_control(Some(Control {
                    seq: seg.ack,
                    ack: None,
                    rst: true,
                }));
            }
            return;
        }
        let ack_ok = f.ack();
        // Second: RST. Only with an acceptable ACK (RFC 5961 3.2 keeps this rule).
        if f.rst() {
            if ack_ok {
                cx.attempt_fails += 1;
                self.enter_closed(Reason::RcvRst, Some(Error::Refused));
            }
            return;
        }
        // Fourth: SYN. Fifth: with neither SYN nor RST, drop.
        if !f.syn() {
            cx.flags_drop += 1;
            return;
        }
        self.take_syn(now, seg);
        if ack_ok {
            self.snd_una = seg.ack;
            self.snd_wl2 = seg.ack;
            if self.off_flow.is_some() {
                self.fast_open_answered(now, seg, cx);
            }
            self.sample_rtt_from_ts(now, seg);
            self.on_syn_acked(now);
            self.timers.stop(Timer::Retransmit);
            self.init_transfer(seg);
            self.set_state(State::Established, Reason::RcvSynAck);
            self.events.push_back(Event::Connected);
            if self.cfg.connect_timeout.is_some() {
                // The handshake's timer; keepalive, if on, is armed afresh.
                self.timers.stop(Timer::Keepalive);
            }
            self.set_ack_now(true);
            // The ACK goes alone (the handshake's third segment, as Linux sends it),
            // except on a Fast Open connection with data waiting: the data written
            // with the connect (what the SYN did not carry or the server did not
            // take) goes at once and carries the ACK, as on Linux and FreeBSD (RFC
            // 9293 3.10.7.3: "Data or controls that were queued for transmission MAY
            // be included").
            if self.send_buf.is_empty() || !self.cfg.fast_open {
                self.set_handshake_ack(true);
            }
            if self.fin_queued() {
                let why = if self.orphaned() {
                    Reason::Close
                } else {
                    Reason::ShutdownWrite
                };
                self.set_state(State::FinWait1, why);
            }
            // Data or FIN carried on the SYN-ACK (rare, allowed).
            self.accept_text_and_fin(now, seg, seg.seq + 1u32, cx);
        } else {
            // Simultaneous open: answer with SYN-ACK from the same ISS.
            if self.cfg.queue_syn_text && !seg.payload.is_empty() {
                let n = seg.payload.len().min(self.recv_buf.window());
                self.hold_syn_text(&seg.payload[..n]);
            }
            self.set_state(State::SynReceived, Reason::RcvSyn);
            self.snd_nxt = self.iss;
            self.timers.stop(Timer::Retransmit);
            self.backoff = 0;
            self.retries = 0;
        }
    }

    /// The ACK of our SYN arrived: RTT and congestion state start over with it.
    fn on_syn_acked(&mut self, now: Instant) {
        if let Some((end, sent)) = self.take_rtt_probe() {
            if self.backoff == 0 && self.snd_una >= end {
                self.rtt_sample_us(now.micros_since(sent));
            }
        }
    }

    /// The handshake is over, `seg` (the SYN-ACK, or the ACK of our SYN-ACK) completed
    /// it: RTO and congestion window for the data (Linux: tcp_init_transfer).
    ///
    /// RFC 6298 5.7: without an RTT sample from the handshake (the SYN or SYN-ACK was
    /// retransmitted and Karn's rule discarded the measurement), data starts with an
    /// RTO of 3 s. Linux does the same (tcp_init_metrics: TCP_TIMEOUT_FALLBACK when
    /// srtt_us is 0), so this is followed as written.
    ///
    /// RFC 5681 3.1: "if the SYN or SYN/ACK is lost, the initial window used by a sender
    /// after a correctly transmitted SYN MUST be one segment". Linux applies it only
    /// after more than one retransmission of the SYN or SYN-ACK (the 1 s initial RTO
    /// of RFC 6298 makes a single one likely to be spurious), only if one of them was a
    /// timeout, and not when the ACK echoes the timestamp of our first SYN or SYN-ACK,
    /// which proves that it arrived (tcp_init_transfer: `total_retrans > 1 &&
    /// undo_marker`; tcp_try_undo_spurious_syn). Otherwise the window is the usual
    /// initial one (RFC 6928), whatever the handshake's timeouts did to it.
    fn init_transfer(&mut self, seg: &Segment<'_>) {
        if self.rtt.srtt().is_none() {
            let b = self.rto_bounds();
            self.rtt.fallback(RTO_FALLBACK, b);
        }
        self.backoff = 0;
        self.retries = 0;
        let spurious = match (self.ts_enabled(), seg.options.timestamps, self.syn_tsval()) {
            (true, Some((_, ecr)), Some(first)) => ecr == first,
            _ => false,
        };
        let lost = self.syn_rtx > 1 && self.syn_timed_out() && !spurious;
        let segments = if lost { 1 } else { self.cfg.initial_cwnd };
        self.cc = Congestion::new(self.cfg.congestion, segments, self.smss);
        if let Some(r) = self.rec_if() {
            r.recover = None;
            r.fast_recovery = false;
            r.sack_recovery = false;
            r.board.clear();
            r.dupacks = 0;
        }
    }

    /// Synchronized states and SYN_RECEIVED (RFC 9293 3.10.7.4, "Otherwise").
    fn on_synchronized(&mut self, now: Instant, seg: &Segment<'_>, cx: &mut Counters) {
        let f = seg.flags;
        let stripped;
        let seg = if self.state == State::SynReceived && f.syn() && !f.rst() {
            match self.syn_in_syn_received(now, seg, cx) {
                SynInSynReceived::Done => return,
                SynInSynReceived::Continue => seg,
                SynInSynReceived::AsAck => {
                    // The SYN is the one already taken: what follows it is processed as
                    // an ordinary segment (Linux truncates the SYN the same way).
                    stripped = Segment {
                        seq: seg.seq + 1u32,
                        flags: Flags(f.0 & !Flags::SYN.0),
                        ..*seg
                    };
                    &stripped
                }
            }
        } else {
            seg
        };
        let f = seg.flags;
        // First: sequence number, with PAWS before it (RFC 7323 5.3 R1). RST is exempt
        // from PAWS; a SYN that fails either test still draws the challenge ACK that RFC
        // 5961 4.2 asks for "irrespective of the sequence number" (Linux:
        // tcp_validate_incoming goes to syn_challenge from both tests).
        if self.paws_rejects(now, seg) {
            if f.syn() {
                self.syn_challenge(now, cx);
                return;
            }
            cx.paws_estab_rejected += 1;
            self.oow_ack(now, seg, cx, |cx| &mut cx.ack_skipped_paws);
            return;
        }
        if !self.acceptable(seg) {
            if f.syn() && !f.rst() {
                self.syn_challenge(now, cx);
                return;
            }
            if !f.rst() {
                // A retransmission ending exactly at our last ACK refreshes TS.Recent, so
                // the duplicate ACK echoes its TSval and the sender's RTT sample is not
                // inflated by the wait for the retransmission (Linux: tcp_sequence()
                // accepts it against rcv_wup, then tcp_replace_ts_recent()).
                // Only with an acceptable ACK, or a blind forgery could plant a TSval.
                let ends_at_ack = seg.seq + seg.seq_len() == self.last_ack_sent;
                if ends_at_ack && f.ack() && self.ack_in_range(seg.ack) {
                    self.update_ts_recent(now, seg);
                }
                self.dupack(now, seg, cx);
            }
            return;
        }
        self.last_recv = now;
        self.probes = 0;
        if self.keepalive() && !self.handshake_timed() {
            self.timers
                .set(Timer::Keepalive, now + self.keepalive_idle());
        }
        // Second: RST (RFC 5961 3.2): only an exact match resets; in-window, a challenge.
        // Without RFC 5961, any RST in the window resets (RFC 793).
        if f.rst() {
            if seg.seq == self.rcv_nxt || !self.cfg.rfc5961_rst {
                self.on_rst(cx);
            } else {
                self.challenge_ack(now, cx);
            }
            return;
        }
        // Fourth: SYN in a synchronized state (RFC 5961 4.2): challenge ACK. Without
        // RFC 5961, a SYN in the window is an error: reset (RFC 793 3.9, fourth check).
        if f.syn() {
            if self.cfg.rfc5961_syn {
                self.syn_challenge(now, cx);
            } else {
                self.reset_by_syn(cx);
            }
            return;
        }
        // Fifth: ACK. Without it, the segment is dropped.
        if !f.ack() {
            cx.flags_drop += 1;
            return;
        }
        // RFC 7323 4.3: TS.Recent, but only from a segment whose ACK passes RFC 5961
        // 5.2 (in SYN_RECEIVED: acknowledges our SYN), as Linux records it only once
        // tcp_ack has accepted the ACK. Otherwise one blind in-window segment with a
        // TSval far ahead would make PAWS reject every segment of the real peer.
        let ack_ok = match self.state {
            State::SynReceived => self.snd_una < seg.ack && seg.ack <= self.snd_max,
            _ => self.ack_in_range(seg.ack),
        };
        if ack_ok {
            self.update_ts_recent(now, seg);
        }
        if self.state == State::SynReceived {
            let bare = seg.payload.is_empty() && !seg.flags.fin();
            if self.passive() && bare && self.retries < self.cfg.defer_accept_rounds {
                // TCP_DEFER_ACCEPT: wait for data before the connection is accepted
                // (Linux's tcp_check_req, TCPDeferAcceptDrop).
                cx.defer_accept_drops += 1;
                self.set_defer_acked(true);
                return;
            }
            if self.snd_una < seg.ack && seg.ack <= self.snd_max {
                self.snd_wnd = u32::from(seg.window) << self.snd_wscale;
                self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
                self.snd_wl1 = seg.seq;
                self.snd_wl2 = seg.ack;
                self.init_transfer(seg);
                self.set_state(State::Established, Reason::RcvAckOfSyn);
                self.events.push_back(Event::Connected);
                if self.cfg.connect_timeout.is_some() && !self.passive() {
                    self.timers.stop(Timer::Keepalive);
                }
                if self.fin_queued() {
                    self.set_state(State::FinWait1, Reason::Close);
                }
                if self.off_flow.is_some() {
                    if let Some(text) = self.take_syn_text() {
                        // What the peer's SYN carried, queued since (RFC 9293
                        // 3.10.7.3), is processed now: it starts at IRS+1. (Not taken
                        // in place: the staged payload, if any, is this segment's.)
                        let staged = self.payload_staged();
                        self.set_payload_staged(false);
                        self.accept_text(now, self.irs + 1u32, &text, cx);
                        self.set_payload_staged(staged);
                    }
                }
            } else {
                self.set_control(Some(Control {
                    seq: seg.ack,
                    ack: None,
                    rst: true,
                }));
                return;
            }
        }
        if !self.process_ack(now, seg, cx) || matches!(self.state, State::Closed | State::TimeWait)
        {
            return;
        }
        // Sixth/seventh/eighth: URG is ignored; text; FIN.
        self.accept_text_and_fin(now, seg, seg.seq, cx);
        // FIN_WAIT_1 -> FIN_WAIT_2 on the ACK of our FIN, decided after the FIN check so
        // that a FIN+ACK carrying both goes straight to TIME_WAIT (the three-way close).
        if self.state == State::FinWait1 && self.fin_acked() {
            self.set_state(State::FinWait2, Reason::RcvAckOfFin);
            self.arm_fin_wait2(now);
        }
    }

    /// A SYN (without RST) in SYN_RECEIVED.
    ///
    /// Passive open, as Linux's `tcp_check_req` (RFC 9293 3.10.7.4 fourth agrees: "If
    /// the connection was initiated with a passive OPEN, then return this connection to
    /// the LISTEN state"), in its order:
    /// 1. the peer's SYN again (same ISN, no ACK, not failing PAWS): our SYN-ACK was
    ///    lost; send it again (rate-limited) and restart its timer;
    /// 2. an ACK of anything but our SYN: RST <SEQ=SEG.ACK>, the connection stays;
    /// 3. outside the window or failing PAWS: ACK (rate-limited) and drop;
    /// 4. the peer's ISN with an acceptable ACK and data reaching into the window: the
    ///    SYN is truncated and the rest processed;
    /// 5. any other SYN in the window: RST built from the segment, and the half-open
    ///    connection is dropped (back to LISTEN; TcpAttemptFails, TcpExtEmbryonicRsts).
    ///
    /// Active open (simultaneous open): the peer's SYN again draws our SYN-ACK again
    /// (our SYN-ACK was lost), its SYN-ACK (RFC 9293 figure 7 line 6) is processed as
    /// the ACK after its SYN (the sequence test would drop it as a duplicate and leave
    /// us waiting for an ACK the peer will not send; Linux lets it through in
    /// tcp_validate_incoming), and any other SYN goes through the synchronized states'
    /// rules (RFC 9293 3.10.7.4 fourth, RFC 5961 4.2: challenge ACK).
    fn syn_in_syn_received(
        &mut self,
        now: Instant,
        seg: &Segment<'_>,
        cx: &mut Counters,
    ) -> SynInSynReceived {
        let f = seg.flags;
        let paws = self.paws_rejects(now, seg);
        if seg.seq == self.irs && !f.ack() && !paws {
            if self.ratelimit_ok(now) {
                self.snd_nxt = self.iss;
                // Linux restarts the SYN-ACK timer after such a retransmission.
                self.timers.set(Timer::Retransmit, self.rto_deadline(now));
            } else {
                cx.ack_skipped_syn_recv += 1;
            }
            return SynInSynReceived::Done;
        }
        let acks_our_syn = f.ack() && seg.ack == self.iss + 1u32;
        if !self.passive() {
            if seg.seq == self.irs && acks_our_syn {
                return SynInSynReceived::AsAck;
            }
            return SynInSynReceived::Continue;
        }
        if f.ack() && !acks_our_syn {
            self.set_control(Some(Control {
                seq: seg.ack,
                ack: None,
                rst: true,
            }));
            return SynInSynReceived::Done;
        }
        if paws || !self.acceptable(seg) {
            if paws {
                cx.paws_estab_rejected += 1;
            }
            self.dupack(now, seg, cx);
            return SynInSynReceived::Done;
        }
        if seg.seq == self.irs {
            return SynInSynReceived::AsAck;
        }
        cx.attempt_fails += 1;
        cx.embryonic_rsts += 1;
        // RFC 9293 3.10.7.1's reply to the offending segment (Linux: tcp_v4_send_reset).
        self.set_control(Some(if f.ack() {
            Control {
                seq: seg.ack,
                ack: None,
                rst: true,
            }
        } else {
            Control {
                seq: Seq(0),
                ack: Some(seg.seq + seg.seq_len()),
                rst: true,
            }
        }));
        self.enter_closed(Reason::RcvSyn, None);
        SynInSynReceived::Done
    }

    /// RFC 9293 3.10.7.4 first check: is any of the segment inside the receive window?
    #[inline]
    fn acceptable(&self, seg: &Segment<'_>) -> bool {
        let wnd = self.rcv_wnd_for_check();
        let len = seg.seq_len();
        let seq = seg.seq;
        let end = self.rcv_nxt + wnd;
        match (len, wnd) {
            (0, 0) => seq == self.rcv_nxt,
            (0, _) => seq.in_range(self.rcv_nxt, end),
            (_, 0) => false,
            // RFC 9293's test (the first or the last octet in the window), plus a segment
            // that spans the whole window from below: its new part is as acceptable as
            // any (Linux's tcp_sequence accepts every overlap with the window).
            // A segment ending exactly at RCV.NXT (a retransmitted FIN, say) brings
            // nothing new but its ACK, which is processed: Linux's tcp_sequence accepts
            // it (end_seq not before rcv_wup) and FreeBSD trims it to a bare ACK.
            (_, _) => {
                seq.in_range(self.rcv_nxt, end)
                    || (seq + (len - 1)).in_range(self.rcv_nxt, end)
                    || (seq < self.rcv_nxt && seq + len > end)
                    || (seq + len == self.rcv_nxt && !seg.flags.syn())
            }
        }
    }

    /// The window the acceptability test uses: what we advertised (the right edge never
    /// moves left), or more if the buffer has room.
    fn rcv_wnd_for_check(&self) -> u32 {
        // RCV.WND is what we advertised: space the peer has not been told about does not
        // make its segments acceptable (data that fits the buffer is still kept).
        let advertised = self.rcv_adv.diff(self.rcv_nxt).max(0) as u32;
        // (FreeBSD's SYN cache checks against the window it offered: not for a passive
        // connection in SYN_RECEIVED.)
        let syn_cache = self.state == State::SynReceived && self.passive();
        if self.cfg.accept_to_buffer_space && !syn_cache {
            advertised.max(self.recv_buf.window() as u32)
        } else {
            advertised
        }
    }

    /// PAWS (RFC 7323 5.3): a segment whose TSval is older than TS.Recent is a stale
    /// duplicate. RST segments are exempt (RFC 7323 5.3 R1 note).
    #[inline]
    fn paws_rejects(&self, now: Instant, seg: &Segment<'_>) -> bool {
        if !self.ts_enabled() || seg.flags.rst() {
            return false;
        }
        match seg.options.timestamps {
            Some((val, _)) => {
                (val.wrapping_sub(self.ts.recent) as i32) < 0
                    && now - self.ts.recent_age < PAWS_IDLE
            }
            None => false,
        }
    }

    /// RFC 7323 4.3: remember the peer's TSval when the segment covers Last.ACK.sent.
    #[inline]
    fn update_ts_recent(&mut self, now: Instant, seg: &Segment<'_>) {
        if !self.ts_enabled() {
            return;
        }
        if let Some((val, _)) = seg.options.timestamps {
            let covers = seg.seq <= self.last_ack_sent;
            if covers && (val.wrapping_sub(self.ts.recent) as i32) >= 0 {
                self.ts.recent = val;
                self.ts.recent_age = now;
            }
        }
    }

    /// An acceptable RST with the exact sequence number (RFC 9293 3.10.7.4 second).
    fn on_rst(&mut self, cx: &mut Counters) {
        match self.state {
            State::SynReceived => {
                cx.attempt_fails += 1;
                if self.passive() {
                    cx.embryonic_rsts += 1;
                }
                let err = if self.passive() {
                    None
                } else {
                    Some(Error::Refused)
                };
                self.enter_closed(Reason::RcvRst, err);
            }
            State::Established | State::CloseWait => {
                cx.estab_resets += 1;
                self.enter_closed(Reason::RcvRst, Some(Error::Reset));
            }
            // RFC 9293 tells the user nothing in CLOSING and LAST_ACK; Linux
            // (tcp_reset) and FreeBSD both report ECONNRESET to an application that
            // still holds the socket (it had only shut down its writing half).
            State::FinWait1 | State::FinWait2 | State::Closing | State::LastAck => {
                self.enter_closed(Reason::RcvRst, Some(Error::Reset))
            }
            _ => self.enter_closed(Reason::RcvRst, None),
        }
    }

    /// RFC 793's answer to a SYN in the window of a synchronized connection: an RST
    /// (SEQ=SND.NXT, ACK=RCV.NXT), ECONNRESET to the application, CLOSED.
    fn reset_by_syn(&mut self, cx: &mut Counters) {
        self.queue_rst(cx);
        let err = match self.state {
            State::SynReceived if self.passive() => None,
            _ => Some(Error::Reset),
        };
        self.enter_closed(Reason::RcvSynInWindow, err);
    }

    /// Sends an ACK for an unacceptable segment, with Linux's rate limit
    /// (`tcp_oow_rate_limited`): a segment that occupies sequence space (data or FIN)
    /// without SYN is always answered, since it cannot be one side of an ACK loop; pure
    /// ACKs and SYNs share the connection's limit with challenge ACKs. Suppressed ACKs
    /// are counted by where they arose, as Linux counts them.
    fn dupack(&mut self, now: Instant, seg: &Segment<'_>, cx: &mut Counters) {
        // Data wholly below RCV.NXT: a duplicate, reported in D-SACK (RFC 2883 4.1).
        let len = seg.payload.len() as u32;
        if len > 0 && seg.seq + len <= self.rcv_nxt && seg.seq.diff(self.rcv_nxt) > -(1 << 30) {
            self.note_dsack(seg.seq, seg.seq + len);
        }
        match self.state {
            State::TimeWait => self.oow_ack(now, seg, cx, |cx| &mut cx.ack_skipped_time_wait),
            State::SynReceived if self.passive() => {
                self.oow_ack(now, seg, cx, |cx| &mut cx.ack_skipped_syn_recv)
            }
            _ => self.oow_ack(now, seg, cx, |cx| &mut cx.ack_skipped_seq),
        }
    }

    /// [`Connection::dupack`] with the counter of suppressed ACKs given.
    fn oow_ack(
        &mut self,
        now: Instant,
        seg: &Segment<'_>,
        cx: &mut Counters,
        skipped: fn(&mut Counters) -> &mut u64,
    ) {
        let limited = seg.flags.syn() || seg.seq_len() == 0;
        if limited && !self.ratelimit_ok(now) {
            *skipped(cx) += 1;
            return;
        }
        self.set_ack_now(true);
    }

    /// A SYN in a synchronized state, or one that an actively opened SYN_RECEIVED does
    /// not expect (RFC 5961 4.2): counted, and answered with a challenge ACK.
    fn syn_challenge(&mut self, now: Instant, cx: &mut Counters) {
        cx.syn_challenge += 1;
        self.challenge_ack(now, cx);
    }

    /// RFC 5961 challenge ACK: SEQ=SND.NXT, ACK=RCV.NXT, rate-limited per connection
    /// (RFC 5961 section 7).
    fn challenge_ack(&mut self, now: Instant, cx: &mut Counters) {
        if self.ratelimit_ok(now) {
            cx.challenge_acks += 1;
            self.set_ack_now(true);
            self.set_challenge_due(true);
        } else {
            cx.ack_skipped_challenge += 1;
        }
    }

    /// The per-connection limit on replies to unacceptable segments: at most one per
    /// `challenge_ack_interval` (Linux's `tcp_invalid_ratelimit`, one timestamp shared
    /// by challenge ACKs and out-of-window duplicate ACKs). True when one may go now.
    fn ratelimit_ok(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last_challenge() {
            if now - last < self.cfg.challenge_ack_interval {
                return false;
            }
        }
        self.set_last_challenge(Some(now));
        true
    }

    /// RFC 5961 5.2: acceptable ACKs lie in [SND.UNA - MAX.SND.WND, SND.MAX] (SND.MAX
    /// is the RFC's SND.NXT: the highest sequence number sent).
    fn ack_in_range(&self, ack: Seq) -> bool {
        ack <= self.snd_max && ack >= self.snd_una - self.max_snd_wnd.max(1)
    }

    /// RFC 9293 3.10.7.4 fifth, for the synchronized states. Returns false when the
    /// segment must be dropped here.
    fn process_ack(&mut self, now: Instant, seg: &Segment<'_>, cx: &mut Counters) -> bool {
        let ack = seg.ack;
        if !self.ack_in_range(ack) {
            self.challenge_ack(now, cx);
            return false;
        }
        if self.state == State::TimeWait {
            return true;
        }
        let window = u32::from(seg.window) << self.snd_wscale;
        let newly_sacked = self.note_sacks(seg);
        if self.snd_una < ack {
            self.on_new_ack(now, seg, cx);
        } else if ack == self.snd_una
            && self.snd_max > self.snd_una
            && (newly_sacked > 0
                || (seg.payload.is_empty() && !seg.flags.fin() && window == self.snd_wnd))
        {
            // RFC 5681's duplicate ACK, or RFC 6675's: one that SACKs new data.
            self.on_dupack(now, cx);
        }
        self.rack_detect(now, cx);
        let r = self.rec();
        if self.sack_ok() && !r.fast_recovery && r.recover.is_none() {
            // RFC 6675 5 (and 5.1 for an ACK that advanced SND.UNA): enough SACKed
            // above SND.UNA marks it lost before three duplicate ACKs have arrived.
            if self.snd_max > self.snd_una && r.board.is_lost(self.snd_una, self.smss) {
                self.enter_recovery(now, cx);
            }
        }
        // Window update (RFC 9293 3.10.7.4, SND.WL1/SND.WL2 rule).
        if self.snd_wl1 < seg.seq || (self.snd_wl1 == seg.seq && self.snd_wl2 <= ack) {
            let was_zero = self.snd_wnd == 0;
            self.snd_wnd = window;
            self.max_snd_wnd = self.max_snd_wnd.max(window);
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = ack;
            if window > 0 {
                let (unsent, mss, room) = self.send_limits();
                if self.snd_max == self.snd_una && self.window_too_small(unsent, mss, room) {
                    // Open, but too little to use (sender SWS avoidance): the persist
                    // timer goes on, restarted with its backoff, and its next probe
                    // carries the data the window allows (Linux: tcp_ack_probe).
                    self.timers.set(Timer::Persist, self.rto_deadline(now));
                } else {
                    if was_zero || self.timers.is_set(Timer::Persist) {
                        self.backoff = 0;
                        self.probes = 0;
                    }
                    self.timers.stop(Timer::Persist);
                }
            }
        }
        // Closing states that advance on the ACK of our FIN.
        if self.fin_acked() {
            match self.state {
                State::Closing => self.enter_time_wait(now, Reason::RcvAckOfFin, cx),
                State::LastAck => {
                    self.enter_closed(Reason::RcvAckOfFin, None);
                    return false;
                }
                _ => {}
            }
        }
        true
    }

    /// True when a FIN of ours was sent and acknowledged.
    pub(super) fn fin_acked(&self) -> bool {
        self.fin_queued() && self.snd_una == self.fin_seq() + 1u32
    }

    /// The sequence number our FIN takes (valid once `fin_queued`).
    pub(super) fn fin_seq(&self) -> Seq {
        self.buf_seq + self.send_buf.len()
    }

    /// SND.UNA advances: free acknowledged data, time the RTT, grow the window.
    fn on_new_ack(&mut self, now: Instant, seg: &Segment<'_>, cx: &mut Counters) {
        let ack = seg.ack;
        // The ACK of our SYN-ACK acknowledges no data: it does not grow the window
        // that init_transfer has just set.
        let syn = u32::from(self.snd_una == self.iss);
        let acked = ack.since(self.snd_una) - syn;
        let flight_before = self.snd_max.since(self.snd_una) - syn;
        self.snd_una = ack;
        if self.snd_nxt < ack {
            self.snd_nxt = ack;
        }
        // Free the acknowledged bytes (a FIN or SYN in the range holds no data).
        if ack > self.buf_seq {
            let n = (ack.since(self.buf_seq) as usize).min(self.send_buf.len());
            self.send_buf.consume(n);
            self.buf_seq += n;
            if self.write_blocked() && n > 0 {
                self.set_write_blocked(false);
                self.events.push_again(Event::Writable);
            }
        }
        // RTT: from timestamps when in use (RFC 7323 4.1), else from the timed segment
        // unless it was retransmitted (Karn).
        let mut sampled = self.sample_rtt_from_ts(now, seg);
        if !sampled {
            if let Some((end, sent)) = self.rtt_probe() {
                if ack >= end {
                    self.rtt_sample_us(now.micros_since(sent));
                    self.set_rtt_probe(None);
                    sampled = true;
                }
            }
        }
        // Karn's algorithm (RFC 6298 section 5, after 5.7): the backed-off RTO is kept
        // until a valid RTT sample recomputes it, not dropped on any new ACK.
        if sampled {
            self.backoff = 0;
        }
        self.retries = 0;
        let mss = self.smss;
        if let Some(r) = self.rec_if() {
            r.board.advance(ack);
            if r.high_rxt < ack {
                r.high_rxt = ack;
            }
        }
        let srtt = self.rtt.srtt();
        let (fast_recovery, sack_recovery) = (self.rec().fast_recovery, self.rec().sack_recovery);
        match self.rec().recover {
            Some(recover) if ack < recover && fast_recovery && sack_recovery => {
                // RFC 6675: a partial ACK keeps the recovery going; the pipe decides
                // what goes next, cwnd stays at ssthresh.
            }
            Some(recover) if ack < recover && fast_recovery => {
                // RFC 6582 3.2 step 3: partial ACK, retransmit the next hole at once (one
                // segment, unless an RTO's go-back-N resend is already under way).
                self.cc.on_partial_ack(acked, mss);
                if self.snd_nxt == self.snd_max {
                    self.rec_mut().rexmit_resume = Some(self.snd_max);
                    self.snd_nxt = self.snd_una;
                }
            }
            Some(recover) if ack >= recover && fast_recovery => {
                let r = self.rec_mut();
                r.recover = None;
                r.fast_recovery = false;
                if !std::mem::take(&mut r.sack_recovery) {
                    // NewReno deflates (RFC 6582 3.2 step 4); after SACK-based
                    // recovery cwnd is already ssthresh (RFC 6675 5, as Linux's
                    // tcp_end_cwnd_reduction leaves it).
                    self.cc
                        .on_recovery_exit(self.snd_max.since(self.snd_una), mss);
                }
            }
            // After a timeout: slow start from the one-segment loss window while the
            // resend goes on (RFC 5681 3.1); no NewReno deflation.
            Some(recover) => {
                if ack >= recover {
                    self.rec_mut().recover = None;
                }
                self.cc.on_ack(now, acked.min(flight_before), mss, srtt);
            }
            None => self.cc.on_ack(now, acked.min(flight_before), mss, srtt),
        }
        if let Some(r) = self.rec_if() {
            r.dupacks = 0;
        }
        if self.rec().tlp_end.is_some_and(|e| ack >= e) {
            // RFC 8985 7.4: the probe episode is over. A retransmitted probe that no
            // D-SACK reported as a duplicate repaired a loss: reduce the window for it
            // as fast recovery would have.
            let r = self.rec_mut();
            r.tlp_end = None;
            if let Some((_, _, false)) = r.tlp_rexmit.take() {
                cx.loss_probe_recovery += 1;
                self.cc.on_loss(now, flight_before, mss);
            }
        }
        if self.snd_una == self.snd_max {
            self.timers.stop(Timer::Retransmit);
            self.timers.stop(Timer::LossProbe);
        } else {
            self.timers.stop(Timer::LossProbe);
            // RFC 6298 5.3: restart the timer with the current RTO (backoff included).
            self.timers.set(Timer::Retransmit, self.rto_deadline(now));
            self.arm_loss_probe(now);
        }
    }

    /// RACK (RFC 8985 6.2, 6.3): updates it from what the peer holds and declares lost
    /// what was sent long enough before something delivered; arms the reorder timer
    /// for what is still within the window. A loss starts recovery.
    fn rack_detect(&mut self, now: Instant, cx: &mut Counters) {
        let Some(rack) = self.rack.as_mut() else {
            return;
        };
        let srtt = self.rtt.srtt_us().unwrap_or(u32::MAX);
        let board = super::conn::board_of(&self.recovery);
        let d = rack.on_ack(now.total_micros(), self.snd_una, board, srtt);
        match d.timer {
            Some(t) => self.timers.set(Timer::Reorder, Instant::from_micros(t)),
            None => self.timers.stop(Timer::Reorder),
        }
        if d.lost > 0 {
            cx.rack_lost += d.lost as u64;
            let r = self.rec();
            if !r.fast_recovery && r.recover.is_none() && self.state.sends_data() {
                self.enter_recovery(now, cx);
            }
        }
    }

    /// Whether a tail loss probe may be armed now (RFC 8985 7.2, as Linux's
    /// `tcp_schedule_loss_probe`): SACK in use, no loss recovery under way and no
    /// probe outstanding, in a state that sends data or FIN.
    fn probe_allowed(&self) -> bool {
        self.cfg.tail_loss_probe
            && self.sack_ok()
            && !self.rec().fast_recovery
            && self.rec().recover.is_none()
            && self.rec().tlp_end.is_none()
            && self.state.sends_data()
    }

    /// Arms the probe timer in place of the retransmission timer (RFC 8985 7.2, as
    /// Linux's `tcp_schedule_loss_probe`): two SRTTs out, plus the worst-case delayed
    /// ACK (200 ms) when a single segment is in flight, at least 10 ms, and never later
    /// than the RTO would have fired. The RTO is armed again when the probe goes.
    pub(super) fn arm_loss_probe(&mut self, now: Instant) {
        let Some(srtt) = self.rtt.srtt_us() else {
            return;
        };
        if !self.probe_allowed() || self.snd_una == self.snd_max {
            self.stop_loss_probe(now);
            return;
        }
        // In microseconds.
        let mut pto = u64::from(srtt) * 2;
        if self.snd_max.since(self.snd_una) <= self.smss {
            pto += 200_000;
        }
        let pto = pto.max(10_000);
        let rto = self
            .timers
            .get(Timer::Retransmit)
            .unwrap_or_else(|| self.rto_deadline(now));
        self.timers
            .set(Timer::LossProbe, now.plus_micros(pto).min(rto));
        self.timers.stop(Timer::Retransmit);
    }

    /// Disarms the probe timer, leaving the RTO armed if data is in flight.
    pub(super) fn stop_loss_probe(&mut self, now: Instant) {
        if self.timers.is_set(Timer::LossProbe) {
            self.timers.stop(Timer::LossProbe);
            if self.snd_max > self.snd_una && !self.timers.is_set(Timer::Retransmit) {
                self.timers.set(Timer::Retransmit, self.rto_deadline(now));
            }
        }
    }

    /// The probe timer fired: one segment goes out on the next `poll_transmit`, and
    /// the RTO is armed again from now (RFC 8985 7.3).
    fn on_loss_probe(&mut self, now: Instant, cx: &mut Counters) {
        if self.snd_una == self.snd_max {
            return;
        }
        if self.probe_allowed() {
            cx.loss_probes += 1;
            self.set_probe_pending(true);
        }
        self.timers.set(Timer::Retransmit, self.rto_deadline(now));
    }

    /// A duplicate ACK: the third starts fast retransmit (RFC 5681 3.2, RFC 6582,
    /// RFC 6675).
    fn on_dupack(&mut self, now: Instant, cx: &mut Counters) {
        let r = self.rec_mut();
        r.dupacks += 1;
        if r.fast_recovery {
            if !r.sack_recovery {
                self.cc.inflate(self.smss);
            }
        } else if r.recover.is_none() && r.dupacks == 3 {
            self.enter_recovery(now, cx);
        }
    }

    /// Loss detected: fast retransmit and fast recovery. With SACK in use the recovery
    /// is RFC 6675's, driven by the scoreboard and the pipe; without, RFC 6582's
    /// NewReno with window inflation.
    fn enter_recovery(&mut self, now: Instant, cx: &mut Counters) {
        let mss = self.smss;
        // Recovery takes over from any probe episode (its window cut covers it).
        let (snd_una, snd_nxt, snd_max, sack_ok) =
            (self.snd_una, self.snd_nxt, self.snd_max, self.sack_ok());
        let r = self.rec_mut();
        r.tlp_end = None;
        r.tlp_rexmit = None;
        self.set_probe_pending(false);
        self.stop_loss_probe(now);
        cx.fast_retrans += 1;
        let r = self.rec_mut();
        r.recover = Some(snd_max);
        r.fast_recovery = true;
        r.sack_recovery = sack_ok;
        self.cc.on_loss(now, snd_max.since(snd_una), mss);
        self.set_rtt_probe(None);
        if sack_ok {
            cx.sack_recovery += 1;
            // Anything sent since goes on from the highest byte sent: the holes are
            // retransmitted from the scoreboard.
            self.snd_nxt = snd_max;
            let r = self.rec_mut();
            r.rexmit_resume = None;
            // RFC 6675 5 step (4.3): the first segment presumed dropped goes at once,
            // whatever the pipe; NextSeg takes over from there.
            r.high_rxt = snd_una;
            r.rexmit_first = true;
            r.rescue_rxt = None;
        } else {
            // RFC 5681 3.2 step 2: resend the one segment at SND.UNA; the segments the
            // duplicate ACKs stand for have arrived and are not sent again.
            cx.reno_recovery += 1;
            self.cc.inflate(3 * mss);
            self.rec_mut().rexmit_resume = Some(snd_nxt);
            self.snd_nxt = snd_una;
        }
    }

    /// Records the SACK blocks of an arriving ACK on the scoreboard; returns the bytes
    /// they newly SACK. A first block below the ACK or inside the second is a D-SACK
    /// (RFC 2883) and reports a duplicate, not a hole: it adds nothing.
    fn note_sacks(&mut self, seg: &Segment<'_>) -> u32 {
        if !self.sack_ok() {
            return 0;
        }
        let blocks = seg.options.sack_blocks();
        let mut newly = 0;
        for (i, b) in blocks.iter().enumerate() {
            let dsack = i == 0
                && (b.right <= seg.ack
                    || blocks
                        .get(1)
                        .is_some_and(|n| n.left <= b.left && b.right <= n.right));
            if dsack {
                let probe = self.rec_if().and_then(|r| r.tlp_rexmit.as_mut());
                if let Some((s, e, dup)) = probe {
                    // The probe's retransmission arrived twice: nothing was lost.
                    *dup |= b.left <= *s && *e <= b.right;
                }
                continue;
            }
            let (una, max) = (self.snd_una.max(seg.ack.min(self.snd_max)), self.snd_max);
            newly += self.rec_mut().board.add(b.left, b.right, una, max);
        }
        newly
    }

    /// RTT from the echoed timestamp of an ACK that advanced SND.UNA.
    fn sample_rtt_from_ts(&mut self, now: Instant, seg: &Segment<'_>) -> bool {
        if !self.ts_enabled() {
            return false;
        }
        match seg.options.timestamps {
            Some((_, ecr)) if ecr != 0 => {
                // An echo older than our latest retransmission refers to an earlier
                // transmission: the time since then includes the retransmission timeout,
                // not just the path (the ambiguity RFC 3522 resolves with timestamps).
                if let Some(rtx) = self.rtx_tsval() {
                    if (ecr.wrapping_sub(rtx) as i32) < 0 {
                        return false;
                    }
                    self.set_rtx_tsval(None);
                }
                let elapsed = self.ts_val(now).wrapping_sub(ecr);
                if elapsed < 1 << 30 {
                    self.rtt_sample_us(u64::from(elapsed) * 1000);
                    self.set_rtt_probe(None);
                    return true;
                }
                false
            }
            _ => false,
        }
    }

    /// RFC 9293 3.10.7.4 seventh and eighth: accept data and process FIN. `start` is
    /// where the segment's data begins (after its SYN, if any).
    fn accept_text_and_fin(
        &mut self,
        now: Instant,
        seg: &Segment<'_>,
        start: Seq,
        cx: &mut Counters,
    ) {
        let mut quick = false;
        if !seg.payload.is_empty() && self.state.can_receive() {
            if self.orphaned() && start + seg.payload.len() > self.rcv_nxt {
                // Linux: new data for a connection the application closed is answered
                // with RST (TCPAbortOnData): nobody will ever read it.
                cx.abort_on_data += 1;
                // Linux answers from the offending segment (tcp_v4_send_reset):
                // <SEQ=SEG.ACK><CTL=RST>.
                self.set_control(Some(Control {
                    seq: if seg.flags.ack() {
                        seg.ack
                    } else {
                        self.snd_nxt
                    },
                    ack: None,
                    rst: true,
                }));
                self.enter_closed(Reason::Abort, Some(Error::Aborted));
                return;
            }
            quick = self.accept_text(now, start, seg.payload, cx);
        }
        // A FIN recorded but not taken yet lies beyond a hole (an in-order FIN is taken
        // at once).
        let fin_was_held = !self.fin_rcvd() && self.rcv_fin().is_some();
        if seg.flags.fin() && self.state.can_receive() {
            let at = start + seg.payload.len();
            if at > self.rcv_nxt {
                // A FIN beyond a hole: held out of order, and answered at once with a
                // duplicate ACK like out-of-order data (RFC 5681 4.2; Linux queues it
                // in the out-of-order queue).
                self.set_ack_now(true);
            }
            self.set_rcv_fin(Some(at));
        } else if seg.flags.fin() && self.fin_rcvd() {
            // A retransmitted FIN in CLOSE_WAIT, CLOSING or LAST_ACK: acknowledge again.
            self.set_ack_now(true);
        }
        let pingpong = self.try_take_fin(now, cx);
        if fin_was_held && self.fin_rcvd() {
            // The gap before a held FIN is filled: ACK at once (RFC 5681 4.2; Linux sets
            // ICSK_ACK_NOW), although a FIN would otherwise wait for the delayed ACK.
            self.set_ack_now(true);
        }
        if quick && !pingpong {
            self.quickack -= 1;
            self.set_ack_now(true);
        }
    }

    /// Places data into the receive buffer and decides when to acknowledge it. Returns
    /// true when quick-ACK mode asks for an immediate ACK of in-order data: the caller
    /// sends it unless a FIN in the same segment leaves it to the delayed-ACK timer.
    fn accept_text(&mut self, now: Instant, start: Seq, payload: &[u8], cx: &mut Counters) -> bool {
        // Trim what we already have (the left edge) before placing the rest.
        let skip = self.rcv_nxt.diff(start).max(0) as usize;
        if skip > 0 {
            // RFC 2883 4: the part below RCV.NXT is a duplicate, reported in D-SACK.
            self.note_dsack(start, start + skip.min(payload.len()));
            if self.cfg.ack_dsack_at_once && self.dsack().is_some() {
                self.set_ack_now(true);
            }
        }
        if skip >= payload.len() {
            cx.dup_data += 1;
            self.set_ack_now(true);
            return false;
        }
        let data = &payload[skip..];
        let off = start.diff(self.rcv_nxt).max(0) as usize;
        if let Some((s, e)) = self.recv_buf.held(off as u32, data.len() as u32) {
            // A duplicate of data held out of order.
            self.note_dsack(self.rcv_nxt + s, self.rcv_nxt + e);
            self.set_ack_now(true);
        }
        // The estimate of the peer's segment size never exceeds the MSS we advertised
        // (Linux's tcp_measure_rcv_mss clamps it to advmss): a larger segment (a
        // peer ignoring our MSS, or segments coalesced on the way) would otherwise
        // raise the thresholds of delayed ACKs and window updates with it.
        let len = payload.len() as u32;
        if len > self.rcv_mss {
            let advertised = u32::from(self.cfg.mss(self.ends.remote().is_ipv6()));
            self.rcv_mss = self.rcv_mss.max(len.min(advertised));
        }
        if self.rd_shut() {
            // shutdown(Read): acknowledge in-order data and throw it away.
            if off == 0 {
                let n = data.len().min(self.recv_buf.window());
                self.rcv_nxt += n;
                self.set_ack_now(true);
            }
            return false;
        }
        // Staged payload lies at RCV.NXT: taken in place when it lands there whole.
        let placed = self.payload_staged() && skip == 0 && off == 0;
        let Some(w) = self.recv_buf.write_placed(off, data, placed) else {
            cx.ofo_drop += 1;
            self.set_ack_now(true);
            return false;
        };
        self.rcv_nxt += w.advanced;
        if w.out_of_order {
            cx.ofo_queue += 1;
            self.note_sack_block(start.max(self.rcv_nxt));
            self.set_ack_now(true);
        } else if self.recv_buf.has_out_of_order() || w.advanced > w.accepted {
            // Filled (part of) a hole: ACK at once so the sender learns quickly.
            self.set_ack_now(true);
        }
        if w.advanced > 0 {
            self.events.push_again(Event::Readable);
            self.unacked_bytes = self.unacked_bytes.saturating_add(w.advanced as u32);
            if self.quickack > 0 {
                return true;
            } else if self.unacked_bytes >= 2 * self.rcv_mss
                || (self.cfg.ack_every_second_segment && self.timers.is_set(Timer::DelayedAck))
            {
                // RFC 9293 3.8.6.3 / RFC 5681 4.2: ACK at least every second full segment
                // (or, as FreeBSD, every second segment).
                self.set_ack_now(true);
            } else if !self.timers.is_set(Timer::DelayedAck) {
                self.timers
                    .set(Timer::DelayedAck, now + self.cfg.delayed_ack);
            }
        }
        false
    }

    /// Remembers a duplicate for the D-SACK block of the next ACK (RFC 2883), where SACK
    /// is in use and D-SACK on. The first duplicate of a segment is the one reported.
    pub(super) fn note_dsack(&mut self, left: Seq, right: Seq) {
        if self.sack_ok() && self.cfg.dsack && self.dsack().is_none() && left < right {
            self.set_dsack(Some((left, right)));
        }
    }

    /// Makes the out-of-order block holding `q` the most recent one: it goes first in
    /// our SACK option, the others follow in the order they last changed (RFC 2018
    /// section 4: "the first SACK block MUST specify the contiguous block of data
    /// containing the segment which triggered this ACK", then the most recently
    /// reported blocks).
    fn note_sack_block(&mut self, q: Seq) {
        let rcv_nxt = self.rcv_nxt;
        let ranges = self.recv_buf.out_of_order();
        let block_of = |x: Seq| {
            ranges
                .iter()
                .position(|&(s, e)| x.in_range(rcv_nxt + s, rcv_nxt + e))
        };
        let mine = block_of(q);
        let mut next = [None; 4];
        next[0] = Some(q);
        let mut k = 1;
        for &x in self.sack_recent().iter().flatten() {
            let b = block_of(x);
            if k < next.len() && b.is_some() && b != mine {
                next[k] = Some(x);
                k += 1;
            }
        }
        self.set_sack_recent(next);
    }

    /// Takes the peer's FIN once every byte before it has arrived. Returns true when
    /// the FIN's ACK follows Linux's delayed-ACK ("pingpong") rule, under which
    /// quick-ACK mode does not apply (see [`Connection::delay_fin_ack`]).
    fn try_take_fin(&mut self, now: Instant, cx: &mut Counters) -> bool {
        if self.fin_rcvd() || self.rcv_fin() != Some(self.rcv_nxt) {
            return false;
        }
        self.set_fin_rcvd(true);
        self.rcv_nxt += 1u32;
        self.events.push_again(Event::Readable);
        match self.state {
            State::SynReceived | State::Established => {
                self.set_state(State::CloseWait, Reason::RcvFin);
                if self.cfg.delayed_fin_ack {
                    self.delay_fin_ack(now);
                    return true;
                }
                self.set_ack_now(true);
            }
            // The active closer's ACK of the peer's FIN goes at once (Linux:
            // tcp_send_ack from tcp_fin in FIN_WAIT_1 and FIN_WAIT_2).
            State::FinWait1 => {
                self.set_ack_now(true);
                if self.fin_acked() {
                    // This very segment acknowledged our FIN and carried the peer's.
                    self.enter_time_wait(now, Reason::RcvFinAckOfFin, cx);
                } else {
                    self.set_state(State::Closing, Reason::RcvFin);
                }
            }
            State::FinWait2 => {
                self.set_ack_now(true);
                self.enter_time_wait(now, Reason::RcvFin, cx);
            }
            _ => self.set_ack_now(true),
        }
        false
    }

    /// The ACK of a FIN that moved the connection to CLOSE_WAIT, as Linux's tcp_fin()
    /// schedules it (inet_csk_schedule_ack, then pingpong mode, so no quick ACK): left
    /// to the delayed-ACK timer, so that an application that closes at once on EOF
    /// sends its FIN with this ACK (the three-way close). An ACK goes at once when
    /// another rule already asks for one (the segment filled a hole, for one), or when
    /// more than one full segment, the FIN included, is unacknowledged
    /// (__tcp_ack_snd_check). A delayed-ACK timer already running keeps its deadline.
    fn delay_fin_ack(&mut self, now: Instant) {
        if self.ack_now() {
            return;
        }
        if self.rcv_nxt.diff(self.last_ack_sent) > self.rcv_mss as i32 {
            self.set_ack_now(true);
        } else if !self.timers.is_set(Timer::DelayedAck) {
            self.timers
                .set(Timer::DelayedAck, now + self.cfg.delayed_ack);
        }
    }

    /// TIME_WAIT: only the active closer gets here. Everything but the final ACK stops.
    fn enter_time_wait(&mut self, now: Instant, why: Reason, cx: &mut Counters) {
        cx.tw += 1;
        // The FIN_WAIT_1 -> TIME_WAIT step of the three-way close is logged with the
        // reason that names the merged FIN+ACK.
        self.set_state(State::TimeWait, why);
        for t in [
            Timer::Retransmit,
            Timer::Persist,
            Timer::Keepalive,
            Timer::FinWait2,
            Timer::DelayedAck,
        ] {
            self.timers.stop(t);
        }
        self.send_buf.clear();
        self.timers
            .set(Timer::TimeWait, now + self.cfg.time_wait_len());
    }

    /// TIME_WAIT (RFC 9293 3.10.7.4, RFC 1337, RFC 6191).
    fn on_time_wait(&mut self, now: Instant, seg: &Segment<'_>, cx: &mut Counters) -> Disposition {
        let paws = self.paws_rejects(now, seg);
        let recent = self.ts_enabled().then_some(self.ts.recent);
        let (rfc1337, ack_required) = (self.cfg.rfc1337, self.cfg.tw_ack_required);
        match time_wait_segment(seg, self.rcv_nxt, recent, paws, rfc1337, ack_required) {
            TimeWaitAction::Nothing => {}
            TimeWaitAction::RstIgnored => cx.tw_rst_ignored += 1,
            TimeWaitAction::Close => self.enter_closed(Reason::RcvRst, None),
            TimeWaitAction::Recycle => return Disposition::Recycle,
            TimeWaitAction::AckAndRestart => {
                // RFC 7323 4.3: the FIN retransmission covers Last.ACK.sent, so its
                // TSval becomes TS.Recent and is echoed.
                self.update_ts_recent(now, seg);
                self.set_ack_now(true);
                self.timers
                    .set(Timer::TimeWait, now + self.cfg.time_wait_len());
            }
            // Rate-limited as a compact record does (TcpExtTCPACKSkippedTimeWait).
            TimeWaitAction::Ack => self.dupack(now, seg, cx),
        }
        Disposition::Consumed
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant, cx: &mut Counters) {
        self.on_timeout(now, cx);
        self.tidy();
    }

    fn on_timeout(&mut self, now: Instant, cx: &mut Counters) {
        while let Some(t) = self.timers.take_expired(now) {
            match t {
                Timer::TimeWait => {
                    self.enter_closed(Reason::Timer2Msl, None);
                    return;
                }
                Timer::FinWait2 => {
                    self.enter_closed(Reason::TimerFinWait2, None);
                    return;
                }
                Timer::Retransmit => self.on_rto(now, cx),
                Timer::LossProbe => self.on_loss_probe(now, cx),
                Timer::Reorder => self.rack_detect(now, cx),
                Timer::Persist => self.on_persist(now, cx),
                Timer::Keepalive => self.on_keepalive(now, cx),
                Timer::DelayedAck => {
                    if self.unacked_bytes > 0 || self.rcv_nxt != self.last_ack_sent {
                        cx.delayed_acks += 1;
                        self.set_ack_now(true);
                    }
                }
            }
            if self.state == State::Closed {
                return;
            }
        }
    }

    /// Retransmission timeout (RFC 6298 5.4 to 5.7): back off, go back to SND.UNA.
    fn on_rto(&mut self, now: Instant, cx: &mut Counters) {
        if self.snd_max == self.snd_una {
            return;
        }
        self.retries += 1;
        let deferring = self.state == State::SynReceived && self.defer_acked();
        let limit = match self.state {
            State::SynSent => self.cfg.syn_retries,
            State::SynReceived if deferring => {
                self.cfg.synack_retries.max(self.cfg.defer_accept_rounds)
            }
            State::SynReceived => self.cfg.synack_retries,
            _ if self.orphaned() => self.cfg.orphan_retries,
            _ => self.cfg.retries2,
        };
        if self.retries > limit {
            if matches!(self.state, State::SynSent | State::SynReceived) {
                cx.attempt_fails += 1;
            }
            if self.state == State::SynSent {
                self.fast_open_timed_out(now);
            }
            cx.abort_on_timeout += 1;
            self.enter_closed(Reason::TimerRetries, Some(Error::TimedOut));
            return;
        }
        cx.timeouts += 1;
        if matches!(self.state, State::SynSent | State::SynReceived) {
            self.set_syn_timed_out(true);
        }
        self.backoff += 1;
        if deferring && self.retries < self.cfg.defer_accept_rounds {
            // The peer has ACKed our SYN: no SYN-ACK again until the last round of
            // deferring, which gives it a last chance (Linux's syn_ack_recalc).
            self.timers.set(Timer::Retransmit, self.rto_deadline(now));
            return;
        }
        let flight = self.snd_max.since(self.snd_una);
        self.cc.on_rto(now, flight, self.smss);
        // (During the handshake there is no recovery point: nothing to take.)
        let recover = self.state.is_synchronized().then_some(self.snd_max);
        if recover.is_some() {
            self.rec_mut();
        }
        if let Some(r) = self.rec_if() {
            r.recover = recover;
            r.fast_recovery = false;
            r.sack_recovery = false;
            r.rexmit_first = false;
            r.tlp_end = None;
            r.tlp_rexmit = None;
            // RFC 2018 section 8: the timeout may mean the receiver reneged; forget
            // what it SACKed and resend from SND.UNA.
            r.board.clear();
            r.dupacks = 0;
            r.rexmit_resume = None;
        }
        self.set_probe_pending(false);
        self.timers.stop(Timer::LossProbe);
        self.timers.stop(Timer::Reorder);
        if let Some(r) = self.rack.as_mut() {
            r.reset();
        }
        self.set_rtt_probe(None);
        self.snd_nxt = self.snd_una;
        self.timers.set(Timer::Retransmit, self.rto_deadline(now));
    }

    /// Zero-window probe (RFC 9293 3.8.6.1) with exponential backoff. When the window
    /// is open but too small to use (sender SWS avoidance), the probe is the data it
    /// allows, with PSH (Linux: tcp_write_wakeup), and the retransmission timer takes
    /// over.
    fn on_persist(&mut self, now: Instant, cx: &mut Counters) {
        if !self.has_unsent() || self.snd_max != self.snd_una {
            return;
        }
        let (unsent, mss, room) = self.send_limits();
        let data_probe = self.snd_wnd > 0;
        if data_probe && !self.window_too_small(unsent, mss, room) {
            return;
        }
        self.probes += 1;
        let limit = if self.orphaned() {
            self.cfg.orphan_retries
        } else {
            self.cfg.retries2
        };
        if self.probes > limit {
            cx.abort_on_timeout += 1;
            self.enter_closed(Reason::TimerRetries, Some(Error::TimedOut));
            return;
        }
        if !data_probe {
            // TcpExtTCPWinProbe counts the bare probes (tcp_xmit_probe_skb).
            cx.win_probes += 1;
        }
        self.set_probe_due(true);
        self.backoff += 1;
        self.timers.set(Timer::Persist, self.rto_deadline(now));
    }

    /// Keepalive (RFC 9293 3.8.4): probe an idle connection, give up after the count.
    fn on_keepalive(&mut self, now: Instant, cx: &mut Counters) {
        if self.handshake_timed() {
            // Config::connect_timeout: the handshake took too long.
            cx.attempt_fails += 1;
            cx.abort_on_timeout += 1;
            if self.state == State::SynSent {
                self.fast_open_timed_out(now);
            }
            self.enter_closed(Reason::TimerConnect, Some(Error::TimedOut));
            return;
        }
        if !self.keepalive() || !self.state.is_synchronized() || self.state == State::TimeWait {
            return;
        }
        if self.snd_max != self.snd_una || self.has_unsent() {
            // Data in flight: retransmission covers liveness. Check again later.
            self.timers
                .set(Timer::Keepalive, now + self.keepalive_interval());
            return;
        }
        if self.probes >= self.keepalive_count() {
            cx.abort_on_timeout += 1;
            // Linux resets a peer that stopped answering keepalives (tcp_keepalive_timer).
            self.set_control(Some(Control {
                seq: self.ack_seq(),
                ack: Some(self.rcv_nxt),
                rst: true,
            }));
            self.enter_closed(Reason::TimerKeepalive, Some(Error::TimedOut));
            return;
        }
        self.probes += 1;
        cx.keepalive_probes += 1;
        self.set_probe_due(true);
        self.timers
            .set(Timer::Keepalive, now + self.keepalive_interval());
    }

    /// Buffered data (or a FIN) not yet sent.
    pub(super) fn has_unsent(&self) -> bool {
        let end = self.fin_seq() + u32::from(self.fin_queued());
        self.snd_nxt < end
    }
}

impl Connection {
    /// Ends a TIME_WAIT connection whose 4-tuple a new SYN reopens (after
    /// [`Disposition::Recycle`]).
    pub fn recycle_time_wait(&mut self) {
        self.end_time_wait(Reason::TimeWaitRecycled);
    }

    /// Ends TIME_WAIT before 2MSL for `why` (a reused 4-tuple, a full TIME_WAIT table).
    pub fn end_time_wait(&mut self, why: Reason) {
        if self.state == State::TimeWait {
            self.enter_closed(why, None);
        }
    }
}

/// What [`Connection::syn_in_syn_received`] decided.
enum SynInSynReceived {
    /// The segment was answered (or dropped): nothing more to do.
    Done,
    /// Process it by the rules of the synchronized states.
    Continue,
    /// Process it without its SYN, which is the peer's ISN already taken.
    AsAck,
}
