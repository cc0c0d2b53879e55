//! The async socket API (feature `tokio`) in real time: two stacks in one process
//! joined by a `PairDevice`, driven by tokio tasks. Without the feature this file is
//! empty; run it with `cargo test -p seqack-io --features tokio --test net_tokio`.

#![cfg(feature = "tokio")]

#[path = "common/pair.rs"]
mod pair;

use pair::*;
use seqack::State;
use seqack_io::net;
use seqack_io::net::tokio::{TcpListener, TcpStream};
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;
use tokio::time::timeout;

/// How long any one step may take before the test fails instead of hanging.
const STEP: Duration = Duration::from_secs(20);

fn multi_thread() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// An echo server (`tokio::io::copy` on `into_split` halves) and a client that sends
/// 2 MB through `tokio::io::split` halves, reads the echo to the end, and checks it;
/// then both ends must reach CLOSED through the four-way close.
fn echo_2mb(rt: Runtime) {
    let (na, nb, la, lb) = pair();
    let data = pattern(2_000_000);
    let listener = TcpListener::bind(&nb, SocketAddr::new(B, 7)).unwrap();
    let connect = TcpStream::connect(&na, SocketAddr::new(B, 7));
    let back = rt.block_on(async {
        let server = tokio::spawn(async move {
            let (s, peer) = listener.accept().await?;
            assert_eq!(peer.ip(), A);
            assert_eq!(s.state(), State::Established);
            let (mut r, mut w) = s.into_split();
            let n = tokio::io::copy(&mut r, &mut w).await?;
            w.shutdown().await?;
            Ok::<_, std::io::Error>(n)
        });
        let c = timeout(STEP, connect).await.unwrap().unwrap();
        assert_eq!(c.state(), State::Established);
        assert_eq!(c.peer_addr().unwrap(), SocketAddr::new(B, 7));
        assert_eq!(c.local_addr().unwrap().ip(), A);
        let (mut r, mut w) = tokio::io::split(c);
        let d2 = data.clone();
        let writer = tokio::spawn(async move {
            w.write_all(&d2).await?;
            w.shutdown().await?;
            Ok::<_, std::io::Error>(w)
        });
        let mut back = Vec::new();
        timeout(STEP, r.read_to_end(&mut back))
            .await
            .unwrap()
            .unwrap();
        let w = writer.await.unwrap().unwrap();
        let n = timeout(STEP, server).await.unwrap().unwrap().unwrap();
        assert_eq!(n, data.len() as u64);
        drop(r.unsplit(w)); // the client's close after both FINs
        back
    });
    assert!(back == data, "echoed data differs");
    drop(rt);
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
        *la.lock().unwrap(),
        [SynSent, Established, FinWait1, FinWait2, TimeWait, Closed]
    );
    assert_eq!(
        *lb.lock().unwrap(),
        [SynReceived, Established, CloseWait, LastAck, Closed]
    );
}

#[test]
fn echo_2mb_multi_thread_runtime() {
    echo_2mb(multi_thread());
}

#[test]
fn echo_2mb_current_thread_runtime() {
    echo_2mb(current_thread());
}

#[test]
fn borrowed_split_and_owned_halves_reunite() {
    let (na, nb, _, _) = pair();
    let listener = TcpListener::bind(&nb, SocketAddr::new(B, 8)).unwrap();
    current_thread().block_on(async {
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let (mut r, mut w) = s.split();
            tokio::io::copy(&mut r, &mut w).await.unwrap();
            s.shutdown().await.unwrap();
        });
        let c = TcpStream::connect(&na, SocketAddr::new(B, 8))
            .await
            .unwrap();
        c.set_nodelay(true).unwrap();
        assert!(c.nodelay().unwrap());
        let (r, w) = c.into_split();
        let mut c = r.reunite(w).unwrap();
        c.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 5];
        timeout(STEP, c.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf, b"hello");
        c.shutdown().await.unwrap();
        // A write after the FIN is a broken pipe, as with a kernel socket.
        let e = c.write_all(b"late").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BrokenPipe);
        let mut rest = Vec::new();
        timeout(STEP, c.read_to_end(&mut rest))
            .await
            .unwrap()
            .unwrap();
        assert!(rest.is_empty());
        server.await.unwrap();
    });
    assert!(na.wait_idle(Duration::from_secs(5)));
    assert!(nb.wait_idle(Duration::from_secs(5)));
}

#[test]
fn refused_and_reset_map_to_std_error_kinds() {
    let (na, nb, _, _) = pair();
    multi_thread().block_on(async {
        let e = timeout(STEP, TcpStream::connect(&na, SocketAddr::new(B, 9)))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);

        let listener = TcpListener::bind(&nb, SocketAddr::new(B, 9)).unwrap();
        let mut c = TcpStream::connect(&na, SocketAddr::new(B, 9))
            .await
            .unwrap();
        let (s, _) = listener.accept().await.unwrap();
        // The client's read waits, then the RST wakes it.
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 16];
            let e = c.read(&mut buf).await.unwrap_err();
            (e.kind(), c)
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        s.set_linger(Some(Duration::ZERO)).unwrap();
        drop(s); // RST
        let (kind, mut c) = timeout(STEP, reader).await.unwrap().unwrap();
        assert_eq!(kind, ErrorKind::ConnectionReset);
        assert_eq!(
            c.write(b"x").await.unwrap_err().kind(),
            ErrorKind::ConnectionReset
        );
    });
}

#[test]
fn a_pending_accept_is_woken_by_a_connection() {
    let (na, nb, _, _) = pair();
    let listener = TcpListener::bind_with_backlog(&nb, SocketAddr::new(B, 10), 4).unwrap();
    assert_eq!(listener.local_addr().unwrap(), SocketAddr::new(B, 10));
    let connect = TcpStream::connect(&na, SocketAddr::new(B, 10));
    current_thread().block_on(async {
        let accept =
            tokio::spawn(async move { listener.accept().await.map(|(s, p)| (s.state(), p)) });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!accept.is_finished());
        let c = connect.await.unwrap();
        let (st, peer) = timeout(STEP, accept).await.unwrap().unwrap().unwrap();
        assert_eq!(st, State::Established);
        assert_eq!(peer, c.local_addr().unwrap());
    });
}

#[test]
fn stopping_the_stack_wakes_pending_calls() {
    let (na, nb, _, _) = pair();
    let listener = TcpListener::bind(&nb, SocketAddr::new(B, 11)).unwrap();
    let rt = multi_thread();
    let (mut c, s) = rt.block_on(async {
        let c = TcpStream::connect(&na, SocketAddr::new(B, 11))
            .await
            .unwrap();
        let (s, _) = listener.accept().await.unwrap();
        (c, s)
    });
    let reader = rt.spawn(async move {
        let mut buf = [0u8; 16];
        c.read(&mut buf).await.unwrap_err().kind()
    });
    std::thread::sleep(Duration::from_millis(50));
    let _ = na.stop();
    let kind = rt.block_on(async { timeout(STEP, reader).await.unwrap().unwrap() });
    assert_eq!(kind, ErrorKind::NotConnected);
    drop(s);
}

#[test]
fn conversions_to_and_from_the_blocking_stream() {
    let (na, nb, _, _) = pair();
    let listener = net::TcpListener::bind(&nb, SocketAddr::new(B, 12)).unwrap();
    let srv = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&buf).unwrap();
        s
    });
    let blocking = net::TcpStream::connect(&na, SocketAddr::new(B, 12)).unwrap();
    let mut c = TcpStream::from(blocking);
    current_thread().block_on(async {
        c.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        timeout(STEP, c.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf, b"ping");
    });
    let mut back: net::TcpStream = c.into();
    let s = srv.join().unwrap();
    let mut s = TcpStream::from(s);
    current_thread().block_on(async { s.write_all(b"pong").await.unwrap() });
    let mut buf = [0u8; 4];
    back.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"pong");
}
