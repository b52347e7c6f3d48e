//! The words of a wait for a file lock (`rules/lock_wait.rs`).

use hangscope_model::{Evidence, LockAccess};

use super::thread_ref;
use crate::facts::lock_wait::{LockHolder, LockWait};
use crate::wording::{call, duration};
use crate::words::Words;

pub(crate) fn words(f: &LockWait) -> Words {
    let path = f
        .path
        .as_ref()
        .map(|p| p.to_string())
        .unwrap_or_else(|| format!("inode {}", f.inode));
    let kind = match f.access {
        LockAccess::Read => "read lock",
        LockAccess::Write => "write lock",
        _ => "lock",
    };
    let (holder, next_step) = match f.holder {
        LockHolder::ThisProcess => (
            "held by this same process through another fd or thread: it waits for itself"
                .to_string(),
            "Find the code that takes the lock twice; the process cannot go on without a \
             restart."
                .to_string(),
        ),
        LockHolder::Process { pid: h } => (
            format!("held by process {h}"),
            format!(
                "Look at process {h}: why it holds the lock on {path} (hangscope {h}; \
                 grep {} /proc/locks).",
                f.inode
            ),
        ),
        LockHolder::Unknown => (
            "held by a process /proc/locks does not name".to_string(),
            format!(
                "Find the holder: grep {} /proc/locks; lsof {path}.",
                f.inode
            ),
        ),
    };
    let waited = match f.blocked_ms {
        Some(ms) => format!("has waited {} in", duration(ms)),
        None => "waits in".into(),
    };
    if f.lease {
        return lease_words(f, &path, &waited);
    }
    Words {
        summary: format!(
            "{} {waited} {} for a {kind} on {path}, {holder}.",
            thread_ref(&f.thread),
            call(&f.syscall)
        ),
        evidence: vec![Evidence::new(
            "lock",
            format!(
                "request for {kind} {}-{} blocked behind lock {}",
                f.start,
                f.end.map(|e| e.to_string()).unwrap_or_else(|| "EOF".into()),
                f.lock_id
            ),
            "/proc/locks",
        )],
        ruled_out: vec![],
        next_step,
    }
}

/// An open() or truncate() waiting for a lease to be given up: the holder was told (SIGIO, or
/// the signal it chose with F_SETSIG) and has not released it.
fn lease_words(f: &LockWait, path: &str, waited: &str) -> Words {
    let (holder, next_step) = match f.holder {
        LockHolder::Process { pid: h } => (
            format!("process {h}"),
            format!(
                "Look at process {h}: it was told to give up its lease on {path} and has not \
                 (hangscope {h}; grep {} /proc/locks).",
                f.inode
            ),
        ),
        LockHolder::ThisProcess => (
            "this same process".to_string(),
            "Find the code that opens a file this process holds a lease on.".to_string(),
        ),
        LockHolder::Unknown => (
            "a process /proc/locks does not name".to_string(),
            format!("Find the holder: grep {} /proc/locks.", f.inode),
        ),
    };
    Words {
        summary: format!(
            "{} {waited} {} for {holder} to give up its lease on {path}: the call goes on when \
             it does, or when the kernel's lease-break-time ends (/proc/sys/fs/lease-break-time).",
            thread_ref(&f.thread),
            call(&f.syscall)
        ),
        evidence: vec![Evidence::new(
            "lock",
            format!("lease break blocked behind lease {}", f.lock_id),
            "/proc/locks",
        )],
        ruled_out: vec![],
        next_step,
    }
}
