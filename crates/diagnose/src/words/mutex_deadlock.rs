//! The words of a mutex deadlock (`rules/mutex_deadlock.rs`).

use hangscope_model::Evidence;

use super::{thread_ref, thread_short};
use crate::facts::mutex_deadlock::MutexDeadlock;
use crate::wording::duration;
use crate::words::Words;

pub(crate) fn words(f: &MutexDeadlock) -> Words {
    let pid = f.pid;
    let links: Vec<String> = f
        .cycle
        .iter()
        .map(|l| {
            format!(
                "thread {} waits for mutex {:#x} held by thread {}",
                thread_short(&l.thread),
                l.mutex,
                l.owner_tid
            )
        })
        .collect();
    let summary = match f.cycle.as_slice() {
        [one] => format!(
            "{} is deadlocked on itself: it waits for a mutex it already holds (a \
             non-recursive lock taken twice), blocked for at least {}.",
            thread_ref(&one.thread),
            duration(f.stuck_ms)
        ),
        [init @ .., last] => format!(
            "Threads {} and {} are deadlocked: {}. None of them has run for at least {}; \
             nothing outside the cycle can end it.",
            init.iter()
                .map(|l| thread_short(&l.thread))
                .collect::<Vec<_>>()
                .join(", "),
            thread_short(&last.thread),
            links.join(", "),
            duration(f.stuck_ms)
        ),
        [] => String::new(),
    };
    let evidence = f
        .cycle
        .iter()
        .map(|l| {
            Evidence::new(
                format!("thread {}", l.thread.tid),
                format!(
                    "futex wait on {:#x}, owner thread {}, blocked ≥{}",
                    l.mutex,
                    l.owner_tid,
                    duration(l.blocked_ms)
                ),
                format!(
                    "/proc/{pid}/task/{}/syscall; owner from the mutex word + 8",
                    l.thread.tid
                ),
            )
        })
        .collect();
    Words {
        summary,
        evidence,
        ruled_out: vec!["lock contention: none of the threads moved during the window".into()],
        next_step: format!(
            "See where each thread took the mutex the other wants: gdb -p {pid} -batch -ex \
             'thread apply all bt' (this stops the process briefly), then make the code take \
             the locks in one order."
        ),
    }
}
