//! The words of a chain's hop that has no finding of its own: what its threads do.

use hangscope_model::{Snapshot, text};

/// What a process with no finding is doing: the waited-on thread's system call, else the main
/// thread's.
pub(crate) fn idle(snap: &Snapshot, tid: Option<i32>) -> String {
    let p = &snap.process;
    let thread = tid
        .and_then(|t| snap.thread(t))
        .or_else(|| snap.thread(p.pid))
        .or(snap.threads.first());
    let doing = thread.and_then(|t| t.syscall.as_ref().map(|s| (t, s)));
    match doing {
        Some((t, s)) if s.running => format!(
            "{} {} is not waiting on anything: thread {} is running.",
            p.name, p.pid, t.tid
        ),
        Some((t, s)) if !s.summary.is_empty() => format!(
            "{} {} has no finding of its own: thread {} waits in {}.",
            p.name,
            p.pid,
            t.tid,
            text::escape_cut(&s.summary, 120)
        ),
        _ => format!("{} {} has no finding of its own.", p.name, p.pid),
    }
}
