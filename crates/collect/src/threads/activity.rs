//! How a thread behaved over the sampling window, from several reads of its `stat`, `status`,
//! `sched` and `syscall`: did it progress, is it spinning, is it a loop re-entering the same
//! call at a rate, and for how long at least has it been blocked.

use hangscope_model::Activity;

use super::syscall::RawSyscall;
use super::task::TaskRead;

/// One look at one thread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub mono_ms: f64,
    pub state: char,
    pub cpu_ms: f64,
    pub voluntary: u64,
    pub involuntary: u64,
    pub syscall: Option<RawSyscall>,
    pub exec_start_ms: Option<f64>,
}

impl Sample {
    pub fn of(t: &TaskRead) -> Sample {
        let sched = t.sched.unwrap_or_default();
        Sample {
            mono_ms: t.mono_ns as f64 / 1e6,
            state: t.state,
            cpu_ms: t.cpu_ms(),
            voluntary: t.voluntary.or(sched.nr_voluntary_switches).unwrap_or(0),
            involuntary: t.involuntary.or(sched.nr_involuntary_switches).unwrap_or(0),
            syscall: t.syscall.as_ref().and_then(|r| r.as_ref().ok().copied()),
            exec_start_ms: sched.exec_start_ms,
        }
    }

    fn runnable(&self) -> bool {
        self.state == 'R' || self.syscall == Some(RawSyscall::Running)
    }
}

/// What a call looks like for "same call re-entered": number and arguments, or the kind.
fn call_key(s: &Option<RawSyscall>) -> (i8, i64, [u64; 6]) {
    match s {
        Some(RawSyscall::Blocked { nr, args, .. }) => (1, *nr, *args),
        Some(RawSyscall::NotInSyscall { .. }) => (2, -1, [0; 6]),
        Some(RawSyscall::Running) => (3, -1, [0; 6]),
        None => (0, -1, [0; 6]),
    }
}

/// Classifies a thread's samples (oldest first). With fewer than two samples, `None`.
pub fn classify(samples: &[Sample]) -> Option<Activity> {
    let (first, last) = (samples.first()?, samples.last()?);
    if samples.len() < 2 {
        return None;
    }
    let elapsed_ms = (last.mono_ms - first.mono_ms).max(0.0);
    let cpu_ms = (last.cpu_ms - first.cpu_ms).max(0.0);
    let voluntary = last.voluntary.saturating_sub(first.voluntary);
    let involuntary = last.involuntary.saturating_sub(first.involuntary);
    let syscall_changes = samples
        .windows(2)
        .filter(|w| call_key(&w[0].syscall) != call_key(&w[1].syscall))
        .count() as u32;
    let progressed = voluntary > 0 || involuntary > 0 || cpu_ms > 0.0 || syscall_changes > 0;
    let mut a = Activity {
        progressed,
        cpu_ms: cpu_ms.round() as u64,
        voluntary_switches: voluntary,
        involuntary_switches: involuntary,
        syscall_changes,
        ..Activity::default()
    };
    // Spinning: on a CPU or waiting for one, using a fair share of it (a loaded machine gives a
    // spinner less than all), and never giving it up voluntarily.
    a.busy = voluntary == 0
        && samples.iter().any(Sample::runnable)
        && elapsed_ms > 0.0
        && cpu_ms >= 0.2 * elapsed_ms;
    // A loop: every look that caught it in a syscall caught the same call with the same
    // arguments, and it went to sleep again and again in between.
    let blocked: Vec<_> = samples
        .iter()
        .filter(|s| matches!(s.syscall, Some(RawSyscall::Blocked { .. })))
        .collect();
    let same_call = !blocked.is_empty()
        && blocked
            .iter()
            .all(|s| call_key(&s.syscall) == call_key(&blocked[0].syscall));
    if same_call && voluntary >= 2 && elapsed_ms > 0.0 && !a.busy {
        a.rate_per_s = Some(voluntary as f64 * 1000.0 / elapsed_ms);
    }
    if !progressed {
        let since_ran = last
            .exec_start_ms
            .map(|e| (last.mono_ms - e).max(0.0))
            .unwrap_or(0.0);
        a.blocked_at_least_ms = Some(elapsed_ms.max(since_ran).round() as u64);
    }
    Some(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ms: f64, state: char, cpu: f64, vol: u64, call: Option<RawSyscall>) -> Sample {
        Sample {
            mono_ms: ms,
            state,
            cpu_ms: cpu,
            voluntary: vol,
            involuntary: 0,
            syscall: call,
            exec_start_ms: Some(100.0),
        }
    }

    fn sleep() -> Option<RawSyscall> {
        Some(RawSyscall::Blocked {
            nr: 230,
            args: [1, 0, 0x7ff0, 0x7ff0, 0, 0],
            sp: 0,
            pc: 0,
        })
    }

    #[test]
    fn blocked_thread() {
        let a = classify(&[
            s(1000.0, 'S', 5.0, 3, sleep()),
            s(3000.0, 'S', 5.0, 3, sleep()),
        ])
        .unwrap();
        assert!(!a.progressed);
        assert!(!a.busy);
        assert_eq!(a.rate_per_s, None);
        assert_eq!(a.blocked_at_least_ms, Some(2900));
    }

    #[test]
    fn sleep_loop_is_periodic() {
        let a = classify(&[
            s(0.0, 'S', 5.0, 10, sleep()),
            s(1000.0, 'R', 5.5, 15, Some(RawSyscall::Running)),
            s(2000.0, 'S', 6.0, 30, sleep()),
        ])
        .unwrap();
        assert!(a.progressed);
        assert!(!a.busy);
        assert_eq!(a.rate_per_s, Some(10.0));
        assert_eq!(a.blocked_at_least_ms, None);
    }

    #[test]
    fn spinner_is_busy() {
        let run = Some(RawSyscall::Running);
        let a = classify(&[s(0.0, 'R', 0.0, 1, run), s(2000.0, 'R', 900.0, 1, run)]).unwrap();
        assert!(a.busy);
        assert_eq!(a.rate_per_s, None);
        assert_eq!(classify(&[s(0.0, 'R', 0.0, 1, run)]), None);
    }
}
