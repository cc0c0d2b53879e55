//! The TCP header (RFC 9293 section 3.1) and its options: MSS (RFC 9293), window scale
//! and timestamps (RFC 7323), SACK-permitted and SACK blocks (RFC 2018).
//!
//! [`parse`] validates a segment and borrows its payload; [`emit`] writes a header and
//! options into a caller's buffer and fills the checksum over pseudo-header and payload.

use super::checksum;
use super::ip::PROTO_TCP;
use super::seq::Seq;
use super::WireError;
use core::fmt;
use core::net::IpAddr;

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = 20;
/// Most option bytes a header can carry.
pub const MAX_OPTIONS_LEN: usize = 40;
/// Most SACK blocks an option list holds.
pub const MAX_SACK_BLOCKS: usize = 4;
/// The magic number after kind 254 that marks the experimental Fast Open option
/// (RFC 7413 section 9, RFC 6994).
const FAST_OPEN_MAGIC: [u8; 2] = [0xF9, 0x89];

/// The control bits of a TCP header.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// No more data from sender.
    pub const FIN: Flags = Flags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: Flags = Flags(0x02);
    /// Reset the connection.
    pub const RST: Flags = Flags(0x04);
    /// Push function.
    pub const PSH: Flags = Flags(0x08);
    /// Acknowledgment field is significant.
    pub const ACK: Flags = Flags(0x10);
    /// Urgent pointer field is significant.
    pub const URG: Flags = Flags(0x20);
    /// ECN echo (RFC 3168).
    pub const ECE: Flags = Flags(0x40);
    /// Congestion window reduced (RFC 3168).
    pub const CWR: Flags = Flags(0x80);

    /// No bits set.
    pub const fn empty() -> Flags {
        Flags(0)
    }

    /// True when every bit of `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
    /// FIN is set.
    pub const fn fin(self) -> bool {
        self.0 & 0x01 != 0
    }
    /// SYN is set.
    pub const fn syn(self) -> bool {
        self.0 & 0x02 != 0
    }
    /// RST is set.
    pub const fn rst(self) -> bool {
        self.0 & 0x04 != 0
    }
    /// PSH is set.
    pub const fn psh(self) -> bool {
        self.0 & 0x08 != 0
    }
    /// ACK is set.
    pub const fn ack(self) -> bool {
        self.0 & 0x10 != 0
    }
    /// URG is set.
    pub const fn urg(self) -> bool {
        self.0 & 0x20 != 0
    }
}

impl core::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, o: Flags) -> Flags {
        Flags(self.0 | o.0)
    }
}

impl core::ops::BitOrAssign for Flags {
    fn bitor_assign(&mut self, o: Flags) {
        self.0 |= o.0;
    }
}

impl fmt::Display for Flags {
    /// Written as tcpdump and packetdrill write them: `S`, `S.`, `F.`, `R.`, `P.`, `.`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut any = false;
        for (bit, c) in [
            (0x02, 'S'),
            (0x01, 'F'),
            (0x04, 'R'),
            (0x08, 'P'),
            (0x20, 'U'),
            (0x40, 'E'),
            (0x80, 'W'),
        ] {
            if self.0 & bit != 0 {
                write!(f, "{c}")?;
                any = true;
            }
        }
        if self.ack() {
            write!(f, ".")?;
        } else if !any {
            write!(f, "none")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One SACK block: the half-open sequence range `[left, right)` the receiver holds.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub struct SackBlock {
    /// First sequence number of the block.
    pub left: Seq,
    /// Sequence number just past the block.
    pub right: Seq,
}

/// A TCP Fast Open cookie (RFC 7413 4.1.1): 4 to 16 bytes, an even number of them.
/// The server makes it from the client's address; the client only stores and echoes it.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct FastOpenCookie {
    len: u8,
    bytes: [u8; FastOpenCookie::MAX_LEN],
}

impl FastOpenCookie {
    /// The shortest valid cookie.
    pub const MIN_LEN: usize = 4;
    /// The longest valid cookie.
    pub const MAX_LEN: usize = 16;

    /// The cookie `b`, or `None` when its length is not valid (RFC 7413 4.1.1: 4 to
    /// 16 bytes, even).
    pub fn new(b: &[u8]) -> Option<FastOpenCookie> {
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&b.len()) || b.len() % 2 != 0 {
            return None;
        }
        let mut c = FastOpenCookie {
            len: b.len() as u8,
            bytes: [0; Self::MAX_LEN],
        };
        c.bytes[..b.len()].copy_from_slice(b);
        Some(c)
    }

    /// The cookie's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// The TCP Fast Open option (RFC 7413 4.1.1, kind 34; the experimental kind 254 with
/// magic 0xF989 that predates it is read as the same).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum FastOpen {
    /// No cookie: in a SYN, a request for one.
    Request,
    /// A cookie of a valid length.
    Cookie(FastOpenCookie),
    /// A cookie of a length RFC 7413 does not allow (1 to 3 bytes, odd, or more than
    /// 16). Not an error in the segment: the option is ignored, the segment is not.
    Invalid,
}

impl FastOpen {
    /// The option for `cookie` (the option's body, after kind and length).
    fn from_body(cookie: &[u8]) -> FastOpen {
        if cookie.is_empty() {
            return FastOpen::Request;
        }
        FastOpenCookie::new(cookie).map_or(FastOpen::Invalid, FastOpen::Cookie)
    }
}

/// How options are laid out on an outbound header. Both put the same options in a
/// different order; peers accept either, scripts written on one system expect its own.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub enum OptionLayout {
    /// Linux: `mss, sackOK, TS, nop, wscale` (`nop,nop,sackOK` when no timestamps).
    #[default]
    Linux,
    /// FreeBSD: `mss, nop, wscale, sackOK, TS`, padded with `eol`.
    FreeBsd,
}

/// The options a TCP header carries.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub struct Options {
    /// Maximum segment size (SYN only).
    pub mss: Option<u16>,
    /// Window scale shift (SYN only), as sent (values above 14 are kept as sent).
    pub wscale: Option<u8>,
    /// SACK permitted (SYN only).
    pub sack_permitted: bool,
    /// Timestamps: (TSval, TSecr).
    pub timestamps: Option<(u32, u32)>,
    /// SACK blocks; the first `sack_len` are valid.
    pub sack: [SackBlock; MAX_SACK_BLOCKS],
    /// Number of valid SACK blocks.
    pub sack_len: u8,
    /// TCP Fast Open (SYN and SYN-ACK only).
    pub fast_open: Option<FastOpen>,
}

impl Options {
    /// The valid SACK blocks.
    pub fn sack_blocks(&self) -> &[SackBlock] {
        &self.sack[..usize::from(self.sack_len)]
    }

    /// Appends a SACK block; false when full.
    pub fn push_sack(&mut self, b: SackBlock) -> bool {
        let n = usize::from(self.sack_len);
        if n == MAX_SACK_BLOCKS {
            return false;
        }
        self.sack[n] = b;
        self.sack_len += 1;
        true
    }

    /// Parses an option list. Unknown options are skipped by their length; a malformed
    /// list (a length below 2, running past the end, or a known option of the wrong
    /// length) is an error and the segment is dropped.
    pub fn parse(raw: &[u8]) -> Result<Options, WireError> {
        let mut o = Options::default();
        o.parse_into(raw)?;
        Ok(o)
    }

    /// As [`Options::parse`], into `self` (which starts empty): the segment parser
    /// fills its `Segment` in place rather than moving a 52-byte value through a
    /// `Result`, whose piecewise-written copy stalls store forwarding on every packet.
    #[inline]
    fn parse_into(&mut self, mut raw: &[u8]) -> Result<(), WireError> {
        let o = self;
        while let Some(&kind) = raw.first() {
            match kind {
                0 => break,
                1 => {
                    raw = &raw[1..];
                    continue;
                }
                _ => {}
            }
            let len = usize::from(*raw.get(1).ok_or(WireError::BadOption)?);
            if len < 2 || len > raw.len() {
                return Err(WireError::BadOption);
            }
            let body = &raw[2..len];
            match (kind, len) {
                (2, 4) => o.mss = Some(u16::from_be_bytes([body[0], body[1]])),
                (3, 3) => o.wscale = Some(body[0]),
                (4, 2) => o.sack_permitted = true,
                (5, _) if (len - 2) % 8 == 0 && len > 2 => {
                    for b in body.chunks_exact(8) {
                        o.push_sack(SackBlock {
                            left: Seq(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
                            right: Seq(u32::from_be_bytes([b[4], b[5], b[6], b[7]])),
                        });
                    }
                }
                (8, 10) => {
                    let val = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                    let ecr = u32::from_be_bytes([body[4], body[5], body[6], body[7]]);
                    o.timestamps = Some((val, ecr));
                }
                (34, _) => o.fast_open = Some(FastOpen::from_body(body)),
                (254, _) if body.starts_with(&FAST_OPEN_MAGIC) => {
                    o.fast_open = Some(FastOpen::from_body(&body[2..]));
                }
                (2..=5 | 8, _) => return Err(WireError::BadOption),
                _ => {}
            }
            raw = &raw[len..];
        }
        Ok(())
    }

    /// The number of bytes [`Options::write`] produces (a multiple of 4, at most 40).
    pub fn len(&self, layout: OptionLayout) -> usize {
        let mut buf = [0u8; MAX_OPTIONS_LEN];
        self.write(layout, &mut buf)
    }

    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.mss.is_none()
            && self.wscale.is_none()
            && !self.sack_permitted
            && self.timestamps.is_none()
            && self.sack_len == 0
            && self.fast_open.is_none()
    }

    /// Writes the options into `out` in `layout`'s order, padded to a multiple of four.
    /// SACK blocks that do not fit into 40 bytes are left out. Returns the length.
    pub fn write(&self, layout: OptionLayout, out: &mut [u8; MAX_OPTIONS_LEN]) -> usize {
        let mut w = Writer { out, n: 0 };
        if let Some(mss) = self.mss {
            let [a, b] = mss.to_be_bytes();
            w.put([2, 4, a, b]);
        }
        match layout {
            OptionLayout::Linux => {
                if let Some((val, ecr)) = self.timestamps {
                    if self.sack_permitted {
                        w.put([4, 2]);
                    } else {
                        w.put([1, 1]);
                    }
                    w.put_ts(val, ecr);
                } else if self.sack_permitted {
                    w.put([1, 1, 4, 2]);
                }
                if let Some(ws) = self.wscale {
                    w.put([1, 3, 3, ws]);
                }
            }
            OptionLayout::FreeBsd => {
                if let Some(ws) = self.wscale {
                    w.put([1, 3, 3, ws]);
                }
                if self.sack_permitted {
                    w.put([4, 2]);
                }
                if let Some((val, ecr)) = self.timestamps {
                    if w.n % 4 == 0 {
                        w.put([1, 1]);
                    }
                    w.put_ts(val, ecr);
                }
            }
        }
        // After the others, as both systems place it; left out if it does not fit.
        if let Some(fo) = self.fast_open {
            let cookie = match &fo {
                FastOpen::Cookie(c) => c.as_bytes(),
                FastOpen::Request | FastOpen::Invalid => &[],
            };
            let len = 2 + cookie.len();
            if w.n + len <= MAX_OPTIONS_LEN {
                w.out[w.n] = 34;
                w.out[w.n + 1] = len as u8;
                w.out[w.n + 2..w.n + len].copy_from_slice(cookie);
                w.n += len;
                // Linux pads the option with NOPs; FreeBSD ends the list with EOLs.
                if layout == OptionLayout::Linux {
                    while w.n % 4 != 0 {
                        w.put([1]);
                    }
                }
            }
        }
        if self.sack_len > 0 {
            while w.n % 4 != 0 {
                w.put([1]);
            }
            let room = (MAX_OPTIONS_LEN - w.n).saturating_sub(4) / 8;
            let n = usize::from(self.sack_len).min(room);
            if n > 0 {
                w.put([1, 1, 5, 2 + 8 * n as u8]);
                for b in &self.sack[..n] {
                    w.put(b.left.0.to_be_bytes());
                    w.put(b.right.0.to_be_bytes());
                }
            }
        }
        while w.n % 4 != 0 {
            w.put([0]);
        }
        w.n
    }
}

struct Writer<'a> {
    out: &'a mut [u8; MAX_OPTIONS_LEN],
    n: usize,
}

impl Writer<'_> {
    /// Appends `b`, cut at the 40-byte limit. The length is a constant at every call,
    /// so the copy compiles to a few moves instead of a call to `memmove` (five of
    /// them per segment showed in the churn profile).
    #[inline(always)]
    fn put<const N: usize>(&mut self, b: [u8; N]) {
        if let Some(dst) = self.out.get_mut(self.n..self.n + N) {
            dst.copy_from_slice(&b);
            self.n += N;
        } else {
            let take = MAX_OPTIONS_LEN - self.n;
            self.out[self.n..].copy_from_slice(&b[..take]);
            self.n = MAX_OPTIONS_LEN;
        }
    }

    #[inline(always)]
    fn put_ts(&mut self, val: u32, ecr: u32) {
        let (v, e) = (val.to_be_bytes(), ecr.to_be_bytes());
        self.put([8, 10, v[0], v[1], v[2], v[3], e[0], e[1], e[2], e[3]]);
    }
}

/// A parsed TCP segment: header fields, options, and the payload borrowed from the input.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub struct Segment<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: Seq,
    /// Acknowledgment number (meaningful when ACK is set).
    pub ack: Seq,
    /// Control bits.
    pub flags: Flags,
    /// Window field, unscaled.
    pub window: u16,
    /// Urgent pointer.
    pub urgent: u16,
    /// Options.
    pub options: Options,
    /// The data.
    pub payload: &'a [u8],
}

impl Segment<'_> {
    /// Sequence space the segment occupies: data plus one each for SYN and FIN.
    pub fn seq_len(&self) -> u32 {
        self.payload.len() as u32 + u32::from(self.flags.syn()) + u32::from(self.flags.fin())
    }
}

/// Parses a TCP segment carried between `src` and `dst`, verifying its checksum over the
/// pseudo-header when `verify` is set.
pub fn parse(buf: &[u8], src: IpAddr, dst: IpAddr, verify: bool) -> Result<Segment<'_>, WireError> {
    let mut seg = Segment::default();
    parse_into(buf, src, dst, verify, &mut seg)?;
    Ok(seg)
}

/// As [`parse`], into `seg` (overwritten; unspecified after an error). The input path
/// parses in place: a `Segment` returned through a `Result` is written field by field
/// and then copied whole, and that copy stalls store forwarding on every packet.
#[inline]
pub fn parse_into<'a>(
    buf: &'a [u8],
    src: IpAddr,
    dst: IpAddr,
    verify: bool,
    seg: &mut Segment<'a>,
) -> Result<(), WireError> {
    let off = header_len(buf)?;
    if verify && !sum_ok(header_sum(buf, off, src, dst), &buf[off..]) {
        return Err(WireError::BadChecksum);
    }
    fill(buf, off, seg)
}

/// As [`parse_into`] with `verify`, but the payload's part of the checksum is left to
/// the caller: returns the running sum of the pseudo-header and the TCP header, to
/// which the payload (at an even offset) must add up to all ones
/// ([`checksum::fold`] of the whole sum `== 0xffff`). A segment whose header is
/// malformed is checked whole here, so that a corrupted one is reported as
/// [`WireError::BadChecksum`], as `parse_into` would report it.
///
/// This lets the receiver sum the payload as it copies it into place (Linux's
/// `skb_copy_and_csum_datagram` does the same): the bytes are read once, not twice. A
/// segment must not change anything before its sum is checked.
#[inline]
pub fn parse_into_deferred<'a>(
    buf: &'a [u8],
    src: IpAddr,
    dst: IpAddr,
    seg: &mut Segment<'a>,
) -> Result<u64, WireError> {
    let off = header_len(buf)?;
    let sum = header_sum(buf, off, src, dst);
    match fill(buf, off, seg) {
        Ok(()) => Ok(sum),
        Err(_) if !sum_ok(sum, &buf[off..]) => Err(WireError::BadChecksum),
        Err(e) => Err(e),
    }
}

/// Whether the payload completes `sum` (see [`parse_into_deferred`]) to all ones.
#[inline]
pub fn sum_ok(sum: u64, payload: &[u8]) -> bool {
    checksum::fold(checksum::accumulate(sum, payload)) == 0xffff
}

/// The header's length from its data offset, checked against the buffer.
#[inline(always)]
fn header_len(buf: &[u8]) -> Result<usize, WireError> {
    if buf.len() < HEADER_LEN {
        return Err(WireError::Truncated);
    }
    let off = usize::from(buf[12] >> 4) * 4;
    if off < HEADER_LEN || off > buf.len() {
        return Err(WireError::BadHeaderLen);
    }
    Ok(off)
}

/// The running sum of the pseudo-header and the `off` header bytes of `buf`.
#[inline(always)]
fn header_sum(buf: &[u8], off: usize, src: IpAddr, dst: IpAddr) -> u64 {
    checksum::accumulate(
        checksum::pseudo_header(src, dst, PROTO_TCP, buf.len() as u32),
        &buf[..off],
    )
}

/// Fills `seg` from a segment whose header is `off` bytes long.
#[inline(always)]
fn fill<'a>(buf: &'a [u8], off: usize, seg: &mut Segment<'a>) -> Result<(), WireError> {
    seg.src_port = u16::from_be_bytes([buf[0], buf[1]]);
    seg.dst_port = u16::from_be_bytes([buf[2], buf[3]]);
    seg.seq = Seq(u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]));
    seg.ack = Seq(u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]));
    seg.flags = Flags(buf[13]);
    seg.window = u16::from_be_bytes([buf[14], buf[15]]);
    seg.urgent = u16::from_be_bytes([buf[18], buf[19]]);
    seg.options = Options::default();
    seg.payload = &buf[off..];
    seg.options.parse_into(&buf[HEADER_LEN..off])
}

/// The header fields of a segment to send.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub struct Header {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: Seq,
    /// Acknowledgment number (written as zero unless ACK is set).
    pub ack: Seq,
    /// Control bits.
    pub flags: Flags,
    /// Window field, already scaled down.
    pub window: u16,
    /// Options.
    pub options: Options,
}

/// Writes `hdr`, its options and then the payload (given as up to two slices, as a ring
/// buffer holds it) into `buf`, and fills the checksum. Returns the segment's length, or
/// `None` when `buf` is too small (what it holds then is unspecified).
pub fn emit(
    buf: &mut [u8],
    hdr: &Header,
    layout: OptionLayout,
    payload: (&[u8], &[u8]),
    src: IpAddr,
    dst: IpAddr,
) -> Option<usize> {
    // The options go straight to their place when the buffer has room for the most
    // there can be (a packet buffer always has), else through a copy.
    let olen = match buf
        .get_mut(HEADER_LEN..HEADER_LEN + MAX_OPTIONS_LEN)
        .and_then(|o| <&mut [u8; MAX_OPTIONS_LEN]>::try_from(o).ok())
    {
        Some(out) => hdr.options.write(layout, out),
        None => {
            let mut opts = [0u8; MAX_OPTIONS_LEN];
            let olen = hdr.options.write(layout, &mut opts);
            buf.get_mut(HEADER_LEN..HEADER_LEN + olen)?
                .copy_from_slice(&opts[..olen]);
            olen
        }
    };
    let hlen = HEADER_LEN + olen;
    let total = hlen + payload.0.len() + payload.1.len();
    if buf.len() < total {
        return None;
    }
    let b = &mut buf[..total];
    b[0..2].copy_from_slice(&hdr.src_port.to_be_bytes());
    b[2..4].copy_from_slice(&hdr.dst_port.to_be_bytes());
    b[4..8].copy_from_slice(&hdr.seq.0.to_be_bytes());
    let ack = if hdr.flags.ack() { hdr.ack.0 } else { 0 };
    b[8..12].copy_from_slice(&ack.to_be_bytes());
    b[12] = ((hlen / 4) as u8) << 4;
    b[13] = hdr.flags.0;
    b[14..16].copy_from_slice(&hdr.window.to_be_bytes());
    b[16..20].copy_from_slice(&[0, 0, 0, 0]);
    let sum = checksum::accumulate(
        checksum::pseudo_header(src, dst, PROTO_TCP, total as u32),
        &b[..hlen],
    );
    let (h, rest) = b.split_at_mut(hlen);
    let c = !checksum::fold(copy_payload(sum, rest, payload));
    h[16..18].copy_from_slice(&c.to_be_bytes());
    Some(total)
}

/// Copies a payload held in up to two slices (as a ring buffer holds it) into `dst`,
/// exactly as long, and returns `sum` with it added. The header before it is a whole
/// number of 32-bit words: the payload starts at an even offset, and its second slice
/// at an odd one when the first is of odd length.
#[inline(always)]
fn copy_payload(sum: u64, dst: &mut [u8], (p0, p1): (&[u8], &[u8])) -> u64 {
    let (d0, d1) = dst.split_at_mut(p0.len());
    let sum = checksum::copy_accumulate_at(sum, d0, p0, false);
    if p1.is_empty() {
        // The usual case (the data does not wrap the ring): no call for nothing.
        return sum;
    }
    checksum::copy_accumulate_at(sum, d1, p1, p0.len() % 2 == 1)
}

/// What every segment of a run repeating `template` (a segment [`emit`] wrote, `hlen`
/// bytes of header) adds to its checksum but its sequence number and payload: `pseudo`
/// (the pseudo-header sum, [`checksum::pseudo_header`]) and the header's other words.
/// Computed once per run for [`emit_repeat`].
pub fn repeat_base(template: &[u8], hlen: usize, pseudo: u64) -> u64 {
    let Some(h) = template.get(..hlen).filter(|h| h.len() >= HEADER_LEN) else {
        return pseudo;
    };
    // Ports; acknowledgment number, offset, flags, window; urgent pointer and options.
    // Bytes 4..8 (the sequence number) and 16..18 (the checksum) are left out.
    let sum = checksum::accumulate(pseudo, &h[..4]);
    let sum = checksum::accumulate(sum, &h[8..16]);
    checksum::accumulate(sum, &h[18..])
}

/// Writes the segment after `template` in a run of equal-sized segments (GSO-style):
/// the header and options of `template` (a segment [`emit`] wrote, `hlen` bytes of
/// header) with sequence number `seq`, then `payload`, which must be as long as the
/// template's. `base` is [`repeat_base`] of the template: the checksum is that plus
/// the sequence number and the payload, summed as it is copied. Returns the length, or
/// `None` if `out` is too small or the payload's length differs. The result is byte for
/// byte what [`emit`] would write for the same header.
#[inline]
pub fn emit_repeat(
    out: &mut [u8],
    template: &[u8],
    hlen: usize,
    seq: Seq,
    payload: (&[u8], &[u8]),
    base: u64,
) -> Option<usize> {
    let total = template.len();
    let (p0, p1) = payload;
    if hlen < HEADER_LEN || hlen + p0.len() + p1.len() != total || out.len() < total {
        return None;
    }
    let b = &mut out[..total];
    b[..hlen].copy_from_slice(&template[..hlen]);
    b[4..8].copy_from_slice(&seq.0.to_be_bytes());
    let sum = base + u64::from(seq.0 >> 16) + u64::from(seq.0 & 0xffff);
    let c = !checksum::fold(copy_payload(sum, &mut b[hlen..], payload));
    b[16..18].copy_from_slice(&c.to_be_bytes());
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs() -> (IpAddr, IpAddr) {
        ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap())
    }

    fn round_trip(h: &Header, layout: OptionLayout, payload: &[u8]) -> (Vec<u8>, Options) {
        let (s, d) = addrs();
        let mut buf = [0u8; 200];
        let n = emit(&mut buf, h, layout, (payload, &[]), s, d).unwrap();
        let seg = parse(&buf[..n], s, d, true).unwrap();
        assert_eq!(seg.seq, h.seq);
        assert_eq!(seg.flags, h.flags);
        assert_eq!(seg.window, h.window);
        assert_eq!(seg.payload, payload);
        (buf[HEADER_LEN..n - payload.len()].to_vec(), seg.options)
    }

    #[test]
    fn a_repeated_segment_is_what_emit_writes_for_its_header() {
        let (s, d) = addrs();
        let mut opts = Options {
            timestamps: Some((0x0102_0304, 0xa0b0_c0d0)),
            ..Default::default()
        };
        opts.push_sack(SackBlock {
            left: Seq(5000),
            right: Seq(6000),
        });
        let hdr = |seq| Header {
            src_port: 40000,
            dst_port: 80,
            seq: Seq(seq),
            ack: Seq(0xfeed_beef),
            flags: Flags::ACK,
            window: 1234,
            options: opts,
        };
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 % 256) as u8).collect();
        let mut first = [0u8; 400];
        let n = emit(
            &mut first,
            &hdr(u32::MAX - 10),
            OptionLayout::Linux,
            (&data[..101], &[]),
            s,
            d,
        )
        .unwrap();
        let hlen = n - 101;
        let base = repeat_base(
            &first[..n],
            hlen,
            checksum::pseudo_header(s, d, PROTO_TCP, n as u32),
        );
        // Odd lengths, and the payload split where a ring wraps, at both odd and even
        // offsets: the sum must come out as emit's in every case.
        for (seq, split) in [
            ((u32::MAX - 10).wrapping_add(101), 0),
            (90, 50),
            (191, 1),
            (7, 100),
        ] {
            let payload = &data[seq as usize % 150..][..101];
            let mut want = [0u8; 400];
            let m = emit(
                &mut want,
                &hdr(seq),
                OptionLayout::Linux,
                (payload, &[]),
                s,
                d,
            )
            .unwrap();
            let mut got = [0xffu8; 400];
            let parts = payload.split_at(split);
            let k = emit_repeat(&mut got, &first[..n], hlen, Seq(seq), parts, base).unwrap();
            assert_eq!(&got[..k], &want[..m], "seq {seq}, split at {split}");
            let seg = parse(&got[..k], s, d, true).unwrap();
            assert_eq!((seg.seq, seg.payload), (Seq(seq), payload));
        }
        // Another length, or no room: nothing written.
        let mut out = [0u8; 400];
        assert_eq!(
            emit_repeat(
                &mut out,
                &first[..n],
                hlen,
                Seq(1),
                (&data[..100], &[]),
                base
            ),
            None
        );
        assert_eq!(
            emit_repeat(
                &mut out[..n - 1],
                &first[..n],
                hlen,
                Seq(1),
                (&data[..101], &[]),
                base
            ),
            None
        );
    }

    #[test]
    fn a_buffer_just_long_enough_gets_the_same_segment() {
        // emit writes the options in place when the buffer has room for 40 bytes of
        // them, and through a copy when it has not: both must give the same bytes, and
        // one byte short must give None.
        let (s, d) = addrs();
        let mut opts = Options {
            timestamps: Some((7, 9)),
            sack_permitted: true,
            mss: Some(1460),
            wscale: Some(7),
            ..Default::default()
        };
        let syn = Header {
            src_port: 1,
            dst_port: 2,
            seq: Seq(3),
            ack: Seq(4),
            flags: Flags::SYN | Flags::ACK,
            window: 5,
            options: opts,
        };
        opts = Options::default();
        let bare = Header {
            options: opts,
            ..syn
        };
        for (h, data) in [(&syn, &b""[..]), (&syn, &b"xyz"[..]), (&bare, &b"q"[..])] {
            for layout in [OptionLayout::Linux, OptionLayout::FreeBsd] {
                let mut big = [0u8; 200];
                let n = emit(&mut big, h, layout, (data, &[]), s, d).unwrap();
                assert!(n < HEADER_LEN + MAX_OPTIONS_LEN, "the short path is taken");
                let mut exact = vec![0xeeu8; n];
                assert_eq!(emit(&mut exact, h, layout, (data, &[]), s, d), Some(n));
                assert_eq!(exact, &big[..n]);
                let mut short = vec![0u8; n - 1];
                assert_eq!(emit(&mut short, h, layout, (data, &[]), s, d), None);
            }
        }
    }

    #[test]
    fn linux_syn_options_are_laid_out_like_linux() {
        let mut o = Options {
            mss: Some(1460),
            wscale: Some(7),
            sack_permitted: true,
            ..Default::default()
        };
        o.timestamps = Some((1, 0));
        let h = Header {
            seq: Seq(1),
            flags: Flags::SYN,
            window: 65535,
            options: o,
            ..Default::default()
        };
        let (raw, parsed) = round_trip(&h, OptionLayout::Linux, b"");
        assert_eq!(&raw[..8], &[2, 4, 0x05, 0xb4, 4, 2, 8, 10]);
        assert_eq!(&raw[16..], &[1, 3, 3, 7]);
        assert_eq!(parsed, o);
    }

    #[test]
    fn parsing_into_a_used_segment_leaves_nothing_of_the_last_one() {
        // The stack reuses one Segment per packet: a segment with SACK blocks, SYN
        // options and timestamps, then a bare one, must parse as `parse` parses it.
        let (s, d) = addrs();
        let mut full = Options {
            mss: Some(1460),
            wscale: Some(7),
            sack_permitted: true,
            timestamps: Some((7, 9)),
            ..Default::default()
        };
        full.push_sack(SackBlock {
            left: Seq(100),
            right: Seq(200),
        });
        let first = Header {
            seq: Seq(1),
            flags: Flags::SYN,
            options: full,
            ..Default::default()
        };
        let bare = Header {
            seq: Seq(5),
            ack: Seq(6),
            flags: Flags::ACK,
            window: 100,
            ..Default::default()
        };
        let (mut a, mut b) = ([0u8; 200], [0u8; 200]);
        let na = emit(&mut a, &first, OptionLayout::Linux, (b"xy", &[]), s, d).unwrap();
        let nb = emit(&mut b, &bare, OptionLayout::Linux, (b"", &[]), s, d).unwrap();
        let mut seg = Segment::default();
        parse_into(&a[..na], s, d, true, &mut seg).unwrap();
        assert_eq!(seg, parse(&a[..na], s, d, true).unwrap());
        assert_eq!(seg.options.sack_blocks().len(), 1);
        parse_into(&b[..nb], s, d, true, &mut seg).unwrap();
        assert_eq!(seg, parse(&b[..nb], s, d, true).unwrap());
        assert_eq!(seg.options, Options::default());
    }

    #[test]
    fn freebsd_layout_and_padding() {
        let o = Options {
            mss: Some(1460),
            wscale: Some(6),
            sack_permitted: true,
            ..Default::default()
        };
        let h = Header {
            flags: Flags::SYN,
            options: o,
            ..Default::default()
        };
        let (raw, parsed) = round_trip(&h, OptionLayout::FreeBsd, b"");
        assert_eq!(raw, vec![2, 4, 0x05, 0xb4, 1, 3, 3, 6, 4, 2, 0, 0]);
        assert_eq!(parsed, o);
    }

    #[test]
    fn sack_blocks_fit_three_with_timestamps() {
        let mut o = Options {
            timestamps: Some((5, 6)),
            ..Default::default()
        };
        for i in 0..4u32 {
            o.push_sack(SackBlock {
                left: Seq(i * 100),
                right: Seq(i * 100 + 50),
            });
        }
        let h = Header {
            flags: Flags::ACK,
            options: o,
            ..Default::default()
        };
        let (raw, parsed) = round_trip(&h, OptionLayout::Linux, b"data");
        assert_eq!(raw.len(), 40);
        assert_eq!(parsed.sack_blocks().len(), 3);
        assert_eq!(parsed.timestamps, Some((5, 6)));
    }

    #[test]
    fn malformed_options_and_headers_are_errors() {
        assert_eq!(Options::parse(&[2, 1]), Err(WireError::BadOption));
        assert_eq!(Options::parse(&[2, 4, 1]), Err(WireError::BadOption));
        assert_eq!(
            Options::parse(&[8, 9, 0, 0, 0, 0, 0, 0, 0]),
            Err(WireError::BadOption)
        );
        assert_eq!(Options::parse(&[2]), Err(WireError::BadOption));
        // Unknown options are skipped; EOL ends the list.
        assert_eq!(
            Options::parse(&[30, 3, 9, 0, 2, 1]).unwrap(),
            Options::default()
        );
        let (s, d) = addrs();
        assert_eq!(parse(&[0; 10], s, d, false), Err(WireError::Truncated));
        let mut hdr = [0u8; 20];
        hdr[12] = 0x40;
        assert_eq!(parse(&hdr, s, d, false), Err(WireError::BadHeaderLen));
        hdr[12] = 0x50;
        assert_eq!(parse(&hdr, s, d, true), Err(WireError::BadChecksum));
    }

    #[test]
    fn flags_print_like_tcpdump() {
        assert_eq!((Flags::SYN | Flags::ACK).to_string(), "S.");
        assert_eq!((Flags::FIN | Flags::ACK).to_string(), "F.");
        assert_eq!(Flags::ACK.to_string(), ".");
        assert_eq!(Flags::RST.to_string(), "R");
        assert_eq!((Flags::PSH | Flags::ACK).to_string(), "P.");
        assert_eq!(Flags(0).to_string(), "none");
    }
}
