//! The parser: tokens to a [`Script`], by recursive descent over packetdrill's grammar
//! (parser.y): options, an optional init command, timed events (packets, system calls,
//! shell commands, code blocks), an optional cleanup command.
//!
//! Semantic checks packetdrill makes at parse time are made here too, with the line:
//! sequence ranges that disagree with their length, inbound packets without a window or
//! with `<...>`, `*` or time ranges on anything but an outbound packet, values out of
//! range, negative times.

use crate::ast::*;
use crate::lexer::{lex, Tok, Token};
use core::fmt;
use std::collections::HashMap;

/// A syntax or semantic error in a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: u32,
    /// What is wrong.
    pub msg: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.msg)
    }
}

impl std::error::Error for ParseError {}

type PResult<T> = Result<T, ParseError>;

/// Parses a script. `defines` are `-D NAME=VALUE` symbols from the command line; the
/// script's own `--define=NAME=VALUE` lines add to them. A defined word is replaced by
/// its value wherever a word appears, as packetdrill's lexer does.
pub fn parse(src: &str, defines: &HashMap<String, String>) -> PResult<Script> {
    let toks = lex(src).map_err(|e| ParseError {
        line: e.line,
        msg: e.msg,
    })?;
    let mut p = Parser {
        src,
        toks,
        pos: 0,
        defines: defines.clone(),
    };
    p.script()
}

/// Converts a define's value into the token packetdrill's lexer would produce for it.
fn define_token(value: &str) -> Tok {
    if let Some(s) = value.strip_prefix('"') {
        return Tok::Str(s.strip_suffix('"').unwrap_or(s).to_string());
    }
    if let Some(s) = value.strip_prefix('`') {
        return Tok::BackQuoted(s.strip_suffix('`').unwrap_or(s).to_string());
    }
    match parse_c_integer(value) {
        Some(v) => Tok::Int(v),
        None => Tok::Word(value.to_string()),
    }
}

/// strtol(s, 0): decimal, `0x` hex or leading-zero octal, with a sign; the whole string.
pub fn parse_c_integer(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if body.len() > 1 && body.starts_with('0') {
        i64::from_str_radix(&body[1..], 8).ok()?
    } else if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) {
        body.parse().ok()?
    } else {
        return None;
    };
    Some(if neg { -v } else { v })
}

/// Converts a time as written (`1`, `0.1`, `.35`) into microseconds, exactly.
pub fn time_to_usecs(text: &str) -> Option<i64> {
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, f),
        None => (text, ""),
    };
    if int.starts_with('-') {
        return None;
    }
    let secs: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut us: i64 = 0;
    let mut scale = 100_000;
    let mut round_up = false;
    for (i, c) in frac.bytes().enumerate() {
        let d = i64::from(c.checked_sub(b'0').filter(|d| *d <= 9)?);
        if i < 6 {
            us += d * scale;
            scale /= 10;
        } else if i == 6 {
            round_up = d >= 5;
        }
    }
    secs.checked_mul(1_000_000)?
        .checked_add(us + i64::from(round_up))
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    pos: usize,
    defines: HashMap<String, String>,
}

impl Parser<'_> {
    fn tok(&self) -> &Tok {
        &self.toks[self.pos].tok
    }

    fn peek_tok(&self, n: usize) -> &Tok {
        let i = (self.pos + n).min(self.toks.len() - 1);
        &self.toks[i].tok
    }

    fn line(&self) -> u32 {
        self.toks[self.pos].line
    }

    fn advance(&mut self) -> Tok {
        let t = self.toks[self.pos].tok.clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn err<T>(&self, msg: impl Into<String>) -> PResult<T> {
        Err(ParseError {
            line: self.line(),
            msg: msg.into(),
        })
    }

    fn err_at<T>(&self, line: u32, msg: impl Into<String>) -> PResult<T> {
        Err(ParseError {
            line,
            msg: msg.into(),
        })
    }

    fn unexpected<T>(&self, wanted: &str) -> PResult<T> {
        // At the end of the script, blame the line of the last real token.
        let line = if *self.tok() == Tok::Eof && self.pos > 0 {
            self.toks[self.pos - 1].line
        } else {
            self.line()
        };
        self.err_at(
            line,
            format!("syntax error: expected {wanted}, found {}", self.tok()),
        )
    }

    fn is_punct(&self, c: char) -> bool {
        *self.tok() == Tok::Punct(c)
    }

    fn eat_punct(&mut self, c: char) -> bool {
        if self.is_punct(c) {
            self.advance();
            true
        } else {
            false
        }
    }

    fn expect_punct(&mut self, c: char) -> PResult<()> {
        if self.eat_punct(c) {
            Ok(())
        } else {
            self.unexpected(&format!("'{c}'"))
        }
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.tok(), Tok::Word(x) if x == w)
    }

    fn eat_word(&mut self, w: &str) -> bool {
        if self.is_word(w) {
            self.advance();
            true
        } else {
            false
        }
    }

    fn int(&mut self, what: &str) -> PResult<i64> {
        match *self.tok() {
            Tok::Int(v) | Tok::Hex(v) => {
                self.advance();
                Ok(v)
            }
            _ => self.unexpected(what),
        }
    }

    fn int_in(&mut self, what: &str, lo: i64, hi: i64) -> PResult<i64> {
        let line = self.line();
        let v = self.int(what)?;
        if v < lo || v > hi {
            return self.err_at(line, format!("{what} out of range: {v}"));
        }
        Ok(v)
    }

    /// From the current position on: drops `#ifdef NAME ... #endif` regions whose NAME
    /// is not defined (and the markers of the others), and replaces defined words by
    /// their values. A name defined without a value (`-D FreeBSD`) only counts for
    /// `#ifdef`.
    fn apply_defines(&mut self) -> PResult<()> {
        let mut kept = Vec::with_capacity(self.toks.len() - self.pos);
        let mut open: Option<(u32, bool)> = None; // (line of #ifdef, keeping?)
        for mut t in self.toks.drain(self.pos..) {
            match (&t.tok, open) {
                (Tok::Ifdef(_), Some((l, _))) => {
                    return Err(ParseError {
                        line: t.line,
                        msg: format!("#ifdef already seen in line {l}"),
                    });
                }
                (Tok::Ifdef(n), None) => {
                    open = Some((t.line, self.defines.contains_key(n)));
                    continue;
                }
                (Tok::Endif, None) => {
                    return Err(ParseError {
                        line: t.line,
                        msg: "missing #ifdef for #endif".into(),
                    });
                }
                (Tok::Endif, Some(_)) => {
                    open = None;
                    continue;
                }
                (Tok::Eof, Some((l, _))) => {
                    return Err(ParseError {
                        line: l,
                        msg: "unterminated #ifdef".into(),
                    });
                }
                (_, Some((_, false))) => continue,
                _ => {}
            }
            if let Tok::Word(w) = &t.tok {
                if let Some(v) = self.defines.get(w).filter(|v| !v.is_empty()) {
                    t.tok = define_token(v);
                }
            }
            kept.push(t);
        }
        self.toks.extend(kept);
        Ok(())
    }

    fn script(&mut self) -> PResult<Script> {
        let mut script = Script::default();
        while let Tok::Option(name, value) = self.tok().clone() {
            let line = self.line();
            if name == "define" || name == "D" {
                let Some(v) = value.as_deref() else {
                    return self.err("--define needs NAME=VALUE");
                };
                let (k, v) = v.split_once('=').unwrap_or((v, ""));
                self.defines.insert(k.to_string(), v.to_string());
            }
            script.options.push(ScriptOption { name, value, line });
            self.advance();
        }
        self.apply_defines()?;
        if let Tok::BackQuoted(c) = self.tok().clone() {
            script.init_command = Some((self.line(), c));
            self.advance();
        }
        while *self.tok() != Tok::Eof {
            if let Tok::BackQuoted(c) = self.tok().clone() {
                if *self.peek_tok(1) == Tok::Eof {
                    script.cleanup_command = Some((self.line(), c));
                    self.advance();
                    break;
                }
            }
            if let Tok::Option(..) = self.tok() {
                return self.err("option lines must come before the first event");
            }
            let ev = self.event()?;
            script.events.push(ev);
        }
        Ok(script)
    }

    fn time(&mut self) -> PResult<i64> {
        let line = self.line();
        let text = match self.tok() {
            Tok::Int(v) if *v < 0 => return self.err("negative time"),
            Tok::Int(v) => v.to_string(),
            Tok::Float(f) if f.starts_with('-') => return self.err("negative time"),
            Tok::Float(f) => f.clone(),
            _ => return self.unexpected("a time"),
        };
        self.advance();
        match time_to_usecs(&text) {
            Some(t) => Ok(t),
            None => self.err_at(line, format!("bad time: {text}")),
        }
    }

    fn event_time(&mut self) -> PResult<EventTime> {
        if self.eat_punct('*') {
            return Ok(EventTime::Any);
        }
        if self.eat_punct('+') {
            let t = self.time()?;
            if self.eat_punct('~') {
                if !self.eat_punct('+') {
                    return self.unexpected("'+' (a relative range is written +A~+B)");
                }
                let e = self.time()?;
                return Ok(EventTime::RelativeRange(t, e));
            }
            return Ok(EventTime::Relative(t));
        }
        let t = self.time()?;
        if self.eat_punct('~') {
            let e = self.time()?;
            return Ok(EventTime::AbsoluteRange(t, e));
        }
        Ok(EventTime::Absolute(t))
    }

    fn event(&mut self) -> PResult<Event> {
        let line = self.line();
        let time = match self.tok() {
            Tok::Int(_) | Tok::Float(_) | Tok::Punct('+' | '*') => self.event_time()?,
            _ => return self.unexpected("an event time (like 0, +0.1 or *)"),
        };
        match time {
            EventTime::AbsoluteRange(a, b) | EventTime::RelativeRange(a, b) if b < a => {
                return self.err_at(line, "time range is backwards");
            }
            _ => {}
        }
        let action = match self.tok().clone() {
            Tok::Punct('<') => Action::Packet(self.packet(Direction::Inbound)?),
            Tok::Punct('>') => Action::Packet(self.packet(Direction::Outbound)?),
            Tok::BackQuoted(c) => {
                self.advance();
                Action::Command(c)
            }
            Tok::Code(c) => {
                self.advance();
                Action::Code(c)
            }
            Tok::Ellipsis | Tok::Word(_) => Action::Syscall(self.syscall()?),
            _ => {
                return self.unexpected("a packet, a system call, a `command` or %{ code }%");
            }
        };
        let outbound = matches!(&action, Action::Packet(p) if p.dir == Direction::Outbound);
        match time {
            EventTime::Any if !outbound => {
                return self.err_at(line, "event time * can only be used with outbound packets");
            }
            EventTime::AbsoluteRange(..) | EventTime::RelativeRange(..) if !outbound => {
                return self.err_at(
                    line,
                    "event time range can only be used with outbound packets",
                );
            }
            _ => {}
        }
        Ok(Event { line, time, action })
    }

    // ----- packets ------------------------------------------------------------------

    fn packet(&mut self, dir: Direction) -> PResult<PacketSpec> {
        let line = self.line();
        self.advance(); // '<' or '>'
        let ip = self.opt_ip_info()?;
        match self.tok() {
            Tok::Word(w) if matches!(w.as_str(), "udp" | "icmp") => {
                return self.err(format!("{w} packets are not supported (TCP only)"));
            }
            Tok::Word(w) if matches!(w.as_str(), "ipv4" | "ipv6" | "gre" | "GREv0" | "mpls") => {
                return self.err(format!("encapsulated packets ({w}) are not supported"));
            }
            _ => {}
        }
        let ports = if matches!(self.tok(), Tok::Int(_)) && *self.peek_tok(1) == Tok::Punct('>') {
            let s = self.int_in("source port", 0, 65535)? as u16;
            self.expect_punct('>')?;
            let d = self.int_in("destination port", 0, 65535)? as u16;
            Some((s, d))
        } else {
            None
        };
        let flags = self.flags()?;
        let seq_line = self.line();
        let (mut start, mut seq_ignore, len) = (0, false, 0);
        let len = if *self.tok() == Tok::Ellipsis {
            // `...(n)`: any sequence number.
            self.advance();
            seq_ignore = true;
            self.expect_punct('(')?;
            let n = self.int_in("TCP payload size", 0, 65535)?;
            self.expect_punct(')')?;
            n
        } else {
            start = self.int_in("TCP start sequence number", 0, u32::MAX.into())?;
            self.expect_punct(':')?;
            let end = self.int_in("TCP end sequence number", 0, u32::MAX.into())?;
            self.expect_punct('(')?;
            let n = self.int_in("TCP payload size", 0, 65535)?;
            self.expect_punct(')')?;
            if end != start + n {
                return self.err_at(
                    seq_line,
                    format!(
                        "inconsistent TCP sequence numbers and payload size: {start}:{end}({n})"
                    ),
                );
            }
            n + len
        };
        let seq_absolute = self.eat_punct('!');
        let mut spec = PacketSpec {
            dir,
            ip,
            ports,
            flags,
            seq: start as u32,
            len: len as u16,
            ack: None,
            win: None,
            urg: None,
            options: Some(Vec::new()),
            seq_absolute,
            seq_ignore,
            ts_val_ignore: false,
            ts_ecr_absolute: false,
        };
        loop {
            if self.eat_word("ack") {
                spec.ack = Some(self.int_in("TCP ack sequence number", 0, u32::MAX.into())? as u32);
            } else if self.eat_word("win") {
                spec.win = Some(self.int_in("TCP window value", 0, 65535)? as u16);
            } else if self.eat_word("urg") {
                spec.urg = Some(self.int_in("urg_ptr value", 0, 65535)? as u16);
            } else {
                break;
            }
        }
        if self.is_punct('<') {
            spec.options = self.tcp_options(&mut spec.ts_val_ignore, &mut spec.ts_ecr_absolute)?;
        }
        if self.is_punct('[') {
            return self.err("RST diagnostic payloads are not supported");
        }
        if self.is_punct('/') {
            return self.err("TCP over UDP encapsulation is not supported");
        }
        if dir == Direction::Inbound {
            if spec.win.is_none() {
                return self.err_at(line, "window must be specified for inbound packets");
            }
            if spec.options.is_none() {
                return self.err_at(
                    line,
                    "<...> for TCP options can only be used with outbound packets",
                );
            }
            if ip.ecn == Some(Ecn::Ect01) {
                return self.err_at(line, "[ect01] can only be used with outbound packets");
            }
        }
        if let Some(o) = &spec.options {
            let mut bytes = Vec::new();
            for x in o {
                x.encode(&mut bytes);
            }
            if bytes.len() > 40 {
                return self.err_at(line, "TCP option list too long");
            }
            if bytes.len() % 4 != 0 {
                return self.err_at(
                    line,
                    format!(
                        "TCP options are not padded correctly to ensure TCP header is a \
                         multiple of 4 bytes: {} excess bytes",
                        bytes.len() % 4
                    ),
                );
            }
        }
        Ok(spec)
    }

    fn opt_ip_info(&mut self) -> PResult<IpInfo> {
        let close = if self.eat_punct('[') {
            ']'
        } else if self.eat_punct('(') {
            ')'
        } else {
            return Ok(IpInfo::default());
        };
        let mut ip = IpInfo::default();
        loop {
            let Tok::Word(w) = self.tok().clone() else {
                return self.unexpected("an ECN codepoint, tos, flowlabel or ttl");
            };
            self.advance();
            match w.as_str() {
                "noecn" => ip.ecn = Some(Ecn::NotEct),
                "ect0" => ip.ecn = Some(Ecn::Ect0),
                "ect1" => ip.ecn = Some(Ecn::Ect1),
                "ce" => ip.ecn = Some(Ecn::Ce),
                "ect01" => ip.ecn = Some(Ecn::Ect01),
                "tos" => ip.tos = Some(self.int_in("tos", 0, 255)? as u8),
                "ttl" | "hlim" => ip.ttl = Some(self.int_in("ttl", 0, 255)? as u8),
                "class" => ip.tos = Some(self.int_in("class", 0, 255)? as u8),
                "ecn" => {
                    let Tok::Word(e) = self.advance() else {
                        return self.unexpected("an ECN codepoint");
                    };
                    ip.ecn = Some(match e.as_str() {
                        "noecn" => Ecn::NotEct,
                        "ect0" => Ecn::Ect0,
                        "ect1" => Ecn::Ect1,
                        "ce" => Ecn::Ce,
                        "ect01" => Ecn::Ect01,
                        _ => return self.err(format!("unknown ECN codepoint '{e}'")),
                    });
                }
                "dscp" => {
                    let d = match self.advance() {
                        Tok::Int(v) | Tok::Hex(v) if (0..64).contains(&v) => v as u8,
                        Tok::Word(c) if c.len() == 3 && c.starts_with("CS") => {
                            (c.as_bytes()[2].wrapping_sub(b'0') & 7) << 3
                        }
                        _ => return self.err("bad dscp value"),
                    };
                    ip.tos = Some((d << 2) | ip.tos.unwrap_or(0) & 3);
                }
                "flowlabel" => ip.flow_label = Some(self.int_in("flowlabel", 0, 0xfffff)? as u32),
                _ => return self.err(format!("unknown IP info '{w}'")),
            }
            if !self.eat_punct(',') {
                break;
            }
        }
        self.expect_punct(close)?;
        Ok(ip)
    }

    fn flags(&mut self) -> PResult<TcpFlags> {
        let line = self.line();
        let mut text = String::new();
        match self.tok().clone() {
            Tok::Punct('.') => {
                self.advance();
                text.push('.');
            }
            Tok::Punct('-') => {
                self.advance();
            }
            Tok::Word(w) => {
                self.advance();
                text.push_str(&w);
                if self.eat_punct('.') {
                    text.push('.');
                    // The FreeBSD dialect allows more flags after the dot (`.E`).
                    if let Tok::Word(more) = self.tok().clone() {
                        if more.bytes().all(|b| b"FSRPEWAU".contains(&b)) {
                            self.advance();
                            text.push_str(&more);
                        }
                    }
                }
            }
            Tok::Int(v) if (0..=7).contains(&v) => {
                self.advance();
                text.push_str(&v.to_string());
                if self.eat_punct('.') {
                    text.push('.');
                }
            }
            _ => return self.unexpected("TCP flags (like S, S., F., P., R, . or -)"),
        }
        let mut f = TcpFlags::default();
        for c in text.chars() {
            let bit = match c {
                'F' => TcpFlags::FIN,
                'S' => TcpFlags::SYN,
                'R' => TcpFlags::RST,
                'P' => TcpFlags::PSH,
                '.' => TcpFlags::ACK,
                'U' => TcpFlags::URG,
                'E' => TcpFlags::ECE,
                'W' => TcpFlags::CWR,
                'A' => {
                    f.ae = true;
                    0
                }
                '0'..='7' => {
                    if f.ace.is_some() || f.has(TcpFlags::ECE) || f.has(TcpFlags::CWR) || f.ae {
                        return self.err_at(line, format!("Conflicting TCP flag: '{c}'"));
                    }
                    f.ace = Some(c as u8 - b'0');
                    0
                }
                _ => return self.err_at(line, format!("Invalid TCP flag: '{c}'")),
            };
            f.bits |= bit;
        }
        if let Some(ace) = f.ace {
            if f.bits & (TcpFlags::ECE | TcpFlags::CWR) != 0 || f.ae {
                return self.err_at(line, "Conflicting TCP flag: ACE with E/W/A");
            }
            if ace & 1 != 0 {
                f.bits |= TcpFlags::ECE;
            }
            if ace & 2 != 0 {
                f.bits |= TcpFlags::CWR;
            }
            f.ae = ace & 4 != 0;
        }
        Ok(f)
    }

    fn tcp_options(
        &mut self,
        ts_val_ignore: &mut bool,
        ts_ecr_absolute: &mut bool,
    ) -> PResult<Option<Vec<TcpOption>>> {
        self.expect_punct('<')?;
        if *self.tok() == Tok::Ellipsis {
            self.advance();
            self.expect_punct('>')?;
            return Ok(None);
        }
        let mut out = Vec::new();
        loop {
            out.push(self.tcp_option(ts_val_ignore, ts_ecr_absolute)?);
            if !self.eat_punct(',') {
                break;
            }
        }
        self.expect_punct('>')?;
        Ok(Some(out))
    }

    fn tcp_option(
        &mut self,
        ts_val_ignore: &mut bool,
        ts_ecr_absolute: &mut bool,
    ) -> PResult<TcpOption> {
        let Tok::Word(w) = self.tok().clone() else {
            return self.unexpected("a TCP option (nop, eol, mss, wscale, sackOK, sack, TS, ...)");
        };
        self.advance();
        Ok(match w.as_str() {
            "nop" => TcpOption::Nop,
            "eol" => TcpOption::Eol,
            "mss" => TcpOption::Mss(self.int_in("mss value", 0, 65535)? as u16),
            "wscale" => TcpOption::Wscale(self.int_in("window scale shift count", 0, 255)? as u8),
            "sackOK" => TcpOption::SackOk,
            "sack" => {
                let mut blocks = Vec::new();
                while matches!(self.tok(), Tok::Int(_)) {
                    let l = self.int_in("TCP SACK left sequence number", 0, u32::MAX.into())?;
                    self.expect_punct(':')?;
                    let r = self.int_in("TCP SACK right sequence number", 0, u32::MAX.into())?;
                    blocks.push((l as u32, r as u32));
                }
                if blocks.is_empty() {
                    return self.unexpected("a SACK block (left:right)");
                }
                TcpOption::Sack(blocks)
            }
            "TS" => {
                if !self.eat_word("val") {
                    return self.unexpected("'val'");
                }
                let val = if *self.tok() == Tok::Ellipsis {
                    self.advance();
                    *ts_val_ignore = true;
                    0
                } else {
                    self.int_in("ts val", 0, u32::MAX.into())? as u32
                };
                if !self.eat_word("ecr") {
                    return self.unexpected("'ecr'");
                }
                let ecr = self.int_in("ecr val", 0, u32::MAX.into())? as u32;
                *ts_ecr_absolute |= self.eat_punct('!');
                TcpOption::Timestamp { val, ecr }
            }
            "md5" if self.eat_word("valid") => TcpOption::Raw {
                kind: 19,
                data: vec![0; 16],
            },
            "md5" => TcpOption::Raw {
                kind: 19,
                data: self.hex_blob(true)?,
            },
            "FO" => TcpOption::Raw {
                kind: 34,
                data: self.hex_blob(false)?,
            },
            "FOEXP" => {
                let mut data = vec![0xf9, 0x89];
                data.extend(self.hex_blob(false)?);
                TcpOption::Raw { kind: 254, data }
            }
            "ECN" => return self.err("AccECN options are not supported"),
            _ => return self.err(format!("unknown TCP option '{w}'")),
        })
    }

    /// A hex blob (`md5 0123...`, `FO 0a0b`); optional unless `required`.
    fn hex_blob(&mut self, required: bool) -> PResult<Vec<u8>> {
        let t = &self.toks[self.pos];
        let text = match &t.tok {
            Tok::Word(w) => w.clone(),
            Tok::Int(v) if *v >= 0 => self.src[t.start..t.end].to_string(),
            _ if required => return self.unexpected("a hex string"),
            _ => return Ok(Vec::new()),
        };
        self.advance();
        if text.len() % 2 != 0 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return self.err(format!("bad hex string '{text}'"));
        }
        Ok((0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap_or(0))
            .collect())
    }

    // ----- system calls -------------------------------------------------------------

    fn syscall(&mut self) -> PResult<SyscallSpec> {
        let end = if *self.tok() == Tok::Ellipsis {
            self.advance();
            Some(self.time()?)
        } else {
            None
        };
        let name = match self.tok().clone() {
            Tok::Word(w) => {
                self.advance();
                w
            }
            _ => return self.unexpected("a system call name"),
        };
        self.expect_punct('(')?;
        let mut args = Vec::new();
        if !self.eat_punct(')') {
            loop {
                args.push(self.expr()?);
                if !self.eat_punct(',') {
                    break;
                }
            }
            self.expect_punct(')')?;
        }
        if !self.eat_punct('=') {
            return self.unexpected("'=' and the expected result");
        }
        let result = self.result_expr()?;
        let mut errno = None;
        if let Tok::Word(w) = self.tok().clone() {
            self.advance();
            errno = Some(w);
        }
        let note = if self.is_punct('(') {
            Some(self.note()?)
        } else {
            None
        };
        Ok(SyscallSpec {
            end,
            name,
            args,
            result,
            errno,
            note,
        })
    }

    /// `(free text)` after a result: taken as written, up to the matching parenthesis.
    fn note(&mut self) -> PResult<String> {
        let line = self.line();
        let start = self.toks[self.pos].end;
        self.advance();
        let mut depth = 1;
        loop {
            match self.tok() {
                Tok::Eof => return self.err_at(line, "unterminated note: missing ')'"),
                Tok::Punct('(') => depth += 1,
                Tok::Punct(')') => {
                    depth -= 1;
                    if depth == 0 {
                        let end = self.toks[self.pos].start;
                        self.advance();
                        return Ok(self.src[start..end].trim().to_string());
                    }
                }
                _ => {}
            }
            self.advance();
        }
    }

    /// The expected result: an integer, a symbol, `...`, or an OR of those.
    fn result_expr(&mut self) -> PResult<Expr> {
        let mut e = self.result_atom()?;
        while self.eat_punct('|') {
            let r = self.result_atom()?;
            e = Expr::Or(Box::new(e), Box::new(r));
        }
        Ok(e)
    }

    fn result_atom(&mut self) -> PResult<Expr> {
        match self.tok().clone() {
            Tok::Int(v) | Tok::Hex(v) => {
                self.advance();
                Ok(Expr::Int(v))
            }
            Tok::Word(w) => {
                self.advance();
                Ok(Expr::Word(w))
            }
            Tok::Ellipsis => {
                self.advance();
                Ok(Expr::Ellipsis)
            }
            Tok::Punct('[') | Tok::Punct('{') | Tok::Str(_) => self.primary(),
            _ => self.unexpected("the expected result"),
        }
    }

    fn expr(&mut self) -> PResult<Expr> {
        let mut e = self.primary()?;
        while self.eat_punct('|') {
            let r = self.primary()?;
            e = Expr::Or(Box::new(e), Box::new(r));
        }
        Ok(e)
    }

    fn expr_list(&mut self, close: char) -> PResult<Vec<Expr>> {
        let mut out = Vec::new();
        if self.eat_punct(close) {
            return Ok(out);
        }
        loop {
            out.push(self.expr()?);
            if !self.eat_punct(',') {
                break;
            }
        }
        self.expect_punct(close)?;
        Ok(out)
    }

    fn primary(&mut self) -> PResult<Expr> {
        match self.tok().clone() {
            Tok::Ellipsis => {
                self.advance();
                Ok(Expr::Ellipsis)
            }
            Tok::Int(v) | Tok::Hex(v) => {
                self.advance();
                Ok(Expr::Int(v))
            }
            Tok::Str(s) => {
                self.advance();
                let mut s = s;
                while let Tok::Str(more) = self.tok().clone() {
                    self.advance();
                    s.push_str(&more);
                }
                if *self.tok() == Tok::Ellipsis {
                    self.advance();
                }
                Ok(Expr::Str(s))
            }
            Tok::Ipv4(a) | Tok::Ipv6(a) => {
                self.advance();
                Ok(Expr::Str(a))
            }
            Tok::Punct('[') => {
                self.advance();
                Ok(Expr::List(self.expr_list(']')?))
            }
            Tok::Punct('{') => {
                self.advance();
                Ok(Expr::Struct(self.expr_list('}')?))
            }
            Tok::Word(w) => {
                self.advance();
                let mut e = Expr::Word(w.clone());
                if self.eat_punct('(') {
                    e = Expr::Call(w.clone(), self.expr_list(')')?);
                }
                if self.eat_punct('=') {
                    let v = self.expr()?;
                    e = Expr::Named(w, Box::new(v));
                }
                Ok(e)
            }
            _ => self.unexpected("an expression"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PResult<Script> {
        parse(s, &HashMap::new())
    }

    #[test]
    fn times_convert_exactly() {
        assert_eq!(time_to_usecs("0.57"), Some(570_000));
        assert_eq!(time_to_usecs(".35"), Some(350_000));
        assert_eq!(time_to_usecs("2"), Some(2_000_000));
        assert_eq!(time_to_usecs("0.0000015"), Some(2));
        assert_eq!(time_to_usecs("-1"), None);
    }

    #[test]
    fn options_and_events() {
        let s = p("--ip_version=ipv4\n--tolerance_usecs=50000\n\
             0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
             +0.1 > S 0:0(0) win 65535 <mss 1460,nop,wscale 6,sackOK,TS val 100 ecr 0>\n\
             +.35~+2.35 > S. 0:0(0) ack 1 <...>\n\
             * > . 1:1(0) ack 1\n\
             +0 `sysctl -w net.inet.tcp.rfc1323=1`\n\
             +0 %{ assert tcpi_state == TCPI_CLOSED }%\n")
        .unwrap();
        assert_eq!(s.options.len(), 2);
        assert_eq!(s.options[1].value.as_deref(), Some("50000"));
        assert_eq!(s.events.len(), 6);
        assert_eq!(s.events[0].line, 3);
        let Action::Packet(syn) = &s.events[1].action else {
            panic!()
        };
        assert_eq!(syn.flags.bits, TcpFlags::SYN);
        assert_eq!(syn.win, Some(65535));
        assert_eq!(syn.options.as_ref().unwrap().len(), 5);
        assert_eq!(
            s.events[2].time,
            EventTime::RelativeRange(350_000, 2_350_000)
        );
        let Action::Packet(sa) = &s.events[2].action else {
            panic!()
        };
        assert_eq!(sa.options, None);
        assert_eq!(s.events[3].time, EventTime::Any);
        assert!(matches!(s.events[4].action, Action::Command(_)));
        assert!(matches!(s.events[5].action, Action::Code(_)));
    }

    #[test]
    fn syscalls_with_errno_notes_and_structures() {
        let s = p("0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)\n\
             +0 fcntl(3, F_GETFL) = 0x02 (flags O_RDWR)\n\
             +0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n\
             +0 setsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0\n\
             +0...0.2 poll([{fd=3, events=POLLIN, revents=POLLIN}], 1, 1000) = 1\n\
             +0 connect(3, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr(\"192.0.2.1\")}, 16) = 0\n\
             +0 writev(4, [{..., 10}, {..., 20}], 2) = 30\n")
        .unwrap();
        let Action::Syscall(c) = &s.events[0].action else {
            panic!()
        };
        assert_eq!(c.result, Expr::Int(-1));
        assert_eq!(c.errno.as_deref(), Some("EINPROGRESS"));
        assert_eq!(c.note.as_deref(), Some("Operation now in progress"));
        let Action::Syscall(c) = &s.events[1].action else {
            panic!()
        };
        assert_eq!(c.result, Expr::Int(2));
        assert_eq!(c.errno, None);
        let Action::Syscall(c) = &s.events[4].action else {
            panic!()
        };
        assert_eq!(c.end, Some(200_000));
        assert!(
            matches!(&c.args[0], Expr::List(v) if matches!(&v[0], Expr::Struct(f) if f.len() == 3))
        );
    }

    #[test]
    fn packet_details() {
        let s = p("0 <[noecn] . 1:1(0) ack 1 win 65535\n\
             +0 > [ect0] P. 1:11(10) ack 1\n\
             +0 < SEW 0:0(0) win 32767 <mss 1460,sackOK,eol,eol>\n\
             +0 > . 1:1(0) ack 1 <nop,nop,sack 3:4 5:6>\n\
             +0 < - 0:0(0) win 0\n")
        .unwrap();
        let pk = |i: usize| match &s.events[i].action {
            Action::Packet(p) => p.clone(),
            _ => panic!(),
        };
        assert_eq!(pk(0).ip.ecn, Some(Ecn::NotEct));
        assert_eq!(pk(1).ip.ecn, Some(Ecn::Ect0));
        assert_eq!(pk(1).len, 10);
        assert_eq!(
            pk(2).flags.bits,
            TcpFlags::SYN | TcpFlags::ECE | TcpFlags::CWR
        );
        assert_eq!(
            pk(3).options.as_ref().unwrap()[2],
            TcpOption::Sack(vec![(3, 4), (5, 6)])
        );
        assert_eq!(pk(4).flags.bits, 0);
        assert_eq!(pk(3).to_string(), "> . 1:1(0) ack 1 <nop,nop,sack 3:4 5:6>");
    }

    #[test]
    fn defines_substitute_words() {
        let mut d = HashMap::new();
        d.insert("PORT".to_string(), "0x1f90".to_string());
        let s = parse(
            "--define=FD=3\n0 close(FD) = 0\n+0 htons_test(PORT, X) = 0\n",
            &d,
        )
        .unwrap();
        let Action::Syscall(c) = &s.events[0].action else {
            panic!()
        };
        assert_eq!(c.args, vec![Expr::Int(3)]);
        let Action::Syscall(c) = &s.events[1].action else {
            panic!()
        };
        assert_eq!(c.args[0], Expr::Int(8080));
    }

    #[test]
    fn errors_name_the_line() {
        let e =
            p("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < S 0:10(0) win 1\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.msg.contains("inconsistent"), "{e}");
        let e = p("0 socket() = 3\n\n+0 < S 0:0(0)\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.msg.contains("window must be specified"));
        let e = p("0 socket() = 3\n+0 < S 0:0(0) win 1 <...>\n").unwrap_err();
        assert!(e.msg.contains("<...>"));
        let e = p("* close(3) = 0\n").unwrap_err();
        assert!(e.msg.contains("outbound"));
        let e = p("0 > S 0:0(0) <mss 1460,nop>\n").unwrap_err();
        assert!(e.msg.contains("padded"));
        let e = p("0 > Q 0:0(0)\n").unwrap_err();
        assert!(e.msg.contains("Invalid TCP flag"));
        let e = p("0 close(3 = 0\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = p("0 close(3) = 0\n+0 frobnicate\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = p("0 `init`\n1.0 < S 0:0(0) win 1\n0.5~0.2 > S. 0:0(0) ack 1\n").unwrap_err();
        assert!(e.msg.contains("backwards"));
    }

    #[test]
    fn ifdef_regions() {
        let mut d = HashMap::new();
        d.insert("FreeBSD".to_string(), String::new());
        let src = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n#ifdef STANDARD\n+0 close(3) = 0\n#endif\n\
                   #ifdef FreeBSD\n+0 close(4) = 0\n#endif\n";
        let s = parse(src, &d).unwrap();
        assert_eq!(s.events.len(), 2);
        let Action::Syscall(c) = &s.events[1].action else {
            panic!()
        };
        assert_eq!(c.args, vec![Expr::Int(4)]);
        assert_eq!(s.events[1].line, 6);
        let e = parse("0 close(3) = 0\n#ifdef A\n#ifdef B\n#endif\n", &d).unwrap_err();
        assert_eq!(e.line, 3);
        let e = parse("0 close(3) = 0\n#ifdef A\n", &d).unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn init_and_cleanup_commands() {
        let s = p(
            "`../common/defaults.sh`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n`echo done`\n",
        )
        .unwrap();
        assert_eq!(s.init_command.as_ref().unwrap().1, "../common/defaults.sh");
        assert_eq!(s.cleanup_command.as_ref().unwrap().1, "echo done");
        assert_eq!(s.events.len(), 1);
    }
}
