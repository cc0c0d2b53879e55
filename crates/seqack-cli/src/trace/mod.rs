//! `seqack trace`: read a pcap or pcapng capture, split it into TCP connections, infer
//! both endpoints' states after every segment, and print (or draw) each connection's
//! ladder and a summary of how it opened and closed.
//!
//! `read` gets segments out of the file, `infer` groups them and runs the inference,
//! `report` turns the result into ladders (the renderer shared with `seqack demo`),
//! summary text and JSON, `html` into one self-contained page.

pub mod html;
pub mod infer;
pub mod read;
pub mod report;
#[cfg(test)]
mod tests;

use crate::ladder;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Options of `seqack trace`.
#[derive(clap::Args, Debug)]
pub struct TraceArgs {
    /// The capture: pcap or pcapng (Ethernet, raw IP, Linux cooked SLL/SLL2, BSD
    /// loopback), as tcpdump, tshark, Wireshark or `seqack ... --pcap` write them.
    pub file: PathBuf,
    /// Only the connections matching FILTER: `#N` (the N-th connection), a port
    /// (`80` or `:80`), an address (`10.0.0.2`, `fd00::2`) or an endpoint
    /// (`10.0.0.2:80`, `[fd00::2]:80`). Repeatable: a connection matching any is kept.
    #[arg(long = "conn", value_name = "FILTER", value_parser = parse_filter)]
    pub conn: Vec<ConnFilter>,
    /// Write the ladder as an SVG picture; with several connections, FILE-N.svg each.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Write one self-contained HTML page: a filterable table of the connections and
    /// each one's ladder and summary.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Print one JSON object per connection (states after every segment and the
    /// summary) instead of the ladders.
    #[arg(long)]
    pub json: bool,
    /// Maximum segment lifetime in seconds: a 4-tuple reused less than 2MSL after an
    /// endpoint entered TIME_WAIT is reported (Linux holds TIME_WAIT 60 s).
    #[arg(long, default_value_t = 30.0)]
    pub msl: f64,
    /// No colours in the ladder.
    #[arg(long)]
    pub no_color: bool,
}

/// A `--conn` selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnFilter {
    /// `#N`: the N-th connection (1-based).
    Index(usize),
    /// Either endpoint's port.
    Port(u16),
    /// Either endpoint's address.
    Addr(IpAddr),
    /// Either endpoint.
    Endpoint(SocketAddr),
}

/// Parses a `--conn` value.
pub fn parse_filter(s: &str) -> Result<ConnFilter, String> {
    let t = s.trim();
    if let Some(n) = t.strip_prefix('#') {
        return n
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .map(ConnFilter::Index)
            .ok_or_else(|| format!("'{s}': #N needs a connection number from 1"));
    }
    let port = t.strip_prefix(':').unwrap_or(t);
    if let Ok(p) = port.parse::<u16>() {
        return Ok(ConnFilter::Port(p));
    }
    if let Ok(a) = t.parse::<SocketAddr>() {
        return Ok(ConnFilter::Endpoint(a));
    }
    if let Ok(a) = t.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(ConnFilter::Addr(a));
    }
    Err(format!(
        "'{s}' is not #N, a port, an address or address:port"
    ))
}

impl ConnFilter {
    /// Whether connection `c` matches.
    pub fn matches(&self, c: &infer::Conn) -> bool {
        match *self {
            ConnFilter::Index(n) => c.index == n,
            ConnFilter::Port(p) => c.left.port() == p || c.right.port() == p,
            ConnFilter::Addr(a) => c.left.ip() == a || c.right.ip() == a,
            ConnFilter::Endpoint(e) => c.left == e || c.right == e,
        }
    }
}

/// A capture analysed: the connections and what was inferred of each.
pub struct Traced {
    /// What the reader saw.
    pub capture: read::Capture,
    /// Every connection.
    pub conns: Vec<infer::Conn>,
    /// One analysis per connection.
    pub analyses: Vec<infer::Analysis>,
}

/// Reads and analyses a capture.
pub fn trace_file(path: &Path, msl_us: u64) -> Result<Traced, String> {
    let capture = read::read_file(path)?;
    Ok(trace_capture(capture, msl_us))
}

/// Analyses a capture already read.
pub fn trace_capture(capture: read::Capture, msl_us: u64) -> Traced {
    let conns = infer::group(&capture.packets);
    let mut analyses: Vec<infer::Analysis> = conns.iter().map(infer::analyze).collect();
    infer::cross_check(&conns, &mut analyses, msl_us);
    Traced {
        capture,
        conns,
        analyses,
    }
}

/// `FILE.svg` for one connection, `FILE-N.svg` for connection N of several.
fn numbered(path: &Path, n: usize, several: bool) -> PathBuf {
    if !several {
        return path.to_path_buf();
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    path.with_file_name(format!("{stem}-{n}{ext}"))
}

/// Runs `seqack trace`.
pub fn run(a: &TraceArgs) -> ExitCode {
    if !(a.msl > 0.0 && a.msl <= 3600.0) {
        eprintln!("seqack trace: --msl must be between 0 and 3600 seconds");
        return ExitCode::from(2);
    }
    let msl_us = (a.msl * 1e6) as u64;
    let t = match trace_file(&a.file, msl_us) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("seqack trace: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cap = &t.capture;
    if cap.truncated_tail {
        eprintln!(
            "seqack trace: {}: the file ends in the middle of a record (capture cut short); read what came before",
            a.file.display()
        );
    }
    let t0 = cap.packets.first().map_or(0, |p| p.t_us);
    let selected: Vec<usize> = (0..t.conns.len())
        .filter(|&i| a.conn.is_empty() || a.conn.iter().any(|f| f.matches(&t.conns[i])))
        .collect();
    if !a.json {
        println!(
            "{}: {} (link type {}), {} frames, {} TCP segments, {} not TCP, {} malformed; {} connections{}",
            a.file.display(),
            cap.format,
            cap.linktypes
                .iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            cap.frames,
            cap.packets.len(),
            cap.not_tcp,
            cap.malformed,
            t.conns.len(),
            if a.conn.is_empty() {
                String::new()
            } else {
                format!(", {} selected", selected.len())
            }
        );
    }
    if selected.is_empty() {
        eprintln!("seqack trace: no TCP connection to show");
    }
    let color = !a.no_color && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut ok = true;
    let ladders: Vec<ladder::Ladder> = selected
        .iter()
        .map(|&i| report::ladder(&t.conns[i], &t.analyses[i], t0))
        .collect();
    for (k, &i) in selected.iter().enumerate() {
        let (c, an, l) = (&t.conns[i], &t.analyses[i], &ladders[k]);
        if a.json {
            match serde_json::to_string(&report::json(c, an, l)) {
                Ok(j) => println!("{j}"),
                Err(e) => {
                    eprintln!("seqack trace: JSON: {e}");
                    ok = false;
                }
            }
        } else {
            println!();
            print!("{}", ladder::render_text(l, color));
            println!();
            print!("{}", report::summary_text(c, an));
        }
        if let Some(p) = &a.svg {
            let path = numbered(p, c.index, selected.len() > 1);
            if let Err(e) = std::fs::write(&path, ladder::render_svg(l)) {
                eprintln!("seqack trace: cannot write SVG {}: {e}", path.display());
                ok = false;
            }
        }
    }
    if let Some(p) = &a.html {
        let page = html::page(&a.file.display().to_string(), &t, &selected, &ladders);
        if let Err(e) = std::fs::write(p, page) {
            eprintln!("seqack trace: cannot write HTML {}: {e}", p.display());
            ok = false;
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
