//! JSON lines: one object per line, as structured loggers write them (zap, logrus, pino,
//! bunyan, slog, serde-based tracing). Field names vary by logger, so each is looked up under
//! its usual spellings: ts/time/timestamp/@timestamp (RFC 3339 text or epoch seconds or ms),
//! level/severity/lvl (words or bunyan/pino numbers), msg/message, tid/thread/thread_id.

use hangscope_model::{LogEntry, LogLevel};
use serde_json::{Map, Value};

use super::civil_time::TimeContext;
use super::plain;

const TIME_KEYS: [&str; 5] = ["ts", "time", "timestamp", "@timestamp", "t"];
const LEVEL_KEYS: [&str; 4] = ["level", "severity", "lvl", "log.level"];
const MESSAGE_KEYS: [&str; 4] = ["msg", "message", "@message", "event"];
const TID_KEYS: [&str; 5] = ["tid", "thread", "thread_id", "threadId", "thread.id"];

/// Parses one line as a JSON object; `None` when it is not one.
pub fn parse_line(line: &str, ctx: &TimeContext) -> Option<LogEntry> {
    let trimmed = line.trim();
    if !trimmed.starts_with('{') {
        return None;
    }
    let obj: Map<String, Value> = serde_json::from_str(trimmed).ok()?;
    let mut entry = LogEntry::default();
    if let Some(v) = first(&obj, &TIME_KEYS) {
        let (text, ms) = time_of(v, ctx);
        entry.time_text = text;
        entry.time_ms = ms;
    }
    entry.level = first(&obj, &LEVEL_KEYS).and_then(level_of);
    entry.tid = first(&obj, &TID_KEYS).and_then(|v| match v {
        Value::Number(n) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    });
    entry.location = ["caller", "location", "src", "source"]
        .iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_str))
        .map(str::to_string);
    entry.message = match first(&obj, &MESSAGE_KEYS) {
        Some(Value::String(s)) => s.clone().into(),
        Some(other) => other.to_string().into(),
        None => Default::default(),
    };
    // Other fields (error, peer, addr, ...) often carry what the message leaves out; keep
    // them after the message so peer extraction and the reader see them.
    let used: Vec<&str> = TIME_KEYS
        .iter()
        .chain(&LEVEL_KEYS)
        .chain(&MESSAGE_KEYS)
        .chain(&TID_KEYS)
        .chain(&["caller", "location", "src", "source"])
        .copied()
        .collect();
    let extra: Vec<String> = obj
        .iter()
        .filter(|(k, _)| !used.contains(&k.as_str()))
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect();
    if !extra.is_empty() {
        if !entry.message.is_empty() {
            entry.message.push_str(" ");
        }
        entry.message.push_str(&extra.join(" "));
    }
    Some(entry)
}

fn first<'a>(obj: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| obj.get(*k))
}

fn level_of(v: &Value) -> Option<LogLevel> {
    match v {
        Value::String(s) => plain::level_of(s),
        // bunyan / pino: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal.
        Value::Number(n) => Some(match n.as_u64()? {
            0..=29 => LogLevel::Debug,
            30..=39 => LogLevel::Info,
            40..=49 => LogLevel::Warning,
            50..=59 => LogLevel::Error,
            _ => LogLevel::Fatal,
        }),
        _ => None,
    }
}

/// Text as written, and epoch ms: RFC 3339 text through the plain parser, numbers as epoch
/// seconds (with fraction) or, when too large for seconds, milliseconds.
fn time_of(v: &Value, ctx: &TimeContext) -> (String, Option<i64>) {
    match v {
        Value::String(s) => {
            let ms = plain::parse_line(s, ctx).and_then(|e| e.time_ms);
            (s.clone(), ms)
        }
        Value::Number(n) => {
            let ms = n.as_f64().map(|f| {
                if f > 1e11 {
                    f as i64
                } else {
                    (f * 1000.0).round() as i64
                }
            });
            (n.to_string(), ms)
        }
        other => (other.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zap_logrus_pino() {
        let ctx = TimeContext::default();
        let e = parse_line(
            r#"{"level":"error","ts":1694928327.038,"caller":"meta/dump.go:104","msg":"dump failed","peer":"10.0.130.72:10100","tid":31576}"#,
            &ctx,
        )
        .unwrap();
        assert_eq!(e.level, Some(LogLevel::Error));
        assert_eq!(e.time_ms, Some(1_694_928_327_038));
        assert_eq!(e.tid, Some(31576));
        assert_eq!(e.location.as_deref(), Some("meta/dump.go:104"));
        assert_eq!(e.message, "dump failed peer=10.0.130.72:10100");

        let e = parse_line(
            r#"{"time":"2023-09-17T05:25:27.038Z","severity":"WARNING","message":"slow","thread":"77"}"#,
            &ctx,
        )
        .unwrap();
        assert_eq!(e.level, Some(LogLevel::Warning));
        assert_eq!(e.time_text, "2023-09-17T05:25:27.038Z");
        assert_eq!(e.time_ms, Some(1_694_928_327_038));
        assert_eq!(e.tid, Some(77));

        let e = parse_line(r#"{"level":50,"time":1694928327038,"msg":"x"}"#, &ctx).unwrap();
        assert_eq!(e.level, Some(LogLevel::Error));
        assert_eq!(e.time_ms, Some(1_694_928_327_038));
    }

    #[test]
    fn not_json() {
        let ctx = TimeContext::default();
        for line in [
            "{not json",
            "[1,2]",
            "plain text",
            "",
            "{\"a\":1",
            "\"str\"",
        ] {
            assert!(parse_line(line, &ctx).is_none(), "{line:?}");
        }
    }
}
