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
        }
    }

    pub fn needing(mut self, needs: impl Into<String>) -> Self {
        self.needs = Some(needs.into());
        self
    }
}
