//! The sampling window (`--window`): several looks at the process, a few hundred ms apart,
//! bounded by the window and by the run's deadline. Each collector that wants to see change
//! registers a closure called once per look; threads and fd churn do, and per-connection
//! counters can.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::Deadline;

/// Time between looks, aimed at; the window is split into equal steps near this.
pub const STEP: Duration = Duration::from_millis(150);
/// Time kept free before the deadline for the final, full read and the report.
pub const RESERVE: Duration = Duration::from_millis(500);

/// One look.
#[derive(Debug, Clone, Copy)]
pub struct Look {
    /// 0 for the first look.
    pub index: u32,
    /// True for the final look (the only one when the window is 0): collectors read in full.
    pub last: bool,
    pub at: Instant,
}

/// What the window turned out to be.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outcome {
    pub looks: u32,
    pub duration: Duration,
    /// The deadline ended the window early.
    pub cut_by_deadline: bool,
}

/// A closure called at every look.
pub type Hook<'a> = Box<dyn FnMut(&Look) + 'a>;

pub struct Sampler<'a> {
    window: Duration,
    deadline: Deadline,
    progress: bool,
    hooks: Vec<Hook<'a>>,
}

impl<'a> Sampler<'a> {
    /// `progress`: print a one-line progress on stderr (only if stderr is a terminal).
    pub fn new(window: Duration, deadline: Deadline, progress: bool) -> Self {
        Sampler {
            window,
            deadline,
            progress: progress && std::io::stderr().is_terminal(),
            hooks: Vec::new(),
        }
    }

    /// Registers a closure called at every look, in registration order.
    pub fn on_look(&mut self, f: impl FnMut(&Look) + 'a) {
        self.hooks.push(Box::new(f));
    }

    pub fn run(&mut self) -> Outcome {
        let start = Instant::now();
        let steps = (self.window.as_secs_f64() / STEP.as_secs_f64())
            .ceil()
            .max(0.0) as u32;
        let step = if steps > 0 {
            self.window / steps
        } else {
            Duration::ZERO
        };
        let limit = self
            .deadline
            .instant()
            .checked_sub(RESERVE)
            .unwrap_or(start)
            .max(start);
        let mut out = Outcome::default();
        let mut index = 0u32;
        loop {
            let next_due = start + step * (index + 1);
            let cut = index < steps && next_due > limit;
            let last = index >= steps || cut;
            out.cut_by_deadline |= cut;
            let look = Look {
                index,
                last,
                at: Instant::now(),
            };
            for h in self.hooks.iter_mut() {
                h(&look);
            }
            out.looks = index + 1;
            if last {
                break;
            }
            if self.progress {
                let mut err = std::io::stderr().lock();
                // A meter redrawn in place: fixed-width figures, not units' words, whose
                // length changes would leave stale characters behind the carriage return.
                let _ = write!(
                    err,
                    "\rwatching {:.1}/{:.1} s ({} looks)",
                    start.elapsed().as_secs_f64(),
                    self.window.as_secs_f64(),
                    index + 1
                );
                let _ = err.flush();
            }
            std::thread::sleep(next_due.saturating_duration_since(Instant::now()));
            index += 1;
        }
        if self.progress && out.looks > 1 {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
        out.duration = start.elapsed();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_window_is_one_full_look() {
        let mut seen = Vec::new();
        let mut s = Sampler::new(
            Duration::ZERO,
            Deadline::after(Duration::from_secs(5)),
            false,
        );
        s.on_look(|l| seen.push((l.index, l.last)));
        let o = s.run();
        drop(s);
        assert_eq!(o.looks, 1);
        assert_eq!(seen, [(0, true)]);
    }

    #[test]
    fn window_takes_several_looks_and_ends_with_a_full_one() {
        let mut seen = Vec::new();
        let mut s = Sampler::new(
            Duration::from_millis(300),
            Deadline::after(Duration::from_secs(5)),
            false,
        );
        s.on_look(|l| seen.push(l.last));
        let o = s.run();
        drop(s);
        assert_eq!(o.looks, 3);
        assert_eq!(seen, [false, false, true]);
        assert!(o.duration >= Duration::from_millis(300));
        assert!(!o.cut_by_deadline);
    }

    #[test]
    fn deadline_cuts_the_window() {
        let mut s = Sampler::new(
            Duration::from_secs(60),
            Deadline::after(Duration::from_millis(800)),
            false,
        );
        let o = s.run();
        assert!(o.cut_by_deadline);
        assert!(o.duration < Duration::from_secs(2), "{o:?}");
    }
}
