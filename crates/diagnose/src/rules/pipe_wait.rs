//! Pipe wait: a thread blocked on a pipe whose other end another process holds. Blocked
//! writing, the pipe is full and that process does not read: a cause. Blocked reading, the
//! thread waits for that process to write — often a child still working, sometimes one that is
//! stuck: a warning that says where to look next.
//!
//! Reading through a set is not waiting for one writer: an event loop over a pipe, a signalfd
//! and a client socket waits for whichever speaks first, so the pipe's writer is named only
//! when every fd of the set is a pipe that same process writes (a parent collecting a child's
//! stdout and stderr). And a death-watch pipe is no wait at all: a parent keeps the write end
//! only so that its children see EOF when it dies, and never writes (PostgreSQL's postmaster,
//! whose every backend and auxiliary process holds the read end; see `death_watch`).
//!
//! Facts: the thread's syscall and fd (threads collector), the pipe's other holders and which
//! end they hold (/proc/*/fd links and fdinfo flags, `Fd::pipe_peers`).

use hangscope_model::{Cause, Fd, FdKind, Next, PipeEnd, Severity, Subject};

use crate::facts::pipe_wait::PipeWait;
use crate::facts::{RuleFacts, ThreadWait};
use crate::waiters::{Waiter, Want};
use crate::{Ctx, STUCK_MS};

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
        if others.is_empty() {
            continue;
        }
        if !writing && (death_watch(ctx, f, w) || (!w.alone() && !set_waits_for(ctx, w))) {
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

/// Whether `pipe` is a death-watch pipe: its write end held only by the target's parent, and
/// its read end shared — by other processes than the writer (the parent's other children), or
/// waited on in a set alongside other fds. Data written there would go to whichever reader
/// took it first, so the pipe can only signal by closing: its writer's death. Nothing in /proc
/// says whether a pipe was ever written (a pipe's fdinfo `pos` stays 0), and a reader blocked
/// on it shows it is empty now; the holders and the parent relation are what tell the class.
fn death_watch(ctx: &Ctx<'_>, pipe: &Fd, w: &Waiter<'_>) -> bool {
    let parent = ctx.snap.process.ppid;
    let writes = |p: &&PipeEnd| p.access.as_deref().is_some_and(|a| a.contains("write"));
    let mut writers = pipe.pipe_peers.iter().filter(writes).peekable();
    if parent <= 1 || writers.peek().is_none() || !writers.all(|p| p.pid == parent) {
        return false;
    }
    let other_reader = pipe
        .pipe_peers
        .iter()
        .any(|p| p.pid != parent && p.access.as_deref().is_some_and(|a| a.contains("read")));
    other_reader || !w.alone()
}

/// Whether every fd that `w`'s call waits on is a pipe one same other process writes: then the
/// set, as a whole, waits for that process.
fn set_waits_for(ctx: &Ctx<'_>, w: &Waiter<'_>) -> bool {
    let Some(sc) = &w.thread.syscall else {
        return false;
    };
    let mut common: Option<Vec<i32>> = None;
    for (fd, _, _) in sc.fd_waits() {
        let Some(f) = ctx.snap.fd(fd).filter(|f| f.kind == FdKind::Pipe) else {
            return false;
        };
        let writers: Vec<i32> = f
            .pipe_peers
            .iter()
            .filter(|p| p.access.as_deref().is_some_and(|a| a.contains("write")))
            .map(|p| p.pid)
            .collect();
        common = Some(match common {
            None => writers,
            Some(c) => c.into_iter().filter(|p| writers.contains(p)).collect(),
        });
    }
    common.is_some_and(|c| !c.is_empty())
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use hangscope_model::{Fd, Finding, NextKind, WaitObject};

    /// The findings the rule makes of a snapshot, worded.
    fn find(ctx: &Ctx<'_>) -> Vec<Finding> {
        super::find(ctx).iter().map(crate::words::finding).collect()
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
    fn a_child_watching_its_parents_death_pipe_with_its_siblings_is_nothing() {
        // A PostgreSQL backend and its postmaster: only the parent holds the write end, and
        // the other children share the read end.
        let mut snap = pipe_snapshot("epoll_wait", &["EPOLLIN"], "write");
        snap.process.ppid = 801;
        snap.fds[0].pipe_peers.push(PipeEnd {
            pid: 802,
            name: "postgres".into(),
            fd: 5,
            access: Some("read".into()),
        });
        assert!(find(&Ctx::new(&snap)).is_empty());
        // A parent's pipe read by this child alone and on its own: the parent is named.
        snap.fds[0].pipe_peers.pop();
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

    /// A PostgreSQL backend (pid 1964, child of the postmaster 1873): its death-watch pipe
    /// fd 3, written by no one (the postmaster keeps the write end as its fd 4, and the read
    /// end as fd 3, as do its other children), waited on in `waits`.
    fn backend(waits: Vec<WaitObject>) -> hangscope_model::Snapshot {
        let mut snap = base(1964, "postgres");
        snap.process.ppid = 1873;
        let mut f = Fd::new(3, FdKind::Pipe, "pipe:[835370]");
        f.pipe_inode = Some(835370);
        let end = |pid: i32, fd: i32, access: &str| PipeEnd {
            pid,
            name: "postgres".into(),
            fd,
            access: Some(access.into()),
        };
        f.pipe_peers = vec![
            end(1873, 3, "read"),
            end(1873, 4, "write"),
            end(1874, 3, "read"),
        ];
        snap.fds.push(f);
        snap.fds
            .push(Fd::new(8, FdKind::Signalfd, "anon_inode:[signalfd]"));
        snap.threads
            .push(thread(1964, "postgres", "epoll_wait", waits, Some(600_000)));
        snap
    }

    fn through_epoll(fds: &[i32]) -> Vec<WaitObject> {
        std::iter::once(WaitObject::Fd {
            fd: 4,
            events: vec![],
            via_epoll: None,
        })
        .chain(fds.iter().map(|&fd| WaitObject::Fd {
            fd,
            events: vec!["EPOLLIN".into()],
            via_epoll: Some(4),
        }))
        .collect()
    }

    #[test]
    fn a_death_watch_pipe_in_an_event_loop_is_nothing() {
        // Idle backend: latch signalfd, death-watch pipe, client socket.
        let mut snap = backend(through_epoll(&[8, 3, 7]));
        assert!(find(&Ctx::new(&snap)).is_empty());
        // The same pipe waited on alone: still the postmaster's death-watch, shared by its
        // children, never written.
        snap.threads[0] = thread(
            1964,
            "postgres",
            "read",
            vec![fd_wait(3, &[])],
            Some(600_000),
        );
        assert!(find(&Ctx::new(&snap)).is_empty());
    }

    #[test]
    fn a_pipe_in_a_set_with_other_fds_names_no_writer() {
        // The writer is not the parent: only the set's being a set keeps it from blame.
        let mut snap = backend(through_epoll(&[8, 3]));
        snap.process.ppid = 1;
        assert!(find(&Ctx::new(&snap)).is_empty());
        // Old behaviour on the same pipe alone: the writer is named.
        snap.threads[0] = thread(
            1964,
            "postgres",
            "read",
            vec![fd_wait(3, &[])],
            Some(600_000),
        );
        assert_eq!(find(&Ctx::new(&snap)).len(), 1);
    }

    #[test]
    fn a_set_of_pipes_one_child_writes_waits_for_that_child() {
        // A parent collecting a child's stdout and stderr in one poll: the child is named.
        let mut snap = pipe_snapshot("poll", &["POLLIN"], "write");
        let mut err = snap.fds[0].clone();
        err.fd = 6;
        err.pipe_inode = Some(4243);
        err.target = "pipe:[4243]".into();
        err.pipe_peers[0].fd = 2;
        snap.fds.push(err);
        if let Some(sc) = snap.threads[0].syscall.as_mut() {
            sc.waits_on.push(fd_wait(6, &["POLLIN"]));
        }
        let found = find(&Ctx::new(&snap));
        assert!(!found.is_empty());
        assert_eq!(found[0].next.as_ref().and_then(|n| n.pid), Some(801));
    }
}
