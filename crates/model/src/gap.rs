//! Gaps: what could not be read. A report that hides its blind spots misleads on a bad day.

use serde::{Deserialize, Serialize};

/// Something hangscope could not read, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Gap {
    /// What was not read, e.g. "/proc/31516/task/31576/stack" or "fdinfo of 3 fds".
    pub what: String,
    /// Why, as a kind: `permission`, `vanished`, `unsupported`, `malformed`, `deadline`, `unsafe`,
    /// `skipped`, or `other` (any other error, or a kind this reader does not know; see
    /// docs/snapshot-schema.md).
    pub reason: GapReason,
    /// The error or explanation, e.g. "Permission denied (os error 13)".
    #[serde(default)]
    pub detail: String,
    /// What would make it readable, e.g. "root or CAP_SYS_PTRACE".
    #[serde(default)]
    pub needs: Option<String>,
    /// Which of the target's sources it is, for a reader that must know (since 1.9): the
    /// fd table and the threads' calls, without which no other finding says anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<GapTopic>,
}

/// The source a gap is of, where a reader acts on which one it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GapTopic {
    /// The fd table, /proc/PID/fd.
    FdTable,
    /// The thread list, /proc/PID/task.
    ThreadList,
    /// The threads' syscall files, /proc/PID/task/TID/syscall.
    ThreadSyscalls,
}

impl GapTopic {
    /// The topic of a gap in a document before 1.9, from its words as the collector wrote
    /// them then.
    pub fn of_words(what: &str, pid: i32) -> Option<GapTopic> {
        if what == format!("/proc/{pid}/fd") {
            Some(GapTopic::FdTable)
        } else if what == format!("/proc/{pid}/task") {
            Some(GapTopic::ThreadList)
        } else if what.starts_with("syscall of ") {
            Some(GapTopic::ThreadSyscalls)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GapReason {
    /// The kernel refused: missing privilege.
    Permission,
    /// The process, thread or fd went away between listing and reading.
    Vanished,
    /// The kernel or architecture does not offer it.
    Unsupported,
    /// Read, but not in a form hangscope understands.
    Malformed,
    /// Not read because the run's deadline had passed.
    Deadline,
    /// Deliberately not read because it could block, e.g. a stat on a network mount.
    Unsafe,
    /// Not read to keep the run fast; read it with a more thorough option.
    Skipped,
    /// Any other error.
    #[serde(other)]
    Other,
}

impl GapReason {
    pub fn as_str(self) -> &'static str {
        match self {
            GapReason::Permission => "permission denied",
            GapReason::Vanished => "vanished",
            GapReason::Unsupported => "unsupported",
            GapReason::Malformed => "malformed",
            GapReason::Deadline => "deadline passed",
            GapReason::Unsafe => "unsafe to read",
            GapReason::Skipped => "skipped",
            GapReason::Other => "error",
        }
    }
}

impl Gap {
    pub fn new(what: impl Into<String>, reason: GapReason, detail: impl Into<String>) -> Self {
        Gap {
            what: what.into(),
            reason,
            detail: detail.into(),
            needs: None,
            topic: None,
        }
    }

    /// The gap, marked as being of `topic`.
    pub fn about(mut self, topic: GapTopic) -> Self {
        self.topic = Some(topic);
        self
    }

    pub fn needing(mut self, needs: impl Into<String>) -> Self {
        self.needs = Some(needs.into());
        self
    }
}
