//! `bulk-1500` and `bulk-64k`: one connection moving a fixed number of bytes one way on
//! the in-memory link, checksums computed on send and verified on receipt, the same
//! buffer sizes on both ends; seqack, smoltcp, and Linux over loopback.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use seqack::stack::{Stack, StackConfig, StackEvent};
use seqack::{Config, Instant};

use crate::link::{idle, pump, Clock, Queue};

/// One bulk workload.
#[derive(Clone, Copy, Debug)]
pub struct BulkConfig {
    /// Link MTU.
    pub mtu: u16,
    /// Bytes moved.
    pub bytes: u64,
    /// Send and receive buffer of each socket.
    pub buffer: usize,
}

/// What one run measured.
#[derive(Clone, Copy, Debug)]
pub struct BulkSample {
    /// Payload bytes the receiving application read.
    pub bytes: u64,
    /// Wall-clock seconds from the first connect to the last byte read.
    pub seconds: f64,
}

impl BulkSample {
    /// Goodput in Gbit/s.
    pub fn gbps(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.seconds / 1e9
    }
}

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const PORT: u16 = 5001;
const CHUNK: usize = 64 * 1024;

fn chunk() -> Vec<u8> {
    (0..CHUNK).map(|i| (i % 251) as u8).collect()
}

fn seqack_stack(addr: Ipv4Addr, cfg: &BulkConfig, seed: u64) -> Stack {
    let tcp = Config {
        mtu: cfg.mtu,
        send_buffer: cfg.buffer,
        recv_buffer: cfg.buffer,
        ..Config::default()
    };
    let mut s = Stack::new(StackConfig {
        tcp,
        seed,
        ..StackConfig::default()
    });
    s.add_address(IpAddr::V4(addr));
    s
}

/// seqack to seqack.
pub fn seqack(cfg: &BulkConfig) -> BulkSample {
    let mut a = seqack_stack(CLIENT, cfg, 1);
    let mut b = seqack_stack(SERVER, cfg, 2);
    let mut ab = Queue::new(usize::from(cfg.mtu));
    let mut ba = Queue::new(usize::from(cfg.mtu));
    let data = chunk();
    let mut sink = vec![0u8; CHUNK];
    let mut clock = Clock::new();
    let t = |c: &Clock| Instant::from_micros(c.now_us());
    let server = SocketAddr::new(IpAddr::V4(SERVER), PORT);
    let l = b.listen(server, 16).expect("listen");
    let c = a.connect(t(&clock), None, server).expect("connect");
    let mut s = None;
    let (mut sent, mut got) = (0u64, 0u64);
    let mut sent_off = 0usize;
    while got < cfg.bytes {
        let now = t(&clock);
        let mut progress = false;
        while sent < cfg.bytes {
            let want = (CHUNK - sent_off).min((cfg.bytes - sent) as usize);
            match a.send(now, c, &data[sent_off..sent_off + want]) {
                Ok(n) if n > 0 => {
                    sent += n as u64;
                    sent_off = (sent_off + n) % CHUNK;
                    progress = true;
                }
                _ => break,
            }
        }
        progress |= pump(now, &mut a, &mut b, &mut ab);
        if s.is_none() {
            s = b.accept(l);
        }
        if let Some(s) = s {
            while let Ok(n) = b.recv(now, s, &mut sink) {
                if n == 0 {
                    break;
                }
                got += n as u64;
                progress = true;
            }
        }
        progress |= pump(now, &mut b, &mut a, &mut ba);
        while let Some(e) = a.poll_event() {
            fail_on_error(e);
        }
        while let Some(e) = b.poll_event() {
            fail_on_error(e);
        }
        if !progress {
            idle(&mut clock, &mut a, &mut b);
        }
    }
    BulkSample {
        bytes: got,
        seconds: clock.elapsed_secs(),
    }
}

fn fail_on_error(e: StackEvent) {
    if let StackEvent::Conn {
        event: seqack::Event::Error(err),
        ..
    } = e
    {
        panic!("bulk transfer failed: {err:?}");
    }
}

/// smoltcp to smoltcp, on the same link model.
pub fn smoltcp(cfg: &BulkConfig) -> BulkSample {
    use smoltcp::socket::tcp;
    let mut pair = crate::smol::Pair::new(usize::from(cfg.mtu), cfg.buffer);
    let data = chunk();
    let mut sink = vec![0u8; CHUNK];
    let mut clock = Clock::new();
    let server = pair.server_socket();
    let client = pair.client_socket();
    pair.listen(server, PORT);
    pair.connect(client, SERVER, PORT, 49152);
    let (mut sent, mut got) = (0u64, 0u64);
    let mut sent_off = 0usize;
    while got < cfg.bytes {
        let now = clock.now_us();
        let mut progress = pair.poll(now);
        {
            let s = pair.a_socket::<tcp::Socket>(client);
            while sent < cfg.bytes && s.can_send() {
                let want = (CHUNK - sent_off).min((cfg.bytes - sent) as usize);
                let n = s
                    .send_slice(&data[sent_off..sent_off + want])
                    .expect("smoltcp send");
                if n == 0 {
                    break;
                }
                sent += n as u64;
                sent_off = (sent_off + n) % CHUNK;
                progress = true;
            }
        }
        {
            // Copied out, as seqack's receiver copies out: recv_slice, not the
            // zero-copy recv closure.
            let s = pair.b_socket::<tcp::Socket>(server);
            while s.can_recv() {
                let n = s.recv_slice(&mut sink).expect("smoltcp recv");
                got += n as u64;
                progress = true;
            }
        }
        if !progress && !pair.poll(now) {
            if let Some(d) = pair.next_deadline(now) {
                clock.jump_to(d);
            }
        }
    }
    BulkSample {
        bytes: got,
        seconds: clock.elapsed_secs(),
    }
}

/// Linux to Linux over loopback with std::net, sender and receiver on two threads. The
/// kernel keeps its own buffer autotuning (setting SO_RCVBUF would switch it off and
/// slow Linux down), so this is Linux at its best on `lo` (MTU 65536).
pub fn linux(cfg: &BulkConfig) -> std::io::Result<BulkSample> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let bytes = cfg.bytes;
    let start = std::time::Instant::now();
    let sender = std::thread::spawn(move || -> std::io::Result<()> {
        let mut s = std::net::TcpStream::connect(addr)?;
        let data = chunk();
        let mut left = bytes;
        while left > 0 {
            let n = (left as usize).min(CHUNK);
            s.write_all(&data[..n])?;
            left -= n as u64;
        }
        Ok(())
    });
    let (mut r, _) = listener.accept()?;
    let mut sink = vec![0u8; CHUNK];
    let mut got = 0u64;
    while got < bytes {
        let n = r.read(&mut sink)?;
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    let seconds = start.elapsed().as_secs_f64();
    sender.join().expect("sender thread")?;
    Ok(BulkSample {
        bytes: got,
        seconds,
    })
}
