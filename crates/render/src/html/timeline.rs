//! The page's timelines: one inline SVG for the threads and one for the connections, a track
//! per thread or connection over the window's looks. A thread's segment between two looks is
//! coloured by what it did (running, in a syscall, in D, outside a syscall) and a connection's
//! by whether data moved; each segment's `<title>` gives the numbers. The thread and the
//! connection the verdict is about are highlighted.

use std::fmt::Write;

use hangscope_model::{ConnectionLook, Document, SocketDetail, Thread, ThreadLook};

use super::esc;
use crate::human_ms;

/// Columns of the label, then of the track, in the SVG's user units.
const LABEL_W: f64 = 220.0;
const TRACK_W: f64 = 640.0;
const ROW_H: f64 = 18.0;
/// Tracks drawn at most per timeline; the rest is said in a line under it.
const MAX_TRACKS: usize = 64;

/// The thread and connection the verdict is about.
fn stuck(doc: &Document) -> (Option<i32>, Option<u64>) {
    let f = doc.verdict.finding.and_then(|i| doc.findings.get(i));
    (
        f.and_then(|f| f.subject.tid),
        f.and_then(|f| f.subject.socket_inode),
    )
}

pub(super) fn timelines(out: &mut String, doc: &Document) {
    let snap = &doc.snapshot;
    let Some(window) = &snap.window else {
        return;
    };
    let span = window.duration_ms.max(1) as f64;
    let (stuck_tid, stuck_inode) = stuck(doc);
    let mut threads: Vec<(&Thread, &[ThreadLook])> = snap
        .threads
        .iter()
        .filter_map(|t| {
            let looks = &t.activity.as_ref()?.looks;
            (looks.len() >= 2).then_some((t, looks.as_slice()))
        })
        .collect();
    // The stuck thread first, then the order of the THREADS table.
    threads.sort_by_key(|(t, _)| (Some(t.tid) != stuck_tid, !t.focus));
    let conns: Vec<(String, u64, &[ConnectionLook])> = snap
        .sockets
        .iter()
        .filter_map(|s| {
            let SocketDetail::Tcp(i) = &s.detail else {
                return None;
            };
            let w = i.window.as_ref()?;
            let fds: Vec<String> = s.fds.iter().map(|f| format!("fd {f}")).collect();
            let label = format!("{} → {}:{}", fds.join(","), i.peer.addr, i.peer.port);
            (w.samples.len() >= 2).then_some((label, s.inode, w.samples.as_slice()))
        })
        .collect();
    if threads.is_empty() && conns.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "<section id=\"timelines\"><h2>Over the window</h2>\n<p class=\"legend\">{} looks over \
         {}. Threads: <span class=\"k run\"></span>running <span class=\"k sys\"></span>waiting \
         in a syscall <span class=\"k d\"></span>uninterruptible (D) <span class=\"k usr\"></span>\
         other; a bar's height is its CPU use. Connections: <span class=\"k moved\"></span>data \
         moved <span class=\"k idle\"></span>nothing moved <span class=\"k retr\"></span>\
         retransmitted. Hover a segment for its numbers.</p>",
        window.looks,
        human_ms(span)
    );
    if !threads.is_empty() {
        svg(out, "threads", threads.len(), span, |out, row, y| {
            let (t, looks) = threads[row];
            let class = if Some(t.tid) == stuck_tid || t.focus {
                "track stuck"
            } else {
                "track"
            };
            let _ = write!(
                out,
                "<g class=\"{class}\" data-tid=\"{}\"><text x=\"4\" y=\"{:.1}\">{} {}</text>",
                t.tid,
                y + ROW_H - 5.0,
                t.tid,
                esc(t.name.as_ref())
            );
            thread_segments(out, looks, span, y);
            out.push_str("</g>\n");
        });
    }
    if !conns.is_empty() {
        svg(out, "connections", conns.len(), span, |out, row, y| {
            let (label, inode, samples) = &conns[row];
            let class = if Some(*inode) == stuck_inode {
                "track stuck"
            } else {
                "track"
            };
            let _ = write!(
                out,
                "<g class=\"{class}\" data-inode=\"{inode}\"><text x=\"4\" y=\"{:.1}\">{}</text>",
                y + ROW_H - 5.0,
                esc(label)
            );
            conn_segments(out, samples, span, y);
            out.push_str("</g>\n");
        });
    }
    out.push_str("</section>\n");
}

/// One `<svg>` of `rows` tracks (at most `MAX_TRACKS`), with a time axis.
fn svg(
    out: &mut String,
    kind: &str,
    rows: usize,
    span: f64,
    mut track: impl FnMut(&mut String, usize, f64),
) {
    let shown = rows.min(MAX_TRACKS);
    let height = ROW_H * shown as f64 + 16.0;
    let _ = writeln!(
        out,
        "<h3>{}</h3>\n<svg class=\"timeline\" data-kind=\"{kind}\" role=\"img\" \
         viewBox=\"0 0 {} {height:.0}\" width=\"100%\" preserveAspectRatio=\"xMinYMin meet\">",
        if kind == "threads" {
            "Threads"
        } else {
            "Connections"
        },
        LABEL_W + TRACK_W + 8.0
    );
    for row in 0..shown {
        track(out, row, ROW_H * row as f64);
    }
    // The axis: start, middle and end of the window.
    let y = ROW_H * shown as f64 + 12.0;
    for (frac, anchor) in [(0.0, "start"), (0.5, "middle"), (1.0, "end")] {
        let _ = write!(
            out,
            "<text class=\"axis\" x=\"{:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\">{}</text>",
            LABEL_W + TRACK_W * frac,
            human_ms(span * frac)
        );
    }
    out.push_str("</svg>\n");
    if rows > shown {
        let _ = writeln!(
            out,
            "<p class=\"more\">{} more not drawn; the tables below list them.</p>",
            rows - shown
        );
    }
}

fn x_of(at_ms: u64, span: f64) -> f64 {
    LABEL_W + TRACK_W * (at_ms as f64 / span).clamp(0.0, 1.0)
}

fn thread_segments(out: &mut String, looks: &[ThreadLook], span: f64, y: f64) {
    for pair in looks.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let (x0, x1) = (x_of(a.at_ms, span), x_of(b.at_ms, span));
        let class = match (b.state.as_str(), b.call.as_str()) {
            ("D", _) => "d",
            ("R", _) | (_, "running") => "run",
            (_, "user") | (_, "") => "usr",
            _ => "sys",
        };
        let dt = b.at_ms.saturating_sub(a.at_ms).max(1) as f64;
        let cpu = (b.cpu_ms - a.cpu_ms).max(0.0);
        // A floor so an idle segment is still seen; full height at a whole CPU.
        let h = (ROW_H - 4.0) * (0.5 + 0.5 * (cpu / dt).min(1.0));
        let off = b
            .off_cpu_ms
            .map(|o| format!(", off CPU {}", human_ms(o as f64)))
            .unwrap_or_default();
        let call = if b.call.is_empty() { "?" } else { &b.call };
        let _ = write!(
            out,
            "<rect class=\"{class}\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\">\
             <title>{}–{}: state {} in {}{off}, CPU +{}</title></rect>",
            y + ROW_H - 2.0 - h,
            (x1 - x0).max(0.5),
            human_ms(a.at_ms as f64),
            human_ms(b.at_ms as f64),
            esc(&b.state),
            esc(call),
            human_ms(cpu)
        );
    }
}

fn conn_segments(out: &mut String, samples: &[ConnectionLook], span: f64, y: f64) {
    for pair in samples.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let (x0, x1) = (x_of(a.at_ms, span), x_of(b.at_ms, span));
        let d = |f: fn(&ConnectionLook) -> Option<u64>| {
            f(b).zip(f(a)).map_or(0, |(b, a)| b.saturating_sub(a))
        };
        let (sent, recv) = (d(|s| s.bytes_sent), d(|s| s.bytes_received));
        let retr = b.retrans.saturating_sub(a.retrans);
        let class = if retr > 0 {
            "retr"
        } else if sent > 0 || recv > 0 || a.recv_q != b.recv_q || a.send_q != b.send_q {
            "moved"
        } else {
            "idle"
        };
        let _ = write!(
            out,
            "<rect class=\"{class}\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\">\
             <title>{}–{}: +{sent} B out, +{recv} B in, {} unacked, +{retr} retransmits, rtt \
             {}, last receive {} ago, Recv-Q {} Send-Q {}</title></rect>",
            y + 2.0,
            (x1 - x0).max(0.5),
            ROW_H - 4.0,
            human_ms(a.at_ms as f64),
            human_ms(b.at_ms as f64),
            b.unacked,
            hangscope_model::units::micros(u64::from(b.rtt_us)),
            human_ms(f64::from(b.last_data_recv_ms)),
            b.recv_q,
            b.send_q
        );
    }
}
