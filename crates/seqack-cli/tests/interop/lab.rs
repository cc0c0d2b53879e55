//! A network namespace of the test's own with a TUN device in it: the kernel's side has
//! 10.0.0.1/24 and fd00::1/64, seqack runs on the device as 10.0.0.2 and fd00::2.
//! Everything the tests start runs inside the namespace, and the namespace is deleted
//! (its processes killed first) when the `Lab` is dropped. Traffic never leaves it.

#![allow(dead_code)]

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

pub const KERNEL: &str = "10.0.0.1";
pub const SEQACK: &str = "10.0.0.2";
pub const KERNEL6: &str = "fd00::1";
pub const SEQACK6: &str = "fd00::2";

const PEER_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/peer.py");

pub struct Lab {
    pub ns: String,
    pub dir: PathBuf,
    pids: Vec<u32>,
    _turn: Turn,
}

/// Tests whose outcome hangs on a few milliseconds (an application closing inside the
/// kernel's 40 ms delayed-ACK time) run alone; the others share the machine.
static TURNS: RwLock<()> = RwLock::new(());

enum Turn {
    Shared(#[allow(dead_code)] RwLockReadGuard<'static, ()>),
    Alone(#[allow(dead_code)] RwLockWriteGuard<'static, ()>),
}

/// A process started in the namespace, its output going to files.
pub struct Proc {
    child: Child,
    pub name: String,
    pub out: PathBuf,
    pub err: PathBuf,
}

/// What a finished process left.
#[derive(Debug)]
pub struct Done {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Done {
    /// The last line of stdout as JSON (the peer's report).
    pub fn json(&self) -> Value {
        let line = self.stdout.lines().last().unwrap_or("");
        serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\nstderr: {}", self.stderr))
    }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Whether `tool` is on the PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A fresh namespace for one test, or `None` (with the reason printed) where tests
/// against the kernel cannot run: without root. As root, a missing tool is an error.
pub fn lab(tag: &str, tools: &[&str]) -> Option<Lab> {
    make_lab(tag, tools, false)
}

/// [`lab`] for a timing-sensitive test: no other lab runs meanwhile.
pub fn lab_alone(tag: &str, tools: &[&str]) -> Option<Lab> {
    make_lab(tag, tools, true)
}

fn make_lab(tag: &str, tools: &[&str], alone: bool) -> Option<Lab> {
    if !is_root() {
        eprintln!("SKIPPED {tag}: needs root (CAP_NET_ADMIN) to make a network namespace and a TUN device");
        return None;
    }
    for t in ["ip", "python3", "ss"].iter().chain(tools) {
        assert!(have(t), "{t} is missing: install it (see .ci/run)");
    }
    let ns = format!("sqk-{tag}-{}", std::process::id());
    let dir = std::env::temp_dir().join(&ns);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let _ = Command::new("ip")
        .args(["netns", "del", &ns])
        .stderr(Stdio::null())
        .status();
    let _turn = if alone {
        Turn::Alone(TURNS.write().unwrap_or_else(|e| e.into_inner()))
    } else {
        Turn::Shared(TURNS.read().unwrap_or_else(|e| e.into_inner()))
    };
    let lab = Lab {
        ns,
        dir,
        pids: Vec::new(),
        _turn,
    };
    lab.host(&["ip", "netns", "add", &lab.ns]);
    lab.sh("ip link set lo up
            ip tuntap add tun0 mode tun
            ip addr add 10.0.0.1/24 dev tun0
            ip addr add fd00::1/64 dev tun0 nodad
            ip link set tun0 up");
    Some(lab)
}

impl Lab {
    fn host(&self, args: &[&str]) {
        let st = Command::new(args[0]).args(&args[1..]).status().unwrap();
        assert!(st.success(), "{args:?} failed");
    }

    /// A command that runs inside the namespace.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, program]);
        c
    }

    /// Runs a shell script in the namespace; panics if it fails. Returns stdout.
    pub fn sh(&self, script: &str) -> String {
        let o = self.cmd("sh").args(["-ec", script]).output().unwrap();
        assert!(
            o.status.success(),
            "in {}: {script}\n{}",
            self.ns,
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    /// Starts `c` (made with [`Lab::cmd`]), its output going to files in the lab.
    pub fn spawn(&mut self, name: &str, mut c: Command) -> Proc {
        let out = self.dir.join(format!("{name}.out"));
        let err = self.dir.join(format!("{name}.err"));
        c.stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap())
            .stdin(Stdio::null());
        let child = c.spawn().unwrap();
        self.pids.push(child.id());
        Proc {
            child,
            name: name.to_string(),
            out,
            err,
        }
    }

    /// Starts `seqack ARGS` in the namespace on tun0.
    pub fn seqack(&mut self, name: &str, args: &[&str]) -> Proc {
        let mut c = self.cmd(env!("CARGO_BIN_EXE_seqack"));
        c.args(args);
        self.spawn(name, c)
    }

    /// Starts `seqack serve --tun tun0 --addr 10.0.0.2/24 --port PORT --app APP` with a
    /// state log, a pcap and stats in the lab's directory, and waits until it listens.
    pub fn serve(&mut self, port: u16, app: &str, extra: &[&str]) -> Proc {
        let (sl, pcap, stats) = (
            self.path("serve.jsonl"),
            self.path("serve.pcap"),
            self.path("stats.json"),
        );
        let port = port.to_string();
        let mut args = vec![
            "serve",
            "--tun",
            "tun0",
            "--addr",
            "10.0.0.2/24",
            "--port",
            &port,
            "--app",
            app,
            "--state-log",
            &sl,
            "--pcap",
            &pcap,
            "--stats",
            &stats,
            "--msl",
            "1",
        ];
        args.extend_from_slice(extra);
        let p = self.seqack("serve", &args);
        let sl = self.dir.join("serve.jsonl");
        wait_until(Duration::from_secs(10), || {
            fs::read_to_string(&sl).is_ok_and(|s| s.contains("\"LISTEN\""))
        })
        .unwrap_or_else(|| panic!("seqack serve did not start: {}", p.stderr_text()));
        p
    }

    /// `seqack connect --tun tun0 --addr 10.0.0.2/24 --to TO ARGS` with a state log and
    /// a pcap in the lab's directory.
    pub fn connect(&mut self, to: &str, extra: &[&str]) -> Proc {
        let (sl, pcap) = (self.path("connect.jsonl"), self.path("connect.pcap"));
        let mut args = vec![
            "connect",
            "--tun",
            "tun0",
            "--addr",
            "10.0.0.2/24",
            "--to",
            to,
            "--state-log",
            &sl,
            "--pcap",
            &pcap,
            "--msl",
            "1",
        ];
        args.extend_from_slice(extra);
        self.seqack("connect", &args)
    }

    /// Starts the kernel-side peer (tests/interop/peer.py).
    pub fn peer(&mut self, name: &str, args: &[&str]) -> Proc {
        let mut c = self.cmd("python3");
        c.arg(PEER_PY).args(args);
        self.spawn(name, c)
    }

    /// A kernel-side server on `port`, started and listening.
    pub fn peer_server(&mut self, port: u16, args: &[&str]) -> Proc {
        let port_s = port.to_string();
        let mut a = vec!["server", KERNEL, &port_s];
        a.extend_from_slice(args);
        let p = self.peer("peer-server", &a);
        wait_until(Duration::from_secs(10), || {
            fs::read_to_string(&p.out).is_ok_and(|s| s.contains("listening"))
        })
        .expect("the kernel-side server did not start");
        p
    }

    /// The kernel's TCP sockets now, as `ss -tanH` shows them: (state, local, peer).
    pub fn ss(&self) -> Vec<(String, String, String)> {
        self.sh("ss -tanH")
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() >= 5).then(|| (f[0].to_string(), f[3].to_string(), f[4].to_string()))
            })
            .collect()
    }

    /// The kernel's state of the socket with this local and peer address, if any.
    pub fn kernel_state(&self, local: &str, peer: &str) -> Option<String> {
        self.ss()
            .into_iter()
            .find(|(_, l, p)| l == local && p == peer)
            .map(|(s, _, _)| s)
    }

    /// Lines of a state log file.
    pub fn state_log(&self, file: &str) -> Vec<Value> {
        fs::read_to_string(self.dir.join(file))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The states ("to" fields) one connection of a state log went through, with the
    /// reasons, in order.
    pub fn seqack_states(&self, file: &str, remote_ip: &str) -> Vec<(String, String)> {
        self.state_log(file)
            .iter()
            .filter(|v| {
                v["remote"].as_str().is_some_and(|r| {
                    r.starts_with(remote_ip) || r.starts_with(&format!("[{remote_ip}]"))
                })
            })
            .map(|v| {
                (
                    v["to"].as_str().unwrap().to_string(),
                    v["why"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// tshark's verdict on a capture: the number of packets, and every malformed one
    /// and every packet from seqack (`ours`) with a bad checksum or an error-level
    /// expert note. (The kernel's own packets may carry the checksum 0xFFFF, equal to
    /// 0 in one's complement, which Wireshark flags after RFC 1624: not seqack's to
    /// answer for.)
    pub fn tshark_check(&self, pcap: &str, ours: &str) -> (usize, Vec<String>) {
        let p = self.dir.join(pcap);
        let count = Command::new("tshark")
            .args([
                "-r",
                p.to_str().unwrap(),
                "-T",
                "fields",
                "-e",
                "frame.number",
            ])
            .output()
            .unwrap();
        let n = String::from_utf8_lossy(&count.stdout).lines().count();
        let src = if ours.contains(':') {
            "ipv6.src"
        } else {
            "ip.src"
        };
        let filter = format!(
            "_ws.malformed || ({src} == {ours} && (ip.checksum.status == \"Bad\" || \
             tcp.checksum.status == \"Bad\" || _ws.expert.severity == \"Error\"))"
        );
        let bad = Command::new("tshark")
            .args([
                "-r",
                p.to_str().unwrap(),
                "-o",
                "ip.check_checksum:TRUE",
                "-o",
                "tcp.check_checksum:TRUE",
                "-Y",
                &filter,
            ])
            .output()
            .unwrap();
        assert!(
            bad.status.success(),
            "tshark failed: {}",
            String::from_utf8_lossy(&bad.stderr)
        );
        let bad = String::from_utf8_lossy(&bad.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        (n, bad)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for pid in &self.pids {
            let _ = Command::new("kill")
                .args(["-9", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("files of the failed test kept in {}", self.dir.display());
        }
    }
}

impl Proc {
    pub fn stderr_text(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Sends SIGINT (the clean stop of `seqack serve`).
    pub fn interrupt(&self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
    }

    /// Waits for the process to exit, at most `limit`; panics (after killing it) if it
    /// does not.
    pub fn wait(mut self, limit: Duration) -> Done {
        let t0 = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Done {
                    status,
                    stdout: fs::read_to_string(&self.out).unwrap_or_default(),
                    stderr: fs::read_to_string(&self.err).unwrap_or_default(),
                };
            }
            if t0.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{} did not finish within {limit:?}\nstdout: {}\nstderr: {}",
                    self.name,
                    fs::read_to_string(&self.out).unwrap_or_default(),
                    self.stderr_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Polls `f` every 20 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> Option<()> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if f() {
            return Some(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// SHA-256 of the first `n` bytes of the pattern (byte i = i mod 251), in hex.
pub fn pattern_sha256(n: u64) -> String {
    let block: Vec<u8> = (0..251 * 1024).map(|i| (i % 251) as u8).collect();
    let mut h = Sha256::new();
    let mut left = n;
    while left > 0 {
        let k = left.min(block.len() as u64) as usize;
        h.update(&block[..k]);
        left -= k as u64;
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The hash in `seqack connect`'s stdout line `received N bytes sha256 HEX`.
pub fn connect_received(stdout: &str) -> (u64, String) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("received "))
        .unwrap_or_else(|| panic!("no 'received' line in {stdout:?}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    (f[1].parse().unwrap(), f[4].to_string())
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}
