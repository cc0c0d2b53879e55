//! `churn`: connect, a 1-byte request, a 1-byte response, active close by the client
//! (which keeps its TIME_WAIT), over and over. seqack runs both ends in one thread on
//! the in-memory link with `parallel` connections in flight; Linux runs the same
//! exchange over loopback with std::net, one server thread and `clients` client threads.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use seqack::stack::{ConnId, Stack, StackConfig, StackEvent};
use seqack::{Config, Event, Instant};

use crate::link::{idle, pump, Clock, Queue};

/// What one run measured.
#[derive(Clone, Copy, Debug)]
pub struct ChurnSample {
    /// Connections that completed the whole exchange and close.
    pub conns: u64,
    /// Seconds it took (the thread's CPU time for seqack, wall clock for Linux).
    pub seconds: f64,
    /// TIME_WAIT records the client held at the end (seqack only).
    pub time_wait: usize,
}

impl ChurnSample {
    /// Connections per second.
    pub fn rate(&self) -> f64 {
        self.conns as f64 / self.seconds
    }
}

const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80);
/// Client addresses: each gives 28,232 ephemeral ports towards the server, and every
/// port used stays in TIME_WAIT for the rest of the run.
const CLIENT_ADDRS: u8 = 128;

fn client_addr(i: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 1, (i % u64::from(CLIENT_ADDRS)) as u8, 1))
}

/// seqack on both ends.
pub fn seqack(conns: u64, parallel: usize) -> ChurnSample {
    // No state log: the application here reads no state changes, and Linux's
    // tcp_set_state tracepoint, its equivalent, is off by default too.
    let tcp = Config {
        state_events: false,
        ..Config::default()
    };
    let cfg = StackConfig {
        tcp,
        seed: 7,
        // Every TIME_WAIT is kept (Linux would start dropping them at 262,144).
        max_tw_buckets: usize::MAX,
        ..StackConfig::default()
    };
    let mut client = Stack::new(StackConfig {
        seed: 8,
        ..cfg.clone()
    });
    for i in 0..u64::from(CLIENT_ADDRS) {
        client.add_address(client_addr(i));
    }
    let mut server = Stack::new(cfg);
    server.add_address(SERVER.ip());
    let listener = server.listen(SERVER, 4096).expect("listen");
    let mut ab = Queue::new(1500);
    let mut ba = Queue::new(1500);
    let mut clock = Clock::new();
    let cpu0 = crate::cpu_time();
    let (mut started, mut done, mut inflight) = (0u64, 0u64, 0usize);
    let mut byte = [0u8; 16];
    let mut accepted: Vec<ConnId> = Vec::new();
    let mut guard = 0u64;
    while done < conns {
        guard += 1;
        assert!(guard < conns * 1000 + 1_000_000, "churn made no progress");
        let now = Instant::from_micros(clock.now_us());
        while inflight < parallel && started < conns {
            let local = SocketAddr::new(client_addr(started), 0);
            client
                .connect(now, Some(local), SERVER)
                .expect("an ephemeral port");
            started += 1;
            inflight += 1;
        }
        let mut moved = pump(now, &mut client, &mut server, &mut ab);
        while let Some(e) = server.poll_event() {
            match e {
                StackEvent::Incoming(l) => {
                    while let Some(id) = server.accept(l) {
                        accepted.push(id);
                    }
                }
                StackEvent::Conn { id, event, .. } => match event {
                    Event::Readable => accepted.push(id),
                    Event::Closed => {
                        done += 1;
                        inflight -= 1;
                    }
                    Event::Error(e) => panic!("server connection failed: {e:?}"),
                    _ => {}
                },
                _ => {}
            }
        }
        for id in accepted.drain(..) {
            match server.recv(now, id, &mut byte) {
                Ok(0) => server.close(now, id),
                Ok(_) => {
                    server.send(now, id, b"r").expect("room for one byte");
                }
                Err(_) => {}
            }
        }
        moved |= pump(now, &mut server, &mut client, &mut ba);
        while let Some(e) = client.poll_event() {
            if let StackEvent::Conn { id, event, .. } = e {
                match event {
                    Event::Connected => {
                        client.send(now, id, b"q").expect("room for one byte");
                    }
                    Event::Readable => {
                        if let Ok(1) = client.recv(now, id, &mut byte) {
                            client.close(now, id);
                        }
                    }
                    Event::Error(e) => panic!("client connection failed: {e:?}"),
                    _ => {}
                }
            }
        }
        if !moved {
            idle(&mut clock, &mut client, &mut server);
        }
    }
    let _ = listener;
    ChurnSample {
        conns: done,
        seconds: crate::cpu_time() - cpu0,
        time_wait: client.time_wait().len(),
    }
}

/// Linux over loopback: one server thread, `clients` client threads, `conns`
/// connections in all.
pub fn linux(conns: u64, clients: usize) -> std::io::Result<ChurnSample> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        let mut b = [0u8; 16];
        for _ in 0..conns {
            let (mut s, _) = listener.accept()?;
            s.read_exact(&mut b[..1])?;
            s.write_all(b"r")?;
            // Wait for the client's FIN, then close: the client closed first.
            while s.read(&mut b)? > 0 {}
        }
        Ok(())
    });
    let start = std::time::Instant::now();
    let per = conns / clients as u64;
    let extra = conns % clients as u64;
    let threads: Vec<_> = (0..clients as u64)
        .map(|t| {
            let n = per + u64::from(t < extra);
            std::thread::spawn(move || -> std::io::Result<()> {
                let mut b = [0u8; 1];
                for _ in 0..n {
                    let mut s = std::net::TcpStream::connect(addr)?;
                    s.set_nodelay(true)?;
                    s.write_all(b"q")?;
                    s.read_exact(&mut b)?;
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread")?;
    }
    server.join().expect("server thread")?;
    Ok(ChurnSample {
        conns,
        seconds: start.elapsed().as_secs_f64(),
        time_wait: 0,
    })
}
