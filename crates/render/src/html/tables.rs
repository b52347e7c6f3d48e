//! The page's tables: threads, fds, sockets, locks, logs and what was not read, each in a
//! collapsible section, with the filter box's rows in `<tbody>`. Compact on purpose: one short
//! row per item, every value escaped; a table past `TABLE_ROWS_MAX` rows says how many more the
//! embedded document holds. The stuck thread's and connection's rows are marked.

use std::fmt::Write;

use hangscope_model::{Document, FdKind, LockAccess, SocketDetail};

use super::{TABLE_ROWS_MAX, esc};
use crate::{human_bytes, human_ms};

pub(super) fn all(out: &mut String, doc: &Document) {
    let f = doc.verdict.finding.and_then(|i| doc.findings.get(i));
    let stuck_tid = f.and_then(|f| f.subject.tid);
    let stuck_inode = f.and_then(|f| f.subject.socket_inode);
    let snap = &doc.snapshot;

    let rows = snap.threads.iter().map(|t| {
        let wait = t
            .syscall
            .as_ref()
            .map(|s| s.summary.clone())
            .unwrap_or_default();
        let blocked = t
            .activity
            .as_ref()
            .and_then(|a| a.blocked_at_least_ms)
            .map(|ms| format!("≥{}", human_ms(ms as f64)))
            .unwrap_or_default();
        let cpu = t
            .activity
            .as_ref()
            .map(|a| human_ms(a.cpu_ms as f64))
            .unwrap_or_default();
        let stuck = Some(t.tid) == stuck_tid || t.focus;
        // The code path; every frame is in the stacks section, once per distinct stack.
        let path = t
            .user_stack
            .as_ref()
            .map(|s| s.path(4).join(" ← "))
            .unwrap_or_default();
        (
            stuck,
            vec![
                t.tid.to_string(),
                t.name.to_string(),
                t.state.clone(),
                wait,
                blocked,
                cpu,
                t.wchan.clone().unwrap_or_default(),
                path,
            ],
        )
    });
    table(
        out,
        "threads",
        "Threads",
        &[
            "tid",
            "name",
            "state",
            "in",
            "blocked",
            "cpu",
            "wchan",
            "code path",
        ],
        &[0],
        snap.threads.len(),
        rows,
    );

    let rows = snap.fds.iter().map(|f| {
        let size = match &f.stat {
            Some(s) if f.kind == FdKind::Regular => human_bytes(s.size),
            _ => String::new(),
        };
        let mut name = f.target.to_string();
        if f.deleted {
            name.push_str(" (deleted)");
        }
        (
            false,
            vec![f.fd.to_string(), f.kind.as_str().to_string(), size, name],
        )
    });
    table(
        out,
        "fds",
        "Open files",
        &["fd", "type", "size", "name"],
        &[0],
        snap.fds.len(),
        rows,
    );

    let rows = snap.sockets.iter().map(|s| {
        let fds: Vec<String> = s.fds.iter().map(i32::to_string).collect();
        let (proto, state, local, peer, rq, sq) = match &s.detail {
            SocketDetail::Tcp(i) | SocketDetail::Udp(i) => (
                if matches!(s.detail, SocketDetail::Tcp(_)) {
                    "tcp"
                } else {
                    "udp"
                },
                i.state.to_string(),
                format!("{}:{}", i.local.addr, i.local.port),
                format!("{}:{}", i.peer.addr, i.peer.port),
                i.recv_q.to_string(),
                i.send_q.to_string(),
            ),
            SocketDetail::Unix(u) => (
                "unix",
                u.state.to_string(),
                u.path.as_ref().map(|p| p.to_string()).unwrap_or_default(),
                if u.peer_inode > 0 {
                    format!("inode {}", u.peer_inode)
                } else {
                    String::new()
                },
                u.recv_q.to_string(),
                u.send_q.to_string(),
            ),
            _ => (
                "other",
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ),
        };
        (
            Some(s.inode) == stuck_inode,
            vec![
                fds.join(","),
                proto.into(),
                state,
                local,
                peer,
                rq,
                sq,
                s.inode.to_string(),
            ],
        )
    });
    table(
        out,
        "sockets",
        "Sockets",
        &[
            "fd", "proto", "state", "local", "peer", "recv-q", "send-q", "inode",
        ],
        &[5, 6, 7],
        snap.sockets.len(),
        rows,
    );

    let rows = snap.locks.iter().map(|l| {
        let access = match l.access {
            LockAccess::Read => "read",
            LockAccess::Write => "write",
            LockAccess::None => "none",
            LockAccess::Other => "?",
        };
        let state = if l.waiting { "waiting" } else { "held" };
        (
            l.waiting,
            vec![
                l.fd.map(|f| f.to_string()).unwrap_or_default(),
                format!("{:?}", l.class).to_lowercase(),
                access.into(),
                state.into(),
                l.pid.map(|p| p.to_string()).unwrap_or_default(),
                l.path
                    .as_ref()
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| format!("{} inode {}", l.dev, l.inode)),
            ],
        )
    });
    table(
        out,
        "locks",
        "Locks",
        &["fd", "class", "access", "state", "pid", "file"],
        &[],
        snap.locks.len(),
        rows,
    );

    let count: usize = snap.logs.iter().map(|l| l.entries.len()).sum();
    let rows = snap.logs.iter().flat_map(|src| {
        src.entries.iter().map(move |e| {
            let thread = match (e.thread_tid, &e.thread_name) {
                (Some(t), Some(n)) => format!("{t} ({n})"),
                (Some(t), None) => t.to_string(),
                _ => String::new(),
            };
            (
                e.is_problem(),
                vec![
                    src.path.clone(),
                    e.time_text.clone(),
                    e.level
                        .map(|l| format!("{l:?}").to_lowercase())
                        .unwrap_or_default(),
                    thread,
                    e.message.to_string(),
                ],
            )
        })
    });
    table(
        out,
        "logs",
        "Log entries",
        &["log", "time", "level", "thread", "message"],
        &[],
        count,
        rows,
    );

    let rows = snap.gaps.iter().map(|g| {
        (
            false,
            vec![
                g.what.clone(),
                g.reason.as_str().to_string(),
                g.detail.clone(),
                g.needs.clone().unwrap_or_default(),
            ],
        )
    });
    table(
        out,
        "gaps",
        "Not read",
        &["what", "why", "detail", "needs"],
        &[],
        snap.gaps.len(),
        rows,
    );
}

/// One collapsed section with its table; `numeric` columns are right-aligned, a marked row is
/// highlighted.
fn table(
    out: &mut String,
    id: &str,
    title: &str,
    head: &[&str],
    numeric: &[usize],
    count: usize,
    rows: impl Iterator<Item = (bool, Vec<String>)>,
) {
    if count == 0 {
        return;
    }
    let _ = write!(
        out,
        "<details id=\"{id}\"><summary>{title} ({count})</summary>\n<table class=\"rows\"><thead><tr>"
    );
    for h in head {
        let _ = write!(out, "<th>{h}</th>");
    }
    out.push_str("</tr></thead><tbody>\n");
    for (marked, cells) in rows.take(TABLE_ROWS_MAX) {
        out.push_str(if marked {
            "<tr class=\"stuck\">"
        } else {
            "<tr>"
        });
        for (i, c) in cells.iter().enumerate() {
            if numeric.contains(&i) {
                let _ = write!(out, "<td class=\"n\">{}</td>", esc(c));
            } else {
                let _ = write!(out, "<td>{}</td>", esc(c));
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>");
    if count > TABLE_ROWS_MAX {
        let _ = write!(
            out,
            "<p class=\"more\">… {} more in the embedded document (download it below).</p>",
            count - TABLE_ROWS_MAX
        );
    }
    out.push_str("</details>\n");
}
