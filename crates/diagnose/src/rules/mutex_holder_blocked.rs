//! Mutex held by a blocked thread: threads wait in futex() for a glibc mutex whose owner is
//! itself blocked — in pause(), a network call, a sleep — and has not moved over the window. The
//! lock is released only when the owner's wait ends, so every waiter is stuck behind it. (A
//! cycle of owners is a deadlock, see `mutex_deadlock`.)
//!
//! Facts: the futex word each thread waits on and its owner's TID (the mutex word + 8), the
//! owner's own syscall and the sampling window (threads collector).

use std::collections::BTreeMap;

use hangscope_model::{Cause, Next, Severity, Subject, Thread};

use crate::facts::mutex_holder_blocked::{MutexHolderBlocked, MutexOwner, OwnerFrom};
use crate::facts::{RuleFacts, ThreadRef};
use crate::{Ctx, STUCK_MS};

fn blocked_ms(t: &Thread) -> Option<u64> {
    let a = t.activity.as_ref()?;
    (!a.progressed).then_some(a.blocked_at_least_ms?)
}

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<MutexHolderBlocked> {
    let pid = ctx.snap.process.pid;
    // (mutex, owner, how it is known) → the stuck threads waiting for it.
    let mut waiting: BTreeMap<(u64, i32, OwnerFrom), Vec<&Thread>> = BTreeMap::new();
    for t in &ctx.snap.threads {
        let Some(ms) = blocked_ms(t).filter(|ms| *ms >= STUCK_MS) else {
            continue;
        };
        if let Some((addr, owner)) = crate::waiters::mutex_wait(t)
            && owner != t.tid
        {
            waiting
                .entry((addr, owner, OwnerFrom::LockWord))
                .or_default()
                .push(t);
        } else if let Some(addr) = crate::waiters::ownerless_mutex_wait(t)
            && let Some(owner) = only_thread_blocked_before(ctx, t, ms)
        {
            waiting
                .entry((addr, owner, OwnerFrom::OnlyThreadBlockedBefore))
                .or_default()
                .push(t);
        }
    }
    let mut out = Vec::new();
    for ((addr, owner_tid, owner_from), waiters) in waiting {
        let Some(owner) = ctx.snap.thread(owner_tid) else {
            continue;
        };
        // An owner waiting for a mutex itself is a chain or a cycle: the deadlock rule, or the
        // finding about the thread at the end of the chain, tells that story.
        if crate::waiters::mutex_wait(owner).is_some() {
            continue;
        }
        let Some(owner_ms) = blocked_ms(owner).filter(|ms| *ms >= STUCK_MS) else {
            continue;
        };
        out.push(MutexHolderBlocked {
            pid,
            mutex: addr,
            owner_from,
            owner: MutexOwner {
                thread: ThreadRef::of(owner),
                state: owner.state.clone(),
                syscall: owner.syscall.as_ref().map(|s| s.name.clone()),
                call: owner
                    .syscall
                    .as_ref()
                    .map(|s| s.summary.clone())
                    .unwrap_or_default(),
                blocked_ms: owner_ms,
            },
            stuck_ms: waiters
                .iter()
                .filter_map(|t| blocked_ms(t))
                .min()
                .unwrap_or(0),
            waiters: waiters.iter().map(|t| ThreadRef::of(t)).collect(),
        });
    }
    out
}

/// For a mutex whose word names no owner, waited on by `waiter` for `ms`: the one other thread
/// that has been blocked longer, in a syscall that is no futex wait (a lock, a condition
/// variable, a join: those wait for others themselves). A mutex is held by a thread that took
/// it before the waiter came, and one held across a blocking call is held by a thread blocked
/// since then; with two such threads, which one holds it cannot be told, and none is named.
fn only_thread_blocked_before(ctx: &Ctx<'_>, waiter: &Thread, ms: u64) -> Option<i32> {
    let mut before = ctx.snap.threads.iter().filter(|c| {
        c.tid != waiter.tid
            && blocked_ms(c).is_some_and(|b| b > ms)
            && c.syscall
                .as_ref()
                .is_some_and(|s| !s.running && s.name != "futex")
    });
    let only = before.next()?;
    before.next().is_none().then_some(only.tid)
}

impl RuleFacts for MutexHolderBlocked {
    const RULE: &'static str = "mutex_holder_blocked";

    fn cause(&self) -> Cause {
        Cause::LockWait
    }

    fn severity(&self) -> Severity {
        Severity::Cause
    }

    fn stuck_ms(&self) -> u64 {
        self.stuck_ms
    }

    fn subject(&self) -> Subject {
        self.owner.thread.subject()
    }

    fn next(&self) -> Option<Next> {
        Some(Next::thread(self.pid, self.owner.thread.tid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use hangscope_model::{Finding, NextKind, Snapshot, WaitObject};

    /// The findings the rule makes of a snapshot, worded.
    fn find(ctx: &Ctx<'_>) -> Vec<Finding> {
        super::find(ctx).iter().map(crate::words::finding).collect()
    }

    fn waiter(tid: i32, owner: i32) -> Thread {
        thread(
            tid,
            &format!("worker-{tid}"),
            "futex",
            vec![WaitObject::Futex {
                addr: 0x5000,
                op: "FUTEX_WAIT_PRIVATE".into(),
                owner_tid: Some(owner),
                other_waiters: vec![],
                waiters: 3,
                owner_pid: None,
                shared_file: None,
            }],
            Some(6000),
        )
    }

    fn owner_in_pause() -> Snapshot {
        let mut snap = base(100, "pool");
        snap.threads
            .push(thread(100, "pool", "pause", vec![], Some(7000)));
        for tid in 101..104 {
            snap.threads.push(waiter(tid, 100));
        }
        snap
    }

    #[test]
    fn workers_behind_an_owner_stuck_in_pause() {
        let snap = owner_in_pause();
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0];
        assert_eq!((f.cause, f.severity), (Cause::LockWait, Severity::Cause));
        assert_eq!(f.subject.tid, Some(100));
        assert_eq!(
            f.summary,
            "3 threads have waited at least 6.0 s for mutex 0x5000, held by thread 100 (pool), \
             which has itself been blocked for at least 7.0 s in pause(): the lock is released \
             only when that wait ends."
        );
    }

    #[test]
    fn an_owner_that_moves_is_contention() {
        let mut snap = base(100, "pool");
        snap.threads
            .push(thread(100, "pool", "write", vec![], None));
        snap.threads.push(waiter(101, 100));
        assert!(find(&Ctx::new(&snap)).is_empty());
    }

    #[test]
    fn facts_name_the_mutex_owner_and_waiters_and_next_is_the_owner() {
        let f = &find(&Ctx::new(&owner_in_pause()))[0];
        assert_eq!(f.rule, "mutex_holder_blocked");
        let facts = &f.facts;
        assert_eq!(facts["mutex"], 0x5000);
        assert_eq!(facts["owner"]["tid"], 100);
        assert_eq!(facts["owner"]["name"], "pool");
        assert_eq!(facts["owner"]["syscall"], "pause");
        assert_eq!(facts["owner"]["blocked_ms"], 7000);
        let waiters: Vec<i64> = facts["waiters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["tid"].as_i64().unwrap())
            .collect();
        assert_eq!(waiters, [101, 102, 103]);
        assert_eq!(facts["stuck_ms"], 6000);
        let next = f.next.as_ref().unwrap();
        assert_eq!(
            (next.kind, next.pid, next.tid),
            (NextKind::Thread, Some(100), Some(100))
        );
        assert_eq!(
            f.evidence[0].value, "pause()",
            "no strace line: the call's name"
        );
    }

    /// A Rust std mutex's waiter: its word (+ 8 is the guarded data) names no owner.
    fn rust_waiter(tid: i32, blocked: u64) -> Thread {
        let mut t = thread(
            tid,
            "waiter",
            "futex",
            vec![WaitObject::Futex {
                addr: 0x7000,
                op: "FUTEX_WAIT_BITSET_PRIVATE".into(),
                owner_tid: None,
                other_waiters: vec![],
                waiters: 1,
                owner_pid: None,
                shared_file: None,
            }],
            Some(blocked),
        );
        t.user_stack = Some(stack_of(&[
            "std::sys::pal::unix::futex::futex_wait",
            "<std::sys::sync::mutex::futex::Mutex>::lock_contended",
            "held::main::{{closure}}",
        ]));
        t
    }

    /// The main thread joining, the holder in a read since before the waiter came.
    fn rust_mutex_behind_a_read() -> Snapshot {
        let mut snap = base(200, "held");
        snap.threads
            .push(thread(200, "held", "futex", vec![], Some(9000)));
        snap.threads
            .push(thread(201, "holder", "read", vec![], Some(9000)));
        snap.threads.push(rust_waiter(202, 8800));
        snap
    }

    #[test]
    fn a_rust_mutex_s_owner_is_the_only_thread_blocked_since_before_the_wait() {
        let snap = rust_mutex_behind_a_read();
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0];
        assert_eq!((f.cause, f.severity), (Cause::LockWait, Severity::Cause));
        assert_eq!(f.subject.tid, Some(201));
        assert_eq!(f.facts["owner_from"], "only_thread_blocked_before");
        assert!(
            f.summary.starts_with(
                "Thread 202 (waiter) has waited at least 8.8 s for mutex 0x7000, most likely \
                 held by thread 201 (holder), the only other thread blocked since before that \
                 wait"
            ),
            "{}",
            f.summary
        );
    }

    #[test]
    fn a_rust_mutex_s_owner_is_not_guessed_among_several_or_from_a_later_wait() {
        // Two threads blocked since before: which one holds the lock cannot be told.
        let mut two = rust_mutex_behind_a_read();
        two.threads
            .push(thread(203, "other", "poll", vec![], Some(9500)));
        assert!(find(&Ctx::new(&two)).is_empty());
        // The reader blocked after the waiter began: it took no lock the waiter wants.
        let mut later = base(200, "held");
        later
            .threads
            .push(thread(201, "holder", "read", vec![], Some(3000)));
        later.threads.push(rust_waiter(202, 8800));
        assert!(find(&Ctx::new(&later)).is_empty());
        // The word + 8 of a Rust mutex is its data: a TID-looking value there is no owner.
        let mut data = rust_mutex_behind_a_read();
        if let Some(hangscope_model::SyscallState { waits_on, .. }) =
            data.threads[2].syscall.as_mut()
            && let Some(WaitObject::Futex { owner_tid, .. }) = waits_on.first_mut()
        {
            *owner_tid = Some(200);
        }
        let found = find(&Ctx::new(&data));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].subject.tid, Some(201));
    }
}
