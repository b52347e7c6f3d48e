//! The facts of the `shared_mutex_wait` rule (`rules/shared_mutex_wait.rs`): what it found, as data. The rule
//! decides and sets them; `words/shared_mutex_wait.rs` says them.

use hangscope_model::Text;
use serde::Serialize;

use crate::facts::ThreadRef;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct SharedMutexWait {
    pub pid: i32,
    /// The futex word's address in this process.
    pub mutex: u64,
    /// The file both processes map the mutex from.
    pub file: Text,
    /// The futex operation, e.g. "FUTEX_LOCK_PI" (a priority-inheritance mutex) or
    /// "FUTEX_WAIT".
    pub op: String,
    /// The operation is a priority-inheritance one (FUTEX_LOCK_PI, FUTEX_LOCK_PI2).
    pub pi: bool,
    pub owner_pid: i32,
    pub owner_tid: i32,
    /// The threads of this process waiting for it, each blocked at least `STUCK_MS`.
    pub waiters: Vec<ThreadRef>,
    /// The shortest of their waits.
    pub stuck_ms: u64,
}
