//! Per-connection settings, defaulting to Linux's choices (see ARCHITECTURE.md).

use super::congestion::Algorithm;
use crate::time::Duration;
use crate::wire::tcp::OptionLayout;

/// Settings of one connection. `Config::default()` is Linux's behaviour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Maximum segment lifetime; TIME_WAIT lasts twice this. Linux: 30 s (60 s TIME_WAIT).
    pub msl: Duration,
    /// How long an orphaned connection may stay in FIN_WAIT_2 (`tcp_fin_timeout`,
    /// `TCP_LINGER2`). Linux: 60 s.
    pub fin_wait2_timeout: Duration,
    /// Initial retransmission timeout (RFC 6298: 1 s).
    pub rto_initial: Duration,
    /// Lower bound on the retransmission timeout. Linux: 200 ms.
    pub rto_min: Duration,
    /// Upper bound on the retransmission timeout. Linux: 120 s.
    pub rto_max: Duration,
    /// SYN retransmissions before connect() gives up (`tcp_syn_retries`). Linux: 6.
    pub syn_retries: u32,
    /// SYN-ACK retransmissions before a half-open connection is dropped
    /// (`tcp_synack_retries`). Linux: 5.
    pub synack_retries: u32,
    /// `TCP_DEFER_ACCEPT` on the listener, as SYN-ACK retransmission rounds (Linux's
    /// `secs_to_retrans`; 0: off). A bare ACK completing the handshake is dropped until
    /// data arrives or the SYN-ACK has timed out this many times; meanwhile the SYN-ACK
    /// is not resent until the last round (Linux's syn_ack_recalc).
    pub defer_accept_rounds: u32,
    /// Retransmissions of data before the connection times out (`tcp_retries2`). Linux: 15.
    pub retries2: u32,
    /// Retransmissions for a connection the application has closed (`tcp_orphan_retries`).
    /// Linux: 8.
    pub orphan_retries: u32,
    /// Delayed-ACK timeout. Linux: 40 ms minimum.
    pub delayed_ack: Duration,
    /// Delay the ACK of a FIN that moves the connection to CLOSE_WAIT (from
    /// ESTABLISHED or SYN_RECEIVED) with the delayed-ACK timer, rather than sending it
    /// at once. An application that closes as soon as it reads end-of-file then sends
    /// its FIN with that ACK: the three-way close (FIN, FIN+ACK, ACK). The ACK still
    /// goes at once when another rule asks for it (a filled hole, more than one full
    /// segment unacknowledged). The ACK of a FIN in FIN_WAIT_1 or FIN_WAIT_2, and of a
    /// retransmitted FIN, is always immediate. Linux: true (tcp_fin() schedules the ACK
    /// and enters pingpong mode). FreeBSD: false (it ACKs every FIN at once,
    /// TF_ACKNOW).
    pub delayed_fin_ack: bool,
    /// Segments acknowledged at once at the start of a connection before delayed ACKs
    /// begin (Linux's quick-ACK mode).
    pub quickack_segments: u32,
    /// Acknowledge at once an in-order segment that arrives while an ACK is already
    /// being delayed, whatever the two segments' sizes: at most one delayed ACK at a
    /// time, so every second segment is ACKed (FreeBSD's `DELAY_ACK`). Linux: false
    /// (the ACK is forced once two full-sized segments' worth is unacknowledged,
    /// RFC 5681 section 4.2; smaller segments wait for the timer).
    pub ack_every_second_segment: bool,
    /// Acknowledge at once a segment that repeats data already received before the
    /// new data it brings, so that its D-SACK block (RFC 2883) goes out now rather
    /// than with the delayed ACK (FreeBSD: "ACK now, as the next in-sequence segment
    /// will clear the DSACK block again"). Linux: false (a segment wholly below
    /// RCV.NXT is ACKed at once either way).
    pub ack_dsack_at_once: bool,
    /// Disable Nagle's algorithm (`TCP_NODELAY`). Linux: false.
    pub nodelay: bool,
    /// Send keepalive probes (`SO_KEEPALIVE`). Linux: off.
    pub keepalive: bool,
    /// Idle time before the first keepalive probe. Linux: 7200 s.
    pub keepalive_idle: Duration,
    /// Time between keepalive probes. Linux: 75 s.
    pub keepalive_interval: Duration,
    /// Unanswered probes before the connection is dropped. Linux: 9.
    pub keepalive_count: u32,
    /// `SO_LINGER` with a zero timeout: close() sends RST and skips TIME_WAIT.
    pub linger_zero: bool,
    /// Ignore RST in TIME_WAIT (RFC 1337). Linux's default is off; seqack's is on.
    pub rfc1337: bool,
    /// RFC 5961 3.2 for RST: only an RST exactly at RCV.NXT resets, one elsewhere in
    /// the window draws a challenge ACK (Linux, and FreeBSD's default). Off: RFC 793's
    /// rule, any RST in the window resets (FreeBSD's `net.inet.tcp.insecure_rst=1`).
    pub rfc5961_rst: bool,
    /// RFC 5961 4.2 for SYN: a SYN in a synchronized state draws a challenge ACK (Linux,
    /// and FreeBSD's default). Off: RFC 793's rule, a SYN in the window resets the
    /// connection and an RST goes back (FreeBSD's `net.inet.tcp.insecure_syn=1`).
    pub rfc5961_syn: bool,
    /// Minimum interval between challenge ACKs and out-of-window duplicate ACKs of one
    /// connection (RFC 5961 section 7; Linux `tcp_invalid_ratelimit`: 500 ms).
    pub challenge_ack_interval: Duration,
    /// The link MTU. The MSS we advertise is MTU - 40 on IPv4 and MTU - 60 on IPv6
    /// (RFC 9293 3.7.1): 1460 and 1440 on Linux's usual 1500. At least
    /// [`Config::MIN_MTU`]; a connection's own is bounded by its stack's.
    pub mtu: u16,
    /// MSS assumed when the peer sends none (RFC 9293: 536).
    pub default_peer_mss: u16,
    /// Send buffer size in bytes, at most [`Config::MAX_BUFFER`].
    pub send_buffer: usize,
    /// Receive buffer size in bytes (the largest window advertised), at most
    /// [`Config::MAX_BUFFER`].
    pub recv_buffer: usize,
    /// Largest window offered in a SYN or SYN-ACK (before scaling is in force). Linux
    /// offers 64240 on a 1460 MSS (the largest MSS multiple under 65535).
    pub initial_window_cap: u32,
    /// Window scale shift we offer, `None` to offer none. Linux: 7. A receive buffer
    /// larger than this shift can advertise (65,535 << 7 is 8 MiB) raises it: see
    /// [`Config::offered_wscale`].
    pub wscale: Option<u8>,
    /// Send our MSS option in the SYN and SYN-ACK (RFC 9293 3.7.1). Off, together with
    /// `timestamps`, `sack` and `wscale` off, the handshake carries no options at all
    /// (FreeBSD's `TCP_NOOPT`); the peer then sends us segments of its default size
    /// (536 bytes over IPv4, 1,220 over IPv6). The peer's own MSS option is used either
    /// way. Linux: on (always).
    pub mss_option: bool,
    /// TCP Fast Open for active opens (RFC 7413, client side). The SYN asks the server
    /// for a cookie; once the stack holds one for the server (its cookie cache, per
    /// local and remote address), the SYN carries it and the data the application
    /// wrote before the SYN went out ([`Stack::connect_with`] and then
    /// [`Stack::send`]), up to one segment, so the request reaches the server a round
    /// trip earlier. Negative answers (no cookie, SYN data not acknowledged, no answer)
    /// turn Fast Open off towards that server for
    /// [`StackConfig::fast_open_disable`](crate::StackConfig::fast_open_disable), as
    /// RFC 7413 4.1.3.1 asks. Passive opens ignore it: seqack's listeners do not take
    /// data on a SYN. Linux: off unless the application asks (`MSG_FASTOPEN`,
    /// `TCP_FASTOPEN_CONNECT`).
    ///
    /// [`Stack::connect_with`]: crate::Stack::connect_with
    /// [`Stack::send`]: crate::Stack::send
    pub fast_open: bool,
    /// Data on a SYN that arrives in SYN_SENT (a simultaneous open) is kept and
    /// delivered once the connection is ESTABLISHED, as RFC 9293 3.10.7.3 says ("queue
    /// them for processing after the ESTABLISHED state has been reached"); FreeBSD does
    /// so. Off, it is dropped and the peer sends it again, as Linux does
    /// (tcp_rcv_synsent_state_process). Either way our SYN-ACK acknowledges the SYN
    /// alone. Linux: off.
    pub queue_syn_text: bool,
    /// Longest an active open may wait for its handshake: past it, the connection fails
    /// with `TimedOut` whatever SYN retransmissions `syn_retries` has left. FreeBSD's
    /// `TCP_KEEPINIT` (`net.inet.tcp.keepinit`, 75 s there). Linux: none (`None`), only
    /// `syn_retries` bounds it.
    pub connect_timeout: Option<Duration>,
    /// Offer and use timestamps (RFC 7323). Linux: on.
    pub timestamps: bool,
    /// Offer and use SACK (RFC 2018). Linux: on.
    pub sack: bool,
    /// How the advertised window follows free receive space. Off (Linux-like, RFC 9293
    /// 3.8.6.2.2): the right edge moves only when it can move by min(MSS, buffer/2).
    /// On (FreeBSD's tcp_output): every segment offers all free space, except that a
    /// window under min(MSS, buffer/4) is offered as zero; it never shrinks.
    pub advertise_free_space: bool,
    /// Accept segments up to the free buffer space even beyond the advertised window
    /// (FreeBSD's tcp_input: RCV.WND = max(space, RCV.ADV - RCV.NXT)). Off (Linux, RFC
    /// 9293): the advertised window bounds acceptability.
    pub accept_to_buffer_space: bool,
    /// In TIME_WAIT, drop segments without ACK (RFC 9293's fifth check; FreeBSD's
    /// tcp_twcheck). Off (Linux, tcp_timewait_state_process): they are ACKed like any
    /// other unexpected segment.
    pub tw_ack_required: bool,
    /// Send our FIN again on every ACK while it is unacknowledged and nothing else is
    /// outstanding (FreeBSD's tcp_output in FIN_WAIT_1, CLOSING and LAST_ACK); challenge
    /// ACKs excepted. Off (Linux): a bare ACK at SND.NXT.
    pub resend_fin_in_acks: bool,
    /// Report duplicate segments in the first SACK block (D-SACK, RFC 2883) when SACK
    /// is in use. Linux: on (`tcp_dsack`).
    pub dsack: bool,
    /// Initial congestion window in segments (RFC 6928). Linux: 10.
    pub initial_cwnd: u32,
    /// Congestion control algorithm. Linux: CUBIC.
    pub congestion: Algorithm,
    /// Tail loss probes (RFC 8985 section 7) when SACK is in use: 2 SRTTs after the
    /// last transmission with no ACK, one segment (new data, or the last one again)
    /// draws the ACK or SACK that lets loss recovery start without waiting for the
    /// RTO. Linux: on (`tcp_early_retrans` = 3).
    pub tail_loss_probe: bool,
    /// RACK's time-based loss detection (RFC 8985 section 6) when SACK is in use:
    /// a segment is lost once a later-sent one was delivered and an RTT plus a
    /// reordering window have passed; finds lost retransmissions without an RTO.
    /// Linux: on (`tcp_recovery` = 1).
    pub rack: bool,
    /// Header prediction (Linux's fast path in `tcp_rcv_established`): the next
    /// in-order data segment of a connection that is only receiving skips the checks
    /// that cannot apply to it. Off, every segment takes the full path, with exactly
    /// the same effects, more slowly: for tests that hold the two against each other.
    pub header_prediction: bool,
    /// Report every state transition as an [`Event::StateChange`](crate::Event) (the
    /// state logs and ladder diagrams are built from them), as the stack also does for
    /// listeners and for compact TIME_WAIT records (there the stack's own `Config`
    /// decides). Off, none is queued: an application that logs no states saves their
    /// cost (5 % of a short connection's in the `churn` benchmark). The other events (`Connected`, `Readable`, `Writable`,
    /// `Error`, `Closed`) come either way. Linux reports none (its `tcp_set_state`
    /// tracepoint is off by default). Default: on.
    pub state_events: bool,
    /// Option order on outbound headers.
    pub option_layout: OptionLayout,
    /// IP TTL / hop limit of outbound packets. Linux: 64.
    pub hop_limit: u8,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            msl: Duration::from_secs(30),
            fin_wait2_timeout: Duration::from_secs(60),
            rto_initial: Duration::from_secs(1),
            rto_min: Duration::from_millis(200),
            rto_max: Duration::from_secs(120),
            syn_retries: 6,
            synack_retries: 5,
            defer_accept_rounds: 0,
            retries2: 15,
            orphan_retries: 8,
            delayed_ack: Duration::from_millis(40),
            delayed_fin_ack: true,
            quickack_segments: 16,
            ack_every_second_segment: false,
            ack_dsack_at_once: false,
            nodelay: false,
            keepalive: false,
            keepalive_idle: Duration::from_secs(7200),
            keepalive_interval: Duration::from_secs(75),
            keepalive_count: 9,
            linger_zero: false,
            rfc1337: true,
            rfc5961_rst: true,
            rfc5961_syn: true,
            challenge_ack_interval: Duration::from_millis(500),
            mtu: 1500,
            default_peer_mss: 536,
            send_buffer: 256 * 1024,
            recv_buffer: 256 * 1024,
            initial_window_cap: 64240,
            wscale: Some(7),
            mss_option: true,
            fast_open: false,
            queue_syn_text: false,
            connect_timeout: None,
            timestamps: true,
            sack: true,
            dsack: true,
            advertise_free_space: false,
            tw_ack_required: false,
            resend_fin_in_acks: false,
            accept_to_buffer_space: false,
            initial_cwnd: 10,
            congestion: Algorithm::Cubic,
            tail_loss_probe: true,
            rack: true,
            header_prediction: true,
            state_events: true,
            option_layout: OptionLayout::Linux,
            hop_limit: 64,
        }
    }
}

/// A setting out of the range a connection can honour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// `send_buffer` is above [`Config::MAX_BUFFER`].
    SendBufferTooLarge(usize),
    /// `recv_buffer` is above [`Config::MAX_BUFFER`].
    RecvBufferTooLarge(usize),
    /// `mtu` is below [`Config::MIN_MTU`].
    MtuTooSmall(u16),
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (which, n) = match *self {
            ConfigError::SendBufferTooLarge(n) => ("send", n),
            ConfigError::RecvBufferTooLarge(n) => ("receive", n),
            ConfigError::MtuTooSmall(m) => {
                return write!(
                    f,
                    "an MTU of {m} bytes is below the smallest that carries a minimum-sized \
                     segment ({} bytes: the 88-byte minimum MSS behind IPv4 and TCP headers)",
                    Config::MIN_MTU
                );
            }
        };
        write!(
            f,
            "{which} buffer of {n} bytes is above the largest a connection takes ({} bytes)",
            Config::MAX_BUFFER
        )
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// The largest send or receive buffer (1 GiB): about the largest window scaling can
    /// advertise (65,535 << 14), and well inside the 2^31 bytes that sequence numbers
    /// can order. Buffers keep their sizes and positions in 32 bits; a connection takes
    /// a larger setting as this, and [`Config::check`] reports it.
    pub const MAX_BUFFER: usize = 1 << 30;

    /// The smallest MTU (128 bytes): a segment of the smallest MSS an IPv4 connection
    /// uses (88 bytes, Linux's `TCP_MIN_MSS`) behind 40 bytes of headers. Below it
    /// packets would be longer than the MTU; [`Config::check`] reports it. IPv6 needs
    /// 148 for the same segment, and its links carry at least 1,280 (RFC 8200 section
    /// 5): an IPv6 connection on an MTU below 148 sends packets of 148 bytes.
    pub const MIN_MTU: u16 = 128;

    /// Checks that every setting is one a connection can honour as given.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.send_buffer > Config::MAX_BUFFER {
            return Err(ConfigError::SendBufferTooLarge(self.send_buffer));
        }
        if self.recv_buffer > Config::MAX_BUFFER {
            return Err(ConfigError::RecvBufferTooLarge(self.recv_buffer));
        }
        if self.mtu < Config::MIN_MTU {
            return Err(ConfigError::MtuTooSmall(self.mtu));
        }
        Ok(())
    }

    /// `TCP_DEFER_ACCEPT` seconds as SYN-ACK retransmission rounds, as Linux converts
    /// them: the rounds whose backed-off timeouts (from 1 s, capped at 120 s) first
    /// add up to at least `seconds`.
    pub fn defer_accept_rounds_for(seconds: u32) -> u32 {
        if seconds == 0 {
            return 0;
        }
        let (mut rounds, mut timeout, mut period) = (1u32, 1u32, 1u32);
        while seconds > period && rounds < 255 {
            rounds += 1;
            timeout = (timeout * 2).min(120);
            period += timeout;
        }
        rounds
    }

    /// The MSS to advertise for a connection over IPv6 (`true`) or IPv4.
    pub fn mss(&self, ipv6: bool) -> u16 {
        let headers = if ipv6 { 60 } else { 40 };
        self.mtu.saturating_sub(headers).max(88)
    }

    /// The window scale shift actually offered: `wscale`, raised if need be so that the
    /// whole receive buffer can be advertised (RFC 7323 2.3: the smallest shift with
    /// `recv_buffer >> shift <= 65535`), at most 14. `None` when `wscale` is `None`.
    pub fn offered_wscale(&self) -> Option<u8> {
        let mut needed = 0u8;
        while needed < 14 && (self.recv_buffer >> needed) > 65_535 {
            needed += 1;
        }
        self.wscale.map(|w| w.max(needed).min(14))
    }

    /// TIME_WAIT's length: twice the MSL.
    pub fn time_wait_len(&self) -> Duration {
        self.msl * 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offered_window_scale_covers_the_receive_buffer() {
        let with = |recv_buffer, wscale| Config {
            recv_buffer,
            wscale,
            ..Config::default()
        };
        // Linux's 7 covers up to 65,535 << 7, just under 8 MiB.
        assert_eq!(with(256 * 1024, Some(7)).offered_wscale(), Some(7));
        assert_eq!(with(65_535 << 7, Some(7)).offered_wscale(), Some(7));
        assert_eq!(with(8 << 20, Some(7)).offered_wscale(), Some(8));
        // Beyond, the shift grows with the buffer; never past RFC 7323's 14.
        assert_eq!(with(65_535 << 8, Some(7)).offered_wscale(), Some(8));
        assert_eq!(with(16 << 20, Some(7)).offered_wscale(), Some(9));
        assert_eq!(with(1 << 30, Some(7)).offered_wscale(), Some(14));
        assert_eq!(with(usize::MAX, Some(0)).offered_wscale(), Some(14));
        // A small buffer keeps the configured shift; none stays none.
        assert_eq!(with(60_000, Some(2)).offered_wscale(), Some(2));
        assert_eq!(with(16 << 20, None).offered_wscale(), None);
    }
}
