//! What collection is reading now, for the one who must say where a run got stuck (the CLI's
//! watchdog) from another thread; and, with `HANGSCOPE_STAGES=1`, how long each part took, on
//! stderr (wall time since the process started), for finding where a slow run waits.

use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// The environment variable that prints each stage's start time on stderr.
pub const TIMES_ENV: &str = "HANGSCOPE_STAGES";

static CURRENT: Mutex<&'static str> = Mutex::new("nothing yet");

/// When timing is on: the instant the first stage was entered.
fn started() -> Option<Instant> {
    static STARTED: OnceLock<Option<Instant>> = OnceLock::new();
    *STARTED.get_or_init(|| std::env::var_os(TIMES_ENV).map(|_| Instant::now()))
}

pub(crate) fn enter(stage: &'static str) {
    mark(stage);
    if let Ok(mut c) = CURRENT.lock() {
        *c = stage;
    }
}

/// Whether `HANGSCOPE_STAGES` is set.
pub(crate) fn timing() -> bool {
    started().is_some()
}

/// With timing on, prints `what` and the time since the first stage; the current stage is
/// unchanged (for the work of other threads).
pub(crate) fn mark(what: &str) {
    if let Some(t0) = started() {
        eprintln!(
            "hangscope: {:8.2} ms  {what}",
            t0.elapsed().as_secs_f64() * 1000.0
        );
    }
}

/// The part of the snapshot being read, e.g. "the logs".
pub fn current() -> &'static str {
    CURRENT.lock().map(|c| *c).unwrap_or("an unknown part")
}
