//! Lock wait: a thread blocked in flock() or fcntl(F_SETLKW) for a file lock another process
//! (or this one, through another fd) holds. Joined with /proc/locks (see proc_locks(5)), which
//! lists the blocked request ("->" line) behind the holder's lock.

use hangscope_model::{Cause, Evidence, Finding, LockAccess, Severity, Subject, WaitObject};

use crate::{Ctx, Found, STUCK_MS, wording};

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<Found> {
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
        let Some(fd) = lock_fd.or(by_name) else {
            continue;
        };
        // The blocked request in /proc/locks: ours, through this fd when known.
        let Some(req) = ctx
            .snap
            .locks
            .iter()
            .filter(|l| l.waiting && l.pid.is_none_or(|p| p == pid))
            .find(|l| l.fd.is_none_or(|f| f == fd))
        else {
            continue;
        };
        let blocked = t.activity.as_ref().and_then(|a| a.blocked_at_least_ms);
        let severity = if blocked.is_some_and(|ms| ms >= STUCK_MS) {
            Severity::Cause
        } else {
            Severity::Warning
        };
        let path = req
            .path
            .clone()
            .or_else(|| ctx.snap.fd(fd).map(|f| f.target.clone()))
            .unwrap_or_else(|| format!("inode {}", req.inode).into());
        let kind = match req.access {
            LockAccess::Read => "read lock",
            LockAccess::Write => "write lock",
            _ => "lock",
        };
        let (cause, holder, next_step) = match req.holder_pid {
            Some(h) if h == pid => (
                Cause::Deadlock,
                "held by this same process through another fd or thread: it waits for itself"
                    .to_string(),
                "Find the code that takes the lock twice; the process cannot go on without a \
                 restart."
                    .to_string(),
            ),
            Some(h) => (
                Cause::LockWait,
                format!("held by process {h}"),
                format!(
                    "Look at process {h}: why it holds the lock on {path} (hangscope {h}; \
                     grep {} /proc/locks).",
                    req.inode
                ),
            ),
            None => (
                Cause::LockWait,
                "held by a process /proc/locks does not name".to_string(),
                format!(
                    "Find the holder: grep {} /proc/locks; lsof {path}.",
                    req.inode
                ),
            ),
        };
        let waited = match blocked {
            Some(ms) => format!("has waited {} in", wording::duration(ms)),
            None => "waits in".into(),
        };
        out.push(Found {
            finding: Finding {
                severity,
                cause,
                summary: format!(
                    "{} {waited} {} for a {kind} on {path}, {holder}.",
                    wording::thread(t),
                    wording::call(&sc.name)
                ),
                subject: Subject {
                    tid: Some(t.tid),
                    thread_name: Some(t.name.clone()).filter(|n| !n.is_empty()),
                    fd: Some(fd),
                    ..Subject::default()
                },
                evidence: vec![Evidence::new(
                    "lock",
                    format!(
                        "request for {kind} {}-{} blocked behind lock {}",
                        req.start,
                        req.end
                            .map(|e| e.to_string())
                            .unwrap_or_else(|| "EOF".into()),
                        req.id
                    ),
                    "/proc/locks",
                )],
                ruled_out: vec![],
                next_step,
                ..Finding::default()
            },
            stuck_ms: blocked.unwrap_or(0),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use hangscope_model::{FileLock, LockClass};

    #[test]
    fn flock_behind_another_process() {
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
        });
        let f = &find(&Ctx::new(&snap))[0].finding;
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
}
