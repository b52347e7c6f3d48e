use std::io;

use hangscope_model::{Gap, GapReason};

/// Why a process could not be read at all. Partial failures are gaps, not errors.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("no process with PID {0}")]
    NoSuchProcess(i32),
    #[error("process {0} exited while it was being read")]
    Vanished(i32),
    #[error("cannot read process {pid}: {detail} (run as root)")]
    NotPermitted { pid: i32, detail: String },
    #[error(
        "process {pid} exited while it was watched and its PID was taken by another process \
         ({name:?}, started {later_s:.1} s after it): nothing is reported, as the report would \
         mix the two; run hangscope {pid} again to inspect the new process"
    )]
    Reused {
        pid: i32,
        later_s: f64,
        name: String,
    },
    #[error("{0}")]
    Other(String),
}

/// Classifies an I/O error from /proc into a gap reason.
pub(crate) fn reason_of(err: &io::Error) -> GapReason {
    if err.kind() == io::ErrorKind::InvalidData {
        return GapReason::Malformed;
    }
    match err.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => GapReason::Permission,
        Some(libc::ENOENT) | Some(libc::ESRCH) => GapReason::Vanished,
        Some(libc::EINVAL)
        | Some(libc::EOPNOTSUPP)
        | Some(libc::EPROTONOSUPPORT)
        | Some(libc::EAFNOSUPPORT) => GapReason::Unsupported,
        // A receive timeout (SO_RCVTIMEO), which the deadline sets.
        Some(libc::EAGAIN) => GapReason::Deadline,
        _ => GapReason::Other,
    }
}

/// A gap for a failed read of `what`, with the privilege that would help when it is one.
pub(crate) fn gap_of(what: impl Into<String>, err: &io::Error) -> Gap {
    let reason = reason_of(err);
    let gap = Gap::new(what, reason, err.to_string());
    if reason == GapReason::Permission {
        gap.needing("root, or CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH over the target")
    } else {
        gap
    }
}

/// A gap for a file the operator named (`--log PATH`): its failures are about that path and
/// this process's own permissions, not the target's /proc.
pub(crate) fn named_file_gap(what: impl Into<String>, path: &str, err: &io::Error) -> Gap {
    match err.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => {
            Gap::new(what, GapReason::Other, format!("{path} does not exist"))
        }
        Some(libc::EACCES) | Some(libc::EPERM) => {
            Gap::new(what, GapReason::Permission, err.to_string()).needing(format!(
                "read permission on {path} and search permission on its directories, or \
                 CAP_DAC_READ_SEARCH"
            ))
        }
        _ => Gap::new(what, reason_of(err), err.to_string()),
    }
}

/// Per-fd read failures, reported as one gap per kind of failure instead of one line per fd:
/// a process with 20,000 fds and no permission must not bury the report.
#[derive(Debug, Default)]
pub(crate) struct FdFailures {
    items: Vec<(i32, io::Error)>,
}

impl FdFailures {
    pub(crate) fn push(&mut self, fd: i32, err: io::Error) {
        self.items.push((fd, err));
    }

    pub(crate) fn extend(&mut self, other: FdFailures) {
        self.items.extend(other.items);
    }

    /// One gap per reason, "what of N fds of PID (fd 3, 4, 9 …)".
    pub(crate) fn into_gaps(self, what: &str, pid: i32) -> Vec<Gap> {
        let mut by_reason: Vec<(GapReason, Vec<i32>, String)> = Vec::new();
        for (fd, err) in &self.items {
            let reason = reason_of(err);
            match by_reason.iter_mut().find(|(r, _, _)| *r == reason) {
                Some((_, fds, _)) => fds.push(*fd),
                None => by_reason.push((reason, vec![*fd], err.to_string())),
            }
        }
        by_reason
            .into_iter()
            .map(|(reason, fds, detail)| {
                let shown: Vec<String> = fds.iter().take(5).map(|f| f.to_string()).collect();
                let more = if fds.len() > 5 { " …" } else { "" };
                let gap = Gap::new(
                    format!(
                        "{what} of {} fds of {pid} (fd {}{more})",
                        fds.len(),
                        shown.join(", ")
                    ),
                    reason,
                    detail,
                );
                if reason == GapReason::Permission {
                    gap.needing("root, or CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH over the target")
                } else {
                    gap
                }
            })
            .collect()
    }
}
