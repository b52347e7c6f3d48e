//! The facts of the `busy` rule (`rules/busy.rs`): what it found, as data. The rule
//! decides and sets them; `words/busy.rs` says them.

use serde::Serialize;

use crate::facts::ThreadRef;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Busy {
    pub pid: i32,
    pub thread: ThreadRef,
    /// CPU time it used over the window.
    pub cpu_ms: u64,
    /// The sampling window's length; 0 when not known.
    pub window_ms: u64,
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
}
