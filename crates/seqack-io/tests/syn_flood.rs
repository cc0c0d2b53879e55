//! A SYN flood from spoofed sources against a listener with backlog 128, interleaved
//! with legitimate clients, in virtual time: every legitimate client connects and
//! exchanges data through SYN cookies, and the server's state stays bounded.
//! It runs at the full size (1,000,000 SYNs, 1,000 clients: about a second);
//! `SEQACK_FLOOD_SYNS` and `SEQACK_FLOOD_CLIENTS` change it.

use seqack::stack::{ConnId, StackConfig, StackEvent};
use seqack::tcp::{write_packet, RecvError};
use seqack::wire::tcp::{Flags, Header, OptionLayout, Options};
use seqack::wire::Seq;
use seqack::{Duration, Instant, Stack};
use seqack_io::sim::{LinkConfig, World};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn legitimate_clients_connect_through_a_syn_flood() {
    let syns = env("SEQACK_FLOOD_SYNS", 1_000_000);
    let clients = env("SEQACK_FLOOD_CLIENTS", 1_000);
    // Jitter breaks the lockstep of a periodic schedule (where each client's final ACK
    // would free a SYN-queue slot just as its next SYN arrives) so that legitimate SYNs
    // meet a SYN queue the flood keeps full, as on a real network.
    let link = LinkConfig {
        delay: Duration::from_millis(5),
        jitter: Duration::from_millis(3),
        ..LinkConfig::default()
    };
    let mut world = World::new(42, link);
    let server_ip: IpAddr = "10.0.0.2".parse().unwrap();
    let mk = |ip: IpAddr, seed| {
        let mut s = Stack::new(StackConfig {
            seed,
            ..Default::default()
        });
        s.add_address(ip);
        s
    };
    let server = world.add_node("server", mk(server_ip, 2));
    let client = world.add_node("client", mk("10.0.0.1".parse().unwrap(), 1));
    let attacker = world.add_node("attacker", mk("10.9.9.9".parse().unwrap(), 3));
    let listen: SocketAddr = SocketAddr::new(server_ip, 80);
    let l = world
        .with_stack(server, |s, _| s.listen(listen, 128))
        .unwrap();

    // Spread the flood and the clients over 10 s of virtual time, 1 ms apart.
    let ticks = 10_000usize;
    let per_tick = syns.div_ceil(ticks);
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut sent_syns = 0;
    let mut conns: HashMap<ConnId, (Vec<u8>, bool)> = HashMap::new();
    let mut server_conns: HashMap<ConnId, Vec<u8>> = HashMap::new();
    let mut done = 0;
    let mut peak = 0;
    let mut buf = vec![0u8; 100];
    for tick in 0..ticks + 20_000 {
        let now = Instant::from_millis(tick as u64);
        world.step_to(now);
        if tick < ticks {
            for _ in 0..per_tick.min(syns - sent_syns) {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let src = SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::from((rng >> 16) as u32 | 0x0100_0000)),
                    (rng as u16) | 1024,
                );
                world.inject(attacker, syn(src, listen, Seq(rng as u32)));
                sent_syns += 1;
            }
            if tick % (ticks / clients) == 0 && conns.len() < clients {
                let id = world
                    .with_stack(client, |s, now| s.connect(now, None, listen))
                    .unwrap();
                conns.insert(id, (Vec::new(), false));
            }
        }
        // Server application: accept, read the 100-byte request, answer 100 bytes, close.
        while let Some(id) = world.with_stack(server, |s, _| s.accept(l)) {
            server_conns.insert(id, Vec::new());
        }
        let ids: Vec<ConnId> = server_conns.keys().copied().collect();
        for id in ids {
            match world.with_stack(server, |s, now| s.recv(now, id, &mut buf)) {
                Ok(n) if n > 0 => {
                    let got = server_conns.get_mut(&id).unwrap();
                    got.extend_from_slice(&buf[..n]);
                    if got.len() == 100 {
                        world.with_stack(server, |s, now| {
                            s.send(now, id, &[7u8; 100]).unwrap();
                            s.close(now, id);
                        });
                        server_conns.remove(&id);
                    }
                }
                _ => {}
            }
        }
        // Client application: send the request once connected, read the answer.
        while let Some((_, node, ev)) = world.poll_event() {
            if node != client {
                continue;
            }
            if let StackEvent::Conn {
                id,
                event: seqack::Event::Connected,
                ..
            } = ev
            {
                world
                    .with_stack(client, |s, now| s.send(now, id, &[1u8; 100]))
                    .unwrap();
            }
        }
        for (id, (got, finished)) in conns.iter_mut() {
            if *finished {
                continue;
            }
            match world.with_stack(client, |s, now| s.recv(now, *id, &mut buf)) {
                Ok(0) if got.len() == 100 => {
                    world.with_stack(client, |s, now| s.close(now, *id));
                    *finished = true;
                    done += 1;
                }
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(RecvError::WouldBlock) => {}
                Err(RecvError::Failed(e)) => panic!("a legitimate client failed: {e}"),
            }
        }
        world.flush();
        peak = peak.max(world.stack(server).connection_count());
        if tick >= ticks && done == clients {
            break;
        }
    }
    let c = world.stack(server).counters();
    eprintln!(
        "flood: {sent_syns} SYNs, {clients} clients, {done} done; server peak {peak} connections; \
         cookies sent {}, valid {}, failed {}; listen drops {}",
        c.syncookies_sent, c.syncookies_recv, c.syncookies_failed, c.listen_drops
    );

    assert_eq!(sent_syns, syns);
    assert_eq!(
        done, clients,
        "every legitimate client connected and got its answer"
    );
    assert!(c.syncookies_sent > 0, "the flood filled the SYN queue");
    assert!(
        c.syncookies_recv > 0,
        "legitimate clients came in through cookies"
    );
    // State is bounded by the backlog (SYN queue and accept queue) plus the live
    // legitimate connections, whatever the flood's size.
    assert!(peak <= 2 * 128 + clients, "peak {peak} connections");
}

fn syn(src: SocketAddr, dst: SocketAddr, isn: Seq) -> Vec<u8> {
    let hdr = Header {
        src_port: src.port(),
        dst_port: dst.port(),
        seq: isn,
        flags: Flags::SYN,
        window: 64240,
        options: Options {
            mss: Some(1460),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut b = vec![0u8; 80];
    let n = write_packet(&mut b, src, dst, &hdr, OptionLayout::Linux, (&[], &[]), 64).unwrap();
    b.truncate(n);
    b
}
