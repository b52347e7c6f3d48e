//! The words of a wait on a pipe (`rules/pipe_wait.rs`).

use hangscope_model::Evidence;

use super::{how, thread, waiting_in};
use crate::facts::pipe_wait::PipeWait;
use crate::wording::duration;
use crate::words::Words;

pub(crate) fn words(f: &PipeWait) -> Words {
    let w = &f.waiter;
    let holders = f
        .other_ends
        .iter()
        .map(|p| format!("process {} ({}) fd {}", p.pid, p.name, p.fd))
        .collect::<Vec<_>>()
        .join(", ");
    let summary = if f.writing {
        format!(
            "{} has been blocked for at least {} in {} writing to a full pipe (fd {}): its read \
             end is held by {holders}, which does not read it.",
            thread(w),
            duration(f.stuck_ms),
            how(w),
            f.fd
        )
    } else {
        format!(
            "{} has waited at least {} in {} for data on a pipe (fd {}) whose write end is held \
             by {holders}: it waits for that process to write.",
            thread(w),
            duration(f.stuck_ms),
            how(w),
            f.fd
        )
    };
    let pid = f.pid;
    let mut evidence = vec![waiting_in(w)];
    for p in &f.other_ends {
        evidence.push(Evidence::new(
            "other end",
            format!(
                "process {} ({}) fd {}, {} end",
                p.pid,
                p.name,
                p.fd,
                p.access.as_deref().unwrap_or("unknown")
            ),
            format!(
                "/proc/{}/fd/{} -> {} (as /proc/{pid}/fd/{})",
                p.pid, p.fd, f.target, f.fd
            ),
        ));
    }
    let next_step = f
        .other_ends
        .first()
        .map(|p| {
            format!(
                "Look at process {} ({}): hangscope {}.",
                p.pid, p.name, p.pid
            )
        })
        .unwrap_or_default();
    Words {
        summary,
        evidence,
        ruled_out: vec![],
        next_step,
    }
}
