//! The facts of the `mutex_deadlock` rule (`rules/mutex_deadlock.rs`): what it found, as data. The rule
//! decides and sets them; `words/mutex_deadlock.rs` says them.

use serde::Serialize;

use crate::facts::ThreadRef;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct MutexDeadlock {
    pub pid: i32,
    /// The threads of the cycle, from the lowest TID, each waiting for the next one's mutex
    /// (the last for the first's). One thread: it re-locks a mutex it holds.
    pub cycle: Vec<CycleLink>,
    /// The shortest of their waits.
    pub stuck_ms: u64,
}

/// A thread of the cycle and the mutex it waits for.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CycleLink {
    #[serde(flatten)]
    pub thread: ThreadRef,
    /// The futex word's address.
    pub mutex: u64,
    /// The mutex's owner, read from the mutex word + 8.
    pub owner_tid: i32,
    /// Not run for at least this long.
    pub blocked_ms: u64,
}
