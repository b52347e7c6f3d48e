//! File locks from /proc/locks, joined to the target's fds by inode.

use serde::{Deserialize, Serialize};

use crate::Text;

/// A file lock (or lease) involving the target, a line of /proc/locks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FileLock {
    /// The ordinal /proc/locks gives the lock; waiters ("->" lines) share the holder's.
    pub id: u64,
    /// The lock's kind, from /proc/locks: `posix` (fcntl), `flock`, `ofd` (open file description),
    /// `lease`, `delegation` or `other`.
    pub class: LockClass,
    /// What it locks for, from /proc/locks: `read`, `write`, `none` (UNLCK or NONE there, e.g. a
    /// lease being broken) or `other`.
    pub access: LockAccess,
    /// "ADVISORY" or "MANDATORY".
    #[serde(default)]
    pub mode: String,
    /// The owning process as /proc/locks names it; `None` for OFD locks (-1 there).
    #[serde(default)]
    pub pid: Option<i32>,
    /// "major:minor" of the device, as hex in /proc/locks.
    #[serde(default)]
    pub dev: String,
    /// The locked file's inode, from /proc/locks.
    pub inode: u64,
    /// First byte locked (0 for flock and leases, which cover the whole file).
    pub start: u64,
    /// Last byte; `None` is EOF.
    #[serde(default)]
    pub end: Option<u64>,
    /// True for a "->" line: this is a request blocked behind lock `id`.
    #[serde(default)]
    pub waiting: bool,
    /// The target's fd through which the lock is held or requested, when known.
    #[serde(default)]
    pub fd: Option<i32>,
    /// For a waiting request: the process that holds lock `id` (when /proc/locks names it).
    #[serde(default)]
    pub holder_pid: Option<i32>,
    /// The file's path, from the target's fd or the holder's, when known.
    #[serde(default)]
    pub path: Option<Text>,
    /// A lock another owner holds on a file the target has open: another process's, or an
    /// OFD lock held through none of the target's fds. `fd` is then the target's fd on the
    /// file, not one the lock is held through (since 1.5).
    #[serde(default, skip_serializing_if = "crate::is_false")]
    pub other_owner: bool,
    /// The name (comm) of the process `pid` names, for a lock another owner holds (since 1.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_name: Option<Text>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LockClass {
    Posix,
    Flock,
    Ofd,
    Lease,
    Delegation,
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LockAccess {
    Read,
    Write,
    None,
    #[serde(other)]
    Other,
}
