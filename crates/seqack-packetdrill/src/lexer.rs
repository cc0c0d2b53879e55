//! The lexer: script text to tokens, each with its line number.
//!
//! Written from packetdrill's token list (lexer.l): C and C++ comments, `%{ ... }%`
//! code blocks, back-quoted shell commands, quoted strings, `--option[=value]`,
//! integers (decimal, negative, hex), decimal fractions, IPv4 and IPv6 addresses, words,
//! `...`, and single punctuation characters. As in flex, the longest match wins, and a
//! hex integer beats a word of the same length. Keywords are left as words; the parser
//! looks at their text where the grammar expects one.

use core::fmt;

/// One token.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// A decimal integer, possibly negative.
    Int(i64),
    /// A `0x` hexadecimal integer.
    Hex(i64),
    /// A number with a decimal point, kept as written (times are converted exactly).
    Float(String),
    /// A word: letters, digits, underscores.
    Word(String),
    /// A double-quoted string, without its quotes.
    Str(String),
    /// A back-quoted shell command, without its quotes.
    BackQuoted(String),
    /// A `%{ ... }%` code block, without its delimiters.
    Code(String),
    /// `--name` or `--name=value` (the value as written, quotes removed).
    Option(String, Option<String>),
    /// An IPv4 address.
    Ipv4(String),
    /// An IPv6 address.
    Ipv6(String),
    /// `...`
    Ellipsis,
    /// `#ifdef NAME` (the FreeBSD dialect's conditional, without nesting or `#else`).
    Ifdef(String),
    /// `#endif`.
    Endif,
    /// Any other single character.
    Punct(char),
    /// The end of the script.
    Eof,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Int(v) => write!(f, "{v}"),
            Tok::Hex(v) => write!(f, "{v:#x}"),
            Tok::Float(s) | Tok::Word(s) | Tok::Ipv4(s) | Tok::Ipv6(s) => write!(f, "{s}"),
            Tok::Str(s) => write!(f, "\"{s}\""),
            Tok::BackQuoted(s) => write!(f, "`{s}`"),
            Tok::Code(_) => write!(f, "%{{ ... }}%"),
            Tok::Option(n, None) => write!(f, "--{n}"),
            Tok::Option(n, Some(v)) => write!(f, "--{n}={v}"),
            Tok::Ellipsis => write!(f, "..."),
            Tok::Ifdef(n) => write!(f, "#ifdef {n}"),
            Tok::Endif => write!(f, "#endif"),
            Tok::Punct(c) => write!(f, "'{c}'"),
            Tok::Eof => write!(f, "end of script"),
        }
    }
}

/// A token and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    /// What it is.
    pub tok: Tok,
    /// 1-based line number of its first character.
    pub line: u32,
    /// Byte offset of its first character in the script.
    pub start: usize,
    /// Byte offset just past it.
    pub end: usize,
}

/// A lexical error: what and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexError {
    /// 1-based line number.
    pub line: u32,
    /// What went wrong.
    pub msg: String,
}

impl fmt::Display for LexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.msg)
    }
}

/// Splits a script into tokens, ending with [`Tok::Eof`].
pub fn lex(src: &str) -> Result<Vec<Token>, LexError> {
    let mut lx = Lexer {
        s: src.as_bytes(),
        src,
        pos: 0,
        line: 1,
    };
    let mut out = Vec::new();
    loop {
        lx.skip_space_and_comments()?;
        let start = lx.pos;
        let line = lx.line;
        let Some(tok) = lx.next_token()? else {
            out.push(Token {
                tok: Tok::Eof,
                line,
                start,
                end: start,
            });
            return Ok(out);
        };
        out.push(Token {
            tok,
            line,
            start,
            end: lx.pos,
        });
    }
}

struct Lexer<'a> {
    s: &'a [u8],
    src: &'a str,
    pos: usize,
    line: u32,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl Lexer<'_> {
    fn peek(&self, off: usize) -> Option<u8> {
        self.s.get(self.pos + off).copied()
    }

    /// Advances over `n` bytes, counting newlines.
    fn bump(&mut self, n: usize) {
        let end = (self.pos + n).min(self.s.len());
        self.line += self.s[self.pos..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u32;
        self.pos = end;
    }

    fn err<T>(&self, line: u32, msg: impl Into<String>) -> Result<T, LexError> {
        Err(LexError {
            line,
            msg: msg.into(),
        })
    }

    fn skip_space_and_comments(&mut self) -> Result<(), LexError> {
        loop {
            match (self.peek(0), self.peek(1)) {
                (Some(b' ' | b'\t' | b'\n' | b'\r' | b'\x0c'), _) => self.bump(1),
                (Some(b'/'), Some(b'/')) => {
                    let n = self.s[self.pos..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .unwrap_or(self.s.len() - self.pos);
                    self.bump(n);
                }
                (Some(b'/'), Some(b'*')) => {
                    let line = self.line;
                    match self.src[self.pos + 2..].find("*/") {
                        Some(i) => self.bump(i + 4),
                        None => return self.err(line, "unterminated /* comment"),
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// Reads up to the closing delimiter `close` (a backslash escapes the next byte).
    fn delimited(&mut self, close: u8, what: &str) -> Result<String, LexError> {
        let line = self.line;
        let mut i = self.pos + 1;
        while i < self.s.len() {
            match self.s[i] {
                b'\\' => i += 2,
                b if b == close => {
                    let body = self.src[self.pos + 1..i].to_string();
                    self.bump(i + 1 - self.pos);
                    return Ok(body);
                }
                _ => i += 1,
            }
        }
        self.err(line, format!("unterminated {what}"))
    }

    fn next_token(&mut self) -> Result<Option<Tok>, LexError> {
        let Some(c) = self.peek(0) else {
            return Ok(None);
        };
        let line = self.line;
        match c {
            b'%' if self.peek(1) == Some(b'{') => {
                return match self.src[self.pos + 2..].find("}%") {
                    Some(i) => {
                        let body = self.src[self.pos + 2..self.pos + 2 + i].to_string();
                        self.bump(i + 4);
                        Ok(Some(Tok::Code(body)))
                    }
                    None => self.err(line, "unterminated %{ code block"),
                };
            }
            b'`' => return Ok(Some(Tok::BackQuoted(self.delimited(b'`', "`command`")?))),
            b'"' => return Ok(Some(Tok::Str(self.delimited(b'"', "string")?))),
            b'-' if self.peek(1) == Some(b'-') && self.peek(2).is_some_and(is_word_byte) => {
                return self.option().map(Some);
            }
            b'#' if self.src[self.pos..].starts_with("#endif") => {
                self.bump(6);
                return Ok(Some(Tok::Endif));
            }
            b'#' if self.src[self.pos..].starts_with("#ifdef") => {
                self.bump(6);
                while matches!(self.peek(0), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                    self.bump(1);
                }
                let n = self.s[self.pos..]
                    .iter()
                    .take_while(|&&b| is_word_byte(b))
                    .count();
                if n == 0 || !self.s[self.pos].is_ascii_alphabetic() {
                    return self.err(line, "#ifdef must be followed by a name");
                }
                let name = self.src[self.pos..self.pos + n].to_string();
                self.bump(n);
                return Ok(Some(Tok::Ifdef(name)));
            }
            b'.' if self.peek(1) == Some(b'.') && self.peek(2) == Some(b'.') => {
                self.bump(3);
                return Ok(Some(Tok::Ellipsis));
            }
            _ => {}
        }
        if let Some((len, tok)) = self.number_word_or_address()? {
            self.bump(len);
            return Ok(Some(tok));
        }
        // Any other single character (possibly multi-byte UTF-8).
        let ch = self.src[self.pos..].chars().next().unwrap_or('?');
        self.bump(ch.len_utf8());
        Ok(Some(Tok::Punct(ch)))
    }

    /// `--name` or `--name=value`: the value runs to the next blank, or is quoted.
    fn option(&mut self) -> Result<Tok, LexError> {
        let start = self.pos + 2;
        let mut i = start;
        while i < self.s.len() && is_word_byte(self.s[i]) {
            i += 1;
        }
        let name = self.src[start..i].to_string();
        self.bump(i - self.pos);
        if self.peek(0) != Some(b'=') {
            return Ok(Tok::Option(name, None));
        }
        self.bump(1);
        let value = match self.peek(0) {
            Some(q @ (b'"' | b'`')) => self.delimited(q, "option value")?,
            _ => {
                let n = self.s[self.pos..]
                    .iter()
                    .position(|b| b.is_ascii_whitespace())
                    .unwrap_or(self.s.len() - self.pos);
                let v = self.src[self.pos..self.pos + n].to_string();
                self.bump(n);
                v
            }
        };
        Ok(Tok::Option(name, Some(value)))
    }

    /// The longest of: decimal fraction, integer, hex integer, word, IPv4 address,
    /// IPv6 address, starting here. Ties go to the earlier of integer, hex, word,
    /// as in packetdrill's rule order.
    fn number_word_or_address(&self) -> Result<Option<(usize, Tok)>, LexError> {
        let s = &self.s[self.pos..];
        let text = &self.src[self.pos..];
        let digits = |from: usize| s[from..].iter().take_while(|b| b.is_ascii_digit()).count();
        let mut best: Option<(usize, u8)> = None; // (length, kind)
        let mut consider = |len: usize, kind: u8| {
            if len > 0 && best.is_none_or(|(l, _)| len > l) {
                best = Some((len, kind));
            }
        };
        let neg = usize::from(s.first() == Some(&b'-'));
        // FLOAT: -?[0-9]*\.[0-9]+
        let int_part = digits(neg);
        if s.get(neg + int_part) == Some(&b'.') {
            let frac = digits(neg + int_part + 1);
            if frac > 0 {
                consider(neg + int_part + 1 + frac, 1);
            }
        }
        // INTEGER: -?[0-9]+
        if int_part > 0 {
            consider(neg + int_part, 2);
        }
        // HEX: 0x[0-9a-fA-F]+
        if s.starts_with(b"0x") || s.starts_with(b"0X") {
            let h = s[2..].iter().take_while(|b| b.is_ascii_hexdigit()).count();
            if h > 0 {
                consider(2 + h, 3);
            }
        }
        // WORD: [a-zA-Z0-9_]+
        consider(s.iter().take_while(|&&b| is_word_byte(b)).count(), 4);
        // IPv4: [0-9]+.[0-9]+.[0-9]+.[0-9]+
        if let Some(n) = ipv4_len(s) {
            consider(n, 5);
        }
        // IPv6: the longest prefix of hex digits, colons and dots that parses.
        let run = s
            .iter()
            .take_while(|&&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            .count();
        if run > 0 && s[..run].contains(&b':') {
            let mut n = run;
            while n > 1 {
                let cand = &text[..n];
                if cand.contains(':') && cand.parse::<core::net::Ipv6Addr>().is_ok() {
                    consider(n, 6);
                    break;
                }
                n -= 1;
            }
        }
        let Some((len, kind)) = best else {
            return Ok(None);
        };
        let t = &text[..len];
        let tok = match kind {
            1 => Tok::Float(t.to_string()),
            // Too long for an integer: kept as a word (a hex blob, say); where the
            // grammar wants a number the parser then reports it.
            2 => match t.parse::<i64>() {
                Ok(v) => Tok::Int(v),
                Err(_) => Tok::Word(t.to_string()),
            },
            3 => match i64::from_str_radix(&t[2..], 16) {
                Ok(v) => Tok::Hex(v),
                Err(_) => return self.err(self.line, format!("integer out of range: {t}")),
            },
            4 => Tok::Word(t.to_string()),
            5 => Tok::Ipv4(t.to_string()),
            _ => Tok::Ipv6(t.to_string()),
        };
        Ok(Some((len, tok)))
    }
}

fn ipv4_len(s: &[u8]) -> Option<usize> {
    let mut i = 0;
    for part in 0..4 {
        let d = s[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        if d == 0 {
            return None;
        }
        i += d;
        if part < 3 {
            if s.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn packet_line() {
        assert_eq!(
            toks("+0.1 < S. 0:0(0) ack 1 win 32767 <mss 1460,sackOK>"),
            vec![
                Tok::Punct('+'),
                Tok::Float("0.1".into()),
                Tok::Punct('<'),
                Tok::Word("S".into()),
                Tok::Punct('.'),
                Tok::Int(0),
                Tok::Punct(':'),
                Tok::Int(0),
                Tok::Punct('('),
                Tok::Int(0),
                Tok::Punct(')'),
                Tok::Word("ack".into()),
                Tok::Int(1),
                Tok::Word("win".into()),
                Tok::Int(32767),
                Tok::Punct('<'),
                Tok::Word("mss".into()),
                Tok::Int(1460),
                Tok::Punct(','),
                Tok::Word("sackOK".into()),
                Tok::Punct('>'),
                Tok::Eof,
            ]
        );
    }

    #[test]
    fn numbers_addresses_and_words() {
        assert_eq!(
            toks("-1 0x02 .35 1.2.3.4 fd3d:fa7b:d17d::0 1:1001 8080abc"),
            vec![
                Tok::Int(-1),
                Tok::Hex(2),
                Tok::Float(".35".into()),
                Tok::Ipv4("1.2.3.4".into()),
                Tok::Ipv6("fd3d:fa7b:d17d::0".into()),
                Tok::Int(1),
                Tok::Punct(':'),
                Tok::Int(1001),
                Tok::Word("8080abc".into()),
                Tok::Eof,
            ]
        );
    }

    #[test]
    fn comments_code_commands_options_and_lines() {
        let t =
            lex("--ip_version=ipv4 --x\n// c\n/* a\nb */ `sysctl -w a=1`\n%{\nassert 1\n}% ...0.2")
                .unwrap();
        assert_eq!(
            t[0].tok,
            Tok::Option("ip_version".into(), Some("ipv4".into()))
        );
        assert_eq!(t[1].tok, Tok::Option("x".into(), None));
        assert_eq!(t[2].tok, Tok::BackQuoted("sysctl -w a=1".into()));
        assert_eq!(t[2].line, 4);
        assert_eq!(t[3].tok, Tok::Code("\nassert 1\n".into()));
        assert_eq!(t[3].line, 5);
        assert_eq!(t[4].tok, Tok::Ellipsis);
        assert_eq!(t[4].line, 7);
        assert_eq!(t[5].tok, Tok::Float("0.2".into()));
    }

    #[test]
    fn errors_have_lines() {
        assert_eq!(lex("\n\n\"abc").unwrap_err().line, 3);
        assert_eq!(lex("/* x").unwrap_err().line, 1);
        assert_eq!(
            toks("99999999999999999999999")[0],
            Tok::Word("99999999999999999999999".into())
        );
    }
}
