//! Lock retry: a thread that retries a file lock without blocking — fcntl(F_SETLK) or
//! flock(LOCK_NB) fails with EAGAIN, it sleeps a few ms, tries again — while another owner
//! holds a lock on a file it has open that is in its way. SQLite's busy handler (`PRAGMA
//! busy_timeout`, sqlite3's `.timeout`) is this loop; so are lock files polled by scripts and
//! build tools. A request tried without blocking leaves no "->" line in /proc/locks, and the
//! thread is seen only in its sleep: what ties the loop to the lock is the loop itself
//! (short sleeps re-entered over the whole window) and a lock of another owner that no request
//! of this process could get past.
//!
//! Which locks are in the way, from /proc/locks' byte ranges (proc_locks(5), fcntl(2)):
//! - It holds no lock of the same family on the file (POSIX and OFD locks meet; flock locks
//!   meet only flock locks): another owner's write lock is in the way of any request on its
//!   range, a read lock only of a write request, which is not known.
//! - It holds locks there: it retries more of them. What is in the way is a read lock over a
//!   range it reads under too, while it already writes elsewhere in the file: a writer that
//!   waits for a reader to finish before it upgrades (SQLite's PENDING → EXCLUSIVE). Locks of
//!   others on ranges it holds nothing of are other owners' records, not its retry.
//!
//! Same-owner locks never conflict (POSIX locks are per process; an OFD lock through one of its
//! own fds is its own), so only locks collect marked as another owner's are weighed.

use hangscope_model::{
    Cause, FileLock, LockAccess, LockClass, Next, Severity, Subject, Thread, WaitObject,
};

use crate::facts::RuleFacts;
use crate::facts::lock_retry::{Blocking, Conflict, LockRange, LockRetry};
use crate::facts::waiting_loop::Loop;
use crate::{Ctx, STUCK_MS};

/// Longest sleep a retry loop is taken to make: SQLite backs off to 100 ms, lock-file scripts
/// poll every second. A loop with longer sleeps is periodic work, not a retry.
const MAX_PERIOD_MS: f64 = 1000.0;

/// POSIX and OFD locks are one family (they conflict with each other); flock locks another.
fn family(c: LockClass) -> Option<u8> {
    match c {
        LockClass::Posix | LockClass::Ofd => Some(0),
        LockClass::Flock => Some(1),
        LockClass::Lease | LockClass::Delegation | LockClass::Other => None,
    }
}

fn overlaps(a: &FileLock, b: &FileLock) -> bool {
    let a_end = a.end.unwrap_or(u64::MAX);
    let b_end = b.end.unwrap_or(u64::MAX);
    a.start <= b_end && b.start <= a_end
}

/// Whether `other`, held on a file, is in the way of a lock `pid` retries there, given the
/// locks `ours` it holds on the same file.
pub(crate) fn conflict(pid: i32, other: &FileLock, ours: &[&FileLock]) -> Option<Conflict> {
    let same_owner =
        !other.other_owner || (other.class == LockClass::Posix && other.pid == Some(pid));
    if same_owner || other.waiting {
        return None;
    }
    let fam = family(other.class)?;
    let ours: Vec<&&FileLock> = ours
        .iter()
        .filter(|o| !o.waiting && family(o.class) == Some(fam))
        .collect();
    if ours.is_empty() {
        return (other.access == LockAccess::Write).then_some(Conflict::Write);
    }
    let reads_with_it = ours
        .iter()
        .any(|o| o.access == LockAccess::Read && overlaps(o, other));
    let writes = ours.iter().any(|o| o.access == LockAccess::Write);
    (other.access == LockAccess::Read && reads_with_it && writes).then_some(Conflict::Upgrade)
}

/// A thread re-entering a short sleep over the window: a sleep call, or a poll/select on no fd
/// with a timeout, re-entered about every [`MAX_PERIOD_MS`] or more often. Returns the loop
/// and its period.
fn short_sleep_loop(t: &Thread) -> Option<(Loop, f64)> {
    let a = t.activity.as_ref()?;
    let rate = a.rate_per_s.filter(|r| *r > 0.0)?;
    let sc = t.syscall.as_ref()?;
    let sleeps = match sc.name.as_str() {
        "nanosleep" | "clock_nanosleep" | "clock_nanosleep_time64" => true,
        "poll" | "ppoll" | "select" | "pselect6" | "ppoll_time64" | "pselect6_time64" => !sc
            .waits_on
            .iter()
            .any(|w| matches!(w, WaitObject::Fd { .. })),
        _ => false,
    };
    if !sleeps {
        return None;
    }
    let l = Loop::of(t)?;
    // An absolute sleep decodes as the time left of it, not its length, and an unread one
    // as zero: then the rate is the period.
    let absolute = sc
        .decoded
        .iter()
        .any(|arg| arg.name == "flags" && arg.value.contains("TIMER_ABSTIME"));
    let sleep = l.looping.period_ms.filter(|ms| *ms > 0.0 && !absolute);
    if sleep.is_some_and(|ms| ms > MAX_PERIOD_MS) {
        return None;
    }
    // The rate is counted over a window of a few periods: a loop of MAX_PERIOD_MS may show a
    // wake-up fewer.
    if rate < 0.75 * 1000.0 / MAX_PERIOD_MS {
        return None;
    }
    let period = sleep.unwrap_or(1000.0 / rate);
    Some((l, period))
}

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<LockRetry> {
    let snap = ctx.snap;
    let pid = snap.process.pid;
    let Some(window) = snap.window.as_ref() else {
        return vec![];
    };
    let mut loops: Vec<(&Thread, (Loop, f64))> = snap
        .threads
        .iter()
        .filter_map(|t| Some((t, short_sleep_loop(t)?)))
        .collect();
    if loops.is_empty() {
        return vec![];
    }
    // The main thread first: in a single-threaded tool (sqlite3, a script) it is the only one.
    loops.sort_by_key(|(t, _)| t.tid != pid);
    let other_loops = (loops.len() - 1) as u32;
    let (_, (looping, every_ms)) = loops.swap_remove(0);

    // The files others lock, in the order /proc/locks lists them.
    let mut inodes: Vec<u64> = Vec::new();
    for l in snap.locks.iter().filter(|l| l.other_owner) {
        if !inodes.contains(&l.inode) {
            inodes.push(l.inode);
        }
    }
    let mut out = Vec::new();
    for inode in inodes {
        let on_file = |l: &&FileLock| l.inode == inode;
        // A thread of it blocked in a request on the file is what waits for the lock there
        // (lock_wait says so), not a loop beside it.
        if snap
            .locks
            .iter()
            .filter(on_file)
            .any(|l| l.waiting && l.pid.is_none_or(|p| p == pid))
        {
            continue;
        }
        let ours: Vec<&FileLock> = snap
            .locks
            .iter()
            .filter(on_file)
            .filter(|l| !l.other_owner && !l.waiting && l.pid.is_none_or(|p| p == pid))
            .collect();
        let mut fd = None;
        let mut path = None;
        let blocking: Vec<Blocking> = snap
            .locks
            .iter()
            .filter(on_file)
            .filter(|l| l.other_owner)
            .filter_map(|l| {
                let conflict = conflict(pid, l, &ours)?;
                fd = fd.or(l.fd);
                path = path.clone().or_else(|| l.path.clone());
                Some(Blocking {
                    pid: l.pid,
                    name: l.owner_name.clone(),
                    range: LockRange::of(l),
                    conflict,
                })
            })
            .collect();
        let Some(fd) = fd.filter(|_| !blocking.is_empty()) else {
            continue;
        };
        out.push(LockRetry {
            pid,
            thread: looping.thread.clone(),
            looping: looping.clone(),
            every_ms: every_ms.round() as u64,
            for_at_least_ms: window.duration_ms,
            fd,
            path: path.or_else(|| snap.fd(fd).map(|f| f.target.clone())),
            inode,
            holds: ours.iter().map(|l| LockRange::of(l)).collect(),
            blocking,
            other_loops,
        });
    }
    out
}

impl RuleFacts for LockRetry {
    const RULE: &'static str = "lock_retry";

    fn cause(&self) -> Cause {
        Cause::LockWait
    }

    /// A loop seen over less than the stuck threshold may be a wait about to be granted.
    fn severity(&self) -> Severity {
        if self.for_at_least_ms >= STUCK_MS {
            Severity::Cause
        } else {
            Severity::Warning
        }
    }

    fn stuck_ms(&self) -> u64 {
        self.for_at_least_ms
    }

    fn subject(&self) -> Subject {
        Subject {
            fd: Some(self.fd),
            ..self.thread.subject()
        }
    }

    fn next(&self) -> Option<Next> {
        let grep = format!("grep {} /proc/locks", self.inode);
        Some(match (self.holder(), &self.path) {
            (Some((pid, _)), _) => Next::process(pid),
            (None, Some(path)) => Next::file(path.clone()).with_command(grep),
            (None, None) => Next::command(grep),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use hangscope_model::{Finding, NextKind, Snapshot};

    fn find(snap: &Snapshot) -> Vec<Finding> {
        super::find(&Ctx::new(snap))
            .iter()
            .map(crate::words::finding)
            .collect()
    }

    const DB_INODE: u64 = 10035247;
    const PENDING: u64 = 0x4000_0000;

    fn lock(pid: i32, access: LockAccess, start: u64, end: u64, other: bool) -> FileLock {
        FileLock {
            id: 1,
            class: LockClass::Posix,
            access,
            mode: "ADVISORY".into(),
            pid: Some(pid),
            dev: "fe:00".into(),
            inode: DB_INODE,
            start,
            end: Some(end),
            waiting: false,
            fd: Some(3),
            holder_pid: None,
            path: Some("/srv/app.db".into()),
            other_owner: other,
            owner_name: other.then(|| "sqlite3".into()),
        }
    }

    /// sqlite3 with `.timeout` retrying an INSERT, as measured with sqlite3 3.40: the main
    /// thread re-enters a 100 ms sleep; it holds no lock (SQLite drops its SHARED lock
    /// between tries), and process 769 is in `BEGIN IMMEDIATE` with a row written: RESERVED
    /// (a write lock on one byte) and SHARED (a read lock on 510).
    fn sqlite_waiter() -> Snapshot {
        let mut snap = base(782, "sqlite3");
        snap.threads.push(sleeper(782, "sqlite3", 100));
        snap.locks
            .push(lock(769, LockAccess::Write, PENDING + 1, PENDING + 1, true));
        snap.locks.push(lock(
            769,
            LockAccess::Read,
            PENDING + 2,
            PENDING + 511,
            true,
        ));
        snap
    }

    #[test]
    fn sqlite_busy_loop_behind_a_write_lock_is_a_cause_naming_the_holder() {
        let snap = sqlite_waiter();
        let f = find(&snap);
        assert_eq!(f.len(), 1, "{f:#?}");
        let f = &f[0];
        assert_eq!(
            (
                f.rule.as_str(),
                f.severity,
                f.cause,
                f.subject.tid,
                f.subject.fd
            ),
            (
                "lock_retry",
                Severity::Cause,
                Cause::LockWait,
                Some(782),
                Some(3)
            )
        );
        assert_eq!(
            f.summary,
            "Thread 782 (sqlite3) retries a lock on /srv/app.db every ~100 ms for at least \
             2.0 s; held by process 769 (sqlite3), which holds a write lock on byte 1073741825."
        );
        assert!(
            f.next_step.starts_with("Look at process 769 (sqlite3)"),
            "{}",
            f.next_step
        );
        let next = f.next.as_ref().unwrap();
        assert_eq!((next.kind, next.pid), (NextKind::Process, Some(769)));
        // Only the write lock is in the way: the holder's read lock would not stop a reader.
        let blocking = f.facts["blocking"].as_array().unwrap();
        assert_eq!(blocking.len(), 1);
        assert_eq!(blocking[0]["pid"], 769);
        assert_eq!(blocking[0]["name"], "sqlite3");
        assert_eq!(blocking[0]["access"], "write");
        assert_eq!(blocking[0]["conflict"], "write");
        assert_eq!(f.facts["holds"], serde_json::json!([]));
        assert_eq!(f.facts["looping"]["period_ms"], 100.0);
        assert_eq!(f.facts["for_at_least_ms"], 2000);
    }

    #[test]
    fn a_writer_waiting_for_a_reader_to_upgrade_is_a_cause() {
        // sqlite3 committing at PENDING: it writes the PENDING and RESERVED bytes, reads the
        // SHARED range, and a reader in an open transaction reads the SHARED range too.
        let mut snap = base(1091, "sqlite3");
        snap.threads.push(sleeper(1091, "sqlite3", 100));
        snap.locks
            .push(lock(1091, LockAccess::Write, PENDING, PENDING + 1, false));
        snap.locks.push(lock(
            1091,
            LockAccess::Read,
            PENDING + 2,
            PENDING + 511,
            false,
        ));
        snap.locks.push(lock(
            1039,
            LockAccess::Read,
            PENDING + 2,
            PENDING + 511,
            true,
        ));
        let f = find(&snap);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].facts["blocking"][0]["conflict"], "upgrade");
        assert_eq!(f[0].facts["blocking"][0]["pid"], 1039);
        assert_eq!(f[0].facts["holds"].as_array().unwrap().len(), 2);
        assert!(
            f[0].summary.contains(
                "held by process 1039 (sqlite3), which holds a read lock on bytes \
                 1073741826-1073742335 that this process reads under too: it writes the file \
                 and waits for that reader to finish."
            ),
            "{}",
            f[0].summary
        );
    }

    #[test]
    fn locks_that_do_not_overlap_do_not_conflict() {
        // Record locking: each process writes its own records.
        let ours = lock(782, LockAccess::Write, 0, 99, false);
        let theirs = lock(769, LockAccess::Write, 100, 199, true);
        assert_eq!(conflict(782, &theirs, &[&ours]), None);
        // A writer's read elsewhere in the file is not the range another reads.
        let our_read = lock(782, LockAccess::Read, 0, 9, false);
        let their_read = lock(769, LockAccess::Read, 100, 199, true);
        assert_eq!(conflict(782, &their_read, &[&our_read, &ours]), None);
        // Overlapping, it is the upgrade's reader.
        let shared = lock(769, LockAccess::Read, 5, 50, true);
        assert_eq!(
            conflict(782, &shared, &[&our_read, &ours]),
            Some(Conflict::Upgrade)
        );
        let mut snap = sqlite_waiter();
        snap.locks = vec![ours, theirs, our_read, their_read];
        assert!(find(&snap).is_empty());
    }

    #[test]
    fn the_same_owner_does_not_conflict() {
        // Its own lock, as collect records it, and a POSIX lock naming its pid.
        let own = lock(782, LockAccess::Write, 0, 99, false);
        assert_eq!(conflict(782, &own, &[]), None);
        let named_ours = lock(782, LockAccess::Write, 0, 99, true);
        assert_eq!(conflict(782, &named_ours, &[]), None);
        let mut snap = sqlite_waiter();
        snap.locks = vec![own];
        assert!(find(&snap).is_empty());
    }

    #[test]
    fn read_locks_do_not_conflict_with_reads() {
        let their_read = lock(769, LockAccess::Read, 0, 99, true);
        // It holds nothing: what it retries is not known to be a write.
        assert_eq!(conflict(782, &their_read, &[]), None);
        // It reads the same range and writes nothing.
        let our_read = lock(782, LockAccess::Read, 0, 99, false);
        assert_eq!(conflict(782, &their_read, &[&our_read]), None);
        let mut snap = sqlite_waiter();
        snap.locks = vec![our_read, their_read];
        assert!(find(&snap).is_empty());
    }

    #[test]
    fn flock_and_posix_locks_do_not_meet() {
        let mut flock = lock(769, LockAccess::Write, 0, 0, true);
        flock.class = LockClass::Flock;
        flock.end = None;
        // Holding a POSIX lock of its own, a flock of another is not what it retries...
        let ours = lock(782, LockAccess::Read, 0, 9, false);
        assert_eq!(conflict(782, &flock, &[&ours]), Some(Conflict::Write));
        // ...and a whole-file flock write lock is in the way of any flock.
        let mut snap = sqlite_waiter();
        snap.locks = vec![flock];
        let f = find(&snap);
        assert!(
            f[0].summary
                .ends_with("which holds a write lock (flock) on the whole file."),
            "{}",
            f[0].summary
        );
    }

    #[test]
    fn no_short_sleep_loop_no_finding() {
        // Idle at its prompt, reading stdin, with the file open and another's lock on it.
        let mut snap = sqlite_waiter();
        snap.threads = vec![thread(
            782,
            "sqlite3",
            "read",
            vec![fd_wait(0, &[])],
            Some(30_000),
        )];
        assert!(find(&snap).is_empty());
        // A loop of long sleeps is periodic work, not a retry.
        snap.threads = vec![sleeper(782, "sqlite3", 5000)];
        assert!(find(&snap).is_empty());
        // A timed poll on fds is an event loop.
        let mut ev = sleeper(782, "sqlite3", 100);
        let sc = ev.syscall.as_mut().unwrap();
        sc.name = "poll".into();
        sc.waits_on = vec![fd_wait(4, &["POLLIN"])];
        sc.timeout_ms = Some(100);
        snap.threads = vec![ev];
        assert!(find(&snap).is_empty());
        // With no window, no loop is known.
        let mut snap = sqlite_waiter();
        snap.window = None;
        assert!(find(&snap).is_empty());
    }

    #[test]
    fn a_blocked_request_on_the_file_is_lock_waits_not_a_loop_beside_it() {
        // A worker blocked in fcntl(F_SETLKW) behind process 769, the main thread in its own
        // 100 ms loop.
        let mut snap = sqlite_waiter();
        let mut worker = thread(
            790,
            "worker",
            "fcntl",
            vec![WaitObject::Lock {
                fd: 3,
                op: "F_SETLKW".into(),
            }],
            Some(10_000),
        );
        worker.syscall.as_mut().unwrap().args = vec![3, 7];
        snap.threads.push(worker);
        let mut request = lock(782, LockAccess::Write, PENDING + 1, PENDING + 1, false);
        request.waiting = true;
        request.holder_pid = Some(769);
        snap.locks.push(request);
        assert!(find(&snap).is_empty());
        let all = crate::diagnose(&snap);
        assert!(
            all.iter()
                .any(|f| f.rule == "lock_wait" && f.subject.tid == Some(790))
        );
        assert!(!all.iter().any(|f| f.rule == "lock_retry"), "{all:#?}");
    }

    #[test]
    fn the_rate_decides_where_the_sleep_is_absolute_or_unread() {
        // An absolute 5 s sleep decodes as the 35 ms left of it; its rate gives it away.
        let mut snap = sqlite_waiter();
        let t = &mut snap.threads[0];
        t.syscall.as_mut().unwrap().waits_on = vec![WaitObject::Sleep { ns: 35_000_000 }];
        t.syscall.as_mut().unwrap().decoded = vec![hangscope_model::SyscallArg {
            name: "flags".into(),
            value: "TIMER_ABSTIME".into(),
        }];
        t.activity.as_mut().unwrap().rate_per_s = Some(0.2);
        assert!(find(&snap).is_empty());
        // Absolute every 100 ms (Python's time.sleep): every ~100 ms, from the rate.
        snap.threads[0].activity.as_mut().unwrap().rate_per_s = Some(10.0);
        let f = find(&snap);
        assert_eq!(f[0].facts["every_ms"], 100, "{:#}", f[0].facts);
        assert!(f[0].summary.contains("every ~100 ms"), "{}", f[0].summary);
        // Its memory unread (no process_vm_readv): the sleep is 0, the rate still says.
        let mut snap = sqlite_waiter();
        snap.threads[0].syscall.as_mut().unwrap().waits_on = vec![WaitObject::Sleep { ns: 0 }];
        snap.threads[0].activity.as_mut().unwrap().rate_per_s = Some(5.0);
        assert_eq!(find(&snap)[0].facts["every_ms"], 200);
    }

    #[test]
    fn a_poll_on_no_fd_is_a_sleep() {
        let mut snap = sqlite_waiter();
        let sc = snap.threads[0].syscall.as_mut().unwrap();
        sc.name = "poll".into();
        sc.waits_on.clear();
        sc.timeout_ms = Some(50);
        let f = find(&snap);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].facts["looping"]["syscall"], "poll");
    }

    #[test]
    fn a_short_window_is_a_warning_and_an_unnamed_owner_sends_to_the_file() {
        let mut snap = sqlite_waiter();
        snap.window.as_mut().unwrap().duration_ms = 500;
        snap.locks.truncate(1);
        snap.locks[0].class = LockClass::Ofd;
        snap.locks[0].pid = None;
        snap.locks[0].owner_name = None;
        let f = &find(&snap)[0];
        assert_eq!(f.severity, Severity::Warning);
        assert!(
            f.summary.contains("held by another open file"),
            "{}",
            f.summary
        );
        let next = f.next.as_ref().unwrap();
        assert_eq!(next.kind, NextKind::File);
        assert_eq!(next.command.as_deref(), Some("grep 10035247 /proc/locks"));
    }
}
