use std::io;

use hangscope_model::{Gap, GapReason};

/// Why a process could not be read at all. Partial failures are gaps, not errors.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("no process with PID {0}")]
    NoSuchProcess(i32),
    #[error("process {0} exited while it was being read")]
    Vanished(i32),
    #[error("cannot read process {pid}: {detail} (run as root or with CAP_SYS_PTRACE)")]
    NotPermitted { pid: i32, detail: String },
    #[error("{0}")]
    Other(String),
}

/// Classifies an I/O error from /proc into a gap reason.
pub(crate) fn reason_of(err: &io::Error) -> GapReason {
    match err.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => GapReason::Permission,
        Some(libc::ENOENT) | Some(libc::ESRCH) => GapReason::Vanished,
        Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => GapReason::Unsupported,
        _ => GapReason::Other,
    }
}

/// A gap for a failed read of `what`, with the privilege that would help when it is one.
pub(crate) fn gap_of(what: impl Into<String>, err: &io::Error) -> Gap {
    let reason = reason_of(err);
    let gap = Gap::new(what, reason, err.to_string());
    if reason == GapReason::Permission {
        gap.needing("root or CAP_SYS_PTRACE over the target")
    } else {
        gap
    }
}
