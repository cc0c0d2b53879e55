//! A snapshot of every socket of a stack, like `ss -tan -o`: state, queues, addresses
//! and the pending timer of each listener, connection and TIME_WAIT record.

use super::{ConnId, ListenerId};
use crate::tcp::State;
use crate::time::Duration;
use core::fmt::{self, Write as _};
use core::net::SocketAddr;

/// What a line of the snapshot describes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SocketKind {
    /// A listener.
    Listener(ListenerId),
    /// A connection with a handle.
    Conn(ConnId),
    /// A compact TIME_WAIT record (the application closed it; no handle).
    TimeWait,
}

/// One socket, as `ss -tan -o` shows it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SocketInfo {
    /// Listener, connection or TIME_WAIT record.
    pub kind: SocketKind,
    /// The TCP state.
    pub state: State,
    /// For a connection, bytes received and not yet read; for a listener, connections
    /// waiting for accept() (as `ss` shows them).
    pub recv_q: usize,
    /// For a connection, bytes not yet acknowledged or not yet sent; for a listener,
    /// its backlog.
    pub send_q: usize,
    /// Local address and port.
    pub local: SocketAddr,
    /// Remote address and port (`None` for a listener: `*:*`).
    pub remote: Option<SocketAddr>,
    /// The next timer to fire: its `ss` name (`on` for retransmission, `keepalive`,
    /// `persist`, `timewait`, ...) and the time left.
    pub timer: Option<(&'static str, Duration)>,
}

/// The column header of [`SocketInfo`]'s `Display`.
pub const HEADER: &str =
    "State       Recv-Q  Send-Q  Local Address:Port                 Peer Address:Port";

impl fmt::Display for SocketInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let peer = match self.remote {
            Some(r) => r.to_string(),
            None if self.local.is_ipv4() => "*:*".to_string(),
            None => "[::]:*".to_string(),
        };
        let mut line = format!(
            "{:<11} {:>6}  {:>6}  {:<34} {:<34}",
            self.state.ss_name(),
            self.recv_q,
            self.send_q,
            self.local.to_string(),
            peer
        );
        if let Some((name, left)) = self.timer {
            let _ = write!(line, " timer:({name},{})", fmt_left(left));
        }
        f.write_str(line.trim_end())
    }
}

/// `ss`'s way of printing time left: `1min2sec`, `3.5sec`, `200ms`.
fn fmt_left(d: Duration) -> String {
    let ms = d.as_millis();
    if ms >= 60_000 {
        format!("{}min{}sec", ms / 60_000, (ms % 60_000) / 1000)
    } else if ms >= 1000 {
        format!("{}.{}sec", ms / 1000, (ms % 1000) / 100)
    } else {
        format!("{ms}ms")
    }
}

/// The snapshot as text: the header, then one line per socket.
pub fn format_table(sockets: &[SocketInfo]) -> String {
    let mut s = String::from(HEADER);
    s.push('\n');
    for i in sockets {
        s.push_str(&i.to_string());
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_look_like_ss() {
        let i = SocketInfo {
            kind: SocketKind::TimeWait,
            state: State::TimeWait,
            recv_q: 0,
            send_q: 0,
            local: "10.0.0.1:40000".parse().unwrap(),
            remote: Some("10.0.0.2:80".parse().unwrap()),
            timer: Some(("timewait", Duration::from_millis(59_500))),
        };
        let line = i.to_string();
        assert!(line.starts_with("TIME-WAIT"), "{line}");
        assert!(line.contains("10.0.0.1:40000"), "{line}");
        assert!(line.ends_with("timer:(timewait,59.5sec)"), "{line}");
        assert_eq!(fmt_left(Duration::from_secs(61)), "1min1sec");
        assert_eq!(fmt_left(Duration::from_millis(200)), "200ms");
    }
}
