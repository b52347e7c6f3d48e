//! The clock of `se.exec_start` in /proc/PID/task/TID/sched, sched(7).
//!
//! exec_start is read from the runqueue's task clock (rq_clock_task), which leaves out time the
//! CPU did not run tasks: steal time on a VM with paravirtual steal accounting, and interrupt
//! time with IRQ time accounting. So it runs behind CLOCK_MONOTONIC by all such time since boot,
//! per CPU — measured here: ~355 ms behind after 33 minutes, matching /proc/stat's steal — and
//! "now − exec_start" overstates how long ago a thread ran by that lag, more the longer the
//! machine is up. Which kinds of time are left out depends on the kernel's configuration, so the
//! lag is measured rather than computed: a thread of ours pinned to the CPU sleeps briefly, and
//! the moment it is scheduled back in its own exec_start is "now" on that CPU's task clock.

use std::collections::HashMap;
use std::time::Duration;

use super::sched;

#[derive(Debug, Default)]
pub struct TaskClock {
    /// CPU → how far its task clock is behind CLOCK_MONOTONIC, ms.
    lag_ms: HashMap<i32, f64>,
    /// The measurements that had not come when the first look needed them.
    late: Option<std::sync::mpsc::Receiver<(i32, Option<f64>)>>,
}

/// A measurement under way on its own thread, so the first look does not wait for it.
pub struct Measuring {
    /// One result per CPU, then closed: the measuring thread ends, or never started.
    results: std::sync::mpsc::Receiver<(i32, Option<f64>)>,
}

/// The longest the first look waits for the measurement: on a machine with hundreds of CPUs it
/// could take longer, and CPUs not measured by then simply get no correction.
const WAIT_AT_MOST: Duration = Duration::from_millis(30);

/// The longest the last look waits for CPUs still being measured: without a CPU's lag, the
/// times since its threads last ran are unknown.
pub const LAST_LOOK_WAITS: Duration = Duration::from_millis(250);

impl Measuring {
    /// The lags measured by now (waiting up to `WAIT_AT_MOST` for the rest); those that come
    /// later are taken in by [`TaskClock::absorb`].
    pub fn finish(self) -> TaskClock {
        let mut clock = TaskClock {
            lag_ms: HashMap::new(),
            late: Some(self.results),
        };
        clock.absorb(WAIT_AT_MOST);
        clock
    }
}

impl TaskClock {
    /// Starts measuring the lag of every CPU this process may run on (the target's threads
    /// run on those too, as far as hangscope can tell), on a short-lived thread whose affinity
    /// changes, not the caller's.
    pub fn start() -> Measuring {
        let cpus: Vec<i32> = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
            .map(|set| {
                (0..nix::sched::CpuSet::count())
                    .filter(|&c| set.is_set(c).unwrap_or(false))
                    .filter_map(|c| i32::try_from(c).ok())
                    .collect()
            })
            .unwrap_or_default();
        let (tx, results) = std::sync::mpsc::channel();
        // Not started: the closure, and the sender in it, is dropped, so the receiver sees the
        // channel closed at once and waits for nothing.
        let _ = std::thread::Builder::new()
            .name("task-clock".into())
            .spawn(move || {
                for cpu in cpus {
                    // Sent even when it failed (None), so the receiver knows not to wait for it.
                    if tx.send((cpu, measure_cpu(cpu))).is_err() {
                        return;
                    }
                }
            });
        Measuring { results }
    }

    /// Takes in the measurements that have come since, waiting for the rest up to `within`
    /// (zero: not at all).
    pub fn absorb(&mut self, within: Duration) {
        let until = std::time::Instant::now() + within;
        let Some(late) = &self.late else { return };
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            match late.recv_timeout(left) {
                Ok((cpu, Some(lag))) => {
                    self.lag_ms.insert(cpu, lag);
                }
                Ok((_, None)) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => return,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    self.late = None;
                    return;
                }
            }
        }
    }

    /// exec_start moved onto CLOCK_MONOTONIC for a thread that last ran on `cpu`; `None` when
    /// that CPU's lag is not known. Uncorrected, "now − exec_start" would count all the CPU's
    /// steal and interrupt time since boot: on a loaded VM up 20 hours, 10 minutes.
    pub fn to_monotonic_ms(&self, exec_start_ms: f64, cpu: Option<i32>) -> Option<f64> {
        cpu.and_then(|c| self.lag_ms.get(&c))
            .map(|lag| exec_start_ms + lag)
    }
}

fn measure_cpu(cpu: i32) -> Option<f64> {
    let mut set = nix::sched::CpuSet::new();
    set.set(usize::try_from(cpu).ok()?).ok()?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).ok()?;
    // Twice, keeping the smaller: a preemption between wake-up and read only adds.
    let mut best: Option<f64> = None;
    for _ in 0..2 {
        std::thread::sleep(Duration::from_micros(200));
        let text = std::fs::read_to_string("/proc/thread-self/sched").ok()?;
        let now_ms = crate::monotonic_ns() as f64 / 1e6;
        let start = sched::parse(&text).exec_start_ms?;
        let lag = (now_ms - start).max(0.0);
        best = Some(best.map_or(lag, |b: f64| b.min(lag)));
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrects_by_the_cpus_lag_only() {
        let clock = TaskClock {
            lag_ms: HashMap::from([(0, 355.0)]),
            late: None,
        };
        assert_eq!(clock.to_monotonic_ms(1000.0, Some(0)), Some(1355.0));
        // Not measured: unknown, not the raw task clock (which runs behind by all the CPU's
        // lost time since boot).
        assert_eq!(clock.to_monotonic_ms(1000.0, Some(1)), None);
        assert_eq!(clock.to_monotonic_ms(1000.0, None), None);
    }

    #[test]
    fn a_lag_measured_after_the_first_look_is_taken_in() {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut clock = Measuring { results: rx }.finish();
        assert_eq!(clock.to_monotonic_ms(1000.0, Some(1)), None);
        tx.send((1, Some(20.0))).expect("send");
        tx.send((2, None)).expect("send");
        clock.absorb(Duration::ZERO);
        assert_eq!(clock.to_monotonic_ms(1000.0, Some(1)), Some(1020.0));
        assert_eq!(clock.to_monotonic_ms(1000.0, Some(2)), None);
        drop(tx);
        clock.absorb(Duration::from_secs(1));
        assert!(clock.late.is_none());
    }

    #[test]
    fn measured_lag_is_small_and_not_negative() {
        // On any machine the lag is the CPU's lost time since boot: not negative, and far
        // below the uptime.
        let clock = TaskClock::start().finish();
        if let Some(lag) = clock.lag_ms.get(&0) {
            let uptime_ms = crate::monotonic_ns() as f64 / 1e6;
            assert!(*lag >= 0.0 && *lag < uptime_ms, "lag {lag} ms");
        }
    }
}
