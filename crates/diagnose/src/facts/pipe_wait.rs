//! The facts of the `pipe_wait` rule (`rules/pipe_wait.rs`): what it found, as data. The rule
//! decides and sets them; `words/pipe_wait.rs` says them.

use hangscope_model::PipeEnd;
use hangscope_model::Text;
use serde::Serialize;

use crate::facts::ThreadWait;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PipeWait {
    pub pid: i32,
    pub waiter: ThreadWait,
    /// The pipe's fd in this process.
    pub fd: i32,
    /// Its link, e.g. "pipe:[4242]".
    pub target: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipe_inode: Option<u64>,
    /// Blocked writing (the pipe is full); else reading.
    pub writing: bool,
    pub stuck_ms: u64,
    /// The other processes' fds on the end it waits for: the readers when it writes, the
    /// writers when it reads.
    pub other_ends: Vec<PipeEnd>,
}
