//! Pipe wait: a thread blocked on a pipe whose other end another process holds. Blocked
//! writing, the pipe is full and that process does not read: a cause. Blocked reading, the
//! thread waits for that process to write — often a child still working, sometimes one that is
//! stuck: a warning that says where to look next.
//!
//! Facts: the thread's syscall and fd (threads collector), the pipe's other holders and which
//! end they hold (/proc/*/fd links and fdinfo flags, `Fd::pipe_peers`).

use hangscope_model::{Cause, Evidence, Fd, FdKind, Finding, PipeEnd, Severity, Subject};

use crate::waiters::Want;
use crate::{Ctx, Found, STUCK_MS, wording};

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<Found> {
    let pid = ctx.snap.process.pid;
    let mut out = Vec::new();
    for f in ctx.snap.fds.iter().filter(|f| f.kind == FdKind::Pipe) {
        let Some(w) = ctx.waiters.first_on(&[f.fd]) else {
            continue;
        };
        let stuck_ms = w.blocked_ms().unwrap_or(0);
        if w.progressed() || stuck_ms < STUCK_MS {
            continue;
        }
        let writing = w.want == Want::Write;
        // The end the thread waits for: the readers when it writes, the writers when it reads.
        let wanted = if writing { "read" } else { "write" };
        let others: Vec<&PipeEnd> = f
            .pipe_peers
            .iter()
            .filter(|p| p.access.as_deref().is_none_or(|a| a.contains(wanted)))
            .collect();
        let Some(first) = others.first() else {
            continue;
        };
        let holders = others
            .iter()
            .map(|p| format!("process {} ({}) fd {}", p.pid, p.name, p.fd))
            .collect::<Vec<_>>()
            .join(", ");
        let (severity, summary) = if writing {
            (
                Severity::Cause,
                format!(
                    "{} has been blocked for at least {} in {} writing to a full pipe (fd {}): \
                     its read end is held by {holders}, which does not read it.",
                    wording::thread(w.thread),
                    wording::duration(stuck_ms),
                    w.how(),
                    f.fd
                ),
            )
        } else {
            (
                Severity::Warning,
                format!(
                    "{} has waited at least {} in {} for data on a pipe (fd {}) whose write end \
                     is held by {holders}: it waits for that process to write.",
                    wording::thread(w.thread),
                    wording::duration(stuck_ms),
                    w.how(),
                    f.fd
                ),
            )
        };
        out.push(Found {
            finding: Finding {
                severity,
                cause: Cause::PipeWait,
                summary,
                subject: Subject {
                    tid: Some(w.thread.tid),
                    thread_name: Some(w.thread.name.clone()).filter(|n| !n.is_empty()),
                    fd: Some(f.fd),
                    ..Subject::default()
                },
                evidence: evidence(w.evidence(pid), f, &others, pid),
                ruled_out: vec![],
                next_step: format!(
                    "Look at process {} ({}): hangscope {}.",
                    first.pid, first.name, first.pid
                ),
                ..Finding::default()
            },
            stuck_ms,
        });
    }
    out
}

fn evidence(waiting: Evidence, f: &Fd, others: &[&PipeEnd], pid: i32) -> Vec<Evidence> {
    let mut ev = vec![waiting];
    for p in others {
        ev.push(Evidence::new(
            "other end",
            format!(
                "process {} ({}) fd {}, {} end",
                p.pid,
                p.name,
                p.fd,
                p.access.as_deref().unwrap_or("unknown")
            ),
            format!(
                "/proc/{}/fd/{} -> {} (as /proc/{pid}/fd/{})",
                p.pid, p.fd, f.target, f.fd
            ),
        ));
    }
    ev
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use hangscope_model::WaitObject;

    fn pipe_snapshot(
        syscall: &str,
        events: &[&str],
        peer_access: &str,
    ) -> hangscope_model::Snapshot {
        let mut snap = base(800, "builder");
        let mut f = Fd::new(5, FdKind::Pipe, "pipe:[4242]");
        f.pipe_inode = Some(4242);
        f.pipe_peers = vec![PipeEnd {
            pid: 801,
            name: "tar".into(),
            fd: 1,
            access: Some(peer_access.into()),
        }];
        snap.fds.push(f);
        snap.threads.push(thread(
            800,
            "builder",
            syscall,
            vec![WaitObject::Fd {
                fd: 5,
                events: events.iter().map(|e| e.to_string()).collect(),
                via_epoll: None,
            }],
            Some(12_000),
        ));
        snap
    }

    #[test]
    fn reading_a_childs_output_is_a_warning_naming_the_child() {
        let found = find(&Ctx::new(&pipe_snapshot("read", &[], "write")));
        assert_eq!(found.len(), 1);
        let f = &found[0].finding;
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(
            f.summary,
            "Thread 800 (builder) has waited at least 12.0 s in read() for data on a pipe (fd 5) \
             whose write end is held by process 801 (tar) fd 1: it waits for that process to write."
        );
        assert_eq!(f.next_step, "Look at process 801 (tar): hangscope 801.");
    }

    #[test]
    fn writing_to_a_full_pipe_nobody_reads_is_a_cause() {
        let found = find(&Ctx::new(&pipe_snapshot("write", &[], "read")));
        assert_eq!(found[0].finding.severity, Severity::Cause);
        assert!(found[0].finding.summary.contains("writing to a full pipe"));
    }

    #[test]
    fn no_other_process_on_the_pipe_is_nothing() {
        let mut snap = pipe_snapshot("read", &[], "write");
        snap.fds[0].pipe_peers.clear();
        assert!(find(&Ctx::new(&snap)).is_empty());
    }
}
