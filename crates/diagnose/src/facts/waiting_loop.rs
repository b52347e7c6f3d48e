//! The facts of the `waiting_loop` rule (`rules/waiting_loop.rs`): what it found, as data. The rule
//! decides and sets them; `words/waiting_loop.rs` says them.

use hangscope_model::{Looping, Thread};
use serde::Serialize;

use crate::facts::ThreadRef;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum WaitingLoop {
    /// One thread's loop.
    One {
        pid: i32,
        looping: Loop,
        /// It is the main thread.
        main_thread: bool,
        /// The stuck thread it likely waits for: the main thread's loop while one thread is
        /// stuck. Nothing is claimed about other threads' loops.
        #[serde(skip_serializing_if = "Option::is_none")]
        likely_waits_for: Option<ThreadRef>,
    },
    /// The loops beyond the first few, together.
    Others { pid: i32, loops: Vec<Loop> },
}

/// A thread re-entering the same wait over the window.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Loop {
    #[serde(flatten)]
    pub thread: ThreadRef,
    /// The call, and its sleep, else its timeout.
    #[serde(flatten)]
    pub looping: Looping,
    /// How often it re-enters the call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_per_s: Option<f64>,
}

impl Loop {
    /// The loop `t` is in, if any.
    pub(crate) fn of(t: &Thread) -> Option<Self> {
        Some(Loop {
            thread: ThreadRef::of(t),
            looping: t.looping()?,
            rate_per_s: t.activity.as_ref().and_then(|a| a.rate_per_s),
        })
    }
}
