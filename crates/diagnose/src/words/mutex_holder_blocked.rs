//! The words of threads waiting for a mutex whose owner is blocked
//! (`rules/mutex_holder_blocked.rs`).

use hangscope_model::Evidence;

use super::thread_ref;
use crate::facts::mutex_holder_blocked::{MutexHolderBlocked, OwnerFrom};
use crate::wording::{call, duration};
use crate::words::Words;

/// Waiters named one by one in the evidence; the rest are "…".
const NAMED: usize = 5;

pub(crate) fn words(f: &MutexHolderBlocked) -> Words {
    let owner = &f.owner;
    let addr = f.mutex;
    let pid = f.pid;
    let owner_wait = match &owner.syscall {
        Some(_) if !owner.call.is_empty() => owner.call.clone(),
        Some(name) if !name.is_empty() => call(name),
        _ => format!("state {}", owner.state),
    };
    let (who, verb) = match f.waiters.as_slice() {
        [one] => (thread_ref(one), "has"),
        many => (format!("{} threads", many.len()), "have"),
    };
    let owner_name = if owner.thread.name.is_empty() {
        format!("thread {}", owner.thread.tid)
    } else {
        format!("thread {} ({})", owner.thread.tid, owner.thread.name)
    };
    let owner_call = owner
        .syscall
        .as_deref()
        .map(call)
        .unwrap_or_else(|| "the kernel".into());
    let names = f
        .waiters
        .iter()
        .take(NAMED)
        .map(|t| format!("{} {}", t.tid, t.name));
    let (summary, owner_source) = match f.owner_from {
        OwnerFrom::LockWord => (
            format!(
                "{who} {verb} waited at least {} for mutex {addr:#x}, held by {owner_name}, \
                 which has itself been blocked for at least {} in {owner_call}: the lock is \
                 released only when that wait ends.",
                duration(f.stuck_ms),
                duration(owner.blocked_ms),
            ),
            "owner from the mutex word + 8",
        ),
        OwnerFrom::OnlyThreadBlockedBefore => (
            format!(
                "{who} {verb} waited at least {} for mutex {addr:#x}, most likely held by \
                 {owner_name}, the only other thread blocked since before that wait, for at \
                 least {} in {owner_call}: the lock is released only when that wait ends. \
                 (This mutex's word records no owner, as a Rust one's does not.)",
                duration(f.stuck_ms),
                duration(owner.blocked_ms),
            ),
            "owner inferred: the mutex word records none; the only thread blocked longer, \
             outside a futex wait",
        ),
    };
    Words {
        summary,
        evidence: vec![
            Evidence::new(
                "owner waits in",
                owner_wait,
                format!("/proc/{pid}/task/{}/syscall", owner.thread.tid),
            ),
            Evidence::new(
                "waiting for the mutex",
                names.collect::<Vec<_>>().join(", ")
                    + if f.waiters.len() > NAMED { ", …" } else { "" },
                format!("/proc/{pid}/task/*/syscall; {owner_source}"),
            ),
        ],
        ruled_out: vec!["a deadlock: the owner waits for something else, not a mutex".into()],
        next_step: format!(
            "Find why thread {} does not return from its wait (its line under THREADS), and \
             why it holds mutex {addr:#x} while it waits.",
            owner.thread.tid
        ),
    }
}
