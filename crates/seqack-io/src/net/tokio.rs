//! Async sockets on tokio (feature `tokio`): [`TcpListener`] and [`TcpStream`], the
//! latter implementing [`AsyncRead`] and [`AsyncWrite`] so that tokio code
//! (`tokio::io::copy`, `tokio::io::split`, a hyper server through an adapter) runs on
//! a seqack stack.
//!
//! They need no tokio reactor: the [`NetStack`]'s own driver thread moves the packets,
//! and a socket that cannot go on registers its task's waker with the stack, which
//! wakes it on the next event of that connection (or listener). The attempt and the
//! registration happen under the stack's lock, so no wake-up falls between them. Any
//! executor works, tokio's current-thread and multi-thread runtimes included.
//!
//! Every call locks the stack for a short, non-blocking command, with one exception:
//! dropping the last handle of a stream whose linger was set to a non-zero time waits
//! for the FIN to be acknowledged on the dropping thread, as the blocking stream does.
//!
//! ```no_run
//! # async fn demo(net: &seqack_io::net::NetStack) -> std::io::Result<()> {
//! use seqack_io::net::tokio::TcpListener;
//! let listener = TcpListener::bind(net, "10.0.0.2:7".parse().unwrap())?;
//! loop {
//!     let (stream, _peer) = listener.accept().await?;
//!     tokio::spawn(async move {
//!         let (mut r, mut w) = stream.into_split();
//!         let _ = tokio::io::copy(&mut r, &mut w).await;
//!     });
//! }
//! # }
//! ```

use super::stream::{self as net_stream, connect_result, stack_error};
use super::{io_error, stopped, Inner, NetStack, Shared};
use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use seqack::stack::ConnId;
use seqack::tcp::{RecvError, SendError};
use seqack::{Instant, State};
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::hash::Hash;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Adds `w` to the wakers waiting on `key`, unless one that wakes the same task is
/// there already (a task polled again without an event in between).
fn register<K: Hash + Eq>(wakers: &mut HashMap<K, Vec<Waker>>, key: K, w: &Waker) {
    let v = wakers.entry(key).or_default();
    if !v.iter().any(|x| x.will_wake(w)) {
        v.push(w.clone());
    }
}

/// Runs `attempt` on the stack; if it cannot finish yet (`None`), registers the task's
/// waker with `wait` under the same lock and returns `Pending`. The stack's output is
/// sent and its events dispatched afterwards, as for any socket call.
fn poll_op<R>(
    shared: &Shared,
    cx: &mut Context<'_>,
    attempt: impl FnOnce(&mut Inner, Instant) -> Option<io::Result<R>>,
    wait: impl FnOnce(&mut Inner, &Waker),
) -> Poll<io::Result<R>> {
    let mut g = shared.lock();
    if g.stopped {
        return Poll::Ready(Err(stopped()));
    }
    let now = g.now();
    let r = attempt(&mut g, now);
    if r.is_none() {
        wait(&mut g, cx.waker());
    }
    shared.after_op(&mut g, now);
    match r {
        Some(r) => Poll::Ready(r),
        None => Poll::Pending,
    }
}

/// A listening socket whose `accept` is a future.
///
/// Dropping it closes the listener: connections not accepted yet are reset, as on
/// Linux.
pub struct TcpListener {
    inner: net_stream::TcpListener,
}

impl TcpListener {
    /// Listens on `addr` (an address of the stack, or the unspecified address for all
    /// of them) with the default backlog (128).
    pub fn bind(net: &NetStack, addr: SocketAddr) -> io::Result<TcpListener> {
        net_stream::TcpListener::bind(net, addr).map(TcpListener::from)
    }

    /// Listens with a backlog: at most this many established connections wait for
    /// accept(); SYNs beyond it are answered with SYN cookies or dropped, as on Linux.
    pub fn bind_with_backlog(
        net: &NetStack,
        addr: SocketAddr,
        backlog: usize,
    ) -> io::Result<TcpListener> {
        net_stream::TcpListener::bind_with_backlog(net, addr, backlog).map(TcpListener::from)
    }

    /// Waits for a connection and returns it with the peer's address.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Takes a connection from the accept queue, or registers the task to be woken when
    /// one arrives.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let shared = &self.inner.shared;
        let lid = self.inner.id;
        let r = poll_op(
            shared,
            cx,
            |g, _| {
                let id = g.stack.accept(lid)?;
                Some(match g.stack.conn(id) {
                    Some(c) => Ok((id, c.local(), c.remote())),
                    None => Err(io::ErrorKind::ConnectionAborted.into()),
                })
            },
            |g, w| register(&mut g.listener_wakers, lid, w),
        );
        r.map_ok(|(id, local, remote)| {
            let s = net_stream::TcpStream::from_parts(shared.clone(), id, local, remote);
            (TcpStream { inner: s }, remote)
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl From<net_stream::TcpListener> for TcpListener {
    /// The same listener with an async accept.
    fn from(inner: net_stream::TcpListener) -> TcpListener {
        TcpListener { inner }
    }
}

impl From<TcpListener> for net_stream::TcpListener {
    /// The same listener with a blocking accept.
    fn from(l: TcpListener) -> net_stream::TcpListener {
        l.inner
    }
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener")
            .field("local", &self.inner.local_addr().ok())
            .finish()
    }
}

/// A TCP connection implementing [`AsyncRead`] and [`AsyncWrite`].
///
/// Dropping the last handle to it (the stream, or both halves of
/// [`TcpStream::into_split`]) closes it like close(2): FIN after the buffered data,
/// or RST if received data was left unread or linger is zero.
/// Its [`AsyncWrite::poll_shutdown`] (`AsyncWriteExt::shutdown`) sends the FIN and
/// leaves the reading half open.
pub struct TcpStream {
    inner: net_stream::TcpStream,
}

impl TcpStream {
    /// Opens a connection to `addr` and resolves once the handshake has finished (SYN
    /// retries as the stack's settings say: about 127 s with Linux's 6 retries; wrap it
    /// in `tokio::time::timeout` for less). The SYN goes out when the future is first
    /// polled; the future does not borrow `net`, so it can be spawned.
    pub fn connect(
        net: &NetStack,
        addr: SocketAddr,
    ) -> impl Future<Output = io::Result<TcpStream>> + Send + 'static {
        let shared = net.shared().clone();
        async move {
            let (id, local) = shared.op(|g, now| {
                if g.stopped {
                    return Err(stopped());
                }
                let id = g.stack.connect(now, None, addr).map_err(stack_error)?;
                let local = g.stack.conn(id).map(|c| c.local()).ok_or_else(stopped)?;
                Ok::<_, io::Error>((id, local))
            })?;
            // Made before waiting so that a dropped future closes the connection.
            let stream = net_stream::TcpStream::from_parts(shared.clone(), id, local, addr);
            poll_fn(|cx| {
                poll_op(
                    &shared,
                    cx,
                    |g, _| connect_result(g.stack.conn(id)),
                    |g, w| register(&mut g.conn_wakers, id, w),
                )
            })
            .await?;
            Ok(TcpStream { inner: stream })
        }
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The connection's RFC 9293 state now (CLOSED once the stack let it go).
    pub fn state(&self) -> State {
        self.inner.state()
    }

    /// Sets `TCP_NODELAY` (Nagle's algorithm off).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.set_nodelay(nodelay)
    }

    /// `TCP_NODELAY`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.nodelay()
    }

    /// Sets `SO_LINGER`: `Some(0)` makes the last drop abort with RST; `Some(d)` makes
    /// the last drop wait up to `d` for the buffered data and the FIN to be
    /// acknowledged, blocking the dropping thread (keep `d` short on an executor);
    /// `None` closes in the background (the default).
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.inner.set_linger(linger)
    }

    /// `SO_LINGER`.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        self.inner.linger()
    }

    /// Turns `SO_KEEPALIVE` on with these idle and interval times and probe count, or
    /// off.
    pub fn set_keepalive(&self, keepalive: Option<(Duration, Duration, u32)>) -> io::Result<()> {
        self.inner.set_keepalive(keepalive)
    }

    /// Aborts the connection now with RST.
    pub fn abort(&self) {
        self.inner.abort()
    }

    /// Splits it into a reading and a writing half that can move to different tasks.
    /// The connection closes when both are dropped; dropping the writing half alone
    /// shuts the writing direction down (FIN), as tokio's does.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        let shared = Arc::new(self);
        (
            OwnedReadHalf {
                inner: shared.clone(),
            },
            OwnedWriteHalf {
                inner: shared,
                shutdown_on_drop: true,
            },
        )
    }

    /// Splits it into borrowed reading and writing halves, for use within one task
    /// (`tokio::io::copy(&mut r, &mut w)` with `r` and `w` of the same stream).
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        (ReadHalf { inner: self }, WriteHalf { inner: self })
    }

    fn poll_read_priv(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let id = self.id();
        let dst = buf.initialize_unfilled();
        let r = poll_op(
            &self.inner.inner.shared,
            cx,
            |g, now| match g.stack.recv(now, id, dst) {
                Ok(n) => Some(Ok(n)),
                Err(RecvError::WouldBlock) => None,
                Err(RecvError::Failed(e)) => Some(Err(io_error(e))),
            },
            |g, w| register(&mut g.conn_wakers, id, w),
        );
        // Ok(0), end of stream, fills nothing: the caller sees EOF.
        r.map_ok(|n| buf.advance(n))
    }

    fn poll_write_priv(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let id = self.id();
        poll_op(
            &self.inner.inner.shared,
            cx,
            |g, now| match g.stack.send(now, id, buf) {
                Ok(0) => None,
                Ok(n) => Some(Ok(n)),
                Err(SendError::Shutdown) => Some(Err(io::ErrorKind::BrokenPipe.into())),
                Err(SendError::Failed(e)) => Some(Err(io_error(e))),
            },
            |g, w| register(&mut g.conn_wakers, id, w),
        )
    }

    /// Sends the FIN after the buffered data (shutdown(SHUT_WR)).
    fn poll_shutdown_priv(&self) -> Poll<io::Result<()>> {
        Poll::Ready(self.inner.shutdown(Shutdown::Write))
    }

    fn id(&self) -> ConnId {
        self.inner.inner.id
    }
}

impl From<net_stream::TcpStream> for TcpStream {
    /// The same connection as an async stream. The blocking stream's non-blocking
    /// mode and timeouts no longer apply; clones made with `try_clone` still share it.
    fn from(inner: net_stream::TcpStream) -> TcpStream {
        TcpStream { inner }
    }
}

impl From<TcpStream> for net_stream::TcpStream {
    /// The same connection as a blocking stream.
    fn from(s: TcpStream) -> net_stream::TcpStream {
        s.inner
    }
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.inner.local_addr().ok())
            .field("remote", &self.inner.peer_addr().ok())
            .finish()
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.poll_read_priv(cx, buf)
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_priv(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_shutdown_priv()
    }
}

/// The reading half of a [`TcpStream`] from [`TcpStream::into_split`].
#[derive(Debug)]
pub struct OwnedReadHalf {
    inner: Arc<TcpStream>,
}

/// The writing half of a [`TcpStream`] from [`TcpStream::into_split`]. Dropping it
/// shuts the writing direction down (FIN) unless [`OwnedWriteHalf::forget`] was called.
#[derive(Debug)]
pub struct OwnedWriteHalf {
    inner: Arc<TcpStream>,
    shutdown_on_drop: bool,
}

impl AsRef<TcpStream> for OwnedReadHalf {
    /// The stream both halves share (for its addresses, state and options).
    fn as_ref(&self) -> &TcpStream {
        &self.inner
    }
}

impl AsRef<TcpStream> for OwnedWriteHalf {
    /// The stream both halves share (for its addresses, state and options).
    fn as_ref(&self) -> &TcpStream {
        &self.inner
    }
}

impl OwnedReadHalf {
    /// Whether `other` is the writing half of the same stream.
    pub fn is_pair_of(&self, other: &OwnedWriteHalf) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Puts the halves back together; gives them back if they are of different
    /// streams.
    pub fn reunite(
        self,
        other: OwnedWriteHalf,
    ) -> Result<TcpStream, (OwnedReadHalf, OwnedWriteHalf)> {
        if !self.is_pair_of(&other) {
            return Err((self, other));
        }
        let mut w = other;
        w.shutdown_on_drop = false;
        let shared = w.inner.clone();
        drop(w);
        drop(self);
        Ok(Arc::into_inner(shared).expect("no other handle holds the stream"))
    }
}

impl OwnedWriteHalf {
    /// Drops the half without shutting the writing direction down.
    pub fn forget(mut self) {
        self.shutdown_on_drop = false;
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            let _ = self.inner.poll_shutdown_priv();
        }
    }
}

impl AsyncRead for OwnedReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.inner.poll_read_priv(cx, buf)
    }
}

impl AsyncWrite for OwnedWriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_write_priv(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.poll_shutdown_priv()
    }
}

/// The reading half of a [`TcpStream`] borrowed by [`TcpStream::split`].
#[derive(Debug)]
pub struct ReadHalf<'a> {
    inner: &'a TcpStream,
}

/// The writing half of a [`TcpStream`] borrowed by [`TcpStream::split`].
#[derive(Debug)]
pub struct WriteHalf<'a> {
    inner: &'a TcpStream,
}

impl AsyncRead for ReadHalf<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.inner.poll_read_priv(cx, buf)
    }
}

impl AsyncWrite for WriteHalf<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_write_priv(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.poll_shutdown_priv()
    }
}
