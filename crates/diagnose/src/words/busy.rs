//! The words of a thread spinning on a CPU (`rules/busy.rs`).

use hangscope_model::Evidence;

use super::thread_ref;
use crate::facts::busy::Busy;
use crate::wording::duration;
use crate::words::Words;

pub(crate) fn words(f: &Busy) -> Words {
    let during = if f.window_ms > 0 {
        format!(" in {}", duration(f.window_ms))
    } else {
        String::new()
    };
    let tid = f.thread.tid;
    Words {
        summary: format!(
            "{} is spinning on a CPU: {} of CPU time{during}, no system calls and no \
             voluntary context switches.",
            thread_ref(&f.thread),
            duration(f.cpu_ms)
        ),
        evidence: vec![Evidence::new(
            "cpu",
            format!(
                "{} CPU, {} voluntary / {} involuntary switches",
                duration(f.cpu_ms),
                f.voluntary_switches,
                f.involuntary_switches
            ),
            format!("/proc/{}/task/{tid}/stat, sampled", f.pid),
        )],
        ruled_out: vec![],
        next_step: format!(
            "See where it spins: perf top -t {tid}, or a debugger backtrace of thread {tid}."
        ),
    }
}
