//! System calls of the fake kernel, on top of the stack's commands, with Linux's
//! return values and errno. A call that would block either waits in the emulated
//! system-call thread (the script wrote `...END`, and goes on meanwhile), or holds the
//! script up while the stack's timers run, as a blocking call holds up packetdrill.

use crate::ast::{Expr, SyscallSpec};
use crate::kernel::{conn_errno, e, Ret, SockKind, SockOptions, Socket};
use crate::runner::{secs, Failure, Flow, FlowState, Op, Pending, Res, Runner, Sut};
use crate::symbols;
use core::net::SocketAddr;
use seqack::tcp::{RecvError, SendError, Shutdown};
use seqack::{Config, ConnId, Duration, State};

/// What starting a call did.
pub(crate) enum Step {
    /// It returned.
    Done(Ret),
    /// It blocks until `Op` completes.
    Block(Op),
}

/// Progress of a blocked call.
enum Progress {
    Done(Ret),
    /// Part of a write went out.
    Moved(Op),
    Waiting,
}

fn fail<T>(line: u32, msg: impl Into<String>) -> Res<T> {
    Err(Failure {
        line,
        msg: msg.into(),
    })
}

/// Evaluates an expression to an integer: numbers, symbols, `a|b`, `[x]`, `htons(x)`.
pub(crate) fn eval_int(x: &Expr) -> Result<i64, String> {
    match x {
        Expr::Int(v) => Ok(*v),
        Expr::Word(w) => symbols::lookup(w).ok_or_else(|| format!("unknown symbol '{w}'")),
        Expr::Or(a, b) => Ok(eval_int(a)? | eval_int(b)?),
        Expr::List(v) if v.len() == 1 => eval_int(&v[0]),
        Expr::Call(f, v) if (f == "htons" || f == "htonl") && v.len() == 1 => eval_int(&v[0]),
        Expr::Named(_, v) => eval_int(v),
        Expr::Ellipsis => Err("'...' where a number is needed".into()),
        other => Err(format!("'{other}' is not a number")),
    }
}

/// A field of a `{name=value, ...}` structure.
fn field<'a>(x: &'a Expr, name: &str) -> Option<&'a Expr> {
    match x {
        Expr::Struct(v) | Expr::List(v) => v.iter().find_map(|f| match f {
            Expr::Named(n, v) if n == name => Some(&**v),
            _ => None,
        }),
        _ => None,
    }
}

/// Total length of an iovec list `[{..., 10}, {..., 20}]`.
fn iov_len(x: &Expr) -> Result<usize, String> {
    let Expr::List(v) = x else {
        return Err(format!("'{x}' is not an iovec array"));
    };
    let mut n = 0usize;
    for iov in v {
        let len = match iov {
            Expr::Struct(f) if f.len() == 2 => eval_int(&f[1])?,
            Expr::Struct(_) => field(iov, "iov_len").map_or(Ok(0), eval_int)?,
            _ => return Err(format!("'{iov}' is not an iovec")),
        };
        n += usize::try_from(len).map_err(|_| "negative iov_len".to_string())?;
    }
    Ok(n)
}

fn msg_len(x: &Expr) -> Result<usize, String> {
    match field(x, "msg_iov") {
        Some(iov) => iov_len(iov),
        None => Err(format!("'{x}' has no msg_iov")),
    }
}

fn arg(spec: &SyscallSpec, i: usize) -> Result<&Expr, String> {
    spec.args
        .get(i)
        .ok_or_else(|| format!("{}() needs at least {} arguments", spec.name, i + 1))
}

fn int_arg(spec: &SyscallSpec, i: usize) -> Result<i64, String> {
    eval_int(arg(spec, i)?)
}

fn len_arg(spec: &SyscallSpec, i: usize) -> Result<usize, String> {
    usize::try_from(int_arg(spec, i)?).map_err(|_| "negative length".to_string())
}

impl Runner<'_> {
    /// Runs a system-call event that starts at `start`.
    pub(crate) fn syscall_event(
        &mut self,
        line: u32,
        spec: &SyscallSpec,
        start: i64,
        end: Option<i64>,
        last: Option<i64>,
    ) -> Res<()> {
        // As packetdrill's main thread does, give a call still blocked in the system-call
        // thread up to a second to finish before starting another call.
        if self.pending.is_some() {
            let limit = self.now + 1_000_000;
            while self.pending.is_some() {
                match self.next_wakeup() {
                    Some(w) if w <= limit => self.advance_to(w.max(self.now))?,
                    _ => break,
                }
            }
        }
        if end.is_some() {
            if let Some(p) = &self.pending {
                return fail(
                    line,
                    format!(
                        "blocking system call while another blocking system call (line {}) \
                         is already in progress",
                        p.line
                    ),
                );
            }
        }
        self.wait_for_call(line, start, last)?;
        let step = self.start_call(line, spec)?;
        // Commands can make the stack send at once.
        self.drain()?;
        match step {
            Step::Done(ret) => {
                self.check_ret(line, spec, ret)?;
                if let Some(end) = end {
                    self.check_return_time(line, start, end)?;
                }
            }
            Step::Block(op) if end.is_some() => {
                self.pending = Some(Pending {
                    line,
                    spec: spec.clone(),
                    start,
                    end,
                    op,
                });
                // It may be complete already (the command above made progress).
                self.drain()?;
            }
            Step::Block(op) => {
                let ret = self.block_on(line, spec, op)?;
                self.check_ret(line, spec, ret)?;
            }
        }
        Ok(())
    }

    fn wait_for_call(&mut self, line: u32, start: i64, last: Option<i64>) -> Res<()> {
        self.advance_to(start)?;
        let tol = self.tolerance(start, last);
        if self.now > start + tol {
            return fail(
                line,
                format!(
                    "timing error: expected system call start at {} s but happened at {} s; \
                     tolerance {} s",
                    secs(start),
                    secs(self.now),
                    secs(tol)
                ),
            );
        }
        Ok(())
    }

    fn check_return_time(&self, line: u32, start: i64, end: i64) -> Res<()> {
        let tol = self.tolerance(end, Some(start));
        if self.now < end - tol || self.now > end + tol {
            return fail(
                line,
                format!(
                    "timing error: expected system call return at {} s but happened at {} s; \
                     tolerance {} s",
                    secs(end),
                    secs(self.now),
                    secs(tol)
                ),
            );
        }
        Ok(())
    }

    /// A call without `...END` that blocks: the script waits while the stack runs.
    fn block_on(&mut self, line: u32, spec: &SyscallSpec, mut op: Op) -> Res<Ret> {
        let limit = self.now + 4 * 3600 * 1_000_000;
        loop {
            match self.progress(&op)? {
                Progress::Done(r) => {
                    self.drain()?;
                    return Ok(r);
                }
                Progress::Moved(o) => {
                    op = o;
                    self.drain()?;
                    continue;
                }
                Progress::Waiting => {}
            }
            let own = match &op {
                Op::Poll {
                    deadline: Some(d), ..
                } => Some(*d),
                _ => None,
            };
            let w = match (self.next_wakeup(), own) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            match w {
                Some(w) if w <= limit => self.advance_to(w.max(self.now))?,
                _ => {
                    return fail(
                        line,
                        format!(
                            "{}() blocks at {} s and nothing the stack will do can complete it \
                             (write it with ...END to let the script go on)",
                            spec.name,
                            secs(self.now)
                        ),
                    )
                }
            }
        }
    }

    /// Lets the blocked call in the system-call thread make progress. True when
    /// something changed (the caller drains the stack's output again).
    pub(crate) fn poll_pending(&mut self) -> Res<bool> {
        let Some(p) = self.pending.clone() else {
            return Ok(false);
        };
        match self.progress(&p.op)? {
            Progress::Waiting => Ok(false),
            Progress::Moved(op) => {
                if let Some(q) = &mut self.pending {
                    q.op = op;
                }
                Ok(true)
            }
            Progress::Done(ret) => {
                self.pending = None;
                self.check_ret(p.line, &p.spec, ret)?;
                if let Some(end) = p.end {
                    self.check_return_time(p.line, p.start, end)?;
                }
                Ok(true)
            }
        }
    }

    fn progress(&mut self, op: &Op) -> Res<Progress> {
        Ok(match *op {
            Op::Accept { fd, hint } => match self.try_accept(fd, hint) {
                Some(r) => Progress::Done(r),
                None => Progress::Waiting,
            },
            Op::Connect { fd } => match self.connect_outcome(fd) {
                Some(r) => Progress::Done(r),
                None => Progress::Waiting,
            },
            Op::Read { fd, len } => match self.try_read(fd, len) {
                Some(r) => Progress::Done(r),
                None => Progress::Waiting,
            },
            Op::Write { fd, left, done } => {
                match self.try_write(fd, left).map(|r| r.map(|n| n as usize)) {
                    Some(Ok(n)) if n == left => Progress::Done(Ok((done + n) as i64)),
                    Some(Ok(0)) | None => Progress::Waiting,
                    Some(Ok(n)) => Progress::Moved(Op::Write {
                        fd,
                        left: left - n,
                        done: done + n,
                    }),
                    Some(Err(_)) if done > 0 => Progress::Done(Ok(done as i64)),
                    Some(Err(x)) => Progress::Done(Err(x)),
                }
            }
            Op::Poll { ref fds, deadline } => {
                let n = fds
                    .iter()
                    .filter(|(fd, ev)| self.revents(*fd, *ev) != 0)
                    .count();
                if n > 0 {
                    Progress::Done(Ok(n as i64))
                } else if deadline.is_some_and(|d| self.now >= d) {
                    Progress::Done(Ok(0))
                } else {
                    Progress::Waiting
                }
            }
        })
    }

    /// Compares a call's outcome with the script's expectation.
    fn check_ret(&mut self, line: u32, spec: &SyscallSpec, ret: Ret) -> Res<()> {
        let call = format!(
            "{}({})",
            spec.name,
            spec.args
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let want = match &spec.result {
            Expr::Ellipsis => None,
            x => Some(eval_int(x).or_else(|m| fail(line, m))?),
        };
        let mut shown_want = match want {
            Some(w) => w.to_string(),
            None => "...".into(),
        };
        if let Some(en) = &spec.errno {
            shown_want.push(' ');
            shown_want.push_str(en);
        }
        let got = Runner::show_ret(ret);
        let fd_call = matches!(spec.name.as_str(), "socket" | "accept" | "accept4");
        let (value, errno) = match ret {
            Ok(v) => (v, 0),
            Err(x) => (-1, x),
        };
        let ok_value = match want {
            None => true,
            Some(w) if fd_call && w >= 0 => value >= 0,
            Some(w) => w == value,
        };
        let ok_errno = match &spec.errno {
            None => true,
            Some(name) => match symbols::errno(name) {
                Some(x) => x == errno,
                None => return fail(line, format!("unknown errno '{name}'")),
            },
        };
        if !ok_value || !ok_errno {
            return fail(line, format!("expected {call} = {shown_want}, got {got}"));
        }
        if spec.name == "poll" {
            self.check_revents(line, spec)?;
        }
        Ok(())
    }

    // ----- the calls ----------------------------------------------------------------

    fn start_call(&mut self, line: u32, spec: &SyscallSpec) -> Res<Step> {
        let r = match spec.name.as_str() {
            "socket" => self.sys_socket(spec),
            "bind" => self.sys_bind(spec),
            "listen" => self.sys_listen(spec),
            "accept" | "accept4" => self.sys_accept(spec),
            "connect" => self.sys_connect(spec),
            "read" => {
                let fd = int_arg(spec, 0);
                let len = len_arg(spec, 2);
                match (fd, len) {
                    (Ok(fd), Ok(len)) => Ok(self.sys_read(fd, len, false)),
                    (Err(m), _) | (_, Err(m)) => Err(m),
                }
            }
            "recv" | "recvfrom" => (|| {
                let flags = spec.args.get(3).map_or(Ok(0), eval_int)?;
                let (fd, len) = (int_arg(spec, 0)?, len_arg(spec, 2)?);
                if flags & 2 != 0 {
                    return Ok(self.sys_peek(fd, len, flags & 0x40 != 0));
                }
                Ok(self.sys_read(fd, len, flags & 0x40 != 0))
            })(),
            "readv" => (|| Ok(self.sys_read(int_arg(spec, 0)?, iov_len(arg(spec, 1)?)?, false)))(),
            "recvmsg" => (|| {
                let flags = spec.args.get(2).map_or(Ok(0), eval_int)?;
                Ok(self.sys_read(
                    int_arg(spec, 0)?,
                    msg_len(arg(spec, 1)?)?,
                    flags & 0x40 != 0,
                ))
            })(),
            "write" => (|| Ok(self.sys_write(int_arg(spec, 0)?, len_arg(spec, 2)?, false)))(),
            "send" | "sendto" => (|| {
                let flags = spec.args.get(3).map_or(Ok(0), eval_int)?;
                let (fd, len) = (int_arg(spec, 0)?, len_arg(spec, 2)?);
                let fresh = matches!(self.fds.get(fd), Ok(s) if s.kind == SockKind::Fresh);
                let tfo_socket = matches!(self.fds.get(fd), Ok(s) if s.opts.other.get(&(6, 23)).is_some_and(|&v| v != 0));
                if fresh && (flags & 0x2000_0000 != 0 || tfo_socket) {
                    return Ok(self.fast_open_connect(fd, len, flags & 0x40 != 0));
                }
                Ok(self.sys_write(fd, len, flags & 0x40 != 0))
            })(),
            "writev" => {
                (|| Ok(self.sys_write(int_arg(spec, 0)?, iov_len(arg(spec, 1)?)?, false)))()
            }
            "sendmsg" => (|| {
                let flags = spec.args.get(2).map_or(Ok(0), eval_int)?;
                Ok(self.sys_write(
                    int_arg(spec, 0)?,
                    msg_len(arg(spec, 1)?)?,
                    flags & 0x40 != 0,
                ))
            })(),
            "shutdown" => (|| {
                Ok(Step::Done(
                    self.sys_shutdown(int_arg(spec, 0)?, int_arg(spec, 1)?),
                ))
            })(),
            "close" => (|| Ok(Step::Done(self.sys_close(int_arg(spec, 0)?))))(),
            "fcntl" => self.sys_fcntl(spec),
            "setsockopt" => self.sys_setsockopt(spec),
            "getsockopt" => return self.sys_getsockopt(line, spec),
            "poll" => self.sys_poll(spec),
            "ioctl" => return self.sys_ioctl(line, spec),
            other => return fail(line, format!("unsupported system call {other}()")),
        };
        r.or_else(|m| fail(line, format!("{}(): {m}", spec.name)))
    }

    fn expected_fd(spec: &SyscallSpec) -> Option<i64> {
        match &spec.result {
            Expr::Int(v) if *v >= 0 => Some(*v),
            _ => None,
        }
    }

    fn sys_socket(&mut self, spec: &SyscallSpec) -> Result<Step, String> {
        let domain = match arg(spec, 0)? {
            Expr::Ellipsis => {
                if self.ipv6 {
                    10
                } else {
                    2
                }
            }
            x => eval_int(x)?,
        };
        let ty = int_arg(spec, 1)?;
        if ty & 0xf != 1 {
            return Err("only SOCK_STREAM sockets are supported".into());
        }
        if domain != 2 && domain != 10 {
            return Ok(Step::Done(Err(e("EAFNOSUPPORT"))));
        }
        let s = Socket::new(domain == 10, ty & 0o4000 != 0);
        let fd = self.fds.alloc(Self::expected_fd(spec), s);
        self.sut = Some(Sut {
            fd: Some(fd),
            flow: Flow::default(),
        });
        Ok(Step::Done(Ok(i64::from(fd))))
    }

    fn sys_bind(&mut self, spec: &SyscallSpec) -> Result<Step, String> {
        let fd = int_arg(spec, 0)?;
        // packetdrill binds to its own local address and port, whatever the script says.
        let addr = SocketAddr::new(self.local_ip, self.bind_port);
        let reuse = match self.fds.get(fd) {
            Ok(s) => s.opts.reuseaddr,
            Err(x) => return Ok(Step::Done(Err(x))),
        };
        // Linux's inet_csk_bind_conflict: another socket bound to the same address and
        // port conflicts unless both set SO_REUSEADDR and the other is not listening.
        let taken = self.fds.fds.iter().any(|(&f, o)| {
            i64::from(f) != fd
                && o.bound == Some(addr)
                && !(reuse && o.opts.reuseaddr && !matches!(o.kind, SockKind::Listener(_)))
        });
        let s = match self.fds.get_mut(fd) {
            Ok(s) => s,
            Err(x) => return Ok(Step::Done(Err(x))),
        };
        if s.bound.is_some() || s.kind != SockKind::Fresh {
            return Ok(Step::Done(Err(e("EINVAL"))));
        }
        if taken {
            return Ok(Step::Done(Err(e("EADDRINUSE"))));
        }
        s.bound = Some(addr);
        Ok(Step::Done(Ok(0)))
    }

    fn sys_listen(&mut self, spec: &SyscallSpec) -> Result<Step, String> {
        let fd = int_arg(spec, 0)?;
        let backlog = int_arg(spec, 1)?.clamp(0, 4096) as usize;
        let s = match self.fds.get(fd) {
            Ok(s) => s.clone(),
            Err(x) => return Ok(Step::Done(Err(x))),
        };
        match s.kind {
            SockKind::Listener(_) => return Ok(Step::Done(Ok(0))),
            SockKind::Conn(_) => return Ok(Step::Done(Err(e("EINVAL")))),
            SockKind::Fresh => {}
        }
        let addr = s
            .bound
            .unwrap_or(SocketAddr::new(self.local_ip, self.bind_port));
        let cfg = self.socket_config(&s);
        self.configure_stack(cfg);
        self.stack_used = true;
        let l = match self.stack.listen(addr, backlog) {
            Ok(l) => l,
            Err(_) => return Ok(Step::Done(Err(e("EADDRINUSE")))),
        };
        if let Ok(s) = self.fds.get_mut(fd) {
            s.kind = SockKind::Listener(l);
            s.bound = Some(addr);
        }
        if let Some(sut) = &mut self.sut {
            if sut.fd == Some(fd as i32) {
                sut.flow.state = FlowState::Listening;
                sut.flow.local = Some(addr);
            }
        }
        Ok(Step::Done(Ok(0)))
    }

    fn sys_accept(&mut self, spec: &SyscallSpec) -> Result<Step, String> {
        let fd = int_arg(spec, 0)?;
        let hint = Self::expected_fd(spec);
        let s = match self.fds.get(fd) {
            Ok(s) => s,
            Err(x) => return Ok(Step::Done(Err(x))),
        };
        if !matches!(s.kind, SockKind::Listener(_)) {
            return Ok(Step::Done(Err(e("EINVAL"))));
        }
        let nonblock = s.nonblock;
        Ok(match self.try_accept(fd, hint) {
            Some(r) => Step::Done(r),
            None if nonblock => Step::Done(Err(e("EAGAIN"))),
            None => Step::Block(Op::Accept { fd, hint }),
        })
    }

    fn try_accept(&mut self, fd: i64, hint: Option<i64>) -> Option<Ret> {
        let s = match self.fds.get(fd) {
            Ok(s) => s.clone(),
            Err(x) => return Some(Err(x)),
        };
        let SockKind::Listener(l) = s.kind else {
            return Some(Err(e("EINVAL")));
        };
        let id = self.stack.accept(l)?;
        if let Some(n) = self.incoming.get_mut(&l) {
            *n = n.saturating_sub(1);
        }
        let mut child = Socket::new(s.ipv6, false);
        child.kind = SockKind::Conn(id);
        child.opts = s.opts.clone();
        child.connect_reported = true;
        if let Some(err) = self.stack.conn(id).and_then(|c| c.error()) {
            child.sk_err = conn_errno(err);
        }
        let nfd = self.fds.alloc(hint, child);
        let (local, remote) = match self.stack.conn(id) {
            Some(c) => (Some(c.local()), Some(c.remote())),
            None => (None, None),
        };
        if let Some(sut) = &mut self.sut {
            if sut.flow.local == local && sut.flow.remote == remote {
                sut.fd = Some(nfd);
            }
        }
        Some(Ok(i64::from(nfd)))
    }

    fn sys_connect(&mut self, spec: &SyscallSpec) -> Result<Step, String> {
        let fd = int_arg(spec, 0)?;
        let s = match self.fds.get(fd) {
            Ok(s) => s.clone(),
            Err(x) => return Ok(Step::Done(Err(x))),
        };
        match s.kind {
            SockKind::Listener(_) => return Ok(Step::Done(Err(e("EISCONN")))),
            SockKind::Conn(_) => {
                return Ok(match self.connect_outcome(fd) {
                    Some(Ok(_)) if s.connect_reported => Step::Done(Err(e("EISCONN"))),
                    Some(r) => Step::Done(r),
                    None if s.nonblock => Step::Done(Err(e("EALREADY"))),
                    None => Step::Block(Op::Connect { fd }),
                });
            }
            SockKind::Fresh => {}
        }
        if let Err(x) = self.open_active(fd, &s, false) {
            return Ok(Step::Done(Err(x)));
        }
        Ok(if s.nonblock {
            Step::Done(Err(e("EINPROGRESS")))
        } else {
            Step::Block(Op::Connect { fd })
        })
    }

    /// A sendto() that connects (FreeBSD's on a `TCP_FASTOPEN` socket, Linux's with
    /// `MSG_FASTOPEN`): the active open with Fast Open, and the data written before
    /// the SYN goes, so that the SYN can carry it. FreeBSD takes the data whatever the
    /// cookie cache holds (without a cookie it follows the handshake). Linux takes it
    /// only when it has a cookie; otherwise the SYN asks for one and the call fails
    /// with EINPROGRESS, or, blocking, writes once connected (tcp_sendmsg_fastopen).
    fn fast_open_connect(&mut self, fd: i64, len: usize, dontwait: bool) -> Step {
        let s = match self.fds.get(fd) {
            Ok(s) => s.clone(),
            Err(x) => return Step::Done(Err(x)),
        };
        let id = match self.open_active(fd, &s, true) {
            Ok(id) => id,
            Err(x) => return Step::Done(Err(x)),
        };
        let has_cookie = self.stack.conn(id).is_some_and(|c| {
            self.stack
                .fast_open_cookie(c.local().ip(), c.remote().ip())
                .is_some()
        });
        if self.opts.profile == crate::runner::Profile::Linux && !has_cookie {
            return if s.nonblock || dontwait {
                Step::Done(Err(e("EINPROGRESS")))
            } else {
                Step::Block(Op::Write {
                    fd,
                    left: len,
                    done: 0,
                })
            };
        }
        let data = vec![0u8; len.min(1 << 24)];
        let now = self.instant();
        Step::Done(match self.stack.send(now, id, &data) {
            Ok(n) => Ok(n as i64),
            Err(_) => Err(e("EPIPE")),
        })
    }

    /// The active open of socket `fd` (`s`), to packetdrill's remote end.
    fn open_active(&mut self, fd: i64, s: &Socket, fast_open: bool) -> Result<ConnId, i64> {
        // packetdrill connects to its own remote address and port.
        let remote = SocketAddr::new(self.remote_ip, self.connect_port);
        let local = s.bound.or(Some(SocketAddr::new(self.local_ip, 0)));
        let mut cfg = self.socket_config(s);
        cfg.fast_open = fast_open;
        self.stack_used = true;
        let now = self.instant();
        let id = match self.stack.connect_with(now, local, remote, Some(cfg)) {
            Ok(id) => id,
            Err(seqack::stack::StackError::AddrInUse) => return Err(e("EADDRINUSE")),
            Err(_) => return Err(e("EADDRNOTAVAIL")),
        };
        self.configured.insert(id);
        let opts = s.opts.clone();
        self.apply_conn_options(id, &opts);
        let (l, iss) = match self.stack.conn(id) {
            Some(c) => (c.local(), c.sequence().0 .0),
            None => (SocketAddr::new(self.local_ip, 0), 0),
        };
        if let Ok(s) = self.fds.get_mut(fd) {
            s.kind = SockKind::Conn(id);
            s.connecting = true;
        }
        if let Some(sut) = &mut self.sut {
            if sut.fd == Some(fd as i32) {
                sut.flow.state = FlowState::Connecting;
                sut.flow.local = Some(l);
                sut.flow.remote = Some(remote);
                sut.flow.live_local_isn = iss;
            }
        }
        Ok(id)
    }

    /// The outcome of a connect() in progress: `None` while the handshake runs.
    fn connect_outcome(&mut self, fd: i64) -> Option<Ret> {
        let s = match self.fds.get_mut(fd) {
            Ok(s) => s,
            Err(x) => return Some(Err(x)),
        };
        let id = s.conn()?;
        let state = self.stack.state(id);
        let err = self.stack.conn(id).and_then(|c| c.error());
        let s = self.fds.get_mut(fd).ok()?;
        match state {
            State::SynSent | State::SynReceived if err.is_none() => None,
            State::Closed => {
                let x = s
                    .sk_err
                    .take()
                    .or_else(|| err.and_then(conn_errno))
                    .unwrap_or(e("ECONNREFUSED"));
                Some(Err(x))
            }
            _ => {
                if let Some(x) = s.sk_err.take() {
                    return Some(Err(x));
                }
                s.connect_reported = true;
                Some(Ok(0))
            }
        }
    }

    fn sys_read(&mut self, fd: i64, len: usize, dontwait: bool) -> Step {
        match self.try_read(fd, len) {
            Some(r) => Step::Done(r),
            None => {
                let nonblock = self.fds.get(fd).map(|s| s.nonblock).unwrap_or(true);
                if nonblock || dontwait {
                    Step::Done(Err(e("EAGAIN")))
                } else {
                    Step::Block(Op::Read { fd, len })
                }
            }
        }
    }

    /// recv(MSG_PEEK): what a read would return, leaving the data where it is.
    fn sys_peek(&mut self, fd: i64, len: usize, dontwait: bool) -> Step {
        let s = match self.fds.get(fd) {
            Ok(s) => s.clone(),
            Err(x) => return Step::Done(Err(x)),
        };
        let Some(c) = s.conn().and_then(|id| self.stack.conn(id)) else {
            return Step::Done(Err(e("ENOTCONN")));
        };
        let n = c.recv_queue().min(len);
        if n > 0 || len == 0 || c.peer_closed() {
            return Step::Done(Ok(n as i64));
        }
        if let Some(x) = s.sk_err {
            return Step::Done(Err(x));
        }
        if s.nonblock || dontwait {
            Step::Done(Err(e("EAGAIN")))
        } else {
            Step::Block(Op::Read { fd, len })
        }
    }

    /// A read: `None` when it would block.
    fn try_read(&mut self, fd: i64, len: usize) -> Option<Ret> {
        let s = match self.fds.get(fd) {
            Ok(s) => s.clone(),
            Err(x) => return Some(Err(x)),
        };
        let id = match s.kind {
            SockKind::Conn(id) => id,
            _ => return Some(Err(e("ENOTCONN"))),
        };
        let mut buf = vec![0u8; len.min(1 << 24)];
        let now = self.instant();
        let r = self.stack.recv(now, id, &mut buf);
        let sock = self.fds.get_mut(fd).ok()?;
        match r {
            Ok(n) if n > 0 || len == 0 => Some(Ok(n as i64)),
            _ if sock.sk_err.is_some() => sock.sk_err.take().map(Err),
            Ok(n) => Some(Ok(n as i64)),
            Err(RecvError::WouldBlock) => None,
            // The error was reported once already (sk_err is gone): end of stream.
            Err(RecvError::Failed(_)) => Some(Ok(0)),
        }
    }

    fn sys_write(&mut self, fd: i64, len: usize, dontwait: bool) -> Step {
        let nonblock = self.fds.get(fd).map(|s| s.nonblock).unwrap_or(true) || dontwait;
        match self.try_write(fd, len).map(|r| r.map(|n| n as usize)) {
            Some(Ok(n)) if n == len || (nonblock && n > 0) => Step::Done(Ok(n as i64)),
            Some(Err(x)) => Step::Done(Err(x)),
            _ if nonblock => Step::Done(Err(e("EAGAIN"))),
            Some(Ok(n)) => Step::Block(Op::Write {
                fd,
                left: len - n,
                done: n,
            }),
            None => Step::Block(Op::Write {
                fd,
                left: len,
                done: 0,
            }),
        }
    }

    /// A write of `len` bytes: how many went into the send buffer, or `None` when it
    /// would block before the handshake completes.
    fn try_write(&mut self, fd: i64, len: usize) -> Option<Ret> {
        let s = match self.fds.get(fd) {
            Ok(s) => s.clone(),
            Err(x) => return Some(Err(x)),
        };
        let id = match s.kind {
            SockKind::Conn(id) => id,
            _ => return Some(Err(e("EPIPE"))),
        };
        let state = self.stack.state(id);
        if matches!(state, State::SynSent | State::SynReceived) {
            return None;
        }
        let data = vec![0u8; len.min(1 << 24)];
        let now = self.instant();
        let r = self.stack.send(now, id, &data);
        let sock = self.fds.get_mut(fd).ok()?;
        match r {
            Ok(n) => Some(Ok(n as i64)),
            Err(_) if sock.sk_err.is_some() => sock.sk_err.take().map(Err),
            Err(SendError::Shutdown) | Err(SendError::Failed(_)) => Some(Err(e("EPIPE"))),
        }
    }

    fn sys_shutdown(&mut self, fd: i64, how: i64) -> Ret {
        let s = self.fds.get(fd)?;
        let how = match how {
            0 => Shutdown::Read,
            1 => Shutdown::Write,
            2 => Shutdown::Both,
            _ => return Err(e("EINVAL")),
        };
        let id = match s.kind {
            SockKind::Conn(id) => id,
            SockKind::Listener(_) => return Ok(0),
            SockKind::Fresh => return Err(e("ENOTCONN")),
        };
        if matches!(self.stack.state(id), State::Closed) {
            return Err(e("ENOTCONN"));
        }
        let now = self.instant();
        self.stack.shutdown(now, id, how);
        Ok(0)
    }

    fn sys_close(&mut self, fd: i64) -> Ret {
        let s = self.fds.get(fd)?.clone();
        let now = self.instant();
        match s.kind {
            SockKind::Conn(id) => self.stack.close(now, id),
            SockKind::Listener(l) => self.stack.close_listener(now, l),
            SockKind::Fresh => {}
        }
        self.fds.fds.remove(&(fd as i32));
        Ok(0)
    }

    fn sys_fcntl(&mut self, spec: &SyscallSpec) -> Result<Step, String> {
        let fd = int_arg(spec, 0)?;
        let cmd = int_arg(spec, 1)?;
        let s = match self.fds.get_mut(fd) {
            Ok(s) => s,
            Err(x) => return Ok(Step::Done(Err(x))),
        };
        Ok(Step::Done(match cmd {
            3 => Ok(2 | if s.nonblock { 0o4000 } else { 0 }),
            4 => {
                let flags = int_arg(spec, 2)?;
                s.nonblock = flags & 0o4000 != 0;
                Ok(0)
            }
            1 | 2 => Ok(0),
            _ => Err(e("EINVAL")),
        }))
    }

    /// A connection's settings from the stack's defaults and a socket's options.
    pub(crate) fn socket_config(&self, s: &Socket) -> Config {
        let mut c = self.base.clone();
        let o = &s.opts;
        if let Some(b) = o.rcvbuf {
            c.recv_buffer = (b.max(2048)) as usize;
        }
        if let Some(b) = o.sndbuf {
            c.send_buffer = (b.max(2048)) as usize;
        }
        if let Some(m) = o.maxseg.filter(|&m| m > 0) {
            let hdr = if s.ipv6 { 60 } else { 40 };
            let mtu = (m + hdr).min(i64::from(c.mtu));
            c.mtu = mtu as u16;
        }
        if self.opts.profile == crate::runner::Profile::FreeBsd {
            // The buffer FreeBSD ends up with once the MSS is known (by its own MSS,
            // the smaller one in every script that does not offer less).
            let mss = usize::from(c.mss(s.ipv6));
            c.recv_buffer = crate::runner::freebsd_round(c.recv_buffer, mss);
            c.send_buffer = crate::runner::freebsd_round(c.send_buffer, mss);
        }
        // Capped at seqack's largest buffer, as Linux caps them at rmem_max and
        // wmem_max (the sysctls may have set the defaults above it too).
        c.recv_buffer = c.recv_buffer.min(Config::MAX_BUFFER);
        c.send_buffer = c.send_buffer.min(Config::MAX_BUFFER);
        if let Some(v) = o.defer_accept {
            c.defer_accept_rounds =
                Config::defer_accept_rounds_for(v.clamp(0, i64::from(u32::MAX)) as u32);
        }
        if o.noopt {
            c.mss_option = false;
            c.timestamps = false;
            c.sack = false;
            c.wscale = None;
        }
        if let Some(v) = o.nodelay {
            c.nodelay = v;
        }
        if let Some(v) = o.keepalive {
            c.keepalive = v;
        }
        if let Some(v) = o.keepidle {
            c.keepalive_idle = Duration::from_secs(v.max(1) as u64);
        }
        if let Some(v) = o.keepintvl {
            c.keepalive_interval = Duration::from_secs(v.max(1) as u64);
        }
        if let Some(v) = o.keepcnt {
            c.keepalive_count = v.max(1) as u32;
        }
        // FreeBSD's TCP_KEEPINIT, in seconds.
        if let Some(&v) = o.other.get(&(6, 1128)).filter(|&&v| v > 0) {
            c.connect_timeout = Some(Duration::from_secs(v as u64));
        }
        if let Some((on, secs)) = o.linger {
            c.linger_zero = on != 0 && secs == 0;
        }
        if let Some(v) = o.linger2 {
            c.fin_wait2_timeout = linger2(v, c.fin_wait2_timeout);
        }
        c
    }

    /// Applies the options that can change on an open connection.
    pub(crate) fn apply_conn_options(&mut self, id: ConnId, o: &SockOptions) {
        let now = self.instant();
        let o = o.clone();
        // TCP_LINGER2 0 means the system default (tcp_fin_timeout), not the value before.
        let base = self.base.fin_wait2_timeout;
        self.stack.with_conn(now, id, |c, now, _| {
            // Keepalive settings move the timer, as setsockopt does on Linux.
            if let Some(v) = o.keepalive.filter(|&v| v != c.sockopts().keepalive) {
                c.set_keepalive(now, v);
            }
            if let Some(v) = o.keepidle {
                let idle = Duration::from_secs(v.max(1) as u64);
                if idle != c.sockopts().keepalive_idle {
                    c.set_keepalive_idle(now, idle);
                }
            }
            let so = c.sockopts_mut();
            if let Some(v) = o.nodelay {
                so.nodelay = v;
            }
            if let Some(v) = o.keepintvl {
                so.keepalive_interval = Duration::from_secs(v.max(1) as u64);
            }
            if let Some(v) = o.keepcnt {
                so.keepalive_count = v.max(1) as u32;
            }
            if let Some((on, secs)) = o.linger {
                so.linger_zero = on != 0 && secs == 0;
            }
            if let Some(v) = o.linger2 {
                so.fin_wait2_timeout = linger2(v, base);
            }
        });
    }

    fn sys_setsockopt(&mut self, spec: &SyscallSpec) -> Result<Step, String> {
        let fd = int_arg(spec, 0)?;
        let level = int_arg(spec, 1)?;
        let name = int_arg(spec, 2)?;
        let value = arg(spec, 3)?;
        let s = match self.fds.get_mut(fd) {
            Ok(s) => s,
            Err(x) => return Ok(Step::Done(Err(x))),
        };
        let int = || eval_int(value);
        // Linux's do_tcp_setsockopt ranges: TCP_MAXSEG 0 or TCP_MIN_MSS (88) to
        // MAX_TCP_WINDOW (32767); TCP_KEEPIDLE and TCP_KEEPINTVL 1 to 32767; TCP_KEEPCNT
        // 1 to 127; TCP_USER_TIMEOUT not negative.
        let range = match (level, name) {
            (6, 2) => Some((0, 32767)),
            (6, 4) | (6, 5) => Some((1, 32767)),
            (6, 6) => Some((1, 127)),
            (6, 18) => Some((0, i64::MAX)),
            _ => None,
        };
        if let Some((lo, hi)) = range {
            let v = int()?;
            if v < lo || v > hi || (name == 2 && v != 0 && v < 88) {
                return Ok(Step::Done(Err(e("EINVAL"))));
            }
        }
        let o = &mut s.opts;
        match (level, name) {
            (1, 2) => o.reuseaddr = int()? != 0,
            (1, 13) => {
                let on = field(value, "onoff").map_or(Ok(0), eval_int)?;
                let secs = field(value, "linger").map_or(Ok(0), eval_int)?;
                // sk_setsockopt: with l_onoff 0 only SOCK_LINGER is cleared; the linger
                // time set before stays (and getsockopt reports it).
                let secs = if on == 0 {
                    o.linger.map_or(0, |(_, s)| s)
                } else {
                    secs
                };
                o.linger = Some((on, secs));
            }
            (1, 9) => o.keepalive = Some(int()? != 0),
            (1, 8) | (1, 33) => o.rcvbuf = Some(int()?),
            (1, 7) | (1, 32) => o.sndbuf = Some(int()?),
            (6, 1) => o.nodelay = Some(int()? != 0),
            (6, 2) => o.maxseg = Some(int()?),
            (6, 4) => o.keepidle = Some(int()?),
            (6, 5) => o.keepintvl = Some(int()?),
            (6, 6) => o.keepcnt = Some(int()?),
            (6, 8) => o.linger2 = Some(int()?),
            (6, 9) => o.defer_accept = Some(int()?.max(0)),
            (6, 1008) => o.noopt = int()? != 0,
            _ => {
                // Accepted and remembered (getsockopt returns it), without effect.
                let v = int().unwrap_or(0);
                o.other.insert((level, name), v);
            }
        }
        let opts = o.clone();
        if let SockKind::Conn(id) = s.kind {
            self.apply_conn_options(id, &opts);
        }
        Ok(Step::Done(Ok(0)))
    }

    fn sys_getsockopt(&mut self, line: u32, spec: &SyscallSpec) -> Res<Step> {
        let bad = |m: String| Failure {
            line,
            msg: format!("getsockopt(): {m}"),
        };
        let fd = int_arg(spec, 0).map_err(bad)?;
        let level = int_arg(spec, 1).map_err(bad)?;
        let name = int_arg(spec, 2).map_err(bad)?;
        let want = arg(spec, 3).map_err(bad)?.clone();
        let s = match self.fds.get(fd) {
            Ok(s) => s.clone(),
            Err(x) => return Ok(Step::Done(Err(x))),
        };
        let o = &s.opts;
        let conn = s.conn().and_then(|id| self.stack.conn(id));
        let freebsd = self.opts.profile == crate::runner::Profile::FreeBsd;
        let buf = |set: Option<i64>, cfg_len: usize, unrounded: usize| -> i64 {
            match (freebsd, set) {
                // Linux doubles what the application asks for.
                (false, Some(v)) => (2 * v).max(2304),
                (false, None) => cfg_len as i64,
                (true, v) => {
                    let b = v.unwrap_or(unrounded as i64);
                    // FreeBSD rounds the buffers up to a multiple of the MSS once the
                    // connection knows it.
                    match conn {
                        Some(c) if !matches!(c.state(), State::SynSent | State::Closed) => {
                            let m = i64::from(c.smss().max(1) as u16);
                            (b + m - 1) / m * m
                        }
                        _ => b,
                    }
                }
            }
        };
        let cfg = self.socket_config(&s);
        let got: Result<i64, ()> =
            match (level, name) {
                (1, 4) => {
                    let v = self.fds.get_mut(fd).ok().and_then(|s| s.sk_err.take());
                    Ok(v.unwrap_or(0))
                }
                (1, 2) => Ok(i64::from(o.reuseaddr)),
                (1, 9) => Ok(i64::from(
                    conn.map_or(cfg.keepalive, |c| c.sockopts().keepalive),
                )),
                (1, 8) => Ok(buf(o.rcvbuf, cfg.recv_buffer, self.base.recv_buffer)),
                (1, 7) => Ok(buf(o.sndbuf, cfg.send_buffer, self.base.send_buffer)),
                (1, 3) => Ok(1),
                (1, 30) => Ok(i64::from(matches!(s.kind, SockKind::Listener(_)))),
                (1, 13) => {
                    let (on, secs) = o.linger.unwrap_or((0, 0));
                    let won = field(&want, "onoff").map(eval_int);
                    let wsecs = field(&want, "linger").map(eval_int);
                    if let (Some(Ok(a)), Some(Ok(b))) = (won, wsecs) {
                        if (a != 0) != (on != 0) || b != secs {
                            return fail(
                                line,
                                format!(
                                "getsockopt(SO_LINGER): expected {{onoff={a}, linger={b}}}, got \
                                 {{onoff={on}, linger={secs}}}"
                            ),
                            );
                        }
                    }
                    return Ok(Step::Done(Ok(0)));
                }
                (6, 1) => Ok(i64::from(
                    conn.map_or(cfg.nodelay, |c| c.sockopts().nodelay),
                )),
                (6, 2) => Ok(match conn {
                    Some(c) if c.state() != State::SynSent => i64::from(c.smss()),
                    _ => o.maxseg.filter(|&m| m > 0).unwrap_or(536),
                }),
                (6, 4) => Ok(conn
                    .map_or(cfg.keepalive_idle, |c| c.sockopts().keepalive_idle)
                    .as_secs() as i64),
                (6, 5) => Ok(conn
                    .map_or(cfg.keepalive_interval, |c| c.sockopts().keepalive_interval)
                    .as_secs() as i64),
                (6, 6) => {
                    Ok(i64::from(conn.map_or(cfg.keepalive_count, |c| {
                        c.sockopts().keepalive_count
                    })))
                }
                (6, 8) => Ok(linger2_reported(o.linger2, self.base.fin_wait2_timeout)),
                (6, 1008) => Ok(i64::from(o.noopt)),
                // TCP_KEEPINIT: the socket's, else the sysctl's (0: none).
                (6, 1128) => Ok(o.other.get(&(6, 1128)).copied().unwrap_or_else(|| {
                    self.base.connect_timeout.map_or(0, |t| t.as_secs() as i64)
                })),
                // TCP_USER_TIMEOUT: stored only (seqack has no user timeout); 0 until set.
                (6, 18) => Ok(o.other.get(&(6, 18)).copied().unwrap_or(0)),
                key => match o.other.get(&key) {
                    Some(v) => Ok(*v),
                    None => Err(()),
                },
            };
        let Ok(got) = got else {
            return fail(
                line,
                format!("getsockopt(level {level}, option {name}) is not supported by the runner"),
            );
        };
        if !matches!(want, Expr::Ellipsis) {
            let w = eval_int(&want).map_err(bad)?;
            if w != got {
                return fail(
                    line,
                    format!(
                        "getsockopt({}): expected {w}, got {got}",
                        spec.args.get(2).map(|a| a.to_string()).unwrap_or_default()
                    ),
                );
            }
        }
        Ok(Step::Done(Ok(0)))
    }

    fn sys_ioctl(&mut self, line: u32, spec: &SyscallSpec) -> Res<Step> {
        let bad = |m: String| Failure {
            line,
            msg: format!("ioctl(): {m}"),
        };
        let fd = int_arg(spec, 0).map_err(bad)?;
        let req = int_arg(spec, 1).map_err(bad)?;
        let s = match self.fds.get(fd) {
            Ok(s) => s.clone(),
            Err(x) => return Ok(Step::Done(Err(x))),
        };
        let conn = s.conn().and_then(|id| self.stack.conn(id));
        let got = match req {
            0x541b => conn.map_or(0, |c| c.recv_queue()) as i64,
            0x5411 => conn.map_or(0, |c| c.send_queue()) as i64,
            0x5421 => {
                let v = int_arg(spec, 2).map_err(bad)?;
                if let Ok(s) = self.fds.get_mut(fd) {
                    s.nonblock = v != 0;
                }
                return Ok(Step::Done(Ok(0)));
            }
            _ => return fail(line, format!("ioctl request {req:#x} is not supported")),
        };
        if let Some(w) = spec.args.get(2).filter(|a| !matches!(a, Expr::Ellipsis)) {
            let w = eval_int(w).map_err(bad)?;
            if w != got {
                return fail(line, format!("ioctl(): expected [{w}], got [{got}]"));
            }
        }
        Ok(Step::Done(Ok(0)))
    }

    fn poll_fds(spec: &SyscallSpec) -> Result<Vec<(i64, i64, Option<i64>)>, String> {
        let Expr::List(v) = arg(spec, 0)? else {
            return Err("the first argument must be an array of pollfds".into());
        };
        v.iter()
            .map(|p| {
                let fd = field(p, "fd").ok_or("pollfd without fd")?;
                let ev = field(p, "events").ok_or("pollfd without events")?;
                let rev = field(p, "revents").map(eval_int).transpose()?;
                Ok((eval_int(fd)?, eval_int(ev)?, rev))
            })
            .collect()
    }

    fn sys_poll(&mut self, spec: &SyscallSpec) -> Result<Step, String> {
        let fds = Self::poll_fds(spec)?;
        let timeout = int_arg(spec, 2)?;
        let list: Vec<(i64, i64)> = fds.iter().map(|&(f, e, _)| (f, e)).collect();
        let n = list
            .iter()
            .filter(|(fd, ev)| self.revents(*fd, *ev) != 0)
            .count();
        if n > 0 || timeout == 0 {
            return Ok(Step::Done(Ok(n as i64)));
        }
        let deadline = (timeout > 0).then(|| self.now + timeout * 1000);
        Ok(Step::Block(Op::Poll {
            fds: list,
            deadline,
        }))
    }

    fn check_revents(&mut self, line: u32, spec: &SyscallSpec) -> Res<()> {
        let fds = Self::poll_fds(spec).or_else(|m| fail(line, m))?;
        for (fd, ev, want) in fds {
            let got = self.revents(fd, ev);
            if let Some(w) = want {
                if w != got {
                    return fail(
                        line,
                        format!("poll(): fd {fd}: expected revents {w:#x}, got {got:#x}"),
                    );
                }
            }
        }
        Ok(())
    }

    /// What poll() reports for a descriptor, as Linux's tcp_poll computes it.
    pub(crate) fn revents(&self, fd: i64, events: i64) -> i64 {
        const IN: i64 = 0x1 | 0x40;
        const OUT: i64 = 0x4 | 0x100;
        const ERR: i64 = 0x8;
        const HUP: i64 = 0x10;
        const RDHUP: i64 = 0x2000;
        let Ok(s) = self.fds.get(fd) else {
            return 0x20;
        };
        let mut m = 0;
        match s.kind {
            SockKind::Fresh => m |= OUT | HUP,
            SockKind::Listener(l) => {
                if self.incoming.get(&l).is_some_and(|&n| n > 0) {
                    m |= IN;
                }
            }
            SockKind::Conn(id) => {
                let (state, readable, peer_fin, cap, sent_fin) = match self.stack.conn(id) {
                    Some(c) => (
                        c.state(),
                        c.recv_queue() > 0,
                        c.peer_closed(),
                        c.send_capacity(),
                        matches!(
                            c.state(),
                            State::FinWait1
                                | State::FinWait2
                                | State::Closing
                                | State::TimeWait
                                | State::LastAck
                        ),
                    ),
                    None => (State::Closed, false, false, 0, true),
                };
                if state == State::Closed || (peer_fin && sent_fin) {
                    m |= HUP;
                }
                if peer_fin || state == State::Closed {
                    m |= IN | RDHUP;
                }
                if !matches!(state, State::SynSent | State::SynReceived) {
                    if readable {
                        m |= IN;
                    }
                    if sent_fin || state == State::Closed || cap > 0 {
                        m |= OUT;
                    }
                }
            }
        }
        if s.sk_err.is_some() {
            m |= ERR;
        }
        m & (events | ERR | HUP | 0x20)
    }
}

/// Linux's TCP_FIN_TIMEOUT_MAX: TCP_LINGER2 values above it are capped (120 s).
const FIN_TIMEOUT_MAX_SECS: i64 = 120;

/// TCP_LINGER2 as Linux reads it: negative means no FIN_WAIT_2 wait at all, zero the
/// system default, positive a number of seconds, at most TCP_FIN_TIMEOUT_MAX.
fn linger2(v: i64, default: Duration) -> Duration {
    match v {
        v if v < 0 => Duration::ZERO,
        0 => default,
        v => Duration::from_secs(v.min(FIN_TIMEOUT_MAX_SECS) as u64),
    }
}

/// getsockopt(TCP_LINGER2) as Linux answers it (do_tcp_getsockopt): -1 when set
/// negative, the system's tcp_fin_timeout in seconds when unset or set to 0, otherwise
/// the value set, capped at TCP_FIN_TIMEOUT_MAX.
fn linger2_reported(set: Option<i64>, default: Duration) -> i64 {
    match set {
        Some(v) if v < 0 => -1,
        None | Some(0) => default.as_secs() as i64,
        Some(v) => v.min(FIN_TIMEOUT_MAX_SECS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_linger2_as_linux_sets_and_reports_it() {
        let fin_timeout = Duration::from_secs(60);
        assert_eq!(linger2(-1, fin_timeout), Duration::ZERO);
        assert_eq!(linger2(0, fin_timeout), fin_timeout);
        assert_eq!(linger2(5, fin_timeout), Duration::from_secs(5));
        assert_eq!(linger2(1000, fin_timeout), Duration::from_secs(120));
        assert_eq!(linger2_reported(None, fin_timeout), 60);
        assert_eq!(linger2_reported(Some(0), Duration::from_secs(10)), 10);
        assert_eq!(linger2_reported(Some(-5), fin_timeout), -1);
        assert_eq!(linger2_reported(Some(5), fin_timeout), 5);
        assert_eq!(linger2_reported(Some(1000), fin_timeout), 120);
    }

    /// A passive open with accept(), fd 4 (lines 1-7).
    const OPEN: &str = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
                        +0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n\
                        +0 < S 0:0(0) win 65535 <mss 1460,nop,wscale 7>\n\
                        +0 > S. 0:0(0) ack 1 win 64240 <mss 1460,nop,wscale 7>\n\
                        +.1 < . 1:1(0) ack 1 win 512\n+0 accept(3, ..., ...) = 4\n";

    #[test]
    fn a_reset_in_close_wait_is_epipe() {
        // Linux's tcp_reset: EPIPE in CLOSE_WAIT, ECONNRESET in ESTABLISHED.
        let close_wait = format!(
            "{OPEN}+.1 < F. 1:1(0) ack 1 win 512\n+.04 > . 1:1(0) ack 2 win 2048\n\
             +.1 < R. 2:2(0) ack 1 win 0\n\
             +0 getsockopt(4, SOL_SOCKET, SO_ERROR, [EPIPE], [4]) = 0\n\
             +0 getsockopt(4, SOL_SOCKET, SO_ERROR, [0], [4]) = 0\n"
        );
        let r = crate::run_script(&close_wait, &crate::RunOptions::default());
        assert_eq!(r.result, Ok(()));
        let established = format!(
            "{OPEN}+.1 < R. 1:1(0) ack 1 win 0\n\
             +0 getsockopt(4, SOL_SOCKET, SO_ERROR, [ECONNRESET], [4]) = 0\n"
        );
        let r = crate::run_script(&established, &crate::RunOptions::default());
        assert_eq!(r.result, Ok(()));
    }

    #[test]
    fn bind_conflicts_as_linux_decides_them() {
        let run = |src: &str| crate::run_script(src, &crate::RunOptions::default()).result;
        let two = |a: &str, b: &str, listen: bool, want: &str| {
            format!(
                "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n{a}\
                 +0 bind(3, ..., ...) = 0\n{}\
                 +0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 4\n{b}\
                 +0 bind(4, ..., ...) = {want}\n",
                if listen { "+0 listen(3, 1) = 0\n" } else { "" }
            )
        };
        let r3 = "+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0\n";
        let r4 = "+0 setsockopt(4, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0\n";
        let inuse = "-1 EADDRINUSE (Address already in use)";
        assert_eq!(run(&two("", "", false, inuse)), Ok(()));
        assert_eq!(run(&two(r3, "", false, inuse)), Ok(()));
        assert_eq!(run(&two("", r4, false, inuse)), Ok(()));
        assert_eq!(run(&two(r3, r4, false, "0")), Ok(()));
        assert_eq!(run(&two(r3, r4, true, inuse)), Ok(()));
    }

    #[test]
    fn setsockopt_ranges_and_so_linger_off_as_linux() {
        let src = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
                   +0 setsockopt(3, SOL_TCP, TCP_KEEPIDLE, [0], 4) = -1 EINVAL (Invalid argument)\n\
                   +0 setsockopt(3, SOL_TCP, TCP_KEEPIDLE, [32768], 4) = -1 EINVAL (Invalid argument)\n\
                   +0 setsockopt(3, SOL_TCP, TCP_KEEPINTVL, [0], 4) = -1 EINVAL (Invalid argument)\n\
                   +0 setsockopt(3, SOL_TCP, TCP_KEEPCNT, [128], 4) = -1 EINVAL (Invalid argument)\n\
                   +0 setsockopt(3, SOL_TCP, TCP_MAXSEG, [87], 4) = -1 EINVAL (Invalid argument)\n\
                   +0 getsockopt(3, SOL_TCP, TCP_USER_TIMEOUT, [0], [4]) = 0\n\
                   +0 setsockopt(3, SOL_TCP, TCP_USER_TIMEOUT, [-1], 4) = -1 EINVAL (Invalid argument)\n\
                   +0 getsockopt(3, SOL_TCP, TCP_KEEPIDLE, [7200], [4]) = 0\n\
                   +0 setsockopt(3, SOL_TCP, TCP_KEEPCNT, [127], 4) = 0\n\
                   +0 setsockopt(3, SOL_TCP, TCP_MAXSEG, [88], 4) = 0\n\
                   +0 setsockopt(3, SOL_TCP, TCP_MAXSEG, [0], 4) = 0\n\
                   +0 getsockopt(3, SOL_TCP, TCP_MAXSEG, [536], [4]) = 0\n\
                   +0 setsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=1, linger=7}, 8) = 0\n\
                   +0 setsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=0, linger=3}, 8) = 0\n\
                   +0 getsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=0, linger=7}, [8]) = 0\n";
        let r = crate::run_script(src, &crate::RunOptions::default());
        assert_eq!(r.result, Ok(()));
    }

    #[test]
    fn tcp_linger2_zero_after_a_value_restores_the_default() {
        let src = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
                   +0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n\
                   +0 < S 0:0(0) win 65535 <mss 1460,nop,wscale 7>\n\
                   +0 > S. 0:0(0) ack 1 win 64240 <mss 1460,nop,wscale 7>\n\
                   +.1 < . 1:1(0) ack 1 win 512\n+0 accept(3, ..., ...) = 4\n\
                   +0 getsockopt(4, SOL_TCP, TCP_LINGER2, [60], [4]) = 0\n\
                   +0 setsockopt(4, SOL_TCP, TCP_LINGER2, [5], 4) = 0\n\
                   +0 setsockopt(4, SOL_TCP, TCP_LINGER2, [0], 4) = 0\n\
                   +0 getsockopt(4, SOL_TCP, TCP_LINGER2, [60], [4]) = 0\n\
                   +0 close(4) = 0\n+0 > F. 1:1(0) ack 1 win 2048\n\
                   +.1 < . 1:1(0) ack 2 win 512\n\
                   +59.8 %{ assert tcpi_state == TCP_FIN_WAIT2 }%\n\
                   +.4 %{ assert tcpi_state == TCP_CLOSE }%\n";
        let r = crate::run_script(src, &crate::RunOptions::default());
        assert_eq!(r.result, Ok(()));
    }
}
