//! Busy: a thread spinning on a CPU, runnable with CPU time growing and no voluntary context
//! switches over the window (/proc/PID/task/TID/stat and status, sampled). A warning, not a
//! cause: computing is sometimes the job.

use hangscope_model::{Cause, Next, Severity, Subject};

use crate::Ctx;
use crate::facts::busy::Busy;
use crate::facts::{RuleFacts, ThreadRef};

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<Busy> {
    let window_ms = ctx.snap.window.as_ref().map(|w| w.duration_ms).unwrap_or(0);
    let mut out = Vec::new();
    for t in &ctx.snap.threads {
        let Some(a) = &t.activity else { continue };
        if !a.busy {
            continue;
        }
        out.push(Busy {
            pid: ctx.snap.process.pid,
            thread: ThreadRef::of(t),
            cpu_ms: a.cpu_ms,
            window_ms,
            voluntary_switches: a.voluntary_switches,
            involuntary_switches: a.involuntary_switches,
        });
    }
    out
}

impl RuleFacts for Busy {
    const RULE: &'static str = "busy";

    fn cause(&self) -> Cause {
        Cause::Busy
    }

    /// Computing is sometimes the job.
    fn severity(&self) -> Severity {
        Severity::Warning
    }

    fn stuck_ms(&self) -> u64 {
        self.cpu_ms
    }

    fn subject(&self) -> Subject {
        self.thread.subject()
    }

    fn next(&self) -> Option<Next> {
        Some(
            Next::thread(self.pid, self.thread.tid)
                .with_command(format!("perf top -t {}", self.thread.tid)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use hangscope_model::{Finding, NextKind, Snapshot};

    /// The findings the rule makes of a snapshot, worded.
    fn find(ctx: &Ctx<'_>) -> Vec<Finding> {
        super::find(ctx).iter().map(crate::words::finding).collect()
    }

    fn spinning() -> Snapshot {
        let mut snap = base(1, "x");
        let mut t = thread(2, "spin", "", vec![], None);
        t.syscall.as_mut().unwrap().running = true;
        let a = t.activity.as_mut().unwrap();
        a.busy = true;
        a.cpu_ms = 1950;
        a.involuntary_switches = 40;
        snap.threads.push(t);
        snap
    }

    #[test]
    fn spinning_thread_is_a_warning() {
        let snap = spinning();
        let f = &find(&Ctx::new(&snap))[0];
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(
            f.summary,
            "Thread 2 (spin) is spinning on a CPU: 1.9 s of CPU time in 2.0 s, no system calls and no voluntary context switches."
        );
    }

    #[test]
    fn facts_are_the_cpu_counters_and_next_is_the_thread() {
        let f = &find(&Ctx::new(&spinning()))[0];
        assert_eq!(f.rule, "busy");
        assert_eq!(f.facts["thread"]["tid"], 2);
        assert_eq!(f.facts["thread"]["name"], "spin");
        assert_eq!(f.facts["cpu_ms"], 1950);
        assert_eq!(f.facts["window_ms"], 2000);
        assert_eq!(f.facts["voluntary_switches"], 0);
        assert_eq!(f.facts["involuntary_switches"], 40);
        let next = f.next.as_ref().unwrap();
        assert_eq!(
            (next.kind, next.pid, next.tid),
            (NextKind::Thread, Some(1), Some(2))
        );
        assert_eq!(next.command.as_deref(), Some("perf top -t 2"));
    }
}
