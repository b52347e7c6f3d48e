//! The LOGS section: per log, its last relevant entries (warnings and errors first), each with
//! the thread that wrote it, and the timeline of peers tried.

use std::fmt::Write;

use hangscope_model::{LogEntry, LogFormat, LogSource, Snapshot, Text};

use super::Style;
use crate::human_bytes;

/// Entries shown per log.
const SHOWN: usize = 10;
/// Continuation lines shown per entry.
const SHOWN_CONTINUATION: usize = 3;
/// Timeline steps shown per log.
const SHOWN_STEPS: usize = 8;

pub(super) fn logs(out: &mut String, snap: &Snapshot, st: &Style) {
    if snap.logs.is_empty() {
        return;
    }
    let _ = writeln!(out, "{}", st.bold("LOGS"));
    for source in &snap.logs {
        source_block(out, snap, source, st);
    }
    out.push('\n');
}

fn source_block(out: &mut String, snap: &Snapshot, s: &LogSource, st: &Style) {
    let mut head = vec![st.show(&s.path)];
    if let Some(fd) = s.fd {
        head.push(format!("fd {fd}"));
    }
    if s.format != LogFormat::Unknown || !s.entries.is_empty() {
        head.push(format_name(s.format).into());
    }
    let parsed = s.entries.iter().filter(|e| !e.malformed).count();
    let malformed = s.entries.len() - parsed;
    if s.format == LogFormat::Kmsg {
        head.push(format!("{parsed} about the process"));
    } else if s.read_via.is_some() {
        let mut what = format!("{parsed} entries");
        if malformed > 0 {
            what.push_str(&format!(" + {malformed} unparsed lines"));
        }
        if s.bytes_read > 0 {
            what.push_str(&format!(", {} read", human_bytes(s.bytes_read)));
        }
        head.push(what);
    }
    let _ = writeln!(out, "  {}", head.join("  "));
    let mut sub = vec![st.show(&s.reason)];
    if let (Some(year), Some(from)) = (s.year, &s.year_from) {
        sub.push(format!("year {year} from {}", st.show(from)));
    }
    if let Some(z) = &s.utc_offset {
        sub.push(format!("local times UTC{}", st.show(z)));
    }
    sub.extend(s.notes.iter().map(|n| st.show(n)));
    let _ = writeln!(out, "    {}", st.dim(&sub.join("; ")));

    for i in pick(&s.entries, s.format == LogFormat::Unknown) {
        entry_line(out, snap, &s.entries[i], st);
    }
    timeline(out, s, st);
}

fn format_name(f: LogFormat) -> &'static str {
    match f {
        LogFormat::Glog => "glog",
        LogFormat::Plain => "text",
        LogFormat::JsonLines => "json lines",
        LogFormat::Kmsg => "kernel",
        LogFormat::Journal => "journal",
        LogFormat::Unknown => "unrecognised format",
    }
}

/// Indices of the entries to show, in log order: the newest problems (warnings, errors,
/// timeouts) first, then the newest of the rest up to `SHOWN`. Unparsed lines only when the
/// format is unknown (then they are all there is).
fn pick(entries: &[LogEntry], show_unparsed: bool) -> Vec<usize> {
    let usable = |e: &LogEntry| show_unparsed || !e.malformed;
    let mut chosen: Vec<usize> = entries
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, e)| usable(e) && e.is_problem())
        .map(|(i, _)| i)
        .take(SHOWN)
        .collect();
    let rest: Vec<usize> = entries
        .iter()
        .enumerate()
        .rev()
        .filter(|(i, e)| usable(e) && !chosen.contains(i))
        .map(|(i, _)| i)
        .take(SHOWN - chosen.len())
        .collect();
    chosen.extend(rest);
    chosen.sort_unstable();
    chosen
}

fn entry_line(out: &mut String, snap: &Snapshot, e: &LogEntry, st: &Style) {
    let mut prefix = String::new();
    if let Some(level) = e.level {
        prefix.push(level.letter());
        prefix.push(' ');
    }
    if !e.time_text.is_empty() {
        prefix.push_str(&st.show(&e.time_text));
        prefix.push(' ');
    }
    if let Some(tid) = e.tid {
        let _ = write!(prefix, "{tid}");
        let name = e
            .thread_tid
            .and_then(|t| snap.thread(t))
            .map(|t| st.show(&t.name))
            .or_else(|| e.thread_name.as_ref().map(|n| st.show(n)));
        if let Some(name) = name {
            let _ = write!(prefix, " ({name})");
        }
        if let Some(host) = e.thread_tid.filter(|h| *h != tid) {
            let _ = write!(prefix, " = host {host}");
        }
        prefix.push(' ');
    }
    if let Some(loc) = &e.location {
        let _ = write!(prefix, "{}] ", st.show(loc));
    }
    // The message's own lines are shown as continuation lines, each escaped (a CR, an escape
    // sequence) and cut; a line break the target wrote cannot start a line of the report.
    let lines: Vec<Text> = e
        .message
        .as_bytes()
        .split(|&b| b == b'\n')
        .map(|l| Text::from_bytes(l.strip_suffix(b"\r").unwrap_or(l)))
        .collect();
    let first = lines.first().map(|l| st.show(l)).unwrap_or_default();
    let text = format!("{prefix}{first}");
    let text = if e.is_problem() {
        st.yellow(&text)
    } else {
        text
    };
    let _ = writeln!(out, "    {text}");
    let rest = lines.get(1..).unwrap_or_default();
    for l in rest.iter().take(SHOWN_CONTINUATION) {
        let _ = writeln!(out, "      {}", st.show(l));
    }
    if rest.len() > SHOWN_CONTINUATION {
        let _ = writeln!(
            out,
            "      {}",
            st.dim(&format!("({} more lines)", rest.len() - SHOWN_CONTINUATION))
        );
    }
    if !e.socket_inodes.is_empty() {
        let fds: Vec<String> = e
            .socket_inodes
            .iter()
            .filter_map(|ino| snap.socket(*ino))
            .flat_map(|s| s.fds.iter().map(|f| format!("fd {f}")))
            .collect();
        if !fds.is_empty() {
            let _ = writeln!(
                out,
                "      {}",
                st.dim(&format!("= connection on {}", fds.join(", ")))
            );
        }
    }
}

fn timeline(out: &mut String, s: &LogSource, st: &Style) {
    if s.peer_timeline.is_empty() {
        return;
    }
    let skip = s.peer_timeline.len().saturating_sub(SHOWN_STEPS);
    let steps: Vec<String> = s.peer_timeline[skip..]
        .iter()
        .map(|a| {
            // "0917 05:25:27.038408" → "05:25:27".
            let clock = a
                .time_text
                .split_whitespace()
                .last()
                .map(|t| t.split('.').next().unwrap_or(t))
                .unwrap_or("");
            format!(
                "{} {} {}",
                st.show(clock),
                st.show(&a.peer),
                a.outcome.as_str()
            )
        })
        .collect();
    let _ = writeln!(out, "    peers: {}", steps.join(" → "));
}

#[cfg(test)]
mod tests {
    use super::*;
    use hangscope_model::{LogLevel, PeerAttempt, PeerOutcome, Thread};

    fn entry(level: LogLevel, tid: i32, msg: &str) -> LogEntry {
        LogEntry {
            time_text: "0917 05:25:27.038408".into(),
            level: Some(level),
            tid: Some(tid),
            thread_tid: Some(tid),
            location: Some("dump_meta.cc:104".into()),
            message: msg.into(),
            ..LogEntry::default()
        }
    }

    #[test]
    fn problems_first_with_thread_names_and_timeline() {
        let mut entries: Vec<LogEntry> = (0..20)
            .map(|i| entry(LogLevel::Info, 31516, &format!("tick {i}")))
            .collect();
        entries.insert(
            3,
            entry(
                LogLevel::Warning,
                31576,
                "Fail to dump meta from 10.0.130.72:10100 st:\nTraceback:\n[ETimedOut]: x",
            ),
        );
        entries.push(LogEntry {
            message: "\u{1}garbage".into(),
            malformed: true,
            ..LogEntry::default()
        });
        let snap = Snapshot {
            threads: vec![Thread {
                tid: 31576,
                name: "dump_meta".into(),
                ..Thread::default()
            }],
            logs: vec![LogSource {
                path: "/var/log/zbs/zbs-metad.log.20230918-075346.31516".into(),
                fd: Some(7),
                format: LogFormat::Glog,
                bytes_read: 4096,
                read_via: Some("/proc/31516/fd/7".into()),
                reason: "fd 7 open for writing, its name says log".into(),
                year: Some(2023),
                year_from: Some("file name".into()),
                entries,
                peer_timeline: vec![PeerAttempt {
                    time_text: "0917 05:25:27.038408".into(),
                    peer: "10.0.130.72:10100".into(),
                    outcome: PeerOutcome::Timeout,
                    ..PeerAttempt::default()
                }],
                ..LogSource::default()
            }],
            ..Snapshot::default()
        };
        let mut out = String::new();
        logs(&mut out, &snap, &Style::plain());
        let text = out;
        assert!(
            text.contains("fd 7  glog  21 entries + 1 unparsed lines, 4.0 KiB read"),
            "{text}"
        );
        assert!(text.contains(
            "W 0917 05:25:27.038408 31576 (dump_meta) dump_meta.cc:104] Fail to dump meta"
        ));
        assert!(text.contains("      [ETimedOut]: x"));
        // The warning, plus the 9 newest ticks; the oldest ticks and the garbage are left out.
        assert!(text.contains("tick 19") && text.contains("tick 11"));
        assert!(!text.contains("tick 10\n") && !text.contains("garbage"));
        assert!(text.contains("year 2023 from file name"));
        assert!(text.contains("peers: 05:25:27 10.0.130.72:10100 timed out"));
    }
}
