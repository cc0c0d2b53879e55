//! The runner: one script against one fresh seqack stack, in virtual time.
//!
//! Time works as in packetdrill, with the live clock replaced by a virtual one that
//! starts at 0 with the script. A relative time counts from the moment the previous
//! event finished ("now"), except that consecutive inbound packets count from each
//! other's scripted times. Inbound packets, system calls, commands and code blocks
//! happen at their scripted time (the stack's timers fire on the way there). An
//! outbound packet is the next packet the stack sends, whenever it sent it: it must
//! match the script field by field and have left within the tolerance, which is
//! `--tolerance_usecs` or `--tolerance_percent` of the time since the previous event,
//! whichever is larger.
//!
//! Sequence numbers map as packetdrill maps them: the script's own ISN is used as is
//! on the wire (inbound sequence numbers are offsets from it, after the SYN), and the
//! stack's ISN is learnt from its SYN or SYN-ACK; outbound sequence numbers are
//! compared relative to it, acknowledgment numbers relative to the script's ISN. TS
//! echo replies of inbound packets are mapped back to the TSvals the stack sent.

use crate::ast::*;
use crate::kernel::{FdTable, Ret, SockKind};
use crate::wire::{self, TcpPacket};
use core::fmt;
use core::net::{IpAddr, SocketAddr};
use seqack::stack::{SynCookies, SynFin};
use seqack::wire::tcp::OptionLayout;
use seqack::{Config, ConnId, Instant, Stack, StackConfig, StackEvent, State};
use std::collections::{HashMap, HashSet, VecDeque};

/// Which system the scripts were written for: sets the stack's defaults to match.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum Profile {
    /// Linux's choices (seqack's defaults).
    #[default]
    Linux,
    /// FreeBSD's: initial receive window 65535, window scale 6, SYN options in
    /// FreeBSD's order, 64 KiB receive and 32 KiB send buffers, every FIN ACKed at once.
    FreeBsd,
}

/// How to run scripts.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The system the scripts expect.
    pub profile: Profile,
    /// Do not compare outbound windows.
    pub ignore_win: bool,
    /// Compare outbound options as a set of kinds, ignoring order, padding, and the
    /// values of window scale and timestamps.
    pub loose_options: bool,
    /// `-D NAME=VALUE` symbols (an empty value only defines NAME for `#ifdef`).
    pub defines: HashMap<String, String>,
    /// Overrides the scripts' `--tolerance_usecs`.
    pub tolerance_usecs: Option<i64>,
}

/// Why a script failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The script line.
    pub line: u32,
    /// What was expected and what happened.
    pub msg: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.msg)
    }
}

/// A line the runner did not carry out (a shell command or code it cannot emulate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The script line.
    pub line: u32,
    /// The command or code, shortened.
    pub what: String,
}

/// The result of one script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// `Ok` when every event happened as scripted.
    pub result: Result<(), Failure>,
    /// Lines skipped on the way.
    pub skipped: Vec<Skipped>,
}

/// Parses and runs one script.
pub fn run_script(src: &str, opts: &RunOptions) -> Report {
    let mut defines = opts.defines.clone();
    let os = match opts.profile {
        Profile::Linux => "Linux",
        Profile::FreeBsd => "FreeBSD",
    };
    defines.entry(os.to_string()).or_default();
    let script = match crate::parser::parse(src, &defines) {
        Ok(s) => s,
        Err(e) => {
            return Report {
                result: Err(Failure {
                    line: e.line,
                    msg: e.msg,
                }),
                skipped: Vec::new(),
            }
        }
    };
    let mut r = match Runner::new(&script, opts) {
        Ok(r) => r,
        Err(f) => {
            return Report {
                result: Err(f),
                skipped: Vec::new(),
            }
        }
    };
    // A panic in the stack (or the runner) fails this script, not the whole run.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let result = r.run(&script);
        (result, std::mem::take(&mut r.skipped))
    }));
    match outcome {
        Ok((result, skipped)) => Report { result, skipped },
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Report {
                result: Err(Failure {
                    line: r.line,
                    msg: format!("panic while running this line: {what}"),
                }),
                skipped: r.skipped,
            }
        }
    }
}

pub(crate) type Res<T> = Result<T, Failure>;

/// The script's view of the connection under test, as packetdrill keeps it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Flow {
    pub state: FlowState,
    /// The stack's end.
    pub local: Option<SocketAddr>,
    /// The script's end.
    pub remote: Option<SocketAddr>,
    pub script_local_isn: u32,
    pub live_local_isn: u32,
    pub remote_isn: u32,
    /// Script TSval -> the TSval the stack actually sent.
    pub ts_map: HashMap<u32, u32>,
    /// The first (script, actual) TSval pair: the baseline of the mapping.
    pub first_ts: Option<(u32, u32)>,
}

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum FlowState {
    #[default]
    Init,
    Listening,
    PassivePacketReceived,
    PassiveSynAckSent,
    PassiveSynAckAcked,
    Connecting,
    ActiveSynSent,
    ActiveSynAcked,
}

/// The socket under test: the last socket created, or the connection a scripted
/// packet opened on a listener.
#[derive(Clone, Debug, Default)]
pub(crate) struct Sut {
    pub fd: Option<i32>,
    pub flow: Flow,
}

/// A system call blocked in the (emulated) system-call thread.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub line: u32,
    pub spec: SyscallSpec,
    pub start: i64,
    /// The scripted return time (absolute), for calls written with `...END`.
    pub end: Option<i64>,
    pub op: Op,
}

/// What a blocked call waits for.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    Accept {
        fd: i64,
        hint: Option<i64>,
    },
    Connect {
        fd: i64,
    },
    Read {
        fd: i64,
        len: usize,
    },
    Write {
        fd: i64,
        left: usize,
        done: usize,
    },
    Poll {
        fds: Vec<(i64, i64)>,
        deadline: Option<i64>,
    },
}

#[derive(Copy, Clone, Debug)]
struct LastEvent {
    time: i64,
    inbound: bool,
    absolute: bool,
}

/// One packet the stack sent, and when.
#[derive(Clone, Debug)]
pub(crate) struct Sent {
    pub at: i64,
    pub bytes: Vec<u8>,
}

pub(crate) struct Runner<'o> {
    pub opts: &'o RunOptions,
    pub ipv6: bool,
    pub local_ip: IpAddr,
    pub remote_ip: IpAddr,
    pub bind_port: u16,
    pub connect_port: u16,
    pub tolerance_usecs: i64,
    pub tolerance_percent: f64,
    /// Connection settings every new socket starts from (profile, sysctls, --mtu).
    pub base: Config,
    /// The window scale shift offered while window scaling is on: the profile's, or
    /// under FreeBSD the one `kern.ipc.maxsockbuf` implies.
    pub wscale_shift: u8,
    pub stack_cfg: StackConfig,
    pub stack: Stack,
    /// Something has used the stack: it can no longer be rebuilt with new settings.
    pub stack_used: bool,
    pub now: i64,
    pub fds: FdTable,
    pub sent: VecDeque<Sent>,
    pub sut: Option<Sut>,
    pub next_remote_port: u16,
    last: Option<LastEvent>,
    pub line: u32,
    pub pending: Option<Pending>,
    pub skipped: Vec<Skipped>,
    /// Connections created by a listener whose options were already applied.
    pub configured: HashSet<ConnId>,
    /// Connections each listener announced as ready for accept() and not yet taken.
    pub incoming: HashMap<seqack::ListenerId, usize>,
    buf: Vec<u8>,
}

/// The stack settings of a profile.
pub fn profile_config(p: Profile) -> Config {
    let mut c = Config::default();
    if p == Profile::FreeBsd {
        c.initial_window_cap = 65535;
        c.option_layout = OptionLayout::FreeBsd;
        c.wscale = Some(6);
        c.recv_buffer = FREEBSD_RECVSPACE;
        c.send_buffer = 32768;
        // FreeBSD delays every ACK it can (no quick-ACK phase), by 40 ms, one at a time:
        // a second segment while one waits is ACKed at once.
        c.quickack_segments = 0;
        c.ack_every_second_segment = true;
        // ... and at once when a segment's D-SACK block is to be reported.
        c.ack_dsack_at_once = true;
        c.delayed_ack = seqack::Duration::from_millis(40);
        // FreeBSD ACKs a FIN at once in every state (TF_ACKNOW in tcp_input's FIN
        // processing), where Linux delays the ACK of one that moves to CLOSE_WAIT.
        c.delayed_fin_ack = false;
        // FreeBSD's window: all free space in every segment, and segments accepted up
        // to the buffer's space.
        c.advertise_free_space = true;
        c.accept_to_buffer_space = true;
        // TIME_WAIT drops segments without ACK; ACKs resend an unacknowledged FIN.
        c.tw_ack_required = true;
        c.resend_fin_in_acks = true;
        // FreeBSD's default stack: NewReno, and no tail loss probes (those belong to
        // its RACK stack, not the default one).
        c.congestion = seqack::tcp::congestion::Algorithm::NewReno;
        c.tail_loss_probe = false;
        c.rack = false;
        // Data on a SYN in SYN_SENT is kept for ESTABLISHED, as RFC 9293 says.
        c.queue_syn_text = true;
        // An active open gives up after 75 s (net.inet.tcp.keepinit).
        c.connect_timeout = Some(seqack::Duration::from_secs(75));
    }
    c
}

/// FreeBSD's `net.inet.tcp.recvspace` default.
pub const FREEBSD_RECVSPACE: usize = 65536;

/// FreeBSD's tcp_mss() rounds the socket buffers up to a multiple of the MSS once it
/// is known (65536 becomes 65700 with a 1460 MSS, 66240 with 1440): the receive window
/// a FreeBSD host offers comes from that rounded buffer.
pub fn freebsd_round(buf: usize, mss: usize) -> usize {
    let m = mss.max(1);
    buf.div_ceil(m) * m
}

fn fail<T>(line: u32, msg: impl Into<String>) -> Res<T> {
    Err(Failure {
        line,
        msg: msg.into(),
    })
}

/// Seconds with six decimals, as packetdrill prints times.
pub(crate) fn secs(us: i64) -> String {
    let sign = if us < 0 { "-" } else { "" };
    let a = us.unsigned_abs();
    format!("{sign}{}.{:06}", a / 1_000_000, a % 1_000_000)
}

/// The longest a `*` packet or a call with no scripted end may be waited for.
const MAX_WAIT_USECS: i64 = 4 * 3600 * 1_000_000;

impl<'o> Runner<'o> {
    fn new(script: &Script, opts: &'o RunOptions) -> Res<Runner<'o>> {
        let mut ipv6 = false;
        let mut local_ip: Option<IpAddr> = None;
        let mut remote_ip: Option<IpAddr> = None;
        let mut tolerance_usecs = 4000;
        let mut tolerance_percent = 12.5;
        let mut bind_port = 8080;
        let mut connect_port = 8080;
        let mut base = profile_config(opts.profile);
        for o in &script.options {
            let v = o.value.as_deref().unwrap_or("");
            fn num<T: core::str::FromStr>(o: &ScriptOption, v: &str) -> Res<T> {
                let v = v.split('/').next().unwrap_or(v);
                v.parse()
                    .or_else(|_| fail(o.line, format!("bad value for --{}: {v}", o.name)))
            }
            match o.name.as_str() {
                "ip_version" => match v {
                    "ipv4" | "ipv4-mapped-ipv6" => ipv6 = false,
                    "ipv6" => ipv6 = true,
                    _ => return fail(o.line, format!("bad --ip_version: {v}")),
                },
                "tolerance_usecs" => tolerance_usecs = num(o, v)?,
                "tolerance_percent" => tolerance_percent = num(o, v)?,
                "local_ip" => local_ip = Some(num(o, v)?),
                "remote_ip" => remote_ip = Some(num(o, v)?),
                "bind_port" => bind_port = num(o, v)?,
                "connect_port" => connect_port = num(o, v)?,
                "mtu" => base.mtu = num(o, v)?,
                _ => {}
            }
        }
        if let Some(t) = opts.tolerance_usecs {
            tolerance_usecs = t;
        }
        // packetdrill's defaults: 192.168.0.0/16 and 192.0.2.1; fd3d:fa7b:d17d::/48 and
        // 2001:db8::1.
        let local_ip = local_ip.unwrap_or_else(|| {
            if ipv6 {
                "fd3d:fa7b:d17d::1".parse().expect("address")
            } else {
                "192.168.0.1".parse().expect("address")
            }
        });
        let remote_ip = remote_ip.unwrap_or_else(|| {
            if ipv6 {
                "2001:db8::1".parse().expect("address")
            } else {
                "192.0.2.1".parse().expect("address")
            }
        });
        if local_ip.is_ipv6() != ipv6 || remote_ip.is_ipv6() != ipv6 {
            return fail(1, "--local_ip/--remote_ip do not match --ip_version");
        }
        let stack_cfg = StackConfig {
            tcp: base.clone(),
            seed: 1,
            // FreeBSD's drop_synfin is 0 by default: a listener takes SYN+FIN as a SYN.
            syn_fin: if opts.profile == Profile::FreeBsd {
                SynFin::ListenAsSyn
            } else {
                SynFin::ListenDiscard
            },
            ..StackConfig::default()
        };
        let mut stack = Stack::new(stack_cfg.clone());
        stack.add_address(local_ip);
        Ok(Runner {
            opts,
            ipv6,
            local_ip,
            remote_ip,
            bind_port,
            connect_port,
            tolerance_usecs,
            tolerance_percent,
            // Both profiles turn window scaling on: the shift is the profile's.
            wscale_shift: base.wscale.unwrap_or(7),
            base,
            stack_cfg,
            stack,
            stack_used: false,
            now: 0,
            fds: FdTable::default(),
            sent: VecDeque::new(),
            sut: None,
            next_remote_port: 40000,
            last: None,
            line: 0,
            pending: None,
            skipped: Vec::new(),
            configured: HashSet::new(),
            incoming: HashMap::new(),
            buf: vec![0; 70_000],
        })
    }

    pub(crate) fn instant(&self) -> Instant {
        Instant::from_micros(self.now.max(0) as u64)
    }

    /// Rebuilds the stack with `tcp` as every connection's settings, if nothing has
    /// used it yet (listeners take their settings from the stack).
    pub(crate) fn configure_stack(&mut self, tcp: Config) {
        if self.stack_used {
            return;
        }
        if tcp != self.stack_cfg.tcp {
            self.stack_cfg.tcp = tcp;
            self.stack = Stack::new(self.stack_cfg.clone());
            self.stack.add_address(self.local_ip);
        }
    }

    fn run(&mut self, script: &Script) -> Res<()> {
        if let Some((line, cmd)) = &script.init_command {
            self.line = *line;
            self.command(*line, cmd)?;
        }
        for (i, ev) in script.events.iter().enumerate() {
            self.line = ev.line;
            self.event(i == 0, ev)?;
        }
        if let Some(p) = &self.pending {
            return fail(
                p.line,
                format!(
                    "{}() still blocked at the end of the script ({} s)",
                    p.spec.name,
                    secs(self.now)
                ),
            );
        }
        if let Some((line, cmd)) = &script.cleanup_command {
            self.line = *line;
            self.command(*line, cmd)?;
        }
        Ok(())
    }

    fn event(&mut self, first: bool, ev: &Event) -> Res<()> {
        let line = ev.line;
        let raw = match ev.time {
            EventTime::Absolute(t)
            | EventTime::Relative(t)
            | EventTime::AbsoluteRange(t, _)
            | EventTime::RelativeRange(t, _) => t,
            EventTime::Any => 0,
        };
        if first && raw != 0 {
            return fail(line, "first event should be at time 0");
        }
        let inbound = matches!(&ev.action, Action::Packet(p) if p.dir == Direction::Inbound);
        let absolute = matches!(
            ev.time,
            EventTime::Absolute(_) | EventTime::AbsoluteRange(..)
        );
        let offset = match self.last {
            Some(l) if l.inbound && inbound => l.time,
            _ => self.now,
        };
        let (start, end) = match ev.time {
            EventTime::Absolute(t) => (t, t),
            EventTime::AbsoluteRange(a, b) => (a, b),
            EventTime::Relative(t) => (offset + t, offset + t),
            EventTime::RelativeRange(a, b) => (offset + a, offset + b),
            EventTime::Any => (offset, offset),
        };
        if let Some(l) = self.last {
            if l.absolute && absolute && start < l.time {
                return fail(
                    line,
                    format!(
                        "time goes backward in script from {} s to {} s",
                        secs(l.time),
                        secs(start)
                    ),
                );
            }
        }
        let last_time = self.last.map(|l| l.time);
        match &ev.action {
            Action::Packet(p) if p.dir == Direction::Inbound => {
                self.wait_for(line, "inbound packet", start, last_time)?;
                self.inject(line, p)?;
            }
            Action::Packet(p) => {
                let any = ev.time == EventTime::Any;
                let range = matches!(
                    ev.time,
                    EventTime::AbsoluteRange(..) | EventTime::RelativeRange(..)
                );
                self.expect(line, p, start, end, any, range, last_time)?;
            }
            Action::Syscall(s) => {
                let end = s.end.map(|e| match ev.time {
                    EventTime::Relative(_) => offset + e,
                    _ => e,
                });
                self.syscall_event(line, s, start, end, last_time)?;
            }
            Action::Command(c) => {
                self.wait_for(line, "command", start, last_time)?;
                self.command(line, c)?;
            }
            Action::Code(c) => {
                self.wait_for(line, "data collection for code", start, last_time)?;
                self.code(line, c)?;
            }
        }
        self.last = Some(LastEvent {
            time: start,
            inbound,
            absolute,
        });
        Ok(())
    }

    // ----- time -------------------------------------------------------------------

    /// The tolerance for something scripted at `t`, the previous event being at `last`.
    pub(crate) fn tolerance(&self, t: i64, last: Option<i64>) -> i64 {
        let mut tol = self.tolerance_usecs;
        if let Some(l) = last {
            let dynamic = (self.tolerance_percent / 100.0 * (t - l) as f64) as i64;
            tol = tol.max(dynamic);
        }
        tol
    }

    /// Advances virtual time to `t` and checks that we are not already late for it.
    fn wait_for(&mut self, line: u32, what: &str, t: i64, last: Option<i64>) -> Res<()> {
        self.advance_to(t)?;
        let tol = self.tolerance(t, last);
        if self.now > t + tol {
            return fail(
                line,
                format!(
                    "timing error: expected {what} at {} s but happened at {} s; tolerance {} s",
                    secs(t),
                    secs(self.now),
                    secs(tol)
                ),
            );
        }
        Ok(())
    }

    /// The next moment something can happen without the script: a stack timer, or the
    /// timeout of a blocked poll().
    pub(crate) fn next_wakeup(&mut self) -> Option<i64> {
        let timer = self
            .stack
            .poll_timeout()
            .map(|t| t.total_micros().min(i64::MAX as u64) as i64);
        let poll = match &self.pending {
            Some(Pending {
                op: Op::Poll {
                    deadline: Some(d), ..
                },
                ..
            }) => Some(*d),
            _ => None,
        };
        match (timer, poll) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs the stack's timers (and blocked calls) up to `t`, then sets the clock to `t`.
    pub(crate) fn advance_to(&mut self, t: i64) -> Res<()> {
        let mut stalls = 0;
        while let Some(w) = self.next_wakeup() {
            if w > t {
                break;
            }
            if w <= self.now {
                stalls += 1;
                if stalls > 10_000 {
                    return fail(
                        self.line,
                        format!("the stack's timers are stuck at {} s", secs(self.now)),
                    );
                }
            } else {
                stalls = 0;
                self.now = w;
            }
            let now = self.instant();
            self.stack.handle_timeout(now);
            self.drain()?;
        }
        if t > self.now {
            self.now = t;
            // A blocked poll() may time out right now.
            self.drain()?;
        }
        Ok(())
    }

    /// Collects what the stack sends and reports, and lets blocked calls finish.
    pub(crate) fn drain(&mut self) -> Res<()> {
        loop {
            let now = self.instant();
            while let Some(n) = self.stack.poll_transmit(now, &mut self.buf) {
                self.sent.push_back(Sent {
                    at: self.now,
                    bytes: self.buf[..n].to_vec(),
                });
            }
            let mut events = Vec::new();
            while let Some(ev) = self.stack.poll_event() {
                events.push(ev);
            }
            for ev in events {
                self.on_stack_event(ev);
            }
            if !self.poll_pending()? {
                return Ok(());
            }
        }
    }

    fn on_stack_event(&mut self, ev: StackEvent) {
        if let StackEvent::Incoming(l) = ev {
            *self.incoming.entry(l).or_default() += 1;
            return;
        }
        let StackEvent::Conn {
            id, local, event, ..
        } = ev
        else {
            return;
        };
        match self.fds.fd_of_conn(id) {
            Some(fd) => match event {
                seqack::Event::Error(err) => {
                    if let (Ok(s), Some(e)) = (
                        self.fds.get_mut(i64::from(fd)),
                        crate::kernel::conn_errno(err),
                    ) {
                        s.sk_err = Some(e);
                    }
                }
                // Linux's tcp_reset gives EPIPE, not ECONNRESET, to a connection reset in
                // CLOSE_WAIT (FreeBSD keeps ECONNRESET). The stack reports the error,
                // then this state change.
                seqack::Event::StateChange {
                    from: State::CloseWait,
                    why: seqack::Reason::RcvRst,
                    ..
                } if self.opts.profile == Profile::Linux => {
                    if let Ok(s) = self.fds.get_mut(i64::from(fd)) {
                        if s.sk_err == Some(crate::kernel::e("ECONNRESET")) {
                            s.sk_err = Some(crate::kernel::e("EPIPE"));
                        }
                    }
                }
                _ => {}
            },
            None => {
                // A connection a listener made: it inherits the listener's options.
                if self.configured.insert(id) {
                    if let Some(lfd) = self.fds.listener_on_port(local.port()) {
                        if let Ok(l) = self.fds.get(i64::from(lfd)) {
                            let opts = l.opts.clone();
                            self.apply_conn_options(id, &opts);
                        }
                    }
                }
            }
        }
    }

    // ----- packets ------------------------------------------------------------------

    fn next_port(&mut self) -> u16 {
        let p = self.next_remote_port;
        self.next_remote_port = self.next_remote_port.wrapping_add(1).max(1024);
        p
    }

    /// The flow an inbound scripted packet belongs to, created as packetdrill does.
    fn inbound_flow(&mut self, p: &PacketSpec) -> &mut Flow {
        let listening = match &self.sut {
            None => true,
            Some(s) => s.flow.state == FlowState::Listening,
        };
        if listening {
            let lport = self
                .sut
                .as_ref()
                .and_then(|s| s.flow.local)
                .map_or(self.bind_port, |a| a.port());
            let rport = self.next_port();
            let (sport, dport) = p.ports.unwrap_or((rport, lport));
            let flow = Flow {
                state: FlowState::PassivePacketReceived,
                local: Some(SocketAddr::new(self.local_ip, dport)),
                remote: Some(SocketAddr::new(self.remote_ip, sport)),
                remote_isn: p.seq,
                ..Flow::default()
            };
            self.sut = Some(Sut { fd: None, flow });
        }
        let sut = self.sut.get_or_insert_with(Sut::default);
        let flow = &mut sut.flow;
        if flow.local.is_none() {
            flow.local = Some(SocketAddr::new(self.local_ip, self.bind_port));
        }
        if flow.remote.is_none() {
            flow.remote = Some(SocketAddr::new(self.remote_ip, self.next_remote_port));
        }
        let syn = p.flags.has(TcpFlags::SYN);
        let ack = p.flags.has(TcpFlags::ACK);
        match flow.state {
            FlowState::PassiveSynAckSent if ack => flow.state = FlowState::PassiveSynAckAcked,
            FlowState::ActiveSynSent if syn && ack => {
                flow.state = FlowState::ActiveSynAcked;
                flow.remote_isn = p.seq;
            }
            _ => {}
        }
        flow
    }

    fn inject(&mut self, line: u32, p: &PacketSpec) -> Res<()> {
        if p.flags.ace.is_some() || p.flags.ae {
            return fail(line, "AccECN flags are not supported");
        }
        let flow = self.inbound_flow(p).clone();
        let syn = p.flags.has(TcpFlags::SYN);
        let ack_flag = p.flags.has(TcpFlags::ACK);
        // The script's own ISN goes on the wire unchanged: a SYN's sequence number is
        // used as is, later ones are offsets from it.
        let seq = if p.seq_absolute || syn {
            p.seq
        } else {
            p.seq.wrapping_add(flow.remote_isn)
        };
        let ack_offset = if syn {
            flow.live_local_isn.wrapping_sub(flow.script_local_isn)
        } else {
            flow.live_local_isn
        };
        let ack = match p.ack {
            Some(a) if ack_flag => a.wrapping_add(ack_offset),
            Some(a) => a,
            None => 0,
        };
        let mut options = p.options.clone().unwrap_or_default();
        for o in &mut options {
            match o {
                TcpOption::Sack(blocks) => {
                    for b in blocks.iter_mut() {
                        b.0 = b.0.wrapping_add(ack_offset);
                        b.1 = b.1.wrapping_add(ack_offset);
                    }
                }
                TcpOption::Timestamp { ecr, .. } if ack_flag && !p.ts_ecr_absolute => {
                    if let Some(live) = flow.ts_map.get(ecr) {
                        *ecr = *live;
                    } else if let Some((s, a)) = flow.first_ts {
                        *ecr = ecr.wrapping_sub(s).wrapping_add(a);
                    }
                }
                _ => {}
            }
        }
        let tos = match (p.ip.tos, p.ip.ecn.and_then(Ecn::bits)) {
            (Some(t), Some(e)) => (t & !3) | e,
            (Some(t), None) => t,
            (None, Some(e)) => e,
            (None, None) => 0,
        };
        let pkt = TcpPacket {
            src: flow.remote.unwrap_or(SocketAddr::new(self.remote_ip, 0)),
            dst: flow.local.unwrap_or(SocketAddr::new(self.local_ip, 0)),
            tos,
            ttl: p.ip.ttl.filter(|&t| t != 0).unwrap_or(64),
            flags: p.flags.bits,
            ae: false,
            seq,
            ack,
            win: p.win.unwrap_or(0),
            urg: p.urg.unwrap_or(0),
            options,
            payload_len: usize::from(p.len),
        };
        let bytes = wire::build(&pkt);
        self.stack_used = true;
        let now = self.instant();
        self.stack.handle_packet(now, &bytes);
        self.drain()
    }

    /// Checks the next packet the stack sends against an outbound expectation.
    #[allow(clippy::too_many_arguments)]
    fn expect(
        &mut self,
        line: u32,
        spec: &PacketSpec,
        start: i64,
        end: i64,
        any: bool,
        range: bool,
        last: Option<i64>,
    ) -> Res<()> {
        let tol = self.tolerance(start, last);
        let deadline = if any {
            self.now + MAX_WAIT_USECS
        } else {
            end + tol
        };
        while self.sent.is_empty() {
            match self.next_wakeup() {
                Some(w) if w <= deadline => self.advance_to(w.max(self.now))?,
                _ => {
                    let when = if any {
                        "at any time".to_string()
                    } else if range {
                        format!("in {}~{} s", secs(start), secs(end))
                    } else {
                        format!("at {} s", secs(start))
                    };
                    return fail(
                        line,
                        format!(
                            "expected outbound packet \"{spec}\" {when}, got nothing (the \
                             stack sent nothing by {} s)",
                            secs(if any { self.now } else { deadline })
                        ),
                    );
                }
            }
        }
        let Some(sent) = self.sent.pop_front() else {
            return fail(line, "internal error: no packet");
        };
        let live = match wire::decode(&sent.bytes) {
            Ok(p) => p,
            Err(e) => return fail(line, format!("the stack sent a bad packet: {e}")),
        };
        // Learn the stack's ISN from its SYN or SYN-ACK, as packetdrill does.
        let sut = self.sut.get_or_insert_with(Sut::default);
        let flow = &mut sut.flow;
        let spec_syn = spec.flags.has(TcpFlags::SYN);
        let spec_ack = spec.flags.has(TcpFlags::ACK);
        let live_syn = live.flags & 0x02 != 0;
        let live_ack = live.flags & 0x10 != 0;
        if flow.state == FlowState::PassivePacketReceived && spec_syn && spec_ack {
            flow.script_local_isn = spec.seq;
            flow.live_local_isn = live.seq;
            flow.state = FlowState::PassiveSynAckSent;
        }
        if flow.state == FlowState::Connecting && spec_syn && !spec_ack {
            flow.script_local_isn = spec.seq;
            flow.state = FlowState::ActiveSynSent;
            if live_syn && !live_ack {
                flow.live_local_isn = live.seq;
                flow.local = Some(live.src);
                flow.remote = Some(live.dst);
            }
        }
        let actual = map_outbound(flow, spec, &live);
        let mut diffs = compare(spec, &actual, self.opts);
        if spec.ip.ecn.is_some() || spec.ip.tos.is_some() || spec.ip.ttl.is_some() {
            diffs.extend(compare_ip(spec, &live));
        }
        let shown = show_actual(spec, &actual, &live);
        if !diffs.is_empty() {
            return fail(
                line,
                format!(
                    "expected outbound packet \"{spec}\", got \"{shown}\" at {} s ({})",
                    secs(sent.at),
                    diffs.join(", ")
                ),
            );
        }
        if !any && (sent.at < start - tol || sent.at > end + tol) {
            let when = if range {
                format!("in {}~{} s", secs(start), secs(end))
            } else {
                format!("at {} s", secs(start))
            };
            return fail(
                line,
                format!(
                    "timing error: expected outbound packet \"{spec}\" {when} (tolerance {} s), \
                     got it at {} s",
                    secs(tol),
                    secs(sent.at)
                ),
            );
        }
        Ok(())
    }

    // ----- socket under test -------------------------------------------------------

    /// The connection of the socket under test, if it has one.
    pub(crate) fn sut_conn(&self) -> Option<ConnId> {
        let sut = self.sut.as_ref()?;
        if let Some(fd) = sut.fd {
            if let Ok(s) = self.fds.get(i64::from(fd)) {
                if let SockKind::Conn(id) = s.kind {
                    return Some(id);
                }
            }
        }
        let (l, r) = (sut.flow.local?, sut.flow.remote?);
        self.stack
            .connections()
            .find(|(_, c)| c.local() == l && c.remote() == r)
            .map(|(id, _)| id)
    }

    /// The TCP state of the socket under test, as TCP_INFO would report it.
    pub(crate) fn sut_state(&self) -> State {
        if let Some(id) = self.sut_conn() {
            if self.stack.conn(id).is_some() {
                return self.stack.state(id);
            }
        }
        let Some(sut) = &self.sut else {
            return State::Closed;
        };
        // A closed socket in TIME_WAIT lives on as a compact record, without a handle.
        if let (Some(l), Some(r)) = (sut.flow.local, sut.flow.remote) {
            if self.stack.time_wait().contains(l, r) {
                return State::TimeWait;
            }
        }
        match sut.fd.map(|f| self.fds.get(i64::from(f))) {
            Some(Ok(s)) if matches!(s.kind, SockKind::Listener(_)) => State::Listen,
            _ if sut.flow.state == FlowState::Listening => State::Listen,
            _ => State::Closed,
        }
    }

    /// Records a skipped line.
    pub(crate) fn skip(&mut self, line: u32, what: &str) {
        let mut w: String = what.split_whitespace().collect::<Vec<_>>().join(" ");
        if w.chars().count() > 60 {
            w = w.chars().take(57).collect::<String>() + "...";
        }
        self.skipped.push(Skipped { line, what: w });
    }

    /// The outcome of a system call as text: `-1 ECONNRESET`, `0`.
    pub(crate) fn show_ret(r: Ret) -> String {
        match r {
            Ok(v) => v.to_string(),
            Err(e) => format!("-1 {}", crate::symbols::errno_name(e)),
        }
    }
}

/// The live packet with sequence numbers, acknowledgments, SACK blocks and TSval mapped
/// into the script's space.
fn map_outbound(flow: &mut Flow, spec: &PacketSpec, live: &TcpPacket) -> TcpPacket {
    let syn = live.flags & 0x02 != 0;
    let ack_flag = live.flags & 0x10 != 0;
    let mut a = live.clone();
    if !spec.seq_absolute {
        let off = if syn {
            flow.live_local_isn.wrapping_sub(flow.script_local_isn)
        } else {
            flow.live_local_isn
        };
        a.seq = live.seq.wrapping_sub(off);
    }
    let ack_off = if syn { 0 } else { flow.remote_isn };
    if ack_flag {
        a.ack = live.ack.wrapping_sub(ack_off);
    }
    let script_ts = spec.options.as_ref().and_then(|o| {
        o.iter().find_map(|x| match x {
            TcpOption::Timestamp { val, .. } => Some(*val),
            _ => None,
        })
    });
    for o in &mut a.options {
        match o {
            TcpOption::Sack(blocks) => {
                for b in blocks.iter_mut() {
                    b.0 = b.0.wrapping_sub(ack_off);
                    b.1 = b.1.wrapping_sub(ack_off);
                }
            }
            TcpOption::Timestamp { val, .. } => {
                if let Some(sv) = script_ts {
                    flow.ts_map.insert(sv, *val);
                    if flow.first_ts.is_none() {
                        flow.first_ts = Some((sv, *val));
                    }
                }
                if let Some((s, f)) = flow.first_ts {
                    *val = s.wrapping_add(val.wrapping_sub(f));
                }
            }
            _ => {}
        }
    }
    a
}

/// The differences between an expected outbound packet and the (mapped) actual one.
fn compare(spec: &PacketSpec, a: &TcpPacket, opts: &RunOptions) -> Vec<String> {
    let mut d = Vec::new();
    let want_flags = TcpFlags {
        bits: spec.flags.bits,
        ae: spec.flags.ae,
        ace: None,
    };
    let got_flags = TcpFlags {
        bits: a.flags,
        ae: a.ae,
        ace: None,
    };
    if want_flags != got_flags {
        d.push(format!("flags: expected {want_flags}, got {got_flags}"));
    }
    if !spec.seq_ignore && spec.seq != a.seq {
        d.push(format!("seq: expected {}, got {}", spec.seq, a.seq));
    }
    if usize::from(spec.len) != a.payload_len {
        d.push(format!(
            "payload: expected {} bytes, got {}",
            spec.len, a.payload_len
        ));
    }
    let want_ack = spec.ack.unwrap_or(0);
    if want_ack != a.ack {
        d.push(format!("ack: expected {want_ack}, got {}", a.ack));
    }
    if let Some(w) = spec.win {
        if !opts.ignore_win && w != a.win {
            d.push(format!("win: expected {w}, got {}", a.win));
        }
    }
    let want_urg = spec.urg.unwrap_or(0);
    if want_urg != a.urg {
        d.push(format!("urg: expected {want_urg}, got {}", a.urg));
    }
    if let Some(want) = &spec.options {
        if let Some(e) = compare_options(want, &a.options, opts.loose_options) {
            d.push(e);
        }
    }
    d
}

fn show_opts(o: &[TcpOption]) -> String {
    o.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Options compared kind by kind in order, as packetdrill does (TSval and TSecr are not
/// compared: packetdrill leaves them unchecked by default); or, loosely, as a set of
/// kinds with MSS and SACK blocks compared.
fn compare_options(want: &[TcpOption], got: &[TcpOption], loose: bool) -> Option<String> {
    let msg = || {
        Some(format!(
            "options: expected <{}>, got <{}>",
            show_opts(want),
            show_opts(got)
        ))
    };
    if loose {
        let kinds = |o: &[TcpOption]| {
            let mut k: Vec<u8> = o.iter().map(TcpOption::kind).filter(|&k| k > 1).collect();
            k.sort_unstable();
            k.dedup();
            k
        };
        if kinds(want) != kinds(got) {
            return msg();
        }
        for w in want {
            let same = match w {
                TcpOption::Mss(_) | TcpOption::Sack(_) => got.contains(w),
                _ => true,
            };
            if !same {
                return msg();
            }
        }
        return None;
    }
    if want.len() != got.len() {
        return msg();
    }
    for (w, g) in want.iter().zip(got) {
        let same = match (w, g) {
            (TcpOption::Timestamp { .. }, TcpOption::Timestamp { .. }) => true,
            _ => w == g,
        };
        if !same {
            return msg();
        }
    }
    None
}

fn compare_ip(spec: &PacketSpec, live: &TcpPacket) -> Vec<String> {
    let mut d = Vec::new();
    let ecn = live.tos & 3;
    match spec.ip.ecn {
        Some(Ecn::Ect01) if ecn != 1 && ecn != 2 => {
            d.push(format!("ip ecn: expected ect0 or ect1, got {ecn:#x}"));
        }
        Some(e) => {
            if let Some(b) = e.bits() {
                if spec.ip.tos.is_none() && b != ecn {
                    d.push(format!("ip ecn: expected {b:#x}, got {ecn:#x}"));
                }
            }
        }
        None => {}
    }
    if let Some(t) = spec.ip.tos {
        let want = match spec.ip.ecn.and_then(Ecn::bits) {
            Some(e) => (t & !3) | e,
            None => t,
        };
        if want != live.tos {
            d.push(format!("tos: expected {want:#x}, got {:#x}", live.tos));
        }
    }
    if let Some(t) = spec.ip.ttl.filter(|&t| t != 0) {
        if t != live.ttl {
            d.push(format!("ttl: expected {t}, got {}", live.ttl));
        }
    }
    d
}

/// The actual packet in script notation.
fn show_actual(spec: &PacketSpec, a: &TcpPacket, live: &TcpPacket) -> PacketSpec {
    let ecn = match live.tos & 3 {
        0 => Ecn::NotEct,
        1 => Ecn::Ect1,
        2 => Ecn::Ect0,
        _ => Ecn::Ce,
    };
    PacketSpec {
        dir: Direction::Outbound,
        ip: IpInfo {
            ecn: spec.ip.ecn.map(|_| ecn),
            ..IpInfo::default()
        },
        ports: None,
        flags: TcpFlags {
            bits: a.flags,
            ae: a.ae,
            ace: None,
        },
        seq: a.seq,
        len: a.payload_len.min(65535) as u16,
        ack: (a.flags & 0x10 != 0 || a.ack != 0).then_some(a.ack),
        win: Some(a.win),
        urg: Some(a.urg),
        options: Some(a.options.clone()),
        seq_absolute: false,
        seq_ignore: false,
        ts_val_ignore: false,
        ts_ecr_absolute: false,
    }
}

/// SynCookies from a sysctl value (0, 1, 2).
pub(crate) fn syncookies(v: i64) -> SynCookies {
    match v {
        0 => SynCookies::Off,
        2 => SynCookies::Always,
        _ => SynCookies::OnOverflow,
    }
}
