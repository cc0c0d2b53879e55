//! The blocking socket API in real time: two stacks in one process joined by a
//! `PairDevice` (a Unix datagram socket pair), no privileges needed.

#[path = "common/pair.rs"]
mod pair;

use pair::*;
use seqack::State;
use seqack_io::net::{TcpListener, TcpStream};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::thread;
use std::time::Duration;

#[test]
fn transfer_both_ways_and_four_way_close() {
    let (na, nb, la, lb) = pair();
    let server = TcpListener::bind(&nb, SocketAddr::new(B, 7)).unwrap();
    let srv = thread::spawn(move || {
        let (mut s, peer) = server.accept().unwrap();
        assert_eq!(peer.ip(), A);
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        s.write_all(&got).unwrap();
        drop(s); // passive close: FIN after the echoed data
        got.len()
    });
    let mut c = TcpStream::connect(&na, SocketAddr::new(B, 7)).unwrap();
    assert_eq!(c.state(), State::Established);
    let data = pattern(3_000_000);
    let mut w = c.try_clone().unwrap();
    let d2 = data.clone();
    let writer = thread::spawn(move || {
        w.write_all(&d2).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    assert_eq!(srv.join().unwrap(), data.len());
    assert!(back == data, "echoed data differs");
    drop(c);
    assert!(
        na.wait_idle(Duration::from_secs(5)),
        "client never reached CLOSED"
    );
    assert!(
        nb.wait_idle(Duration::from_secs(5)),
        "server never reached CLOSED"
    );
    use State::*;
    assert_eq!(
        states(&la),
        [SynSent, Established, FinWait1, FinWait2, TimeWait, Closed]
    );
    assert_eq!(
        states(&lb),
        [SynReceived, Established, CloseWait, LastAck, Closed]
    );
}

#[test]
fn refused_and_reset_map_to_std_error_kinds() {
    let (na, nb, _, _) = pair();
    let e = TcpStream::connect(&na, SocketAddr::new(B, 9)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);

    let server = TcpListener::bind(&nb, SocketAddr::new(B, 9)).unwrap();
    let c = TcpStream::connect(&na, SocketAddr::new(B, 9)).unwrap();
    let (s, _) = server.accept().unwrap();
    s.set_linger(Some(Duration::ZERO)).unwrap();
    drop(s); // RST
    let mut buf = [0u8; 16];
    let e = (&c).read(&mut buf).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionReset);
}

#[test]
fn read_returns_zero_at_fin_and_write_after_shutdown_is_broken_pipe() {
    let (na, nb, _, _) = pair();
    let server = TcpListener::bind(&nb, SocketAddr::new(B, 80)).unwrap();
    let mut c = TcpStream::connect(&na, SocketAddr::new(B, 80)).unwrap();
    let (mut s, _) = server.accept().unwrap();
    c.write_all(b"hello").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(c.write(b"x").unwrap_err().kind(), ErrorKind::BrokenPipe);
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"hello");
    // Half-close: the server still sends after the client's FIN.
    s.write_all(b"after your FIN").unwrap();
    drop(s);
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    assert_eq!(back, b"after your FIN");
}

#[test]
fn timeouts_and_nonblocking_mode() {
    let (na, nb, _, _) = pair();
    let server = TcpListener::bind(&nb, SocketAddr::new(B, 81)).unwrap();
    let e = server
        .accept_timeout(Duration::from_millis(50))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    let c = TcpStream::connect(&na, SocketAddr::new(B, 81)).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(
        (&c).read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    c.set_nonblocking(true).unwrap();
    assert_eq!(
        (&c).read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    c.set_nodelay(true).unwrap();
    assert!(c.nodelay().unwrap());
    assert_eq!(c.peer_addr().unwrap(), SocketAddr::new(B, 81));
    assert_eq!(c.local_addr().unwrap().ip(), A);
}
