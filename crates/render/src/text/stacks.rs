//! User-space stacks under the THREADS lines: a thread's code path on one line, or (`-v`) its
//! frames one per line; a stack several threads share is printed once with their count.

use std::fmt::Write;

use hangscope_model::{Snapshot, Thread, UserStack};

use super::Style;

/// Frames on the one-line path.
const PATH_FRAMES: usize = 4;
/// Frames listed with `-v`, per distinct stack.
const LISTED_FRAMES: usize = 64;

/// The stacks of `members` (one thread, or a group with one wait), under their line.
pub(super) fn under(out: &mut String, members: &[&Thread], verbose: bool, st: &Style) {
    runtime_line(out, members, st);
    // Each distinct stack, how many threads have it, and the longest stop among them.
    let mut distinct: Vec<(&UserStack, usize, Option<u64>)> = Vec::new();
    for t in members {
        let Some(s) = t.user_stack.as_ref().filter(|s| !s.frames.is_empty()) else {
            continue;
        };
        match distinct.iter_mut().find(|(d, ..)| d.frames == s.frames) {
            Some((_, n, us)) => {
                *n += 1;
                *us = (*us).max(s.stopped_us);
            }
            None => distinct.push((s, 1, s.stopped_us)),
        }
    }
    for (s, n, us) in distinct {
        let count = if members.len() > 1 {
            format!("{n} × ")
        } else {
            String::new()
        };
        let stop = match us {
            Some(us) if n > 1 => format!("  (stopped ≤{us} µs)"),
            Some(us) => format!("  (stopped {us} µs)"),
            None => String::new(),
        };
        if verbose {
            let _ = writeln!(
                out,
                "          {}",
                st.dim(&format!("{count}user stack:{stop}"))
            );
            for f in s.frames.iter().take(LISTED_FRAMES) {
                let inl = if f.inlined { " (inlined)" } else { "" };
                let _ = writeln!(
                    out,
                    "            {}",
                    st.dim(&format!("{}{inl}", st.show(&f.short())))
                );
            }
            if let Some(why) = &s.incomplete {
                let _ = writeln!(
                    out,
                    "            {}",
                    st.dim(&format!("(stopped: {})", st.show(why)))
                );
            }
        } else {
            let path: Vec<String> = s.path(PATH_FRAMES).iter().map(|f| st.show(f)).collect();
            if !path.is_empty() {
                let _ = writeln!(
                    out,
                    "          {}",
                    st.dim(&format!("{count}from {}{stop}", path.join(" ← ")))
                );
            }
        }
    }
}

/// What the threads are to the managed runtime, when they all are the same thing: "Python:
/// worker (deadlock.py:5) ← run (threading.py:982)", "Java thread, 3 JIT-compiled frames".
pub(super) fn runtime_line(out: &mut String, members: &[&Thread], st: &Style) {
    let Some(first) = members.first().and_then(|t| t.runtime.as_ref()) else {
        return;
    };
    if !members
        .iter()
        .all(|t| t.runtime.as_ref().is_some_and(|r| r.role == first.role))
    {
        return;
    }
    let mut line = format!("runtime: {}", st.show(&first.role));
    if let [one] = members {
        let r = one.runtime.as_ref().unwrap_or(first);
        if r.jit_frames > 0 {
            let _ = write!(
                line,
                ", {} JIT-compiled frame{} (no module)",
                r.jit_frames,
                if r.jit_frames == 1 { "" } else { "s" }
            );
        }
        if !r.frames.is_empty() {
            let path: Vec<String> = r
                .frames
                .iter()
                .take(PATH_FRAMES)
                .map(|f| st.show(f))
                .collect();
            let _ = write!(line, ": {}", path.join(" ← "));
        }
    }
    let _ = writeln!(out, "          {}", st.dim(&line));
}

/// "stopped 3 threads for at most 85 µs each, 190 µs in total" (`--stacks=stop`), or `None`
/// when no thread was stopped.
pub(super) fn stop_summary(snap: &Snapshot) -> Option<String> {
    let stops: Vec<u64> = snap
        .threads
        .iter()
        .filter_map(|t| t.user_stack.as_ref()?.stopped_us)
        .collect();
    let most = stops.iter().max()?;
    let n = stops.len();
    Some(format!(
        "stopped {n} thread{} for at most {most} µs each, {} µs in total",
        if n == 1 { "" } else { "s" },
        stops.iter().sum::<u64>()
    ))
}
