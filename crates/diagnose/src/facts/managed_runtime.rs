//! The facts of the `managed_runtime` rule (`rules/managed_runtime.rs`): what it found, as data. The rule
//! decides and sets them; `words/managed_runtime.rs` says them.

use hangscope_model::{Looping, RuntimeKind, Text, ViewUnavailable};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ManagedRuntime {
    pub pid: i32,
    pub kind: RuntimeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<Text>,
    pub recognised_by: Text,
    /// Threads the kernel shows waiting in a call for at least a second, and how many of
    /// those wait in a futex.
    pub kernel_waiting: u32,
    pub kernel_futex: u32,
    pub longest_wait_ms: u64,
    /// What the runtime said.
    pub seen: Seen,
    /// Another rule found something about the process (a cause, or context such as the
    /// child a thread waits for): it explains its waits better, and this finding is then only
    /// context unless the runtime proved a deadlock. A host that embeds libpython (gdb) is
    /// the case in point.
    pub other_finding: bool,
}

/// What the runtime's own view showed, or why there is none.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Seen {
    /// HotSpot found a Java-level deadlock: each thread waits for a lock the next holds.
    Deadlock { tool: Text, threads: Vec<Locked> },
    /// Goroutines (or Python threads) waiting to take a lock.
    LockWaits {
        tool: Text,
        /// The tool's command alone, for the next step.
        command: String,
        threads: Vec<Locked>,
        /// All of them stayed in the same wait across two dumps this far apart, or (Go) the
        /// runtime counts their wait in minutes: a wait that lasts, not contention.
        #[serde(skip_serializing_if = "Option::is_none")]
        lasted_ms: Option<u64>,
        threads_total: u32,
    },
    /// The view shows no thread waiting for a lock.
    Nothing {
        tool: Text,
        /// The tool's command alone, for the next step.
        command: String,
        threads_total: u32,
    },
    /// No view.
    Unavailable {
        why: ViewUnavailable,
        /// JVM: whether it catches SIGQUIT, which starting its attach listener sends.
        #[serde(skip_serializing_if = "Option::is_none")]
        catches_sigquit: Option<bool>,
    },
}

/// A thread (goroutine) waiting for a lock, as the runtime names it, with the kernel's view of
/// the same thread when it could be matched by its native id.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Locked {
    pub name: Text,
    pub state: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waits_for: Option<Text>,
    /// The thread holding it (JVM deadlock).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_by: Option<Text>,
    /// Its innermost own frame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_minutes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<i32>,
    /// The kernel's call for that thread, e.g. "futex", and how long it has been in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_syscall: Option<String>,
    /// The loop that thread re-enters the call in, when it does and its rate was measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_loop: Option<KernelLoop>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_blocked_ms: Option<u64>,
}

/// A thread re-entering the same call, and how often.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct KernelLoop {
    #[serde(flatten)]
    pub looping: Looping,
    pub rate_per_s: f64,
}

impl ManagedRuntime {
    /// Whether the runtime's view proves a wait that should have ended.
    pub fn proven(&self) -> bool {
        match &self.seen {
            Seen::Deadlock { .. } => true,
            Seen::LockWaits { lasted_ms, .. } => lasted_ms.is_some_and(|ms| ms >= crate::STUCK_MS),
            _ => false,
        }
    }

    pub fn first_locked(&self) -> Option<&Locked> {
        match &self.seen {
            Seen::Deadlock { threads, .. } | Seen::LockWaits { threads, .. } => threads.first(),
            _ => None,
        }
    }
}

/// The command the finding's next step names.
pub(crate) fn command(f: &ManagedRuntime) -> String {
    let pid = f.pid;
    match (&f.seen, f.kind) {
        (Seen::Deadlock { .. }, _) | (_, RuntimeKind::Jvm) => format!("jcmd {pid} Thread.print"),
        (Seen::LockWaits { command, .. } | Seen::Nothing { command, .. }, _) => command.clone(),
        (_, RuntimeKind::Go) => format!("dlv attach {pid}"),
        _ => format!("py-spy dump --nonblocking --pid {pid}"),
    }
}
