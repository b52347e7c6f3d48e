//! Stopped: something outside the process keeps it from running — a stop signal (job control,
//! SIGSTOP: state T), a debugger left attached (a tracing stop, state t, with `TracerPid`), or
//! a cgroup freezer (frozen: state S or D with nothing to wait for). Its threads look asleep in
//! whatever call they were in, so every other rule would read an ordinary wait; this one says
//! what holds it and how to let it go. Words in `words/stopped.rs`.
//!
//! Facts from /proc/PID/stat (state), /proc/PID/status (TracerPid), the cgroup's
//! cgroup.events / freezer.state, and each thread's last run (/proc/PID/task/TID/sched).

use hangscope_model::{Cause, Next, Severity, Subject};

use crate::Ctx;
use crate::facts::RuleFacts;
use crate::facts::stopped::{Hold, Stopped, thaw_command};

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<Stopped> {
    let p = &ctx.snap.process;
    let threads = &ctx.snap.threads;
    let stopped = |s: &str| s == "T" || s == "t";
    let threads_stopped = threads.iter().filter(|t| stopped(&t.state)).count() as u32;
    let any_traced_stop = p.state == "t" || threads.iter().any(|t| t.state == "t");
    let any_stop = stopped(&p.state) || threads_stopped > 0;
    let hold = if let Some(f) = &p.freezer {
        Hold::Frozen { freezer: f.clone() }
    } else if let (true, Some(t)) = (any_traced_stop, &p.tracer) {
        Hold::Debugger { tracer: t.clone() }
    } else if any_stop {
        Hold::Signal {
            tracer: p.tracer.clone(),
        }
    } else if let Some(t) = &p.tracer {
        Hold::Traced { tracer: t.clone() }
    } else {
        return vec![];
    };
    // Every wait of its threads is the hold's doing, so it ranks above them.
    let longest_wait_ms = threads
        .iter()
        .filter_map(|t| t.activity.as_ref()?.blocked_at_least_ms)
        .max()
        .unwrap_or(0);
    // The process has been held at least since the most recent run of any of its threads.
    let not_run_ms = threads
        .iter()
        .filter_map(|t| t.last_ran_ms_ago)
        .min_by(f64::total_cmp)
        .map(|ms| ms.max(0.0) as u64);
    vec![Stopped {
        pid: p.pid,
        name: p.name.clone(),
        state: p.state.clone(),
        hold,
        threads_stopped,
        threads: threads.len() as u32,
        not_run_ms,
        longest_wait_ms,
        ppid: p.ppid,
        parent_name: p.parent_name.clone(),
    }]
}

impl RuleFacts for Stopped {
    const RULE: &'static str = "stopped";

    fn cause(&self) -> Cause {
        Cause::Stopped
    }

    fn severity(&self) -> Severity {
        match self.hold {
            Hold::Traced { .. } => Severity::Info,
            _ => Severity::Cause,
        }
    }

    fn stuck_ms(&self) -> u64 {
        // Nothing in the process can end any wait while it is held: it ranks with the longest.
        match self.hold {
            Hold::Traced { .. } => 0,
            _ => self
                .not_run_ms
                .unwrap_or(0)
                .max(self.longest_wait_ms)
                .max(crate::STUCK_MS),
        }
    }

    fn subject(&self) -> Subject {
        Subject::default()
    }

    fn next(&self) -> Option<Next> {
        Some(match &self.hold {
            Hold::Signal { .. } => Next::command(format!("kill -CONT {}", self.pid)),
            Hold::Debugger { tracer } | Hold::Traced { tracer } => Next::process(tracer.pid),
            Hold::Frozen { freezer } => match freezer.set_in.first() {
                Some(file) => Next::file(file.clone()).with_command(thaw_command(freezer, file)),
                None => Next::command(format!("cat /proc/{}/cgroup", self.pid)),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use hangscope_model::{Freezer, Tracer};

    fn findings(snap: &hangscope_model::Snapshot) -> Vec<hangscope_model::Finding> {
        find(&Ctx::new(snap))
            .iter()
            .map(crate::words::finding)
            .collect()
    }

    fn stopped_snapshot(state: &str) -> hangscope_model::Snapshot {
        let mut snap = base(4100, "worker");
        snap.process.state = state.into();
        snap.process.ppid = 4000;
        snap.process.parent_name = Some("bash".into());
        let mut t = sleeper(4100, "worker", 100);
        t.state = state.into();
        t.last_ran_ms_ago = Some(12_345.6);
        snap.threads = vec![t];
        snap
    }

    #[test]
    fn a_stop_signal_says_how_to_resume() {
        let f = &findings(&stopped_snapshot("T"))[0];
        assert_eq!(f.severity, Severity::Cause);
        assert_eq!(f.rule, "stopped");
        assert!(
            f.summary
                .starts_with("Process 4100 (worker) is stopped by a signal"),
            "{}",
            f.summary
        );
        assert!(f.summary.contains("12.3 s"), "{}", f.summary);
        assert!(f.next_step.contains("kill -CONT 4100"), "{}", f.next_step);
        assert_eq!(f.facts["hold"]["kind"], "signal");
        assert_eq!(f.facts["not_run_ms"], 12_345);
        assert_eq!(
            f.next.as_ref().and_then(|n| n.command.as_deref()),
            Some("kill -CONT 4100")
        );
    }

    #[test]
    fn a_debugger_left_attached_is_named() {
        let mut snap = stopped_snapshot("t");
        snap.process.tracer = Some(Tracer {
            pid: 4200,
            name: Some("gdb".into()),
            state: Some("S".into()),
        });
        let f = &findings(&snap)[0];
        assert_eq!(f.severity, Severity::Cause);
        assert!(f.summary.contains("process 4200 (gdb)"), "{}", f.summary);
        assert_eq!(f.facts["hold"]["kind"], "debugger");
        assert_eq!(f.next.as_ref().and_then(|n| n.pid), Some(4200));
    }

    #[test]
    fn a_frozen_cgroup_says_which_file_thaws_it() {
        let mut snap = stopped_snapshot("S");
        snap.process.freezer = Some(Freezer {
            version: 2,
            cgroup: "/batch/job-7".into(),
            frozen: true,
            set_in: vec!["/sys/fs/cgroup/batch/cgroup.freeze".into()],
        });
        let f = &findings(&snap)[0];
        assert_eq!(f.severity, Severity::Cause);
        assert!(f.summary.contains("/batch/job-7"), "{}", f.summary);
        assert!(
            f.next_step
                .contains("echo 0 > /sys/fs/cgroup/batch/cgroup.freeze"),
            "{}",
            f.next_step
        );
        assert_eq!(f.facts["hold"]["freezer"]["version"], 2);
    }

    #[test]
    fn a_tracer_on_a_running_process_is_context_and_a_free_process_nothing() {
        let mut snap = stopped_snapshot("S");
        assert!(findings(&snap).is_empty());
        snap.process.tracer = Some(Tracer {
            pid: 4300,
            name: Some("strace".into()),
            state: Some("S".into()),
        });
        let f = &findings(&snap)[0];
        assert_eq!(f.severity, Severity::Info);
        assert_eq!(f.facts["hold"]["kind"], "traced");
    }
}
