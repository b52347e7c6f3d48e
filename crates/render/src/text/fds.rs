//! The fd tables: FILES (paths and pipes), ANONYMOUS (eventfd, epoll, timers...) and UNKNOWN
//! (links that could not be read), and the capping of long tables shared with SOCKETS.

use std::fmt::Write;

use hangscope_model::{Access, Fd, FdKind, Snapshot};

use super::{Style, wrap};
use crate::table::Table;
use crate::{human_bytes, human_ms};

/// lsof's FD column: number and access letter.
fn fd_col(f: &Fd) -> String {
    match f.access().and_then(Access::letter) {
        Some(letter) => format!("{}{letter}", f.fd),
        None => f.fd.to_string(),
    }
}

fn flags_col(f: &Fd) -> String {
    let Some(info) = &f.info else {
        return String::new();
    };
    info.flags_decoded
        .iter()
        .skip(1)
        .filter(|s| !matches!(s.as_str(), "O_LARGEFILE" | "O_CLOEXEC"))
        .map(|s| s.trim_start_matches("O_"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Rows shown per table before the rest is summarised (all with -v).
const MAX_ROWS: usize = 40;

/// fds a reader must see even in a capped table: waited on, locked, logs, deleted.
pub(super) fn notable_fds(snap: &Snapshot) -> std::collections::HashSet<i32> {
    let mut keep: std::collections::HashSet<i32> = snap
        .threads
        .iter()
        .filter_map(|t| t.syscall.as_ref())
        .flat_map(|s| s.waits_on.iter())
        .filter_map(|w| match w {
            hangscope_model::WaitObject::Fd { fd, .. } => Some(*fd),
            hangscope_model::WaitObject::Lock { fd, .. } => Some(*fd),
            _ => None,
        })
        .collect();
    keep.extend(snap.locks.iter().filter_map(|l| l.fd));
    keep.extend(snap.logs.iter().filter_map(|l| l.fd));
    keep.extend(snap.fds.iter().filter(|f| f.deleted).map(|f| f.fd));
    keep
}

/// Splits a long table's rows into those shown and the rest: every row `must` keeps, then the
/// others in order up to `max` rows in all.
pub(super) fn keep_rows<T>(
    rows: Vec<T>,
    max: usize,
    must: impl Fn(&T) -> bool,
) -> (Vec<T>, Vec<T>) {
    if rows.len() <= max {
        return (rows, Vec::new());
    }
    let mut budget = max.saturating_sub(rows.iter().filter(|r| must(r)).count());
    rows.into_iter().partition(|r| {
        if must(r) {
            true
        } else if budget > 0 {
            budget -= 1;
            true
        } else {
            false
        }
    })
}

/// "… 8,970 more: 8,960 in /srv/data/, 10 in /tmp/ (-v shows all)".
fn summarise_rest(rest: &[&Fd], st: &Style) -> String {
    let mut by_dir: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for f in rest {
        let dir = match f.target.rfind('/') {
            Some(i) if f.target.starts_with('/') => &f.target[..=i],
            _ => f.kind.as_str(),
        };
        *by_dir.entry(dir).or_default() += 1;
    }
    let mut dirs: Vec<(&str, usize)> = by_dir.into_iter().collect();
    dirs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut parts: Vec<String> = dirs
        .iter()
        .take(4)
        .map(|(d, n)| format!("{n} in {}", st.show(*d)))
        .collect();
    if dirs.len() > 4 {
        parts.push(format!(
            "{} elsewhere",
            dirs[4..].iter().map(|x| x.1).sum::<usize>()
        ));
    }
    format!("… {} more: {} (-v shows all)", rest.len(), parts.join(", "))
}

pub(super) fn files(out: &mut String, snap: &Snapshot, st: &Style, verbose: bool) {
    let mut t = Table::new(&["FD", "TYPE", "FLAGS", "SIZE", "OFFSET", "NODE", "NAME"])
        .right(3)
        .right(4);
    let all: Vec<&Fd> = snap
        .fds
        .iter()
        .filter(|f| f.kind.is_path() || f.kind == FdKind::Pipe)
        .collect();
    let (shown, rest): (Vec<&Fd>, Vec<&Fd>) = if verbose {
        (all, Vec::new())
    } else {
        let notable = notable_fds(snap);
        keep_rows(all, MAX_ROWS, |f| notable.contains(&f.fd))
    };
    for f in shown {
        let size = match &f.stat {
            Some(s) if f.kind == FdKind::Regular => human_bytes(s.size),
            _ => String::new(),
        };
        let offset = match &f.info {
            Some(i) if i.pos > 0 => i.pos.to_string(),
            _ => String::new(),
        };
        let node = f
            .info
            .as_ref()
            .and_then(|i| i.ino)
            .map(|n| n.to_string())
            .unwrap_or_default();
        let mut name = st.show(&f.target);
        if f.deleted {
            name.push_str(" (deleted)");
        }
        if let Some(why) = &f.stat_skipped {
            name.push_str(&format!("  [{}]", st.show(why)));
        }
        t.push(vec![
            fd_col(f),
            f.kind.as_str().to_string(),
            flags_col(f),
            size,
            offset,
            node,
            name,
        ]);
    }
    if t.len() > 0 {
        let _ = writeln!(out, "{}", st.bold("FILES"));
        out.push_str(&t.render(2, st.header()));
        if !rest.is_empty() {
            let _ = writeln!(out, "  {}", st.dim(&summarise_rest(&rest, st)));
        }
        out.push('\n');
    }
}

pub(super) fn anonymous(out: &mut String, snap: &Snapshot, st: &Style) {
    let mut t = Table::new(&["FD", "TYPE", "DETAIL"]);
    for f in snap.fds.iter().filter(|f| f.kind.is_anon()) {
        t.push(vec![
            fd_col(f),
            f.kind.as_str().to_string(),
            st.show(&anon_detail(f)),
        ]);
    }
    if t.len() > 0 {
        let _ = writeln!(out, "{}", st.bold("ANONYMOUS"));
        out.push_str(&t.render(2, st.header()));
        out.push('\n');
    }
}

/// fds whose link could not be read: listed by number, the reason is under NOT READ.
pub(super) fn unreadable(out: &mut String, snap: &Snapshot, st: &Style) {
    let nums: Vec<i32> = snap
        .fds
        .iter()
        .filter(|f| f.kind == FdKind::Unknown)
        .map(|f| f.fd)
        .collect();
    if nums.is_empty() {
        return;
    }
    let _ = writeln!(out, "{}", st.bold("UNKNOWN"));
    let _ = writeln!(
        out,
        "  {} fds not readable: {}\n",
        nums.len(),
        wrap(&ranges(&nums), 2, st.width)
    );
}

/// Sorted numbers as ranges: [0,1,2,5,7,8] → "0-2 5 7-8".
fn ranges(nums: &[i32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < nums.len() {
        let start = nums[i];
        let mut end = start;
        while i + 1 < nums.len() && nums[i + 1] == end + 1 {
            i += 1;
            end = nums[i];
        }
        parts.push(if end == start {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(" ")
}

/// Escaped by the caller: it holds the target's anon name or a signal mask as read.
fn anon_detail(f: &Fd) -> String {
    let Some(info) = &f.info else {
        return f.target.to_string();
    };
    match f.kind {
        FdKind::Eventpoll => {
            if info.epoll_watches.is_empty() {
                "watches nothing".into()
            } else {
                let w: Vec<String> = info
                    .epoll_watches
                    .iter()
                    .map(|w| {
                        let ev: Vec<&str> = w
                            .events_decoded
                            .iter()
                            .map(|e| e.trim_start_matches("EPOLL"))
                            .collect();
                        format!("{}({})", w.tfd, ev.join("|"))
                    })
                    .collect();
                format!("watches fds {}", w.join(" "))
            }
        }
        FdKind::Eventfd => format!("count {}", info.eventfd_count.unwrap_or(0)),
        FdKind::Timerfd => match &info.timerfd {
            Some(t) if t.it_value_ns == 0 => "disarmed".into(),
            Some(t) => {
                let next = human_ms(t.it_value_ns as f64 / 1e6);
                if t.it_interval_ns > 0 {
                    format!(
                        "next in {next}, every {}, {} ticks",
                        human_ms(t.it_interval_ns as f64 / 1e6),
                        t.ticks
                    )
                } else {
                    format!("once, in {next}")
                }
            }
            None => f.target.to_string(),
        },
        FdKind::Signalfd => format!("mask {}", info.sigmask.clone().unwrap_or_default()),
        FdKind::Inotify => format!("{} watches", info.inotify_watches.len()),
        FdKind::Pidfd => match info.pidfd_pid {
            Some(p) => format!("process {p}"),
            None => f.target.to_string(),
        },
        _ => f.target.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_ranges() {
        assert_eq!(ranges(&[0, 1, 2, 5, 7, 8]), "0-2 5 7-8");
        assert_eq!(ranges(&[]), "");
    }
}
