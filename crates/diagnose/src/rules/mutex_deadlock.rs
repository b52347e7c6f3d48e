//! Mutex deadlock: threads that each wait in futex() for a mutex another of them holds, in a
//! cycle (two threads taking two locks in opposite orders, or one thread re-locking a
//! non-recursive mutex it holds). Nothing outside the cycle can end it.
//!
//! Facts from the threads collector: the futex word each thread waits on and, for a glibc
//! pthread mutex, its owner's TID (read from the target's memory at the futex address + 8); and
//! the sampling window, which must show the threads did not move (a contended lock that changes
//! hands is not a deadlock).

use std::collections::HashMap;

use hangscope_model::{Cause, Next, Severity, Subject, Thread};

use crate::facts::mutex_deadlock::{CycleLink, MutexDeadlock};
use crate::facts::{RuleFacts, ThreadRef};
use crate::{Ctx, STUCK_MS};

/// The mutex a thread waits for, and its owner, when the thread is not moving.
fn waits_for(t: &Thread) -> Option<(u64, i32)> {
    if t.activity.as_ref().is_some_and(|a| a.progressed) {
        return None;
    }
    crate::waiters::mutex_wait(t)
}

fn blocked_ms(t: &Thread) -> u64 {
    t.activity
        .as_ref()
        .and_then(|a| a.blocked_at_least_ms)
        .or(t.last_ran_ms_ago.map(|ms| ms as u64))
        .unwrap_or(0)
}

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<MutexDeadlock> {
    let threads: HashMap<i32, &Thread> = ctx.snap.threads.iter().map(|t| (t.tid, t)).collect();
    let edges: HashMap<i32, (u64, i32)> = ctx
        .snap
        .threads
        .iter()
        .filter_map(|t| Some((t.tid, waits_for(t)?)))
        .collect();
    let mut reported: Vec<i32> = Vec::new();
    let mut out = Vec::new();
    let mut starts: Vec<i32> = edges.keys().copied().collect();
    starts.sort_unstable();
    for start in starts {
        if reported.contains(&start) {
            continue;
        }
        // Follow "waits for the owner of" from `start`; each thread has one such edge, so the
        // walk either leaves the graph or comes back to a thread already on the path.
        let mut path: Vec<i32> = vec![start];
        let mut at = start;
        let cycle = loop {
            let Some(&(_, owner)) = edges.get(&at) else {
                break None;
            };
            if let Some(pos) = path.iter().position(|&t| t == owner) {
                break Some(path[pos..].to_vec());
            }
            if path.len() > threads.len() {
                break None;
            }
            path.push(owner);
            at = owner;
        };
        let Some(mut cycle) = cycle else { continue };
        if cycle.iter().any(|t| reported.contains(t)) {
            continue;
        }
        // Start the story at the lowest TID, so the same cycle always reads the same.
        if let Some(min_at) = cycle
            .iter()
            .enumerate()
            .min_by_key(|(_, t)| **t)
            .map(|(i, _)| i)
        {
            cycle.rotate_left(min_at);
        }
        let members: Vec<&Thread> = cycle
            .iter()
            .filter_map(|t| threads.get(t).copied())
            .collect();
        if members.len() != cycle.len() {
            continue;
        }
        let stuck_ms = members.iter().map(|t| blocked_ms(t)).min().unwrap_or(0);
        if stuck_ms < STUCK_MS && members.iter().all(|t| t.activity.is_none()) {
            // One look and no sign of how long: could be a lock changing hands right now.
            continue;
        }
        reported.extend(&cycle);
        out.push(MutexDeadlock {
            pid: ctx.snap.process.pid,
            cycle: members
                .iter()
                .map(|t| {
                    let (mutex, owner_tid) = edges.get(&t.tid).copied().unwrap_or_default();
                    CycleLink {
                        thread: ThreadRef::of(t),
                        mutex,
                        owner_tid,
                        blocked_ms: blocked_ms(t),
                    }
                })
                .collect(),
            stuck_ms,
        });
    }
    out
}

impl RuleFacts for MutexDeadlock {
    const RULE: &'static str = "mutex_deadlock";

    fn cause(&self) -> Cause {
        Cause::Deadlock
    }

    /// Nothing outside the cycle can end it.
    fn severity(&self) -> Severity {
        Severity::Cause
    }

    fn stuck_ms(&self) -> u64 {
        self.stuck_ms
    }

    fn subject(&self) -> Subject {
        self.cycle
            .first()
            .map(|l| l.thread.subject())
            .unwrap_or_default()
    }

    fn next(&self) -> Option<Next> {
        let first = self.cycle.first()?;
        Some(Next::thread(self.pid, first.owner_tid))
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

    fn futex_waiter(tid: i32, name: &str, addr: u64, owner: i32, blocked: u64) -> Thread {
        thread(
            tid,
            name,
            "futex",
            vec![WaitObject::Futex {
                addr,
                op: "FUTEX_WAIT_PRIVATE".into(),
                owner_tid: Some(owner),
                other_waiters: vec![],
                waiters: 1,
                owner_pid: None,
                shared_file: None,
            }],
            Some(blocked),
        )
    }

    fn lock_cycle() -> Snapshot {
        let mut snap = base(500, "bank");
        snap.threads
            .push(futex_waiter(502, "transfer-b", 0x7f00_0040, 501, 3000));
        snap.threads
            .push(futex_waiter(501, "transfer-a", 0x7f00_0010, 502, 3200));
        snap
    }

    #[test]
    fn two_threads_in_a_lock_cycle() {
        let snap = lock_cycle();
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0];
        assert_eq!((f.cause, f.severity), (Cause::Deadlock, Severity::Cause));
        assert_eq!(f.subject.tid, Some(501));
        assert_eq!(
            f.summary,
            "Threads 501 (transfer-a) and 502 (transfer-b) are deadlocked: thread 501 \
             (transfer-a) waits for mutex 0x7f000010 held by thread 502, thread 502 \
             (transfer-b) waits for mutex 0x7f000040 held by thread 501. None of them has run \
             for at least 3.0 s; nothing outside the cycle can end it."
        );
        assert_eq!(f.evidence.len(), 2);
    }

    #[test]
    fn a_chain_that_ends_is_not_a_deadlock() {
        let mut snap = base(500, "pool");
        snap.threads.push(futex_waiter(501, "w1", 0x10, 502, 3000));
        snap.threads
            .push(thread(502, "holder", "poll", vec![], Some(3000)));
        assert!(find(&Ctx::new(&snap)).is_empty());
    }

    #[test]
    fn moving_threads_are_contention_not_deadlock() {
        let mut snap = base(500, "bank");
        snap.threads.push(futex_waiter(501, "a", 0x10, 502, 3000));
        snap.threads.push(futex_waiter(502, "b", 0x20, 501, 3000));
        if let Some(a) = snap.threads[1].activity.as_mut() {
            a.progressed = true;
        }
        assert!(find(&Ctx::new(&snap)).is_empty());
    }

    #[test]
    fn relocking_a_mutex_it_holds() {
        let mut snap = base(500, "app");
        snap.threads.push(futex_waiter(500, "app", 0x10, 500, 5000));
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1);
        assert!(
            found[0].summary.starts_with(
                "Thread 500 (app) is deadlocked on itself: it waits for a mutex it already holds"
            ),
            "{}",
            found[0].summary
        );
    }

    #[test]
    fn facts_are_the_cycle_and_next_is_the_first_owner() {
        let f = &find(&Ctx::new(&lock_cycle()))[0];
        assert_eq!(f.rule, "mutex_deadlock");
        assert_eq!(f.facts["stuck_ms"], 3000);
        assert_eq!(
            f.facts["cycle"],
            serde_json::json!([
                {"tid": 501, "name": "transfer-a", "mutex": 0x7f00_0010_u64, "owner_tid": 502,
                 "blocked_ms": 3200},
                {"tid": 502, "name": "transfer-b", "mutex": 0x7f00_0040_u64, "owner_tid": 501,
                 "blocked_ms": 3000},
            ])
        );
        let next = f.next.as_ref().unwrap();
        assert_eq!(
            (next.kind, next.pid, next.tid),
            (NextKind::Thread, Some(500), Some(502))
        );
    }
}
