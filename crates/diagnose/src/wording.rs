//! How findings say things: durations, sizes and names in the words a reader of ss, lsof and
//! strace output already uses. Kept here so every rule words the same fact the same way.

use hangscope_model::{LogEntry, LogLevel};

/// "850 ms", "7.9 s", "3 min 20 s", "2 h 5 min".
pub(crate) fn duration(ms: u64) -> String {
    hangscope_model::units::duration_ms(ms as f64)
}

/// "33 bytes", "1 byte", "4.0 KiB", "2.5 MiB".
pub(crate) fn bytes(n: u64) -> String {
    hangscope_model::units::bytes_words(n)
}

/// Microseconds as ss prints round-trip times: "0.088 ms", "12.4 ms", "1.2 s".
pub(crate) fn micros(us: u32) -> String {
    hangscope_model::units::micros(u64::from(us))
}

/// "poll()" from a syscall name; "a system call" when the name is unknown.
pub(crate) fn call(name: &str) -> String {
    if name.is_empty() {
        "a system call".into()
    } else {
        format!("{name}()")
    }
}

/// "s" for plurals of counts.
pub(crate) fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Whether an address is this host's loopback, so the next step can name a local command.
pub(crate) fn is_loopback(addr: &str) -> bool {
    addr.starts_with("127.") || addr == "::1" || addr.starts_with("::ffff:127.")
}

/// A log line quoted on one line: "W0917 05:25:27 dump_meta.cc:104 Fail to dump meta ...".
pub(crate) fn log_line(e: &LogEntry) -> String {
    let level = match e.level {
        Some(LogLevel::Debug) => "D",
        Some(LogLevel::Info) => "I",
        Some(LogLevel::Warning) => "W",
        Some(LogLevel::Error) => "E",
        Some(LogLevel::Fatal) => "F",
        Some(LogLevel::Unknown) | None => "",
    };
    let mut line = format!("{level}{}", log_time(e));
    if let Some(loc) = &e.location {
        line.push(' ');
        line.push_str(loc);
    }
    let message: Vec<&str> = e
        .message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    line.push(' ');
    line.push_str(&message.join(" "));
    shorten(&line, 140)
}

/// The time of a log entry to the second: "0917 05:25:27.038408" → "0917 05:25:27".
pub(crate) fn log_time(e: &LogEntry) -> String {
    match e.time_text.split_once('.') {
        Some((head, _)) if head.contains(':') => head.to_string(),
        _ => e.time_text.clone(),
    }
}

/// The clock part of a log time: "05:25:27".
pub(crate) fn log_clock(e: &LogEntry) -> String {
    let t = log_time(e);
    t.split_whitespace().last().unwrap_or_default().to_string()
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(duration(675), "675 ms");
        assert_eq!(duration(7878), "7.9 s");
        assert_eq!(duration(200_000), "3 min 20 s");
        assert_eq!(bytes(32), "32 bytes");
        assert_eq!(bytes(2_621_440), "2.5 MiB");
        assert_eq!(micros(88), "0.088 ms");
    }

    #[test]
    fn quotes_a_glog_entry() {
        let e = LogEntry {
            time_text: "0917 05:25:27.038408".into(),
            level: Some(LogLevel::Warning),
            tid: Some(31576),
            location: Some("dump_meta.cc:104".into()),
            message: "Fail to dump meta from 10.0.130.72:10100 st:\nTraceback:\n[ETimedOut]: \
                      failed to read response header"
                .into(),
            ..LogEntry::default()
        };
        assert_eq!(
            log_line(&e),
            "W0917 05:25:27 dump_meta.cc:104 Fail to dump meta from 10.0.130.72:10100 st: \
             Traceback: [ETimedOut]: failed to read response header"
        );
        assert_eq!(log_clock(&e), "05:25:27");
    }
}
