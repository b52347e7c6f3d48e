//! glog lines: `Lmmdd hh:mm:ss.uuuuuu TTTTT file:line] msg` (google/glog's LogMessage prefix;
//! glog ≥ 0.7 can also write the year, `L20230917 ...`). L is I, W, E or F; the thread id is
//! the writer's kernel TID (glog pads it to 5 columns); the time is local.
//!
//! Hand-written: no crate parses glog's prefix, and it is one fixed layout.

use hangscope_model::{LogEntry, LogLevel};

use super::civil_time::{LocalTime, TimeContext, digits, month_day_in_range};

/// Parses a glog header line; `None` when the line does not start like one (then it is a
/// continuation of the entry above, or malformed).
pub fn parse_line(line: &str, ctx: &TimeContext) -> Option<LogEntry> {
    let level = match line.as_bytes().first()? {
        b'I' => LogLevel::Info,
        b'W' => LogLevel::Warning,
        b'E' => LogLevel::Error,
        b'F' => LogLevel::Fatal,
        _ => return None,
    };
    let rest = &line[1..];
    let date_len = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (year, md) = match date_len {
        4 => (None, rest),
        8 => (Some(digits(rest, 4)? as i32), &rest[4..]),
        _ => return None,
    };
    let month = digits(md, 2)?;
    let day = digits(&md[2..], 2)?;
    if !month_day_in_range(month, day) {
        return None;
    }
    let after_date = md.get(4..)?.strip_prefix(' ')?;
    let (t, used) = LocalTime::at(year, month, day, after_date)?;
    let time_text = format!("{} {}", &rest[..date_len], &after_date[..used]);
    let after_time = &after_date[used..];
    if !after_time.starts_with(' ') {
        return None;
    }
    let after_time = after_time.trim_start();
    let tid_len = after_time.bytes().take_while(u8::is_ascii_digit).count();
    if tid_len == 0 {
        return None;
    }
    let tid: i32 = after_time[..tid_len].parse().ok()?;
    let after_tid = after_time[tid_len..].strip_prefix(' ')?.trim_start();
    // "file.cc:104] msg": the location ends at the first "] ".
    let close = after_tid.find(']')?;
    let location = &after_tid[..close];
    if location.is_empty() || location.contains(' ') {
        return None;
    }
    let message = after_tid[close + 1..]
        .strip_prefix(' ')
        .unwrap_or(&after_tid[close + 1..]);
    Some(LogEntry {
        time_text,
        time_ms: ctx.epoch_ms(&t),
        level: Some(level),
        tid: Some(tid),
        location: Some(location.to_string()),
        message: message.into(),
        ..LogEntry::default()
    })
}

#[cfg(test)]
mod tests {
    use super::super::civil_time::seed_context as ctx;
    use super::*;

    #[test]
    fn seed_lines() {
        let e = parse_line(
            "W0917 05:25:27.038408 31576 dump_meta.cc:104] Fail to dump meta from 10.0.130.72:10100 st:",
            &ctx(),
        )
        .unwrap();
        assert_eq!(e.level, Some(LogLevel::Warning));
        assert_eq!(e.tid, Some(31576));
        assert_eq!(e.time_text, "0917 05:25:27.038408");
        assert_eq!(e.location.as_deref(), Some("dump_meta.cc:104"));
        assert_eq!(e.message, "Fail to dump meta from 10.0.130.72:10100 st:");
        assert_eq!(e.time_ms, Some(1_694_899_527_038));

        let e = parse_line(
            "I0917 05:25:27.039000 31576 meta.cc:1736] [LIBMETA ADDR UPDATE]  old meta ip: 10.0.130.72 old meta port: 10100",
            &ctx(),
        )
        .unwrap();
        assert_eq!(e.location.as_deref(), Some("meta.cc:1736"));
        assert!(e.message.starts_with("[LIBMETA ADDR UPDATE]  old meta ip"));
    }

    #[test]
    fn padded_tid_and_year_prefix() {
        let e = parse_line("E0101 00:00:01.000001   123 a.cc:1] boom", &ctx()).unwrap();
        assert_eq!(e.tid, Some(123));
        assert_eq!(e.level, Some(LogLevel::Error));
        let e = parse_line(
            "F20240229 23:59:59.999999 7 b.cc:2] x",
            &TimeContext::default(),
        )
        .unwrap();
        assert_eq!(e.time_text, "20240229 23:59:59.999999");
        assert_eq!(e.level, Some(LogLevel::Fatal));
        // The year is in the line, but without a zone there is no epoch time.
        assert_eq!(e.time_ms, None);
    }

    #[test]
    fn not_glog() {
        for line in [
            "Traceback:",
            "[ETimedOut]: failed to read response header when calling: zbs.meta.MetaService.ListDb",
            " new meta ip: 10.0.130.73 new meta port: 10100",
            "I0917 05:25:27.039000 meta.cc:1736] no tid",
            "I1317 05:25:27.039000 1 meta.cc:1736] bad month",
            "Info 0917",
            "I0917",
            "",
            "W0917 05:25:27.038408 31576 no location here",
        ] {
            assert!(parse_line(line, &ctx()).is_none(), "{line:?}");
        }
    }
}
