//! "timestamp level message" lines, the shape most loggers share:
//! - ISO-8601: `2023-09-17T05:25:27.038Z ERROR msg`, `2023-09-17 05:25:27,038 [WARN] msg`,
//!   `[2023-09-17 05:25:27] 1234 INFO: msg` (log4j, logback, Python logging, zap's console);
//! - syslog / `journalctl -o short-precise`: `Sep 17 05:25:27.038408 host prog[1234]: msg`.
//!
//! Hand-written: the variations are small and a general date crate would not know where the
//! level and thread tokens sit.

use hangscope_model::{LogEntry, LogLevel};

use super::civil_time::{LocalTime, TimeContext, digits, month_day_in_range};

/// A level word in any of the usual spellings.
pub fn level_of(word: &str) -> Option<LogLevel> {
    let w = word
        .trim_matches(|c: char| matches!(c, '[' | ']' | '(' | ')' | ':' | '<' | '>' | '|'))
        .to_ascii_uppercase();
    Some(match w.as_str() {
        "TRACE" | "TRC" | "DEBUG" | "DBG" | "VERBOSE" => LogLevel::Debug,
        "INFO" | "INF" | "NOTICE" => LogLevel::Info,
        "WARN" | "WARNING" | "WRN" => LogLevel::Warning,
        "ERROR" | "ERR" | "SEVERE" | "CRIT" | "CRITICAL" => LogLevel::Error,
        "FATAL" | "PANIC" | "ALERT" | "EMERG" => LogLevel::Fatal,
        _ => return None,
    })
}

/// Parses a header line; `None` when it does not start with a timestamp.
pub fn parse_line(line: &str, ctx: &TimeContext) -> Option<LogEntry> {
    let (time, time_text, rest) = iso_time(line).or_else(|| syslog_time(line))?;
    let mut entry = LogEntry {
        time_text,
        time_ms: ctx.epoch_ms(&time),
        ..LogEntry::default()
    };
    let (level, tid, message) = level_and_tid(rest);
    entry.level = level;
    entry.tid = tid;
    entry.message = message.into();
    Some(entry)
}

/// Looks at the first few tokens for a level word and a numeric thread id ("[1234]",
/// "tid=1234", "1234"); the message is what follows the level (or everything, without one).
/// Past the first token a level word counts only when written as one (upper case or
/// bracketed), so "connection error: x" stays a message.
fn level_and_tid(rest: &str) -> (Option<LogLevel>, Option<i32>, &str) {
    let mut tid = None;
    let mut cursor = rest;
    // Only thread ids and separators so far: the next word is where a level would sit.
    let mut only_ids = true;
    for i in 0..5 {
        let trimmed = cursor.trim_start();
        let end = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
        let token = &trimmed[..end];
        if token.is_empty() {
            break;
        }
        let after = &trimmed[end..];
        let marked = i == 0
            || only_ids
            || token.starts_with('[')
            || !token.bytes().any(|b| b.is_ascii_lowercase());
        if let Some(level) = level_of(token).filter(|_| marked) {
            let msg = after
                .trim_start()
                .trim_start_matches(['-', ':', '|'])
                .trim_start();
            return (Some(level), tid, msg);
        }
        let bare = token
            .trim_start_matches("tid=")
            .trim_start_matches("thread=")
            .trim_matches(|c| matches!(c, '[' | ']' | '(' | ')' | ':'));
        if tid.is_none() && !bare.is_empty() && bare.bytes().all(|b| b.is_ascii_digit()) {
            tid = bare.parse().ok();
        } else if !matches!(token, "-" | "|") {
            only_ids = false;
        }
        // Anything else is a logger name or a word of the message: keep looking a little
        // further; only a level word decides where the message starts.
        cursor = after;
    }
    (None, tid, rest.trim_start())
}

/// `[`? YYYY-MM-DD[T ]hh:mm:ss[.frac][Z|±hh:mm|±hhmm] `]`?
fn iso_time(line: &str) -> Option<(LocalTime, String, &str)> {
    let s = line.strip_prefix('[').unwrap_or(line);
    let year = digits(s, 4)? as i32;
    if s.as_bytes().get(4) != Some(&b'-') || s.as_bytes().get(7) != Some(&b'-') {
        return None;
    }
    let month = digits(&s[5..], 2)?;
    let day = digits(s.get(8..)?, 2)?;
    if !month_day_in_range(month, day) {
        return None;
    }
    if !matches!(s.as_bytes().get(10), Some(b'T') | Some(b' ')) {
        return None;
    }
    let (time, used) = LocalTime::at(Some(year), month, day, s.get(11..)?)?;
    let mut end = 11 + used;
    let mut offset_s = None;
    let tail = &s[end..];
    if let Some(r) = tail.strip_prefix('Z') {
        offset_s = Some(0);
        end = s.len() - r.len();
    } else if let Some(sign) = tail.chars().next().filter(|c| matches!(c, '+' | '-')) {
        let t = &tail[1..];
        let hh = digits(t, 2);
        let (mm, len) = if t.as_bytes().get(2) == Some(&b':') {
            (t.get(3..).and_then(|x| digits(x, 2)), 5)
        } else {
            (t.get(2..).and_then(|x| digits(x, 2)), 4)
        };
        if let (Some(hh), Some(mm)) = (hh, mm) {
            let v = (hh * 3600 + mm * 60) as i32;
            offset_s = Some(if sign == '-' { -v } else { v });
            end += 1 + len;
        }
    }
    let time_text = s[..end].to_string();
    let rest = s[end..].strip_prefix(']').unwrap_or(&s[end..]);
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return None;
    }
    Some((LocalTime { offset_s, ..time }, time_text, rest))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `Mmm dd hh:mm:ss[.frac] host tag[pid]:` — the host and tag are dropped from the message,
/// the pid is not a thread id.
fn syslog_time(line: &str) -> Option<(LocalTime, String, &str)> {
    let mon = line.get(..3)?;
    let month = MONTHS.iter().position(|m| *m == mon)? as u32 + 1;
    let after = line.get(3..)?.strip_prefix(' ')?;
    let day_str = after.trim_start();
    let day_len = day_str.bytes().take_while(u8::is_ascii_digit).count();
    if day_len == 0 || day_len > 2 {
        return None;
    }
    let day: u32 = day_str[..day_len].parse().ok()?;
    let clock = day_str[day_len..].strip_prefix(' ')?;
    let (time, used) = LocalTime::at(None, month, day, clock)?;
    let consumed = line.len() - clock.len() + used;
    let time_text = line[..consumed].to_string();
    let mut rest = &line[consumed..];
    // "host tag[pid]: msg" → "msg".
    let words: Vec<&str> = rest.split_whitespace().take(2).collect();
    if words.len() == 2
        && words[1].ends_with(':')
        && let Some(pos) = rest.find(words[1])
    {
        rest = &rest[pos + words[1].len()..];
    }
    Some((time, time_text, rest))
}

#[cfg(test)]
mod tests {
    use super::super::civil_time::YearRef;
    use super::*;

    fn utc() -> TimeContext {
        TimeContext {
            year_ref: Some(YearRef::End {
                year: 2023,
                month: 9,
            }),
            utc_offset_s: Some(0),
        }
    }

    #[test]
    fn iso_forms() {
        let e = parse_line(
            "2023-09-17T05:25:27.038Z ERROR dial 10.0.130.72:10100: i/o timeout",
            &utc(),
        )
        .unwrap();
        assert_eq!(e.level, Some(LogLevel::Error));
        assert_eq!(e.time_text, "2023-09-17T05:25:27.038Z");
        assert_eq!(e.message, "dial 10.0.130.72:10100: i/o timeout");
        assert_eq!(e.time_ms, Some(1_694_928_327_038));

        let e = parse_line("2023-09-17 13:25:27,038 [WARN] slow disk", &utc()).unwrap();
        assert_eq!(e.level, Some(LogLevel::Warning));
        assert_eq!(e.message, "slow disk");

        let e = parse_line("[2023-09-17 05:25:27] 4242 INFO: started", &utc()).unwrap();
        assert_eq!(e.tid, Some(4242));
        assert_eq!(e.level, Some(LogLevel::Info));
        assert_eq!(e.message, "started");

        let e = parse_line(
            "2023-09-17T13:25:27.038+08:00 [1234] error: boom",
            &TimeContext::default(),
        )
        .unwrap();
        assert_eq!(e.tid, Some(1234));
        assert_eq!(e.level, Some(LogLevel::Error));
        // The zone in the line wins over (absent) context.
        assert_eq!(e.time_ms, Some(1_694_928_327_038));

        let e = parse_line("2023-09-17 05:25:27,038 - db.pool - ERROR - gone", &utc()).unwrap();
        assert_eq!(e.level, Some(LogLevel::Error));
        assert_eq!(e.message, "gone");
    }

    #[test]
    fn no_level_keeps_everything() {
        let e = parse_line("2023-09-17T05:25:27Z something happened", &utc()).unwrap();
        assert_eq!(e.level, None);
        assert_eq!(e.message, "something happened");
        let e = parse_line("2023-09-17T05:25:27Z connection error: reset", &utc()).unwrap();
        assert_eq!(e.level, None);
        assert_eq!(e.message, "connection error: reset");
    }

    #[test]
    fn syslog_and_journal_short_precise() {
        let e = parse_line(
            "Sep 17 05:25:27.038408 node130-71 zbs-metad[31516]: Fail to connect 10.0.130.72:10100",
            &utc(),
        )
        .unwrap();
        assert_eq!(e.time_text, "Sep 17 05:25:27.038408");
        assert_eq!(e.message, "Fail to connect 10.0.130.72:10100");
        assert_eq!(e.time_ms, Some(1_694_928_327_038));
        let e = parse_line("Sep  7 05:25:27 host kernel: x", &utc()).unwrap();
        assert_eq!(e.message, "x");
    }

    #[test]
    fn not_plain() {
        for line in [
            "2023-13-17T05:25:27Z x",
            "2023-09-17X05:25:27Z x",
            "2023-09-17T05:25:27Zjunk",
            "Foo 17 05:25:27 x",
            "Sep 170 05:25:27 x",
            "\tat com.example.Main(Main.java:1)",
            "",
        ] {
            assert!(parse_line(line, &utc()).is_none(), "{line:?}");
        }
    }
}
