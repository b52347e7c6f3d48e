//! Log lines worth quoting next to a finding: the stuck thread's own warnings and errors, and
//! any line that names the same peer. The logs collector parsed them already (`snap.logs`);
//! this only picks.

use hangscope_model::{LogEntry, LogLevel, Snapshot};

use crate::facts::{EarlierFailure, LogQuote};
use crate::wording;

/// At most this many log lines per finding: enough to show a pattern, short enough to read.
const MAX_QUOTES: usize = 2;

/// Warnings and errors written by `tid` or naming `peer`, newest first: by their level, or by
/// what the collector recognised in them (a timeout in a line with no level).
pub(crate) fn about<'a>(
    snap: &'a Snapshot,
    tid: Option<i32>,
    peer: &str,
) -> Vec<(&'a str, &'a LogEntry)> {
    let mut hits = Vec::new();
    for src in &snap.logs {
        for e in src.entries.iter().rev() {
            let serious = e.level.is_some_and(|l| l >= LogLevel::Warning) || e.is_problem();
            let by_thread = tid.is_some() && e.tid == tid;
            let names_peer = e.peers.iter().any(|p| p == peer);
            if serious && (by_thread || names_peer) {
                hits.push((src.path.as_str(), e));
            }
        }
    }
    // Sources are read in order; newest first across them when times are known.
    hits.sort_by_key(|(_, e)| std::cmp::Reverse(e.time_ms.unwrap_or(i64::MIN)));
    hits
}

/// The most relevant log entries, as a finding quotes them.
pub(crate) fn quotes(snap: &Snapshot, tid: Option<i32>, peer: &str) -> Vec<LogQuote> {
    about(snap, tid, peer)
        .into_iter()
        .take(MAX_QUOTES)
        .map(|(path, e)| LogQuote {
            path: path.to_string(),
            line: wording::log_line(e),
        })
        .collect()
}

/// The same thread logged a failure with another peer: the pattern of a client failing over
/// between replicas of a silent service. The same port on another host is the likeliest
/// replica, so it is preferred.
pub(crate) fn earlier_failure(
    snap: &Snapshot,
    tid: i32,
    peer: &str,
    port: u16,
) -> Option<EarlierFailure> {
    let suffix = format!(":{port}");
    let quotes: Vec<_> = about(snap, Some(tid), peer)
        .into_iter()
        .filter(|(_, e)| e.tid == Some(tid))
        .collect();
    let other_peer = |e: &'_ LogEntry, same_port: bool| -> Option<String> {
        e.peers
            .iter()
            .find(|p| *p != peer && (!same_port || p.ends_with(&suffix)))
            .cloned()
    };
    let (e, other, same_port) = quotes
        .iter()
        .find_map(|(_, e)| other_peer(e, true).map(|o| (*e, o, true)))
        .or_else(|| {
            quotes
                .iter()
                .find_map(|(_, e)| other_peer(e, false).map(|o| (*e, o, false)))
        })?;
    Some(EarlierFailure {
        peer: other,
        same_port,
        error: e.error.clone(),
        clock: wording::log_clock(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hangscope_model::{LogEvent, LogSource};

    #[test]
    fn a_timeout_the_collector_recognised_is_quoted_without_a_level() {
        let entry = |event| LogEntry {
            time_text: "12:00:01".into(),
            tid: Some(7),
            message: "request to 10.0.0.1:80 timed out".into(),
            peers: vec!["10.0.0.1:80".into()],
            event,
            ..LogEntry::default()
        };
        let mut snap = Snapshot::default();
        snap.logs.push(LogSource {
            path: "/var/log/app.log".into(),
            entries: vec![entry(None), entry(Some(LogEvent::Timeout))],
            ..LogSource::default()
        });
        let hits = about(&snap, Some(7), "10.0.0.1:80");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].1.event, Some(LogEvent::Timeout));
    }
}
