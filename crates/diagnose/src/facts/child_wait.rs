//! The facts of the `child_wait` rule (`rules/child_wait.rs`): what it found, as data. The rule
//! decides and sets them; `words/child_wait.rs` says them.

use hangscope_model::Child;
use serde::Serialize;

use crate::facts::ThreadRef;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ChildWait {
    pub pid: i32,
    pub waiter: ThreadRef,
    /// "wait4" or "waitid".
    pub syscall: String,
    /// The pid argument as the kernel reads it: a child, -1 for any, 0 or -PGID for a group.
    pub waits_for: i32,
    /// The children it may be waiting for, alive or not yet reaped.
    pub children: Vec<Child>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_ms: Option<u64>,
}

impl ChildWait {
    /// The one child the wait is about: the child named, or the only one not yet exited.
    pub fn child(&self) -> Option<&Child> {
        let alive: Vec<&Child> = self.children.iter().filter(|c| c.state != "Z").collect();
        match alive.as_slice() {
            [one] => Some(one),
            _ => self.children.iter().find(|c| c.pid == self.waits_for),
        }
    }
}
