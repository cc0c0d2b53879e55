//! Two real-time stacks joined back to back by a `PairDevice` (10.9.0.1 and
//! 10.9.0.2), each logging the states its connections enter, with an MSL of 100 ms
//! so that TIME_WAIT ends within a test. Shared by the blocking and tokio socket tests.

#![allow(dead_code)]

use seqack::stack::StackEvent;
use seqack::{Event, State};
use seqack_io::device::PairDevice;
use seqack_io::net::{NetConfig, NetStack};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 9, 0, 1));
pub const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 9, 0, 2));

/// The states one stack's connections entered, in order.
pub type Log = Arc<Mutex<Vec<State>>>;

pub fn pair() -> (NetStack, NetStack, Log, Log) {
    let (da, db) = PairDevice::pair(1500).unwrap();
    let (na, la) = stack(da, A);
    let (nb, lb) = stack(db, B);
    (na, nb, la, lb)
}

fn stack(d: PairDevice, addr: IpAddr) -> (NetStack, Log) {
    let mut cfg = NetConfig::new(vec![addr]);
    cfg.stack.tcp.msl = Duration::from_millis(100);
    let net = NetStack::new(d, cfg).unwrap();
    let log: Log = Arc::default();
    let l2 = log.clone();
    net.on_event(move |_, ev| {
        if let StackEvent::Conn {
            event: Event::StateChange { to, .. },
            ..
        }
        | StackEvent::TimeWait {
            event: Event::StateChange { to, .. },
            ..
        } = *ev
        {
            l2.lock().unwrap().push(to);
        }
    });
    (net, log)
}

/// The first `n` bytes of the pattern `byte i = i mod 251`.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// What a log holds now.
pub fn states(log: &Log) -> Vec<State> {
    log.lock().unwrap().clone()
}
