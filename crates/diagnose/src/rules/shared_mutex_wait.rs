//! Waiting for a process-shared mutex held in another process: threads wait in futex() for a
//! pthread mutex (or PI futex) in memory shared with another process, and the word's owner is a
//! thread of that process. The lock is released only when that thread unlocks it, so what it
//! does is the next hop of the chain; a cycle of such waits across processes is a deadlock the
//! chain closes.
//!
//! Facts from the threads collector: the futex word, its owner read from it (glibc's `__owner`,
//! or the PI word's TID), proven to be of the other process by that process mapping the same
//! file at the same offset (`WaitObject::Futex::owner_pid`, `shared_file`), and the window.

use std::collections::BTreeMap;

use hangscope_model::{Cause, Next, Severity, Subject, Text, Thread, WaitObject};

use crate::facts::shared_mutex_wait::SharedMutexWait;
use crate::facts::{RuleFacts, ThreadRef};
use crate::{Ctx, STUCK_MS};

/// The shared mutex a thread waits for and its owner elsewhere, when the thread is not moving.
fn waits_elsewhere(t: &Thread) -> Option<(u64, i32, i32, &Text, &str)> {
    if t.activity.as_ref().is_some_and(|a| a.progressed) || crate::waiters::not_a_mutex(t) {
        return None;
    }
    t.syscall.as_ref()?.waits_on.iter().find_map(|w| match w {
        WaitObject::Futex {
            addr,
            op,
            owner_tid: Some(tid),
            owner_pid: Some(pid),
            shared_file: Some(file),
            ..
        } => Some((*addr, *pid, *tid, file, op.as_str())),
        _ => None,
    })
}

fn blocked_ms(t: &Thread) -> u64 {
    t.activity
        .as_ref()
        .and_then(|a| a.blocked_at_least_ms)
        .unwrap_or(0)
}

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<SharedMutexWait> {
    let pid = ctx.snap.process.pid;
    let mut waiting: BTreeMap<(u64, i32, i32), Vec<&Thread>> = BTreeMap::new();
    let mut about: BTreeMap<(u64, i32, i32), (&Text, &str)> = BTreeMap::new();
    for t in &ctx.snap.threads {
        let Some((addr, owner_pid, owner_tid, file, op)) = waits_elsewhere(t) else {
            continue;
        };
        if owner_pid == pid || blocked_ms(t) < STUCK_MS {
            continue;
        }
        waiting
            .entry((addr, owner_pid, owner_tid))
            .or_default()
            .push(t);
        about.insert((addr, owner_pid, owner_tid), (file, op));
    }
    waiting
        .into_iter()
        .filter_map(|(key, waiters)| {
            let (file, op) = about.get(&key)?;
            let (mutex, owner_pid, owner_tid) = key;
            Some(SharedMutexWait {
                pid,
                mutex,
                file: (*file).clone(),
                op: op.to_string(),
                pi: op.contains("_PI"),
                owner_pid,
                owner_tid,
                stuck_ms: waiters.iter().map(|t| blocked_ms(t)).min().unwrap_or(0),
                waiters: waiters.iter().map(|t| ThreadRef::of(t)).collect(),
            })
        })
        .collect()
}

impl RuleFacts for SharedMutexWait {
    const RULE: &'static str = "shared_mutex_wait";

    fn cause(&self) -> Cause {
        Cause::LockWait
    }

    fn severity(&self) -> Severity {
        Severity::Cause
    }

    fn stuck_ms(&self) -> u64 {
        self.stuck_ms
    }

    /// The first waiter: the owner is not a thread of this snapshot.
    fn subject(&self) -> Subject {
        self.waiters
            .first()
            .map(ThreadRef::subject)
            .unwrap_or_default()
    }

    fn next(&self) -> Option<Next> {
        Some(Next::thread(self.owner_pid, self.owner_tid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use hangscope_model::{Finding, NextKind};

    fn find(ctx: &Ctx<'_>) -> Vec<Finding> {
        super::find(ctx).iter().map(crate::words::finding).collect()
    }

    fn waiter(tid: i32, owner: Option<i32>, blocked: u64) -> Thread {
        thread(
            tid,
            "waiter",
            "futex",
            vec![WaitObject::Futex {
                addr: 0x7f00_0000_0000,
                op: "FUTEX_LOCK_PI".into(),
                owner_tid: Some(801),
                other_waiters: vec![],
                waiters: 1,
                owner_pid: owner,
                shared_file: owner.map(|_| Text::from("/dev/shm/ledger")),
            }],
            Some(blocked),
        )
    }

    #[test]
    fn a_waiter_behind_an_owner_in_another_process() {
        let mut snap = base(700, "waiter");
        snap.threads.push(waiter(700, Some(800), 4000));
        let found = find(&Ctx::new(&snap));
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0];
        assert_eq!((f.cause, f.severity), (Cause::LockWait, Severity::Cause));
        assert_eq!(f.subject.tid, Some(700));
        assert_eq!(
            f.summary,
            "Thread 700 (waiter) has waited at least 4.0 s for process-shared mutex \
             0x7f0000000000 in /dev/shm/ledger (a priority-inheritance mutex), held by thread \
             801 of process 800: it is released only when that process unlocks it."
        );
        let next = f.next.as_ref().expect("next");
        assert_eq!(
            (next.kind, next.pid, next.tid),
            (NextKind::Thread, Some(800), Some(801))
        );
        assert_eq!(f.facts["owner_pid"], 800);
        assert_eq!(f.facts["file"], "/dev/shm/ledger");
    }

    #[test]
    fn an_owner_not_proven_elsewhere_or_a_short_wait_is_nothing() {
        let mut snap = base(700, "waiter");
        snap.threads.push(waiter(700, None, 4000));
        snap.threads.push(waiter(701, Some(800), 100));
        assert!(find(&Ctx::new(&snap)).is_empty());
    }
}
