//! Shell commands and code blocks, as far as they can mean something to a userspace
//! stack: `sysctl` settings mapped onto the stack's configuration (unknown ones
//! ignored), `sockstat ... | grep -c STATE | grep N` and `tcpdrop -s STATE` (FreeBSD),
//! and `%{ assert tcpi_... }%` checks of the socket under test. Anything else is
//! reported as skipped, never silently passed.

use crate::runner::{secs, syncookies, Failure, Profile, Res, Runner};
use crate::syscalls::eval_int;
use seqack::stack::SynFin;
use seqack::{Duration, State};

fn fail<T>(line: u32, msg: impl Into<String>) -> Res<T> {
    Err(Failure {
        line,
        msg: msg.into(),
    })
}

/// Splits a command line into words, honouring quotes.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    let mut any = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The state names `sockstat` and `netstat` print, as seqack states.
fn state_by_bsd_name(n: &str) -> Option<State> {
    Some(match n {
        "CLOSED" => State::Closed,
        "LISTEN" => State::Listen,
        "SYN_SENT" => State::SynSent,
        "SYN_RCVD" | "SYN_RECEIVED" | "SYN_RECV" => State::SynReceived,
        "ESTABLISHED" => State::Established,
        "CLOSE_WAIT" => State::CloseWait,
        "FIN_WAIT_1" | "FIN_WAIT1" => State::FinWait1,
        "CLOSING" => State::Closing,
        "LAST_ACK" => State::LastAck,
        "FIN_WAIT_2" | "FIN_WAIT2" => State::FinWait2,
        "TIME_WAIT" => State::TimeWait,
        _ => return None,
    })
}

/// `TCP_ESTABLISHED` (Linux) and `TCPI_ESTABLISHED` (FreeBSD's packetdrill) state names.
fn state_by_symbol(n: &str) -> Option<State> {
    Some(match n {
        "TCP_ESTABLISHED" | "TCPI_ESTABLISHED" => State::Established,
        "TCP_SYN_SENT" | "TCPI_SYN_SENT" => State::SynSent,
        "TCP_SYN_RECV" | "TCPI_SYN_RECEIVED" | "TCPI_SYN_RECV" => State::SynReceived,
        "TCP_FIN_WAIT1" | "TCPI_FIN_WAIT_1" => State::FinWait1,
        "TCP_FIN_WAIT2" | "TCPI_FIN_WAIT_2" => State::FinWait2,
        "TCP_TIME_WAIT" | "TCPI_TIME_WAIT" => State::TimeWait,
        "TCP_CLOSE" | "TCPI_CLOSED" | "TCPI_CLOSE" => State::Closed,
        "TCP_CLOSE_WAIT" | "TCPI_CLOSE_WAIT" => State::CloseWait,
        "TCP_LAST_ACK" | "TCPI_LAST_ACK" => State::LastAck,
        "TCP_LISTEN" | "TCPI_LISTEN" => State::Listen,
        "TCP_CLOSING" | "TCPI_CLOSING" => State::Closing,
        _ => return None,
    })
}

/// A state's number in TCP_INFO: Linux's numbering, or FreeBSD's.
fn state_number(s: State, p: Profile) -> i64 {
    match p {
        Profile::Linux => match s {
            State::Established => 1,
            State::SynSent => 2,
            State::SynReceived => 3,
            State::FinWait1 => 4,
            State::FinWait2 => 5,
            State::TimeWait => 6,
            State::Closed => 7,
            State::CloseWait => 8,
            State::LastAck => 9,
            State::Listen => 10,
            State::Closing => 11,
        },
        Profile::FreeBsd => match s {
            State::Closed => 0,
            State::Listen => 1,
            State::SynSent => 2,
            State::SynReceived => 3,
            State::Established => 4,
            State::CloseWait => 5,
            State::FinWait1 => 6,
            State::Closing => 7,
            State::LastAck => 8,
            State::FinWait2 => 9,
            State::TimeWait => 10,
        },
    }
}

/// The window scale shift FreeBSD offers for a socket buffer limit (`sb_max`,
/// `kern.ipc.maxsockbuf`): the smallest at which a 65,535-byte window reaches it, at
/// most 14 (RFC 7323 section 2.3), as `tcp_connect` and the syncache compute it.
fn freebsd_wscale(sb_max: i64) -> u8 {
    let mut shift = 0;
    while shift < 14 && (65_535i64 << shift) < sb_max {
        shift += 1;
    }
    shift
}

/// A value in an assertion: a number, or a state.
#[derive(Copy, Clone, Debug, PartialEq)]
enum Val {
    Num(i64),
    State(State),
}

impl Runner<'_> {
    /// Runs a back-quoted shell command.
    pub(crate) fn command(&mut self, line: u32, cmd: &str) -> Res<()> {
        let parts: Vec<&str> = cmd
            .split([';', '\n'])
            .flat_map(|p| p.split("&&"))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if !parts.is_empty() && parts.iter().all(|p| p.starts_with("sysctl ")) {
            for p in parts {
                self.sysctl(p);
            }
            return Ok(());
        }
        let lister = ["sockstat", "netstat", "ss "]
            .iter()
            .any(|t| cmd.contains(t));
        if lister && cmd.contains("grep -c") {
            return self.sockstat(line, cmd);
        }
        let w = words(cmd);
        if w.first().map(String::as_str) == Some("tcpdrop")
            && w.get(1).map(String::as_str) == Some("-s")
        {
            if let Some(st) = w.get(2).and_then(|n| state_by_bsd_name(n)) {
                let now = self.instant();
                let ids: Vec<_> = self
                    .stack
                    .connections()
                    .filter(|(_, c)| c.state() == st)
                    .map(|(id, _)| id)
                    .collect();
                for id in ids {
                    self.stack.abort(now, id);
                }
                return self.drain();
            }
        }
        self.skip(line, &format!("`{cmd}`"));
        Ok(())
    }

    /// `sysctl [-w|-q|...] name=value ...`: mapped where seqack has the setting.
    fn sysctl(&mut self, cmd: &str) {
        for w in words(cmd).into_iter().skip(1) {
            if w.starts_with('-') || w.starts_with('>') || w.starts_with("2>") {
                continue;
            }
            if let Some((k, v)) = w.split_once('=') {
                self.set_sysctl(k.trim(), v.trim());
            }
        }
        if !self.stack_used {
            self.stack_cfg.tcp = self.base.clone();
            self.stack = seqack::Stack::new(self.stack_cfg.clone());
            self.stack.add_address(self.local_ip);
        }
    }

    fn set_sysctl(&mut self, k: &str, v: &str) {
        let n = v
            .split_whitespace()
            .next()
            .and_then(|x| x.parse::<i64>().ok());
        let Some(n) = n else {
            return;
        };
        let c = &mut self.base;
        let ms = |n: i64| Duration::from_millis(n.max(0) as u64);
        let s = |n: i64| Duration::from_secs(n.max(0) as u64);
        let ws = self.wscale_shift;
        match k {
            // FreeBSD
            "net.inet.tcp.rfc1323" => {
                c.timestamps = n == 1 || n == 3;
                c.wscale = (n == 1 || n == 2).then_some(ws);
            }
            "kern.ipc.maxsockbuf" => {
                self.wscale_shift = freebsd_wscale(n);
                if c.wscale.is_some() {
                    c.wscale = Some(self.wscale_shift);
                }
            }
            "net.inet.tcp.sack.enable" => c.sack = n != 0,
            "net.inet.tcp.insecure_rst" => c.rfc5961_rst = n == 0,
            "net.inet.tcp.insecure_syn" => c.rfc5961_syn = n == 0,
            "net.inet.tcp.recvspace" => c.recv_buffer = n.max(1024) as usize,
            "net.inet.tcp.sendspace" => c.send_buffer = n.max(1024) as usize,
            "net.inet.tcp.syncookies" => {
                if n == 0 {
                    self.stack_cfg.syncookies = syncookies(0);
                } else if self.stack_cfg.syncookies == syncookies(0) {
                    self.stack_cfg.syncookies = syncookies(1);
                }
            }
            "net.inet.tcp.drop_synfin" => {
                self.stack_cfg.syn_fin = if n != 0 {
                    SynFin::Drop
                } else {
                    SynFin::ListenAsSyn
                };
            }
            "net.inet.tcp.syncookies_only" => {
                self.stack_cfg.syncookies = syncookies(if n != 0 { 2 } else { 1 });
            }
            "net.inet.tcp.msl" => c.msl = ms(n),
            "net.inet.tcp.finwait2_timeout" => c.fin_wait2_timeout = ms(n),
            "net.inet.tcp.keepidle" => c.keepalive_idle = ms(n),
            "net.inet.tcp.keepintvl" => c.keepalive_interval = ms(n),
            "net.inet.tcp.keepcnt" => c.keepalive_count = n.max(1) as u32,
            "net.inet.tcp.keepinit" => c.connect_timeout = (n > 0).then(|| ms(n)),
            "net.inet.tcp.mssdflt" => c.default_peer_mss = n.clamp(88, 65535) as u16,
            "net.inet.tcp.delacktime" => c.delayed_ack = ms(n),
            "net.inet.tcp.rexmit_min" => c.rto_min = ms(n),
            "net.inet.tcp.rexmit_initial" => c.rto_initial = ms(n),
            // Turning the Fast Open client off empties its cookie cache.
            "net.inet.tcp.fastopen.client_enable" if n == 0 => self.stack.clear_fast_open_cache(),
            // Linux
            "net.ipv4.tcp_timestamps" => c.timestamps = n != 0,
            "net.ipv4.tcp_sack" => c.sack = n != 0,
            "net.ipv4.tcp_window_scaling" => c.wscale = (n != 0).then_some(ws),
            "net.ipv4.tcp_syncookies" => self.stack_cfg.syncookies = syncookies(n),
            "net.ipv4.tcp_fin_timeout" => c.fin_wait2_timeout = s(n),
            "net.ipv4.tcp_rfc1337" => c.rfc1337 = n != 0,
            "net.ipv4.tcp_syn_retries" => c.syn_retries = n.max(0) as u32,
            "net.ipv4.tcp_synack_retries" => c.synack_retries = n.max(0) as u32,
            "net.ipv4.tcp_retries2" => c.retries2 = n.max(0) as u32,
            // Linux's tcp_orphan_retries(): 0 (the default) means 8.
            "net.ipv4.tcp_orphan_retries" => {
                c.orphan_retries = if n <= 0 { 8 } else { n as u32 };
            }
            "net.ipv4.tcp_keepalive_time" => c.keepalive_idle = s(n),
            "net.ipv4.tcp_keepalive_intvl" => c.keepalive_interval = s(n),
            "net.ipv4.tcp_keepalive_probes" => c.keepalive_count = n.max(1) as u32,
            "net.ipv4.tcp_invalid_ratelimit" => c.challenge_ack_interval = ms(n),
            "net.ipv4.tcp_rmem" => {
                if let Some(d) = v
                    .split_whitespace()
                    .nth(1)
                    .and_then(|x| x.parse::<usize>().ok())
                {
                    c.recv_buffer = d.max(1024);
                }
            }
            "net.ipv4.tcp_wmem" => {
                if let Some(d) = v
                    .split_whitespace()
                    .nth(1)
                    .and_then(|x| x.parse::<usize>().ok())
                {
                    c.send_buffer = d.max(1024);
                }
            }
            "net.ipv4.ip_local_port_range" => {
                let mut it = v.split_whitespace().filter_map(|x| x.parse::<u16>().ok());
                if let (Some(lo), Some(hi)) = (it.next(), it.next()) {
                    if lo <= hi {
                        self.stack_cfg.ephemeral_ports = (lo, hi);
                    }
                }
            }
            // Anything else has no counterpart in seqack: ignored.
            _ => {}
        }
    }

    /// `sockstat -4 -P tcp -s | grep packetdril | grep -c STATE | grep N`: the number of
    /// sockets in STATE, as text, must contain N.
    fn sockstat(&mut self, line: u32, cmd: &str) -> Res<()> {
        let stages: Vec<Vec<String>> = cmd.split('|').map(words).collect();
        let state = stages.iter().find_map(|w| {
            (w.first().map(String::as_str) == Some("grep")
                && w.get(1).map(String::as_str) == Some("-c"))
            .then(|| w.get(2).cloned())
            .flatten()
        });
        let want = stages
            .last()
            .filter(|w| w.first().map(String::as_str) == Some("grep"))
            .and_then(|w| w.iter().skip(1).find(|a| !a.starts_with('-')).cloned());
        // ss(8) writes states with dashes (TIME-WAIT, SYN-RECV, ESTAB).
        let state = state.map(|s| match s.replace('-', "_").as_str() {
            "SYN_RECV" => "SYN_RCVD".to_string(),
            "FIN_WAIT1" => "FIN_WAIT_1".to_string(),
            "FIN_WAIT2" => "FIN_WAIT_2".to_string(),
            other => other.to_string(),
        });
        let (Some(state), Some(want)) = (state, want) else {
            self.skip(line, &format!("`{cmd}`"));
            return Ok(());
        };
        let names: Vec<State> = State::ALL
            .into_iter()
            .filter(|s| {
                let bsd = match s {
                    State::SynReceived => "SYN_RCVD",
                    other => other.name(),
                };
                bsd.contains(state.as_str())
            })
            .collect();
        if names.is_empty() {
            self.skip(line, &format!("`{cmd}`"));
            return Ok(());
        }
        let mut count = self
            .stack
            .connections()
            .filter(|(_, c)| names.contains(&c.state()))
            .count();
        if names.contains(&State::TimeWait) {
            // Closed sockets in TIME_WAIT are compact records, not connections.
            count += self.stack.time_wait().len();
        }
        if names.contains(&State::Listen) {
            count += self
                .fds
                .fds
                .values()
                .filter(|s| matches!(s.kind, crate::kernel::SockKind::Listener(_)))
                .count();
        }
        if !count.to_string().contains(want.as_str()) {
            return fail(
                line,
                format!(
                    "expected {want} socket(s) in {state} at {} s (`{cmd}`), found {count}",
                    secs(self.now)
                ),
            );
        }
        Ok(())
    }

    /// A `%{ ... }%` block: `assert tcpi_FIELD OP VALUE` lines are checked against the
    /// socket under test; a block with anything else is reported as skipped (its
    /// understood assertions are still checked).
    pub(crate) fn code(&mut self, line: u32, code: &str) -> Res<()> {
        let mut understood = true;
        for (i, raw) in code.lines().enumerate() {
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let Some(expr) = l.strip_prefix("assert ") else {
                understood = false;
                continue;
            };
            let lno = line + i as u32 - u32::from(code.starts_with('\n'));
            for clause in expr.split(" and ") {
                match self.assertion(clause.trim()) {
                    Some(Ok(())) => {}
                    Some(Err(msg)) => return fail(lno.max(line), msg),
                    None => understood = false,
                }
            }
        }
        if !understood {
            self.skip(line, &format!("%{{{}}}%", code.trim()));
        }
        Ok(())
    }

    /// Checks `lhs OP rhs`; `None` when it is not understood.
    fn assertion(&self, clause: &str) -> Option<Result<(), String>> {
        let clause = clause.trim_matches(|c| c == '(' || c == ')').trim();
        let ops = ["==", "!=", "<=", ">=", "<", ">"];
        let (op, at) = ops
            .iter()
            .find_map(|op| clause.find(op).map(|i| (*op, i)))?;
        let lhs = clause[..at].trim();
        let rhs = clause[at + op.len()..].trim();
        let l = self.value(lhs)?;
        let r = self.value(rhs)?;
        let (l, r) = match (l, r) {
            (Val::State(a), Val::State(b)) => {
                let ok = match op {
                    "==" => a == b,
                    "!=" => a != b,
                    _ => return None,
                };
                return Some(if ok {
                    Ok(())
                } else {
                    Err(format!(
                        "assertion failed: {clause}: the socket is in {}",
                        if lhs.starts_with("tcpi_") { a } else { b }
                    ))
                });
            }
            (Val::State(a), Val::Num(b)) => (state_number(a, self.opts.profile), b),
            (Val::Num(a), Val::State(b)) => (a, state_number(b, self.opts.profile)),
            (Val::Num(a), Val::Num(b)) => (a, b),
        };
        let ok = match op {
            "==" => l == r,
            "!=" => l != r,
            "<=" => l <= r,
            ">=" => l >= r,
            "<" => l < r,
            _ => l > r,
        };
        Some(if ok {
            Ok(())
        } else {
            Err(format!("assertion failed: {clause} ({lhs} is {l})"))
        })
    }

    fn value(&self, t: &str) -> Option<Val> {
        if let Some(s) = state_by_symbol(t) {
            return Some(Val::State(s));
        }
        if let Some(f) = t.strip_prefix("tcpi_") {
            return self.tcpi(f);
        }
        if let Some(v) = crate::parser::parse_c_integer(t) {
            return Some(Val::Num(v));
        }
        eval_int(&crate::ast::Expr::Word(t.to_string()))
            .ok()
            .map(Val::Num)
    }

    /// A TCP_INFO field of the socket under test.
    fn tcpi(&self, f: &str) -> Option<Val> {
        if f == "state" {
            return Some(Val::State(self.sut_state()));
        }
        let c = self.sut_conn().and_then(|id| self.stack.conn(id))?;
        let (ts, sack, ws) = c.negotiated();
        Some(Val::Num(match f {
            "options" => i64::from(ts) | i64::from(sack) << 1 | i64::from(ws.is_some()) << 2,
            "snd_wscale" => ws.map_or(0, |w| i64::from(w.0)),
            "rcv_wscale" => ws.map_or(0, |w| i64::from(w.1)),
            "snd_mss" => i64::from(c.smss()),
            "snd_cwnd" => i64::from(c.cwnd() / c.smss().max(1)),
            "rto" => c.rto().as_micros() as i64,
            "rtt" => c.rtt().srtt().map_or(0, |d| d.as_micros() as i64),
            "rttvar" => c.rtt().rttvar().as_micros() as i64,
            _ => return None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_orphan_retries_zero_means_eight() {
        // Eight retransmissions of the orphan's FIN (0.3 s RTO, doubling), then the
        // expiry at 153.3 s drops it: as with the default.
        let mut src = String::from(
            "0 `sysctl -q net.ipv4.tcp_orphan_retries=0`\n\
             +0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
             +0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n\
             +0 < S 0:0(0) win 65535 <mss 1460,nop,wscale 7>\n\
             +0 > S. 0:0(0) ack 1 win 64240 <mss 1460,nop,wscale 7>\n\
             +.1 < . 1:1(0) ack 1 win 512\n+0 accept(3, ..., ...) = 4\n\
             +0 close(4) = 0\n+0 > F. 1:1(0) ack 1 win 2048\n",
        );
        let mut gap = 0.3;
        for _ in 0..8 {
            src.push_str(&format!("+{gap} > F. 1:1(0) ack 1 win 2048\n"));
            gap *= 2.0;
        }
        src.push_str("+76.7 %{ assert tcpi_state == TCP_FIN_WAIT1 }%\n");
        src.push_str("+.2 %{ assert tcpi_state == TCP_CLOSE }%\n");
        let r = crate::run_script(&src, &crate::RunOptions::default());
        assert_eq!(r.result, Ok(()));
    }

    #[test]
    fn freebsd_window_scale_follows_maxsockbuf() {
        // FreeBSD's default sb_max (2 MiB) gives 6; 72 KiB gives 1; no limit, 14.
        assert_eq!(freebsd_wscale(2_097_152), 6);
        assert_eq!(freebsd_wscale(73_728), 1);
        assert_eq!(freebsd_wscale(65_535), 0);
        assert_eq!(freebsd_wscale(4_294_967_295), 14);
        // In a script: the shift of the SYN, kept when window scaling is turned off
        // and on again, and no option at all while it is off.
        let syn = |ws: &str| {
            format!(
                "+0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
                 +0 fcntl(3, F_SETFL, O_RDWR | O_NONBLOCK) = 0\n\
                 +0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)\n\
                 +0 > S 0:0(0) win 65535 <mss 1460{ws},sackOK,TS val 100 ecr 0>\n"
            )
        };
        let opts = crate::RunOptions {
            profile: Profile::FreeBsd,
            ..crate::RunOptions::default()
        };
        let cases = [
            ("kern.ipc.maxsockbuf=73728", ",nop,wscale 1"),
            ("kern.ipc.maxsockbuf=4294967295", ",nop,wscale 14"),
            (
                "kern.ipc.maxsockbuf=73728 net.inet.tcp.rfc1323=3 net.inet.tcp.rfc1323=1",
                ",nop,wscale 1",
            ),
            ("net.inet.tcp.rfc1323=3 kern.ipc.maxsockbuf=73728", ""),
        ];
        for (sysctls, ws) in cases {
            let src = format!("0 `sysctl -w {sysctls}`\n{}", syn(ws));
            let r = crate::run_script(&src, &opts);
            assert_eq!(r.result, Ok(()), "{sysctls}");
        }
    }

    #[test]
    fn shell_words() {
        assert_eq!(
            words("sysctl -q net.ipv4.tcp_rmem=\"4096 540000 1\" > /dev/null"),
            vec![
                "sysctl",
                "-q",
                "net.ipv4.tcp_rmem=4096 540000 1",
                ">",
                "/dev/null"
            ]
        );
    }
}
