//! Lock wait: a thread blocked in flock() or fcntl(F_SETLKW, F_OFD_SETLKW) for a file lock
//! another process (or this one, through another fd) holds. Joined with /proc/locks (see
//! proc_locks(5)), which lists the blocked request ("->" line) behind the holder's lock; an OFD
//! lock's holder, which /proc/locks does not name, comes from collect's fdinfo search.

use hangscope_model::{Cause, LockClass, Next, Severity, Subject, WaitObject};

use crate::facts::lock_wait::{LockHolder, LockWait};
use crate::facts::{RuleFacts, ThreadRef};
use crate::{Ctx, STUCK_MS};

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<LockWait> {
    let pid = ctx.snap.process.pid;
    let mut out = Vec::new();
    for t in &ctx.snap.threads {
        let Some(sc) = &t.syscall else { continue };
        if sc.running {
            continue;
        }
        let lock_fd = sc.waits_on.iter().find_map(|w| match w {
            WaitObject::Lock { fd, .. } => Some(*fd),
            _ => None,
        });
        let by_name = matches!(sc.name.as_str(), "flock" | "fcntl" | "fcntl64")
            .then(|| sc.args.first().and_then(|a| i32::try_from(*a).ok()))
            .flatten();
        let fd = lock_fd.or(by_name);
        // An open() or truncate() of a leased file waits in __break_lease for the holder to
        // give its lease up; its request is a "LEASE BREAKER" line of this process.
        let breaking = fd.is_none() && t.wchan.as_deref() == Some("__break_lease");
        if fd.is_none() && !breaking {
            continue;
        }
        // The blocked request in /proc/locks: ours, through this fd when known.
        let Some(req) = ctx
            .snap
            .locks
            .iter()
            .filter(|l| l.waiting && l.pid.is_none_or(|p| p == pid))
            .filter(|l| !breaking || (l.class == LockClass::Lease && l.pid == Some(pid)))
            .find(|l| l.fd.is_none_or(|f| Some(f) == fd))
        else {
            continue;
        };
        out.push(LockWait {
            pid,
            thread: ThreadRef::of(t),
            syscall: sc.name.clone(),
            fd,
            blocked_ms: t.activity.as_ref().and_then(|a| a.blocked_at_least_ms),
            lease: breaking,
            path: req
                .path
                .clone()
                .or_else(|| fd.and_then(|fd| ctx.snap.fd(fd)).map(|f| f.target.clone()))
                .or_else(|| sc.path.clone()),
            inode: req.inode,
            access: req.access,
            start: req.start,
            end: req.end,
            lock_id: req.id,
            holder: match req.holder_pid {
                Some(h) if h == pid => LockHolder::ThisProcess,
                Some(h) => LockHolder::Process { pid: h },
                None => LockHolder::Unknown,
            },
        });
    }
    out
}

impl RuleFacts for LockWait {
    const RULE: &'static str = "lock_wait";

    fn cause(&self) -> Cause {
        match self.holder {
            LockHolder::ThisProcess => Cause::Deadlock,
            LockHolder::Process { .. } | LockHolder::Unknown => Cause::LockWait,
        }
    }

    fn severity(&self) -> Severity {
        if self.blocked_ms.is_some_and(|ms| ms >= STUCK_MS) {
            Severity::Cause
        } else {
            Severity::Warning
        }
    }

    fn stuck_ms(&self) -> u64 {
        self.blocked_ms.unwrap_or(0)
    }

    fn subject(&self) -> Subject {
        Subject {
            fd: self.fd,
            ..self.thread.subject()
        }
    }

    fn next(&self) -> Option<Next> {
        Some(match self.holder {
            LockHolder::Process { pid } => Next::process(pid),
            // The code that takes the lock twice runs in this thread.
            LockHolder::ThisProcess => Next::thread(self.pid, self.thread.tid),
            LockHolder::Unknown => match &self.path {
                Some(path) => Next::file(path.clone())
                    .with_command(format!("grep {} /proc/locks", self.inode)),
                None => Next::command(format!("grep {} /proc/locks", self.inode)),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use hangscope_model::{FileLock, Finding, LockAccess, LockClass, NextKind, Snapshot};

    /// The findings the rule makes of a snapshot, worded.
    fn find(ctx: &Ctx<'_>) -> Vec<Finding> {
        super::find(ctx).iter().map(crate::words::finding).collect()
    }

    fn flock_snapshot() -> Snapshot {
        let mut snap = base(60, "backup");
        snap.threads.push(thread(
            60,
            "backup",
            "flock",
            vec![WaitObject::Lock {
                fd: 3,
                op: "LOCK_EX".into(),
            }],
            Some(12_000),
        ));
        snap.locks.push(FileLock {
            id: 4,
            class: LockClass::Flock,
            access: LockAccess::Write,
            mode: "ADVISORY".into(),
            pid: Some(60),
            dev: "08:01".into(),
            inode: 1234,
            start: 0,
            end: None,
            waiting: true,
            fd: Some(3),
            holder_pid: Some(77),
            path: Some("/var/lock/backup.lock".into()),
            other_owner: false,
            owner_name: None,
        });
        snap
    }

    #[test]
    fn flock_behind_another_process() {
        let snap = flock_snapshot();
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(
            (f.severity, f.cause, f.subject.fd),
            (Severity::Cause, Cause::LockWait, Some(3))
        );
        assert_eq!(
            f.summary,
            "Thread 60 (backup) has waited 12.0 s in flock() for a write lock on \
             /var/lock/backup.lock, held by process 77."
        );
        assert!(f.next_step.starts_with("Look at process 77"));
    }

    #[test]
    fn facts_name_the_request_and_its_holder_and_next_is_the_holder() {
        let f = &find(&Ctx::new(&flock_snapshot()))[0];
        assert_eq!(f.rule, "lock_wait");
        let facts = &f.facts;
        assert_eq!(facts["thread"]["tid"], 60);
        assert_eq!(facts["syscall"], "flock");
        assert_eq!(facts["fd"], 3);
        assert_eq!(facts["blocked_ms"], 12_000);
        assert_eq!(facts["path"], "/var/lock/backup.lock");
        assert_eq!(facts["inode"], 1234);
        assert_eq!(facts["access"], "write");
        assert_eq!(facts["start"], 0);
        assert!(facts.get("end").is_none(), "{facts}");
        assert_eq!(facts["lock_id"], 4);
        assert_eq!(facts["holder"]["kind"], "process");
        assert_eq!(facts["holder"]["pid"], 77);
        let next = f.next.as_ref().unwrap();
        assert_eq!((next.kind, next.pid), (NextKind::Process, Some(77)));
    }

    #[test]
    fn a_lock_this_process_holds_is_a_deadlock_on_the_thread() {
        let mut snap = flock_snapshot();
        snap.locks[0].holder_pid = Some(60);
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(f.cause, Cause::Deadlock);
        assert_eq!(f.facts["holder"]["kind"], "this_process");
        assert!(f.summary.ends_with("it waits for itself."), "{}", f.summary);
        let next = f.next.as_ref().unwrap();
        assert_eq!(
            (next.kind, next.pid, next.tid),
            (NextKind::Thread, Some(60), Some(60))
        );
        // Nobody named: the file, with where to find its holder.
        snap.locks[0].holder_pid = None;
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(f.facts["holder"]["kind"], "unknown");
        let next = f.next.as_ref().unwrap();
        assert_eq!(next.kind, NextKind::File);
        assert_eq!(next.path.as_deref(), Some("/var/lock/backup.lock"));
        assert_eq!(
            f.next_step,
            "Find the holder: grep 1234 /proc/locks; lsof /var/lock/backup.lock."
        );
    }
}
