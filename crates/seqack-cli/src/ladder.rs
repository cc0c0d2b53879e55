//! Ladder diagrams of one TCP connection, as text and as SVG.
//!
//! A ladder (or "sequence") diagram is the textbook picture of a TCP conversation: two
//! vertical lines, one per endpoint, and one arrow per segment from the sender's line to the
//! receiver's, each arrow labelled with the segment's flags and numbers and each side
//! annotated with its TCP state after the segment. `seqack demo` builds a [`Ladder`] from a
//! simulated connection and `seqack trace` from connections read out of a pcap; both then
//! call [`render_text`] or [`render_svg`].
//!
//! The renderers only format what they are given: sequence numbers are expected to be
//! relative already, windows scaled already, and times measured from whatever origin the
//! caller chose (the time column prints [`Row::t`] as is, in milliseconds).

use std::fmt::Write as _;

use seqack::wire::tcp::Flags;
use seqack::{Instant, State};

/// Which way a segment travels across the ladder.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    /// From the left endpoint to the right endpoint.
    Right,
    /// From the right endpoint to the left endpoint.
    Left,
}

/// One TCP segment: one rung of the ladder.
#[derive(Clone, Debug)]
pub struct Row {
    /// When the segment was sent.
    pub t: Instant,
    /// When it arrived; `None` means it was lost and is drawn as a broken arrow ending in an
    /// `X`. A caller that does not know the arrival time (a capture taken at one point) but
    /// has no reason to think the segment was lost should pass `Some(t)`.
    pub arrive: Option<Instant>,
    /// Direction of travel.
    pub dir: Dir,
    /// The control bits, printed as tcpdump does (`S`, `S.`, `F.`, `R.`, `P.`, `.`).
    pub flags: Flags,
    /// Sequence number, already relative to the sender's ISN.
    pub seq: u32,
    /// Acknowledgment number, already relative; `None` when the ACK flag is not set.
    pub ack: Option<u32>,
    /// Payload length in bytes.
    pub len: u32,
    /// Advertised window in bytes, already scaled.
    pub win: u32,
    /// Short option text, such as `mss 1460,sackOK,TS,wscale 7`, or empty. The text
    /// renderer shortens it with `...` when it would not fit.
    pub options: String,
    /// Remarks printed after the arrow, such as `retransmission`, `duplicate`,
    /// `corrupted`. A lost row (`arrive == None`) gets `LOST` added in front unless a
    /// note already starts with `lost` (such as `lost (inferred)`).
    pub notes: Vec<String>,
    /// The left endpoint's state after this segment; `None` if unknown (printed `?`).
    pub left_state: Option<State>,
    /// The right endpoint's state after this segment; `None` if unknown (printed `?`).
    pub right_state: Option<State>,
    /// The left state was inferred rather than known; printed with a trailing `?`.
    pub left_uncertain: bool,
    /// The right state was inferred rather than known; printed with a trailing `?`.
    pub right_uncertain: bool,
}

/// A whole diagram: two endpoints and the segments between them, in send order.
#[derive(Clone, Debug, Default)]
pub struct Ladder {
    /// Heading, such as `active-close (seed 1, loss 0%)`.
    pub title: String,
    /// Name of the left endpoint, such as `client 10.0.0.1:40000`.
    pub left: String,
    /// Name of the right endpoint, such as `server 10.0.0.2:80`.
    pub right: String,
    /// The left endpoint's state before the first row (such as `CLOSED`); `None` if unknown.
    pub left_initial: Option<State>,
    /// The right endpoint's state before the first row (such as `LISTEN`); `None` if unknown.
    pub right_initial: Option<State>,
    /// The segments, one row each, in the order they were sent.
    pub rows: Vec<Row>,
}

impl Row {
    /// Whether the segment never arrived.
    fn lost(&self) -> bool {
        self.arrive.is_none()
    }

    /// The notes to show: the caller's, with `LOST` in front for a lost segment.
    fn shown_notes(&self) -> Vec<String> {
        let mut notes = self.notes.clone();
        if self.lost()
            && !notes
                .iter()
                .any(|n| n.to_ascii_lowercase().starts_with("lost"))
        {
            notes.insert(0, "LOST".to_string());
        }
        notes
    }

    /// Label columns: flags, `seq`, `ack`, `len`, `win` (empty strings for absent ones).
    fn fields(&self) -> [String; 5] {
        [
            self.flags.to_string(),
            format!("seq {}", self.seq),
            self.ack.map(|a| format!("ack {a}")).unwrap_or_default(),
            if self.len > 0 {
                format!("len {}", self.len)
            } else {
                String::new()
            },
            format!("win {}", self.win),
        ]
    }

    /// The label on one line without column alignment, as the SVG writes it.
    fn plain_label(&self) -> String {
        let fields = self.fields();
        let parts: Vec<&str> = fields
            .iter()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .collect();
        parts.join(" ")
    }
}

/// A state cell: the RFC name, `?` appended if uncertain, or `?` alone if unknown.
fn state_cell(s: Option<State>, uncertain: bool) -> String {
    match s {
        Some(s) if uncertain => format!("{}?", s.name()),
        Some(s) => s.name().to_string(),
        None => "?".to_string(),
    }
}

/// Milliseconds with three decimals, computed exactly from microseconds.
fn millis(t: Instant) -> String {
    let us = t.total_micros();
    format!("{}.{:03}", us / 1000, us % 1000)
}

/// `s` cut to at most `max` characters, ending in `...` if it was cut.
fn ellipsize(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    if max <= 3 {
        return ".".repeat(max);
    }
    let mut out: String = s.chars().take(max - 3).collect();
    out.push_str("...");
    out
}

/// Width in terminal columns (the renderers only produce single-width characters).
fn width(s: &str) -> usize {
    s.chars().count()
}

// ---------------------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------------------

/// Width a row line aims at, notes excluded; the arrow shrinks to make it fit.
const TEXT_TARGET: usize = 122;
/// Widest line allowed; notes that would go past it move to a line of their own.
const TEXT_MAX: usize = 140;
/// Narrowest time column (`  time(ms)`, room for `99999.999`).
const TIME_MIN: usize = 10;
/// Narrowest arrow, in columns between the two `|`.
const ARROW_MIN: usize = 40;
/// Columns before the label inside the arrow (`--- `, `<-- `, ...).
const ARROW_LEAD: usize = 4;
/// Columns after the label at least: a space and a tail of three.
const ARROW_TAIL_MIN: usize = 4;

const ANSI_RESET: &str = "\x1b[0m";
const ANSI_BOLD: &str = "\x1b[1m";

/// The ANSI SGR sequence for a row, or `None` for a plain segment.
fn ansi_style(row: &Row) -> Option<String> {
    let mut codes: Vec<&str> = Vec::new();
    if row.lost() {
        codes.push("2");
    }
    if row.flags.rst() {
        codes.push("31");
    } else if row.flags.syn() {
        codes.push("32");
    } else if row.flags.fin() {
        codes.push("33");
    }
    if codes.is_empty() {
        None
    } else {
        Some(format!("\x1b[{}m", codes.join(";")))
    }
}

/// `s` wrapped in `style` and a reset, or unchanged.
fn paint(s: &str, style: Option<&str>) -> String {
    match style {
        Some(code) => format!("{code}{s}{ANSI_RESET}"),
        None => s.to_string(),
    }
}

/// `n` columns of a broken line (`- - -`), the dash nearest the sender first when
/// `from_left`, else dashes aligned to the right end.
fn broken(n: usize, from_left: bool) -> String {
    (0..n)
        .map(|i| {
            let k = if from_left { i } else { n - 1 - i };
            if k % 2 == 0 {
                '-'
            } else {
                ' '
            }
        })
        .collect()
}

/// The `arrow`-column-wide picture between the two timelines for one row.
fn arrow_text(dir: Dir, lost: bool, label: &str, arrow: usize) -> String {
    let tail = arrow.saturating_sub(ARROW_LEAD + width(label) + 1).max(3);
    match (dir, lost) {
        (Dir::Right, false) => format!("--- {label} {}>", "-".repeat(tail - 1)),
        (Dir::Left, false) => format!("<-- {label} {}", "-".repeat(tail)),
        (Dir::Right, true) => {
            let gap = (tail / 2).clamp(1, 6);
            format!(
                "- - {label} {}X{}",
                broken(tail - gap - 1, true),
                " ".repeat(gap)
            )
        }
        (Dir::Left, true) => format!("  X {label} {}", broken(tail, false)),
    }
}

/// Renders `l` as a monospace ladder, one line per segment.
///
/// Layout: a title line, a header naming both endpoints, a line with the initial states,
/// then per row the send time in milliseconds, the left state, the arrow with its label
/// (flags, `seq`, `ack`, `len`, `win`, `<options>`), the right state, and notes in
/// parentheses. Lines stay within about 140 columns: long options are cut with `...` and
/// notes that would not fit go on a line of their own under the arrow. With `color`, ANSI
/// colours mark segments (SYN green, FIN yellow, RST red, lost dim); without, the output
/// holds no escape sequences at all.
pub fn render_text(l: &Ladder, color: bool) -> String {
    let rows = &l.rows;
    let left_cells: Vec<String> = rows
        .iter()
        .map(|r| state_cell(r.left_state, r.left_uncertain))
        .collect();
    let right_cells: Vec<String> = rows
        .iter()
        .map(|r| state_cell(r.right_state, r.right_uncertain))
        .collect();
    let left_init = state_cell(l.left_initial, false);
    let right_init = state_cell(l.right_initial, false);
    let times: Vec<String> = rows.iter().map(|r| millis(r.t)).collect();

    let tw = times
        .iter()
        .map(|s| width(s))
        .chain([TIME_MIN])
        .max()
        .unwrap_or(TIME_MIN);
    let lw = left_cells
        .iter()
        .map(|s| width(s))
        .chain([width(&left_init)])
        .max()
        .unwrap_or(1);
    let rw = right_cells
        .iter()
        .map(|s| width(s))
        .chain([width(&right_init)])
        .max()
        .unwrap_or(1);

    // Column widths inside the label, so that seq/ack/len/win line up from row to row.
    let fields: Vec<[String; 5]> = rows.iter().map(Row::fields).collect();
    let mut cols = [0usize; 5];
    for f in &fields {
        for (c, s) in cols.iter_mut().zip(f) {
            *c = (*c).max(width(s));
        }
    }
    let bases: Vec<String> = fields
        .iter()
        .map(|f| {
            let mut s = String::new();
            for (c, v) in cols.iter().zip(f) {
                if *c == 0 {
                    continue;
                }
                if !s.is_empty() {
                    s.push(' ');
                }
                let _ = write!(s, "{v:<c$}");
            }
            s
        })
        .collect();
    let full_label = |i: usize| -> String {
        let o = &rows[i].options;
        if o.is_empty() {
            bases[i].trim_end().to_string()
        } else {
            format!("{} <{o}>", bases[i])
        }
    };

    // Arrow width: enough for the longest label, within the target line width.
    let fixed = tw + 2 + lw + 2 + 1 + 1 + 2 + rw;
    let cap = TEXT_TARGET.saturating_sub(fixed).max(ARROW_MIN);
    let longest = (0..rows.len())
        .map(|i| width(&full_label(i)))
        .max()
        .unwrap_or(0);
    let arrow = (longest + ARROW_LEAD + ARROW_TAIL_MIN).clamp(ARROW_MIN, cap);
    let budget = arrow - ARROW_LEAD - ARROW_TAIL_MIN;

    let mut out = String::new();
    if color {
        let _ = writeln!(out, "{ANSI_BOLD}{}{ANSI_RESET}", l.title);
    } else {
        let _ = writeln!(out, "{}", l.title);
    }
    let pad = lw + 2 + 1 + arrow + 1 + 2;
    let left_name = if width(&l.left) >= pad {
        format!("{}  ", l.left)
    } else {
        format!("{:<pad$}", l.left)
    };
    let _ = writeln!(out, "{:>tw$}  {left_name}{}", "time(ms)", l.right);
    let _ = writeln!(
        out,
        "{:>tw$}  {left_init:<lw$}  |{:arrow$}|  {right_init}",
        "", ""
    );

    for (i, row) in rows.iter().enumerate() {
        let mut label = full_label(i);
        if width(&label) > budget {
            // Cut the options first; only if the numbers alone overflow, cut the label.
            let base = &bases[i];
            let room = budget.saturating_sub(width(base) + 3);
            label = if room >= 4 && !row.options.is_empty() {
                format!("{base} <{}>", ellipsize(&row.options, room))
            } else {
                ellipsize(base.trim_end(), budget)
            };
        }
        let picture = arrow_text(row.dir, row.lost(), &label, arrow);
        let style = if color { ansi_style(row) } else { None };
        let head = format!(
            "{:>tw$}  {:<lw$}  |{}|  ",
            times[i],
            left_cells[i],
            paint(&picture, style.as_deref())
        );
        let notes = row.shown_notes();
        if notes.is_empty() {
            let _ = writeln!(out, "{head}{}", right_cells[i]);
            continue;
        }
        let note_text = format!("({})", notes.join(", "));
        if fixed + arrow + 2 + width(&note_text) <= TEXT_MAX {
            let _ = writeln!(
                out,
                "{head}{:<rw$}  {}",
                right_cells[i],
                paint(&note_text, style.as_deref())
            );
        } else {
            let _ = writeln!(out, "{head}{}", right_cells[i]);
            let shown = ellipsize(&note_text, arrow - ARROW_LEAD);
            let cell = format!(
                "{:lead$}{shown:<rest$}",
                "",
                lead = ARROW_LEAD,
                rest = arrow - ARROW_LEAD
            );
            let _ = writeln!(
                out,
                "{:>tw$}  {:<lw$}  |{}|",
                "",
                "",
                paint(&cell, style.as_deref())
            );
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// SVG
// ---------------------------------------------------------------------------------------

/// Width of the SVG canvas.
const SVG_WIDTH: i64 = 900;
/// x of the left timeline.
const SVG_LX: i64 = 220;
/// x of the right timeline.
const SVG_RX: i64 = 680;
/// y where the first row's arrow leaves its sender.
const SVG_TOP: i64 = 110;
/// Vertical distance between consecutive rows.
const SVG_STEP: i64 = 34;
/// How much lower an arrow ends than it starts: the picture of flight time.
const SVG_SLANT: i64 = 24;
/// Extra space below a row whose notes are written under its arrow.
const SVG_NOTE_GAP: i64 = 12;

/// Colour for plain segments and the timelines.
const SVG_INK: &str = "#222222";
const SVG_GREEN: &str = "#1a7f37";
const SVG_ORANGE: &str = "#d97706";
const SVG_RED: &str = "#cf222e";
const SVG_GREY: &str = "#888888";

/// Stroke colour and arrowhead marker id for a segment's flags.
fn svg_color(flags: Flags) -> (&'static str, &'static str) {
    if flags.rst() {
        (SVG_RED, "ah-red")
    } else if flags.syn() {
        (SVG_GREEN, "ah-green")
    } else if flags.fin() {
        (SVG_ORANGE, "ah-orange")
    } else {
        (SVG_INK, "ah-ink")
    }
}

/// `s` with the XML special characters escaped and characters XML 1.0 forbids removed.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Renders `l` as a self-contained SVG figure (no scripts, no external resources).
///
/// Two vertical timelines carry the endpoint names at the top and their initial states.
/// Each row is a slanted arrow from the sender's timeline down to the receiver's, rows 34
/// pixels apart (more under a row with notes), labelled with flags, `seq`, `ack`, `len`
/// and `win`; options and notes appear as the arrow's tooltip, notes also under the arrow.
/// The states after each row are written beside the timelines, in bold where they changed.
/// SYN segments are green, FIN orange, RST red; a lost segment is a dashed line ending
/// halfway in a red `X`.
pub fn render_svg(l: &Ladder) -> String {
    // Where each row's arrow leaves its sender; rows with notes under the arrow take more room.
    let mut ys = Vec::with_capacity(l.rows.len());
    let mut y = SVG_TOP;
    for row in &l.rows {
        ys.push(y);
        y += SVG_STEP;
        if !row.shown_notes().is_empty() {
            y += if row.lost() {
                SVG_NOTE_GAP + 6
            } else {
                SVG_NOTE_GAP
            };
        }
    }
    let height = y + SVG_SLANT + 30;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{SVG_WIDTH}" height="{height}" viewBox="0 0 {SVG_WIDTH} {height}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="11">"#
    );
    let _ = writeln!(s, "<title>{}</title>", xml_escape(&l.title));
    s.push_str("<defs>\n");
    for (id, color) in [
        ("ah-ink", SVG_INK),
        ("ah-green", SVG_GREEN),
        ("ah-orange", SVG_ORANGE),
        ("ah-red", SVG_RED),
    ] {
        let _ = writeln!(
            s,
            r#"<marker id="{id}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{color}"/></marker>"#
        );
    }
    s.push_str("</defs>\n");
    let _ = writeln!(
        s,
        r##"<rect x="0" y="0" width="{SVG_WIDTH}" height="{height}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14" font-weight="bold">{}</text>"#,
        SVG_WIDTH / 2,
        xml_escape(&l.title)
    );

    // Timelines, endpoint names and initial states.
    let bottom = height - 14;
    for (x, name) in [(SVG_LX, &l.left), (SVG_RX, &l.right)] {
        let _ = writeln!(
            s,
            r#"<text x="{x}" y="50" text-anchor="middle" font-size="12" font-weight="bold">{}</text>"#,
            xml_escape(name)
        );
        let _ = writeln!(
            s,
            r#"<line class="timeline" x1="{x}" y1="58" x2="{x}" y2="{bottom}" stroke="{SVG_INK}" stroke-width="2"/>"#
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="10" y="84" fill="{SVG_GREY}" font-size="10">time (ms)</text>"#
    );
    let init_y = 84;
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{init_y}" text-anchor="end" font-weight="bold">{}</text>"#,
        SVG_LX - 8,
        xml_escape(&state_cell(l.left_initial, false))
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{init_y}" font-weight="bold">{}</text>"#,
        SVG_RX + 8,
        xml_escape(&state_cell(l.right_initial, false))
    );

    let mut prev_left = (l.left_initial, false);
    let mut prev_right = (l.right_initial, false);
    for (i, row) in l.rows.iter().enumerate() {
        let y0 = ys[i];
        let y1 = y0 + SVG_SLANT;
        let (xs, xe) = match row.dir {
            Dir::Right => (SVG_LX, SVG_RX),
            Dir::Left => (SVG_RX, SVG_LX),
        };
        let (color, marker) = svg_color(row.flags);
        let notes = row.shown_notes();
        let mut tip = row.plain_label();
        if !row.options.is_empty() {
            let _ = write!(tip, " <{}>", row.options);
        }
        if !notes.is_empty() {
            let _ = write!(tip, " ({})", notes.join(", "));
        }
        let tip = xml_escape(&tip);

        // Send time at the left margin, level with the sender's end of the arrow.
        let _ = writeln!(
            s,
            r#"<text x="10" y="{}" fill="{SVG_GREY}" font-size="10">{}</text>"#,
            y0 + 4,
            millis(row.t)
        );

        // The arrow itself: one <line class="seg"> per row.
        let mid_x = (xs + xe) as f64 / 2.0;
        let mid_y = (y0 + y1) as f64 / 2.0;
        if row.lost() {
            let _ = writeln!(
                s,
                r#"<line class="seg" x1="{xs}" y1="{y0}" x2="{mid_x:.1}" y2="{mid_y:.1}" stroke="{color}" stroke-width="1.5" stroke-dasharray="6 4" opacity="0.7"><title>{tip}</title></line>"#
            );
            let _ = writeln!(
                s,
                r#"<path class="lost-x" d="M{:.1},{:.1} L{:.1},{:.1} M{:.1},{:.1} L{:.1},{:.1}" stroke="{SVG_RED}" stroke-width="2.5" fill="none"/>"#,
                mid_x - 6.0,
                mid_y - 6.0,
                mid_x + 6.0,
                mid_y + 6.0,
                mid_x + 6.0,
                mid_y - 6.0,
                mid_x - 6.0,
                mid_y + 6.0
            );
        } else {
            let _ = writeln!(
                s,
                r##"<line class="seg" x1="{xs}" y1="{y0}" x2="{xe}" y2="{y1}" stroke="{color}" stroke-width="1.5" marker-end="url(#{marker})"><title>{tip}</title></line>"##
            );
        }

        // Label above the arrow, turned to follow it and always reading left to right.
        let dx = (SVG_RX - SVG_LX) as f64;
        let slope = (SVG_SLANT as f64).atan2(dx).to_degrees();
        let angle = if row.dir == Dir::Right { slope } else { -slope };
        // Centred on the arrow's midpoint; for a lost segment that is where the X is, so
        // the label goes a little higher to clear it.
        let lift = if row.lost() { 9.0 } else { 5.0 };
        let _ = writeln!(
            s,
            r#"<text x="{mid_x:.1}" y="{:.1}" text-anchor="middle" fill="{color}" transform="rotate({angle:.2} {mid_x:.1} {mid_y:.1})">{}</text>"#,
            mid_y - lift,
            xml_escape(&row.plain_label())
        );
        if !notes.is_empty() {
            // Under the arrow, following its slant; under the X, in red, for a lost one.
            let text = xml_escape(&format!("({})", notes.join(", ")));
            let (drop, fill, weight) = if row.lost() {
                (19.0, SVG_RED, "bold")
            } else {
                (13.0, SVG_GREY, "normal")
            };
            let _ = writeln!(
                s,
                r#"<text x="{mid_x:.1}" y="{:.1}" text-anchor="middle" fill="{fill}" font-style="italic" font-weight="{weight}" font-size="10" transform="rotate({angle:.2} {mid_x:.1} {mid_y:.1})">{text}</text>"#,
                mid_y + drop
            );
        }

        // States after the row, beside each timeline; bold where they changed.
        let sy = y0 + 16;
        let left = (row.left_state, row.left_uncertain);
        let right = (row.right_state, row.right_uncertain);
        for (x, anchor, now, prev) in [
            (SVG_LX - 8, "end", left, &mut prev_left),
            (SVG_RX + 8, "start", right, &mut prev_right),
        ] {
            let changed = now != *prev;
            *prev = now;
            let (fill, weight) = if changed {
                (SVG_INK, "bold")
            } else {
                (SVG_GREY, "normal")
            };
            let style = if now.1 { r#" font-style="italic""# } else { "" };
            let _ = writeln!(
                s,
                r#"<text x="{x}" y="{sy}" text-anchor="{anchor}" fill="{fill}" font-weight="{weight}"{style}>{}</text>"#,
                xml_escape(&state_cell(now.0, now.1))
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: &str = "client 10.0.0.1:40000";
    const SERVER: &str = "server 10.0.0.2:80";

    #[allow(clippy::too_many_arguments)]
    fn row(
        ms: u64,
        dir: Dir,
        flags: Flags,
        seq: u32,
        ack: Option<u32>,
        len: u32,
        win: u32,
        left: State,
        right: State,
    ) -> Row {
        Row {
            t: Instant::from_micros(ms * 1000),
            arrive: Some(Instant::from_micros(ms * 1000 + 5000)),
            dir,
            flags,
            seq,
            ack,
            len,
            win,
            options: String::new(),
            notes: Vec::new(),
            left_state: Some(left),
            right_state: Some(right),
            left_uncertain: false,
            right_uncertain: false,
        }
    }

    fn f(bits: &[Flags]) -> Flags {
        Flags(bits.iter().fold(0, |a, b| a | b.0))
    }

    /// Handshake, a request that is lost and retransmitted, a response, and an active
    /// close by the client: every state of both sides' usual path.
    fn sample() -> Ladder {
        use Dir::{Left, Right};
        use State::*;
        let ack = Flags::ACK;
        let pa = f(&[Flags::PSH, Flags::ACK]);
        let fa = f(&[Flags::FIN, Flags::ACK]);
        let mut rows = vec![
            row(
                0,
                Right,
                Flags::SYN,
                0,
                None,
                0,
                64240,
                SynSent,
                SynReceived,
            ),
            row(
                5,
                Left,
                f(&[Flags::SYN, Flags::ACK]),
                0,
                Some(1),
                0,
                65160,
                Established,
                SynReceived,
            ),
            row(
                10,
                Right,
                ack,
                1,
                Some(1),
                0,
                64256,
                Established,
                Established,
            ),
            row(
                10,
                Right,
                pa,
                1,
                Some(1),
                100,
                64256,
                Established,
                Established,
            ),
            row(
                210,
                Right,
                pa,
                1,
                Some(1),
                100,
                64256,
                Established,
                Established,
            ),
            row(
                215,
                Left,
                pa,
                1,
                Some(101),
                300,
                65060,
                Established,
                Established,
            ),
            row(
                220,
                Right,
                fa,
                101,
                Some(301),
                0,
                63956,
                FinWait1,
                CloseWait,
            ),
            row(
                225,
                Left,
                ack,
                301,
                Some(102),
                0,
                65060,
                FinWait2,
                CloseWait,
            ),
            row(226, Left, fa, 301, Some(102), 0, 65060, TimeWait, LastAck),
            row(231, Right, ack, 102, Some(302), 0, 63956, TimeWait, Closed),
        ];
        rows[0].options = "mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7".into();
        rows[1].options = "mss 1460,sackOK,TS val 9 ecr 1,nop,wscale 7".into();
        rows[1].right_state = Some(SynReceived);
        rows[3].arrive = None;
        rows[4].notes.push("retransmission".into());
        rows[5].right_uncertain = true;
        Ladder {
            title: "active-close (seed 1, loss 0%)".into(),
            left: CLIENT.into(),
            right: SERVER.into(),
            left_initial: Some(Closed),
            right_initial: Some(Listen),
            rows,
        }
    }

    /// The text lines of the rows (title, header and initial line skipped).
    fn row_lines(text: &str) -> Vec<&str> {
        text.lines().skip(3).collect()
    }

    #[test]
    fn text_header_and_initial_states() {
        let l = sample();
        let text = render_text(&l, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], l.title);
        assert!(
            lines[1].trim_start().starts_with("time(ms)"),
            "{}",
            lines[1]
        );
        let (c, s) = (
            lines[1].find(CLIENT).unwrap(),
            lines[1].find(SERVER).unwrap(),
        );
        assert!(c < s);
        let (closed, listen) = (
            lines[2].find("CLOSED").unwrap(),
            lines[2].find("LISTEN").unwrap(),
        );
        assert!(closed < listen);
        // The names sit over their state columns.
        assert_eq!(c, closed);
        assert_eq!(s, listen);
        assert_eq!(lines[2].matches('|').count(), 2);
    }

    #[test]
    fn text_rows_states_arrows_and_times() {
        let l = sample();
        let text = render_text(&l, false);
        let lines = row_lines(&text);
        assert_eq!(
            lines.len(),
            l.rows.len(),
            "one line per row (no note overflow here):\n{text}"
        );
        let bars: Vec<(usize, usize)> = lines
            .iter()
            .map(|line| {
                let a = line.find('|').expect("left timeline");
                let b = line.rfind('|').expect("right timeline");
                assert!(a < b, "{line}");
                (a, b)
            })
            .collect();
        // Timelines are straight: the same columns on every line.
        assert!(bars.iter().all(|&b| b == bars[0]), "{text}");
        let (a, b) = bars[0];
        for (row, line) in l.rows.iter().zip(&lines) {
            let left = &line[..a];
            let mid = &line[a + 1..b];
            let right = &line[b + 1..];
            let ls = state_cell(row.left_state, row.left_uncertain);
            let rs = state_cell(row.right_state, row.right_uncertain);
            assert_eq!(left.split_whitespace().last(), Some(ls.as_str()), "{line}");
            assert_eq!(right.split_whitespace().next(), Some(rs.as_str()), "{line}");
            assert_eq!(
                left.split_whitespace().next(),
                Some(millis(row.t).as_str()),
                "{line}"
            );
            assert!(mid.contains(&format!("seq {}", row.seq)), "{line}");
            assert!(mid.contains(&format!("win {}", row.win)), "{line}");
            match row.ack {
                Some(n) => assert!(mid.contains(&format!("ack {n}")), "{line}"),
                None => assert!(!mid.contains(" ack "), "{line}"),
            }
            assert_eq!(mid.contains("len "), row.len > 0, "{line}");
            let flags = row.flags.to_string();
            assert!(
                mid.split_whitespace().any(|w| w == flags),
                "{flags} in {line}"
            );
            match (row.dir, row.lost()) {
                (Dir::Right, false) => {
                    assert!(mid.starts_with("---") && mid.ends_with("->"), "{line}");
                    assert!(!mid.contains('<') || !row.options.is_empty(), "{line}");
                }
                (Dir::Left, false) => {
                    assert!(mid.starts_with("<--") && mid.ends_with("--"), "{line}");
                    assert!(!mid.contains('>') || !row.options.is_empty(), "{line}");
                }
                (_, true) => {
                    assert!(mid.contains('X'), "{line}");
                    assert!(!mid.ends_with("->") && !mid.starts_with("<-"), "{line}");
                }
            }
        }
        assert_eq!(&lines[0][..11], "     0.000 ");
        assert!(lines[4].starts_with("   210.000"), "{}", lines[4]);
    }

    #[test]
    fn text_state_order_follows_the_connection() {
        let text = render_text(&sample(), false);
        // Left states in order of appearance down the left column.
        let left_col: Vec<&str> = row_lines(&text)
            .iter()
            .map(|l| l.split_whitespace().nth(1).unwrap())
            .collect();
        let mut seen: Vec<&str> = Vec::new();
        for s in left_col {
            if seen.last() != Some(&s) {
                seen.push(s);
            }
        }
        assert_eq!(
            seen,
            [
                "SYN_SENT",
                "ESTABLISHED",
                "FIN_WAIT_1",
                "FIN_WAIT_2",
                "TIME_WAIT"
            ]
        );
        let right_col: Vec<String> = row_lines(&text)
            .iter()
            .map(|l| {
                l[l.rfind('|').unwrap() + 1..]
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        let mut seen: Vec<String> = Vec::new();
        for s in right_col {
            if seen.last() != Some(&s) {
                seen.push(s);
            }
        }
        assert_eq!(
            seen,
            [
                "SYN_RECEIVED",
                "ESTABLISHED",
                "ESTABLISHED?",
                "CLOSE_WAIT",
                "LAST_ACK",
                "CLOSED"
            ]
        );
    }

    #[test]
    fn text_lost_and_notes() {
        let text = render_text(&sample(), false);
        let lines = row_lines(&text);
        let lost = lines[3];
        assert!(lost.contains('X') && lost.contains("(LOST)"), "{lost}");
        // The broken arrow stops short of the receiver's timeline.
        let b = lost.rfind('|').unwrap();
        assert!(lost[..b].trim_end().ends_with('X'), "{lost}");
        assert!(lines[4].ends_with("(retransmission)"), "{}", lines[4]);
        assert_eq!(text.matches("LOST").count(), 1);
        assert_eq!(text.matches('X').count(), 1, "{text}");
        // A lost segment going left ends in X next to the left timeline.
        let mut l = sample();
        l.rows[5].arrive = None;
        l.rows[5].notes = vec!["lost".into()];
        let text = render_text(&l, false);
        let line = row_lines(&text)[5];
        let a = line.find('|').unwrap();
        assert!(line[a + 1..].trim_start().starts_with('X'), "{line}");
        assert!(
            line.ends_with("(lost)"),
            "caller's note kept, no second LOST: {line}"
        );
    }

    #[test]
    fn text_without_color_has_no_escapes_and_with_color_has_them() {
        let l = sample();
        let plain = render_text(&l, false);
        assert!(!plain.contains('\x1b'));
        let colored = render_text(&l, true);
        assert!(colored.contains("\x1b[32m"), "SYN green");
        assert!(colored.contains("\x1b[33m"), "FIN yellow");
        assert!(colored.contains("\x1b[2m"), "lost dim");
        let mut l2 = sample();
        l2.rows[9].flags = f(&[Flags::RST, Flags::ACK]);
        assert!(render_text(&l2, true).contains("\x1b[31m"), "RST red");
        // Stripping the escapes gives back the plain rendering (title bold aside).
        let stripped = strip_ansi(&colored);
        assert_eq!(stripped, plain);
    }

    fn strip_ansi(s: &str) -> String {
        let mut out = String::new();
        let mut it = s.chars();
        while let Some(c) = it.next() {
            if c == '\x1b' {
                for d in it.by_ref() {
                    if d == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn text_lines_stay_narrow_with_long_options_and_notes() {
        let mut l = sample();
        l.rows[0].options = "mss 1460,".repeat(30);
        l.rows[2].notes = vec![
            "retransmission".into(),
            "duplicate".into(),
            "corrupted".into(),
            "x".repeat(60),
        ];
        for r in &mut l.rows {
            r.seq = r.seq.wrapping_add(4_000_000_000);
        }
        for color in [false, true] {
            let text = strip_ansi(&render_text(&l, color));
            for line in text.lines() {
                assert!(width(line) <= TEXT_MAX, "{} columns: {line}", width(line));
            }
            assert!(text.contains("...>"), "options cut:\n{text}");
            assert!(text.contains("(retransmission, duplicate"), "{text}");
        }
        // The long notes went to a line of their own, under the arrow.
        let text = render_text(&l, false);
        let lines = row_lines(&text);
        assert_eq!(lines.len(), l.rows.len() + 1);
        assert!(lines[3].trim_start().starts_with("|"), "{}", lines[3]);
    }

    #[test]
    fn text_unknown_and_empty() {
        let mut l = sample();
        l.left_initial = None;
        l.rows[2].left_state = None;
        let text = render_text(&l, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2].split_whitespace().next(), Some("?"));
        assert_eq!(row_lines(&text)[2].split_whitespace().nth(1), Some("?"));
        let empty = Ladder {
            title: "t".into(),
            ..Ladder::default()
        };
        assert_eq!(render_text(&empty, false).lines().count(), 3);
        check_xml(&render_svg(&empty)).unwrap();
    }

    /// A small well-formedness check: tags balance and nest, attributes are quoted,
    /// text holds no raw `<` and only known entities.
    fn check_xml(s: &str) -> Result<(), String> {
        fn check_text(t: &str) -> Result<(), String> {
            if t.contains('>') {
                return Err(format!("raw > in {t:?}"));
            }
            let mut rest = t;
            while let Some(i) = rest.find('&') {
                rest = &rest[i + 1..];
                let end = rest
                    .find(';')
                    .ok_or_else(|| format!("unterminated entity in {t:?}"))?;
                if !["amp", "lt", "gt", "quot", "apos"].contains(&&rest[..end]) {
                    return Err(format!("unknown entity &{};", &rest[..end]));
                }
            }
            Ok(())
        }
        let s = s.trim_end();
        if !s.starts_with("<svg ") || !s.ends_with("</svg>") {
            return Err("not an <svg> document".into());
        }
        let mut stack: Vec<String> = Vec::new();
        let mut rest = s;
        let mut roots = 0;
        while !rest.is_empty() {
            let Some(open) = rest.find('<') else {
                check_text(rest)?;
                break;
            };
            check_text(&rest[..open])?;
            if stack.is_empty() && !rest[..open].trim().is_empty() {
                return Err("text outside the root".into());
            }
            rest = &rest[open + 1..];
            // Find the closing '>' outside quoted attribute values.
            let mut in_quote = false;
            let mut close = None;
            for (i, c) in rest.char_indices() {
                match c {
                    '"' => in_quote = !in_quote,
                    '<' if in_quote => return Err("raw < in attribute".into()),
                    '<' => return Err("< inside a tag".into()),
                    '>' if !in_quote => {
                        close = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let close = close.ok_or("unclosed tag")?;
            let tag = &rest[..close];
            rest = &rest[close + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                let top = stack.pop().ok_or_else(|| format!("stray </{name}>"))?;
                if top != name.trim() {
                    return Err(format!("<{top}> closed by </{name}>"));
                }
                continue;
            }
            let self_closing = tag.ends_with('/');
            let body = tag.trim_end_matches('/');
            let name: String = body.chars().take_while(|c| !c.is_whitespace()).collect();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':')
            {
                return Err(format!("bad tag name in <{tag}>"));
            }
            // Attributes: name="value" pairs, values free of raw '<' and bad entities.
            let mut attrs = body[name.len()..].trim();
            while !attrs.is_empty() {
                let eq = attrs
                    .find("=\"")
                    .ok_or_else(|| format!("unquoted attribute in <{tag}>"))?;
                let an = &attrs[..eq];
                if an.is_empty() || an.contains(char::is_whitespace) {
                    return Err(format!("bad attribute name {an:?}"));
                }
                let after = &attrs[eq + 2..];
                let end = after.find('"').ok_or("unterminated attribute")?;
                check_text(&after[..end])?;
                attrs = after[end + 1..].trim_start();
            }
            if stack.is_empty() {
                roots += 1;
            }
            if !self_closing {
                stack.push(name);
            }
        }
        if !stack.is_empty() {
            return Err(format!("unclosed: {stack:?}"));
        }
        if roots != 1 {
            return Err(format!("{roots} root elements"));
        }
        Ok(())
    }

    #[test]
    fn xml_checker_rejects_bad_documents() {
        assert!(check_xml(r#"<svg a="1"><g></g></svg>"#).is_ok());
        assert!(check_xml(r#"<svg a="1"><g></svg>"#).is_err());
        assert!(check_xml(r#"<svg a="1"><text>a < b</text></svg>"#).is_err());
        assert!(check_xml(r#"<svg a="1"><text>a & b</text></svg>"#).is_err());
        assert!(check_xml(r#"<svg a="1"><text>a > b</text></svg>"#).is_err());
        assert!(check_xml(r#"<svg a=1></svg>"#).is_err());
        assert!(check_xml(r#"<svg a="<"></svg>"#).is_err());
        assert!(check_xml(r#"<svg a="1"></svg><svg a="1"></svg>"#).is_err());
    }

    #[test]
    fn svg_is_well_formed_with_one_line_per_row() {
        let l = sample();
        let svg = render_svg(&l);
        check_xml(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
        assert!(svg.starts_with(r#"<svg xmlns="http://www.w3.org/2000/svg""#));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches(r#"<line class="seg""#).count(), l.rows.len());
        assert_eq!(svg.matches(r#"<line class="timeline""#).count(), 2);
        // The lost row: dashed, red X, LOST note; the others have arrowheads.
        assert_eq!(svg.matches("stroke-dasharray").count(), 1);
        assert_eq!(svg.matches(r#"class="lost-x""#).count(), 1);
        assert_eq!(svg.matches("marker-end=").count(), l.rows.len() - 1);
        assert!(svg.contains(">(LOST)</text>"));
        assert!(svg.contains("(retransmission)"));
        for s in [
            "SYN_SENT",
            "SYN_RECEIVED",
            "ESTABLISHED",
            "ESTABLISHED?",
            "FIN_WAIT_1",
            "FIN_WAIT_2",
            "CLOSE_WAIT",
            "LAST_ACK",
            "TIME_WAIT",
            "CLOSED",
            "LISTEN",
        ] {
            assert!(svg.contains(&format!(">{s}</text>")), "{s}");
        }
        assert!(svg.contains(SVG_GREEN) && svg.contains(SVG_ORANGE));
        assert!(svg.contains(">S. seq 0 ack 1 win 65160</text>"));
        assert!(!svg.contains("<script") && !svg.contains("href"));
        // Arrows go the right way: a Right row starts on the left timeline.
        let first = svg
            .lines()
            .find(|s| s.starts_with(r#"<line class="seg""#))
            .unwrap();
        assert!(
            first.contains(&format!(r#"x1="{SVG_LX}" y1="{SVG_TOP}" x2="{SVG_RX}""#)),
            "{first}"
        );
        let second = svg
            .lines()
            .filter(|s| s.starts_with(r#"<line class="seg""#))
            .nth(1)
            .unwrap();
        assert!(
            second.contains(&format!(r#"x1="{SVG_RX}""#))
                && second.contains(&format!(r#"x2="{SVG_LX}""#))
        );
    }

    #[test]
    fn svg_escapes_text() {
        let mut l = sample();
        l.title = r#"a&b <c> "d" 'e'"#.into();
        l.left = "<left>".into();
        l.rows[0].options = "mss <1460> & \"x\"".into();
        l.rows[2].notes = vec!["<&>\u{1}".into()];
        let svg = render_svg(&l);
        check_xml(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
        assert!(svg.contains("a&amp;b &lt;c&gt; &quot;d&quot; &apos;e&apos;"));
        assert!(svg.contains("&lt;left&gt;"));
        assert!(svg.contains("mss &lt;1460&gt; &amp; &quot;x&quot;"));
        assert!(svg.contains("(&lt;&amp;&gt;)"));
        assert!(!svg.contains('\u{1}'));
    }

    #[test]
    fn svg_height_grows_with_rows() {
        let mut l = sample();
        let h = |svg: &str| -> i64 {
            let i = svg.find("height=\"").unwrap() + 8;
            svg[i..i + svg[i..].find('"').unwrap()].parse().unwrap()
        };
        let h1 = h(&render_svg(&l));
        let extra = l.rows[2].clone();
        l.rows.push(extra);
        assert_eq!(h(&render_svg(&l)), h1 + SVG_STEP);
        let mut extra = l.rows[2].clone();
        extra.notes.push("duplicate".into());
        l.rows.push(extra);
        assert_eq!(h(&render_svg(&l)), h1 + 2 * SVG_STEP + SVG_NOTE_GAP);
    }
}
