//! What collection is reading now, for the one who must say where a run got stuck (the CLI's
//! watchdog) from another thread.

use std::sync::Mutex;

static CURRENT: Mutex<&'static str> = Mutex::new("nothing yet");

pub(crate) fn enter(stage: &'static str) {
    if let Ok(mut c) = CURRENT.lock() {
        *c = stage;
    }
}

/// The part of the snapshot being read, e.g. "the logs".
pub fn current() -> &'static str {
    CURRENT.lock().map(|c| *c).unwrap_or("an unknown part")
}
