//! `tun-tx` and `tun-rx`: one connection between seqack on a TUN device and the
//! kernel's own TCP, moving a fixed number of bytes one way, in a network namespace of
//! the benchmark's own; seqack with and without TUN offload, and as the anchor the
//! kernel talking to itself over a veth pair between that namespace and a second one.
//!
//! - `tun-tx`: seqack sends, the kernel receives. `tun-rx`: the kernel sends, seqack
//!   receives.
//! - seqack runs in this process as `seqack serve` and `seqack connect` run it: a
//!   [`NetStack`] on a [`TunDevice`] (MTU 1500), its driver thread, and a blocking
//!   socket on the calling thread. The kernel's side is a `std::net` socket on another
//!   thread of this process, in the same namespace (threads join a namespace with
//!   `setns(2)`, which moves only the calling thread and the threads it starts).
//! - The anchor: a sender in one namespace and a receiver in the other, over veth
//!   (MTU 1500, the kernel's TSO/GSO/GRO on as it has them by default).
//! - Every kernel socket of these runs (the kernel's end of the TUN runs and both ends
//!   of the anchor) uses CUBIC, Linux's default congestion control and seqack's,
//!   whatever the host's default is: with BBR (this project's test machine's default)
//!   the kernel's pacing, not either receiver, set the rate, about 14 Gbit/s into
//!   seqack with offload and into the kernel over veth alike.
//!
//! Gbit/s = payload bytes / wall time from the first connect to the last byte read.
//! Root only (`CAP_NET_ADMIN` and `CAP_SYS_ADMIN` for namespaces and TUN devices):
//! [`unavailable`] says why not. The namespaces are deleted when the [`TunLab`] is
//! dropped; no address or device is made outside them.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use seqack::Counters;
use seqack_io::device::{TunDevice, TunOptions};
use seqack_io::net::{NetConfig, NetStack, OffloadStats, TcpListener, TcpStream};

/// Which way the bytes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// seqack sends, the kernel receives (`tun-tx`).
    SeqackToKernel,
    /// The kernel sends, seqack receives (`tun-rx`).
    KernelToSeqack,
}

/// One run's settings.
#[derive(Clone, Copy, Debug)]
pub struct TunConfig {
    /// Which way.
    pub direction: Direction,
    /// TUN offload on the device (virtio-net header, TSO, coalescing).
    pub offload: bool,
    /// Payload bytes moved.
    pub bytes: u64,
    /// seqack's send and receive buffer.
    pub buffer: usize,
}

/// What one run measured.
#[derive(Clone, Debug)]
pub struct TunSample {
    /// Payload bytes the receiving application read.
    pub bytes: u64,
    /// Wall-clock seconds from connect to the last byte read.
    pub seconds: f64,
    /// seqack's counters at the end (empty for the veth anchor).
    pub counters: Option<Counters>,
    /// What offload did.
    pub offload: OffloadStats,
}

impl TunSample {
    /// Goodput in Gbit/s.
    pub fn gbps(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.seconds / 1e9
    }
}

const KERNEL: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const SEQACK: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const VETH_A: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const VETH_B: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
const CHUNK: usize = 64 * 1024;
/// seqack's send and receive buffer in `seqack bench`.
pub const BUFFER: usize = 1 << 20;
/// No run may take longer (a stalled connection fails the run, it does not hang).
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// The congestion control of every kernel socket in these runs (see the module
/// documentation).
pub const KERNEL_CC: &str = "cubic";

/// Sets [`KERNEL_CC`] on a kernel socket. A kernel without it keeps its default, said
/// once on stderr: the run still measures, with the host's choice.
fn kernel_cc(socket: impl AsFd) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    if let Err(e) = rustix::net::sockopt::set_tcp_congestion(socket, KERNEL_CC) {
        WARNED.call_once(|| {
            eprintln!(
                "seqack bench: tun: the kernel's sockets keep the host's congestion \
                 control ({KERNEL_CC}: {e})"
            )
        });
    }
}

/// Why the `tun` workloads cannot run here, or `None` when they can.
pub fn unavailable() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("needs root (network namespaces and TUN devices)".into());
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Some("no /dev/net/tun".into());
    }
    let ip = Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !ip.is_ok_and(|s| s.success()) {
        return Some("the `ip` command (iproute2) is missing".into());
    }
    None
}

/// Two network namespaces of this process's own: the first for seqack's TUN device
/// and the kernel's side of it, and with the second a veth pair for the anchor.
pub struct TunLab {
    ns: String,
    peer_ns: String,
    port: AtomicU16,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let o = Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

impl TunLab {
    /// Makes the namespaces (`sqk-bench-PID` and `sqk-bench-PID-peer`), the veth pair
    /// between them with 10.1.0.1/24 and 10.1.0.2/24, and loopback up in each.
    pub fn new() -> Result<TunLab, String> {
        let ns = format!("sqk-bench-{}", std::process::id());
        let lab = TunLab {
            peer_ns: format!("{ns}-peer"),
            ns,
            port: AtomicU16::new(20000),
        };
        for n in [&lab.ns, &lab.peer_ns] {
            let _ = ip(&["netns", "del", n]);
            ip(&["netns", "add", n])?;
            ip(&["-n", n, "link", "set", "lo", "up"])?;
        }
        ip(&[
            "-n",
            &lab.ns,
            "link",
            "add",
            "sqkv0",
            "type",
            "veth",
            "peer",
            "name",
            "sqkv1",
            "netns",
            &lab.peer_ns,
        ])?;
        ip(&["-n", &lab.ns, "addr", "add", "10.1.0.1/24", "dev", "sqkv0"])?;
        ip(&[
            "-n",
            &lab.peer_ns,
            "addr",
            "add",
            "10.1.0.2/24",
            "dev",
            "sqkv1",
        ])?;
        ip(&["-n", &lab.ns, "link", "set", "sqkv0", "up"])?;
        ip(&["-n", &lab.peer_ns, "link", "set", "sqkv1", "up"])?;
        Ok(lab)
    }

    fn next_port(&self) -> u16 {
        self.port.fetch_add(1, Ordering::Relaxed)
    }

    /// One run of seqack against the kernel over a fresh TUN device.
    pub fn seqack(&self, cfg: &TunConfig) -> io::Result<TunSample> {
        let port = self.next_port();
        let cfg = *cfg;
        in_netns(&self.ns, move || seqack_run(&cfg, port))?
    }

    /// One run of the kernel against itself over veth, the sender in the first
    /// namespace for `SeqackToKernel` and in the second for `KernelToSeqack`.
    pub fn linux_veth(&self, direction: Direction, bytes: u64) -> io::Result<TunSample> {
        let port = self.next_port();
        let (recv_ns, recv_ip, send_ns) = match direction {
            Direction::SeqackToKernel => (&self.peer_ns, VETH_B, &self.ns),
            Direction::KernelToSeqack => (&self.ns, VETH_A, &self.peer_ns),
        };
        let addr = SocketAddr::new(IpAddr::V4(recv_ip), port);
        let listener = in_netns(recv_ns, move || std::net::TcpListener::bind(addr))??;
        kernel_cc(&listener);
        let send_ns = send_ns.clone();
        std::thread::scope(|sc| {
            let start = Instant::now();
            let sender = sc.spawn(move || {
                in_netns(&send_ns, move || -> io::Result<()> {
                    let mut s = kernel_connect(&addr, RUN_LIMIT)?;
                    s.set_write_timeout(Some(RUN_LIMIT))?;
                    send(&mut s, bytes)
                })?
            });
            let (mut r, _) = listener.accept()?;
            r.set_read_timeout(Some(RUN_LIMIT))?;
            let got = receive(&mut r, bytes)?;
            let seconds = start.elapsed().as_secs_f64();
            sender
                .join()
                .map_err(|_| io::Error::other("the sender thread panicked"))??;
            Ok(TunSample {
                bytes: got,
                seconds,
                counters: None,
                offload: OffloadStats::default(),
            })
        })
    }
}

impl Drop for TunLab {
    fn drop(&mut self) {
        for n in [&self.ns, &self.peer_ns] {
            let _ = ip(&["netns", "del", n]);
        }
    }
}

/// Runs `f` on a thread that has joined the network namespace `ns` (threads it starts
/// are in it too); sockets and devices it makes belong to that namespace.
fn in_netns<R: Send>(ns: &str, f: impl FnOnce() -> R + Send) -> io::Result<R> {
    let path = format!("/run/netns/{ns}");
    let file = File::open(&path).map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))?;
    std::thread::scope(|sc| {
        sc.spawn(move || {
            rustix::thread::move_into_link_name_space(
                file.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )?;
            Ok(f())
        })
        .join()
        .map_err(|_| io::Error::other("a benchmark thread panicked"))?
    })
}

/// A kernel TCP connection to `addr`, switched to [`KERNEL_CC`] once connected (before
/// any data: the initial window, 10 segments, is the same under either).
fn kernel_connect(addr: &SocketAddr, timeout: Duration) -> io::Result<std::net::TcpStream> {
    let s = std::net::TcpStream::connect_timeout(addr, timeout)?;
    kernel_cc(&s);
    Ok(s)
}

fn chunk() -> Vec<u8> {
    (0..CHUNK).map(|i| (i % 251) as u8).collect()
}

fn send(w: &mut impl Write, bytes: u64) -> io::Result<()> {
    let data = chunk();
    let mut left = bytes;
    while left > 0 {
        let n = (left as usize).min(CHUNK);
        w.write_all(&data[..n])?;
        left -= n as u64;
    }
    Ok(())
}

fn receive(r: &mut impl Read, bytes: u64) -> io::Result<u64> {
    let mut sink = vec![0u8; CHUNK];
    let mut got = 0u64;
    while got < bytes {
        match r.read(&mut sink)? {
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the connection ended after {got} of {bytes} bytes"),
                ))
            }
            n => got += n as u64,
        }
    }
    Ok(got)
}

/// In the lab namespace: a TUN device (made here, gone when dropped), seqack on it,
/// the kernel's socket on another thread.
fn seqack_run(cfg: &TunConfig, port: u16) -> io::Result<TunSample> {
    let dev = TunDevice::open(&TunOptions {
        name: "sqkt0".into(),
        kernel_addr: Some((IpAddr::V4(KERNEL), 24)),
        mtu: 1500,
        offload: cfg.offload,
    })?;
    let mut nc = NetConfig::new(vec![IpAddr::V4(SEQACK)]);
    nc.stack.tcp.mtu = 1500;
    nc.stack.tcp.send_buffer = cfg.buffer;
    nc.stack.tcp.recv_buffer = cfg.buffer;
    let net = NetStack::new(dev, nc)?;
    let bytes = cfg.bytes;
    let (got, seconds) = match cfg.direction {
        Direction::SeqackToKernel => {
            let addr = SocketAddr::new(IpAddr::V4(KERNEL), port);
            let listener = std::net::TcpListener::bind(addr)?;
            kernel_cc(&listener);
            std::thread::scope(|sc| -> io::Result<(u64, f64)> {
                let start = Instant::now();
                let receiver = sc.spawn(move || -> io::Result<(u64, f64)> {
                    let (mut r, _) = listener.accept()?;
                    r.set_read_timeout(Some(RUN_LIMIT))?;
                    let got = receive(&mut r, bytes)?;
                    Ok((got, start.elapsed().as_secs_f64()))
                });
                let mut s = TcpStream::connect_timeout(&net, addr, Duration::from_secs(10))?;
                s.set_write_timeout(Some(RUN_LIMIT))?;
                let sent = send(&mut s, bytes);
                let r = receiver
                    .join()
                    .map_err(|_| io::Error::other("the receiver thread panicked"))?;
                sent?;
                r
            })?
        }
        Direction::KernelToSeqack => {
            let addr = SocketAddr::new(IpAddr::V4(SEQACK), port);
            let listener = TcpListener::bind(&net, addr)?;
            std::thread::scope(|sc| -> io::Result<(u64, f64)> {
                let start = Instant::now();
                let sender = sc.spawn(move || -> io::Result<()> {
                    let mut s = kernel_connect(&addr, Duration::from_secs(10))?;
                    s.set_write_timeout(Some(RUN_LIMIT))?;
                    send(&mut s, bytes)
                });
                let (mut r, _) = listener.accept_timeout(Duration::from_secs(10))?;
                r.set_read_timeout(Some(RUN_LIMIT))?;
                let got = receive(&mut r, bytes);
                let seconds = start.elapsed().as_secs_f64();
                let sent = sender
                    .join()
                    .map_err(|_| io::Error::other("the sender thread panicked"))?;
                let got = got?;
                sent?;
                Ok((got, seconds))
            })?
        }
    };
    let offload = net.offload_stats();
    let counters = net.stop();
    Ok(TunSample {
        bytes: got,
        seconds,
        counters: Some(counters),
        offload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_sockets_get_cubic() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: setting a congestion control the host does not allow needs root");
            return;
        }
        // A listener's accepted sockets inherit its setting; a connected one is set
        // directly: both go through kernel_cc.
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind on loopback");
        // Reno first (always built in), so that the change shows on a host whose
        // default is already CUBIC.
        rustix::net::sockopt::set_tcp_congestion(&l, "reno").expect("reno");
        assert_eq!(rustix::net::sockopt::tcp_congestion(&l).unwrap(), "reno");
        kernel_cc(&l);
        let got = rustix::net::sockopt::tcp_congestion(&l).expect("TCP_CONGESTION");
        assert_eq!(got, KERNEL_CC);
        let addr = l.local_addr().unwrap();
        let c = kernel_connect(&addr, Duration::from_secs(5)).expect("connect on loopback");
        let (a, _) = l.accept().unwrap();
        assert_eq!(rustix::net::sockopt::tcp_congestion(&c).unwrap(), KERNEL_CC);
        assert_eq!(rustix::net::sockopt::tcp_congestion(&a).unwrap(), KERNEL_CC);
    }
}
