//! A log's text → entries: which format it is in, which lines start an entry, which continue
//! the one above (glog's "Traceback:" lines, Java stack frames), and which are garbage.

use hangscope_model::{LogEntry, LogFormat};

use super::civil_time::TimeContext;
use super::{glog, json_lines, peers, plain};

/// Lines a single entry may absorb; past this, further lines become entries of their own so
/// one runaway dump cannot swallow the tail.
const MAX_CONTINUATION_LINES: usize = 200;

/// How many lines format detection looks at.
const SNIFF_LINES: usize = 200;

/// The format most of the first lines parse as; `Unknown` when none parses.
pub fn detect(text: &str, ctx: &TimeContext) -> LogFormat {
    let mut counts = [0usize; 3];
    for line in text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(SNIFF_LINES)
    {
        if glog::parse_line(line, ctx).is_some() {
            counts[0] += 1;
        } else if json_lines::parse_line(line, ctx).is_some() {
            counts[2] += 1;
        } else if plain::parse_line(line, ctx).is_some() {
            counts[1] += 1;
        }
    }
    let formats = [LogFormat::Glog, LogFormat::Plain, LogFormat::JsonLines];
    match counts.iter().enumerate().max_by_key(|(_, c)| **c) {
        Some((i, c)) if *c > 0 => formats[i],
        _ => LogFormat::Unknown,
    }
}

fn parse_header(format: LogFormat, line: &str, ctx: &TimeContext) -> Option<LogEntry> {
    match format {
        LogFormat::Glog => glog::parse_line(line, ctx),
        LogFormat::JsonLines => json_lines::parse_line(line, ctx),
        LogFormat::Plain | LogFormat::Journal => plain::parse_line(line, ctx),
        _ => None,
    }
}

/// Text that looks like text: no NULs or other control bytes besides tab.
fn is_texty(line: &str) -> bool {
    !line
        .chars()
        .any(|c| (c.is_control() && c != '\t') || c == '\u{fffd}')
}

/// A tail that starts mid-file may begin with the continuation lines of an entry whose first
/// line was not read; they are dropped (up to `MAX_CONTINUATION_LINES` of them) rather than
/// reported as garbage.
pub fn skip_orphans<'a>(text: &'a str, format: LogFormat, ctx: &TimeContext) -> &'a str {
    let mut offset = 0;
    for line in text.split_inclusive('\n').take(MAX_CONTINUATION_LINES) {
        let bare = line.trim_end_matches(['\n', '\r']);
        if parse_header(format, bare, ctx).is_some() {
            return &text[offset..];
        }
        offset += line.len();
    }
    text
}

/// Parses `text` in `format`. Never fails: a line that starts no entry and cannot continue one
/// (nothing above it, not text, or JSON lines where nothing continues) is kept verbatim as a
/// malformed entry.
pub fn parse(text: &str, format: LogFormat, ctx: &TimeContext) -> Vec<LogEntry> {
    let mut out: Vec<LogEntry> = Vec::new();
    let mut continued = 0usize;
    // Whether the last entry is a parsed one that may take continuation lines.
    let mut open = false;
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(e) = parse_header(format, line, ctx) {
            out.push(e);
            open = true;
            continued = 0;
            continue;
        }
        let can_continue = open
            && format != LogFormat::JsonLines
            && continued < MAX_CONTINUATION_LINES
            && is_texty(line);
        match out.last_mut() {
            Some(last) if can_continue => {
                last.message.push_str("\n");
                last.message.push_str(line);
                continued += 1;
            }
            _ => {
                out.push(LogEntry {
                    message: line.into(),
                    malformed: true,
                    ..LogEntry::default()
                });
                open = false;
            }
        }
    }
    for e in &mut out {
        // The message keeps the bytes that were not UTF-8; the fields parsed from the header
        // are plain strings.
        e.message = super::tail::exact(&e.message);
        super::tail::lossy(&mut e.time_text);
        if let Some(loc) = &mut e.location {
            super::tail::lossy(loc);
        }
        peers::annotate(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::civil_time::seed_context as ctx;
    use super::*;
    use hangscope_model::{LogEvent, LogLevel};

    // The seed incident's log excerpt, verbatim (zbs-metad, CentOS 7, glog).
    const SEED: &str = include_str!("../../../../tests/fixtures/logs/glog-zbs-metad-seed.log");

    #[test]
    fn seed_excerpt_with_continuations() {
        assert_eq!(detect(SEED, &ctx()), LogFormat::Glog);
        let e = parse(SEED, LogFormat::Glog, &ctx());
        assert_eq!(e.len(), 5, "{e:#?}");
        assert!(e.iter().all(|e| e.tid == Some(31576) && !e.malformed));
        assert_eq!(
            e[1].message,
            "Fail to dump meta from 10.0.130.72:10100 st:\nTraceback:\n\
             [ETimedOut]: failed to read response header when calling: \
             zbs.meta.MetaService.ListDb"
        );
        assert_eq!(e[1].event, Some(LogEvent::Timeout));
        assert_eq!(e[1].peers, vec!["10.0.130.72:10100"]);
        assert_eq!(e[2].event, Some(LogEvent::AddrUpdate));
        assert!(e[2].message.ends_with("new meta port: 10100"));
        assert_eq!(e[4].level, Some(LogLevel::Warning));
        assert_eq!(e[4].time_ms, Some(1_694_899_537_049));
        let t = peers::timeline(&e);
        assert_eq!(t.len(), 6);
        assert_eq!(t.last().map(|a| a.peer.as_str()), Some("10.0.130.73:10100"));
    }

    #[test]
    fn garbage_is_kept_not_fatal() {
        let text = "garbage before anything\n\
                    \u{1}\u{2}binary\u{0}junk\n\
                    I0917 05:25:17.037914 7 a.cc:1] ok\n\
                    still text, continues\n\
                    \u{0}\u{0}\u{7}\n\
                    after garbage\n";
        let e = parse(text, LogFormat::Glog, &ctx());
        assert_eq!(e.len(), 5, "{e:#?}");
        assert!(e[0].malformed && e[1].malformed);
        assert_eq!(e[0].message, "garbage before anything");
        assert_eq!(e[2].message, "ok\nstill text, continues");
        assert!(!e[2].malformed);
        // Control bytes never continue an entry, and nothing continues a malformed line.
        assert!(e[3].malformed && e[3].message.contains('\u{7}'));
        assert!(e[4].malformed);
        assert_eq!(e[4].message, "after garbage");
    }

    #[test]
    fn json_lines_never_continue() {
        let text = "{\"level\":\"info\",\"msg\":\"a\",\"tid\":5}\nnot json\n{\"msg\":\"b\"}\n";
        assert_eq!(detect(text, &ctx()), LogFormat::JsonLines);
        let e = parse(text, LogFormat::JsonLines, &ctx());
        assert_eq!(e.len(), 3);
        assert!(e[1].malformed);
        assert_eq!(e[1].message, "not json");
        assert_eq!(e[2].message, "b");
    }

    #[test]
    fn plain_with_stack_trace() {
        let text = "2023-09-17 05:25:27,038 ERROR request failed\n\
                    java.net.SocketTimeoutException: Read timed out\n\
                    \tat java.net.SocketInputStream.read(SocketInputStream.java:150)\n\
                    2023-09-17 05:25:28,000 INFO next\n";
        assert_eq!(detect(text, &ctx()), LogFormat::Plain);
        let e = parse(text, LogFormat::Plain, &ctx());
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].message.lines().count(), 3);
        assert_eq!(e[0].event, Some(LogEvent::Timeout));
    }

    #[test]
    fn a_cut_tail_drops_the_orphaned_continuation() {
        let tail = "Traceback:\n[ETimedOut]: x\nI0917 05:25:17.037914 7 a.cc:1] ok\n";
        let kept = skip_orphans(tail, LogFormat::Glog, &ctx());
        assert!(kept.starts_with("I0917"));
        // Nothing that parses: keep it all, it will show as unparsed lines.
        assert_eq!(skip_orphans("a\nb\n", LogFormat::Glog, &ctx()), "a\nb\n");
    }

    #[test]
    fn binary_sniff() {
        use super::super::tail::looks_binary;
        assert!(looks_binary(b"\x00\x01\x02abc"));
        let mut mostly_text = b"I0917 05:25:17.037914 7 a.cc:1] ok\n".repeat(3);
        mostly_text.extend_from_slice(b"\x00\x07 garbage\n");
        assert!(!looks_binary(&mostly_text));
        assert!(!looks_binary(b"I0917 05:25:17.037914 7 a.cc:1] ok\n"));
        assert!(!looks_binary(b""));
        assert_eq!(detect("", &ctx()), LogFormat::Unknown);
        assert_eq!(
            detect("just words\nmore words\n", &ctx()),
            LogFormat::Unknown
        );
    }
}
