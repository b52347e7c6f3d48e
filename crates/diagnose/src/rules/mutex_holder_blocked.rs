//! Mutex held by a blocked thread: threads wait in futex() for a glibc mutex whose owner is
//! itself blocked — in pause(), a network call, a sleep — and has not moved over the window. The
//! lock is released only when the owner's wait ends, so every waiter is stuck behind it. (A
//! cycle of owners is a deadlock, see `mutex_deadlock`.)
//!
//! Facts: the futex word each thread waits on and its owner's TID (the mutex word + 8), the
//! owner's own syscall and the sampling window (threads collector).

use std::collections::BTreeMap;

use hangscope_model::{Cause, Evidence, Finding, Severity, Subject, Thread};

use crate::{Ctx, Found, STUCK_MS, wording};

fn blocked_ms(t: &Thread) -> Option<u64> {
    let a = t.activity.as_ref()?;
    (!a.progressed).then_some(a.blocked_at_least_ms?)
}

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<Found> {
    let pid = ctx.snap.process.pid;
    // (mutex, owner) → the stuck threads waiting for it.
    let mut waiting: BTreeMap<(u64, i32), Vec<&Thread>> = BTreeMap::new();
    for t in &ctx.snap.threads {
        if let (Some((addr, owner)), Some(ms)) = (crate::waiters::mutex_wait(t), blocked_ms(t))
            && ms >= STUCK_MS
            && owner != t.tid
        {
            waiting.entry((addr, owner)).or_default().push(t);
        }
    }
    let mut out = Vec::new();
    for ((addr, owner_tid), waiters) in waiting {
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
        let owner_wait = match &owner.syscall {
            Some(s) if !s.summary.is_empty() => s.summary.clone(),
            Some(s) if !s.name.is_empty() => wording::call(&s.name),
            _ => format!("state {}", owner.state),
        };
        let stuck_ms = waiters
            .iter()
            .filter_map(|t| blocked_ms(t))
            .min()
            .unwrap_or(0);
        let (who, verb) = match waiters.as_slice() {
            [one] => (wording::thread(one), "has"),
            many => (format!("{} threads", many.len()), "have"),
        };
        let owner_name = if owner.name.is_empty() {
            format!("thread {}", owner.tid)
        } else {
            format!("thread {} ({})", owner.tid, owner.name)
        };
        let owner_call = owner
            .syscall
            .as_ref()
            .map(|s| wording::call(&s.name))
            .unwrap_or_else(|| "the kernel".into());
        let names = waiters
            .iter()
            .take(5)
            .map(|t| format!("{} {}", t.tid, t.name));
        out.push(Found {
            finding: Finding {
                severity: Severity::Cause,
                cause: Cause::LockWait,
                summary: format!(
                    "{who} {verb} waited at least {} for mutex {addr:#x}, held by {owner_name}, \
                     which has itself been blocked for at least {} in {owner_call}: the lock is \
                     released only when that wait ends.",
                    wording::duration(stuck_ms),
                    wording::duration(owner_ms),
                ),
                subject: Subject {
                    tid: Some(owner.tid),
                    thread_name: Some(owner.name.clone()).filter(|n| !n.is_empty()),
                    ..Subject::default()
                },
                evidence: vec![
                    Evidence::new(
                        "owner waits in",
                        owner_wait,
                        format!("/proc/{pid}/task/{}/syscall", owner.tid),
                    ),
                    Evidence::new(
                        "waiting for the mutex",
                        names.collect::<Vec<_>>().join(", ")
                            + if waiters.len() > 5 { ", …" } else { "" },
                        format!("/proc/{pid}/task/*/syscall; owner from the mutex word + 8"),
                    ),
                ],
                ruled_out: vec![
                    "a deadlock: the owner waits for something else, not a mutex".into(),
                ],
                next_step: format!(
                    "Find why thread {} does not return from its wait (its line under THREADS), \
                     and why it holds mutex {addr:#x} while it waits.",
                    owner.tid
                ),
                ..Finding::default()
            },
            stuck_ms,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use hangscope_model::WaitObject;

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
            }],
            Some(6000),
        )
    }

    #[test]
    fn workers_behind_an_owner_stuck_in_pause() {
        let mut snap = base(100, "pool");
        snap.threads
            .push(thread(100, "pool", "pause", vec![], Some(7000)));
        for tid in 101..104 {
            snap.threads.push(waiter(tid, 100));
        }
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0].finding;
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
}
