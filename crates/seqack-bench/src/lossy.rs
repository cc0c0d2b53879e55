//! `lossy`: one bulk connection across a simulated bottleneck in virtual time: 100
//! Mbit/s, 40 ms round trip, a drop-tail queue of one bandwidth-delay product, random
//! loss on the data path. seqack and smoltcp run on the same link model; the figure is
//! goodput (bytes the receiving application read) as a fraction of the bottleneck rate.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seqack::stack::{Stack, StackConfig};
use seqack::{Config, Instant};

use crate::link::{Packet, Queue};

/// The link and the run.
#[derive(Clone, Copy, Debug)]
pub struct LossyConfig {
    /// Bottleneck rate, bit/s.
    pub rate_bps: u64,
    /// Round-trip propagation delay, µs (half each way).
    pub rtt_us: u64,
    /// Probability that a data-path packet is lost.
    pub loss: f64,
    /// Virtual seconds the transfer runs.
    pub seconds: u64,
    /// Socket buffers on both ends.
    pub buffer: usize,
    /// Seed of the loss pattern.
    pub seed: u64,
}

impl LossyConfig {
    /// The link: 100 Mbit/s, 40 ms, `loss`, 30 s, 4 MiB buffers.
    pub fn standard(loss: f64, seed: u64) -> LossyConfig {
        LossyConfig {
            rate_bps: 100_000_000,
            rtt_us: 40_000,
            loss,
            seconds: 30,
            buffer: 4 << 20,
            seed,
        }
    }

    fn bdp_bytes(&self) -> usize {
        (self.rate_bps as u128 * self.rtt_us as u128 / 8 / 1_000_000) as usize
    }
}

/// What one run measured.
#[derive(Clone, Copy, Debug)]
pub struct LossySample {
    /// Bytes the receiving application read.
    pub bytes: u64,
    /// Goodput as a fraction of the bottleneck rate.
    pub fraction: f64,
    /// Packets the link dropped at random.
    pub lost: u64,
    /// Packets the full queue dropped.
    pub overflow: u64,
}

/// One direction: a serialising bottleneck (or none), propagation delay, random loss.
struct Path {
    inflight: VecDeque<(u64, Packet)>,
    rate_bps: Option<u64>,
    delay_us: u64,
    loss: f64,
    queue_limit: usize,
    /// When the bottleneck finishes sending what it holds (µs, fractional).
    busy_until: f64,
    rng: ChaCha8Rng,
    lost: u64,
    overflow: u64,
}

impl Path {
    fn send(&mut self, now: u64, pkt: Packet, spare: &mut Queue) {
        if self.loss > 0.0 && (self.rng.next_u64() as f64 / u64::MAX as f64) < self.loss {
            self.lost += 1;
            spare.recycle(pkt);
            return;
        }
        let t = now as f64;
        let depart = match self.rate_bps {
            Some(rate) => {
                let start = self.busy_until.max(t);
                let backlog = ((start - t) * rate as f64 / 8e6) as usize;
                if backlog + pkt.len() > self.queue_limit {
                    self.overflow += 1;
                    spare.recycle(pkt);
                    return;
                }
                self.busy_until = start + pkt.len() as f64 * 8e6 / rate as f64;
                self.busy_until
            }
            None => t,
        };
        self.inflight
            .push_back((depart.ceil() as u64 + self.delay_us, pkt));
    }

    fn next(&self) -> Option<u64> {
        self.inflight.front().map(|p| p.0)
    }

    fn deliver(&mut self, now: u64, into: &mut Queue) {
        while let Some((t, _)) = self.inflight.front() {
            if *t > now {
                break;
            }
            let (_, p) = self.inflight.pop_front().expect("front exists");
            into.push_packet(p);
        }
    }
}

fn paths(cfg: &LossyConfig) -> (Path, Path) {
    let fwd = Path {
        inflight: VecDeque::new(),
        rate_bps: Some(cfg.rate_bps),
        delay_us: cfg.rtt_us / 2,
        loss: cfg.loss,
        queue_limit: cfg.bdp_bytes(),
        busy_until: 0.0,
        rng: ChaCha8Rng::seed_from_u64(cfg.seed),
        lost: 0,
        overflow: 0,
    };
    let rev = Path {
        inflight: VecDeque::new(),
        rate_bps: None,
        delay_us: cfg.rtt_us / 2,
        loss: 0.0,
        queue_limit: usize::MAX,
        busy_until: 0.0,
        rng: ChaCha8Rng::seed_from_u64(cfg.seed ^ 1),
        lost: 0,
        overflow: 0,
    };
    (fwd, rev)
}

const MTU: usize = 1500;
const CHUNK: usize = 64 * 1024;

fn sample(cfg: &LossyConfig, bytes: u64, fwd: &Path) -> LossySample {
    LossySample {
        bytes,
        fraction: bytes as f64 * 8.0 / (cfg.seconds as f64 * cfg.rate_bps as f64),
        lost: fwd.lost,
        overflow: fwd.overflow,
    }
}

/// seqack to seqack.
pub fn seqack(cfg: &LossyConfig) -> LossySample {
    let stack = |ip: Ipv4Addr, seed: u64| {
        let mut s = Stack::new(StackConfig {
            tcp: Config {
                send_buffer: cfg.buffer,
                recv_buffer: cfg.buffer,
                ..Config::default()
            },
            seed,
            ..StackConfig::default()
        });
        s.add_address(IpAddr::V4(ip));
        s
    };
    let mut a = stack(Ipv4Addr::new(10, 0, 0, 1), 1);
    let mut b = stack(Ipv4Addr::new(10, 0, 0, 2), 2);
    let (mut fwd, mut rev) = paths(cfg);
    let (mut qa, mut qb) = (Queue::new(MTU), Queue::new(MTU));
    let data: Vec<u8> = (0..CHUNK).map(|i| (i % 251) as u8).collect();
    let mut sink = vec![0u8; CHUNK];
    let server = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 5001);
    let l = b.listen(server, 4).expect("listen");
    let c = a.connect(Instant::ZERO, None, server).expect("connect");
    let mut s = None;
    let end = cfg.seconds * 1_000_000;
    let (mut now, mut got, mut off) = (0u64, 0u64, 0usize);
    while now < end {
        let t = Instant::from_micros(now);
        fwd.deliver(now, &mut qb);
        rev.deliver(now, &mut qa);
        while let Some(p) = qb.pop() {
            b.handle_packet(t, &p);
            qb.recycle(p);
        }
        while let Some(p) = qa.pop() {
            a.handle_packet(t, &p);
            qa.recycle(p);
        }
        a.handle_timeout(t);
        b.handle_timeout(t);
        while let Ok(n) = a.send(t, c, &data[off..]) {
            if n == 0 {
                break;
            }
            off = (off + n) % CHUNK;
        }
        if s.is_none() {
            s = b.accept(l);
        }
        if let Some(s) = s {
            while let Ok(n) = b.recv(t, s, &mut sink) {
                if n == 0 {
                    break;
                }
                got += n as u64;
            }
        }
        for (stack, path, q) in [(&mut a, &mut fwd, &mut qa), (&mut b, &mut rev, &mut qb)] {
            loop {
                let mut buf = q.buffer();
                match stack.poll_transmit(t, &mut buf) {
                    Some(n) => path.send(now, Packet::new(buf, n), q),
                    None => {
                        q.give_back(buf);
                        break;
                    }
                }
            }
        }
        while a.poll_event().is_some() {}
        while b.poll_event().is_some() {}
        let next = [
            fwd.next(),
            rev.next(),
            a.poll_timeout().map(|d| d.total_micros()),
            b.poll_timeout().map(|d| d.total_micros()),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(end);
        now = next.max(now + 1).min(end);
    }
    sample(cfg, got, &fwd)
}

/// smoltcp to smoltcp (CUBIC, its best congestion control).
pub fn smoltcp(cfg: &LossyConfig) -> LossySample {
    use smoltcp::socket::tcp;
    let mut pair = crate::smol::Pair::separate(MTU, cfg.buffer);
    let (mut fwd, mut rev) = paths(cfg);
    let data: Vec<u8> = (0..CHUNK).map(|i| (i % 251) as u8).collect();
    let server = pair.server_socket();
    let client = pair.client_socket();
    for (h, on_a) in [(client, true), (server, false)] {
        let s = if on_a {
            pair.a_socket::<tcp::Socket>(h)
        } else {
            pair.b_socket::<tcp::Socket>(h)
        };
        s.set_congestion_control(tcp::CongestionControl::Cubic);
    }
    pair.listen(server, 5001);
    pair.connect(client, Ipv4Addr::new(10, 0, 0, 2), 5001, 49152);
    let end = cfg.seconds * 1_000_000;
    let (mut now, mut got, mut off) = (0u64, 0u64, 0usize);
    let mut spare = Queue::new(MTU);
    let mut sink = vec![0u8; CHUNK];
    while now < end {
        fwd.deliver(now, &mut pair.b.dev.rx.borrow_mut());
        rev.deliver(now, &mut pair.a.dev.rx.borrow_mut());
        pair.a.poll(now);
        pair.b.poll(now);
        {
            let s = pair.a_socket::<tcp::Socket>(client);
            while s.can_send() {
                let n = s.send_slice(&data[off..]).expect("smoltcp send");
                if n == 0 {
                    break;
                }
                off = (off + n) % CHUNK;
            }
        }
        {
            let s = pair.b_socket::<tcp::Socket>(server);
            while s.can_recv() {
                got += s.recv_slice(&mut sink).expect("smoltcp recv") as u64;
            }
        }
        pair.a.poll(now);
        pair.b.poll(now);
        // What the hosts sent goes onto the paths.
        while let Some(p) = pair.a.dev.tx.borrow_mut().pop() {
            fwd.send(now, p, &mut spare);
        }
        while let Some(p) = pair.b.dev.tx.borrow_mut().pop() {
            rev.send(now, p, &mut spare);
        }
        let next = [
            fwd.next(),
            rev.next(),
            pair.a.deadline(now),
            pair.b.deadline(now),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(end);
        now = next.max(now + 1).min(end);
    }
    sample(cfg, got, &fwd)
}
