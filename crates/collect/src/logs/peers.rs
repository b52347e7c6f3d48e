//! Peer addresses named in log messages, and the timeline of which peer was tried when.
//!
//! Addresses are written the way `Endpoint`'s Display writes them ("10.0.130.72:10100",
//! `[::1]:80`), so a log line and a socket meet by string equality.

use std::net::{Ipv4Addr, Ipv6Addr};

use hangscope_model::{LogEntry, LogEvent, LogLevel, PeerAttempt, PeerOutcome};

/// Every "a.b.c.d:port" and `[v6]:port` in `text`, in order, without repeats.
pub fn extract(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'[' {
            if let Some(close) = text[i + 1..].find(']') {
                let inner = &text[i + 1..i + 1 + close];
                let after = i + 1 + close + 1;
                if let (Ok(addr), Some((port, _))) =
                    (inner.parse::<Ipv6Addr>(), port_at(text, after))
                {
                    push(format!("[{addr}]:{port}"));
                    i = after;
                    continue;
                }
            }
            i += 1;
            continue;
        }
        let starts_token = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.');
        if b[i].is_ascii_digit() && starts_token {
            let len = b[i..]
                .iter()
                .take_while(|c| c.is_ascii_digit() || **c == b'.')
                .count();
            let cand = &text[i..i + len];
            if let Ok(addr) = cand.parse::<Ipv4Addr>()
                && let Some((port, _)) = port_at(text, i + len)
            {
                push(format!("{addr}:{port}"));
            }
            i += len;
            continue;
        }
        i += 1;
    }
    out
}

/// ":port" at byte `at`, not followed by another digit or an alphanumeric.
fn port_at(text: &str, at: usize) -> Option<(u16, usize)> {
    let rest = text.get(at..)?.strip_prefix(':')?;
    let len = rest.bytes().take_while(u8::is_ascii_digit).count();
    if len == 0 || len > 5 {
        return None;
    }
    if rest
        .as_bytes()
        .get(len)
        .is_some_and(u8::is_ascii_alphanumeric)
    {
        return None;
    }
    let port: u16 = rest[..len].parse().ok()?;
    (port > 0).then_some((port, at + 1 + len))
}

fn is_timeout(lower: &str) -> bool {
    [
        "timedout",
        "timed out",
        "timeout",
        "time out",
        "deadline exceeded",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

fn is_failure(lower: &str) -> bool {
    [
        "fail",
        "error",
        "refused",
        "reset",
        "unreachable",
        "broken pipe",
        "cannot",
        "can't",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

fn is_addr_update(lower: &str) -> bool {
    let words = [
        "addr update",
        "address update",
        "addr change",
        "address change",
        "failover",
        "fail over",
        "switch",
        "leader change",
        "new leader",
    ];
    words.iter().any(|w| lower.contains(w))
}

/// The old and new address of an update line: two "ip: X ... port: P" pairs (the seed's
/// "old meta ip: 10.0.130.72 old meta port: 10100 / new meta ip: 10.0.130.73 new meta port:
/// 10100"), or two written addresses ("switch from A to B").
fn update_pair(message: &str, peers: &[String]) -> Option<(String, String)> {
    let ips = values_after(message, "ip:");
    let ports = values_after(message, "port:");
    if ips.len() >= 2 && ports.len() >= 2 {
        let join = |ip: &str, port: &str| -> Option<String> {
            let port: u16 = port.parse().ok()?;
            if let Ok(v4) = ip.parse::<Ipv4Addr>() {
                Some(format!("{v4}:{port}"))
            } else {
                ip.parse::<Ipv6Addr>()
                    .ok()
                    .map(|v6| format!("[{v6}]:{port}"))
            }
        };
        let old = join(&ips[0], &ports[0])?;
        let new = join(&ips[ips.len() - 1], &ports[ports.len() - 1])?;
        return Some((old, new));
    }
    if peers.len() >= 2 {
        return Some((peers[0].clone(), peers[peers.len() - 1].clone()));
    }
    None
}

/// The token after each case-insensitive occurrence of `key`.
fn values_after(message: &str, key: &str) -> Vec<String> {
    let lower = message.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(pos) = lower[from..].find(key) {
        let start = from + pos + key.len();
        let value: String = message[start..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':'))
            .collect();
        let value = value.trim_end_matches(['.', ':']).to_string();
        if !value.is_empty() {
            out.push(value);
        }
        from = start;
    }
    out
}

/// Fills `peers` and `event` of a parsed entry from its message.
pub fn annotate(entry: &mut LogEntry) {
    if entry.malformed {
        entry.peers = extract(&entry.message);
        return;
    }
    let mut peers = extract(&entry.message);
    let lower = entry.message.to_ascii_lowercase();
    if is_addr_update(&lower)
        && let Some((old, new)) = update_pair(&entry.message, &peers)
    {
        for p in [old, new] {
            if !peers.contains(&p) {
                peers.push(p);
            }
        }
        entry.event = Some(LogEvent::AddrUpdate);
    }
    if entry.event.is_none() && is_timeout(&lower) {
        entry.event = Some(LogEvent::Timeout);
    }
    entry.error = hangscope_model::error_name_in(&entry.message);
    entry.peers = peers;
}

/// The timeline of peers tried, failed and switched, from entries already annotated.
pub fn timeline(entries: &[LogEntry]) -> Vec<PeerAttempt> {
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if e.malformed || e.peers.is_empty() {
            continue;
        }
        let at = |peer: &str, outcome: PeerOutcome| PeerAttempt {
            time_text: e.time_text.clone(),
            time_ms: e.time_ms,
            tid: e.tid,
            peer: peer.to_string(),
            outcome,
            entry: i,
        };
        if e.event == Some(LogEvent::AddrUpdate)
            && let Some((old, new)) = update_pair(&e.message, &e.peers)
        {
            out.push(at(&old, PeerOutcome::Left));
            out.push(at(&new, PeerOutcome::SwitchedTo));
            continue;
        }
        let lower = e.message.to_ascii_lowercase();
        let outcome = if e.event == Some(LogEvent::Timeout) {
            PeerOutcome::Timeout
        } else if is_failure(&lower) || matches!(e.level, Some(LogLevel::Error | LogLevel::Fatal)) {
            PeerOutcome::Error
        } else {
            PeerOutcome::Attempt
        };
        for p in &e.peers {
            out.push(at(p, outcome));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_v4_and_v6() {
        assert_eq!(
            extract("Fail to dump meta from 10.0.130.72:10100 st:"),
            vec!["10.0.130.72:10100"]
        );
        assert_eq!(
            extract("to [::1]:80 and [fe80::1]:8080, again [::1]:80"),
            vec!["[::1]:80", "[fe80::1]:8080"]
        );
        // Versions, times, ranges and bare addresses are not peers.
        assert!(extract("v1.2.3.4:5x 05:25:27 10.0.0.1 1.2.3.4.5:6 300.1.1.1:80").is_empty());
        assert_eq!(
            extract("peer=10.0.0.1:0 or 10.0.0.1:65536"),
            Vec::<String>::new()
        );
        assert_eq!(extract("(10.0.0.1:22)"), vec!["10.0.0.1:22"]);
    }

    #[test]
    fn seed_addr_update_and_timeline() {
        let mut entries = vec![
            LogEntry {
                time_text: "0917 05:25:17.037914".into(),
                level: Some(LogLevel::Info),
                tid: Some(31576),
                message: "Dump meta from 10.0.130.72:10100".into(),
                ..LogEntry::default()
            },
            LogEntry {
                time_text: "0917 05:25:27.038408".into(),
                level: Some(LogLevel::Warning),
                tid: Some(31576),
                message: "Fail to dump meta from 10.0.130.72:10100 st:\nTraceback:\n\
                          [ETimedOut]: failed to read response header when calling: \
                          zbs.meta.MetaService.ListDb"
                    .into(),
                ..LogEntry::default()
            },
            LogEntry {
                time_text: "0917 05:25:27.039000".into(),
                level: Some(LogLevel::Info),
                tid: Some(31576),
                message: "[LIBMETA ADDR UPDATE]  old meta ip: 10.0.130.72 old meta port: 10100\n \
                          new meta ip: 10.0.130.73 new meta port: 10100"
                    .into(),
                ..LogEntry::default()
            },
        ];
        for e in &mut entries {
            annotate(e);
        }
        assert_eq!(entries[1].event, Some(LogEvent::Timeout));
        assert_eq!(entries[1].error.as_deref(), Some("ETimedOut"));
        assert_eq!(entries[0].error, None);
        assert_eq!(entries[2].event, Some(LogEvent::AddrUpdate));
        // "[LIBMETA ...]" is a tag, not an error name.
        assert_eq!(entries[2].error, None);
        assert_eq!(
            entries[2].peers,
            vec!["10.0.130.72:10100", "10.0.130.73:10100"]
        );
        let t = timeline(&entries);
        let got: Vec<(&str, PeerOutcome)> =
            t.iter().map(|a| (a.peer.as_str(), a.outcome)).collect();
        assert_eq!(
            got,
            vec![
                ("10.0.130.72:10100", PeerOutcome::Attempt),
                ("10.0.130.72:10100", PeerOutcome::Timeout),
                ("10.0.130.72:10100", PeerOutcome::Left),
                ("10.0.130.73:10100", PeerOutcome::SwitchedTo),
            ]
        );
        assert_eq!(t[1].time_text, "0917 05:25:27.038408");
        assert_eq!(t[3].entry, 2);
    }
}
