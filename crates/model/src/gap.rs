//! Gaps: what could not be read. A report that hides its blind spots misleads on a bad day.

use serde::{Deserialize, Serialize};

/// Linux's EACCES, the same on every architecture (asm-generic/errno-base.h).
const EACCES: i32 = 13;

/// Something hangscope could not read, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Gap {
    /// What was not read, e.g. "/proc/31516/task/31576/stack" or "fdinfo of 3 fds".
    pub what: String,
    /// Why, as a kind: `permission`, `vanished`, `unsupported`, `malformed`, `deadline`, `unsafe`,
    /// `skipped`, or `other` (any other error, or a kind this reader does not know; see
    /// docs/snapshot-schema.md).
    pub reason: GapReason,
    /// The error or explanation, e.g. "/proc/42/net/unix: No such file or directory (os
    /// error 2)"; empty when the failure says no more than `reason` (since 1.12, an EACCES is
    /// `permission` with `errno` 13 and no detail).
    #[serde(default)]
    pub detail: String,
    /// The system call's error number, when the failure was one (since 1.12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
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
            errno: None,
            needs: None,
            topic: None,
        }
    }

    /// A gap for a failed system call: its error number, and the OS's words for it as the
    /// detail unless the reason already says them (EACCES is "permission denied").
    pub fn of_errno(what: impl Into<String>, reason: GapReason, err: &std::io::Error) -> Self {
        Gap::new(what, reason, err.to_string()).with_errno(err.raw_os_error())
    }

    /// The gap with the error number of the failed call its detail words, the words dropped
    /// when they only repeat the reason.
    pub fn with_errno(mut self, errno: Option<i32>) -> Self {
        self.set_errno(errno);
        self
    }

    fn set_errno(&mut self, errno: Option<i32>) {
        self.errno = errno;
        if errno == Some(EACCES) && self.reason == GapReason::Permission {
            self.detail.clear();
        }
    }

    /// A document before 1.12 kept the OS's words in `detail`, "Permission denied (os error
    /// 13)": the number goes to `errno`, and the words that only repeat the reason go.
    pub(crate) fn upgrade_errno(&mut self) {
        if self.errno.is_some() {
            return;
        }
        let Some(n) = self
            .detail
            .strip_suffix(')')
            .and_then(|d| d.rsplit_once(" (os error "))
            .and_then(|(_, n)| n.parse::<i32>().ok())
        else {
            return;
        };
        self.set_errno(Some(n));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_errno_gap_keeps_the_number_and_only_words_the_reason_does_not_say() {
        let denied = std::io::Error::from_raw_os_error(EACCES);
        let g = Gap::of_errno("fd", GapReason::Permission, &denied);
        assert_eq!((g.errno, g.detail.as_str()), (Some(13), ""));
        let eperm = std::io::Error::from_raw_os_error(1);
        let g = Gap::of_errno("maps", GapReason::Permission, &eperm);
        assert_eq!(g.errno, Some(1));
        assert_eq!(g.detail, eperm.to_string());
        let gone = std::io::Error::from_raw_os_error(2);
        let g = Gap::of_errno("stat", GapReason::Vanished, &gone);
        assert_eq!((g.errno, g.detail), (Some(2), gone.to_string()));
        let plain = std::io::Error::other("no such thing");
        let g = Gap::of_errno("x", GapReason::Other, &plain);
        assert_eq!((g.errno, g.detail.as_str()), (None, "no such thing"));
    }
}
