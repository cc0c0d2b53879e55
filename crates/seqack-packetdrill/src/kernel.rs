//! The fake kernel's bookkeeping: file descriptors, sockets and their options, the
//! pending error of each socket (`sk_err`), and the conversions between seqack's
//! errors and errno values.

use crate::symbols::errno;
use core::net::SocketAddr;
use seqack::{ConnId, ListenerId};
use std::collections::BTreeMap;

/// What a file descriptor refers to.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SockKind {
    /// socket() was called; neither listen() nor connect() yet.
    Fresh,
    /// listen() succeeded.
    Listener(ListenerId),
    /// connect() or accept() gave it a connection.
    Conn(ConnId),
}

/// Socket options set by the application, kept to configure connections and to
/// answer getsockopt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SockOptions {
    /// SO_REUSEADDR.
    pub reuseaddr: bool,
    /// TCP_DEFER_ACCEPT, in seconds.
    pub defer_accept: Option<i64>,
    /// SO_LINGER {onoff, linger}.
    pub linger: Option<(i64, i64)>,
    /// SO_KEEPALIVE.
    pub keepalive: Option<bool>,
    /// TCP_NODELAY.
    pub nodelay: Option<bool>,
    /// SO_RCVBUF as set.
    pub rcvbuf: Option<i64>,
    /// SO_SNDBUF as set.
    pub sndbuf: Option<i64>,
    /// TCP_MAXSEG as set.
    pub maxseg: Option<i64>,
    /// TCP_LINGER2 in seconds.
    pub linger2: Option<i64>,
    /// TCP_KEEPIDLE in seconds.
    pub keepidle: Option<i64>,
    /// TCP_KEEPINTVL in seconds.
    pub keepintvl: Option<i64>,
    /// TCP_KEEPCNT.
    pub keepcnt: Option<i64>,
    /// TCP_NOOPT (FreeBSD): no TCP options.
    pub noopt: bool,
    /// Other options: stored so that getsockopt returns what setsockopt set.
    pub other: BTreeMap<(i64, i64), i64>,
}

/// One socket.
#[derive(Clone, Debug)]
pub struct Socket {
    /// What it is now.
    pub kind: SockKind,
    /// AF_INET6?
    pub ipv6: bool,
    /// O_NONBLOCK.
    pub nonblock: bool,
    /// bind() address.
    pub bound: Option<SocketAddr>,
    /// Options.
    pub opts: SockOptions,
    /// The pending socket error, reported once by SO_ERROR, read or write.
    pub sk_err: Option<i64>,
    /// connect() was called and its outcome has not been reported by a later connect().
    pub connecting: bool,
    /// connect() reported success once (later calls say EISCONN).
    pub connect_reported: bool,
}

impl Socket {
    /// A fresh socket.
    pub fn new(ipv6: bool, nonblock: bool) -> Socket {
        Socket {
            kind: SockKind::Fresh,
            ipv6,
            nonblock,
            bound: None,
            opts: SockOptions::default(),
            sk_err: None,
            connecting: false,
            connect_reported: false,
        }
    }

    /// The connection, if any.
    pub fn conn(&self) -> Option<ConnId> {
        match self.kind {
            SockKind::Conn(id) => Some(id),
            _ => None,
        }
    }
}

/// A system call's outcome: a return value or an errno.
pub type Ret = Result<i64, i64>;

/// errno by name (for constants in code).
pub fn e(name: &str) -> i64 {
    errno(name).unwrap_or(22)
}

/// The errno of a connection error.
pub fn conn_errno(err: seqack::Error) -> Option<i64> {
    match err {
        seqack::Error::Refused => Some(e("ECONNREFUSED")),
        seqack::Error::Reset => Some(e("ECONNRESET")),
        seqack::Error::TimedOut => Some(e("ETIMEDOUT")),
        seqack::Error::Aborted => None,
    }
}

/// The file descriptor table: lowest free number from 3, as in a fresh process.
#[derive(Default, Debug)]
pub struct FdTable {
    /// Open descriptors.
    pub fds: BTreeMap<i32, Socket>,
}

impl FdTable {
    /// Allocates a descriptor: `hint` when the script names a free one (the script's
    /// numbering wins, as packetdrill maps script fds to live ones), else the lowest
    /// free number from 3.
    pub fn alloc(&mut self, hint: Option<i64>, s: Socket) -> i32 {
        let fd = match hint {
            Some(h)
                if (0..=i64::from(i32::MAX)).contains(&h)
                    && !self.fds.contains_key(&(h as i32)) =>
            {
                h as i32
            }
            _ => (3..)
                .find(|f| !self.fds.contains_key(f))
                .unwrap_or(i32::MAX),
        };
        self.fds.insert(fd, s);
        fd
    }

    /// The socket of a descriptor.
    pub fn get(&self, fd: i64) -> Result<&Socket, i64> {
        i32::try_from(fd)
            .ok()
            .and_then(|f| self.fds.get(&f))
            .ok_or(e("EBADF"))
    }

    /// The socket of a descriptor, mutably.
    pub fn get_mut(&mut self, fd: i64) -> Result<&mut Socket, i64> {
        i32::try_from(fd)
            .ok()
            .and_then(|f| self.fds.get_mut(&f))
            .ok_or(e("EBADF"))
    }

    /// The descriptor holding a connection.
    pub fn fd_of_conn(&self, id: ConnId) -> Option<i32> {
        self.fds
            .iter()
            .find(|(_, s)| s.kind == SockKind::Conn(id))
            .map(|(&f, _)| f)
    }

    /// The descriptor of the listener bound to `port`.
    pub fn listener_on_port(&self, port: u16) -> Option<i32> {
        self.fds
            .iter()
            .find(|(_, s)| {
                matches!(s.kind, SockKind::Listener(_)) && s.bound.is_some_and(|b| b.port() == port)
            })
            .map(|(&f, _)| f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fds_start_at_three_and_honour_hints() {
        let mut t = FdTable::default();
        assert_eq!(t.alloc(None, Socket::new(false, false)), 3);
        assert_eq!(t.alloc(Some(7), Socket::new(false, false)), 7);
        assert_eq!(t.alloc(Some(3), Socket::new(false, false)), 4);
        assert_eq!(t.get(9).unwrap_err(), e("EBADF"));
    }
}
