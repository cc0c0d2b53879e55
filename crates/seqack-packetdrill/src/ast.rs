//! The parsed form of a script.

use core::fmt;

/// A whole script.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Script {
    /// `--name[=value]` lines before the first event.
    pub options: Vec<ScriptOption>,
    /// A back-quoted command before the first event (no time of its own).
    pub init_command: Option<(u32, String)>,
    /// The events, in order.
    pub events: Vec<Event>,
    /// A back-quoted command after the last event.
    pub cleanup_command: Option<(u32, String)>,
}

/// An option line: `--tolerance_usecs=50000`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptOption {
    /// The name after `--`.
    pub name: String,
    /// The value after `=`, if any.
    pub value: Option<String>,
    /// Its line.
    pub line: u32,
}

/// One timed event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The line of its time.
    pub line: u32,
    /// When it happens.
    pub time: EventTime,
    /// What happens.
    pub action: Action,
}

/// When an event happens, in microseconds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EventTime {
    /// `1.5`: from the start of the script.
    Absolute(i64),
    /// `+0.1`: from the previous event.
    Relative(i64),
    /// `*`: any time (outbound packets only).
    Any,
    /// `1.0~2.0`.
    AbsoluteRange(i64, i64),
    /// `+1.0~+2.0`.
    RelativeRange(i64, i64),
}

/// What an event does.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// A packet injected (`<`) or expected (`>`).
    Packet(PacketSpec),
    /// A system call and its expected result.
    Syscall(SyscallSpec),
    /// A back-quoted shell command.
    Command(String),
    /// A `%{ ... }%` code block.
    Code(String),
}

/// Direction of a scripted packet, as seen from the stack under test.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Direction {
    /// `<`: the script sends it to the stack.
    Inbound,
    /// `>`: the stack must send it.
    Outbound,
}

/// The ECN codepoint named in `[...]` before the flags.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Ecn {
    /// `noecn`: 00.
    NotEct,
    /// `ect1`: 01.
    Ect1,
    /// `ect0`: 10.
    Ect0,
    /// `ce`: 11.
    Ce,
    /// `ect01`: either ECT codepoint (outbound only).
    Ect01,
}

impl Ecn {
    /// The two ECN bits (Ect01 has none: it matches two values).
    pub fn bits(self) -> Option<u8> {
        match self {
            Ecn::NotEct => Some(0),
            Ecn::Ect1 => Some(1),
            Ecn::Ect0 => Some(2),
            Ecn::Ce => Some(3),
            Ecn::Ect01 => None,
        }
    }
}

/// IP-level details given in `[...]` or `(...)` after the direction.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct IpInfo {
    /// ECN codepoint to send or expect.
    pub ecn: Option<Ecn>,
    /// Whole TOS byte (`tos 0x..`).
    pub tos: Option<u8>,
    /// TTL or hop limit.
    pub ttl: Option<u8>,
    /// IPv6 flow label.
    pub flow_label: Option<u32>,
}

/// TCP control bits as the script writes them.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct TcpFlags {
    /// FIN, SYN, RST, PSH, ACK, URG, ECE, CWR as in the header's byte 13.
    pub bits: u8,
    /// AE (the former NS bit, AccECN).
    pub ae: bool,
    /// An AccECN ACE value written as a digit, if any.
    pub ace: Option<u8>,
}

impl TcpFlags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
    /// ECE.
    pub const ECE: u8 = 0x40;
    /// CWR.
    pub const CWR: u8 = 0x80;

    /// Is this bit set?
    pub fn has(self, bit: u8) -> bool {
        self.bits & bit != 0
    }
}

impl fmt::Display for TcpFlags {
    /// As packetdrill writes them: `S`, `S.`, `F.`, `P.`, `R`, `.`, `SEW`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut any = false;
        for (bit, c) in [
            (Self::FIN, 'F'),
            (Self::SYN, 'S'),
            (Self::RST, 'R'),
            (Self::PSH, 'P'),
            (Self::URG, 'U'),
            (Self::ECE, 'E'),
            (Self::CWR, 'W'),
        ] {
            if self.has(bit) {
                write!(f, "{c}")?;
                any = true;
            }
        }
        if self.ae {
            write!(f, "A")?;
            any = true;
        }
        if self.has(Self::ACK) {
            write!(f, ".")?;
        } else if !any {
            write!(f, "-")?;
        }
        Ok(())
    }
}

/// A TCP option as written in `<...>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TcpOption {
    /// `nop`.
    Nop,
    /// `eol`.
    Eol,
    /// `mss N`.
    Mss(u16),
    /// `wscale N`.
    Wscale(u8),
    /// `sackOK`.
    SackOk,
    /// `sack a:b c:d`.
    Sack(Vec<(u32, u32)>),
    /// `TS val X ecr Y`.
    Timestamp {
        /// TSval.
        val: u32,
        /// TSecr.
        ecr: u32,
    },
    /// `md5 HEX`, `FO COOKIE`, `FOEXP COOKIE` and other kinds, as raw bytes.
    Raw {
        /// Option kind.
        kind: u8,
        /// Bytes after the length byte.
        data: Vec<u8>,
    },
}

impl TcpOption {
    /// The option kind byte.
    pub fn kind(&self) -> u8 {
        match self {
            TcpOption::Eol => 0,
            TcpOption::Nop => 1,
            TcpOption::Mss(_) => 2,
            TcpOption::Wscale(_) => 3,
            TcpOption::SackOk => 4,
            TcpOption::Sack(_) => 5,
            TcpOption::Timestamp { .. } => 8,
            TcpOption::Raw { kind, .. } => *kind,
        }
    }

    /// The option in wire format.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            TcpOption::Eol => out.push(0),
            TcpOption::Nop => out.push(1),
            TcpOption::Mss(m) => out.extend_from_slice(&[2, 4, (m >> 8) as u8, *m as u8]),
            TcpOption::Wscale(w) => out.extend_from_slice(&[3, 3, *w]),
            TcpOption::SackOk => out.extend_from_slice(&[4, 2]),
            TcpOption::Sack(blocks) => {
                out.push(5);
                out.push((2 + 8 * blocks.len()) as u8);
                for (l, r) in blocks {
                    out.extend_from_slice(&l.to_be_bytes());
                    out.extend_from_slice(&r.to_be_bytes());
                }
            }
            TcpOption::Timestamp { val, ecr } => {
                out.extend_from_slice(&[8, 10]);
                out.extend_from_slice(&val.to_be_bytes());
                out.extend_from_slice(&ecr.to_be_bytes());
            }
            TcpOption::Raw { kind, data } => {
                out.push(*kind);
                out.push((2 + data.len()) as u8);
                out.extend_from_slice(data);
            }
        }
    }

    /// Parses a wire-format option list into options, in order. Unknown kinds are kept
    /// raw; a malformed list is an error.
    pub fn decode_list(mut raw: &[u8]) -> Result<Vec<TcpOption>, String> {
        let mut out = Vec::new();
        while let Some(&kind) = raw.first() {
            match kind {
                0 => {
                    out.push(TcpOption::Eol);
                    raw = &raw[1..];
                    continue;
                }
                1 => {
                    out.push(TcpOption::Nop);
                    raw = &raw[1..];
                    continue;
                }
                _ => {}
            }
            let len = usize::from(*raw.get(1).ok_or("TCP option length missing")?);
            if len < 2 || len > raw.len() {
                return Err(format!("bad TCP option length {len} (kind {kind})"));
            }
            let body = &raw[2..len];
            let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            out.push(match (kind, len) {
                (2, 4) => TcpOption::Mss(u16::from_be_bytes([body[0], body[1]])),
                (3, 3) => TcpOption::Wscale(body[0]),
                (4, 2) => TcpOption::SackOk,
                (5, _) if (len - 2) % 8 == 0 => TcpOption::Sack(
                    body.chunks_exact(8)
                        .map(|c| (be32(&c[..4]), be32(&c[4..])))
                        .collect(),
                ),
                (8, 10) => TcpOption::Timestamp {
                    val: be32(&body[..4]),
                    ecr: be32(&body[4..]),
                },
                _ => TcpOption::Raw {
                    kind,
                    data: body.to_vec(),
                },
            });
            raw = &raw[len..];
        }
        Ok(out)
    }
}

impl fmt::Display for TcpOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TcpOption::Nop => write!(f, "nop"),
            TcpOption::Eol => write!(f, "eol"),
            TcpOption::Mss(m) => write!(f, "mss {m}"),
            TcpOption::Wscale(w) => write!(f, "wscale {w}"),
            TcpOption::SackOk => write!(f, "sackOK"),
            TcpOption::Sack(b) => {
                write!(f, "sack")?;
                for (l, r) in b {
                    write!(f, " {l}:{r}")?;
                }
                Ok(())
            }
            TcpOption::Timestamp { val, ecr } => write!(f, "TS val {val} ecr {ecr}"),
            TcpOption::Raw { kind, data } => {
                // Fast Open's option in packetdrill's own notation, as scripts write it.
                match (kind, data.is_empty()) {
                    (34, true) => return write!(f, "FO"),
                    (34, false) => write!(f, "FO ")?,
                    _ => write!(f, "kind{kind} ")?,
                }
                for b in data {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// A scripted TCP packet.
#[derive(Clone, Debug, PartialEq)]
pub struct PacketSpec {
    /// In or out.
    pub dir: Direction,
    /// `[ect0]` and the like.
    pub ip: IpInfo,
    /// Explicit `src>dst` ports, if given.
    pub ports: Option<(u16, u16)>,
    /// Control bits.
    pub flags: TcpFlags,
    /// First sequence number (relative, see the runner).
    pub seq: u32,
    /// Payload length.
    pub len: u16,
    /// `ack N`, if given.
    pub ack: Option<u32>,
    /// `win N`, if given (outbound: unchecked when absent).
    pub win: Option<u16>,
    /// `urg N`, if given.
    pub urg: Option<u16>,
    /// The options; `None` for `<...>` (any options).
    pub options: Option<Vec<TcpOption>>,
    /// `a:b(n)!`: the sequence number is absolute, not mapped (FreeBSD dialect).
    pub seq_absolute: bool,
    /// `...(n)`: any sequence number (FreeBSD dialect).
    pub seq_ignore: bool,
    /// `TS val ...`: the TSval is not checked (FreeBSD dialect).
    pub ts_val_ignore: bool,
    /// `TS ... ecr N!`: the TSecr is absolute, not mapped (FreeBSD dialect).
    pub ts_ecr_absolute: bool,
}

impl fmt::Display for PacketSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = match self.dir {
            Direction::Inbound => '<',
            Direction::Outbound => '>',
        };
        write!(f, "{d} ")?;
        if let Some(e) = self.ip.ecn {
            let n = match e {
                Ecn::NotEct => "noecn",
                Ecn::Ect0 => "ect0",
                Ecn::Ect1 => "ect1",
                Ecn::Ce => "ce",
                Ecn::Ect01 => "ect01",
            };
            write!(f, "[{n}] ")?;
        }
        write!(
            f,
            "{} {}:{}({})",
            self.flags,
            self.seq,
            self.seq.wrapping_add(u32::from(self.len)),
            self.len
        )?;
        if let Some(a) = self.ack {
            write!(f, " ack {a}")?;
        }
        if let Some(w) = self.win {
            write!(f, " win {w}")?;
        }
        if let Some(u) = self.urg.filter(|&u| u != 0) {
            write!(f, " urg {u}")?;
        }
        match &self.options {
            None => write!(f, " <...>"),
            Some(o) if o.is_empty() => Ok(()),
            Some(o) => {
                write!(f, " <")?;
                for (i, x) in o.iter().enumerate() {
                    if i > 0 {
                        write!(f, ",")?;
                    }
                    write!(f, "{x}")?;
                }
                write!(f, ">")
            }
        }
    }
}

/// A scripted system call: `name(args) = result [ERRNO (note)]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SyscallSpec {
    /// `...END` before the name: the call blocks until END (microseconds, relative to
    /// the same base as the event's own time).
    pub end: Option<i64>,
    /// The function name.
    pub name: String,
    /// The arguments.
    pub args: Vec<Expr>,
    /// The expected return value.
    pub result: Expr,
    /// The expected errno name.
    pub errno: Option<String>,
    /// The note in parentheses, as written.
    pub note: Option<String>,
}

/// An expression in a system call.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// `...`: anything / a sensible default.
    Ellipsis,
    /// An integer.
    Int(i64),
    /// A symbol (`SOCK_STREAM`, `O_NONBLOCK`, `EINPROGRESS`, ...).
    Word(String),
    /// A string, possibly followed by `...`.
    Str(String),
    /// `a | b`.
    Or(Box<Expr>, Box<Expr>),
    /// `name = value` inside braces.
    Named(String, Box<Expr>),
    /// `name(args)`: `htons(8080)`, `inet_addr("1.2.3.4")`, `msg_iov(1)`.
    Call(String, Vec<Expr>),
    /// `[a, b]`.
    List(Vec<Expr>),
    /// `{a, b}`.
    Struct(Vec<Expr>),
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list(f: &mut fmt::Formatter<'_>, xs: &[Expr]) -> fmt::Result {
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    write!(f, ", ")?;
                }
                write!(f, "{x}")?;
            }
            Ok(())
        }
        match self {
            Expr::Ellipsis => write!(f, "..."),
            Expr::Int(v) => write!(f, "{v}"),
            Expr::Word(w) => write!(f, "{w}"),
            Expr::Str(s) => write!(f, "\"{s}\""),
            Expr::Or(a, b) => write!(f, "{a}|{b}"),
            Expr::Named(n, v) => write!(f, "{n}={v}"),
            Expr::Call(n, a) => {
                write!(f, "{n}(")?;
                list(f, a)?;
                write!(f, ")")
            }
            Expr::List(a) => {
                write!(f, "[")?;
                list(f, a)?;
                write!(f, "]")
            }
            Expr::Struct(a) => {
                write!(f, "{{")?;
                list(f, a)?;
                write!(f, "}}")
            }
        }
    }
}
