//! What `seqack serve` and `seqack connect` share: opening the TUN device and the stack
//! on it, the state log, the pcap tap, the data pattern and byte counts.

use crate::demo::StateLogLine;
use seqack::stack::StackEvent;
use seqack::tcp::Event;
use seqack::{Duration, Reason, State};
use seqack_io::device::{default_kernel_addr, parse_cidr, TunDevice, TunOptions};
use seqack_io::net::{NetConfig, NetStack};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Options both commands take.
#[derive(clap::Args, Debug, Clone)]
pub struct NetArgs {
    /// The TUN device to run on. An existing device (`ip tuntap add DEV mode tun`) is
    /// attached to and left as configured, only brought up; a missing one is created,
    /// brought up and given the kernel-side address (see --kernel-addr), and disappears
    /// when seqack exits.
    #[arg(long, value_name = "DEV")]
    pub tun: String,
    /// seqack's own address on the device, with the prefix of the link (default /24
    /// for IPv4, /64 for IPv6). The kernel's side of the device must have another
    /// address in that prefix.
    #[arg(long, value_name = "IP[/PREFIX]", value_parser = parse_cidr)]
    pub addr: (IpAddr, u8),
    /// When seqack creates the device: the kernel's address on it. Default: the first
    /// host address of --addr's prefix that is not seqack's own.
    #[arg(long, value_name = "IP")]
    pub kernel_addr: Option<IpAddr>,
    /// Write every packet sent and received to this pcap file (raw IP; timestamps from
    /// the driver's clock, as wall-clock time). tcpdump, tshark, Wireshark and
    /// `seqack trace` read it.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Write one JSON object per state change to this file, the same lines as
    /// `seqack demo --state-log`: t_us (real microseconds since start), side, local,
    /// remote, from, to, why.
    #[arg(long, value_name = "FILE")]
    pub state_log: Option<PathBuf>,
    /// Maximum segment lifetime in seconds: TIME_WAIT lasts 2*MSL (default 30, as
    /// Linux's 60 s TIME_WAIT).
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = parse_secs)]
    pub msl: f64,
    /// Fault injection for tests: hold every packet from the device this many
    /// milliseconds before the stack sees it, like a link with that one-way delay
    /// towards seqack (for kernels without `tc netem`).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub rx_delay: u64,
    /// Fault injection for tests: drop each packet from the device with this
    /// probability (0.0 to 1.0) before the stack sees it, like a lossy link towards
    /// seqack whose loss the sender cannot see.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    pub rx_loss: f64,
    /// TUN offload: open the device with a virtio-net header (IFF_VNET_HDR) and turn
    /// on TSO and checksum offload, so that one read brings a TCP super-packet of up
    /// to 64 KiB from the kernel and one write takes the segments seqack sends in a
    /// burst, coalesced, to it. The pcap file then shows received super-packets as
    /// they arrived (checksum completed) and sent segments one by one.
    #[arg(long)]
    pub tun_offload: bool,
}

fn parse_probability(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("'{s}' is not a probability (0.0 to 1.0)")),
    }
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=86_400.0).contains(&v) => Ok(v),
        _ => Err(format!("'{s}' is not a number of seconds (0 to 86400)")),
    }
}

/// Parses a byte count: digits with an optional suffix K, M, G (powers of 1024; KiB,
/// MiB, GiB too) or KB, MB, GB (powers of 1000).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a byte count (like 1000, 64K, 100MB)"))?;
    let mult: u64 = match suffix.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KIB" => 1 << 10,
        "M" | "MIB" => 1 << 20,
        "G" | "GIB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => {
            return Err(format!(
                "'{s}': unknown unit '{suffix}' (K, M, G, KB, MB, GB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("'{s}' is too large"))
}

/// Byte `i` of the deterministic data pattern: `i mod 251` (a prime, so the pattern
/// does not line up with segment or buffer sizes). In Python:
/// `bytes(i % 251 for i in range(n))`.
pub fn pattern_byte(i: u64) -> u8 {
    (i % 251) as u8
}

/// Fills `buf` with the pattern from stream offset `offset`.
pub fn fill_pattern(offset: u64, buf: &mut [u8]) {
    for (k, b) in buf.iter_mut().enumerate() {
        *b = pattern_byte(offset + k as u64);
    }
}

/// Writes `n` bytes of the pattern.
pub fn send_pattern(w: &mut impl Write, n: u64) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut off = 0u64;
    while off < n {
        let k = (n - off).min(buf.len() as u64) as usize;
        fill_pattern(off, &mut buf[..k]);
        w.write_all(&buf[..k])?;
        off += k as u64;
    }
    Ok(())
}

/// One state change of a connection or listener, as recorded for the exit check.
#[derive(Clone, Debug)]
pub struct Change {
    /// Local address.
    pub local: SocketAddr,
    /// Remote address (unspecified for a listener).
    pub remote: SocketAddr,
    /// State before.
    pub from: State,
    /// State after.
    pub to: State,
    /// Why.
    pub why: Reason,
}

/// The stack on the device, the state changes seen so far, and the TUN device's name.
pub struct Running {
    /// The stack.
    pub net: NetStack,
    /// Every state change so far.
    pub changes: Arc<Mutex<Vec<Change>>>,
}

/// Opens the device and starts the stack on it with the state log and pcap tap the
/// options ask for. `side` is the state log's `side` field.
pub fn start(a: &NetArgs, side: &'static str) -> Result<Running, String> {
    let (addr, prefix) = a.addr;
    let kernel_addr = a
        .kernel_addr
        .unwrap_or_else(|| default_kernel_addr(addr, prefix));
    if kernel_addr.is_ipv4() != addr.is_ipv4() {
        return Err("--kernel-addr and --addr must be of the same IP version".into());
    }
    let dev = TunDevice::open(&TunOptions {
        name: a.tun.clone(),
        kernel_addr: Some((kernel_addr, prefix)),
        mtu: 1500,
        offload: a.tun_offload,
    })
    .map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
            " (TUN devices need root or CAP_NET_ADMIN)"
        } else {
            ""
        };
        format!("{e}{hint}")
    })?;
    if dev.created() {
        eprintln!(
            "seqack: created TUN device {} (kernel side {kernel_addr}/{prefix}, seqack {addr})",
            dev.name()
        );
    }
    let mut cfg = NetConfig::new(vec![addr]);
    cfg.stack.tcp.msl = Duration::from_secs_f64(a.msl);
    cfg.rx_delay = Duration::from_millis(a.rx_delay);
    cfg.rx_loss = a.rx_loss;
    cfg.stack.tcp.mtu = u16::try_from(seqack_io::device::Device::mtu(&dev)).unwrap_or(u16::MAX);
    if let Some(p) = &a.pcap {
        // Given before the driver starts, so that the capture holds every packet the
        // stack saw (and counted), the first ones included.
        let f = File::create(p).map_err(|e| format!("{}: {e}", p.display()))?;
        cfg.pcap = Some(Box::new(BufWriter::new(f)));
    }
    let net = NetStack::new(dev, cfg).map_err(|e| format!("starting the stack: {e}"))?;
    let mut log = match &a.state_log {
        Some(p) => Some(File::create(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => None,
    };
    let changes: Arc<Mutex<Vec<Change>>> = Arc::default();
    let c2 = changes.clone();
    net.on_event(move |now, ev| {
        let Some((local, remote, from, to, why)) = state_change(ev) else {
            return;
        };
        if let Some(f) = log.as_mut() {
            let line = StateLogLine {
                t_us: now.total_micros(),
                side,
                local: local.to_string(),
                remote: remote.to_string(),
                from: from.name(),
                to: to.name(),
                why: why.as_str(),
            };
            // One write per line, unbuffered: the log is whole even if seqack is killed.
            if let Ok(j) = serde_json::to_string(&line) {
                let _ = writeln!(f, "{j}");
            }
        }
        let mut c = c2.lock().unwrap_or_else(|e| e.into_inner());
        c.push(Change {
            local,
            remote,
            from,
            to,
            why,
        });
    });
    Ok(Running { net, changes })
}

fn state_change(ev: &StackEvent) -> Option<(SocketAddr, SocketAddr, State, State, Reason)> {
    let (local, remote, event) = match *ev {
        StackEvent::Listener { local, event, .. } => {
            let any = match local.ip() {
                IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            };
            (local, SocketAddr::new(any, 0), event)
        }
        _ => ev.conn_event()?,
    };
    match event {
        Event::StateChange { from, to, why } => Some((local, remote, from, to, why)),
        _ => None,
    }
}

/// Every nstat counter of the stack as one flat JSON object.
pub fn counters_json(net: &NetStack) -> String {
    let c = net.counters();
    let map: serde_json::Map<String, serde_json::Value> = c
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(v)))
        .collect();
    serde_json::Value::Object(map).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts() {
        assert_eq!(parse_bytes("1000"), Ok(1000));
        assert_eq!(parse_bytes("64K"), Ok(65536));
        assert_eq!(parse_bytes("100MB"), Ok(100_000_000));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert!(parse_bytes("12Q").is_err());
        assert!(parse_bytes("").is_err());
        assert!(parse_bytes("99999999999999999999G").is_err());
    }

    #[test]
    fn pattern_is_mod_251() {
        let mut b = [0u8; 4];
        fill_pattern(249, &mut b);
        assert_eq!(b, [249, 250, 0, 1]);
    }
}
