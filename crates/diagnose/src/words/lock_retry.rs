//! The words of a loop that retries a file lock another owner holds (`rules/lock_retry.rs`).

use hangscope_model::{Evidence, LockAccess, LockClass};

use super::thread_ref;
use crate::facts::lock_retry::{Blocking, Conflict, LockRange, LockRetry};
use crate::wording::duration;
use crate::words::Words;

/// Locks in the way quoted one by one in the evidence.
const LOCKS_QUOTED: usize = 4;

pub(crate) fn words(f: &LockRetry) -> Words {
    let path = f
        .path
        .as_ref()
        .map(|p| p.to_string())
        .unwrap_or_else(|| format!("inode {}", f.inode));
    // The first lock in the way speaks for the rest: most often the only one.
    let first = &f.blocking[0];
    let why = match first.conflict {
        Conflict::Write => format!("which holds {}", lock_text(&first.range)),
        Conflict::Upgrade => format!(
            "which holds {} that this process reads under too: it writes the file and waits \
             for that reader to finish",
            lock_text(&first.range)
        ),
    };
    let more = match f.blocking.len() - 1 {
        0 => String::new(),
        n => format!(" ({n} more in its way)"),
    };
    let summary = format!(
        "{} retries a lock on {path} every ~{} for at least {}; held by {}, {why}{more}.",
        thread_ref(&f.thread),
        duration(f.every_ms),
        duration(f.for_at_least_ms),
        owner(first)
    );
    let mut evidence = vec![Evidence::new(
        "retry loop",
        format!(
            "{} over the whole window{}",
            super::waiting_loop::loop_line(&f.looping),
            match f.other_loops {
                0 => String::new(),
                n => format!(" ({n} other threads loop too)"),
            }
        ),
        format!("/proc/{}/task/{}/syscall", f.pid, f.thread.tid),
    )];
    for b in f.blocking.iter().take(LOCKS_QUOTED) {
        evidence.push(Evidence::new(
            "lock in the way",
            format!("{}, {}", lock_text(&b.range), owner(b)),
            "/proc/locks",
        ));
    }
    evidence.push(Evidence::new(
        "its own locks on the file",
        if f.holds.is_empty() {
            "none".to_string()
        } else {
            f.holds.iter().map(lock_text).collect::<Vec<_>>().join("; ")
        },
        "/proc/locks",
    ));
    let grep = format!("grep {} /proc/locks", f.inode);
    let next_step = match f.holder() {
        Some((pid, name)) => {
            let who = match name {
                Some(n) => format!("process {pid} ({n})"),
                None => format!("process {pid}"),
            };
            format!(
                "Look at {who}, which holds the lock on {path}: what keeps it from letting go \
                 (hangscope {pid}; {grep})."
            )
        }
        None => format!("Find the holder: {grep}; lsof {path}."),
    };
    Words {
        summary,
        evidence,
        ruled_out: vec![
            "A blocked lock request: no thread waits in fcntl(F_SETLKW) or flock(), and \
             /proc/locks lists no request of this process (a lock tried without blocking \
             leaves none)."
                .to_string(),
        ],
        next_step,
    }
}

/// "process 769 (sqlite3)", "process 769", or the owner of an OFD lock, whom /proc/locks
/// does not name.
fn owner(b: &Blocking) -> String {
    match (b.pid, &b.name) {
        (Some(p), Some(n)) => format!("process {p} ({n})"),
        (Some(p), None) => format!("process {p}"),
        (None, _) => "another open file (an OFD lock, owner not named)".to_string(),
    }
}

/// "a write lock on byte 1073741825", "a read lock (flock) on the whole file".
fn lock_text(r: &LockRange) -> String {
    let kind = match r.access {
        LockAccess::Read => "a read lock",
        LockAccess::Write => "a write lock",
        LockAccess::None | LockAccess::Other => "a lock",
    };
    let class = match r.class {
        LockClass::Posix => "",
        LockClass::Ofd => " (OFD)",
        LockClass::Flock => " (flock)",
        LockClass::Lease | LockClass::Delegation | LockClass::Other => " (lease)",
    };
    let range = match (r.start, r.end) {
        (0, None) => "the whole file".to_string(),
        (s, None) => format!("bytes {s} to the end of the file"),
        (s, Some(e)) if s == e => format!("byte {s}"),
        (s, Some(e)) => format!("bytes {s}-{e}"),
    };
    format!("{kind}{class} on {range}")
}
