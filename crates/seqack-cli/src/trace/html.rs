//! `seqack trace --html`: one self-contained page (inline CSS and script, no fetches):
//! a table of the connections, built by the script from JSON embedded in the page and
//! filtered by a text box, then each connection's summary and SVG ladder.

use super::{report, Traced};
use crate::ladder::{self, Ladder};
use serde::Serialize;
use std::fmt::Write as _;

/// One table row, embedded as JSON for the script.
#[derive(Serialize)]
struct TableRow {
    index: usize,
    left: String,
    right: String,
    open: &'static str,
    close: &'static str,
    first_closer: String,
    time_wait: String,
    segments: usize,
    retransmissions: u32,
    duration_ms: f64,
    anomalies: Vec<&'static str>,
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = r#"
body { font-family: DejaVu Sans, Helvetica, Arial, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
th { background: #f0f0f0; }
tr.hidden, section.hidden { display: none; }
td.anom { color: #cf222e; }
pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
#filter { width: 30em; padding: 4px; margin: 0.5em 0; }
#count { margin-left: 1em; color: #666; }
"#;

const SCRIPT: &str = r#"
(function () {
  var data = JSON.parse(document.getElementById('conn-data').textContent);
  var body = document.getElementById('conn-rows');
  data.forEach(function (c) {
    var tr = document.createElement('tr');
    tr.id = 'row-' + c.index;
    var cells = ['#' + c.index, c.left, c.right, c.open, c.close, c.first_closer,
                 c.time_wait, String(c.segments), String(c.retransmissions),
                 c.duration_ms.toFixed(3), c.anomalies.join(', ')];
    cells.forEach(function (text, k) {
      var td = document.createElement('td');
      if (k === 0) {
        var a = document.createElement('a');
        a.href = '#conn-' + c.index;
        a.textContent = text;
        td.appendChild(a);
      } else {
        td.textContent = text;
      }
      if (k === 10) { td.className = 'anom'; }
      tr.appendChild(td);
    });
    tr.dataset.text = cells.join(' ').toLowerCase();
    body.appendChild(tr);
  });
  var input = document.getElementById('filter');
  var count = document.getElementById('count');
  function apply() {
    var words = input.value.toLowerCase().split(/\s+/).filter(function (w) { return w; });
    var shown = 0;
    data.forEach(function (c) {
      var tr = document.getElementById('row-' + c.index);
      var ok = words.every(function (w) { return tr.dataset.text.indexOf(w) >= 0; });
      tr.className = ok ? '' : 'hidden';
      document.getElementById('conn-' + c.index).className = ok ? '' : 'hidden';
      if (ok) { shown++; }
    });
    count.textContent = shown + ' of ' + data.length + ' connections';
  }
  input.addEventListener('input', apply);
  apply();
  document.body.setAttribute('data-ready', String(data.length));
})();
"#;

/// The page for the `selected` connections of `t`, whose ladders are `ladders`.
pub fn page(file: &str, t: &Traced, selected: &[usize], ladders: &[Ladder]) -> String {
    let rows: Vec<TableRow> = selected
        .iter()
        .map(|&i| {
            let (c, a) = (&t.conns[i], &t.analyses[i]);
            let name = |s: usize| {
                if s == 0 {
                    c.left.to_string()
                } else {
                    c.right.to_string()
                }
            };
            TableRow {
                index: c.index,
                left: c.left.to_string(),
                right: c.right.to_string(),
                open: a.open.name(),
                close: a.close.name(),
                first_closer: a.first_closer.map(name).unwrap_or_default(),
                time_wait: a
                    .time_wait
                    .iter()
                    .map(|&(s, _)| name(s))
                    .collect::<Vec<_>>()
                    .join(", "),
                segments: c.segs.len(),
                retransmissions: a.retransmissions[0] + a.retransmissions[1],
                duration_ms: a.phases.total_us as f64 / 1000.0,
                anomalies: a.anomalies.iter().map(|x| x.kind).collect(),
            }
        })
        .collect();
    // Inside <script>, '<' is written as \u003c so no "</script>" can end it early.
    let data = serde_json::to_string(&rows)
        .unwrap_or_else(|_| "[]".into())
        .replace('<', "\\u003c");
    let mut s = String::new();
    let title = format!("seqack trace {file}");
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(&title)
    );
    let _ = writeln!(s, "<h1>{}</h1>", esc(&title));
    let cap = &t.capture;
    let _ = writeln!(
        s,
        "<p>{}: {} frames, {} TCP segments, {} connections ({} shown).</p>",
        esc(cap.format),
        cap.frames,
        cap.packets.len(),
        t.conns.len(),
        selected.len()
    );
    s.push_str("<input id=\"filter\" type=\"search\" placeholder=\"filter: words that must all appear in the row (address, port, close kind, anomaly)\" aria-label=\"filter connections\"><span id=\"count\"></span>\n");
    s.push_str("<table id=\"conns\">\n<thead><tr><th>#</th><th>left</th><th>right</th><th>open</th><th>close</th><th>closed first</th><th>TIME_WAIT</th><th>segments</th><th>retransmissions</th><th>duration (ms)</th><th>anomalies</th></tr></thead>\n<tbody id=\"conn-rows\"></tbody>\n</table>\n");
    for (k, &i) in selected.iter().enumerate() {
        let c = &t.conns[i];
        let _ = writeln!(s, "<section id=\"conn-{}\">", c.index);
        let _ = writeln!(s, "<h2>{}</h2>", esc(&ladders[k].title));
        let _ = writeln!(
            s,
            "<pre>{}</pre>",
            esc(&report::summary_text(c, &t.analyses[i]))
        );
        s.push_str(&ladder::render_svg(&ladders[k]));
        s.push_str("</section>\n");
    }
    let _ = write!(
        s,
        "<script type=\"application/json\" id=\"conn-data\">{data}</script>\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    );
    s
}
