//! The facts of the `lock_retry` rule (`rules/lock_retry.rs`): what it found, as data. The rule
//! decides and sets them; `words/lock_retry.rs` says them.

use hangscope_model::{FileLock, LockAccess, LockClass, Text};
use serde::Serialize;

use crate::facts::ThreadRef;
use crate::facts::waiting_loop::Loop;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct LockRetry {
    pub pid: i32,
    pub thread: ThreadRef,
    /// The loop it was seen in over the window.
    pub looping: Loop,
    /// How often it retries: its sleep, or the loop's rate where the sleep is absolute or
    /// unread.
    pub every_ms: u64,
    /// Seen looping this long: the sampling window.
    pub for_at_least_ms: u64,
    /// Its fd on the file.
    pub fd: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<Text>,
    pub inode: u64,
    /// The locks it holds on the file itself.
    pub holds: Vec<LockRange>,
    /// The locks of other owners in its way.
    pub blocking: Vec<Blocking>,
    /// Other threads of the process in a short-sleep loop too: which of them retries is not
    /// known, and the first (the main thread when it loops) is named.
    #[serde(skip_serializing_if = "is_zero")]
    pub other_loops: u32,
}

pub(crate) fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct LockRange {
    pub class: LockClass,
    pub access: LockAccess,
    pub start: u64,
    /// `None`: to the end of the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<u64>,
}

impl LockRange {
    pub(crate) fn of(l: &FileLock) -> Self {
        LockRange {
            class: l.class,
            access: l.access,
            start: l.start,
            end: l.end,
        }
    }
}

/// A lock of another owner in the way, and why.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Blocking {
    /// Its owner, as /proc/locks names it; `None` for an OFD lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Text>,
    #[serde(flatten)]
    pub range: LockRange,
    pub conflict: Conflict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Conflict {
    /// A write lock: no request on its range can be granted.
    Write,
    /// A read lock over a range this process reads under too, while it writes elsewhere in the
    /// file: the upgrade it retries waits for this reader.
    Upgrade,
}

impl LockRetry {
    /// The process to look at: the first named owner of a lock in the way.
    pub fn holder(&self) -> Option<(i32, Option<&Text>)> {
        self.blocking
            .iter()
            .find_map(|b| Some((b.pid?, b.name.as_ref())))
    }
}
