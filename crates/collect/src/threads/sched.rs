//! /proc/PID/task/TID/sched: the scheduler's view of one thread (kernel/sched/debug.c,
//! `proc_sched_show_task`; present with CONFIG_SCHED_DEBUG). Parsed by hand: procfs-core reads
//! `schedstat` but not this file.
//!
//! Times are printed by `SPLIT_NS` as milliseconds with six decimals. `se.exec_start` is the
//! runqueue clock when the thread last started running; it follows CLOCK_MONOTONIC (checked on
//! Linux 6.18: a thread sleeping since t shows exec_start ≈ t in ms of CLOCK_MONOTONIC), so one
//! read tells how long a blocked thread has not run.

/// The fields hangscope uses.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sched {
    /// When the thread last ran, ms on the CPU's task clock as the file gives it; the threads
    /// module moves it onto CLOCK_MONOTONIC (see task_clock.rs).
    pub exec_start_ms: Option<f64>,
    /// CPU time consumed, ms, with nanosecond precision (finer than stat's clock ticks).
    pub sum_exec_runtime_ms: Option<f64>,
    pub nr_voluntary_switches: Option<u64>,
    pub nr_involuntary_switches: Option<u64>,
}

/// Parses the file; unknown and malformed lines are ignored, missing fields stay `None`.
pub fn parse(text: &str) -> Sched {
    let mut s = Sched::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "se.exec_start" => s.exec_start_ms = value.parse().ok(),
            "se.sum_exec_runtime" => s.sum_exec_runtime_ms = value.parse().ok(),
            "nr_voluntary_switches" => s.nr_voluntary_switches = value.parse().ok(),
            "nr_involuntary_switches" => s.nr_involuntary_switches = value.parse().ok(),
            _ => {}
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_fields_used() {
        let text = "sleep (5190, #threads: 1)\n\
            -------------------------------------------------------------------\n\
            se.exec_start                                :        697075.524709\n\
            se.vruntime                                  :         80016.270004\n\
            se.sum_exec_runtime                          :             1.810061\n\
            nr_switches                                  :                    2\n\
            nr_voluntary_switches                        :                    1\n\
            nr_involuntary_switches                      :                    1\n\
            current_node=0, numa_group_id=0\n";
        let s = parse(text);
        assert_eq!(s.exec_start_ms, Some(697075.524709));
        assert_eq!(s.sum_exec_runtime_ms, Some(1.810061));
        assert_eq!(s.nr_voluntary_switches, Some(1));
        assert_eq!(s.nr_involuntary_switches, Some(1));
        assert_eq!(parse("garbage\n:\nse.exec_start: x"), Sched::default());
    }
}
