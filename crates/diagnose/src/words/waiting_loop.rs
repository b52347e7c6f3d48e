//! The words of a loop waiting while another thread is stuck (`rules/waiting_loop.rs`).

use hangscope_model::Evidence;

use super::thread_ref;
use crate::facts::waiting_loop::{Loop, WaitingLoop};
use crate::words::Words;

/// Names of the other looping threads shown in the summary, and loops quoted in the evidence.
const NAMES_SHOWN: usize = 4;
const LOOPS_QUOTED: usize = 5;

pub(crate) fn words(f: &WaitingLoop) -> Words {
    match f {
        WaitingLoop::One {
            pid,
            looping,
            likely_waits_for,
            ..
        } => {
            let waiting_for = match likely_waits_for {
                Some(stuck) => {
                    let who = if stuck.name.is_empty() {
                        format!("thread {}", stuck.tid)
                    } else {
                        format!("thread {} ({})", stuck.tid, stuck.name)
                    };
                    format!(", likely waiting for {who}: it waits, it is not the cause.")
                }
                None => ": a periodic wait, not the cause.".to_string(),
            };
            Words {
                summary: format!(
                    "{} wakes up in a loop ({}){waiting_for}",
                    thread_ref(&looping.thread),
                    loop_line(looping)
                ),
                evidence: vec![Evidence::new(
                    "loop",
                    loop_line(looping),
                    format!("/proc/{pid}/task/{}/syscall, sampled", looping.thread.tid),
                )],
                ruled_out: vec![],
                next_step: "None: it moves on once the stuck wait ends.".into(),
            }
        }
        WaitingLoop::Others { pid, loops } => {
            let mut names: Vec<String> = loops
                .iter()
                .map(|l| {
                    if l.thread.name.is_empty() {
                        l.thread.tid.to_string()
                    } else {
                        l.thread.name.to_string()
                    }
                })
                .collect();
            names.dedup();
            let shown = names
                .iter()
                .take(NAMES_SHOWN)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            let more = if names.len() > NAMES_SHOWN {
                ", …"
            } else {
                ""
            };
            Words {
                summary: format!(
                    "{} other threads wake up periodically ({shown}{more}): periodic waits, not \
                     the cause.",
                    loops.len()
                ),
                evidence: vec![Evidence::new(
                    "loops",
                    loops
                        .iter()
                        .take(LOOPS_QUOTED)
                        .map(|l| format!("{} {}: {}", l.thread.tid, l.thread.name, loop_line(l)))
                        .collect::<Vec<_>>()
                        .join("; "),
                    format!("/proc/{pid}/task/*/syscall, sampled"),
                )],
                ruled_out: vec![],
                next_step: "None: they move on by themselves.".into(),
            }
        }
    }
}

/// "clock_nanosleep 100 ms, ~10/s": the loop's call, period and rate.
pub(crate) fn loop_line(l: &Loop) -> String {
    match l.rate_per_s {
        Some(rate) => hangscope_model::units::looping(&l.looping, rate),
        None => l.looping.syscall.clone(),
    }
}
