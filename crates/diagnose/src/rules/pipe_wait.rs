//! Pipe wait: a thread blocked on a pipe whose other end another process holds. Blocked
//! writing, the pipe is full and that process does not read: a cause. Blocked reading, the
//! thread waits for that process to write — often a child still working, sometimes one that is
//! stuck: a warning that says where to look next.
//!
//! Facts: the thread's syscall and fd (threads collector), the pipe's other holders and which
//! end they hold (/proc/*/fd links and fdinfo flags, `Fd::pipe_peers`).

use hangscope_model::Text;
use hangscope_model::{Cause, FdKind, Next, PipeEnd, Severity, Subject};
use serde::Serialize;

use crate::facts::{RuleFacts, ThreadWait};
use crate::waiters::Want;
use crate::{Ctx, STUCK_MS};

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PipeWait {
    pub pid: i32,
    pub waiter: ThreadWait,
    /// The pipe's fd in this process.
    pub fd: i32,
    /// Its link, e.g. "pipe:[4242]".
    pub target: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipe_inode: Option<u64>,
    /// Blocked writing (the pipe is full); else reading.
    pub writing: bool,
    pub stuck_ms: u64,
    /// The other processes' fds on the end it waits for: the readers when it writes, the
    /// writers when it reads.
    pub other_ends: Vec<PipeEnd>,
}

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<PipeWait> {
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
        let wanted = if writing { "read" } else { "write" };
        let others: Vec<PipeEnd> = f
            .pipe_peers
            .iter()
            .filter(|p| p.access.as_deref().is_none_or(|a| a.contains(wanted)))
            .cloned()
            .collect();
        if others.is_empty() || postmaster_alive_pipe(ctx, writing, &others) {
            continue;
        }
        out.push(PipeWait {
            pid,
            waiter: ThreadWait::of(w, pid),
            fd: f.fd,
            target: f.target.clone(),
            pipe_inode: f.pipe_inode,
            writing,
            stuck_ms,
            other_ends: others,
        });
    }
    out
}

/// PostgreSQL's postmaster-death pipe: every backend watches its read end, in each wait, for
/// the EOF its postmaster's exit would bring; the postmaster never writes to it. Waiting there
/// says nothing about the backend (what it waits for is the server's to say, `pg_lock_wait`).
fn postmaster_alive_pipe(ctx: &Ctx<'_>, writing: bool, writers: &[PipeEnd]) -> bool {
    let p = &ctx.snap.process;
    !writing
        && p.exe
            .as_ref()
            .is_some_and(|e| hangscope_model::is_postgres_exe(e.as_bytes()))
        && writers.iter().all(|w| w.pid == p.ppid)
}

impl RuleFacts for PipeWait {
    const RULE: &'static str = "pipe_wait";

    fn cause(&self) -> Cause {
        Cause::PipeWait
    }

    /// A full pipe nobody reads is a cause; waiting to read is often a child still working.
    fn severity(&self) -> Severity {
        if self.writing {
            Severity::Cause
        } else {
            Severity::Warning
        }
    }

    fn stuck_ms(&self) -> u64 {
        self.stuck_ms
    }

    fn subject(&self) -> Subject {
        Subject {
            tid: Some(self.waiter.tid),
            thread_name: Some(self.waiter.name.clone()).filter(|n| !n.is_empty()),
            fd: Some(self.fd),
            ..Subject::default()
        }
    }

    fn next(&self) -> Option<Next> {
        self.other_ends.first().map(|p| Next::process(p.pid))
    }

    fn words(&self) -> crate::facts::Words {
        crate::words::pipe_wait::words(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use hangscope_model::{Fd, Finding, NextKind, WaitObject};

    /// The findings the rule makes of a snapshot, worded.
    fn find(ctx: &Ctx<'_>) -> Vec<Finding> {
        super::find(ctx).iter().map(crate::facts::finding).collect()
    }

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
        let f = &found[0];
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(
            f.summary,
            "Thread 800 (builder) has waited at least 12.0 s in read() for data on a pipe (fd 5) \
             whose write end is held by process 801 (tar) fd 1: it waits for that process to write."
        );
        assert_eq!(f.next_step, "Look at process 801 (tar): hangscope 801.");
    }

    #[test]
    fn a_postgres_backend_watching_its_postmaster_pipe_is_nothing() {
        let mut snap = pipe_snapshot("epoll_wait", &["EPOLLIN"], "write");
        snap.process.exe = Some("/usr/lib/postgresql/15/bin/postgres".into());
        snap.process.ppid = 801;
        assert!(find(&Ctx::new(&snap)).is_empty());
        // Another program's parent that does not write is still named.
        snap.process.exe = Some("/usr/bin/make".into());
        assert_eq!(find(&Ctx::new(&snap)).len(), 1);
    }

    #[test]
    fn writing_to_a_full_pipe_nobody_reads_is_a_cause() {
        let found = find(&Ctx::new(&pipe_snapshot("write", &[], "read")));
        assert_eq!(found[0].severity, Severity::Cause);
        assert!(found[0].summary.contains("writing to a full pipe"));
    }

    #[test]
    fn no_other_process_on_the_pipe_is_nothing() {
        let mut snap = pipe_snapshot("read", &[], "write");
        snap.fds[0].pipe_peers.clear();
        assert!(find(&Ctx::new(&snap)).is_empty());
    }

    #[test]
    fn facts_name_the_waiter_and_the_other_end_and_next_is_its_process() {
        let f = &find(&Ctx::new(&pipe_snapshot("write", &[], "read")))[0];
        assert_eq!(f.rule, "pipe_wait");
        let facts = &f.facts;
        assert_eq!(facts["waiter"]["tid"], 800);
        assert_eq!(facts["waiter"]["syscall"], "write");
        assert_eq!(facts["waiter"]["blocked_ms"], 12_000);
        assert_eq!(facts["fd"], 5);
        assert_eq!(facts["target"], "pipe:[4242]");
        assert_eq!(facts["pipe_inode"], 4242);
        assert_eq!(facts["writing"], true);
        assert_eq!(facts["stuck_ms"], 12_000);
        assert_eq!(
            facts["other_ends"],
            serde_json::json!([{"pid": 801, "name": "tar", "fd": 1, "access": "read"}])
        );
        let next = f.next.as_ref().unwrap();
        assert_eq!((next.kind, next.pid), (NextKind::Process, Some(801)));
        // Reading: the writer is where to look.
        let f = &find(&Ctx::new(&pipe_snapshot("read", &[], "write")))[0];
        assert_eq!(f.facts["writing"], false);
        assert_eq!(f.next.as_ref().and_then(|n| n.pid), Some(801));
    }
}
