//! Whether a look needs /proc/locks. Every first read of it waits for an RCU grace period
//! (`locks::start`: 8–20 ms measured here), as long as a small target's whole look should take;
//! so a one-look run (`--window 0`) of a target with few fds and threads reads it only when
//! something the table answers is there:
//! - a thread waits in a lock call (flock, fcntl) or in `__break_lease` (an open or truncate
//!   waiting for a lease to be given up): `lock_wait`'s request line and its holder. Peeked at
//!   the start (each thread's syscall and wchan), so the read runs beside the rest; a thread
//!   the peek missed is seen by the threads' look, and the table is read then;
//! - the target holds a lock: its fdinfo `lock:` lines (Linux 3.14+, so every supported
//!   kernel) list each lock held through that open file description — flock, POSIX, OFD and
//!   lease — which is what the table's requests of other processes wait behind; a file whose
//!   fdinfo was not read counts as holding one.
//!
//! Left out without it: locks of other owners on files the target has open, which hold no
//! thread of it (none waits in a lock call); only `lock_retry` weighs them, and it needs the
//! sampling window, which reads the table from the start. Everywhere else — a window, a large
//! fd table (whose fdinfo is read only where the table says a lock may be), many threads — the
//! table is read from the start as before. [`ENV`] forces that everywhere, for comparing.

use hangscope_model::{Fd, Thread, WaitObject};

use crate::threads::syscall::{Arch, name};
use crate::{Options, ProcRoot};

/// Set, /proc/locks is read from the start of every look, and the logs' lease check uses it
/// rather than fdinfo's `lock:` lines: the behaviour before they were trusted.
pub const ENV: &str = "HANGSCOPE_NO_FDINFO_LOCKS";

/// Threads whose calls are peeked at, at most; a target with more is read from the start.
const PEEK_THREADS: usize = 64;

pub fn forced() -> bool {
    std::env::var_os(ENV).is_some()
}

/// Whether /proc/locks is read from the start of the look: see the module header.
pub fn from_start(root: &ProcRoot, pid: i32, opts: &Options) -> bool {
    if forced() || !opts.window.is_zero() {
        return true;
    }
    // FDSize is the fd table's size (at least the highest fd + 1), on every kernel.
    let Some((fd_size, threads)) = table_sizes(root, pid) else {
        return true;
    };
    fd_size > crate::fd::EVERY_FILE_UPTO as u64 || threads > PEEK_THREADS || threads_wait(root, pid)
}

fn table_sizes(root: &ProcRoot, pid: i32) -> Option<(u64, usize)> {
    let status = std::fs::read_to_string(root.pid(pid).join("status")).ok()?;
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some((field("FDSize:")?, field("Threads:")? as usize))
}

/// The calls `lock_wait` takes for a lock request: flock, and fcntl, whose lock commands are
/// the only ones that block.
fn is_lock_call(name: &str) -> bool {
    matches!(name, "flock" | "fcntl" | "fcntl64")
}

/// A peek at every thread's call and wchan (a list it cannot read counts as waiting).
fn threads_wait(root: &ProcRoot, pid: i32) -> bool {
    let Ok(tasks) = std::fs::read_dir(root.pid(pid).join("task")) else {
        return true;
    };
    tasks.flatten().take(PEEK_THREADS + 1).any(|t| {
        let dir = t.path();
        let nr = std::fs::read_to_string(dir.join("syscall"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<i64>().ok());
        nr.is_some_and(|nr| is_lock_call(&name(Arch::host(), nr)))
            || std::fs::read_to_string(dir.join("wchan")).is_ok_and(|w| w.trim() == "__break_lease")
    })
}

/// After the fds: the target holds a lock, or may (a file whose fdinfo is unread).
pub fn by_fds(fds: &[Fd]) -> bool {
    fds.iter().any(|f| match &f.info {
        Some(info) => !info.locks.is_empty(),
        None => f.kind.is_path(),
    })
}

/// After the threads' look: a thread waits for a lock or a lease, as `lock_wait` tells it.
pub fn by_threads(threads: &[Thread]) -> bool {
    threads.iter().any(|t| {
        let locking = t.syscall.as_ref().is_some_and(|sc| {
            !sc.running
                && (is_lock_call(&sc.name)
                    || sc
                        .waits_on
                        .iter()
                        .any(|w| matches!(w, WaitObject::Lock { .. })))
        });
        locking || t.wchan.as_deref() == Some("__break_lease")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fd::classify;
    use hangscope_model::FdInfo;

    #[test]
    fn a_held_lock_or_an_unread_file_needs_the_table() {
        let mut file = classify(3, "/srv/app.db");
        assert!(by_fds(std::slice::from_ref(&file)), "fdinfo unread");
        file.info = Some(Box::new(FdInfo::default()));
        assert!(!by_fds(std::slice::from_ref(&file)), "read, no lock line");
        file.info = Some(Box::new(FdInfo {
            locks: vec!["1: FLOCK  ADVISORY  WRITE 100 fe:00:11 0 EOF".into()],
            ..FdInfo::default()
        }));
        assert!(by_fds(std::slice::from_ref(&file)));
        // A socket holds no lock the table's join would match.
        assert!(!by_fds(&[classify(4, "socket:[77]")]));
    }
}
