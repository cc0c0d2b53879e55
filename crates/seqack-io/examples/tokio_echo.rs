//! An echo server on seqack's async sockets (feature `tokio`) over a Linux TUN device:
//! every connection gets a tokio task that copies what it reads back with
//! `tokio::io::copy`, and sends its FIN when the peer has sent its own.
//!
//! ```text
//! tokio_echo <tun-name> <address>/<prefix> <port>
//! ```
//!
//! `<address>` is seqack's own address. If the TUN device does not exist, it is
//! created (that needs root or CAP_NET_ADMIN) and the kernel's side of it gets the
//! first other host address of the prefix (10.0.0.1 for 10.0.0.2/24); a device that
//! exists already (`ip tuntap add`) is attached to and left as configured.
//!
//! Trying it in a network namespace of its own, so that nothing touches the host's
//! interfaces (as root):
//!
//! ```text
//! cargo build -p seqack-io --examples --features tokio
//! ip netns add seqack
//! ip netns exec seqack ip link set lo up
//! # Either let the example create tun0 (the kernel's side gets 10.0.0.1/24) ...
//! ip netns exec seqack target/debug/examples/tokio_echo tun0 10.0.0.2/24 7
//! # ... or make a persistent device first and configure the kernel's side yourself:
//! #   ip netns exec seqack ip tuntap add tun0 mode tun
//! #   ip netns exec seqack ip addr add 10.0.0.1/24 dev tun0
//! #   ip netns exec seqack ip link set tun0 up
//! # Then, in a second terminal, talk to it from the kernel's TCP:
//! ip netns exec seqack nc 10.0.0.2 7
//! # Watch the packets with: ip netns exec seqack tcpdump -ni tun0
//! # Clean up (a created device goes away with the process):
//! ip netns del seqack
//! ```

use seqack_io::device::{default_kernel_addr, parse_cidr, TunDevice, TunOptions};
use seqack_io::net::tokio::TcpListener;
use seqack_io::net::{NetConfig, NetStack};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use tokio::io::AsyncWriteExt;

const USAGE: &str = "\
usage: tokio_echo <tun-name> <address>/<prefix> <port>
  <address>  seqack's own address; a TUN device that does not exist yet is created
             (root or CAP_NET_ADMIN) with the first other host address of the prefix
             on the kernel's side
example: tokio_echo tun0 10.0.0.2/24 7";

struct Args {
    tun: String,
    addr: IpAddr,
    prefix: u8,
    port: u16,
}

fn parse_args() -> Result<Args, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [tun, cidr, port] = args.as_slice() else {
        return Err("expected three arguments".into());
    };
    let (addr, prefix) = parse_cidr(cidr)?;
    let port: u16 = port.parse().map_err(|e| format!("{port}: {e}"))?;
    Ok(Args {
        tun: tun.clone(),
        addr,
        prefix,
        port,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tokio_echo: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let opts = TunOptions::for_address(&args.tun, args.addr, args.prefix);
    let dev = match TunDevice::open(&opts) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("tokio_echo: {e}");
            if e.kind() == io::ErrorKind::PermissionDenied {
                eprintln!("(opening a TUN device needs root or CAP_NET_ADMIN)");
            }
            eprintln!("{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    if dev.created() {
        println!(
            "created {}: kernel side {}/{}, seqack {}",
            args.tun,
            default_kernel_addr(args.addr, args.prefix),
            args.prefix,
            args.addr
        );
    } else {
        println!(
            "attached to {} (left as configured), seqack {}",
            args.tun, args.addr
        );
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokio_echo: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(serve(dev, &args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokio_echo: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(dev: TunDevice, args: &Args) -> io::Result<()> {
    // The stack's driver runs on a thread of its own; the sockets only need wakers,
    // so any runtime (or executor) drives them.
    let net = NetStack::new(dev, NetConfig::new(vec![args.addr]))?;
    let listener = TcpListener::bind(&net, SocketAddr::new(args.addr, args.port))?;
    println!("echo server on {}", listener.local_addr()?);
    loop {
        let (stream, peer) = listener.accept().await?;
        println!("{peer}: connected");
        tokio::spawn(async move {
            let (mut reader, mut writer) = stream.into_split();
            let r = async {
                let n = tokio::io::copy(&mut reader, &mut writer).await?;
                writer.shutdown().await?;
                Ok::<_, io::Error>(n)
            };
            match r.await {
                Ok(n) => println!("{peer}: closed after {n} bytes"),
                Err(e) => println!("{peer}: {e}"),
            }
        });
    }
}
