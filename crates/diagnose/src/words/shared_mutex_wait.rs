//! The words of threads waiting for a process-shared mutex held in another process
//! (`rules/shared_mutex_wait.rs`).

use hangscope_model::Evidence;
use hangscope_model::text::escape_cut;

use super::thread_ref;
use crate::facts::shared_mutex_wait::SharedMutexWait;
use crate::wording::duration;
use crate::words::Words;

/// Waiters named one by one in the evidence; the rest are "…".
const NAMED: usize = 5;

pub(crate) fn words(f: &SharedMutexWait) -> Words {
    let pid = f.pid;
    let (who, verb) = match f.waiters.as_slice() {
        [one] => (thread_ref(one), "has"),
        many => (format!("{} threads", many.len()), "have"),
    };
    let pi = f.pi;
    let kind = if pi {
        " (a priority-inheritance mutex)"
    } else {
        ""
    };
    let file = escape_cut(f.file.as_str(), 200);
    let names = f
        .waiters
        .iter()
        .take(NAMED)
        .map(|t| format!("{} {}", t.tid, t.name));
    let owner_from = if pi {
        "owner TID from the PI futex word"
    } else {
        "owner TID from the mutex word + 8"
    };
    Words {
        summary: format!(
            "{who} {verb} waited at least {} for process-shared mutex {:#x} in {file}{kind}, \
             held by thread {} of process {}: it is released only when that process unlocks it.",
            duration(f.stuck_ms),
            f.mutex,
            f.owner_tid,
            f.owner_pid,
        ),
        evidence: vec![
            Evidence::new(
                "mutex owner",
                format!("thread {} of process {}", f.owner_tid, f.owner_pid),
                format!(
                    "/proc/{pid}/task/*/syscall ({}); {owner_from}; /proc/{}/status Tgid",
                    f.op, f.owner_tid
                ),
            ),
            Evidence::new(
                "both map",
                file.clone(),
                format!(
                    "/proc/{pid}/maps and /proc/{}/maps, same inode and offset",
                    f.owner_pid
                ),
            ),
            Evidence::new(
                "waiting for the mutex",
                names.collect::<Vec<_>>().join(", ")
                    + if f.waiters.len() > NAMED { ", …" } else { "" },
                format!("/proc/{pid}/task/*/syscall"),
            ),
        ],
        ruled_out: vec![],
        next_step: format!(
            "Find why thread {} of process {} holds mutex {:#x} and does not unlock it: \
             `hangscope {}` says what that thread does.",
            f.owner_tid, f.owner_pid, f.mutex, f.owner_pid
        ),
    }
}
