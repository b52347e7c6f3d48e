//! The facts of the `lock_wait` rule (`rules/lock_wait.rs`): what it found, as data. The rule
//! decides and sets them; `words/lock_wait.rs` says them.

use hangscope_model::LockAccess;
use hangscope_model::Text;
use serde::Serialize;

use crate::facts::ThreadRef;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct LockWait {
    pub pid: i32,
    pub thread: ThreadRef,
    /// The call it waits in, e.g. "flock".
    pub syscall: String,
    /// The fd it locks through; none for an open() waiting for a lease to be given up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fd: Option<i32>,
    /// The lock is a lease (fcntl F_SETLEASE): the call is an open() or truncate() of the
    /// file, waiting until the holder gives the lease up or the kernel's lease-break-time ends.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub lease: bool,
    /// Blocked in the call at least this long, measured over the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_ms: Option<u64>,
    /// The locked file: /proc/locks' path, else the fd's target; `None` when neither is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<Text>,
    pub inode: u64,
    /// The blocked request, as /proc/locks lists it.
    pub access: LockAccess,
    pub start: u64,
    /// `None`: to the end of the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<u64>,
    /// The id of the lock it is blocked behind.
    pub lock_id: u64,
    pub holder: LockHolder,
}

/// Who holds the lock the request waits behind.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum LockHolder {
    /// This same process, through another fd or thread: it waits for itself.
    ThisProcess,
    Process {
        pid: i32,
    },
    /// /proc/locks does not name it.
    Unknown,
}
