//! `seqack serve`: a server on a TUN device, one thread per connection.

use crate::realnet::{self, parse_bytes, send_pattern, NetArgs};
use seqack_io::net::{TcpListener, TcpStream};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the server does with each connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum App {
    /// Sends back everything it receives; closes after the client's FIN.
    Echo,
    /// Reads and drops everything; closes after the client's FIN.
    Discard,
    /// Sends this many bytes of the pattern, then closes (the server closes first).
    Chargen(u64),
    /// A tiny HTTP/1.1 server: `GET /` is a small page, `GET /bytes/N` N bytes of the
    /// pattern; one request per connection (`Connection: close`), the server closes.
    Http,
}

fn parse_app(s: &str) -> Result<App, String> {
    match s {
        "echo" => Ok(App::Echo),
        "discard" => Ok(App::Discard),
        "http" => Ok(App::Http),
        _ => match s.strip_prefix("chargen:") {
            Some(n) => Ok(App::Chargen(parse_bytes(n)?)),
            None => Err(format!(
                "'{s}' is not an app: echo, discard, chargen:BYTES or http"
            )),
        },
    }
}

/// Options of `seqack serve`.
#[derive(clap::Args, Debug)]
#[command(after_long_help = SERVE_HELP)]
pub struct ServeArgs {
    #[command(flatten)]
    pub net: NetArgs,
    /// The port to listen on.
    #[arg(long)]
    pub port: u16,
    /// What to do with each connection: echo, discard, chargen:BYTES (send BYTES of the
    /// pattern `byte i = i mod 251`, then close), http (a tiny HTTP/1.1 server: GET /
    /// is a page, GET /bytes/N is N bytes of the pattern; it closes after each reply).
    #[arg(long, value_parser = parse_app)]
    pub app: App,
    /// Established connections that may wait for accept (listen()'s backlog).
    #[arg(long, default_value_t = 128)]
    pub backlog: usize,
    /// At exit, write every counter (nstat names) as one JSON object to this file.
    #[arg(long, value_name = "FILE")]
    pub stats: Option<PathBuf>,
}

const SERVE_HELP: &str = "\
Serves until SIGINT or SIGTERM. Then it stops listening, shuts down the sending half of
every open connection (FIN after the data already queued), gives the peers 2*MSL (at
least 5 s) to close their side, aborts with RST whoever has not, and waits until every
connection has reached CLOSED, TIME_WAIT included (2*MSL, shorten with --msl), before
it writes --stats and exits. A second SIGINT or SIGTERM exits at once.

Example, inside a network namespace of your own:
  ip netns add sq && ip netns exec sq bash
  ip tuntap add tun0 mode tun && ip addr add 10.0.0.1/24 dev tun0 && ip link set tun0 up
  seqack serve --tun tun0 --addr 10.0.0.2/24 --port 80 --app http --pcap s.pcap &
  curl http://10.0.0.2/";

/// Open connections, so that shutdown can reach them.
type Registry = Arc<Mutex<HashMap<u64, TcpStream>>>;

pub fn run(a: &ServeArgs) -> ExitCode {
    match serve(a) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("seqack serve: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(a: &ServeArgs) -> Result<ExitCode, String> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The first signal sets `stop`; a second one, finding it set, exits at once.
        signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone())
            .map_err(|e| e.to_string())?;
        signal_hook::flag::register(sig, stop.clone()).map_err(|e| e.to_string())?;
    }
    let run = realnet::start(&a.net, "server")?;
    let net = &run.net;
    let local = SocketAddr::new(a.net.addr.0, a.port);
    let listener = TcpListener::bind_with_backlog(net, local, a.backlog)
        .map_err(|e| format!("listen on {local}: {e}"))?;
    eprintln!("seqack serve: listening on {local}, app {:?}", a.app);
    let open: Registry = Arc::default();
    let next = AtomicU64::new(0);
    let mut workers = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept_timeout(Duration::from_millis(100)) {
            Ok((s, peer)) => {
                let key = next.fetch_add(1, Ordering::Relaxed);
                if let Ok(c) = s.try_clone() {
                    lock(&open).insert(key, c);
                }
                let app = a.app;
                let open2 = open.clone();
                let h = std::thread::Builder::new()
                    .name(format!("conn-{peer}"))
                    .spawn(move || {
                        if let Err(e) = handle(app, s) {
                            eprintln!("seqack serve: {peer}: {e}");
                        }
                        lock(&open2).remove(&key);
                    })
                    .map_err(|e| e.to_string())?;
                workers.push(h);
                workers.retain(|h| !h.is_finished());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(format!("accept: {e}")),
        }
    }
    eprintln!("seqack serve: stopping: closing connections");
    drop(listener);
    for s in lock(&open).values() {
        let _ = s.shutdown(Shutdown::Write);
    }
    // Peers get a grace period to finish (their FIN ends echo and discard); whoever is
    // still connected after it is aborted with RST, so that stopping always ends.
    let msl = Duration::from_secs_f64(a.net.msl);
    let grace = std::time::Instant::now() + (msl * 2).max(Duration::from_secs(5));
    while workers.iter().any(|h| !h.is_finished()) && std::time::Instant::now() < grace {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stuck = lock(&open).len();
    if stuck > 0 {
        eprintln!("seqack serve: {stuck} peer(s) did not close in time: aborting with RST");
        for s in lock(&open).values() {
            s.abort();
        }
    }
    for h in workers {
        let _ = h.join();
    }
    let (conns, tw) = net.with_stack(|s, _| (s.connection_count(), s.time_wait().len()));
    if conns + tw > 0 {
        eprintln!(
            "seqack serve: waiting for {conns} connection(s) and {tw} TIME_WAIT record(s) to close (2MSL = {:.1} s)",
            (msl * 2).as_secs_f64()
        );
    }
    let idle = net.wait_idle(msl * 2 + Duration::from_secs(60));
    let counters = realnet::counters_json(net);
    if let Some(p) = &a.stats {
        std::fs::write(p, counters + "\n").map_err(|e| format!("{}: {e}", p.display()))?;
    }
    run.net.stop();
    if !idle {
        eprintln!("seqack serve: some connections had not closed when it gave up waiting");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn handle(app: App, mut s: TcpStream) -> io::Result<()> {
    match app {
        App::Echo => {
            let mut r = s.try_clone()?;
            io::copy(&mut r, &mut s)?;
        }
        App::Discard => {
            io::copy(&mut s, &mut io::sink())?;
        }
        App::Chargen(n) => send_pattern(&mut s, n)?,
        App::Http => http(&mut s)?,
    }
    Ok(())
}

/// Longest request head accepted.
const MAX_HEAD: usize = 16 * 1024;

fn http(s: &mut TcpStream) -> io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_HEAD {
            return respond(
                s,
                "431 Request Header Fields Too Large",
                "text/plain",
                b"too long\n",
                true,
            );
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut words = text.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let with_body = method != "HEAD";
    match (method, path) {
        ("GET" | "HEAD", "/") => respond(s, "200 OK", "text/html", PAGE.as_bytes(), with_body),
        ("GET" | "HEAD", p) if p.starts_with("/bytes/") => match parse_bytes(&p[7..]) {
            Ok(n) => {
                let hdr = format!(
                    "HTTP/1.1 200 OK\r\nServer: seqack\r\nContent-Type: application/octet-stream\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n"
                );
                s.write_all(hdr.as_bytes())?;
                if with_body {
                    send_pattern(s, n)?;
                }
                Ok(())
            }
            Err(e) => respond(s, "400 Bad Request", "text/plain", e.as_bytes(), with_body),
        },
        ("GET" | "HEAD", _) => respond(s, "404 Not Found", "text/plain", b"not found\n", with_body),
        _ => respond(
            s,
            "405 Method Not Allowed",
            "text/plain",
            b"GET or HEAD only\n",
            true,
        ),
    }
}

fn respond(
    s: &mut TcpStream,
    status: &str,
    ty: &str,
    body: &[u8],
    with_body: bool,
) -> io::Result<()> {
    let hdr = format!(
        "HTTP/1.1 {status}\r\nServer: seqack\r\nContent-Type: {ty}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(hdr.as_bytes())?;
    if with_body {
        s.write_all(body)?;
    }
    Ok(())
}

const PAGE: &str = "<!doctype html>
<html><head><title>seqack</title></head>
<body><h1>Served by seqack</h1>
<p>This page came over a userspace TCP stack. Its connection will close actively from
the server side: the server holds TIME_WAIT.</p></body></html>
";
