//! Log lines worth quoting next to a finding: the stuck thread's own warnings and errors, and
//! any line that names the same peer. The logs collector parsed them already (`snap.logs`);
//! this only picks.

use hangscope_model::{Evidence, LogEntry, LogLevel, Snapshot};

use crate::wording;

/// At most this many log lines per finding: enough to show a pattern, short enough to read.
const MAX_QUOTES: usize = 2;

/// Warnings and errors written by `tid` or naming `peer`, newest first.
pub(crate) fn about<'a>(
    snap: &'a Snapshot,
    tid: Option<i32>,
    peer: &str,
) -> Vec<(&'a str, &'a LogEntry)> {
    let mut hits = Vec::new();
    for src in &snap.logs {
        for e in src.entries.iter().rev() {
            let serious = e.level.is_some_and(|l| l >= LogLevel::Warning);
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

/// Evidence lines quoting the most relevant log entries.
pub(crate) fn evidence(snap: &Snapshot, tid: Option<i32>, peer: &str) -> Vec<Evidence> {
    about(snap, tid, peer)
        .into_iter()
        .take(MAX_QUOTES)
        .map(|(path, e)| Evidence::new("log", wording::log_line(e), path))
        .collect()
}

/// A sentence for the summary when the same thread logged a failure with another peer on the
/// same port: the pattern of a client failing over between replicas of a silent service.
pub(crate) fn same_failure_elsewhere(
    snap: &Snapshot,
    tid: i32,
    peer: &str,
    port: u16,
) -> Option<String> {
    let suffix = format!(":{port}");
    let (_, e) = about(snap, Some(tid), peer)
        .into_iter()
        .find(|(_, e)| e.peers.iter().any(|p| p != peer && p.ends_with(&suffix)))?;
    let other = e
        .peers
        .iter()
        .find(|p| *p != peer && p.ends_with(&suffix))?;
    let when = match wording::log_error_name(e) {
        Some(err) => format!("{err}, log {}", wording::log_clock(e)),
        None => format!("log {}", wording::log_clock(e)),
    };
    Some(format!(
        "Before that, the same thread failed the same way with {other} ({when})."
    ))
}
