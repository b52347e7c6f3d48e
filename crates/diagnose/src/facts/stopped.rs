//! The facts of the `stopped` rule (`rules/stopped.rs`): what it found, as data. The rule
//! decides and sets them; `words/stopped.rs` says them.

use hangscope_model::{Freezer, Text, Tracer};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Stopped {
    pub pid: i32,
    pub name: Text,
    /// The process's state letter.
    pub state: String,
    pub hold: Hold,
    /// Threads in a stop (T or t), of those read.
    pub threads_stopped: u32,
    pub threads: u32,
    /// It has not run for at least this long: since the last of its threads ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_run_ms: Option<u64>,
    /// The longest any of its threads has been blocked in a call, over the window.
    pub longest_wait_ms: u64,
    /// Its parent, which for a job stopped with Ctrl-Z is the shell.
    pub ppid: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_name: Option<Text>,
}

/// What holds it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Hold {
    /// A stop signal: SIGSTOP, or job control (SIGTSTP, SIGTTIN, SIGTTOU). A tracer may be
    /// attached too.
    Signal {
        #[serde(skip_serializing_if = "Option::is_none")]
        tracer: Option<Tracer>,
    },
    /// A tracing stop: the tracer (a debugger) has not resumed it.
    Debugger { tracer: Tracer },
    /// Its cgroup is frozen, or freezing.
    Frozen { freezer: Freezer },
    /// A tracer is attached and the process runs: each traced event stops in the tracer, which
    /// slows the process but does not hold it.
    Traced { tracer: Tracer },
}

/// The command that thaws a freezer set in `file`.
pub(crate) fn thaw_command(freezer: &Freezer, file: &str) -> String {
    if freezer.version == 1 {
        format!("echo THAWED > {file}")
    } else {
        format!("echo 0 > {file}")
    }
}
