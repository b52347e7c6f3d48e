//! The THREADS section: one line per thread — what it waits in, on what, and whether it moves —
//! with identical waits grouped so a 1,000-thread pool fits a screen.

use std::fmt::Write;

use hangscope_model::{
    Document, FdKind, Severity, Snapshot, SocketDetail, SyncWait, Thread, WaitObject,
};

use super::Style;
use crate::human_ms;

/// Threads with the same state and wait collapse into one line from this many on.
const GROUP_FROM: usize = 3;

pub(super) fn threads(
    out: &mut String,
    snap: &Snapshot,
    flagged: &[(i32, Severity)],
    verbose: bool,
    st: &Style,
) {
    if snap.threads.is_empty() {
        return;
    }
    let mut title = format!("THREADS  {}", snap.threads.len());
    if let Some(w) = &snap.window {
        let _ = write!(
            title,
            "  (watched {}, {} looks)",
            human_ms(w.duration_ms as f64),
            w.looks
        );
    }
    let _ = writeln!(out, "{}", st.bold(&title));
    if let Some(line) = super::stacks::stop_summary(snap) {
        let _ = writeln!(out, "{line}");
    }

    // Group by (state, wait); the focus thread always stands alone.
    let mut groups: Vec<(String, Vec<&Thread>)> = Vec::new();
    for t in &snap.threads {
        let key = format!("{}|{}", t.state, wait_text(t, snap, st));
        match groups
            .iter_mut()
            .find(|(k, members)| *k == key && !members[0].focus)
        {
            Some((_, members)) if !t.focus => members.push(t),
            _ => groups.push((key, vec![t])),
        }
    }
    // The threads a reader came for first: the one asked about, then those a finding names.
    groups.sort_by_key(|(_, members)| rank(members, flagged));
    for (_, members) in &groups {
        if members.len() >= GROUP_FROM {
            group_line(out, members, snap, verbose, st);
        } else {
            for t in members {
                thread_line(out, t, snap, verbose, st);
            }
        }
    }
    out.push('\n');
}

/// The threads the findings name, with the finding's severity; a thread named twice keeps the
/// gravest.
pub(super) fn flagged(doc: &Document) -> Vec<(i32, Severity)> {
    doc.findings
        .iter()
        .filter_map(|f| f.subject.tid.map(|t| (t, f.severity)))
        .collect()
}

/// 0 the focus thread, 1 named by a cause or warning, 2 by context, 3 the rest.
fn rank(members: &[&Thread], flagged: &[(i32, Severity)]) -> u8 {
    members
        .iter()
        .map(|t| {
            if t.focus {
                return 0;
            }
            flagged
                .iter()
                .filter(|(tid, _)| *tid == t.tid)
                .map(|(_, sev)| match sev {
                    Severity::Cause | Severity::Warning => 1,
                    Severity::Info => 2,
                })
                .min()
                .unwrap_or(3)
        })
        .min()
        .unwrap_or(3)
}

fn thread_line(out: &mut String, t: &Thread, snap: &Snapshot, verbose: bool, st: &Style) {
    let mark = if t.focus { "▶" } else { " " };
    let act = activity_text(t);
    let line = format!(
        "{mark}{:>7} {:<15} {}  {}{}",
        t.tid,
        st.show(&t.name),
        st.show(&t.state),
        wait_text(t, snap, st),
        if act.is_empty() {
            String::new()
        } else {
            format!("  {act}")
        }
    );
    let line = if t.focus { st.bold(&line) } else { line };
    let _ = writeln!(out, "{line}");
    super::stacks::under(out, &[t], verbose, st);
    if verbose {
        details(out, t, st);
    }
}

fn group_line(out: &mut String, members: &[&Thread], snap: &Snapshot, verbose: bool, st: &Style) {
    let first = members[0];
    let shown: Vec<String> = members.iter().map(|t| st.show(&t.name)).collect();
    let names = name_pattern(shown.iter().map(String::as_str));
    // The shortest block among them is the group's lower bound.
    let blocked = members
        .iter()
        .filter_map(|t| t.activity.as_ref().and_then(|a| a.blocked_at_least_ms))
        .min();
    let act = match blocked {
        Some(ms) if members.iter().all(|t| t.activity.is_some()) => {
            format!("  blocked ≥{}", human_ms(ms as f64))
        }
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        " {:>7} threads {}  {}  names {names}{act}",
        members.len(),
        st.show(&first.state),
        wait_text(first, snap, st),
    );
    super::stacks::under(out, members, verbose, st);
    if verbose {
        let tids: Vec<String> = members.iter().map(|t| t.tid.to_string()).collect();
        let _ = writeln!(
            out,
            "          {}",
            st.dim(&format!("tids {}", tids.join(" ")))
        );
        details(out, first, st);
    }
}

fn details(out: &mut String, t: &Thread, st: &Style) {
    let mut facts = vec![format!(
        "cpu user {} sys {}",
        human_ms(t.utime_ms as f64),
        human_ms(t.stime_ms as f64)
    )];
    facts.push(format!(
        "switches {} voluntary {} involuntary",
        t.voluntary_ctxt_switches, t.nonvoluntary_ctxt_switches
    ));
    if let Some(cpu) = t.last_cpu {
        facts.push(format!("last cpu {cpu}"));
    }
    if let Some(w) = &t.wchan {
        facts.push(format!("wchan {}", st.show(w)));
    }
    let _ = writeln!(out, "          {}", st.dim(&facts.join("  ")));
    if let Some(s) = &t.syscall {
        if !s.summary.is_empty() && !s.running {
            let _ = writeln!(out, "          {}", st.dim(&st.show(&s.summary)));
        }
        if let Some(e) = &s.decode_error {
            let _ = writeln!(
                out,
                "          {}",
                st.dim(&format!("not decoded: {}", st.show(e)))
            );
        }
    }
    match (&t.stack, &t.stack_unavailable) {
        (Some(stack), _) => {
            for f in stack {
                let _ = writeln!(out, "            {}", st.dim(&st.show(f)));
            }
        }
        (None, Some(why)) => {
            let _ = writeln!(
                out,
                "          {}",
                st.dim(&format!("stack not read: {}", st.show(why)))
            );
        }
        _ => {}
    }
}

/// "worker-*" for names sharing a prefix, the name when all are equal, else the first few.
fn name_pattern<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let mut names: Vec<&str> = names.collect();
    names.sort();
    names.dedup();
    if names.len() == 1 {
        return names[0].to_string();
    }
    let first = names[0];
    let mut prefix_len = first.len();
    for n in &names[1..] {
        prefix_len = first
            .char_indices()
            .zip(n.chars())
            .take_while(|((_, a), b)| a == b)
            .count()
            .min(prefix_len);
    }
    let prefix: String = first.chars().take(prefix_len).collect();
    if prefix.len() >= 2 {
        format!("{prefix}*")
    } else {
        let shown: Vec<&str> = names.iter().take(3).copied().collect();
        let more = if names.len() > 3 { ", ..." } else { "" };
        format!("{}{more}", shown.join(", "))
    }
}

/// What the thread waits in and on, e.g.
/// `poll(fd 29 POLLIN, timeout 10000 ms) → TCP 10.0.0.1:4242 → 10.0.0.2:10100 ESTABLISHED`.
/// Escaped: it names files and processes.
pub(super) fn wait_text(t: &Thread, snap: &Snapshot, st: &Style) -> String {
    // Each value is escaped and cut where it is put in; the whole is escaped once more for
    // what the syscall decoder copied from the target's memory.
    st.show(&wait_words(t, snap, st))
}

fn wait_words(t: &Thread, snap: &Snapshot, st: &Style) -> String {
    let Some(s) = &t.syscall else {
        let wchan = t
            .wchan
            .as_deref()
            .filter(|w| !w.is_empty() && *w != "0")
            .map(|w| format!(" in {w}"))
            .unwrap_or_default();
        return if snap.process.kernel_thread {
            format!("kernel thread{wchan}")
        } else {
            format!("(syscall not read){wchan}")
        };
    };
    if s.running {
        return "running".into();
    }
    if s.nr < 0 {
        return "not in a syscall".into();
    }
    let timeout = match s.timeout_ms {
        Some(-1) => Some("no timeout".to_string()),
        Some(ms) => Some(format!("timeout {ms} ms")),
        None => None,
    };
    let mut direct = Vec::new();
    let mut watched = Vec::new();
    let mut epoll_fd = None;
    for w in &s.waits_on {
        match w {
            WaitObject::Fd {
                fd,
                via_epoll: Some(ep),
                ..
            } => {
                epoll_fd = Some(*ep);
                watched.push(*fd);
            }
            WaitObject::Fd { fd, events, .. } => {
                let ev = events.join("|");
                direct.push((*fd, ev));
            }
            WaitObject::Futex {
                addr,
                owner_tid,
                waiters,
                owner_pid,
                ..
            } => {
                let mut text = format!("futex wait on {addr:#x}");
                let sync = t.user_stack.as_ref().and_then(|u| u.sync_wait());
                if let Some((kind, frame)) = sync {
                    let name = frame
                        .function
                        .as_ref()
                        .map(|f| st.show(f))
                        .unwrap_or_default();
                    let _ = write!(text, " for {} ({name})", kind.what());
                }
                // The word + 8 is an owner only for a mutex (see `SyncWait`).
                let owner_tid =
                    (*owner_tid).filter(|_| sync.is_none_or(|(k, _)| k == SyncWait::Mutex));
                if let (Some(o), Some(p)) = (owner_tid, owner_pid) {
                    let _ = write!(text, ", shared mutex held by {o} of process {p}");
                } else if let Some(o) = owner_tid {
                    let name = snap.thread(o).map(|t| st.show(&t.name)).unwrap_or_default();
                    // "for a mutex (__lll_lock_wait), held by 7 main".
                    let what = if sync.is_some() { "" } else { "mutex " };
                    let _ = write!(text, ", {what}held by {o} {name}");
                    text = text.trim_end().to_string();
                }
                if *waiters > 1 && !t.focus {
                    let _ = write!(text, ", {waiters} waiters");
                }
                if let (Some(to), false) = (&timeout, s.timeout_ms == Some(-1)) {
                    let _ = write!(text, ", {to}");
                }
                return text;
            }
            WaitObject::Sleep { ns } => {
                return format!("{} {}", s.name, human_ms(*ns as f64 / 1e6));
            }
            WaitObject::Process { pid } => {
                return match pid {
                    -1 => format!("{}(any child)", s.name),
                    p if *p < -1 => format!("{}(process group {})", s.name, -p),
                    p => format!("{}(pid {p})", s.name),
                };
            }
            WaitObject::Lock { fd, op } => {
                let mut text = format!("{}(fd {fd} {op}) → {}", s.name, fd_target(snap, *fd, st));
                let holder = snap
                    .locks
                    .iter()
                    .find(|l| l.waiting && l.fd == Some(*fd))
                    .and_then(|l| l.holder_pid);
                if let Some(h) = holder {
                    let _ = write!(text, ", held by process {h}");
                }
                return text;
            }
            WaitObject::Signal => return format!("{}() waits for a signal", s.name),
            WaitObject::Aio { ctx } => {
                return format!("{}(aio context {ctx:#x})", s.name);
            }
        }
    }
    if direct.is_empty() && watched.is_empty() {
        return s.summary.clone();
    }
    let mut args: Vec<String> = direct
        .iter()
        .filter(|(fd, _)| Some(*fd) != epoll_fd || watched.is_empty())
        .map(|(fd, ev)| {
            if ev.is_empty() {
                format!("fd {fd}")
            } else {
                format!("fd {fd} {ev}")
            }
        })
        .collect();
    if let Some(ep) = epoll_fd {
        args.insert(0, format!("epoll fd {ep}"));
    }
    if let Some(t) = timeout {
        args.push(t);
    }
    let mut text = format!("{}({})", s.name, args.join(", "));
    let targets: Vec<String> = if watched.is_empty() {
        direct
            .iter()
            .take(3)
            .map(|(fd, _)| fd_target(snap, *fd, st))
            .collect()
    } else {
        watched
            .iter()
            .take(3)
            .map(|fd| format!("fd {fd} {}", fd_target(snap, *fd, st)))
            .collect()
    };
    let more = direct.len().max(watched.len()).saturating_sub(3);
    if !targets.is_empty() {
        let _ = write!(text, " → {}", targets.join("; "));
        if more > 0 {
            let _ = write!(text, "; {more} more");
        }
    }
    text
}

/// An fd's object: the connection when the socket is known, else the link target.
fn fd_target(snap: &Snapshot, fd: i32, st: &Style) -> String {
    if let Some(sock) = snap.socket_of_fd(fd) {
        match &sock.detail {
            SocketDetail::Tcp(i) => {
                let held = i
                    .local_peer
                    .as_ref()
                    .and_then(|p| p.holder())
                    .map(|h| format!(" ↔ {} ({}) fd {}", h.pid, st.show(&h.name), h.fd))
                    .unwrap_or_default();
                return format!("TCP {} → {} {}{held}", i.local, i.peer, i.state);
            }
            SocketDetail::Udp(i) => return format!("UDP {} → {}", i.local, i.peer),
            SocketDetail::Unix(u) => {
                let path = u.path.as_ref().map(|p| st.show(p)).unwrap_or_default();
                let peer = u
                    .peer
                    .as_ref()
                    .map(|p| format!(" ↔ {} ({}) fd {}", p.pid, st.show(&p.name), p.fd))
                    .unwrap_or_default();
                let path = if path.is_empty() {
                    path
                } else {
                    format!(" {path}")
                };
                return format!("unix {}{path}{peer}", u.state);
            }
            _ => {}
        }
    }
    let Some(f) = snap.fd(fd) else {
        return format!("fd {fd} (not open)");
    };
    let mut text = st.show(&f.target);
    if f.kind == FdKind::Pipe {
        // The other end, when this process holds it too.
        let others: Vec<String> = snap
            .fds
            .iter()
            .filter(|o| o.fd != fd && o.pipe_inode.is_some() && o.pipe_inode == f.pipe_inode)
            .map(|o| o.fd.to_string())
            .collect();
        if !others.is_empty() {
            let _ = write!(text, " (other end: fd {} here)", others.join(", "));
        }
        for p in &f.pipe_peers {
            let end = p
                .access
                .as_deref()
                .map(|a| format!("{a} end"))
                .unwrap_or("end".into());
            let _ = write!(
                text,
                " ({end}: process {} ({}) fd {})",
                p.pid,
                st.show(&p.name),
                p.fd
            );
        }
    }
    if f.churn > 0 {
        let _ = write!(text, " (reopened {}× in the window)", f.churn);
    }
    text
}

/// "blocked ≥7.9 s", "BUSY spinning, 900 ms CPU", "loop, ~10/s", "last ran 3 s ago".
fn activity_text(t: &Thread) -> String {
    match &t.activity {
        Some(a) if a.busy => format!("BUSY spinning, {} CPU", human_ms(a.cpu_ms as f64)),
        // The wait itself is already on the line; the loop adds its rate.
        Some(a) if a.rate_per_s.is_some() => {
            let rate = a.rate_per_s.unwrap_or_default();
            if rate >= 1.0 {
                format!("loop, ~{rate:.0}/s")
            } else {
                format!("loop, ~{rate:.1}/s")
            }
        }
        Some(a) => match a.blocked_at_least_ms {
            Some(ms) => format!("blocked ≥{}", human_ms(ms as f64)),
            None => {
                let n = a.voluntary_switches.saturating_add(a.involuntary_switches);
                format!(
                    "progressed ({n} {}, {} CPU)",
                    if n == 1 { "switch" } else { "switches" },
                    human_ms(a.cpu_ms as f64)
                )
            }
        },
        None => match t.last_ran_ms_ago {
            Some(ms) if t.state != "R" => format!("last ran {} ago", human_ms(ms)),
            _ => String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hangscope_model::{Activity, Fd, SyscallState};

    fn poller() -> Thread {
        Thread {
            tid: 31576,
            name: "dump_meta".into(),
            state: "S".into(),
            syscall: Some(SyscallState {
                nr: 7,
                name: "poll".into(),
                timeout_ms: Some(10_000),
                waits_on: vec![WaitObject::Fd {
                    fd: 29,
                    events: vec!["POLLIN".into()],
                    via_epoll: None,
                }],
                ..SyscallState::default()
            }),
            activity: Some(Activity {
                blocked_at_least_ms: Some(7900),
                ..Activity::default()
            }),
            ..Thread::default()
        }
    }

    fn worker(tid: i32) -> Thread {
        Thread {
            tid,
            name: format!("worker-{tid}").into(),
            state: "S".into(),
            syscall: Some(SyscallState {
                nr: 202,
                name: "futex".into(),
                timeout_ms: Some(-1),
                waits_on: vec![WaitObject::Futex {
                    addr: 0x7f00,
                    op: "FUTEX_WAIT_PRIVATE".into(),
                    owner_tid: Some(1),
                    other_waiters: vec![],
                    waiters: 3,
                    owner_pid: None,
                    shared_file: None,
                }],
                ..SyscallState::default()
            }),
            ..Thread::default()
        }
    }

    #[test]
    fn one_line_per_wait_and_groups() {
        let snap = Snapshot {
            fds: vec![Fd {
                socket_inode: Some(692518610),
                ..Fd::new(29, FdKind::Socket, "socket:[692518610]")
            }],
            threads: vec![
                Thread {
                    tid: 1,
                    name: "main".into(),
                    state: "S".into(),
                    ..Thread::default()
                },
                poller(),
                worker(10),
                worker(11),
                worker(12),
            ],
            ..Snapshot::default()
        };
        let mut out = String::new();
        threads(&mut out, &snap, &[], false, &Style::plain());
        assert!(
            out.contains(
                "   31576 dump_meta       S  poll(fd 29 POLLIN, timeout 10000 ms) → socket:[692518610]  blocked ≥7.9 s\n"
            ),
            "{out}"
        );
        assert!(
            out.contains(
                "       3 threads S  futex wait on 0x7f00, mutex held by 1 main, 3 waiters  names worker-1*\n"
            ),
            "{out}"
        );
        assert!(out.starts_with("THREADS  5\n"), "{out}");
    }

    #[test]
    fn name_patterns() {
        assert_eq!(
            name_pattern(["worker-1", "worker-2"].into_iter()),
            "worker-*"
        );
        assert_eq!(name_pattern(["a", "a"].into_iter()), "a");
        assert_eq!(
            name_pattern(["x", "y", "z", "w"].into_iter()),
            "w, x, y, ..."
        );
    }
}
