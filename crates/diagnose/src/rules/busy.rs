//! Busy: a thread spinning on a CPU, runnable with CPU time growing and no voluntary context
//! switches over the window (/proc/PID/task/TID/stat and status, sampled). A warning, not a
//! cause: computing is sometimes the job.

use hangscope_model::{Cause, Evidence, Finding, Severity, Subject};

use crate::{Ctx, Found, wording};

pub(crate) fn find(ctx: &Ctx<'_>) -> Vec<Found> {
    let window_ms = ctx.snap.window.as_ref().map(|w| w.duration_ms).unwrap_or(0);
    let mut out = Vec::new();
    for t in &ctx.snap.threads {
        let Some(a) = &t.activity else { continue };
        if !a.busy {
            continue;
        }
        let during = if window_ms > 0 {
            format!(" in {}", wording::duration(window_ms))
        } else {
            String::new()
        };
        out.push(Found {
            finding: Finding {
                severity: Severity::Warning,
                cause: Cause::Busy,
                summary: format!(
                    "{} is spinning on a CPU: {} of CPU time{during}, no system calls and no \
                     voluntary context switches.",
                    wording::thread(t),
                    wording::duration(a.cpu_ms)
                ),
                subject: Subject {
                    tid: Some(t.tid),
                    thread_name: Some(t.name.clone()).filter(|n| !n.is_empty()),
                    ..Subject::default()
                },
                evidence: vec![Evidence::new(
                    "cpu",
                    format!(
                        "{} CPU, {} voluntary / {} involuntary switches",
                        wording::duration(a.cpu_ms),
                        a.voluntary_switches,
                        a.involuntary_switches
                    ),
                    format!(
                        "/proc/{}/task/{}/stat, sampled",
                        ctx.snap.process.pid, t.tid
                    ),
                )],
                ruled_out: vec![],
                next_step: format!(
                    "See where it spins: perf top -t {}, or a debugger backtrace of thread {}.",
                    t.tid, t.tid
                ),
                ..Finding::default()
            },
            stuck_ms: a.cpu_ms,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;

    #[test]
    fn spinning_thread_is_a_warning() {
        let mut snap = base(1, "x");
        let mut t = thread(2, "spin", "", vec![], None);
        t.syscall.as_mut().unwrap().running = true;
        let a = t.activity.as_mut().unwrap();
        a.busy = true;
        a.cpu_ms = 1950;
        a.involuntary_switches = 40;
        snap.threads.push(t);
        let f = &find(&Ctx::new(&snap))[0].finding;
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(
            f.summary,
            "Thread 2 (spin) is spinning on a CPU: 1.9 s of CPU time in 2.0 s, no system calls and no voluntary context switches."
        );
    }
}
