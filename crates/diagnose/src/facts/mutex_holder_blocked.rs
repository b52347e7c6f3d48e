//! The facts of the `mutex_holder_blocked` rule (`rules/mutex_holder_blocked.rs`): what it found, as data. The rule
//! decides and sets them; `words/mutex_holder_blocked.rs` says them.

use serde::Serialize;

use crate::facts::ThreadRef;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct MutexHolderBlocked {
    pub pid: i32,
    /// The futex word's address.
    pub mutex: u64,
    pub owner: MutexOwner,
    /// How the owner is known.
    pub owner_from: OwnerFrom,
    /// The threads waiting for the mutex, each blocked at least `STUCK_MS`.
    pub waiters: Vec<ThreadRef>,
    /// The shortest of their waits.
    pub stuck_ms: u64,
}

/// The thread that holds the mutex, and the wait it is blocked in.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MutexOwner {
    #[serde(flatten)]
    pub thread: ThreadRef,
    /// Its state letter, e.g. "S".
    pub state: String,
    /// The syscall it is in; `None` when its syscall was not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syscall: Option<String>,
    /// The call as strace shows it; empty when not decoded.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub call: String,
    pub blocked_ms: u64,
}

/// Where the owner comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OwnerFrom {
    /// The mutex word names it (glibc's `__owner`, a PI futex's value).
    LockWord,
    /// The word names none (a Rust mutex): the owner is the one other thread of the process
    /// blocked since before the wait began, outside any lock or futex wait.
    OnlyThreadBlockedBefore,
}
