//! Blocking sockets in the shape of `std::net`: [`TcpListener`] and [`TcpStream`].

use super::{io_error, stopped, NetStack, Shared};
use seqack::stack::{ConnId, ListenerId, StackError};
use seqack::tcp::{RecvError, SendError, Shutdown as TcpShutdown};
use seqack::State;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Linux's default `listen()` backlog in std (`SOMAXCONN` as Rust's std passes it).
pub const DEFAULT_BACKLOG: usize = 128;

pub(crate) fn stack_error(e: StackError) -> io::Error {
    let kind = match e {
        StackError::AddrInUse => io::ErrorKind::AddrInUse,
        StackError::AddrNotAvailable | StackError::NoPortAvailable => {
            io::ErrorKind::AddrNotAvailable
        }
        StackError::InvalidHandle => io::ErrorKind::NotConnected,
        StackError::InvalidConfig(_) => io::ErrorKind::InvalidInput,
    };
    io::Error::new(kind, e)
}

/// A listening socket.
pub struct TcpListener {
    pub(crate) shared: Arc<Shared>,
    pub(crate) id: ListenerId,
    local: SocketAddr,
    nonblocking: AtomicBool,
}

impl TcpListener {
    /// Listens on `addr` (an address of the stack, or the unspecified address for all
    /// of them) with the default backlog.
    pub fn bind(net: &NetStack, addr: SocketAddr) -> io::Result<TcpListener> {
        TcpListener::bind_with_backlog(net, addr, DEFAULT_BACKLOG)
    }

    /// Listens with a backlog: at most this many established connections wait for
    /// accept(); SYNs beyond it are answered with SYN cookies or dropped, as on Linux.
    pub fn bind_with_backlog(
        net: &NetStack,
        addr: SocketAddr,
        backlog: usize,
    ) -> io::Result<TcpListener> {
        let shared = net.shared().clone();
        let id = shared.op(|g, _| g.stack.listen(addr, backlog).map_err(stack_error))?;
        Ok(TcpListener {
            shared,
            id,
            local: addr,
            nonblocking: AtomicBool::new(false),
        })
    }

    /// Waits for a connection and returns it with the peer's address.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        self.accept_until(None)
    }

    /// [`TcpListener::accept`] that gives up after `timeout` with
    /// `io::ErrorKind::WouldBlock`.
    pub fn accept_timeout(&self, timeout: Duration) -> io::Result<(TcpStream, SocketAddr)> {
        self.accept_until(Some(std::time::Instant::now() + timeout))
    }

    fn accept_until(
        &self,
        deadline: Option<std::time::Instant>,
    ) -> io::Result<(TcpStream, SocketAddr)> {
        let nb = self.nonblocking.load(Ordering::Relaxed);
        let (id, local, remote) = self.shared.block(deadline, nb, |g, _| {
            let id = g.stack.accept(self.id)?;
            Some(match g.stack.conn(id) {
                Some(c) => Ok((id, c.local(), c.remote())),
                None => Err(io::ErrorKind::ConnectionAborted.into()),
            })
        })?;
        let s = TcpStream::from_parts(self.shared.clone(), id, local, remote);
        Ok((s, remote))
    }

    /// An iterator over accepted connections.
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<TcpStream>> + '_ {
        std::iter::from_fn(move || Some(self.accept().map(|(s, _)| s)))
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    /// In non-blocking mode, accept() returns `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.nonblocking.store(nonblocking, Ordering::Relaxed);
        Ok(())
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        let id = self.id;
        self.shared.op(|g, now| {
            g.stack.close_listener(now, id);
            g.listener_wakers.remove(&id);
        });
    }
}

/// A TCP connection. Clones made with [`TcpStream::try_clone`] share it; the last one
/// dropped closes it (close(2): FIN after the buffered data, or RST if received data
/// was left unread or linger is zero).
pub struct TcpStream {
    pub(crate) inner: Arc<StreamInner>,
}

pub(crate) struct StreamInner {
    pub(crate) shared: Arc<Shared>,
    pub(crate) id: ConnId,
    local: SocketAddr,
    remote: SocketAddr,
    nonblocking: AtomicBool,
    read_timeout: Mutex<Option<Duration>>,
    write_timeout: Mutex<Option<Duration>>,
    linger: Mutex<Option<Duration>>,
}

impl TcpStream {
    pub(crate) fn from_parts(
        shared: Arc<Shared>,
        id: ConnId,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> TcpStream {
        TcpStream {
            inner: Arc::new(StreamInner {
                shared,
                id,
                local,
                remote,
                nonblocking: AtomicBool::new(false),
                read_timeout: Mutex::new(None),
                write_timeout: Mutex::new(None),
                linger: Mutex::new(None),
            }),
        }
    }

    /// Opens a connection to `addr` and waits for the handshake (SYN retries as the
    /// stack's settings say: about 127 s with Linux's 6 retries).
    pub fn connect(net: &NetStack, addr: SocketAddr) -> io::Result<TcpStream> {
        TcpStream::connect_until(net, addr, None)
    }

    /// [`TcpStream::connect`] that gives up after `timeout` with
    /// `io::ErrorKind::TimedOut`.
    pub fn connect_timeout(
        net: &NetStack,
        addr: SocketAddr,
        timeout: Duration,
    ) -> io::Result<TcpStream> {
        TcpStream::connect_until(net, addr, Some(std::time::Instant::now() + timeout))
    }

    fn connect_until(
        net: &NetStack,
        addr: SocketAddr,
        deadline: Option<std::time::Instant>,
    ) -> io::Result<TcpStream> {
        let shared = net.shared().clone();
        let (id, local) = shared.op(|g, now| {
            let id = g.stack.connect(now, None, addr).map_err(stack_error)?;
            let local = g.stack.conn(id).map(|c| c.local()).ok_or_else(stopped)?;
            Ok::<_, io::Error>((id, local))
        })?;
        let stream = TcpStream::from_parts(shared.clone(), id, local, addr);
        let r = shared.block(deadline, false, |g, _| connect_result(g.stack.conn(id)));
        match r {
            Ok(()) => Ok(stream),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))
            }
            Err(e) => Err(e),
        }
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.remote)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.local)
    }

    /// The connection's RFC 9293 state now (CLOSED once the stack let it go).
    pub fn state(&self) -> State {
        let id = self.inner.id;
        self.inner.shared.lock().stack.state(id)
    }

    /// Shuts down the reading half, the writing half (FIN after the buffered data), or
    /// both. Fails with `NotConnected` before the handshake finished or after the
    /// connection closed.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let id = self.inner.id;
        self.inner.shared.op(|g, now| {
            let st = g.stack.state(id);
            if matches!(st, State::Closed | State::SynSent | State::Listen) {
                return Err(io::Error::from(io::ErrorKind::NotConnected));
            }
            let how = match how {
                Shutdown::Read => TcpShutdown::Read,
                Shutdown::Write => TcpShutdown::Write,
                Shutdown::Both => TcpShutdown::Both,
            };
            g.stack.shutdown(now, id, how);
            Ok(())
        })
    }

    /// Aborts the connection now with RST (close() with linger zero).
    pub fn abort(&self) {
        let id = self.inner.id;
        self.inner.shared.op(|g, now| g.stack.abort(now, id));
    }

    /// Sets `TCP_NODELAY` (Nagle's algorithm off).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.with_opts(|o| o.nodelay = nodelay)
    }

    /// `TCP_NODELAY`.
    pub fn nodelay(&self) -> io::Result<bool> {
        let id = self.inner.id;
        let g = self.inner.shared.lock();
        g.stack
            .conn(id)
            .map(|c| c.sockopts().nodelay)
            .ok_or_else(|| io::ErrorKind::NotConnected.into())
    }

    /// Sets `SO_LINGER`: `Some(0)` makes close (drop) abort with RST; `Some(d)` makes
    /// the last drop wait up to `d` for the buffered data and the FIN to be
    /// acknowledged; `None` closes in the background (the default).
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        *self.inner.linger.lock().unwrap_or_else(|e| e.into_inner()) = linger;
        self.with_opts(|o| o.linger_zero = linger == Some(Duration::ZERO))
    }

    /// `SO_LINGER`.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        Ok(*self.inner.linger.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Turns `SO_KEEPALIVE` on with these idle and interval times, or off.
    pub fn set_keepalive(&self, keepalive: Option<(Duration, Duration, u32)>) -> io::Result<()> {
        let id = self.inner.id;
        let r = self.inner.shared.op(|g, now| {
            g.stack.with_conn(now, id, |c, now, _| match keepalive {
                Some((idle, intvl, cnt)) => {
                    let o = c.sockopts_mut();
                    o.keepalive_interval = intvl;
                    o.keepalive_count = cnt;
                    c.set_keepalive_idle(now, idle);
                    c.set_keepalive(now, true);
                }
                None => c.set_keepalive(now, false),
            })
        });
        r.ok_or_else(|| io::ErrorKind::NotConnected.into())
    }

    fn with_opts(&self, f: impl FnOnce(&mut seqack::tcp::SockOpts)) -> io::Result<()> {
        let id = self.inner.id;
        let r = self
            .inner
            .shared
            .op(|g, now| g.stack.with_conn(now, id, |c, _, _| f(c.sockopts_mut())));
        r.ok_or_else(|| io::ErrorKind::NotConnected.into())
    }

    /// In non-blocking mode, reads and writes return `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.inner.nonblocking.store(nonblocking, Ordering::Relaxed);
        Ok(())
    }

    /// A read that waits longer than this fails with `WouldBlock` (as std on Unix).
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        *self
            .inner
            .read_timeout
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = t;
        Ok(())
    }

    /// A write that waits longer than this fails with `WouldBlock`.
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        *self
            .inner
            .write_timeout
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = t;
        Ok(())
    }

    /// Another handle to the same connection (for a reader and a writer thread).
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            inner: self.inner.clone(),
        })
    }

    fn deadline(&self, t: &Mutex<Option<Duration>>) -> Option<std::time::Instant> {
        t.lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|d| std::time::Instant::now() + d)
    }

    fn do_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let id = self.inner.id;
        let deadline = self.deadline(&self.inner.read_timeout);
        let nb = self.inner.nonblocking.load(Ordering::Relaxed);
        self.inner
            .shared
            .block(deadline, nb, |g, now| match g.stack.recv(now, id, buf) {
                Ok(n) => Some(Ok(n)),
                Err(RecvError::WouldBlock) => None,
                Err(RecvError::Failed(e)) => Some(Err(io_error(e))),
            })
    }

    fn do_write(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let id = self.inner.id;
        let deadline = self.deadline(&self.inner.write_timeout);
        let nb = self.inner.nonblocking.load(Ordering::Relaxed);
        self.inner
            .shared
            .block(deadline, nb, |g, now| match g.stack.send(now, id, buf) {
                Ok(0) => None,
                Ok(n) => Some(Ok(n)),
                Err(SendError::Shutdown) => Some(Err(io::ErrorKind::BrokenPipe.into())),
                Err(SendError::Failed(e)) => Some(Err(io_error(e))),
            })
    }
}

/// What a connect() waiting on `c` sees: done, failed, or still in the handshake.
pub(crate) fn connect_result(c: Option<&seqack::tcp::Connection>) -> Option<io::Result<()>> {
    let Some(c) = c else {
        return Some(Err(io::ErrorKind::ConnectionAborted.into()));
    };
    if let Some(e) = c.error() {
        return Some(Err(io_error(e)));
    }
    match c.state() {
        State::SynSent | State::SynReceived => None,
        State::Closed => Some(Err(io::ErrorKind::ConnectionAborted.into())),
        _ => Some(Ok(())),
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.do_read(buf)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.do_read(buf)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.do_write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.do_write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.inner.local)
            .field("remote", &self.inner.remote)
            .finish()
    }
}

impl Drop for StreamInner {
    fn drop(&mut self) {
        let id = self.id;
        let linger = *self.linger.lock().unwrap_or_else(|e| e.into_inner());
        self.shared.op(|g, now| {
            g.stack.close(now, id);
            g.conn_wakers.remove(&id);
        });
        // SO_LINGER with a timeout: wait for the FIN to be acknowledged, like Linux's
        // close() on a lingering socket.
        if let Some(d) = linger.filter(|d| !d.is_zero()) {
            let deadline = std::time::Instant::now() + d;
            let _ = self.shared.block(Some(deadline), false, |g, _| {
                let st = g.stack.state(id);
                let done = !matches!(
                    st,
                    State::FinWait1 | State::Closing | State::LastAck | State::SynReceived
                ) && g.stack.conn(id).is_none_or(|c| c.send_queue() == 0);
                done.then_some(Ok(()))
            });
        }
    }
}
